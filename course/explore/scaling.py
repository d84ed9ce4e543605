"""The explorer's feature-scaling and batch-size view (chapters 1-3).

A linear regression with two weights and no other parameter, on the course's synthetic house
prices (``course.data.make_house_prices``: bedrooms 1-5, area ~500-5000 sq ft, price in
thousands of dollars):

    raw           loss(w) = mean((bedrooms * w1 + area * w2 - price) ** 2)
    standardized  loss(w) = mean((z1 * w1 + z2 * w2 + mean(price) - price) ** 2)

with ``z`` the features standardized by the chapter 1 component (Keras's ``Normalization``
through ``course.references``, the solution's or the learner's ``Standardization``). The bias is
held at ``mean(price)``, its optimum once the features are centred, so two weights are the
whole model and the loss surface can be drawn.

The paths are ``keras.optimizers.SGD`` on a ``keras.Variable`` with gradients of that loss
from ``tf.GradientTape``, in one traced loop (``paths.Runner``). One variable holds several
rows, each its own run: row 0 takes the full-batch gradient, the others a fresh mini-batch of
``batch`` examples (drawn with replacement, a fixed seed per step) at every step; the loss is
the sum of the rows' losses, so each row gets exactly its own gradient.
"""

from __future__ import annotations

import functools
import math
import threading

import numpy as np

from course.explore import paths, sandbox
from course.explore.paths import ExploreError, ImplementationError, _describe, _number, _whole

STEM = "ch01_feature_scaling"
SAMPLES = 2000
RUNS = 16          # mini-batch paths drawn next to the full-batch one
# default, min, max: the raw problem is stable only below 2 / (largest curvature) ~ 1e-7
LR = {"raw": (9.5e-8, 1e-10, 1e-6), "standardized": (0.3, 1e-4, 10.0)}
SEED = 7


def _data():
    from course.data import make_house_prices

    x, y = make_house_prices(SAMPLES)
    return x.astype(np.float64), y.astype(np.float64)


@functools.lru_cache(maxsize=8)
def features(kind: str, impl: str, stamp) -> np.ndarray:
    """The design matrix: raw features, or standardized by ``impl``'s ``Standardization``."""
    x, _ = _data()
    if kind == "raw":
        return x
    where = ("Keras's Normalization (the Standardization stand-in)" if impl == "keras" else
             f"Standardization in {'exercises' if impl == 'yours' else 'solutions'}/{STEM}.py")
    layer_class = paths.load(impl, STEM, "Standardization", stamp)
    try:
        layer = layer_class()
        layer.adapt(x.astype("float32"))
        z = np.asarray(layer(x.astype("float32")), dtype=np.float64)
    except NotImplementedError:
        raise ImplementationError(f"{where} is not implemented yet") from None
    except Exception as exc:
        raise ImplementationError(f"{where} raised {_describe(exc)}") from None
    if z.shape != x.shape or not np.all(np.isfinite(z)):
        raise ImplementationError(f"{where} gave {z.shape} values with non-finite entries"
                                  if z.shape == x.shape else
                                  f"{where} gave shape {z.shape}, not {x.shape}")
    return z


def _problem(kind, z):
    """``(X, target)`` with ``loss(w) = mean((X w - target) ** 2)``."""
    _, y = _data()
    return z, (y if kind == "raw" else y - y.mean())


def _loss_grid(X, t, w1, w2):
    pred = X[:, 0, None, None] * w1 + X[:, 1, None, None] * w2
    return np.mean((pred - t[:, None, None]) ** 2, axis=0)


@functools.lru_cache(maxsize=8)
def surface(kind: str, impl: str, stamp) -> dict:
    """The view around the start (0, 0) and the optimum, and the loss's contour lines."""
    X, t = _problem(kind, features(kind, impl, stamp))
    optimum = np.linalg.lstsq(X, t, rcond=None)[0]
    # centred on the optimum, the start (0, 0) well inside: room for paths that overshoot
    lo, hi = optimum - 1.6 * np.abs(optimum), optimum + 1.6 * np.abs(optimum)
    if kind == "raw":  # the area weight's valley is so narrow: show its walls
        lo[1], hi[1] = -0.6 * abs(optimum[1]) - 0.05, 1.6 * abs(optimum[1]) + 0.05
    w1, w2 = np.meshgrid(np.linspace(lo[0], hi[0], 60), np.linspace(lo[1], hi[1], 60))
    z = np.zeros_like(w1)
    for r in range(0, 60, 15):  # in slices: keeps the (samples x grid) array small
        z[r:r + 15] = _loss_grid(X, t, w1[r:r + 15], w2[r:r + 15])
    best = float(np.mean((X @ optimum - t) ** 2))
    levels = best + (float(z.max()) - best) * np.geomspace(2e-4, 0.8, 12)
    hessian = 2 * X.T @ X / len(X)
    eig = np.linalg.eigvalsh(hessian)
    return {"extent": [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])],
            "optimum": optimum.tolist(), "best_loss": best,
            "contours": paths.contour_lines(w1, w2, z, levels),
            "condition_number": float(eig[-1] / eig[0]), "stable_lr": float(2 / eig[-1])}


