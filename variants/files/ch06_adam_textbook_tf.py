"""A correct chapter-6 submission written differently from the reference solution.

Raw TensorFlow ops instead of keras.ops, slots created one by one, the textbook bias-corrected
form with the equivalent epsilon (eps' = eps / sqrt(1 - beta_2^t)), and AdamW's decay left to the
base class's weight_decay (which Keras applies before update_step, scaled by the rate).
It must score full marks: the grader checks behaviour, not the reference's wording.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="alt")
class Adam(keras.optimizers.Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon, self.amsgrad = beta_1, beta_2, epsilon, amsgrad

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.first = [self.add_variable_from_reference(v, "first") for v in var_list]
        self.second = [self.add_variable_from_reference(v, "second") for v in var_list]
        self.peak = [self.add_variable_from_reference(v, "peak") for v in var_list] if self.amsgrad else []

    def _gradient(self, gradient, variable):
        return tf.cast(tf.convert_to_tensor(gradient), variable.dtype)

    def update_step(self, gradient, variable, learning_rate):
        g = self._gradient(gradient, variable)
        lr = tf.cast(learning_rate, variable.dtype)
        t = tf.cast(self.iterations, variable.dtype) + 1.0
        b1 = tf.cast(self.beta_1, variable.dtype)
        b2 = tf.cast(self.beta_2, variable.dtype)
        k = self._get_variable_index(variable)
        m, v = self.first[k], self.second[k]
        self.assign(m, b1 * m + (1.0 - b1) * g)
        self.assign(v, b2 * v + (1.0 - b2) * tf.square(g))
        second = v
        if self.amsgrad:
            self.assign(self.peak[k], tf.maximum(self.peak[k], v))
            second = self.peak[k]
        m_hat = m / (1.0 - tf.pow(b1, t))
        v_hat = second / (1.0 - tf.pow(b2, t))
        eps = self.epsilon / tf.sqrt(1.0 - tf.pow(b2, t))
        self.assign_sub(variable, lr * m_hat / (tf.sqrt(v_hat) + eps))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


@keras.saving.register_keras_serializable(package="alt")
class AdamW(Adam):
    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999,
                 epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, amsgrad=amsgrad, weight_decay=weight_decay, **kwargs)


@keras.saving.register_keras_serializable(package="alt")
class AdamL2(Adam):
    def __init__(self, learning_rate=0.001, l2=0.01, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2,
                         epsilon=epsilon, amsgrad=amsgrad, **kwargs)
        self.l2 = l2

    def _gradient(self, gradient, variable):
        return super()._gradient(gradient, variable) + tf.cast(self.l2, variable.dtype) * variable

    def get_config(self):
        return {**super().get_config(), "l2": self.l2}
