"""Parsing Python from several threads at once.

CPython 3.11's ``ast.parse`` fails with "SystemError: AST constructor recursion depth mismatch"
when two threads parse at once and a thread switch falls inside; a third thread freeing reference
cycles whose ``__del__`` runs Python code makes such switches frequent. The course parses in threads
in the grader (``course grade-class`` grades students in threads; every grading parses the file)
and in the explorer's server (request threads trace tf.functions; AutoGraph parses their source).
Each case runs in its own process, so the tiny switch interval touches nothing else. Without the
lock of ``course.threadsafe`` both failed 10 runs out of 10 on a 2-core machine.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from graderlib import ROOT

RACE = """
import sys, threading
sys.path.insert(0, {root!r})
{setup}
text = open({source!r}).read()
class Cycle:
    def __del__(self):
        sum(range(200))
def churn():
    for _ in range(200000):
        a, b = Cycle(), Cycle(); a.b, b.a = b, a
errors = []
def parse():
    for _ in range(250):
        try:
            {parse}
        except SystemError as exc:
            errors.append(repr(exc))
sys.setswitchinterval(1e-6)
threads = [threading.Thread(target=parse) for _ in range(3)] + [threading.Thread(target=churn)]
for t in threads: t.start()
for t in threads: t.join()
print(len(errors), errors[:1])
"""

CASES = {
    # the grader's source checks, as grade-class calls them
    "grader": ("from course.grader import static\n"
               "from course.grader.grade import exercise_spec\n"
               "ex = exercise_spec('ch06_adam')",
               "static.inspect_source(text, 'ch06_adam.py', ex.exports, ex.forbidden); "
               "static.tensorflow_calls(text, ex.exports)"),
    # any ast.parse in the explorer's process once its server exists (AutoGraph's included)
    "explorer": ("import ast\n"
                 "from course.explore.server import make_server\n"
                 "make_server(port=0).server_close()",
                 "ast.parse(text)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_parsing_survives_many_threads_at_once(case):
    setup, parse = CASES[case]
    script = RACE.format(root=str(ROOT), setup=setup, parse=parse,
                         source=str(ROOT / "solutions" / "ch06_adam.py"))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[0] == "0", out.stdout
