"""The reference stand-ins: what each exercise is checked against, under the exercise's names.

Mostly the Keras built-ins themselves (``keras.optimizers.Adam`` for ``Adam``); where Keras has
none, a course-written reference (EMAMomentum's averaging form, AdamL2 as Keras's Adam fed
``g + l2 * w``, MinMaxScaling around scikit-learn's scaler, OneCycle as a closed form). The
grader's reference worker calls these (``Exercise.reference`` names one), and the chapters use
the same ones as stand-ins while a learner's exercise is still a stub: a reference lives here once.

Each ``chNN_*()`` imports Keras when called, so importing this module stays cheap.
"""

from __future__ import annotations

import math

import numpy as np


def one_cycle(s, kw, xp, variant=None):
    """PyTorch's OneCycleLR (two phases, cosine annealing) as a closed form (the formula in
    docs/grader-contract.md)."""
    peak, total = float(kw["max_learning_rate"]), float(kw["total_steps"])
    initial = peak / float(kw.get("div_factor", 25.0))
    final = initial / float(kw.get("final_div_factor", 1e4))
    end_1 = float(kw.get("pct_start", 0.3)) * total - (0.0 if variant == "phase_end_off_by_one" else 1.0)
    end_2 = total - 1.0
    if variant != "no_clamp":
        s = xp.minimum(s, end_2)

    def anneal(a, b, pct):  # from a at pct = 0 to b at pct = 1
        if variant == "linear":
            return a + (b - a) * pct
        return b + (a - b) / 2.0 * (xp.cos(math.pi * pct) + 1.0)

    rising = anneal(initial, peak, s / end_1)
    falling = anneal(peak, final, xp.maximum(s - end_1, 0.0) / (end_2 - end_1))
    return xp.where(s <= end_1, rising, falling)


def momentum_update(state, w, g, lr, t, hp, variant=None):
    """One step of Keras's SGD with momentum for one variable (and of each known-wrong variant)."""
    mu = hp["momentum"]
    nesterov = hp.get("nesterov", False) and variant != "nesterov_ignored"
    v = state.get("v", np.zeros_like(w))
    if variant == "pytorch":  # the rate outside the velocity
        v = mu * v + g
        state["v"] = v
        return w - lr * (mu * v + g if nesterov else v)
    if variant == "ema":  # the documents' average, with the rate outside
        v = mu * v + (1 - mu) * g
        state["v"] = v
        return w - lr * v
    sign = 1.0 if variant == "velocity_sign" else -1.0
    v = mu * v + sign * lr * g
    state["v"] = v
    if nesterov:
        return w + mu * v + sign * lr * g
    return w + v


