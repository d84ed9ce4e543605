"""Every variant of the corpus (``variants/``) graded as it declares:

- a wrong one fails each check named for it, with feedback and a hint that contains its words,
  and loses points. It is graded on those checks only, and mistakes that share one submission
  (chapter 7 puts mistakes of different classes into one file) in one grading;
- a correct one written differently scores full marks, graded on every check: the slow part;
- one that leans on the Keras built-in scores 0, every graded check says delegation, and the
  message names the built-in.

The references are computed once for the whole session (graderlib.CACHE).
"""

from __future__ import annotations

import pytest

from graderlib import by_check, grade, write_variant
from variants import Kind, Variant, corpus

CORPUS = corpus()


def _param(variant: Variant):
    marks = [pytest.mark.slow] if variant.kind == Kind.CORRECT else []
    return pytest.param(variant, id=f"{variant.stem}: {variant.name}", marks=marks)


@pytest.fixture(scope="module")
def graded_submission(tmp_path_factory):
    """The grading of a wrong variant's submission, on the checks of every wrong variant that
    shares it; each submission is graded once per test process."""
    entries: dict[tuple[str, str], dict] = {}

    def entry(variant: Variant) -> dict:
        key = (variant.stem, variant.text)
        if key not in entries:
            checks = sorted({check for other in CORPUS if other.kind == Kind.WRONG
                             and (other.stem, other.text) == key for check in other.checks})
            path = write_variant(tmp_path_factory.mktemp(variant.stem), variant.stem, variant.text)
            entries[key] = grade(path, variant.stem, checks=checks)
        return entries[key]

    return entry


@pytest.mark.parametrize("variant", [_param(v) for v in CORPUS])
def test_variant_is_graded_as_declared(variant, tmp_path, graded_submission):
    if variant.kind == Kind.WRONG:
        entry = graded_submission(variant)
        checks = by_check(entry)
        for name in variant.checks:
            check = checks[name]
            assert not check["passed"] and check["score"] < check["max_score"], check
            assert check["feedback"], check
            if variant.hint:
                assert check["hint"] and variant.hint in check["hint"], check
        assert entry["score"] < entry["max_score"], entry
    elif variant.kind == Kind.CORRECT:
        entry = grade(write_variant(tmp_path, variant.stem, variant.text), variant.stem)
        failed = {c["name"]: c["feedback"] for c in entry["checks"] if not c["passed"]}
        assert not failed and entry["score"] == pytest.approx(10.0), failed
    else:
        entry = grade(write_variant(tmp_path, variant.stem, variant.text), variant.stem,
                      checks=variant.checks)
        assert entry["score"] == 0.0, entry
        assert all(c["status"] == "delegation" for c in entry["checks"]), entry["checks"]
        # it names what was delegated to: a Keras built-in, or the course's own answers
        assert "built-in" in entry["message"] or "your own code" in entry["message"], entry
