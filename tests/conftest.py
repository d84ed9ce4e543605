import json
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _graded_once(tmp_path_factory, folder: str) -> dict:
    """``course grade <folder>`` through the real CLI, every chapter at once, computed once per
    test run: with pytest-xdist the first worker grades and the others read its report."""
    from filelock import FileLock

    from graderlib import ROOT, grade_cli_json

    if not os.environ.get("PYTEST_XDIST_WORKER"):
        report = grade_cli_json(ROOT / folder, tmp_path_factory.mktemp(folder))
    else:
        shared = tmp_path_factory.getbasetemp().parent / f"graded-{folder}.json"
        with FileLock(f"{shared}.lock"):
            if shared.is_file():
                report = json.loads(shared.read_text())
            else:
                report = grade_cli_json(ROOT / folder, tmp_path_factory.mktemp(folder))
                shared.write_text(json.dumps(report))
    return {"report": report, **{e["name"]: e for e in report["exercises"]}}


@pytest.fixture(scope="session")
def graded_solutions(tmp_path_factory) -> dict:
    """``course grade solutions/`` (as an instructor checks a release): the JSON report, and its
    exercise entries by file stem."""
    return _graded_once(tmp_path_factory, "solutions")


@pytest.fixture(scope="session")
def graded_stubs(tmp_path_factory) -> dict:
    """``course grade exercises/`` (the generated stubs), the same way."""
    return _graded_once(tmp_path_factory, "exercises")


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
