# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Chapter 7 — Learning-rate schedules, warmup, one-cycle and the LR range test
#
# Every optimizer of the last four chapters multiplies its step by one number, the learning
# rate, and so far that number never changed. It is the setting that matters most: ten times too
# large and the loss blows up, ten times too small and training crawls. It also should not stay
# fixed. Early on, far from any minimum, big steps cover ground quickly; near the end the same
# big steps keep hopping from one wall of the valley to the other and never settle at the bottom.
# A *schedule* lowers the rate as training goes on. A *warmup* does the opposite for the first
# few hundred steps, when the weights are random and the gradients are large and erratic. And
# the *learning-rate range test* answers "which rate?" with one short run instead of a sweep.
#
# This chapter:
#
# 1. writes the schedules down, works through the source documents' examples (a time-based decay
#    from 0.1 to 0.01 by epoch 50, a step decay of x0.1 every 30 epochs), and shows the trap in
#    Keras: schedules count optimizer steps, not epochs;
# 2. runs this chapter's five schedules next to the Keras built-ins (and OneCycle next to the
#    closed form of PyTorch's `OneCycleLR`) and draws them all;
# 3. trains a network on a real data set: warmup against early loss spikes, a schedule against a
#    constant rate, the range test and training at the rate it suggests, the linear scaling rule
#    for large batches, and a schedule against Keras's `ReduceLROnPlateau` and `EarlyStopping`;
# 4. runs a schedule under mixed precision: why the rate stays float32, and why a skipped step
#    delays the schedule;
# 5. checks the documents' claims against what this run measures.
#
# Run it as a script (`python -m chapters.ch07_lr_decay [--quick] [--out DIR] [--mine]
# [--dataset NAME]`) or open it as a notebook with jupytext.

# %%
from course.chapter import setup

ch = setup(7, "Learning-rate decay")

# %% [markdown]
# ### Which components this run uses
#
# The schedules and the `LRFinder` come from `solutions/ch07_lr_decay.py`, or with `--mine` from
# your own `exercises/ch07_lr_decay.py`. A class that is still a stub (it raises
# `NotImplementedError`) is replaced by its reference stand-in, with a note: the Keras built-in
# under this chapter's name and arguments (for `OneCycle`, the closed form of PyTorch's
# `OneCycleLR`), so the chapter always runs. The range test has no stand-in: without an
# `LRFinder` that section uses a fixed rate instead.

# %%
# arguments to build each schedule with and ask for one rate: a stub raises NotImplementedError
EXAMPLE_ARGUMENTS = {"TimeBasedDecay": (0.1, 0.5), "StepDecay": (0.1, 0.5, 10),
                     "ExponentialDecay": (0.1, 0.5, 10), "WarmupCosineDecay": (0.1, 5, 20),
                     "OneCycle": (0.1, 100)}
TimeBasedDecay, StepDecay, ExponentialDecay, WarmupCosineDecay, OneCycle = (
    ch.pick(name, probe=lambda cls, args=args: cls(*args)(3))
    for name, args in EXAMPLE_ARGUMENTS.items())
LRFinder = ch.pick("LRFinder")

# %% [markdown]
# ## 1. The mechanic
#
# A Keras schedule is a function of the optimizer's step counter `s` (`optimizer.iterations`,
# the number of updates already applied: the first update uses `schedule(0)`). With `lr0` the
# starting rate:
#
# ```
# time-based   lr = lr0 / (1 + k * s / T)                  falls like 1/t, never reaches 0
# step         lr = lr0 * d ** floor(s / T)                 x d every T steps, flat between drops
# exponential  lr = lr0 * d ** (s / T)                      x d every T steps, smoothly
# cosine       lr = peak * ((1 - a) * (1 + cos(pi * s / T)) / 2 + a)     peak -> a * peak over T steps
# warmup       lr = lr_w + (peak - lr_w) * s / W            a straight line up for W steps (then cosine)
# one-cycle    up from max/div to max along half a cosine, then down to max/div/final_div
# ```
#
# The first three are the source documents' "time-based, step and exponential decay". The
# `floor` is the whole difference between a staircase and a smooth curve (Keras's
# `staircase=True`). Cosine annealing spends longer at high rates than exponential decay and
# lands softly at the end; the documents' "modern recipe" pairs it with a warmup, and one-cycle
# (Leslie Smith's policy, PyTorch's `OneCycleLR`) is warmup and annealing in one schedule whose
# peak is usually far higher than a constant rate could survive.
#
# **The documents' example, worked.** "A network starts training with alpha = 0.1. By epoch 50 the
# decay rule reduces the rate to 0.01." With time-based decay `0.1 / (1 + k * 50) = 0.01`, so
# `k = (0.1 / 0.01 - 1) / 50 = 0.18` per epoch. The documents count epochs; a Keras schedule
# counts steps. With 45 batches per epoch (the digits data set below, batch size 32) the same
# decay is `TimeBasedDecay(0.1, decay_rate=0.18, decay_steps=45)`: `decay_steps` turns steps
# into epochs.

