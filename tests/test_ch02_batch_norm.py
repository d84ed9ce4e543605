"""Chapter 2 through the grader, both ways: the solution scores 10/10 (through the CLI) and the
stub 0/10, every known mistake of the grader's contract loses points with its hint, a differently written
correct implementation scores 10/10, subclassing keras.layers.BatchNormalization scores 0; and the
NumPy model that names the mistakes (gradients included) agrees with Keras's layer."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
import pytest

from course import references

from graderlib import ROOT, by_check, grade, write_variant

STEM = "ch02_batch_norm"


@dataclass(frozen=True)
class Variant:
    """A submission made from the solution by text replacements, and what grading must say."""

    name: str
    replacements: tuple[tuple[str, str], ...]
    checks: tuple[str, ...]  # the checks that must fail
    hint: str  # words the hint of each failing check must contain


VARIANCE = ("            variance = ops.mean(ops.square(x - ops.reshape(mean, self._broadcast)), "
            "axis=self._reduce)\n")
UPDATE = ("            self.moving_mean.assign(\n"
          "                self.moving_mean * m + ops.cast(mean, self.moving_mean.dtype) * (1.0 - m))\n"
          "            self.moving_variance.assign(\n"
          "                self.moving_variance * m + ops.cast(variance, self.moving_variance.dtype) * (1.0 - m))\n")
BRANCH = "        if training and self.trainable:\n"

# The known mistakes for chapter 2 (and three more), each as a small edit of the solution.
VARIANTS = (
    Variant("unbiased batch variance",
            ((VARIANCE, VARIANCE + "            n = 1\n"
                                   "            for d in self._reduce:\n"
                                   "                n *= x.shape[d]\n"
                                   "            variance = variance * n / (n - 1)\n"),),
            ("bn.training_output", "bn.gradients"), "N - 1"),
    Variant("momentum applied to the new value instead of the old",
            ((UPDATE, UPDATE.replace("* m +", "* (1.0 - m) +").replace("* (1.0 - m))\n", "* m)\n")),),
            ("bn.moving_statistics",), "OLD"),
    Variant("epsilon outside the square root",
            (("inv = ops.rsqrt(variance + self.epsilon)",
              "inv = 1.0 / (ops.sqrt(variance) + self.epsilon)"),),
            ("bn.training_output", "bn.inference_output"), "INSIDE"),
    Variant("batch statistics at inference",
            ((BRANCH, "        if self.trainable:\n"),),
            ("bn.inference_output",), "moving_mean and moving_variance"),
    Variant("moving statistics never updated",
            ((UPDATE, ""),),
            ("bn.moving_statistics", "bn.training_output"), ".assign"),
    Variant("trainable=False ignored",
            ((BRANCH, "        if training:\n"),),
            ("bn.trainable_false",), "frozen"),
    Variant("no gradient through the batch statistics",
            (("            mean = ops.mean(x, axis=self._reduce)\n",
              "            mean = ops.stop_gradient(ops.mean(x, axis=self._reduce))\n"),
             (VARIANCE, VARIANCE + "            variance = ops.stop_gradient(variance)\n")),
            ("bn.gradients",), "gradient flow"),
    Variant("float16 statistics under mixed precision",
            (('        x = ops.cast(x, keras.backend.result_type(x.dtype, "float32"))',
              "        x = ops.cast(x, self.compute_dtype)"),),
            ("bn.mixed_float16",), "float32"),
    Variant("center/scale ignored",
            (("        if self.scale:\n            self.gamma", "        if True:\n            self.gamma"),
             ("        if self.center:\n            self.beta", "        if True:\n            self.beta")),
            ("bn.center_scale",), "only when its flag is on"),
)


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.name)
def test_known_mistake_loses_points_with_its_hint(variant, tmp_path):
    path = write_variant(tmp_path, STEM, variant.replacements)
    entry = grade(path, STEM, checks=variant.checks)
    checks = by_check(entry)
    for name in variant.checks:
        assert not checks[name]["passed"], f"{name} passed for '{variant.name}'"
        assert checks[name]["hint"] and variant.hint in checks[name]["hint"], checks[name]
    assert entry["score"] < entry["max_score"]


# A correct layer written differently: raw TensorFlow, tf.nn.moments, the textbook form
# gamma * (x - mu) / sqrt(var + eps) + beta, the moving averages written as
# moving -= (1 - momentum) * (moving - batch), and the weights created in another order.
ALTERNATIVE = '''
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="alt")
class BatchNormalization(keras.layers.Layer):
    def __init__(self, axis=-1, momentum=0.99, epsilon=1e-3, center=True, scale=True, **kwargs):
        super().__init__(**kwargs)
        self.axis, self.momentum, self.epsilon = axis, momentum, epsilon
        self.center, self.scale = center, scale
        self.gamma = self.beta = None

    def build(self, input_shape):
        rank = len(input_shape)
        self.channel = self.axis % rank
        n = input_shape[self.channel]
        self.moving_variance = self.add_weight(shape=(n,), initializer="ones", trainable=False,
                                               autocast=False, name="moving_variance")
        self.moving_mean = self.add_weight(shape=(n,), initializer="zeros", trainable=False,
                                           autocast=False, name="moving_mean")
        if self.center:
            self.beta = self.add_weight(shape=(n,), initializer="zeros", autocast=False, name="beta")
        if self.scale:
            self.gamma = self.add_weight(shape=(n,), initializer="ones", autocast=False, name="gamma")

    def call(self, x, training=False):
        x = tf.cast(x, tf.float32)
        rank = len(x.shape)
        axes = [d for d in range(rank) if d != self.channel]
        shape = [-1 if d == self.channel else 1 for d in range(rank)]
        if training and self.trainable:
            mu, var = tf.nn.moments(x, axes=axes)
            self.moving_mean.assign_sub((1.0 - self.momentum) * (self.moving_mean - mu))
            self.moving_variance.assign_sub((1.0 - self.momentum) * (self.moving_variance - var))
        else:
            mu, var = tf.convert_to_tensor(self.moving_mean), tf.convert_to_tensor(self.moving_variance)
        y = (x - tf.reshape(mu, shape)) / tf.sqrt(tf.reshape(var, shape) + self.epsilon)
        if self.scale:
            y = y * tf.reshape(self.gamma, shape)
        if self.center:
            y = y + tf.reshape(self.beta, shape)
        return tf.cast(y, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis, "momentum": self.momentum,
                "epsilon": self.epsilon, "center": self.center, "scale": self.scale}
'''


def test_differently_written_correct_implementation_scores_full_marks(tmp_path):
    path = write_variant(tmp_path, STEM, text=ALTERNATIVE)
    entry = grade(path, STEM)
    failed = {c["name"]: c["feedback"] for c in entry["checks"] if not c["passed"]}
    assert not failed and entry["score"] == pytest.approx(10.0)


def test_subclassing_keras_batch_normalization_scores_zero_with_a_message(tmp_path):
    text = "import keras\n\nclass BatchNormalization(keras.layers.BatchNormalization):\n    pass\n"
    entry = grade(write_variant(tmp_path, STEM, text=text), STEM, checks=["bn.training_output"])
    assert entry["score"] == 0.0
    assert "built-in" in entry["message"], entry


def test_numpy_model_matches_keras_so_hints_are_trustworthy():
    """The float64 model (closed-form gradients included) must agree with Keras's layer, and each
    modelled mistake must lie far (here 20 times the tolerance) from it."""
    from course.grader import ch02_batch_norm as g
    from course.grader.compare import differences

    ns = references.ch02_batch_norm()
    models = {"bn.training_output": g._training_model, "bn.inference_output": g._inference_model,
              "bn.moving_statistics": g._moving_model, "bn.gradients": g._gradient_model,
              "bn.axes": g._axes_model, "bn.center_scale": g._flags_model,
              "bn.trainable_false": g._frozen_model}
    for seed in (1, 2):
        for name, model in models.items():
            check = g.EXERCISE.check(name)
            inputs = check.make_inputs(seed)
            ref = check.run(ns, inputs, SimpleNamespace())
            assert not differences(model(None)(inputs), ref, check.rtol, check.atol), name
            for mistake in check.mistakes:
                assert differences(mistake.outputs(inputs), ref, 20 * check.rtol, 20 * check.atol), (
                    name, mistake.name)


def test_layer_rejects_bad_shapes_with_clear_errors():
    from solutions.ch02_batch_norm import BatchNormalization

    with pytest.raises(ValueError, match="out of range"):
        BatchNormalization(axis=3).build((None, 4))
    with pytest.raises(ValueError, match="known size"):
        BatchNormalization().build((None, None))
    layer = BatchNormalization()
    y = layer(np.ones((4, 3), np.float32) * 5.0, training=True)
    assert np.allclose(np.asarray(y), 0.0)  # a constant batch normalizes to beta = 0, no NaN


# ------------------------------------------------------------------------------------------
# The chapter script, end to end in --quick mode (one run serves these tests). It is given a
# --dataset name that TFDS does not know: the run must say so in a note and carry on.

CHAPTER_PLOTS = ("activations", "learning_rates", "small_batches", "inference_mode_bug")
UNKNOWN_DATASET = "surely_not_a_tfds_dataset"


@pytest.fixture(scope="module")
def chapter_run(tmp_path_factory):
    import os
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("ch02-plots")
    # a wide terminal: the claim panels are then not wrapped in the middle of a phrase
    env = dict(os.environ, COURSE_DATA_DIR=str(tmp_path_factory.mktemp("tfds")), MPLBACKEND="Agg",
               COLUMNS="200")
    result = subprocess.run(
        [sys.executable, "-m", "chapters.ch02_batch_norm", "--quick", "--out", str(out),
         "--dataset", UNKNOWN_DATASET],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return out, result


@pytest.mark.slow
def test_chapter_quick_run_writes_every_plot_and_checks_its_claims(chapter_run):
    out, result = chapter_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    for name in CHAPTER_PLOTS:
        path = out / f"{name}.png"
        assert path.exists() and path.stat().st_size > 20_000, name
    assert result.stdout.count("Claim:") >= 3
    assert "smaller than 8" in result.stdout  # the documents' small-batch claim, with our numbers
    assert UNKNOWN_DATASET in result.stdout and "Using course_digits instead" in result.stdout
