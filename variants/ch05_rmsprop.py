"""Chapter 5's variants: the known mistakes of RMSprop (and a slot shared by all variables), a
correct optimizer written differently, and two ways of leaning on Keras's RMSprop.

The grader knows more mistakes (bias correction added, centered or momentum ignored); they are
tested on their NumPy models only (tests/test_ch05_rmsprop.py), which keeps grading time down.
"""

from __future__ import annotations

from variants import Kind, from_file, from_solution, variant

STEM = "ch05_rmsprop"

INC = "increment = ops.divide(ops.multiply(lr, g), ops.sqrt(den + self.epsilon))"
V_UPDATE = "self.assign(v, ops.add(rho * v, ops.multiply(1 - rho, ops.square(g))))"
MOMENTUM = ("self.assign(mom, ops.add(self.momentum * mom, increment))\n"
            "            self.assign_sub(variable, mom)")

VARIANTS = (
    # the grader contract's four
    from_solution(STEM, "epsilon outside the square root",
                  ((INC, "increment = ops.divide(ops.multiply(lr, g), ops.sqrt(den) + self.epsilon)"),),
                  checks=("rmsprop.single_step", "rmsprop.trajectory"), hint="UNDER the root"),
    from_solution(STEM, "centered with v - a", (("den = v - ops.square(a)", "den = v - a"),),
                  checks=("rmsprop.centered",), hint="v - a^2"),
    from_solution(STEM, "rho and 1 - rho swapped",
                  ((V_UPDATE,
                    "self.assign(v, ops.add((1 - rho) * v, ops.multiply(rho, ops.square(g))))"),),
                  checks=("rmsprop.single_step", "rmsprop.trajectory"), hint="weights the OLD"),
    from_solution(STEM, "momentum applied to the gradient",
                  ((MOMENTUM, "self.assign(mom, ops.add(self.momentum * mom, g))\n"
                              "            self.assign_sub(variable, ops.divide(ops.multiply(lr, mom),"
                              " ops.sqrt(den + self.epsilon)))"),),
                  checks=("rmsprop.momentum", "rmsprop.centered_momentum"), hint="whole increment"),
    # and one more, which shows through a different check (and an exception's text)
    from_solution(STEM, "one slot shared by all variables",
                  (('self._velocities = self.add_optimizer_variables(var_list, "velocity")',
                    'self._velocities = [self.add_variable_from_reference(var_list[0], "velocity")]'
                    ' * len(var_list)'),),
                  checks=("rmsprop.slots_per_variable", "rmsprop.trajectory"), hint="EACH variable"),
    from_file(STEM, "TensorFlow ops with one slot dictionary", "ch05_rmsprop_slot_dictionary.py"),
    # graded on every check: each must say delegation
    variant(STEM, "subclass", Kind.DELEGATION,
            "import keras\n\nclass RMSprop(keras.optimizers.RMSprop):\n    pass\n"),
    variant(STEM, "fused op", Kind.DELEGATION,
            "import keras\nimport tensorflow as tf\n\n"
            "class RMSprop(keras.optimizers.Optimizer):\n"
            "    def update_step(self, g, var, lr):\n"
            "        tf.raw_ops.ResourceApplyRMSProp(var=var.handle, ms=None, mom=None, lr=lr,\n"
            "                                        rho=0.9, momentum=0.0, epsilon=1e-7, grad=g)\n"),
)
