"""Checks for chapter 2: BatchNormalization against keras.layers.BatchNormalization.

The layer's weights are read by their Keras names (``gamma``, ``beta``, ``moving_mean``,
``moving_variance``), which the exercise's docstring asks for. Hyperparameters are drawn to
separate the known mistakes: a large epsilon (0.1-0.5, against batch variances of 0.25-9) shows
epsilon outside the square root; a low momentum (0.5-0.9) moves the moving statistics far in a few
steps, so momentum applied to the new value instead of the old one shows at once; small batches
(6-10 rows) make the unbiased variance differ by 5-10%.

The NumPy model below reproduces Keras's layer and each known mistake in float64 (gradients in
closed form), so a student whose numbers match a mistake is told which one.
"""

from __future__ import annotations

import numpy as np

from course.backends import to_numpy

from course.grader.compare import differences
from course.grader.layer_suite import dtype_name, layer_checks, under_policy
from course.grader.spec import Check, Exercise, Mistake, Verdict

FORBIDDEN = ("BatchNormalization", "Normalization")

# --------------------------------------------------------------------------------------------
# The NumPy model


def _reduce_axes(ndim: int, axis: int) -> tuple[int, ...]:
    return tuple(d for d in range(ndim) if d != axis % ndim)


def _vector(v, ndim: int, axis: int):
    shape = [1] * ndim
    shape[axis % ndim] = -1
    return np.reshape(to_numpy(v, np.float64), shape)


def moments(x, axis: int, variant=None):
    """Per-channel batch mean and variance (biased, or unbiased for that mistake)."""
    x = to_numpy(x, np.float64)
    axes = _reduce_axes(x.ndim, axis)
    n = np.prod([x.shape[d] for d in axes])
    mean = x.mean(axis=axes)
    squares = ((x - _vector(mean, x.ndim, axis)) ** 2).sum(axis=axes)
    return mean, squares / (n - 1 if variant == "unbiased" else n)


def normalize(x, mean, var, gamma, beta, eps, axis, variant=None):
    x = to_numpy(x, np.float64)
    v = lambda a: _vector(a, x.ndim, axis)  # noqa: E731
    std = np.sqrt(var) + eps if variant == "eps_outside" else np.sqrt(var + eps)
    return v(gamma) * (x - v(mean)) / v(std) + v(beta)


def update(moving, batch, momentum, variant=None):
    if variant == "never_updated":
        return moving
    if variant == "momentum_swapped":
        return moving * (1 - momentum) + batch * momentum
    return moving * momentum + batch * (1 - momentum)


class Model:
    """One BatchNormalization layer in float64, optionally with a known mistake."""

    def __init__(self, inputs: dict, variant=None):
        k = inputs["kwargs"]
        self.axis, self.eps = k.get("axis", -1), float(np.float32(k.get("epsilon", 1e-3)))
        self.momentum = float(np.float32(k.get("momentum", 0.99)))
        self.gamma, self.beta = inputs["gamma"], inputs["beta"]
        c = len(self.gamma)
        self.moving_mean = to_numpy(inputs.get("moving_mean", np.zeros(c)), np.float64)
        self.moving_var = to_numpy(inputs.get("moving_variance", np.ones(c)), np.float64)
        self.variant = variant

    def train_step(self, x):
        mean, var = moments(x, self.axis, self.variant)
        self.moving_mean = update(self.moving_mean, mean, self.momentum, self.variant)
        self.moving_var = update(self.moving_var, var, self.momentum, self.variant)
        return normalize(x, mean, var, self.gamma, self.beta, self.eps, self.axis, self.variant)

    def infer(self, x):
        if self.variant == "batch_stats_at_inference":
            mean, var = moments(x, self.axis)
        else:
            mean, var = self.moving_mean, self.moving_var
        return normalize(x, mean, var, self.gamma, self.beta, self.eps, self.axis, self.variant)

    def gradients(self, x, w):
        """d(sum(w * y))/d(x, gamma, beta) for a training call on a 2-D batch, in closed form."""
        x = to_numpy(x, np.float64)
        n = len(x)
        mean, var = moments(x, -1, self.variant)
        d = n - 1 if self.variant == "unbiased" else n
        if self.variant == "eps_outside":
            s, ds = np.sqrt(var) + self.eps, 0.5 / np.sqrt(var)
        else:
            s = np.sqrt(var + self.eps)
            ds = 0.5 / s
        centred = x - mean
        d_gamma = (w * centred / s).sum(0)
        d_beta = w.sum(0)
        if self.variant == "no_gradient_through_statistics":
            d_input = self.gamma * w / s
        else:
            through_var = self.gamma * ds / s**2 * (2.0 / d) * (w * centred).sum(0)
            d_input = self.gamma / s * (w - w.mean(0)) - centred * through_var
        return {"d_input": d_input, "d_gamma": d_gamma, "d_beta": d_beta}


