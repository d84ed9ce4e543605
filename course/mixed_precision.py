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
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


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
