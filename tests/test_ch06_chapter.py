"""Chapter 6 runs end to end in --quick mode and leaves the plots a reader expects.

One run (about half a minute on 2 CPU cores) serves every test here. It is started with a
--dataset name that TFDS does not know, so the same run also checks that an unavailable data set
is reported in one clean line and the chapter carries on with course_digits.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PLOTS = ["bias_and_epsilon", "trajectories", "loss_curves", "adamw_vs_l2", "adam_vs_sgd"]
MISSING_DATASET = "surely_not_a_tfds_dataset"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ch06")
    env = dict(os.environ, COURSE_DATA_DIR=str(tmp_path_factory.mktemp("tfds")), MPLBACKEND="Agg")
    result = subprocess.run(
        [sys.executable, "-m", "chapters.ch06_adam", "--quick", "--out", str(out),
         "--dataset", MISSING_DATASET],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    return out, result


def test_exits_cleanly(quick_run):
    _, result = quick_run
    assert result.returncode == 0, result.stdout[-3000:] + "\n" + result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]


def test_every_plot_is_written_and_not_blank(quick_run):
    import matplotlib.image

    out, _ = quick_run
    for name in PLOTS:
        path = out / f"{name}.png"
        assert path.exists(), f"{name}.png was not written"
        assert path.stat().st_size > 20_000, f"{name}.png is suspiciously small"
        pixels = matplotlib.image.imread(path)
        assert pixels.shape[0] > 300 and pixels.shape[1] > 500, (name, pixels.shape)
        assert np.std(pixels[..., :3]) > 0.05, f"{name}.png is (nearly) a single colour"


def test_reports_the_measurements(quick_run):
    _, result = quick_run
    text = result.stdout
    assert "Adam converges 3-5x faster than vanilla SGD" in text
    assert text.count("claim check") >= 2
    # the side-by-side check against Keras printed its differences
    assert "ours vs Keras" in text and "max |difference|" in text
    # the mixed-precision section showed the loss scale and the CPU note
    assert "LossScaleOptimizer" in text and "32768" in text


def test_an_unavailable_dataset_is_one_clean_message(quick_run):
    _, result = quick_run
    assert f"no data set named '{MISSING_DATASET}'" in result.stdout
    assert "Using course_digits instead" in result.stdout
    assert "data set course_digits:" in result.stdout
