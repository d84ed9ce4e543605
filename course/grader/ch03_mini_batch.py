"""Checks for chapter 3: ``mini_batches`` (by its properties) and ``SGD`` (against Keras).

``mini_batches`` has no reference to compare with: any shuffled order is as right as another.
So its checks return the raw batches the student's pipeline produced, and a judge in the parent
verifies the properties an epoch must have. Every row of the drawn ``x`` and ``y`` is unique, so
each returned row names the example it came from; from those example ids the judge sees whether
every example came exactly once, whether each ``y`` row still belongs to its ``x`` row, which
batch sizes came out, and whether the order changed between epochs or between seeds.

``SGD`` gets the optimizer check set against ``keras.optimizers.SGD`` (momentum 0).
"""

from __future__ import annotations

import numpy as np

from course.backends import to_numpy

from course.grader.ch06_adam import KERAS_OPTIMIZERS
from course.grader.optimizer_suite import OptimizerSpec, optimizer_checks
from course.grader.spec import Check, Exercise, Mistake, Verdict

# --------------------------------------------------------------------------------------------
# Known mistakes of mini_batches (recognised by the judges below from the example ids).

MISALIGNED = Mistake(
    "pairs misaligned: x and y shuffled apart",
    "build the dataset from the pairs, tf.data.Dataset.from_tensor_slices((x, y)), and shuffle "
    "that one dataset; two separate shuffles of x and of y send targets to the wrong examples.")
DROPPED_LAST = Mistake(
    "last partial batch dropped",
    "when N is not a multiple of batch_size the last batch is smaller: keep it unless "
    "drop_remainder=True (pass drop_remainder on to .batch()); dropping it silently skips "
    "N % batch_size examples every epoch.")
DROP_IGNORED = Mistake(
    "drop_remainder ignored",
    "with drop_remainder=True every batch must have exactly batch_size examples: pass "
    "drop_remainder on to .batch().")
SAME_ORDER = Mistake(
    "the same order every epoch",
    "shuffle inside the pipeline so that every pass draws a new order: "
    "Dataset.shuffle(buffer, seed=seed, reshuffle_each_iteration=True); a permutation computed "
    "once, when the dataset is built, is replayed unchanged every epoch.")
SHUFFLED_BATCHES = Mistake(
    "batches shuffled instead of examples",
    "shuffle before .batch(): shuffling after it only reorders fixed batches, so the same "
    "examples always share a batch and the gradient noise never changes.")
SEED_IGNORED = Mistake(
    "seed ignored",
    "pass the seed on to the shuffle (Dataset.shuffle(buffer, seed=seed)): two datasets made "
    "with the same seed must give the same sequence of epochs, and a different seed different ones.")
SHUFFLE_IGNORED = Mistake(
    "shuffle=False ignored",
    "with shuffle=False the batches must follow the original order of x and y: only call "
    ".shuffle() when shuffle is True.")
WITH_REPLACEMENT = Mistake(
    "examples drawn with replacement",
    "an epoch is a permutation of the data set: each example exactly once. Sampling indices at "
    "random (with replacement) repeats some examples and skips others.")

MINI_BATCH_MISTAKES = (MISALIGNED, DROPPED_LAST, DROP_IGNORED, SAME_ORDER, SHUFFLED_BATCHES,
                       SEED_IGNORED, SHUFFLE_IGNORED, WITH_REPLACEMENT)

# --------------------------------------------------------------------------------------------
# Inputs: one or more "builds" (a call of mini_batches and how many epochs to read from it).


def _unique_rows(rng: np.random.Generator, n: int, shape: tuple, kind: str) -> np.ndarray:
    """n rows of ``shape`` that are all different, so that a row names its example."""
    if kind == "labels":  # integer targets; distinct so that they identify the example too
        return (rng.permutation(n) * 3 + 1).astype(np.int64).reshape((n, *shape))
    return rng.normal(size=(n, *shape)).astype(np.float32)


def _sizes(rng: np.random.Generator, low: int = 12, high: int = 60) -> tuple[int, int]:
    """A data set size and a batch size that does not divide it (so there is a partial batch)."""
    while True:
        n, batch_size = int(rng.integers(low, high)), int(rng.integers(3, 11))
        if n % batch_size and n // batch_size >= 2:
            return n, batch_size


