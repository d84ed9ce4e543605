"""Checks for chapter 7: five learning-rate schedules and the LR range test (``LRFinder``).

Schedules (see ``schedule_suite``) are compared with the Keras built-ins, wrapped under the
student's names and arguments; ``OneCycle``, which Keras lacks, with the closed form below (the
course's tests compare that closed form with PyTorch's ``OneCycleLR``). Each closed form is written
once for NumPy and ``keras.ops`` alike, with the known-wrong variants the feedback names.

``LRFinder`` has no built-in to compare with: its checks are judged here, in the parent, against
the behaviour docs/grader-contract.md specifies (``finder_model``). Four checks drive its hooks directly with a
scripted loss sequence and a stand-in model (exact, and out of the student's reach); one runs it in
a real ``model.fit`` and checks that what it recorded agrees with what the training run logged;
one checks that it refuses a schedule.
"""

from __future__ import annotations

import math

import numpy as np

from course.backends import to_numpy

from course.grader.compare import default_judge
from course.grader.optimizer_suite import build_model, draw_fit_data
from course.grader.schedule_suite import ScheduleSpec, schedule_checks
from course.grader.spec import Check, Exercise, Mistake
from course.references import one_cycle

# Every schedule Keras ships: an exercise may not subclass, wrap or call any of them.
KERAS_SCHEDULES = ("InverseTimeDecay", "ExponentialDecay", "CosineDecay", "CosineDecayRestarts",
                   "PiecewiseConstantDecay", "PolynomialDecay")

# --------------------------------------------------------------------------------------------
# Closed forms (``xp`` is numpy or keras.ops; ``s`` is a float array or float32 tensor)


def time_based(s, kw, xp, variant=None):
    p = s / kw.get("decay_steps", 1)
    if variant == "floor":
        p = xp.floor(p)
    return kw["initial_learning_rate"] / (1.0 + kw["decay_rate"] * p)


def step_decay(s, kw, xp, variant=None):
    p = s / kw["steps_per_drop"]
    if variant != "continuous":
        p = xp.floor(p)
    return kw["initial_learning_rate"] * xp.power(kw["drop_rate"], p)


def exponential(s, kw, xp, variant=None):
    p = s / kw["decay_steps"]
    if variant == "floor":
        p = xp.floor(p)
    return kw["initial_learning_rate"] * xp.power(kw["decay_rate"], p)


def warmup_cosine(s, kw, xp, variant=None):
    warmup, decay = float(kw["warmup_steps"]), float(kw["decay_steps"])
    start, peak = float(kw.get("initial_learning_rate", 0.0)), float(kw["peak_learning_rate"])
    alpha = float(kw.get("alpha", 0.0))
    if variant != "no_clamp":
        s = xp.minimum(s, warmup + decay)
    if variant == "warmup_from_zero":
        start = 0.0
    warm = start + (peak - start) * s / max(warmup, 1.0)
    if variant == "cosine_over_total":
        progress = xp.maximum(s - warmup, 0.0) / (warmup + decay)
    elif variant == "cosine_from_zero_over_total":
        progress = s / (warmup + decay)
    else:
        progress = xp.maximum(s - warmup, 0.0) / decay
    cosine = 0.5 * (1.0 + xp.cos(math.pi * progress))
    if variant == "alpha_ignored":
        alpha = 0.0
    return xp.where(s < warmup, warm, peak * ((1.0 - alpha) * cosine + alpha))


# --------------------------------------------------------------------------------------------
# The five schedule specs


