"""Chapter 4: the NumPy models and the course-written EMA reference are right, the grader
recognises each known mistake, accepts another correct implementation, and the chapter runs.

Each mistake is a small edit of solutions/ch04_momentum.py graded on the checks that matter;
the reference is computed once for the whole session (graderlib.CACHE).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from course import references
from course.grader import ch04_momentum as spec
from course.grader.optimizer_suite import run_trajectory, simulate
from graderlib import by_check, grade, run_cli, write_variant

STEM = "ch04_momentum"

MOMENTUM_STEP = """        self.assign(v, mu * v - lr * g)
        if self.nesterov:
            # read v again after the assignment: the look-ahead uses the NEW velocity
            self.assign_add(variable, mu * v - lr * g)
        else:
            self.assign_add(variable, v)"""
EMA_STEP = """        self.assign(v, beta * v + (1 - beta) * g)
        self.assign_sub(variable, lr * v)"""


def hint_of(mistake: tuple) -> str:
    return mistake[2]


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
# Known mistakes, graded for real

VARIANTS = {
    "velocity sign error": (
        [("self.assign(v, mu * v - lr * g)", "self.assign(v, mu * v + lr * g)")],
        ["momentumsgd.trajectory"], [], spec.VELOCITY_SIGN),
    "Nesterov with the old velocity": (
        [(MOMENTUM_STEP, """        look_ahead = mu * v - lr * g  # v is still the old velocity here
        self.assign(v, mu * v - lr * g)
        if self.nesterov:
            self.assign_add(variable, look_ahead)
        else:
            self.assign_add(variable, v)""")],
        ["momentumsgd.nesterov"], ["momentumsgd.trajectory"], spec.NESTEROV_IGNORED),
    "Nesterov ignored": (
        [("        if self.nesterov:\n            # read", "        if False:\n            # read")],
        ["momentumsgd.nesterov"], ["momentumsgd.trajectory"], spec.NESTEROV_IGNORED),
    "PyTorch-style velocity": (
        [(MOMENTUM_STEP, """        self.assign(v, mu * v + g)
        if self.nesterov:
            self.assign_sub(variable, lr * (mu * v + g))
        else:
            self.assign_sub(variable, lr * v)""")],
        ["momentumsgd.schedule"], ["momentumsgd.trajectory"], spec.PYTORCH_VELOCITY),
    "EMA without (1 - beta)": (
        [("self.assign(v, beta * v + (1 - beta) * g)", "self.assign(v, beta * v + g)")],
        ["emamomentum.trajectory"], [], spec.EMA.mistakes[0]),
    "EMA as Keras's velocity at the scaled rate": (
        [(EMA_STEP, """        self.assign(v, beta * v - lr * (1 - beta) * g)
        self.assign_add(variable, v)""")],
        ["emamomentum.schedule"], ["emamomentum.trajectory"], spec.EMA.mistakes[3]),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_known_mistake_loses_points_with_its_hint(tmp_path, name):
    replacements, failing, passing, mistake = VARIANTS[name]
    path = write_variant(tmp_path, STEM, replacements)
    entry = grade(path, STEM, checks=failing + passing)
    checks = by_check(entry)
    assert entry["score"] < entry["max_score"]
    for check in failing:
        assert not checks[check]["passed"], checks[check]
        assert checks[check]["hint"] == hint_of(mistake), checks[check]
        assert mistake[1] in checks[check]["feedback"]
    for check in passing:  # the mistake is invisible here, which is why the failing check exists
        assert checks[check]["passed"], checks[check]


def test_bad_momentum_raises_a_clear_error():
    pytest.importorskip("tensorflow")
    from solutions.ch04_momentum import EMAMomentum, MomentumSGD

    for bad in (-0.1, 1.5, "0.9", None):
        with pytest.raises(ValueError, match="momentum must be a number between 0 and 1"):
            MomentumSGD(momentum=bad)
        with pytest.raises(ValueError, match="beta must be a number between 0 and 1"):
            EMAMomentum(beta=bad)
    assert MomentumSGD(momentum=0).get_config()["momentum"] == 0.0  # an int is fine: made a float


# --------------------------------------------------------------------------------------------
# Whole exercise

ANOTHER_CORRECT = '''
import keras
from keras import ops


@keras.saving.register_keras_serializable(package="another")
class MomentumSGD(keras.optimizers.Optimizer):
    """Stores u = -v, the step still to be taken: u = mu*u + lr*g; w -= u."""

    def __init__(self, learning_rate=0.01, momentum=0.9, nesterov=False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.momentum, self.nesterov = float(momentum), nesterov

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.steps = [self.add_variable_from_reference(v, "step") for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        u = self.steps[self._get_variable_index(variable)]
        scaled = ops.multiply(ops.cast(gradient, variable.dtype),
                              ops.cast(learning_rate, variable.dtype))
        self.assign(u, ops.add(ops.multiply(u, ops.cast(self.momentum, variable.dtype)), scaled))
        if self.nesterov:
            self.assign_sub(variable, ops.add(ops.multiply(u, ops.cast(self.momentum, variable.dtype)),
                                              scaled))
        else:
            self.assign_sub(variable, u)

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


@keras.saving.register_keras_serializable(package="another")
class EMAMomentum(keras.optimizers.Optimizer):
    """Keeps the undamped sum s = beta*s + g; the average is v = (1 - beta)*s."""

    def __init__(self, learning_rate=0.01, beta=0.9, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta = beta

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.sums = [self.add_variable_from_reference(v, "sum") for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        s = self.sums[self._get_variable_index(variable)]
        beta = ops.cast(self.beta, variable.dtype)
        self.assign(s, beta * s + ops.cast(gradient, variable.dtype))
        self.assign_sub(variable, ops.cast(learning_rate, variable.dtype) * (1 - beta) * s)

    def get_config(self):
        return {**super().get_config(), "beta": self.beta}
'''


def test_another_correct_implementation_scores_full_marks(tmp_path):
    entry = grade(write_variant(tmp_path, STEM, text=ANOTHER_CORRECT), STEM)
    assert entry["score"] == pytest.approx(10.0), [c for c in entry["checks"] if not c["passed"]]


def test_quick_chapter_run_writes_its_plots(tmp_path):
    result = run_cli("run", "4", "--quick", "--out", str(tmp_path), timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    pngs = {p.name for p in tmp_path.glob("*.png")}
    assert {"trajectories.png", "averaging_window.png", "ema_vs_keras_form.png"} <= pngs, pngs
    assert "Claim:" in result.stdout
