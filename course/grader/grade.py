"""Grade a folder of exercise files: static checks, then student and reference workers, then judging.

``grade_submission`` returns the report in the format ``course.grader.schema`` describes (a
plain dict).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import secrets
import threading
import time
from pathlib import Path

from course.catalog import CHAPTERS, chapter as find_chapter
from course.grader import runner, schema, static
from course.grader.compare import default_judge, mistake_from_error
from course.grader.outcomes import CheckStatus, ExerciseStatus
from course.grader.spec import Exercise, Mistake, Verdict

POINTS_PER_EXERCISE = 10.0


class GradingError(Exception):
    """Grading could not run at all (bad arguments, unreadable folder)."""


def exercise_spec(stem: str) -> Exercise | None:
    """The grader's checks for a chapter stem, or None if that chapter has none yet."""
    try:
        module = importlib.import_module(f"course.grader.{stem}")
    except ModuleNotFoundError as exc:
        if exc.name == f"course.grader.{stem}":
            return None
        raise
    return module.EXERCISE


def gradable_chapters() -> list[Exercise]:
    return [spec for spec in (exercise_spec(c.stem) for c in CHAPTERS) if spec is not None]


def new_seed() -> int:
    return secrets.randbelow(10**6)


# A student's check may take CHECK_TIME_FACTOR times what the reference took for it, at least
# CHECK_TIME_FLOOR seconds and at most the grading's --timeout: a hang costs seconds, not a minute,
# while honest code that is several times slower than Keras's still passes.
CHECK_TIME_FACTOR = 10.0
CHECK_TIME_FLOOR = 10.0
IMPORT_TIME_LIMIT = 20.0  # importing a student's file (TensorFlow is imported already)


class _Computation:
    """One reference worker run for some checks, shared by every grading that waits on them."""

    def __init__(self):
        self.done = threading.Event()
        self.cancel = threading.Event()
        self.report: runner.WorkerReport | None = None
        self.failure = ""  # why no report came back
        self.users = 0
        self.seconds: dict[str, float] = {}  # each check's time, as soon as it is known


class ReferenceCache:
    """Reference outputs per (exercise, seed, device, check), each computed once, in a worker with
    no student code. Only the checks asked for are computed: grading two checks of an exercise
    does not pay for the reference of all twenty.

    ``request`` starts the computation in the background and returns a ticket: a grading runs
    the student's checks meanwhile, then takes the ``result`` or ``release``s the ticket when no
    check of the student's ran far enough to be compared (a blank exercise). A computation that
    every ticket has released before it finished is stopped and forgotten, so grading a folder
    of untouched stubs does not wait for seven references."""

    def __init__(self):
        self._lock = threading.Lock()
        self._runs: dict[tuple, _Computation] = {}  # (stem, seed, device, backend, check) -> run

    def request(self, exercise: Exercise, seed: int, device: str, timeout: float,
                memory_limit: int, backend: str = "tensorflow") -> "ReferenceTicket":
        names = [c.name for c in exercise.checks if c.needs_reference]
        fresh = _Computation()
        runs: dict[str, _Computation] = {}
        with self._lock:
            for name in names:
                key = (exercise.stem, seed, device, backend, name)
                runs[name] = self._runs.setdefault(key, fresh)
            for computation in set(runs.values()):
                computation.users += 1
        mine = [name for name, computation in runs.items() if computation is fresh]
        if mine:  # the checks nobody has computed yet: one worker for all of them
            threading.Thread(target=self._compute, name=f"reference-{exercise.stem}",
                             args=(fresh, exercise.stem, mine, seed, device, timeout,
                                   memory_limit, backend)).start()
        return ReferenceTicket(self, exercise.stem, runs)

    def _compute(self, computation: _Computation, stem: str, names: list[str], seed: int,
                 device: str, timeout: float, memory_limit: int, backend: str) -> None:
        def record(name: str, outcome: runner.CheckOutcome) -> None:
            computation.seconds[name] = outcome.seconds

        try:
            computation.report = runner.run_checks(
                stem, None, names, seed, device=device, timeout=max(timeout, 120.0) * 2,
                memory_limit=max(memory_limit, 8 * 1024**3), cancel=computation.cancel,
                on_outcome=record, backend=backend)
        except Exception as exc:  # noqa: BLE001 - reported by every ticket that waits on it
            computation.failure = f"{type(exc).__name__}: {exc}"
        finally:
            computation.done.set()

    def _release(self, computation: _Computation) -> None:
        with self._lock:
            computation.users -= 1
            if computation.users or computation.done.is_set():
                return
            computation.cancel.set()  # nobody wants it any more: stop the worker, forget it
            for key in [k for k, c in self._runs.items() if c is computation]:
                del self._runs[key]
        computation.done.wait()  # the worker is killed within a fraction of a second


