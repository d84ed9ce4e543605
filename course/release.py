"""Generate the student version (``exercises/``) from the reference (``solutions/``).

Each ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` block becomes a ``raise NotImplementedError``
at the block's indentation; everything else — signatures, docstrings, ``# TODO`` hints — is kept.
Nothing in ``exercises/`` is edited by hand: ``course release --check`` fails when it differs.
"""

from __future__ import annotations

import difflib
import re
import shutil
import subprocess
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


STUDENT_FOLDERS = ("course", "chapters")  # shipped as they are; exercises/ is generated afresh


def shipped_files(root: Path, folders: tuple[str, ...]) -> list[Path]:
    """The files of ``folders`` that belong to the course: those git tracks when ``root`` is a
    checkout (no one's scratch files, caches or build output), else every file but caches."""
    try:
        listed = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--", *folders],
                                capture_output=True, check=True, timeout=60).stdout
        files = [Path(name) for name in listed.decode().split("\0") if name]
        if files:
            return [f for f in files if (root / f).is_file()]
    except (OSError, subprocess.SubprocessError):
        pass
    files = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*")):
            relative = path.relative_to(root)
            if path.is_file() and not any(part.startswith(".") or part == "__pycache__"
                                          or part.endswith(".egg-info") for part in relative.parts) \
                    and path.suffix != ".pyc":
                files.append(relative)
    return files


STUDENT_README = "docs/students.md"


def student_bundle(target: Path, root: Path | None = None) -> Path:
    """Write what a student gets — the package, the chapters, the exercises, README and
    pyproject — and no solutions: ``exercises/`` is generated from ``solutions/`` here (so it is
    current even if ``course release`` was not run), and nothing else from ``solutions/`` goes in.
    The chapters then run on the student's own code (``--mine``) or, where an exercise is still
    a stub, on Keras's built-ins with a note (see ``course.chapter``)."""
    root = root or _project_root()
    target = Path(target)
    if target.exists() and any(target.iterdir()):
        raise ReleaseError(f"{target} exists and is not empty")
    for relative in shipped_files(root, STUDENT_FOLDERS):
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, target / relative)
    exercises = target / "exercises"
    exercises.mkdir(parents=True, exist_ok=True)
    if (root / "solutions").is_dir():
        for name, text in generated(root / "solutions").items():
            (exercises / name).write_text(text, encoding="utf-8")
    else:  # a bundle made from a bundle: its exercises are all there is
        for relative in shipped_files(root, ("exercises",)):
            shutil.copy2(root / relative, target / relative)
    if (root / "pyproject.toml").exists():
        shutil.copy2(root / "pyproject.toml", target / "pyproject.toml")
    # students get a README of their own: the project's is about developing the course (a
    # bundle made from a bundle has only that one, as README.md)
    readme = root / STUDENT_README if (root / STUDENT_README).exists() else root / "README.md"
    if readme.exists():
        shutil.copy2(readme, target / "README.md")
    return target
