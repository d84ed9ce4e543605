"""The explorer's feature-scaling and batch-size view (chapters 1-3).

A linear regression with two weights and no other parameter, on one of two data sets:

    generated     age (0-100 years) and area (500-2500 sq ft) drawn independently, price =
                  0.15 * area - 1.5 * age + noise: scales thirty-fold apart, no correlation, so
                  standardizing makes the loss surface round (the default: the lesson at a glance)
    house_prices  the course's house prices (``course.data.make_house_prices``): bedrooms and
                  area, strongly correlated, so even standardized the valley stays elongated
                  (standardizing fixes the scales, not the correlation)

    raw           loss(w) = mean((x1 * w1 + x2 * w2 - price) ** 2)
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

The view window is fitted to each answer's full-batch path, its start and the minimum, so the
whole path and where it should have gone are always in the picture. The standardized window
has the same scale on both axes (round contours look round); the raw one cannot (its weights
differ by orders of magnitude), and the answer says by how much.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass

import numpy as np

from course.explore import paths, sandbox
from course.explore.paths import ExploreError, ImplementationError, _describe, _number, _whole

STEM = "ch01_feature_scaling"
SAMPLES = 2000
RUNS = 16          # mini-batch paths drawn next to the full-batch one
SEED = 7
# the rates each slider allows: the raw problems are stable only below 2 / (largest curvature)
LR_RANGE = {"raw": (1e-10, 1e-6), "standardized": (1e-4, 10.0)}
MARGIN = 0.08      # of the fitted window, on each side
GRID = 80          # contour grid points per axis


@dataclass(frozen=True)
class DataSet:
    key: str
    title: str
    features: tuple   # (name of x1, name of x2), with units
    weights: tuple    # what w1 and w2 mean on raw features
    note: str
    lr: dict          # kind -> default rate: about 0.9 of the largest stable rate on raw features

    def arrays(self):
        if self.key == "house_prices":
            from course.data import make_house_prices

            x, y = make_house_prices(SAMPLES)
            return x.astype(np.float64), y.astype(np.float64)
        rng = np.random.default_rng(SEED)
        age = rng.uniform(0, 100, SAMPLES)
        area = rng.uniform(500, 2500, SAMPLES)
        price = 0.15 * area - 1.5 * age + rng.normal(0, 30, SAMPLES)
        return np.stack([age, area], axis=1), price


DATA = {
    "generated": DataSet(
        "generated", "generated: age and area", ("age (years)", "area (sq ft)"),
        ("w1 (per year)", "w2 (per sq ft)"),
        "2000 generated houses: age uniform on 0-100 years and area on 500-2500 sq ft, drawn "
        "independently; price = 0.15 * area - 1.5 * age + noise (thousands of dollars)",
        {"raw": 3.5e-7, "standardized": 0.1}),
    "house_prices": DataSet(
        "house_prices", "house prices: bedrooms and area", ("bedrooms", "area (sq ft)"),
        ("w1 (per bedroom)", "w2 (per sq ft)"),
        "the course's 2000 synthetic houses (course.data.make_house_prices): the area grows with "
        "the bedrooms (correlation 0.95), so standardized contours stay elongated",
        {"raw": 9.5e-8, "standardized": 0.3}),
}


@functools.lru_cache(maxsize=2)
def _data(data: str):
    return DATA[data].arrays()


@functools.lru_cache(maxsize=8)
def features(data: str, kind: str, impl: str, stamp) -> np.ndarray:
    """The design matrix: raw features, or standardized by ``impl``'s ``Standardization``."""
    x, _ = _data(data)
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


def _problem(data, kind, z):
    """``(X, target)`` with ``loss(w) = mean((X w - target) ** 2)``."""
    _, y = _data(data)
    return z, (y if kind == "raw" else y - y.mean())


@functools.lru_cache(maxsize=8)
def surface(data: str, kind: str, impl: str, stamp) -> dict:
    """The quadratic the loss is, ``w'Sw - 2q'w + c``: its optimum and curvatures.

    Enough to draw the contours over any window without going through the examples again."""
    X, t = _problem(data, kind, features(data, kind, impl, stamp))
    S, q, c = X.T @ X / len(X), X.T @ t / len(X), float(t @ t / len(X))
    optimum = np.linalg.solve(S, q)
    eig = np.linalg.eigvalsh(2 * S)
    return {"S": S, "q": q, "c": c, "optimum": optimum,
            "best_loss": float(optimum @ S @ optimum - 2 * q @ optimum + c),
            "condition_number": float(eig[-1] / eig[0]), "stable_lr": float(2 / eig[-1])}


def window(kind, points, optimum):
    """``[w1 min, w1 max, w2 min, w2 max]``: the path, its start and the minimum, with a margin.

    Standardized: a square, so equal steps in w1 and w2 are equal on the screen (the page's
    plot area is square). Raw: each axis fitted on its own."""
    box = np.vstack([points, optimum[None]])
    lo, hi = box.min(axis=0), box.max(axis=0)
    size = hi - lo
    if kind == "standardized":
        size[:] = size.max()
    size = np.where(size > 0, size, np.maximum(np.abs(hi), 1.0))  # a point: some room around it
    centre = (lo + hi) / 2
    half = size * (0.5 + MARGIN)
    return [float(centre[0] - half[0]), float(centre[0] + half[0]),
            float(centre[1] - half[1]), float(centre[1] + half[1])]


