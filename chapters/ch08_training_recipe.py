# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Chapter 8 — The training recipe, and a doctor that reads the loss curve
#
# Seven chapters built seven mechanics one at a time, each measured on its own. A real training
# run uses all of them at once, and then two questions remain that no single chapter answers:
# which ingredients actually matter on a given problem, and, when a run goes wrong, what went
# wrong. This chapter assembles the recipe, measures it, takes it apart, and builds the tool that
# reads a run's loss curve the way an experienced practitioner does.
#
# The data set is MNIST-1D (Greydanus, "Scaling down deep learning", 2020): ten digit-like 1-D
# shapes, shifted, scaled, sheared and made noisy into 40 numbers each. It is small enough to
# train in minutes on a laptop CPU and hard enough to tell methods apart: the paper reports a
# test accuracy of 32% for logistic regression, 68% for an MLP, 94% for a small CNN and 96% for
# a human.
#
# This chapter:
#
# 1. lists the recipe's ingredients and the two components of this chapter's exercise: the
#    `LossCurveDoctor` callback, which reads each batch's loss and says what it sees, and the
#    `AccumulateGradients` optimizer, which applies the mean of several micro-batch gradients,
#    clipped to a global norm;
# 2. runs both next to their references;
# 3. trains a small CNN with the recipe and holds it against the paper's table and against the
#    same CNN, and a larger one, trained carelessly;
# 4. removes one ingredient at a time, over several seeds, and asks which differences exceed the
#    seed noise;
# 5. isolates the learning rate: five optimization strategies over a range of rates;
# 6. shows why deep networks fail to train (per-layer gradient norms) and what clipping does to
#    an exploding run;
# 7. lets the doctor diagnose a gallery of broken runs;
# 8. kills a run and resumes it from its checkpoint;
# 9. runs the recipe under mixed precision.
#
# Run it as a script (`python -m chapters.ch08_training_recipe [--quick] [--out DIR] [--mine]
# [--dataset NAME]`) or open it as a notebook with jupytext.

# %%
from course.chapter import setup

ch = setup(8, "The training recipe")

# %% [markdown]
# ### Which components this run uses
#
# `LossCurveDoctor` and `AccumulateGradients` come from `solutions/ch08_training_recipe.py`, or
# with `--mine` from your own `exercises/ch08_training_recipe.py`. A class that is still a stub
# (it raises `NotImplementedError`) is replaced by its reference stand-in, with a note: the
# course's own doctor, and Keras's built-in gradient accumulation on the optimizer you pass in.
# The earlier chapters' components enter the recipe as the Keras built-ins they were checked
# against (`BatchNormalization`, `AdamW`, `CosineDecay` with a warmup): your versions matched
# those, and this way the recipe does not depend on every earlier exercise being finished.

# %%
import keras


def doctor_probe(cls):
    doctor = cls(verbose=False)
    doctor.on_train_begin()
    doctor.on_epoch_begin(0)
    doctor.on_train_batch_end(0, {"loss": 1.0})


LossCurveDoctor = ch.pick("LossCurveDoctor", probe=doctor_probe)
AccumulateGradients = ch.pick("AccumulateGradients", probe=lambda cls: cls(keras.optimizers.SGD(
    0.1), steps=2).apply_gradients([(keras.ops.ones(3), keras.Variable([1.0, 2.0, 3.0]))]))

# %% [markdown]
# ## 1. The recipe and its two new parts
#
# | ingredient | what it fixes | where the course built it | here |
# |---|---|---|---|
# | standardized inputs | a stretched loss surface | chapter 1 | `load_dataset` standardizes with the training statistics |
# | batch normalization | drifting activations, a narrow range of rates | chapter 2 | `keras.layers.BatchNormalization` after each convolution |
# | mini-batches | slow full-batch steps | chapter 3 | batches of 50, as two accumulated micro-batches of 25 |
# | AdamW | zig-zags and badly scaled gradients (momentum, RMSProp, Adam) | chapters 4-6 | `keras.optimizers.AdamW`, decoupled weight decay |
# | warmup, then cosine decay | wild first steps; hopping around the minimum at the end | chapter 7 | `keras.optimizers.schedules.CosineDecay(warmup_target=...)` |
# | global-norm clipping | one huge gradient undoing many good steps | this chapter | `AccumulateGradients(..., global_clipnorm=1.0)` |
# | gradient accumulation | a batch too large for memory | chapter 3, this chapter | `AccumulateGradients(AdamW(...), steps=2)` |
# | early stopping on held-out data | training past the best point | chapter 7 | `keras.callbacks.EarlyStopping(restore_best_weights=True)` |
# | checkpoints | a crash losing hours of training | this chapter | `keras.callbacks.ModelCheckpoint`, section 8 |
# | mixed precision | slow float32 math on a GPU | every chapter | `mixed_float16`, section 9 |
# | a doctor | not noticing that a run has gone wrong | this chapter | `LossCurveDoctor`, on every run below |
#
# **`AccumulateGradients(optimizer, steps, global_clipnorm)`** wraps any optimizer. It adds each
# micro-batch's gradient to an accumulator, and on every `steps`-th call applies the *mean*,
# clipped to `global_clipnorm` over all variables together, through the wrapped optimizer; then
# it clears the accumulators. Because each micro-batch's loss is already a mean over its
# examples, the mean of `steps` micro-batch gradients is exactly the gradient of the large batch
# (chapter 3 measured this with Keras's own `gradient_accumulation_steps`). Two counts must come
# out as Keras's: the wrapped optimizer's step count advances once per *applied* update (Adam's
# bias correction counts updates), while a learning-rate schedule sees every *micro-batch*: the
# update applied on micro-batch `k` uses `schedule(k)`. So a schedule under accumulation is
# written in micro-batches, as below.
#
# **`LossCurveDoctor`** is a callback. After each batch it recovers that batch's own loss (Keras
# logs the running mean of the epoch so far: `b_j = mean_j * (j + 1) - mean_(j-1) * j`) and
# applies a few rules a practitioner applies by eye, with every threshold a constructor argument:
#
# - **nan**: the loss is NaN or infinite (and, by default, training stops: nothing good follows);
# - **spike**: a batch loss above `spike_factor` (4) times the median of the `window` (20)
#   batches before it;
# - **noisy**: in a window of 20 batches the spread (standard deviation / mean) exceeds
#   `noise_ratio` (0.5): the steps are too large or the batches too small;
# - **flat**: three windows in, the loss has not come down by `flat_tolerance` (5%) of where it
#   started: the rate is too small, or the model is not learning at all;
# - **overfitting**: the validation loss has not improved for `overfit_patience` (3) epochs while
#   the training loss went on falling;
# - **lr_too_high**: at the end, the last window is no lower than the one before and noisy.
#
# The spike and spread rules measure against the loss's level, but never against less than
# `floor` (0.2) of where it started: section 7 shows why.
#
# Each finding is a dict (`code`, `step`, `epoch`, `message`, `advice`); `summary()` lists them.
#
# ## 2. The components next to the references
#
# `AccumulateGradients` and Keras's own accumulation (`gradient_accumulation_steps` on the same
# AdamW, with `global_clipnorm`) from the same start on the same gradients, with a warmup and
# cosine schedule: gradients large enough that the clipping acts, a weight decay, and a schedule
# that would show a step count advancing on the wrong calls.

# %%
import numpy as np

from course import references
from course.toolkit import side_by_side, table

QUICK = ch.quick
REFERENCE = references.ch08_training_recipe()  # what the grader checks each class against