# --------------------------------------------------------------------------------------------
# Inputs


def draw_kwargs(rng: np.random.Generator, axis: int = -1) -> dict:
    return {"axis": axis, "momentum": float(rng.uniform(0.5, 0.9)),
            "epsilon": float(rng.uniform(0.1, 0.5))}


def draw_batch(rng, shape, axis: int) -> np.ndarray:
    """A batch whose channels have their own means (-3..3) and spreads (0.5..3)."""
    c = shape[axis]
    centre = _vector(rng.uniform(-3, 3, c), len(shape), axis)
    spread = _vector(rng.uniform(0.5, 3.0, c), len(shape), axis)
    return (centre + spread * rng.normal(size=shape)).astype(np.float32)


def draw_layer(rng, shape, axis: int = -1, steps: int = 1, moving: bool = False) -> dict:
    c = shape[axis]
    out = {"kwargs": draw_kwargs(rng, axis),
           "gamma": rng.uniform(0.5, 2.0, c).astype(np.float32),
           "beta": rng.normal(0, 1, c).astype(np.float32),
           "batches": [draw_batch(rng, shape, axis) for _ in range(steps)],
           "probe": draw_batch(rng, shape, axis)}
    if moving:
        out["moving_mean"] = rng.uniform(-2, 2, c).astype(np.float32)
        out["moving_variance"] = rng.uniform(0.5, 4.0, c).astype(np.float32)
    return out


def training_inputs(rng):
    return draw_layer(rng, (int(rng.integers(6, 11)), int(rng.integers(3, 6))))


def inference_inputs(rng):
    return draw_layer(rng, (int(rng.integers(6, 11)), int(rng.integers(3, 6))), moving=True)


def moving_inputs(rng):
    return draw_layer(rng, (int(rng.integers(6, 11)), int(rng.integers(3, 6))),
                      steps=int(rng.integers(4, 7)))


def gradient_inputs(rng):
    out = training_inputs(rng)
    out["loss_weights"] = rng.normal(size=out["batches"][0].shape).astype(np.float32)
    return out


AXES_CASES = (("2-D, axis=-1", -1, 2), ("3-D, axis=-1", -1, 3),
              ("4-D channels last, axis=-1", -1, 4), ("4-D channels first, axis=1", 1, 4))


def axes_inputs(rng):
    kwargs = draw_kwargs(rng)
    cases = {}
    for label, axis, rank in AXES_CASES:
        c = int(rng.integers(2, 5))
        shape = {2: (6, c), 3: (3, 4, c), 4: (2, 3, 3, c)}[rank]
        if axis == 1:
            shape = (2, c, 3, 3)
        case = draw_layer(rng, shape, axis=axis, steps=2)
        case["kwargs"] = dict(kwargs, axis=axis)
        cases[label] = case
    return {"cases": cases}


