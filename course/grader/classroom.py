"""Grade a whole class: ``course grade-class SUBMISSIONS --out DIR``.

``SUBMISSIONS`` holds one folder per student, each with some or all of the exercise files
(directly, or anywhere below: an unzipped upload often nests them). The output folder gets:

- ``class.json``: the class's seed and settings, written first, so that a resumed run grades
  with the same seed (and so against the same reference numbers);
- ``students/<student>.json``: each student's report (``course.grader.schema``) plus a status, notes
  and the fingerprint of what was graded;
- ``grades.csv``: a row per student, a column per exercise, the total and a status;
- ``check_pass_rates.csv`` / ``.json``: per check, how many students passed it and the known
  mistake most of the others made.

Every file is written atomically and ``grades.csv`` is rewritten after each student, so a run
killed at any moment loses nothing but the students in flight. A rerun skips every student
whose files, seed, settings and grader are unchanged (``force`` regrades them all).

A student's crash, timeout or memory blow-up is recorded in that student's row: their code runs
in confined worker processes (``runner``), and anything else that goes wrong while grading one
student is caught and recorded too. The reference numbers are computed once per exercise for the
whole class, and identical files (an untouched stub handed back by many students) are graded once.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from course.grader import runner
from course.grader.grade import (GradingError, ReferenceCache, grade_exercise, grading_plan,
                                 new_seed, resolve_backend, submission_report)
from course.grader.outcomes import STUDENT_STATUS_OF, CheckStatus, ExerciseStatus, StudentStatus
from course.grader.report import write_atomic, write_json

CLASS_FILE = "class.json"
STUDENTS_DIR = "students"
GRADES_CSV = "grades.csv"
PASS_RATES = "check_pass_rates"
SCHEMA = 1

_SKIP_DIRS = {"__pycache__", "__MACOSX", ".git", ".ipynb_checkpoints"}


class ClassGradingError(Exception):
    """The class could not be graded at all (bad arguments, a folder that cannot be read)."""


@dataclass
class Student:
    name: str
    folder: Path
    files: dict[str, Path] = field(default_factory=dict)  # exercise stem -> file
    notes: list[str] = field(default_factory=list)


@dataclass
class ClassResult:
    out: Path
    seed: int
    chapters: list[str]  # the exercise stems graded
    reports: dict[str, dict]  # student -> report (with "status", "notes")
    graded: list[str]  # graded in this run
    skipped: list[str]  # unchanged since an earlier run
    pass_rates: list[dict]
    seconds: float


# ---------------------------------------------------------------------------- finding files

def find_exercise_files(folder: Path, stems: list[str]) -> tuple[dict[str, Path], list[str]]:
    """Each exercise's file in a student's folder: at the top, else the shallowest one below."""
    found: dict[str, Path] = {}
    notes: list[str] = []
    candidates: dict[str, list[Path]] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in filenames:
            stem = name[:-3] if name.endswith(".py") else None
            if stem in stems:
                candidates.setdefault(stem, []).append(Path(dirpath) / name)
    for stem, paths in candidates.items():
        paths.sort(key=lambda p: (len(p.relative_to(folder).parts), str(p)))
        found[stem] = paths[0]
        if len(paths) > 1:
            notes.append(f"{len(paths)} files named {stem}.py; graded "
                         f"{paths[0].relative_to(folder).as_posix()}")
    return found, notes


def find_students(submissions: Path, stems: list[str]) -> list[Student]:
    if not submissions.is_dir():
        raise ClassGradingError(f"{submissions} is not a folder (expected one folder per student)")
    try:
        entries = sorted(submissions.iterdir())
    except OSError as exc:
        raise ClassGradingError(f"cannot read {submissions}: {exc}") from None
    students = []
    for entry in entries:
        if not entry.is_dir() or entry.name.startswith(".") or entry.name in _SKIP_DIRS:
            continue
        files, notes = find_exercise_files(entry, stems)
        students.append(Student(entry.name, entry, files, notes))
    if not students:
        raise ClassGradingError(f"no student folders in {submissions} (expected one folder per "
                                f"student, each holding exercise files such as {stems[0]}.py)")
    return students


# ---------------------------------------------------------------------------- fingerprints

def grader_version() -> str:
    """A hash of the grader's source: a changed grader regrades everyone on the next run."""
    digest = hashlib.sha256()
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.glob("grader/*.py")) + [package / "catalog.py"]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(contents: dict[str, bytes], settings: dict) -> str:
    """What a student's grade depends on: their files' bytes, the seed, the settings, the grader."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for stem in sorted(contents):
        digest.update(stem.encode() + b"\0" + _sha256(contents[stem]).encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------- status

def student_status(report: dict) -> tuple[StudentStatus, list[str]]:
    """The student's status (the most severe, in ``StudentStatus``'s order) and short notes on
    what went wrong where."""
    found, notes = set(), []
    exercises = report.get("exercises", [])
    for exercise in exercises:
        label = f"ch{exercise['chapter']:02d}"
        if exercise.get("grader_error"):
            found.add(StudentStatus.GRADER_ERROR)
        if exercise["status"] == ExerciseStatus.MISSING:
            found.add(StudentStatus.INCOMPLETE)
            notes.append(f"{label}: no file")
            continue
        statuses = Counter(c["status"] for c in exercise["checks"])
        for status, student in STUDENT_STATUS_OF.items():
            if statuses.get(status):
                found.add(student)
                first = next(c for c in exercise["checks"] if c["status"] == status)
                notes.append(f"{label}: {student} in {first['name']}"
                             if len(exercise["checks"]) > 1 and status != CheckStatus.DELEGATION
                             else f"{label}: {first['feedback'][:160]}")
        if (exercise["status"] in (ExerciseStatus.ERROR, ExerciseStatus.TIMEOUT)
                and not statuses.keys() & STUDENT_STATUS_OF.keys()):
            found.add(StudentStatus.TIMEOUT if exercise["status"] == ExerciseStatus.TIMEOUT
                      else StudentStatus.ERROR)
            notes.append(f"{label}: {exercise.get('message', '')[:160]}")
        not_implemented = [c for c in exercise["checks"]
                           if c.get("exception") == "NotImplementedError"]
        wrong = [c for c in exercise["checks"] if not c["passed"] and c not in not_implemented]
        if wrong:
            found.add(StudentStatus.WRONG)
            failed = [c for c in wrong if c["status"] in (CheckStatus.FAILED, CheckStatus.ERROR)]
            mistakes = sorted({c["mistake"]["name"] for c in failed if c.get("mistake")})
            if failed:
                notes.append(f"{label}: {len(failed)} check(s) failed"
                             + (f" (known mistakes: {', '.join(mistakes)})" if mistakes else ""))
        if not_implemented:
            found.add(StudentStatus.INCOMPLETE)
            if len(not_implemented) == len(exercise["checks"]):
                notes.append(f"{label}: not implemented")
    if not exercises:
        return StudentStatus.NO_FILES, notes
    if all(e["status"] == ExerciseStatus.MISSING for e in exercises):
        return StudentStatus.NO_FILES, []
    if not found:
        return StudentStatus.FULL_MARKS, notes
    return next(s for s in StudentStatus if s in found), notes


# ---------------------------------------------------------------------------- summaries

def pass_rates(reports: dict[str, dict]) -> list[dict]:
    """Per check, across the students who handed in that exercise: how many passed, and the
    known mistake the others made most often. Hardest checks first."""
    table: dict[tuple[str, str], dict] = {}
    for report in reports.values():
        for exercise in report.get("exercises", []):
            if exercise["status"] == ExerciseStatus.MISSING:
                continue
            for check in exercise["checks"]:
                row = table.setdefault((exercise["name"], check["name"]), {
                    "exercise": exercise["name"], "check": check["name"], "students": 0,
                    "passed": 0, "mistakes": Counter(), "names": {}, "statuses": Counter()})
                row["students"] += 1
                row["passed"] += bool(check["passed"])
                if not check["passed"]:
                    row["statuses"][check["status"]] += 1
                    mistake = check.get("mistake")
                    if mistake:
                        row["mistakes"][mistake["id"]] += 1
                        row["names"][mistake["id"]] = mistake["name"]
    rows = []
    for row in table.values():
        common = row["mistakes"].most_common(1)
        rows.append({"exercise": row["exercise"], "check": row["check"],
                     "students": row["students"], "passed": row["passed"],
                     "pass_rate": round(row["passed"] / row["students"], 4),
                     "failures_by_status": dict(row["statuses"]),
                     "most_common_mistake_id": common[0][0] if common else "",
                     "most_common_mistake": row["names"][common[0][0]] if common else "",
                     "students_with_that_mistake": common[0][1] if common else 0})
    rows.sort(key=lambda r: (r["pass_rate"], r["exercise"], r["check"]))
    return rows


def grades_csv(reports: dict[str, dict], stems: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", *stems, "total", "max_total", "status", "notes"])
    for name in sorted(reports):
        report = reports[name]
        scores = {e["name"]: e["score"] for e in report.get("exercises", [])}
        writer.writerow([name, *(f"{scores.get(s, 0.0):.2f}" for s in stems),
                         f"{report.get('score', 0.0):.2f}", f"{report.get('max_score', 0.0):.2f}",
                         report["status"], "; ".join(report.get("notes", []))])
    return buffer.getvalue()


def pass_rates_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    columns = ["exercise", "check", "students", "passed", "pass_rate", "most_common_mistake",
               "most_common_mistake_id", "students_with_that_mistake", "failures_by_status"]
    writer = csv.DictWriter(buffer, columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "failures_by_status": " ".join(
            f"{k}={v}" for k, v in sorted(row["failures_by_status"].items()))})
    return buffer.getvalue()


# ---------------------------------------------------------------------------- the class run

def _class_settings(out: Path, seed: int | None, force: bool, settings: dict) -> int:
    """The class's seed: the stored one on a resumed run, else ``seed`` or a new one."""
    path = out / CLASS_FILE
    stored = None
    if path.is_file():
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ClassGradingError(f"{path} is unreadable ({exc}); remove it to start over") from None
    if stored is not None and not force:
        if seed is not None and int(seed) != stored["seed"]:
            raise ClassGradingError(
                f"{out} was graded with seed {stored['seed']}; a resumed run keeps that seed. "
                "Leave out --seed, use another --out, or add --force to regrade everyone")
        seed = stored["seed"]
    elif seed is None:
        seed = new_seed()
    write_json({"schema": SCHEMA, "seed": int(seed), **settings}, path)
    return int(seed)


