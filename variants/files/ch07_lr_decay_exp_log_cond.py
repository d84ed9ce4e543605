"""Chapter 7 written differently: exp/log instead of power, ops.cond for the warmup, clipped
phases blended by a mask in OneCycle, and an LRFinder that keeps running sums and sets the next
batch's rate at the end of the current one."""

import math

import keras
import numpy as np
from keras import ops

Base = keras.optimizers.schedules.LearningRateSchedule


def as_float(step):
    return ops.cast(ops.convert_to_tensor(step), "float32")


class Configured(Base):
    def get_config(self):
        return dict(self.config)


@keras.saving.register_keras_serializable(package="alt")
class TimeBasedDecay(Configured):
    def __init__(self, initial_learning_rate, decay_rate, decay_steps=1):
        self.config = dict(initial_learning_rate=initial_learning_rate, decay_rate=decay_rate,
                           decay_steps=decay_steps)

    def __call__(self, step):
        c = self.config
        slope = ops.cast(c["decay_rate"] / c["decay_steps"], "float32")
        return ops.divide(ops.cast(c["initial_learning_rate"], "float32"),
                          ops.add(1.0, ops.multiply(slope, as_float(step))))


@keras.saving.register_keras_serializable(package="alt")
class StepDecay(Configured):
    def __init__(self, initial_learning_rate, drop_rate, steps_per_drop):
        self.config = dict(initial_learning_rate=initial_learning_rate, drop_rate=drop_rate,
                           steps_per_drop=steps_per_drop)

    def __call__(self, step):
        c = self.config
        drops = ops.floor(as_float(step) / c["steps_per_drop"])
        return c["initial_learning_rate"] * ops.exp(drops * math.log(c["drop_rate"]))


@keras.saving.register_keras_serializable(package="alt")
class ExponentialDecay(Configured):
    def __init__(self, initial_learning_rate, decay_rate, decay_steps):
        self.config = dict(initial_learning_rate=initial_learning_rate, decay_rate=decay_rate,
                           decay_steps=decay_steps)

    def __call__(self, step):
        c = self.config
        rate_per_step = math.log(c["decay_rate"]) / c["decay_steps"]
        return c["initial_learning_rate"] * ops.exp(as_float(step) * rate_per_step)


@keras.saving.register_keras_serializable(package="alt")
class WarmupCosineDecay(Configured):
    def __init__(self, peak_learning_rate, warmup_steps, decay_steps, initial_learning_rate=0.0,
                 alpha=0.0):
        self.config = dict(peak_learning_rate=peak_learning_rate, warmup_steps=warmup_steps,
                           decay_steps=decay_steps, initial_learning_rate=initial_learning_rate,
                           alpha=alpha)

    def __call__(self, step):
        c = self.config
        w, t = float(c["warmup_steps"]), float(c["decay_steps"])
        lo, hi, alpha = c["initial_learning_rate"], c["peak_learning_rate"], c["alpha"]
        s = ops.minimum(as_float(step), w + t)

        def warmup():
            return lo + (hi - lo) * (s / w)

        def cosine():
            fraction = (s - w) / t
            return hi * (alpha + (1 - alpha) * (1 + ops.cos(np.pi * fraction)) / 2)

        return ops.cond(s < w, warmup, cosine)


@keras.saving.register_keras_serializable(package="alt")
class OneCycle(Configured):
    def __init__(self, max_learning_rate, total_steps, pct_start=0.3, div_factor=25.0,
                 final_div_factor=1e4):
        self.config = dict(max_learning_rate=max_learning_rate, total_steps=total_steps,
                           pct_start=pct_start, div_factor=div_factor,
                           final_div_factor=final_div_factor)

    def __call__(self, step):
        c = self.config
        top = c["max_learning_rate"]
        low = top / c["div_factor"]
        end = low / c["final_div_factor"]
        e1 = c["pct_start"] * c["total_steps"] - 1
        e2 = c["total_steps"] - 1
        s = ops.minimum(as_float(step), e2)
        p1 = ops.clip(s / e1, 0.0, 1.0)
        p2 = ops.clip((s - e1) / (e2 - e1), 0.0, 1.0)
        up = low + (top - low) * (1 - ops.cos(np.pi * p1)) / 2
        down = end + (top - end) * (1 + ops.cos(np.pi * p2)) / 2
        first = ops.cast(s <= e1, "float32")
        return first * up + (1 - first) * down


class LRFinder(keras.callbacks.Callback):
    def __init__(self, start_lr=1e-7, end_lr=10.0, num_steps=100, beta=0.98, diverge_factor=4.0):
        super().__init__()
        self.start_lr, self.end_lr, self.num_steps = start_lr, end_lr, num_steps
        self.beta, self.diverge_factor = beta, diverge_factor
        self.lrs, self.losses = [], []

    def _rate(self, k):
        a, b = math.log(self.start_lr), math.log(self.end_lr)
        return math.exp(a + (b - a) * k / (self.num_steps - 1))

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        base = optimizer.inner_optimizer if hasattr(optimizer, "inner_optimizer") else optimizer
        if isinstance(getattr(base, "_learning_rate", None), Base):
            raise TypeError("the range test needs a float rate, not a schedule")
        self._backup = [np.copy(w) for w in self.model.get_weights()]
        self._rate_backup = float(np.asarray(optimizer.learning_rate))
        self.lrs, self.losses = [], []
        self._sum, self._ema, self._best = 0.0, 0.0, None
        optimizer.learning_rate = self._rate(0)

    def on_train_batch_end(self, batch, logs=None):
        k = len(self.lrs)
        total = float(logs["loss"]) * (batch + 1)
        loss = total - (self._sum if batch > 0 else 0.0)
        self._sum = total
        self._ema = self._ema * self.beta + loss * (1 - self.beta)
        value = self._ema / (1 - self.beta ** (k + 1))
        self.lrs.append(self._rate(k))
        self.losses.append(value)
        diverged = value != value or (self._best is not None
                                      and value > self.diverge_factor * self._best)
        if self._best is None or value < self._best:
            self._best = value
        if diverged or k + 1 >= self.num_steps:
            self.model.stop_training = True
        else:
            self.model.optimizer.learning_rate = self._rate(k + 1)

    def on_train_end(self, logs=None):
        self.model.set_weights(self._backup)
        self.model.optimizer.learning_rate = self._rate_backup

    def suggestion(self, skip_start=10, skip_end=5):
        lrs = self.lrs[skip_start:len(self.lrs) - skip_end]
        losses = self.losses[skip_start:len(self.losses) - skip_end]
        if len(lrs) < 3:
            raise ValueError("too few points for a slope")
        x = [math.log10(v) for v in lrs]
        slopes = []
        for i in range(len(x)):
            lo, hi = max(i - 1, 0), min(i + 1, len(x) - 1)
            slopes.append((losses[hi] - losses[lo]) / (x[hi] - x[lo]))
        return lrs[min(range(len(slopes)), key=slopes.__getitem__)]
