"""The explorer's computation: optimizer paths on 2-D surfaces, run by real Keras optimizers.

A path is ``steps`` calls of ``optimizer.apply_gradients`` on a ``keras.Variable`` holding the
point ``(x, y)``, with the surface's gradient written in closed form. The optimizer is the Keras
built-in (through ``course.references``), the reference solution (``solutions/``) or the
learner's own class (``exercises/``): the same object a chapter or the grader would build.

Speed: the steps run inside one ``tf.function`` (a ``tf.while_loop`` over the steps), traced once
per optimizer class, surface and hyperparameters other than the rate. The rate, the start point
and the number of steps are inputs of the traced function, so moving those sliders re-runs it
without tracing: before each run the optimizer's own variables (step counter, slots) are set back
to zero. Answers are cached per request (``functools.lru_cache``).

Only the modules named in ``OPTIMIZERS`` are ever imported; nothing in a request names a path.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from course.explore import sandbox

ROOT = Path(__file__).resolve().parents[2]

# A point farther than this from the origin (or not finite) ends the path: "diverged".
ESCAPE = 1e4
MAX_STEPS = 1000
MAX_START = 100.0
GAP_TOLERANCE = 1e-4


class ExploreError(ValueError):
    """A request the explorer cannot answer, with a message for the page (HTTP 400)."""


class ImplementationError(RuntimeError):
    """The chosen implementation could not run (not implemented, raised, failed to import)."""


# ------------------------------------------------------------------------------------ surfaces

@dataclass(frozen=True)
class Surface:
    name: str
    title: str
    formula: str
    extent: tuple  # (xmin, xmax, ymin, ymax) of the view
    start: tuple
    levels: tuple
    note: str = ""

    def loss(self, x, y):
        return _SURFACE_FUNCTIONS[self.name][0](x, y)

    def gradient_tf(self, point):
        return _SURFACE_FUNCTIONS[self.name][1](point)


def _bowl_constants():
    from course.plotting import BOWL, START

    return BOWL, START


_BOWL, _BOWL_START = _bowl_constants()
ROSEN_B = 10.0  # the usual 100 makes a valley too narrow to watch 100 steps go anywhere


def _bowl_loss(x, y):
    from course.plotting import bowl_loss

    return bowl_loss(x, y)


def _bowl_grad(p):
    import tensorflow as tf

    return p * tf.constant([2 * _BOWL[0], 2 * _BOWL[1]], dtype=p.dtype)


def _rosen_loss(x, y):
    return np.square(1 - x) + ROSEN_B * np.square(y - np.square(x))


def _rosen_grad(p):
    import tensorflow as tf

    x, y = p[0], p[1]
    r = y - x * x
    return tf.stack([-2 * (1 - x) - 4 * ROSEN_B * x * r, 2 * ROSEN_B * r])


def _saddle_loss(x, y):
    return np.square(x) - np.square(y)


def _saddle_grad(p):
    import tensorflow as tf

    return p * tf.constant([2.0, -2.0], dtype=p.dtype)


_SURFACE_FUNCTIONS = {
    "bowl": (_bowl_loss, _bowl_grad),
    "rosenbrock": (_rosen_loss, _rosen_grad),
    "saddle": (_saddle_loss, _saddle_grad),
}

SURFACES = {
    "bowl": Surface(
        "bowl", "Ill-conditioned bowl",
        f"f = {_BOWL[0]:g}·x² + {_BOWL[1]:g}·y²", (-6.0, 2.0, -3.0, 3.0), tuple(_BOWL_START),
        tuple(float(v) for v in np.geomspace(0.01, 30, 14)),
        "twenty times steeper along y than along x: the chapters' bowl"),
    "rosenbrock": Surface(
        "rosenbrock", "Rosenbrock valley",
        f"f = (1 − x)² + {ROSEN_B:g}·(y − x²)²", (-2.0, 2.0, -1.0, 3.0), (-1.5, 2.5),
        tuple(float(v) for v in np.geomspace(0.02, 200, 15)),
        "a curved, flat-bottomed valley; the minimum is at (1, 1)"),
    "saddle": Surface(
        "saddle", "Saddle",
        "f = x² − y²", (-3.0, 3.0, -3.0, 3.0), (-2.5, 0.05),
        tuple(float(v) for v in np.linspace(-8, 8, 17)),
        "no minimum: any path that leaves y = 0 runs away downhill"),
}


@functools.lru_cache(maxsize=None)
def surface_grid(name: str, n: int = 120) -> dict:
    """The surface's view, contour lines (polylines per level) and a coarse value grid."""
    surface = _surface(name)
    x0, x1, y0, y1 = surface.extent
    xs = np.linspace(x0, x1, n)
    ys = np.linspace(y0, y1, n)
    gx, gy = np.meshgrid(xs, ys)
    z = surface.loss(gx, gy)
    contours = contour_lines(gx, gy, z, surface.levels)
    return {"name": surface.name, "title": surface.title, "formula": surface.formula,
            "note": surface.note, "extent": list(surface.extent), "start": list(surface.start),
            "contours": contours}


