"""Chapter 1 through the grader, both ways: the solution scores 10/10 and the stub 0/10 (through
the CLI), every known mistake of the grader's contract loses points with its hint, a differently written correct
implementation scores 10/10, delegating to keras.layers.Normalization scores 0; and the NumPy
models that name the mistakes agree with the references they stand for."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from course import references

from graderlib import ROOT, by_check, grade, write_variant

STEM = "ch01_feature_scaling"


@dataclass(frozen=True)
class Variant:
    """A submission made from the solution by text replacements, and what grading must say."""

    name: str
    replacements: tuple[tuple[str, str], ...]
    checks: tuple[str, ...]  # the checks that must fail
    hint: str  # words the hint of each failing check must contain


STD = ("        std = ops.maximum(ops.sqrt(ops.reshape(ops.cast(self.variance, x.dtype), self._broadcast)),\n"
       "                          1e-7)")
VARIANCE = "ops.reshape(ops.cast(self.variance, x.dtype), self._broadcast)"
MERGE_LOOP_START = "        count, mean, squares = 0, None, None\n"
MERGE_LOOP_END = "        self.variance.assign(np.reshape(squares / count, shape))\n"


def _adapt_body(solution: str, body: str) -> tuple[str, str]:
    """A replacement of Standardization.adapt's whole solution body by ``body``."""
    start = solution.index(MERGE_LOOP_START)
    end = solution.index(MERGE_LOOP_END) + len(MERGE_LOOP_END)
    return solution[start:end], body


def _solution() -> str:
    return (ROOT / "solutions" / f"{STEM}.py").read_text()


MEAN_OF_BATCH_STATISTICS = """\
        means, variances = [], []
        for batch in _batches(data):
            if not self.built:
                self.build(batch.shape)
            means.append(batch.mean(axis=self._reduce))
            variances.append(batch.var(axis=self._reduce))
        self.mean.assign(np.mean(means, axis=0))
        self.variance.assign(np.mean(variances, axis=0))
"""

