# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Chapter 5 — RMSProp: a step size for every weight
#
# Plain gradient descent moves every weight with the same learning rate. When the loss is steep
# along one direction and flat along another, that single rate is a bad compromise: it has to be
# small enough for the steep direction (or the steps there overshoot and grow), and then the flat
# direction crawls. Momentum (chapter 4) fights the symptom by averaging the zig-zag away.
# RMSProp changes the rate itself, separately for each weight: it keeps a running average of that
# weight's squared gradients and divides the step by its square root. A weight whose gradients
# are large gets a small rate; one whose gradients are small gets a large one.
#
# This chapter:
#
# 1. writes the update down, including the two places where Keras's version differs from the
#    usual textbook formula (where epsilon goes; how momentum is added);
# 2. runs this chapter's `RMSprop` next to `keras.optimizers.RMSprop` with every option;
# 3. draws its path on an ill-conditioned bowl against gradient descent and momentum, measures how
#    the number of steps grows with the bowl's conditioning, and trains a classifier on the wine
#    data set (or `--dataset NAME`) with raw, unscaled features;
# 4. shows why epsilon inside or outside the square root is not a detail;
# 5. runs it under mixed precision and shows why its state must stay float32;
# 6. measures claims of the source documents as it goes (per-weight step sizes; the cost in
#    memory).
#
# Run it as a script (`python -m chapters.ch05_rmsprop [--quick] [--out DIR] [--mine]
# [--dataset NAME]`) or open it as a notebook with jupytext.

# %%
from course.chapter import setup

ch = setup(5, "RMSProp")
QUICK = ch.quick

# %% [markdown]
# ### Which RMSprop this run uses
#
# The component comes from `solutions/ch05_rmsprop.py`, or with `--mine` from your own
# `exercises/ch05_rmsprop.py`. If it is still a stub (it raises `NotImplementedError`), the chapter
# runs with Keras's built-in in its place and says so, so every plot still appears.

# %%
RMSprop = ch.pick("RMSprop")
OURS = f"RMSprop ({RMSprop.__module__.split('.')[0]})"
print(f"RMSprop used below: {RMSprop.__module__}.{RMSprop.__qualname__}")

# %% [markdown]
# ## 1. The update
#
# For each weight `w` with gradient `g`, Keras's RMSprop keeps one running average and takes one
# step:
#
# ```
# v   = rho * v + (1 - rho) * g^2          the mean square of recent gradients ("velocity")
# w   = w - lr * g / sqrt(v + epsilon)
# ```
#
# `rho` (0.9 by default) sets the memory: each new squared gradient enters with weight `1 - rho`
# and fades by a factor `rho` per step, so `v` averages roughly the last `1/(1 - rho)` = 10 steps.
# Because `sqrt(v)` has the units of the gradient, the step `lr * g / sqrt(v)` is measured in units
# of the learning rate: on a stretch where a weight's gradient keeps the same size, every step is
# close to `lr` long, whether that gradient is 1000 or 0.001. That is what "a step size per weight"
# means, and why the steep and the shallow direction of a valley advance at a similar pace.
#
# Three details matter when you compare implementations:
#
# - **Epsilon sits inside the square root** in Keras: `sqrt(v + epsilon)`. Most textbooks (and the
#   source documents) write `sqrt(v) + epsilon`. With Keras's default `epsilon = 1e-7` both are
#   nearly the same optimizer, but the same number means different things in the two places
#   (section 4).
# - **There is no bias correction.** `v` starts at 0, so after the first step it holds only
#   `(1 - rho) * g^2` and the first step is `lr / sqrt(1 - rho)`, about 3.2 times `lr`. Adam
#   (chapter 6) adds the correction that removes this.
# - **Options.** `centered=True` also averages the gradients, `a = rho * a + (1 - rho) * g`, and
#   divides by `sqrt(v - a^2 + epsilon)`: the square root of a variance estimate instead of a raw
#   mean square. `momentum > 0` accumulates the whole increments, `mom = momentum * mom +
#   lr * g / sqrt(...)`, and steps by `mom`; the rate and the scaling that were in force when an
#   increment was made stay baked into it.
#
# A first step you can check by hand, on Keras's own test case (`lr = 0.5`, gradient
# `[1, 6, 7, 2]`, weights `[1, 2, 3, 4]`):

# %%
import keras
import numpy as np