def contour_lines(gx, gy, z, levels) -> list:
    """``[{"level", "lines": [[[x, y], ...], ...]}]`` of ``z`` over the grid ``(gx, gy)``."""
    try:
        import contourpy
    except ImportError:  # matplotlib brings contourpy; without it the page draws no contours
        return []
    gen = contourpy.contour_generator(gx, gy, z, line_type=contourpy.LineType.Separate)
    return [{"level": float(level),
             "lines": [np.round(line, 6).tolist() for line in gen.lines(level) if len(line) > 1]}
            for level in levels]


def _surface(name):
    try:
        return SURFACES[name]
    except KeyError:
        raise ExploreError(f"unknown surface {name!r}; choose one of "
                           f"{', '.join(SURFACES)}") from None


# ---------------------------------------------------------------------------------- optimizers

@dataclass(frozen=True)
class OptimizerInfo:
    key: str
    title: str
    stem: str        # the chapter module in solutions/ and exercises/
    class_name: str  # the class there (and the references' name)
    hyper: tuple     # the hyperparameters the page offers (besides the rate)
    fixed: tuple = ()  # constructor arguments always passed (e.g. nesterov=True)
    default_lr: float = 0.1


# hyperparameter -> (default, min, max, include max?) for validation and the page's sliders
HYPER = {
    "momentum": (0.9, 0.0, 1.0, False),
    "rho": (0.9, 0.0, 1.0, False),
    "beta_1": (0.9, 0.0, 1.0, False),
    "beta_2": (0.999, 0.0, 1.0, False),
    "weight_decay": (0.004, 0.0, 10.0, True),
}

OPTIMIZERS = {
    "sgd": OptimizerInfo("sgd", "SGD", "ch03_mini_batch", "SGD", (), default_lr=0.1),
    "momentum": OptimizerInfo("momentum", "Momentum", "ch04_momentum", "MomentumSGD",
                              ("momentum",), (("nesterov", False),), default_lr=0.02),
    "nesterov": OptimizerInfo("nesterov", "Nesterov", "ch04_momentum", "MomentumSGD",
                              ("momentum",), (("nesterov", True),), default_lr=0.02),
    "rmsprop": OptimizerInfo("rmsprop", "RMSprop", "ch05_rmsprop", "RMSprop", ("rho",),
                             default_lr=0.05),
    "adam": OptimizerInfo("adam", "Adam", "ch06_adam", "Adam", ("beta_1", "beta_2"),
                          default_lr=0.1),
    "adamw": OptimizerInfo("adamw", "AdamW", "ch06_adam", "AdamW",
                           ("beta_1", "beta_2", "weight_decay"), default_lr=0.1),
}

IMPLS = {"keras": "the Keras built-in", "solution": "the reference solution (solutions/)",
         "yours": "your implementation (exercises/)"}


@functools.lru_cache(maxsize=None)
def _references(stem):
    from course import references

    return getattr(references, stem)()


# the learner's folder; the worker gets it from the server (tests point it at a temporary one)
EXERCISES = ROOT / "exercises"