def mixed_inputs(rng):
    c = int(rng.integers(3, 6))
    # values near 300: exact in float16, but their squares (9e4) overflow float16's 65504, and
    # a float16 sum of them is off by whole units
    x = (300 + rng.normal(0, 5, (32, c))).astype(np.float16).astype(np.float32)
    return {"kwargs": {"axis": -1, "momentum": 0.9, "epsilon": 1e-3},
            "gamma": rng.uniform(0.5, 2.0, c).astype(np.float32),
            "beta": rng.normal(0, 1, c).astype(np.float32), "batches": [x],
            "probe": (300 + rng.normal(0, 5, (8, c))).astype(np.float16).astype(np.float32)}


# --------------------------------------------------------------------------------------------
# Run functions (in the workers)


def make_layer(impl, inputs: dict, shape=None, **overrides):
    """The student's (or Keras's) layer, built, with the drawn gamma, beta and moving statistics."""
    layer = impl.BatchNormalization(**{**inputs["kwargs"], **overrides})
    layer.build(tuple(shape or inputs["batches"][0].shape))
    for name in ("gamma", "beta", "moving_mean", "moving_variance"):
        weight = getattr(layer, name, None)
        if weight is not None and name in inputs:
            weight.assign(inputs[name])
    return layer


def _stats(layer) -> dict:
    return {"moving_mean": to_numpy(layer.moving_mean),
            "moving_variance": to_numpy(layer.moving_variance)}


def run_training(impl, inputs, ctx):
    layer = make_layer(impl, inputs)
    out = {"outputs": to_numpy(layer(inputs["batches"][0], training=True))}
    out.update(_stats(layer))
    return out


def run_inference(impl, inputs, ctx):
    layer = make_layer(impl, inputs)
    x = inputs["batches"][0]
    return {"outputs (training=False)": to_numpy(layer(x, training=False)),
            "outputs (training not given)": to_numpy(layer(x))}


def run_moving(impl, inputs, ctx):
    layer = make_layer(impl, inputs)
    means, variances = [], []
    for x in inputs["batches"]:
        layer(x, training=True)
        means.append(to_numpy(layer.moving_mean))
        variances.append(to_numpy(layer.moving_variance))
    return {"moving_mean_per_step": np.stack(means), "moving_variance_per_step": np.stack(variances),
            "inference after training": to_numpy(layer(inputs["probe"], training=False))}


def run_gradients(impl, inputs, ctx):
    import keras

    from course.backends import value_and_gradients

    layer = make_layer(impl, inputs)
    _, (d_gamma, d_beta), (d_input,) = value_and_gradients(
        # keras.ops, not `*`: a PyTorch tensor times a NumPy array goes through NumPy
        lambda x: keras.ops.sum(keras.ops.multiply(layer(x, training=True),
                                                   inputs["loss_weights"])),
        [layer.gamma, layer.beta], [inputs["batches"][0]])
    return {"d_input": keras.ops.convert_to_numpy(d_input),
            "d_gamma": keras.ops.convert_to_numpy(d_gamma),
            "d_beta": keras.ops.convert_to_numpy(d_beta)}


def run_axes(impl, inputs, ctx):
    out = {}
    for label, case in inputs["cases"].items():
        layer = make_layer(impl, case)
        for step, x in enumerate(case["batches"]):
            out[f"{label}: training output, step {step + 1}"] = to_numpy(layer(x, training=True))
        out[f"{label}: moving_mean"] = to_numpy(layer.moving_mean)
        out[f"{label}: moving_variance"] = to_numpy(layer.moving_variance)
        out[f"{label}: inference output"] = to_numpy(layer(case["probe"], training=False))
    return out


FLAG_CASES = (("center=False", {"center": False}), ("scale=False", {"scale": False}),
              ("center=False, scale=False", {"center": False, "scale": False}))


def run_center_scale(impl, inputs, ctx):
    out = {}
    for label, flags in FLAG_CASES:
        layer = make_layer(impl, inputs, **flags)
        out[f"{label}: output"] = to_numpy(layer(inputs["batches"][0], training=True))
        out[f"{label}: trainable weights"] = len(layer.trainable_weights)
    return out