def _build(rng, n, batch_size, *, x_shape=(3,), y_shape=(), y_kind="labels", epochs=2, **kwargs):
    return {"x": _unique_rows(rng, n, x_shape, "features"),
            "y": _unique_rows(rng, n, y_shape, y_kind),
            "batch_size": batch_size, "epochs": epochs, "kwargs": kwargs}


def _same_data(build: dict, **kwargs) -> dict:
    """Another call on the same arrays with other arguments."""
    return {**build, "kwargs": {**build["kwargs"], **kwargs}}


def _seed(rng) -> int:
    return int(rng.integers(0, 2**31 - 1))


def every_example_inputs(rng):
    n, bs = _sizes(rng)
    return {"builds": {"shuffled": _build(rng, n, bs, x_shape=(int(rng.integers(1, 5)),),
                                          epochs=2, shuffle=True, seed=_seed(rng))}}


def pairs_inputs(rng):
    n, bs = _sizes(rng)
    shape = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    return {"builds": {"shuffled": _build(rng, n, bs, x_shape=shape, y_shape=(2,), y_kind="vectors",
                                          epochs=2, shuffle=True, seed=_seed(rng))}}


def batch_size_inputs(rng):
    n, bs = _sizes(rng)
    keep = _build(rng, n, bs, epochs=1, shuffle=True, seed=_seed(rng))
    return {"builds": {"drop_remainder=False": _same_data(keep, drop_remainder=False),
                       "drop_remainder=True": _same_data(keep, drop_remainder=True)}}


def new_order_inputs(rng):
    n, bs = _sizes(rng, 24, 60)  # 24! orders: a repeat by chance is impossible in practice
    return {"builds": {"shuffled": _build(rng, n, bs, epochs=3, shuffle=True, seed=_seed(rng))}}


def seeded_inputs(rng):
    n, bs = _sizes(rng, 24, 60)
    seed, other = _seed(rng), _seed(rng)
    first = _build(rng, n, bs, epochs=2, shuffle=True, seed=seed)
    return {"builds": {"seed=s": first, "seed=s again": first,
                       "another seed": _same_data(first, seed=other if other != seed else seed + 1)}}


def no_shuffle_inputs(rng):
    n, bs = _sizes(rng)
    return {"builds": {"shuffle=False": _build(rng, n, bs, epochs=2, shuffle=False)}}


def trailing_shape_inputs(rng):
    n, bs = _sizes(rng)
    image = (int(rng.integers(2, 4)), int(rng.integers(2, 4)), int(rng.integers(1, 3)))
    return {"builds": {
        "x of shape (N,)": _build(rng, n, bs, x_shape=(), y_shape=(2, 3), y_kind="vectors",
                                  epochs=1, shuffle=True, seed=_seed(rng)),
        f"x of shape (N, {', '.join(map(str, image))})": _build(
            rng, n, bs, x_shape=image, y_shape=(), y_kind="labels", epochs=1, shuffle=True,
            seed=_seed(rng)),
    }}


# --------------------------------------------------------------------------------------------
# The run (in the student's worker): call mini_batches and read its epochs as plain arrays.


def run_batches(impl, inputs, ctx):
    import tensorflow as tf

    out = {}
    for label, build in inputs["builds"].items():
        x, y = build["x"], build["y"]
        dataset = impl.mini_batches(x, y, build["batch_size"], **build["kwargs"])
        out[f"{label}|is_dataset"] = isinstance(dataset, tf.data.Dataset)
        for epoch in range(build["epochs"]):
            xs, ys, sizes, shapes, endless = [], [], [], set(), False
            for i, element in enumerate(dataset):
                if i > len(x):  # more batches than examples: the dataset does not end
                    endless = True
                    break
                if not (isinstance(element, (tuple, list)) and len(element) == 2):
                    raise TypeError("each element of the dataset must be a pair (x_batch, y_batch), "
                                    f"got {type(element).__name__}")
                bx, by = to_numpy(element[0]), to_numpy(element[1])
                if bx.ndim == 0 or by.ndim == 0 or len(bx) != len(by):
                    raise ValueError(f"batch {i}: x_batch has shape {bx.shape} and y_batch {by.shape}; "
                                     "both need the batch dimension first, of the same length")
                shapes.add((bx.shape[1:], by.shape[1:]))
                sizes.append(len(bx))
                xs.append(bx.reshape(len(bx), -1).astype(np.float64))
                ys.append(by.reshape(len(by), -1).astype(np.float64))
            key = f"{label}|{epoch}"
            out[f"{key}|sizes"] = to_numpy(sizes, dtype=np.int64)
            out[f"{key}|endless"] = endless
            out[f"{key}|shapes"] = "; ".join(f"x {sx} y {sy}" for sx, sy in sorted(shapes))
            consistent = len({(sx, sy) for sx, sy in shapes}) <= 1
            out[f"{key}|x"] = np.concatenate(xs) if xs and consistent else np.zeros((0, 0))
            out[f"{key}|y"] = np.concatenate(ys) if ys and consistent else np.zeros((0, 0))
    return out