def clipped_adamw(accumulate=None):
    """AdamW with a warmup and cosine schedule and a decay, as Keras (with ``accumulate``) builds
    it or as the inner optimizer of an AccumulateGradients."""
    schedule = keras.optimizers.schedules.CosineDecay(0.0, 30, warmup_target=0.1, warmup_steps=6)
    return keras.optimizers.AdamW(schedule, weight_decay=0.1, gradient_accumulation_steps=accumulate,
                                  global_clipnorm=1.0 if accumulate else None)


def noisy_gradient(step, values):
    """A bowl's gradient plus a large step-dependent term, so that the global norm is often above
    the clipping threshold and micro-batches differ."""
    rng = np.random.default_rng(step)
    return [(2 * v + 3 * rng.normal(size=v.shape)).astype("float32") for v in values]


START = [np.array([1.0, -2.0, 3.0]), np.array([[0.5, -0.5], [1.5, 2.0]])]
rows = []
for steps in (2, 4):
    keras_accumulation = clipped_adamw(accumulate=steps)
    gap = side_by_side(AccumulateGradients(clipped_adamw(), steps=steps, global_clipnorm=1.0),
                       keras_accumulation, START, noisy_gradient, steps=8 * steps)
    rows.append([steps, 8 * steps, int(keras.ops.convert_to_numpy(keras_accumulation.iterations)), f"{gap:.1e}"])
table("AccumulateGradients(AdamW + warmup/cosine + decay, global_clipnorm=1) against Keras's "
      "accumulation", ["steps", "micro-batches", "updates applied", "max |ours - Keras|"], rows)

# %% [markdown]
# The doctor against the course's reference doctor, on synthetic loss streams fed straight to the
# hooks, with Keras's running means as the logs: each stream has one pathology, and both doctors
# must find the same things at the same steps.

# %%
from types import SimpleNamespace


def feed(doctor, epochs):
    """Feed a doctor what ``model.fit`` would log: ``epochs`` is a list of (batch losses,
    validation loss or None); Keras logs each batch's running mean over the epoch so far, and
    stops after the batch on which ``stop_training`` was set (the epoch still ends)."""
    doctor.set_model(SimpleNamespace(stop_training=False))
    doctor.on_train_begin()
    for epoch, (losses, val_loss) in enumerate(epochs):
        doctor.on_epoch_begin(epoch)
        means = np.cumsum(losses) / np.arange(1, len(losses) + 1)
        for batch, mean in enumerate(means):
            doctor.on_train_batch_end(batch, {"loss": float(mean)})
            if doctor.model.stop_training:
                break
        logs = {"loss": float(means[batch])}
        if val_loss is not None:
            logs["val_loss"] = val_loss
        doctor.on_epoch_end(epoch, logs)
        if doctor.model.stop_training:
            break
    doctor.on_train_end()
    return doctor


def synthetic_streams(batches_per_epoch=25, epochs=6, seed=0):
    """One healthy stream and one per pathology: (batch losses per epoch, validation losses)."""
    rng = np.random.default_rng(seed)
    steps = np.arange(batches_per_epoch * epochs)
    healthy = (2.3 * np.exp(-steps / 40) + 0.2) * rng.lognormal(0, 0.1, steps.size)
    spike = healthy.copy()
    spike[70] *= 8
    nan = healthy.copy()
    nan[90:] = np.nan
    flat = 2.3 * rng.lognormal(0, 0.02, steps.size)
    noisy = (2.3 * np.exp(-steps / 40) + 0.2) * rng.lognormal(0, 0.9, steps.size)
    falling_val = [float(2.3 * np.exp(-(e + 1) * batches_per_epoch / 40) + 0.25)
                   for e in range(epochs)]
    rising_val = [1.0, 0.7, 0.6, 0.65, 0.75, 0.9][:epochs]
    streams = {"healthy": (healthy, falling_val), "one spike": (spike, falling_val),
               "NaN": (nan, falling_val), "flat": (flat, falling_val),
               "noisy": (noisy, falling_val), "overfitting": (healthy, rising_val)}
    return {name: [(losses[e * batches_per_epoch:(e + 1) * batches_per_epoch], val[e])
                   for e in range(epochs)] for name, (losses, val) in streams.items()}


def findings(doctor) -> str:
    return ", ".join(f"{f['code']}@{f['step'] if f['step'] is not None else 'epoch ' + str(f['epoch'])}"
                     for f in doctor.findings) or "none"


rows = []
for name, stream in synthetic_streams().items():
    ours = feed(LossCurveDoctor(verbose=False), stream)
    reference = feed(REFERENCE.LossCurveDoctor(verbose=False), stream)
    same = [(f["code"], f["step"], f["epoch"]) for f in ours.findings] == [
        (f["code"], f["step"], f["epoch"]) for f in reference.findings]
    rows.append([name, findings(ours), findings(reference), "yes" if same else "NO",
                 f"{max(abs(a - b) for a, b in zip(ours.losses, reference.losses) if np.isfinite(a)):.1e}"])
table("The doctor on synthetic streams (6 epochs of 25 batches): findings as code@step",
      ["stream", "ours", "reference", "same", "max |batch loss gap|"], rows,
      left=("ours", "reference"))

# %% [markdown]
# A single spike also makes its window noisy: one batch four times the median is enough to push
# the window's spread past half its mean. The doctor reports both, and reading the curve says
# which came first.
#
# ## 3. The recipe on MNIST-1D, against the paper's table
#
# By default the data set is `course_mnist1d`: 4000 training and 1000 test examples (a quick run
# takes the first 1000 and 500). `--dataset NAME` picks another classification set, where the
# paper's numbers do not apply. A tenth of the training examples is held out as the validation
# set that early stopping and the choice of a learning rate look at; the test set is used for
# the reported accuracies only, never to choose anything.
#
# The network is small: three 1-D convolutions of 32 filters of width 5 (strides 1, 2 and 2),
# each followed by batch normalization and a ReLU, He-initialized, then a softmax over the ten
# classes: some 14 thousand weights (the table below counts them). The recipe trains it with AdamW (peak rate 0.01, decay
# 0.05), a warmup over the first two epochs and a cosine decay to zero, gradients clipped to a
# global norm of 1, in batches of 50 accumulated from micro-batches of 25, with early stopping
# on the validation loss. A full run states how long it will take before it starts.

# %%
import math
import time
from dataclasses import replace

from course.toolkit import Dataset, load_dataset, train

STARTED = time.perf_counter()
DATA = load_dataset(ch.dataset, default="course_mnist1d", cap=1000 if QUICK else None,
                    val_cap=500 if QUICK else None, validation=True, classification_only=True)
TEST_X, TEST_Y = DATA.x_val, DATA.y_val  # the test split: reported, never used to choose


def hold_out(data: Dataset, fraction: float = 0.1, seed: int = 0) -> Dataset:
    """``data`` with a seeded ``fraction`` of its training examples moved to the validation set."""
    order = np.random.default_rng(seed).permutation(len(data.x))
    cut = round(len(order) * (1 - fraction))
    kept, held = order[:cut], order[cut:]
    return replace(data, x=data.x[kept], y=data.y[kept], x_val=data.x[held], y_val=data.y[held])


TRAIN = hold_out(DATA)
TRAINING_ONLY = replace(TRAIN, x_val=None, y_val=None)  # for runs that need no validation loss
BATCH, MICRO = 50, 25
ACCUMULATE = BATCH // MICRO
PEAK, WEIGHT_DECAY, CLIPNORM, WARMUP_EPOCHS = 0.01, 0.05, 1.0, 1 if QUICK else 2
STEPS_PER_EPOCH = math.ceil(len(TRAIN.x) / BATCH)
print(f"data set {DATA.name}: {len(TRAIN.x)} training, {len(TRAIN.x_val)} validation and "
      f"{len(TEST_X)} test examples, {DATA.features} features, {DATA.outputs} classes")

