"""How a report reads: a known mistake behind many failed checks is named once, with its hint
once, in the console table and in Gradescope's output; the JSON keeps every check's full text."""

from __future__ import annotations

import io

from rich.console import Console

from course.grader.grade import mistake_summary
from course.grader.report import gradescope_results, print_report

HINT = "bias correction is missing: divide by (1 - beta_1^t) and (1 - beta_2^t)."
MISTAKE = {"id": "no_bias_correction", "name": "no bias correction"}


def _check(name, passed, mistake=None):
    feedback = ("matches the reference" if passed else
                ("your numbers match a known mistake (no bias correction). " if mistake else "")
                + f"{name}: w at step 1: yours 1.5, reference 1.4 (off by 0.1, relative 0.07; "
                "allowed 1e-5); 4 of 4 value(s) differ; w1 at step 2: yours ...")
    return {"name": name, "description": "", "score": 1.0 if passed else 0.0, "max_score": 1.0,
            "passed": passed, "status": "passed" if passed else "failed", "feedback": feedback,
            "hint": None if passed else (HINT if mistake else "a hint of its own"),
            "mistake": None if passed else mistake,
            "detail": "" if passed else f"{name}: w at step 1: yours 1.5, reference 1.4",
            "seconds": 0.1}


def _report():
    checks = [_check(f"adam.c{i}", False, MISTAKE) for i in range(20)]
    checks += [_check(f"adamw.c{i}", False, MISTAKE) for i in range(3)]
    checks += [_check("adam.fit", False), _check("adam.interface", True)]
    exercise = {"chapter": 6, "name": "ch06_adam", "score": 1.0, "max_score": 25.0,
                "status": "graded", "message": "", "checks": checks,
                "mistakes": mistake_summary(checks, ("Adam", "AdamW", "AdamL2"))}
    return {"schema": 1, "submission": "s", "seed": 1, "backend": "tensorflow",
            "devices": ["CPU"], "score": 1.0, "max_score": 25.0, "seconds": 1.0,
            "exercises": [exercise]}


def test_the_summary_names_each_mistake_with_its_components_and_counts():
    (summary,) = _report()["exercises"][0]["mistakes"]
    assert summary["id"] == "no_bias_correction" and summary["hint"] == HINT
    assert summary["components"] == ["Adam", "AdamW"] and len(summary["checks"]) == 23


def test_the_console_gives_the_hint_once_and_short_lines():
    out = io.StringIO()
    print_report(_report(), Console(file=out, width=200))
    text = out.getvalue()
    assert text.count("bias correction is missing") == 1
    assert "Adam, AdamW: your numbers match a known mistake, no bias correction, in 23 of 25" in text
    assert "probably explains the 1 other failed check(s)" in text  # adam.fit
    assert "a hint of its own" in text  # a hint no summary line carries stays on its check
    assert text.count("known mistake (no bias correction)") == 0  # rows say "= no bias correction"


def test_gradescope_output_gives_the_hint_once():
    results = gradescope_results(_report())
    everything = results["output"] + "".join(t["output"] for t in results["tests"])
    assert everything.count("bias correction is missing") == 1
    assert "no bias correction, in 23 of 25 checks" in results["output"]
    assert len(results["tests"]) == 25


def test_a_fractional_maximum_is_printed_as_it_is():
    """One ``--check`` of an exercise is worth a fraction of its 10 points: its maximum reads 0.23,
    not 0; a whole exercise still reads 25 (here), not 25.00."""
    report = _report()
    out = io.StringIO()
    print_report(report, Console(file=out, width=200))
    assert "1.00/25 " in out.getvalue() and "Total: 1.00 / 25 " in out.getvalue()
    report["max_score"] = report["exercises"][0]["max_score"] = 0.2273
    out = io.StringIO()
    print_report(report, Console(file=out, width=200))
    assert "1.00/0.23" in out.getvalue() and "Total: 1.00 / 0.23 " in out.getvalue()
