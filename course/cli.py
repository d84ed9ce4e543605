"""The ``course`` command: list, run, claims, grade, release, grade-class, gradescope, doctor,
explore.

Exit codes: 0 when the command did its job (``grade`` exits 0 whatever the score), 2 for bad
arguments or an unreadable folder, 1 when a chapter run or a release check fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from rich.console import Console  # noqa: E402

from course.catalog import CHAPTERS, chapter as find_chapter  # noqa: E402

console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> int:
    # soft_wrap: a long path stays on one line (copyable, greppable); escape: a "[...]" in a
    # path or an exception's text is printed as is, not read as rich markup
    from rich.markup import escape

    err_console.print(f"[red]error:[/] {escape(message)}", soft_wrap=True, highlight=False)
    return code


# ---------------------------------------------------------------------------------------- list

def _exercise_state(path: Path) -> str:
    """How far the learner is, from the source text alone (nothing is run)."""
    from course.release import progress

    if not path.is_file():
        return "missing"
    found = progress(path.read_text(encoding="utf-8", errors="replace"), path.name)
    if found is None:
        return "written"
    left, total = found
    if left == total:
        return "not started"
    return "all parts written" if left == 0 else f"started: {left} of {total} parts left"


def cmd_list(args) -> int:
    from rich.table import Table

    from course.grader.grade import exercise_spec

    folder = Path(args.dir)
    table = Table(title=f"Chapters (exercises in {folder})")
    for column in ("#", "chapter", "you build", "exercise", "graded"):
        table.add_column(column)
    for c in CHAPTERS:
        table.add_row(str(c.number), f"{c.title}\n[dim]{c.mechanic}[/]", ", ".join(c.exports),
                      _exercise_state(folder / f"{c.stem}.py"),
                      "yes" if exercise_spec(c.stem) else "not yet")
    console.print(table)
    console.print("Run a chapter: [bold]course run N[/] (add --quick for a short run). "
                  "Grade yourself: [bold]course grade[/].")
    return 0


# ----------------------------------------------------------------------------------------- run

def _backend(args) -> str:
    """The Keras backend asked for (``--backend``, else ``KERAS_BACKEND``, else TensorFlow),
    checked to be installed: ``BackendError`` otherwise."""
    from course import backends

    return backends.resolve(getattr(args, "backend", None))


def _chapter_command(info, *, quick=False, out=None, mine=False, dataset=None,
                     backend: str = "tensorflow") -> tuple[list, dict]:
    """The chapter's command line and its environment: Keras on ``backend`` (it picks its
    backend once, at import, so the choice is the child process's environment)."""
    from course import backends

    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", f"chapters.{info.stem}"]
    if quick:
        command.append("--quick")
    if out:
        command += ["--out", str(Path(out).resolve())]
    if mine:
        command.append("--mine")
    if dataset:
        command += ["--dataset", dataset]
    env = backends.environment(backend)
    env["PYTHONPATH"] = str(root) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return command, env


def _chapter_script(info) -> Path:
    return Path(__file__).resolve().parents[1] / "chapters" / f"{info.stem}.py"


def cmd_run(args) -> int:
    try:
        info = find_chapter(args.chapter)
        backend = _backend(args)  # a BackendError is a ValueError
    except ValueError as exc:
        return _fail(str(exc))
    if not _chapter_script(info).is_file():
        return _fail(f"chapter {info.number} ({info.stem}) has no script yet")
    command, env = _chapter_command(info, quick=args.quick, out=args.out, mine=args.mine,
                                    dataset=args.dataset, backend=backend)
    # Keep the learner's working directory (plots land in ./out by default); the chapter's stderr
    # goes through a filter that drops TensorFlow's start-up banner lines, nothing else.
    proc = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    from course.grader.runner import _is_noise

    for raw in proc.stderr:
        line = raw.decode("utf-8", "replace")
        if not _is_noise(line):
            sys.stderr.write(line)
            sys.stderr.flush()
    return proc.wait()


# -------------------------------------------------------------------------------------- claims

