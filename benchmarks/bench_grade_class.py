"""Benchmark (not a test): ``course grade-class`` throughput, and what one worker costs.

    python benchmarks/bench_grade_class.py                  # 20 students, chapter 6, --jobs 1 and 2
    python benchmarks/bench_grade_class.py --students 8 --chapter 6 --chapter 5
    python benchmarks/bench_grade_class.py --no-fork        # also time --jobs 1 with the fork server off

The class: every third student hands in the untouched stub (identical files, as in a real class,
so the class run grades it once), the others a copy of the solution made distinct by a comment
(so each is really graded). Each run is a fresh ``course grade-class`` process into an empty
output folder, so it pays for everything: the fork server's TensorFlow import, the reference,
every student.

Then the per-worker overhead: a trivial check (the stub's ``adam.interface``, which raises at
once) graded in a fresh interpreter (process start + TensorFlow import) and in a worker forked
from the fork server, and TensorFlow's import time alone. The machine's load average is printed
with each number: on a shared machine, compare numbers taken together.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def make_class(folder: Path, students: int, stems: list[str]) -> None:
    for i in range(students):
        student = folder / f"student{i:02d}"
        student.mkdir(parents=True)
        for stem in stems:
            if i % 3 == 2:
                text = (ROOT / "exercises" / f"{stem}.py").read_text()
            else:
                text = (ROOT / "solutions" / f"{stem}.py").read_text() + f"\n# {student.name}\n"
            (student / f"{stem}.py").write_text(text)


def class_run(submissions: Path, out: Path, jobs: int, chapters: list[str], env: dict) -> float:
    command = [sys.executable, "-m", "course.cli", "grade-class", str(submissions), "--out", str(out),
               "--jobs", str(jobs), "--seed", "1", *(a for c in chapters for a in ("--chapter", c))]
    started = time.monotonic()
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"grade-class failed:\n{result.stdout}\n{result.stderr}")
    summary = [line for line in result.stdout.splitlines() if "students" in line][:1]
    print(f"    {' '.join(summary)}")
    return seconds


def worker_overhead(rounds: int) -> dict[str, float]:
    """Seconds to grade one trivial check: fresh interpreter vs forked worker."""
    from course.grader import runner

    stub = str(ROOT / "exercises" / "ch06_adam.py")
    out = {}
    for label, fork in (("fresh interpreter", False), ("forked from the server", True)):
        runner.FORKSERVER = fork
        runner.run_checks("ch06_adam", stub, ["adam.interface"], 1)  # starts the server if any
        times = []
        for _ in range(rounds):
            started = time.monotonic()
            report = runner.run_checks("ch06_adam", stub, ["adam.interface"], 1)
            times.append(time.monotonic() - started)
            assert report.outcomes["adam.interface"].status == "error", report.outcomes
        out[label] = statistics.median(times)
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "import tensorflow, keras"], check=True,
                   capture_output=True)
    out["import tensorflow + keras"] = time.monotonic() - started
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    out["bare interpreter start"] = time.monotonic() - started
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--chapter", action="append", help="chapters graded (default 6)")
    parser.add_argument("--jobs", type=int, action="append", help="--jobs values (default 1 and 2)")
    parser.add_argument("--no-fork", action="store_true",
                        help="also time --jobs 1 with the fork server off (COURSE_GRADER_FORKSERVER=0)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the overhead measurement")
    args = parser.parse_args(argv)
    chapters = args.chapter or ["6"]
    from course.catalog import chapter

    stems = [chapter(c).stem for c in chapters]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    runs = [(jobs, True) for jobs in (args.jobs or [1, 2])] + ([(1, False)] if args.no_fork else [])
    print(f"{os.cpu_count()} CPUs; class of {args.students} students "
          f"({args.students - args.students // 3} solutions, {args.students // 3} stubs), "
          f"chapters {', '.join(stems)}")
    with tempfile.TemporaryDirectory(prefix="bench-class-") as tmp:
        submissions = Path(tmp) / "submissions"
        make_class(submissions, args.students, stems)
        for n, (jobs, fork) in enumerate(runs):
            run_env = dict(env, COURSE_GRADER_FORKSERVER="1" if fork else "0")
            print(f"  --jobs {jobs}{'' if fork else ', fork server off'} (load {load()})")
            seconds = class_run(submissions, Path(tmp) / f"out{n}", jobs, chapters, run_env)
            print(f"    {seconds:.0f} s: {60 * args.students / seconds:.2f} students per minute")
    print(f"per-worker overhead, median of {args.rounds} (load {load()}):")
    for label, seconds in worker_overhead(args.rounds).items():
        print(f"  {label:28s} {seconds:6.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
