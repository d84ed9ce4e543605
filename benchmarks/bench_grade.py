"""Benchmark (not a test): how long ``course grade solutions/`` takes, all chapters and each alone.

    python benchmarks/bench_grade.py                       # this checkout: all seven, then each chapter
    python benchmarks/bench_grade.py --chapter 6 --repeat 3
    python benchmarks/bench_grade.py --tree /tmp/before    # compare with another checkout (before/after)

Each run is a fresh ``course grade`` process (so it pays for the fork server's TensorFlow import
as a user does) with a fixed seed. With several trees, their runs alternate (before, after,
before, after, ...), so that a change in the machine's speed during the benchmark falls on both:
on a shared 2-core machine the absolute seconds drift by tens of percent within minutes, and
only numbers taken together compare. The table gives the median per tree and the ratio to the
first tree. The machine-wide CPU seconds (from /proc/stat) are printed too: on two cores the
student's worker and the reference's run side by side, so wall time hides how much work it was.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _busy() -> float:
    """CPU seconds the whole machine has spent busy so far (Linux; 0 elsewhere)."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0.0
    user, nice, system = (int(x) for x in fields[:3])
    return (user + nice + system) / os.sysconf("SC_CLK_TCK")


def grade_once(tree: Path, chapters: list[str]) -> tuple[float, float]:
    command = [sys.executable, "-m", "course.cli", "grade", "solutions", "--seed", "1",
               *(a for c in chapters for a in ("--chapter", c))]
    env = dict(os.environ, PYTHONPATH=str(tree), TF_CPP_MIN_LOG_LEVEL="2")
    busy, started = _busy(), time.monotonic()
    result = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    seconds, cpu = time.monotonic() - started, _busy() - busy
    if result.returncode != 0 or "Total:" not in result.stdout:
        raise SystemExit(f"grading in {tree} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    total = [line for line in result.stdout.splitlines() if line.startswith("Total:")][0]
    if float(total.split()[1]) != float(total.split()[3]):
        raise SystemExit(f"the solutions in {tree} did not score full marks: {total}")
    return seconds, cpu


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", type=Path, default=[],
                        help="another checkout to time, alternating with this one (repeatable)")
    parser.add_argument("--chapter", action="append", default=[],
                        help="time only these chapters (default: all seven, then each alone)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per tree and case (median)")
    args = parser.parse_args(argv)
    trees = [t.resolve() for t in args.tree] + [ROOT]
    cases = [args.chapter] if args.chapter else [[]] + [[str(n)] for n in range(1, 8)]
    print(f"trees: {', '.join(map(str, trees))}; load {os.getloadavg()[0]:.1f}")
    print(f"{'case':<12}" + "".join(f"{t.name:>24}" for t in trees) + "   ratio (last/first)")
    for case in cases:
        runs: dict[Path, list[tuple[float, float]]] = {t: [] for t in trees}
        for _ in range(args.repeat):
            for tree in trees:
                runs[tree].append(grade_once(tree, case))
        medians = {t: (statistics.median(r[0] for r in runs[t]), statistics.median(r[1] for r in runs[t]))
                   for t in trees}
        label = "all seven" if not case else f"chapter {','.join(case)}"
        cells = "".join(f"{f'{w:.1f} s wall, {c:.0f} s cpu':>24}" for w, c in medians.values())
        ratio = medians[trees[-1]][0] / medians[trees[0]][0]
        print(f"{label:<12}{cells}   {ratio:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