def _decay_period(rng, horizon):
    return int(rng.integers(max(2, horizon // 20), max(3, horizon // 5) + 1))


def _draw_time_based(rng, horizon):
    return {"initial_learning_rate": float(rng.uniform(0.1, 1.0)),
            "decay_rate": float(rng.uniform(0.5, 2.0)), "decay_steps": _decay_period(rng, horizon)}


def _draw_step(rng, horizon):
    return {"initial_learning_rate": float(rng.uniform(0.1, 1.0)),
            "drop_rate": float(rng.uniform(0.3, 0.7)), "steps_per_drop": _decay_period(rng, horizon)}


def _draw_exponential(rng, horizon):
    return {"initial_learning_rate": float(rng.uniform(0.1, 1.0)),
            "decay_rate": float(rng.uniform(0.3, 0.7)), "decay_steps": _decay_period(rng, horizon)}


def _draw_warmup_cosine(rng, horizon):
    peak = float(rng.uniform(0.1, 1.0))
    # a non-zero start exposes a warmup that ignores initial_learning_rate, a non-zero alpha a
    # floor that is ignored
    return {"peak_learning_rate": peak,
            "warmup_steps": int(rng.integers(max(3, horizon // 10), max(4, horizon // 4) + 1)),
            "decay_steps": int(rng.integers(max(6, horizon // 4), max(7, horizon // 2) + 1)),
            "initial_learning_rate": float(rng.uniform(0.1, 0.4)) * peak,
            "alpha": float(rng.uniform(0.1, 0.3))}


def _draw_one_cycle(rng, horizon):
    # a final_div_factor of 10-100 keeps the end of the cycle far above the tolerance
    return {"max_learning_rate": float(rng.uniform(0.1, 1.0)),
            "total_steps": int(rng.integers(max(12, horizon // 2), horizon + 1)),
            "pct_start": float(rng.uniform(0.2, 0.45)), "div_factor": float(rng.uniform(5.0, 30.0)),
            "final_div_factor": float(rng.uniform(10.0, 100.0))}


FLOOR_HINT = ("this schedule decays continuously: use s / decay_steps as it is; a floor() turns "
              "it into a staircase (Keras's staircase=True), which is StepDecay's job.")

SCHEDULES = (
    ScheduleSpec(
        "TimeBasedDecay", time_based, _draw_time_based,
        landmarks=lambda kw: [kw["decay_steps"], 2 * kw["decay_steps"]],
        mistakes=(("floor", "a floor (staircase) in a continuous decay", FLOOR_HINT),)),
    ScheduleSpec(
        "StepDecay", step_decay, _draw_step,
        landmarks=lambda kw: [k * kw["steps_per_drop"] for k in (1, 2, 3)],
        mistakes=(("continuous", "a continuous decay where the rate should drop in steps",
                   "step decay keeps the rate constant between drops: the exponent is "
                   "floor(s / steps_per_drop), not s / steps_per_drop."),)),
    ScheduleSpec(
        "ExponentialDecay", exponential, _draw_exponential,
        landmarks=lambda kw: [kw["decay_steps"], 2 * kw["decay_steps"]],
        mistakes=(("floor", "a floor (staircase) in a continuous decay", FLOOR_HINT),)),
    ScheduleSpec(
        "WarmupCosineDecay", warmup_cosine, _draw_warmup_cosine,
        landmarks=lambda kw: [kw["warmup_steps"], kw["warmup_steps"] + kw["decay_steps"]],
        mistakes=(
            ("cosine_over_total", "cosine over warmup + decay steps instead of decay steps",
             "the cosine starts when the warmup ends and lasts decay_steps: its progress is "
             "(s - warmup_steps) / decay_steps, not divided by warmup_steps + decay_steps."),
            ("cosine_from_zero_over_total", "cosine over warmup + decay steps instead of decay steps",
             "the cosine starts when the warmup ends and lasts decay_steps: its progress is "
             "(s - warmup_steps) / decay_steps, not s / (warmup_steps + decay_steps)."),
            ("warmup_from_zero", "warmup that ignores initial_learning_rate",
             "the warmup is a straight line from initial_learning_rate (not from 0) to the peak: "
             "initial + (peak - initial) * s / warmup_steps."),
            ("alpha_ignored", "alpha ignored",
             "the cosine ends at alpha * peak, not at 0: peak * ((1 - alpha) * cosine + alpha)."),
            ("no_clamp", "no clamp after the end of the decay",
             "past warmup_steps + decay_steps the rate must stay at alpha * peak; without "
             "min(s, warmup_steps + decay_steps) the cosine climbs back up."),
        )),
    ScheduleSpec(
        "OneCycle", one_cycle, _draw_one_cycle,
        landmarks=lambda kw: [kw["pct_start"] * kw["total_steps"] - 1, kw["total_steps"] - 1],
        mistakes=(
            ("linear", "linear instead of cosine annealing",
             "both phases follow half a cosine: anneal(a, b, p) = b + (a - b) / 2 * "
             "(cos(pi * p) + 1), not a + (b - a) * p."),
            ("phase_end_off_by_one", "phase 1 ending one step late",
             "phase 1 ends at step pct_start * total_steps - 1 (PyTorch's convention), where the "
             "rate reaches max_learning_rate."),
            ("no_clamp", "no clamp after the last step",
             "steps past total_steps - 1 must give the final rate; clamp the step with "
             "ops.minimum(s, total_steps - 1)."),
        )),
)

# --------------------------------------------------------------------------------------------
# LRFinder: its specified behaviour (docs/grader-contract.md), as a NumPy model of what it records

FINDER_DEFAULTS = {"start_lr": 1e-7, "end_lr": 10.0, "num_steps": 100, "beta": 0.98,
                   "diverge_factor": 4.0}
SUGGESTION_DEFAULTS = {"skip_start": 10, "skip_end": 5}


def finder_rate(hp: dict, k, variant=None):
    if variant == "linear_ramp":
        return hp["start_lr"] + (hp["end_lr"] - hp["start_lr"]) * k / (hp["num_steps"] - 1)
    return hp["start_lr"] * (hp["end_lr"] / hp["start_lr"]) ** (k / (hp["num_steps"] - 1))


def finder_model(hp: dict, means, batch_index, available: int, variant=None) -> dict:
    """What a finder records, given the running means Keras logs after each batch.

    ``means[k]`` is ``logs["loss"]`` after batch k and ``batch_index[k]`` its index in its epoch;
    ``available`` is how many batches the training run could give at most.
    """
    beta, factor = hp["beta"], hp["diverge_factor"]
    lrs, losses = [], []
    avg, best, previous, stop = 0.0, math.inf, 0.0, None
    for k, (mean, n) in enumerate(zip(means, batch_index)):
        mean, n = float(mean), int(n)
        loss = mean if variant == "running_mean" else (n + 1) * mean - n * previous
        previous = mean
        avg = beta * avg + (1 - beta) * loss
        smoothed = avg if variant == "no_debias" else avg / (1 - beta ** (k + 1))
        lrs.append(finder_rate(hp, k, variant))
        losses.append(smoothed)
        diverged = not math.isfinite(smoothed) or smoothed > factor * best
        best = min(best, smoothed)
        if (diverged and variant != "no_divergence_stop") or k + 1 >= hp["num_steps"]:
            stop = k + 1
            break
    batches = stop if stop is not None else min(available, hp["num_steps"])
    return {"lrs": to_numpy(lrs[:batches]), "losses": to_numpy(losses[:batches]),
            "batches run": batches,
            "rates in force": to_numpy([finder_rate(hp, k, variant) for k in range(batches)],
                                         dtype=np.float32).astype(np.float64)}


def running_means(script, steps_per_epoch: int) -> tuple[list[float], list[int]]:
    """What Keras would log for a sequence of batch losses: each epoch's running mean."""
    means, index, total = [], [], 0.0
    for k, loss in enumerate(script):
        n = k % steps_per_epoch
        total = loss if n == 0 else total + loss
        means.append(total / (n + 1))
        index.append(n)
    return means, index


# The stand-in model of the scripted checks: what a callback touches, and nothing else.

class _FakeOptimizer:
    def __init__(self, learning_rate):
        self.learning_rate = learning_rate


class _FakeModel:
    def __init__(self, weights, learning_rate):
        self.optimizer = _FakeOptimizer(learning_rate)
        self.weights_now = [np.array(w) for w in weights]
        self.stop_training = False

    def get_weights(self):
        return [np.array(w) for w in self.weights_now]

    def set_weights(self, weights):
        self.weights_now = [np.array(w) for w in weights]


def drive_finder(finder, script, steps_per_epoch: int, weights, learning_rate: float) -> dict:
    """Call a finder's hooks in Keras's order over a scripted loss sequence.

    Between batches the stand-in's weights change (as training would change them), so a finder
    that does not restore them is seen. Stops as ``model.fit`` does once ``stop_training`` is set.
    """
    model = _FakeModel(weights, learning_rate)
    finder.set_model(model)
    finder.on_train_begin({})
    means, index = running_means(script, steps_per_epoch)
    in_force, k, epoch = [], 0, 0
    while k < len(script) and not model.stop_training:
        finder.on_epoch_begin(epoch, {})
        for n in range(steps_per_epoch):
            if k >= len(script):
                break
            finder.on_train_batch_begin(n, {})
            in_force.append(float(np.float32(model.optimizer.learning_rate)))
            finder.on_train_batch_end(n, {"loss": means[k]})
            model.weights_now = [w + 1.0 for w in model.weights_now]
            k += 1
            if model.stop_training:
                break
        finder.on_epoch_end(epoch, {})
        epoch += 1
    finder.on_train_end({})
    return {"lrs": to_numpy(finder.lrs, dtype=np.float64),
            "losses": to_numpy(finder.losses, dtype=np.float64),
            "rates in force": to_numpy(in_force, dtype=np.float64), "batches run": k,
            "weights after the test": np.concatenate([np.ravel(w) for w in model.weights_now]),
            "learning rate after the test": float(model.optimizer.learning_rate)}


# Scripted loss sequences

def _draw_finder_hp(rng, num_steps):
    return {"start_lr": float(10 ** rng.uniform(-6, -4)), "end_lr": float(10 ** rng.uniform(0, 1)),
            "num_steps": int(num_steps), "beta": float(rng.uniform(0.6, 0.85)),
            "diverge_factor": float(rng.uniform(3.0, 5.0))}


def _smooth_script(rng, length):
    """A loss that falls and levels off, with noise: never diverges."""
    k = np.arange(length)
    return list(2.0 * np.exp(-k / rng.uniform(6, 12)) + 0.5 + rng.uniform(-0.05, 0.05, length))


def _ramp_inputs(rng):
    num_steps = int(rng.integers(25, 36))
    return {"hp": _draw_finder_hp(rng, num_steps), "script": _smooth_script(rng, num_steps + 6),
            "steps_per_epoch": int(rng.integers(6, 11)),
            "weights": [rng.normal(size=(3, 2)), rng.normal(size=2)],
            "learning_rate": float(rng.uniform(0.01, 0.1))}


def _divergence_inputs(rng):
    hp = _draw_finder_hp(rng, 100)
    burst = int(rng.integers(12, 20))
    base = _smooth_script(rng, 60)
    exploding = [v if k < burst else v * 1.6 ** (k - burst + 1) for k, v in enumerate(base)]
    nan_at = int(rng.integers(8, 20))
    with_nan = [v if k != nan_at else float("nan") for k, v in enumerate(base)]
    return {"hp": hp, "exploding": exploding, "with_nan": with_nan,
            "steps_per_epoch": int(rng.integers(6, 11)),
            "weights": [rng.normal(size=(2, 2))], "learning_rate": 0.05}


def _scripted_run(impl, inputs, script):
    finder = impl.LRFinder(**inputs["hp"])
    return drive_finder(finder, script, inputs["steps_per_epoch"],
                        [to_numpy(w) for w in inputs["weights"]], inputs["learning_rate"])


def run_ramp(impl, inputs, ctx):
    out = _scripted_run(impl, inputs, inputs["script"])
    return {k: out[k] for k in ("lrs", "losses", "rates in force", "batches run")}


def run_divergence(impl, inputs, ctx):
    out = {}
    for name in ("exploding", "with_nan"):
        run = _scripted_run(impl, inputs, inputs[name])
        out[f"batches run ({name})"] = run["batches run"]
        out[f"rates recorded ({name})"] = len(run["lrs"])
    return out


def run_restore(impl, inputs, ctx):
    out = _scripted_run(impl, inputs, inputs["script"])
    return {k: out[k] for k in ("weights after the test", "learning rate after the test")}


def _scripted_expected(inputs, script, variant=None):
    means, index = running_means(script, inputs["steps_per_epoch"])
    return finder_model(inputs["hp"], means, index, len(script), variant)


def _ramp_expected(inputs, variant=None):
    return _scripted_expected(inputs, inputs["script"], variant)


def _divergence_expected(inputs, variant=None):
    out = {}
    for name in ("exploding", "with_nan"):
        model = _scripted_expected(inputs, inputs[name], variant)
        out[f"batches run ({name})"] = model["batches run"]
        out[f"rates recorded ({name})"] = model["batches run"]
    return out


def _restore_expected(inputs, variant=None):
    weights = np.concatenate([np.ravel(w) for w in inputs["weights"]])
    out = {"weights after the test": weights, "learning rate after the test": inputs["learning_rate"]}
    batches = _ramp_expected(inputs)["batches run"]
    if variant == "no_restore":  # training moved the stand-in's weights by 1 per batch
        out = {"weights after the test": weights + batches}
    elif variant == "no_restore_rate":
        out = {"learning rate after the test": finder_rate(inputs["hp"], batches - 1)}
    return out


# Suggestion: set the documented attributes, ask, compare with the slope computed here.

def suggestion_model(lrs, losses, skip_start, skip_end, variant=None):
    stop = len(lrs) - skip_end
    if variant == "no_skip":
        skip_start, stop = 0, len(lrs)
    lrs, losses = to_numpy(lrs[skip_start:stop]), to_numpy(losses[skip_start:stop])
    if variant == "min_loss":
        return float(lrs[int(np.argmin(losses))])
    return float(lrs[int(np.argmin(np.gradient(losses, np.log10(lrs))))])


def _suggestion_inputs(rng):
    n = int(rng.integers(50, 70))
    lrs = 1e-5 * (1e6) ** (np.arange(n) / (n - 1))
    x = np.log10(lrs)
    # a plateau, a steep fall around x0, a minimum, then the climb of divergence
    x0 = float(rng.uniform(-3.0, -1.5))
    losses = (2.0 - 1.5 / (1 + np.exp(-(x - x0) * rng.uniform(2.5, 4.0)))
              + 0.8 * np.exp(2.0 * (x - 0.2)) + rng.normal(0, 0.01, n))
    # a noisy first point and a huge last one: what skip_start and skip_end are for
    losses[0], losses[1], losses[-1] = 8.0, 5.0, 1e3
    lrs, losses = [float(v) for v in lrs], [float(v) for v in losses]
    # a second window that starts just past the steepest point: its answer differs, so a
    # suggestion() that ignores its arguments is seen
    steepest = lrs.index(suggestion_model(lrs, losses, **SUGGESTION_DEFAULTS))
    return {"lrs": lrs, "losses": losses, "skip": [steepest + 3, int(rng.integers(2, 5))]}


def run_suggestion(impl, inputs, ctx):
    finder = impl.LRFinder()
    finder.lrs, finder.losses = list(inputs["lrs"]), list(inputs["losses"])
    out = {"suggestion()": float(finder.suggestion()),
           "suggestion(skip_start, skip_end)": float(finder.suggestion(*inputs["skip"]))}
    try:
        finder.suggestion(skip_start=len(inputs["lrs"]) - 6, skip_end=5)
        out["a window of 1 point raises ValueError"] = False
    except ValueError:
        out["a window of 1 point raises ValueError"] = True
    return out


def _suggestion_expected(inputs, variant=None):
    return {"suggestion()": suggestion_model(inputs["lrs"], inputs["losses"],
                                             SUGGESTION_DEFAULTS["skip_start"],
                                             SUGGESTION_DEFAULTS["skip_end"], variant),
            "suggestion(skip_start, skip_end)": suggestion_model(
                inputs["lrs"], inputs["losses"], *inputs["skip"], variant=variant),
            **({} if variant else {"a window of 1 point raises ValueError": True})}


# The real model.fit: the finder's records must agree with what the run logged.

def _fit_inputs(rng):
    data = draw_fit_data(rng, n=64)
    data["hp"] = {"start_lr": 1e-4, "end_lr": float(rng.uniform(30.0, 60.0)), "num_steps": 40,
                  "beta": float(rng.uniform(0.6, 0.8)), "diverge_factor": 4.0}
    data["learning_rate"] = float(rng.uniform(0.01, 0.05))
    data["epochs"], data["batch_size"] = 6, 8  # 48 batches available, equal sizes
    return data


def run_finder_fit(impl, inputs, ctx):
    import keras

    class Probe(keras.callbacks.Callback):
        """After the finder in the list: sees the rate it set and the logs it read."""

        def __init__(self):
            super().__init__()
            self.in_force, self.means, self.index = [], [], []

        def on_train_batch_begin(self, batch, logs=None):
            self.in_force.append(float(to_numpy(self.model.optimizer.learning_rate)))

        def on_train_batch_end(self, batch, logs=None):
            self.means.append(float(logs["loss"]))
            self.index.append(int(batch))

    model = build_model(inputs)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=inputs["learning_rate"]),
                  loss="mse")
    before = np.concatenate([np.ravel(w) for w in model.get_weights()])
    finder, probe = impl.LRFinder(**inputs["hp"]), Probe()
    model.fit(inputs["x"], inputs["y"], batch_size=inputs["batch_size"], epochs=inputs["epochs"],
              shuffle=False, verbose=0, callbacks=[finder, probe])
    return {"lrs": to_numpy(finder.lrs, dtype=np.float64),
            "losses": to_numpy(finder.losses, dtype=np.float64),
            "rates in force": to_numpy(probe.in_force), "batches run": len(probe.means),
            "logged means": to_numpy(probe.means), "logged batch index": to_numpy(probe.index),
            "weights before": before,
            "weights after the test": np.concatenate([np.ravel(w) for w in model.get_weights()]),
            "learning rate after the test": float(to_numpy(model.optimizer.learning_rate))}


def _fit_expected(inputs, variant=None):
    seen = inputs["observed"]
    available = inputs["epochs"] * (len(inputs["x"]) // inputs["batch_size"])
    out = finder_model(inputs["hp"], seen["logged means"], seen["logged batch index"], available,
                       variant)
    if variant is None:
        out["weights after the test"] = to_numpy(seen["weights before"])
        out["learning rate after the test"] = float(np.float32(inputs["learning_rate"]))
    elif variant == "no_restore_rate":
        out = {"learning rate after the test": out["rates in force"][-1]}
    return out


# A schedule as the rate: the finder must refuse it clearly.

def run_schedule_refused(impl, inputs, ctx):
    import keras

    class Constant(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return keras.ops.cast(0.01, "float32")

        def get_config(self):
            return {}

    out = {}
    for policy in ("float32", "mixed_float16"):
        keras.config.set_dtype_policy(policy)
        try:
            model = build_model(inputs)
            model.compile(optimizer=keras.optimizers.SGD(learning_rate=Constant()), loss="mse")
            model.fit(inputs["x"], inputs["y"], batch_size=16, epochs=1, verbose=0,
                      callbacks=[impl.LRFinder(num_steps=5)])
            out[f"raised ({policy})"], message = False, ""
        except Exception as exc:  # noqa: BLE001 - any error counts; its message is judged
            out[f"raised ({policy})"], message = True, f"{type(exc).__name__}: {exc}"
        finally:
            keras.config.set_dtype_policy("float32")
        out[f"the error mentions the schedule ({policy})"] = "schedule" in message.lower()
    return out


def run_finder_interface(impl, inputs, ctx):
    import inspect

    import keras

    out = {"is a keras Callback": issubclass(impl.LRFinder, keras.callbacks.Callback)}
    for method, defaults in (("__init__", FINDER_DEFAULTS), ("suggestion", SUGGESTION_DEFAULTS)):
        parameters = inspect.signature(getattr(impl.LRFinder, method)).parameters
        for name in defaults:
            p = parameters.get(name)
            value = p.default if p is not None else "<missing>"
            out[f"{method} default {name}"] = (float(value) if isinstance(value, (int, float))
                                                else repr(value))
    finder = impl.LRFinder()
    out["lrs starts empty"] = list(finder.lrs) == []
    out["losses starts empty"] = list(finder.losses) == []
    return out


def _interface_expected(inputs, variant=None):
    out = {"is a keras Callback": True, "lrs starts empty": True, "losses starts empty": True}
    for method, defaults in (("__init__", FINDER_DEFAULTS), ("suggestion", SUGGESTION_DEFAULTS)):
        out.update({f"{method} default {k}": float(v) for k, v in defaults.items()})
    return out


def _refused_expected(inputs, variant=None):
    return {f"{key} ({policy})": True for policy in ("float32", "mixed_float16")
            for key in ("raised", "the error mentions the schedule")}


# Judging LRFinder checks in the parent: the expected values come from the model above, and each
# known mistake is the model run with that variant.

NO_DEBIAS = ("no_debias", "no debiasing of the smoothed loss",
             "the running average starts at 0, so early on it is far too small (as Adam's moments "
             "are): record avg / (1 - beta ** (k + 1)), with k counting batches from 0.")
LINEAR_RAMP = ("linear_ramp", "a linear rate ramp",
               "the range test spans many orders of magnitude, so the rate grows geometrically: "
               "start_lr * (end_lr / start_lr) ** (k / (num_steps - 1)).")
RUNNING_MEAN = ("running_mean", "Keras's running epoch mean taken as the batch loss",
                "in Keras 3, logs['loss'] after batch n of an epoch is the mean of batches 0..n; "
                "this batch's loss is (n + 1) * mean_n - n * mean_(n-1), with n the `batch` "
                "argument (it restarts at 0 every epoch).")
NO_STOP = ("no_divergence_stop", "no stop on divergence",
           "after recording, set self.model.stop_training = True when the smoothed loss is NaN or "
           "above diverge_factor times the lowest smoothed loss so far.")
_RESTORE_HINT = ("the range test trains the model at absurd rates: save model.get_weights() and "
                 "the rate in on_train_begin and put both back in on_train_end.")
NO_RESTORE = ("no_restore", "weights not restored after the test", _RESTORE_HINT)
NO_RESTORE_RATE = ("no_restore_rate", "learning rate not restored after the test", _RESTORE_HINT)
MIN_LOSS = ("min_loss", "the rate of the lowest loss instead of the steepest descent",
            "the lowest loss is already at the edge of divergence; suggest the rate where the "
            "loss falls fastest: argmin of numpy.gradient(losses, numpy.log10(lrs)).")
NO_SKIP = ("no_skip", "skip_start / skip_end ignored",
           "look only at lrs[skip_start : len(lrs) - skip_end]: the first points are noise and the "
           "last ones diverge.")


def _parent_judged(name: str, expected, variants=(), rtol: float = 1e-4, atol: float = 1e-9,
                   observed: bool = False, **kwargs) -> Check:
    """A check judged against ``expected(inputs)`` computed here; variants name the mistakes.

    With ``observed`` the student's own recorded run is passed to the model as
    ``inputs["observed"]`` (the real-fit check, whose losses only that run knows).
    """
    mistakes = tuple(Mistake(label, hint, outputs=lambda i, _v=variant: expected(i, _v), id=variant)
                     for variant, label, hint in variants)

    def judge(student, reference, inputs):
        if observed:
            inputs = {**inputs, "observed": student}
        check = Check(name, kwargs["run"], "", rtol=rtol, atol=atol, mistakes=mistakes)
        return default_judge(check, student, expected(inputs), inputs)

    return Check(name, rtol=rtol, atol=atol, mistakes=mistakes, judge=judge,
                 needs_reference=False, **kwargs)


FINDER_CHECKS = [
    _parent_judged("lrfinder.interface", _interface_expected, run=run_finder_interface,
                   weight=0.5, description="a keras Callback with the specified defaults"),
    _parent_judged("lrfinder.ramp_and_smoothing", _ramp_expected, (NO_DEBIAS, LINEAR_RAMP,
                                                                   RUNNING_MEAN),
                   run=run_ramp, inputs=_ramp_inputs, weight=1.5,
                   description="scripted losses over several epochs: the geometric rate ramp, "
                               "the debiased smoothed loss, the stop after num_steps"),
    _parent_judged("lrfinder.divergence_stop", _divergence_expected, (NO_STOP,),
                   run=run_divergence, inputs=_divergence_inputs,
                   description="scripted losses that explode, or turn NaN: training stops there"),
    _parent_judged("lrfinder.restore", _restore_expected, (NO_RESTORE, NO_RESTORE_RATE),
                   run=run_restore,
                   inputs=_ramp_inputs,
                   description="weights and learning rate put back after the test"),
    _parent_judged("lrfinder.suggestion", _suggestion_expected, (MIN_LOSS, NO_SKIP),
                   rtol=1e-9, run=run_suggestion, inputs=_suggestion_inputs,
                   description="suggestion(): the steepest descent of the loss against "
                               "log10(rate), in the skip window"),
    _parent_judged("lrfinder.fit", _fit_expected, (NO_DEBIAS, LINEAR_RAMP, RUNNING_MEAN, NO_STOP,
                                                   NO_RESTORE_RATE),
                   observed=True, run=run_finder_fit, inputs=_fit_inputs, weight=1.5,
                   description="a real model.fit: the rates set, the losses recorded, the stop on "
                               "divergence, weights and rate restored"),
    _parent_judged("lrfinder.refuses_schedule", _refused_expected, run=run_schedule_refused,
                   inputs=lambda rng: draw_fit_data(rng, n=32), weight=0.5,
                   description="a clear error when the optimizer's rate is a schedule (also "
                               "under mixed_float16)"),
]


# --------------------------------------------------------------------------------------------
# The reference namespace


EXERCISE = Exercise(
    stem="ch07_lr_decay",
    checks=tuple([c for spec in SCHEDULES for c in schedule_checks(spec)] + FINDER_CHECKS),
    reference="course.references.ch07_lr_decay",
    forbidden=KERAS_SCHEDULES,
)
