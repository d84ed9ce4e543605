"""The JAX backend on a GPU: skipped, with the reason, where JAX is not installed or sees no GPU.

On such a machine (JAX with CUDA, ``pip install -e ".[jax-cuda]"``): the grader runs chapter 6's
checks on the GPU and says so, and chapter 6's Adam trains to the same numbers on the GPU as on
the CPU, in float32 and in mixed_float16.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from course import backends
from graderlib import ROOT, SEED, run_cli

TRAIN = r"""
import json, sys
import numpy as np
import keras
from solutions import ch06_adam

keras.config.set_dtype_policy(sys.argv[1])
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="tanh"),
                          keras.layers.Dense(1, dtype="float32")])
model.compile(optimizer=ch06_adam.Adam(learning_rate=0.01), loss="mse")
rng = np.random.default_rng(0)
x = rng.normal(size=(128, 16)).astype("float32")
y = rng.normal(size=(128, 1)).astype("float32")
history = model.fit(x, y, batch_size=32, epochs=6, shuffle=False, verbose=0)
import jax
print("RESULT " + json.dumps({"platform": jax.devices()[0].platform,
                              "loss": history.history["loss"],
                              "weights": np.concatenate([np.ravel(w) for w in model.get_weights()]).tolist()}))
"""


@pytest.fixture(scope="module")
def jax_gpu():
    if not backends.installed("jax"):
        pytest.skip(f"the jax backend is not installed ({backends.INSTALL['jax']})")
    info = backends.probe("jax")
    if not info.get("accelerators"):
        pytest.skip("JAX sees no GPU here (" + (info.get("error") or "a CPU-only machine") + ")")
    return info


def _train(policy: str, device: str) -> dict:
    env = backends.environment("jax", device=device)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-c", TRAIN, policy], env=env, capture_output=True,
                          text=True, timeout=600, cwd=ROOT)
    lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    assert lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT "):])


@pytest.mark.parametrize("policy,rtol", [("float32", 1e-4), ("mixed_float16", 2e-2)])
def test_gpu_results_match_cpu_results_on_jax(jax_gpu, policy, rtol):
    gpu, cpu = _train(policy, "auto"), _train(policy, "cpu")
    assert gpu["platform"] == "gpu" and cpu["platform"] == "cpu"
    for key in ("loss", "weights"):
        np.testing.assert_allclose(gpu[key], cpu[key], rtol=rtol, atol=rtol)


def test_the_grader_runs_on_the_gpu_with_jax_and_says_so(jax_gpu, tmp_path):
    out = tmp_path / "r.json"
    result = run_cli("grade", str(ROOT / "solutions"), "--chapter", "6", "--backend", "jax",
                     "--device", "gpu", "--seed", str(SEED), "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["backend"] == "jax" and report["devices"] == ["GPU"]
    assert report["score"] == pytest.approx(10.0)