class ReferenceTicket:
    """A grading's claim on the reference outputs of one exercise's checks."""

    def __init__(self, cache: ReferenceCache, stem: str, runs: dict[str, _Computation]):
        self._cache, self._stem, self._runs = cache, stem, runs
        self._held = set(runs.values())

    def wait(self, deadline: float | None = None) -> None:
        """Wait until every check's reference is computed (or ``deadline`` passes)."""
        for computation in set(self._runs.values()):
            computation.done.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def seconds(self, name: str) -> float | None:
        """How long the reference took for a check, once it has run it."""
        computation = self._runs.get(name)
        return computation.seconds.get(name) if computation else None

    def result(self, deadline: float | None = None) -> runner.WorkerReport:
        """Wait for every check's reference; one report with all of them. A check whose
        reference is not done by ``deadline`` (monotonic) is ``not_run`` (budget spent)."""
        merged = runner.WorkerReport()
        for name, computation in self._runs.items():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not computation.done.wait(left):
                merged.outcomes[name] = runner.CheckOutcome(CheckStatus.NOT_RUN, message=runner.BUDGET_SPENT)
                continue
            report = computation.report
            if report is None:
                raise GradingError(f"computing the reference for {self._stem} failed: "
                                   f"{computation.failure}")
            merged.outcomes[name] = report.outcomes.get(name) or runner.CheckOutcome(
                CheckStatus.NOT_RUN, message=report.import_message or "not run")
            merged.device = merged.device or report.device
            merged.backend = merged.backend or report.backend
            merged.versions = merged.versions or report.versions
        return merged

    def release(self) -> None:
        """This grading needs no more of it (idempotent)."""
        while self._held:
            self._cache._release(self._held.pop())


_DEFAULT_CACHE = ReferenceCache()


def _check_entry(check, max_score: float, verdict: Verdict | None, *, status: CheckStatus | None,
                 seconds: float,
                 feedback: str = "", hint: str | None = None, mistake: Mistake | None = None,
                 detail: str = "", exception: str | None = None) -> dict:
    if verdict is not None:
        credit = verdict.credit if verdict.credit is not None else (1.0 if verdict.passed else 0.0)
        feedback, hint, mistake = verdict.feedback, verdict.hint, verdict.mistake
        detail = verdict.detail
        passed = verdict.passed
        status = CheckStatus.PASSED if passed else CheckStatus.FAILED
    else:
        credit, passed = 0.0, False
    return {"name": check.name, "description": check.description,
            "score": round(max_score * credit, 4), "max_score": round(max_score, 4),
            "passed": passed, "status": status, "feedback": feedback, "hint": hint,
            "mistake": mistake.as_data() if mistake else None, "detail": detail or feedback,
            "exception": exception, "seconds": round(seconds, 2)}


def component_of(check: str, exports: tuple[str, ...]) -> str:
    """The exported name a check belongs to: ``adamw.fit`` -> AdamW, ``minmax.adapt`` ->
    MinMaxScaling, ``bn.gradients`` -> BatchNormalization (its capitals); else the prefix."""
    prefix = check.split(".", 1)[0]
    for test in (lambda n: n.lower() == prefix, lambda n: n.lower().startswith(prefix),
                 lambda n: "".join(c for c in n if c.isupper()).lower() == prefix):
        matches = [name for name in exports if test(name)]
        if len(matches) == 1:
            return matches[0]
    return prefix


def tensorflow_only_mistake(component: str, calls: list[tuple[int, str]], backend: str) -> Mistake:
    """The known mistake of a component that calls TensorFlow directly, with the keras.ops calls
    to use instead (each TensorFlow function once, at its first line)."""
    first: dict[str, int] = {}
    for line, call in calls:
        first.setdefault(call, line)
    advice = "; ".join(f"{call} (line {line}) -> {static.keras_ops_for(call)}"
                       for call, line in list(first.items())[:6])
    return Mistake(
        "runs on TensorFlow only",
        f"{component} calls TensorFlow directly, which works on the tensorflow backend only "
        f"(on {backend} a TensorFlow call gets this backend's arrays and breaks compiled "
        f"training): {advice}. keras.ops runs on every backend.", id="tensorflow_only")