# %%
import keras
import numpy as np

from course.toolkit import table

QUICK = ch.quick
DOC_STEPS = 45  # steps per epoch in the worked examples (the digits data set at batch size 32)
decay_rate = (0.1 / 0.01 - 1) / 50
time_based = TimeBasedDecay(0.1, decay_rate, decay_steps=DOC_STEPS)
keras_time_based = keras.optimizers.schedules.InverseTimeDecay(0.1, DOC_STEPS, decay_rate)
epochs_shown = [0, 1, 10, 25, 50, 100]
table(f"Time-based decay from 0.1 to 0.01 by epoch 50 (k = {decay_rate:.2f} per epoch, "
      f"{DOC_STEPS} steps per epoch)",
      ["epoch", "step", "ours", "keras InverseTimeDecay", "0.1 / (1 + 0.18 * epoch)"],
      [[e, e * DOC_STEPS, f"{float(time_based(e * DOC_STEPS)):.5f}",
        f"{float(keras_time_based(e * DOC_STEPS)):.5f}", f"{0.1 / (1 + 0.18 * e):.5f}"]
       for e in epochs_shown])
rate_at_50 = float(time_based(50 * DOC_STEPS))

# %% [markdown]
# **Step decay, "x0.1 every 30 epochs".** `StepDecay(0.1, drop_rate=0.1, steps_per_drop=30 * 45)`:
# the rate holds for 30 epochs, then drops by ten. Epoch 29 still trains at 0.1, epoch 30 at 0.01.

# %%
step_decay = StepDecay(0.1, 0.1, 30 * DOC_STEPS)
keras_step = keras.optimizers.schedules.ExponentialDecay(0.1, 30 * DOC_STEPS, 0.1, staircase=True)
table("Step decay x0.1 every 30 epochs",
      ["epoch", "ours", "keras ExponentialDecay(staircase=True)"],
      [[e, f"{float(step_decay(e * DOC_STEPS)):.4g}", f"{float(keras_step(e * DOC_STEPS)):.4g}"]
       for e in (0, 29, 30, 59, 60, 90)])

# %% [markdown]
# **The per-epoch trap.** Write the documents' formula with `decay_steps=1` and the schedule
# decays 45 times faster than intended, because it sees 45 steps per epoch: after one epoch the
# rate is already 0.011 instead of 0.085. The table reads the rate the optimizer really holds at
# the start of each epoch of a short `model.fit` (a callback reads `model.optimizer.learning_rate`,
# which for a schedule is its value at the current step). Keras's per-epoch tool is the
# `LearningRateScheduler` callback, which sets a plain rate once per epoch; it agrees with the
# step schedule at each epoch's start, but holds the rate flat within the epoch.

# %%
from course.toolkit import Dataset, dense_model, train

# 45 identical examples, one per batch: 45 steps per epoch of a linear model
ONES = Dataset("ones", np.ones((DOC_STEPS, 1), "float32"), np.ones(DOC_STEPS, "float32"),
               None, None, classification=False, outputs=1)


