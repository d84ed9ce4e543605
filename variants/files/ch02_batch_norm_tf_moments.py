"""A correct chapter-2 submission written differently from the reference solution.

Raw TensorFlow, tf.nn.moments, the textbook form gamma * (x - mu) / sqrt(var + eps) + beta, the
moving averages written as moving -= (1 - momentum) * (moving - batch), and the weights created
in another order. It must score full marks.
"""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="alt")
class BatchNormalization(keras.layers.Layer):
    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.momentum, self.epsilon = axis, momentum, epsilon
        self.center, self.scale = center, scale
        self.gamma = self.beta = None

    def build(self, input_shape):
        rank = len(input_shape)
        self.channel = self.axis % rank
        n = input_shape[self.channel]
        self.moving_variance = self.add_weight(shape=(n,), initializer="ones", trainable=False,
                                               autocast=False, name="moving_variance")
        self.moving_mean = self.add_weight(shape=(n,), initializer="zeros", trainable=False,
                                           autocast=False, name="moving_mean")
        if self.center:
            self.beta = self.add_weight(shape=(n,), initializer="zeros", autocast=False, name="beta")
        if self.scale:
            self.gamma = self.add_weight(shape=(n,), initializer="ones", autocast=False, name="gamma")

    def call(self, x, training=False):
        x = tf.cast(x, tf.float32)
        rank = len(x.shape)
        axes = [d for d in range(rank) if d != self.channel]
        shape = [-1 if d == self.channel else 1 for d in range(rank)]
        if training and self.trainable:
            mu, var = tf.nn.moments(x, axes=axes)
            self.moving_mean.assign_sub((1.0 - self.momentum) * (self.moving_mean - mu))
            self.moving_variance.assign_sub((1.0 - self.momentum) * (self.moving_variance - var))
        else:
            mu, var = tf.convert_to_tensor(self.moving_mean), tf.convert_to_tensor(self.moving_variance)
        y = (x - tf.reshape(mu, shape)) / tf.sqrt(tf.reshape(var, shape) + self.epsilon)
        if self.scale:
            y = y * tf.reshape(self.gamma, shape)
        if self.center:
            y = y + tf.reshape(self.beta, shape)
        return tf.cast(y, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale}
