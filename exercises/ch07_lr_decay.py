# This file is generated from solutions/ch07_lr_decay.py by `course release`: fill in the 22 parts
# that raise NotImplementedError, then run `course grade` to check your work.
"""Chapter 7 — learning-rate schedules, warmup, one-cycle and the LR range test.

Every backend: write it with ``keras.ops`` only (``ops.sqrt``, ``ops.sum``, ``ops.where``),
never ``tf.*``, so Keras runs it on TensorFlow, JAX and PyTorch alike (``course grade
--backend jax`` grades it there); a component that calls TensorFlow directly scores 0 on
the other backends.

Five ``keras.optimizers.schedules.LearningRateSchedule`` subclasses and one callback. A schedule
is called by the optimizer with its step counter ``s`` (``optimizer.iterations``: the number of
updates already applied, so the first update uses ``schedule(0)``) and must return the rate as a
float32 scalar. The grader compares each with its Keras built-in (or, for ``OneCycle``, with
PyTorch's closed form); it refuses an implementation that subclasses, wraps or calls a Keras
built-in schedule.

Symbols used in the docstrings and in the code:

    s       the optimizer step (an int or an integer tensor), cast to float32
    lr0     initial_learning_rate
    floor   rounds down: it turns a smooth decay into a staircase

Two rules every schedule here follows, because ``model.fit`` traces ``__call__`` into a graph
(and, with ``jit_compile=True``, into XLA):

- no Python ``if`` on ``s``: inside ``model.fit`` the step is a symbolic tensor and
  ``if s < warmup_steps:`` raises ``OperatorNotAllowedInGraphError``. Compute both branches and
  pick one with ``ops.where`` (a bare ``tf.function`` would let AutoGraph rewrite the ``if``,
  but Keras's train step turns AutoGraph off, so test inside ``model.fit``);
- compute in float32 whatever the argument types: an integer ``initial_learning_rate`` would
  otherwise silently compute in integers.
"""

import math

import keras
import numpy as np
from keras import ops

Schedule = keras.optimizers.schedules.LearningRateSchedule


def _positive(name, value):
    """Check a hyperparameter that must be a number above zero (a clear error, not a NaN later)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}: {value!r}")
    if not value > 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    return value


def _step(step):
    """The optimizer step as a float32 tensor, whether it came as a Python int or a tensor."""
    return ops.cast(step, "float32")


@keras.saving.register_keras_serializable(package="course")
class TimeBasedDecay(Schedule):
    """Time-based (inverse-time) decay: the rate shrinks like 1/(1 + k*t).

    lr(s) = lr0 / (1 + decay_rate * s / decay_steps)

    The decay is continuous: there is no floor, so the rate falls a little at every step.
    ``decay_steps`` says what one unit of "time" is: with ``decay_steps = steps_per_epoch`` the
    formula counts epochs, as the source documents write it. Keras's counterpart is
    ``keras.optimizers.schedules.InverseTimeDecay(lr0, decay_steps, decay_rate)``.
    """

    def __init__(self, initial_learning_rate, decay_rate, decay_steps=1):
        # TODO: check the arguments (_positive for the rate and decay_steps; decay_rate may be 0
        # but not negative), then keep them as attributes.
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def __call__(self, step):
        """``lr0 / (1 + decay_rate * s / decay_steps)`` as a float32 scalar."""
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def get_config(self):
        """The constructor's arguments, so that ``from_config(get_config())`` rebuilds it."""
        raise NotImplementedError("ch07_lr_decay.py: your code here")


@keras.saving.register_keras_serializable(package="course")
class StepDecay(Schedule):
    """Step decay: multiply the rate by ``drop_rate`` once every ``steps_per_drop`` steps.

    lr(s) = lr0 * drop_rate ** floor(s / steps_per_drop)

    The floor makes a staircase: the rate is constant between drops. "Divide by 10 every 30
    epochs" is ``StepDecay(lr0, 0.1, 30 * steps_per_epoch)``. Keras's counterpart is
    ``ExponentialDecay(lr0, steps_per_drop, drop_rate, staircase=True)``.
    """

    def __init__(self, initial_learning_rate, drop_rate, steps_per_drop):
        # TODO: check the arguments (drop_rate must be in (0, 1]) and keep them.
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def __call__(self, step):
        """``lr0 * drop_rate ** floor(s / steps_per_drop)`` as a float32 scalar."""
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def get_config(self):
        raise NotImplementedError("ch07_lr_decay.py: your code here")