def ch01_feature_scaling():
    """The references under the student's names (runs in the reference worker only).

    ``Standardization`` is Keras's Normalization. ``MinMaxScaling`` is a thin layer around
    scikit-learn: ``adapt`` lets ``MinMaxScaler.partial_fit`` see every batch and keeps its
    ``data_min_`` and ``data_max_`` as weights; ``call`` applies MinMaxScaler's own transform,
    ``x * scale_ + min_`` with ``scale_ = (hi - lo) / range`` (a zero range taken as 1) and
    ``min_ = lo - data_min * scale_``, in float64 (the course's tests check it against
    ``MinMaxScaler.transform`` and ``inverse_transform``).
    """
    from types import SimpleNamespace

    import keras
    from sklearn.preprocessing import MinMaxScaler as SklearnMinMaxScaler

    class MinMaxScaling(keras.layers.Layer):
        def __init__(self, feature_range=(0.0, 1.0), invert=False, **kwargs):
            super().__init__(**kwargs)
            self.feature_range = tuple(float(v) for v in feature_range)
            self.invert = bool(invert)

        def build(self, input_shape):
            n = input_shape[-1]
            self.data_min = self.add_weight(name="data_min", shape=(n,), initializer="zeros",
                                            trainable=False)
            self.data_max = self.add_weight(name="data_max", shape=(n,), initializer="ones",
                                            trainable=False)

        def adapt(self, data):
            scaler = SklearnMinMaxScaler(feature_range=self.feature_range)
            if isinstance(data, np.ndarray) or keras.ops.is_tensor(data):
                data = [data]
            for batch in data:
                batch = np.asarray(batch[0] if isinstance(batch, tuple) else batch, np.float64)
                scaler.partial_fit(batch.reshape(-1, batch.shape[-1]))
            if not self.built:
                self.build((None, scaler.n_features_in_))
            self.data_min.assign(scaler.data_min_)
            self.data_max.assign(scaler.data_max_)

        def _scale_and_min(self):
            lo, hi = self.feature_range
            low = keras.ops.cast(self.data_min, "float64")
            spread = keras.ops.cast(self.data_max, "float64") - low
            # a zero range becomes 1, as sklearn's _handle_zeros_in_scale does in fit()
            spread = keras.ops.where(keras.ops.equal(spread, 0.0), 1.0, spread)
            scale = (hi - lo) / spread
            return scale, lo - low * scale

        def call(self, inputs):
            scale, minimum = self._scale_and_min()
            x = keras.ops.cast(inputs, "float64")
            y = (x - minimum) / scale if self.invert else x * scale + minimum
            return keras.ops.cast(y, self.compute_dtype)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "feature_range": self.feature_range,
                    "invert": self.invert}

    keras.saving.register_keras_serializable(package="course_reference")(MinMaxScaling)
    return SimpleNamespace(Standardization=keras.layers.Normalization, MinMaxScaling=MinMaxScaling)


def ch02_batch_norm():
    """Keras's BatchNormalization under the student's name (runs in the reference worker)."""
    from types import SimpleNamespace

    import keras

    return SimpleNamespace(BatchNormalization=keras.layers.BatchNormalization)


def ch03_mini_batch():
    """The Keras built-in standing in for the student's SGD (runs in the reference worker).

    ``mini_batches`` has no reference: its checks are properties judged in the parent.
    """
    from types import SimpleNamespace

    import keras

    return SimpleNamespace(SGD=keras.optimizers.SGD)


def ch04_momentum():
    """The stand-ins for the student's classes (runs in the reference worker).

    MomentumSGD is Keras's SGD with this exercise's defaults (momentum 0.9; Keras's SGD default
    is 0.0 and it only accepts a float). EMAMomentum has no Keras built-in: the reference below
    is course code, checked against ``ema_update`` in the project's tests.
    """
    from types import SimpleNamespace

    import keras

    @keras.saving.register_keras_serializable(package="course_reference")
    class MomentumSGD(keras.optimizers.SGD):
        def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=False, **kwargs):
            super().__init__(learning_rate=learning_rate, momentum=float(momentum),
                             nesterov=nesterov, **kwargs)

    @keras.saving.register_keras_serializable(package="course_reference")
    class EMAMomentum(keras.optimizers.Optimizer):
        """v = beta*v + (1-beta)*g; w -= lr*v, written as the interpolation v += (1-beta)*(g-v)."""

        def __init__(self, learning_rate=0.01, beta=0.9, **kwargs):
            super().__init__(learning_rate=learning_rate, **kwargs)
            self.beta = beta

        def build(self, var_list):
            if self.built:
                return
            super().build(var_list)
            self.averages = self.add_optimizer_variables(var_list, "average")

        def update_step(self, gradient, variable, learning_rate):
            dtype = variable.dtype
            average = self.averages[self._get_variable_index(variable)]
            gradient = keras.ops.cast(gradient, dtype)
            self.assign_add(average, keras.ops.multiply(
                keras.ops.subtract(gradient, average), keras.ops.cast(1.0 - self.beta, dtype)))
            self.assign_sub(variable, keras.ops.multiply(average, keras.ops.cast(learning_rate, dtype)))

        def get_config(self):
            return {**super().get_config(), "beta": self.beta}

    return SimpleNamespace(MomentumSGD=MomentumSGD, EMAMomentum=EMAMomentum)