class RateAtEpochStart(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.rates = []

    def on_epoch_begin(self, epoch, logs=None):
        self.rates.append(float(np.asarray(self.model.optimizer.learning_rate)))


def rates_at_epoch_starts(learning_rate, epochs=3 if QUICK else 4, extra_callbacks=()):
    probe = RateAtEpochStart()
    # the LearningRateScheduler sets the rate in its own on_epoch_begin, so the probe comes after
    train(dense_model(ONES, hidden=()), keras.optimizers.SGD(learning_rate), ONES, epochs=epochs,
          batch_size=1, callbacks=[*extra_callbacks, probe])
    return probe.rates


per_step = rates_at_epoch_starts(TimeBasedDecay(0.1, decay_rate, decay_steps=1))
per_epoch = rates_at_epoch_starts(TimeBasedDecay(0.1, decay_rate, decay_steps=DOC_STEPS))
callback = rates_at_epoch_starts(0.1, extra_callbacks=[keras.callbacks.LearningRateScheduler(
    lambda epoch: 0.1 / (1 + decay_rate * epoch))])
table("The rate at the start of each epoch of model.fit (45 steps per epoch)",
      ["epoch", "decay_steps=1 (decays per step)", f"decay_steps={DOC_STEPS}",
       "LearningRateScheduler (per epoch)"],
      [[e, f"{a:.4f}", f"{b:.4f}", f"{c:.4f}"]
       for e, (a, b, c) in enumerate(zip(per_step, per_epoch, callback))])

# %% [markdown]
# ## 2. The components next to Keras
#
# Each schedule against its Keras counterpart over 2000 steps, with hyperparameters that make the
# known mistakes visible (a non-zero warmup start, a cosine floor `alpha`, decay periods that are
# not divisors of the steps). Keras has no one-cycle schedule; ours is compared with the closed
# form of PyTorch's `OneCycleLR` that the grader uses (the course's tests check that closed form
# against numbers computed with PyTorch itself).

# %%
from course.references import one_cycle

# evenly spaced steps (240, 80 in a quick run) and every boundary: eager calls one by one cost
# about a millisecond each
STEPS = np.unique(np.r_[np.linspace(0, 1999, 80 if QUICK else 240).astype(int),
                        149, 150, 349, 350, 699, 700,
                        199, 200, 1699, 1700, 538, 539, 540, 1799, 1800])
builtins = keras.optimizers.schedules
PAIRS = {
    "TimeBasedDecay": (TimeBasedDecay(0.5, 1.0, decay_steps=150),
                       builtins.InverseTimeDecay(0.5, 150, 1.0)),
    "StepDecay": (StepDecay(0.5, 0.5, 350), builtins.ExponentialDecay(0.5, 350, 0.5, staircase=True)),
    "ExponentialDecay": (ExponentialDecay(0.5, 0.5, 350), builtins.ExponentialDecay(0.5, 350, 0.5)),
    "WarmupCosineDecay": (WarmupCosineDecay(0.5, 200, 1500, initial_learning_rate=0.05, alpha=0.05),
                          builtins.CosineDecay(0.05, 1500, alpha=0.05, warmup_target=0.5,
                                               warmup_steps=200)),
    "OneCycle": (OneCycle(0.5, 1800), None),
}


def values(schedule, steps=STEPS) -> np.ndarray:
    if schedule is None:  # OneCycle: the closed form, in float64
        return one_cycle(np.asarray(steps, dtype="float64"), {"max_learning_rate": 0.5,
                                                              "total_steps": 1800}, np)
    return np.array([float(schedule(int(s))) for s in steps])


curves, rows = {}, []
for name, (ours, theirs) in PAIRS.items():
    mine, ref = values(ours), values(theirs)
    curves[name] = (mine, ref)
    gap = np.max(np.abs(mine - ref)) / np.max(ref)  # relative to the peak: float32 rounding
    rows.append([name, type(ours).__module__.split(".")[0], "closed form" if theirs is None
                 else type(theirs).__name__, f"{gap:.1e}", f"{mine[-1]:.4g}"])
table(f"{len(STEPS)} steps from 0 to 1999 (every boundary included): ours against the reference",
      ["schedule", "ours from", "reference", "max |gap| / peak rate", "rate at step 1999"],
      rows)

# %%
from course.plotting import figure, plain_log_axis

COLORS = {"TimeBasedDecay": "C0", "StepDecay": "C1", "ExponentialDecay": "C2",
          "WarmupCosineDecay": "C3", "OneCycle": "C4"}
fig, axes = figure(2, 3, width=4.6, height=3.4)
for ax, (name, (mine, ref)) in zip(axes.ravel(), curves.items()):
    ax.plot(STEPS, mine, color=COLORS[name], lw=2.2, label="ours")
    ax.plot(STEPS, ref, "k--", lw=1.0, label="Keras" if name != "OneCycle" else "PyTorch closed form")
    ax.set_title(name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
ax = axes[1, 2]
for name, (mine, _) in curves.items():
    ax.plot(STEPS, mine, color=COLORS[name], lw=1.8, label=name)
ax.set_yscale("log")
ax.set_ylim(1e-6, 1.0)
ax.set_title("All five (log scale)")
ax.set_xlabel("optimizer step")
ax.set_ylabel("learning rate")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=7, loc="lower left")
fig.suptitle("The five schedules of this chapter (peak rate 0.5), each over its reference")
fig.tight_layout()
ch.savefig(fig, "schedules")

# %% [markdown]
# ## 3. Experiments on a real data set
#
# By default `course_digits`: the 8x8 handwritten digits that scikit-learn ships, 1437 training
# and 360 test images (a quick run takes the first quarter of each); `--dataset NAME` picks
# another classification set (e.g. `course_wine`, or `mnist` with a network). Inputs are
# standardized with the training statistics (chapter 1). The model is the toolkit's dense network
# with two hidden layers; every run starts from the same weights and sees the same batches.

# %%
import math
from dataclasses import replace

from matplotlib.ticker import LogLocator

from course.toolkit import load_dataset

# --quick trains on a quarter of the digits (every batch is a Python-level step, and each run
# pays for its epochs); a large download (60000 mnist images) would be slow
DATA = load_dataset(ch.dataset, cap=360 if QUICK else 10000, val_cap=90 if QUICK else 2500,
                    validation=True, classification_only=True)
TRAINING_ONLY = replace(DATA, x_val=None, y_val=None)  # for runs that need no validation loss
BATCH = 32
HIDDEN = (256, 256)
STEPS_PER_EPOCH = math.ceil(len(DATA.x) / BATCH)
print(f"data set {DATA.name}: {len(DATA.x)} training and {len(DATA.x_val)} validation "
      f"examples, {DATA.outputs} classes, {STEPS_PER_EPOCH} steps per epoch at batch {BATCH}")


class EpochRate(keras.callbacks.Callback):
    """The rate in force at the end of each epoch (a schedule's value at the current step)."""

    def on_train_begin(self, logs=None):
        self.rates = []

    def on_epoch_end(self, epoch, logs=None):
        self.rates.append(float(np.asarray(self.model.optimizer.learning_rate)))


def fit(optimizer, epochs, batch_size=BATCH, callbacks=(), per_batch=False, validate=True):
    """The toolkit's ``train`` on a fresh network, keeping the rate in force after each epoch as
    ``run.rates``: what the schedule did is what this chapter plots next to the losses."""
    rates = EpochRate()
    run = train(dense_model(DATA, hidden=HIDDEN), optimizer, DATA if validate else TRAINING_ONLY,
                epochs=epochs, batch_size=batch_size, per_batch=per_batch,
                callbacks=[*callbacks, rates])
    run.rates = np.asarray(rates.rates)
    return run


def val_accuracy(model) -> float:
    # a direct call: predict() would compile a function for every model, and TensorFlow warns
    return float(np.mean(np.argmax(keras.ops.convert_to_numpy(model(DATA.x_val, training=False)), axis=-1) == DATA.y_val))


# %% [markdown]
# ### 3a. Warmup against early loss spikes
#
# Adam at a rate of 0.03 on freshly initialised weights. Adam's first steps rest on moment
# estimates made from a handful of gradients: every weight moves by about the full rate at once,
# whatever the size of its gradient, while the gradients are still large and inconsistent. The
# loss shoots up before it comes down.
# The same peak rate reached by a linear warmup over the first epoch gives the weights time to
# settle first. Each line is the loss of each batch of the first epochs.

# %%
WARM_PEAK, WARM_EPOCHS = 0.03, 2 if QUICK else 4
warm_steps = STEPS_PER_EPOCH
warm_total = WARM_EPOCHS * STEPS_PER_EPOCH
warm_runs = {
    f"constant {WARM_PEAK}": fit(keras.optimizers.Adam(WARM_PEAK), WARM_EPOCHS, per_batch=True,
                                 validate=False),
    f"warmup over {warm_steps} steps to {WARM_PEAK}, then cosine": fit(
        keras.optimizers.Adam(WarmupCosineDecay(WARM_PEAK, warm_steps, warm_total - warm_steps)),
        WARM_EPOCHS, per_batch=True, validate=False),
    "constant 0.003 (10x lower)": fit(keras.optimizers.Adam(0.003), WARM_EPOCHS, per_batch=True,
                                      validate=False),
}
fig, axes = figure(1, 1, width=8.0, height=4.2)
ax = axes[0, 0]
for (name, run), color in zip(warm_runs.items(), ("C3", "C0", "0.5")):
    ax.plot(np.arange(len(run.batch_loss)), run.batch_loss, lw=1.2, color=color, label=name)
ax.axvline(warm_steps, color="C0", ls=":", lw=1)
ax.text(warm_steps, ax.get_ylim()[1] * 0.9, " end of warmup", color="C0", fontsize=8, va="top")
plain_log_axis(ax, integer_x=True, grid=True)
ax.set_xlabel("batch")
ax.set_ylabel("loss of the batch")
ax.set_title(f"Adam on {DATA.name}: the first {WARM_EPOCHS} epochs, batch by batch")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
ch.savefig(fig, "warmup")
spike = {name: float(np.max(run.batch_loss[:warm_steps]) / run.batch_loss[0])
         for name, run in warm_runs.items()}
table("Early spikes: the highest batch loss of the first epoch / the first batch's loss",
      ["run", "peak / initial", f"mean loss of the last {STEPS_PER_EPOCH} batches"],
      [[name, f"{spike[name]:.2f}", f"{np.mean(run.batch_loss[-STEPS_PER_EPOCH:]):.3f}"]
       for name, run in warm_runs.items()])
no_warm, warm = list(spike.values())[:2]
ch.claim("warmup_stabilizes",
         f"first-epoch peak loss {no_warm:.2f}x the initial loss at a constant {WARM_PEAK}, "
         f"{warm:.2f}x with warmup to the same rate",
         bool(warm - 1 < 0.5 * (no_warm - 1)))

# %% [markdown]
# ### 3b. A schedule against a constant rate
#
# SGD with momentum 0.9 at a rate of 0.1, three ways: constant, cosine decay to zero over the
# run (after a one-epoch warmup, down to 1% of the peak), and the documents' step decay (x0.1 at 60% and again at 85% of
# the run, written as a `StepDecay` would be per epoch). The same peak, the same number of steps.

# %%
CMP_EPOCHS = 4 if QUICK else 30
total_steps = CMP_EPOCHS * STEPS_PER_EPOCH
PEAK = 0.1


class TwoDrops(keras.optimizers.schedules.LearningRateSchedule):
    """x0.1 at 60% and at 85% of the run: two StepDecays glued at their boundary."""

    def __init__(self):
        self.first = StepDecay(PEAK, 0.1, int(0.6 * total_steps))
        self.at = int(0.85 * total_steps)

    def __call__(self, step):
        return keras.ops.where(keras.ops.cast(step, "float32") < self.at, self.first(step),
                               PEAK * 0.01)


schedule_runs = {
    "constant 0.1": fit(keras.optimizers.SGD(PEAK, momentum=0.9), CMP_EPOCHS),
    "warmup + cosine": fit(keras.optimizers.SGD(
        WarmupCosineDecay(PEAK, STEPS_PER_EPOCH, total_steps - STEPS_PER_EPOCH, alpha=0.01),
        momentum=0.9), CMP_EPOCHS),
    "step decay (x0.1 twice)": fit(keras.optimizers.SGD(TwoDrops(), momentum=0.9), CMP_EPOCHS),
}


def plot_runs(runs, title, name):
    """Training loss, validation loss and the rate per epoch, one line per run, legend below."""
    fig, axes = figure(1, 3, width=4.6, height=3.6)
    for ax, (key, label) in zip(axes[0], (("loss", "training loss"),
                                          ("val_loss", "validation loss"),
                                          ("rates", "learning rate (end of epoch)"))):
        for j, (run_name, run) in enumerate(runs.items()):
            ax.plot(np.arange(1, len(run.loss) + 1), getattr(run, key), lw=1.8, marker="o",
                    ms=2.5, color=f"C{j}", label=run_name)
        plain_log_axis(ax, integer_x=True, grid=True)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 4), fontsize=9,
               frameon=False)
    ch.savefig(fig, name)


