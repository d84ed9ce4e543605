"""Chapter 7 (schedules and the LR range test): the models behind its grader, and its script.

Fast tests check the grader's own closed forms: OneCycle against values computed with PyTorch,
the other four against the Keras built-ins, and every known-wrong variant far from the right
answer; the judge names a finder that reads Keras's running mean as the batch loss. The
submission variants (known mistakes, a correct set written differently, a delegation to a Keras
schedule) are graded in test_variants.py; the solution's 10/10 and the stub's 0/10 in
test_solutions_and_stubs.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from course import references
from course.grader import ch07_lr_decay as g
from course.grader.compare import differences
from course.grader.schedule_suite import ATOL, RTOL
from graderlib import solution_text

STEM = "ch07_lr_decay"

# ---------------------------------------------------------------------------------------------
# OneCycle's closed form against PyTorch.
#
# These rates were computed once with PyTorch 2.13.0 (CPU wheel, in a throwaway virtualenv; torch
# is not a dependency of the course) by
#     opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
#     sched = torch.optim.lr_scheduler.OneCycleLR(opt, cycle_momentum=False,
#                                                 anneal_strategy="cos", three_phase=False, **kw)
# reading opt.param_groups[0]["lr"] before each of total_steps optimizer steps (then
# sched.step()). Printed with repr and copied here; the step numbers are the dict keys.

PYTORCH_ONE_CYCLE = [
    ({"max_learning_rate": 0.1, "total_steps": 100},
     {0: 0.0040000000000000036, 1: 0.004281378056590748, 10: 0.029516394846410082,
      28: 0.09971862194340926, 29: 0.1, 30: 0.09994965352845243, 50: 0.0793893450575732,
      64: 0.0500002, 90: 0.004023995277981982, 98: 5.07464715475788e-05, 99: 4e-07}),
    ({"max_learning_rate": 1.0, "total_steps": 37, "pct_start": 0.25, "div_factor": 10.0,
      "final_div_factor": 100.0},
     dict(enumerate([
         0.09999999999999998, 0.13223443014276737, 0.22431968285271842, 0.36306324414915103,
         0.5285881378793158, 0.6971805834928397, 0.8446873302753782, 0.9499759518947155,
         0.997962365157888, 0.9982005455269919, 0.9902291046566827, 0.9759876891117987,
         0.9556586309488738, 0.9295022019766028, 0.8978532815102522, 0.861117068930285,
         0.819763895937076, 0.7743232049201326, 0.7253767705364278, 0.6735512512816045,
         0.6195101664158709, 0.5639454009635659, 0.5075683475474108, 0.4511007984680573,
         0.39526570463713484, 0.340777919676663, 0.2883350476876181, 0.23860851186316284,
         0.19223495829459325, 0.14980810502660005, 0.11187114071793958, 0.07890977022703981,
         0.05134599615952948, 0.02953271599218844, 0.013749203946046427, 0.004197535453958397,
         0.001]))),
    ({"max_learning_rate": 0.5, "total_steps": 10, "pct_start": 0.45, "div_factor": 5.0,
      "final_div_factor": 1e3},
     dict(enumerate([
         0.09999999999999998, 0.17530203962825325, 0.3445041867912628, 0.4801937735804838,
         0.48987526875494364, 0.41373244044962404, 0.28562159382640767, 0.14621701750017851,
         0.03977867946884624, 0.0001]))),
]


@pytest.fixture(scope="module")
def reference_ns():
    return references.ch07_lr_decay()  # registers the reference classes: once per test session


@pytest.mark.parametrize("kwargs, expected", PYTORCH_ONE_CYCLE,
                         ids=["defaults", "phase-end-between-steps", "ten-steps"])
def test_one_cycle_closed_form_matches_pytorch(kwargs, expected, reference_ns):
    from solutions.ch07_lr_decay import OneCycle

    steps = np.array(sorted(expected), dtype=np.float64)
    want = np.array([expected[s] for s in sorted(expected)])
    # the grader's NumPy closed form (float64): as exact as PyTorch's Python floats
    np.testing.assert_allclose(g.one_cycle(steps, kwargs, np), want, rtol=1e-12)
    # the grader's reference (keras.ops, float32) and the solution: within float32 rounding,
    # where cos(pi * p) + 1 near the end of the cycle cancels to a few ulps of the peak rate
    for schedule in (reference_ns.OneCycle(**kwargs), OneCycle(**kwargs)):
        got = [float(schedule(int(s))) for s in steps]
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=1e-7 * kwargs["max_learning_rate"])
    # past the end PyTorch refuses to step; the contract gives the final rate
    final = kwargs["max_learning_rate"] / kwargs.get("div_factor", 25.0) / kwargs.get(
        "final_div_factor", 1e4)
    past = kwargs["total_steps"] + 7
    assert float(OneCycle(**kwargs)(past)) == pytest.approx(final, rel=1e-5)


def test_closed_forms_match_the_keras_builtins(reference_ns):
    """The NumPy models that name mistakes must agree with Keras when no mistake is made."""
    for spec in g.SCHEDULES:
        check = g.EXERCISE.check(f"{spec.cls_name.lower()}.values")
        for seed in range(4):
            inputs = check.make_inputs(seed)
            schedule = getattr(reference_ns, spec.cls_name)(**inputs["kwargs"])
            keras_values = [float(schedule(int(s))) for s in inputs["steps"]]
            model = spec.formula(np.asarray(inputs["steps"], dtype=np.float64), inputs["kwargs"], np)
            np.testing.assert_allclose(model, keras_values, rtol=RTOL, atol=ATOL,
                                       err_msg=f"{spec.cls_name}, seed {seed}")


def _steps_of(check_name, inputs):
    if check_name.endswith(".fit"):
        return np.arange(inputs["epochs"] * inputs["batches"], dtype=np.float64)
    return np.asarray(inputs["steps"], dtype=np.float64)


def test_every_schedule_mistake_is_far_from_the_right_answer():
    """For many seeds, each wrong variant is > 1000 tolerances away at some probed step."""
    for spec in g.SCHEDULES:
        for kind in ("values", "fit"):
            name = f"{spec.cls_name.lower()}.{kind}"
            check = g.EXERCISE.check(name)
            for seed in range(100):
                inputs = check.make_inputs(seed)
                steps = _steps_of(name, inputs)
                right = spec.formula(steps, inputs["kwargs"], np)
                for variant, label, _ in spec.mistakes:
                    wrong = spec.formula(steps, inputs["kwargs"], np, variant)
                    excess = np.abs(wrong - right) / (ATOL + RTOL * np.abs(right))
                    assert excess.max() > 1000, (name, seed, label)


def test_every_finder_mistake_is_far_from_the_right_answer():
    models = {"lrfinder.ramp_and_smoothing": (g._ramp_expected, ("no_debias", "linear_ramp",
                                                                 "running_mean")),
              "lrfinder.divergence_stop": (g._divergence_expected, ("no_divergence_stop",)),
              "lrfinder.restore": (g._restore_expected, ("no_restore", "no_restore_rate")),
              "lrfinder.suggestion": (g._suggestion_expected, ("min_loss", "no_skip"))}
    for name, (expected, variants) in models.items():
        check = g.EXERCISE.check(name)
        for seed in range(100):
            inputs = check.make_inputs(seed)
            right = expected(inputs)
            for variant in variants:
                wrong = expected(inputs, variant)
                assert differences(wrong, right, 100 * check.rtol, 100 * check.atol,
                                   [k for k in wrong if k in right]), (name, seed, variant)


def test_scripted_runs_stop_where_the_spec_says():
    """The divergence scripts stop on divergence (not at their end), the ramp script at num_steps."""
    check = g.EXERCISE.check("lrfinder.divergence_stop")
    ramp = g.EXERCISE.check("lrfinder.ramp_and_smoothing")
    for seed in range(50):
        inputs = check.make_inputs(seed)
        out = g._divergence_expected(inputs)
        assert out["batches run (exploding)"] < len(inputs["exploding"])
        nan_at = int(np.flatnonzero(np.isnan(inputs["with_nan"]))[0])
        assert out["batches run (with_nan)"] == nan_at + 1
        r = ramp.make_inputs(seed)
        assert g._ramp_expected(r)["batches run"] == r["hp"]["num_steps"] < len(r["script"])


def test_solution_rejects_bad_arguments_with_clear_errors():
    from solutions import ch07_lr_decay as sol

    bad = [(sol.TimeBasedDecay, (0.1, -1.0), "decay_rate"),
           (sol.StepDecay, (0.1, 1.5, 10), "drop_rate"),
           (sol.ExponentialDecay, (0.1, 0.5, 0), "decay_steps"),
           (sol.WarmupCosineDecay, (0.1, 5, 10, 0.0, 2.0), "alpha"),
           (sol.OneCycle, (0.1, 3, 0.3), "phase 1"),
           (sol.LRFinder, (1.0, 0.1), "end_lr"),
           (sol.LRFinder, (1e-7, 10.0, 1), "num_steps")]
    for cls, args, word in bad:
        with pytest.raises(ValueError, match=word):
            cls(*args)
    with pytest.raises(TypeError, match="number"):
        sol.TimeBasedDecay("0.1", 0.5)
    finder = sol.LRFinder()
    finder.lrs, finder.losses = [1e-3, 1e-2], [1.0, 0.5]
    with pytest.raises(ValueError, match="at least 3"):
        finder.suggestion()


# ---------------------------------------------------------------------------------------------
# A mistake judged in this process (the submission variants are graded in test_variants.py)


def test_running_mean_mistake_is_named_by_the_judge():
    """Keras 3 logs the epoch's running mean: a finder that takes it for the batch loss is told.

    (An extra mistake, judged in this process: the scripted checks need no TensorFlow worker.)
    """
    from types import SimpleNamespace

    text = solution_text(STEM).replace(
        "loss = (batch + 1) * mean - batch * self._previous_mean", "loss = mean", 1)
    namespace = {"__name__": "ch07_running_mean_variant"}
    exec(compile(text, "ch07_running_mean_variant.py", "exec"), namespace)
    check = g.EXERCISE.check("lrfinder.ramp_and_smoothing")
    inputs = check.make_inputs(3)
    for impl, passes in ((namespace, False), (vars(__import__("solutions.ch07_lr_decay",
                                                             fromlist=["LRFinder"])), True)):
        student = check.run(SimpleNamespace(**impl), inputs, SimpleNamespace())
        verdict = check.judge(student, {}, inputs)
        assert verdict.passed is passes, verdict
        if not passes:
            assert "(n + 1) * mean_n" in verdict.hint and "running" in verdict.feedback
