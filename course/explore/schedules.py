"""The explorer's schedules view (chapter 7): the rate per step of the real schedule objects,
and the LR range test of a small model run by the course's own ``LRFinder``.

A curve is the schedule object called once with all the steps (``schedule(np.arange(n))``):
the course's schedules are written with ``keras.ops`` and take a vector of steps. Keras's
``CosineDecay`` with a warmup branches with ``ops.cond`` and takes one step at a time, so a
schedule that refuses a vector is mapped over the steps inside one ``tf.function`` instead.
The implementations are those of the optimizer view: Keras's built-in through
``course.references`` (for ``OneCycle``, which Keras lacks, the closed form of PyTorch's
``OneCycleLR`` there), ``solutions/ch07_lr_decay.py`` or the learner's file (in the worker).
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass

import numpy as np

from course.explore import paths, sandbox
from course.explore.paths import ExploreError, ImplementationError, _describe, _number, _whole

STEM = "ch07_lr_decay"
MAX_STEPS = 5000
GAP_TOLERANCE = 1e-4  # relative to the reference's largest rate


@dataclass(frozen=True)
class ScheduleInfo:
    key: str
    title: str
    class_name: str
    params: tuple   # the sliders it reads (besides lr and steps)
    keras: str      # what "Keras" means for it

    def arguments(self, lr, steps, values):
        """The constructor's arguments for the page's slider values."""
        v = dict(values)
        if self.key in ("time", "step", "exponential"):
            return (lr, v["decay"], v["decay_steps"])
        if self.key == "warmup_cosine":
            return (lr, v["warmup"], steps - v["warmup"], 0.0, v["alpha"])
        return (lr, steps, v["pct_start"])


SCHEDULES = {
    "time": ScheduleInfo("time", "time-based decay", "TimeBasedDecay", ("decay", "decay_steps"),
                         "InverseTimeDecay"),
    "step": ScheduleInfo("step", "step decay", "StepDecay", ("decay", "decay_steps"),
                         "ExponentialDecay(staircase=True)"),
    "exponential": ScheduleInfo("exponential", "exponential decay", "ExponentialDecay",
                                ("decay", "decay_steps"), "ExponentialDecay"),
    "warmup_cosine": ScheduleInfo("warmup_cosine", "warmup + cosine", "WarmupCosineDecay",
                                  ("warmup", "alpha"), "CosineDecay(warmup_steps=...)"),
    "one_cycle": ScheduleInfo("one_cycle", "one-cycle", "OneCycle", ("pct_start",),
                              "no built-in: PyTorch's OneCycleLR in closed form"),
}

# slider -> (default, min, max, what it means); whole numbers for the *_steps and warmup
PARAMS = {
    "decay": (0.5, 0.01, 1.0, "decay_rate (time-based: k; step: drop_rate; exponential: d)"),
    "decay_steps": (200, 1, MAX_STEPS, "decay_steps (steps_per_drop for step decay)"),
    "warmup": (100, 0, MAX_STEPS - 1, "warmup_steps"),
    "alpha": (0.0, 0.0, 1.0, "alpha: the floor, as a fraction of the peak"),
    "pct_start": (0.3, 0.01, 0.99, "pct_start: the share of the steps spent climbing"),
}
WHOLE = {"decay_steps", "warmup"}


@dataclass(frozen=True)
class ScheduleRequest:
    schedule: str
    impl: str
    lr: float
    steps: int
    values: tuple  # ((name, value), ...) for this schedule's sliders only


def _choice(params, name, options, default):
    value = params.get(name) or default
    if value not in options:
        raise ExploreError(f"unknown {name} {value!r}; choose one of {', '.join(options)}")
    return value


def parse_request(params: dict) -> ScheduleRequest:
    """Check a ``/api/schedule`` query and normalize it."""
    info = SCHEDULES[_choice(params, "schedule", SCHEDULES, "warmup_cosine")]
    impl = _choice(params, "impl", paths.IMPLS, "keras")
    lr = _number(params, "lr", 0.1)
    if not 0 < lr <= 10:
        raise ExploreError(f"lr (the initial or peak rate) must be in (0, 10], got {lr:g}")
    steps = _whole(params, "steps", 1000, 10, MAX_STEPS)
    values = []
    for name in info.params:
        default, low, high, _ = PARAMS[name]
        if name in WHOLE:
            value = _whole(params, name, default, low, high)
        else:
            value = _number(params, name, default)
            if not low <= value <= high:
                raise ExploreError(f"{name} must be in [{low:g}, {high:g}], got {value:g}")
        values.append((name, value))
    if info.key == "warmup_cosine" and dict(values)["warmup"] >= steps:
        raise ExploreError(f"warmup ({dict(values)['warmup']}) must be below steps ({steps}): "
                           "the cosine needs at least one step")
    if info.key == "one_cycle" and dict(values)["pct_start"] * steps <= 1:
        raise ExploreError("pct_start * steps must be above 1: the climb needs a step")
    return ScheduleRequest(info.key, impl, lr, steps, tuple(values))


_map_lock = threading.Lock()


@functools.lru_cache(maxsize=1024)
def rates(request: ScheduleRequest, stamp) -> np.ndarray:
    """The schedule's rate at steps 0 .. steps - 1 (float64 copy of its float32 answers)."""
    info = SCHEDULES[request.schedule]
    cls = paths.load(request.impl, STEM, info.class_name, stamp)
    who = (f"Keras's {info.class_name} stand-in" if request.impl == "keras" else
           f"{info.class_name} in {'exercises' if request.impl == 'yours' else 'solutions'}/"
           f"{STEM}.py")
    steps = np.arange(request.steps)
    try:
        schedule = cls(*info.arguments(request.lr, request.steps, request.values))
        try:
            values = np.asarray(schedule(steps), dtype=np.float64)
        except Exception:  # a schedule that takes one step at a time (Keras's warmup cosine)
            values = None
        if values is None or values.shape != steps.shape:
            values = _one_at_a_time(schedule, steps)
    except NotImplementedError:
        raise ImplementationError(f"{who} is not implemented yet") from None
    except Exception as exc:  # the learner's code may raise anything
        raise ImplementationError(f"{who} raised {_describe(exc)}") from None
    return values