# the run's size, in one place, so that its length is known before it starts
RECIPE_EPOCHS, PATIENCE = (4, 2) if QUICK else (40, 8)
BASELINE_EPOCHS = 3 if QUICK else 30
ABLATION_VARIANTS, ABLATION_EPOCHS, SEEDS = (2, 3, 2) if QUICK else (7, 20, 3)
# the recipe and Adam without decay or schedule get more seeds: the claim on their gap (2-4
# points) needs a noise line under 2 points, and Adam's spread over seeds is the larger
CLAIM_SEEDS = SEEDS if QUICK else 8
SWEEP_RUNS, SWEEP_EPOCHS = (6, 2) if QUICK else (25, 20)  # section 5's grid
GALLERY_EPOCHS = 4 if QUICK else 10
RESUME_EPOCHS, KILLED_AFTER = (2, 1) if QUICK else (6, 3)
PLAN = {  # experiment: (trainings, epochs each)
    "the recipe and three baselines": (4, BASELINE_EPOCHS),
    "ablations": (ABLATION_VARIANTS * SEEDS + 2 * (CLAIM_SEEDS - SEEDS), ABLATION_EPOCHS),
    "learning-rate isolation": (SWEEP_RUNS + (0 if QUICK else 3), SWEEP_EPOCHS),  # 10x runs
    "deep networks and the gallery": (6, GALLERY_EPOCHS),
    "checkpoint and resume": (4, RESUME_EPOCHS),
    "mixed precision": (1, 1),
}
# measured on a 2-core CPU: ~2 s to build and trace a training, ~0.15 ms per example and epoch
expected = sum(n * (2.0 + epochs * len(TRAIN.x) * 1.5e-4) for n, epochs in PLAN.values())
print(f"This run trains {sum(n for n, _ in PLAN.values())} networks: about "
      f"{expected / 60:.0f} minute(s) on a 2-core CPU (less on a faster machine)"
      + ("" if QUICK else "; the longer sections show their progress"))

# %%
from rich.progress import track

from course.toolkit import TrainingRun


def cnn(channels=32, convs=3, normalization=True, activation="relu", initializer="he_normal",
        seed=0, data=TRAIN):
    """The chapter's 1-D CNN: ``convs`` convolutions of width 5 (strides 1, 2, 2, then 1), each
    followed by batch normalization (with ``normalization``) and ``activation``, then a float32
    softmax. The same ``seed`` gives the same starting weights."""
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((data.features,)), keras.layers.Reshape((data.features, 1))]
    for strides in (1, 2, 2, 1)[:convs]:
        # batch normalization adds its own shift (beta): a bias before it would do nothing
        layers.append(keras.layers.Conv1D(channels, 5, strides=strides, padding="same",
                                          use_bias=not normalization,
                                          kernel_initializer=initializer))
        if normalization:
            # momentum 0.9 (PyTorch's default): with Keras's 0.99 the moving averages that
            # inference uses need several hundred steps to forget their start (chapter 2), longer
            # than a short run. No scale (gamma): the ReLU passes it through and the next layer's
            # weights would rescale it anyway, so it would be one more variable for nothing
            layers.append(keras.layers.BatchNormalization(momentum=0.9, scale=False))
        layers.append(keras.layers.Activation(activation))
    layers += [keras.layers.Flatten(),
               keras.layers.Dense(data.outputs, activation="softmax", dtype="float32")]
    return keras.Sequential(layers)


def warmup_cosine(peak, total_steps, warmup_steps):
    """Chapter 7's warmup and cosine decay, Keras's form: up from 0 to ``peak`` over
    ``warmup_steps``, then down to 0 at ``total_steps``."""
    return keras.optimizers.schedules.CosineDecay(0.0, total_steps - warmup_steps,
                                                  warmup_target=peak, warmup_steps=warmup_steps)


def recipe_optimizer(epochs, schedule=True, weight_decay=WEIGHT_DECAY, clipnorm=CLIPNORM):
    """The recipe's optimizer with one update per batch of ``BATCH``."""
    rate = (warmup_cosine(PEAK, epochs * STEPS_PER_EPOCH, WARMUP_EPOCHS * STEPS_PER_EPOCH)
            if schedule else PEAK)
    return keras.optimizers.AdamW(rate, weight_decay=weight_decay, global_clipnorm=clipnorm)


def accumulating_recipe_optimizer(epochs):
    """The same recipe through AccumulateGradients, fed micro-batches of ``MICRO``: the schedule
    counts micro-batches, the clipping acts on each averaged gradient."""
    micro_batches = math.ceil(len(TRAIN.x) / MICRO)
    schedule = warmup_cosine(PEAK, epochs * micro_batches, WARMUP_EPOCHS * micro_batches)
    return AccumulateGradients(keras.optimizers.AdamW(schedule, weight_decay=WEIGHT_DECAY),
                               steps=ACCUMULATE, global_clipnorm=CLIPNORM)


def accuracy(model, x=TEST_X, y=TEST_Y) -> float:
    # a direct call: predict() would compile a function for every model
    return float(np.mean(np.argmax(keras.ops.convert_to_numpy(model(x, training=False)), axis=-1) == y))


def fit(model, optimizer, epochs, *, batch_size=BATCH, data=TRAINING_ONLY,
        callbacks=()) -> TrainingRun:
    """The toolkit's ``train`` with a quiet LossCurveDoctor on every run (section 7 shows what
    it found) and the test accuracy of the weights the run ends with."""
    doctor = LossCurveDoctor(verbose=False)
    run = train(model, optimizer, data, epochs=epochs, batch_size=batch_size,
                callbacks=[doctor, *callbacks])
    run.doctor, run.accuracy = doctor, accuracy(model)
    return run


recipe = fit(cnn(), accumulating_recipe_optimizer(RECIPE_EPOCHS), RECIPE_EPOCHS,
             batch_size=MICRO, data=TRAIN, callbacks=[keras.callbacks.EarlyStopping(
                 monitor="val_loss", patience=PATIENCE, restore_best_weights=True)])
best_epoch = int(np.argmin(recipe.val_loss)) + 1
print(f"the recipe: {len(recipe.loss)} epochs in {recipe.seconds:.0f} s (early stopping kept "
      f"epoch {best_epoch}), test accuracy {recipe.accuracy:.1%}")
print("the doctor on the recipe's run:", recipe.doctor.summary())

# %% [markdown]
# Now the baselines, each trained for the same number of epochs. Logistic regression (one Dense
# layer) checks that our MNIST-1D is the paper's: it should land near 32%. "Carelessly trained"
# means Keras's defaults, the settings a first attempt uses: no batch normalization, plain SGD at
# its default rate of 0.01 with batches of 32, no schedule, no clipping. The larger network has
# four times the filters and a fourth convolution, some eighteen times the weights.

# %%
def logistic_regression(data=TRAIN):
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((data.features,)),
                             keras.layers.Dense(data.outputs, activation="softmax")])


logistic = fit(logistic_regression(), keras.optimizers.Adam(0.01), BASELINE_EPOCHS)
careless = fit(cnn(normalization=False, initializer="glorot_uniform"), keras.optimizers.SGD(0.01),
               BASELINE_EPOCHS, batch_size=32)
careless_large = fit(cnn(channels=128, convs=4, normalization=False,
                         initializer="glorot_uniform"),
                     keras.optimizers.SGD(0.01), BASELINE_EPOCHS, batch_size=32)
ours = {"logistic regression": logistic, "our CNN, the recipe": recipe,
        "our CNN, trained carelessly": careless, "a larger CNN, trained carelessly": careless_large}
