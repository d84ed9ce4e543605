"""The checks every learning-rate schedule exercise gets, built from one ``ScheduleSpec``:

- ``formula(s, kwargs, xp, variant)``: the schedule's closed form written once for any array
  module ``xp`` with NumPy's function names (``numpy`` in the grading parent, ``keras.ops`` in a
  worker). With ``variant`` set it computes a known-wrong version, so that a student whose numbers
  match one is told which mistake it is. (Correctness is graded against the reference namespace
  run in its own worker: a Keras built-in, or this closed form where Keras has none.)
- ``draw(rng, horizon)``: hyperparameters whose interesting steps (end of warmup, end of decay,
  the drops of a staircase) fall within about ``horizon`` steps, and that separate every known
  mistake from the right answer by far more than the tolerance;
- ``landmarks(kwargs)``: those interesting steps, probed on both sides.

Three checks per schedule:

``values``   the rate at step 0, around every landmark, at random steps and far past the end,
             for a Python int step and for an int64 tensor step, and the returned dtype;
``fit``      the rates the optimizer actually used inside ``model.fit``, with and without
             ``jit_compile=True``. A one-weight model ``y = w * 1`` with the loss ``mean(y)`` has
             the gradient 1 exactly, so a plain SGD step from ``w = 0`` leaves ``w = -rate``:
             reading (and resetting) ``w`` after every batch reveals the rate used in that
             batch's compiled train step. A Python ``if`` on the step raises there;
``config``   constructor defaults, ``get_config``/``from_config``, Keras (de)serialization, and a
             ``.keras`` save/load of a model whose optimizer uses the schedule.

Every run function imports keras inside: this module is imported by the grading parent, which
never imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from course.backends import to_numpy

from course.grader import core
from course.grader.spec import Check, Mistake

# Tolerances: schedules are float32 (about 6e-8 relative) and ``cos(...) + 1`` near the bottom of
# a cosine loses a few ulps of the peak rate, so the absolute floor is 1e-7 of a peak rate that
# the specs draw between 0.1 and 1.
RTOL, ATOL = 1e-5, 1e-7

PYTHON_IF = Mistake(
    "Python `if` on the step",
    "inside model.fit the step is a symbolic tensor, and Keras's train step does not let AutoGraph "
    "rewrite a Python `if` on it (a bare tf.function would, so it works there and fails here). "
    "Compute both branches and choose with keras.ops.where(condition, a, b); clamp with "
    "keras.ops.minimum / maximum instead of min() / max().",
    error=r"OperatorNotAllowedInGraphError|as a Python `?bool`? is not allowed")


@dataclass(frozen=True)
class ScheduleSpec:
    """One schedule class of an exercise, as the suite needs it."""

    cls_name: str
    formula: Callable[..., Any]       # formula(s, kwargs, xp, variant=None)
    draw: Callable[[np.random.Generator, int], dict]
    landmarks: Callable[[dict], list[float]] = lambda kwargs: []
    mistakes: tuple[tuple[str, str, str], ...] = ()  # (variant, name, hint)
    error_mistakes: tuple[Mistake, ...] = (PYTHON_IF,)


# --------------------------------------------------------------------------------------------
# Steps to probe


VALUES_HORIZON = 200
FIT_HORIZON, FIT_EPOCHS, FIT_BATCHES = 30, 3, 12  # 36 optimizer steps over 3 epochs


def probe_steps(rng: np.random.Generator, landmarks: list[float], horizon: int) -> list[int]:
    """Step 0, both sides of every landmark, random steps, and far past the end."""
    steps = {0, 1, 2, 10 * horizon}
    for mark in landmarks:
        base = int(np.floor(mark))
        steps.update(s for s in (base - 1, base, base + 1, base + 2) if s >= 0)
    steps.update(int(s) for s in rng.integers(0, int(1.3 * horizon), size=24))
    return sorted(steps)


def _values_inputs(spec: ScheduleSpec):
    def inputs(rng):
        kwargs = spec.draw(rng, VALUES_HORIZON)
        return {"kwargs": kwargs,
                "steps": probe_steps(rng, spec.landmarks(kwargs), VALUES_HORIZON)}
    return inputs


def _fit_inputs(spec: ScheduleSpec):
    def inputs(rng):
        return {"kwargs": spec.draw(rng, FIT_HORIZON), "epochs": FIT_EPOCHS,
                "batches": FIT_BATCHES}
    return inputs


def _config_inputs(spec: ScheduleSpec):
    def inputs(rng):
        kwargs = spec.draw(rng, VALUES_HORIZON)
        steps = probe_steps(rng, spec.landmarks(kwargs), VALUES_HORIZON)
        return {"kwargs": kwargs, "steps": steps[::3]}
    return inputs


# --------------------------------------------------------------------------------------------
# Run functions (in a worker; ``impl`` is the student's module or the reference namespace)


def _dtype(value) -> str:
    """The dtype a schedule returned, by name ("float32"), or the Python type if it has none."""
    import keras

    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return type(value).__name__
    return keras.backend.standardize_dtype(dtype)


def evaluate(schedule, steps, as_tensor: bool = False) -> tuple[np.ndarray, str]:
    """The schedule's values at ``steps`` (float64 array) and the dtype(s) it returned."""
    import keras

    values, dtypes = [], set()
    for s in steps:
        arg = keras.ops.convert_to_tensor(int(s), dtype="int64") if as_tensor else int(s)
        value = schedule(arg)
        dtypes.add(_dtype(value))
        values.append(float(to_numpy(keras.ops.convert_to_numpy(value))))
    return to_numpy(values, dtype=np.float64), ",".join(sorted(dtypes))


