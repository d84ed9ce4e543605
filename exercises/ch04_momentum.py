# This file is generated from solutions/ch04_momentum.py by `course release`: fill in the 8 parts
# that raise NotImplementedError, then run `course grade` to check your work.
"""Chapter 4 — momentum, in Keras's velocity form and in the source documents' averaging form.

Every backend: write it with ``keras.ops`` only (``ops.sqrt``, ``ops.sum``, ``ops.where``),
never ``tf.*``, so Keras runs it on TensorFlow, JAX and PyTorch alike (``course grade
--backend jax`` grades it there); a component that calls TensorFlow directly scores 0 on
the other backends.

Two optimizers, each a real ``keras.optimizers.Optimizer`` subclass. The grader checks
``MomentumSGD`` against ``keras.optimizers.SGD(momentum, nesterov)`` and ``EMAMomentum`` against
a reference of the documents' form; it refuses an implementation that subclasses, wraps or calls
a Keras built-in optimizer.

Symbols (per variable ``w`` with gradient ``g``, velocity ``v`` starting at zero):

    Keras's form (MomentumSGD), the rate inside the velocity:
        v = mu * v - lr * g
        w = w + v                          (classic)
        w = w + mu * v - lr * g            (Nesterov, with the NEW v)

    The documents' form (EMAMomentum), a running average of gradients:
        v = beta * v + (1 - beta) * g
        w = w - lr * v

With a constant rate the two give the same steps when ``lr_keras = lr * (1 - beta)`` and
``mu = beta``. With a schedule they differ: Keras's velocity carries the rates of past steps,
the average is multiplied by the rate of the current step only.
"""

import keras
from keras import ops


def _check_fraction(name, value):
    """A momentum coefficient must be a number in [0, 1]; say so clearly otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be a number between 0 and 1, got {value!r}")
    return float(value)


@keras.saving.register_keras_serializable(package="course")
class MomentumSGD(keras.optimizers.Optimizer):
    """SGD with momentum in Keras's velocity form.

    v = mu * v - lr * g
    w = w + v                     (nesterov=False)
    w = w + mu * v - lr * g       (nesterov=True: the new v, then one more gradient step)

    Args:
        learning_rate: a float or a ``keras.optimizers.schedules.LearningRateSchedule``.
        momentum: ``mu``, the fraction of the velocity kept from one step to the next.
        nesterov: take the look-ahead step ``mu * v - lr * g`` instead of ``v``.
        **kwargs: the base optimizer's keyword arguments (``name``, ``clipnorm``, ...).
    """

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=False, **kwargs):
        # TODO: call the base constructor first, then keep momentum (as a float, checked to be
        # in [0, 1]) and nesterov.
        raise NotImplementedError("ch04_momentum.py: your code here")

    def build(self, var_list):
        """One velocity slot per model variable, starting at zero."""
        # TODO: return early if already built; call super().build(var_list); create the slots
        # with self.add_optimizer_variables(var_list, "velocity").
        raise NotImplementedError("ch04_momentum.py: your code here")

    def update_step(self, gradient, variable, learning_rate):
        """One step for one variable, with the formulas of the class docstring."""
        # TODO: cast lr, g and mu to the variable's dtype; find this variable's velocity with
        # self._get_variable_index(variable); write with self.assign / assign_add only.
        raise NotImplementedError("ch04_momentum.py: your code here")

    def get_config(self):
        """The base config plus momentum and nesterov."""
        raise NotImplementedError("ch04_momentum.py: your code here")


@keras.saving.register_keras_serializable(package="course")
class EMAMomentum(keras.optimizers.Optimizer):
    """Momentum as the source documents write it: an exponential moving average of gradients.

    v = beta * v + (1 - beta) * g
    w = w - lr * v

    ``v`` averages roughly the last ``1 / (1 - beta)`` gradients (10 for beta = 0.9) and has the
    size of one gradient, so ``lr`` is the step size per unit gradient, as in plain SGD.

    Args:
        learning_rate: a float or a ``keras.optimizers.schedules.LearningRateSchedule``.
        beta: the averaging coefficient, in [0, 1].
        **kwargs: the base optimizer's keyword arguments (``name``, ``clipnorm``, ...).
    """

    def __init__(self, learning_rate=0.01, beta=0.9, **kwargs):
        raise NotImplementedError("ch04_momentum.py: your code here")

    def build(self, var_list):
        """One average slot per model variable, starting at zero."""
        raise NotImplementedError("ch04_momentum.py: your code here")

    def update_step(self, gradient, variable, learning_rate):
        """Update the average of gradients, then step against it at the current rate."""
        # TODO: v = beta * v + (1 - beta) * g, written with self.assign (or, equivalently,
        # self.assign_add(v, (g - v) * (1 - beta))); then w -= lr * v.
        raise NotImplementedError("ch04_momentum.py: your code here")

    def get_config(self):
        """The base config plus beta."""
        raise NotImplementedError("ch04_momentum.py: your code here")
