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

from course.grader import wire

STARTUP_TIMEOUT = 180.0  # importing TensorFlow on a loaded 2-core machine
DEFAULT_MEMORY_LIMIT = 4 * 1024**3
GIVE_UP_AFTER = 3  # timeouts, memory blow-ups or crashes in one exercise before the rest are skipped
# COURSE_GRADER_SANDBOX=0 turns the confinement of student workers off (to debug the grader);
# COURSE_GRADER_FORKSERVER=0 starts every worker as a fresh interpreter instead of forking it.
SANDBOX = os.environ.get("COURSE_GRADER_SANDBOX", "1") != "0"
FORKSERVER = os.environ.get("COURSE_GRADER_FORKSERVER", "1") != "0"
_ABNORMAL = ("timeout", "memory", "crashed")
_LIVE: set[subprocess.Popen] = set()  # running workers, so that an interrupted run can stop them
_LIVE_LOCK = threading.Lock()


@dataclass
class CheckOutcome:
    status: str  # ok | error | timeout | memory | crashed | not_run
    outputs: dict | None = None
    error: dict | None = None
    seconds: float = 0.0
    message: str = ""


@dataclass
class WorkerReport:
    """What running one exercise's checks in workers produced."""

    outcomes: dict[str, CheckOutcome] = field(default_factory=dict)
    import_status: str = "ok"  # ok | error | timeout | memory | crashed | delegation | fatal
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


