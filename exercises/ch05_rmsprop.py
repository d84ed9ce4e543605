# This file is generated from solutions/ch05_rmsprop.py by `course release`: fill in the 4 parts
# that raise NotImplementedError, then run `course grade` to check your work.
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
        raise NotImplementedError("ch05_rmsprop.py: your code here")

    def build(self, var_list):
        """Create the slots: ``v`` for each variable; ``a`` if centered; ``mom`` if momentum > 0."""
        # TODO: return early if already built; call super().build(var_list); create the slots
        # with self.add_optimizer_variables(var_list, name). Create only the slots the options
        # need: each one is a full copy of the model's parameters.
        raise NotImplementedError("ch05_rmsprop.py: your code here")

    def update_step(self, gradient, variable, learning_rate):
        """One RMSprop step for one variable, with the formulas of the class docstring."""
        # TODO: cast lr and g to the variable's dtype; find this variable's slots with
        # self._get_variable_index(variable); write state only with self.assign / assign_sub
        # (they also handle an Embedding's sparse gradients). An Embedding's gradient is a
        # tf.IndexedSlices: combine it with ops.add / ops.multiply / ops.divide, not + * /.
        raise NotImplementedError("ch05_rmsprop.py: your code here")

    def get_config(self):
        """The base config plus this optimizer's hyperparameters (for ``from_config``)."""
        raise NotImplementedError("ch05_rmsprop.py: your code here")
