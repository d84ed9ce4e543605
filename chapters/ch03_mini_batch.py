# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Chapter 3 — Mini-batch gradient descent: how many examples per step
#
# Gradient descent needs the gradient of the loss, and the loss is an average over the training
# set. There are three ways to get that gradient, and they differ only in how many examples each
# step looks at:
#
# - **batch gradient descent** averages over *all* N examples: the exact gradient, one step per
#   pass over the data;
# - **stochastic gradient descent** (in the strict sense) uses *one* example: a very noisy
#   estimate, N steps per pass;
# - **mini-batch gradient descent** uses *m* examples (32, 64, 256, ...): an estimate whose noise
#   shrinks like `1/sqrt(m)`, N/m steps per pass, and a matrix product large enough to keep the
#   hardware busy. Everything in deep learning that is called "SGD" is, in fact, this.
#
# This chapter:
#
# 1. writes the update down, does the arithmetic of updates per epoch, and shows what one epoch of
#    the chapter's `mini_batches` pipeline looks like;
# 2. runs the chapter's `SGD` next to `keras.optimizers.SGD`, and the pipeline next to
#    `model.fit`'s own batching;
# 3. races batch, stochastic and mini-batch descent on the same network (against updates, epochs
#    and wall time); measures how batch size and learning rate trade against each other (the
#    linear scaling rule); and shows that Keras's gradient accumulation equals a larger batch;
# 4. runs SGD under mixed precision and shows why the weights it updates must stay float32;
# 5. checks four claims of the source documents against what it measured.
#
# Run it as a script (`python -m chapters.ch03_mini_batch [--quick] [--out DIR] [--mine]
# [--dataset NAME]`) or open it as a notebook with jupytext.

# %%
from course.chapter import setup

ch = setup(3, "Mini-batch gradient descent")
QUICK = ch.quick

# %% [markdown]
# ## 1. The mechanic
#
# With parameters `theta`, a loss `J` and a mini-batch `B` of m examples, one step is
#
# ```
# g     = (1/m) * sum over (x_i, y_i) in B of  grad_theta J(theta; x_i, y_i)
# theta = theta - lr * g
# ```
#
# Batch descent is the case `m = N`, stochastic descent `m = 1`. Keras losses already average
# over the batch, so `g` is simply the gradient of the batch's loss, and the chapter's `SGD` only
# has to apply the second line.
#
# An **epoch** is one pass in which every example is used exactly once. Shuffling before each
# epoch gives every pass different batches (and so different noise), and keeps an order that
# happens to be in the file (all the 0s, then all the 1s, ...) from steering the model. With N
# examples and batch size m, an epoch is `ceil(N/m)` updates, the last batch holding the
# `N mod m` left-over examples, or `floor(N/m)` updates if the partial batch is dropped.
#
# ### Which components this run uses
#
# `mini_batches` and `SGD` come from `solutions/ch03_mini_batch.py`, or with `--mine` from your
# `exercises/ch03_mini_batch.py`. A part that is still a stub (it raises `NotImplementedError`)
# is replaced by its plain counterpart: `keras.optimizers.SGD`, and a bare `tf.data` pipeline.

# %%
import keras
import numpy as np
import tensorflow as tf


def plain_pipeline(x, y, batch_size, *, shuffle=True, seed=None, drop_remainder=False):
    """tf.data's shuffle and batch, standing in for ``mini_batches`` while it is a stub (the
    course's references have no stand-in for it: the grader judges it by its properties)."""
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size, drop_remainder=drop_remainder)


SGD = ch.pick("SGD")
mini_batches = ch.pick("mini_batches", probe=lambda make: make(np.zeros((4, 1)), np.zeros(4), 2),
                       fallback=plain_pipeline)
COMPONENT_IS_OURS = SGD is not keras.optimizers.SGD