# The known mistakes for chapter 1 (and two more), each as a small edit of the solution.
VARIANTS = (
    Variant("unbiased variance",
            (("self.variance.assign(np.reshape(squares / count, shape))",
              "self.variance.assign(np.reshape(squares / (count - 1), shape))"),),
            ("standardization.outputs",), "biased variance"),
    Variant("epsilon added to the variance instead of flooring the std",
            ((STD, f"        std = ops.sqrt({VARIANCE} + 1e-5)"),),
            ("standardization.outputs", "standardization.invert"), "FLOORS"),
    Variant("NaN on a constant feature",
            ((STD, f"        std = ops.sqrt({VARIANCE})"),),
            ("standardization.outputs",), "constant feature"),
    Variant("batched adapt that averages batch means and variances",
            (_adapt_body(_solution(), MEAN_OF_BATCH_STATISTICS),),
            ("standardization.batched_adapt",), "merge batches exactly"),
    Variant("statistics kept as Python attributes (lost on save/load)",
            (("        self.mean.assign(np.reshape(mean, shape))\n"
              "        self.variance.assign(np.reshape(squares / count, shape))",
              "        self.mean_value = np.reshape(mean, shape).astype('float32')\n"
              "        self.variance_value = np.reshape(squares / count, shape).astype('float32')"),
             ("mean = ops.reshape(ops.cast(self.mean, x.dtype), self._broadcast)",
              "mean = ops.reshape(ops.cast(self.mean_value, x.dtype), self._broadcast)"),
             ("ops.cast(self.variance, x.dtype)", "ops.cast(self.variance_value, x.dtype)")),
            ("standardization.save_load",), "add_weight"),
    Variant("feature_range ignored",
            (("        return lo + (x - data_min) * (hi - lo) / spread",
              "        return (x - data_min) / spread"),),
            ("minmax.outputs",), "feature_range"),
    Variant("NaN on a constant feature (min-max)",
            (("        spread = ops.where(ops.equal(spread, 0), ops.ones_like(spread), spread)\n", ""),),
            ("minmax.outputs",), "range as 1"),
    Variant("min-max statistics of the last batch only",
            (("low = rows.min(axis=0) if low is None else np.minimum(low, rows.min(axis=0))",
              "low = rows.min(axis=0)"),
             ("high = rows.max(axis=0) if high is None else np.maximum(high, rows.max(axis=0))",
              "high = rows.max(axis=0)")),
            ("minmax.batched_adapt",), "every batch"),
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


# A correct submission written differently: raw TensorFlow, statistics from running float64 sums
# of x and x^2 (not the solution's pairwise merge), weights created lazily with other names,
# min-max through a precomputed scale and offset. It must score full marks.
ALTERNATIVE = '''
import keras
import numpy as np
import tensorflow as tf


@keras.saving.register_keras_serializable(package="alt")
class Standardization(keras.layers.Layer):
    def __init__(self, axis=-1, invert=False, **kwargs):
        super().__init__(**kwargs)
        self.axis = axis
        self.invert = invert

    def _kept(self, ndim):
        if self.axis is None:
            return []
        axes = [self.axis] if isinstance(self.axis, int) else list(self.axis)
        return sorted(a % ndim for a in axes)

    def build(self, input_shape):
        self.ndim = len(input_shape)
        kept = self._kept(self.ndim)
        shape = [input_shape[a] for a in kept]
        self.mu = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="mu")
        self.sigma2 = self.add_weight(shape=shape, initializer="ones", trainable=False, name="s2")

    def adapt(self, data):
        if isinstance(data, (np.ndarray, tf.Tensor)):
            data = [data]
        total = total_sq = count = 0.0
        for batch in data:
            if isinstance(batch, tuple):
                batch = batch[0]
            batch = tf.cast(batch, tf.float64)
            if not self.built:
                self.build(batch.shape)
            kept = self._kept(len(batch.shape))
            other = [d for d in range(len(batch.shape)) if d not in kept]
            total += tf.reduce_sum(batch, axis=other)
            total_sq += tf.reduce_sum(tf.square(batch), axis=other)
            count += float(np.prod([batch.shape[d] for d in other]))
        mean = total / count
        self.mu.assign(tf.cast(mean, tf.float32))
        self.sigma2.assign(tf.cast(tf.maximum(total_sq / count - tf.square(mean), 0.0), tf.float32))

    def call(self, x):
        x = tf.cast(x, self.compute_dtype)
        kept = self._kept(self.ndim)
        shape = [self.mu.shape[kept.index(d)] if d in kept else 1 for d in range(self.ndim)]
        mu = tf.reshape(tf.cast(self.mu, x.dtype), shape)
        sd = tf.reshape(tf.sqrt(tf.cast(self.sigma2, x.dtype)), shape)
        sd = tf.where(sd < 1e-7, tf.constant(1e-7, x.dtype), sd)
        return mu + x * sd if self.invert else (x - mu) * (1.0 / sd)

    def get_config(self):
        return dict(super().get_config(), axis=self.axis, invert=self.invert)


@keras.saving.register_keras_serializable(package="alt")
class MinMaxScaling(keras.layers.Layer):
    def __init__(self, feature_range=(0.0, 1.0), invert=False, **kwargs):
        super().__init__(**kwargs)
        self.feature_range = list(feature_range)
        self.invert = invert

    def build(self, input_shape):
        self.lows = self.add_weight(shape=(input_shape[-1],), initializer="zeros", trainable=False)
        self.highs = self.add_weight(shape=(input_shape[-1],), initializer="ones", trainable=False)

    def adapt(self, data):
        if isinstance(data, (np.ndarray, tf.Tensor)):
            data = [data]
        lows, highs = [], []
        for batch in data:
            batch = tf.cast(batch[0] if isinstance(batch, tuple) else batch, tf.float32)
            if not self.built:
                self.build(batch.shape)
            lows.append(tf.reduce_min(batch, axis=0))
            highs.append(tf.reduce_max(batch, axis=0))
        self.lows.assign(tf.reduce_min(tf.stack(lows), axis=0))
        self.highs.assign(tf.reduce_max(tf.stack(highs), axis=0))

    def call(self, x):
        x = tf.cast(x, tf.float32)
        lo, hi = self.feature_range
        # inside call() Keras reads variables in the compute dtype (float16 under mixed_float16)
        lows, highs = tf.cast(self.lows, tf.float32), tf.cast(self.highs, tf.float32)
        width = highs - lows
        scale = (hi - lo) / tf.where(width > 0, width, tf.ones_like(width))
        offset = lo - lows * scale
        y = (x - offset) / scale if self.invert else x * scale + offset
        return tf.cast(y, self.compute_dtype)

    def get_config(self):
        return dict(super().get_config(), feature_range=self.feature_range, invert=self.invert)
'''


def test_differently_written_correct_implementation_scores_full_marks(tmp_path):
    path = write_variant(tmp_path, STEM, text=ALTERNATIVE)
    entry = grade(path, STEM)
    failed = {c["name"]: c["feedback"] for c in entry["checks"] if not c["passed"]}
    assert not failed and entry["score"] == pytest.approx(10.0)


DELEGATIONS = {
    "subclass": "import keras\n\nclass Standardization(keras.layers.Normalization):\n    pass\n\n"
                "class MinMaxScaling(keras.layers.Layer):\n    pass\n",
    # hides the name from a reading of the source: caught when the built-in is created at run time
    "hidden wrapper": (
        "import keras\n_builtin = getattr(keras.layers, 'Normal' + 'ization')\n\n"
        "class Standardization(keras.layers.Layer):\n"
        "    def __init__(self, axis=-1, invert=False, **kwargs):\n"
        "        super().__init__(**kwargs)\n"
        "        self.inner = _builtin(axis=axis, invert=invert)\n"
        "    def adapt(self, data):\n"
        "        self.inner.adapt(data)\n"
        "    def call(self, x):\n"
        "        return self.inner(x)\n\n"
        "MinMaxScaling = Standardization\n"),
}


@pytest.mark.parametrize("kind", sorted(DELEGATIONS))
def test_delegating_to_keras_normalization_scores_zero_with_a_message(kind, tmp_path):
    path = write_variant(tmp_path, STEM, text=DELEGATIONS[kind])
    entry = grade(path, STEM, checks=["standardization.outputs"])
    assert entry["score"] == 0.0
    assert "built-in" in entry["message"], entry


# ------------------------------------------------------------------------------------------
# The grader's own pieces, in this process: the references and the NumPy models of mistakes.


@pytest.fixture(scope="module")
def reference_ns():
    from course.grader import ch01_feature_scaling

    return references.ch01_feature_scaling()


def _ctx():
    return SimpleNamespace(tmpdir=Path(tempfile.mkdtemp(prefix="ch01-test-")))


def test_reference_min_max_layer_is_sklearn(reference_ns):
    """The reference MinMaxScaling must compute exactly what MinMaxScaler does, both ways."""
    from sklearn.preprocessing import MinMaxScaler

    from course.grader.ch01_feature_scaling import minmax_outputs_inputs

    inputs = minmax_outputs_inputs(np.random.default_rng(3))
    x, z = inputs["x_adapt"].astype(np.float64), inputs["x_call"].astype(np.float64)
    scaler = MinMaxScaler(feature_range=inputs["feature_range"]).fit(x)
    for invert, expected in ((False, scaler.transform(z)), (True, scaler.inverse_transform(z))):
        layer = reference_ns.MinMaxScaling(feature_range=inputs["feature_range"], invert=invert)
        layer.adapt(inputs["x_adapt"])
        np.testing.assert_allclose(np.asarray(layer(inputs["x_call"])), expected, rtol=1e-6, atol=1e-6)


def test_numpy_models_match_the_references_and_each_mistake_is_far_from_them(reference_ns):
    """Hints are only trustworthy if the correct model equals the reference, and a check only
    separates a mistake if its numbers are far outside the tolerance (here at least 20 times)."""
    from course.grader import ch01_feature_scaling as g
    from course.grader.compare import differences

    correct = {
        "standardization.outputs": lambda i: {"outputs": g.standardize(i["x_adapt"], i["x_call"])},
        "standardization.invert": lambda i: {"outputs": g.standardize(i["x_adapt"], i["x_call"],
                                                                      invert=True)},
        "standardization.batched_adapt": lambda i: {"outputs": (
            (i["x_call"] - g.batched_moments(i["x_adapt"], i["batch_size"], None)[0])
            / np.maximum(np.sqrt(g.batched_moments(i["x_adapt"], i["batch_size"], None)[1]), g.FLOOR))},
        "minmax.outputs": lambda i: {"outputs": g.minmax(i["x_adapt"], i["x_call"], i["feature_range"])},
        "minmax.invert": lambda i: {"outputs": g.minmax(i["x_adapt"], i["x_call"],
                                                        i["feature_range"], invert=True)},
    }
    for seed in (1, 2):
        for name, model in correct.items():
            check = g.EXERCISE.check(name)
            inputs = check.make_inputs(seed)
            ref = check.run(reference_ns, inputs, _ctx())
            assert not differences(model(inputs), ref, check.rtol, check.atol), name
            for mistake in check.mistakes:
                if mistake.name == "epsilon added to the variance":
                    continue  # one model per usual epsilon: only the large ones need be far
                wrong = mistake.outputs(inputs)
                assert differences(wrong, ref, 20 * check.rtol, 20 * check.atol), (name, mistake.name)


def test_layers_reject_bad_input_with_clear_errors():
    from solutions.ch01_feature_scaling import MinMaxScaling, Standardization

    with pytest.raises(TypeError, match="adapt"):
        Standardization().adapt("not data")
    with pytest.raises(ValueError, match="no data"):
        Standardization().adapt([])
    with pytest.raises(ValueError, match="lo < hi"):
        MinMaxScaling(feature_range=(1.0, 0.0))
    layer = Standardization()
    layer.adapt(np.ones((4, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        layer.adapt(np.ones((4, 5), np.float32))


# ------------------------------------------------------------------------------------------
# The chapter script, end to end in --quick mode (one run serves these tests). It is given a
# --dataset name that TFDS does not know: the run must say so in a note and carry on.

CHAPTER_PLOTS = ("loss_contours", "epochs_to_target", "outlier_sensitivity", "training_statistics",
                 "mixed_precision_loss_scale")
UNKNOWN_DATASET = "surely_not_a_tfds_dataset"


@pytest.fixture(scope="module")
def chapter_run(tmp_path_factory):
    import os
    import subprocess
    import sys

    out = tmp_path_factory.mktemp("ch01-plots")
    # a wide terminal: the claim panels are then not wrapped in the middle of a phrase
    env = dict(os.environ, COURSE_DATA_DIR=str(tmp_path_factory.mktemp("tfds")), MPLBACKEND="Agg",
               COLUMNS="200")
    result = subprocess.run(
        [sys.executable, "-m", "chapters.ch01_feature_scaling", "--quick", "--out", str(out),
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
    assert result.stdout.count("Claim:") >= 2
    assert "40-60%" in result.stdout  # the documents' claim is printed next to what we found
    # the unknown data set is reported in a note, and the course's wine data are used instead
    assert UNKNOWN_DATASET in result.stdout and "Using course_wine instead" in result.stdout
