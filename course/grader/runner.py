"""Run checks in a worker process and survive whatever the student's code does.

One worker runs an exercise's checks in order. If a check hangs, exhausts memory, or kills the
interpreter (``sys.exit`` is caught in the worker; ``os._exit`` or a segfault are not), the
parent records that check and starts a fresh worker for the checks after it; after
``GIVE_UP_AFTER`` such endings in one exercise the rest are not run (an infinite loop in
``update_step`` would otherwise cost a time limit per check). The worker's stdout and stderr are
drained into small ring buffers, so a flood of output costs some CPU but never memory or disk
and never a failure.

A student's worker runs confined (``course.grader.sandbox``): it reads a copy of the student's
file in its own temporary folder, may write only there, cannot read the course's repository
(its solutions), other workers' folders or the ``hide`` folders a caller names, and cannot start
processes. The reference worker runs no student code and is not confined.

Workers are forked from a server that has imported TensorFlow once (``forkserver``), which
takes the start of a worker from seconds to a fraction of one; where that is not possible, each
worker is a fresh interpreter.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from course import backends
from course.grader import wire
from course.grader.outcomes import CheckStatus

STARTUP_TIMEOUT = 180.0  # importing TensorFlow on a loaded 2-core machine
DEFAULT_MEMORY_LIMIT = 4 * 1024**3
GIVE_UP_AFTER = 3  # timeouts, memory blow-ups or crashes in one exercise before the rest are skipped
# COURSE_GRADER_SANDBOX=0 turns the confinement of student workers off (to debug the grader);
# COURSE_GRADER_FORKSERVER=0 starts every worker as a fresh interpreter instead of forking it.
SANDBOX = os.environ.get("COURSE_GRADER_SANDBOX", "1") != "0"
FORKSERVER = os.environ.get("COURSE_GRADER_FORKSERVER", "1") != "0"
# Near a container's memory limit a student's worker is stopped before the kernel's
# out-of-memory killer must step in: this much of the limit stays free.
CONTAINER_RESERVE = 0.06
_LIVE: set[subprocess.Popen] = set()  # running workers, so that an interrupted run can stop them
_LIVE_LOCK = threading.Lock()


@dataclass
class CheckOutcome:
    status: CheckStatus  # RAN, ERROR, TIMEOUT, MEMORY, CRASHED or NOT_RUN
    outputs: dict | None = None
    error: dict | None = None
    seconds: float = 0.0
    message: str = ""


@dataclass
class WorkerReport:
    """What running one exercise's checks in workers produced."""

    outcomes: dict[str, CheckOutcome] = field(default_factory=dict)
    # RAN (imported), ERROR, TIMEOUT, MEMORY, CRASHED, DELEGATION, or GRADER_ERROR (no worker)
    import_status: CheckStatus = CheckStatus.RAN
    import_error: dict | None = None
    import_message: str = ""
    missing: list[str] = field(default_factory=list)
    backend: str = ""
    device: str = ""
    versions: dict = field(default_factory=dict)
    stderr_tail: str = ""
    restarts: int = 0


class _Tail:
    """Drain a pipe in a thread, keeping only the last ``limit`` bytes."""

    def __init__(self, stream, limit: int = 8192):
        self.chunks: deque[bytes] = deque()
        self.size = 0
        self.limit = limit
        self.thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self.thread.start()

    def _drain(self, stream) -> None:
        try:
            while True:
                chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
                if not chunk:
                    break
                self.chunks.append(chunk)
                self.size += len(chunk)
                while self.size > self.limit and len(self.chunks) > 1:
                    self.size -= len(self.chunks.popleft())
        except (OSError, ValueError):
            pass

    def text(self) -> str:
        self.thread.join(timeout=1.0)
        return b"".join(self.chunks)[-self.limit:].decode("utf-8", "replace")


def _group_rss(pgid: int) -> int:
    """Resident memory of every process in a process group (Linux /proc; 0 elsewhere)."""
    total = 0
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            # after the command: state ppid pgrp ...; rss (pages) is field 24 of stat
            if int(fields[2]) != pgid:
                continue
            total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    return total


_CONTAINER: list = []  # [memory group or None], looked up once


def container_memory():
    """This process's memory control group (``container.MemoryGroup``) when it has a limit."""
    if not _CONTAINER:
        from course.grader import container

        group = container.memory_group()
        _CONTAINER.append(group if group is not None and group.limit() else None)
    return _CONTAINER[0]


