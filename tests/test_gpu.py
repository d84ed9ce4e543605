"""GPU checks (marked ``gpu``): skipped, with the reason, where TensorFlow sees no GPU.

On a GPU: the course optimizers match the Keras built-ins there, GPU results match CPU results
(float32 and mixed_float16), and the grader runs its checks on the GPU and says so.
"""

import json

import numpy as np
import pytest

from graderlib import ROOT, SEED, run_cli

pytestmark = pytest.mark.gpu


def _trajectory(make_optimizer, device, policy="float32", steps=25):
    import keras
    import tensorflow as tf

    keras.config.set_dtype_policy(policy)
    try:
        with tf.device(device):
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(32, activation="tanh"),
                                      keras.layers.Dense(1)])
            model.compile(optimizer=make_optimizer(), loss="mse")
            rng = np.random.default_rng(0)
            x = rng.normal(size=(128, 16)).astype("float32")
            y = rng.normal(size=(128, 1)).astype("float32")
            history = model.fit(x, y, batch_size=32, epochs=steps // 4, shuffle=False, verbose=0)
            return np.asarray(history.history["loss"]), np.concatenate(
                [np.ravel(w) for w in model.get_weights()])
    finally:
        keras.config.set_dtype_policy("float32")


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_solution_matches_keras_on_the_gpu(name):
    import keras

    from solutions import ch06_adam

    ours = _trajectory(lambda: getattr(ch06_adam, name)(learning_rate=0.01), "/GPU:0")
    theirs = _trajectory(lambda: getattr(keras.optimizers, name)(learning_rate=0.01), "/GPU:0")
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("policy,rtol", [("float32", 1e-4), ("mixed_float16", 2e-2)])
def test_gpu_results_match_cpu_results(policy, rtol):
    from solutions import ch06_adam

    gpu = _trajectory(lambda: ch06_adam.Adam(learning_rate=0.01), "/GPU:0", policy)
    cpu = _trajectory(lambda: ch06_adam.Adam(learning_rate=0.01), "/CPU:0", policy)
    for a, b in zip(gpu, cpu):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol)


def test_grader_runs_on_the_gpu_and_says_so(tmp_path):
    out = tmp_path / "r.json"
    result = run_cli("grade", str(ROOT / "solutions"), "--chapter", "6", "--device", "gpu",
                     "--seed", str(SEED), "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["devices"] == ["GPU"] and report["score"] == pytest.approx(10.0)