PAPER = {"logistic regression": 0.32, "MLP": 0.68, "CNN": 0.94, "human": 0.96}
MNIST1D = DATA.name == "course_mnist1d"
if not MNIST1D:
    print(f"note: the paper's accuracies are for MNIST-1D, not {DATA.name}")
rows = [[f"{name} (paper)", "", f"{acc:.0%}"] for name, acc in PAPER.items()]
rows += [[f"{name} (this run)", f"{run.model.count_params():,}", f"{run.accuracy:.1%}"]
         for name, run in ours.items()]
table(f"{DATA.name}: test accuracy ({len(TEST_X)} test examples)",
      ["model", "weights", "test accuracy"], rows)

# %%
from course.plotting import figure, plain_log_axis

fig, axes = figure(1, 2, width=6.0, height=4.2)
ax = axes[0, 0]
for (name, run), color in zip(ours.items(), ("C7", "C2", "C3", "C1")):
    ax.plot(np.arange(1, len(run.loss) + 1), run.loss, color=color, lw=1.8, label=name)
plain_log_axis(ax, integer_x=True, grid=True)
ax.set_xlabel("epoch")
ax.set_ylabel("training loss (epoch mean)")
ax.set_title("Training curves")
ax.legend(fontsize=8)
ax = axes[0, 1]
labels = [f"{n} (paper)" for n in PAPER] + list(ours)
values = list(PAPER.values()) + [run.accuracy for run in ours.values()]
colors = ["0.7"] * len(PAPER) + ["C7", "C2", "C3", "C1"]
ax.barh(labels[::-1], values[::-1], color=colors[::-1])
for y, value in enumerate(values[::-1]):
    ax.text(value + 0.01, y, f"{value:.0%}", va="center", fontsize=8)
ax.set_xlim(0, 1.1)
ax.set_xlabel("test accuracy")
ax.set_title(f"Against the paper's table ({DATA.name})")
fig.tight_layout()
ch.savefig(fig, "recipe_vs_careless")

ch.claim("cnn_reaches_paper",
         f"the recipe's CNN ({recipe.model.count_params():,} weights): {recipe.accuracy:.1%} "
         f"in {recipe.seconds:.0f} s on this machine; the same CNN trained carelessly "
         f"{careless.accuracy:.1%}",
         None if QUICK or not MNIST1D else bool(recipe.accuracy >= 0.94),
         reason="" if QUICK else "the paper's table is for MNIST-1D, not this data set")
ch.claim("careful_beats_larger",
         f"{recipe.accuracy:.1%} with {recipe.model.count_params():,} weights and the recipe "
         f"against {careless_large.accuracy:.1%} with {careless_large.model.count_params():,} "
         f"weights and Keras's defaults, both after {BASELINE_EPOCHS} epochs at most",
         None if QUICK else bool(recipe.accuracy > careless_large.accuracy))

# %% [markdown]
# ## 4. Ablations: one ingredient out at a time, over several seeds
#
# Which ingredients earn their place on this problem? The Deep Learning Tuning Playbook's rule is
# to change one thing per experiment and to repeat it with several seeds: two runs that differ
# only in their seed (the starting weights and the order of the batches) already differ in
# accuracy, and a difference smaller than that seed noise says nothing. Each variant below is
# the recipe with one ingredient removed, trained from the same seeds for the same epochs. The
# ablations update once per batch of 50 instead of accumulating two micro-batches of 25: the
# same optimization (chapter 3 measured it, section 2 checked `AccumulateGradients` against
# Keras's accumulation), at half the number of steps.
#
# A difference *exceeds the seed noise* here when it is larger than twice its standard error,
# `2 * sqrt(s_a^2 / n + s_b^2 / n)` with `s` the standard deviation over the `n` seeds of each
# variant: a rough 95% line, honest about how little two or three seeds can say. A full run
# tries seven variants; a quick run two, with two seeds.

# %%
ABLATIONS = {  # variant: (model options, optimizer options, standardized inputs)
    "the recipe": ({}, {}, True),
    "Adam: no weight decay, no schedule": ({}, {"weight_decay": 0.0, "schedule": False}, True),
    "no batch normalization": ({"normalization": False}, {}, True),
    "no warmup or cosine decay": ({}, {"schedule": False}, True),
    "no weight decay": ({}, {"weight_decay": 0.0}, True),
    "no gradient clipping": ({}, {"clipnorm": None}, True),
    "inputs not standardized": ({}, {}, False),
}
ABLATIONS = dict(list(ABLATIONS.items())[:ABLATION_VARIANTS])
if "inputs not standardized" in ABLATIONS:
    # the same split of the same examples, without chapter 1's standardization
    RAW_DATA = load_dataset(DATA.name, validation=True, standardize=False)
    RAW = replace(TRAINING_ONLY, x=hold_out(RAW_DATA).x)

ablation_accuracy = {name: [] for name in ABLATIONS}
ablation_findings = {name: [] for name in ABLATIONS}  # what the doctor said of each run
CLAIMED = ("the recipe", "Adam: no weight decay, no schedule")
for name, seed in track([(name, seed) for name in ABLATIONS
                         for seed in range(CLAIM_SEEDS if name in CLAIMED else SEEDS)],
                        description="ablations", disable=QUICK):
    model_options, optimizer_options, standardized = ABLATIONS[name]
    run = fit(cnn(seed=seed, **model_options), recipe_optimizer(ABLATION_EPOCHS, **optimizer_options),
              ABLATION_EPOCHS, data=TRAINING_ONLY if standardized else RAW)
    ablation_accuracy[name].append(run.accuracy if standardized
                                   else accuracy(run.model, RAW_DATA.x_val))
    ablation_findings[name].append([f["code"] for f in run.doctor.findings])


def mean_and_spread(values):
    return float(np.mean(values)), float(np.std(values, ddof=1))


def noise_line(a, b) -> float:
    """Twice the standard error of the difference of two variants' mean accuracies."""
    return 2 * math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))


baseline = ablation_accuracy["the recipe"]
rows, verdicts = [], {}
for name, values in ablation_accuracy.items():
    mean, spread = mean_and_spread(values)
    difference = mean - np.mean(baseline)
    verdicts[name] = abs(difference) > noise_line(values, baseline)
    rows.append([name, f"{100 * mean:.1f} ± {100 * spread:.1f}",
                 "" if name == "the recipe" else f"{100 * difference:+.1f}",
                 "" if name == "the recipe" else f"{100 * noise_line(values, baseline):.1f}",
                 "" if name == "the recipe" else ("yes" if verdicts[name] else "no")])
table(f"Test accuracy (%) after {ABLATION_EPOCHS} epochs, {SEEDS} seeds each"
      + (f" ({CLAIM_SEEDS} for the first two)" if CLAIM_SEEDS != SEEDS else "")
      + " (mean ± standard deviation)",
      ["variant", "accuracy", "difference", "noise line", "exceeds the noise"],
      rows)

# %%
fig, axes = figure(1, 1, width=8.0, height=0.55 * len(ABLATIONS) + 1.6)
ax = axes[0, 0]
names = list(ABLATIONS)[::-1]
for y, name in enumerate(names):
    values = 100 * np.asarray(ablation_accuracy[name])
    color = "C2" if name == "the recipe" else ("C3" if verdicts[name] else "C0")
    ax.scatter(values, np.full(len(values), y), color=color, alpha=0.6, s=30)
    ax.plot([values.mean()] * 2, [y - 0.3, y + 0.3], color=color, lw=2.5)
low, high = np.mean(baseline) - np.std(baseline, ddof=1), np.mean(baseline) + np.std(baseline, ddof=1)
ax.axvspan(100 * low, 100 * high, color="C2", alpha=0.12, label="the recipe's mean ± 1 std")
ax.set_yticks(range(len(names)), names)
ax.set_xlabel("test accuracy (%): one dot per seed, a bar at the mean")
ax.set_title(f"Ablations on {DATA.name}: red where the difference exceeds the seed noise")
ax.grid(alpha=0.3, axis="x")
ax.legend(fontsize=8, loc="lower left")
fig.tight_layout()
ch.savefig(fig, "ablations")