# %% [markdown]
# ### Updates per epoch
#
# One of the documents' examples: a million customer records in blocks of 128 give "over 7,800"
# updates per epoch, where batch descent gives one. The table asks `mini_batches` itself (its
# `cardinality()`, the number of batches the pipeline will produce) and sets the formula beside it.

# %%
import math

from course.toolkit import table

N_RECORDS = 1_000_000
records = np.zeros((N_RECORDS, 1), dtype="float32")
targets = np.zeros(N_RECORDS, dtype="float32")
rows = []
for m in (1, 32, 128, 256, 4096, N_RECORDS):
    kept = int(mini_batches(records, targets, m).cardinality())
    dropped = int(mini_batches(records, targets, m, drop_remainder=True).cardinality())
    rows.append([f"{m:,}", f"{math.ceil(N_RECORDS / m):,}", f"{kept:,}", f"{dropped:,}",
                 f"{N_RECORDS - (kept - 1) * m:,}"])
table(f"Updates per epoch for N = {N_RECORDS:,} examples",
      ["batch size m", "ceil(N/m)", "batches per epoch", "with drop_remainder",
       "examples in the last batch"], rows)
updates_128 = int(mini_batches(records, targets, 128).cardinality())
ch.claim("updates_per_epoch",
         f"mini_batches(...).cardinality() = {updates_128:,} batches per epoch "
         f"({N_RECORDS // 128:,} full ones and one of {N_RECORDS % 128})",
         updates_128 > 7800)
del records, targets

# %% [markdown]
# What one epoch looks like, on ten examples in batches of four. Each row is one pass over the
# same dataset object; the numbers are the examples' indices. Every index appears once per pass,
# the last batch has the two left over, the order is new each pass, and building the dataset again
# with the same seed replays the same passes.

# %%
def epochs_of(dataset, count: int) -> list[list[str]]:
    """Per pass, the example indices of each batch, over ``count`` passes over a dataset of
    (x, index) pairs."""
    return [[str(batch_y.numpy().tolist()) for _, batch_y in dataset] for _ in range(count)]


tiny_x = np.arange(10, dtype="float32").reshape(10, 1)
tiny_index = np.arange(10)
rows = []
for label, dataset in [("seed 7", mini_batches(tiny_x, tiny_index, 4, seed=7)),
                       ("seed 7, built again", mini_batches(tiny_x, tiny_index, 4, seed=7)),
                       ("seed 8", mini_batches(tiny_x, tiny_index, 4, seed=8)),
                       ("shuffle=False", mini_batches(tiny_x, tiny_index, 4, shuffle=False)),
                       ("drop_remainder=True", mini_batches(tiny_x, tiny_index, 4, seed=7,
                                                            drop_remainder=True))]:
    for epoch, batches in enumerate(epochs_of(dataset, 2), start=1):
        rows.append([label if epoch == 1 else "", epoch, *batches])
most_batches = max(len(row) for row in rows) - 2
table("mini_batches(x, y, batch_size=4) on 10 examples",
      ["dataset", "epoch", *(f"batch {i + 1}" for i in range(most_batches))],
      [row + [""] * (most_batches + 2 - len(row)) for row in rows])

# %% [markdown]
# ## 2. The components next to Keras
#
# First the optimizer alone: the same start and gradients on the bowl `0.1*x1^2 + 2*x2^2` for our
# `SGD` and Keras's. Then the pipeline and the optimizer together: a hand-written loop over
# `mini_batches(..., shuffle=False)` with our `SGD`, against `model.fit(..., shuffle=False)` with
# Keras's `SGD`, which cuts the same batches in the same order. The weights after one epoch
# should agree to float32 rounding.

# %%
from course.plotting import run_on_bowl
from course.toolkit import dense_model, load_dataset, loss_for, max_gap, value_and_gradients

DATA = load_dataset(ch.dataset, cap=2000 if QUICK else 10000)
N = len(DATA.x)
print(f"data set {DATA.name}: {N} training examples, {DATA.features} features, "
      + (f"{DATA.outputs} classes" if DATA.classification else "a real-valued target"))
