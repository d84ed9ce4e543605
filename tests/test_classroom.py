"""``course grade-class``: finding each student's files, statuses, resuming, identical files graded
once, one student's failure recorded without stopping the class, and a real run killed halfway
and started again.

Most tests replace ``grade_exercise`` with a fake that reads a verdict from the file's text, so
the class machinery is tested in milliseconds; one test grades real files through the CLI.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from course.grader import classroom
from course.grader.classroom import (ClassGradingError, find_exercise_files, grade_class,
                                     pass_rates, pass_rates_csv, student_status)
from graderlib import ROOT, SEED, solution_text

STEM = "ch06_adam"
CHECKS = ["adam.interface", "adam.single_step"]


# ------------------------------------------------------------------------- a fake grader

class FakeGrader:
    """Stands in for ``grade_exercise``: a file saying ``WRONG`` fails its second check with a
    known mistake, ``BOOM`` makes the grader itself raise, ``SLOW`` takes a while."""

    def __init__(self):
        self.calls: list[str] = []
        self.lock = threading.Lock()

    def __call__(self, exercise, path, seed, *, only=None, **kwargs):
        names = only or [c.name for c in exercise.checks]
        entry = {"chapter": exercise.chapter, "name": exercise.stem, "score": 0.0,
                 "max_score": float(len(names)), "status": "graded", "message": "", "checks": []}
        if not Path(path).is_file():
            entry["status"] = "missing"
            entry["checks"] = [{"name": n, "score": 0.0, "max_score": 1.0, "passed": False,
                                "status": "missing", "feedback": "no file", "hint": None}
                               for n in names]
            return entry
        text = Path(path).read_text()
        with self.lock:
            self.calls.append(text)
        if "SLOW" in text:
            time.sleep(0.3)
        if "BOOM" in text:
            raise RuntimeError("the reference worker could not start")
        for i, name in enumerate(names):
            wrong = "WRONG" in text and i == 1
            entry["checks"].append({
                "name": name, "score": 0.0 if wrong else 1.0, "max_score": 1.0,
                "passed": not wrong, "status": "failed" if wrong else "passed",
                "feedback": ("your numbers match a known mistake (no bias correction). x differs"
                             if wrong else "matches the reference"),
                "mistake": {"id": "no_bias_correction", "name": "no bias correction"} if wrong else None,
                "hint": "bias" if wrong else None})
        entry["score"] = sum(c["score"] for c in entry["checks"])
        return entry


@pytest.fixture
def fake(monkeypatch):
    grader = FakeGrader()
    monkeypatch.setattr(classroom, "grade_exercise", grader)
    return grader


def make_class(root: Path, students: dict[str, str | None]) -> Path:
    """One folder per student with ``ch06_adam.py`` holding the given text (None: no file)."""
    submissions = root / "submissions"
    for name, text in students.items():
        folder = submissions / name
        folder.mkdir(parents=True)
        if text is not None:
            (folder / f"{STEM}.py").write_text(text)
        else:
            (folder / "notes.txt").write_text("I ran out of time")
    return submissions


def run(submissions: Path, out: Path, **kwargs):
    kwargs.setdefault("chapters", ["6"])
    kwargs.setdefault("only", CHECKS)
    return grade_class(submissions, out, **kwargs)


# ------------------------------------------------------------------------- finding files

def test_files_are_found_at_the_top_or_the_shallowest_below(tmp_path):
    (tmp_path / "upload" / "deep").mkdir(parents=True)
    (tmp_path / "upload" / "ch06_adam.py").write_text("shallow")
    (tmp_path / "upload" / "deep" / "ch06_adam.py").write_text("deep")
    (tmp_path / "__MACOSX").mkdir()
    (tmp_path / "__MACOSX" / "ch05_rmsprop.py").write_text("resource fork")
    (tmp_path / "other" / "ch05_rmsprop.py").parent.mkdir()
    (tmp_path / "other" / "ch05_rmsprop.py").write_text("real")
    files, notes = find_exercise_files(tmp_path, ["ch06_adam", "ch05_rmsprop", "ch07_lr_decay"])
    assert files["ch06_adam"] == tmp_path / "upload" / "ch06_adam.py"
    assert files["ch05_rmsprop"] == tmp_path / "other" / "ch05_rmsprop.py"
    assert "ch07_lr_decay" not in files
    assert notes == ["2 files named ch06_adam.py; graded upload/ch06_adam.py"]


# ------------------------------------------------------------------------- statuses and summaries

def _report(*exercises):
    return {"exercises": list(exercises), "score": 0.0, "max_score": 10.0}


NOT_IMPLEMENTED = ("error", "not implemented yet", None, "NotImplementedError")


def _exercise(status="graded", checks=()):
    """Checks as (name, status, feedback[, mistake as data[, exception type]])."""
    return {"chapter": 6, "name": STEM, "status": status, "message": "m",
            "checks": [{"name": c[0], "passed": c[1] == "passed", "status": c[1], "feedback": c[2],
                        "mistake": c[3] if len(c) > 3 else None,
                        "exception": c[4] if len(c) > 4 else None} for c in checks]}


@pytest.mark.parametrize("checks, expected", [
    ([("a", "passed", ""), ("b", "passed", "")], "full marks"),
    ([("a", "passed", ""), ("b", "failed", "off by 1")], "wrong"),
    ([("a", *NOT_IMPLEMENTED), ("b", *NOT_IMPLEMENTED)], "incomplete"),
    ([("a", "failed", "x"), ("b", "timeout", "stopped")], "timeout"),
    ([("a", "memory", "x"), ("b", "crashed", "SIGSEGV")], "crashed"),
    ([("a", "delegation", "subclasses the Keras built-in"), ("b", "delegation", "...")],
     "cheating detected"),
])
def test_the_most_severe_event_is_the_students_status(checks, expected):
    status, notes = student_status(_report(_exercise(checks=checks)))
    assert status == expected
    assert (status == "full marks") == (not notes)


def test_a_missing_file_makes_the_student_incomplete_and_no_file_at_all_no_files():
    graded = _exercise(checks=[("a", "passed", "")])
    missing = dict(_exercise("missing", [("a", "missing", "no file")]), chapter=7, name="ch07")
    assert student_status(_report(graded, missing)) == ("incomplete", ["ch07: no file"])
    assert student_status(_report(missing))[0] == "no files"


def test_pass_rates_put_the_hardest_check_first_with_its_most_common_mistake():
    # the mistake comes as data: a name with brackets in it arrives whole
    name = "weight decay added to the gradient (L2, not decoupled)"
    mistake = {"id": "decay_in_gradient", "name": name}
    feedback = f"your numbers match a known mistake ({name}). w differs"
    other = {"id": "decay_unscaled", "name": "weight decay not scaled by the learning rate"}
    reports = {
        "a": _report(_exercise(checks=[("easy", "passed", ""), ("hard", "failed", feedback, mistake)])),
        "b": _report(_exercise(checks=[("easy", "passed", ""), ("hard", "failed", feedback, mistake)])),
        "c": _report(_exercise(checks=[("easy", "failed", "x"), ("hard", "passed", "")])),
        "d": _report(_exercise("missing", [("easy", "missing", ""), ("hard", "missing", "")])),
        "e": _report(_exercise(checks=[("easy", "passed", ""), ("hard", "failed", "y", other)])),
    }
    hard, easy = pass_rates(reports)
    assert (hard["check"], hard["students"], hard["passed"]) == ("hard", 4, 1)
    assert hard["most_common_mistake"] == name
    assert hard["most_common_mistake_id"] == "decay_in_gradient"
    assert hard["students_with_that_mistake"] == 2
    assert name in pass_rates_csv([hard])
    status, notes = student_status(reports["a"])
    assert status == "wrong" and name in notes[0]
    assert (easy["check"], easy["passed"], easy["pass_rate"]) == ("easy", 3, round(3 / 4, 4))


# ------------------------------------------------------------------------- the class run (fake grader)

def test_grades_csv_reports_and_pass_rates_are_written(tmp_path, fake):
    submissions = make_class(tmp_path, {"ann": "right", "ben": "WRONG", "cy": None})
    result = run(submissions, tmp_path / "out", seed=5)
    rows = list(csv.DictReader((tmp_path / "out" / "grades.csv").open()))
    assert [r["student"] for r in rows] == ["ann", "ben", "cy"]
    assert set(rows[0]) == {"student", STEM, "total", "max_total", "status", "notes"}
    assert [r["status"] for r in rows] == ["full marks", "wrong", "no files"]
    assert [r[STEM] for r in rows] == ["2.00", "1.00", "0.00"]
    assert "no bias correction" in rows[1]["notes"]
    ben = json.loads((tmp_path / "out" / "students" / "ben.json").read_text())
    assert ben["seed"] == 5 and ben["student"] == "ben" and ben["files"] == {STEM: f"{STEM}.py"}
    rates = json.loads((tmp_path / "out" / "check_pass_rates.json").read_text())
    assert rates["checks"][0]["check"] == "adam.single_step" and rates["checks"][0]["passed"] == 1
    assert (tmp_path / "out" / "check_pass_rates.csv").read_text().startswith("exercise,check,")
    assert result.seed == 5 and sorted(result.graded) == ["ann", "ben", "cy"]


def test_a_rerun_skips_unchanged_students_and_grades_changed_ones(tmp_path, fake):
    submissions = make_class(tmp_path, {"ann": "right", "ben": "WRONG"})
    first = run(submissions, tmp_path / "out")
    again = run(submissions, tmp_path / "out")
    assert again.seed == first.seed and again.graded == [] and again.skipped == ["ann", "ben"]
    (submissions / "ben" / f"{STEM}.py").write_text("fixed it")
    third = run(submissions, tmp_path / "out")
    assert third.graded == ["ben"] and third.reports["ben"]["status"] == "full marks"
    forced = run(submissions, tmp_path / "out", force=True)
    assert sorted(forced.graded) == ["ann", "ben"]
    assert len(fake.calls) == 2 + 1 + 2


def test_a_resumed_run_keeps_its_seed_and_refuses_another(tmp_path, fake):
    submissions = make_class(tmp_path, {"ann": "right"})
    first = run(submissions, tmp_path / "out", seed=11)
    assert json.loads((tmp_path / "out" / "class.json").read_text())["seed"] == 11
    with pytest.raises(ClassGradingError, match="graded with seed 11"):
        run(submissions, tmp_path / "out", seed=12)
    assert run(submissions, tmp_path / "out").seed == first.seed == 11
    assert run(submissions, tmp_path / "out", seed=12, force=True).seed == 12


def test_identical_files_are_graded_once(tmp_path, fake):
    stub = "raise NotImplementedError  SLOW"
    submissions = make_class(tmp_path, {f"s{i}": stub for i in range(6)} | {"own": "mine"})
    result = run(submissions, tmp_path / "out", jobs=3)
    assert sorted(fake.calls) == ["mine", stub]
    assert {r["score"] for name, r in result.reports.items() if name != "own"} == {2.0}


def test_the_graders_own_failure_is_recorded_and_the_class_goes_on(tmp_path, fake, capsys):
    submissions = make_class(tmp_path, {"ann": "right", "ben": "BOOM", "cy": "WRONG"})
    result = run(submissions, tmp_path / "out", jobs=2)
    assert result.reports["ben"]["status"] == "grader error"
    assert "could not start" in " ".join(result.reports["ben"]["notes"])
    assert result.reports["cy"]["status"] == "wrong"
    assert "RuntimeError" in capsys.readouterr().err  # the traceback, for whoever runs the class
    # not the student's fault: graded again next time, the others kept
    again = run(submissions, tmp_path / "out")
    assert again.graded == ["ben"] and again.skipped == ["ann", "cy"]


def test_bad_arguments_are_clear_errors(tmp_path, fake):
    with pytest.raises(ClassGradingError, match="is not a folder"):
        run(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ClassGradingError, match="no student folders"):
        run(tmp_path / "empty", tmp_path / "out")
    submissions = make_class(tmp_path, {"ann": "right"})
    with pytest.raises(ClassGradingError, match="must not be inside"):
        run(submissions, submissions / "out")
    with pytest.raises(ClassGradingError, match="--jobs"):
        run(submissions, tmp_path / "out", jobs=0)
    with pytest.raises(ClassGradingError, match="no check named"):
        run(submissions, tmp_path / "out", only=["adam.nonsense"])


# ------------------------------------------------------------------------- a real run, killed and resumed

def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "course.cli", "grade-class", *args]


@pytest.mark.slow
def test_a_real_class_run_killed_halfway_resumes_without_losing_or_regrading(tmp_path):
    solution = solution_text(STEM)
    wrong = solution.replace("alpha = lr * ops.sqrt(1 - ops.power(beta_2, t)) / (1 - ops.power(beta_1, t))",
                             "alpha = lr")
    assert wrong != solution
    submissions = make_class(tmp_path, {"alice": solution, "bob": None, "carol": None,
                                        "dave": solution})
    nested = submissions / "carol" / "upload" / "ch06"
    nested.mkdir(parents=True)
    (nested / f"{STEM}.py").write_text(wrong)
    (submissions / "bob" / f"{STEM}.py").write_text((ROOT / "exercises" / f"{STEM}.py").read_text())
    out = tmp_path / "out"
    args = [str(submissions), "--out", str(out), "--chapter", "6", "--seed", str(SEED),
            *(a for c in CHECKS for a in ("--check", c))]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))

    # First run, one student at a time: killed (no clean-up at all) once the first one is recorded.
    proc = subprocess.Popen(_cli(*args, "--jobs", "1"), env=env, cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    while not (out / "students" / "alice.json").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the first run did not get far"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # the last one cannot be done yet; bob's stub may have been (it takes a fraction of a second)
    recorded = {p.stem for p in (out / "students").glob("*.json")}
    assert "alice" in recorded and "dave" not in recorded

    # Second run: what was recorded is kept, everyone else graded once, two at a time.
    second = subprocess.run(_cli(*args, "--jobs", "2"), env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"{len(recorded)} student(s) unchanged since the last run" in second.stderr
    assert f"graded {4 - len(recorded)}, kept {len(recorded)}" in " ".join(second.stdout.split())
    rows = {r["student"]: r for r in csv.DictReader((out / "grades.csv").open())}
    assert {n: r["status"] for n, r in rows.items()} == {
        "alice": "full marks", "bob": "incomplete", "carol": "wrong", "dave": "full marks"}
    assert rows["alice"]["total"] == rows["alice"]["max_total"]
    assert "no bias correction" in rows["carol"]["notes"]
    carol = json.loads((out / "students" / "carol.json").read_text())
    assert carol["files"] == {STEM: "upload/ch06/ch06_adam.py"} and carol["seed"] == SEED
    assert "adam.single_step" in (out / "check_pass_rates.csv").read_text()

    # Third run: nothing to do.
    third = subprocess.run(_cli(*args), env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=120)
    assert third.returncode == 0 and "graded 0, kept 4" in " ".join(third.stdout.split())


def test_without_chapter_only_the_chapters_handed_in_are_graded(tmp_path, fake):
    submissions = make_class(tmp_path, {"ann": "right", "ben": "WRONG", "cy": None})
    (submissions / "cy" / "ch05_rmsprop.py").write_text("right")
    result = grade_class(submissions, tmp_path / "out", seed=5)
    assert result.chapters == ["ch05_rmsprop", STEM]
    rows = list(csv.DictReader((tmp_path / "out" / "grades.csv").open()))
    assert list(rows[0])[:4] == ["student", "ch05_rmsprop", STEM, "total"]
    assert {r["student"]: r["status"] for r in rows}["ann"] == "incomplete"  # no ch05 from ann

    only_ch06 = make_class(tmp_path / "b", {"ann": "right", "ben": "right"})
    result = grade_class(only_ch06, tmp_path / "out_b", seed=5)
    assert result.chapters == [STEM]
    assert {r["status"] for r in csv.DictReader((tmp_path / "out_b" / "grades.csv").open())} == {
        "full marks"}

    nothing = make_class(tmp_path / "c", {"ann": None})
    with pytest.raises(ClassGradingError, match="no exercise files"):
        grade_class(nothing, tmp_path / "out_c")
