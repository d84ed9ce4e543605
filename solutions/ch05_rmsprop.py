"""Chapter 5 — RMSprop: a step size for every parameter, from its own squared gradients.

Every backend: write it with ``keras.ops`` only (``ops.sqrt``, ``ops.sum``, ``ops.where``),
never ``tf.*``, so Keras runs it on TensorFlow, JAX and PyTorch alike (``course grade
--backend jax`` grades it there); a component that calls TensorFlow directly scores 0 on
the other backends.

One optimizer, a real ``keras.optimizers.Optimizer`` subclass, graded against
``keras.optimizers.RMSprop`` with every combination of its options. The grader refuses an
implementation that subclasses, wraps or calls a Keras built-in optimizer, so only the base class
``keras.optimizers.Optimizer`` may be used.

Symbols used in the docstrings and in the code (per variable ``w`` with gradient ``g``):

    v    = rho * v + (1 - rho) * g^2        (running mean of squared gradients, "velocity")
    a    = rho * a + (1 - rho) * g          (running mean of gradients; only when centered)
    den  = v - a^2  if centered  else  v    (a variance estimate, or the raw second moment)
    inc  = lr * g / sqrt(den + epsilon)     (epsilon INSIDE the square root)
    mom  = momentum * mom + inc             (only when momentum > 0)
    w    = w - mom   if momentum > 0  else  w - inc

Keras's form differs from the textbook ``lr * g / (sqrt(v) + epsilon)`` in where epsilon sits.
Inside the root it takes over once ``v`` is as small as ``epsilon``; outside, only once ``sqrt(v)``
is — so the default 1e-7 inside acts roughly like 3e-4 outside. There is no bias correction: ``v``
starts at 0, so the first step is about ``lr / sqrt(1 - rho)`` long (3.2 * lr at rho = 0.9).

Sparse gradients. An ``Embedding`` layer's gradient arrives as ``tf.IndexedSlices``: one slice
per lookup, so a row looked up twice in a batch has two slices, ``g1`` and ``g2``. The true
gradient of that row is their sum. Keras's ops work slice by slice, so Keras's RMSprop squares each
slice and adds the squares (``g1^2 + g2^2``), where the dense gradient would give
``(g1 + g2)^2``. The grader accepts both readings: keras.ops on the slices as they come (Keras's
numbers), or the gradient made dense first with ``ops.convert_to_tensor(gradient)`` (the same
numbers as training on a dense gradient), because each is a defensible optimizer and the
difference is a property of the framework, not of the algorithm. What it does not accept is a
row's slices counting once: write the state with ``self.assign``/``assign_add``/``assign_sub``,
which add up the slices of a row, never with a scatter *update*, which keeps one of them.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="course")
class RMSprop(keras.optimizers.Optimizer):
    """RMSprop in Keras's form, with optional centering and momentum.

    v = rho * v + (1 - rho) * g^2
    a = rho * a + (1 - rho) * g                    (only with centered)
    den = v - a^2 (centered) or v
    inc = lr * g / sqrt(den + epsilon)
    mom = momentum * mom + inc; w = w - mom        (momentum > 0)
    w = w - inc                                    (momentum == 0)

    Args:
        learning_rate: a float or a ``keras.optimizers.schedules.LearningRateSchedule``.
        rho: how much of the old ``v`` (and ``a``) is kept each step.
        momentum: if above 0, the increments (not the gradients) are accumulated with this decay.
        epsilon: added to ``den`` under the square root.
        centered: divide by the root of the estimated gradient VARIANCE ``v - a^2`` rather than of
            the raw second moment ``v``.
        **kwargs: the base optimizer's keyword arguments (``name``, ``clipnorm``, ...).
    """

    def __init__(
        self,
        learning_rate=0.001,
        rho=0.9,
        momentum=0.0,
        epsilon=1e-7,
        centered=False,
        **kwargs,
    ):
        # TODO: call the base constructor first (it validates the learning rate and rejects
        # unknown keyword arguments), then keep the four hyperparameters as attributes.
        # BEGIN SOLUTION
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho = rho
        self.momentum = momentum
        self.epsilon = epsilon
        self.centered = centered
        # END SOLUTION

    def build(self, var_list):
        """Create the slots: ``v`` for each variable; ``a`` if centered; ``mom`` if momentum > 0."""
        # TODO: return early if already built; call super().build(var_list); create the slots
        # with self.add_optimizer_variables(var_list, name). Create only the slots the options
        # need: each one is a full copy of the model's parameters.
        # BEGIN SOLUTION
        if self.built:
            return
        super().build(var_list)
        self._velocities = self.add_optimizer_variables(var_list, "velocity")
        self._average_gradients = (
            self.add_optimizer_variables(var_list, "average_gradient") if self.centered else []
        )
        self._momentums = (
            self.add_optimizer_variables(var_list, "momentum") if self.momentum > 0 else []
        )
        # END SOLUTION

    def update_step(self, gradient, variable, learning_rate):
        """One RMSprop step for one variable, with the formulas of the class docstring."""
        # TODO: cast lr and g to the variable's dtype; find this variable's slots with
        # self._get_variable_index(variable); write state only with self.assign / assign_sub
        # (they also handle an Embedding's sparse gradients). An Embedding's gradient is a
        # tf.IndexedSlices: combine it with ops.add / ops.multiply / ops.divide, not + * /.
        # BEGIN SOLUTION
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        # rho and 1 - rho stay Python floats (rounded once, to the variable's dtype, when they
        # meet a tensor), as in Keras: casting rho first would make 1 - rho a float32
        # subtraction, which differs in the last bits and drifts apart over long training runs
        rho = self.rho
        i = self._get_variable_index(variable)

        # wherever g appears, keras.ops functions rather than * and +: an Embedding's gradient
        # arrives as a tf.IndexedSlices, which they accept and Python's operators do not
        v = self._velocities[i]
        self.assign(v, ops.add(rho * v, ops.multiply(1 - rho, ops.square(g))))
        den = v
        if self.centered:
            a = self._average_gradients[i]
            self.assign(a, ops.add(rho * a, ops.multiply(1 - rho, g)))
            den = v - ops.square(a)
        # epsilon goes under the root: Keras's placement, not the textbook's sqrt(v) + epsilon
        increment = ops.divide(ops.multiply(lr, g), ops.sqrt(den + self.epsilon))
        if self.momentum > 0:
            mom = self._momentums[i]
            # the momentum accumulates whole increments, so the rate and the 1/sqrt(den)
            # scaling in force at each step stay baked into what was accumulated then
            self.assign(mom, ops.add(self.momentum * mom, increment))
            self.assign_sub(variable, mom)
        else:
            self.assign_sub(variable, increment)
        # END SOLUTION

    def get_config(self):
        """The base config plus this optimizer's hyperparameters (for ``from_config``)."""
        # BEGIN SOLUTION
        config = super().get_config()
        config.update(
            {
                "rho": self.rho,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "centered": self.centered,
            }
        )
        return config
        # END SOLUTION