def _one_at_a_time(schedule, steps):
    import tensorflow as tf

    with _map_lock:
        run = tf.function(lambda s: tf.map_fn(lambda t: tf.cast(schedule(t), tf.float32), s,
                                              fn_output_signature=tf.float32))
        return run(tf.constant(steps, dtype=tf.int64)).numpy().astype(np.float64)


def compare(values: np.ndarray, reference: np.ndarray) -> dict:
    """The largest gap between two curves, relative to the reference's peak, and the first step
    where it exceeds ``GAP_TOLERANCE``."""
    scale = float(np.max(np.abs(reference))) or 1.0
    with np.errstate(invalid="ignore"):
        gaps = np.abs(values - reference) / scale
    gaps = np.where(np.isfinite(gaps), gaps, np.inf)
    over = np.nonzero(gaps > GAP_TOLERANCE)[0]
    return {"max_gap": float(np.max(np.abs(values - reference))) if np.all(np.isfinite(values)) else None,
            "max_relative_gap": float(gaps.max()) if np.isfinite(gaps.max()) else None,
            "first_step_over": int(over[0]) if over.size else None, "tolerance": GAP_TOLERANCE}


def _finite(values):
    """JSON numbers (None for NaN and infinities), at float32's 7 significant digits."""
    return [float(f"{v:.7g}") if math.isfinite(v) else None for v in values]


def compute(params: dict) -> dict:
    """The answer to ``/api/schedule``: ``rates`` per step, and for the solution and yours the
    comparison with Keras's curve."""
    request = parse_request(params)
    answer = {"request": {"schedule": request.schedule, "impl": request.impl, "lr": request.lr,
                          "steps": request.steps, **dict(request.values)},
              "rates": [], "comparison": None, "error": None}
    stamp = paths.module_stamp(request.impl, STEM)
    try:
        if request.impl == "yours" and not sandbox.IN_WORKER:
            return sandbox.call("schedule", params, stamp)
        values = rates(request, stamp)
    except (ImplementationError, sandbox.Failed) as exc:
        return {**answer, "error": str(exc)}
    answer["rates"] = _finite(values)
    if request.impl != "keras":
        keras_values = rates(ScheduleRequest(request.schedule, "keras", request.lr, request.steps,
                                             request.values), None)
        answer["comparison"] = {**compare(values, keras_values),
                                "keras_rates": _finite(keras_values)}
    return answer