def run_values(cls_name: str):
    def run(impl, inputs, ctx):
        schedule = getattr(impl, cls_name)(**inputs["kwargs"])
        ints, int_dtype = evaluate(schedule, inputs["steps"])
        tensors, tensor_dtype = evaluate(schedule, inputs["steps"], as_tensor=True)
        return {"values at int steps": ints, "values at tensor steps": tensors,
                "dtype for an int step": int_dtype, "dtype for a tensor step": tensor_dtype}
    return run


def rates_used_in_fit(schedule_factory, epochs: int, batches: int, jit_compile: bool) -> np.ndarray:
    """The rate each batch of ``model.fit`` used, revealed by SGD on ``loss = mean(w * 1)``."""
    import keras

    class RevealRate(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.rates = []

        def on_train_batch_end(self, batch, logs=None):
            kernel = self.model.layers[0].kernel
            # the step moved w from 0 to -rate (exactly, in float32); reset for the next batch
            self.rates.append(-float(to_numpy(kernel.numpy()).ravel()[0]))
            kernel.assign(np.zeros((1, 1), dtype="float32"))

    model = keras.Sequential([keras.Input((1,)),
                              keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule_factory()),
                  loss=lambda y_true, y_pred: keras.ops.mean(y_pred), jit_compile=jit_compile)
    reveal = RevealRate()
    ones = np.ones((batches, 1), dtype="float32")
    model.fit(ones, ones, batch_size=1, epochs=epochs, shuffle=False, verbose=0,
              callbacks=[reveal])
    return to_numpy(reveal.rates, dtype=np.float64)


def run_fit(cls_name: str):
    def run(impl, inputs, ctx):
        def factory():
            return getattr(impl, cls_name)(**inputs["kwargs"])

        import keras

        # torch.compile cannot run in the student's sandbox (see NO_TORCH_COMPILE): on PyTorch
        # both sides leave the compiled run out
        modes = ((False, ""),) if keras.backend.backend() == "torch" else (
            (False, ""), (True, " (jit_compile=True)"))
        return {f"rates used in model.fit{suffix}": rates_used_in_fit(
                    factory, inputs["epochs"], inputs["batches"], jit)
                for jit, suffix in modes}
    return run


def run_config(cls_name: str):
    def run(impl, inputs, ctx):
        import inspect

        import keras

        cls = getattr(impl, cls_name)
        kwargs, steps = inputs["kwargs"], inputs["steps"]
        schedule = cls(**kwargs)
        out = {"is a LearningRateSchedule": isinstance(
            schedule, keras.optimizers.schedules.LearningRateSchedule)}
        # a schedule has required arguments: its defaults are read from its signature
        for name, parameter in inspect.signature(cls).parameters.items():
            if parameter.default is not inspect.Parameter.empty:
                out[f"default {name}"] = core.plain(parameter.default)
        config, cloned, deserialized, restored = core.round_trip(schedule)
        for label, cfg in (("get_config", config), ("from_config", cloned),
                           ("deserialized", deserialized)):
            for key, value in core.config_values(cfg, kwargs).items():
                out[f"{label} {key}"] = value
        out["values after from_config"] = evaluate(cls.from_config(config), steps)[0]
        out["values after deserialize"] = evaluate(restored, steps)[0]

        model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=schedule), loss="mse")
        path = ctx.tmpdir / "with_schedule.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        # the optimizer keeps its schedule in _learning_rate (learning_rate is its current value)
        loaded_schedule = getattr(loaded.optimizer, "_learning_rate", None)
        out["class after .keras load"] = type(loaded_schedule).__name__
        out["values after .keras load"] = evaluate(loaded_schedule, steps)[0]
        return out
    return run