def cmd_claims(args) -> int:
    from rich.markup import escape
    from rich.table import Table

    from course import claims

    root = Path(args.out)
    try:
        chosen = [find_chapter(c) for c in args.chapter] if args.chapter else list(CHAPTERS)
        backend = _backend(args) if args.run else None
    except ValueError as exc:
        return _fail(str(exc))
    if args.run:
        todo = []
        for info in chosen:
            run = claims.load_run(claims.claims_file(root, info.stem))
            why = claims.stale_reason(run, _chapter_script(info), quick_ok=args.quick)
            # a run from before backends were recorded ran on TensorFlow
            recorded = (run or {}).get("backend", "tensorflow")
            if not why and recorded != backend:
                why = f"recorded on the {recorded} backend, not {backend}"
            if why:
                todo.append((info, why))
        if todo and _run_chapters(todo, root, args.quick, backend) != 0:
            return 1
        if not todo:
            console.print("Every chapter's claims are recorded and up to date.")
    rows = [r for r in claims.gather(root) if r["chapter"] in {c.number for c in chosen}]
    table = Table(title=f"The source documents' claims, as measured (runs in {root})",
                  show_lines=True)
    for name, style in (("#", "bold"), ("claim", None), ("verdict", None), ("measured", None)):
        table.add_column(name, style=style, overflow="fold")
    colours = {"consistent with our run": "green", "not what we measured": "red",
               "inconclusive at this size": "yellow"}
    for r in rows:
        colour = colours.get(r["verdict"], "dim")
        verdict = f"[{colour}]{escape(r['verdict'])}[/]" + (f"\n[dim]{r['mode']} run[/]"
                                                           if r["mode"] else "")
        if r["reason"]:
            verdict += f"\n[dim]{escape(r['reason'])}[/]"
        table.add_row(str(r["chapter"]), f"{escape(r['claim'])}\n[dim]{escape(r['source'])}, "
                      f"{escape(r['section'])}[/]", verdict, escape(r["measured"]))
    console.print(table)
    counts = {}
    for r in rows:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    console.print(", ".join(f"{n} {v}" for v, n in counts.items()))
    if args.markdown:
        Path(args.markdown).write_text(claims.to_markdown(rows), encoding="utf-8")
        console.print(f"wrote {args.markdown}")
    if args.csv:
        Path(args.csv).write_text(claims.to_csv(rows), encoding="utf-8")
        console.print(f"wrote {args.csv}")
    return 0


