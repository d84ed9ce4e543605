"""The checks every layer exercise gets, whatever the layer computes:

- ``interface``: a ``keras.layers.Layer`` with the reference's constructor defaults, which rejects
  an unknown keyword argument (``core.run_interface``, shared with the other suites);
- ``config``: ``get_config`` / ``from_config`` / keras serialization keep the hyperparameters
  (``core.run_config``);
- ``fit``: the layer inside a small model trained with ``model.fit`` (losses, trainable weights,
  predictions);
- ``save_load``: a ``.keras`` save/load round trip keeps the layer's state (its statistics);
- ``under_policy``: any run function under a dtype policy such as ``mixed_float16``.

A chapter supplies what is particular to its layer: how to make a ready layer from the check's
inputs (``make(impl, inputs)``: construct, then adapt or train), which config keys to compare, and
how to normalise a config value (``(-1,)`` and ``-1`` name the same axis).

The same ``run`` functions execute in the student worker (``impl`` = the student's module) and in
the reference worker (``impl`` = the Keras built-ins, or trusted stand-ins, under the student's
names). Every run function imports keras inside: this module is imported by the grading parent,
which never imports TensorFlow.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from course.backends import to_numpy

from course.grader import core
from course.grader.compare import differences
from course.grader.core import Normalizer
from course.grader.spec import Check, Mistake, Verdict

def _weight_counts(probe_shape: tuple[int, ...]):
    """Built on ``probe_shape``: how many trainable weights, and whether it has non-trainable
    ones (a layer whose statistics are not weights cannot be saved with the model)."""

    def extra(layer) -> dict:
        layer.build((None,) + tuple(probe_shape))
        return {"trainable_weights": len(layer.trainable_weights),
                "has_non_trainable_weights": bool(layer.non_trainable_weights)}

    return extra


def fit_outputs(model, history, probe, tested: type | None = None) -> dict:
    """What a ``model.fit`` check compares: losses, inference predictions and the trainable
    weights of the model's OTHER layers (those of the ``tested`` class are left to the chapter,
    which reads them by name: the order a student creates weights in is theirs to choose)."""
    others = [w for layer in model.layers if not (tested and isinstance(layer, tested))
              for w in layer.trainable_weights]
    return {"loss_per_epoch": to_numpy(history.history["loss"], dtype=np.float64),
            "other layers' trainable weights": np.concatenate(
                [np.ravel(to_numpy(w)) for w in others]) if others else np.zeros(0),
            "predictions": to_numpy(model.predict(probe, verbose=0), dtype=np.float64)}


def run_fit(cls_name: str, build: Callable[[Any, dict], Any], *, epochs: int = 3,
            batch_size: int = 16, extra: Callable[[Any], dict] | None = None):
    """``build(impl, inputs)`` returns a compiled model holding the layer; fit it and report.

    ``extra(model)`` adds layer-specific outputs (e.g. BatchNormalization's weights by name).
    """

    def run(impl, inputs, ctx):
        model = build(impl, inputs)
        history = model.fit(inputs["x"], inputs["y"], batch_size=batch_size, epochs=epochs,
                            shuffle=False, verbose=0)
        out = fit_outputs(model, history, inputs["probe"], getattr(impl, cls_name))
        if extra:
            out.update(extra(model))
        return out

    return run


def run_save_load(build: Callable[[Any, dict], Any], *, train_epochs: int = 0,
                  batch_size: int = 16):
    """Save a model holding the layer as ``.keras``, load it, compare predictions.

    ``build(impl, inputs)`` returns a compiled model (its layer adapted or ready); with
    ``train_epochs`` it is first trained. The predictions before saving and after loading are
    both reported, so that a judge can tell "wrong from the start" from "lost on save/load".
    """

    def run(impl, inputs, ctx):
        import keras

        model = build(impl, inputs)
        if train_epochs:
            model.fit(inputs["x"], inputs["y"], batch_size=batch_size, epochs=train_epochs,
                      shuffle=False, verbose=0)
        before = to_numpy(model.predict(inputs["probe"], verbose=0), dtype=np.float64)
        path = ctx.tmpdir / "model.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        after = to_numpy(loaded.predict(inputs["probe"], verbose=0), dtype=np.float64)
        names = lambda m: [type(l).__name__ for l in m.layers]  # noqa: E731
        return {"predictions_before_save": before, "predictions_after_load": after,
                "same_layers_after_load": names(model) == names(loaded)}

    return run


def under_policy(policy: str, run: Callable):
    """``run`` with the global dtype policy set (the worker resets it to float32 after a check)."""

    def wrapped(impl, inputs, ctx):
        import keras

        keras.config.set_dtype_policy(policy)
        try:
            return run(impl, inputs, ctx)
        finally:
            keras.config.set_dtype_policy("float32")

    return wrapped


def dtype_name(x) -> str:
    """``"float16"`` for a tensor, variable or array of that dtype."""
    import keras

    return keras.backend.standardize_dtype(x.dtype)


LOST_ON_SAVE = Mistake(
    "state lost on save/load",
    "the layer's state must live in weights created with self.add_weight(..., trainable=False) "
    "and filled with .assign(...): plain Python attributes (NumPy arrays, floats) are not saved "
    "in a .keras file, so a loaded model starts from scratch.",
    error=r"has no attribute|expected \d+ variables")


def judge_save_load(check_name: str, rtol: float = 1e-5, atol: float = 1e-6):
    """Judge a save/load run: right before saving but wrong after loading means lost state."""

    def judge(student: dict, reference: dict, inputs: dict) -> Verdict:
        with np.errstate(all="ignore"):
            diffs = differences(student, reference, rtol, atol)
            before_ok = not differences(student, reference, rtol, atol,
                                        keys=["predictions_before_save"])
        if not diffs:
            return Verdict(True, "matches the reference, before saving and after loading")
        feedback = "; ".join(diffs[:3])
        if before_ok:
            return Verdict(False, f"right before saving, different after loading "
                                  f"({LOST_ON_SAVE.name}). {feedback}", hint=LOST_ON_SAVE.hint)
        return Verdict(False, f"the predictions differ already before saving ({check_name} "
                              f"needs the layer itself to be right first). {feedback}")

    return judge


def layer_checks(prefix: str, cls_name: str, *, defaults: tuple[str, ...],
                 config_keys: tuple[str, ...], draw_kwargs: Callable[[np.random.Generator], dict],
                 normalizers: dict[str, Normalizer] | None = None,
                 probe_shape: tuple[int, ...] | None = None,
                 fit: tuple[Callable, Callable] | None = None,
                 save_load: tuple[Callable, Callable] | None = None,
                 fit_extra: Callable[[Any], dict] | None = None,
                 save_load_train_epochs: int = 0,
                 fit_rtol: float = 1e-4, fit_atol: float = 1e-5,
                 weights: dict[str, float] | None = None) -> list[Check]:
    """The interface, config, fit and save/load checks for one layer class.

    ``fit`` and ``save_load`` are ``(build, inputs)`` pairs: ``build(impl, inputs)`` returns a
    compiled model holding the layer, ``inputs(rng)`` draws ``x``, ``y`` and ``probe``.
    """
    normalizers = normalizers or {}
    weights = weights or {}
    checks = [
        Check(f"{prefix}.interface",
              core.run_interface(cls_name, "layer", defaults, normalizers,
                                 _weight_counts(probe_shape) if probe_shape else None),
              f"{cls_name} is a keras Layer with the reference's constructor defaults",
              weight=weights.get("interface", 0.5)),
        Check(f"{prefix}.config", core.run_config(cls_name, config_keys, normalizers),
              inputs=lambda rng: {"kwargs": draw_kwargs(rng)},
              description="get_config / from_config / keras serialization round trip",
              weight=weights.get("config", 0.5)),
    ]
    if fit:
        build, draw = fit
        checks.append(Check(f"{prefix}.fit", run_fit(cls_name, build, extra=fit_extra), inputs=draw,
                            description="inside a model trained with model.fit",
                            rtol=fit_rtol, atol=fit_atol, weight=weights.get("fit", 1.0)))
    if save_load:
        build, draw = save_load
        name = f"{prefix}.save_load"
        checks.append(Check(name, run_save_load(build, train_epochs=save_load_train_epochs),
                            inputs=draw, mistakes=(LOST_ON_SAVE,),
                            judge=judge_save_load(name, fit_rtol, fit_atol),
                            description=".keras save/load keeps the layer's state",
                            weight=weights.get("save_load", 1.0)))
    return checks
