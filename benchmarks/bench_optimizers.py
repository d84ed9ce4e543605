"""Benchmarks (not tests): the course's optimizers against the Keras built-ins, from one run.

    python benchmarks/bench_optimizers.py            # everything
    python benchmarks/bench_optimizers.py --quick    # fewer steps (a smoke run)
    python benchmarks/bench_optimizers.py --skip-grade

Prints, for every optimizer exercise whose solution exists:
1. model.fit step time of the course optimizer / the Keras built-in on the same model, with and
   without jit_compile (target: at most 1.10);
2. update throughput on 10M parameters (a compiled apply_gradients) against Keras and against a
   memory-copy bound measured on the same machine (bytes the update must move / copy bandwidth);
and the wall time of `course grade solutions/`.

Timings alternate the two optimizers over several rounds and keep the median, so a background
load hits both alike. Ratios from one run on one machine are what to compare, not seconds.
"""

from __future__ import annotations

import argparse
import importlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

# (solution stem, class, constructor kwargs, Keras built-in name, its kwargs, slot tensors per weight)
CASES = (
    ("ch03_mini_batch", "SGD", {"learning_rate": 0.01}, "SGD", {"learning_rate": 0.01}, 0),
    ("ch04_momentum", "MomentumSGD", {"learning_rate": 0.01, "momentum": 0.9}, "SGD",
     {"learning_rate": 0.01, "momentum": 0.9}, 1),
    ("ch05_rmsprop", "RMSprop", {"learning_rate": 0.001}, "RMSprop", {"learning_rate": 0.001}, 1),
    ("ch06_adam", "Adam", {"learning_rate": 0.001}, "Adam", {"learning_rate": 0.001}, 2),
    ("ch06_adam", "AdamW", {"learning_rate": 0.001}, "AdamW", {"learning_rate": 0.001}, 2),
)


def available_cases():
    for stem, cls_name, kwargs, builtin, builtin_kwargs, slots in CASES:
        try:
            module = importlib.import_module(f"solutions.{stem}")
        except ModuleNotFoundError:
            continue
        if hasattr(module, cls_name):
            yield stem, getattr(module, cls_name), kwargs, builtin, builtin_kwargs, slots


def fit_step_time(make_optimizer, jit: bool, steps: int, batch: int = 256) -> float:
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch * steps, 256)).astype("float32")
    y = rng.integers(0, 10, size=(batch * steps,))
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((256,)), keras.layers.Dense(512, activation="relu"),
                              keras.layers.Dense(512, activation="relu"), keras.layers.Dense(10)])
    model.compile(optimizer=make_optimizer(),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=jit)
    model.fit(x[: batch * 5], y[: batch * 5], batch_size=batch, epochs=1, verbose=0)  # trace
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
    return (time.perf_counter() - start) / steps


def update_time(make_optimizer, n_params: int, steps: int, jit: bool = False) -> float:
    import keras
    import tensorflow as tf

    variable = keras.Variable(np.zeros(n_params, "float32"))
    gradient = tf.constant(np.random.default_rng(0).normal(size=n_params).astype("float32"))
    optimizer = make_optimizer()
    optimizer.build([variable])

    @tf.function(jit_compile=jit)
    def step():
        optimizer.apply_gradients([(gradient, variable)])

    step()
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _ = variable.numpy()[:1]  # wait for the last update
    return (time.perf_counter() - start) / steps


def copy_bandwidth(n_params: int, repeats: int = 20) -> float:
    """Bytes per second of a plain float32 array copy (read + write counted)."""
    src = np.ones(n_params, np.float32)
    dst = np.empty_like(src)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.copyto(dst, src)
        times.append(time.perf_counter() - start)
    return 2 * src.nbytes / statistics.median(times)


def median_ratio(course_fn, keras_fn, rounds: int) -> tuple[float, float, float]:
    course, builtin = [], []
    for _ in range(rounds):
        course.append(course_fn())
        builtin.append(keras_fn())
    c, k = statistics.median(course), statistics.median(builtin)
    return c, k, c / k


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps and rounds")
    parser.add_argument("--skip-grade", action="store_true", help="skip timing `course grade solutions/`")
    args = parser.parse_args(argv)
    import keras
    import tensorflow as tf

    rounds, fit_steps, upd_steps = (1, 10, 5) if args.quick else (3, 40, 20)
    n_params = 10_000_000
    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}, "
          f"devices: {[d.device_type for d in tf.config.list_physical_devices()]}, "
          f"{os.cpu_count()} CPU cores")
    bandwidth = copy_bandwidth(n_params)
    print(f"memory copy bandwidth: {bandwidth / 1e9:.1f} GB/s (numpy copy of 40 MB, read + write)\n")
    rows = []
    for stem, cls, kwargs, builtin, builtin_kwargs, slots in available_cases():
        ours = lambda cls=cls, kwargs=kwargs: cls(**kwargs)  # noqa: E731
        theirs = lambda b=builtin, kw=builtin_kwargs: getattr(keras.optimizers, b)(**kw)  # noqa: E731
        label = f"{stem}.{cls.__name__}"
        for jit in (False, True):
            c, k, r = median_ratio(lambda: fit_step_time(ours, jit, fit_steps),
                                   lambda: fit_step_time(theirs, jit, fit_steps), rounds)
            rows.append((label, f"fit step{' (jit)' if jit else ''}", c * 1e3, k * 1e3, r, None))
        c, k, r = median_ratio(lambda: update_time(ours, n_params, upd_steps),
                               lambda: update_time(theirs, n_params, upd_steps), rounds)
        # bytes an update must move: read w, g and each slot; write w and each slot
        bound = (2 + slots + 1 + slots) * 4 * n_params / bandwidth
        rows.append((label, "10M update", c * 1e3, k * 1e3, r, c / bound))
    print(f"{'optimizer':28s} {'measure':16s} {'course ms':>10s} {'keras ms':>10s} "
          f"{'ratio':>7s} {'x copy bound':>13s}")
    for label, what, c, k, r, b in rows:
        flag = "" if what == "10M update" or r <= 1.10 else "  (above the 1.10 target)"
        bound = f"{b:13.2f}" if b is not None else " " * 13
        print(f"{label:28s} {what:16s} {c:10.2f} {k:10.2f} {r:7.3f} {bound}{flag}")
    if not args.skip_grade:
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-m", "course.cli", "grade", str(ROOT / "solutions"),
                                 "--seed", "1", "--json", os.devnull], capture_output=True, text=True,
                                cwd=ROOT)
        wall = time.perf_counter() - start
        total = [l for l in result.stdout.splitlines() if l.startswith("Total")]
        print(f"\ncourse grade solutions/: {wall:.1f} s wall ({total[0] if total else result.stderr[-300:]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
