"""Hostile submissions, graded in one class run per chapter next to an honest student who must
keep full marks.

Each file in tests/hostile/ is a payload with a header saying which solution it goes into
(``solution``: a file stem, chapter 6's Adam by default) and where (``where``: ``import``,
appended to the module; ``file``, the whole submission; a method, ``Class.method`` or a bare
name for the first method of that name, whose body it opens, after the docstring), whether the
numbers are made wrong as well (``wrong numbers``: chapter 6's "no bias correction" mistake), the
status the class run must give the student, and what the machine must support for the attack to
be stopped (Landlock, seccomp).

Only a few checks are graded per chapter (chapter 6: ``adam.interface`` builds the optimizer,
``adam.single_step`` runs ``update_step``; chapter 8: each class built, the doctor's hooks and the
wrapper's ``apply`` run) with a short time limit: enough to reach every payload, and quick.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from pathlib import Path

import pytest

from course.catalog import chapter as find_chapter
from course.grader import sandbox
from course.grader.classroom import grade_class
from graderlib import ROOT, SEED, solution_text
from variants import ch06_adam as adam_variants

HOSTILE = Path(__file__).resolve().parent / "hostile"
DEFAULT_STEM = "ch06_adam"
CHECKS = {"ch06_adam": ["adam.interface", "adam.single_step"],
          "ch08_training_recipe": ["losscurvedoctor.interface", "losscurvedoctor.nan",
                                   "accumulategradients.interface", "accumulategradients.sgd"]}
WRONG_NUMBERS = {"ch06_adam": next(v for v in adam_variants.VARIANTS
                                   if v.name == "no bias correction")}


def header(path: Path) -> dict[str, str]:
    return dict(re.findall(r"^# (solution|where|expect|needs|wrong numbers): (.*)$",
                           path.read_text(), re.M))


def stem_of(path: Path) -> str:
    return header(path).get("solution", DEFAULT_STEM)


def supported(need: str | None) -> bool:
    if need is None:
        return True
    linux = sys.platform == "linux"
    return {"landlock": linux and sandbox.landlock_abi() >= 1,
            "landlock-signals": linux and sandbox.landlock_abi() >= 6,
            "seccomp": linux and os.uname().machine in ("x86_64", "aarch64")}[need]


def into_method(text: str, where: str, payload: str) -> str:
    """``payload`` as the first lines of a method's body, after its docstring: ``Class.method``,
    or a bare name for the first method of that name in the file."""
    owner, _, method = where.rpartition(".")
    for cls in ast.parse(text).body:
        if not isinstance(cls, ast.ClassDef) or owner not in ("", cls.name):
            continue
        for function in cls.body:
            if isinstance(function, ast.FunctionDef) and function.name == method:
                first = function.body[0]
                documented = isinstance(first, ast.Expr) and isinstance(
                    getattr(first, "value", None), ast.Constant) and isinstance(first.value.value, str)
                line = first.end_lineno if documented else first.lineno - 1
                indent = " " * first.col_offset
                lines = text.splitlines(keepends=True)
                body = "".join(f"{indent}{row}" if row.strip() else row
                               for row in payload.splitlines(keepends=True))
                return "".join(lines[:line]) + body + "".join(lines[line:])
    raise ValueError(f"no method {where} to put the payload in")


def build_submission(path: Path, substitutions: dict[str, str]) -> str:
    """The hostile payload placed into (a copy of) its solution, as its header says."""
    info, stem = header(path), stem_of(path)
    payload = path.read_text()
    for token, value in substitutions.items():
        payload = payload.replace(token, value)
    where = [w.strip() for w in info["where"].split(",")]
    if "file" in where:
        return payload
    text = WRONG_NUMBERS[stem].text if info.get("wrong numbers") == "yes" else solution_text(stem)
    for place in where:
        if place != "import":
            text = into_method(text, place, payload)
    if "import" in where:
        text += "\n\n" + payload
    return text


HOSTILES = sorted(HOSTILE.glob("*.py"))
STEMS = sorted({stem_of(path) for path in HOSTILES})

# grades whole exercises or a class in worker processes (see pyproject.toml's markers)
pytestmark = pytest.mark.slow


PROBES = [Path(os.path.expanduser("~/hostile_probe.txt")), Path("/tmp/hostile_probe.txt"),
          ROOT / "course" / "grader" / "hostile_probe.py"]


@pytest.fixture(scope="module")
def class_runs(tmp_path_factory):
    """``run(stem)``: one class per chapter, graded once when a test first asks for it: an honest
    student and every hostile one of that chapter, graded two at a time."""
    done: dict[str, dict] = {}

    def run(stem: str) -> dict:
        if stem in done:
            return done[stem]
        base = tmp_path_factory.mktemp(f"hostile_{stem}")
        submissions, out = base / "submissions", base / "out"
        substitutions = {"@@OUT@@": str(out), "@@SUBMISSIONS@@": str(submissions)}
        honest = submissions / "honest" / f"{stem}.py"
        honest.parent.mkdir(parents=True)
        honest.write_text(solution_text(stem))
        for path in (p for p in HOSTILES if stem_of(p) == stem):
            folder = submissions / path.stem
            folder.mkdir()
            (folder / f"{stem}.py").write_text(build_submission(path, substitutions))
        for probe in PROBES:
            probe.unlink(missing_ok=True)
        result = grade_class(submissions, out, jobs=2, seed=SEED,
                             chapters=[str(find_chapter(stem).number)], only=CHECKS[stem],
                             timeout=12.0, memory_limit=int(1.5 * 1024**3))
        done[stem] = {"result": result, "out": out, "honest": honest, "probes": list(PROBES)}
        return done[stem]

    yield run
    for probe in PROBES:  # a failed run must not leave them behind for the next one
        probe.unlink(missing_ok=True)


@pytest.mark.parametrize("stem", STEMS)
def test_the_honest_student_keeps_full_marks(stem, class_runs):
    class_run = class_runs(stem)
    report = class_run["result"].reports["honest"]
    assert report["status"] == "full marks", report["notes"]
    assert all(c["passed"] for e in report["exercises"] for c in e["checks"])
    assert class_run["honest"].read_text() == solution_text(stem)  # not sabotaged


@pytest.mark.parametrize("path", HOSTILES, ids=lambda p: p.stem)
def test_hostile_submission_ends_with_a_clear_status(path, class_runs):
    info = header(path)
    if not supported(info.get("needs")):
        pytest.skip(f"this machine cannot stop it: needs {info['needs']} ({sandbox.describe()})")
    report = class_runs(stem_of(path))["result"].reports[path.stem]
    assert report["status"] == info["expect"], (report["status"], report["notes"])
    if info["expect"] != "full marks":
        assert report["score"] < report["max_score"]
    feedback = " ".join(c["feedback"] for e in report["exercises"] for c in e["checks"])
    assert feedback.strip()


@pytest.mark.parametrize("stem", STEMS)
def test_nothing_is_lost_or_written_outside(stem, class_runs):
    class_run = class_runs(stem)
    out = class_run["out"]
    students = {"honest", *(p.stem for p in HOSTILES if stem_of(p) == stem)}
    assert {p.stem for p in (out / "students").glob("*.json")} == students
    rows = (out / "grades.csv").read_text().splitlines()
    assert rows[0].startswith(f"student,{stem},total")
    assert {row.split(",")[0] for row in rows[1:]} == students
    assert "write_outside,10" not in "\n".join(rows)
    if supported("landlock"):
        assert not [p for p in class_run["probes"] if p.exists()]


def test_feedback_names_what_happened(class_runs):
    reports = {**class_runs("ch06_adam")["result"].reports,
               **class_runs("ch08_training_recipe")["result"].reports}

    def feedback(student):
        return " ".join(c["feedback"] for e in reports[student]["exercises"] for c in e["checks"])

    assert "sys.exit(3)" in feedback("sys_exit_in_update_step")
    assert "time limit" in feedback("loop_in_update_step")
    assert "SIGSEGV" in feedback("segfault_in_update_step")
    assert "GiB of memory" in feedback("memory_in_update_step")
    if supported("seccomp"):
        assert "Operation not permitted" in feedback("fork_in_update_step")
    assert "built-in" in feedback("subclass_hidden") and "built-in" in feedback("wrap_builtin_method")
    assert "sys.exit(3)" in feedback("doctor_sys_exit_in_batch_end")
    assert "time limit" in feedback("doctor_loop_in_batch_end")
    assert "GiB of memory" in feedback("wrapper_memory_in_apply")


def test_the_payload_goes_where_its_header_says():
    """A bare method name is the first method of that name (chapter 6's Adam.update_step, as
    before); Class.method names one; the payload opens its body, after the docstring."""
    payload = "raise RuntimeError('payload')\n"
    adam = into_method(solution_text("ch06_adam"), "update_step", payload)
    assert adam == into_method(solution_text("ch06_adam"), "Adam.update_step", payload)
    doc = '        """One Adam step for one variable, with the formulas of the class docstring."""\n'
    assert doc + "        " + payload in adam
    doctor = into_method(solution_text("ch08_training_recipe"),
                         "LossCurveDoctor.on_train_batch_end", payload)
    body = doctor.split("    def on_train_batch_end(self, batch, logs=None):\n", 1)[1]
    assert body.splitlines()[1] == "        " + payload.strip()
    with pytest.raises(ValueError, match="no method"):
        into_method(solution_text("ch06_adam"), "Adam.not_a_method", payload)


def test_reports_are_valid_json_after_a_flood(class_runs):
    report = json.loads((class_runs("ch06_adam")["out"] / "students" / "flood_output.json")
                        .read_text())
    assert report["status"] == "full marks"
