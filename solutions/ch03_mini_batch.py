"""Chapter 3 — mini-batch gradient descent: a batching pipeline and plain SGD.

Every backend: ``SGD`` is written with ``keras.ops`` only, never ``tf.*``, so Keras runs it
on TensorFlow, JAX and PyTorch alike (``course grade --backend jax`` grades it there); a
component that calls TensorFlow directly scores 0 on the other backends. ``mini_batches``
is the exception: its job is a tf.data pipeline, which Keras takes as input on every backend.

Two pieces:

``mini_batches(x, y, batch_size, ...)`` turns arrays into a ``tf.data.Dataset`` of
``(x_batch, y_batch)`` pairs. Iterating over the dataset once is one epoch: every example is
visited exactly once, in a new random order each epoch (when shuffling), and the last, smaller
batch is kept unless ``drop_remainder`` is set. With N examples and batch size m, one epoch is

    ceil(N / m)  updates   (floor(N / m) with drop_remainder)

``SGD`` is the update every optimizer in this course builds on. For each variable ``w`` with
gradient ``g`` (the mean gradient over the mini-batch, as Keras losses average over the batch):

    w = w - lr * g

The grader checks ``mini_batches`` by its properties (whatever order your shuffle produces) and
``SGD`` against ``keras.optimizers.SGD``, which your code may not use.
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops


def mini_batches(x, y, batch_size, *, shuffle=True, seed=None, drop_remainder=False):
    """A ``tf.data.Dataset`` of ``(x_batch, y_batch)``; each pass over it is one epoch.

    Args:
        x: features, an array or tensor of shape ``(N, ...)`` (any trailing shape).
        y: targets, shape ``(N, ...)``; ``y[i]`` belongs to ``x[i]`` and stays with it.
        batch_size: examples per batch, a positive int.
        shuffle: visit the examples in a new random order every epoch.
        seed: an int makes the sequence of epoch orders reproducible: two datasets made with
            the same seed give the same first epoch, the same second epoch, and so on.
        drop_remainder: drop the last batch when it has fewer than ``batch_size`` examples.

    Raises:
        ValueError: for a batch size that is not a positive int, or x and y of different lengths.
    """
    # TODO: check the arguments; build the pipeline from the (x, y) PAIRS so that shuffling
    # keeps them together; shuffle the examples (not the batches) with a buffer as large as the
    # data set, reshuffling on every pass; then batch.
    # BEGIN SOLUTION
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    n = len(x)
    if len(y) != n:
        raise ValueError(f"x and y must have the same number of examples, got {n} and {len(y)}")
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        # A buffer of the whole data set is a uniform shuffle; a smaller one only mixes neighbours.
        dataset = dataset.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(int(batch_size), drop_remainder=drop_remainder)
    # END SOLUTION


@keras.saving.register_keras_serializable(package="course")
class SGD(keras.optimizers.Optimizer):
    """Plain (mini-batch) gradient descent.

    w = w - lr * g

    Args:
        learning_rate: a float or a ``keras.optimizers.schedules.LearningRateSchedule``.
        **kwargs: the base optimizer's keyword arguments (``name``, ``clipnorm``,
            ``gradient_accumulation_steps``, ...).
    """

    def __init__(self, learning_rate=0.01, **kwargs):
        # TODO: call the base constructor (it keeps the rate and checks the keyword arguments).
        # BEGIN SOLUTION
        super().__init__(learning_rate=learning_rate, **kwargs)
        # END SOLUTION

    def build(self, var_list):
        """Plain SGD keeps no state per variable: only the base class's bookkeeping."""
        # BEGIN SOLUTION
        if self.built:
            return
        super().build(var_list)
        # END SOLUTION

    def update_step(self, gradient, variable, learning_rate):
        """One step for one variable: ``w = w - lr * g``."""
        # TODO: cast lr and g to the variable's dtype and update the variable with
        # self.assign_sub (it also handles an Embedding's sparse gradients).
        # BEGIN SOLUTION
        lr = ops.cast(learning_rate, variable.dtype)
        g = ops.cast(gradient, variable.dtype)
        self.assign_sub(variable, lr * g)
        # END SOLUTION

    def get_config(self):
        """The base config (learning rate, clipping, ...): SGD adds no hyperparameter."""
        # BEGIN SOLUTION
        return super().get_config()
        # END SOLUTION