plot_runs(schedule_runs, f"SGD + momentum on {DATA.name}: constant rate or a schedule",
          "schedule_vs_constant")
accuracy = {n: val_accuracy(r.model) for n, r in schedule_runs.items()}
table(f"After {CMP_EPOCHS} epochs", ["run", "training loss", "validation loss",
                                     "validation accuracy"],
      [[n, f"{r.loss[-1]:.4f}", f"{r.val_loss[-1]:.4f}", f"{accuracy[n]:.3f}"]
       for n, r in schedule_runs.items()])
const, cosine = schedule_runs["constant 0.1"], schedule_runs["warmup + cosine"]
# On a data set this small every run drives the training loss towards zero, so the validation
# loss is where a schedule shows: the small steps at the end settle in a flatter spot.
ch.claim("schedule_helps",
         f"final validation loss {cosine.val_loss[-1]:.4f} with warmup + cosine vs "
         f"{const.val_loss[-1]:.4f} at a constant rate; validation accuracy "
         f"{accuracy['warmup + cosine']:.3f} vs {accuracy['constant 0.1']:.3f}",
         None if QUICK else bool(cosine.val_loss[-1] < const.val_loss[-1]
                                 and accuracy["warmup + cosine"] >= accuracy["constant 0.1"]))

# %% [markdown]
# ### 3c. The learning-rate range test
#
# Train for 150 batches while the rate grows geometrically from 1e-4 to 10, recording the
# smoothed loss after each batch; stop when the loss has clearly diverged; put the weights back.
# The curve is flat while the rate is too small to matter, falls steeply where the rate is
# useful, bottoms out, and climbs once the steps overshoot. `suggestion()` returns the rate where
# the curve falls fastest (the steepest descent against log10(rate)). Smoothing needs
# debiasing for the same reason Adam's moments do: the running average starts at zero.
#
# One Keras detail shapes the finder: `logs["loss"]` after batch `n` of an epoch is the *mean*
# of batches `0..n`, not batch `n`'s loss. A finder that smoothed that running mean would be
# smoothing twice, and late in an epoch would barely see the loss move. The finder recovers each
# batch's loss as `(n + 1) * mean_n - n * mean_(n-1)`.
#
# Read the plot from the left: the rate of the *lowest* loss is not the one to train with. It is
# already where the steps start to overshoot, and a whole run at that rate does not survive (the
# right panel trains at the suggestion and at ten times either side of it).

