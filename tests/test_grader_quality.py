"""The corpus of submission variants and the grader-quality measurement (variants.quality): every
chapter contributes variants, each differs from its solution and names checks its exercise has;
a fooled grader is counted as fooled; on real grading a sample is judged right."""

from __future__ import annotations

import pytest

from course.catalog import CHAPTERS
from course.grader.grade import exercise_spec
from variants import Kind, corpus, solution_text, variant
from variants import quality


@pytest.fixture(scope="module")
def variants():
    return corpus()


def test_every_chapter_contributes_wrong_and_correct_variants(variants):
    kinds = {}
    for v in variants:
        kinds.setdefault(v.chapter, set()).add(v.kind)
    for chapter in CHAPTERS:
        assert {Kind.WRONG, Kind.CORRECT} <= kinds.get(chapter.number, set()), chapter.stem
    ch06 = [v for v in variants if v.chapter == 6]
    assert sum(v.kind == Kind.WRONG for v in ch06) >= 11
    assert {"no bias correction", "textbook epsilon", "t starting at 0",
            "one slot shared by all variables", "AdamL2 with 2*l2*w"} <= {v.name for v in ch06}


def test_each_variant_differs_from_its_solution_and_names_real_checks(variants):
    ids = [f"{v.stem}: {v.name}" for v in variants]
    assert len(set(ids)) == len(ids), "a name is used twice in one exercise"
    for v in variants:
        assert v.text != solution_text(v.stem), v.name
        assert v.chapter == int(v.stem[2:4]), v.name
        assert set(v.checks) <= {c.name for c in exercise_spec(v.stem).checks}, v.name
        assert v.kind != Kind.CORRECT or not v.checks, f"{v.name}: a correct one is graded on all"


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
    def adam(name, kind, text, checks=()):
        return variant("ch06_adam", name, kind, text, checks)

    variants = [
        adam("caught", Kind.WRONG, "a", ["adam.trajectory"]),
        adam("slipped through", Kind.WRONG, "b", ["adam.trajectory"]),
        adam("caught elsewhere only", Kind.WRONG, "c", ["adam.single_step"]),
        adam("same text, other mistake", Kind.WRONG, "a", ["adam.single_step"]),
        adam("right", Kind.CORRECT, "d"),
        adam("right but failed", Kind.CORRECT, "e"),
        adam("delegation told", Kind.DELEGATION, "f", ["adam.single_step"]),
        adam("delegation given marks", Kind.DELEGATION, "g", ["adam.single_step"]),
    ]
    every_check = [c.name for c in exercise_spec("ch06_adam").checks]
    fake = FakeGrade({"a": ["adam.trajectory", "adam.single_step"], "c": ["adam.trajectory"],
                      "e": ["adam.fit"], "f": every_check, "g": ["adam.single_step"]})
    outcomes = quality.measure(variants, grade=fake, jobs=3)
    result = quality.summary(outcomes)
    assert {m["name"] for m in result["misjudged"]} == {"slipped through", "caught elsewhere only",
                                                        "right but failed", "delegation given marks"}
    assert (result["false_passes"], result["wrong_variants"], result["delegations"]) == (3, 6, 2)
    assert (result["false_fails"], result["correct_implementations"]) == (1, 2)
    assert fake.calls == 7  # "a" was graded once for both of its mistakes


def test_real_grading_of_a_sample_misjudges_nothing(variants):
    sample = [v for v in variants if v.chapter == 6 and v.name in
              ("no bias correction", "AdamL2 decoupled", "hidden wrapper")]
    assert len(sample) == 3
    outcomes = quality.measure(sample, quick=True, jobs=2)
    result = quality.summary(outcomes)
    assert result["false_passes"] == 0, result["misjudged"]
    assert all(o.score < o.max_score for o in outcomes)
