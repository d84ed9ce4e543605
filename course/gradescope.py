"""A Gradescope autograder: ``course gradescope --out autograder.zip``.

The zip (upload it as the assignment's autograder) holds:

- ``setup.sh``: run once when Gradescope builds the image: a virtual environment in
  ``/autograder/venv`` with the course package and its dependencies (TensorFlow, Keras, ...);
- ``run_autograder``: run for every submission: ``python -m course.gradescope run`` grades
  ``/autograder/submission`` and writes ``/autograder/results/results.json``;
- ``autograder.json``: what the instructor chose when building it (chapters, checks, time limit
  per check, seed, the Keras backend, and the budget: the seconds one submission's grading may
  take in all);
- ``package/``: the course package and its ``pyproject.toml``. No solutions: the grader checks a
  submission against Keras's own optimizers, layers and schedules, not against a stored answer.

A submission may hold the exercise files at its top or anywhere below (an uploaded folder).
Each submission is graded with its own seed, derived from Gradescope's submission id, so a
regrade reproduces the same numbers (``--seed`` at build time fixes one seed for everyone).
``results.json`` is written whatever happens: when grading itself fails, it says so with a
score of 0 and the reason, instead of Gradescope's bare "the autograder failed".
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
import zipfile
import zlib
from pathlib import Path

from course.grader.classroom import find_exercise_files
from course.grader.grade import GradingError, grade_submission, grading_plan, new_seed
from course.grader.report import gradescope_results, write_json
from course.release import ReleaseError, shipped_files

SETTINGS = "autograder.json"
# Gradescope stops an autograder after 10 minutes by default; grading stops a minute before, so
# that what was graded is reported (the rest as timed out) instead of nothing at all.
DEFAULT_BUDGET = 540.0

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image.
set -euo pipefail
cd "$(dirname "$0")"
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c "import ensurepip" >/dev/null 2>&1; then
  apt-get update
  apt-get install -y python3-venv python3-pip
fi
python3 -m venv /autograder/venv
/autograder/venv/bin/python -m pip install --upgrade pip
/autograder/venv/bin/python -m pip install "./package{extra}"
KERAS_BACKEND={backend} /autograder/venv/bin/python -c "import course.grader.grade, tensorflow, keras; \\
print('course grader installed with TensorFlow', tensorflow.__version__, 'and Keras', keras.__version__, \\
'on the', keras.backend.backend(), 'backend')"
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission: grade /autograder/submission into
# /autograder/results/results.json (written even when grading fails).
# AUTOGRADER_ROOT and AUTOGRADER_PYTHON exist for trying it out away from Gradescope.
root="${AUTOGRADER_ROOT:-/autograder}"
python="${AUTOGRADER_PYTHON:-$root/venv/bin/python}"
cd "$root/source" || exit 1
exec "$python" -m course.gradescope run --root "$root" --settings "$root/source/autograder.json"
"""


def _project_root() -> Path:
    return Path(__file__).resolve().parents[1]


def build_autograder(out: str | os.PathLike, *, chapters: list[str] | None = None,
                     only: list[str] | None = None, timeout: float = 60.0,
                     seed: int | None = None, budget: float | None = None,
                     root: Path | None = None, backend: str = "tensorflow") -> Path:
    """Write the autograder zip to ``out`` (atomically); GradingError for a bad selection.

    ``backend``: the Keras backend submissions are graded on (setup.sh installs its extra). It
    need not be installed on the machine that builds the zip.

    ``budget``: seconds a submission's grading may take, all told (default DEFAULT_BUDGET);
    keep it below the assignment's Gradescope timeout, so that results.json is always written."""
    root = root or _project_root()
    plan = grading_plan(chapters, only)  # fails here, not on Gradescope, for a wrong chapter
    if timeout <= 0:
        raise GradingError("--timeout must be a positive number of seconds")
    budget = DEFAULT_BUDGET if budget is None else budget
    from course import backends

    backend = "torch" if backend == "pytorch" else backend
    if backend not in backends.BACKENDS:
        raise GradingError(f"unknown backend {backend!r}: choose one of {', '.join(backends.BACKENDS)}")
    if budget <= 0:
        raise GradingError("--budget must be a positive number of seconds")
    settings = {"chapters": [exercise.stem for exercise, _ in plan],
                "checks": sorted(only) if only else None, "timeout": timeout, "seed": seed,
                "budget": budget, "backend": backend}
    setup = SETUP_SH.replace("{extra}", "" if backend == "tensorflow" else f"[{backend}]"
                             ).replace("{backend}", backend)
    files = shipped_files(root, ("course",))
    if not files:
        raise ReleaseError(f"no course package found in {root}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, text, mode in (("setup.sh", setup, 0o755),
                                     ("run_autograder", RUN_AUTOGRADER, 0o755),
                                     (SETTINGS, json.dumps(settings, indent=2) + "\n", 0o644)):
                info = zipfile.ZipInfo(name, date_time=time.localtime()[:6])
                info.external_attr = (0o100000 | mode) << 16  # a regular file with these rights
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, text)
            archive.write(root / "pyproject.toml", "package/pyproject.toml")
            if (root / "README.md").is_file():
                archive.write(root / "README.md", "package/README.md")
            for relative in files:
                archive.write(root / relative, f"package/{relative.as_posix()}")
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