_module_lock = threading.Lock()
_loaded: dict = {}


def _source_file(impl, stem) -> Path:
    return EXERCISES / f"{stem}.py" if impl == "yours" else ROOT / "solutions" / f"{stem}.py"


def module_stamp(impl, stem):
    """What identifies the code an answer ran: for exercises/, the folder and the file's
    modification time."""
    if impl != "yours":
        return None
    try:
        return str(EXERCISES), os.stat(_source_file(impl, stem)).st_mtime_ns
    except OSError:
        return str(EXERCISES), None


def load(impl: str, stem: str, name: str, stamp=None):
    """``name`` from Keras's stand-ins (``course.references``), ``solutions/<stem>.py`` or the
    learner's ``exercises/<stem>.py`` (read again when ``stamp`` changes)."""
    if impl == "keras":
        return getattr(_references(stem), name)
    package = "exercises" if impl == "yours" else "solutions"
    where = f"{package}/{stem}.py"
    key = f"{package}.{stem}"
    with _module_lock:
        try:
            module = _loaded.get(key)
            if module is None or _loaded.get((key, "stamp")) != stamp:
                module = _import(impl, key, stem, where)
            _loaded[key], _loaded[(key, "stamp")] = module, stamp
        except ImplementationError:
            raise
        except Exception as exc:  # a learner's file with a syntax error, a bad import, ...
            raise ImplementationError(f"{where} could not be imported: {_describe(exc)}") from None
    value = getattr(module, name, None)
    if value is None:
        raise ImplementationError(f"{where} has no {name}")
    return value


def _import(impl, key, stem, where):
    if impl != "yours":
        try:
            module = importlib.import_module(key)
        except ModuleNotFoundError as exc:
            if exc.name in ("solutions", key):
                raise ImplementationError(f"there is no {where} in this copy of the course") from None
            raise
        return importlib.reload(module) if key in _loaded else module
    path = _source_file(impl, stem)
    if not path.is_file():
        raise ImplementationError(f"there is no {where} in this copy of the course")
    spec = importlib.util.spec_from_file_location(key, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _describe(exc: BaseException, limit: int = 400) -> str:
    """``Type: first line of the message``; for an error raised while tracing, TensorFlow's
    "in user code:" trace is dropped, keeping the original message and the learner's line."""
    name = type(exc).__name__
    text = str(exc).strip()
    where = ""
    if text.startswith("in user code:"):
        lines = re.findall(r'File "[^"]*?[/\\]((?:exercises|solutions)[/\\]\w+\.py)", line (\d+)', text)
        if lines:
            where = f" ({lines[-1][0]}, line {lines[-1][1]})"
        marker = text.rfind(f"{name}: ")
        text = text[marker + len(name) + 2:] if marker >= 0 else ""
    first = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(first) > limit:
        first = first[:limit] + " ..."
    return (f"{name}: {first}" if first else name) + where


# ----------------------------------------------------------------------------------- requests

@dataclass(frozen=True)
class PathRequest:
    surface: str
    optimizer: str
    impl: str
    lr: float
    steps: int
    start: tuple
    hyper: tuple  # ((name, value), ...) for this optimizer's hyperparameters only


def _number(params, name, default):
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ExploreError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value):
        raise ExploreError(f"{name} must be a finite number, got {raw!r}")
    return value


def _whole(params, name, default, low, high):
    value = _number(params, name, default)
    if value != int(value) or not low <= value <= high:
        raise ExploreError(f"{name} must be a whole number from {low} to {high}, got {value:g}")
    return int(value)


