"""How often the grader is fooled: grade every known-wrong variant and every differently written
correct implementation that the chapter tests define, and print

- the false-pass rate: wrong variants that got full marks on the checks that grade them;
- the false-fail rate: correct implementations that got less than full marks.

    python benchmarks/grader_quality.py                # every chapter, wrong variants graded in full
    python benchmarks/grader_quality.py --quick        # wrong variants only on the checks named for them
    python benchmarks/grader_quality.py --chapter 6 --jobs 2 --json quality.json

The variants are read from the chapter tests (``tests/test_chNN_*.py``), in the forms they use:

- ``VARIANTS`` or ``*_VARIANTS``: a sequence of objects with ``name``, ``replacements`` (pairs of
  text replaced in the solution), ``checks`` and optionally ``expected`` ("wrong"/"correct"), or
  a dict ``name -> (replacements, checks, ...)``;
- ``MISTAKE_SUBMISSIONS`` (``key -> replacements``) with ``MISTAKES`` (``(name, key, check, ...)``):
  several mistakes in one submission, each seen by its own check;
- ``DELEGATIONS``: ``name -> whole file`` that leans on the Keras built-in (must score 0);
- ``ALTERNATIVE`` / ``ANOTHER_CORRECT``: a whole correct file; ``CORRECT_FILES``: names of
  correct files in ``tests/alternatives/``.

A wrong variant "passes falsely" when none of the checks named for it fails (several mistakes
may share one submission, each seen by its own check) or, where the test names none, when it
gets full marks. With ``--quick`` only the named checks are graded; otherwise all of them, so
the marks are the whole exercise's. Every correct one is graded on all checks, and must pass
them all. Identical submissions graded on the same checks are graded once.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
import time
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TESTS = ROOT / "tests"
for path in (str(ROOT), str(TESTS)):
    if path not in sys.path:
        sys.path.insert(0, path)

from course.catalog import CHAPTERS  # noqa: E402
from course.grader.grade import ReferenceCache, exercise_spec, grade_exercise  # noqa: E402

SEED = 20261123


@dataclass
class Case:
    chapter: int
    stem: str
    name: str
    expected: str  # "wrong" or "correct"
    text: str  # the whole submission
    checks: list[str] = field(default_factory=list)  # for a wrong one: the checks meant to see it
    source: str = ""  # where it was defined


def _is_pairs(value) -> bool:
    return isinstance(value, (list, tuple)) and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(s, str) for s in p)
        for p in value) and len(value) > 0


def _apply(solution: str, replacements, where: str) -> str:
    text = solution
    for old, new in replacements:
        if old not in text:
            raise ValueError(f"{where}: {old[:60]!r} is not in the solution any more")
        text = text.replace(old, new, 1)
    return text


def _resolve(stem: str, checks) -> list[str]:
    """Check names as the exercise knows them (a test may leave out a common prefix)."""
    names = [c.name for c in exercise_spec(stem).checks]
    out = []
    for check in checks:
        if check in names:
            out.append(check)
        else:
            matches = [n for n in names if n.endswith("." + check)]
            if len(matches) != 1:
                raise ValueError(f"{stem}: no single check called {check!r}")
            out.append(matches[0])
    return out


def collect(chapters: list[int] | None = None) -> list[Case]:
    """Every variant the chapter tests define, for the chapters that have a grader and tests."""
    cases: list[Case] = []
    for info in CHAPTERS:
        if chapters and info.number not in chapters:
            continue
        solution_path = ROOT / "solutions" / f"{info.stem}.py"
        if exercise_spec(info.stem) is None or not solution_path.is_file():
            continue
        solution = solution_path.read_text(encoding="utf-8")
        for test_path in sorted(TESTS.glob(f"test_ch{info.number:02d}_*.py")):
            module = importlib.import_module(test_path.stem)
            if getattr(module, "STEM", None) != info.stem:
                continue
            where = test_path.name

            def add(name, expected, text, checks=(), origin=""):
                cases.append(Case(info.number, info.stem, name, expected, text,
                                  _resolve(info.stem, checks), f"{where}:{origin}"))

            for attr in sorted(vars(module)):
                value = getattr(module, attr)
                if attr == "VARIANTS" or attr.endswith("_VARIANTS"):
                    items = value.items() if isinstance(value, dict) else [(None, v) for v in value]
                    for key, item in items:
                        if key is None:  # an object with name, replacements, checks
                            add(item.name, getattr(item, "expected", "wrong"),
                                _apply(solution, item.replacements, f"{where} {item.name}"),
                                item.checks, attr)
                        else:  # name -> (replacements, checks, ...)
                            add(key, "wrong", _apply(solution, item[0], f"{where} {key}"),
                                item[1], attr)
                elif attr == "MISTAKE_SUBMISSIONS":
                    mistakes = getattr(module, "MISTAKES", [])
                    for key, replacements in value.items():
                        for entry in mistakes:
                            if entry[1] == key:
                                add(entry[0], "wrong", _apply(solution, replacements, f"{where} {key}"),
                                    [entry[2]], f"{attr}[{key}]")
                elif attr == "DELEGATIONS" and isinstance(value, dict):
                    first = [c.name for c in exercise_spec(info.stem).checks][:2]
                    for key, text in value.items():
                        add(f"delegation: {key}", "wrong", text, first, attr)
                elif attr in ("ALTERNATIVE", "ANOTHER_CORRECT") and isinstance(value, str):
                    add(f"correct: {attr.lower()}", "correct", value, (), attr)
                elif attr == "CORRECT_FILES":
                    for name in value:
                        add(f"correct: {name}", "correct",
                            (TESTS / "alternatives" / name).read_text(encoding="utf-8"), (), attr)
    return cases


@dataclass
class Outcome:
    case: Case
    score: float
    max_score: float
    failed: list[str]
    seconds: float

    @property
    def full_marks(self) -> bool:
        return not self.failed

    @property
    def misjudged(self) -> bool:
        if self.case.expected == "correct":
            return not self.full_marks
        if self.case.checks:
            return not set(self.case.checks) & set(self.failed)
        return self.full_marks


def measure(cases: list[Case], *, quick: bool = False, jobs: int = 1, seed: int = SEED,
            grade=grade_exercise, on_outcome=None) -> list[Outcome]:
    """Grade every case; ``grade`` is ``grade_exercise`` (replaceable in tests)."""
    cache = ReferenceCache()
    graded: dict[tuple, Future] = {}  # (stem, text, checks) -> the entry: graded once
    lock = threading.Lock()

    def entry_for(case: Case, only: list[str] | None) -> dict:
        key = (case.stem, case.text, tuple(only or ()))
        with lock:
            future, owner = graded.get(key), key not in graded
            if owner:
                future = graded[key] = Future()
        if not owner:
            return future.result()
        try:
            with tempfile.TemporaryDirectory(prefix="course-quality-") as folder:
                path = Path(folder) / f"{case.stem}.py"
                path.write_text(case.text, encoding="utf-8")
                future.set_result(grade(exercise_spec(case.stem), path, seed, cache=cache, only=only))
        except BaseException as exc:
            future.set_exception(exc)
        return future.result()

    def one(case: Case) -> Outcome:
        started = time.monotonic()
        only = case.checks if (quick and case.expected == "wrong" and case.checks) else None
        entry = entry_for(case, only)
        outcome = Outcome(case, entry["score"], entry["max_score"],
                          [c["name"] for c in entry["checks"] if not c["passed"]],
                          time.monotonic() - started)
        if on_outcome:
            on_outcome(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, cases))


def summary(outcomes: list[Outcome]) -> dict:
    wrong = [o for o in outcomes if o.case.expected == "wrong"]
    correct = [o for o in outcomes if o.case.expected == "correct"]
    false_pass = [o for o in wrong if o.misjudged]
    false_fail = [o for o in correct if o.misjudged]
    return {
        "wrong_variants": len(wrong), "false_passes": len(false_pass),
        "false_pass_rate": len(false_pass) / len(wrong) if wrong else 0.0,
        "correct_implementations": len(correct), "false_fails": len(false_fail),
        "false_fail_rate": len(false_fail) / len(correct) if correct else 0.0,
        "misjudged": [{"chapter": o.case.chapter, "name": o.case.name, "expected": o.case.expected,
                       "score": o.score, "max_score": o.max_score, "failed_checks": o.failed}
                      for o in false_pass + false_fail],
        "per_chapter": {
            str(n): {"wrong": sum(o.case.chapter == n for o in wrong),
                     "false_passes": sum(o.case.chapter == n for o in false_pass),
                     "correct": sum(o.case.chapter == n for o in correct),
                     "false_fails": sum(o.case.chapter == n for o in false_fail)}
            for n in sorted({o.case.chapter for o in outcomes})},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapter", type=int, action="append", help="only this chapter (repeatable)")
    parser.add_argument("--quick", action="store_true",
                        help="grade wrong variants only on the checks named for them")
    parser.add_argument("--jobs", type=int, default=2, help="variants graded at once (default 2)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", help="also write the summary to this file")
    args = parser.parse_args(argv)
    cases = collect(args.chapter)
    if not cases:
        print("no variants found (no chapter with both a grader and tests)", file=sys.stderr)
        return 2
    print(f"grading {len(cases)} variants ({sum(c.expected == 'wrong' for c in cases)} wrong, "
          f"{sum(c.expected == 'correct' for c in cases)} correct) with seed {args.seed}"
          f"{' (quick)' if args.quick else ''}")
    started = time.monotonic()

    def show(o: Outcome) -> None:
        verdict = "MISJUDGED" if o.misjudged else "ok"
        print(f"  ch{o.case.chapter:02d} {o.case.expected:7s} {verdict:9s} {o.score:5.2f}/"
              f"{o.max_score:5.2f}  {o.case.name}  ({o.seconds:.0f} s)", flush=True)

    outcomes = measure(cases, quick=args.quick, jobs=args.jobs, seed=args.seed, on_outcome=show)
    result = summary(outcomes)
    result.update(seconds=round(time.monotonic() - started, 1), quick=args.quick, seed=args.seed)
    print(f"false-pass rate: {result['false_passes']}/{result['wrong_variants']} wrong variants "
          f"with full marks ({100 * result['false_pass_rate']:.1f}%)")
    print(f"false-fail rate: {result['false_fails']}/{result['correct_implementations']} correct "
          f"implementations below full marks ({100 * result['false_fail_rate']:.1f}%)")
    for chapter, row in result["per_chapter"].items():
        print(f"  ch{int(chapter):02d}: {row['wrong']} wrong ({row['false_passes']} passed), "
              f"{row['correct']} correct ({row['false_fails']} failed)")
    print(f"{result['seconds']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 1 if result["false_passes"] or result["false_fails"] else 0


if __name__ == "__main__":
    sys.exit(main())