w = keras.Variable(np.array([1.0, 2.0, 3.0, 4.0], "float32"))
g = np.array([1.0, 6.0, 7.0, 2.0], "float32")
RMSprop(learning_rate=0.5).apply_gradients([(keras.ops.convert_to_tensor(g), w)])
by_hand = np.array([1.0, 2.0, 3.0, 4.0]) - 0.5 * g / np.sqrt(0.1 * g**2 + 1e-7)
print("after one step:          ", np.round(w.numpy(), 5))
print("w - lr*g/sqrt(0.1*g^2+eps):", np.round(by_hand, 5))
print(f"every weight moved by about lr/sqrt(1 - rho) = {0.5 / np.sqrt(0.1):.4f}, "
      "whatever its gradient: the first step of RMSprop ignores the gradient's size")

# %% [markdown]
# ## 2. The component next to Keras
#
# Both optimizers run the same steps (the table's title says how many) on three weights of
# different shapes, with the gradient of a quadratic plus noise, for each combination of the
# options. Epsilon is 0.1 here, large on purpose: any difference in where it enters would show
# (the grader draws it the same way).

# %%
from course.toolkit import max_gap, optimizer_paths, table

NOISY_STEPS = 15 if QUICK else 30  # eager optimizer updates, tens of milliseconds each
SHAPES, CURVATURES = [(5,), (3, 4), (2, 1, 3)], [0.5, 2.0, 8.0]


def noisy_quadratic_paths(optimizers: dict, steps: int = NOISY_STEPS, seed: int = 0) -> dict:
    """Each optimizer's weights at every step of ``steps`` updates from the same start, with the
    gradient ``c * w + noise`` (the same start and noise for every optimizer and every call)."""
    rng = np.random.default_rng(seed)
    start = [rng.normal(size=s).astype("float32") for s in SHAPES]
    noise = [[rng.normal(size=s).astype("float32") for s in SHAPES] for _ in range(steps)]

    def gradient(step, values):
        return [c * v + n for c, v, n in zip(CURVATURES, values, noise[step])]

    return optimizer_paths(optimizers, start, gradient, steps)


OPTIONS = {"plain": {}, "centered": {"centered": True}, "momentum 0.8": {"momentum": 0.8},
           "centered + momentum 0.8": {"centered": True, "momentum": 0.8}}
rows = []
for label, options in OPTIONS.items():
    kwargs = {"learning_rate": 0.05, "rho": 0.85, "epsilon": 0.1, **options}
    pair = noisy_quadratic_paths({"ours": RMSprop(**kwargs),
                                  "keras": keras.optimizers.RMSprop(**kwargs)})
    gap = max_gap(pair["ours"], pair["keras"])
    scale = max(float(np.max(np.abs(w))) for w in pair["keras"][-1])
    rows.append([label, f"{gap:.2e}", f"{scale:.3f}", gap <= 1e-5 * scale])
table(f"{OURS} against keras.optimizers.RMSprop, {NOISY_STEPS} steps, epsilon 0.1",
      ["options", "largest |ours - Keras| over the run", "largest final |weight|",
       "agree (1e-5 relative)"], rows)

# %% [markdown]
# ## 3. Experiments
#
# ### 3a. Paths on an ill-conditioned bowl
#
# The bowl is `f(x1, x2) = 0.1*x1^2 + 2*x2^2`: twenty times steeper across (x2) than along (x1).
# Gradient descent must keep its rate below 0.5 or the x2 steps grow without bound; at 0.45 it
# bounces from wall to wall while x1 creeps. Momentum averages the bounce away. RMSprop instead
# rescales each coordinate: the right panel shows the rate each coordinate actually got, which
# for RMSprop is the step taken divided by the gradient, `lr / sqrt(v + eps)`.

# %%
from course.plotting import (BOWL, START, bowl_loss, figure, plot_curves, plot_trajectories,
                             run_on_bowl, steps_to_reach)

BOWL_STEPS = 60
runs = {
    "gradient descent (lr 0.45)": keras.optimizers.SGD(0.45),
    "momentum (lr 0.05, beta 0.9)": keras.optimizers.SGD(0.05, momentum=0.9),
    f"{OURS.split(' (')[0]} (lr 0.2)": RMSprop(0.2),
}
paths = {name: run_on_bowl(opt, steps=BOWL_STEPS) for name, opt in runs.items()}
GD, MOM, RMS = list(paths)


