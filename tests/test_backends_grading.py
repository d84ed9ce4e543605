"""The grader on Keras's other backends, through the real ``course grade --backend`` CLI: the
solutions score full marks and the stubs zero on JAX (and on PyTorch where it is installed), each
check with no counterpart there is listed with its reason, and a component written in raw
TensorFlow keeps its TensorFlow marks and loses the others with the keras.ops calls to use.

One file, so that with pytest-xdist one worker pays for these gradings.
"""

from __future__ import annotations

import shutil

import pytest

from course import backends
from course.catalog import CHAPTERS
from graderlib import ROOT, grade_cli_json

pytestmark = pytest.mark.slow

OTHER_BACKENDS = [pytest.param(name, marks=pytest.mark.skipif(
    not backends.installed(name), reason=f"the {name} backend is not installed: "
                                         f"{backends.INSTALL[name]}")) for name in ("jax", "torch")]
SKIPPED_THERE = {"jax": {"sparse_gradients"},
                 "torch": {"sparse_gradients", "mirrored_strategy", "jit_compile"}}


@pytest.fixture(scope="module", params=OTHER_BACKENDS)
def graded(request, tmp_path_factory):
    backend = request.param
    tmp = tmp_path_factory.mktemp(backend)
    return (backend,
            grade_cli_json(ROOT / "solutions", tmp / "solutions", "--backend", backend),
            grade_cli_json(ROOT / "exercises", tmp / "stubs", "--backend", backend))


def test_solutions_score_full_marks_and_stubs_zero(graded):
    backend, solutions, stubs = graded
    for report in (solutions, stubs):
        assert report["backend"] == backend
        assert [e["name"] for e in report["exercises"]] == [c.stem for c in CHAPTERS]
    failed = {c["name"]: c["feedback"] for e in solutions["exercises"] for c in e["checks"]
              if not c["passed"]}
    assert not failed
    assert solutions["score"] == solutions["max_score"] == 10.0 * len(CHAPTERS)
    assert stubs["score"] == 0.0
    for exercise in stubs["exercises"]:
        assert not any(c["passed"] for c in exercise["checks"])


def test_checks_without_a_counterpart_are_listed_with_their_reason_never_passed(graded):
    backend, solutions, _ = graded
    for exercise in solutions["exercises"]:
        names = {c["name"] for c in exercise["checks"]}
        for skipped in exercise["skipped"]:
            assert skipped["name"].split(".", 1)[1] in SKIPPED_THERE[backend]
            assert skipped["name"] not in names and skipped["reason"]
        assert exercise["max_score"] == pytest.approx(10.0)  # the others share the points
    skipped = {s["name"].split(".", 1)[1] for e in solutions["exercises"] for s in e["skipped"]}
    assert skipped == SKIPPED_THERE[backend]


@pytest.mark.skipif(not backends.installed("jax"), reason="the jax backend is not installed")
def test_a_tensorflow_only_component_loses_exactly_the_other_backends_points(tmp_path):
    """A correct chapter-6 file written with tf.* calls: full marks on TensorFlow (it is a
    correct variant of the corpus, graded on TensorFlow by tests/test_variants.py), zero on JAX,
    every check with the hint naming the keras.ops calls."""
    folder = tmp_path / "submission"
    folder.mkdir()
    shutil.copy(ROOT / "variants" / "files" / "ch06_adam_textbook_tf.py", folder / "ch06_adam.py")
    report = grade_cli_json(folder, tmp_path / "jax", "--chapter", "6", "--backend", "jax")
    (exercise,) = report["exercises"]
    assert exercise["score"] == 0.0
    assert {c["mistake"]["id"] for c in exercise["checks"]} == {"tensorflow_only"}
    (mistake,) = exercise["mistakes"]
    assert set(mistake["components"]) == {"Adam", "AdamW", "AdamL2"}
    assert "tf.sqrt" in mistake["hint"] and "keras.ops.sqrt" in mistake["hint"]