# the hand-written loops below call the loss themselves: Keras's loss object for the data set
LOSS = (keras.losses.SparseCategoricalCrossentropy() if DATA.classification
        else keras.losses.MeanSquaredError())

ours_path = run_on_bowl(SGD(learning_rate=0.4), steps=40)
keras_path = run_on_bowl(keras.optimizers.SGD(learning_rate=0.4), steps=40)

loop_model, fit_model = dense_model(DATA, hidden=(32,)), dense_model(DATA, hidden=(32,))
loop_optimizer = SGD(learning_rate=0.1)
for x_batch, y_batch in mini_batches(DATA.x, DATA.y, 32, shuffle=False).as_numpy_iterator():
    _, grads = value_and_gradients(
        lambda x=x_batch, y=y_batch: LOSS(y, loop_model(x, training=True)),
        loop_model.trainable_variables)
    loop_optimizer.apply_gradients(zip(grads, loop_model.trainable_variables))
fit_model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss=loss_for(DATA))
fit_model.fit(DATA.x, DATA.y, batch_size=32, epochs=1, shuffle=False, verbose=0)
table("Ours next to Keras" + ("" if COMPONENT_IS_OURS else " (SGD is Keras's own here)"),
      ["comparison", "max |difference|"],
      [["40 steps on the bowl, lr 0.4: our SGD vs keras.optimizers.SGD",
        f"{max_gap(ours_path, keras_path):.1e}"],
       [f"one epoch on {DATA.name}, batch 32: our loop vs model.fit",
        f"{max_gap(loop_model.get_weights(), fit_model.get_weights()):.1e}"]])

# %% [markdown]
# ## 3. Experiments
#
# All experiments train the same small network (one hidden layer of 32) on the standardized
# `course_digits` images (8x8 pixels, 1437 training images; `--dataset NAME` picks another data
# set). One model and one optimizer are reused: before each run the weights go back to the same
# initial values and the rate is set anew, so the training step is compiled only once (an
# epoch's loop over the `tf.data` pipeline runs inside TensorFlow's graph; on JAX and PyTorch
# the pipeline feeds the compiled step batch by batch).
# "Loss" is always measured on the whole training set, never on the batch just seen.

# %%
from course.toolkit import CompiledTraining


class Trainer:
    """One network trained again and again from the same start with the chapter's SGD."""

    def __init__(self):
        self.model = dense_model(DATA, hidden=(32,))
        self.start = self.model.get_weights()
        self.optimizer = SGD(learning_rate=0.1)
        self.loss = LOSS
        self.x, self.y = DATA.x, DATA.y
        training = CompiledTraining(self.model, self.optimizer, LOSS)
        self.step, self.epoch = training.step, training.epoch

    def reset(self, learning_rate: float) -> None:
        self.model.set_weights(self.start)
        self.optimizer.learning_rate = learning_rate

    def full_loss(self) -> float:
        return float(self.loss(self.y, self.model(self.x, training=False)))

    def curve(self, batch_size: int, learning_rate: float, epochs: int,
              seed: int = 0) -> np.ndarray:
        """Training loss before training and after each epoch (stops early on divergence)."""
        self.reset(learning_rate)
        dataset = mini_batches(DATA.x, DATA.y, batch_size, seed=seed)
        losses = [self.full_loss()]
        for _ in range(epochs):
            self.epoch(dataset)
            losses.append(self.full_loss())
            if not np.isfinite(losses[-1]):
                break
        return np.asarray(losses)


trainer = Trainer()
trainer.reset(0.0)
trainer.step(trainer.x[:2], trainer.y[:2])  # compile the step before anything is timed
INITIAL_LOSS = trainer.full_loss()

