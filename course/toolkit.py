"""The chapters' shared toolkit, in the spirit of d2l's: what several chapters need and none of
them should hold a copy of. A chapter keeps its idea and its experiment; loading a data set,
training a model, comparing a component with Keras, counting epochs to a target and printing a
table live here.

Which component a chapter uses (the learner's, the solution, or Keras's stand-in while a stub is
not implemented) is ``ChapterRun.pick`` in ``course.chapter``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402 - after the log level: chapters import TensorFlow anyway


# ------------------------------------------------------------------------------------ data sets

@dataclass
class Dataset:
    """A data set ready for a dense model: training (and validation) arrays, float32, the
    features standardized with the training statistics (chapter 1's lesson) unless asked not to."""

    name: str
    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    classification: bool
    outputs: int  # classes, or 1 for a regression target

    @property
    def features(self) -> int:
        return int(self.x.shape[1])


def load_dataset(name: str | None, *, default: str = "course_digits", cap: int | None = None,
                 val_cap: int | None = None, validation: bool = False, standardize: bool = True,
                 classification_only: bool = False) -> Dataset:
    """``name`` (any TFDS data set; None for ``default``) as a ``Dataset``.

    Falls back to ``default`` with a printed note when ``name`` cannot be had (no network for a
    download, an unknown name, or a regression set where ``classification_only``). ``cap`` and
    ``val_cap`` keep the first rows only (a large download would make a chapter slow), said in
    a note. With ``validation`` the test split is the validation set; a data set with only a
    train split holds out its last 20%. A regression target is standardized too: optimizers
    with steps of about the learning rate would need thousands of epochs to move an output to a
    price in the hundreds.
    """
    from course import data as course_data

    name = name or default
    try:
        x, y = course_data.load_any(name, "train")
        x_val = y_val = None
        if validation:
            try:
                x_val, y_val = course_data.load_any(name, "test")
            except ValueError:  # a data set with only a train split
                cut = int(0.8 * len(x))
                x, y, x_val, y_val = x[:cut], y[:cut], x[cut:], y[cut:]
    except course_data.DataUnavailable as exc:
        if name == default:
            raise
        print(f"note: {exc}\n      Using {default} instead.")
        return load_dataset(default, default=default, cap=cap, val_cap=val_cap,
                            validation=validation, standardize=standardize,
                            classification_only=classification_only)
    classification = np.issubdtype(np.asarray(y).dtype, np.integer)
    if classification_only and not classification:
        print(f"note: {name} is not a classification data set; using {default} instead")
        return load_dataset(default, default=default, cap=cap, val_cap=val_cap,
                            validation=validation, standardize=standardize,
                            classification_only=classification_only)
    capped = [f"{cap} training"] * (cap is not None and len(x) > cap) + [f"{val_cap} test"] * (
        val_cap is not None and x_val is not None and len(x_val) > val_cap)
    if capped:
        print(f"note: using the first {' and '.join(capped)} examples of {name}")
    x, y = course_data.as_vectors(x[:cap]).astype("float64"), np.asarray(y[:cap])
    if x_val is not None:
        x_val, y_val = course_data.as_vectors(x_val[:val_cap]).astype("float64"), np.asarray(y_val[:val_cap])
    if standardize:
        mean, std = x.mean(axis=0), x.std(axis=0)
        std[std == 0] = 1.0  # a constant feature (the digits' border pixels) carries nothing
        x = (x - mean) / std
        x_val = None if x_val is None else (x_val - mean) / std
    if classification:
        outputs = int(max(y.max(), y_val.max() if y_val is not None else 0) + 1)
        y, y_val = y.astype("int32"), None if y_val is None else y_val.astype("int32")
    else:
        outputs = 1
        y_mean, y_std = y.mean(), y.std()
        y = ((y - y_mean) / y_std).astype("float32")
        y_val = None if y_val is None else ((y_val - y_mean) / y_std).astype("float32")
    return Dataset(name, x.astype("float32"), y,
                   None if x_val is None else x_val.astype("float32"), y_val,
                   bool(classification), outputs)


# ------------------------------------------------------------------------------------ models

def dense_model(data: Dataset, hidden: Sequence[int] = (64,), activation: str = "relu",
                seed: int = 0, normalization: Callable | None = None):
    """A small dense network for ``data``: ``hidden`` layers, then softmax classes or one linear
    output. ``normalization()`` (a layer factory) goes after each hidden Dense when given.
    The same ``seed`` gives the same starting weights, so runs differ only in what is studied.
    The output layer computes in float32 whatever the dtype policy: under ``mixed_float16`` a
    softmax and its loss in float16 lose the small probabilities (Keras's own advice)."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((data.features,))]
    for units in hidden:
        layers.append(keras.layers.Dense(units, activation=None if normalization else activation))
        if normalization:
            layers += [normalization(), keras.layers.Activation(activation)]
    layers.append(keras.layers.Dense(data.outputs, activation="softmax" if data.classification
                                     else None, dtype="float32"))
    return keras.Sequential(layers)


def loss_for(data: Dataset) -> str:
    return "sparse_categorical_crossentropy" if data.classification else "mse"


# ------------------------------------------------------------------------------------ training

@dataclass
class TrainingRun:
    """What a training run recorded: per epoch (and per batch when asked), with the model."""

    loss: np.ndarray            # the training loss of each epoch (Keras's running mean)
    val_loss: np.ndarray | None  # the validation loss after each epoch
    batch_loss: np.ndarray | None  # each batch's own loss (Keras 3 logs a running mean: undone)
    model: object
    seconds: float


class BatchLosses(keras.callbacks.Callback):
    """Records each batch's own loss. Keras 3 logs the running mean of the epoch so far: the
    mean after batch k times k + 1, less the mean before it times k, is batch k's loss."""

    def on_train_begin(self, logs=None):
        self.losses = []

    def on_epoch_begin(self, epoch, logs=None):
        self._previous = 0.0

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        self.losses.append(mean * (batch + 1) - self._previous * batch)
        self._previous = mean


def train(model, optimizer, data: Dataset, *, epochs: int, batch_size: int = 32,
          per_batch: bool = False, callbacks: Sequence = (), shuffle_seed: int = 0,
          jit_compile: bool | str = "auto") -> TrainingRun:
    """``model.fit`` on ``data`` (validation after each epoch where it has a validation set),
    recording the losses. The batches come in one seeded order, so two optimizers trained on
    the same model and seed see the very same batches."""
    import time

    model.compile(optimizer=optimizer, loss=loss_for(data), jit_compile=jit_compile)
    recorder = BatchLosses() if per_batch else None
    keras.utils.set_random_seed(shuffle_seed)
    started = time.perf_counter()
    history = model.fit(data.x, data.y, batch_size=batch_size, epochs=epochs, verbose=0,
                        validation_data=(data.x_val, data.y_val) if data.x_val is not None else None,
                        callbacks=[*callbacks, *([recorder] if recorder else [])])
    seconds = time.perf_counter() - started
    return TrainingRun(np.asarray(history.history["loss"]),
                       np.asarray(history.history["val_loss"]) if "val_loss" in history.history else None,
                       np.asarray(recorder.losses) if recorder else None, model, seconds)


def epochs_to_reach(curve: Sequence[float], target: float, per_epoch: int = 1) -> float:
    """The first epoch (1-based; a fraction with ``per_epoch`` points per epoch) at which
    ``curve`` is at or below ``target``; infinity when it never gets there."""
    for i, value in enumerate(curve):
        if np.isfinite(value) and value <= target:
            return (i + 1) / per_epoch
    return math.inf


def shown(epochs: float) -> str:
    """An epoch count for a table: 'never' where the target was not reached."""
    return "never" if not math.isfinite(epochs) else (f"{epochs:.0f}" if epochs == int(epochs)
                                                      else f"{epochs:.1f}")


# ------------------------------------------------------------------------------------ comparing

def max_gap(a, b) -> float:
    """The largest absolute difference between two arrays (or nested lists of arrays)."""
    a = np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in _leaves(a)])
    b = np.concatenate([np.ravel(np.asarray(v, dtype=np.float64)) for v in _leaves(b)])
    return float(np.max(np.abs(a - b))) if a.size else 0.0