def _tensorflow_only(checks: list[dict], calls: dict[str, list[tuple[int, str]]],
                     exports: tuple[str, ...], backend: str) -> None:
    """On a backend other than TensorFlow, every check of a component that calls TensorFlow
    directly scores 0 with the hint: even one whose numbers came out right did so by passing
    this backend's arrays through TensorFlow, which compiled training does not survive."""
    for check in checks:
        component = component_of(check["name"], exports)
        if component not in calls or check["status"] not in (CheckStatus.PASSED, CheckStatus.FAILED,
                                                              CheckStatus.ERROR):
            continue
        mistake = tensorflow_only_mistake(component, calls[component], backend)
        if check["passed"]:
            check["feedback"] = (f"the numbers match, but {component} calls TensorFlow directly: "
                                 f"it runs on the tensorflow backend only")
            check["detail"] = check["feedback"]
        check.update(passed=False, score=0.0, hint=mistake.hint, mistake=mistake.as_data(),
                     status=CheckStatus.FAILED if check["status"] == CheckStatus.PASSED
                     else check["status"])


def mistake_summary(checks: list[dict], exports: tuple[str, ...] = ()) -> list[dict]:
    """The known mistakes behind an exercise's failed checks, most checks first: each with its
    id, name, hint (to be given once, not per check), the checks it explains and the exercise's
    components those checks belong to (a check ``adamw.fit`` belongs to ``AdamW``)."""
    found: dict[str, dict] = {}
    for check in checks:
        mistake = check.get("mistake")
        if not mistake or check["passed"]:
            continue
        row = found.setdefault(mistake["id"], {**mistake, "hint": check.get("hint"), "checks": [],
                                               "components": []})
        row["checks"].append(check["name"])
        component = component_of(check["name"], exports)
        if component not in row["components"]:
            row["components"].append(component)
    return sorted(found.values(), key=lambda m: -len(m["checks"]))


# exceptions that mean the machine's memory ran out, not that the student's code is wrong
_MEMORY_ERRORS = ("MemoryError", "ResourceExhaustedError")


def _error_feedback(error: dict) -> str:
    where = f" ({error['where']})" if error.get("where") else ""
    if error.get("type") == "NotImplementedError":
        return f"not implemented yet{where}"
    if error.get("type") == "SystemExit":
        return f"your code called sys.exit({error.get('message')}){where}"
    return f"{error.get('type')}: {error.get('message')}{where}"


def _outcome_feedback(outcome: runner.CheckOutcome) -> str:
    if outcome.status == CheckStatus.TIMEOUT:
        return outcome.message + " — an infinite loop, or far too slow?"
    if outcome.status == CheckStatus.MEMORY:
        return outcome.message
    if outcome.status == CheckStatus.CRASHED:
        return f"the Python process died during this check: {outcome.message}"
    return outcome.message or outcome.status


