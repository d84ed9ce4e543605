"""The reference cache: one reference worker per (exercise, seed, check), shared by every grading
that needs it, and stopped when every grading that asked for it has let it go (a blank exercise
needs no reference: grading a folder of stubs must not wait for seven of them).

The worker is replaced by a fake that waits until it is told to finish or is cancelled, so each
interleaving is driven exactly; one test grades real files.
"""

from __future__ import annotations

import threading

import pytest

from course.grader import grade as grade_module
from course.grader import runner
from course.grader.grade import GradingError, ReferenceCache, exercise_spec
from graderlib import ROOT, SEED, grade

EXERCISE = exercise_spec("ch06_adam")
NAMES = [c.name for c in EXERCISE.checks if c.needs_reference]


class FakeReferenceWorker:
    """Stands in for ``runner.run_checks``: records each run, finishes when ``finish`` is set,
    returns at once (as the real one does) when its ``cancel`` event is set."""

    def __init__(self, monkeypatch):
        self.runs: list[dict] = []
        self.finish = threading.Event()
        self.started = threading.Semaphore(0)
        monkeypatch.setattr(grade_module.runner, "run_checks", self)

    def __call__(self, stem, source, checks, seed, *, cancel, **kwargs):
        run = {"checks": list(checks), "cancelled": False}
        self.runs.append(run)
        self.started.release()
        while not self.finish.is_set():
            if cancel.wait(0.01):
                run["cancelled"] = True
                report = runner.WorkerReport()
                for name in checks:
                    report.outcomes[name] = runner.CheckOutcome("not_run", message="cancelled")
                return report
        report = runner.WorkerReport(device="CPU")
        for name in checks:
            report.outcomes[name] = runner.CheckOutcome("ok", outputs={"value": name})
        return report


def request(cache):
    return cache.request(EXERCISE, SEED, "cpu", 1.0, 1)


def test_a_reference_is_computed_once_for_every_grading_that_waits_on_it(monkeypatch):
    worker = FakeReferenceWorker(monkeypatch)
    cache = ReferenceCache()
    first, second = request(cache), request(cache)
    worker.finish.set()
    for ticket in (first, second):
        report = ticket.result()
        ticket.release()
        assert {n: o.outputs["value"] for n, o in report.outcomes.items()} == {n: n for n in NAMES}
    third = request(cache)  # already computed: no new worker
    assert third.result().outcomes.keys() == set(NAMES)
    third.release()
    assert len(worker.runs) == 1 and worker.runs[0]["checks"] == NAMES


def test_released_by_everyone_before_it_finished_it_is_stopped_and_forgotten(monkeypatch):
    worker = FakeReferenceWorker(monkeypatch)
    cache = ReferenceCache()
    ticket = request(cache)
    worker.started.acquire()
    ticket.release()  # a blank exercise: nothing to compare
    assert worker.runs[0]["cancelled"]
    # a later grading that needs it starts it again instead of getting the stopped run
    worker.finish.set()
    again = request(cache)
    assert len(worker.runs) == 2 and not worker.runs[1]["cancelled"]
    assert again.result().outcomes[NAMES[0]].status == "ok"
    again.release()


def test_one_grading_letting_go_does_not_stop_it_for_another(monkeypatch):
    worker = FakeReferenceWorker(monkeypatch)
    cache = ReferenceCache()
    blank, working = request(cache), request(cache)
    worker.started.acquire()
    blank.release()
    blank.release()  # idempotent: it does not give up the other grading's claim
    worker.finish.set()
    assert working.result().outcomes[NAMES[-1]].status == "ok"
    working.release()
    assert len(worker.runs) == 1 and not worker.runs[0]["cancelled"]


def test_a_reference_worker_that_raised_is_a_grading_error(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("no worker could start")

    monkeypatch.setattr(grade_module.runner, "run_checks", broken)
    ticket = request(ReferenceCache())
    with pytest.raises(GradingError, match="reference for ch06_adam failed: OSError: no worker"):
        ticket.result()
    ticket.release()


def test_a_stub_is_graded_without_its_reference_and_a_solution_with_it():
    """Real workers: the stub's checks all raise, so its reference run is cancelled and
    forgotten; the solution's grading afterwards computes it and scores full marks."""
    checks = ["adam.single_step", "adam.trajectory"]
    cache = ReferenceCache()
    stub = grade(ROOT / "exercises" / "ch06_adam.py", "ch06_adam", checks, cache=cache)
    assert stub["score"] == 0 and {c["status"] for c in stub["checks"]} == {"error"}
    assert not cache._runs
    solution = grade(ROOT / "solutions" / "ch06_adam.py", "ch06_adam", checks, cache=cache)
    assert all(c["passed"] for c in solution["checks"]) and len(solution["checks"]) == 2
    assert len(cache._runs) == len(checks)
