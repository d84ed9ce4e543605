"""Chapter 3: the grader recognises each known mistake, accepts another correct implementation,
and the chapter script runs.

Each mistake is a small edit of solutions/ch03_mini_batch.py graded on the checks that matter;
the reference (Keras SGD) is computed once for the whole session (graderlib.CACHE).
"""

from __future__ import annotations

import numpy as np
import pytest

from course.grader import ch03_mini_batch as spec
from graderlib import by_check, grade, run_cli, write_variant

STEM = "ch03_mini_batch"
MB = "mini_batches."

SHUFFLE_LINE = "dataset = dataset.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)"
PIPELINE = """    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        # A buffer of the whole data set is a uniform shuffle; a smaller one only mixes neighbours.
        dataset = dataset.shuffle(max(n, 1), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(int(batch_size), drop_remainder=drop_remainder)"""


def assert_mistake(entry: dict, check: str, mistake) -> None:
    checks = by_check(entry)
    assert entry["score"] < entry["max_score"], entry
    assert not checks[check]["passed"], checks[check]
    assert checks[check]["hint"] == mistake.hint, checks[check]
    assert mistake.name in checks[check]["feedback"], checks[check]


# --------------------------------------------------------------------------------------------
# The property judges, without TensorFlow: fast tests that they can fail.


def _fake_outputs(inputs: dict, orders: dict) -> dict:
    """What run_batches would return for pipelines that visit examples in ``orders``."""
    out = {}
    for label, build in inputs["builds"].items():
        out[f"{label}|is_dataset"] = True
        for e in range(build["epochs"]):
            ids_x, ids_y, sizes = orders[label][e]
            x, y = build["x"], build["y"]
            out[f"{label}|{e}|sizes"] = np.asarray(sizes)
            out[f"{label}|{e}|endless"] = False
            out[f"{label}|{e}|shapes"] = f"x {x.shape[1:]} y {y.shape[1:]}"
            out[f"{label}|{e}|x"] = x[ids_x].reshape(len(ids_x), -1).astype(np.float64)
            out[f"{label}|{e}|y"] = y[ids_y].reshape(len(ids_y), -1).astype(np.float64)
    return out