def grade_exercise(exercise: Exercise, path: Path, seed: int, *, device: str = "auto",
                   timeout: float = 60.0, memory_limit: int = runner.DEFAULT_MEMORY_LIMIT,
                   cache: ReferenceCache | None = None, only: list[str] | None = None,
                   hide: tuple[str, ...] = (), deadline: float | None = None,
                   backend: str = "tensorflow") -> dict:
    """Grade one exercise file on the Keras ``backend`` (both the student's worker and the
    reference's run on it; the reference is Keras's built-in on that same backend). A check with
    no counterpart on the backend is not run: it is listed under ``skipped`` with the reason, and
    the exercise's 10 points are shared among the checks that run. ``only`` restricts grading to
    the named checks (each keeps its share of the exercise's 10 points, so the maximum is then
    below 10). ``hide``: folders the
    student's code may not read (see ``runner.run_checks``). ``timeout`` is the most any check
    may take (see CHECK_TIME_FACTOR); ``deadline`` (a ``time.monotonic()`` instant) the moment
    grading stops whatever is left: the checks not done by then are reported as timed out.

    ``entry["grader_error"]`` is True when grading failed for a reason that is not the student's
    (the worker could not start, the reference could not be computed): worth grading again."""
    cache = cache or _DEFAULT_CACHE
    skipped = [{"name": c.name, "description": c.description, "reason": c.skipped_on(backend)}
               for c in exercise.checks if c.skipped_on(backend)]
    if skipped:
        exercise = dataclasses.replace(exercise, checks=tuple(
            c for c in exercise.checks if not c.skipped_on(backend)))
    total_weight = sum(c.weight for c in exercise.checks)
    max_scores = {c.name: POINTS_PER_EXERCISE * c.weight / total_weight for c in exercise.checks}
    if only:
        unknown = sorted(set(only) - set(max_scores) - {s["name"] for s in skipped})
        if unknown:
            raise GradingError(f"{exercise.stem} has no check named {', '.join(unknown)}; its checks "
                               f"are {', '.join(max_scores)}")
        exercise = dataclasses.replace(exercise, checks=tuple(c for c in exercise.checks if c.name in only))
    entry = {"chapter": exercise.chapter, "name": exercise.stem, "score": 0.0,
             "max_score": round(sum(max_scores[c.name] for c in exercise.checks), 4),
             "status": ExerciseStatus.GRADED, "message": "", "checks": [], "mistakes": [],
             "backend": backend, "skipped": [s for s in skipped if not only or s["name"] in only]}
    started = time.monotonic()

    def all_zero(status: CheckStatus, feedback: str, hint: str | None = None) -> dict:
        entry["checks"] = [_check_entry(c, max_scores[c.name], None, status=status, seconds=0.0,
                                        feedback=feedback, hint=hint) for c in exercise.checks]
        entry["message"] = feedback
        return entry

    if not path.is_file():
        entry["status"] = ExerciseStatus.MISSING
        return all_zero(CheckStatus.MISSING, f"no file {path.name} in {path.parent}")
    if deadline is not None and time.monotonic() >= deadline:
        entry["status"] = ExerciseStatus.TIMEOUT
        return all_zero(CheckStatus.TIMEOUT, runner.BUDGET_SPENT)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        entry["status"] = ExerciseStatus.ERROR
        return all_zero(CheckStatus.ERROR, f"cannot read {path}: {exc}")
    found = static.inspect_source(text, path.name, exercise.exports, exercise.forbidden,
                                  exercise.given, exercise.forbidden_options)
    if not found.ok:
        entry["status"] = (ExerciseStatus.ERROR if found.status == CheckStatus.ERROR
                           else ExerciseStatus.GRADED)
        return all_zero(found.status, found.message)
    if found.missing:  # partial credit: a check that needs a missing name fails on its own
        entry["message"] = (f"{path.name} does not define {', '.join(found.missing)} (the "
                            f"exercise expects {', '.join(exercise.exports)}): their checks score 0")

    names = [c.name for c in exercise.checks]
    caps = {c.name: timeout * c.timeout_factor for c in exercise.checks}
    # the reference is computed while the student's checks run (two processes, two cores), and
    # only waited for when one of the student's checks has outputs to compare with it
    ticket = cache.request(exercise, seed, device, timeout, memory_limit, backend)

    def check_limit(name: str) -> float:
        took = ticket.seconds(name)
        if took is None:  # the reference has not got there yet: the plain limit, for now
            return caps[name]
        return min(caps[name], max(CHECK_TIME_FLOOR, CHECK_TIME_FACTOR * took))

    limits = runner.Limits(check=check_limit, importing=min(timeout, IMPORT_TIME_LIMIT),
                           between=timeout, deadline=deadline)
    try:
        if not runner.concurrent_reference():
            ticket.wait(deadline)  # one worker at a time: the reference first, for its timings
        student = runner.run_checks(exercise.stem, str(path), names, seed, device=device,
                                    limits=limits, memory_limit=memory_limit, hide=hide,
                                    backend=backend)
        compared = student.import_status == CheckStatus.RAN and any(
            c.needs_reference and student.outcomes.get(c.name, runner.CheckOutcome("")).status
            == CheckStatus.RAN for c in exercise.checks)
        reference = ticket.result(deadline) if compared else None
    finally:
        ticket.release()
    entry["device"] = student.device or (reference.device if reference else "")
    ran_on = {r.backend for r in (student, reference) if r is not None and r.backend}
    if ran_on - {backend}:  # the workers' own word: a course bug if they disagree
        raise GradingError(f"grading on {backend} was asked for, but a worker ran Keras on "
                           f"{', '.join(sorted(ran_on - {backend}))}")

    if student.import_status != CheckStatus.RAN:
        error = student.import_error or {}
        if student.import_status == CheckStatus.DELEGATION:
            return all_zero(CheckStatus.DELEGATION, student.import_message)
        if student.import_status == CheckStatus.TIMEOUT:
            entry["status"] = ExerciseStatus.TIMEOUT
            return all_zero(CheckStatus.TIMEOUT, f"importing {path.name} did not finish: {student.import_message}")
        entry["status"] = ExerciseStatus.ERROR
        if error:
            return all_zero(CheckStatus.ERROR, f"importing {path.name} failed: {_error_feedback(error)}")
        no_worker = student.import_status == CheckStatus.GRADER_ERROR  # before any student code ran
        entry["grader_error"] = no_worker
        return all_zero(CheckStatus.GRADER_ERROR if no_worker else CheckStatus.ERROR,
                        f"could not run {path.name}: {student.import_message}"
                        + (f"\n{student.stderr_tail[-800:]}" if no_worker else ""))

    for check in exercise.checks:
        outcome = student.outcomes.get(check.name, runner.CheckOutcome(CheckStatus.NOT_RUN,
                                                                       message="not run"))
        max_score = max_scores[check.name]
        if outcome.status == CheckStatus.ERROR and (outcome.error or {}).get("type") in _MEMORY_ERRORS:
            entry["checks"].append(_check_entry(
                check, max_score, None, status=CheckStatus.MEMORY, seconds=outcome.seconds,
                feedback=f"out of memory: your code raised {_error_feedback(outcome.error)}"))
            continue
        if outcome.status == CheckStatus.ERROR:
            text_error = _error_feedback(outcome.error or {})
            absent = [n for n in found.missing if (outcome.error or {}).get("type") == "AttributeError"
                      and f"'{n}'" in (outcome.error or {}).get("message", "")]
            if absent:
                text_error = f"{absent[0]} is not defined in {path.name}"
            mistake = mistake_from_error(check, f"{(outcome.error or {}).get('type')}: "
                                                f"{(outcome.error or {}).get('message')}")
            hint = mistake.hint if mistake else None
            detail = text_error
            if mistake:
                text_error = f"{text_error} — this looks like a known mistake ({mistake.name})"
            entry["checks"].append(_check_entry(check, max_score, None, status=CheckStatus.ERROR,
                                                seconds=outcome.seconds, feedback=text_error,
                                                hint=hint, mistake=mistake, detail=detail,
                                                exception=(outcome.error or {}).get("type")))
            continue
        if outcome.message == runner.BUDGET_SPENT:
            entry["checks"].append(_check_entry(check, max_score, None, status=CheckStatus.TIMEOUT,
                                                seconds=outcome.seconds, feedback=outcome.message))
            continue
        if outcome.status != CheckStatus.RAN:
            entry["checks"].append(_check_entry(check, max_score, None, status=outcome.status,
                                                seconds=outcome.seconds,
                                                feedback=_outcome_feedback(outcome)))
            continue
        inputs = check.make_inputs(seed)
        ref_outputs = {}
        if check.needs_reference:
            ref = reference.outcomes.get(check.name)
            if ref is not None and ref.message == runner.BUDGET_SPENT:
                entry["checks"].append(_check_entry(check, max_score, None,
                                                    status=CheckStatus.TIMEOUT,
                                                    seconds=outcome.seconds,
                                                    feedback=runner.BUDGET_SPENT))
                continue
            if ref is None or ref.status != CheckStatus.RAN:
                entry["grader_error"] = True
                detail = (ref.error or {}).get("traceback") or (ref.message if ref else "not run")
                entry["checks"].append(_check_entry(
                    check, max_score, None, status=CheckStatus.GRADER_ERROR, seconds=outcome.seconds,
                    feedback=f"the grader could not compute the reference for this check "
                             f"(a course bug, please report it): {str(detail)[-600:]}"))
                continue
            ref_outputs = ref.outputs
        judge = check.judge or (lambda s, r, i, _c=check: default_judge(_c, s, r, i))
        try:
            verdict = judge(outcome.outputs or {}, ref_outputs, inputs)
        except Exception as exc:  # noqa: BLE001 - a malformed result is the student's failure
            verdict = Verdict(False, f"your results could not be compared: {type(exc).__name__}: {exc}")
        entry["checks"].append(_check_entry(check, max_score, verdict, status=None,
                                            seconds=outcome.seconds))
    if backend != "tensorflow":
        calls = static.tensorflow_calls(text, exercise.exports)
        for name in exercise.tensorflow_by_design:
            calls.pop(name, None)
        _tensorflow_only(entry["checks"], calls, exercise.exports, backend)
    entry["mistakes"] = mistake_summary(entry["checks"], exercise.exports)
    if any(c["feedback"] == runner.BUDGET_SPENT for c in entry["checks"]):
        entry["status"] = ExerciseStatus.TIMEOUT
        entry["message"] = entry["message"] or runner.BUDGET_SPENT
    # from the unrounded shares, so that full marks add up to exactly 10
    entry["score"] = round(sum(max_scores[c["name"]] * (c["score"] / c["max_score"])
                               for c in entry["checks"] if c["max_score"]), 4)
    entry["seconds"] = round(time.monotonic() - started, 2)
    return entry


