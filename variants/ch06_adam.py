"""Chapter 6's variants: the known mistakes of Adam, AdamW and AdamL2 (the grader's contract's,
and more), correct ones written differently (two small edits of the solution and a whole file),
and three ways of leaning on Keras's Adam."""

from __future__ import annotations

from variants import Kind, from_file, from_solution, variant

STEM = "ch06_adam"

ALPHA = "alpha = lr * ops.sqrt(1 - ops.power(beta_2, t)) / (1 - ops.power(beta_1, t))"
ADAMW_TO_BASE = "            weight_decay=weight_decay,\n            **kwargs,\n        )\n"
STEP = "self.assign_sub(variable, alpha * m / (ops.sqrt(v) + self.epsilon))"


def hand_decay(body: str, then_adam: bool = True) -> tuple[tuple[str, str], ...]:
    """AdamW with its decay written in update_step (not handed to the base class), ``body``
    being that decay; Adam's step follows unless ``body`` takes it itself."""
    step = "\n        super().update_step(gradient, variable, learning_rate)" if then_adam else ""
    return ((ADAMW_TO_BASE,
             "            **kwargs,\n        )\n        self.decay = weight_decay\n\n"
             "    def update_step(self, gradient, variable, learning_rate):\n"
             "        lr = ops.cast(learning_rate, variable.dtype)\n"
             "        wd = ops.cast(self.decay, variable.dtype)\n"
             f"        {body}{step}\n\n"
             "    def get_config(self):\n"
             "        return {**super().get_config(), \"weight_decay\": self.decay}\n"),)


