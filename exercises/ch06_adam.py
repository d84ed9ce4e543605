# This file is generated from solutions/ch06_adam.py by `course release`: fill in the 10 parts
# that raise NotImplementedError, then run `course grade` to check your work.
"""Chapter 6 — Adam, AdamW and Adam with L2 (the coupled form).

Three optimizers, each a real ``keras.optimizers.Optimizer`` subclass. They are graded against
``keras.optimizers.Adam`` and ``keras.optimizers.AdamW``; the grader refuses an implementation
that subclasses, wraps or calls a Keras built-in optimizer, so only the base class
``keras.optimizers.Optimizer`` may be used.

Symbols used in the docstrings and in the code (per variable ``w`` with gradient ``g``):

    t      = iterations + 1                        (the step being taken, starting at 1)
    m      = m + (g - m) * (1 - beta_1)            (first moment,  same as beta_1*m + (1-beta_1)*g)
    v      = v + (g*g - v) * (1 - beta_2)          (second moment, same as beta_2*v + (1-beta_2)*g^2)
    alpha  = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    w      = w - alpha * m / (sqrt(v) + epsilon)

The last two lines are Keras's form: the bias corrections are folded into the rate, so epsilon is
the paper's "epsilon hat". The textbook form ``lr * m_hat / (sqrt(v_hat) + eps)`` gives the same
numbers only with ``eps = epsilon / sqrt(1 - beta_2^t)``; with a large epsilon the two differ a lot.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="course")
class Adam(keras.optimizers.Optimizer):
    """Adam in Keras's form.

    t = iterations + 1
    m = m + (g - m) * (1 - beta_1)
    v = v + (g^2 - v) * (1 - beta_2)
    v_max = max(v_max, v)                 (only with amsgrad; then v_max replaces v below)
    alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)
    w = w - alpha * m / (sqrt(v) + epsilon)

    Args:
        learning_rate: a float or a ``keras.optimizers.schedules.LearningRateSchedule``.
        beta_1: decay of the first moment (the momentum average of gradients).
        beta_2: decay of the second moment (the average of squared gradients).
        epsilon: added to ``sqrt(v)``, Keras's "epsilon hat".
        amsgrad: keep the running maximum of ``v`` and divide by it instead.
        **kwargs: the base optimizer's keyword arguments (``name``, ``clipnorm``, ...).
    """

    def __init__(
        self,
        learning_rate=0.001,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        **kwargs,
    ):
        # TODO: call the base constructor first (it validates the learning rate and the
        # keyword arguments), then keep the hyperparameters as attributes.
        raise NotImplementedError("ch06_adam.py: your code here")

    def build(self, var_list):
        """Create the slot variables: one ``m`` and one ``v`` per model variable (and ``v_max``)."""
        # TODO: return early if already built; call super().build(var_list); then create one
        # slot per variable with self.add_optimizer_variables(var_list, [...]).
        raise NotImplementedError("ch06_adam.py: your code here")

    def update_step(self, gradient, variable, learning_rate):
        """One Adam step for one variable, with the formulas of the class docstring."""
        # TODO: cast lr and g to the variable's dtype; find this variable's slots with
        # self._get_variable_index(variable); write state only with self.assign / assign_add /
        # assign_sub (they also handle an Embedding's sparse gradients).
        raise NotImplementedError("ch06_adam.py: your code here")

    def get_config(self):
        """The base config plus this optimizer's hyperparameters (for ``from_config``)."""
        raise NotImplementedError("ch06_adam.py: your code here")


@keras.saving.register_keras_serializable(package="course")
class AdamW(Adam):
    """Adam with decoupled weight decay, in Keras's (and PyTorch's) form.

    w = w - lr * weight_decay * w         (first, scaled by the current rate)
    then the Adam step above, on the unchanged gradient g.

    The decay never enters m or v, so every weight shrinks by the same fraction whatever its
    gradient history: that is what "decoupled" means.
    """

    def __init__(
        self,
        learning_rate=0.001,
        weight_decay=0.004,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        **kwargs,
    ):
        # TODO: keep the decay yourself (not in the base class's weight_decay, which would
        # apply it a second time) and pass the rest on to Adam.
        raise NotImplementedError("ch06_adam.py: your code here")

    def update_step(self, gradient, variable, learning_rate):
        """Shrink the variable by ``lr * weight_decay``, then take the Adam step."""
        raise NotImplementedError("ch06_adam.py: your code here")

    def get_config(self):
        raise NotImplementedError("ch06_adam.py: your code here")


@keras.saving.register_keras_serializable(package="course")
class AdamL2(Adam):
    """Adam on an L2-penalised loss: the coupled form that AdamW replaces.

    g' = g + l2 * w                       (the gradient of loss + l2/2 * ||w||^2)
    then the Adam step above on g'.

    The penalty goes through m and v, so the adaptive denominator rescales it: weights with a
    large gradient history are barely decayed. Compare with AdamW in the chapter.
    """

    def __init__(
        self,
        learning_rate=0.001,
        l2=0.01,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-7,
        amsgrad=False,
        **kwargs,
    ):
        raise NotImplementedError("ch06_adam.py: your code here")

    def update_step(self, gradient, variable, learning_rate):
        """Add ``l2 * w`` to the gradient, then take the Adam step."""
        raise NotImplementedError("ch06_adam.py: your code here")

    def get_config(self):
        raise NotImplementedError("ch06_adam.py: your code here")
