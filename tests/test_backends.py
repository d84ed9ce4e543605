"""Keras's other backends: choosing one, the checks that have no counterpart on it, and the
grader's hint for a component written in TensorFlow (quick, no worker processes)."""

from __future__ import annotations

import pytest

from course import backends
from course.grader import static
from course.grader.grade import _tensorflow_only, component_of, exercise_spec, gradable_chapters

from graderlib import ROOT


def test_resolve_names_the_backend_and_says_how_to_install_a_missing_one(monkeypatch):
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backends.resolve() == "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert backends.resolve(None) == "tensorflow"
    with pytest.raises(backends.BackendError, match="choose one of tensorflow, jax, torch"):
        backends.resolve("mxnet")
    monkeypatch.setattr(backends, "installed", lambda name: name == "tensorflow")
    with pytest.raises(backends.BackendError, match=r'pip install -e "\.\[jax\]"'):
        backends.resolve("jax")
    with pytest.raises(backends.BackendError, match="torch is missing"):
        backends.resolve("pytorch")


def test_a_child_environment_runs_keras_on_the_backend_asked_for():
    env = backends.environment("jax", {"XLA_FLAGS": "--xla_dump_to=/tmp/x"}, device="cpu")
    assert env["KERAS_BACKEND"] == "jax" and env["JAX_PLATFORMS"] == "cpu"
    # two XLA host devices for the data-parallel check, the user's own flags kept
    assert env["XLA_FLAGS"].split() == ["--xla_dump_to=/tmp/x", backends.JAX_HOST_DEVICES]
    assert backends.environment("jax", env)["XLA_FLAGS"].count(backends.JAX_HOST_DEVICES) == 1
    assert "JAX_PLATFORMS" not in backends.environment("torch", {})


def test_checks_without_a_counterpart_say_why_and_no_tensorflow_check_is_skipped():
    reasons = {}
    for exercise in gradable_chapters():
        for check in exercise.checks:
            assert check.skipped_on("tensorflow") is None
            for backend, reason in check.unsupported:
                assert backend in ("jax", "torch") and len(reason) > 40
                reasons.setdefault(backend, set()).add(check.name.split(".", 1)[1])
    # JAX has its own data parallelism and XLA; PyTorch has neither here
    assert reasons["jax"] == {"sparse_gradients"}
    assert reasons["torch"] == {"sparse_gradients", "mirrored_strategy", "jit_compile"}


@pytest.mark.parametrize("check,component", [
    ("adamw.fit", "AdamW"), ("adam.fit", "Adam"), ("minmax.adapt_batched", "MinMaxScaling"),
    ("bn.gradients", "BatchNormalization"), ("mini_batches.epoch", "mini_batches"),
    ("losscurvedoctor.nan", "LossCurveDoctor")])
def test_a_check_belongs_to_its_component(check, component):
    exports = {"AdamW": ("Adam", "AdamW", "AdamL2"), "Adam": ("Adam", "AdamW", "AdamL2"),
               "MinMaxScaling": ("Standardization", "MinMaxScaling"),
               "BatchNormalization": ("BatchNormalization",),
               "mini_batches": ("mini_batches", "SGD"),
               "LossCurveDoctor": ("LossCurveDoctor", "AccumulateGradients")}[component]
    assert component_of(check, exports) == component


def test_the_solutions_call_no_tensorflow_outside_tf_data():
    for exercise in gradable_chapters():
        text = (ROOT / "solutions" / f"{exercise.stem}.py").read_text()
        calls = static.tensorflow_calls(text, exercise.exports)
        assert set(calls) <= set(exercise.tensorflow_by_design), (exercise.stem, calls)