# --------------------------------------------------------------------------------------------
# Judging (in the parent): from rows back to example ids, then the properties.


class _Epoch:
    """One epoch read from the student's dataset, as example ids per position."""

    def __init__(self, build: dict, out: dict, key: str):
        self.sizes = to_numpy(out[f"{key}|sizes"], dtype=np.int64)
        self.endless = bool(out[f"{key}|endless"])
        self.shapes = out[f"{key}|shapes"]
        self.x_ids = _ids(out[f"{key}|x"], build["x"])
        self.y_ids = _ids(out[f"{key}|y"], build["y"])

    def batches(self) -> list[frozenset]:
        edges = np.cumsum(self.sizes)[:-1]
        return [frozenset(b.tolist()) for b in np.split(self.x_ids, edges)]


def _ids(rows: np.ndarray, source: np.ndarray) -> np.ndarray:
    """The index in ``source`` of each row (-1 for a row that is not in ``source``)."""
    flat = to_numpy(source).reshape(len(source), -1).astype(np.float64)
    table = {row.tobytes(): i for i, row in enumerate(flat)}
    rows = to_numpy(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != flat.shape[1]:
        return np.full(len(rows) if rows.ndim else 0, -1, dtype=np.int64)
    return to_numpy([table.get(r.tobytes(), -1) for r in rows], dtype=np.int64)


def _expected_shapes(build: dict) -> str:
    return f"x {build['x'].shape[1:]} y {build['y'].shape[1:]}"


def _read(student: dict, inputs: dict) -> tuple[dict, Verdict | None]:
    """The epochs of every build, or a failing verdict if the output is not well formed."""
    epochs = {}
    for label, build in inputs["builds"].items():
        if not student.get(f"{label}|is_dataset", False):
            return {}, Verdict(False, f"{label}: mini_batches must return a tf.data.Dataset")
        epochs[label] = []
        for e in range(build["epochs"]):
            epoch = _Epoch(build, student, f"{label}|{e}")
            where = f"{label}, epoch {e + 1}"
            if epoch.endless:
                return {}, Verdict(False, f"{where}: the dataset kept going past {len(build['x'])} "
                                          "batches; one pass over it must be one epoch (no .repeat())")
            if not epoch.sizes.size:
                return {}, Verdict(False, f"{where}: the dataset gave no batches (a second pass over "
                                          "a Python generator is empty: return a tf.data.Dataset)")
            expected = _expected_shapes(build)
            if epoch.shapes != expected:
                return {}, Verdict(False, f"{where}: batches have trailing shapes {epoch.shapes}, "
                                          f"expected {expected}: keep the shape of each example as it is")
            if (epoch.x_ids < 0).any() or (epoch.y_ids < 0).any():
                return {}, Verdict(False, f"{where}: a batch holds rows that are not rows of x or y "
                                          "(values changed on the way?)")
            epochs[label].append(epoch)
    return epochs, None


def _fail(feedback: str, mistake: Mistake | None = None) -> Verdict:
    if mistake is None:
        return Verdict(False, feedback)
    return Verdict(False, f"this looks like a known mistake ({mistake.name}). {feedback}",
                   hint=mistake.hint, mistake=mistake, detail=feedback)


def _once_per_epoch(epoch: _Epoch, build: dict, where: str) -> Verdict | None:
    n, bs = len(build["x"]), build["batch_size"]
    ids = epoch.x_ids
    counts = np.bincount(ids, minlength=n)
    if build["kwargs"].get("drop_remainder"):
        if len(ids) == n - n % bs and counts.max() <= 1:
            return None
    elif (counts == 1).all():
        return None
    missing, twice = np.nonzero(counts == 0)[0], np.nonzero(counts > 1)[0]
    text = (f"{where}: {len(ids)} examples in the epoch, {len(missing)} of the {n} never came "
            f"(e.g. {missing[:5].tolist()}), {len(twice)} came more than once "
            f"(e.g. {twice[:5].tolist()})")
    if not len(twice) and len(missing) == n % bs and (epoch.sizes == bs).all():
        return _fail(text, DROPPED_LAST)
    if len(twice):
        return _fail(text, WITH_REPLACEMENT)
    return _fail(text)


def judge_every_example(student, reference, inputs) -> Verdict:
    epochs, bad = _read(student, inputs)
    if bad:
        return bad
    for label, build in inputs["builds"].items():
        for e, epoch in enumerate(epochs[label]):
            verdict = _once_per_epoch(epoch, build, f"{label}, epoch {e + 1}")
            if verdict:
                return verdict
    return Verdict(True, "every example exactly once in every epoch")


def judge_pairs(student, reference, inputs) -> Verdict:
    epochs, bad = _read(student, inputs)
    if bad:
        return bad
    for label in inputs["builds"]:
        for e, epoch in enumerate(epochs[label]):
            wrong = np.nonzero(epoch.x_ids != epoch.y_ids)[0]
            if wrong.size:
                i = int(wrong[0])
                return _fail(f"{label}, epoch {e + 1}: {wrong.size} of {len(epoch.x_ids)} y rows "
                             f"do not belong to their x rows (position {i}: x is example "
                             f"{epoch.x_ids[i]}, y is the target of example {epoch.y_ids[i]})",
                             MISALIGNED)
    return Verdict(True, "every y row stays with its x row")


def judge_batch_sizes(student, reference, inputs) -> Verdict:
    epochs, bad = _read(student, inputs)
    if bad:
        return bad
    for label, build in inputs["builds"].items():
        n, bs = len(build["x"]), build["batch_size"]
        drop = bool(build["kwargs"].get("drop_remainder"))
        expected = [bs] * (n // bs) + ([] if drop or n % bs == 0 else [n % bs])
        for e, epoch in enumerate(epochs[label]):
            got = epoch.sizes.tolist()
            if got != expected:
                text = (f"{label} with N={n}, batch_size={bs}: batch sizes {_short(got)}, "
                        f"expected {_short(expected)}")
                if not drop and got == expected[:-1]:
                    return _fail(text, DROPPED_LAST)
                if drop and got == expected + [n % bs]:
                    return _fail(text, DROP_IGNORED)
                return _fail(text)
            verdict = _once_per_epoch(epoch, build, f"{label}, epoch {e + 1}")
            if verdict:
                return verdict
    return Verdict(True, "batch sizes right, the last partial batch kept or dropped as asked")


def _short(sizes: list) -> str:
    if len(sizes) <= 6:
        return str(sizes)
    return f"[{sizes[0]}, {sizes[1]}, ... ({len(sizes)} batches) ..., {sizes[-2]}, {sizes[-1]}]"


def judge_new_order(student, reference, inputs) -> Verdict:
    epochs, bad = _read(student, inputs)
    if bad:
        return bad
    for label, build in inputs["builds"].items():
        runs = epochs[label]
        for e, epoch in enumerate(runs):
            verdict = _once_per_epoch(epoch, build, f"{label}, epoch {e + 1}")
            if verdict:
                return verdict
        for a in range(len(runs)):
            for b in range(a + 1, len(runs)):
                if np.array_equal(runs[a].x_ids, runs[b].x_ids):
                    return _fail(f"{label}: epochs {a + 1} and {b + 1} visit the examples in the "
                                 "same order", SAME_ORDER)
                if sorted(map(sorted, runs[a].batches())) == sorted(map(sorted, runs[b].batches())):
                    return _fail(f"{label}: epochs {a + 1} and {b + 1} have the same batches, "
                                 "only in another order", SHUFFLED_BATCHES)
    return Verdict(True, "a new order (and new batches) every epoch")


def judge_seeded(student, reference, inputs) -> Verdict:
    epochs, bad = _read(student, inputs)
    if bad:
        return bad
    first, again, other = (epochs[k] for k in ("seed=s", "seed=s again", "another seed"))
    for e, (a, b) in enumerate(zip(first, again)):
        if not np.array_equal(a.x_ids, b.x_ids):
            return _fail(f"two datasets made with the same seed differ in epoch {e + 1}", SEED_IGNORED)
    if all(np.array_equal(a.x_ids, c.x_ids) for a, c in zip(first, other)):
        return _fail("a different seed gave the very same epochs", SEED_IGNORED)
    return Verdict(True, "the same seed gives the same epochs; another seed other epochs")


def judge_no_shuffle(student, reference, inputs) -> Verdict:
    epochs, bad = _read(student, inputs)
    if bad:
        return bad
    for label, build in inputs["builds"].items():
        for e, epoch in enumerate(epochs[label]):
            verdict = _once_per_epoch(epoch, build, f"{label}, epoch {e + 1}")
            if verdict:
                return verdict
            order = np.arange(len(build["x"]))
            if not np.array_equal(epoch.x_ids, order):
                i = int(np.nonzero(epoch.x_ids != order)[0][0])
                return _fail(f"{label}, epoch {e + 1}: position {i} holds example "
                             f"{epoch.x_ids[i]}, expected example {i}", SHUFFLE_IGNORED)
    return Verdict(True, "the original order without shuffling")


def judge_trailing_shapes(student, reference, inputs) -> Verdict:
    epochs, bad = _read(student, inputs)
    if bad:
        return bad
    for label, build in inputs["builds"].items():
        for e, epoch in enumerate(epochs[label]):
            verdict = _once_per_epoch(epoch, build, f"{label}, epoch {e + 1}")
            if verdict:
                return verdict
    pairs = judge_pairs(student, reference, inputs)
    if not pairs.passed:
        return pairs
    return Verdict(True, "examples of any shape come out whole and with their targets")


def _property(name, inputs, judge, description) -> Check:
    return Check(f"mini_batches.{name}", run_batches, description, inputs=inputs, weight=2.0,
                 judge=judge, needs_reference=False, mistakes=MINI_BATCH_MISTAKES)


MINI_BATCH_CHECKS = (
    _property("every_example_once", every_example_inputs, judge_every_example,
              "each epoch visits every example exactly once"),
    _property("pairs_aligned", pairs_inputs, judge_pairs,
              "each y row stays with its x row through the shuffle"),
    _property("batch_sizes", batch_size_inputs, judge_batch_sizes,
              "batch sizes; the last partial batch kept, or dropped with drop_remainder=True"),
    _property("new_order_each_epoch", new_order_inputs, judge_new_order,
              "a new order, and new batches, every epoch"),
    _property("seeded", seeded_inputs, judge_seeded,
              "the same seed gives the same sequence of epochs; another seed another"),
    _property("no_shuffle", no_shuffle_inputs, judge_no_shuffle,
              "shuffle=False keeps the original order"),
    _property("trailing_shapes", trailing_shape_inputs, judge_trailing_shapes,
              "x and y of any trailing shape (none, or an image's)"),
)

# --------------------------------------------------------------------------------------------
# SGD


def sgd_update(state, w, g, lr, t, hp, variant=None):
    """One step of plain SGD (and of the known-wrong variants)."""
    if variant == "sign":
        return w + lr * g
    return w - lr * g


SGD_SPEC = OptimizerSpec(
    "SGD", sgd_update, lambda rng: {}, defaults=("learning_rate",),
    mistakes=(("sign", "sign error: a step up the gradient",
               "gradient descent moves AGAINST the gradient: w = w - lr * g (assign_sub), "
               "not w + lr * g."),))


EXERCISE = Exercise(
    stem="ch03_mini_batch",
    checks=MINI_BATCH_CHECKS + tuple(optimizer_checks(SGD_SPEC)),
    reference="course.references.ch03_mini_batch",
    forbidden=KERAS_OPTIMIZERS,
    tensorflow_by_design=("mini_batches",),  # a tf.data pipeline: input on every backend
)
