"""Chapter 5 (RMSprop) both ways through the grader, its mistake models, and its chapter script.

- the solution scores 10/10 and the generated stub 0/10;
- each known mistake of the grader's contract (and a shared slot) is a small edit of the solution that loses
  points on the checks where it shows, with the hint that names it; the other mistakes the grader
  knows (bias correction added, centered or momentum ignored) are checked on their NumPy models
  only, which keeps this file's share of the test suite's time near two minutes;
- a correct implementation written differently (TensorFlow ops, one slot dictionary, a densified
  gradient) scores 10/10, and delegating to Keras's RMSprop scores 0;
- in NumPy only: over many seeds, each mistake's model is far from the correct model wherever it
  applies, and the judge names it;
- ``course run 5 --quick`` finishes and writes its plots and claims.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

from course.grader.ch05_rmsprop import EXERCISE, RMSPROP, rmsprop_update
from course.grader.compare import default_judge
from course.grader.optimizer_suite import simulate
from graderlib import ROOT, by_check, grade, write_variant

STEM = "ch05_rmsprop"


@dataclass(frozen=True)
class Variant:
    name: str
    replacements: tuple[tuple[str, str], ...]
    checks: tuple[str, ...]  # graded, and each must fail
    hint: str  # text the hint of each failing check must contain


INC = "increment = ops.divide(ops.multiply(lr, g), ops.sqrt(den + self.epsilon))"
V_UPDATE = "self.assign(v, ops.add(rho * v, ops.multiply(1 - rho, ops.square(g))))"
MOMENTUM = ("self.assign(mom, ops.add(self.momentum * mom, increment))\n"
            "            self.assign_sub(variable, mom)")

VARIANTS = (
    # the grader contract's four
    Variant("epsilon outside the square root",
            ((INC, "increment = ops.divide(ops.multiply(lr, g), ops.sqrt(den) + self.epsilon)"),),
            ("rmsprop.single_step", "rmsprop.trajectory"), "UNDER the root"),
    Variant("centered with v - a", (("den = v - ops.square(a)", "den = v - a"),),
            ("rmsprop.centered",), "v - a^2"),
    Variant("rho and 1 - rho swapped",
            ((V_UPDATE,
              "self.assign(v, ops.add((1 - rho) * v, ops.multiply(rho, ops.square(g))))"),),
            ("rmsprop.single_step", "rmsprop.trajectory"), "weights the OLD"),
    Variant("momentum applied to the gradient",
            ((MOMENTUM, "self.assign(mom, ops.add(self.momentum * mom, g))\n"
                        "            self.assign_sub(variable, ops.divide(ops.multiply(lr, mom),"
                        " ops.sqrt(den + self.epsilon)))"),),
            ("rmsprop.momentum", "rmsprop.centered_momentum"), "whole increment"),
    # and one more, which shows through a different check (and an exception's text)
    Variant("one slot shared by all variables",
            (('self._velocities = self.add_optimizer_variables(var_list, "velocity")',
              'self._velocities = [self.add_variable_from_reference(var_list[0], "velocity")]'
              ' * len(var_list)'),),
            ("rmsprop.slots_per_variable", "rmsprop.trajectory"), "EACH variable"),
)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_known_mistake_loses_points_with_its_hint(variant, tmp_path):
    path = write_variant(tmp_path, STEM, variant.replacements)
    entry = grade(path, STEM, checks=variant.checks)
    checks = by_check(entry)
    for name in variant.checks:
        assert not checks[name]["passed"], f"{name} passed for '{variant.name}'"
        assert checks[name]["hint"] and variant.hint in checks[name]["hint"], checks[name]
    assert entry["score"] == 0.0


ALTERNATIVE = '''
"""RMSprop written differently: TensorFlow ops, one slot dictionary, the average as an increment."""

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="alt")
class RMSprop(keras.optimizers.Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho, self.momentum, self.epsilon, self.centered = rho, momentum, epsilon, centered

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        wanted = ["ms"] + (["mg"] if self.centered else []) + (["mom"] if self.momentum > 0 else [])
        self._slots = {}
        for var in var_list:
            for name in wanted:
                self._slots[(self._var_key(var), name)] = self.add_variable_from_reference(var, name)

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        g = tf.convert_to_tensor(gradient, dtype=dtype)  # an Embedding's IndexedSlices densified
        lr = tf.cast(learning_rate, dtype)
        one_minus_rho = 1.0 - tf.cast(self.rho, dtype)
        slot = lambda name: self._slots[(self._var_key(variable), name)]
        ms = slot("ms")
        self.assign_add(ms, (tf.square(g) - ms) * one_minus_rho)
        variance = tf.identity(ms)
        if self.centered:
            mg = slot("mg")
            self.assign_add(mg, (g - mg) * one_minus_rho)
            variance -= tf.square(mg)
        step = lr * g * tf.math.rsqrt(variance + self.epsilon)
        if self.momentum > 0:
            mom = slot("mom")
            self.assign(mom, step + self.momentum * mom)
            step = mom
        self.assign(variable, variable - step)

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}
'''


def test_differently_written_correct_implementation_scores_full_marks(tmp_path):
    path = write_variant(tmp_path, STEM, text=ALTERNATIVE)
    entry = grade(path, STEM)
    failed = {c["name"]: c["feedback"] for c in entry["checks"] if not c["passed"]}
    assert not failed and entry["score"] == pytest.approx(10.0)


DELEGATIONS = {
    "subclass": "import keras\n\nclass RMSprop(keras.optimizers.RMSprop):\n    pass\n",
    "fused op": ("import keras\nimport tensorflow as tf\n\n"
                 "class RMSprop(keras.optimizers.Optimizer):\n"
                 "    def update_step(self, g, var, lr):\n"
                 "        tf.raw_ops.ResourceApplyRMSProp(var=var.handle, ms=None, mom=None, lr=lr,\n"
                 "                                        rho=0.9, momentum=0.0, epsilon=1e-7, grad=g)\n"),
}


@pytest.mark.parametrize("kind", DELEGATIONS)
def test_delegating_to_keras_scores_zero(kind, tmp_path):
    path = write_variant(tmp_path, STEM, text=DELEGATIONS[kind])
    entry = grade(path, STEM)
    assert entry["score"] == 0.0
    assert all(c["status"] == "delegation" for c in entry["checks"])
    assert "built-in" in entry["message"] or "fused" in entry["message"]


# --------------------------------------------------------------------------------------------
# The mistake models, in NumPy only (no worker): over many seeds each known mistake is separated
# from the correct answer by far more than the tolerance wherever its check can see it, and the
# judge names it when a student's numbers are exactly that mistake's.

APPLIES = {  # variant -> the checks whose inputs must expose it
    "epsilon_outside": ("single_step", "trajectory", "slots_per_variable", "schedule", "centered",
                        "momentum", "centered_momentum"),
    "rho_swapped": ("single_step", "trajectory", "slots_per_variable", "schedule", "centered",
                    "momentum", "centered_momentum"),
    "centered_linear": ("centered", "centered_momentum"),
    "momentum_on_gradient": ("momentum", "centered_momentum"),
    "bias_corrected": ("single_step", "trajectory", "schedule"),
    "centered_ignored": ("centered", "centered_momentum"),
    "momentum_ignored": ("momentum", "centered_momentum"),
    "shared_slot": ("slots_per_variable",),
}
HINTS = {variant: (name, hint) for variant, name, hint in RMSPROP.mistakes}


def _relative_gap(a: dict, b: dict) -> float:
    with np.errstate(all="ignore"):
        gaps = [np.abs(a[k] - b[k]) / (np.abs(b[k]) + 1e-3) for k in b]
    # a NaN or inf where the correct answer is finite is as separated as it gets
    return max(float(np.max(np.where(np.isfinite(g), g, np.inf))) for g in gaps)


@pytest.mark.parametrize("variant", sorted(APPLIES))
def test_mistake_models_are_separated_and_named(variant):
    assert set(APPLIES) == set(HINTS), "every mistake of the spec has its separation test"
    for seed in range(25):
        for short in APPLIES[variant]:
            check = EXERCISE.check(f"rmsprop.{short}")
            inputs = check.make_inputs(seed)
            correct = simulate(inputs, rmsprop_update)
            shared = variant == "shared_slot"
            wrong = simulate(inputs, rmsprop_update, variant=None if shared else variant,
                             shared_state=shared)
            gap = _relative_gap(wrong, correct)
            assert gap > 1000 * check.rtol, (variant, short, seed, gap)
            verdict = default_judge(check, wrong, correct, inputs)
            assert not verdict.passed and verdict.hint == HINTS[variant][1], (variant, short, seed)


def test_every_numeric_check_draws_a_large_epsilon():
    for check in EXERCISE.checks:
        inputs = check.make_inputs(7)
        if "kwargs" in inputs and check.name not in ("rmsprop.interface",):
            assert 0.05 <= inputs["kwargs"]["epsilon"] <= 0.5, check.name


# --------------------------------------------------------------------------------------------
# The chapter script


def test_quick_chapter_run_writes_plots_and_claims(tmp_path):
    out = tmp_path / "plots"
    result = subprocess.run([sys.executable, "-m", "course.cli", "run", "5", "--quick", "--out",
                             str(out)], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    names = {p.name for p in out.glob("*.png")}
    assert names == {"bowl_trajectories.png", "conditioning_sweep.png", "wine_training.png",
                     "epsilon_placement.png"}
    assert all((out / n).stat().st_size > 10_000 for n in names)
    text = result.stdout
    assert text.count("claim check") == 3
    assert "not what we measured" not in text
    # the component agrees with Keras for every option combination (section 2's table)
    rows = re.findall(r"│ (plain|centered|momentum 0\.8|centered \+ momentum 0\.8) .*True", text)
    assert len(rows) == 4
    # the mixed-precision section shows the wrapping and float32 slots
    assert "LossScaleOptimizer" in text and "32768" in text


def test_chapter_opens_as_a_notebook():
    jupytext = pytest.importorskip("jupytext")
    notebook = jupytext.read(ROOT / "chapters" / f"{STEM}.py")
    kinds = [cell.cell_type for cell in notebook.cells]
    assert kinds.count("markdown") >= 10 and kinds.count("code") >= 10
    assert notebook.cells[0].cell_type == "markdown"
    assert notebook.cells[0].source.startswith("# Chapter 5")