def effective_rates(path: np.ndarray) -> np.ndarray:
    """Per step and coordinate: the step taken divided by the gradient (the rate actually used)."""
    grad = 2 * np.asarray(BOWL) * path[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = -(path[1:] - path[:-1]) / grad
    return np.where(np.abs(grad) > 1e-6, rates, np.nan)


fig, axes = figure(1, 3, width=5.2, height=4.3)
plot_trajectories(axes[0, 0], paths, title=f"{BOWL_STEPS} steps on 0.1*x1^2 + 2*x2^2")
steps = np.arange(1, BOWL_STEPS + 1)
rates = effective_rates(paths[GD])
axes[0, 1].plot(steps, rates[:, 0], "-", color="C0", lw=1.8,
                label="gradient descent: x1 and x2 (one rate)")
rates = effective_rates(paths[RMS])
axes[0, 1].plot(steps, rates[:, 0], "-", color="C2", lw=1.8, label="RMSprop: x1 (shallow)")
axes[0, 1].plot(steps, rates[:, 1], "--", color="C2", lw=1.8, label="RMSprop: x2 (steep)")
axes[0, 1].set_yscale("log")
axes[0, 1].set_xlim(0, 30)
axes[0, 1].set_xlabel("step")
axes[0, 1].set_ylabel("rate used = step / gradient")
axes[0, 1].set_title("The rate each coordinate got")
axes[0, 1].grid(alpha=0.3)
axes[0, 1].legend(fontsize=8)
plot_curves(axes[0, 2], {name: bowl_loss(p[1:, 0], p[1:, 1]) for name, p in paths.items()},
            xlabel="step", ylabel="loss", title="Loss on the bowl")
axes[0, 2].set_ylim(1e-8, 30)
fig.suptitle("RMSProp gives the shallow direction a larger rate than the steep one", y=1.02)
ch.savefig(fig, "bowl_trajectories")


def bounces(x2: np.ndarray, floor: float = 0.01) -> int:
    """Sign changes of x2 between consecutive steps, ignoring wiggles below ``floor``."""
    big = np.abs(x2) > floor
    return int(np.sum((np.sign(x2[1:]) != np.sign(x2[:-1])) & big[1:] & big[:-1]))


rates = effective_rates(paths[RMS])
ratio = float(np.nanmedian(rates[5:20, 0] / rates[5:20, 1]))
reach = {name: steps_to_reach(p, 0.01) for name, p in paths.items()}
table("The bowl, from (-5, -2)", ["optimizer", "steps to loss 0.01", "bounces across the valley"],
      [[name, reach[name], bounces(p[:, 1])] for name, p in paths.items()])
ch.claim("rmsprop_steps",
         measured=f"on the bowl, RMSprop's rate along the shallow x1 was {ratio:.1f}x its rate "
                  "along the steep x2 (median of steps 6-20); gradient descent uses one rate for "
                  "both",
         holds=ratio > 3)

# %% [markdown]
# ### 3b. How the number of steps grows with the conditioning
#
# Now stretch the bowl: keep the steep direction at `2*x2^2` and make the shallow one `2/k*x1^2`
# for condition numbers `k` from 1 upward. Gradient descent's rate is capped by the steep
# direction, so along x1 it needs about `k` times more steps. RMSprop's per-coordinate scaling
# makes the shallow direction's steps about `lr` long whatever `k` is. We count the steps until
# BOTH coordinates are within 10% of their starting distance from the minimum (the loss alone
# would hide the shallow direction: at large `k` it is dominated by the steep term). Each optimizer
# runs all the bowls at once (one variable holds one (x1, x2) pair per bowl; coordinates never
# interact), for up to `MAX_STEPS` steps.

# %%
from course.toolkit import repeated_updates

KAPPAS = [1, 10, 100] if QUICK else [1, 3, 10, 30, 100, 300, 1000]
MAX_STEPS = 400 if QUICK else 3000


def steps_to_ten_percent(make_optimizer, kappas, max_steps: int) -> list:
    """Per bowl 2/k*x1^2 + 2*x2^2 from (-5, -2): the first step after which every coordinate
    stays within 10% of its starting distance from the minimum."""
    a = np.array([[2.0 / k, 2.0] for k in kappas], "float32")  # loss = sum(a * x^2) per row
    x = keras.Variable(np.tile(np.array(START, "float32"), (len(kappas), 1)))
    coef = 2 * a
    # a compiled loop: thousands of steps of a tiny problem in well under a second
    (path,) = repeated_updates(make_optimizer(), [x],
                               lambda values: [keras.ops.multiply(coef, values[0])], max_steps,
                               record=True)  # (steps, bowls, 2)
    inside = np.all(np.abs(path) <= 0.1 * np.abs(np.array(START)), axis=2)  # (steps, bowls)
    out = []
    for i in range(len(kappas)):
        # the first step from which it stays inside: an overshoot that comes back out is no arrival
        outside = np.nonzero(~inside[:, i])[0]
        last_out = outside[-1] + 1 if outside.size else 0
        out.append(int(last_out) + 1 if last_out < max_steps else None)
    return out


sweep = {
    "gradient descent (lr 0.45)": steps_to_ten_percent(lambda: keras.optimizers.SGD(0.45),
                                                       KAPPAS, MAX_STEPS),
    f"{OURS} (lr 0.1)": steps_to_ten_percent(lambda: RMSprop(0.1), KAPPAS, MAX_STEPS),
    "RMSprop (Keras, lr 0.1)": steps_to_ten_percent(lambda: keras.optimizers.RMSprop(0.1),
                                                    KAPPAS, MAX_STEPS),
}
fig, axes = figure(1, 1, width=6.5, height=4.5)
ax = axes[0, 0]
for (name, counts), style in zip(sweep.items(), ("o-", "s-", "x--")):
    reached = [(k, c) for k, c in zip(KAPPAS, counts) if c is not None]
    ax.plot([k for k, _ in reached], [c for _, c in reached], style, lw=1.6, ms=6, label=name)
    missed = [k for k, c in zip(KAPPAS, counts) if c is None]
    if missed:
        ax.plot(missed, [MAX_STEPS] * len(missed), "^", color=ax.lines[-1].get_color(), ms=9,
                label=f"{name.split(' (')[0]}: not reached in {MAX_STEPS}")
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_xlabel("condition number k (steep curvature / shallow curvature)")
ax.set_ylabel("steps until x1 and x2 are within 10% of their start")
ax.set_title("Gradient descent slows down with k; RMSProp hardly notices")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
ch.savefig(fig, "conditioning_sweep")
table("Steps until both coordinates are within 10% of their start", ["k", *sweep],
      [[k, *(counts[i] if counts[i] is not None else f"> {MAX_STEPS}"
             for counts in sweep.values())] for i, k in enumerate(KAPPAS)])

gd_counts, rms_counts = sweep["gradient descent (lr 0.45)"], sweep[f"{OURS} (lr 0.1)"]
gd_growth = (gd_counts[-1] or MAX_STEPS) / gd_counts[0]
rms_growth = (rms_counts[-1] or MAX_STEPS) / rms_counts[0]
ch.claim("rmsprop_oscillation",
         measured=f"from k = {KAPPAS[0]} to k = {KAPPAS[-1]}, gradient descent needed "
                  f"{gd_growth:.0f}x more steps, RMSprop {rms_growth:.1f}x",
         holds=gd_growth > 5 * rms_growth)

# %% [markdown]
# RMSprop's line is not just flat, it is the same number for every `k`. Multiply all of one
# coordinate's gradients by a constant `c` and `v` grows by `c^2`, so `g / sqrt(v)` does not change:
# apart from epsilon, RMSprop's path along x1 is identical on every one of these bowls. The other
# side of that coin shows at `k = 1`: on a round bowl gradient descent takes big steps where the
# gradient is big and wins by far, while RMSprop still advances about `lr` per step. RMSprop does
# not use the curvature; it ignores it, which is exactly what helps when the curvatures differ.
#
# ### 3c. A real data set with raw features
#
# The wine data set (13 chemical measurements of 178 wines from three cultivars) comes with
# features on wildly different scales: hue is about 1, magnesium about 100, proline about 1000.
# For a linear softmax classifier that is the bowl above in 39 dimensions: the loss is convex,
# and the curvature along a weight grows with the square of its feature's scale, so the weights
# on proline sit on the steep side and those on hue on the flat side. Chapter 1 fixes this at the
# source by standardizing the inputs; RMSprop can partly fix it in the optimizer, since each
# weight's rate adapts to the size of its own gradients.
#
# Each optimizer trains the same classifier from the same initial weights, on raw and on
# standardized features, at each rate of a small grid; the plot shows each optimizer at its best
# rate (lowest final training loss), and Keras's RMSprop at that same rate on top of ours.
# (`--dataset NAME` runs the same comparison on another classification data set; the rate grids
# are chosen for wine.)

# %%
import dataclasses

from course.toolkit import dense_model, load_dataset, train

# each epoch is a few Python-level steps and some Keras bookkeeping, in each of the six runs
EPOCHS = 10 if QUICK else 100
# the test split comes standardized with the training split's statistics, or both raw; the
# second load names the data set the first one settled on, so a fall-back is announced once
CAP = 2000 if QUICK else 10000  # a large download (mnist) would make the chapter slow
raw = load_dataset(ch.dataset, default="course_wine", classification_only=True, validation=True,
                   standardize=False, cap=CAP, val_cap=CAP)
FEATURES = {"raw features": raw,
            "standardized features": load_dataset(raw.name, validation=True, cap=CAP, val_cap=CAP)}
DATA = FEATURES["standardized features"]
# rate grids around what each feature scale can take; the quick run (each fit costs about a
# second of tracing) tries one rate per optimizer from the grid
RATES = {
    "raw features": {"SGD": [1e-4] if QUICK else [1e-6, 1e-5, 1e-4, 1e-3],
                     "RMSprop": [1e-2] if QUICK else [1e-3, 1e-2, 1e-1]},
    "standardized features": {"SGD": [1.0] if QUICK else [1e-2, 1e-1, 1.0],
                              "RMSprop": [1e-1] if QUICK else [1e-3, 1e-2, 1e-1]},
}
MAKERS = {"SGD": keras.optimizers.SGD, "RMSprop": RMSprop}


def fit(optimizer, data) -> dict:
    """Training loss per epoch and test accuracy of a softmax classifier (no hidden layer), from
    the same initial weights (dense_model's seed) and batches for every optimizer."""
    # the test split is scored once, at the end, not after every epoch
    run = train(dense_model(data, hidden=(), seed=5), optimizer,
                dataclasses.replace(data, x_val=None, y_val=None), epochs=EPOCHS)
    predicted = np.argmax(keras.ops.convert_to_numpy(run.model(data.x_val)), axis=1)
    return {"loss": run.loss, "accuracy": float(np.mean(predicted == data.y_val))}


results, best = {}, {}
for feature, data in FEATURES.items():
    for kind, rates in RATES[feature].items():
        for lr in rates:
            results[(feature, kind, lr)] = fit(MAKERS[kind](lr), data)
        finite = [lr for lr in rates if np.isfinite(results[(feature, kind, lr)]["loss"][-1])]
        best[(feature, kind)] = min(finite, key=lambda lr: results[(feature, kind, lr)]["loss"][-1])
    lr = best[(feature, "RMSprop")]
    results[(feature, "Keras RMSprop", lr)] = fit(keras.optimizers.RMSprop(lr), data)

fig, axes = figure(1, 2, width=5.5, height=4.2, sharey=True)
for ax, feature in zip(axes[0], FEATURES):
    curves = {}
    for kind in ("SGD", "RMSprop"):
        lr = best[(feature, kind)]
        label = OURS if kind == "RMSprop" else "SGD"
        curves[f"{label}, best lr {lr:g}"] = results[(feature, kind, lr)]["loss"]
    lr = best[(feature, "RMSprop")]
    curves[f"RMSprop (Keras), lr {lr:g}"] = results[(feature, "Keras RMSprop", lr)]["loss"]
    plot_curves(ax, curves, xlabel="epoch", ylabel="training loss (cross-entropy)",
                title=f"{DATA.name}, {feature}")
    ax.lines[-1].set_linestyle(":")
    ax.lines[-1].set_linewidth(3)
fig.suptitle(f"A softmax classifier on {DATA.name}, each optimizer at its best rate", y=1.02)
ch.savefig(fig, "wine_training")
table(f"{DATA.name} after {EPOCHS} epochs",
      ["features", "optimizer", "lr", "final training loss", "test accuracy", "best of its grid"],
      [[f, kind, f"{lr:g}", f"{r['loss'][-1]:.3f}", f"{r['accuracy']:.2f}",
        "<-" if best.get((f, kind)) == lr else ""] for (f, kind, lr), r in results.items()])
for feature in FEATURES:
    lr = best[(feature, "RMSprop")]
    gap = np.max(np.abs(results[(feature, "RMSprop", lr)]["loss"]
                        - results[(feature, "Keras RMSprop", lr)]["loss"]))
    print(f"{feature}: {OURS} against Keras's RMSprop, largest difference in epoch loss {gap:.2e}")
raw_sgd = results[("raw features", "SGD", best[("raw features", "SGD")])]["loss"][-1]
raw_rms = results[("raw features", "RMSprop", best[("raw features", "RMSprop")])]["loss"][-1]
print(f"on raw features the best RMSprop ends at {raw_sgd / raw_rms:.1f}x lower loss than the "
      "best SGD")

# %% [markdown]
# On raw features SGD has no good rate: one small enough for the proline weights leaves the
# weights on the small features almost where they started, and a larger one makes the big-feature
# weights overshoot, so its loss stays high. RMSprop gives every weight a step of about `lr`
# whatever its feature's scale, so it gets much further in the same number of epochs.
# It does not make scaling unnecessary: standardized features are better for both optimizers,
# because a per-weight rate cannot undo the coupling between weights that unscaled, correlated
# features create (the valley is not aligned with the axes), and because RMSprop's near-constant
# step of `lr` is too coarse for the big-feature weights. (Tiny differences between two
# implementations, e.g. computing `1 - rho` in float32 rather than in Python, would grow on the raw
# features; the lines under the table print how far ours and Keras's epoch losses are apart.)
#
# ## 4. Epsilon inside or outside the square root
#
# Epsilon stops a division by zero when a weight's gradients have been near zero. Keras adds it
# to `v`, under the root; the textbook adds it to `sqrt(v)`. The rate a weight gets,
# as a multiple of `lr`, is `1/sqrt(v + eps)` in one case and `1/(sqrt(v) + eps)` in the other.
# Inside the root, epsilon caps the rate at `1/sqrt(eps)` and takes over once `v` falls to about
# `eps`; outside, it caps it at `1/eps` and takes over only once `v` falls to about `eps^2`. So
# Keras's default 1e-7 behaves like roughly 3e-4 in the textbook form, and the documents' 1e-8
# outside the root like 1e-16 inside.

# %%
v = np.geomspace(1e-18, 1e2, 400)
fig, axes = figure(1, 2, width=5.6, height=4.3)
ax = axes[0, 0]
for eps, color in ((1e-7, "C0"), (1e-3, "C1")):
    ax.loglog(v, 1 / np.sqrt(v + eps), "-", color=color, lw=2, label=f"inside: 1/sqrt(v + {eps:g})")
    ax.loglog(v, 1 / (np.sqrt(v) + eps), "--", color=color, lw=2,
              label=f"outside: 1/(sqrt(v) + {eps:g})")
ax.loglog(v, 1 / np.sqrt(v), ":", color="0.4", lw=1.2, label="no epsilon: 1/sqrt(v)")
ax.set_xlabel("v, the running mean of squared gradients")
ax.set_ylabel("rate multiplier (rate / lr)")
ax.set_title("Where epsilon takes over")
ax.set_ylim(1e-1, 1e10)
ax.grid(alpha=0.3, which="major")
ax.legend(fontsize=7.5)


class TextbookRMSprop(keras.optimizers.Optimizer):
    """RMSprop with epsilon outside the root, as the documents write it (for comparison only)."""

    def __init__(self, learning_rate=0.001, rho=0.9, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho, self.epsilon = rho, epsilon

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self._v = self.add_optimizer_variables(var_list, "velocity")

    def update_step(self, gradient, variable, learning_rate):
        v = self._v[self._get_variable_index(variable)]
        g = keras.ops.cast(gradient, variable.dtype)
        self.assign(v, self.rho * v + (1 - self.rho) * keras.ops.square(g))
        self.assign_sub(variable, learning_rate * g / (keras.ops.sqrt(v) + self.epsilon))


# two runs of eager optimizer steps per epsilon: the quick run keeps Keras's default, a middle
# value and two from the range the grader draws
EPSILONS = [1e-7, 1e-3, 0.1, 0.5] if QUICK else [1e-8, 1e-7, 1e-4, 1e-3, 1e-2, 0.1, 0.5]
gaps = []
for eps in EPSILONS:
    placements = noisy_quadratic_paths({"inside": RMSprop(0.05, epsilon=eps),
                                        "outside": TextbookRMSprop(0.05, epsilon=eps)})
    gaps.append(max(float(np.max(np.abs(a - b) / (np.abs(b) + 1e-3)))
                    for a, b in zip(placements["inside"][-1], placements["outside"][-1])))
ax = axes[0, 1]
ax.loglog(EPSILONS, gaps, "o-", lw=2)
ax.axhline(1e-5, color="C3", ls="--", lw=1.2, label="the grader's tolerance (1e-5 relative)")
ax.axvspan(0.05, 0.5, color="C2", alpha=0.15, label="the epsilons the grader draws")
ax.set_xlabel("epsilon")
ax.set_ylabel(f"largest relative difference after {NOISY_STEPS} steps")
ax.set_title("Inside vs outside, same epsilon")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
fig.suptitle("Epsilon under the root is a different number from epsilon beside it", y=1.02)
ch.savefig(fig, "epsilon_placement")
table(f"Keras placement against the textbook's, {NOISY_STEPS} noisy steps",
      ["epsilon", "largest relative difference"],
      [[f"{e:g}", f"{d:.2e}"] for e, d in zip(EPSILONS, gaps)])
grader_gaps = [d for e, d in zip(EPSILONS, gaps) if 0.05 <= e <= 0.5]
print(f"At Keras's default epsilon the two forms differ by {gaps[EPSILONS.index(1e-7)]:.1e} "
      "(relative), against the grader's tolerance\nof 1e-5; at the epsilons the grader draws "
      f"(0.05 to 0.5) by {min(grader_gaps):.0%} to {max(grader_gaps):.0%}: a check must draw "
      "a large\nepsilon to tell the two placements apart.")

# %% [markdown]
# ## 5. What it costs: optimizer state
#
# The documents' comparison table rates RMSProp's memory overhead "medium" and Adam's "high (2x
# state tensors)". Each slot is a full copy of the model's weights, so the overhead is easy to
# count: build each optimizer on the same model and add up the sizes of its slot variables.

# %%
def state_floats(optimizer, model) -> int:
    """Floats of per-weight state (slots), leaving out the iteration counter and the rate."""
    optimizer.build(model.trainable_variables)
    per_weight = {tuple(v.shape) for v in model.trainable_variables}
    return int(sum(np.prod(v.shape) for v in optimizer.variables if tuple(v.shape) in per_weight
                   and len(v.shape) > 0))


counted = {
    "SGD": keras.optimizers.SGD(0.01),
    "SGD with momentum": keras.optimizers.SGD(0.01, momentum=0.9),
    OURS: RMSprop(0.01),
    f"{OURS}, centered": RMSprop(0.01, centered=True),
    f"{OURS}, centered + momentum": RMSprop(0.01, centered=True, momentum=0.9),
    "Adam (Keras)": keras.optimizers.Adam(0.01),
}
network = dense_model(DATA, hidden=(16,), activation="tanh")
n_weights = int(sum(np.prod(v.shape) for v in network.trainable_variables))
memory = {name: state_floats(opt, network) / n_weights for name, opt in counted.items()}
table(f"Optimizer state for a {DATA.features}-16-{DATA.outputs} network ({n_weights} weights)",
      ["optimizer", "state floats per weight"], [[name, f"{m:.0f}"] for name, m in memory.items()])
ch.claim("optimizer_memory",
         measured=f"RMSprop keeps {memory[OURS]:.0f} float per weight, Adam "
                  f"{memory['Adam (Keras)']:.0f}; centered RMSprop with momentum "
                  f"{memory[f'{OURS}, centered + momentum']:.0f}",
         holds=memory[OURS] == 1 and memory["Adam (Keras)"] == 2)

# %% [markdown]
# ## 6. Mixed precision
#
# Under the `mixed_float16` policy each layer keeps its weights in float32 and computes in
# float16, and `compile()` wraps the optimizer in a `LossScaleOptimizer`, which multiplies the
# loss by a large factor so that small float16 gradients do not round to zero, and divides the
# gradients by it again before our RMSprop sees them. The slots `velocity` (and `average_gradient`,
# `momentum`) are created like the weights, so they are float32 too.

# %%
from course import mixed_precision as mp

MP_EPOCHS = 2 if QUICK else 5
rows, losses = [], {}
for policy_name in ("float32", "mixed_float16"):
    with mp.policy(policy_name):
        keras.utils.set_random_seed(5)  # the same initial weights under both policies
        model = keras.Sequential([
            keras.Input((DATA.features,)), keras.layers.Dense(16, activation="tanh"),
            # float32 output: softmax and the loss need float32's range
            keras.layers.Dense(DATA.outputs, activation="softmax", dtype="float32")])
        model.compile(optimizer=RMSprop(0.01, centered=True),
                      loss="sparse_categorical_crossentropy")
    history = model.fit(DATA.x, DATA.y, batch_size=32, epochs=MP_EPOCHS, shuffle=False, verbose=0)
    info = mp.describe(model)
    inner = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    info["slot dtypes"] = ", ".join(sorted({str(s.dtype) for s in inner.variables
                                            if "velocity" in s.name or "average" in s.name}))
    rows.append(info)
    losses[policy_name] = history.history["loss"][-1]
mp.print_table(rows, title=f"Our centered RMSprop under each policy ({DATA.name}, standardized)")
print(f"training loss after {MP_EPOCHS} epochs: float32 {losses['float32']:.4f}, "
      f"mixed_float16 {losses['mixed_float16']:.4f}")

# %% [markdown]
# **Why the state must not be float16.** float16 has 10 bits of mantissa; its smallest normal
# number is about 6.1e-5 and its smallest positive number about 6e-8. RMSprop squares gradients
# and divides by the root of their average plus epsilon, which walks straight off that edge:

# %%
f16 = np.float16
table("RMSprop's numbers in float16", ["quantity", "float16", "what happens"], [
    ["epsilon 1e-8 (the documents' value)", f"{f16(1e-8):.3g}",
     "rounds to 0: no protection against dividing by 0"],
    ["epsilon 1e-7 (Keras's default)", f"{f16(1e-7):.3g}",
     f"a subnormal, {float(f16(1e-7)) / 1e-7 - 1:.0%} off"],
    ["g^2 for g = 1e-3", f"{f16(f16(1e-3) ** 2):.3g}",
     f"subnormal, {float(f16(f16(1e-3) ** 2)) / 1e-6 - 1:.0%} off "
     f"(float32: {np.float32(1e-3) ** 2:.3g})"],
    ["(1 - rho) * g^2 for g = 1e-4", f"{f16(f16(0.1) * f16(1e-4) ** 2):.3g}",
     "underflows to 0: v never grows"],
])

GRADS = np.array([1e-1, 1e-2, 1e-3, 1e-4])
mp_rows = []
for eps in (1e-7, 1e-8):
    steps = {}
    for dtype in ("float32", "float16"):
        # a float16 variable gives our optimizer float16 slots: what mixed precision avoids
        w = keras.Variable(np.ones(4), dtype=dtype)
        RMSprop(1e-3, epsilon=eps).apply_gradients(
            [(keras.ops.convert_to_tensor(GRADS.astype(dtype)), w)])
        steps[dtype] = 1.0 - w.numpy().astype("float64")
    for gi, s32, s16 in zip(GRADS, steps["float32"], steps["float16"]):
        mp_rows.append([f"{eps:g}", f"{gi:g}", f"{s32:.3e}", f"{s16:.3e}"])
table("One step of our RMSprop (lr 0.001) on weights equal to 1",
      ["epsilon", "gradient", "step, float32 state", "step, float16 state"], mp_rows)
print("With float32 state a weight moves by about lr/sqrt(1 - rho) = 3.2e-3, as in section 1,\n"
      "unless (1 - rho)*g^2 is not far above epsilon (the smallest gradient). In float16,\n"
      "(1 - rho)*g^2 underflows for the smallest gradient, epsilon 1e-8 is 0, and the step\n"
      "divides by 0: the weight becomes -inf, and NaN on the next step. Where it stays finite it\n"
      "is still off: near 1, float16 can only move in multiples of ~4.9e-4. Mixed precision keeps\n"
      "weights and slots float32 and lets the loss scale protect the float16 gradients (the first\n"
      "table's dtypes).")

# %% [markdown]
# **Speed and memory.** On a GPU with Tensor Cores float16 matrix products are several times
# faster and activations take half the memory; on a CPU float16 is emulated and slower, so this
# comparison runs only where Keras's backend sees a GPU.

# %%
mp.compare_on_gpu(lambda x: mp.wide_classifier(RMSprop(1e-3)),
                  title="Two 4096-wide layers, batch 1024, our RMSprop", epochs=2)

# %% [markdown]
# ## Summary
#
# - RMSprop divides each weight's step by the root of the running mean of its squared gradients,
#   so steps are measured in units of `lr` and steep and shallow directions advance together; on
#   a bowl its step count barely changes with the condition number, while gradient descent's grows
#   with it.
# - Keras puts epsilon under the square root and has no bias correction (the first step is
#   `lr/sqrt(1 - rho)` long); `centered` divides by a variance estimate, `momentum` accumulates
#   whole increments.
# - It keeps one float per weight (Adam keeps two), and that state, like the weights, stays
#   float32 under mixed precision: in float16 the squared gradients and epsilon vanish.

# %%
print(f"\n{len(ch.claims)} claims checked; plots in {ch.out}")
