"""The corpus of submission variants, chapter by chapter: known-wrong submissions (the reference
solution with a few lines changed), correct ones written differently, and ones that lean on the
Keras built-in. The grading tests (``tests/test_variants.py``) and the grader-quality measurement
(``python -m variants.quality``) both read it, so a variant added here is tested and measured.

Each ``variants/chNN_<stem>.py`` defines ``VARIANTS``; whole files too long to read well as a
string are in ``variants/files/``. The corpus holds solution code: it lives outside the ``course``
package, which is all that ships, and must never go to students.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Iterable

from course.catalog import chapter as find_chapter

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FILES = HERE / "files"


class Kind(str, Enum):
    """What grading must say of a variant."""

    WRONG = "wrong"  # each of its checks fails, with its hint, and it loses points
    CORRECT = "correct"  # full marks: every check passes
    DELEGATION = "delegation"  # it leans on the Keras built-in: 0 points, and a message saying so


@dataclass(frozen=True)
class Variant:
    """One submission of one exercise, and what grading must say of it."""

    chapter: int
    stem: str
    name: str  # unique within the exercise
    kind: Kind
    text: str  # the whole submitted file
    # WRONG: the checks that must fail (the full names, "adam.trajectory"); DELEGATION: the checks
    # it is graded on (every check when empty); CORRECT: none, it is graded on every check
    checks: tuple[str, ...] = ()
    hint: str = ""  # WRONG: text that the hint of each failing check must contain
    # the Keras backends its mistake shows on: a Python `if` on a step tensor fails only where
    # the step is traced (TensorFlow's graphs, JAX), and PyTorch runs model.fit eagerly
    backends: tuple[str, ...] = ("tensorflow", "jax", "torch")


def solution_text(stem: str) -> str:
    """The reference solution of an exercise, ``solutions/<stem>.py``."""
    return (ROOT / "solutions" / f"{stem}.py").read_text(encoding="utf-8")


def replaced(text: str, replacements: Iterable[tuple[str, str]], where: str) -> str:
    """``text`` with each (old, new) replaced once, in order; an ``old`` that is not there any more
    (the solution was edited) is an error naming ``where``, never a variant that quietly equals
    the solution."""
    for old, new in replacements:
        if old not in text:
            raise ValueError(f"{where}: {old[:80]!r} is not in the text any more; update the "
                             f"replacement to the current solution")
        text = text.replace(old, new, 1)
    return text


def variant(stem: str, name: str, kind: Kind, text: str, checks: Iterable[str] = (),
            hint: str = "") -> Variant:
    """A variant of ``stem``'s exercise, its chapter number taken from the catalog."""
    return Variant(find_chapter(stem).number, stem, name, kind, text, tuple(checks), hint)


def from_solution(stem: str, name: str, replacements: Iterable[tuple[str, str]], *,
                  kind: Kind = Kind.WRONG, checks: Iterable[str] = (), hint: str = "") -> Variant:
    """The solution of ``stem`` with each (old, new) of ``replacements`` applied once."""
    text = replaced(solution_text(stem), replacements, f"variant {name!r} of solutions/{stem}.py")
    return variant(stem, name, kind, text, checks, hint)


def from_file(stem: str, name: str, filename: str, *, kind: Kind = Kind.CORRECT) -> Variant:
    """A whole submission kept in ``variants/files/``."""
    return variant(stem, name, kind, (FILES / filename).read_text(encoding="utf-8"))


def corpus(chapters: Iterable[int] | None = None) -> list[Variant]:
    """The variants of ``chapters`` (every chapter when None), in chapter order."""
    wanted = None if chapters is None else set(chapters)
    found: list[Variant] = []
    for path in sorted(HERE.glob("ch[0-9][0-9]_*.py")):
        if wanted is None or int(path.name[2:4]) in wanted:
            found.extend(importlib.import_module(f"{__name__}.{path.stem}").VARIANTS)
    return found
