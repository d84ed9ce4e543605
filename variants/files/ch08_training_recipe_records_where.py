"""Chapter 8, written differently: the doctor keeps its findings as records (a dataclass) and
its windows in a buffer emptied at each window's end; the wrapper keeps its own micro-batch
counter, runs the inner optimizer on every call and keeps the result only on update steps with
ops.where (no ops.cond)."""

import collections
import dataclasses
import math
import statistics

import keras
from keras import ops


@dataclasses.dataclass
class Record:
    code: str
    step: object
    epoch: int
    message: str
    advice: str


WHAT_TO_TRY = {"nan": "lower the learning rate", "spike": "clip the gradients",
               "noisy": "use a larger batch", "flat": "raise the learning rate",
               "overfitting": "stop earlier or regularize", "lr_too_high": "decay the rate"}


@keras.saving.register_keras_serializable(package="records_where")
class LossCurveDoctor(keras.callbacks.Callback):
    def __init__(self, window=20, spike_factor=4.0, flat_tolerance=0.05, noise_ratio=0.5,
                 overfit_patience=3, floor=0.2, stop_on_nan=True, verbose=True):
        super().__init__()
        if window < 2 or overfit_patience < 1 or spike_factor <= 1:
            raise ValueError("window >= 2, overfit_patience >= 1, spike_factor > 1")
        self.window, self.spike_factor = int(window), spike_factor
        self.flat_tolerance, self.noise_ratio, self.floor = flat_tolerance, noise_ratio, floor
        self.overfit_patience, self.stop_on_nan, self.verbose = (int(overfit_patience),
                                                                 stop_on_nan, verbose)
        self.on_train_begin()

    @property
    def findings(self):
        return [dataclasses.asdict(r) for r in self.records]

    def on_train_begin(self, logs=None):
        self.records, self.losses = [], []
        self.recent = collections.deque(maxlen=self.window)  # the finite losses before this one
        self.buffer = []                                       # the open window
        self.window_stats = []                                 # (mean, cv) of closed windows
        self.epoch_rows = []
        self.epoch, self.sum_so_far, self.quiet_until = 0, 0.0, -1

    def note(self, code, step, message, epoch=None):
        if code != "spike" and any(r.code == code for r in self.records):
            return
        record = Record(code, step, self.epoch if epoch is None else epoch, message,
                        WHAT_TO_TRY[code])
        self.records.append(record)
        if self.verbose:
            print(record)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.sum_so_far = epoch, 0.0

    def on_train_batch_end(self, batch, logs=None):
        total = float(logs["loss"]) * (batch + 1)  # the epoch's sum of losses so far
        loss, self.sum_so_far = total - self.sum_so_far, total
        step = len(self.losses)
        self.losses.append(loss)
        if math.isnan(loss) or math.isinf(loss):
            if self.stop_on_nan:
                self.model.stop_training = True
            self.note("nan", step, f"loss {loss}")
            return
        if (len(self.recent) == self.window and step >= self.quiet_until
                and loss > self.spike_factor * self.floored(statistics.median(self.recent))):
            self.note("spike", step, f"loss {loss:.3g}")
            self.quiet_until = step + self.window
        self.recent.append(loss)
        self.buffer.append(loss)
        if len(self.buffer) == self.window:
            mean = statistics.fmean(self.buffer)
            spread = statistics.pstdev(self.buffer)
            start = self.window_stats[0][0] if self.window_stats else mean
            scale = max(abs(mean), self.floor * abs(start))
            cv = spread / scale if scale else (math.inf if spread else 0.0)
            self.window_stats.append((mean, cv))
            self.buffer = []
            if cv > self.noise_ratio:
                self.note("noisy", step, f"spread {cv:.2f}")
            if (len(self.window_stats) > 2
                    and mean > (1 - self.flat_tolerance) * self.window_stats[0][0]):
                self.note("flat", step, f"mean {mean:.3g}")

    def floored(self, level):
        return max(level, self.floor * abs(self.window_stats[0][0])) if self.window_stats else level

    def on_epoch_end(self, epoch, logs=None):
        train, val = (logs or {}).get("loss"), (logs or {}).get("val_loss")
        if train is None or val is None or not (math.isfinite(train) and math.isfinite(val)):
            return
        self.epoch_rows.append((epoch, float(train), float(val)))
        best = self.epoch_rows[0]
        for row in self.epoch_rows:
            if row[2] < best[2]:
                best = row
        if epoch - best[0] >= self.overfit_patience and train < best[1]:
            self.note("overfitting", None, f"best validation at epoch {best[0]}", epoch=epoch)

    def on_train_end(self, logs=None):
        if len(self.window_stats) > 1:
            (before, _), (last, cv) = self.window_stats[-2], self.window_stats[-1]
            if last >= before and cv > self.noise_ratio:
                self.note("lr_too_high", len(self.losses) - 1, "no progress, only noise")
        if self.verbose:
            print(self.summary())

    def summary(self):
        lines = [f"{r.code} (step {r.step}, epoch {r.epoch}): {r.message}; {r.advice}"
                 for r in self.records]
        return "\n".join(lines) if lines else "healthy"

    def get_config(self):
        return {"window": self.window, "spike_factor": self.spike_factor,
                "flat_tolerance": self.flat_tolerance, "noise_ratio": self.noise_ratio,
                "overfit_patience": self.overfit_patience, "floor": self.floor,
                "stop_on_nan": self.stop_on_nan,
                "verbose": self.verbose}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="records_where")
