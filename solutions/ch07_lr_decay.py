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
        # BEGIN SOLUTION
        super().__init__()
        self.initial_learning_rate = _positive("initial_learning_rate", initial_learning_rate)
        if decay_rate < 0:
            raise ValueError(f"decay_rate must be >= 0, got {decay_rate!r}")
        self.decay_rate = decay_rate
        self.decay_steps = _positive("decay_steps", decay_steps)
        # END SOLUTION

    def __call__(self, step):
        """``lr0 / (1 + decay_rate * s / decay_steps)`` as a float32 scalar."""
        # BEGIN SOLUTION
        s = _step(step)
        return self.initial_learning_rate / (1.0 + self.decay_rate * s / self.decay_steps)
        # END SOLUTION

    def get_config(self):
        """The constructor's arguments, so that ``from_config(get_config())`` rebuilds it."""
        # BEGIN SOLUTION
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_rate": self.decay_rate,
            "decay_steps": self.decay_steps,
        }
        # END SOLUTION


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
        # BEGIN SOLUTION
        super().__init__()
        self.initial_learning_rate = _positive("initial_learning_rate", initial_learning_rate)
        if not 0 < drop_rate <= 1:
            raise ValueError(f"drop_rate must be in (0, 1], got {drop_rate!r}")
        self.drop_rate = drop_rate
        self.steps_per_drop = _positive("steps_per_drop", steps_per_drop)
        # END SOLUTION

    def __call__(self, step):
        """``lr0 * drop_rate ** floor(s / steps_per_drop)`` as a float32 scalar."""
        # BEGIN SOLUTION
        drops = ops.floor(_step(step) / self.steps_per_drop)
        return self.initial_learning_rate * ops.power(ops.cast(self.drop_rate, "float32"), drops)
        # END SOLUTION

    def get_config(self):
        # BEGIN SOLUTION
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "drop_rate": self.drop_rate,
            "steps_per_drop": self.steps_per_drop,
        }
        # END SOLUTION


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
        # BEGIN SOLUTION
        super().__init__()
        self.initial_learning_rate = _positive("initial_learning_rate", initial_learning_rate)
        self.decay_rate = _positive("decay_rate", decay_rate)
        self.decay_steps = _positive("decay_steps", decay_steps)
        # END SOLUTION

    def __call__(self, step):
        """``lr0 * decay_rate ** (s / decay_steps)`` as a float32 scalar."""
        # BEGIN SOLUTION
        exponent = _step(step) / self.decay_steps
        rate = ops.cast(self.decay_rate, "float32")
        return self.initial_learning_rate * ops.power(rate, exponent)
        # END SOLUTION

    def get_config(self):
        # BEGIN SOLUTION
        return {
            "initial_learning_rate": self.initial_learning_rate,
            "decay_rate": self.decay_rate,
            "decay_steps": self.decay_steps,
        }
        # END SOLUTION


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
        # BEGIN SOLUTION
        super().__init__()
        self.peak_learning_rate = _positive("peak_learning_rate", peak_learning_rate)
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps!r}")
        self.warmup_steps = warmup_steps
        self.decay_steps = _positive("decay_steps", decay_steps)
        if initial_learning_rate < 0:
            raise ValueError(f"initial_learning_rate must be >= 0, got {initial_learning_rate!r}")
        self.initial_learning_rate = initial_learning_rate
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        self.alpha = alpha
        # END SOLUTION

    def __call__(self, step):
        """The class docstring's formulas: both branches computed, one picked by ``ops.where``."""
        # TODO: no Python `if` on the step (see the module docstring): compute the warmup and the
        # cosine value and choose with ops.where(s < W, warmup, cosine).
        # BEGIN SOLUTION
        warmup, decay = float(self.warmup_steps), float(self.decay_steps)
        s = ops.minimum(_step(step), warmup + decay)
        start, peak = float(self.initial_learning_rate), float(self.peak_learning_rate)
        # max(W, 1): with no warmup the warmup branch is never chosen, but it must not divide by 0
        warm = start + (peak - start) * s / max(warmup, 1.0)
        progress = ops.maximum(s - warmup, 0.0) / decay
        cosine = 0.5 * (1.0 + ops.cos(math.pi * progress))
        annealed = peak * ((1.0 - self.alpha) * cosine + self.alpha)
        return ops.where(s < warmup, warm, annealed)
        # END SOLUTION

    def get_config(self):
        # BEGIN SOLUTION
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "warmup_steps": self.warmup_steps,
            "decay_steps": self.decay_steps,
            "initial_learning_rate": self.initial_learning_rate,
            "alpha": self.alpha,
        }
        # END SOLUTION


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
        # BEGIN SOLUTION
        super().__init__()
        self.max_learning_rate = _positive("max_learning_rate", max_learning_rate)
        self.total_steps = _positive("total_steps", total_steps)
        if not 0 < pct_start < 1:
            raise ValueError(f"pct_start must be in (0, 1), got {pct_start!r}")
        if pct_start * total_steps <= 1:
            raise ValueError(f"phase 1 is empty: pct_start * total_steps = "
                             f"{pct_start * total_steps} must be > 1 (raise total_steps or "
                             "pct_start)")
        self.pct_start = pct_start
        self.div_factor = _positive("div_factor", div_factor)
        self.final_div_factor = _positive("final_div_factor", final_div_factor)
        # END SOLUTION

    def __call__(self, step):
        """The class docstring's formulas: both phases computed, one picked by ``ops.where``."""
        # BEGIN SOLUTION
        peak = float(self.max_learning_rate)
        initial = peak / self.div_factor
        final = initial / self.final_div_factor
        end_1 = self.pct_start * self.total_steps - 1.0
        end_2 = self.total_steps - 1.0
        s = ops.minimum(_step(step), end_2)

        def anneal(start, end, pct):
            return end + (start - end) / 2.0 * (ops.cos(math.pi * pct) + 1.0)

        rising = anneal(initial, peak, s / end_1)
        falling = anneal(peak, final, ops.maximum(s - end_1, 0.0) / (end_2 - end_1))
        return ops.where(s <= end_1, rising, falling)
        # END SOLUTION

    def get_config(self):
        # BEGIN SOLUTION
        return {
            "max_learning_rate": self.max_learning_rate,
            "total_steps": self.total_steps,
            "pct_start": self.pct_start,
            "div_factor": self.div_factor,
            "final_div_factor": self.final_div_factor,
        }
        # END SOLUTION


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
        # BEGIN SOLUTION
        super().__init__()
        _positive("start_lr", start_lr)
        if not end_lr > start_lr:
            raise ValueError(f"end_lr ({end_lr!r}) must be above start_lr ({start_lr!r})")
        if int(num_steps) != num_steps or num_steps < 2:
            raise ValueError(f"num_steps must be an integer >= 2, got {num_steps!r}")
        if not 0 <= beta < 1:
            raise ValueError(f"beta must be in [0, 1), got {beta!r}")
        if not diverge_factor > 1:
            raise ValueError(f"diverge_factor must be > 1, got {diverge_factor!r}")
        self.start_lr, self.end_lr = float(start_lr), float(end_lr)
        self.num_steps = int(num_steps)
        self.beta, self.diverge_factor = float(beta), float(diverge_factor)
        self.lrs, self.losses = [], []
        # END SOLUTION

    def rate_at(self, k):
        """The rate of batch k: ``start_lr * (end_lr / start_lr) ** (k / (num_steps - 1))``."""
        # BEGIN SOLUTION
        return self.start_lr * (self.end_lr / self.start_lr) ** (k / (self.num_steps - 1))
        # END SOLUTION

    def on_train_begin(self, logs=None):
        """Save the weights and the rate, refuse a schedule, start the ramp at ``start_lr``."""
        # TODO: a schedule cannot be overwritten batch by batch: raise a clear error when the
        # optimizer's rate is a LearningRateSchedule (under mixed precision the model's optimizer
        # is a LossScaleOptimizer: look at its inner_optimizer). Keep a copy of
        # model.get_weights() and of the current rate (as a Python float).
        # BEGIN SOLUTION
        optimizer = self.model.optimizer
        inner = getattr(optimizer, "inner_optimizer", optimizer)
        if isinstance(getattr(inner, "_learning_rate", None), Schedule):
            raise ValueError(
                "LRFinder sets the learning rate itself, batch by batch, but this optimizer's "
                "rate is a LearningRateSchedule, which cannot be overwritten. Compile the model "
                "with a float learning rate for the range test.")
        self._saved_weights = self.model.get_weights()
        self._saved_lr = float(optimizer.learning_rate)  # float() of a Variable: no NumPy copy warning
        self.lrs, self.losses = [], []
        self._k = 0
        self._avg = 0.0
        self._best = math.inf
        self._previous_mean = 0.0
        optimizer.learning_rate = self.start_lr
        # END SOLUTION

    def on_train_batch_begin(self, batch, logs=None):
        """Set this batch's rate."""
        # BEGIN SOLUTION
        self.model.optimizer.learning_rate = self.rate_at(self._k)
        # END SOLUTION

    def on_train_batch_end(self, batch, logs=None):
        """Record the rate and the smoothed loss; stop on divergence or after ``num_steps``."""
        # TODO: compute in Python floats (the running-mean correction multiplies rounding
        # errors by n); remember that ``batch`` restarts at 0 every epoch while k does not.
        # BEGIN SOLUTION
        mean = float(logs["loss"])
        loss = (batch + 1) * mean - batch * self._previous_mean
        self._previous_mean = mean
        k = self._k
        self._avg = self.beta * self._avg + (1.0 - self.beta) * loss
        smoothed = self._avg / (1.0 - self.beta ** (k + 1))
        self.lrs.append(self.rate_at(k))
        self.losses.append(smoothed)
        # not finite: NaN never compares greater than anything, so test it by name
        if not math.isfinite(smoothed) or smoothed > self.diverge_factor * self._best:
            self.model.stop_training = True
        self._best = min(self._best, smoothed)
        self._k = k + 1
        if self._k >= self.num_steps:
            self.model.stop_training = True
        # END SOLUTION

    def on_train_end(self, logs=None):
        """Put the weights and the rate back as they were before the test."""
        # BEGIN SOLUTION
        self.model.set_weights(self._saved_weights)
        self.model.optimizer.learning_rate = self._saved_lr
        # END SOLUTION

    def suggestion(self, skip_start=10, skip_end=5):
        """The rate where the smoothed loss falls fastest against log10(rate).

        Within ``lrs[skip_start : len(lrs) - skip_end]`` (the first batches are noisy, the last
        ones diverge), the slope is ``numpy.gradient(losses, numpy.log10(lrs))`` (central
        differences, one-sided at the two ends) and the answer is the rate where that slope is
        lowest (most negative). Raises ValueError with fewer than 3 points in the window.
        """
        # BEGIN SOLUTION
        stop = len(self.lrs) - skip_end
        lrs = np.asarray(self.lrs[skip_start:stop], dtype=np.float64)
        losses = np.asarray(self.losses[skip_start:stop], dtype=np.float64)
        if lrs.size < 3:
            raise ValueError(
                f"the range test recorded {len(self.lrs)} rate(s); skipping {skip_start} at the "
                f"start and {skip_end} at the end leaves {max(lrs.size, 0)}, and a slope needs at "
                "least 3: run more batches (num_steps) or skip fewer")
        slope = np.gradient(losses, np.log10(lrs))
        if np.all(np.isnan(slope)):
            raise ValueError("every smoothed loss in the window is NaN: start the test lower")
        return float(lrs[int(np.nanargmin(slope))])
        # END SOLUTION