def ch05_rmsprop():
    """The Keras built-in standing in for the student's class (runs in the reference worker)."""
    from types import SimpleNamespace

    import keras

    return SimpleNamespace(RMSprop=keras.optimizers.RMSprop)


def ch06_adam():
    """The Keras built-ins standing in for the student's classes (runs in the reference worker)."""
    from types import SimpleNamespace

    import keras

    class AdamL2(keras.optimizers.Adam):
        """Keras's Adam fed g + l2 * w: the reference for the coupled form."""

        def __init__(self, learning_rate=0.001, l2=0.01, **kwargs):
            super().__init__(learning_rate=learning_rate, **kwargs)
            self.l2 = l2

        def update_step(self, gradient, variable, learning_rate):
            gradient = keras.ops.cast(gradient, variable.dtype) + keras.ops.cast(
                self.l2, variable.dtype) * variable
            super().update_step(gradient, variable, learning_rate)

        def get_config(self):
            return {**super().get_config(), "l2": self.l2}

    keras.saving.register_keras_serializable(package="course_reference")(AdamL2)
    return SimpleNamespace(Adam=keras.optimizers.Adam, AdamW=keras.optimizers.AdamW, AdamL2=AdamL2)


def ch07_lr_decay():
    """The Keras built-ins under the student's names and arguments, and the OneCycle closed form.

    Runs in the reference worker only.
    """
    from types import SimpleNamespace

    import keras
    from keras import ops

    builtins = keras.optimizers.schedules
    register = keras.saving.register_keras_serializable(package="course_reference")

    class Delegating(builtins.LearningRateSchedule):
        """Holds the student's arguments; evaluates a Keras built-in built from them."""

        def __call__(self, step):
            return self.builtin(step)

        def get_config(self):
            return dict(self.arguments)

    @register
    class TimeBasedDecay(Delegating):
        def __init__(self, initial_learning_rate, decay_rate, decay_steps=1):
            self.arguments = dict(initial_learning_rate=initial_learning_rate,
                                  decay_rate=decay_rate, decay_steps=decay_steps)
            self.builtin = builtins.InverseTimeDecay(initial_learning_rate, decay_steps, decay_rate)

    @register
    class StepDecay(Delegating):
        def __init__(self, initial_learning_rate, drop_rate, steps_per_drop):
            self.arguments = dict(initial_learning_rate=initial_learning_rate,
                                  drop_rate=drop_rate, steps_per_drop=steps_per_drop)
            self.builtin = builtins.ExponentialDecay(initial_learning_rate, steps_per_drop,
                                                     drop_rate, staircase=True)

    @register
    class ExponentialDecay(Delegating):
        def __init__(self, initial_learning_rate, decay_rate, decay_steps):
            self.arguments = dict(initial_learning_rate=initial_learning_rate,
                                  decay_rate=decay_rate, decay_steps=decay_steps)
            self.builtin = builtins.ExponentialDecay(initial_learning_rate, decay_steps, decay_rate)

    @register
    class WarmupCosineDecay(Delegating):
        def __init__(self, peak_learning_rate, warmup_steps, decay_steps,
                     initial_learning_rate=0.0, alpha=0.0):
            self.arguments = dict(peak_learning_rate=peak_learning_rate,
                                  warmup_steps=warmup_steps, decay_steps=decay_steps,
                                  initial_learning_rate=initial_learning_rate, alpha=alpha)
            self.builtin = builtins.CosineDecay(
                float(initial_learning_rate), decay_steps, alpha=alpha,
                warmup_target=peak_learning_rate, warmup_steps=warmup_steps)

    @register
    class OneCycle(builtins.LearningRateSchedule):
        def __init__(self, max_learning_rate, total_steps, pct_start=0.3, div_factor=25.0,
                     final_div_factor=1e4):
            self.arguments = dict(max_learning_rate=max_learning_rate, total_steps=total_steps,
                                  pct_start=pct_start, div_factor=div_factor,
                                  final_div_factor=final_div_factor)

        def __call__(self, step):
            return ops.cast(one_cycle(ops.cast(step, "float32"), self.arguments, ops), "float32")

        def get_config(self):
            return dict(self.arguments)

    return SimpleNamespace(TimeBasedDecay=TimeBasedDecay, StepDecay=StepDecay,
                           ExponentialDecay=ExponentialDecay, WarmupCosineDecay=WarmupCosineDecay,
                           OneCycle=OneCycle, LRFinder=None)


