"""The learner's code runs in a separate process, so that a hang cannot block the explorer.

Python threads cannot be stopped, and an ``update_step`` with an endless loop would hold the
server's computing lock forever. So every answer that runs code from ``exercises/`` ("yours")
is computed by one worker process (``python -m course.explore.worker``), started on the first
such request. A request gets ``TIME_LIMIT`` seconds; past that the worker is killed and the page
reads "your implementation did not finish in 10 s"; the next "yours" request starts a fresh
worker. Keras's and the solution's answers never go through the worker, so they keep coming
while the learner's code hangs.

The worker computes the same view functions as the server (``IN_WORKER`` is true there); the
protocol is one JSON line per request and per answer on the worker's own pipes.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TIME_LIMIT = 10.0     # seconds a "yours" answer may take once the worker is ready
START_LIMIT = 180.0   # seconds to start a worker (importing TensorFlow), not the learner's time
IN_WORKER = False     # true inside the worker: compute here, never hand on again


class Timeout(RuntimeError):
    """The worker did not answer in time (it was killed)."""


class Failed(RuntimeError):
    """The learner's code could not be run to the end; the message is for the page."""


class _Worker:
    def __init__(self):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                   PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        # its own process group, so that killing it also kills anything it started
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "course.explore.worker"], cwd=ROOT,
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, start_new_session=True)
        if self._line(START_LIMIT) != "ready":
            self.kill()
            raise Failed("the explorer's worker for your code did not start")

    def _line(self, limit: float) -> str | None:
        ready, _, _ = select.select([self.proc.stdout], [], [], limit)
        if not ready:
            return None
        return self.proc.stdout.readline().strip() or None

    def ask(self, job: dict, limit: float) -> dict:
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        line = self._line(limit)
        if line is None:
            raise Timeout
        return json.loads(line)

    def kill(self):
        try:
            os.killpg(self.proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait(timeout=10)


# the functions a job may name: nothing else is ever called in the worker
VIEWS = {"path": ("course.explore.paths", "compute"),
         "schedule": ("course.explore.schedules", "compute"),
         "range_test": ("course.explore.schedules", "range_test"),
         "scaling": ("course.explore.scaling", "compute")}

_worker: _Worker | None = None
_lock = threading.Lock()
_answers: dict = {}


def call(view: str, params: dict, stamp) -> dict:
    """The answer of ``view`` to ``params``, computed in the worker (cached per ``stamp``, the
    learner's file's modification time). Raises ``Failed`` with the page's message when
    the learner's code runs past ``TIME_LIMIT`` or kills its process."""
    global _worker
    key = (view, tuple(sorted(params.items())), stamp)
    if key in _answers:
        return _answers[key]
    with _lock:
        if _worker is None or _worker.proc.poll() is not None:
            _worker = _Worker()
        try:
            from course.explore import paths

            answer = _worker.ask({"view": view, "params": params,
                                  "exercises": str(paths.EXERCISES)}, TIME_LIMIT)
        except Timeout:
            _worker.kill()
            _worker = None
            raise Failed(f"your implementation did not finish in {TIME_LIMIT:g} s "
                               "(the explorer stopped it)") from None
        except (OSError, ValueError):  # the worker died (the learner's code exited, or a crash)
            _worker.kill()
            _worker = None
            raise Failed("your implementation stopped the process that ran it") from None
    if "failed" in answer:  # a bug of the explorer's own, not the learner's: not cached
        raise Failed(f"the worker failed: {answer['failed']}")
    _answers[key] = answer
    return answer


def stop() -> None:
    """Kill the worker, if any (the server stops)."""
    global _worker
    with _lock:
        if _worker is not None:
            _worker.kill()
            _worker = None