@keras.saving.register_keras_serializable(package="course")
class ExponentialDecay(Schedule):
    """Exponential decay: the rate is multiplied by ``decay_rate`` every ``decay_steps`` steps,
    smoothly in between.

    lr(s) = lr0 * decay_rate ** (s / decay_steps)

    Continuous, unlike ``StepDecay``: at ``s = decay_steps / 2`` the rate has already fallen
    by ``sqrt(decay_rate)``. Keras's counterpart is ``ExponentialDecay(lr0, decay_steps,
    decay_rate)`` with ``staircase=False``.
    """

    def __init__(self, initial_learning_rate, decay_rate, decay_steps):
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def __call__(self, step):
        """``lr0 * decay_rate ** (s / decay_steps)`` as a float32 scalar."""
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def get_config(self):
        raise NotImplementedError("ch07_lr_decay.py: your code here")


@keras.saving.register_keras_serializable(package="course")
class WarmupCosineDecay(Schedule):
    """Linear warmup to ``peak_learning_rate``, then cosine annealing over ``decay_steps`` steps.

    W = warmup_steps, T = decay_steps, lr_w = initial_learning_rate, peak = peak_learning_rate
    s'     = min(s, W + T)                                   (past the end the rate stays put)
    s' < W:  lr = lr_w + (peak - lr_w) * s' / W               (warmup, a straight line)
    s' >= W: lr = peak * ((1 - alpha) * 0.5 * (1 + cos(pi * (s' - W) / T)) + alpha)

    The cosine runs over the T decay steps that FOLLOW the warmup (not over W + T), from
    ``peak`` down to ``alpha * peak``. Keras's counterpart is
    ``CosineDecay(lr_w, T, alpha, warmup_target=peak, warmup_steps=W)``.
    """

    def __init__(self, peak_learning_rate, warmup_steps, decay_steps, initial_learning_rate=0.0,
                 alpha=0.0):
        # TODO: check the arguments (warmup_steps >= 0, decay_steps > 0, alpha in [0, 1],
        # initial_learning_rate >= 0) and keep them.
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def __call__(self, step):
        """The class docstring's formulas: both branches computed, one picked by ``ops.where``."""
        # TODO: no Python `if` on the step (see the module docstring): compute the warmup and the
        # cosine value and choose with ops.where(s < W, warmup, cosine).
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def get_config(self):
        raise NotImplementedError("ch07_lr_decay.py: your code here")


@keras.saving.register_keras_serializable(package="course")
class OneCycle(Schedule):
    """The one-cycle policy (PyTorch's ``OneCycleLR`` with cosine annealing, two phases).

    lr_i  = max_learning_rate / div_factor            (where the cycle starts)
    lr_f  = lr_i / final_div_factor                   (where it ends, far below lr_i)
    e1    = pct_start * total_steps - 1               (last step of phase 1)
    e2    = total_steps - 1                           (last step of phase 2)
    anneal(a, b, p) = b + (a - b) / 2 * (cos(pi * p) + 1)     (a at p = 0, b at p = 1)

    s' = min(s, e2)                                   (steps past the end give lr_f)
    s' <= e1: lr = anneal(lr_i, max_learning_rate, s' / e1)
    s' >  e1: lr = anneal(max_learning_rate, lr_f, (s' - e1) / (e2 - e1))

    The rate climbs for the first ``pct_start`` of training and then falls, both along half a
    cosine. Keras has no built-in for it; the grader checks it against this closed form, which
    the course's tests check against values computed with PyTorch.
    """

    def __init__(self, max_learning_rate, total_steps, pct_start=0.3, div_factor=25.0,
                 final_div_factor=1e4):
        # TODO: check the arguments: phase 1 must last at least one step (pct_start *
        # total_steps > 1) and pct_start < 1, or a phase has zero length and the formula
        # divides by zero.
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def __call__(self, step):
        """The class docstring's formulas: both phases computed, one picked by ``ops.where``."""
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def get_config(self):
        raise NotImplementedError("ch07_lr_decay.py: your code here")


