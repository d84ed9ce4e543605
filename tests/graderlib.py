"""Helpers for the grader's tests: write a submission, grade it, run the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from course.grader.grade import ReferenceCache, exercise_spec, grade_exercise
from variants import solution_text  # noqa: F401 - the tests take it from here

ROOT = Path(__file__).resolve().parents[1]
SEED = 20261123
CACHE = ReferenceCache()  # one reference per exercise for the whole test session


def write_variant(tmp_path: Path, stem: str, text: str) -> Path:
    """Write ``text`` as a submission's ``<stem>.py`` under ``tmp_path``."""
    folder = tmp_path / "submission"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.py"
    path.write_text(text, encoding="utf-8")
    return path


def grade(path: Path, stem: str, checks=None, seed: int = SEED, timeout: float = 60.0,
          cache: ReferenceCache = CACHE, **kwargs) -> dict:
    """Grade one exercise file in-process (workers are still child processes)."""
    return grade_exercise(exercise_spec(stem), Path(path), seed, timeout=timeout, cache=cache,
                          only=list(checks) if checks else None, **kwargs)


def by_check(entry: dict) -> dict:
    return {c["name"]: c for c in entry["checks"]}


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "course.cli", *args], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


def grade_cli_json(folder: Path, tmp_path: Path, *extra: str) -> dict:
    out = tmp_path / "report.json"
    result = run_cli("grade", str(folder), "--seed", str(SEED), "--json", str(out), *extra)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(out.read_text())
