"""The chapters' shared toolkit, in the spirit of d2l's: what several chapters need and none of
them should hold a copy of. A chapter keeps its idea and its experiment; loading a data set,
training a model, comparing a component with Keras, counting epochs to a target and printing a
table live here.

Which component a chapter uses (the learner's, the solution, or Keras's stand-in while a stub is
not implemented) is ``ChapterRun.pick`` in ``course.chapter``.
"""

from __future__ import annotations

import functools
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


def steps_per_call(steps: int) -> int:
    """``steps_per_execution`` for ``compile()``: ``steps`` updates in one call where the backend
    can (TensorFlow, JAX), one where it cannot (PyTorch's trainer rejects more)."""
    return 1 if keras.backend.backend() == "torch" else steps


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
    from course.backends import to_numpy  # a PyTorch output that takes part in autograd too

    a = np.concatenate([np.ravel(to_numpy(v, dtype=np.float64)) for v in _leaves(a)])
    b = np.concatenate([np.ravel(to_numpy(v, dtype=np.float64)) for v in _leaves(b)])
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


# ------------------------------------------------------------------------------------ backends
# Keras's fit, evaluate and optimizers run on every backend; what does not is a chapter's own
# look inside training (a gradient outside fit, thousands of optimizer steps, a training step it
# times itself). Each backend has its own way to differentiate and to compile, so these helpers
# hold the three ways once and the chapters say only what they compute.

def value_and_gradients(loss_fn: Callable, variables: Sequence) -> tuple[float, list[np.ndarray]]:
    """``loss_fn()`` (a scalar computed from Keras variables) and its gradients with respect to
    ``variables`` (``keras.Variable``s, trainable or not), as a float and NumPy arrays, on any
    backend (``course.backends.value_and_gradients``; assignments ``loss_fn`` makes are kept)."""
    from course.backends import value_and_gradients as on_backend

    loss, grads, _ = on_backend(loss_fn, variables)
    return float(keras.ops.convert_to_numpy(loss)), [keras.ops.convert_to_numpy(g) for g in grads]


def repeated_updates(optimizer, variables: Sequence, gradients: Callable, steps: int,
                     record: bool = False) -> list[np.ndarray] | None:
    """``steps`` updates of ``variables`` by ``optimizer``, the gradients being
    ``gradients(values)`` (a list of tensors from the variables' current values, in
    ``keras.ops``), compiled into one loop: thousands of steps of a tiny problem cost well under
    a second, where as many Python calls would cost seconds. With ``record``, each variable's
    value after every step (arrays of shape ``(steps, *shape)``)."""
    variables = list(variables)
    optimizer.build(variables)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        @tf.function
        def run():
            paths = [tf.TensorArray(v.dtype, size=steps) for v in variables]
            for t in tf.range(steps):
                values = [v.value for v in variables]
                optimizer.apply_gradients(zip(gradients(values), variables))
                if record:  # a Python flag: decided once, when TensorFlow traces the function
                    paths = [p.write(t, v.value) for p, v in zip(paths, variables)]
            return [p.stack() for p in paths] if record else []

        paths = run()
    elif backend == "jax":
        import jax

        def step(state, _):
            values, slots = state
            values, slots = optimizer.stateless_apply(slots, gradients(values), values)
            return (values, slots), (values if record else None)

        (values, slots), paths = jax.lax.scan(
            step, ([v.value for v in variables], [v.value for v in optimizer.variables]),
            length=steps)
        for variable, value in zip([*variables, *optimizer.variables], [*values, *slots]):
            variable.assign(value)
    else:  # eager: one Python call per step
        paths = [[] for _ in variables]
        for _ in range(steps):
            optimizer.apply_gradients(zip(gradients([v.value for v in variables]), variables))
            if record:
                for path, variable in zip(paths, variables):
                    path.append(keras.ops.convert_to_numpy(variable.value).copy())
        paths = [np.stack(p) for p in paths] if record else None
    return [keras.ops.convert_to_numpy(p) for p in paths] if record else None


@functools.lru_cache(maxsize=None)  # one filter is enough
def _quiet_retracing() -> None:
    """Drop TensorFlow's "frequent retracing" notice and nothing else: every CompiledTraining
    compiles its own functions, once, on purpose (they close over its model and optimizer), but
    TensorFlow counts those first traces across instances, because they share their source code,
    and then warns about "excessive retracing" that is not there."""
    import logging

    import tensorflow as tf

    class SkipRetracingNotice(logging.Filter):
        def filter(self, record):
            return "triggered tf.function retracing" not in record.getMessage()

    tf.get_logger().addFilter(SkipRetracingNotice())