class LRFinder(keras.callbacks.Callback):
    """The learning-rate range test: raise the rate every batch and watch the loss.

    Pass it to ``model.fit(..., callbacks=[finder])``; afterwards ``finder.lrs`` and
    ``finder.losses`` hold the curve and ``finder.suggestion()`` a rate to train with. The model
    and its optimizer are left as they were before the test.

    k = 0, 1, ...                                     (batches since the test began, over epochs)
    lr_k      = start_lr * (end_lr / start_lr) ** (k / (num_steps - 1))   (a geometric ramp)
    loss_k    = (n + 1) * mean_n - n * mean_(n-1)     (this batch's loss; see below)
    avg_k     = beta * avg_(k-1) + (1 - beta) * loss_k,     avg_(-1) = 0
    smooth_k  = avg_k / (1 - beta ** (k + 1))         (debiased, like Adam's moments)

    After batch k it appends ``lr_k`` to ``lrs`` and ``smooth_k`` to ``losses``, then sets
    ``model.stop_training`` when ``smooth_k`` is NaN (or infinite) or above ``diverge_factor``
    times the best (lowest) smoothed loss before it, or when k + 1 reaches ``num_steps``.

    Keras 3 quirk: ``logs["loss"]`` at the end of batch n of an epoch (n counts from 0 in each
    epoch; it is the ``batch`` argument) is the MEAN loss of batches 0..n of that epoch, not
    batch n's loss. ``loss_k`` undoes the running mean: ``mean_n * (n + 1)`` is the sum so far.
    (Exact when the batches have equal sizes: Keras weights the mean by batch size.)
    """

    def __init__(self, start_lr=1e-7, end_lr=10.0, num_steps=100, beta=0.98, diverge_factor=4.0):
        # TODO: call super().__init__(); check the arguments (0 < start_lr < end_lr,
        # num_steps >= 2, 0 <= beta < 1, diverge_factor > 1); keep them; start with empty
        # ``lrs`` and ``losses`` lists.
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def rate_at(self, k):
        """The rate of batch k: ``start_lr * (end_lr / start_lr) ** (k / (num_steps - 1))``."""
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def on_train_begin(self, logs=None):
        """Save the weights and the rate, refuse a schedule, start the ramp at ``start_lr``."""
        # TODO: a schedule cannot be overwritten batch by batch: raise a clear error when the
        # optimizer's rate is a LearningRateSchedule (under mixed precision the model's optimizer
        # is a LossScaleOptimizer: look at its inner_optimizer). Keep a copy of
        # model.get_weights() and of the current rate (as a Python float).
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def on_train_batch_begin(self, batch, logs=None):
        """Set this batch's rate."""
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def on_train_batch_end(self, batch, logs=None):
        """Record the rate and the smoothed loss; stop on divergence or after ``num_steps``."""
        # TODO: compute in Python floats (the running-mean correction multiplies rounding
        # errors by n); remember that ``batch`` restarts at 0 every epoch while k does not.
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def on_train_end(self, logs=None):
        """Put the weights and the rate back as they were before the test."""
        raise NotImplementedError("ch07_lr_decay.py: your code here")

    def suggestion(self, skip_start=10, skip_end=5):
        """The rate where the smoothed loss falls fastest against log10(rate).

        Within ``lrs[skip_start : len(lrs) - skip_end]`` (the first batches are noisy, the last
        ones diverge), the slope is ``numpy.gradient(losses, numpy.log10(lrs))`` (central
        differences, one-sided at the two ends) and the answer is the rate where that slope is
        lowest (most negative). Raises ValueError with fewer than 3 points in the window.
        """
        raise NotImplementedError("ch07_lr_decay.py: your code here")
