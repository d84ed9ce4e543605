"""How often the grader is fooled: grade every variant of the corpus and print

- the false-pass rate: wrong variants and delegations that got through;
- the false-fail rate: correct implementations that got less than full marks.

    python -m variants.quality                      # every chapter, every variant on every check
    python -m variants.quality --quick              # wrong variants, delegations on their checks
    python -m variants.quality --chapter 6 --jobs 2 --json quality.json
    python -m variants.quality --quick --backend jax   # the same corpus on Keras's JAX backend

A wrong variant gets through when none of the checks named for it fails (several mistakes may
share one submission, each seen by its own check) or, where it names none, when it gets full
marks; a delegation gets through when it scores anything. With ``--quick`` wrong variants and
delegations are graded only on the checks they name; otherwise on all of them, so the marks are
the whole exercise's. Every correct one is graded on all checks, and must pass them all.
Identical submissions graded on the same checks are graded once.

On a backend other than TensorFlow, a correct variant written with direct TensorFlow calls must
lose its TensorFlow-only components' points there (it is counted as a wrong variant that must not
get full marks), as the grader's ``tensorflow_only`` mistake says.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from course.grader import static
from course.grader.grade import ReferenceCache, exercise_spec, grade_exercise
from variants import Kind, Variant, corpus

SEED = 20261123


@dataclass
class Outcome:
    variant: Variant
    score: float
    max_score: float
    failed: list[str]  # the names of the checks that did not pass
    seconds: float
    tensorflow_only: bool = False  # correct on TensorFlow only, graded on another backend

    @property
    def full_marks(self) -> bool:
        return not self.failed

    @property
    def expected_to_pass(self) -> bool:
        return self.variant.kind == Kind.CORRECT and not self.tensorflow_only

    @property
    def misjudged(self) -> bool:
        if self.variant.kind == Kind.CORRECT and self.tensorflow_only:
            return self.full_marks
        if self.variant.kind == Kind.CORRECT:
            return not self.full_marks
        if self.variant.kind == Kind.DELEGATION:
            return self.score > 0
        if self.variant.checks:
            return not set(self.variant.checks) & set(self.failed)
        return self.full_marks


def tensorflow_only(variant: Variant, backend: str) -> bool:
    """Whether grading on ``backend`` must take points from the variant for calling TensorFlow
    directly in a component that is not TensorFlow's by design."""
    if backend == "tensorflow":
        return False
    exercise = exercise_spec(variant.stem)
    calls = static.tensorflow_calls(variant.text, exercise.exports)
    return bool(set(calls) - set(exercise.tensorflow_by_design))