def _load_previous(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # missing, or written by something else: grade again


def _student_file(out: Path, name: str) -> Path:
    return out / STUDENTS_DIR / f"{name}.json"


def grade_class(submissions: str | os.PathLike, out: str | os.PathLike, *, jobs: int = 1,
                force: bool = False, seed: int | None = None, chapters: list[str] | None = None,
                only: list[str] | None = None, device: str = "auto", timeout: float = 60.0,
                memory_limit: int = runner.DEFAULT_MEMORY_LIMIT, budget: float | None = None,
                on_student=None, backend: str | None = None) -> ClassResult:
    """Grade every student folder in ``submissions`` into ``out`` (see the module docstring).

    Without ``chapters`` (and ``only``), the chapters graded are those at least one student
    handed in a file for.

    ``on_student(event, name, report)`` is called with ``("plan", None, {"total": n, "skipped":
    k})`` once, then ``("start", name, None)`` and ``("done", name, report)`` per student graded.
    """
    started = time.monotonic()
    submissions, out = Path(submissions).resolve(), Path(out).resolve()
    if jobs < 1:
        raise ClassGradingError("--jobs must be at least 1")
    if timeout <= 0:
        raise ClassGradingError("--timeout must be a positive number of seconds")
    if budget is not None and budget <= 0:
        raise ClassGradingError("--budget must be a positive number of seconds")
    if out == submissions or submissions in out.parents:
        raise ClassGradingError("--out must not be inside the submissions folder (it would be "
                                "taken for a student)")
    try:
        plan = grading_plan(chapters, only)
        backend = resolve_backend(backend)
    except GradingError as exc:
        raise ClassGradingError(str(exc)) from None
    stems = [exercise.stem for exercise, _ in plan]
    students = find_students(submissions, stems)
    if not chapters and not only:
        # an assignment is the chapters handed in: a class that did only ch06 gets one column,
        # not six columns of zeros and every student "incomplete"
        handed_in = {stem for student in students for stem in student.files}
        if not handed_in:
            raise ClassGradingError(
                f"no exercise files in the student folders of {submissions} (expected files "
                f"named like {stems[0]}.py, at the top of each folder or below)")
        plan = [(exercise, names) for exercise, names in plan if exercise.stem in handed_in]
        stems = [exercise.stem for exercise, _ in plan]
        for student in students:
            student.files = {stem: path for stem, path in student.files.items() if stem in stems}
    (out / STUDENTS_DIR).mkdir(parents=True, exist_ok=True)
    settings = {"chapters": stems, "checks": sorted(only) if only else None, "device": device,
                "backend": backend, "timeout": timeout, "memory_limit": memory_limit, "budget": budget}
    seed = _class_settings(out, seed, force, {**settings, "submissions": str(submissions)})
    settings = {**settings, "seed": seed, "grader": grader_version()}

    reports: dict[str, dict] = {}
    todo: list[tuple[Student, dict[str, bytes], str]] = []
    for student in students:
        contents = {}
        for stem, path in student.files.items():
            try:
                contents[stem] = path.read_bytes()
            except OSError as exc:
                student.notes.append(f"{stem}: unreadable ({exc.strerror})")
        stamp = fingerprint(contents, settings)
        previous = None if force else _load_previous(_student_file(out, student.name))
        if previous and previous.get("fingerprint") == stamp and previous.get("final", True):
            reports[student.name] = previous
        else:
            todo.append((student, contents, stamp))
    skipped = sorted(reports)
    if on_student:
        on_student("plan", None, {"total": len(students), "skipped": len(skipped)})

    lock = threading.Lock()
    cancelled = threading.Event()
    cache = ReferenceCache()
    same_file: dict[tuple[str, str], Future] = {}  # (stem, sha256) -> the graded entry
    hide = (str(submissions), str(out))

    def grade_one(exercise, names, path: Path, data: bytes | None, deadline: float | None) -> dict:
        if data is None:  # no file: nothing to run, nothing to share
            return grade_exercise(exercise, path, seed, only=names, backend=backend)
        key = (exercise.stem, _sha256(data))
        with lock:
            future = same_file.get(key)
            owner = future is None
            if owner:
                future = same_file[key] = Future()
        if not owner:
            return json.loads(json.dumps(future.result()))  # a copy: reports are edited later
        try:
            entry = grade_exercise(exercise, path, seed, device=device, timeout=timeout,
                                   memory_limit=memory_limit, cache=cache, only=names, hide=hide,
                                   deadline=deadline, backend=backend)
        except BaseException as exc:
            future.set_exception(exc)
            with lock:  # let a later identical file try again rather than inherit the failure
                same_file.pop(key, None)
            raise
        future.set_result(entry)
        return json.loads(json.dumps(entry))

    def grade_student(student: Student, contents: dict[str, bytes], stamp: str) -> dict | None:
        if on_student:
            on_student("start", student.name, None)
        begun = time.monotonic()
        deadline = None if budget is None else begun + budget
        results, crashed = [], None
        with tempfile.TemporaryDirectory(prefix="course-class-") as staging:
            # grade a snapshot of the files: what was fingerprinted is exactly what is graded
            for exercise, names in plan:
                path = Path(staging) / f"{exercise.stem}.py"
                if exercise.stem in contents:
                    path.write_bytes(contents[exercise.stem])
                try:
                    results.append(grade_one(exercise, names, path, contents.get(exercise.stem),
                                             deadline))
                except Exception as exc:  # noqa: BLE001 - one student's grading never stops the class
                    crashed = f"{exercise.stem}: the grader failed: {type(exc).__name__}: {exc}"
                    traceback.print_exc()
                    break
        if cancelled.is_set():  # interrupted: its workers were stopped, so record nothing
            return None
        report = submission_report(student.name, seed, results, time.monotonic() - begun)
        status, notes = student_status(report)
        if crashed:
            status, notes = StudentStatus.GRADER_ERROR, notes + [crashed]
        report.update({"student": student.name, "status": status,
                       "notes": student.notes + notes, "fingerprint": stamp,
                       "files": {s: p.relative_to(student.folder).as_posix()
                                 for s, p in student.files.items()},
                       # a failure that was not the student's is graded again on the next run
                       "final": status != StudentStatus.GRADER_ERROR})
        write_json(report, _student_file(out, student.name))
        with lock:
            reports[student.name] = report
            write_atomic(out / GRADES_CSV, grades_csv(reports, stems))
        if on_student:
            on_student("done", student.name, report)
        return report

    write_atomic(out / GRADES_CSV, grades_csv(reports, stems))
    graded = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(grade_student, *item) for item in todo]
        try:
            for (student, _, _), future in zip(todo, futures):
                future.result()
                graded.append(student.name)
        except BaseException:
            # Ctrl-C (or a failure to write the results): stop now; what was recorded stays
            cancelled.set()
            pool.shutdown(wait=False, cancel_futures=True)
            runner.stop_all_workers()
            raise
    rows = pass_rates(reports)
    write_json({"seed": seed, "students": len(reports), "checks": rows}, out / f"{PASS_RATES}.json")
    write_atomic(out / f"{PASS_RATES}.csv", pass_rates_csv(rows))
    return ClassResult(out, seed, stems, reports, graded, skipped, rows, time.monotonic() - started)