# %%
RANGE_STEPS = 150  # with fewer steps the smoothing lags further behind in log10(rate)
SHORT_EPOCHS = 2 if QUICK else 12
if LRFinder is not None:
    model = dense_model(DATA, hidden=HIDDEN)
    before = [w.copy() for w in model.get_weights()]
    finder = LRFinder(start_lr=1e-4, end_lr=10.0, num_steps=RANGE_STEPS, beta=0.9)
    train(model, keras.optimizers.SGD(0.01, momentum=0.9), TRAINING_ONLY,
          epochs=math.ceil(RANGE_STEPS / STEPS_PER_EPOCH), batch_size=BATCH, callbacks=[finder])
    restored = all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    suggested = finder.suggestion()
    lowest = finder.lrs[int(np.nanargmin(finder.losses))]
    print(f"range test: {len(finder.lrs)} batches, weights restored afterwards: {restored}, "
          f"rate back to {float(np.asarray(model.optimizer.learning_rate)):g}")
    print(f"suggestion (steepest descent): {suggested:.3g}; lowest smoothed loss at {lowest:.3g}")
else:
    suggested, lowest, finder = 0.03, 0.3, None

candidates = {"suggestion / 10": suggested / 10, "suggestion": suggested,
              "suggestion x 10": suggested * 10}