def run_checks(stem: str, source: str | None, checks: list[str], seed: int, *, device: str = "auto",
               timeout: float = 60.0, timeouts: dict[str, float] | None = None,
               memory_limit: int = DEFAULT_MEMORY_LIMIT, hide: tuple[str, ...] = (),
               cancel: threading.Event | None = None) -> WorkerReport:
    """Run ``checks`` of exercise ``stem`` on ``source`` (None: the reference) in workers.

    ``hide``: more folders the student's code may not read (a class's submissions and results).
    ``cancel``: once set, the worker is killed and the checks not done are ``not_run``.
    """
    report = WorkerReport()
    remaining = list(checks)
    timeouts = timeouts or {}
    cancel = cancel or threading.Event()
    while remaining:
        if cancel.is_set():
            for name in remaining:
                report.outcomes[name] = CheckOutcome("not_run", message="cancelled")
            break
        before = len(remaining)
        remaining = _one_worker(stem, source, remaining, seed, device, timeout, timeouts,
                                memory_limit, report, tuple(hide), cancel)
        if cancel.is_set():
            continue  # the checks left are marked above
        if report.import_status != "ok":
            for name in remaining:
                report.outcomes[name] = CheckOutcome("not_run", message=report.import_message)
            break
        if remaining:
            report.restarts += 1
        if len(remaining) >= before:  # no progress: never loop forever
            for name in remaining:
                report.outcomes[name] = CheckOutcome("crashed", message="the worker made no progress")
            break
        ended = [o.status for o in report.outcomes.values() if o.status in _ABNORMAL]
        if remaining and len(ended) >= GIVE_UP_AFTER:
            counts = ", ".join(f"{ended.count(s)} {s}" for s in _ABNORMAL if s in ended)
            for name in remaining:
                report.outcomes[name] = CheckOutcome(
                    "not_run", message=f"not run: {len(ended)} earlier checks of this exercise "
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


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
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
_IMPORT_ENV = ("PYTHON", "TF_", "KERAS_", "CUDA_", "XLA_", "OMP_", "OPENBLAS_", "MKL_", "LD_")
_SERVER: list = [None, None]  # [key, fork server or None when it could not start]
_SERVER_LOCK = threading.Lock()


def _fork_server(env: dict[str, str]):
    """The fork server for workers with this environment, started on first use; None if this
    platform has none or it failed to start (then workers start as fresh interpreters)."""
    if not FORKSERVER or not hasattr(os, "fork") or not hasattr(socket, "send_fds"):
        return None
    from course.grader.forkserver import ForkServer, ForkServerError

    key = tuple(sorted((k, v) for k, v in env.items() if k.startswith(_IMPORT_ENV)))
    with _SERVER_LOCK:
        old_key, server = _SERVER
        if old_key != key or (server is not None and not server.alive):
            if server is not None:
                server.close()  # its running workers still end normally
            server = ForkServer({k: v for k, v in env.items() if k != "TMPDIR"})
            _SERVER[:] = [key, server]
    if server is None:
        return None
    try:
        server.wait_ready(STARTUP_TIMEOUT)
    except ForkServerError:
        with _SERVER_LOCK:
            if _SERVER[1] is server:
                _SERVER[1] = None
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


def _one_worker(stem, source, checks, seed, device, timeout, timeouts, memory_limit,
                report: WorkerReport, hide: tuple[str, ...], cancel: threading.Event) -> list[str]:
    """Start one worker for ``checks``; return the checks it did not get to."""
    read_fd, write_fd = os.pipe()
    with tempfile.TemporaryDirectory(prefix="course-worker-") as workdir:
        job = {"stem": stem, "source": os.path.abspath(source) if source else None,
               "checks": checks, "seed": seed, "device": device, "result_fd": write_fd}
        command = _worker_command(workdir, source, job, hide, device)
        job_path = Path(workdir) / "job.json"
        job_path.write_text(json.dumps(job))
        env = _worker_env()
        env["TMPDIR"] = workdir  # the one folder a confined worker may write to
        try:
            proc = _start_worker(command, str(job_path), workdir, env, write_fd)
        finally:
            os.close(write_fd)
        with _LIVE_LOCK:
            _LIVE.add(proc)
        stdout_tail, stderr_tail = _Tail(proc.stdout, 2048), _Tail(proc.stderr, 8192)
        try:
            return _converse(proc, read_fd, checks, timeout, timeouts, memory_limit, report,
                             stderr_tail, cancel)
        finally:
            _kill_group(proc)
            with _LIVE_LOCK:
                _LIVE.discard(proc)
            os.close(read_fd)
            report.stderr_tail = stderr_tail.text()
            stdout_tail.text()


def _converse(proc, read_fd, checks, timeout, timeouts, memory_limit, report, stderr_tail,
              cancel: threading.Event):
    remaining = list(checks)
    phase = "startup"  # startup -> importing -> between checks / in a check
    current: str | None = None
    deadline = time.monotonic() + STARTUP_TIMEOUT
    buffer = b""
    started = time.monotonic()

    def fail(status: str, message: str) -> list[str]:
        nonlocal remaining, current
        if phase in ("startup", "importing"):
            report.import_status = status if phase == "importing" else "fatal"
            report.import_message = message
            return remaining
        if current is None and phase == "between" and remaining:
            current = remaining[0]  # it died before announcing the next check: blame that one
        if current is not None:
            report.outcomes[current] = CheckOutcome(status, seconds=time.monotonic() - started,
                                                    message=message)
            remaining = [c for c in remaining if c != current]
        return remaining

    while True:
        if cancel.is_set():
            _kill_group(proc)
            return remaining  # run_checks marks them not run
        now = time.monotonic()
        if now > deadline:
            _kill_group(proc)
            what = {"startup": "starting TensorFlow", "importing": "importing your file"}.get(
                phase, f"check {current}")
            limit = deadline - started
            return fail("timeout", f"stopped after {limit:.0f} s while {what} (time limit)")
        ready, _, _ = select.select([read_fd], [], [], min(0.25, max(0.0, deadline - now)))
        if memory_limit and _group_rss(proc.pid) > memory_limit:
            _kill_group(proc)
            return fail("memory", f"stopped: used more than {memory_limit / 1024**3:.1f} GiB of memory")
        if not ready:
            if proc.poll() is not None and not _readable(read_fd):
                return fail("crashed", _describe_exit(proc.returncode) + _stderr_hint(stderr_tail))
            continue
        chunk = os.read(read_fd, 1 << 20)
        if not chunk:  # the worker is gone
            code = proc.wait()
            if phase == "between" and not remaining:
                return []
            return fail("crashed", _describe_exit(code) + _stderr_hint(stderr_tail))
        buffer += chunk
        if len(buffer) > wire.MAX_LINE:
            _kill_group(proc)
            return fail("crashed", "the worker wrote an oversized message")
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            try:
                message = wire.loads(line)
            except (ValueError, TypeError) as exc:
                _kill_group(proc)
                return fail("crashed", f"unreadable message from the worker ({exc})")
            event = message["event"]
            if event == "ready":
                report.backend = message.get("backend", "")
                report.device = message.get("device", "")
                report.versions = message.get("versions", {})
                phase, deadline, started = "importing", time.monotonic() + timeout, time.monotonic()
            elif event == "fatal":
                report.import_status = "fatal"
                report.import_message = message.get("message", "")
                return remaining
            elif event in ("import_error", "delegation"):
                report.import_status = "error" if event == "import_error" else "delegation"
                report.import_error = message.get("error")
                report.import_message = message.get("message", "")
                return remaining
            elif event == "imported":
                report.missing = list(message.get("missing", []))
                phase, deadline = "between", time.monotonic() + timeout
            elif event == "start" and message.get("check") in remaining:
                current = message["check"]
                limit = timeouts.get(current, timeout)
                phase, deadline, started = "check", time.monotonic() + limit, time.monotonic()
            elif event == "result" and message.get("check") == current:
                status = "error" if message.get("error") else "ok"
                report.outcomes[current] = CheckOutcome(
                    status, outputs=message.get("outputs"), error=message.get("error"),
                    seconds=float(message.get("seconds", time.monotonic() - started)))
                remaining = [c for c in remaining if c != current]
                current, phase, deadline = None, "between", time.monotonic() + timeout
                if not remaining:
                    return []


def _readable(fd: int) -> bool:
    ready, _, _ = select.select([fd], [], [], 0)
    return bool(ready)


def _stderr_hint(tail: _Tail) -> str:
    lines = [l for l in tail.text().splitlines() if l.strip() and not _is_noise(l)]
    return (": " + " | ".join(lines[-3:])[-500:]) if lines else ""


_NOISE = ("WARNING: All log messages before absl::InitializeLog", "I0000 ", "W0000 ")


def _is_noise(line: str) -> bool:
    return line.startswith(_NOISE)