def submission_seed(root: Path, settings: dict) -> int:
    """The fixed seed, else one derived from the submission's id (a regrade gets the same)."""
    if settings.get("seed") is not None:
        return int(settings["seed"])
    try:
        metadata = json.loads((root / "submission_metadata.json").read_text())
        return zlib.crc32(str(metadata["id"]).encode()) % 10**6
    except (OSError, ValueError, KeyError, TypeError):
        return new_seed()


def _failure(message: str, started: float) -> dict:
    return {"score": 0.0, "execution_time": round(time.monotonic() - started, 2),
            "output": message, "visibility": "visible", "tests": []}


def run_autograder(root: str | os.PathLike, settings: dict) -> dict:
    """Grade ``root/submission`` and write ``root/results/results.json``; return what was written."""
    started = time.monotonic()
    root = Path(root)
    submission, results_path = root / "submission", root / "results" / "results.json"
    stems = list(settings.get("chapters") or [])
    try:
        files, notes = find_exercise_files(submission, stems) if submission.is_dir() else ({}, [])
        # only the exercises handed in are graded: a one-chapter upload is not failed on six
        plan = [(e, names) for e, names in grading_plan(stems, settings.get("checks"))
                if e.stem in files]
        if not plan:
            results = _failure("No exercise file was found in your submission. Upload "
                               + (", ".join(f"{s}.py" for s in stems) or "your exercise files")
                               + " (at the top of the submission or in a folder).", started)
        else:
            seed = submission_seed(root, settings)
            only = sorted({n for _, names in plan for n in names}) if settings.get("checks") else None
            with tempfile.TemporaryDirectory(prefix="course-gradescope-") as staging:
                for exercise, _ in plan:
                    (Path(staging) / f"{exercise.stem}.py").write_bytes(files[exercise.stem].read_bytes())
                budget = float(settings.get("budget") or DEFAULT_BUDGET)
                report = grade_submission(
                    staging, [e.stem for e, _ in plan], seed,
                    timeout=float(settings.get("timeout", 60.0)), only=only,
                    hide=(str(submission), str(results_path.parent), str(root / "source")),
                    budget=max(1.0, budget - (time.monotonic() - started)),
                    backend=settings.get("backend") or "tensorflow")
            report["submission"] = "your submission"
            results = gradescope_results(report)
            missing = [f"{s}.py" for s in stems if s not in files]
            extra = notes + ([f"Not handed in: {', '.join(missing)}."] if missing else [])
            if extra:
                results["output"] += "\n" + "\n".join(extra)
    except Exception as exc:  # noqa: BLE001 - the results file must say what happened
        traceback.print_exc()
        results = _failure("The autograder could not grade this submission (not a problem with "
                           f"your code; please tell your instructor): {type(exc).__name__}: {exc}",
                           started)
    write_json(results, results_path)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course.gradescope")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="grade a Gradescope submission (what run_autograder calls)")
    run.add_argument("--root", default="/autograder")
    run.add_argument("--settings", help="the autograder.json written into the zip")
    args = parser.parse_args(argv)
    settings_path = Path(args.settings or Path(args.root) / "source" / SETTINGS)
    try:
        settings = json.loads(settings_path.read_text())
    except (OSError, ValueError) as exc:
        print(f"cannot read the autograder's settings {settings_path}: {exc}", file=sys.stderr)
        settings = {"chapters": None}
    if not settings.get("chapters"):  # an old or broken zip: every gradable chapter
        settings["chapters"] = [exercise.stem for exercise, _ in grading_plan()]
    results = run_autograder(args.root, settings)
    print(f"score {results['score']}; wrote {Path(args.root) / 'results' / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