def run_frozen(impl, inputs, ctx):
    layer = make_layer(impl, inputs)
    layer.trainable = False
    out = {"outputs (training=True, frozen)": to_numpy(layer(inputs["batches"][0], training=True)),
           "trainable weights": len(layer.trainable_weights)}
    out.update(_stats(layer))
    return out


def run_mixed(impl, inputs, ctx):
    layer = make_layer(impl, inputs)
    y = layer(inputs["batches"][0], training=True)
    z = layer(inputs["probe"], training=False)
    out = {"training output": to_numpy(y, np.float64), "inference output": to_numpy(z, np.float64),
           "output dtype": dtype_name(y), "moving_mean dtype": dtype_name(layer.moving_mean),
           "gamma dtype": dtype_name(layer.gamma)}
    out.update(_stats(layer))
    return out


# --------------------------------------------------------------------------------------------
# Known mistakes, their NumPy models and hints

HINTS = {
    "unbiased": ("unbiased batch variance",
                 "use the biased batch variance, dividing by N (the number of values per channel), "
                 "not N - 1; the moving variance is averaged from that same biased value."),
    "eps_outside": ("epsilon outside the square root",
                    "epsilon goes INSIDE the square root: (x - mu) / sqrt(var + epsilon), "
                    "not (x - mu) / (sqrt(var) + epsilon)."),
    "momentum_swapped": ("momentum applied to the new value instead of the old",
                         "Keras's momentum weights the OLD moving value: "
                         "moving = moving * momentum + batch * (1 - momentum)."),
    "never_updated": ("moving statistics never updated",
                      "a training call must update the moving statistics with .assign(...): "
                      "moving = moving * momentum + batch * (1 - momentum)."),
    "batch_stats_at_inference": ("batch statistics at inference",
                                 "when training is False or None, normalize with moving_mean and "
                                 "moving_variance, not with the statistics of the batch in hand."),
    "trainable_ignored": ("trainable=False ignored",
                          "a frozen layer (layer.trainable = False) runs in inference mode even "
                          "when called with training=True: use `training and self.trainable`."),
    "no_gradient_through_statistics": (
        "no gradient through the batch mean and variance",
        "the batch mean and variance are functions of the input: let the gradient flow through "
        "them (no stop_gradient, no NumPy), which subtracts the mean of the upstream gradient."),
    "flags_ignored": ("center/scale ignored",
                      "with center=False there is no beta weight, with scale=False no gamma "
                      "weight: create each only when its flag is on."),
}


def _mistake(variant: str, outputs) -> Mistake:
    name, hint = HINTS[variant]
    return Mistake(name, hint, outputs=outputs, id=variant)


def _training_model(variant):
    def outputs(inputs):
        m = Model(inputs, variant)
        y = m.train_step(inputs["batches"][0])
        return {"outputs": y, "moving_mean": m.moving_mean, "moving_variance": m.moving_var}
    return outputs


def _inference_model(variant):
    def outputs(inputs):
        y = Model(inputs, variant).infer(inputs["batches"][0])
        return {"outputs (training=False)": y, "outputs (training not given)": y}
    return outputs


def _moving_model(variant):
    def outputs(inputs):
        m = Model(inputs, variant)
        means, variances = [], []
        for x in inputs["batches"]:
            m.train_step(x)
            means.append(m.moving_mean)
            variances.append(m.moving_var)
        return {"moving_mean_per_step": np.stack(means), "moving_variance_per_step": np.stack(variances),
                "inference after training": m.infer(inputs["probe"])}
    return outputs


def _gradient_model(variant):
    def outputs(inputs):
        return Model(inputs, variant).gradients(inputs["batches"][0], inputs["loss_weights"])
    return outputs


