"""Hanging submissions cost seconds, not minutes, and never the report.

- a check may take a multiple of what the Keras reference took for it, with a floor, so an
  endless loop is stopped after the floor rather than after the flat ``--timeout``;
- once one check of a component (``adam`` of ``adam.fit``) hangs, its other checks are skipped;
- a submission's ``budget`` ends grading in time: what is not graded by then is reported as
  timed out, in ``course grade``'s report and in Gradescope's results.json alike.
"""

from __future__ import annotations

import json

import pytest

from course.grader import runner
from course.grader.grade import CHECK_TIME_FLOOR, grade_submission
from course.gradescope import run_autograder
from graderlib import CACHE, SEED, by_check, grade, solution_text, write_variant

STEM = "ch06_adam"
UPDATE_STEP_DOC = '        """One Adam step for one variable, with the formulas of the class docstring."""\n'
HANG = "        while True:\n            pass\n"


def _hanging(tmp_path):
    text = solution_text(STEM)
    assert UPDATE_STEP_DOC in text
    return write_variant(tmp_path, STEM, text.replace(UPDATE_STEP_DOC, UPDATE_STEP_DOC + HANG, 1))


@pytest.mark.slow
def test_a_hang_is_stopped_at_the_floor_and_its_component_is_not_retried(tmp_path):
    path = _hanging(tmp_path)
    checks = ["adam.interface", "adam.single_step", "adam.trajectory", "adam.fit",
              "adamw.single_step", "adamw.fit"]
    entry = by_check(grade(path, STEM, checks=checks, timeout=60.0))
    assert entry["adam.interface"]["passed"]
    hung = entry["adam.single_step"]
    assert hung["status"] == "timeout"
    assert f"stopped after {CHECK_TIME_FLOOR:.0f} s" in hung["feedback"]  # not the 60 s cap
    for name in ("adam.trajectory", "adam.fit"):
        assert entry[name]["status"] == "not_run"
        assert "hung in adam.single_step" in entry[name]["feedback"]
    # AdamW inherits the loop: it hangs once on its own, then is skipped too
    assert entry["adamw.single_step"]["status"] == "timeout"
    assert "hung in adamw.single_step" in entry["adamw.fit"]["feedback"]


@pytest.fixture(scope="module")
def hanging_submission(tmp_path_factory):
    """ch06 hangs in update_step, ch05 is right: a budget that the hangs use up."""
    folder = tmp_path_factory.mktemp("budget")
    _hanging(folder)
    (folder / "submission" / "ch05_rmsprop.py").write_text(solution_text("ch05_rmsprop"))
    return folder / "submission"


@pytest.mark.slow
def test_a_budget_ends_grading_and_reports_the_rest_as_timed_out(hanging_submission):
    report = grade_submission(hanging_submission, ["6", "5"], SEED, cache=CACHE, budget=25.0)
    ch06, ch05 = report["exercises"]
    assert ch06["status"] == "timeout"
    assert any(c["feedback"] == runner.BUDGET_SPENT for c in ch06["checks"])
    assert ch05["status"] == "timeout" and ch05["score"] == 0.0
    assert {c["feedback"] for c in ch05["checks"]} == {runner.BUDGET_SPENT}
    json.dumps(report, allow_nan=False)


@pytest.mark.slow
def test_gradescope_results_are_written_within_the_budget(hanging_submission, tmp_path):
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    for path in hanging_submission.iterdir():
        (root / "submission" / path.name).write_text(path.read_text())
    settings = {"chapters": [STEM, "ch05_rmsprop"], "checks": None, "timeout": 60.0,
                "seed": SEED, "budget": 25.0}
    results = run_autograder(root, settings)
    assert json.loads((root / "results" / "results.json").read_text()) == results
    ch05 = [t["output"] for t in results["tests"] if t["name"].startswith("ch05_rmsprop")]
    assert ch05 and all(runner.BUDGET_SPENT in o for o in ch05)
    passed = {t["name"].rsplit(".", 1)[1] for t in results["tests"] if t["status"] == "passed"}
    assert passed <= {"interface", "config"}  # the checks that never reach update_step