def parse_request(params: dict) -> PathRequest:
    """Check a request's parameters (strings, as in a query) and normalize them."""
    surface = _surface(params.get("surface") or "bowl")
    optimizer = params.get("optimizer") or "adam"
    if optimizer not in OPTIMIZERS:
        raise ExploreError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
    info = OPTIMIZERS[optimizer]
    impl = params.get("impl") or "keras"
    if impl not in IMPLS:
        raise ExploreError(f"unknown implementation {impl!r}; choose one of {', '.join(IMPLS)}")
    lr = _number(params, "lr", info.default_lr)
    if lr <= 0:
        raise ExploreError(f"lr (the learning rate) must be positive, got {params.get('lr')!r}")
    if lr > 1e3:
        raise ExploreError(f"lr (the learning rate) must be at most 1000, got {params.get('lr')!r}")
    raw_steps = params.get("steps")
    try:
        steps = int(raw_steps) if raw_steps not in (None, "") else 100
    except (TypeError, ValueError):
        raise ExploreError(f"steps must be a whole number, got {raw_steps!r}") from None
    if not 1 <= steps <= MAX_STEPS:
        raise ExploreError(f"steps must be between 1 and {MAX_STEPS}, got {steps}")
    start = []
    for axis, default in zip(("x0", "y0"), surface.start):
        value = _number(params, axis, default)
        if abs(value) > MAX_START:
            raise ExploreError(f"{axis} must be between -{MAX_START:g} and {MAX_START:g}, got {value:g}")
        start.append(value)
    hyper = []
    for name in info.hyper:
        default, low, high, high_ok = HYPER[name]
        value = _number(params, name, default)
        if value < low or value > high or (value == high and not high_ok):
            closing = "]" if high_ok else ")"
            raise ExploreError(f"{name} must be in [{low:g}, {high:g}{closing}, got {value:g}")
        hyper.append((name, value))
    return PathRequest(surface.name, optimizer, impl, lr, steps, tuple(start), tuple(hyper))


# ------------------------------------------------------------------------------------- running

class Runner:
    """One optimizer, one variable and one traced loop, re-run for each rate and start.

    ``gradient(point, i)`` gives the gradient at step ``i`` (a tensor of ``shape``); the loop
    returns the variable after each of the ``n`` steps.
    """

    def __init__(self, optimizer, gradient, shape=(2,)):
        import keras
        import tensorflow as tf

        self.optimizer = optimizer
        self.point = keras.Variable(np.zeros(shape, dtype="float32"), name="point")
        self.optimizer.build([self.point])
        point = self.point

        @tf.function(reduce_retracing=True)
        def run(n):
            out = tf.TensorArray(tf.float32, size=n)
            for i in tf.range(n):
                g = gradient(tf.convert_to_tensor(point.value), i)
                optimizer.apply_gradients([(g, point)])
                out = out.write(i, tf.convert_to_tensor(point.value))
            return out.stack()

        self.run = run

    def path(self, lr, start, steps):
        """The points after each of ``steps`` steps from ``start``, the optimizer reset first."""
        import tensorflow as tf

        rate = getattr(self.optimizer, "_learning_rate", None)
        for v in self.optimizer.variables:
            if v is rate:
                continue
            v.assign(np.zeros(v.shape, dtype=v.dtype))
        self.optimizer.learning_rate = lr
        self.point.assign(np.asarray(start, dtype="float32"))
        return self.run(tf.constant(steps, dtype=tf.int32)).numpy()


_runners: dict = {}
_run_lock = threading.Lock()


def _who(info, impl):
    if impl == "keras":
        return f"Keras's {info.class_name} stand-in"
    package = "exercises" if impl == "yours" else "solutions"
    return f"{info.class_name} in {package}/{info.stem}.py"


def _raw_path(request: PathRequest, stamp) -> np.ndarray:
    info = OPTIMIZERS[request.optimizer]
    surface = SURFACES[request.surface]
    who = _who(info, request.impl)
    cls = load(request.impl, info.stem, info.class_name, stamp)
    key = (request.impl, stamp, request.optimizer, request.surface, request.hyper)
    with _run_lock:
        try:
            runner = _runners.get(key)
            if runner is None:
                optimizer = cls(learning_rate=request.lr, **dict(request.hyper), **dict(info.fixed))
                runner = Runner(optimizer, lambda p, i: surface.gradient_tf(p))
                _runners[key] = runner
            steps = runner.path(request.lr, request.start, request.steps)
        except NotImplementedError:
            _runners.pop(key, None)
            raise ImplementationError(f"{who} is not implemented yet") from None
        except Exception as exc:  # the learner's code may raise anything, TensorFlow too
            _runners.pop(key, None)
            raise ImplementationError(f"{who} raised {_describe(exc)}") from None
    return np.concatenate([np.asarray([request.start], dtype=np.float64),
                           steps.astype(np.float64)])


