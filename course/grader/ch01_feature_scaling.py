"""Checks for chapter 1: Standardization against keras.layers.Normalization, MinMaxScaling against
scikit-learn's MinMaxScaler.

The data are drawn to expose the known mistakes: features on scales from 1e-4 to 1e4 (the tiny
one shows an epsilon added to the variance, since sqrt(1e-8 + eps) is far from 1e-4 for any
usual eps), an integer-valued constant feature (NaN where the std or the range is 0), negative
values, few rows (the unbiased variance differs by a percent), and for batched ``adapt`` rows
sorted by floor area with an uneven last batch (so an average of batch means, an average of batch
variances, or the last batch alone are all far from the whole-array statistics).

The NumPy models below reproduce the references and each known mistake in float64, so a student
whose numbers match a mistake is told which one.
"""

from __future__ import annotations

import numpy as np

from course.backends import to_numpy

from course.grader.layer_suite import dtype_name, layer_checks, under_policy
from course.grader.spec import Check, Exercise, Mistake

# The Keras layers an exercise of this chapter may not subclass, wrap or call.
FORBIDDEN = ("Normalization", "BatchNormalization")
FLOOR = 1e-7  # Keras's backend epsilon: the smallest std Normalization divides by

# --------------------------------------------------------------------------------------------
# Data


def draw_layout(rng: np.random.Generator, constant: float | None = None) -> dict:
    """A random column order for ``make_rows``'s five features, and the constant's value.

    The features: floor area 500-5000, bedrooms 1-5, a negative temperature-like value, an
    integer constant (exact in float32, so every correct implementation gets variance 0), and a
    feature with a standard deviation of 1e-4.
    """
    if constant is None:
        constant = float(rng.choice([-3.0, -2.0, 2.0, 3.0, 7.0]))
    order = rng.permutation(5)
    return {"order": order, "constant": constant}


def make_rows(rng: np.random.Generator, n: int, layout: dict) -> np.ndarray:
    columns = [rng.uniform(500, 5000, n),                       # floor area
               rng.integers(1, 6, n).astype(np.float64),        # bedrooms
               rng.normal(-40.0, 12.0, n),                      # negative values
               np.full(n, layout["constant"]),                  # constant
               rng.normal(0.0, 1e-4, n)]                        # tiny spread
    x = np.stack(columns, axis=1)[:, layout["order"]]
    return x.astype(np.float32)


def constant_column(layout: dict) -> int:
    return int(np.nonzero(layout["order"] == 3)[0][0])


def area_column(layout: dict) -> int:
    return int(np.nonzero(layout["order"] == 0)[0][0])


def outputs_inputs(rng: np.random.Generator) -> dict:
    layout = draw_layout(rng)
    n = int(rng.integers(30, 45))
    return {"x_adapt": make_rows(rng, n, layout), "x_call": make_rows(rng, 12, layout),
            "layout": layout}


def invert_inputs(rng: np.random.Generator) -> dict:
    """Adapt data as for the outputs, then standardized values in -1.5..1.5 to map back.

    Within 1.5 standard deviations no feature's value crosses 0 (a floor area near 0 would be
    mean + z * std with both terms in the thousands: float32 cancellation, not a mistake).
    """
    out = outputs_inputs(rng)
    out["x_call"] = rng.uniform(-1.5, 1.5, out["x_call"].shape).astype(np.float32)
    return out


