"""Chapter 3: the grader's judges of mini_batches name each mistake (without TensorFlow), its
inputs are reproducible, the solution rejects bad arguments, and the chapter script runs.

Its submission variants (each known mistake as a small edit of the solution, another correct
implementation) are graded in test_variants.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from course.grader import ch03_mini_batch as spec

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


def test_bad_arguments_raise_clear_errors():
    tf = pytest.importorskip("tensorflow")  # noqa: F841
    from solutions.ch03_mini_batch import mini_batches

    x, y = np.zeros((10, 2)), np.zeros(10)
    with pytest.raises(ValueError, match="same number of examples"):
        mini_batches(x, y[:9], 4)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            mini_batches(x, y, bad)