def _leaves(x) -> list:
    if isinstance(x, (list, tuple)):
        return [leaf for item in x for leaf in _leaves(item)]
    return [x]


def optimizer_paths(optimizers: dict, start: Sequence[np.ndarray], gradient: Callable,
                    steps: int) -> dict[str, list[np.ndarray]]:
    """Each optimizer's path from the same starting variables under the same gradient function
    ``gradient(step, values) -> gradients``: the side-by-side run of "ours" and Keras's."""
    paths = {}
    for label, optimizer in optimizers.items():
        variables = [keras.Variable(np.array(w, dtype="float32")) for w in start]
        path = [[np.array(w) for w in start]]
        for step in range(steps):
            grads = gradient(step, [v.numpy() for v in variables])
            optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in grads],
                                          variables))
            path.append([v.numpy().copy() for v in variables])
        paths[label] = path
    return paths


def side_by_side(ours, keras_built_in, start: Sequence[np.ndarray], gradient: Callable,
                 steps: int = 20) -> float:
    """Run a component's optimizer and Keras's from the same start on the same gradients;
    the largest gap between their variables over the whole run."""
    paths = optimizer_paths({"ours": ours, "keras": keras_built_in}, start, gradient, steps)
    return max_gap(paths["ours"], paths["keras"])


# ------------------------------------------------------------------------------------ tables

def table(title: str, columns: Sequence[str], rows: Sequence[Sequence], first_left: bool = True,
          left: Sequence[str] = ()):
    """Print rows (sequences of cells) under the given column names: numbers to the right, the
    first column and the ``left`` ones (text) to the left."""
    from rich.console import Console
    from rich.table import Table

    out = Table(title=title)
    for i, column in enumerate(columns):
        out.add_column(column, justify="left" if (i == 0 and first_left) or column in left
                       else "right")
    for row in rows:
        out.add_row(*(str(cell) for cell in row))
    Console().print(out)
