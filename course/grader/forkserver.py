"""Start workers by forking a process that has already imported TensorFlow (and the Keras backend).

Importing TensorFlow takes 4 s of CPU (10 s and more on a busy 2-core machine), and grading
starts a worker per exercise and per student, plus one per reference: in a class run that
import was most of the time spent. The fork server imports TensorFlow, Keras and the grader
once, then forks a worker per job in a few tens of milliseconds. It only imports: TensorFlow's
runtime (devices, thread pools, CUDA) starts in each child, after the fork, as it would in a
fresh process.

Protocol, over a ``SOCK_SEQPACKET`` socket pair (one message per packet, file descriptors passed
alongside): the client sends ``{"spawn": id, "job": path, "cwd": ..., "env": {...}}`` with the
worker's result, stdout and stderr pipes; the server answers ``{"spawned": id, "pid": pid}``, and
later ``{"exited": pid, "code": code}`` when it has reaped that child. Each child starts a new
session (so the runner kills its whole process group), takes the pipes as its result channel,
stdout and stderr, closes the server's socket (a student's code must not ask for unconfined
processes), and runs ``sandbox.run_job``: confinement, if the job asks for it, then the worker.

:class:`ForkedProcess` gives the runner what it uses of ``subprocess.Popen``: ``pid``, ``stdout``,
``stderr``, ``poll``, ``wait`` and ``returncode``.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import Future

_MAX_MESSAGE = 1 << 20


# --------------------------------------------------------------------------------- the server

def _serve(sock: socket.socket) -> None:
    import importlib.util

    # the point of this process: Keras on its backend (KERAS_BACKEND), and TensorFlow
    from course.grader import sandbox, worker  # noqa: F401

    if worker.imports_tensorflow():
        import tensorflow  # noqa: F401
    import keras  # noqa: F401

    sock.send(json.dumps({"ready": os.getpid()}).encode())
    while True:
        while True:  # reap finished children and tell the client how they ended
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            sock.send(json.dumps({"exited": pid, "code": os.waitstatus_to_exitcode(status)}).encode())
        ready, _, _ = select.select([sock], [], [], 0.05)
        if not ready:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(sock, _MAX_MESSAGE, 3)
        except OSError:
            return
        if not data:
            return  # the client is gone: so is the server
        request = json.loads(data)
        result_fd, out_fd, err_fd = fds
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            os._exit(_child(sock, request, result_fd, out_fd, err_fd))
        for fd in fds:
            os.close(fd)
        sock.send(json.dumps({"spawned": request["spawn"], "pid": pid}).encode())


def _child(sock: socket.socket, request: dict, result_fd: int, out_fd: int, err_fd: int) -> int:
    code = 3
    try:
        sock.close()
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        for fd in (devnull, out_fd, err_fd):
            os.close(fd)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        import tempfile

        tempfile.tempdir = None  # computed again from the job's TMPDIR
        # the channel's number in this process, for the worker to find in its job file
        path = request["job"]
        with open(path, encoding="utf-8") as f:
            job = json.load(f)
        job["result_fd"] = result_fd
        with open(path, "w", encoding="utf-8") as f:
            json.dump(job, f)
        from course.grader import sandbox

        code = sandbox.run_job(path)
    except BaseException:  # noqa: BLE001 - whatever happens, this child must not return
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001
            pass
    return code


def main() -> int:
    fd = int(sys.argv[1])
    sock = socket.socket(fileno=fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the grading process, not for us
    _serve(sock)
    return 0


# --------------------------------------------------------------------------------- the client

class ForkServerError(OSError):
    pass


class ForkedProcess:
    """A worker forked by the server: the parts of ``subprocess.Popen`` the runner uses."""

    def __init__(self, server: "ForkServer", pid: int, stdout, stderr):
        self._server = server
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._server.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
            time.sleep(0.02)
        return self.returncode


class ForkServer:
    """One server process for this grading process, started on first use."""

    def __init__(self, env: dict[str, str]):
        self._lock = threading.Lock()  # the tables below; never held while the socket may block
        self._send_lock = threading.Lock()
        self._exits: dict[int, int] = {}
        self._pending: dict[int, Future] = {}
        self._next_id = 0
        self._sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "course.grader.forkserver", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        theirs.close()
        self.alive = True
        self._ready: Future = Future()
        threading.Thread(target=self._read, daemon=True).start()

    def wait_ready(self, timeout: float) -> None:
        try:
            self._ready.result(timeout=timeout)
        except Exception as exc:  # noqa: BLE001 - a timeout, or the server died while starting
            self.close()
            raise ForkServerError(f"the fork server did not start: {exc!r}") from None

    def _read(self) -> None:
        while True:
            try:
                data = self._sock.recv(_MAX_MESSAGE)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            with self._lock:
                if "ready" in message:
                    self._ready.set_result(True)
                elif "spawned" in message:
                    self._pending.pop(message["spawned"]).set_result(message["pid"])
                elif "exited" in message:
                    self._exits[message["exited"]] = message["code"]
        with self._lock:
            self.alive = False
            if not self._ready.done():
                self._ready.set_exception(ForkServerError("the fork server exited"))
            for future in self._pending.values():
                future.set_exception(ForkServerError("the fork server exited"))
            self._pending.clear()

    def spawn(self, job_path: str, cwd: str, env: dict[str, str], timeout: float = 60.0) -> ForkedProcess:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        result_fd = json.loads(open(job_path, encoding="utf-8").read())["result_fd"]
        try:
            with self._lock:
                if not self.alive:
                    raise ForkServerError("the fork server is not running")
                request_id = self._next_id
                self._next_id += 1
                future = self._pending[request_id] = Future()
            request = {"spawn": request_id, "job": job_path, "cwd": cwd, "env": env}
            with self._send_lock:
                socket.send_fds(self._sock, [json.dumps(request).encode()],
                                [result_fd, out_w, err_w])
            pid = future.result(timeout=timeout)
        except Exception as exc:
            os.close(out_r)
            os.close(err_r)
            if isinstance(exc, TimeoutError):
                self.close()  # hung: no later fork may run this job beside its replacement
            if isinstance(exc, ForkServerError):
                raise
            raise ForkServerError(f"the fork server did not start the worker: {exc!r}") from exc
        finally:
            os.close(out_w)
            os.close(err_w)
        return ForkedProcess(self, pid, os.fdopen(out_r, "rb", buffering=0),
                             os.fdopen(err_r, "rb", buffering=0))

    def exit_code(self, pid: int) -> int | None:
        with self._lock:
            if pid in self._exits:
                return self._exits.pop(pid)
            alive = self.alive
        if not alive:  # no one left to tell us: the child was handed to init, which reaps it
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return -signal.SIGKILL
        return None

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass


if __name__ == "__main__":
    sys.exit(main())
