# This file is generated from solutions/ch01_feature_scaling.py by `course release`: fill in the 10 parts
# that raise NotImplementedError, then run `course grade` to check your work.
"""Chapter 1 — feature scaling: standardization and min-max scaling as Keras layers.

Every backend: write it with ``keras.ops`` only (``ops.sqrt``, ``ops.sum``, ``ops.where``),
never ``tf.*``, so Keras runs it on TensorFlow, JAX and PyTorch alike (``course grade
--backend jax`` grades it there); a component that calls TensorFlow directly scores 0 on
the other backends.

Two preprocessing layers, each a real ``keras.layers.Layer`` subclass that learns its statistics
with ``adapt(data)`` and keeps them as non-trainable weights (so they are saved with the model and
no optimizer ever changes them). They are graded against ``keras.layers.Normalization`` and
scikit-learn's ``MinMaxScaler``; the grader refuses an implementation that subclasses, wraps or
calls ``keras.layers.Normalization`` (or ``BatchNormalization``).

Symbols used in the docstrings and in the code (per feature, over the ``n`` values seen by
``adapt``):

    mean = sum(x) / n
    var  = sum((x - mean)^2) / n               (the biased variance: divide by n, not n - 1)
    std  = max(sqrt(var), 1e-7)                (floored, so a constant feature gives 0, not NaN)
    standardize:  z = (x - mean) / std         invert: x = mean + z * std

    lo, hi = feature_range
    range  = x_max - x_min, or 1 where the feature is constant
    min-max:      y = lo + (x - x_min) * (hi - lo) / range
    invert:       x = x_min + (y - lo) * range / (hi - lo)

``adapt`` accepts a NumPy array, a tensor, or an iterable of batches such as a batched
``tf.data.Dataset`` (of ``x`` or of ``(x, y)`` pairs). Batches are merged exactly: for two parts
with counts ``n_a, n_b``, means ``m_a, m_b`` and sums of squared deviations ``s_a, s_b``,

    n = n_a + n_b,   d = m_b - m_a
    m = m_a + d * n_b / n
    s = s_a + s_b + d^2 * n_a * n_b / n        (var = s / n at the end)

An average of the batch means is wrong as soon as the batches differ in size, and an average of
the batch variances is wrong whenever the batch means differ (it forgets the spread between them).
"""

import keras
import numpy as np
from keras import ops


def _batches(data):
    """Yield the batches of ``data`` as float64 NumPy arrays (``x`` only, from ``(x, y)`` pairs)."""
    if isinstance(data, (str, bytes, dict)):
        raise TypeError(f"adapt() expects an array, a tensor or an iterable of batches, "
                        f"not {type(data).__name__}")
    if isinstance(data, np.ndarray) or ops.is_tensor(data):
        yield np.asarray(data, dtype=np.float64)
        return
    try:
        iterator = iter(data)
    except TypeError:
        raise TypeError(f"adapt() expects an array, a tensor or an iterable of batches, "
                        f"not {type(data).__name__}") from None
    for batch in iterator:
        if isinstance(batch, tuple):
            batch = batch[0]  # (x, y) or (x, y, sample_weight): the features are x
        yield np.asarray(batch, dtype=np.float64)


@keras.saving.register_keras_serializable(package="course")
class Standardization(keras.layers.Layer):
    """Standardize features with statistics learned by ``adapt``.

    z = (x - mean) / max(sqrt(var), 1e-7)          (invert=True: x = mean + z * max(sqrt(var), 1e-7))

    Args:
        axis: the axis (or tuple of axes) that keeps a separate mean and variance per index;
            the statistics are taken over all the other axes. ``-1`` (the default) means one
            mean and variance per feature of the last axis; ``None`` means one for everything.
        invert: apply the inverse transformation (turn standardized values back into data).
        **kwargs: the base layer's keyword arguments (``name``, ``dtype``, ...).

    After ``adapt`` the statistics are the non-trainable weights ``mean`` and ``variance``, with
    the shape of the kept axes.
    """

    def __init__(self, axis=-1, invert=False, **kwargs):
        # TODO: call the base constructor first, then keep axis (as a tuple of ints: () for
        # None, (a,) for an int a) and invert.
        raise NotImplementedError("ch01_feature_scaling.py: your code here")

    def build(self, input_shape):
        """Create the ``mean`` and ``variance`` weights for the kept axes of ``input_shape``."""
        # TODO: resolve negative axes; check every kept axis has a known size; remember which
        # axes are reduced and the shape that broadcasts the statistics against an input; then
        # add the two weights with self.add_weight(..., trainable=False).
        raise NotImplementedError("ch01_feature_scaling.py: your code here")

    def adapt(self, data):
        """Learn the mean and (biased) variance of ``data``, merging batches exactly."""
        # TODO: for each batch (see _batches), compute its count, mean and sum of squared
        # deviations over the reduced axes, merge them into the running totals with the formulas
        # of the module docstring, then assign mean and s / n to the weights.
        raise NotImplementedError("ch01_feature_scaling.py: your code here")

    def call(self, inputs):
        """``(x - mean) / std``, or ``mean + x * std`` when inverting (formulas above)."""
        raise NotImplementedError("ch01_feature_scaling.py: your code here")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        """The base config plus ``axis`` and ``invert`` (the statistics are weights, not config)."""
        raise NotImplementedError("ch01_feature_scaling.py: your code here")


@keras.saving.register_keras_serializable(package="course")
class MinMaxScaling(keras.layers.Layer):
    """Scale each feature of the last axis into ``feature_range`` with its adapted min and max.

    range = x_max - x_min   (1 where the feature is constant, as scikit-learn does)
    y = lo + (x - x_min) * (hi - lo) / range        (invert=True: x = x_min + (y - lo) * range / (hi - lo))

    Values outside the adapted ``[x_min, x_max]`` map outside ``feature_range``: nothing is
    clipped. One outlier sets ``x_max`` by itself and squeezes every other value towards ``lo``.

    Args:
        feature_range: ``(lo, hi)`` with ``lo < hi``.
        invert: apply the inverse transformation.
        **kwargs: the base layer's keyword arguments.

    After ``adapt`` the statistics are the non-trainable weights ``data_min`` and ``data_max``.
    """

    def __init__(self, feature_range=(0.0, 1.0), invert=False, **kwargs):
        # TODO: call the base constructor first; keep feature_range as a tuple of two floats
        # (raise ValueError unless lo < hi) and invert.
        raise NotImplementedError("ch01_feature_scaling.py: your code here")

    def build(self, input_shape):
        """Create ``data_min`` and ``data_max``, one value per feature of the last axis."""
        raise NotImplementedError("ch01_feature_scaling.py: your code here")

    def adapt(self, data):
        """Learn each feature's minimum and maximum over all batches of ``data``."""
        # TODO: the minimum of the batch minima is the overall minimum (and the same for the
        # maximum): no weighting is needed, but every batch counts, not only the last one.
        raise NotImplementedError("ch01_feature_scaling.py: your code here")

    def call(self, inputs):
        """The min-max map of the class docstring (or its inverse)."""
        raise NotImplementedError("ch01_feature_scaling.py: your code here")

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        raise NotImplementedError("ch01_feature_scaling.py: your code here")