def _cut(points: np.ndarray):
    """Cut the path before its first non-finite or escaped point; say whether it was cut."""
    bad = ~np.all(np.isfinite(points), axis=1)
    with np.errstate(invalid="ignore", over="ignore"):
        bad |= np.nan_to_num(np.abs(points), nan=np.inf).max(axis=1) > ESCAPE
    if bad.any():
        first = int(np.argmax(bad))
        return points[:max(first, 1)], True
    return points, False


@functools.lru_cache(maxsize=2048)
def _cached_path(request: PathRequest, stamp) -> dict:
    points, diverged = _cut(_raw_path(request, stamp))
    surface = SURFACES[request.surface]
    losses = surface.loss(points[:, 0], points[:, 1])
    return {"points": points.tolist(), "losses": [float(v) for v in losses],
            "diverged": bool(diverged), "steps": request.steps, "error": None}


def compare(path: dict, reference: dict) -> dict:
    """The largest distance between two paths and the first step where it exceeds 1e-4."""
    a, b = np.asarray(path["points"]), np.asarray(reference["points"])
    n = min(len(a), len(b))
    gaps = np.linalg.norm(a[:n] - b[:n], axis=1) if n else np.zeros(0)
    over = np.nonzero(gaps > GAP_TOLERANCE)[0]
    first = int(over[0]) if over.size else None
    if len(a) != len(b) and first is None:
        first = n  # one path stops (diverged) where the other goes on
    return {"max_gap": float(gaps.max()) if n else 0.0, "first_step_over": first,
            "tolerance": GAP_TOLERANCE, "compared_steps": max(n - 1, 0),
            "lengths_differ": len(a) != len(b)}


def compute(params: dict) -> dict:
    """The answer to ``/api/path``: raises ExploreError for bad input; an implementation that
    cannot run (or runs past the time limit) gives ``error`` (and no points), never an
    exception. The learner's code runs in the worker process (``sandbox``)."""
    request = parse_request(params)
    answer = {"request": {"surface": request.surface, "optimizer": request.optimizer,
                          "impl": request.impl, "lr": request.lr, "steps": request.steps,
                          "start": list(request.start), **dict(request.hyper)}}
    stamp = module_stamp(request.impl, OPTIMIZERS[request.optimizer].stem)
    try:
        if request.impl == "yours" and not sandbox.IN_WORKER:
            return sandbox.call("path", params, stamp)
        result = dict(_cached_path(request, stamp))
    except (ImplementationError, sandbox.Failed) as exc:
        return {**answer, "points": [], "losses": [], "diverged": False, "error": str(exc),
                "comparison": None}
    result.update(answer)
    result["comparison"] = None
    if request.impl != "keras":
        keras_request = PathRequest(request.surface, request.optimizer, "keras", request.lr,
                                    request.steps, request.start, request.hyper)
        try:
            reference = _cached_path(keras_request, None)
        except ImplementationError as exc:
            result["comparison"] = {"error": str(exc)}
        else:
            result["comparison"] = {**compare(result, reference),
                                    "keras_points": reference["points"]}
    return result


def catalog() -> dict:
    """What the page offers: surfaces, optimizers with their hyperparameters, implementations."""
    return {
        "surfaces": [{"name": s.name, "title": s.title} for s in SURFACES.values()],
        "optimizers": [{"key": o.key, "title": o.title, "hyper": list(o.hyper),
                        "default_lr": o.default_lr, "file": f"{o.stem}.py", "class": o.class_name}
                       for o in OPTIMIZERS.values()],
        "hyper": {name: {"default": d, "min": lo, "max": hi} for name, (d, lo, hi, _) in HYPER.items()},
        "impls": [{"key": k, "title": t} for k, t in IMPLS.items()],
        "max_steps": MAX_STEPS, "escape": ESCAPE, "tolerance": GAP_TOLERANCE,
    }