# %% [markdown]
# ### 3a. Batch, stochastic and mini-batch descent on the same problem
#
# Three runs, each at a learning rate that suits it: batch descent (m = N) can take the largest
# steps, because its gradient is exact; single-example SGD must take the smallest, because its
# noise is largest. (In a full run each method also tries a rate three times smaller and three
# times larger, and keeps its best.) The loss is recorded about twenty times per epoch; the clock
# runs only while the model trains, not while it is evaluated.

# %%
import time


def race(batch_size: int, learning_rate: float, epochs: int, points_per_epoch: int = 20) -> dict:
    """Train step by step, logging the full training loss against updates, epochs and seconds."""
    trainer.reset(learning_rate)
    dataset = mini_batches(DATA.x, DATA.y, batch_size, seed=0)
    per_epoch = math.ceil(N / batch_size)
    every = max(1, per_epoch // points_per_epoch)
    log = {"updates": [0], "epochs": [0.0], "seconds": [0.0], "loss": [trainer.full_loss()]}
    clock, done = 0.0, 0
    for _ in range(epochs):
        started = time.perf_counter()
        for x_batch, y_batch in dataset:
            trainer.step(x_batch, y_batch)
            done += 1
            if done % every == 0 or done % per_epoch == 0:
                clock += time.perf_counter() - started
                log["updates"].append(done)
                log["epochs"].append(done / per_epoch)
                log["seconds"].append(clock)
                log["loss"].append(trainer.full_loss())
                started = time.perf_counter()
        if not np.isfinite(log["loss"][-1]):
            break
    return {k: np.asarray(v) for k, v in log.items()}


def first_reach(log: dict, target: float, axis: str) -> float:
    """Where on ``axis`` (updates, epochs or seconds) the race's loss first reached ``target``:
    its points are irregular in all three, so the value is read off the log, not counted."""
    hits = np.nonzero(log["loss"] <= target)[0]
    return float(log[axis][hits[0]]) if hits.size else np.inf


TARGET = 0.05 * INITIAL_LOSS
METHODS = {  # name: (batch size, its rate, epochs)
    f"batch GD (m = {N})": (N, 1.0, 40 if QUICK else 300),
    "mini-batch GD (m = 32)": (32, 0.2, 4 if QUICK else 30),
    "stochastic GD (m = 1)": (1, 0.02, 1 if QUICK else 4),
}
started = time.perf_counter()
races = {}
for name, (m, rate, epochs) in METHODS.items():
    tried = [rate] if QUICK else [rate / 3, rate, rate * 3]
    logs = {r: race(m, r, epochs) for r in tried}
    # the best rate: first to the target, else the lowest final loss
    best = min(tried, key=lambda r: (first_reach(logs[r], TARGET, "seconds"), logs[r]["loss"][-1]))
    races[f"{name}, lr {best:g}"] = logs[best]
print(f"{sum(1 if QUICK else 3 for _ in METHODS)} runs in {time.perf_counter() - started:.1f} s")

# %%
from course.plotting import figure, plot_curves

fig, axes = figure(1, 3, width=4.4, height=4.0, sharey=True)
for ax, axis, label in zip(axes[0], ("updates", "epochs", "seconds"),
                           ("updates (optimizer steps)", "epochs (passes over the data)",
                            "training time (s)")):
    first = 0 if axis == "seconds" else 1  # no point at 0 on a log axis
    plot_curves(ax, {n: r["loss"][first:] for n, r in races.items()}, xlabel=label, ylabel="",
                x={n: r[axis][first:] for n, r in races.items()})
    ax.axhline(TARGET, color="k", lw=0.8, ls=":", label=f"target ({TARGET:.3f})")
    if axis != "seconds":  # batch GD takes hundreds of times more of one, and fewer of the other
        ax.set_xscale("log")
    ax.get_legend().remove()
axes[0, 0].set_ylabel("training loss (whole training set)")
fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=9,
           bbox_to_anchor=(0.5, -0.11))
