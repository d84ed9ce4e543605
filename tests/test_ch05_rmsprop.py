"""Chapter 5 (RMSprop): its mistake models and its chapter script.

- in NumPy only: over many seeds, each mistake's model is far from the correct model wherever it
  applies, and the judge names it; this is where the mistakes that no variant makes (bias
  correction added, centered or momentum ignored) are tested, which keeps grading time down;
  and every numeric check draws an epsilon large enough to show where it is added;
- ``course run 5 --quick`` finishes and writes its plots and claims, and the chapter opens as a
  notebook.

Its submission variants (each known mistake of the grader's contract and a shared slot as a small
edit of the solution, a correct implementation written differently, delegations to Keras's
RMSprop) are graded in test_variants.py.
"""

from __future__ import annotations


import numpy as np
import pytest

from course.grader.ch05_rmsprop import EXERCISE, RMSPROP, rmsprop_update
from course.grader.compare import default_judge
from course.grader.optimizer_suite import simulate

STEM = "ch05_rmsprop"


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