# --------------------------------------------------------------------------------------------
# Known mistakes, from the NumPy closed form


def _mistakes(spec: ScheduleSpec, keys: Callable[[dict], dict]) -> tuple[Mistake, ...]:
    """One Mistake per variant; ``keys(inputs)`` maps output keys to the steps they hold."""
    made = []
    for variant, name, hint in spec.mistakes:
        def outputs(inputs, _variant=variant):
            with np.errstate(all="ignore"):
                return {key: to_numpy(spec.formula(to_numpy(steps, dtype=np.float64),
                                                     inputs["kwargs"], np, _variant), dtype=np.float64)
                        for key, steps in keys(inputs).items()}
        made.append(Mistake(name, hint, outputs=outputs, id=variant))
    return tuple(made) + spec.error_mistakes


def _value_keys(inputs):
    return {"values at int steps": inputs["steps"], "values at tensor steps": inputs["steps"]}


def _fit_keys(inputs):
    steps = np.arange(inputs["epochs"] * inputs["batches"])
    return {"rates used in model.fit": steps, "rates used in model.fit (jit_compile=True)": steps}


def schedule_checks(spec: ScheduleSpec, *, values_weight: float = 1.5, fit_weight: float = 1.0,
                    config_weight: float = 0.5) -> list[Check]:
    """The three checks of one schedule class (see the module docstring)."""
    p = spec.cls_name.lower()
    return [
        Check(f"{p}.values", run_values(spec.cls_name), inputs=_values_inputs(spec),
              weight=values_weight, rtol=RTOL, atol=ATOL, mistakes=_mistakes(spec, _value_keys),
              description="the rate at step 0, around each boundary, at random steps and past "
                          "the end; Python int and tensor steps; float32"),
        Check(f"{p}.fit", run_fit(spec.cls_name), inputs=_fit_inputs(spec), weight=fit_weight,
              rtol=RTOL, atol=ATOL, mistakes=_mistakes(spec, _fit_keys), timeout_factor=2.0,
              description="the rates SGD actually used per batch in model.fit, with and without "
                          "jit_compile=True"),
        Check(f"{p}.config", run_config(spec.cls_name), inputs=_config_inputs(spec),
              weight=config_weight, rtol=RTOL, atol=ATOL,
              description="defaults, get_config / from_config, serialization and a .keras "
                          "save/load of a model using it"),
    ]