# the doctor watched every one of these runs, all of which train: what did it say?
said = [codes for runs in ablation_findings.values() for codes in runs]
alarms = [codes for codes in said if codes]
print(f"the doctor on the {len(said)} ablation runs: a finding in {len(alarms)}"
      + (f" ({', '.join(sorted({c for codes in alarms for c in codes}))})" if alarms else "")
      + f"; on the recipe's {len(ablation_findings['the recipe'])} seeds: "
      + (", ".join(" ".join(codes) or "none" for codes in ablation_findings["the recipe"])))

adam_plain = ablation_accuracy["Adam: no weight decay, no schedule"]
gap = 100 * (np.mean(baseline) - np.mean(adam_plain))
noise = 100 * noise_line(adam_plain, baseline)
ch.claim("adam_2_4_worse",
         f"the recipe (AdamW, warmup and cosine decay) {100 * np.mean(baseline):.1f}% against "
         f"Adam at a constant rate without decay {100 * np.mean(adam_plain):.1f}%: "
         f"{gap:+.1f} points, seed noise line {noise:.1f} ({CLAIM_SEEDS} seeds)",
         # a gap within the seed noise says nothing either way at this number of seeds
         None if QUICK or abs(gap) <= noise else bool(2 - noise <= gap <= 4 + noise),
         effect=f"{gap:+.1f} points", spread=f"noise line {noise:.1f} points", seeds=CLAIM_SEEDS,
         reason="" if QUICK else f"the gap is within the seed noise of {CLAIM_SEEDS} seeds")

# %% [markdown]
# Read the table by its last column first. An ingredient whose removal stays within the noise
# is not useless in general: it is not needed *here*, on a small, clean, already standardized
# data set (MNIST-1D is standardized as a whole by its generator, which is why leaving out
# chapter 1's per-feature standardization can hardly matter). Batch normalization and the
# schedule are the ingredients that move the most on problems like this one, and the schedule
# is the one that costs nothing to keep.
#
# ## 5. The learning rate first: an isolation plot
#
# "Learning rate is the most important hyperparameter", say the source documents, and their
# comparison of five optimization strategies gives "SGD + cosine decay" the highest
# generalization ceiling. An isolation plot (the Playbook's term) answers both at once: for each
# strategy, the result at each learning rate, everything else fixed. The network is the recipe's
# CNN (with batch normalization), without clipping and without weight decay except in AdamW's
# row; the rates are about a factor of 3 apart, so two grid points are a factor of 10. The rate
# is chosen by the *validation* accuracy, and the test accuracy is reported at the chosen rate.
# A quick run tries one rate per strategy, and ten times it for plain SGD.

# %%
STRATEGIES = {  # strategy: (optimizer for a rate and a number of steps, rates)
    "SGD": (lambda rate, steps: keras.optimizers.SGD(rate), (0.01, 0.03, 0.1, 0.3, 1.0)),
    "SGD + momentum": (lambda rate, steps: keras.optimizers.SGD(rate, momentum=0.9),
                       (0.001, 0.003, 0.01, 0.03, 0.1)),
    "RMSProp": (lambda rate, steps: keras.optimizers.RMSprop(rate),
                (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)),
    "AdamW": (lambda rate, steps: keras.optimizers.AdamW(rate, weight_decay=WEIGHT_DECAY),
              (3e-4, 1e-3, 3e-3, 1e-2, 3e-2)),
    "SGD + momentum + cosine decay": (lambda rate, steps: keras.optimizers.SGD(
        warmup_cosine(rate, steps, WARMUP_EPOCHS * STEPS_PER_EPOCH), momentum=0.9),
        (0.003, 0.01, 0.03, 0.1, 0.3)),
}
sweep_steps = SWEEP_EPOCHS * STEPS_PER_EPOCH
grid = [(strategy, rate) for strategy, (_, rates) in STRATEGIES.items() for rate in rates]
if QUICK:
    grid = [(s, rates[2]) for s, (_, rates) in STRATEGIES.items()] + [
        ("SGD", STRATEGIES["SGD"][1][4])]
sweep = {}


def train_at(strategy, rate):
    make_optimizer, _ = STRATEGIES[strategy]
    sweep[strategy, rate] = run = fit(cnn(), make_optimizer(rate, sweep_steps), SWEEP_EPOCHS)
    run.val_accuracy = accuracy(run.model, TRAIN.x_val, TRAIN.y_val)
    run.diverged = (any(f["code"] == "nan" for f in run.doctor.findings)
                    or not run.loss[-1] < 0.9 * math.log(DATA.outputs))  # no better than chance
    return run


for strategy, rate in track(grid, description="learning rates", disable=QUICK):
    train_at(strategy, rate)

best_rate = {strategy: max((rate for s, rate in sweep if s == strategy),
                           key=lambda rate: sweep[strategy, rate].val_accuracy)
             for strategy in STRATEGIES}


def at(strategy, rate):
    """The run at ``rate`` if the grid has it (a float compared to a few digits)."""
    return next((run for (s, r), run in sweep.items() if s == strategy and math.isclose(r, rate)),
                None)


# the claim on a 10x wrong rate needs each strategy at 10x its best rate: where the grid stops
# short of it (a best rate at the top of the grid), the full run trains that one too
if not QUICK:
    for strategy in STRATEGIES:
        if at(strategy, 10 * best_rate[strategy]) is None:
            train_at(strategy, 10 * best_rate[strategy])


def shown_run(run) -> str:
    return "not in the grid" if run is None else ("diverged" if run.diverged
                                                  else f"{run.accuracy:.1%}")


rows = [[strategy, f"{best_rate[strategy]:g}", f"{sweep[strategy, best_rate[strategy]].accuracy:.1%}",
         shown_run(at(strategy, best_rate[strategy] / 10)),
         shown_run(at(strategy, best_rate[strategy] * 10))] for strategy in STRATEGIES]
table(f"Each strategy at its best rate (by validation accuracy) and a factor of 10 either side: "
      f"test accuracy after {SWEEP_EPOCHS} epochs",
      ["strategy", "best rate", "at the best rate", "rate / 10", "rate x 10"], rows)

# %%
fig, axes = figure(1, 2, width=6.0, height=4.4)
for (strategy, _), color in zip(STRATEGIES.items(), ("C0", "C1", "C4", "C2", "C3")):
    rates = sorted(rate for s, rate in sweep if s == strategy)
    runs = [sweep[strategy, rate] for rate in rates]
    axes[0, 0].plot(rates, [100 * run.val_accuracy for run in runs], "o-", color=color,
                    label=strategy)
    best = sweep[strategy, best_rate[strategy]]
    axes[0, 0].plot([best_rate[strategy]], [100 * best.val_accuracy], "*", color=color, ms=14)
    final = [run.loss[-1] if np.isfinite(run.loss[-1]) else np.nan for run in runs]
    axes[0, 1].plot(rates, final, "o-", color=color, label=strategy)
    for rate, run in zip(rates, runs):
        if run.diverged:
            axes[0, 1].plot([rate], [math.log(DATA.outputs)], "x", color=color, ms=10, mew=2)