def measure(variants: list[Variant], *, quick: bool = False, jobs: int = 1, seed: int = SEED,
            grade=grade_exercise, on_outcome=None, backend: str = "tensorflow") -> list[Outcome]:
    """Grade every variant on ``backend``; ``grade`` is ``grade_exercise`` (replaceable in
    tests)."""
    cache = ReferenceCache()
    graded: dict[tuple, Future] = {}  # (stem, text, checks) -> the entry: graded once
    lock = threading.Lock()

    def entry_for(variant: Variant, only: tuple[str, ...]) -> dict:
        key = (variant.stem, variant.text, only)
        with lock:
            future, owner = graded.get(key), key not in graded
            if owner:
                future = graded[key] = Future()
        if not owner:
            return future.result()
        try:
            with tempfile.TemporaryDirectory(prefix="course-quality-") as folder:
                path = Path(folder) / f"{variant.stem}.py"
                path.write_text(variant.text, encoding="utf-8")
                extra = {} if backend == "tensorflow" else {"backend": backend}
                future.set_result(grade(exercise_spec(variant.stem), path, seed, cache=cache,
                                        only=list(only) or None, **extra))
        except BaseException as exc:
            future.set_exception(exc)
        return future.result()

    def one(variant: Variant) -> Outcome | None:
        exercise = exercise_spec(variant.stem)
        if backend not in variant.backends or (variant.checks and all(
                exercise.check(n).skipped_on(backend) for n in variant.checks)):
            return None  # its mistake cannot show on this backend (a sparse gradient on JAX)
        started = time.monotonic()
        only = variant.checks if quick and variant.kind != Kind.CORRECT else ()
        entry = entry_for(variant, only)
        outcome = Outcome(variant, entry["score"], entry["max_score"],
                          [c["name"] for c in entry["checks"] if not c["passed"]],
                          time.monotonic() - started, tensorflow_only(variant, backend))
        if on_outcome:
            on_outcome(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return [o for o in pool.map(one, variants) if o is not None]


def summary(outcomes: list[Outcome]) -> dict:
    """The rates, what was misjudged, and the counts per chapter. Delegations count with the
    wrong variants: both must not pass."""
    wrong = [o for o in outcomes if not o.expected_to_pass]
    correct = [o for o in outcomes if o.expected_to_pass]
    false_pass = [o for o in wrong if o.misjudged]
    false_fail = [o for o in correct if o.misjudged]
    return {
        "wrong_variants": len(wrong),
        "delegations": sum(o.variant.kind == Kind.DELEGATION for o in wrong),
        "tensorflow_only": sum(o.tensorflow_only for o in wrong),
        "false_passes": len(false_pass),
        "false_pass_rate": len(false_pass) / len(wrong) if wrong else 0.0,
        "correct_implementations": len(correct), "false_fails": len(false_fail),
        "false_fail_rate": len(false_fail) / len(correct) if correct else 0.0,
        "misjudged": [{"chapter": o.variant.chapter, "name": o.variant.name,
                       "kind": o.variant.kind.value, "score": o.score, "max_score": o.max_score,
                       "failed_checks": o.failed}
                      for o in false_pass + false_fail],
        "per_chapter": {
            str(n): {"wrong": sum(o.variant.chapter == n for o in wrong),
                     "false_passes": sum(o.variant.chapter == n for o in false_pass),
                     "correct": sum(o.variant.chapter == n for o in correct),
                     "false_fails": sum(o.variant.chapter == n for o in false_fail)}
            for n in sorted({o.variant.chapter for o in outcomes})},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m variants.quality",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapter", type=int, action="append", help="only this chapter (repeatable)")
    parser.add_argument("--quick", action="store_true",
                        help="grade wrong variants and delegations only on the checks they name")
    parser.add_argument("--jobs", type=int, default=2, help="variants graded at once (default 2)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json", help="also write the summary to this file")
    parser.add_argument("--backend", default="tensorflow", choices=("tensorflow", "jax", "torch"),
                        help="the Keras backend to grade on (default tensorflow)")
    args = parser.parse_args(argv)
    variants = corpus(args.chapter)
    if not variants:
        print("no variants for the chapters asked for", file=sys.stderr)
        return 2
    counts = {kind: sum(v.kind == kind for v in variants) for kind in Kind}
    print(f"grading {len(variants)} variants ({counts[Kind.WRONG]} wrong, "
          f"{counts[Kind.DELEGATION]} delegations, {counts[Kind.CORRECT]} correct) with seed "
          f"{args.seed} on {args.backend}{' (quick)' if args.quick else ''}")
    started = time.monotonic()

    def show(o: Outcome) -> None:
        verdict = "MISJUDGED" if o.misjudged else "ok"
        kind = "tf-only" if o.tensorflow_only else o.variant.kind.value
        print(f"  ch{o.variant.chapter:02d} {kind:10s} {verdict:9s} {o.score:5.2f}/"
              f"{o.max_score:5.2f}  {o.variant.name}  ({o.seconds:.0f} s)", flush=True)

    outcomes = measure(variants, quick=args.quick, jobs=args.jobs, seed=args.seed, on_outcome=show,
                       backend=args.backend)
    result = summary(outcomes)
    result.update(seconds=round(time.monotonic() - started, 1), quick=args.quick, seed=args.seed,
                  backend=args.backend)
    print(f"false-pass rate: {result['false_passes']}/{result['wrong_variants']} wrong variants "
          f"and delegations got through ({100 * result['false_pass_rate']:.1f}%)")
    print(f"false-fail rate: {result['false_fails']}/{result['correct_implementations']} correct "
          f"implementations below full marks ({100 * result['false_fail_rate']:.1f}%)")
    for chapter, row in result["per_chapter"].items():
        print(f"  ch{int(chapter):02d}: {row['wrong']} wrong or delegating ({row['false_passes']} got "
              f"through), {row['correct']} correct ({row['false_fails']} failed)")
    print(f"{result['seconds']:.0f} s")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 1 if result["false_passes"] or result["false_fails"] else 0


if __name__ == "__main__":
    sys.exit(main())