def test_tensorflow_calls_are_found_through_helpers_and_base_classes():
    text = '''
import tensorflow as tf
from tensorflow import math as tfm
import keras

def _norm(x):
    return tfm.sqrt(tf.reduce_sum(x * x))

class Base(keras.optimizers.Optimizer):
    def update_step(self, g, v, lr):
        v.assign_sub(lr * g / _norm(g))

class Mine(Base):
    pass

class Clean(keras.optimizers.Optimizer):
    def update_step(self, g, v, lr):
        ds = tf.data.Dataset.range(3)   # tf.data is input, on every backend
        v.assign_sub(lr * keras.ops.sign(g))
'''
    calls = static.tensorflow_calls(text, ("Mine", "Clean"))
    assert set(calls) == {"Mine"}
    assert [name for _, name in calls["Mine"]] == ["tf.math.sqrt", "tf.reduce_sum"]
    assert static.keras_ops_for("tf.math.sqrt") == "keras.ops.sqrt"
    assert static.keras_ops_for("tf.reduce_sum") == "keras.ops.sum"
    assert static.tensorflow_calls("import keras\nclass Mine: pass\n", ("Mine",)) == {}


def test_a_tensorflow_only_component_scores_zero_elsewhere_with_the_keras_ops_calls_to_use():
    checks = [{"name": "adam.fit", "passed": True, "score": 1.0, "max_score": 1.0,
               "status": "passed", "feedback": "matches", "hint": None, "mistake": None},
              {"name": "adam.jit_compile", "passed": False, "score": 0.0, "max_score": 1.0,
               "status": "error", "feedback": "TracerArrayConversionError", "hint": None,
               "mistake": None},
              {"name": "adamw.fit", "passed": True, "score": 1.0, "max_score": 1.0,
               "status": "passed", "feedback": "matches", "hint": None, "mistake": None}]
    _tensorflow_only(checks, {"Adam": [(12, "tf.sqrt"), (14, "tf.sqrt"), (20, "tf.pow")]},
                     ("Adam", "AdamW"), "jax")
    fit, jit, other = checks
    assert fit["score"] == 0 and not fit["passed"] and fit["status"] == "failed"
    assert fit["mistake"]["id"] == jit["mistake"]["id"] == "tensorflow_only"
    assert "tf.sqrt (line 12) -> keras.ops.sqrt" in fit["hint"]
    assert "tf.pow (line 20) -> keras.ops.power" in fit["hint"] and "line 14" not in fit["hint"]
    assert jit["status"] == "error"  # what happened is kept; the hint says why
    assert other["passed"] and other["score"] == 1.0  # AdamW calls no TensorFlow


def test_the_stubs_tell_students_to_stay_with_keras_ops():
    for exercise in gradable_chapters():
        text = (ROOT / "exercises" / f"{exercise.stem}.py").read_text()
        assert set(static.tensorflow_calls(text, exercise.exports)) <= set(
            exercise.tensorflow_by_design)
        assert "Every backend:" in text and "keras.ops" in text, exercise.stem
    stub = (ROOT / "exercises" / "ch08_training_recipe.py").read_text()
    assert "on JAX a branch is a pure function" in stub


def test_the_gradescope_zip_installs_the_backend_it_grades_on(tmp_path):
    import json
    import zipfile

    from course.gradescope import build_autograder

    path = build_autograder(tmp_path / "a.zip", chapters=["6"], backend="jax")
    with zipfile.ZipFile(path) as archive:
        setup = archive.read("setup.sh").decode()
        settings = json.loads(archive.read("autograder.json"))
    assert 'pip install "./package[jax]"' in setup and "KERAS_BACKEND=jax" in setup
    assert settings["backend"] == "jax"
    from course.grader.grade import GradingError

    with pytest.raises(GradingError, match="unknown backend"):
        build_autograder(tmp_path / "b.zip", backend="mxnet")


def test_a_backend_refusing_a_variable_or_a_tracer_is_named_with_its_fix():
    from course.grader.compare import mistake_from_error

    check = exercise_spec("ch08_training_recipe").check("accumulategradients.sgd")
    found = mistake_from_error(check, "ValueError: Could not convert <Variable path=a/acc, "
                                      "shape=(3,)> to a NumPy dtype")
    assert found.id == "variable_into_ops" and "variable.value" in found.hint
    assert mistake_from_error(check, "ValueError: Triggering __jax_array__() during "
                                     "abstractification is no longer supported.").id == "variable_into_ops"
    found = mistake_from_error(check, "jax.errors.TracerBoolConversionError: Attempted boolean "
                                      "conversion of traced array")
    assert found.id == "tracer_to_python" and "ops.where" in found.hint
    assert mistake_from_error(check, "ZeroDivisionError: division by zero") is None