ax = axes[0, 0]
ax.axhline(100 / DATA.outputs, color="0.5", ls=":", label="chance")
ax.set_xscale("log")
ax.set_xlabel("learning rate (peak rate for the cosine schedule)")
ax.set_ylabel("validation accuracy (%)")
ax.set_title("Isolation plot: the rate, everything else fixed (star: best)")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
ax = axes[0, 1]
ax.axhline(math.log(DATA.outputs), color="0.5", ls=":", label="chance (x: diverged)")
ax.set_xscale("log")
ax.set_yscale("log")
plain_log_axis(ax, grid=True)
ax.set_xlabel("learning rate")
ax.set_ylabel("training loss, last epoch")
ax.set_title("The training loss at each rate")
ax.legend(fontsize=8)
fig.tight_layout()
ch.savefig(fig, "lr_isolation")

ceiling = {strategy: sweep[strategy, best_rate[strategy]].accuracy for strategy in STRATEGIES}
single_run_noise = 2 * math.sqrt(2) * np.std(baseline, ddof=1)  # two single runs, section 4's std
leader = max(ceiling, key=ceiling.get)
ch.claim("sgd_cosine_ceiling",
         "best test accuracy: " + ", ".join(f"{s} {a:.1%}" for s, a in ceiling.items())
         + f"; the noise between two single runs is about {single_run_noise:.1%}",
         None if QUICK else bool(ceiling["SGD + momentum + cosine decay"]
                                 >= ceiling[leader] - single_run_noise))
tenfold = [(s, at(s, best_rate[s] * 10)) for s in STRATEGIES]
tenfold = [(s, run) for s, run in tenfold if run is not None]
diverged = [s for s, run in tenfold if run.diverged]
losses = [ceiling[s] - run.accuracy for s, run in tenfold if not run.diverged]
ch.claim("wrong_rate_diverges",
         f"at 10x its best rate, {len(diverged)} of the {len(tenfold)} strategies with that rate "
         f"in the grid diverged (NaN, or a loss no better than chance)"
         + (f"; the others lost {100 * min(losses):.1f} to {100 * max(losses):.1f} points of "
            f"accuracy" if losses else ""),
         None if QUICK or not tenfold else bool(2 * len(diverged) >= len(tenfold)),
         reason="" if QUICK else "no strategy's grid reaches 10x its best rate")

# %% [markdown]
# Batch normalization is part of why a rate ten times too high does not always end in NaN here:
# it makes each layer's output independent of the scale of its weights, so an oversized step
# makes the weights larger rather than the activations (chapter 2 measured the wider range of
# rates it allows). Without it the same factor of ten is far more often fatal, as the next
# section shows.
#
# **To remember, from our full run: with batch normalization a 10x wrong rate rarely diverged
# (one strategy of five), but it could still cost most of the accuracy; and the documents'
# "highest ceiling" for SGD + momentum + cosine decay did not show on MNIST-1D, where plain SGD
# at a well-chosen rate did best. Rank optimizers on your own problem, at tuned rates.**
#
# ## 6. Why deep networks fail to train: the gradient, layer by layer
#
# Before ReLU, careful initialization and normalization, deep networks did not train. The
# reason shows in the gradient at initialization. Backpropagation multiplies the gradient, layer
# after layer, by each layer's weights and by the slope of its activation. A sigmoid's slope is
# at most 0.25, and nearly 0 where it saturates, so the gradient shrinks on its way down and the
# first layers hardly learn (vanishing gradients; chapter 2 showed the saturated activations).
# ReLU's slope is 1 where it is active, so the weights decide: drawn from N(0, 1), each layer
# multiplies the signal's size by about `sqrt(fan_in / 2)` and the gradient explodes. Glorot
# initialization (variance 2 / (fan_in + fan_out), for tanh and sigmoid) and He initialization
# (variance 2 / fan_in, for ReLU) choose the variance that keeps the size of the signal, and of
# the gradient, the same from layer to layer.
#
# Below: the norm of each Dense layer's kernel gradient at initialization, for a 16-layer MLP of
# width 64 on one batch of 256 examples.

# %%
from course.toolkit import value_and_gradients

DEPTH, WIDTH = 16, 64
NAIVE = keras.initializers.RandomNormal(stddev=1.0)


def deep_mlp(activation, initializer, seed=0, data=TRAIN):
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((data.features,))]
    layers += [keras.layers.Dense(WIDTH, activation=activation, kernel_initializer=initializer)
               for _ in range(DEPTH)]
    return keras.Sequential(layers + [keras.layers.Dense(data.outputs, activation="softmax")])


def kernel_gradient_norms(model, x, y) -> np.ndarray:
    _, grads = value_and_gradients(lambda: keras.ops.mean(keras.losses.sparse_categorical_crossentropy(
        y, model(x, training=True))), [layer.kernel for layer in model.layers])
    return np.array([float(np.linalg.norm(g)) for g in grads])


INITIALIZATIONS = {"sigmoid, N(0, 1)": ("sigmoid", NAIVE), "sigmoid, Glorot": ("sigmoid", "glorot_uniform"),
                   "ReLU, N(0, 1)": ("relu", NAIVE), "ReLU, He": ("relu", "he_normal")}
norms = {name: kernel_gradient_norms(deep_mlp(*options), TRAIN.x[:256], TRAIN.y[:256])
         for name, options in INITIALIZATIONS.items()}
table(f"Gradient norm of each layer's kernel at initialization ({DEPTH} hidden layers of {WIDTH})",
      ["network", "layer 1", f"layer {DEPTH // 2}", f"layer {DEPTH + 1} (output)",
       "layer 1 / output"],
      [[name, f"{n[0]:.2e}", f"{n[DEPTH // 2 - 1]:.2e}", f"{n[-1]:.2e}", f"{n[0] / n[-1]:.1e}"]
       for name, n in norms.items()])

# %% [markdown]
# **Clipping an exploding run.** Even a well-initialized deep network explodes at a rate that is
# too high for it: the first large step grows the weights, which grows the next gradient, and a
# few steps later the loss is NaN, or every ReLU has switched off for good and the loss sits at
# chance level, never to move again. Global-norm clipping caps the length of the gradient (all
# layers together, so its direction is kept) before the optimizer sees it: a step can then be
# at most the rate times the clipping norm. Below, the He-initialized ReLU network trained with
# plain SGD at a rate of 0.5, once as it is and once with `global_clipnorm=1` (the clipping the
# recipe's `AccumulateGradients` applies to each averaged gradient). A warmup (chapter 7) attacks
# the same first steps from the other side.

# %%
EXPLODING_RATE = 0.5
exploding = fit(deep_mlp("relu", "he_normal"), keras.optimizers.SGD(EXPLODING_RATE), GALLERY_EPOCHS)
clipped = fit(deep_mlp("relu", "he_normal"), keras.optimizers.SGD(EXPLODING_RATE, global_clipnorm=1.0),
              GALLERY_EPOCHS)
for name, run in (("no clipping", exploding), ("global_clipnorm=1", clipped)):
    batches = np.asarray(run.doctor.losses)
    print(f"{name}: {len(batches)} batches, last loss {batches[-1]:.4g}, test accuracy "
          f"{run.accuracy:.1%}; the doctor: {findings(run.doctor)}")

fig, axes = figure(1, 2, width=6.0, height=4.2)
ax = axes[0, 0]
for (name, n), color in zip(norms.items(), ("C1", "C0", "C3", "C2")):
    ax.plot(np.arange(1, len(n) + 1), n, "o-", ms=3, color=color, label=name)
ax.set_yscale("log")
ax.set_xlabel("layer (1 = next to the input)")
ax.set_ylabel("gradient norm of the layer's kernel")
ax.set_title(f"At initialization, {DEPTH}-layer MLP")
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
ax = axes[0, 1]
for (name, run), color in ((("no clipping", exploding), "C3"), (("global_clipnorm=1", clipped), "C2")):
    batches = np.asarray(run.doctor.losses)
    ax.plot(np.arange(len(batches)), np.where(np.isfinite(batches), batches, np.nan), color=color,
            lw=1.2, label=f"{name}: {findings(run.doctor)}")
    if not np.isfinite(batches[-1]):
        ax.axvline(len(batches) - 1, color=color, ls="--", lw=1)