def _axes_model(variant):
    def outputs(inputs):
        out = {}
        for label, case in inputs["cases"].items():
            m = Model(case, variant)
            for step, x in enumerate(case["batches"]):
                out[f"{label}: training output, step {step + 1}"] = m.train_step(x)
            out[f"{label}: moving_mean"] = m.moving_mean
            out[f"{label}: moving_variance"] = m.moving_var
            out[f"{label}: inference output"] = m.infer(case["probe"])
        return out
    return outputs


def _frozen_model(variant):
    def outputs(inputs):
        m = Model(inputs, None)
        if variant == "trainable_ignored":
            y, count = m.train_step(inputs["batches"][0]), 0
        else:
            y, count = m.infer(inputs["batches"][0]), 0
        return {"outputs (training=True, frozen)": y, "trainable weights": count,
                "moving_mean": m.moving_mean, "moving_variance": m.moving_var}
    return outputs


def _flags_model(variant):
    def outputs(inputs):
        out = {}
        for label, flags in FLAG_CASES:
            gamma = inputs["gamma"] if flags.get("scale", True) else np.ones_like(inputs["gamma"])
            beta = inputs["beta"] if flags.get("center", True) else np.zeros_like(inputs["beta"])
            m = Model(dict(inputs, gamma=gamma, beta=beta))
            out[f"{label}: output"] = m.train_step(inputs["batches"][0])
            correct = 2 - (not flags.get("center", True)) - (not flags.get("scale", True))
            out[f"{label}: trainable weights"] = 2 if variant == "flags_ignored" else correct
        return out
    return outputs


TRAINING_MISTAKES = tuple(_mistake(v, _training_model(v))
                          for v in ("unbiased", "eps_outside", "momentum_swapped", "never_updated"))
MOVING_MISTAKES = tuple(_mistake(v, _moving_model(v)) for v in (
    "unbiased", "eps_outside", "momentum_swapped", "never_updated", "batch_stats_at_inference"))

MIXED_HINT = ("under mixed_float16 the input arrives as float16: cast it to float32 before the "
              "statistics (float16 squares overflow above 256, and float16 sums lose whole units), "
              "keep gamma, beta and the moving statistics float32 (add_weight(..., autocast=False)), "
              "and cast only the output to self.compute_dtype.")


def judge_mixed(rtol: float, atol: float):
    def judge(student, reference, inputs) -> Verdict:
        with np.errstate(all="ignore"):
            diffs = differences(student, reference, rtol, atol)
        if not diffs:
            return Verdict(True, "matches the reference")
        return Verdict(False, "; ".join(diffs[:3]), hint=MIXED_HINT)
    return judge


# --------------------------------------------------------------------------------------------
# Model-level checks (model.fit, .keras round trip)


def fit_inputs(rng):
    n, features, hidden = 64, 5, 6
    x = (rng.normal(size=(n, features)) * rng.uniform(0.5, 3, features) + rng.uniform(-2, 2, features))
    true_w = rng.normal(size=(features, 1))
    y = np.tanh(x @ true_w / 3) + 0.1 * rng.normal(size=(n, 1))
    return {"x": x.astype(np.float32), "y": y.astype(np.float32),
            "probe": x[:8].astype(np.float32) * 1.1,
            "dense": [rng.normal(0, 0.5, (features, hidden)).astype(np.float32),
                      rng.normal(0, 0.5, (hidden, 1)).astype(np.float32), np.zeros(1, np.float32)],
            "learning_rate": float(rng.uniform(0.05, 0.1)), "momentum": float(rng.uniform(0.5, 0.9))}


def build_model(impl, inputs):
    """Dense (no bias: beta replaces it) -> BatchNormalization -> tanh -> Dense(1), compiled."""
    import keras

    model = keras.Sequential([
        keras.Input((inputs["x"].shape[1],)),
        keras.layers.Dense(inputs["dense"][0].shape[1], use_bias=False),
        impl.BatchNormalization(momentum=inputs["momentum"]),
        keras.layers.Activation("tanh"),
        keras.layers.Dense(1),
    ])
    model.layers[0].set_weights(inputs["dense"][:1])
    model.layers[-1].set_weights(inputs["dense"][1:])
    model.compile(optimizer=keras.optimizers.SGD(inputs["learning_rate"]), loss="mse")
    return model


