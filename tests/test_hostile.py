"""Hostile submissions, graded in one class run next to an honest one that must keep full marks.

Each file in tests/hostile/ is a payload with a header saying where it goes into the chapter-6
solution (``import``: appended to the module; ``update_step``: the first lines of
``Adam.update_step``; ``file``: the whole submission), whether the numbers are made wrong as well
(the "no bias correction" mistake), the status the class run must give the student, and what
the machine must support for the attack to be stopped (Landlock, seccomp).

Only two checks are graded (``adam.interface`` builds the optimizer, ``adam.single_step`` runs
``update_step``) with a short time limit: enough to reach every payload, and quick.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from course.grader import sandbox
from course.grader.classroom import grade_class
from graderlib import ROOT, SEED, solution_text
from variants import ch06_adam as adam_variants

STEM = "ch06_adam"
HOSTILE = Path(__file__).resolve().parent / "hostile"
CHECKS = ["adam.interface", "adam.single_step"]
UPDATE_STEP_DOC = '        """One Adam step for one variable, with the formulas of the class docstring."""\n'
NO_BIAS_CORRECTION = next(v for v in adam_variants.VARIANTS if v.name == "no bias correction")


def header(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^# (where|expect|needs|wrong numbers): (.*)$", path.read_text(), re.M))


def supported(need: str | None) -> bool:
    if need is None:
        return True
    linux = sys.platform == "linux"
    return {"landlock": linux and sandbox.landlock_abi() >= 1,
            "landlock-signals": linux and sandbox.landlock_abi() >= 6,
            "seccomp": linux and os.uname().machine in ("x86_64", "aarch64")}[need]


def build_submission(path: Path, substitutions: dict[str, str]) -> str:
    """The hostile payload placed into (a copy of) the solution, as its header says."""
    info = header(path)
    payload = path.read_text()
    for token, value in substitutions.items():
        payload = payload.replace(token, value)
    where = {w.strip() for w in info["where"].split(",")}
    if "file" in where:
        return payload
    text = NO_BIAS_CORRECTION.text if info.get("wrong numbers") == "yes" else solution_text(STEM)
    if "update_step" in where:
        assert UPDATE_STEP_DOC in text
        indented = "".join(f"        {line}" if line.strip() else line
                           for line in payload.splitlines(keepends=True))
        text = text.replace(UPDATE_STEP_DOC, UPDATE_STEP_DOC + indented, 1)
    if "import" in where:
        text += "\n\n" + payload
    return text


HOSTILES = sorted(HOSTILE.glob("*.py"))

# grades whole exercises or a class in worker processes (see pyproject.toml's markers)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def class_run(tmp_path_factory):
    """One class: an honest student and every hostile one, graded two at a time."""
    base = tmp_path_factory.mktemp("hostile")
    submissions, out = base / "submissions", base / "out"
    substitutions = {"@@OUT@@": str(out), "@@SUBMISSIONS@@": str(submissions)}
    honest = submissions / "honest" / f"{STEM}.py"
    honest.parent.mkdir(parents=True)
    honest.write_text(solution_text(STEM))
    for path in HOSTILES:
        folder = submissions / path.stem
        folder.mkdir()
        (folder / f"{STEM}.py").write_text(build_submission(path, substitutions))
    probes = [Path(os.path.expanduser("~/hostile_probe.txt")), Path("/tmp/hostile_probe.txt"),
              ROOT / "course" / "grader" / "hostile_probe.py"]
    for probe in probes:
        probe.unlink(missing_ok=True)
    result = grade_class(submissions, out, jobs=2, seed=SEED, chapters=["6"], only=CHECKS,
                         timeout=12.0, memory_limit=int(1.5 * 1024**3))
    yield {"result": result, "out": out, "honest": honest, "probes": probes}
    for probe in probes:  # a failed run must not leave them behind for the next one
        probe.unlink(missing_ok=True)


def test_the_honest_student_keeps_full_marks(class_run):
    report = class_run["result"].reports["honest"]
    assert report["status"] == "full marks", report["notes"]
    assert all(c["passed"] for e in report["exercises"] for c in e["checks"])
    assert class_run["honest"].read_text() == solution_text(STEM)  # not sabotaged


@pytest.mark.parametrize("path", HOSTILES, ids=lambda p: p.stem)
def test_hostile_submission_ends_with_a_clear_status(path, class_run):
    info = header(path)
    if not supported(info.get("needs")):
        pytest.skip(f"this machine cannot stop it: needs {info['needs']} ({sandbox.describe()})")
    report = class_run["result"].reports[path.stem]
    assert report["status"] == info["expect"], (report["status"], report["notes"])
    if info["expect"] != "full marks":
        assert report["score"] < report["max_score"]
    feedback = " ".join(c["feedback"] for e in report["exercises"] for c in e["checks"])
    assert feedback.strip()


def test_nothing_is_lost_or_written_outside(class_run):
    out = class_run["out"]
    students = {"honest", *(p.stem for p in HOSTILES)}
    assert {p.stem for p in (out / "students").glob("*.json")} == students
    rows = (out / "grades.csv").read_text().splitlines()
    assert rows[0].startswith("student,ch06_adam,total")
    assert {row.split(",")[0] for row in rows[1:]} == students
    assert "write_outside,10" not in "\n".join(rows)
    if supported("landlock"):
        assert not [p for p in class_run["probes"] if p.exists()]


def test_feedback_names_what_happened(class_run):
    reports = class_run["result"].reports

    def feedback(student):
        return " ".join(c["feedback"] for e in reports[student]["exercises"] for c in e["checks"])

    assert "sys.exit(3)" in feedback("sys_exit_in_update_step")
    assert "time limit" in feedback("loop_in_update_step")
    assert "SIGSEGV" in feedback("segfault_in_update_step")
    assert "GiB of memory" in feedback("memory_in_update_step")
    if supported("seccomp"):
        assert "Operation not permitted" in feedback("fork_in_update_step")
    assert "built-in" in feedback("subclass_hidden") and "built-in" in feedback("wrap_builtin_method")


def test_reports_are_valid_json_after_a_flood(class_run):
    report = json.loads((class_run["out"] / "students" / "flood_output.json").read_text())
    assert report["status"] == "full marks"
