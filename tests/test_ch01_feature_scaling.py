"""Chapter 1's grader pieces and chapter script: the NumPy models that name the mistakes agree
with the references they stand for, the solution's layers reject bad input, and the chapter runs.

Its submission variants (known mistakes, a correct pair written differently, delegations to
keras.layers.Normalization) are graded in test_variants.py."""

from __future__ import annotations

import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from course import references


# ------------------------------------------------------------------------------------------
# The grader's own pieces, in this process: the references and the NumPy models of mistakes.


@pytest.fixture(scope="module")
def reference_ns():
    return references.ch01_feature_scaling()


def _ctx():
    return SimpleNamespace(tmpdir=Path(tempfile.mkdtemp(prefix="ch01-test-")))


def test_reference_min_max_layer_is_sklearn(reference_ns):
    """The reference MinMaxScaling must compute exactly what MinMaxScaler does, both ways."""
    from sklearn.preprocessing import MinMaxScaler

    from course.grader.ch01_feature_scaling import minmax_outputs_inputs

    inputs = minmax_outputs_inputs(np.random.default_rng(3))
    x, z = inputs["x_adapt"].astype(np.float64), inputs["x_call"].astype(np.float64)
    scaler = MinMaxScaler(feature_range=inputs["feature_range"]).fit(x)
    for invert, expected in ((False, scaler.transform(z)), (True, scaler.inverse_transform(z))):
        layer = reference_ns.MinMaxScaling(feature_range=inputs["feature_range"], invert=invert)
        layer.adapt(inputs["x_adapt"])
        np.testing.assert_allclose(np.asarray(layer(inputs["x_call"])), expected, rtol=1e-6, atol=1e-6)


def test_numpy_models_match_the_references_and_each_mistake_is_far_from_them(reference_ns):
    """Hints are only trustworthy if the correct model equals the reference, and a check only
    separates a mistake if its numbers are far outside the tolerance (here at least 20 times)."""
    from course.grader import ch01_feature_scaling as g
    from course.grader.compare import differences

    correct = {
        "standardization.outputs": lambda i: {"outputs": g.standardize(i["x_adapt"], i["x_call"])},
        "standardization.invert": lambda i: {"outputs": g.standardize(i["x_adapt"], i["x_call"],
                                                                      invert=True)},
        "standardization.batched_adapt": lambda i: {"outputs": (
            (i["x_call"] - g.batched_moments(i["x_adapt"], i["batch_size"], None)[0])
            / np.maximum(np.sqrt(g.batched_moments(i["x_adapt"], i["batch_size"], None)[1]), g.FLOOR))},
        "minmax.outputs": lambda i: {"outputs": g.minmax(i["x_adapt"], i["x_call"], i["feature_range"])},
        "minmax.invert": lambda i: {"outputs": g.minmax(i["x_adapt"], i["x_call"],
                                                        i["feature_range"], invert=True)},
    }
    for seed in (1, 2):
        for name, model in correct.items():
            check = g.EXERCISE.check(name)
            inputs = check.make_inputs(seed)
            ref = check.run(reference_ns, inputs, _ctx())
            assert not differences(model(inputs), ref, check.rtol, check.atol), name
            for mistake in check.mistakes:
                if mistake.name == "epsilon added to the variance":
                    continue  # one model per usual epsilon: only the large ones need be far
                wrong = mistake.outputs(inputs)
                assert differences(wrong, ref, 20 * check.rtol, 20 * check.atol), (name, mistake.name)


def test_layers_reject_bad_input_with_clear_errors():
    from solutions.ch01_feature_scaling import MinMaxScaling, Standardization

    with pytest.raises(TypeError, match="adapt"):
        Standardization().adapt("not data")
    with pytest.raises(ValueError, match="no data"):
        Standardization().adapt([])
    with pytest.raises(ValueError, match="lo < hi"):
        MinMaxScaling(feature_range=(1.0, 0.0))
    layer = Standardization()
    layer.adapt(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        layer.adapt(np.ones((4, 5), np.float32))


# ------------------------------------------------------------------------------------------
# The chapter script, end to end in --quick mode (one run serves these tests). It is given a
# --dataset name that TFDS does not know: the run must say so in a note and carry on.