# ---------------------------------------------------------------------------- the range test

RANGE = {"start_lr": 1e-4, "end_lr": 10.0, "batch_size": 32, "samples": 1024}


@functools.lru_cache(maxsize=1)
def _moons():
    """Two interleaved half-moons, generated (no download): a small problem a dense net learns."""
    from sklearn.datasets import make_moons

    from course.toolkit import Dataset

    x, y = make_moons(n_samples=RANGE["samples"], noise=0.2, random_state=0)
    x = (x - x.mean(axis=0)) / x.std(axis=0)
    return Dataset("moons", x.astype("float32"), y.astype("int64"), None, None, True, 2)


@functools.lru_cache(maxsize=64)
def _range_test(impl: str, steps: int, beta: float, stamp) -> dict:
    import keras

    from course.toolkit import dense_model, train

    where = f"LRFinder in {'exercises' if impl == 'yours' else 'solutions'}/{STEM}.py"
    finder_class = paths.load(impl, STEM, "LRFinder", stamp)
    data = _moons()
    try:
        finder = finder_class(start_lr=RANGE["start_lr"], end_lr=RANGE["end_lr"],
                              num_steps=steps, beta=beta)
        per_epoch = math.ceil(len(data.x) / RANGE["batch_size"])
        train(dense_model(data, hidden=(32,)), keras.optimizers.SGD(0.01, momentum=0.9), data,
              epochs=math.ceil(steps / per_epoch), batch_size=RANGE["batch_size"],
              callbacks=[finder], jit_compile=False)
        lrs, losses = [float(v) for v in finder.lrs], [float(v) for v in finder.losses]
    except NotImplementedError:
        raise ImplementationError(f"{where} is not implemented yet") from None
    except Exception as exc:
        raise ImplementationError(f"{where} raised {_describe(exc)}") from None
    try:
        suggestion, note = float(finder.suggestion()), None
    except NotImplementedError:
        suggestion, note = None, f"{where}: suggestion() is not implemented yet"
    except Exception as exc:
        suggestion, note = None, f"no suggestion: {_describe(exc)}"
    finite = [v for v in losses if math.isfinite(v)]
    lowest = lrs[losses.index(min(finite))] if finite else None
    return {"lrs": lrs, "losses": _finite(losses), "suggestion": suggestion,
            "lowest_loss_rate": lowest, "note": note}


def range_test(params: dict) -> dict:
    """The answer to ``/api/range_test``: the smoothed loss against the rate, the suggestion."""
    impl = _choice(params, "impl", ("solution", "yours"), "solution")
    steps = _whole(params, "steps", 100, 20, 400)
    beta = _number(params, "beta", 0.9)
    if not 0 <= beta < 1:
        raise ExploreError(f"beta must be in [0, 1), got {beta:g}")
    answer = {"request": {"impl": impl, "steps": steps, "beta": beta, **RANGE,
                          "model": "Dense(32, relu) -> Dense(2, softmax), SGD momentum 0.9",
                          "data": f"{RANGE['samples']} generated two-moons points"},
              "lrs": [], "losses": [], "suggestion": None, "error": None}
    stamp = paths.module_stamp(impl, STEM)
    try:
        if impl == "yours" and not sandbox.IN_WORKER:
            return sandbox.call("range_test", params, stamp)
        return {**answer, **_range_test(impl, steps, beta, stamp)}
    except (ImplementationError, sandbox.Failed) as exc:
        return {**answer, "error": str(exc)}


def catalog() -> dict:
    return {"schedules": [{"key": s.key, "title": s.title, "class": s.class_name,
                           "params": list(s.params), "keras": s.keras} for s in SCHEDULES.values()],
            "params": {name: {"default": d, "min": lo, "max": hi, "meaning": m}
                       for name, (d, lo, hi, m) in PARAMS.items()},
            "max_steps": MAX_STEPS, "tolerance": GAP_TOLERANCE}
