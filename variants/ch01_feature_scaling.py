"""Chapter 1's variants: the known mistakes of Standardization and MinMaxScaling, a correct pair
of layers written differently, and two ways of leaning on keras.layers.Normalization."""

from __future__ import annotations

from variants import Kind, from_file, from_solution, solution_text, variant

STEM = "ch01_feature_scaling"

STD = ("        std = ops.maximum(ops.sqrt(ops.reshape(ops.cast(self.variance, x.dtype), self._broadcast)),\n"
       "                          1e-7)")
VARIANCE = "ops.reshape(ops.cast(self.variance, x.dtype), self._broadcast)"
MERGE_LOOP_START = "        count, mean, squares = 0, None, None\n"
MERGE_LOOP_END = "        self.variance.assign(np.reshape(squares / count, shape))\n"
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


def _adapt_body(body: str) -> tuple[str, str]:
    """A replacement of Standardization.adapt's whole solution body by ``body``."""
    solution = solution_text(STEM)
    start = solution.index(MERGE_LOOP_START)
    end = solution.index(MERGE_LOOP_END) + len(MERGE_LOOP_END)
    return solution[start:end], body


VARIANTS = (
    # the known mistakes of the grader's contract, and two more
    from_solution(STEM, "unbiased variance",
                  (("self.variance.assign(np.reshape(squares / count, shape))",
                    "self.variance.assign(np.reshape(squares / (count - 1), shape))"),),
                  checks=("standardization.outputs",), hint="biased variance"),
    from_solution(STEM, "epsilon added to the variance instead of flooring the std",
                  ((STD, f"        std = ops.sqrt({VARIANCE} + 1e-5)"),),
                  checks=("standardization.outputs", "standardization.invert"), hint="FLOORS"),
    from_solution(STEM, "NaN on a constant feature",
                  ((STD, f"        std = ops.sqrt({VARIANCE})"),),
                  checks=("standardization.outputs",), hint="constant feature"),
    from_solution(STEM, "batched adapt that averages batch means and variances",
                  (_adapt_body(MEAN_OF_BATCH_STATISTICS),),
                  checks=("standardization.batched_adapt",), hint="merge batches exactly"),
    from_solution(STEM, "statistics kept as Python attributes (lost on save/load)",
                  (("        self.mean.assign(np.reshape(mean, shape))\n"
                    "        self.variance.assign(np.reshape(squares / count, shape))",
                    "        self.mean_value = np.reshape(mean, shape).astype('float32')\n"
                    "        self.variance_value = np.reshape(squares / count, shape).astype('float32')"),
                   ("mean = ops.reshape(ops.cast(self.mean, x.dtype), self._broadcast)",
                    "mean = ops.reshape(ops.cast(self.mean_value, x.dtype), self._broadcast)"),
                   ("ops.cast(self.variance, x.dtype)", "ops.cast(self.variance_value, x.dtype)")),
                  checks=("standardization.save_load",), hint="add_weight"),
    from_solution(STEM, "feature_range ignored",
                  (("        return lo + (x - data_min) * (hi - lo) / spread",
                    "        return (x - data_min) / spread"),),
                  checks=("minmax.outputs",), hint="feature_range"),
    from_solution(STEM, "NaN on a constant feature (min-max)",
                  (("        spread = ops.where(ops.equal(spread, 0), ops.ones_like(spread), spread)\n",
                    ""),),
                  checks=("minmax.outputs",), hint="range as 1"),
    from_solution(STEM, "min-max statistics of the last batch only",
                  (("low = rows.min(axis=0) if low is None else np.minimum(low, rows.min(axis=0))",
                    "low = rows.min(axis=0)"),
                   ("high = rows.max(axis=0) if high is None else np.maximum(high, rows.max(axis=0))",
                    "high = rows.max(axis=0)")),
                  checks=("minmax.batched_adapt",), hint="every batch"),
    from_file(STEM, "raw TensorFlow with running sums", "ch01_feature_scaling_tensorflow_sums.py"),
    variant(STEM, "subclass", Kind.DELEGATION,
            "import keras\n\nclass Standardization(keras.layers.Normalization):\n    pass\n\n"
            "class MinMaxScaling(keras.layers.Layer):\n    pass\n",
            checks=("standardization.outputs",)),
    # hides the name from a reading of the source: caught when the built-in is created at run time
    variant(STEM, "hidden wrapper", Kind.DELEGATION,
            "import keras\n_builtin = getattr(keras.layers, 'Normal' + 'ization')\n\n"
            "class Standardization(keras.layers.Layer):\n"
            "    def __init__(self, axis=-1, invert=False, **kwargs):\n"
            "        super().__init__(**kwargs)\n"
            "        self.inner = _builtin(axis=axis, invert=invert)\n"
            "    def adapt(self, data):\n"
            "        self.inner.adapt(data)\n"
            "    def call(self, x):\n"
            "        return self.inner(x)\n\n"
            "MinMaxScaling = Standardization\n",
            checks=("standardization.outputs",)),
)