range_runs = {f"{label} ({rate:.2g})": fit(keras.optimizers.SGD(rate, momentum=0.9), SHORT_EPOCHS)
              for label, rate in candidates.items()}

fig, axes = figure(1, 2, width=6.0, height=4.2)
ax = axes[0, 0]
if finder is not None:
    lrs, losses = np.asarray(finder.lrs), np.asarray(finder.losses)
    ax.plot(lrs, losses, color="C0", lw=2, label="smoothed loss")
    ax.axvline(suggested, color="C2", lw=1.5, label=f"suggestion {suggested:.2g} (steepest descent)")
    ax.axvline(lowest, color="C3", lw=1.5, ls="--", label=f"lowest loss {lowest:.2g}")
    finite = losses[np.isfinite(losses)]
    ax.set_ylim(0.8 * finite.min(), min(finite.max(), 4 * finite[0]) * 1.1)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(numticks=8))
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("smoothed, debiased loss")
    ax.set_title(f"LR range test, SGD + momentum ({len(lrs)} batches)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
else:
    ax.text(0.5, 0.5, "no LRFinder implemented", ha="center", va="center")
ax = axes[0, 1]
for (name, run), color in zip(range_runs.items(), ("C1", "C2", "C3")):
    ax.plot(np.arange(1, len(run.val_loss) + 1), run.val_loss, marker="o", ms=3, lw=1.8,
            color=color, label=name)
plain_log_axis(ax, integer_x=True, grid=True)
ax.set_xlabel("epoch")
ax.set_ylabel("validation loss")
ax.set_title("Training at the suggested rate and 10x either side")
ax.legend(fontsize=8)
fig.tight_layout()
ch.savefig(fig, "lr_range_test")
finals = {name: float(run.val_loss[-1]) for name, run in range_runs.items()}
table(f"Validation loss after {SHORT_EPOCHS} epochs", ["rate", "validation loss"],
      [[n, f"{v:.4f}" if np.isfinite(v) else "diverged"] for n, v in finals.items()])
best = min(finals, key=lambda n: finals[n] if np.isfinite(finals[n]) else np.inf)
ch.claim("range_test_steepest",
         f"of the suggestion {suggested:.2g} and 10x either side, {best.split(' (')[0]} trained "
         f"best ({finals[best]:.4f})",
         None if finder is None else best.startswith("suggestion ("),
         reason="the LR finder is not implemented and has no stand-in")

# %% [markdown]
# ### 3d. The linear scaling rule, with warmup
#
# "If you double the batch size, double the learning rate", with a warmup over the first epochs
# (Goyal et al., 2017). A batch eight times larger averages away most of the gradient noise, so
# each step can be eight times longer, but there are eight times fewer steps per epoch: at the
# old rate, the large batch simply falls behind. The scaled rate is large for freshly initialised
# weights, which is what the warmup is for. The rule is about the *training* curve (equal
# progress per epoch), so that is what the table measures; on a data set this small the
# validation loss mostly shows how soon each run starts to overfit. Nor is a rate of 0.16 large
# enough here for the warmup to matter: it earns its keep with batches in the thousands.

# %%
from course.toolkit import epochs_to_reach, shown

SCALE_EPOCHS = 3 if QUICK else 20
BIG = 8 * BATCH
big_steps = math.ceil(len(DATA.x) / BIG)
BASE_RATE = 0.02
scaling_runs = {
    f"batch {BATCH}, lr {BASE_RATE}": fit(keras.optimizers.SGD(BASE_RATE, momentum=0.9),
                                         SCALE_EPOCHS),
    f"batch {BIG}, lr {BASE_RATE} (not scaled)": fit(
        keras.optimizers.SGD(BASE_RATE, momentum=0.9), SCALE_EPOCHS, batch_size=BIG),
    f"batch {BIG}, lr {8 * BASE_RATE:g} (scaled)": fit(
        keras.optimizers.SGD(8 * BASE_RATE, momentum=0.9), SCALE_EPOCHS, batch_size=BIG),
    f"batch {BIG}, lr {8 * BASE_RATE:g} + warmup": fit(keras.optimizers.SGD(
        WarmupCosineDecay(8 * BASE_RATE, 2 * big_steps, 10**9, initial_learning_rate=BASE_RATE),
        momentum=0.9), SCALE_EPOCHS, batch_size=BIG),
}
plot_runs(scaling_runs, f"The linear scaling rule on {DATA.name} (equal epochs)",
          "linear_scaling")
TARGET = 0.05  # a training loss every run can reach in a full run
reached = {n: epochs_to_reach(r.loss, TARGET) for n, r in scaling_runs.items()}
rows = [[n, len(r.loss) * (STEPS_PER_EPOCH if n.startswith(f"batch {BATCH},") else big_steps),
         f"{r.loss[-1]:.4f}", shown(reached[n]), f"{np.min(r.val_loss):.4f}"]
        for n, r in scaling_runs.items()]
table(f"After {SCALE_EPOCHS} epochs", ["run", "optimizer steps", "training loss",
                                      f"epochs to training loss {TARGET} (never: not within "
                                      f"{SCALE_EPOCHS})", "best validation loss"],
      rows)
small = reached[f"batch {BATCH}, lr {BASE_RATE}"]
unscaled = reached[f"batch {BIG}, lr {BASE_RATE} (not scaled)"]
scaled_warm = reached[f"batch {BIG}, lr {8 * BASE_RATE:g} + warmup"]
ch.claim("scaling_with_warmup",
         f"epochs to a training loss of {TARGET}: batch {BATCH} {shown(small)}, batch {BIG} with "
         f"the scaled rate and warmup {shown(scaled_warm)}, batch {BIG} at the unscaled rate "
         f"{shown(unscaled)} (never: not within {SCALE_EPOCHS} epochs)",
         None if math.isinf(small) or math.isinf(scaled_warm)
         else bool(scaled_warm <= 2 * small and unscaled > scaled_warm),
         reason=f"a run did not reach the target within {SCALE_EPOCHS} epochs")

# %% [markdown]
# ### 3e. Planning ahead or reacting: a schedule against ReduceLROnPlateau and EarlyStopping
#
# The documents recommend two Keras callbacks that *react* to the validation loss:
# `ReduceLROnPlateau` cuts the rate when the validation loss has not improved for `patience`
# epochs, and `EarlyStopping` ends training when it has not improved for longer, restoring the
# best weights. A schedule decides everything in advance. The reacting pair needs no knowledge of
# how long training should be; it pays for that by spending `patience` epochs at a rate that has
# already stopped helping before each cut, and by stopping on noise in a small validation set.

# %%
PLATEAU_EPOCHS = 4 if QUICK else 40
plateau_steps = PLATEAU_EPOCHS * STEPS_PER_EPOCH
plateau_runs = {
    "constant 0.1 + ReduceLROnPlateau + EarlyStopping": fit(
        keras.optimizers.SGD(PEAK, momentum=0.9), PLATEAU_EPOCHS, callbacks=[
            keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=2,
                                              min_lr=1e-4),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=6,
                                          restore_best_weights=True)]),
    "warmup + cosine (planned)": fit(keras.optimizers.SGD(
        WarmupCosineDecay(PEAK, STEPS_PER_EPOCH, plateau_steps - STEPS_PER_EPOCH, alpha=0.01),
        momentum=0.9), PLATEAU_EPOCHS),
    "one-cycle (planned)": fit(keras.optimizers.SGD(OneCycle(PEAK, plateau_steps), momentum=0.9),
                               PLATEAU_EPOCHS),
}
plot_runs(plateau_runs, "Reacting to the validation loss, or following a plan",
          "plateau_vs_schedule")