ax.set_yscale("log")
plain_log_axis(ax, grid=True)
ax.set_xlabel("batch")
ax.set_ylabel("batch loss")
ax.set_title(f"ReLU + He, plain SGD at rate {EXPLODING_RATE:g}")
ax.legend(fontsize=7)
fig.tight_layout()
ch.savefig(fig, "gradient_norms")

# %% [markdown]
# ## 7. A gallery of broken runs, read by the doctor
#
# Every run in this chapter had a `LossCurveDoctor` watching it. Here are two of them, and four
# trained to fail: a rate a thousand times too low, a rate far too high, section 6's deep ReLU
# network with weights drawn from N(0, 1), and a network without batch normalization trained on
# 100 examples, validated on the held-out set. Each
# panel's title is what the doctor said (its first finding in its own words, and the codes of
# any others); the dashed lines mark where it found them.

# %%
import textwrap

from course.toolkit import loss_for

TINY = 100
too_low = fit(cnn(), keras.optimizers.SGD(1e-4), GALLERY_EPOCHS)
too_high = fit(cnn(), keras.optimizers.SGD(3.0), GALLERY_EPOCHS)
naive = fit(deep_mlp("relu", NAIVE), keras.optimizers.SGD(0.01), GALLERY_EPOCHS)
tiny = fit(cnn(normalization=False), keras.optimizers.Adam(3e-3), 3 * GALLERY_EPOCHS,
           batch_size=20, data=replace(TRAIN, x=TRAIN.x[:TINY], y=TRAIN.y[:TINY]))
GALLERY = {"the recipe (section 3)": recipe, "Keras's defaults (section 3)": careless,
           "a rate far too low: SGD at 1e-4": too_low, "a rate far too high: SGD at 3": too_high,
           f"{DEPTH} ReLU layers from N(0, 1), SGD at 0.01": naive,
           f"{TINY} training examples, no batch norm": tiny}


def diagnosis(doctor, width=52) -> str:
    """The doctor's first finding in its own words, and the codes of the others."""
    if not doctor.findings:
        return "no finding: the run looks healthy"
    first, others = doctor.findings[0], doctor.findings[1:]
    words = f"[{first['code']}] {first['message']}"
    lines = textwrap.wrap(words, width)
    text = "\n".join(lines[:3]) + (" ..." if len(lines) > 3 else "")
    if others:
        text += "\nalso: " + ", ".join(dict.fromkeys(f["code"] for f in others))
    return text