class CompiledTraining:
    """A model trained by hand with a compiled step: for a chapter that times single updates,
    loops over its own batches, or reads the whole training set's loss after every step, where
    ``model.fit``'s per-batch Python call would cost more than the batch.

    ``loss(y, predictions)`` is the batch's scalar loss. On TensorFlow the step and the epoch are
    ``tf.function``s (an epoch is one call, its loop inside the graph); on JAX they are
    ``jax.jit``-compiled stateless functions (an epoch a ``fori_loop``) whose results are written
    back to the Keras variables; on PyTorch they run eagerly."""

    def __init__(self, model, optimizer, loss: Callable):
        self.model, self.optimizer, self.loss = model, optimizer, loss
        self.backend = keras.backend.backend()
        if self.backend == "tensorflow":
            _quiet_retracing()
        # the optimizer's slots made now: made during the first call instead, they would force
        # TensorFlow to trace the step a second time (and JAX needs them as inputs)
        optimizer.build(model.trainable_variables)
        self._step = self._epoch = self._indexed = None

    # ---- the update itself, per backend

    def _eager_update(self, x, y):
        """One update where Keras variables can be assigned (TensorFlow, PyTorch)."""
        if self.backend == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                value = self.loss(y, self.model(x, training=True))
            grads = tape.gradient(value, self.model.trainable_variables)
        else:
            import torch

            value = self.loss(y, self.model(x, training=True))
            grads = torch.autograd.grad(value, [v.value for v in self.model.trainable_variables])
        self.optimizer.apply_gradients(zip(grads, self.model.trainable_variables))
        return value

    def _state(self):
        return ([v.value for v in self.model.trainable_variables],
                [v.value for v in self.model.non_trainable_variables],
                [v.value for v in self.optimizer.variables])

    def _write_back(self, state) -> None:
        for variables, values in zip((self.model.trainable_variables,
                                      self.model.non_trainable_variables,
                                      self.optimizer.variables), state):
            for variable, value in zip(variables, values):
                variable.assign(value)

    def _stateless_update(self, state, x, y):
        """One update as a pure function of the variables' values (JAX)."""
        import jax

        trainable, non_trainable, slots = state

        def loss_of(trainable):
            predictions, updated = self.model.stateless_call(trainable, non_trainable, x,
                                                             training=True)
            return self.loss(y, predictions), updated

        (_, non_trainable), grads = jax.value_and_grad(loss_of, has_aux=True)(trainable)
        trainable, slots = self.optimizer.stateless_apply(slots, grads, trainable)
        return trainable, non_trainable, slots

    def _stateless_loss(self, state, x, y):
        predictions, _ = self.model.stateless_call(state[0], state[1], x, training=False)
        return self.loss(y, predictions)

    # ---- what the chapters call

    def step(self, x, y) -> None:
        """One update on the batch ``x``, ``y`` (compiled once for every batch size)."""
        if self.backend == "jax":
            if self._step is None:
                import jax

                self._step = jax.jit(self._stateless_update)
            self._write_back(self._step(self._state(), np.asarray(x), np.asarray(y)))
        elif self.backend == "tensorflow":
            if self._step is None:
                import tensorflow as tf

                # one signature for every batch size: a single compiled step
                spec = [tf.TensorSpec((None, *a.shape[1:]), a.dtype) for a in (x, y)]
                self._step = tf.function(self._eager_update, input_signature=spec)
            self._step(x, y)
        else:
            self._eager_update(keras.ops.convert_to_tensor(np.asarray(x)),
                               keras.ops.convert_to_tensor(np.asarray(y)))

    def epoch(self, batches) -> None:
        """One update per batch of ``batches`` (a ``tf.data.Dataset`` of ``(x, y)``); on
        TensorFlow the loop over the pipeline runs inside the graph."""
        if self.backend == "tensorflow":
            if self._epoch is None:
                import tensorflow as tf

                @tf.function
                def run(dataset):
                    for x, y in dataset:
                        self._eager_update(x, y)

                self._epoch = run
            self._epoch(batches)
        else:
            for x, y in batches.as_numpy_iterator():
                self.step(x, y)

    def indexed_epoch(self, x, y, order, batch_size: int, whole_set_loss: bool = False) -> np.ndarray:
        """One epoch in batches of ``batch_size`` taken from ``x``, ``y`` in the index ``order``
        (the last batch holds what is left), as one compiled call. With ``whole_set_loss``, the
        loss on all of ``x``, ``y`` after every step (else an empty array)."""
        n = len(order)
        steps = -(-n // batch_size)
        if self.backend == "tensorflow":
            import tensorflow as tf

            if self._indexed is None:
                xs, ys = tf.constant(x), tf.constant(y)

                @tf.function
                def run(order):
                    after_each_step = tf.TensorArray(tf.float32, size=steps)
                    for step in tf.range(steps):
                        batch = order[step * batch_size:(step + 1) * batch_size]
                        self._eager_update(tf.gather(xs, batch), tf.gather(ys, batch))
                        if whole_set_loss:  # a Python flag: decided once, at tracing
                            value = self.loss(ys, self.model(xs, training=False))
                            after_each_step = after_each_step.write(step, value)
                    return after_each_step.stack() if whole_set_loss else tf.zeros([0])

                self._indexed = run
            return self._indexed(tf.constant(order, dtype=tf.int32)).numpy()
        if self.backend == "jax":
            import jax
            import jax.numpy as jnp

            if self._indexed is None:
                full, rest = divmod(n, batch_size)

                def update(state, losses, step, batch, xs, ys):
                    state = self._stateless_update(state, xs[batch], ys[batch])
                    if whole_set_loss:
                        losses = losses.at[step].set(self._stateless_loss(state, xs, ys))
                    return state, losses

                def run(state, order, xs, ys):
                    def body(step, carry):
                        batch = jax.lax.dynamic_slice(order, (step * batch_size,), (batch_size,))
                        return update(*carry, step, batch, xs, ys)

                    carry = jax.lax.fori_loop(0, full, body, (state, jnp.zeros(steps)))
                    if rest:  # the partial last batch: a shape of its own, outside the loop
                        carry = update(*carry, full, order[full * batch_size:], xs, ys)
                    return carry

                self._indexed = jax.jit(run)
            state, losses = self._indexed(self._state(), np.asarray(order, "int32"), x, y)
            self._write_back(state)
            return np.asarray(losses) if whole_set_loss else np.zeros(0)
        losses = []
        for start in range(0, n, batch_size):
            batch = order[start:start + batch_size]
            self.step(x[batch], y[batch])
            if whole_set_loss:
                losses.append(float(keras.ops.convert_to_numpy(
                    self.loss(y, self.model(x, training=False)))))
        return np.asarray(losses, "float32")


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