def concurrent_reference() -> bool:
    """Whether the reference worker runs beside the student's (two processes at once). On less
    than about one and a half CPUs that buys no time, and under a small memory limit (a
    Gradescope container's 768 MB) a second TensorFlow process is what runs out: then the
    reference runs first and the student's worker after it, one at a time.
    COURSE_GRADER_CONCURRENT=0 or 1 decides instead."""
    forced = os.environ.get("COURSE_GRADER_CONCURRENT")
    if forced in ("0", "1"):
        return forced == "1"
    from course.grader import container

    cpus = container.cpu_limit()
    group = container_memory()
    return (cpus is None or cpus >= 1.5) and (group is None or group.limit() >= 1.5 * 1024**3)


def _mib(n: int) -> str:
    return f"{n / 1024**2:.0f} MB"


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def stop_all_workers() -> None:
    """Kill every running worker of this process (an interrupted class run)."""
    with _LIVE_LOCK:
        procs = list(_LIVE)
    for proc in procs:
        _kill_group(proc)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "the process did not exit"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the process was killed by {name}"
    return f"the process exited with status {code}"


@dataclass
class Limits:
    """How long each part of a worker's run may take, in seconds.

    ``check(name)`` is asked again and again while a check runs, so a limit may tighten once it
    is known better (the grader derives it from the reference's own time for that check).
    ``deadline`` is a ``time.monotonic()`` instant nothing may outlast: a submission's budget.
    """

    check: Callable[[str], float]
    importing: float = 60.0
    between: float = 60.0
    deadline: float | None = None

    @classmethod
    def flat(cls, timeout: float, per_check: dict[str, float] | None = None) -> "Limits":
        per_check = per_check or {}
        return cls(check=lambda name: per_check.get(name, timeout), importing=timeout,
                   between=timeout)


BUDGET_SPENT = "not graded: the time budget for this submission ran out"


def component(check: str) -> str:
    """The part of an exercise a check exercises: ``adamw`` for ``adamw.fit``."""
    return check.split(".", 1)[0]


def run_checks(stem: str, source: str | None, checks: list[str], seed: int, *, device: str = "auto",
               timeout: float = 60.0, timeouts: dict[str, float] | None = None,
               limits: Limits | None = None, memory_limit: int = DEFAULT_MEMORY_LIMIT,
               hide: tuple[str, ...] = (), cancel: threading.Event | None = None,
               on_outcome: Callable[[str, CheckOutcome], None] | None = None,
               backend: str = "tensorflow") -> WorkerReport:
    """Run ``checks`` of exercise ``stem`` on ``source`` (None: the reference) in workers that
    run Keras on ``backend``.

    ``limits`` (default: ``timeout`` for everything, ``timeouts`` per check) bounds each part.
    A component (``adam`` of ``adam.fit``) whose check hung or ran out of memory has its other
    checks skipped: they would only hang again, a time limit each.
    ``hide``: more folders the student's code may not read (a class's submissions and results).
    ``cancel``: once set, the worker is killed and the checks not done are ``not_run``.
    ``on_outcome(name, outcome)`` is called as each check's outcome arrives.
    """
    report = WorkerReport()
    remaining = list(checks)
    limits = limits or Limits.flat(timeout, timeouts)
    cancel = cancel or threading.Event()

    def skip(names: list[str], status: CheckStatus, message: str) -> None:
        for name in names:
            report.outcomes[name] = CheckOutcome(status, message=message)

    while remaining:
        if cancel.is_set():
            skip(remaining, CheckStatus.NOT_RUN, "cancelled")
            break
        if limits.deadline is not None and time.monotonic() >= limits.deadline:
            skip(remaining, CheckStatus.NOT_RUN, BUDGET_SPENT)
            break
        before = len(remaining)
        remaining = _one_worker(stem, source, remaining, seed, device, limits, memory_limit,
                                report, tuple(hide), cancel, on_outcome, backend)
        if cancel.is_set():
            continue  # the checks left are marked above
        if report.import_status != CheckStatus.RAN:
            skip(remaining, CheckStatus.NOT_RUN, report.import_message)
            break
        if remaining:
            report.restarts += 1
        if len(remaining) >= before:  # no progress: never loop forever
            skip(remaining, CheckStatus.CRASHED, "the worker made no progress")
            break
        stuck = {component(n): n for n, o in report.outcomes.items()
                 if o.status in (CheckStatus.TIMEOUT, CheckStatus.MEMORY) and o.message != BUDGET_SPENT}
        for name in [n for n in remaining if component(n) in stuck]:
            first = stuck[component(name)]
            how = "hung" if report.outcomes[first].status == CheckStatus.TIMEOUT else "ran out of memory"
            report.outcomes[name] = CheckOutcome(
                CheckStatus.NOT_RUN, message=f"not run: this part of your code {how} in {first}")
        remaining = [n for n in remaining if component(n) not in stuck]
        ended = [o.status for o in report.outcomes.values() if o.status.stopped]
        if remaining and len(ended) >= GIVE_UP_AFTER:
            counts = ", ".join(f"{ended.count(s)} {s}" for s in dict.fromkeys(ended))
            skip(remaining, CheckStatus.NOT_RUN, f"not run: {len(ended)} earlier checks of this exercise "
                                       f"were stopped ({counts})")
            break
    return report