fig, axes = figure(2, 3, width=5.2, height=4.3)
for ax, (name, run) in zip(axes.ravel(), GALLERY.items()):
    losses = np.asarray(run.doctor.losses)
    per_epoch = max(len(losses) // len(run.loss), 1)
    finite = np.where(np.isfinite(losses), losses, np.nan)
    ax.plot(np.arange(len(losses)), finite, lw=0.8, color="C0", label="batch loss",
            marker="o" if len(losses) < 10 else None, ms=4)  # a run that died at once: its dots
    if not np.isfinite(losses).all():
        ax.plot(np.flatnonzero(~np.isfinite(losses)), np.full((~np.isfinite(losses)).sum(),
                np.nanmax(finite) if np.isfinite(finite).any() else 1.0), "x", color="C3",
                ms=8, label="NaN / inf")
    if run.val_loss is not None:
        ax.plot(per_epoch * np.arange(1, len(run.val_loss) + 1) - 1, run.val_loss, "o-", ms=3,
                color="C1", label="validation loss")
    for finding in run.doctor.findings:
        step = finding["step"] if finding["step"] is not None else per_epoch * (finding["epoch"] + 1) - 1
        ax.axvline(step, color="C3", ls="--", lw=1)
    ax.set_yscale("log")
    plain_log_axis(ax, grid=True)
    ax.set_xlabel("batch")
    ax.set_ylabel("loss")
    ax.set_title(f"{name}\n{diagnosis(run.doctor)}", fontsize=8, loc="left")
    ax.legend(fontsize=7, loc="lower left")
fig.suptitle("What the LossCurveDoctor said about each run", y=1.0)
fig.tight_layout()
ch.savefig(fig, "doctor_gallery")
for name, run in GALLERY.items():
    print(f"--- {name}\n{run.doctor.summary()}")

# %% [markdown]
# The doctor's rules are relative: a spike is four times the recent median, noise is a spread of
# half the mean. Relative rules work at any scale of loss, but not near zero: late in a good run,
# when the batch losses are around 0.01, a batch at 0.05 is five times the median and a window of
# such batches spreads by more than its mean, yet nothing is wrong (a nearly fit model's batch
# loss is a few hard examples). A first version of this doctor, without a floor, reported dozens
# of "spikes" in the last epochs of section 3's recipe, and with a floor of a tenth it still
# called the recipe's small micro-batches "noisy". So every level a rule compares with is at
# least `floor` (a fifth) of where the loss started: on MNIST-1D, starting near 2.3, a jump from
# 0.01 to 0.05 is measured against 0.46 and is nothing; a jump to 2 is still a spike. Read each
# finding with the curve anyway, and tune the thresholds (all constructor arguments) to your
# problem.
#
# ## 8. A checkpoint a killed run resumes from
#
# A long run will be interrupted: a pre-empted cloud machine, a power cut, a full disk. A
# checkpoint written after every epoch (`keras.callbacks.ModelCheckpoint` saves a `.keras` file:
# the architecture, the weights, and the optimizer with its state) lets the run continue where
# it stopped. Continuing *the same run* needs three things: the weights (with batch
# normalization's moving statistics), the optimizer's state (Adam's moments, the step count that
# drives the schedule and the bias correction, and `AccumulateGradients`' accumulators), and the
# same batches in the same order. Keras's own shuffling draws from a random generator that no
# checkpoint holds, so the batches below are drawn per epoch from `(seed, epoch)`.
#
# The demonstration: one run trains without interruption; a second, identical run is killed at
# the end of an epoch (an exception stands in for the power cut) right after its checkpoint was
# written; a new process would then load the checkpoint and continue with `initial_epoch`. A
# fourth run loads only the weights into a fresh optimizer, the common mistake. The runs use
# the recipe's one-update-per-batch form (as the ablations do); an `AccumulateGradients` is
# saved the same way, its accumulators and its inner optimizer's state with it.

# %%
import tensorflow as tf  # tf.data feeds model.fit on every Keras backend

from course.toolkit import BatchLosses, max_gap


def epoch_batches(data: Dataset, batch_size: int, first_epoch: int, epochs: int, seed: int = 0):
    """The batches of epochs ``first_epoch`` to ``epochs - 1``, each epoch a permutation drawn
    from ``(seed, epoch)`` (its incomplete last batch dropped): a run resumed at any epoch sees
    exactly the batches the uninterrupted run saw there."""
    kept = len(data.x) // batch_size * batch_size
    order = np.concatenate([np.random.default_rng([seed, epoch]).permutation(len(data.x))[:kept]
                            for epoch in range(first_epoch, epochs)])
    return tf.data.Dataset.from_tensor_slices((data.x[order], data.y[order])).batch(batch_size)


class SimulatedCrash(Exception):
    """Stands for whatever ends a process without warning."""


class CrashAfterEpoch(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch + 1 == self.epoch:
            raise SimulatedCrash(f"the process died at the end of epoch {self.epoch}")


def recipe_model():
    model = cnn()
    model.compile(optimizer=recipe_optimizer(RESUME_EPOCHS), loss=loss_for(TRAIN))
    return model


def train_epochs(model, first_epoch=0, callbacks=()) -> np.ndarray:
    """Train ``model`` from ``first_epoch`` to RESUME_EPOCHS on the recipe's batches; each batch's
    loss, up to a crash if one comes."""
    recorder = BatchLosses()
    try:
        # shuffle=False: the order is the dataset's, drawn per epoch
        model.fit(epoch_batches(TRAINING_ONLY, BATCH, first_epoch, RESUME_EPOCHS),
                  epochs=RESUME_EPOCHS, initial_epoch=first_epoch, shuffle=False,
                  steps_per_epoch=len(TRAIN.x) // BATCH, verbose=0,
                  callbacks=[*callbacks, recorder])
    except SimulatedCrash as crash:
        print(f"crash: {crash}")
    return np.asarray(recorder.losses)


CHECKPOINT = ch.out / "recipe_checkpoint.keras"
ch.out.mkdir(parents=True, exist_ok=True)
uninterrupted = recipe_model()
resume_curves = {"uninterrupted": train_epochs(uninterrupted)}
resume_curves["killed"] = train_epochs(recipe_model(), callbacks=[
    keras.callbacks.ModelCheckpoint(CHECKPOINT), CrashAfterEpoch(KILLED_AFTER)])
resumed = keras.models.load_model(CHECKPOINT)  # what a new process does
weights_only = recipe_model()
weights_only.set_weights(resumed.get_weights())  # the checkpoint's weights, not its optimizer
resume_curves["resumed from the checkpoint"] = train_epochs(resumed, first_epoch=KILLED_AFTER)
resume_curves["weights only, a fresh optimizer"] = train_epochs(weights_only,
                                                                first_epoch=KILLED_AFTER)
table(f"After {RESUME_EPOCHS} epochs (the killed run stopped after {KILLED_AFTER})",
      ["run", "max |w - w(uninterrupted)|", "test accuracy"],
      [[name, f"{max_gap(model.get_weights(), uninterrupted.get_weights()):.1e}",
        f"{accuracy(model):.1%}"]
       for name, model in (("uninterrupted", uninterrupted), ("resumed from the checkpoint", resumed),
                           ("weights only, a fresh optimizer", weights_only))])

# %%
steps_per_epoch = len(TRAIN.x) // BATCH
fig, axes = figure(1, 1, width=8.0, height=4.2)
ax = axes[0, 0]
styles = {"uninterrupted": ("0.6", "-", 3.0), "killed": ("C3", "-", 1.2),
          "resumed from the checkpoint": ("C2", "--", 1.5),
          "weights only, a fresh optimizer": ("C1", "-", 1.0)}
for name, losses in resume_curves.items():
    start = 0 if name in ("uninterrupted", "killed") else KILLED_AFTER * steps_per_epoch
    color, style, width = styles[name]
    ax.plot(start + np.arange(len(losses)), losses, color=color, ls=style, lw=width, label=name)
ax.axvline(KILLED_AFTER * steps_per_epoch, color="k", lw=1, ls=":", label="crash and checkpoint")
ax.set_yscale("log")
plain_log_axis(ax, grid=True)
ax.set_xlabel("batch")
ax.set_ylabel("batch loss")
ax.set_title("Killed, then resumed: the resumed run retraces the uninterrupted one")
ax.legend(fontsize=8)
fig.tight_layout()
ch.savefig(fig, "checkpoint_resume")

# %% [markdown]
# The resumed run lands on the uninterrupted run's weights (up to float32 rounding, at most);
# the weights alone do not: the fresh optimizer starts its warmup again from a rate of zero,
# with Adam's moments at zero, and the run takes a different path from there. Keras's
# `BackupAndRestore` callback automates the same thing (it also remembers the epoch); the
# batches' order is still yours to make reproducible.
#
# ## 9. Mixed precision
#
# Under `mixed_float16` the recipe changes in one place: `compile()` wraps the optimizer, here
# `AccumulateGradients`, in a `LossScaleOptimizer`. The loss is multiplied by the loss scale
# before the gradients are taken and the gradients divided by it afterwards, so the small ones
# survive float16; a step whose scaled gradients overflow is skipped. The accumulators, like the
# weights and the moments, stay float32. Batch normalization computes its statistics in
# float32, and the softmax is kept in float32 (the output layer's dtype). One epoch of the recipe
# under each policy, from the same weights on the same batches:

# %%
from course import mixed_precision as mp

with mp.policy("mixed_float16"):
    mixed_model = cnn()
mixed = fit(mixed_model, accumulating_recipe_optimizer(RECIPE_EPOCHS), 1, batch_size=MICRO)
described = mp.describe(mixed_model)
rows = [{"policy": "float32 (section 3's run)", "compute dtype": "float32",
         "optimizer": type(recipe.model.optimizer).__name__,
         "training loss, epoch 1": f"{recipe.loss[0]:.4f}"},
        {"policy": "mixed_float16", "compute dtype": described["compute dtype"],
         "optimizer": f"{described['optimizer']}({described.get('inner optimizer', '')})",
         "loss scale": described.get("loss scale", ""),
         "training loss, epoch 1": f"{mixed.loss[0]:.4f}"}]
mp.print_table(rows, title="The recipe's first epoch under each policy")
inner = getattr(mixed_model.optimizer, "inner_optimizer", mixed_model.optimizer)
state = mixed_model.weights + inner.variables
print("dtypes of the weights and the optimizer's state under mixed_float16:",
      ", ".join(f"{n} {dtype}" for dtype, n in zip(*np.unique([v.dtype for v in state],
                                                             return_counts=True))))

# %% [markdown]
# On a GPU with Tensor Cores the float16 products are also faster and the activations half the
# size; on a CPU float16 is emulated, so the comparison runs only where Keras's backend sees a GPU.

# %%
mp.compare_on_gpu(
    lambda x: mp.wide_classifier(AccumulateGradients(keras.optimizers.AdamW(1e-3), steps=2)),
    title="A 4096-wide MLP trained through AccumulateGradients(AdamW)", epochs=2)

# %% [markdown]
# ## Summary
#
# - The recipe: standardized inputs, batch normalization, mini-batches, AdamW with a warmup and
#   a cosine decay, gradients clipped to a global norm, accumulation where a batch does not fit,
#   early stopping on held-out data, checkpoints, mixed precision on a GPU. On MNIST-1D a small
#   CNN trained this way is held against the paper's table above, and against a larger network
#   trained with Keras's defaults.
# - Ablate one ingredient at a time, with several seeds, and call a difference real only when it
#   exceeds the seed noise. Several ingredients do not matter on a given problem; the learning
#   rate always does.
# - An isolation plot shows each strategy at each rate; a factor of ten on the rate moves a run
#   from training well to barely training, or to diverging, and batch normalization widens the
#   range that works.
# - Deep networks fail when the gradient shrinks or grows layer by layer: sigmoid units vanish,
#   ReLU with a naive initialization explodes, ReLU with He initialization holds steady; clipping
#   caps the damage of one huge gradient.
# - The `LossCurveDoctor` names what a loss curve shows (NaN, spikes, noise, a flat curve,
#   overfitting, a rate still too high); its rules are relative to the loss's own level, with a
#   floor at a fifth of where it started, so that a good run's small jumps near zero stay quiet.
# - A checkpoint must hold the optimizer's state and the data order must be reproducible, or a
#   resumed run is a different run.
# - Under mixed precision the recipe is unchanged but for the loss scale around the optimizer.

# %%
print(f"\nDone in {(time.perf_counter() - STARTED) / 60:.1f} minutes (expected about "
      f"{expected / 60:.0f}). Plots are in {ch.out}")
