# This file is generated from solutions/ch02_batch_norm.py by `course release`: fill in the 4 parts
# that raise NotImplementedError, then run `course grade` to check your work.
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
        raise NotImplementedError("ch02_batch_norm.py: your code here")

    def build(self, input_shape):
        """Create gamma, beta, moving_mean and moving_variance, one value per channel."""
        # TODO: find the channel count (input_shape[axis], which must be known) and the axes to
        # reduce over; create the weights with self.add_weight. Give the four weights
        # autocast=False so that call() reads them in float32 under mixed precision.
        raise NotImplementedError("ch02_batch_norm.py: your code here")

    def call(self, inputs, training=None):
        """Normalize with the batch's statistics (and update the moving ones) or the moving ones."""
        # TODO: compute in (at least) float32; decide between batch and moving statistics with
        # `training and self.trainable`; update the moving averages with .assign(); reshape the
        # per-channel vectors to broadcast against the input; cast the result to
        # self.compute_dtype.
        raise NotImplementedError("ch02_batch_norm.py: your code here")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        """The base config plus the five hyperparameters."""
        raise NotImplementedError("ch02_batch_norm.py: your code here")
