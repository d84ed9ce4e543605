"""Both ways through the real ``course grade`` CLI, every chapter at once (as an instructor checks
a release): the reference solutions score full marks on every check, the generated stubs zero.

One file, so that with pytest-xdist a single worker pays for the two gradings while the other
runs the rest of the suite.
"""

from __future__ import annotations

import pytest

from course.catalog import CHAPTERS
from graderlib import ROOT, grade_cli_json

STEMS = [c.stem for c in CHAPTERS]

# grades whole exercises or a class in worker processes (see pyproject.toml's markers)
pytestmark = pytest.mark.slow

# What each exercise must at least check, by chapter: every optimizer class the whole set (an
# optimizer that wraps another, the set as far as it applies to a wrapper).
MIN_CHECKS = {"ch01_feature_scaling": 16, "ch02_batch_norm": 12, "ch03_mini_batch": 15,
              "ch04_momentum": 15, "ch05_rmsprop": 14, "ch06_adam": 14, "ch07_lr_decay": 22,
              "ch08_training_recipe": 25}
OPTIMIZER_CHECKS = ("interface", "config", "single_step", "trajectory", "slots_per_variable",
                    "schedule", "base_options", "fit", "mixed_float16", "sparse_gradients",
                    "jit_compile", "save_load", "mirrored_strategy")


def _full_set(*classes: str) -> set[str]:
    return {f"{cls}.{check}" for cls in classes for check in OPTIMIZER_CHECKS}


REQUIRED = {
    "ch03_mini_batch": _full_set("sgd"),
    "ch04_momentum": _full_set("momentumsgd", "emamomentum") | {"momentumsgd.nesterov"},
    "ch05_rmsprop": _full_set("rmsprop") | {
        "rmsprop.centered", "rmsprop.momentum", "rmsprop.centered_momentum"},
    "ch06_adam": _full_set("adam", "adamw", "adaml2") | {"adam.amsgrad", "adamw.amsgrad"},
    "ch08_training_recipe": {
        *(f"losscurvedoctor.{check}" for check in (
            "interface", "config", "losses", "spike", "windows", "nan", "overfitting",
            "lr_too_high", "epochs", "healthy", "fit_nan", "fit_overfitting", "fit_flat",
            "fit_healthy")),
        *(f"accumulategradients.{check}" for check in (
            "interface", "config", "counting", "sgd", "adam", "schedule", "global_clipnorm", "fit",
            "mixed_float16", "jit_compile", "save_load"))},
}


def _by_stem(report: dict) -> dict:
    return {e["name"]: e for e in report["exercises"]}


@pytest.fixture(scope="module")
def solutions(tmp_path_factory) -> dict:
    return grade_cli_json(ROOT / "solutions", tmp_path_factory.mktemp("solutions"))


@pytest.fixture(scope="module")
def stubs(tmp_path_factory) -> dict:
    return grade_cli_json(ROOT / "exercises", tmp_path_factory.mktemp("stubs"))


def test_the_report_has_the_json_schema(solutions, stubs):
    import jsonschema

    from course.grader.schema import REPORT

    for report in (solutions, stubs):
        jsonschema.validate(report, REPORT)
        assert set(report) >= {"schema", "submission", "seed", "backend", "devices", "score",
                               "max_score", "exercises"}
        assert report["schema"] == 1 and report["backend"] == "tensorflow"
        assert report["devices"] in (["CPU"], ["GPU"])  # the GPU by default where there is one
        assert [e["name"] for e in report["exercises"]] == STEMS
        for exercise in report["exercises"]:
            assert exercise["max_score"] == pytest.approx(10.0)
            for check in exercise["checks"]:
                assert set(check) >= {"name", "score", "max_score", "passed", "feedback", "hint",
                                      "seconds"}
    assert solutions["score"] == solutions["max_score"] == 10.0 * len(STEMS)
    assert stubs["score"] == 0.0


@pytest.mark.parametrize("stem", STEMS)
def test_the_solution_scores_full_marks_on_every_check(stem, solutions):
    entry = _by_stem(solutions)[stem]
    failed = {c["name"]: c["feedback"] for c in entry["checks"] if not c["passed"]}
    assert not failed
    assert entry["score"] == pytest.approx(10.0) and entry["status"] == "graded"
    names = {c["name"] for c in entry["checks"]}
    assert len(names) >= MIN_CHECKS[stem]
    assert REQUIRED.get(stem, set()) <= names, REQUIRED[stem] - names


@pytest.mark.parametrize("stem", STEMS)
def test_the_generated_stub_scores_zero(stem, stubs):
    entry = _by_stem(stubs)[stem]
    assert entry["score"] == 0.0 and entry["status"] == "graded"
    assert not any(c["passed"] for c in entry["checks"])
    raised = [c for c in entry["checks"] if c["status"] == "error"]
    assert all("not implemented" in c["feedback"] for c in raised), raised
    # every check runs the student's code, so almost all of them meet the stub's raise
    assert len(raised) >= len(entry["checks"]) - 1