axes[0, 0].set_title("Per update, the exact gradient wins")
axes[0, 1].set_title("Per pass over the data, small batches win")
axes[0, 2].set_title("Per second: the trade-off")
fig.suptitle(f"Batch vs stochastic vs mini-batch gradient descent on {DATA.name} "
             f"(the same network and start; target: 5% of the initial loss)")
ch.savefig(fig, "gd_variants")

table(f"Reaching a training loss of {TARGET:.3f}",
      ["method", "updates to target", "epochs to target", "seconds to target", "ms per update",
       "final loss"],
      [[name, f"{first_reach(log, TARGET, 'updates'):g}",
        f"{first_reach(log, TARGET, 'epochs'):.2f}", f"{first_reach(log, TARGET, 'seconds'):.2f}",
        f"{1000 * log['seconds'][-1] / log['updates'][-1]:.2f}", f"{log['loss'][-1]:.4f}"]
       for name, log in races.items()])
print(f"updates per pass over the {N} examples: batch GD 1, mini-batches of 32 "
      f"{math.ceil(N / 32)}, single-example SGD {N}")

# %% [markdown]
# Read the three panels from left to right. Per update, batch descent is best: every step uses
# the exact gradient. But each of its updates costs a whole pass over the data, so per epoch the
# mini-batches, which take `ceil(N/32)` steps in the same pass (the line above), are far ahead
# (note the log scales). Single-example SGD takes N steps per pass and its noise forces a small
# rate; on a CPU each step also pays a fixed overhead that a batch of one cannot spread over many
# examples, so per example its clock runs slowest (the table's milliseconds per update, against
# the one example each of its updates sees).
# Wall time is where hardware enters: one large matrix product per update is cheap per example,
# which is why on a data set as small as this one batch descent keeps up with mini-batches in
# seconds, or even gets ahead, although it is far behind per epoch. With a million examples an
# epoch is expensive, one exact gradient costs a million forward passes, and the per-epoch view
# is the one that counts.

# %%
mini_name = next(n for n in races if n.startswith("mini-batch"))
batch_name = next(n for n in races if n.startswith("batch GD"))
epochs_ratio = first_reach(races[batch_name], TARGET, "epochs") / first_reach(
    races[mini_name], TARGET, "epochs")
seconds_ratio = first_reach(races[batch_name], TARGET, "seconds") / first_reach(
    races[mini_name], TARGET, "seconds")
seconds = {n: first_reach(races[n], TARGET, "seconds") for n in (batch_name, mini_name)}
faster = [epochs_ratio > 1, seconds_ratio > 1]
ch.claim("minibatch_faster",
         f"to reach {TARGET:.3f} on {DATA.name}, mini-batch (m = 32) needed {epochs_ratio:.1f}x "
         f"fewer epochs than batch GD; training time {seconds[mini_name]:.2f} s against "
         f"{seconds[batch_name]:.2f} s"
         + (" (quick run: one rate each)" if QUICK else " (best of three rates each)"),
         # per epoch and per second can disagree on a data set this small: then it is a draw
         all(faster) if all(faster) or not any(faster) else None,
         reason="faster per epoch but not per second (or the reverse): a draw on a data set "
                "this small")

# %% [markdown]
# ### 3b. Batch size and learning rate together: the linear scaling rule
#
# A step of m examples at rate `lr` moves the weights by `lr` times the mean gradient. `k`
# consecutive steps at that rate move them by about `k * lr` times the mean gradient, as long as
# the gradient changes little over those steps; one step on a batch `k` times larger at rate
# `k * lr` does the same with one update. So, as long as the rate is small enough for that
# approximation, **multiplying the batch size by k and the learning rate by k gives the same
# training curve per epoch**: the linear scaling rule (Goyal et al., 2017). Read the other way,
# doubling the batch size at a fixed rate acts like halving the rate.
#
# Left: every batch size at the same rate. Right: the rate scaled with the batch size,
# `lr = 0.05 * m / 16`.