class _Batches:
    """The traced loop for one design matrix: full batch in row 0, mini-batches in the others."""

    def __init__(self, X, t):
        import tensorflow as tf

        from course.explore.paths import Runner

        X = tf.constant(X, tf.float32)
        t = tf.constant(t, tf.float32)
        n = X.shape[0]
        self.batch = tf.Variable(32, dtype=tf.int32, trainable=False)

        def gradient(w, i):
            with tf.GradientTape() as tape:
                tape.watch(w)
                full = tf.reduce_mean(tf.square(tf.linalg.matvec(X, w[0]) - t))
                idx = tf.random.stateless_uniform(tf.stack([RUNS, self.batch]), seed=[SEED, i],
                                                  maxval=n, dtype=tf.int32)
                pred = tf.einsum("kbj,kj->kb", tf.gather(X, idx), w[1:])
                mini = tf.reduce_sum(tf.reduce_mean(tf.square(pred - tf.gather(t, idx)), axis=1))
                loss = full + mini
            return tape.gradient(loss, w)

        sgd = paths.load("keras", "ch03_mini_batch", "SGD")
        self.runner = Runner(sgd(learning_rate=0.1), gradient, shape=(RUNS + 1, 2))

    def run(self, lr, steps, batch):
        self.batch.assign(batch)
        start = np.zeros((RUNS + 1, 2))
        return np.concatenate([start[None], self.runner.path(lr, start, steps)]).astype(np.float64)


_loops: dict = {}
_lock = threading.Lock()


@functools.lru_cache(maxsize=1024)
def _answer(kind, impl, stamp, lr, steps, batch) -> dict:
    X, t = _problem(kind, features(kind, impl, stamp))
    lo0, hi0, lo1, hi1 = surface(kind, impl, stamp)["extent"]
    # about five significant digits of the view on each axis: the answer stays small
    decimals = [max(0, 5 - math.floor(math.log10(hi0 - lo0))),
                max(0, 5 - math.floor(math.log10(hi1 - lo1)))]

    def short(points):
        return [[round(float(x), decimals[0]), round(float(y), decimals[1])] for x, y in points]

    with _lock:
        key = (kind, impl, stamp)
        if key not in _loops:
            _loops[key] = _Batches(X, t)
        run = _loops[key].run(lr, steps, batch)  # (steps + 1, RUNS + 1, 2)
    full, full_diverged = paths._cut(run[:, 0])
    cloud = []
    for k in range(1, RUNS + 1):
        points, diverged = paths._cut(run[:, k])
        cloud.append({"points": short(points), "diverged": diverged})
    losses = np.mean((full @ X.T - t) ** 2, axis=1)
    gradients = (run[0, 1:] - run[1, 1:]) / lr  # plain SGD: the first step is -lr * gradient
    g = (run[0, 0] - run[1, 0]) / lr
    spread = np.linalg.norm(gradients - g, axis=1) / max(np.linalg.norm(g), 1e-30)
    cosines = gradients @ g / np.maximum(np.linalg.norm(gradients, axis=1) * np.linalg.norm(g), 1e-30)
    finals = np.array([c["points"][-1] for c in cloud if not c["diverged"]])
    return {"points": short(full), "losses": [float(v) for v in losses],
            "diverged": bool(full_diverged), "batch_paths": cloud,
            "gradient_spread": {"relative": float(np.mean(spread)),
                                "angle_degrees": float(np.degrees(np.mean(np.arccos(np.clip(cosines, -1, 1))))),
                                "batches": RUNS},
            "final_spread": float(np.mean(np.linalg.norm(finals - full[-1], axis=1)))
            if len(finals) and not full_diverged else None}


def compute(params: dict) -> dict:
    """The answer to ``/api/scaling``: the loss surface, the full-batch path and ``RUNS``
    mini-batch paths of ``batch`` examples, the measured gradient noise; for the solution's or
    the learner's Standardization, the largest gap from Keras's standardized features."""
    kind = params.get("features") or "standardized"
    if kind not in LR:
        raise ExploreError(f"unknown features {kind!r}; choose one of {', '.join(LR)}")
    impl = params.get("impl") or "keras"
    if impl not in paths.IMPLS:
        raise ExploreError(f"unknown implementation {impl!r}; choose one of {', '.join(paths.IMPLS)}")
    if kind == "raw":
        impl = "keras"  # raw features: no standardization to choose
    default, low, high = LR[kind]
    lr = _number(params, "lr", default)
    if not low <= lr <= high:
        raise ExploreError(f"lr must be in [{low:g}, {high:g}] for {kind} features, got {lr:g}")
    steps = _whole(params, "steps", 100, 1, paths.MAX_STEPS)
    batch = _whole(params, "batch", 32, 1, SAMPLES)
    answer = {"request": {"features": kind, "impl": impl, "lr": lr, "steps": steps,
                          "batch": batch, "samples": SAMPLES, "runs": RUNS},
              "points": [], "error": None, "comparison": None}
    stamp = paths.module_stamp(impl, STEM)
    try:
        if impl == "yours" and not sandbox.IN_WORKER:
            return sandbox.call("scaling", params, stamp)
        result = {**answer, **surface(kind, impl, stamp), **_answer(kind, impl, stamp, lr, steps, batch)}
    except (ImplementationError, sandbox.Failed) as exc:
        return {**answer, "error": str(exc)}
    if impl != "keras":
        gap = np.abs(features(kind, impl, stamp) - features(kind, "keras", None))
        result["comparison"] = {"max_feature_gap": float(gap.max()),
                                "what": "largest gap from Keras's Normalization, in standard deviations"}
    return result


def catalog() -> dict:
    return {"lr": {k: {"default": d, "min": lo, "max": hi} for k, (d, lo, hi) in LR.items()},
            "samples": SAMPLES, "runs": RUNS,
            "features": ["bedrooms", "area (sq ft)"], "target": "price (thousands of dollars)"}

