"""Chapter 6's grader: its feedback says where a trajectory goes wrong and by how much, its inputs
follow the seed, and the NumPy model that names the mistakes agrees with Keras's Adam.

Its submission variants (known mistakes, correct implementations written differently,
delegations to Keras's Adam) are graded in test_variants.py."""

from __future__ import annotations

from course import references

from graderlib import by_check, grade, write_variant
from variants import ch06_adam as adam_variants

STEM = "ch06_adam"


def test_feedback_says_where_and_by_how_much(tmp_path):
    no_bias_correction = next(v for v in adam_variants.VARIANTS if v.name == "no bias correction")
    path = write_variant(tmp_path, STEM, no_bias_correction.text)
    check = by_check(grade(path, STEM, checks=["adam.trajectory"]))["adam.trajectory"]
    assert "at step 1" in check["feedback"] and "off by" in check["feedback"]
    assert "known mistake (no bias correction)" in check["feedback"]


def test_same_seed_same_inputs_and_different_seed_different_inputs():
    from course.grader.grade import exercise_spec

    check = exercise_spec(STEM).check("adam.trajectory")
    a, b, c = check.make_inputs(1), check.make_inputs(1), check.make_inputs(2)
    assert a["kwargs"] == b["kwargs"] and a["kwargs"] != c["kwargs"]


def test_numpy_model_matches_keras_so_hints_are_trustworthy():
    """The NumPy model that recognises mistakes must itself agree with Keras's Adam."""
    import numpy as np
    from types import SimpleNamespace

    from course.grader import ch06_adam
    from course.grader.optimizer_suite import run_trajectory, simulate

    ns = references.ch06_adam()
    for spec in (ch06_adam.ADAM, ch06_adam.ADAMW, ch06_adam.ADAML2):
        # base_options: weight decay with exclusions and clipnorm, modelled for every optimizer
        for name in ("trajectory", "base_options"):
            check = ch06_adam.EXERCISE.check(f"{spec.cls_name.lower()}.{name}")
            inputs = check.make_inputs(7)
            keras_out = run_trajectory(spec.cls_name)(ns, inputs, SimpleNamespace())
            numpy_out = simulate(inputs, spec.update)
            for key in keras_out:
                np.testing.assert_allclose(numpy_out[key], keras_out[key], rtol=1e-4, atol=1e-5)
            if name == "base_options":  # and the mistakes it names are far from the answer
                for variant in ("decays_excluded", "base_options_ignored"):
                    wrong = simulate(inputs, spec.update, variant)
                    assert max(np.abs(wrong[k] - keras_out[k]).max() for k in keras_out) > 1e-2