# %%
BASE_RATE, BASE_BATCH = 0.05, 16
SCALING_EPOCHS = 4 if QUICK else 10
BATCHES = [16, 64, 256] if QUICK else [8, 16, 32, 64, 128, 256, 512, 1024]
started = time.perf_counter()
fixed = {m: trainer.curve(m, BASE_RATE, SCALING_EPOCHS) for m in BATCHES}
scaled = {m: trainer.curve(m, BASE_RATE * m / BASE_BATCH, SCALING_EPOCHS) for m in BATCHES}
doubling = {"m = 32, lr 0.1": trainer.curve(32, 0.1, SCALING_EPOCHS),
            "m = 64, lr 0.1 (batch doubled)": trainer.curve(64, 0.1, SCALING_EPOCHS),
            "m = 32, lr 0.05 (rate halved)": trainer.curve(32, 0.05, SCALING_EPOCHS)}
print(f"{2 * len(BATCHES) + 3} runs of {SCALING_EPOCHS} epochs in "
      f"{time.perf_counter() - started:.1f} s")

# %%
import matplotlib

colours = matplotlib.colormaps["viridis"](np.linspace(0, 0.9, len(BATCHES)))
fig, axes = figure(1, 2, width=5.6, height=4.3, sharey=True)
for ax, curves, title in ((axes[0, 0], fixed, f"the same rate, lr = {BASE_RATE}"),
                          (axes[0, 1], scaled,
                           f"rate scaled with the batch, lr = {BASE_RATE} * m / {BASE_BATCH}")):
    for colour, (m, curve) in zip(colours, curves.items()):
        rate = BASE_RATE if curves is fixed else BASE_RATE * m / BASE_BATCH
        ax.plot(np.arange(len(curve)), curve, "o-", ms=3, color=colour,
                label=f"m = {m}, lr {rate:g}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
axes[0, 0].set_ylabel("training loss (whole training set)")
fig.suptitle(f"The linear scaling rule on {DATA.name}: loss per epoch for each batch size m")
ch.savefig(fig, "linear_scaling")


def spread(curves: dict) -> float:
    """How far apart the runs end: the largest final loss over the smallest (1 = identical)."""
    finals = np.asarray([c[-1] if len(c) == SCALING_EPOCHS + 1 else np.inf
                         for c in curves.values()])
    return float(finals.max() / finals.min())


table(f"After {SCALING_EPOCHS} epochs",
      ["batch size", "final loss, same rate", "final loss, scaled rate", "scaled rate"],
      [[m, f"{fixed[m][-1]:.4f}",
        f"{scaled[m][-1]:.4f}" if len(scaled[m]) == SCALING_EPOCHS + 1 else "diverged",
        f"{BASE_RATE * m / BASE_BATCH:g}"] for m in BATCHES])
table("Doubling the batch against halving the rate", ["run", "final loss"],
      [[k, f"{v[-1]:.4f}"] for k, v in doubling.items()])
largest = max(BATCHES)
print(f"the largest batch, {largest} at the scaled rate {BASE_RATE * largest / BASE_BATCH:g}: "
      "loss before training and after each epoch "
      + ", ".join(f"{v:.3f}" for v in scaled[largest])
      + " (the other batch sizes end between "
      f"{min(c[-1] for m, c in scaled.items() if m != largest):.3f} and "
      f"{max(c[-1] for m, c in scaled.items() if m != largest):.3f})")

# %%
within_rule = {m: c for m, c in scaled.items() if m <= 512}
fixed_spread, scaled_spread = spread(fixed), spread(within_rule)
ch.claim("linear_scaling_rule",
         f"after {SCALING_EPOCHS} epochs, batch sizes {min(BATCHES)} to {max(within_rule)}: final "
         f"losses differ by a factor {fixed_spread:.1f} at one fixed rate and {scaled_spread:.2f} "
         "with the rate scaled",
         bool(scaled_spread < 1.25 and fixed_spread > 2))
a, b, c = (v[-1] for v in doubling.values())
ch.claim("double_batch_half_rate",
         f"final loss: m = 32 at lr 0.1 {a:.4f}; m = 64 at lr 0.1 {b:.4f}; m = 32 at lr 0.05 "
         f"{c:.4f} (the last two {abs(b - c) / c:.0%} apart, {abs(b - a) / a:.0%} from the first)",
         bool(abs(b - c) / c < 0.1 < abs(b - a) / a))

# %% [markdown]
# The rule is an approximation for small steps, and it ends where a single step becomes too
# large: then the first steps overshoot, the loss climbs before it comes down, and the run ends
# above the others. The line above follows the largest batch of this run epoch by epoch; the full
# run goes up to 1024 (one full batch and a partial one per epoch on `course_digits`) at a scaled
# rate of 0.05 * 1024 / 16 = 3.2, where to look for that climb. Goyal et al. add a few epochs of
# warmup for that reason, and report that the rule holds up to batches of a few thousand images
# on ImageNet; beyond that, larger batches also lose some of the regularising noise of small ones.
#
# ### 3c. Gradient accumulation is a larger batch
#
# One of the documents' examples: when a batch of 128 does not fit in memory, run four batches of
# 32, add up their gradients, and update once with the average. Keras optimizers do this with
# `gradient_accumulation_steps=4`: the first three steps only accumulate, the fourth applies the
# mean of the four gradients and clears the sum. Because each batch's loss is already a mean, the
# mean of four equal-sized batch gradients *is* the gradient of the 128 examples together, so the
# weights should follow the batch-128 run exactly, while only 32 examples are ever in memory at
# once. Here the chapter's `SGD` (which inherits the option from the base class) and
# `mini_batches` feed `model.fit`; the data set is cut to a multiple of 128 so that every group of
# four batches is complete.

# %%
SMALL, ACCUMULATE = 32, 4
LARGE = SMALL * ACCUMULATE
usable_n = (N // LARGE) * LARGE
acc_x, acc_y = DATA.x[:usable_n], DATA.y[:usable_n]
ACC_EPOCHS = 2
ACCUMULATED, SINGLE, LARGE_RUN = (f"m = {SMALL}, accumulate {ACCUMULATE}", f"m = {SMALL}",
                                  f"m = {LARGE}")
runs = {}
for label, batch_size, accumulate in ((ACCUMULATED, SMALL, ACCUMULATE), (LARGE_RUN, LARGE, None),
                                      (SINGLE, SMALL, None)):
    model = dense_model(DATA, hidden=(32,))
    model.compile(optimizer=SGD(learning_rate=0.2, gradient_accumulation_steps=accumulate),
                  loss=loss_for(DATA))
    # shuffle=False: with a dataset, the order is the pipeline's business, not fit's
    model.fit(mini_batches(acc_x, acc_y, batch_size, shuffle=False), epochs=ACC_EPOCHS,
              shuffle=False, verbose=0)
    runs[label] = model
reference_weights = runs[LARGE_RUN].get_weights()
gaps = {label: max_gap(model.get_weights(), reference_weights) for label, model in runs.items()}
table(f"{ACC_EPOCHS} epochs of model.fit on {usable_n} examples, lr 0.2",
      ["run", "updates applied", f"max |w - w(m = {LARGE})|"],
      [[label, int(keras.ops.convert_to_numpy(model.optimizer.iterations)), f"{gaps[label]:.1e}"]
       for label, model in runs.items()])
ch.claim("accumulation_equivalent",
         f"after {ACC_EPOCHS} epochs the weights differ from the batch-{LARGE} run by at most "
         f"{gaps[ACCUMULATED]:.1e} (float32 rounding), against {gaps[SINGLE]:.1e} for batches of "
         f"{SMALL} without accumulation",
         bool(gaps[ACCUMULATED] < 1e-5))

# %% [markdown]
# ## 4. Mixed precision
#
# Under the `mixed_float16` policy each layer computes in float16 but keeps its weights in
# float32, and `compile()` wraps the optimizer in a `LossScaleOptimizer`. Our `SGD` needs no
# change: the loss scale is removed from the gradients before `update_step` sees them, and the
# weights it updates are float32.

# %%
from course import mixed_precision as mp

rows = []
for policy_name in ("float32", "mixed_float16"):
    with mp.policy(policy_name):
        # the same initial weights under both policies; the output layer stays float32
        model = dense_model(DATA, hidden=(32,), seed=0)
        model.compile(optimizer=SGD(learning_rate=0.1), loss=loss_for(DATA))
    history = model.fit(mini_batches(DATA.x, DATA.y, 32, seed=0), epochs=1, shuffle=False,
                        verbose=0)
    info = mp.describe(model)
    info["loss after 1 epoch"] = f"{history.history['loss'][-1]:.4f}"
    rows.append(info)
mp.print_table(rows, title="Our SGD under each policy")

# %% [markdown]
# **Why the weights SGD updates must stay float32.** float16 has 10 bits of mantissa: next to
# 1.0 its numbers are about 0.001 apart, so adding anything smaller than half of that to a weight
# of 1 leaves it unchanged. A step `lr * g` is usually far smaller than that (lr 0.01 and a
# gradient of 0.01 give 1e-4). Below, our `SGD` takes 100 identical steps on weights of 1 held in
# float32 and in float16; in float16 the small steps are lost, however many are taken.
# (The other edge, tiny gradients that round to zero in float16, is what the loss scale is for:
# 1e-8 is 0 in float16, but 1e-8 times the initial scale 32768 is 3.3e-4, which float16 holds.)

# %%
gradient = np.array([1.0, 0.1, 0.01, 0.001])
moved = {}
for dtype in ("float32", "float16"):
    w = keras.Variable(np.ones(4), dtype=dtype)
    optimizer = SGD(learning_rate=0.01)
    for _ in range(100):
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(gradient.astype(dtype)), w)])
    moved[dtype] = 1.0 - w.numpy().astype("float64")
