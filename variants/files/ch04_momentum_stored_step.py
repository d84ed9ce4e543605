"""A correct chapter-4 submission written differently from the reference solution.

MomentumSGD stores the step still to be taken (u = -v) instead of the velocity; EMAMomentum keeps
the undamped sum and scales it by (1 - beta) when stepping. It must score full marks.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="another")
class MomentumSGD(keras.optimizers.Optimizer):
    """Stores u = -v, the step still to be taken: u = mu*u + lr*g; w -= u."""

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum, self.nesterov = float(momentum), nesterov

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.steps = [self.add_variable_from_reference(v, "step") for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        u = self.steps[self._get_variable_index(variable)]
        scaled = ops.multiply(ops.cast(gradient, variable.dtype),
                              ops.cast(learning_rate, variable.dtype))
        self.assign(u, ops.add(ops.multiply(u, ops.cast(self.momentum, variable.dtype)), scaled))
        if self.nesterov:
            self.assign_sub(variable, ops.add(ops.multiply(u, ops.cast(self.momentum, variable.dtype)),
                                              scaled))
        else:
            self.assign_sub(variable, u)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


@keras.saving.register_keras_serializable(package="another")
class EMAMomentum(keras.optimizers.Optimizer):
    """Keeps the undamped sum s = beta*s + g; the average is v = (1 - beta)*s."""

    def __init__(self, learning_rate=0.01, beta=0.9, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta = beta

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.sums = [self.add_variable_from_reference(v, "sum") for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        s = self.sums[self._get_variable_index(variable)]
        beta = ops.cast(self.beta, variable.dtype)
        self.assign(s, beta * s + ops.cast(gradient, variable.dtype))
        self.assign_sub(variable, ops.cast(learning_rate, variable.dtype) * (1 - beta) * s)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}