def _run_chapters(todo: list, root: Path, quick: bool, backend: str = "tensorflow") -> int:
    """Run the chapters in ``todo`` one after the other on Keras's ``backend``, each writing
    its log next to its plots, with a progress bar and the expected time up front."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from course.claims import expected_minutes

    minutes = [expected_minutes(info.number, quick) for info, _ in todo]
    console.print(f"Running {len(todo)} chapter(s) ({'quick' if quick else 'full'} runs on "
                  f"Keras's {backend} backend): about "
                  f"{sum(minutes):.0f} minute(s) on a 2-core CPU, less on a faster machine.")
    for (info, why), m in zip(todo, minutes):
        console.print(f"  chapter {info.number} ({info.stem}): {why}; about {m:.0f} min")
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  console=console) as progress:
        overall = progress.add_task("chapters", total=sum(minutes))
        for (info, _), m in zip(todo, minutes):
            progress.update(overall, description=f"chapter {info.number}: {info.title}")
            out = root / info.stem
            out.mkdir(parents=True, exist_ok=True)
            command, env = _chapter_command(info, quick=quick, out=out, backend=backend)
            with open(out / "run.log", "w", encoding="utf-8") as log:
                code = subprocess.run(command, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
            progress.advance(overall, m)
            if code != 0:
                return _fail(f"chapter {info.number} failed (exit {code}); its output is in "
                             f"{out / 'run.log'}", 1)
    return 0


# --------------------------------------------------------------------------------------- grade

def _one_file(target: str | None, chapters: list[str] | None) -> tuple[str | None, list[str] | None]:
    """``course grade exercises/ch06_adam.py`` grades that one file: its folder, its chapter."""
    from course.grader.grade import GradingError, exercise_spec, gradable_chapters, select_exercises

    path = Path(target) if target else None
    if path is None or not path.is_file():
        return target, chapters
    if path.suffix != ".py" or exercise_spec(path.stem) is None:
        stems = ", ".join(f"{e.stem}.py" for e in gradable_chapters())
        raise GradingError(f"{path} is not one of the exercise files ({stems}): give the folder "
                           "that holds them, or one of them by its own name")
    if chapters and {e.stem for e in select_exercises(chapters)} != {path.stem}:
        raise GradingError(f"--chapter {' '.join(chapters)} does not match {path.name}; give the "
                           "folder to grade other chapters")
    return str(path.parent), [path.stem]


def cmd_grade(args) -> int:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from course.grader.grade import GradingError, grade_submission, select_exercises
    from course.grader.report import gradescope_results, print_report, write_json

    try:
        args.dir, args.chapter = _one_file(args.dir, args.chapter)
        select_exercises(args.chapter)
    except GradingError as exc:
        return _fail(str(exc))
    if args.timeout <= 0:
        return _fail("--timeout must be a positive number of seconds")
    if args.budget is not None and args.budget <= 0:
        return _fail("--budget must be a positive number of seconds")
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as progress:
        task = progress.add_task("starting", total=None)

        def on_exercise(exercise, state):
            if state == "start":
                progress.update(task, description=f"grading {exercise.stem}")

        try:
            report = grade_submission(args.dir, args.chapter, args.seed, device=args.device,
                                      timeout=args.timeout, on_exercise=on_exercise,
                                      only=args.check, budget=args.budget, backend=args.backend)
        except GradingError as exc:
            return _fail(str(exc))
    print_report(report, console, verbose=args.verbose)
    try:
        if args.json:
            write_json(report, args.json)
            console.print(f"wrote {args.json}")
        if args.gradescope:
            write_json(gradescope_results(report), args.gradescope)
            console.print(f"wrote {args.gradescope}")
    except OSError as exc:
        return _fail(f"could not write the report: {exc}")
    return 0


# ------------------------------------------------------------------------------------- release

def cmd_release(args) -> int:
    from course.release import ReleaseError, release, student_bundle

    try:
        if args.student:  # its exercises are generated from solutions/ as it is written
            target = student_bundle(Path(args.student))
            console.print(f"wrote a student bundle without solutions to {target}")
            return 0
        changed = release(check=args.check)
    except ReleaseError as exc:
        return _fail(str(exc), 1)
    if args.check:
        if changed:
            return _fail("exercises/ differs from what `course release` generates from solutions/ "
                         f"({', '.join(changed)}); run `course release` and commit the result", 1)
        console.print("exercises/ is up to date with solutions/")
        return 0
    console.print(f"regenerated exercises/ ({', '.join(changed) if changed else 'no changes'})")
    return 0


# ---------------------------------------------------------------------------------- grade-class

def cmd_grade_class(args) -> int:
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)
    from rich.table import Table

    from course.grader.classroom import ClassGradingError, grade_class

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err_console,
                  transient=True) as progress:
        task = progress.add_task("grading", total=None)
        in_flight: set[str] = set()

        def on_student(event, name, report):
            if event == "plan":
                progress.update(task, total=report["total"], completed=report["skipped"])
                if report["skipped"]:
                    progress.console.print(f"{report['skipped']} student(s) unchanged since the "
                                           "last run: kept (--force grades them again)")
                return
            if event == "start":
                in_flight.add(name)
            else:
                in_flight.discard(name)
                progress.advance(task)
                progress.console.print(f"  {name}: {report['score']:.2f}/{report['max_score']:.2f}"
                                       f"  {report['status']}")
            progress.update(task, description=f"grading {', '.join(sorted(in_flight)) or '...'}")

        try:
            result = grade_class(args.submissions, args.out, jobs=args.jobs, force=args.force,
                                 seed=args.seed, chapters=args.chapter, only=args.check,
                                 device=args.device, timeout=args.timeout, budget=args.budget,
                                 on_student=on_student, backend=args.backend)
        except ClassGradingError as exc:
            return _fail(str(exc))
    statuses = {}
    for report in result.reports.values():
        statuses[report["status"]] = statuses.get(report["status"], 0) + 1
    totals = [r["score"] for r in result.reports.values()]
    chosen = "as asked" if (args.chapter or args.check) else "the ones handed in"
    console.print(f"chapters graded ({chosen}): {', '.join(result.chapters)}", soft_wrap=True)
    console.print(f"[bold]{len(result.reports)} students[/] (seed {result.seed}; graded "
                  f"{len(result.graded)}, kept {len(result.skipped)}; {result.seconds:.0f} s); "
                  f"mean total {sum(totals) / max(len(totals), 1):.2f}; "
                  + ", ".join(f"{n} {status}" for status, n in sorted(statuses.items())))
    table = Table(title="Checks the class passed least (all of them in check_pass_rates.csv)")
    for column in ("exercise", "check", "passed", "most common known mistake"):
        table.add_column(column)
    for row in result.pass_rates[:12]:
        mistake = (f"{row['most_common_mistake']} ({row['students_with_that_mistake']})"
                   if row["most_common_mistake"] else "")
        table.add_row(row["exercise"], row["check"],
                      f"{row['passed']}/{row['students']} ({100 * row['pass_rate']:.0f}%)", mistake)
    console.print(table)
    console.print(f"wrote {result.out / 'grades.csv'}, {result.out / 'check_pass_rates.csv'} and "
                  f"one report per student in {result.out / 'students'}")
    return 0


# ---------------------------------------------------------------------------------- gradescope

def cmd_gradescope(args) -> int:
    from course.grader.grade import GradingError
    from course.gradescope import build_autograder
    from course.release import ReleaseError

    try:
        path = build_autograder(args.out, chapters=args.chapter, only=args.check,
                                timeout=args.timeout, seed=args.seed, budget=args.budget,
                                backend=args.backend)
    except (GradingError, ReleaseError, OSError) as exc:
        return _fail(str(exc))
    console.print(f"wrote {path}: upload it as the Gradescope assignment's autograder "
                  "(setup.sh installs the course; run_autograder grades each submission)")
    return 0


# -------------------------------------------------------------------------------------- doctor

def cmd_doctor(args) -> int:
    import platform

    from rich.table import Table

    table = Table(title="course doctor")
    table.add_column("what")
    table.add_column("found")
    table.add_row("python", platform.python_version())
    try:
        import tensorflow as tf

        import keras
    except ImportError as exc:
        table.add_row("tensorflow / keras", f"[red]not importable: {exc}[/]")
        console.print(table)
        return 1
    table.add_row("tensorflow", tf.__version__)
    table.add_row("keras", f"{keras.__version__} (backend {keras.backend.backend()})")
    gpus = tf.config.list_physical_devices("GPU")
    table.add_row("devices", ", ".join(d.name for d in tf.config.list_physical_devices()) or "none")
    table.add_row("GPU", f"{len(gpus)} visible" if gpus else "none (the course runs on the CPU; "
                  "mixed-precision timings need a GPU)")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        cc = details.get("compute_capability")
        fast = cc is not None and cc >= (7, 0)
        table.add_row("mixed precision", f"compute capability {cc}: "
                      + ("float16 Tensor Cores available" if fast else "no fast float16"))
    else:
        table.add_row("mixed precision", "mixed_float16 works on the CPU for the numerical "
                      "lessons, without a speed-up")
    try:
        import tensorflow_datasets as tfds

        table.add_row("tensorflow-datasets", tfds.__version__)
    except ImportError as exc:
        table.add_row("tensorflow-datasets", f"[red]{exc}[/]")
    for name in ("matplotlib", "sklearn", "rich"):
        try:
            module = __import__(name)
            table.add_row(name, getattr(module, "__version__", "installed"))
        except ImportError as exc:
            table.add_row(name, f"[red]{exc}[/]")
    console.print(table)
    console.print(_backends_table())
    return 0


def _backends_table():
    """Keras's three backends: installed or not (with the command that installs one), and for
    each installed one, its version and the accelerators it sees, asked of a process running
    Keras on it (the backend's own device query)."""
    from concurrent.futures import ThreadPoolExecutor

    from rich.table import Table

    from course import backends

    table = Table(title="Keras backends (course run / grade --backend NAME)")
    for column in ("backend", "version", "accelerators", "to install"):
        table.add_column(column)
    found = backends.available()
    with ThreadPoolExecutor(len(found) or 1) as pool:
        answers = dict(zip(found, pool.map(backends.probe, found)))
    default = backends.resolve() if os.environ.get("KERAS_BACKEND", "tensorflow") in found else ""
    for name in backends.BACKENDS:
        label = name + (" (default)" if name == default else "")
        if name not in answers:
            table.add_row(label, "[dim]not installed[/]", "", backends.INSTALL[name])
            continue
        info = answers[name]
        if "error" in info:
            table.add_row(label, f"[red]does not start: {info['error']}[/]", "", "")
            continue
        gpus = ", ".join(info["accelerators"]) or "none (CPU only)"
        table.add_row(label, info["version"], gpus, "")
    return table


# ------------------------------------------------------------------------------------- explore

def cmd_explore(args) -> int:
    """Serve the explorer on localhost until Ctrl-C."""
    import webbrowser

    from course.explore import sandbox
    from course.explore.server import make_server, warm_up

    if args.build is not None:
        return _build_explorer(Path(args.build))
    if not 0 <= args.port <= 65535:
        return _fail(f"--port must be between 0 and 65535, got {args.port}")
    try:
        server = make_server(args.host, args.port)
    except OSError as exc:
        hint = " (try another --port, or --port 0 for any free one)" if args.port else ""
        return _fail(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}{hint}")
    try:
        with console.status("loading TensorFlow and tracing the first path ..."):
            warm_up()
        console.print(f"The explorer is at [bold]{server.url}[/] (Ctrl-C stops it).",
                      highlight=False)
        if not args.no_browser:
            webbrowser.open(server.url)
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("The explorer stopped.")
        return 0
    finally:
        server.server_close()
        sandbox.stop()
    return 0


def _build_explorer(folder: Path) -> int:
    """``course explore --build DIR``: the static explorer, with what it wrote."""
    if folder.exists() and not folder.is_dir():
        return _fail(f"--build {folder}: not a folder")
    from course.explore.build import build

    with console.status("computing the answers on the grid ...") as status:
        result = build(folder, lambda i, n: status.update(f"computing the answers on the grid: {i}/{n}"))
    console.print(f"Wrote {result['files']} files, {result['bytes'] / 1e6:.1f} MB, to {folder} "
                  f"in {result['seconds']:.0f} s. Serve that folder with any static web server "
                  f"(e.g. python -m http.server -d {folder}).", highlight=False)
    return 0


# ---------------------------------------------------------------------------------------- main

TIMEOUT_HELP = ("the most seconds one check may take (default 60); a check may take 10 times "
                "what the Keras reference took for it, and at least 10 s, up to this")


BACKEND_CHOICES = ("tensorflow", "jax", "torch", "pytorch")
BACKEND_HELP = ("the Keras backend the checks run on, yours and the reference alike (default: "
                "KERAS_BACKEND, else tensorflow)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="course", description=(
        "A Keras 3 course on deep-learning optimization: run chapters, grade exercises."))
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="the chapters, and which exercises you have done")
    p.add_argument("--dir", default="exercises", help="your exercises folder (default ./exercises)")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("run", help="run a chapter script")
    p.add_argument("chapter", help="chapter number (1-8) or stem")
    p.add_argument("--quick", action="store_true", help="a short run (well under a minute)")
    p.add_argument("--out", help="folder for the plots")
    p.add_argument("--mine", action="store_true", help="use your exercises/ implementation")
    p.add_argument("--dataset", help="a TensorFlow Datasets name instead of the course data")
    p.add_argument("--backend", help="Keras's backend: tensorflow, jax or torch "
                   "(default: $KERAS_BACKEND, else tensorflow)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("claims", help="the source documents' claims as the chapters measured "
                                      "them (one table)")
    p.add_argument("--out", default="out", help="where the chapter runs write (default ./out)")
    p.add_argument("--run", action="store_true",
                   help="first run the chapters whose claims are missing or stale")
    p.add_argument("--quick", action="store_true",
                   help="with --run: quick runs (a full run is needed for a final verdict)")
    p.add_argument("--chapter", action="append", help="only this chapter (repeatable)")
    p.add_argument("--backend", help="with --run: Keras's backend for the chapters, tensorflow, "
                   "jax or torch (default: $KERAS_BACKEND, else tensorflow)")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    p.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    p.set_defaults(func=cmd_claims)

    p = sub.add_parser("grade", help="grade exercise files against the Keras references")
    p.add_argument("dir", nargs="?", default="exercises",
                   help="folder of exercise files (default ./exercises), or one exercise file to "
                   "grade it alone")
    p.add_argument("--chapter", action="append", help="grade only this chapter (repeatable)")
    p.add_argument("--check", action="append", metavar="NAME",
                   help="grade only this check, e.g. adam.trajectory (repeatable)")
    p.add_argument("--json", help="write the report as JSON to this file")
    p.add_argument("--gradescope", help="write Gradescope's results.json to this file")
    p.add_argument("--seed", type=int, help="seed for the randomized inputs (default: a new one, printed)")
    p.add_argument("--timeout", type=float, default=60.0, help=TIMEOUT_HELP)
    p.add_argument("--budget", type=float, metavar="S",
                   help="seconds for the whole submission; what is not graded by then is "
                        "reported as timed out (default: no budget)")
    p.add_argument("--device", choices=("cpu", "gpu"), default="auto",
                   help="where checks run (default: the GPU if TensorFlow sees one)")
    p.add_argument("--backend", choices=BACKEND_CHOICES, metavar="{tensorflow,jax,torch}",
                   help=BACKEND_HELP)
    p.add_argument("--verbose", "-v", action="store_true", help="show feedback for passed checks too")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser("release", help="regenerate exercises/ from solutions/ (instructors)")
    p.add_argument("--check", action="store_true", help="fail if exercises/ is out of date")
    p.add_argument("--student", metavar="DIR", help="write a student bundle without solutions to DIR")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("grade-class", help="grade a folder of student folders (instructors)")
    p.add_argument("submissions", help="a folder holding one folder per student")
    p.add_argument("--out", required=True, help="where the grades and reports go (resumable)")
    p.add_argument("--jobs", type=int, default=1, help="students graded at once (default 1)")
    p.add_argument("--force", action="store_true", help="grade again students already graded")
    p.add_argument("--chapter", action="append",
                   help="grade this chapter (repeatable; default: every chapter handed in)")
    p.add_argument("--check", action="append", metavar="NAME", help="grade only this check (repeatable)")
    p.add_argument("--seed", type=int, help="the class's seed (default: a new one, kept in --out)")
    p.add_argument("--timeout", type=float, default=60.0, help=TIMEOUT_HELP)
    p.add_argument("--budget", type=float, metavar="S",
                   help="seconds for each student; what is not graded by then is reported as "
                        "timed out (default: no budget)")
    p.add_argument("--backend", choices=BACKEND_CHOICES, metavar="{tensorflow,jax,torch}",
                   help=BACKEND_HELP)
    p.add_argument("--device", choices=("cpu", "gpu"), default="auto",
                   help="where checks run (default: the GPU if TensorFlow sees one)")
    p.set_defaults(func=cmd_grade_class)

    p = sub.add_parser("gradescope", help="build a Gradescope autograder zip (instructors)")
    p.add_argument("--out", required=True, help="the zip to write, e.g. autograder.zip")
    p.add_argument("--chapter", action="append", help="grade only this chapter (repeatable)")
    p.add_argument("--check", action="append", metavar="NAME", help="grade only this check (repeatable)")
    p.add_argument("--timeout", type=float, default=60.0, help=TIMEOUT_HELP)
    p.add_argument("--budget", type=float, metavar="S", default=None,
                   help="seconds for each submission, below the assignment's Gradescope timeout "
                        "(default 540: 9 of Gradescope's default 10 minutes)")
    p.add_argument("--backend", choices=BACKEND_CHOICES, metavar="{tensorflow,jax,torch}",
                   default="tensorflow",
                   help="the Keras backend Gradescope grades on (default tensorflow; setup.sh "
                        "installs its extra)")
    p.add_argument("--seed", type=int,
                   help="one seed for every submission (default: one per submission, from its id)")
    p.set_defaults(func=cmd_gradescope)

    p = sub.add_parser("doctor", help="versions, devices, GPU and mixed-precision support")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("explore", help="drag a slider, watch an optimizer move (a local web page)")
    p.add_argument("--port", type=int, default=8765, help="the port (default 8765; 0: any free port)")
    p.add_argument("--host", default="127.0.0.1",
                   help="the address to listen on (default 127.0.0.1: this computer only)")
    p.add_argument("--no-browser", action="store_true", help="print the address, open no browser")
    p.add_argument("--build", metavar="DIR",
                   help="write a static copy (the page and precomputed answers) to DIR, then exit")
    p.set_defaults(func=cmd_explore)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