def contours(quad, extent):
    """The loss's contour lines over the window, denser near the minimum."""
    w1, w2 = np.meshgrid(np.linspace(extent[0], extent[1], GRID), np.linspace(extent[2], extent[3], GRID))
    S, q, c = quad["S"], quad["q"], quad["c"]
    z = S[0, 0] * w1 ** 2 + 2 * S[0, 1] * w1 * w2 + S[1, 1] * w2 ** 2 - 2 * (q[0] * w1 + q[1] * w2) + c
    best = quad["best_loss"]
    levels = best + (float(z.max()) - best) * np.geomspace(1e-3, 0.8, 14)
    return paths.contour_lines(w1, w2, z, levels)


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
def _answer(data, kind, impl, stamp, lr, steps, batch) -> dict:
    X, t = _problem(data, kind, features(data, kind, impl, stamp))
    quad = surface(data, kind, impl, stamp)
    with _lock:
        key = (data, kind, impl, stamp)
        if key not in _loops:
            _loops[key] = _Batches(X, t)
        run = _loops[key].run(lr, steps, batch)  # (steps + 1, RUNS + 1, 2)
    full, full_diverged = paths._cut(run[:, 0])
    optimum = quad["optimum"]
    # a diverged path would stretch the window to the escape radius: the start and minimum only
    extent = window(kind, full[:1] if full_diverged else full, optimum)
    # about five significant digits of the view on each axis: the answer stays small
    decimals = [max(0, 5 - math.floor(math.log10(extent[1] - extent[0]))),
                max(0, 5 - math.floor(math.log10(extent[3] - extent[2])))]

    def short(points):
        return [[round(float(x), decimals[0]), round(float(y), decimals[1])] for x, y in points]

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
    final_spread = (float(np.mean(np.linalg.norm(finals - full[-1], axis=1)))
                    if len(finals) and not full_diverged else None)
    return {"points": short(full), "losses": [float(v) for v in losses],
            "diverged": bool(full_diverged), "batch_paths": cloud,
            "extent": extent, "contours": contours(quad, extent),
            "optimum": optimum.tolist(), "best_loss": quad["best_loss"],
            "condition_number": quad["condition_number"], "stable_lr": quad["stable_lr"],
            # how far each weight got from the start (0) to its best value, 1 = all the way
            "progress": (full[-1] / optimum).tolist() if not full_diverged else None,
            "gradient_spread": {"relative": float(np.mean(spread)),
                                "angle_degrees": float(np.degrees(np.mean(np.arccos(np.clip(cosines, -1, 1))))),
                                "batches": RUNS},
            "batch_diverged": sum(c["diverged"] for c in cloud),
            "final_spread": final_spread,
            # the spread measured against the way there: comparable across data and features
            "final_spread_relative": (final_spread / float(np.linalg.norm(optimum))
                                      if final_spread is not None else None)}


def compute(params: dict) -> dict:
    """The answer to ``/api/scaling``: the loss's contours over a window fitted to the path, the
    full-batch path and ``RUNS`` mini-batch paths of ``batch`` examples, the measured gradient
    noise; for the solution's or the learner's Standardization, the largest gap from Keras's
    standardized features."""
    data = params.get("data") or "generated"
    if data not in DATA:
        raise ExploreError(f"unknown data {data!r}; choose one of {', '.join(DATA)}")
    kind = params.get("features") or "standardized"
    if kind not in LR_RANGE:
        raise ExploreError(f"unknown features {kind!r}; choose one of {', '.join(LR_RANGE)}")
    impl = params.get("impl") or "keras"
    if impl not in paths.IMPLS:
        raise ExploreError(f"unknown implementation {impl!r}; choose one of {', '.join(paths.IMPLS)}")
    if kind == "raw":
        impl = "keras"  # raw features: no standardization to choose
    low, high = LR_RANGE[kind]
    lr = _number(params, "lr", DATA[data].lr[kind])
    if not low <= lr <= high:
        raise ExploreError(f"lr must be in [{low:g}, {high:g}] for {kind} features, got {lr:g}")
    steps = _whole(params, "steps", 100, 1, paths.MAX_STEPS)
    batch = _whole(params, "batch", 32, 1, SAMPLES)
    answer = {"request": {"data": data, "features": kind, "impl": impl, "lr": lr, "steps": steps,
                          "batch": batch, "samples": SAMPLES, "runs": RUNS},
              "points": [], "error": None, "comparison": None}
    stamp = paths.module_stamp(impl, STEM)
    try:
        if impl == "yours" and not sandbox.IN_WORKER:
            return sandbox.call("scaling", params, stamp)
        result = {**answer, **_answer(data, kind, impl, stamp, lr, steps, batch)}
    except (ImplementationError, sandbox.Failed) as exc:
        return {**answer, "error": str(exc)}
    if impl != "keras":
        gap = np.abs(features(data, kind, impl, stamp) - features(data, kind, "keras", None))
        result["comparison"] = {"max_feature_gap": float(gap.max()),
                                "what": "largest gap from Keras's Normalization, in standard deviations"}
    return result


def catalog() -> dict:
    return {"lr": {k: {"min": lo, "max": hi} for k, (lo, hi) in LR_RANGE.items()},
            "samples": SAMPLES, "runs": RUNS,
            "data": [{"key": d.key, "title": d.title, "features": list(d.features),
                      "weights": list(d.weights), "note": d.note, "default_lr": d.lr}
                     for d in DATA.values()],
            "target": "price (thousands of dollars)"}
