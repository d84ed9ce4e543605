"""Benchmark (not a test): grading the solutions inside a container limited like Gradescope's.

    sudo .venv/bin/python benchmarks/bench_container.py --chapter 8     # one chapter
    sudo .venv/bin/python benchmarks/bench_container.py                 # the whole course
    sudo .venv/bin/python benchmarks/bench_container.py --memory 1024 --cpus 1
    sudo .venv/bin/python benchmarks/bench_container.py --chapter 6 --backend jax

Runs ``course grade solutions`` (a fresh process, fixed seed) inside a new control group with
Gradescope's default limits (768 MB of memory, half a CPU), and prints the wall time, the
score and the group's peak memory use: the numbers behind the README's Gradescope settings
table. It needs root and a writable cgroup file system (v1 or v2), as the kernel enforces the
limits; elsewhere it says so and exits with status 2.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course.grader import container  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapter", action="append", default=[],
                        help="grade only these chapters (default: all)")
    parser.add_argument("--memory", type=int, default=768, help="memory limit in MB (768)")
    parser.add_argument("--cpus", type=float, default=0.5, help="CPU quota (0.5)")
    parser.add_argument("--budget", type=float, default=None, help="passed to course grade")
    parser.add_argument("--backend", default="tensorflow", help="passed to course grade")
    args = parser.parse_args(argv)
    try:
        group = container.limited_group(args.memory * 1024**2, args.cpus)
    except OSError as exc:
        print(exc, file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "course.cli", "grade", "solutions", "--seed", "1",
               *(a for c in args.chapter for a in ("--chapter", c)),
               *(("--budget", str(args.budget)) if args.budget else ()), "--backend", args.backend]
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    started = time.monotonic()
    try:
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                                preexec_fn=group.enter)
        seconds, peak = time.monotonic() - started, group.peak()
    finally:
        group.remove()
    total = [line for line in result.stdout.splitlines() if line.startswith("Total:")]
    what = ", ".join(f"chapter {c}" for c in args.chapter) or "all chapters"
    print(f"{what} on {args.backend} in {args.memory} MB / {args.cpus:g} CPU: {seconds:.0f} s, "
          f"peak {peak / 1024**2:.0f} MB" if peak else "peak unknown")
    print(total[0] if total else result.stdout[-2000:] + result.stderr[-2000:])
    return 0 if total and result.returncode == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
