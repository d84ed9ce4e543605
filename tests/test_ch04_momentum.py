"""Chapter 4: the NumPy models and the course-written EMA reference are right, a mistake that
only one check can see passes the others, the solution rejects a bad momentum, and the chapter
runs.

Its submission variants (each known mistake as a small edit of the solution, another correct
implementation) are graded in test_variants.py; the reference is computed once for the whole
session (graderlib.CACHE).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from course import references
from course.grader import ch04_momentum as spec
from course.grader.optimizer_suite import run_trajectory, simulate
from graderlib import by_check, grade, write_variant
from variants import ch04_momentum as momentum_variants

STEM = "ch04_momentum"

# --------------------------------------------------------------------------------------------
# The models the hints rely on, and the EMA reference the grader trusts


def _inputs(check_name: str, seed: int = 3) -> dict:
    return spec.EXERCISE.check(check_name).make_inputs(seed)


@pytest.fixture(scope="module")
def keras_runs():
    """Run the reference classes (and Keras SGD at the scaled rate) in this process."""
    pytest.importorskip("tensorflow")
    import keras

    ref = references.ch04_momentum()

    def run(cls_name, inputs, impl=ref):
        return run_trajectory(cls_name)(impl, inputs, SimpleNamespace())

    def scaled_sgd(learning_rate=0.01, beta=0.9):
        """Keras SGD at lr*(1-beta), momentum beta: the documents' form at a constant rate."""
        if isinstance(learning_rate, keras.optimizers.schedules.ExponentialDecay):
            config = learning_rate.get_config()
            config["initial_learning_rate"] *= 1 - beta
            learning_rate = keras.optimizers.schedules.ExponentialDecay.from_config(config)
        else:
            learning_rate *= 1 - beta
        return keras.optimizers.SGD(learning_rate, momentum=float(beta))

    return SimpleNamespace(run=run, scaled=SimpleNamespace(EMAMomentum=scaled_sgd))


def _close(a: dict, b: dict, rtol=1e-5, atol=1e-6) -> bool:
    return all(np.allclose(a[k], b[k], rtol=rtol, atol=atol) for k in b)


@pytest.mark.parametrize("check", ["momentumsgd.trajectory", "momentumsgd.schedule",
                                   "momentumsgd.nesterov", "emamomentum.trajectory",
                                   "emamomentum.schedule"])
def test_numpy_models_match_the_references(keras_runs, check):
    inputs = _inputs(check)
    cls_name = "MomentumSGD" if check.startswith("momentum") else "EMAMomentum"
    update = spec.momentum_update if cls_name == "MomentumSGD" else spec.ema_update
    assert _close(simulate(inputs, update), keras_runs.run(cls_name, inputs))


def test_ema_form_equals_keras_sgd_at_the_scaled_rate_only_while_the_rate_is_constant(keras_runs):
    constant, scheduled = _inputs("emamomentum.trajectory"), _inputs("emamomentum.schedule")
    assert _close(keras_runs.run("EMAMomentum", constant),
                  keras_runs.run("EMAMomentum", constant, keras_runs.scaled), rtol=1e-4)
    ema = keras_runs.run("EMAMomentum", scheduled)
    keras_form = keras_runs.run("EMAMomentum", scheduled, keras_runs.scaled)
    assert not _close(ema, keras_form, rtol=1e-3, atol=1e-3)
    # and the grader's model of that mistake is exactly this Keras run
    assert _close(simulate(scheduled, spec.ema_update, "rate_in_velocity"), keras_form)


def test_every_mistake_is_separated_from_the_answer_where_it_is_checked():
    where = {"velocity_sign": "momentumsgd.trajectory", "nesterov_ignored": "momentumsgd.nesterov",
             "pytorch": "momentumsgd.schedule", "ema": "momentumsgd.trajectory"}
    for seed in (1, 2, 3):
        for variant, check in where.items():
            inputs = _inputs(check, seed)
            right, wrong = simulate(inputs, spec.momentum_update), simulate(
                inputs, spec.momentum_update, variant)
            gap = max(np.max(np.abs(right[k] - wrong[k]) / (1e-6 + np.abs(right[k]))) for k in right)
            assert gap > 1e-2, (variant, seed, gap)  # far more than the 1e-5 tolerance
        inputs = _inputs("emamomentum.trajectory", seed)
        for variant in ("no_one_minus_beta", "swapped", "sign"):
            wrong = simulate(inputs, spec.ema_update, variant)
            right = simulate(inputs, spec.ema_update)
            assert not _close(wrong, right, rtol=1e-2, atol=1e-3), (variant, seed)
    # the PyTorch form is invisible without a schedule: that is why the schedule check exists
    constant = _inputs("momentumsgd.trajectory")
    assert _close(simulate(constant, spec.momentum_update, "pytorch"),
                  simulate(constant, spec.momentum_update))


# --------------------------------------------------------------------------------------------
# Graded for real: a mistake that only one check can see passes the check beside it, which is
# why that check exists (that each fails its own check is tested in test_variants.py)

UNSEEN_BY = {"Nesterov with the old velocity": "momentumsgd.trajectory",
             "Nesterov ignored": "momentumsgd.trajectory",
             "PyTorch-style velocity": "momentumsgd.trajectory",
             "EMA as Keras's velocity at the scaled rate": "emamomentum.trajectory"}


@pytest.mark.parametrize("name", list(UNSEEN_BY))
def test_a_mistake_passes_the_check_that_cannot_see_it(tmp_path, name):
    variant = next(v for v in momentum_variants.VARIANTS if v.name == name)
    check = UNSEEN_BY[name]
    entry = grade(write_variant(tmp_path, STEM, variant.text), STEM, checks=[check])
    assert by_check(entry)[check]["passed"], by_check(entry)[check]


def test_bad_momentum_raises_a_clear_error():
    pytest.importorskip("tensorflow")
    from solutions.ch04_momentum import EMAMomentum, MomentumSGD

    for bad in (-0.1, 1.5, "0.9", None):
        with pytest.raises(ValueError, match="momentum must be a number between 0 and 1"):
            MomentumSGD(momentum=bad)
        with pytest.raises(ValueError, match="beta must be a number between 0 and 1"):
            EMAMomentum(beta=bad)
    assert MomentumSGD(momentum=0).get_config()["momentum"] == 0.0  # an int is fine: made a float