table("100 steps of our SGD (lr 0.01) on weights equal to 1",
      ["gradient", "one step lr*g", "moved in 100 steps (exact)", "float32 weights",
       "float16 weights"],
      [[f"{g:g}", f"{0.01 * g:g}", f"{g:g}", f"{a:.6f}", f"{b:.6f}"]
       for g, a, b in zip(gradient, moved["float32"], moved["float16"])])
table("Small gradients in float16, without and with the loss scale",
      ["gradient value", "in float16", "scaled by 32768, in float16"],
      [[f"{g:g}", f"{float(np.float16(g)):.3g}", f"{float(np.float16(g * 32768)):.3g}"]
       for g in (1e-3, 1e-6, 1e-8)])

# %% [markdown]
# **Speed and memory** only change on a GPU with Tensor Cores (on a CPU float16 is emulated and
# slower), so that comparison runs only where Keras's backend sees a GPU.

# %%
mp.compare_on_gpu(lambda x: mp.wide_classifier(SGD(learning_rate=0.01)),
                  title="Two 4096-wide layers, batch 1024, our SGD")

# %% [markdown]
# ## Summary
#
# - Batch, stochastic and mini-batch descent differ only in how many examples each step
#   averages. Per update the exact gradient is best; per epoch, many cheaper noisy steps are.
# - An epoch is a permutation of the data cut into `ceil(N/m)` batches; a new permutation every
#   epoch, the same sequence of them for the same seed, x and y shuffled together.
# - Batch size and learning rate are one knob while steps are small: multiply both by k and the
#   curve per epoch stays put.
# - Accumulating k gradients of batch m is the same update as one batch of k*m.
# - Under mixed precision SGD is unchanged, but the weights it updates must be float32: float16
#   loses any step smaller than about a thousandth of the weight.

# %%
print(f"\nDone. Plots are in {ch.out}")