def fit_extra(model) -> dict:
    """The BatchNormalization layer's four weights after training, read by name."""
    layer = model.layers[1]
    return {f"{name} after fit": to_numpy(getattr(layer, name))
            for name in ("gamma", "beta", "moving_mean", "moving_variance")}


# --------------------------------------------------------------------------------------------
# The checks


def _config_kwargs(rng):
    return {"axis": int(rng.choice([-1, 1])), "momentum": float(rng.uniform(0.5, 0.99)),
            "epsilon": float(rng.uniform(1e-4, 0.5)), "center": bool(rng.integers(0, 2)),
            "scale": bool(rng.integers(0, 2))}


CHECKS = [
    Check("bn.training_output", run_training, inputs=training_inputs, weight=1.5,
          mistakes=TRAINING_MISTAKES,
          description="training=True on a 2-D batch: outputs and the moving statistics after it"),
    Check("bn.inference_output", run_inference, inputs=inference_inputs,
          mistakes=(_mistake("batch_stats_at_inference", _inference_model("batch_stats_at_inference")),
                    _mistake("eps_outside", _inference_model("eps_outside"))),
          description="training=False and training not given use the moving statistics"),
    Check("bn.moving_statistics", run_moving, inputs=moving_inputs, weight=1.5,
          mistakes=MOVING_MISTAKES,
          description="moving mean and variance after each of 4-6 training steps, then inference"),
    Check("bn.gradients", run_gradients, inputs=gradient_inputs, weight=1.5, rtol=1e-4, atol=1e-5,
          mistakes=tuple(_mistake(v, _gradient_model(v)) for v in (
              "unbiased", "eps_outside", "no_gradient_through_statistics")),
          description="gradients with respect to the input, gamma and beta (the backend's own autodiff)"),
    Check("bn.axes", run_axes, inputs=axes_inputs,
          mistakes=tuple(_mistake(v, _axes_model(v)) for v in (
              "unbiased", "eps_outside", "momentum_swapped", "never_updated")),
          description="2-D, 3-D and 4-D inputs, channels last (axis=-1) and channels first (axis=1)"),
    Check("bn.center_scale", run_center_scale, inputs=training_inputs, weight=0.5,
          mistakes=(_mistake("flags_ignored", _flags_model("flags_ignored")),),
          description="center=False / scale=False: no beta / gamma weight, outputs without them"),
    Check("bn.trainable_false", run_frozen, inputs=inference_inputs,
          mistakes=(_mistake("trainable_ignored", _frozen_model("trainable_ignored")),),
          description="a frozen layer (trainable=False) uses and keeps its moving statistics"),
    Check("bn.mixed_float16", under_policy("mixed_float16", run_mixed), inputs=mixed_inputs,
          rtol=2e-3, atol=2e-3, judge=judge_mixed(2e-3, 2e-3),
          description="mixed_float16: float32 statistics and weights, float16 output, inputs "
                      "near 300"),
] + layer_checks(
    "bn", "BatchNormalization", defaults=("axis", "momentum", "epsilon", "center", "scale"),
    config_keys=("axis", "momentum", "epsilon", "center", "scale"), draw_kwargs=_config_kwargs,
    probe_shape=(3,), fit=(build_model, fit_inputs), save_load=(build_model, fit_inputs),
    fit_extra=fit_extra, save_load_train_epochs=2)


EXERCISE = Exercise(
    stem="ch02_batch_norm",
    checks=tuple(CHECKS),
    reference="course.references.ch02_batch_norm",
    forbidden=FORBIDDEN,
)