def _project_checkout() -> Path | None:
    """The course's source checkout (with solutions/ and git history), if it runs from one."""
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file() or (root / ".git").exists():
        return root
    return None


def hidden_from_students(extra: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Folders a student's worker may not read: the solutions, the checkout, other workers'."""
    hidden = [tempfile.gettempdir(), *extra]
    checkout = _project_checkout()
    if checkout is not None:
        hidden.append(str(checkout))
    spec = importlib.util.find_spec("solutions")  # an installed (non-editable) copy, too
    if spec is not None and spec.submodule_search_locations:
        hidden.extend(spec.submodule_search_locations)
    return tuple(sorted({os.path.realpath(h) for h in hidden}))


def _worker_command(workdir: str, source: str | None, job: dict, hide: tuple[str, ...],
                    device: str = "auto") -> list[str]:
    """The worker's command line; for a student, also its confinement and its copy of the file."""
    if source is None:
        return [sys.executable, "-m", "course.grader.worker"]
    # the worker reads a copy in its own folder: the original's folder may be hidden from it
    copy = Path(workdir) / "submission" / Path(source).name
    copy.parent.mkdir()
    shutil.copyfile(source, copy)
    job["source"] = str(copy)
    if not SANDBOX:
        return [sys.executable, "-m", "course.grader.worker"]
    from course.grader.sandbox import Confinement

    package = str(Path(__file__).resolve().parents[1])
    # XLA on a GPU runs NVIDIA's ptxas as a child process: where one may be used, processes stay
    # allowed (still confined to the worker's folder, and killed with its process group).
    gpu_possible = device != "cpu" and any(Path("/dev").glob("nvidia[0-9]*"))
    job["confine"] = Confinement(workdir, hidden_from_students(hide), keep=(package,),
                                 block_processes=not gpu_possible).to_json()
    return [sys.executable, "-m", "course.grader.sandbox"]


# "1" in a worker's environment when the grading runs in a container of less than 1.5 GiB
TIGHT_MEMORY = "COURSE_GRADER_TIGHT_MEMORY"


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    group = container_memory()
    env[TIGHT_MEMORY] = "1" if group is not None and group.limit() < 1.5 * 1024**3 else "0"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    # the package must import from wherever it is installed, whatever the student's folder holds
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    return env


# Environment variables read while TensorFlow is imported (and the import path): a change in
# them needs a new fork server. Others (pytest sets PYTEST_CURRENT_TEST for every test) reach
# each worker through its own environment.
_IMPORT_ENV = ("PYTHON", "TF_", "KERAS_", "CUDA_", "XLA_", "OMP_", "OPENBLAS_", "MKL_", "LD_",
               TIGHT_MEMORY)
# one fork server per such environment (a backend each), started on first use
_SERVERS: dict[tuple, object] = {}
_MAX_SERVERS = 2
_SERVER_LOCK = threading.Lock()


def _fork_server(env: dict[str, str]):
    """The fork server for workers with this environment, started on first use; None if this
    platform has none or it failed to start (then workers start as fresh interpreters)."""
    if not FORKSERVER or not hasattr(os, "fork") or not hasattr(socket, "send_fds"):
        return None
    from course.grader.forkserver import ForkServer, ForkServerError

    key = tuple(sorted((k, v) for k, v in env.items() if k.startswith(_IMPORT_ENV)))
    with _SERVER_LOCK:
        server = _SERVERS.get(key, "new")
        if server == "new" or (server is not None and not server.alive):
            if server not in ("new", None):
                server.close()  # its running workers still end normally
            _SERVERS.pop(key, None)
            while len(_SERVERS) >= _MAX_SERVERS:  # each holds a backend's import in memory
                oldest = _SERVERS.pop(next(iter(_SERVERS)))
                if oldest is not None:
                    oldest.close()
            server = _SERVERS[key] = ForkServer({k: v for k, v in env.items() if k != "TMPDIR"})
    if server is None:
        return None
    try:
        server.wait_ready(STARTUP_TIMEOUT)
    except ForkServerError:
        with _SERVER_LOCK:
            if _SERVERS.get(key) is server:
                _SERVERS[key] = None
        return None
    return server


def _start_worker(command: list[str], job_path: str, workdir: str, env: dict[str, str],
                  result_fd: int):
    """A forked worker when the fork server runs, else a fresh interpreter (``command``)."""
    server = _fork_server(env)
    if server is not None:
        from course.grader.forkserver import ForkServerError

        try:
            return server.spawn(job_path, workdir, env)
        except ForkServerError:
            pass  # it died: this worker starts the slow way, the next one gets a new server
    return subprocess.Popen(
        command + [job_path],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        pass_fds=(result_fd,), cwd=workdir, env=env, start_new_session=True,
    )


def _one_worker(stem, source, checks, seed, device, limits: Limits, memory_limit,
                report: WorkerReport, hide: tuple[str, ...], cancel: threading.Event,
                on_outcome, backend: str = "tensorflow") -> list[str]:
    """Start one worker for ``checks``; return the checks it did not get to."""
    read_fd, write_fd = os.pipe()
    with tempfile.TemporaryDirectory(prefix="course-worker-") as workdir:
        job = {"stem": stem, "source": os.path.abspath(source) if source else None,
               "checks": checks, "seed": seed, "device": device, "result_fd": write_fd}
        command = _worker_command(workdir, source, job, hide, device)
        job_path = Path(workdir) / "job.json"
        job_path.write_text(json.dumps(job))
        env = backends.environment(backend, _worker_env(), device=device)
        env["TMPDIR"] = workdir  # the one folder a confined worker may write to
        group = container_memory()
        oom_before = group.oom_kills() if group else None
        try:
            proc = _start_worker(command, str(job_path), workdir, env, write_fd)
        finally:
            os.close(write_fd)
        with _LIVE_LOCK:
            _LIVE.add(proc)
        stdout_tail, stderr_tail = _Tail(proc.stdout, 2048), _Tail(proc.stderr, 8192)
        try:
            return _converse(proc, read_fd, checks, limits, memory_limit, report,
                             stderr_tail, cancel, on_outcome, student=source is not None,
                             oom_before=oom_before)
        finally:
            _kill_group(proc)
            with _LIVE_LOCK:
                _LIVE.discard(proc)
            os.close(read_fd)
            report.stderr_tail = stderr_tail.text()
            stdout_tail.text()


def _memory_verdict(proc, memory_limit: int, student: bool) -> str | None:
    """Why a worker must be stopped for its memory now, or None."""
    if memory_limit and _group_rss(proc.pid) > memory_limit:
        return f"stopped: used more than {memory_limit / 1024**3:.1f} GiB of memory"
    group = container_memory()
    if student and group is not None:
        limit, used = group.limit(), group.working_set()
        if used is not None and used > limit * (1 - CONTAINER_RESERVE):
            return (f"stopped: out of memory. The grading machine allows {_mib(limit)} in all, "
                    f"and with your code running {_mib(used)} were in use")
    return None


def _oom_killed(oom_before: int | None) -> str | None:
    """The reason a worker that died of SIGKILL died, if the kernel ran out of memory."""
    group = container_memory()
    if group is None or oom_before is None:
        return None
    after = group.oom_kills()
    if after is not None and after > oom_before:
        return (f"out of memory: the kernel stopped the process (the grading machine allows "
                f"{_mib(group.limit())} in all)")
    return None


def _converse(proc, read_fd, checks, limits: Limits, memory_limit, report, stderr_tail,
              cancel: threading.Event, on_outcome=None, student: bool = False,
              oom_before: int | None = None):
    remaining = list(checks)
    phase = "startup"  # startup -> importing -> between checks / in a check
    current: str | None = None
    started = time.monotonic()
    allowed = STARTUP_TIMEOUT  # seconds for the current phase, from ``started``
    buffer = b""

    def fail(status: CheckStatus, message: str) -> list[str]:
        nonlocal remaining, current
        if phase in ("startup", "importing"):
            report.import_status = status if phase == "importing" else CheckStatus.GRADER_ERROR
            report.import_message = message
            return remaining
        if current is None and phase == "between" and remaining:
            current = remaining[0]  # it died before announcing the next check: blame that one
        if current is not None:
            outcome = CheckOutcome(status, seconds=time.monotonic() - started, message=message)
            report.outcomes[current] = outcome
            remaining = [c for c in remaining if c != current]
            if on_outcome:
                on_outcome(current, outcome)
        return remaining

    def died(code: int | None) -> list[str]:
        if code == -signal.SIGKILL:
            oom = _oom_killed(oom_before)
            if oom:
                return fail(CheckStatus.MEMORY, oom)
        return fail(CheckStatus.CRASHED, _describe_exit(code) + _stderr_hint(stderr_tail))

    while True:
        if cancel.is_set():
            _kill_group(proc)
            return remaining  # run_checks marks them not run
        now = time.monotonic()
        if phase == "check":
            allowed = limits.check(current)
        deadline = started + allowed
        if limits.deadline is not None and limits.deadline < deadline:
            deadline = limits.deadline
        if now > deadline:
            _kill_group(proc)
            if limits.deadline is not None and now >= limits.deadline and deadline == limits.deadline:
                return fail(CheckStatus.TIMEOUT, BUDGET_SPENT)
            what = {"startup": "starting TensorFlow", "importing": "importing your file"}.get(
                phase, f"check {current}")
            return fail(CheckStatus.TIMEOUT, f"stopped after {allowed:.0f} s while {what} (time limit)")
        ready, _, _ = select.select([read_fd], [], [], min(0.25, max(0.0, deadline - now)))
        too_much = _memory_verdict(proc, memory_limit, student)
        if too_much:
            _kill_group(proc)
            return fail(CheckStatus.MEMORY, too_much)
        if not ready:
            if proc.poll() is not None and not _readable(read_fd):
                return died(proc.returncode)
            continue
        chunk = os.read(read_fd, 1 << 20)
        if not chunk:  # the worker is gone
            code = proc.wait()
            if phase == "between" and not remaining:
                return []
            return died(code)
        buffer += chunk
        if len(buffer) > wire.MAX_LINE:
            _kill_group(proc)
            return fail(CheckStatus.CRASHED, "the worker wrote an oversized message")
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            try:
                message = wire.loads(line)
            except (ValueError, TypeError) as exc:
                _kill_group(proc)
                return fail(CheckStatus.CRASHED, f"unreadable message from the worker ({exc})")
            event = message["event"]
            if event == "ready":
                report.backend = message.get("backend", "")
                report.device = message.get("device", "")
                report.versions = message.get("versions", {})
                phase, allowed, started = "importing", limits.importing, time.monotonic()
            elif event == "fatal":
                report.import_status = CheckStatus.GRADER_ERROR
                report.import_message = message.get("message", "")
                return remaining
            elif event in ("import_error", "delegation"):
                report.import_status = (CheckStatus.ERROR if event == "import_error"
                                        else CheckStatus.DELEGATION)
                report.import_error = message.get("error")
                report.import_message = message.get("message", "")
                return remaining
            elif event == "imported":
                report.missing = list(message.get("missing", []))
                phase, allowed, started = "between", limits.between, time.monotonic()
            elif event == "start" and message.get("check") in remaining:
                current = message["check"]
                phase, started = "check", time.monotonic()
            elif event == "result" and message.get("check") == current:
                status = CheckStatus.ERROR if message.get("error") else CheckStatus.RAN
                outcome = CheckOutcome(
                    status, outputs=message.get("outputs"), error=message.get("error"),
                    seconds=float(message.get("seconds", time.monotonic() - started)))
                report.outcomes[current] = outcome
                if on_outcome:
                    on_outcome(current, outcome)
                remaining = [c for c in remaining if c != current]
                current, phase = None, "between"
                allowed, started = limits.between, time.monotonic()
                if not remaining:
                    return []


def _readable(fd: int) -> bool:
    ready, _, _ = select.select([fd], [], [], 0)
    return bool(ready)


def _stderr_hint(tail: _Tail) -> str:
    """The last lines a dead worker wrote that may say why: never TensorFlow's own log lines
    (a "failed call to cuInit" is not why a student's process died)."""
    lines = [l for l in tail.text().splitlines() if l.strip() and not _is_tensorflow_log(l)]
    return (": " + " | ".join(lines[-3:])[-500:]) if lines else ""


_NOISE = ("WARNING: All log messages before absl::InitializeLog", "I0000 ", "W0000 ")
# absl's format, which TensorFlow's C++ logs use: "E0000 00:00:1796213355.333 7006 file.cc:52] ..."
_TF_LOG = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:[\d.]+\s+\d+ [\w.\-/]+:\d+\] ")


def _is_noise(line: str) -> bool:
    """TensorFlow's start-up chatter (informational and warning lines), for chapter runs."""
    return line.startswith(_NOISE)


def _is_tensorflow_log(line: str) -> bool:
    return line.startswith(_NOISE[0]) or bool(_TF_LOG.match(line))
