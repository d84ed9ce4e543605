"""The grader-quality measurement (benchmarks/grader_quality.py): it finds the variants the chapter
tests define, counts a fooled grader as fooled, and on real grading finds no misjudgement."""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import replace

import pytest

from graderlib import ROOT

spec = importlib.util.spec_from_file_location("grader_quality", ROOT / "benchmarks" / "grader_quality.py")
quality = importlib.util.module_from_spec(spec)
sys.modules["grader_quality"] = quality
spec.loader.exec_module(quality)


@pytest.fixture(scope="module")
def cases():
    return quality.collect()


def test_every_chapter_with_tests_contributes_wrong_and_correct_variants(cases):
    by_chapter = {}
    for case in cases:
        by_chapter.setdefault(case.chapter, set()).add(case.expected)
    assert 6 in by_chapter and by_chapter[6] == {"wrong", "correct"}
    ch06 = [c for c in cases if c.chapter == 6]
    assert sum(c.expected == "wrong" for c in ch06) >= 11
    names = {c.name for c in ch06}
    assert {"no bias correction", "textbook epsilon", "t starting at 0",
            "one slot shared by all variables", "AdamL2 with 2*l2*w"} <= names
    solution = (ROOT / "solutions" / "ch06_adam.py").read_text()
    for case in cases:  # each variant really differs from the solution it was made from
        if case.chapter == 6:
            assert case.text != solution, case.name
        assert case.expected in ("wrong", "correct")


class FakeGrade:
    """Passes everything except the checks listed for a text: stands in for grade_exercise."""

    def __init__(self, failing: dict[str, list[str]]):
        self.failing = failing
        self.calls = 0

    def __call__(self, exercise, path, seed, *, cache=None, only=None):
        self.calls += 1
        text = path.read_text()
        names = only or [c.name for c in exercise.checks]
        bad = set(self.failing.get(text, []))
        checks = [{"name": n, "passed": n not in bad, "score": 0.0 if n in bad else 1.0} for n in names]
        return {"checks": checks, "score": sum(c["score"] for c in checks),
                "max_score": float(len(checks))}


def test_a_fooled_grader_is_counted_as_fooled():
    base = quality.Case(6, "ch06_adam", "", "wrong", "", [])
    cases = [
        replace(base, name="caught", text="a", checks=["adam.trajectory"]),
        replace(base, name="slipped through", text="b", checks=["adam.trajectory"]),
        replace(base, name="caught elsewhere only", text="c", checks=["adam.single_step"]),
        replace(base, name="same text, other mistake", text="a", checks=["adam.single_step"]),
        replace(base, name="right", text="d", expected="correct"),
        replace(base, name="right but failed", text="e", expected="correct"),
    ]
    fake = FakeGrade({"a": ["adam.trajectory", "adam.single_step"], "c": ["adam.trajectory"],
                      "e": ["adam.fit"]})
    outcomes = quality.measure(cases, grade=fake, jobs=3)
    result = quality.summary(outcomes)
    assert {m["name"] for m in result["misjudged"]} == {"slipped through", "caught elsewhere only",
                                                        "right but failed"}
    assert (result["false_passes"], result["wrong_variants"]) == (2, 4)
    assert (result["false_fails"], result["correct_implementations"]) == (1, 2)
    assert fake.calls == 5  # "a" was graded once for both of its mistakes


def test_real_grading_of_a_sample_misjudges_nothing(cases):
    sample = [c for c in cases if c.chapter == 6 and c.name in
              ("no bias correction", "AdamL2 decoupled", "delegation: hidden wrapper")]
    assert len(sample) == 3
    outcomes = quality.measure(sample, quick=True, jobs=2)
    result = quality.summary(outcomes)
    assert result["false_passes"] == 0, result["misjudged"]
    assert all(o.score < o.max_score for o in outcomes)
