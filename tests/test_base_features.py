"""Every solution optimizer honours what Keras users do through the base class, exactly as the
Keras reference does: clipping (clipvalue, global_clipnorm), EMA of the weights, gradient
accumulation, loss_scale_factor and weight decay with exclude_from_weight_decay. The grader's
``base_options`` check covers decay, exclusions and clipnorm for students; this test covers the
rest for the solutions, so that an exercise never silently drops a base-class feature. An
optimizer that wraps another (chapter 8's AccumulateGradients) leaves these options to the
optimizer it wraps: it refuses them, with an error saying so, unless they are its own arguments
(global_clipnorm), which it honours as Keras does."""

from __future__ import annotations

import importlib
import inspect

import numpy as np
import pytest

from course.grader.grade import gradable_chapters

OPTIONS = {
    "clipvalue": {"clipvalue": 0.3},
    "global_clipnorm": {"global_clipnorm": 0.5},
    "ema": {"use_ema": True, "ema_momentum": 0.9, "ema_overwrite_frequency": 3},
    "gradient_accumulation": {"gradient_accumulation_steps": 3},
    "loss_scale_factor": {"loss_scale_factor": 4.0},
    "weight_decay_with_exclusions": {"weight_decay": 0.1},
}
OPTIMIZERS = [(e.stem, name) for e in gradable_chapters()
              for name, kind in e.kinds.items() if kind == "optimizer"]


def _solution_and_reference(stem: str, name: str):
    exercise = next(e for e in gradable_chapters() if e.stem == stem)
    module_name, _, func = exercise.reference.rpartition(".")
    reference = getattr(importlib.import_module(module_name), func)()
    return getattr(importlib.import_module(f"solutions.{stem}"), name), getattr(reference, name)


def _wraps(cls) -> bool:
    return "optimizer" in inspect.signature(cls.__init__).parameters


def _build(cls, kwargs: dict):
    import keras

    if _wraps(cls):
        return cls(keras.optimizers.SGD(learning_rate=0.05), **kwargs)
    return cls(learning_rate=0.05, **kwargs)


def _trajectory(cls, kwargs: dict) -> np.ndarray:
    import keras

    rng = np.random.default_rng(0)
    optimizer = _build(cls, kwargs)
    variables = [keras.Variable(rng.normal(size=s).astype("float32"), name=f"w{i}")
                 for i, s in enumerate([(3,), (2, 3), (4,)])]
    if "weight_decay" in kwargs:
        optimizer.exclude_from_weight_decay(var_list=[variables[2]], var_names=["w0"])
    for t in range(10):
        grads = [keras.ops.convert_to_tensor(
            (1.5 * v.numpy() + np.sin(t + np.arange(v.numpy().size)).reshape(v.shape)).astype("float32"))
            for v in variables]
        optimizer.apply_gradients(zip(grads, variables))
    return np.concatenate([v.numpy().ravel() for v in variables])


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("stem,name", OPTIMIZERS, ids=lambda x: x)
def test_solution_matches_keras_with_the_base_class_option(stem, name, option):
    solution, reference = _solution_and_reference(stem, name)
    if _wraps(solution) and not set(OPTIONS[option]) <= set(
            inspect.signature(solution.__init__).parameters):
        with pytest.raises(ValueError, match="the optimizer it wraps"):
            _build(solution, OPTIONS[option])
        return
    ours = _trajectory(solution, OPTIONS[option])
    keras_ = _trajectory(reference, OPTIONS[option])
    plain = _trajectory(reference, {})
    assert not np.allclose(keras_, plain, rtol=1e-5, atol=1e-6), "the option changes nothing here"
    np.testing.assert_allclose(ours, keras_, rtol=1e-5, atol=1e-6)