DOCTOR_DEFAULTS = {"window": 20, "spike_factor": 4.0, "flat_tolerance": 0.05, "noise_ratio": 0.5,
                   "overfit_patience": 3, "floor": 0.2, "stop_on_nan": True, "verbose": True}

_DOCTOR_WORDS = {  # code: (what the reference doctor says, what it suggests)
    "nan": ("the loss is not finite", "lower the learning rate or clip the gradients"),
    "spike": ("the loss jumped far above its recent median", "clip the gradients or warm up"),
    "noisy": ("the loss jumps around its mean", "a larger batch or a lower learning rate"),
    "flat": ("the loss has hardly come down", "raise the learning rate; check the data"),
    "overfitting": ("validation loss rising while training loss falls", "stop earlier or regularize"),
    "lr_too_high": ("the last window is no lower, only noisier", "decay the learning rate"),
}


class DoctorRules:
    """Chapter 8's doctor rules (the exercise's docstring states them) in plain Python, with
    each known mistake as a ``variant``; ``variant=None`` is the reference.

    It has a callback's hooks, so the grader's driver plays a scripted run to it exactly as to
    a student's doctor, and the reference ``LossCurveDoctor`` below hands its hooks to it.
    """

    def __init__(self, hp: dict, variant: str | None = None):
        self.hp, self.variant = {**DOCTOR_DEFAULTS, **hp}, variant
        self.model = None
        self.on_train_begin()

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        self.losses, self.findings = [], []
        self.epoch, self.batch, self.previous = 0, 0, 0.0
        self.finite, self.last_spike, self.means, self.cvs, self.epochs = [], None, [], [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.previous = epoch, 0.0

    def on_train_batch_begin(self, batch, logs=None):
        pass

    def report(self, code, step, epoch=None, once=True):
        if once and code in {f["code"] for f in self.findings}:
            return
        message, advice = _DOCTOR_WORDS[code]
        self.findings.append({"code": code, "step": step,
                              "epoch": self.epoch if epoch is None else epoch,
                              "message": message, "advice": advice})

    def on_train_batch_end(self, batch, logs=None):
        v, hp = self.variant, self.hp
        w = hp["window"]
        mean, k = float(logs["loss"]), len(self.losses)
        j = k if v == "global_index" else batch
        loss = mean if v == "running_mean" else (j + 1) * mean - j * self.previous
        self.previous, self.batch = mean, batch
        self.losses.append(loss)
        step = batch if v == "steps_restart" else k
        if not math.isfinite(loss):
            if hp["stop_on_nan"] and v != "no_nan_stop":
                self.model.stop_training = True
            self.report("nan", step, once=v != "nan_repeated")
            if v != "nan_in_windows":
                return
        spaced = (v == "spike_every_batch" or self.last_spike is None
                  or step >= self.last_spike + w)
        if len(self.finite) >= w and spaced:
            recent = self.finite[-w:]
            if v == "spike_mean":
                level = float(np.mean(recent))
            else:
                level = float(np.median(self.finite if v == "spike_all_past" else recent))
            if loss > hp["spike_factor"] * self.level(level):
                self.last_spike = step
                self.report("spike", step, once=False)
        self.finite.append(loss)
        if (len(self.finite) >= w if v == "overlapping_windows" else len(self.finite) % w == 0):
            self.close_window(step)

    def level(self, value: float) -> float:
        """The level a rule measures against: ``value``, or ``floor`` times the first window's
        |mean| where that is larger (the "no_floor" mistake leaves it out)."""
        if self.variant == "no_floor" or not self.means:
            return value
        return max(value, self.hp["floor"] * abs(self.means[0]))

    def close_window(self, step):
        hp, once = self.hp, self.variant != "findings_repeated"
        window = np.asarray(self.finite[-hp["window"]:], dtype=np.float64)
        with np.errstate(all="ignore"):
            level, std = float(window.mean()), float(window.std())
        self.means.append(level)
        scale = self.level(abs(level))
        cv = std / scale if scale else (math.inf if std else 0.0)
        self.cvs.append(cv)
        if cv > hp["noise_ratio"]:
            self.report("noisy", step, once=once)
        if len(self.means) >= 3 and level > (1 - hp["flat_tolerance"]) * self.means[0]:
            self.report("flat", step, once=once)

    def on_epoch_end(self, epoch, logs=None):
        v = self.variant
        train, val = (logs or {}).get("loss"), (logs or {}).get("val_loss")
        if train is None or val is None:
            return
        train, val = float(train), float(val)
        if not all(map(math.isfinite, (train, val))):
            return
        self.epochs.append((epoch, train, val))
        best_epoch, best_train, _ = min(self.epochs, key=lambda row: row[2])
        waited, patience = epoch - best_epoch, self.hp["overfit_patience"]
        if v == "overfit_no_patience":
            patient = waited >= 1
        elif v == "overfit_patience_off_by_one":
            patient = waited > patience
        else:
            patient = waited >= patience
        if patient and (v == "overfit_ignores_training" or train < best_train):
            self.report("overfitting", None, epoch=epoch)

    def on_train_end(self, logs=None):
        if (len(self.means) >= 2 and self.means[-1] >= self.means[-2]
                and self.cvs[-1] > self.hp["noise_ratio"]):
            last = self.batch if self.variant == "steps_restart" else len(self.losses) - 1
            self.report("lr_too_high", last)


def ch08_training_recipe():
    """The course's reference doctor and Keras's own gradient accumulation under the student's
    names (runs in the reference worker, and in chapter 8 while a stub is not implemented).

    ``LossCurveDoctor`` is a Keras callback around ``DoctorRules`` (the rules the exercise's
    docstring states, written once; the grader's known mistakes are its variants).
    ``AccumulateGradients`` takes the student's arguments and runs Keras's
    ``gradient_accumulation_steps`` and ``global_clipnorm`` on an optimizer of the wrapped one's
    class, built from its config: the numbers the exercise must reproduce. (A config does not
    carry ``exclude_from_weight_decay``: exclusions set on the wrapped optimizer are not seen by
    this reference.)
    """
    from types import SimpleNamespace

    import keras

    register = keras.saving.register_keras_serializable(package="course_reference")

    @register
    class LossCurveDoctor(keras.callbacks.Callback):
        def __init__(self, window=20, spike_factor=4.0, flat_tolerance=0.05, noise_ratio=0.5,
                     overfit_patience=3, floor=0.2, stop_on_nan=True, verbose=True):
            super().__init__()
            settings = {"window": window, "spike_factor": spike_factor,
                        "flat_tolerance": flat_tolerance, "noise_ratio": noise_ratio,
                        "overfit_patience": overfit_patience, "floor": floor,
                        "stop_on_nan": bool(stop_on_nan), "verbose": bool(verbose)}
            for name in ("window", "overfit_patience"):
                low = 2 if name == "window" else 1
                if isinstance(settings[name], bool) or int(settings[name]) != settings[name] \
                        or settings[name] < low:
                    raise ValueError(f"{name} must be an integer >= {low}, got {settings[name]!r}")
            if not (spike_factor > 1 and 0 <= flat_tolerance < 1 and noise_ratio > 0
                    and 0 <= floor < 1):
                raise ValueError("spike_factor must be > 1, flat_tolerance and floor in [0, 1) "
                                 "and noise_ratio > 0")
            self.settings = {**settings, "window": int(window),
                             "overfit_patience": int(overfit_patience),
                             "spike_factor": float(spike_factor),
                             "flat_tolerance": float(flat_tolerance),
                             "noise_ratio": float(noise_ratio), "floor": float(floor)}
            self.rules = DoctorRules(self.settings)

        losses = property(lambda self: self.rules.losses)
        findings = property(lambda self: self.rules.findings)

        def set_model(self, model):
            super().set_model(model)
            self.rules.set_model(model)

        def on_train_begin(self, logs=None):
            self.rules.on_train_begin(logs)

        def on_epoch_begin(self, epoch, logs=None):
            self.rules.on_epoch_begin(epoch, logs)

        def on_train_batch_end(self, batch, logs=None):
            known = len(self.findings)
            self.rules.on_train_batch_end(batch, logs)
            self._say(known)

        def on_epoch_end(self, epoch, logs=None):
            known = len(self.findings)
            self.rules.on_epoch_end(epoch, logs)
            self._say(known)

        def on_train_end(self, logs=None):
            known = len(self.findings)
            self.rules.on_train_end(logs)
            self._say(known)
            if self.settings["verbose"]:
                print(self.summary())

        def _say(self, known):
            if self.settings["verbose"]:
                for finding in self.findings[known:]:
                    print(self._line(finding))

        @staticmethod
        def _line(f):
            return f"[{f['code']}] step {f['step']}, epoch {f['epoch']}: {f['message']} ({f['advice']})"

        def summary(self):
            return "\n".join(map(self._line, self.findings)) or "no finding: the run looks healthy"

        def get_config(self):
            return dict(self.settings)

        @classmethod
        def from_config(cls, config):
            return cls(**config)

    @register
    class AccumulateGradients(keras.optimizers.Optimizer):
        def __init__(self, optimizer, steps=2, global_clipnorm=None, **kwargs):
            super().__init__(learning_rate=0.0, **kwargs)
            problem = (
                "optimizer must be a keras Optimizer" if not isinstance(
                    optimizer, keras.optimizers.Optimizer)
                else "steps must be an integer >= 1" if (
                    isinstance(steps, bool) or int(steps) != steps or steps < 1)
                else "global_clipnorm must be > 0 or None" if (
                    global_clipnorm is not None and not global_clipnorm > 0)
                else "the optimizer to wrap accumulates gradients already" if (
                    getattr(optimizer, "gradient_accumulation_steps", None))
                else None)
            if problem:
                error = TypeError if problem.startswith("optimizer") else ValueError
                raise error(f"{problem} (got optimizer={optimizer!r}, steps={steps!r}, "
                            f"global_clipnorm={global_clipnorm!r})")
            self.optimizer, self.steps, self.global_clipnorm = optimizer, int(steps), global_clipnorm
            # Keras refuses a global_clipnorm on top of the optimizer's own clipping
            self.accumulating = type(optimizer).from_config(
                {**optimizer.get_config(),
                 "gradient_accumulation_steps": self.steps if self.steps > 1 else None,
                 "global_clipnorm": global_clipnorm})

        def build(self, var_list):
            if self.built:
                return
            super().build(var_list)
            self.accumulating.build(var_list)

        @property
        def variables(self):
            return self.accumulating.variables

        @property
        def iterations(self):
            return self.accumulating.iterations

        @property
        def learning_rate(self):
            return self.accumulating.learning_rate

        @learning_rate.setter
        def learning_rate(self, value):
            self.accumulating.learning_rate = value

        def apply(self, grads, trainable_variables=None):
            if not self.built and trainable_variables is not None:
                self.build(list(trainable_variables))
            self.accumulating.apply(grads, trainable_variables)

        def get_config(self):
            return {"name": self.name, "optimizer": keras.optimizers.serialize(self.optimizer),
                    "steps": self.steps, "global_clipnorm": self.global_clipnorm}

        @classmethod
        def from_config(cls, config, custom_objects=None):
            inner = keras.optimizers.deserialize(config["optimizer"], custom_objects=custom_objects)
            return cls(inner, **{k: v for k, v in config.items() if k != "optimizer"})

    return SimpleNamespace(LossCurveDoctor=LossCurveDoctor,
                           AccumulateGradients=AccumulateGradients)
