"""``course release --student DIR``: what a student gets has no solution code in it, and its
chapters run on the student's exercises (``--mine``), falling back to Keras with a note."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from course.release import BEGIN, END, strip_solutions
from graderlib import ROOT, run_cli

SOLUTIONS = sorted((ROOT / "solutions").glob("ch*.py"))


def solution_blocks(text: str) -> list[list[str]]:
    blocks, current = [], None
    for line in text.splitlines():
        if BEGIN.match(line):
            current = []
        elif END.match(line):
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line.strip())
    return blocks


def distinctive(block: list[str]) -> set[str]:
    """The lines of a solution block that would give it away: long enough to be particular to
    it, and not the boilerplate every Keras subclass writes (``super().__init__(...)``)."""
    return {line for line in block if len(line) >= 30
            and not line.startswith(("#", "return", "super().", '"""'))}


def leaks(folder: Path) -> list[str]:
    """Each (solution block, file) where two or more of the block's distinctive lines appear."""
    texts = {p: p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()}
    found = []
    for solution in SOLUTIONS:
        for number, block in enumerate(solution_blocks(solution.read_text()), start=1):
            lines = distinctive(block)
            for path, text in texts.items():
                hits = sorted(line for line in lines if line in text)
                if len(hits) >= 2:
                    found.append(f"{solution.name} block {number} in {path.relative_to(folder)}: {hits[:2]}")
    return found


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    target = tmp_path_factory.mktemp("bundle") / "course-student"
    result = run_cli("release", "--student", str(target))
    assert result.returncode == 0, result.stdout + result.stderr
    return target


def test_the_bundle_has_the_package_chapters_and_exercises_and_no_solutions(bundle):
    assert (bundle / "course" / "grader" / "grade.py").is_file()
    assert (bundle / "pyproject.toml").is_file()
    assert not (bundle / "solutions").exists() and not (bundle / "tests").exists()
    assert not list(bundle.rglob("__pycache__")) and not list(bundle.rglob("*.egg-info"))
    for solution in SOLUTIONS:
        exercise = bundle / "exercises" / solution.name
        assert exercise.read_text() == strip_solutions(solution.read_text(), solution.name)


def test_no_solution_markers_or_solution_bodies_anywhere_in_the_bundle(bundle):
    for path in bundle.rglob("*.py"):
        markers = [line for line in path.read_text().splitlines() if BEGIN.match(line) or END.match(line)]
        assert not markers, path
    assert leaks(bundle) == []


def test_the_leak_search_finds_a_solution_that_slipped_in(tmp_path):
    (tmp_path / "oops.py").write_text((ROOT / "solutions" / "ch06_adam.py").read_text()
                                      .replace("# BEGIN SOLUTION", "").replace("# END SOLUTION", ""))
    assert any("ch06_adam.py" in leak for leak in leaks(tmp_path))


def test_a_non_empty_target_is_refused(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    result = run_cli("release", "--student", str(tmp_path))
    assert result.returncode == 1 and "not empty" in result.stderr


@pytest.mark.slow
def test_a_chapter_runs_in_the_bundle_on_the_students_stubs(bundle, tmp_path):
    """As on a student's machine: the bundle on the path, and no solutions/ to import."""
    runner = ("import runpy, sys\n"
              "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
              "try:\n    import solutions\nexcept ImportError:\n    pass\n"
              "else:\n    raise SystemExit('solutions/ is importable: not a student machine')\n"
              "sys.argv = ['chapters.ch06_adam', '--quick', '--mine', '--out', sys.argv[1]]\n"
              "runpy.run_module('chapters.ch06_adam', run_name='__main__', alter_sys=True)\n")
    env = dict(os.environ, PYTHONPATH=str(bundle), MPLBACKEND="Agg")
    result = subprocess.run([sys.executable, "-c", runner, str(tmp_path / "plots")], cwd=bundle,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "component from exercises" in result.stdout
    assert "note: Adam is not implemented in exercises" in result.stdout
    assert list((tmp_path / "plots").glob("*.png"))


def test_course_list_works_in_the_bundle(bundle):
    env = dict(os.environ, PYTHONPATH=str(bundle))
    result = subprocess.run([sys.executable, "-m", "course.cli", "list"], cwd=bundle, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Adam" in result.stdout


def test_the_bundle_readme_is_written_for_students(bundle):
    import re

    from course.cli import build_parser

    readme = (bundle / "README.md").read_text()
    assert readme == (ROOT / "docs" / "students.md").read_text()
    for absent in ("pytest", "course release", "grade-class", "solutions/", ".ci/"):
        assert absent not in readme, absent  # nothing that only works in the course's repository
    subcommands = set(build_parser()._subparsers._group_actions[0].choices)
    named = set(re.findall(r"(?:^|`)course ([a-z][\w-]*)", readme, re.M))
    assert {"grade", "run", "list"} <= named <= subcommands
    for status in ("passed", "failed", "known mistake", "error", "timeout", "memory", "crashed"):
        assert f"**{status}**" in readme