def _sizes(n, bs, drop=False):
    return [bs] * (n // bs) + ([] if drop or n % bs == 0 else [n % bs])


def test_judges_accept_proper_epochs_and_name_each_mistake():
    rng = np.random.default_rng(0)
    inputs = spec.new_order_inputs(rng)
    (label, build), = inputs["builds"].items()
    n, bs = len(build["x"]), build["batch_size"]
    perms = [rng.permutation(n) for _ in range(build["epochs"])]
    good = _fake_outputs(inputs, {label: [(p, p, _sizes(n, bs)) for p in perms]})
    assert spec.judge_new_order(good, {}, inputs).passed
    assert spec.judge_every_example(good, {}, inputs).passed
    assert spec.judge_pairs(good, {}, inputs).passed

    same = _fake_outputs(inputs, {label: [(perms[0], perms[0], _sizes(n, bs))] * build["epochs"]})
    assert spec.judge_new_order(same, {}, inputs).hint == spec.SAME_ORDER.hint

    apart = _fake_outputs(inputs, {label: [(p, rng.permutation(n), _sizes(n, bs)) for p in perms]})
    assert spec.judge_pairs(apart, {}, inputs).hint == spec.MISALIGNED.hint

    dropped = _fake_outputs(inputs, {label: [(p[: n - n % bs], p[: n - n % bs], _sizes(n, bs, True))
                                             for p in perms]})
    assert spec.judge_every_example(dropped, {}, inputs).hint == spec.DROPPED_LAST.hint

    drawn = [rng.integers(0, n, size=n) for _ in perms]
    repeated = _fake_outputs(inputs, {label: [(d, d, _sizes(n, bs)) for d in drawn]})
    assert spec.judge_every_example(repeated, {}, inputs).hint == spec.WITH_REPLACEMENT.hint

    # the same batches in another order each epoch: shuffled after batching
    blocks = np.split(perms[0], np.cumsum(_sizes(n, bs))[:-1])
    reordered = []
    for e in range(build["epochs"]):
        order = np.roll(np.arange(len(blocks)), e)
        ids = np.concatenate([blocks[i] for i in order])
        reordered.append((ids, ids, [len(blocks[i]) for i in order]))
    verdict = spec.judge_new_order(_fake_outputs(inputs, {label: reordered}), {}, inputs)
    assert verdict.hint == spec.SHUFFLED_BATCHES.hint


def test_inputs_are_reproducible_and_have_a_partial_batch():
    for check in spec.MINI_BATCH_CHECKS:
        a, b = check.make_inputs(5), check.make_inputs(5)
        for label, build in a["builds"].items():
            np.testing.assert_array_equal(build["x"], b["builds"][label]["x"])
            n = len(build["x"])
            assert n % build["batch_size"], (check.name, n, build["batch_size"])
            # every row is unique, so that a row names its example
            flat = build["x"].reshape(n, -1)
            assert len({r.tobytes() for r in flat}) == n


# --------------------------------------------------------------------------------------------
# Known mistakes, graded for real on the checks that see them.

MINI_BATCH_VARIANTS = {
    "x and y shuffled apart": (
        [(PIPELINE, """    xs = tf.data.Dataset.from_tensor_slices(x)
    ys = tf.data.Dataset.from_tensor_slices(y)
    if shuffle:
        xs = xs.shuffle(n, seed=seed)
        ys = ys.shuffle(n)
    return tf.data.Dataset.zip((xs, ys)).batch(batch_size, drop_remainder=drop_remainder)""")],
        ["pairs_aligned"], spec.MISALIGNED),
    "last partial batch dropped": (
        [("drop_remainder=drop_remainder)", "drop_remainder=True)")],
        ["batch_sizes", "every_example_once"], spec.DROPPED_LAST),
    "same order every epoch": (
        [("reshuffle_each_iteration=True", "reshuffle_each_iteration=False")],
        ["new_order_each_epoch"], spec.SAME_ORDER),
    "seed ignored (none passed on)": (
        [(SHUFFLE_LINE, SHUFFLE_LINE.replace("seed=seed", "seed=None"))],
        ["seeded"], spec.SEED_IGNORED),
    "seed ignored (a fixed one)": (
        [(SHUFFLE_LINE, SHUFFLE_LINE.replace("seed=seed", "seed=1234"))],
        ["seeded"], spec.SEED_IGNORED),
    "shuffled after batching": (
        [(PIPELINE, """    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size,
                                                              drop_remainder=drop_remainder)
    if shuffle:
        dataset = dataset.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return dataset""")],
        ["new_order_each_epoch"], spec.SHUFFLED_BATCHES),
}


@pytest.mark.parametrize("name", list(MINI_BATCH_VARIANTS))
def test_mini_batches_mistake_loses_points_with_its_hint(tmp_path, name):
    replacements, checks, mistake = MINI_BATCH_VARIANTS[name]
    path = write_variant(tmp_path, STEM, replacements)
    entry = grade(path, STEM, checks=[MB + c for c in checks])
    for check in checks:
        assert_mistake(entry, MB + check, mistake)


def test_sgd_sign_error_loses_points_with_its_hint(tmp_path):
    path = write_variant(tmp_path, STEM, [("self.assign_sub(variable, lr * g)",
                                           "self.assign_add(variable, lr * g)")])
    entry = grade(path, STEM, checks=["sgd.single_step", "sgd.trajectory"])
    hint = spec.SGD_SPEC.mistakes[0][2]
    for check in ("sgd.single_step", "sgd.trajectory"):
        assert by_check(entry)[check]["hint"] == hint, by_check(entry)[check]
        assert not by_check(entry)[check]["passed"]


def test_bad_arguments_raise_clear_errors():
    tf = pytest.importorskip("tensorflow")  # noqa: F841
    from solutions.ch03_mini_batch import mini_batches

    x, y = np.zeros((10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match="same number of examples"):
        mini_batches(x, y[:9], 4)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            mini_batches(x, y, bad)


# --------------------------------------------------------------------------------------------
# Whole exercise: the solution through the CLI, a differently written one in-process.

ANOTHER_CORRECT = '''
import keras
import numpy as np
import tensorflow as tf


def mini_batches(x, y, batch_size, *, shuffle=True, seed=None, drop_remainder=False):
    """Index-based: a NumPy permutation per epoch, drawn from a generator seeded once."""
    x, y = np.asarray(x), np.asarray(y)
    n = len(x)
    rng = np.random.default_rng(seed)

    def epoch_indices():
        order = rng.permutation(n) if shuffle else np.arange(n)
        stop = n - n % batch_size if drop_remainder else n
        for start in range(0, stop, batch_size):
            yield order[start:start + batch_size]

    indices = tf.data.Dataset.from_generator(
        epoch_indices, output_signature=tf.TensorSpec((None,), tf.int64))
    return indices.map(lambda i: (tf.gather(x, i), tf.gather(y, i)))


@keras.saving.register_keras_serializable(package="another")
class SGD(keras.optimizers.Optimizer):
    def __init__(self, learning_rate=0.01, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        step = keras.ops.multiply(keras.ops.cast(gradient, variable.dtype),
                                  keras.ops.cast(learning_rate, variable.dtype))
        self.assign_add(variable, keras.ops.negative(step))
'''


def test_another_correct_implementation_scores_full_marks(tmp_path):
    path = write_variant(tmp_path, STEM, text=ANOTHER_CORRECT)
    entry = grade(path, STEM)
    failed = [c for c in entry["checks"] if not c["passed"]]
    assert entry["score"] == pytest.approx(10.0), failed


def test_quick_chapter_run_writes_its_plots(tmp_path):
    result = run_cli("run", "3", "--quick", "--out", str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert {"gd_variants.png", "linear_scaling.png"} <= set(pngs), pngs
    assert "Claim:" in result.stdout
