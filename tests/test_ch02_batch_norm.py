"""Chapter 2's grader pieces and chapter script: the NumPy model that names the mistakes
(gradients included) agrees with Keras's layer, the solution's layer rejects bad shapes, and the
chapter runs.

Its submission variants (known mistakes, a correct layer written differently, a subclass of
keras.layers.BatchNormalization) are graded in test_variants.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from course import references



def test_numpy_model_matches_keras_so_hints_are_trustworthy():
    """The float64 model (closed-form gradients included) must agree with Keras's layer, and each
    modelled mistake must lie far (here 20 times the tolerance) from it."""
    from course.grader import ch02_batch_norm as g
    from course.grader.compare import differences

    ns = references.ch02_batch_norm()
    models = {"bn.training_output": g._training_model, "bn.inference_output": g._inference_model,
              "bn.moving_statistics": g._moving_model, "bn.gradients": g._gradient_model,
              "bn.axes": g._axes_model, "bn.center_scale": g._flags_model,
              "bn.trainable_false": g._frozen_model}
    for seed in (1, 2):
        for name, model in models.items():
            check = g.EXERCISE.check(name)
            inputs = check.make_inputs(seed)
            ref = check.run(ns, inputs, SimpleNamespace())
            assert not differences(model(None)(inputs), ref, check.rtol, check.atol), name
            for mistake in check.mistakes:
                assert differences(mistake.outputs(inputs), ref, 20 * check.rtol, 20 * check.atol), (
                    name, mistake.name)


def test_layer_rejects_bad_shapes_with_clear_errors():
    from solutions.ch02_batch_norm import BatchNormalization

    with pytest.raises(ValueError, match="out of range"):
        BatchNormalization(axis=3).build((None, 4))
    with pytest.raises(ValueError, match="known size"):
        BatchNormalization().build((None, None))
    layer = BatchNormalization()
    y = layer(np.ones((4, 3), np.float32) * 5.0, training=True)
    assert np.allclose(np.asarray(y), 0.0)  # a constant batch normalizes to beta = 0, no NaN


# ------------------------------------------------------------------------------------------
# The chapter script, end to end in --quick mode (one run serves these tests). It is given a
# --dataset name that TFDS does not know: the run must say so in a note and carry on.