class AccumulateGradients(keras.optimizers.Optimizer):
    def __init__(self, optimizer, steps=2, global_clipnorm=None, **kwargs):
        if not isinstance(optimizer, keras.optimizers.Optimizer):
            raise TypeError("optimizer must be a keras Optimizer")
        if int(steps) != steps or steps < 1:
            raise ValueError("steps must be an integer >= 1")
        if global_clipnorm is not None and global_clipnorm <= 0:
            raise ValueError("global_clipnorm must be > 0")
        super().__init__(learning_rate=0.0, **kwargs)
        self.optimizer, self.steps, self.clip_to = optimizer, int(steps), global_clipnorm
        rate = optimizer._learning_rate
        self.schedule = rate if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule) \
            else None

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.sums = [self.add_variable_from_reference(v, name="sum") for v in var_list]
        self.seen = self.add_variable(shape=(), initializer="zeros", dtype="int",
                                      name="micro_batches")
        self.optimizer.build(var_list)

    @property
    def variables(self):
        return self._variables + self.optimizer.variables

    @property
    def iterations(self):
        return self.optimizer.iterations

    @property
    def learning_rate(self):
        if self.schedule is None:
            return self.optimizer.learning_rate
        return self.schedule(self.seen if self.built else 0)

    @learning_rate.setter
    def learning_rate(self, value):
        self.optimizer.learning_rate = value

    def apply(self, grads, trainable_variables=None):
        variables = (self._trainable_variables if trainable_variables is None
                     else list(trainable_variables))
        if not self.built:
            self.build(variables)
        sums = [self.sums[self._get_variable_index(v)] for v in variables]
        k = self.seen.value
        is_update = ops.equal(ops.mod(k + 1, self.steps), 0)
        mean = [ops.divide(ops.add(g, s), self.steps) for g, s in zip(grads, sums)]
        if self.clip_to is not None:
            norm = ops.sqrt(ops.sum(ops.stack([ops.sum(ops.square(m)) for m in mean])))
            mean = [m * self.clip_to / ops.maximum(norm, self.clip_to) for m in mean]
        state = variables + self.optimizer.variables
        before = [ops.copy(v.value) for v in state]  # the values now (not the variables)
        if self.schedule is not None:
            self.optimizer.learning_rate = lambda: self.schedule(k)
        try:
            self.optimizer.apply(mean, variables)
        finally:
            if self.schedule is not None:
                self.optimizer.learning_rate = self.schedule
        for v, old in zip(state, before):  # an accumulating step leaves everything as it was
            v.assign(ops.where(is_update, v.value, old))
        for g, s in zip(grads, sums):
            s.assign(ops.where(is_update, ops.zeros_like(s.value), s + g))
        self.seen.assign_add(1)

    def get_config(self):
        return {"name": self.name, "steps": self.steps, "global_clipnorm": self.clip_to,
                "optimizer": keras.saving.serialize_keras_object(self.optimizer)}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        inner = keras.saving.deserialize_keras_object(config.pop("optimizer"),
                                                      custom_objects=custom_objects)
        return cls(inner, **config)
