import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


@pytest.fixture(scope="session")
def graded_solutions(tmp_path_factory) -> dict:
    """``course grade solutions/`` through the real CLI, every chapter at once (as an instructor
    checks a release): the JSON report's exercise entries by file stem."""
    from graderlib import ROOT, grade_cli_json

    report = grade_cli_json(ROOT / "solutions", tmp_path_factory.mktemp("solutions-report"))
    return {"report": report, **{e["name"]: e for e in report["exercises"]}}


@pytest.fixture(scope="session")
def graded_stubs(tmp_path_factory) -> dict:
    """``course grade exercises/`` (the generated stubs) through the real CLI, every chapter."""
    from graderlib import ROOT, grade_cli_json

    report = grade_cli_json(ROOT / "exercises", tmp_path_factory.mktemp("stubs-report"))
    return {"report": report, **{e["name"]: e for e in report["exercises"]}}


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` are skipped, with the reason, when TensorFlow sees no GPU."""
    if not any(item.get_closest_marker("gpu") for item in items):
        return
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return
    skip = pytest.mark.skip(reason="needs a GPU visible to TensorFlow; none on this machine")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(skip)
