"""RMSprop written differently: TensorFlow ops, one slot dictionary, the average as an increment."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="alt")
class RMSprop(keras.optimizers.Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        wanted = ["ms"] + (["mg"] if self.centered else []) + (["mom"] if self.momentum > 0 else [])
        self._slots = {}
        for var in var_list:
            for name in wanted:
                self._slots[(self._var_key(var), name)] = self.add_variable_from_reference(var, name)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        g = tf.convert_to_tensor(gradient, dtype=dtype)  # an Embedding's IndexedSlices densified
        lr = tf.cast(learning_rate, dtype)
        one_minus_rho = 1.0 - tf.cast(self.rho, dtype)
        slot = lambda name: self._slots[(self._var_key(variable), name)]
        ms = slot("ms")
        self.assign_add(ms, (tf.square(g) - ms) * one_minus_rho)
        variance = tf.identity(ms)
        if self.centered:
            mg = slot("mg")
            self.assign_add(mg, (g - mg) * one_minus_rho)
            variance -= tf.square(mg)
        step = lr * g * tf.math.rsqrt(variance + self.epsilon)
        if self.momentum > 0:
            mom = slot("mom")
            self.assign(mom, step + self.momentum * mom)
            step = mom
        self.assign(variable, variable - step)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}