# the accuracy of the weights each run ends with (EarlyStopping restores its best epoch's)
table("Reacting or planning", ["run", "epochs run", "best validation loss",
                               "validation accuracy at the end"],
      [[n, len(r.loss), f"{np.min(r.val_loss):.4f}", f"{val_accuracy(r.model):.3f}"]
       for n, r in plateau_runs.items()])

reacting = plateau_runs["constant 0.1 + ReduceLROnPlateau + EarlyStopping"]
planned = plateau_runs["warmup + cosine (planned)"]
ch.claim("cosine_or_plateau",
         f"ReduceLROnPlateau + EarlyStopping stopped after {len(reacting.loss)} epochs at a "
         f"best validation loss of {np.min(reacting.val_loss):.4f}; warmup + cosine reached "
         f"{np.min(planned.val_loss):.4f} in {len(planned.loss)}",
         None if QUICK else bool(np.min(reacting.val_loss) <= 1.1 * np.min(planned.val_loss)))

# %% [markdown]
# In a long run the callbacks usually stop well before the schedules' last epoch, and that is
# their strength: no need to guess the length of training. The schedules usually reach the
# lower loss, because they spend their last epochs at small rates on purpose instead of waiting
# for the validation loss to complain. On a larger data set, where one epoch is expensive and the
# right length is unknown, the reacting pair is the safer default; when the budget is known, a
# planned schedule uses it better.
#
# **To remember: "either decays the rate well" is not what we measured on a small data set.
# Early stopping ended the reacting run at a validation loss more than twice the planned
# schedule's: a noisy validation loss stops it before the rate has come down.**
#
# ## 4. Mixed precision
#
# Under `mixed_float16` the layers compute in float16 and keep their weights in float32, and
# `compile()` wraps the optimizer in a `LossScaleOptimizer`. Two things about schedules follow.
#
# **The rate stays float32.** A schedule returns a float32 scalar and the optimizer casts it to
# each variable's dtype, float32. Rates are small numbers, and float16 represents small numbers
# badly: below 6.1e-5 it has fewer than ten significant bits left, and the end of a one-cycle
# schedule sits there.

