"""Generate the student version (``exercises/``) from the reference (``solutions/``).

Each ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block becomes a ``raise NotImplementedError``
at the block's indentation; everything else — signatures, docstrings, ``# TODO`` hints — is kept.
Nothing in ``exercises/`` is edited by hand: ``course release --check`` fails when it differs.
"""

from __future__ import annotations

import difflib
import re
import shutil
from pathlib import Path

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION\b.*$")
END = re.compile(r"^[ \t]*# END SOLUTION\b.*$")
HEADER = ('# This file is generated from solutions/{name} by `course release`: fill in the {parts} parts\n'
          '# that raise NotImplementedError, then run `course grade` to check your work.\n')
STUB = 'raise NotImplementedError("{name}: your code here")'
PARTS = re.compile(r"^# This file is generated from solutions/\S+ by `course release`: fill in the (\d+) parts")


class ReleaseError(Exception):
    pass


def strip_solutions(text: str, name: str) -> str:
    """The student version of one solution file's text."""
    out, inside, block_start, parts = [], None, 0, 0
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        begin = BEGIN.match(line)
        if begin:
            if inside is not None:
                raise ReleaseError(f"{name}:{number}: BEGIN SOLUTION inside another block "
                                   f"(opened at line {block_start})")
            inside, block_start = begin.group("indent"), number
            continue
        if END.match(line):
            if inside is None:
                raise ReleaseError(f"{name}:{number}: END SOLUTION without BEGIN SOLUTION")
            out.append(inside + STUB.format(name=name) + "\n")
            inside, parts = None, parts + 1
            continue
        if inside is None:
            out.append(line)
    if inside is not None:
        raise ReleaseError(f"{name}:{block_start}: BEGIN SOLUTION is never closed")
    body = "".join(out)
    return HEADER.format(name=name, parts=parts) + body


def progress(text: str, name: str) -> tuple[int, int] | None:
    """(parts still stubbed, parts in all) of a generated exercise file; None if not generated."""
    found = PARTS.match(text)
    if not found:
        return None
    return text.count(STUB.format(name=name)), int(found.group(1))


def _project_root() -> Path:
    return Path(__file__).resolve().parents[1]


def generated(solutions: Path) -> dict[str, str]:
    files = {}
    for path in sorted(solutions.glob("ch*.py")):
        files[path.name] = strip_solutions(path.read_text(encoding="utf-8"), path.name)
    files["__init__.py"] = ""
    return files


def release(root: Path | None = None, check: bool = False) -> list[str]:
    """Write (or with ``check`` compare) ``exercises/``; return the names that differ/changed."""
    root = root or _project_root()
    solutions, exercises = root / "solutions", root / "exercises"
    if not solutions.is_dir():
        raise ReleaseError(f"no solutions/ folder in {root}: release runs from the instructor's copy")
    wanted = generated(solutions)
    changed = []
    for name, text in wanted.items():
        target = exercises / name
        current = target.read_text(encoding="utf-8") if target.exists() else None
        if current != text:
            changed.append(name)
            if check:
                diff = difflib.unified_diff((current or "").splitlines(), text.splitlines(),
                                            f"exercises/{name} (committed)",
                                            f"exercises/{name} (generated)", lineterm="", n=1)
                print("\n".join(list(diff)[:40]))
            else:
                exercises.mkdir(exist_ok=True)
                target.write_text(text, encoding="utf-8")
    stale = [p.name for p in exercises.glob("ch*.py") if p.name not in wanted]
    for name in stale:
        changed.append(name)
        if not check:
            (exercises / name).unlink()
    return changed


def student_bundle(target: Path, root: Path | None = None) -> Path:
    """Copy what a student gets — package, chapters, exercises, README — without solutions."""
    root = root or _project_root()
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise ReleaseError(f"{target} exists and is not empty")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for folder in ("course", "chapters", "exercises"):
        shutil.copytree(root / folder, target / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        if (root / name).exists():
            shutil.copy2(root / name, target / name)
    return target