def select_exercises(chapters: list[str] | None) -> list[Exercise]:
    if not chapters:
        return gradable_chapters()
    selected = []
    for key in chapters:
        try:
            info = find_chapter(key)
        except ValueError as exc:
            raise GradingError(str(exc)) from None
        spec = exercise_spec(info.stem)
        if spec is None:
            raise GradingError(f"chapter {info.number} ({info.stem}) has no graded exercise yet")
        if spec not in selected:
            selected.append(spec)
    return selected


def grading_plan(chapters: list[str] | None = None,
                 only: list[str] | None = None) -> list[tuple[Exercise, list[str] | None]]:
    """The exercises to grade, each with the names of its checks to grade (None: all of them)."""
    exercises = select_exercises(chapters)
    if not only:
        return [(exercise, None) for exercise in exercises]
    known = {c.name for e in exercises for c in e.checks}
    unknown = sorted(set(only) - known)
    if unknown:
        raise GradingError(f"no check named {', '.join(unknown)} in the selected chapters")
    plan = [(e, [c.name for c in e.checks if c.name in only]) for e in exercises]
    return [(e, names) for e, names in plan if names]


def grade_submission(directory: str | os.PathLike, chapters: list[str] | None = None,
                     seed: int | None = None, *, device: str = "auto", timeout: float = 60.0,
                     memory_limit: int = runner.DEFAULT_MEMORY_LIMIT,
                     cache: ReferenceCache | None = None, on_exercise=None,
                     only: list[str] | None = None, hide: tuple[str, ...] = (),
                     budget: float | None = None, backend: str | None = None) -> dict:
    """Grade every exercise file in ``directory``; the report as a dict (``schema.REPORT``).

    ``backend``: the Keras backend both sides run on (default: ``KERAS_BACKEND``, else
    TensorFlow); it must be installed here.

    ``budget``: seconds for the whole submission; what is not graded by then is reported as
    timed out, so that a report always comes back in time (a platform's own limit, say)."""
    folder = Path(directory)
    if not folder.is_dir():
        raise GradingError(f"{folder} is not a folder (expected a folder of exercise files such as "
                           f"{folder / 'ch06_adam.py'})")
    if not os.access(folder, os.R_OK | os.X_OK):
        raise GradingError(f"cannot read the folder {folder}")
    if device not in ("auto", "cpu", "gpu"):
        raise GradingError(f"--device must be cpu or gpu, not {device!r}")
    backend = resolve_backend(backend)
    plan = grading_plan(chapters, only)
    seed = new_seed() if seed is None else int(seed)
    started = time.monotonic()
    if budget is not None and budget <= 0:
        raise GradingError("--budget must be a positive number of seconds")
    deadline = None if budget is None else started + budget
    results = []
    for exercise, names in plan:
        if on_exercise:
            on_exercise(exercise, "start")
        result = grade_exercise(exercise, folder / f"{exercise.stem}.py", seed, device=device,
                                timeout=timeout, memory_limit=memory_limit, cache=cache, only=names,
                                hide=hide, deadline=deadline, backend=backend)
        results.append(result)
        if on_exercise:
            on_exercise(exercise, result)
    return submission_report(str(folder), seed, results, time.monotonic() - started)


def resolve_backend(name: str | None) -> str:
    """``course.backends.resolve`` with its error as a ``GradingError`` (a clear message)."""
    from course import backends

    try:
        return backends.resolve(name)
    except backends.BackendError as exc:
        raise GradingError(str(exc)) from None


def submission_report(submission: str, seed: int, results: list[dict], seconds: float) -> dict:
    """The report (``schema.REPORT``) from graded exercise entries (``grade_exercise``'s)."""
    devices = sorted({r["device"] for r in results if r.get("device")}) or ["CPU"]
    backends = [r["backend"] for r in results if r.get("backend")]
    return {
        "schema": schema.VERSION,
        "submission": submission,
        "seed": seed,
        "backend": backends[0] if backends else "tensorflow",
        "devices": devices,
        "score": round(sum(r["score"] for r in results), 4),
        "max_score": round(sum(r["max_score"] for r in results), 4),
        "seconds": round(seconds, 2),
        "exercises": results,
    }
