"""Chapter 6's Adam in model.fit on each Keras backend: the time of a training step with the
course's Adam (``solutions/ch06_adam.py``) over the time with Keras's own, with and without
compilation (``jit_compile=True``: XLA on TensorFlow and JAX, torch.compile on PyTorch).

    python benchmarks/bench_backends.py                 # every installed backend
    python benchmarks/bench_backends.py --backend jax --repeats 5

Each backend runs in its own process (Keras picks its backend once, at import). Inside it, the
two optimizers alternate, ``--repeats`` times each, so that a machine whose speed drifts (a
shared 2-core VM) slows both alike; the figure is the ratio of the medians of the step times,
measured over whole epochs after a first epoch that pays for tracing and compiling. The first
epoch's time is printed as well (compilation is what it mostly is).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from course import backends  # noqa: E402

MEASURE = r"""
import json, statistics, sys, time
import numpy as np
import keras
import solutions.ch06_adam as ours

jit, repeats, epochs = sys.argv[1] == "1", int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
x = rng.normal(size=(4096, 32)).astype("float32")
y = (np.tanh(x @ rng.normal(size=(32, 1))) + 0.1 * rng.normal(size=(4096, 1))).astype("float32")
BATCH = 64
steps = len(x) // BATCH


def model_with(make):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((32,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(128, activation="relu"), keras.layers.Dense(1)])
    model.compile(optimizer=make(learning_rate=1e-3), loss="mse", jit_compile=jit)
    started = time.perf_counter()
    model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    return model, time.perf_counter() - started


runs = {"ours": model_with(ours.Adam), "keras": model_with(keras.optimizers.Adam)}
times = {name: [] for name in runs}
for _ in range(repeats):
    for name, (model, _) in runs.items():
        started = time.perf_counter()
        model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0)
        times[name].append((time.perf_counter() - started) / (epochs * steps))
out = {name: {"step_ms": 1000 * statistics.median(t), "first_epoch_s": runs[name][1]}
       for name, t in times.items()}
out["ratio"] = out["ours"]["step_ms"] / out["keras"]["step_ms"]
print("RESULT " + json.dumps(out))
"""


def measure(backend: str, jit: bool, repeats: int, epochs: int) -> dict:
    env = backends.environment(backend, device="cpu")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    done = subprocess.run([sys.executable, "-c", MEASURE, "1" if jit else "0", str(repeats),
                           str(epochs)], env=env, capture_output=True, text=True, timeout=1800)
    lines = [l for l in done.stdout.splitlines() if l.startswith("RESULT ")]
    if not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail[:200]}
    return json.loads(lines[-1][len("RESULT "):])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", action="append", choices=backends.BACKENDS,
                        help="only this backend (repeatable; default: every installed one)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed run")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    chosen = args.backend or backends.available()
    print(f"{'backend':11s} {'jit':5s} {'ours ms/step':>13s} {'Keras ms/step':>14s} {'ratio':>6s} "
          f"{'first epoch (ours/Keras)':>26s}")
    results = []
    for backend in chosen:
        for jit in (False, True):
            r = measure(backend, jit, args.repeats, args.epochs)
            results.append({"backend": backend, "jit_compile": jit, **r})
            if "error" in r:
                print(f"{backend:11s} {str(jit):5s} failed: {r['error']}", flush=True)
                continue
            print(f"{backend:11s} {str(jit):5s} {r['ours']['step_ms']:13.2f} "
                  f"{r['keras']['step_ms']:14.2f} {r['ratio']:6.2f} "
                  f"{r['ours']['first_epoch_s']:11.1f} s / {r['keras']['first_epoch_s']:.1f} s",
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
