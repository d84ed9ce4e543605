"""A correct chapter-1 submission written differently from the reference solution.

Raw TensorFlow, statistics from running float64 sums of x and x^2 (not the solution's pairwise
merge), weights created lazily with other names, min-max through a precomputed scale and offset.
It must score full marks.
"""

import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="alt")
class Standardization(keras.layers.Layer):
    def __init__(self, axis=-1, invert=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.invert = invert

    def _kept(self, ndim):
        if self.axis is None:
            return []
        axes = [self.axis] if isinstance(self.axis, int) else list(self.axis)
        return sorted(a % ndim for a in axes)

    def build(self, input_shape):
        self.ndim = len(input_shape)
        kept = self._kept(self.ndim)
        shape = [input_shape[a] for a in kept]
        self.mu = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="mu")
        self.sigma2 = self.add_weight(shape=shape, initializer="ones", trainable=False, name="s2")

    def adapt(self, data):
        if isinstance(data, (np.ndarray, tf.Tensor)):
            data = [data]
        total = total_sq = count = 0.0
        for batch in data:
            if isinstance(batch, tuple):
                batch = batch[0]
            batch = tf.cast(batch, tf.float64)
            if not self.built:
                self.build(batch.shape)
            kept = self._kept(len(batch.shape))
            other = [d for d in range(len(batch.shape)) if d not in kept]
            total += tf.reduce_sum(batch, axis=other)
            total_sq += tf.reduce_sum(tf.square(batch), axis=other)
            count += float(np.prod([batch.shape[d] for d in other]))
        mean = total / count
        self.mu.assign(tf.cast(mean, tf.float32))
        self.sigma2.assign(tf.cast(tf.maximum(total_sq / count - tf.square(mean), 0.0), tf.float32))

    def call(self, x):
        x = tf.cast(x, self.compute_dtype)
        kept = self._kept(self.ndim)
        shape = [self.mu.shape[kept.index(d)] if d in kept else 1 for d in range(self.ndim)]
        mu = tf.reshape(tf.cast(self.mu, x.dtype), shape)
        sd = tf.reshape(tf.sqrt(tf.cast(self.sigma2, x.dtype)), shape)
        sd = tf.where(sd < 1e-7, tf.constant(1e-7, x.dtype), sd)
        return mu + x * sd if self.invert else (x - mu) * (1.0 / sd)

    def get_config(self):
        return dict(super().get_config(), axis=self.axis, invert=self.invert)


@keras.saving.register_keras_serializable(package="alt")
class MinMaxScaling(keras.layers.Layer):
    def __init__(self, feature_range=(0.0, 1.0), invert=False, **kwargs):
        super().__init__(**kwargs)
        self.feature_range = list(feature_range)
        self.invert = invert

    def build(self, input_shape):
        self.lows = self.add_weight(shape=(input_shape[-1],), initializer="zeros", trainable=False)
        self.highs = self.add_weight(shape=(input_shape[-1],), initializer="ones", trainable=False)

    def adapt(self, data):
        if isinstance(data, (np.ndarray, tf.Tensor)):
            data = [data]
        lows, highs = [], []
        for batch in data:
            batch = tf.cast(batch[0] if isinstance(batch, tuple) else batch, tf.float32)
            if not self.built:
                self.build(batch.shape)
            lows.append(tf.reduce_min(batch, axis=0))
            highs.append(tf.reduce_max(batch, axis=0))
        self.lows.assign(tf.reduce_min(tf.stack(lows), axis=0))
        self.highs.assign(tf.reduce_max(tf.stack(highs), axis=0))

    def call(self, x):
        x = tf.cast(x, tf.float32)
        lo, hi = self.feature_range
        # inside call() Keras reads variables in the compute dtype (float16 under mixed_float16)
        lows, highs = tf.cast(self.lows, tf.float32), tf.cast(self.highs, tf.float32)
        width = highs - lows
        scale = (hi - lo) / tf.where(width > 0, width, tf.ones_like(width))
        offset = lo - lows * scale
        y = (x - offset) / scale if self.invert else x * scale + offset
        return tf.cast(y, self.compute_dtype)

    def get_config(self):
        return dict(super().get_config(), feature_range=self.feature_range, invert=self.invert)
