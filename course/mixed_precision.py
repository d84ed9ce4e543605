"""Mixed-precision helpers for the chapters' mixed-precision sections.

``mixed_float16`` keeps variables in float32 and computes in float16; ``compile()`` then wraps the
optimizer in a ``LossScaleOptimizer`` so that small float16 gradients do not underflow to zero.
On a CPU float16 is slow (no Tensor Cores) but numerically the same, so the numerical points
(overflow, underflow, an epsilon that is 0 in float16) are shown everywhere and the speed and
memory comparison only where a GPU is present.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np


def gpu_available() -> bool:
    """Whether the running backend itself sees a GPU (JAX or PyTorch built without CUDA see
    none even where TensorFlow would)."""
    from course import backends

    return bool(backends.accelerators())


class _PeakMemory:
    """The running backend's peak GPU memory over a stretch of work, in MiB, or None where the
    backend has no such measure."""

    def __init__(self):
        import keras

        self.backend = keras.backend.backend()
        self.floor = 0

    def start(self) -> None:
        if self.backend == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.reset_memory_stats("GPU:0")
        elif self.backend == "torch":
            import torch

            torch.cuda.reset_peak_memory_stats()
        elif self.backend == "jax":
            # XLA's peak cannot be reset: what is in use now is the floor of this stretch, and a
            # peak that never rose above an earlier stretch's is reported as unknown
            stats = self._jax_stats()
            self.floor = stats.get("peak_bytes_in_use", 0)

    @staticmethod
    def _jax_stats() -> dict:
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        return (gpus[0].memory_stats() or {}) if gpus else {}

    def peak(self) -> float | None:
        if self.backend == "tensorflow":
            import tensorflow as tf

            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        if self.backend == "torch":
            import torch

            return torch.cuda.max_memory_allocated() / 2**20
        if self.backend == "jax":
            peak = self._jax_stats().get("peak_bytes_in_use")
            return peak / 2**20 if peak is not None and peak > self.floor else None
        return None


@contextlib.contextmanager
def policy(name: str):
    """Set the global Keras dtype policy for the ``with`` block, then restore the old one."""
    import keras

    old = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(old)


def describe(model) -> dict:
    """Variable dtype, compute dtype, optimizer class and (if any) the loss scale of a compiled model."""
    import keras

    layer = next((l for l in model.layers if l.weights), model.layers[-1])
    optimizer = model.optimizer
    info = {
        "policy": layer.dtype_policy.name,
        "variable dtype": layer.variable_dtype,
        "compute dtype": layer.compute_dtype,
        "optimizer": type(optimizer).__name__ if optimizer is not None else None,
    }
    if isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        info["inner optimizer"] = type(optimizer.inner_optimizer).__name__
        info["loss scale"] = float(np.asarray(optimizer.dynamic_scale))
    return info


def print_table(rows: list[dict], title: str = "mixed precision") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row.get(c, "")) for c in columns))
    Console().print(table)


def time_fit(model, x, y, batch_size: int, epochs: int = 1) -> float:
    """Seconds per step of ``model.fit`` after one warm-up epoch (tracing excluded)."""
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0)
    steps = int(np.ceil(len(x) / batch_size)) * epochs
    start = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=epochs, verbose=0)
    return (time.perf_counter() - start) / steps


def wide_classifier(optimizer, width: int = 4096, inputs: int = 1024, classes: int = 10,
                    middle=None):
    """The GPU comparison's model: two ``width``-wide ReLU layers (optionally each followed by
    ``middle()``, e.g. a normalization layer), a float32 softmax, compiled with ``optimizer``."""
    import keras

    stack = [keras.Input((inputs,))]
    for _ in range(2):
        if middle is None:
            stack.append(keras.layers.Dense(width, activation="relu"))
        else:
            stack += [keras.layers.Dense(width, use_bias=False), middle(),
                      keras.layers.Activation("relu")]
    # the softmax stays float32 under mixed_float16: float16 logits saturate
    stack.append(keras.layers.Dense(classes, activation="softmax", dtype="float32"))
    model = keras.Sequential(stack)
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    return model


def compare_on_gpu(make_model, title: str, data=None, batch_size: int = 1024,
                   epochs: int = 1) -> list[dict] | None:
    """Step time and peak GPU memory of one model under float32 and under mixed_float16.

    ``make_model(x)`` is called inside each policy with the training inputs and returns a
    compiled model. ``data()`` returns ``(x, y)``; by default 16384 random 1024-feature examples
    with 10 classes. It is called only when there is a GPU. Where the backend sees none this says
    so and returns None: on a CPU float16 is emulated, so there is no speed to compare.
    """
    import keras

    backend = keras.backend.backend()
    if not gpu_available():
        print(f"No GPU visible to Keras's {backend} backend: the step-time and memory comparison "
              "needs one (run the chapter on a machine with an NVIDIA GPU to see it).")
        return None
    if data is None:
        rng = np.random.default_rng(0)
        x = rng.normal(size=(16384, 1024)).astype("float32")
        y = rng.integers(0, 10, size=len(x)).astype("int32")
    else:
        x, y = data()
    rows, measured = [], {}
    memory = _PeakMemory()
    # mixed_float16 first: its peak should be the lower one, and on JAX, whose peak cannot be
    # reset, only a peak above the earlier stretch's can be read
    for name in ("mixed_float16", "float32"):
        memory.start()
        with policy(name):
            keras.utils.set_random_seed(0)
            model = make_model(x)
        seconds = time_fit(model, x, y, batch_size=batch_size, epochs=epochs)
        peak = memory.peak()
        measured[name] = (seconds, peak)
        rows.append({"policy": name, "ms per step": f"{1000 * seconds:.2f}",
                     "peak GPU memory (MiB)": "not measured" if peak is None else f"{peak:.0f}"})
    rows.reverse()
    print_table(rows, title=title)
    (t32, m32), (t16, m16) = measured["float32"], measured["mixed_float16"]
    ratio = (f"{m16 / m32:.2f}x the memory" if m16 is not None and m32 is not None
             else f"memory not measured (no peak to read on the {backend} backend)")
    print(f"mixed_float16: {t32 / t16:.2f}x the speed and {ratio} of float32")
    return rows