# %%
from course import mixed_precision as mp

oc = OneCycle(0.1, 1000)
rows = []
for step in (0, 299, 700, 950, 999):
    rate = float(oc(step))
    f16 = float(np.float16(rate))
    rows.append([step, f"{rate:.4g}", f"{f16:.4g}", f"{abs(f16 - rate) / rate:.1e}"])
table("OneCycle(0.1, 1000): its rate in float32 and rounded to float16",
      ["step", "float32", "float16", "relative error in float16"], rows)
print("schedule output dtype under the mixed_float16 policy:", end=" ")
with mp.policy("mixed_float16"):
    print(keras.backend.standardize_dtype(keras.ops.convert_to_tensor(oc(5)).dtype))

# %% [markdown]
# **A skipped step does not advance the schedule.** When the scaled gradients overflow float16,
# the `LossScaleOptimizer` skips the update, halves the loss scale, and leaves the inner
# optimizer's `iterations` where they were. The schedule reads `iterations`, so it does not move
# either: a schedule counts applied updates, not batches. At the default starting scale of
# 2^15 a model this small rarely overflows (the table counts the updates); started at 2^30 (on
# purpose) the first steps overflow until the scale has been halved enough, and the warmup ends
# that many batches later.

# %%
rows = []
for label, policy_name, initial_scale in (("float32", "float32", None),
                                          ("mixed_float16, scale 2^15 (default)", "mixed_float16", None),
                                          ("mixed_float16, scale 2^30", "mixed_float16", 2.0**30)):
    with mp.policy(policy_name):
        model = dense_model(DATA, hidden=HIDDEN)
    optimizer = keras.optimizers.SGD(WarmupCosineDecay(PEAK, 20, 200), momentum=0.9)
    if initial_scale:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=initial_scale)
    train(model, optimizer, TRAINING_ONLY, epochs=1, batch_size=BATCH)
    described = mp.describe(model)
    info = {"run": label, "compute dtype": described["compute dtype"],
            "optimizer": described["optimizer"], "loss scale now": described.get("loss scale", "")}
    inner = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    info["batches"] = STEPS_PER_EPOCH
    info["updates applied"] = int(np.asarray(inner.iterations))
    info["rate now"] = f"{float(np.asarray(model.optimizer.learning_rate)):.4g}"
    rows.append(info)
mp.print_table(rows, title="One epoch with WarmupCosineDecay(0.1, 20, 200): batches and updates")

# %% [markdown]
# On a GPU with Tensor Cores the float16 products are also faster and the activations half the
# size; on a CPU float16 is emulated, so the comparison only runs where a GPU is present.

# %%
mp.compare_on_gpu(
    lambda x: mp.wide_classifier(keras.optimizers.SGD(OneCycle(0.1, 64), momentum=0.9)),
    title="A 4096-wide MLP with a OneCycle schedule on the GPU", epochs=2)

# %% [markdown]
# ## 5. The documents' worked example, checked
#
# The decay rate found in section 1 takes the rate from 0.1 to 0.01 at exactly epoch 50; the
# claims about warmup, schedules, the range test and the scaling rule were checked above, each
# next to the number this run measured.

# %%
ch.claim("time_decay_epoch_50",
         f"decay rate (0.1/0.01 - 1)/50 = {decay_rate:.2f} per epoch gives {rate_at_50:.5f} at "
         f"epoch 50 (step {50 * DOC_STEPS})", bool(abs(rate_at_50 - 0.01) < 1e-6))
