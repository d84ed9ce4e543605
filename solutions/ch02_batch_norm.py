"""Chapter 2 — batch normalization as a Keras layer.

Every backend: write it with ``keras.ops`` only (``ops.sqrt``, ``ops.sum``, ``ops.where``),
never ``tf.*``, so Keras runs it on TensorFlow, JAX and PyTorch alike (``course grade
--backend jax`` grades it there); a component that calls TensorFlow directly scores 0 on
the other backends.

One layer, a real ``keras.layers.Layer`` subclass, graded against
``keras.layers.BatchNormalization``; the grader refuses an implementation that subclasses, wraps
or calls it (or ``keras.layers.Normalization``).

Symbols used in the docstrings and in the code, per channel (the index along ``axis``), with the
statistics taken over every other axis of the batch (``N`` values per channel):

    mu     = sum(x) / N                        (batch mean)
    var    = sum((x - mu)^2) / N               (batch variance, biased: divide by N)
    inv    = gamma / sqrt(var + epsilon)       (epsilon INSIDE the square root)
    y      = x * inv + (beta - mu * inv)       (= gamma * (x - mu) / sqrt(var + epsilon) + beta)

    training (training=True and the layer is trainable): use the batch's mu and var, and update
        moving_mean     = moving_mean * momentum     + mu  * (1 - momentum)
        moving_variance = moving_variance * momentum + var * (1 - momentum)
    inference (training False or None, or trainable=False): use moving_mean and moving_variance.

``momentum`` weights the OLD value (Keras's 0.99 is PyTorch's ``momentum=0.1`` written the other
way round). Under ``mixed_float16`` the statistics and the normalization are computed in float32
(float16 squares overflow above 256) and only the output is cast back to float16.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="course")
class BatchNormalization(keras.layers.Layer):
    """Batch normalization in Keras's form (formulas in the module docstring).

    Args:
        axis: the channel axis, which keeps its own statistics (``-1``: channels last; ``1``
            for channels-first images).
        momentum: the weight of the old value in the moving averages.
        epsilon: added to the variance inside the square root.
        center: learn an offset ``beta`` (otherwise ``beta = 0`` and there is no such weight).
        scale: learn a factor ``gamma`` (otherwise ``gamma = 1`` and there is no such weight).
        **kwargs: the base layer's keyword arguments (``name``, ``dtype``, ``trainable``...).

    Weights (the grader reads them by these names): ``gamma`` and ``beta`` (trainable, or None
    when ``scale``/``center`` is off), ``moving_mean`` and ``moving_variance`` (not trainable).
    """

    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, **kwargs):
        # TODO: call the base constructor first (it takes name, dtype, trainable...), then keep
        # the hyperparameters; set the four weights to None until build() creates them.
        # BEGIN SOLUTION
        super().__init__(**kwargs)
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None
        # END SOLUTION

    def build(self, input_shape):
        """Create gamma, beta, moving_mean and moving_variance, one value per channel."""
        # TODO: find the channel count (input_shape[axis], which must be known) and the axes to
        # reduce over; create the weights with self.add_weight. Give the four weights
        # autocast=False so that call() reads them in float32 under mixed precision.
        # BEGIN SOLUTION
        ndim = len(input_shape)
        if not -ndim <= self.axis < ndim:
            raise ValueError(f"axis {self.axis} is out of range for inputs of rank {ndim}")
        channel_axis = self.axis % ndim
        channels = input_shape[channel_axis]
        if channels is None:
            raise ValueError(f"the channel axis {self.axis} must have a known size; got inputs "
                             f"of shape {tuple(input_shape)}")
        self._reduce = [d for d in range(ndim) if d != channel_axis]
        self._broadcast = [channels if d == channel_axis else 1 for d in range(ndim)]
        shape = (channels,)
        if self.scale:
            self.gamma = self.add_weight(name="gamma", shape=shape, initializer="ones",
                                         autocast=False)
        if self.center:
            self.beta = self.add_weight(name="beta", shape=shape, initializer="zeros",
                                        autocast=False)
        self.moving_mean = self.add_weight(name="moving_mean", shape=shape, initializer="zeros",
                                           trainable=False, autocast=False)
        self.moving_variance = self.add_weight(name="moving_variance", shape=shape,
                                               initializer="ones", trainable=False, autocast=False)
        # END SOLUTION

    def call(self, inputs, training=None):
        """Normalize with the batch's statistics (and update the moving ones) or the moving ones."""
        # TODO: compute in (at least) float32; decide between batch and moving statistics with
        # `training and self.trainable`; update the moving averages with .assign(); reshape the
        # per-channel vectors to broadcast against the input; cast the result to
        # self.compute_dtype.
        # BEGIN SOLUTION
        # float16 (mixed precision) is promoted to float32, float64 stays float64
        x = ops.convert_to_tensor(inputs)
        x = ops.cast(x, keras.backend.result_type(x.dtype, "float32"))
        if training and self.trainable:
            mean = ops.mean(x, axis=self._reduce)
            variance = ops.mean(ops.square(x - ops.reshape(mean, self._broadcast)), axis=self._reduce)
            m = self.momentum
            self.moving_mean.assign(
                self.moving_mean * m + ops.cast(mean, self.moving_mean.dtype) * (1.0 - m))
            self.moving_variance.assign(
                self.moving_variance * m + ops.cast(variance, self.moving_variance.dtype) * (1.0 - m))
        else:
            mean = ops.cast(self.moving_mean, x.dtype)
            variance = ops.cast(self.moving_variance, x.dtype)
        inv = ops.rsqrt(variance + self.epsilon)
        if self.scale:
            inv = inv * ops.cast(self.gamma, x.dtype)
        shift = -mean * inv
        if self.center:
            shift = shift + ops.cast(self.beta, x.dtype)
        y = x * ops.reshape(inv, self._broadcast) + ops.reshape(shift, self._broadcast)
        return ops.cast(y, self.compute_dtype)
        # END SOLUTION

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        """The base config plus the five hyperparameters."""
        # BEGIN SOLUTION
        config = super().get_config()
        config.update({"axis": self.axis, "momentum": self.momentum, "epsilon": self.epsilon,
                       "center": self.center, "scale": self.scale})
        return config
        # END SOLUTION