def batched_inputs(rng: np.random.Generator) -> dict:
    # the constant feature is 0 here: merging batches in float32 (as Keras does) leaves a
    # non-zero constant off by an ulp, which a floored std then blows up; 0 stays exact
    layout = draw_layout(rng, constant=0.0)
    batch_size = int(rng.integers(8, 17))
    n = batch_size * int(rng.integers(3, 6)) + int(rng.integers(1, batch_size // 2 + 1))
    x = make_rows(rng, n, layout)
    x = x[np.argsort(x[:, area_column(layout)], kind="stable")]  # listings sorted by size
    return {"x_adapt": x, "x_call": make_rows(rng, 12, layout), "batch_size": batch_size,
            "layout": layout}


def minmax_range(rng: np.random.Generator) -> tuple[float, float]:
    lo = float(rng.choice([-3.0, -2.0, -1.0, -0.5, 0.5]))
    return lo, lo + float(rng.choice([1.5, 2.0, 3.0, 5.0]))


def minmax_outputs_inputs(rng: np.random.Generator) -> dict:
    out = outputs_inputs(rng)
    col = constant_column(out["layout"])
    # the constant feature off its value too: its range is treated as 1, so these map to
    # lo + (x - c) * (hi - lo), and a zero range gives inf or NaN
    out["x_call"][:, col] = out["layout"]["constant"] + rng.integers(-2, 3, len(out["x_call"]))
    out["feature_range"] = minmax_range(rng)
    return out


def moderate_inputs(rng: np.random.Generator) -> dict:
    """Data whose standardized values are well inside float16 (for the mixed-precision check)."""
    n, f = int(rng.integers(30, 45)), 4
    centre = rng.uniform(-5, 5, f)
    spread = rng.uniform(0.5, 3.0, f)
    x = (centre + spread * rng.normal(size=(n, f))).astype(np.float32)
    x[:, int(rng.integers(0, f))] = float(rng.integers(-3, 4))
    x_call = (centre + spread * rng.normal(size=(10, f))).astype(np.float32)
    return {"x_adapt": x, "x_call": x_call, "feature_range": minmax_range(rng)}


def house_inputs(rng: np.random.Generator) -> dict:
    """Bedrooms and floor area -> price (thousands), the documents' example, for model.fit."""
    n = 64

    def rows(m):
        bedrooms = rng.integers(1, 6, m).astype(np.float64)
        area = np.clip(300 + 850 * bedrooms + rng.normal(0, 400, m), 500, 5000)
        return np.stack([bedrooms, area], axis=1).astype(np.float32)

    x = rows(n)
    y = ((50 + 0.12 * x[:, 1] + 12 * x[:, 0] + rng.normal(0, 25, n)) / 100).astype(np.float32)
    return {"x": x, "y": y[:, None], "probe": rows(8),
            "dense": [rng.normal(0, 0.5, (2, 1)).astype(np.float32), np.zeros(1, np.float32)],
            "learning_rate": float(rng.uniform(0.02, 0.05)), "feature_range": minmax_range(rng)}


# --------------------------------------------------------------------------------------------
# NumPy models of the references and of the known mistakes


def standardize(x_adapt, x_call, reduce_axes=(0,), variant=None, eps=None, invert=False):
    """Normalization's numbers in float64 (``invert`` for its inverse), or a known mistake's."""
    x = to_numpy(x_adapt, np.float64)
    z = to_numpy(x_call, np.float64)
    mean = x.mean(axis=reduce_axes, keepdims=True)
    var = x.var(axis=reduce_axes, keepdims=True, ddof=1 if variant == "unbiased" else 0)
    with np.errstate(all="ignore"):
        if variant == "eps_in_variance":
            std = np.sqrt(var + eps)
        elif variant == "no_floor":
            std = np.sqrt(var)
        else:
            std = np.maximum(np.sqrt(var), FLOOR)
        if invert and variant == "invert_ignored":
            return (z - mean) / std
        if invert and variant == "invert_divides":
            return mean + z / std
        return mean + z * std if invert else (z - mean) / std


def batched_moments(x, batch_size, variant):
    batches = [to_numpy(x[i:i + batch_size], np.float64) for i in range(0, len(x), batch_size)]
    means = np.stack([b.mean(axis=0) for b in batches])
    variances = np.stack([b.var(axis=0) for b in batches])
    counts = np.array([len(b) for b in batches], np.float64)[:, None]
    if variant == "mean_of_batch_statistics":
        return means.mean(axis=0), variances.mean(axis=0)
    if variant == "within_batch_variance_only":
        return (counts * means).sum(0) / counts.sum(), (counts * variances).sum(0) / counts.sum()
    if variant == "last_batch_only":
        return means[-1], variances[-1]
    if variant == "first_batch_only":
        return means[0], variances[0]
    full = to_numpy(x, np.float64)
    return full.mean(axis=0), full.var(axis=0)


def minmax(x_adapt, x_call, feature_range, variant=None, invert=False):
    """scikit-learn's MinMaxScaler in float64 (a constant feature's range is 1), or a mistake."""
    x = to_numpy(x_adapt, np.float64)
    z = to_numpy(x_call, np.float64)
    lo, hi = feature_range
    if variant == "feature_range_ignored":
        lo, hi = 0.0, 1.0
    low, high = x.min(axis=0), x.max(axis=0)
    spread = high - low
    with np.errstate(all="ignore"):
        if variant != "zero_range":
            spread = np.where(spread == 0, 1.0, spread)
        if invert:
            if variant == "invert_ignored":
                return lo + (z - low) * (hi - lo) / spread
            return low + (z - lo) * spread / (hi - lo)
        out = lo + (z - low) * (hi - lo) / spread
        if variant == "clipped":
            out = np.clip(out, lo, hi)
        return out


def batched_minmax(x, batch_size, feature_range, x_call, variant):
    batches = [to_numpy(x[i:i + batch_size], np.float64) for i in range(0, len(x), batch_size)]
    if variant == "last_batch_only":
        chosen = batches[-1]
    elif variant == "first_batch_only":
        chosen = batches[0]
    elif variant == "mean_of_batch_extremes":
        low = np.mean([b.min(axis=0) for b in batches], axis=0)
        high = np.mean([b.max(axis=0) for b in batches], axis=0)
        chosen = np.stack([low, high])
    else:
        chosen = x
    return minmax(chosen, x_call, feature_range)


# --------------------------------------------------------------------------------------------
# Known mistakes and their hints

UNBIASED_HINT = ("use the biased variance, dividing by n (the number of values), not n - 1: "
                 "Keras's Normalization (and BatchNormalization) describe the data they saw, "
                 "not an estimate of a population.")
EPS_HINT = ("Normalization FLOORS the standard deviation, max(sqrt(var), 1e-7); it does not add "
            "an epsilon to the variance. sqrt(var + eps) shrinks every feature whose variance "
            "is not much larger than eps (this check has one with a std of 1e-4).")
NAN_HINT = ("a constant feature has variance 0: dividing by sqrt(0) gives NaN. Floor the std "
            "at 1e-7 (ops.maximum(ops.sqrt(var), 1e-7)) so that it maps to 0.")
EPSILONS = (1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)


def _std_mistakes(key: str, invert: bool = False) -> tuple[Mistake, ...]:
    def model(variant, eps=None):
        def outputs(inputs):
            return {key: standardize(inputs["x_adapt"], inputs["x_call"], (0,), variant, eps,
                                     invert)}
        return outputs

    made = [Mistake("unbiased variance", UNBIASED_HINT, outputs=model("unbiased"))]
    made += [Mistake("epsilon added to the variance", EPS_HINT, outputs=model("eps_in_variance", e))
             for e in EPSILONS]
    if invert:
        made += [Mistake("invert ignored", "with invert=True the layer maps standardized values "
                         "back: x = mean + z * std.", outputs=model("invert_ignored")),
                 Mistake("divided by the std when inverting",
                         "the inverse multiplies by the std: x = mean + z * std.",
                         outputs=model("invert_divides"))]
    else:
        made.append(Mistake("NaN on a constant feature", NAN_HINT, outputs=model("no_floor")))
    return tuple(made)


BATCH_HINT = ("merge batches exactly: keep the count, the mean and the sum of squared deviations "
              "so far, and combine them with each batch's (n = n_a + n_b; d = m_b - m_a; "
              "m = m_a + d*n_b/n; s = s_a + s_b + d^2*n_a*n_b/n). ")
BATCHED_MISTAKES = (
    ("mean_of_batch_statistics", "average of the batch means and variances",
     BATCH_HINT + "A plain average of batch means is wrong when the last batch is smaller, and "
                  "an average of batch variances forgets how far the batch means are apart."),
    ("within_batch_variance_only", "variance averaged over batches (spread between batches lost)",
     BATCH_HINT + "The average of the batch variances leaves out the spread of the batch means "
                  "around the overall mean: the d^2 term."),
    ("last_batch_only", "statistics of the last batch only",
     BATCH_HINT + "Each batch must add to the statistics, not replace them."),
    ("first_batch_only", "statistics of the first batch only",
     BATCH_HINT + "Every batch of the data set must be seen, not only the first."),
)


def _std_batched_mistakes() -> tuple[Mistake, ...]:
    def model(variant):
        def outputs(inputs):
            mean, var = batched_moments(inputs["x_adapt"], inputs["batch_size"], variant)
            z = to_numpy(inputs["x_call"], np.float64)
            return {"outputs": (z - mean) / np.maximum(np.sqrt(var), FLOOR)}
        return outputs

    return tuple(Mistake(name, hint, outputs=model(v)) for v, name, hint in BATCHED_MISTAKES)


MINMAX_BATCHED = (
    ("last_batch_only", "minimum and maximum of the last batch only",
     "every batch must update the running minimum and maximum: "
     "data_min = minimum(data_min, batch_min), and the same for the maximum."),
    ("first_batch_only", "minimum and maximum of the first batch only",
     "every batch of the data set must be seen, not only the first."),
    ("mean_of_batch_extremes", "average of the batch minima and maxima",
     "the overall minimum is the minimum of the batch minima, not their average."),
)
RANGE_HINT = ("scale into feature_range = (lo, hi): y = lo + (x - x_min) * (hi - lo) / range; "
              "the default (0, 1) is only one choice.")
ZERO_RANGE_HINT = ("a constant feature has range 0: treat its range as 1 (as scikit-learn does), "
                   "so it maps to lo + (x - x_min) * (hi - lo) instead of NaN or inf.")


def _minmax_mistakes(invert: bool = False) -> tuple[Mistake, ...]:
    def model(variant):
        def outputs(inputs):
            return {"outputs": minmax(inputs["x_adapt"], inputs["x_call"], inputs["feature_range"],
                                      variant, invert)}
        return outputs

    made = [Mistake("feature_range ignored", RANGE_HINT, outputs=model("feature_range_ignored"))]
    if invert:
        made.append(Mistake("invert ignored", "with invert=True the layer maps scaled values back: "
                            "x = x_min + (y - lo) * range / (hi - lo).",
                            outputs=model("invert_ignored")))
    else:
        made += [Mistake("NaN on a constant feature", ZERO_RANGE_HINT, outputs=model("zero_range")),
                 Mistake("outputs clipped to feature_range",
                         "MinMaxScaler does not clip: values outside the adapted [x_min, x_max] map "
                         "outside feature_range (with clip=False, its default).",
                         outputs=model("clipped"))]
    return tuple(made)


def _minmax_batched_mistakes() -> tuple[Mistake, ...]:
    def model(variant):
        def outputs(inputs):
            return {"outputs": batched_minmax(inputs["x_adapt"], inputs["batch_size"],
                                              inputs["feature_range"], inputs["x_call"], variant)}
        return outputs

    return tuple(Mistake(name, hint, outputs=model(v)) for v, name, hint in MINMAX_BATCHED)


# --------------------------------------------------------------------------------------------
# Run functions (in the workers)


def _dataset(x, batch_size, with_labels=False):
    import tensorflow as tf

    if with_labels:  # (x, y) pairs, as a supervised data set yields them
        return tf.data.Dataset.from_tensor_slices((x, np.zeros(len(x), np.float32))).batch(batch_size)
    return tf.data.Dataset.from_tensor_slices(x).batch(batch_size)


def run_standardize(impl, inputs, ctx):
    layer = impl.Standardization(axis=-1)
    layer.adapt(inputs["x_adapt"])
    return {"outputs": to_numpy(layer(inputs["x_call"]))}


def run_standardize_batched(impl, inputs, ctx):
    layer = impl.Standardization()
    layer.adapt(_dataset(inputs["x_adapt"], inputs["batch_size"], with_labels=True))
    return {"outputs": to_numpy(layer(inputs["x_call"]))}


def run_standardize_invert(impl, inputs, ctx):
    import keras

    layer = impl.Standardization(invert=True)
    layer.adapt(keras.ops.convert_to_tensor(inputs["x_adapt"]))  # a tensor, not an array
    return {"outputs": to_numpy(layer(inputs["x_call"]))}


AXES = (("axis=-1", -1), ("axis=1", 1), ("axis=(1, 2)", (1, 2)), ("axis=None", None))


def axes_inputs(rng: np.random.Generator) -> dict:
    n = int(rng.integers(12, 20))
    scale = np.geomspace(1e-2, 1e3, 12).reshape(4, 3)[:, rng.permutation(3)]
    x = (rng.normal(size=(n, 4, 3)) * scale + rng.uniform(-50, 50, (4, 3))).astype(np.float32)
    call = (rng.normal(size=(5, 4, 3)) * scale).astype(np.float32)
    return {"x_adapt": x, "x_call": call}


def run_standardize_axes(impl, inputs, ctx):
    out = {}
    for label, axis in AXES:
        layer = impl.Standardization(axis=axis)
        layer.adapt(inputs["x_adapt"])
        out[label] = to_numpy(layer(inputs["x_call"]))
    return out


def _axes_reduce(axis):
    keep = () if axis is None else tuple(a % 3 for a in np.atleast_1d(axis))
    return tuple(d for d in range(3) if d not in keep)


def _axes_mistakes() -> tuple[Mistake, ...]:
    def model(variant):
        def outputs(inputs):
            return {label: standardize(inputs["x_adapt"], inputs["x_call"], _axes_reduce(axis),
                                       variant) for label, axis in AXES}
        return outputs

    return (Mistake("unbiased variance", UNBIASED_HINT, outputs=model("unbiased")),)


def run_minmax(impl, inputs, ctx):
    layer = impl.MinMaxScaling(feature_range=inputs["feature_range"])
    layer.adapt(inputs["x_adapt"])
    return {"outputs": to_numpy(layer(inputs["x_call"]))}


def run_minmax_batched(impl, inputs, ctx):
    layer = impl.MinMaxScaling(feature_range=inputs["feature_range"])
    layer.adapt(_dataset(inputs["x_adapt"], inputs["batch_size"]))
    return {"outputs": to_numpy(layer(inputs["x_call"]))}


def minmax_batched_inputs(rng: np.random.Generator) -> dict:
    out = batched_inputs(rng)
    out["feature_range"] = minmax_range(rng)
    return out


def minmax_invert_inputs(rng: np.random.Generator) -> dict:
    out = outputs_inputs(rng)
    out["feature_range"] = minmax_range(rng)
    lo, hi = out["feature_range"]
    # inside the range, so that no feature maps back across 0 (see invert_inputs)
    out["x_call"] = rng.uniform(lo, hi, out["x_call"].shape).astype(np.float32)
    return out


def run_minmax_invert(impl, inputs, ctx):
    import keras

    layer = impl.MinMaxScaling(feature_range=inputs["feature_range"], invert=True)
    layer.adapt(keras.ops.convert_to_tensor(inputs["x_adapt"]))
    return {"outputs": to_numpy(layer(inputs["x_call"]))}


def _mixed(make):
    def run(impl, inputs, ctx):
        layer = make(impl, inputs)
        layer.adapt(inputs["x_adapt"])
        y = layer(inputs["x_call"])
        stats = sorted({dtype_name(w) for w in layer.non_trainable_weights
                        if "float" in dtype_name(w)})
        return {"outputs": to_numpy(y, dtype=np.float64), "output dtype": dtype_name(y),
                "statistics dtype": ", ".join(stats) or "<no float non-trainable weights>"}
    return under_policy("mixed_float16", run)


def _standardization_model(impl, inputs):
    return _model(impl.Standardization(), inputs)


def _minmax_model(impl, inputs):
    return _model(impl.MinMaxScaling(feature_range=inputs["feature_range"]), inputs)


def _model(layer, inputs):
    """Input -> the scaling layer (adapted on the training inputs) -> Dense(1), compiled."""
    import keras

    layer.adapt(inputs["x"])
    model = keras.Sequential([keras.Input((inputs["x"].shape[1],)), layer, keras.layers.Dense(1)])
    model.layers[-1].set_weights(inputs["dense"])
    model.compile(optimizer=keras.optimizers.SGD(inputs["learning_rate"]), loss="mse")
    return model


# --------------------------------------------------------------------------------------------
# The checks


def _axis_value(value) -> str:
    """``-1``, ``(-1,)`` and ``[-1]`` name the same axis; ``None`` and ``()`` mean "no axis kept"."""
    if value is None:
        return "()"
    if isinstance(value, (int, np.integer)):
        return str((int(value),))
    return str(tuple(int(v) for v in value))


def _std_kwargs(rng):
    return {"axis": [-1, 1, (1, 2), None][int(rng.integers(0, 4))], "invert": bool(rng.integers(0, 2))}


def _minmax_kwargs(rng):
    return {"feature_range": minmax_range(rng), "invert": bool(rng.integers(0, 2))}


STANDARDIZATION_CHECKS = [
    Check("standardization.outputs", run_standardize, inputs=outputs_inputs, weight=1.5,
          description="adapt on an array, then outputs: scales 1e-4..1e4, a constant feature, "
                      "negative values", mistakes=_std_mistakes("outputs")),
    Check("standardization.batched_adapt", run_standardize_batched, inputs=batched_inputs,
          weight=1.5, rtol=1e-4, atol=1e-5, mistakes=_std_batched_mistakes(),
          description="adapt on a tf.data.Dataset of (x, y) batches with an uneven last batch "
                      "gives the whole-array statistics"),
    Check("standardization.invert", run_standardize_invert, inputs=invert_inputs,
          description="invert=True, adapted on a tensor", mistakes=_std_mistakes("outputs", invert=True)),
    Check("standardization.axes", run_standardize_axes, inputs=axes_inputs, weight=0.5,
          mistakes=_axes_mistakes(),
          description="3-D inputs with axis=-1, axis=1, axis=(1, 2) and axis=None"),
    Check("standardization.mixed_float16",
          _mixed(lambda impl, inputs: impl.Standardization()), inputs=moderate_inputs,
          rtol=5e-3, atol=5e-3, weight=0.5,
          description="under mixed_float16: float32 statistics, float16 outputs"),
] + layer_checks(
    "standardization", "Standardization", defaults=("axis", "invert"), config_keys=("axis", "invert"),
    draw_kwargs=_std_kwargs, normalizers={"axis": _axis_value}, probe_shape=(3,),
    fit=(_standardization_model, house_inputs), save_load=(_standardization_model, house_inputs),
    save_load_train_epochs=1, weights={"fit": 0.5})

MINMAX_CHECKS = [
    Check("minmax.outputs", run_minmax, inputs=minmax_outputs_inputs, weight=1.5,
          description="adapt on an array, then outputs against scikit-learn's MinMaxScaler: a "
                      "drawn feature_range, a constant feature, values outside the adapted range",
          mistakes=_minmax_mistakes()),
    Check("minmax.batched_adapt", run_minmax_batched, inputs=minmax_batched_inputs,
          description="adapt on a tf.data.Dataset with an uneven last batch",
          mistakes=_minmax_batched_mistakes()),
    Check("minmax.invert", run_minmax_invert, inputs=minmax_invert_inputs, weight=0.5,
          description="invert=True against MinMaxScaler.inverse_transform",
          mistakes=_minmax_mistakes(invert=True)),
    Check("minmax.mixed_float16",
          _mixed(lambda impl, inputs: impl.MinMaxScaling(feature_range=inputs["feature_range"])),
          inputs=moderate_inputs, rtol=5e-3, atol=5e-3, weight=0.5,
          description="under mixed_float16: float32 statistics, float16 outputs"),
] + layer_checks(
    "minmax", "MinMaxScaling", defaults=("feature_range", "invert"),
    config_keys=("feature_range", "invert"), draw_kwargs=_minmax_kwargs, probe_shape=(3,),
    fit=(_minmax_model, house_inputs), save_load=(_minmax_model, house_inputs),
    save_load_train_epochs=1, weights={"fit": 0.5, "save_load": 0.5})


EXERCISE = Exercise(
    stem="ch01_feature_scaling",
    checks=tuple(STANDARDIZATION_CHECKS + MINMAX_CHECKS),
    reference="course.references.ch01_feature_scaling",
    forbidden=FORBIDDEN,
)