VARIANTS = (
    from_solution(STEM, "no bias correction", ((ALPHA, "alpha = lr"),),
                  checks=("adam.single_step", "adam.trajectory"), hint="bias"),
    from_solution(STEM, "textbook epsilon",
                  ((STEP, "self.assign_sub(variable, lr * (m / (1 - ops.power(beta_1, t)))"
                          " / (ops.sqrt(v / (1 - ops.power(beta_2, t))) + self.epsilon))"),),
                  checks=("adam.single_step", "adam.trajectory"), hint="epsilon"),
    from_solution(STEM, "t starting at 0", (("t = ops.cast(self.iterations + 1, variable.dtype)",
                                             "t = ops.cast(self.iterations, variable.dtype)"),),
                  checks=("adam.single_step", "adam.trajectory"), hint="iterations + 1"),
    from_solution(STEM, "one slot shared by all variables",
                  (('self._m, self._v = self.add_optimizer_variables(var_list, ["m", "v"])',
                    'self._m = [self.add_variable_from_reference(var_list[0], "m")] * len(var_list)\n'
                    '        self._v = [self.add_variable_from_reference(var_list[0], "v")] * len(var_list)'),),
                  checks=("adam.slots_per_variable", "adam.trajectory"), hint="EACH variable"),
    from_solution(STEM, "amsgrad on the bias-corrected second moment",
                  (("self.assign(v_max, ops.maximum(v_max, v))\n            v = v_max",
                    "self.assign(v_max, ops.maximum(v_max, v / (1 - ops.power(beta_2, t))))\n"
                    "            self.assign_sub(variable, lr / (1 - ops.power(beta_1, t)) * m"
                    " / (ops.sqrt(v_max) + self.epsilon))\n            return"),),
                  checks=("adam.amsgrad",), hint="RAW v"),
    from_solution(STEM, "AdamW decay not scaled by the rate",
                  hand_decay("self.assign_sub(variable, variable * wd)"),
                  checks=("adamw.trajectory", "adamw.schedule"), hint="lr * weight_decay"),
    from_solution(STEM, "AdamW decay after the Adam step",
                  hand_decay("super().update_step(gradient, variable, learning_rate)\n"
                             "        self.assign_sub(variable, variable * wd * lr)", then_adam=False),
                  checks=("adamw.trajectory",), hint="first"),
    from_solution(STEM, "AdamW decay through the gradient",
                  hand_decay("super().update_step(ops.cast(gradient, variable.dtype) + wd * variable,"
                             " variable, learning_rate)", then_adam=False),
                  checks=("adamw.trajectory",), hint="must not go through m and v"),
    from_solution(STEM, "AdamW decay of excluded variables",
                  hand_decay("self.assign_sub(variable, variable * wd * lr)"),
                  checks=("adamw.base_options",), hint="exclude_from_weight_decay"),
    from_solution(STEM, "base options dropped",
                  (("super().__init__(learning_rate=learning_rate, **kwargs)",
                    "super().__init__(learning_rate=learning_rate)"),),
                  checks=("adam.base_options",), hint="**kwargs"),
    from_solution(STEM, "duplicate lookups lost in a sparse gradient",
                  (("        g = ops.cast(gradient, variable.dtype)\n        t = ops.cast(",
                    "        if hasattr(gradient, \"indices\"):  # a scatter UPDATE: one slice per row wins\n"
                    "            gradient = ops.scatter_update(ops.zeros(variable.shape, variable.dtype),"
                    " ops.expand_dims(gradient.indices, -1), gradient.values)\n"
                    "        g = ops.cast(gradient, variable.dtype)\n        t = ops.cast("),),
                  checks=("adam.sparse_gradients",), hint="looked up twice"),
    from_solution(STEM, "AdamL2 with 2*l2*w",
                  (("g = g + ops.cast(self.l2, variable.dtype) * variable",
                    "g = g + 2 * ops.cast(self.l2, variable.dtype) * variable"),),
                  checks=("adaml2.trajectory",), hint="l2 * w"),
    from_solution(STEM, "AdamL2 decoupled",
                  (("g = g + ops.cast(self.l2, variable.dtype) * variable",
                    "self.assign_sub(variable, ops.cast(learning_rate, variable.dtype)"
                    " * ops.cast(self.l2, variable.dtype) * variable)"),),
                  checks=("adaml2.trajectory",), hint="COUPLED"),
    from_solution(STEM, "wrong default epsilon",
                  (("epsilon=1e-7,\n        amsgrad=False,\n        **kwargs,\n    ):\n        # TODO: call",
                    "epsilon=1e-8,\n        amsgrad=False,\n        **kwargs,\n    ):\n        # TODO: call"),),
                  checks=("adam.interface",)),
    from_solution(STEM, "AdamW decay written by hand, exclusions honoured",
                  hand_decay("if self._use_weight_decay(variable):\n"
                             "            self.assign_sub(variable, variable * wd * lr)"),
                  kind=Kind.CORRECT),
    from_solution(STEM, "sparse gradient made dense first",
                  (("        g = ops.cast(gradient, variable.dtype)\n        t = ops.cast(",
                    "        g = ops.cast(ops.convert_to_tensor(gradient), variable.dtype)\n"
                    "        t = ops.cast("),),
                  kind=Kind.CORRECT),
    from_file(STEM, "textbook formulas in raw TensorFlow", "ch06_adam_textbook_tf.py"),
    variant(STEM, "subclass", Kind.DELEGATION,
            "import keras\n\nclass Adam(keras.optimizers.Adam):\n    pass\n\n"
            "class AdamW(keras.optimizers.AdamW):\n    pass\n\nclass AdamL2(Adam):\n    pass\n",
            checks=("adam.single_step", "adam.trajectory")),
    variant(STEM, "import", Kind.DELEGATION,
            "from keras.optimizers import Adam, AdamW\n\nclass AdamL2(Adam):\n    pass\n",
            checks=("adam.single_step", "adam.trajectory")),
    # hides the name from a reading of the source: caught when the built-in is created at run time
    variant(STEM, "hidden wrapper", Kind.DELEGATION,
            "import keras\n_builtin = getattr(keras.optimizers, 'Ad' + 'am')\n\n"
            "class Adam(keras.optimizers.Optimizer):\n"
            "    def __init__(self, learning_rate=0.001, **kwargs):\n"
            "        super().__init__(learning_rate=learning_rate)\n"
            "        self._inner = _builtin(learning_rate=learning_rate, **kwargs)\n"
            "    def apply_gradients(self, grads_and_vars):\n"
            "        return self._inner.apply_gradients(grads_and_vars)\n\n"
            "AdamW = AdamL2 = Adam\n",
            checks=("adam.single_step", "adam.trajectory")),
)
