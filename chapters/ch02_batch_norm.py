# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Chapter 2 — Batch normalization: rescaling inside the network
#
# Chapter 1 scaled the *inputs*. A deep network has many more inputs than that: every layer's
# input is the previous layer's output, and those outputs drift as the weights before them
# change. A sigmoid or tanh layer whose inputs drift far from 0 saturates: its outputs pile up
# at the ends of their range and its gradients vanish. Batch normalization standardizes each
# hidden unit over the current mini-batch, then lets the network rescale and shift it with two
# learned numbers, so every layer sees inputs on a steady scale.
#
# This chapter:
#
# 1. writes the layer down, in training and in inference mode, and where Keras's form differs
#    from the usual textbook one;
# 2. runs the chapter's `BatchNormalization` next to `keras.layers.BatchNormalization`;
# 3. looks at the activations and gradients of a deep sigmoid network with and without it,
#    sweeps the learning rate (the documents: "10x higher learning rates"), trains with batch
#    sizes 2 to 32 against GroupNormalization and LayerNormalization (the documents: unstable
#    "below 8"), and shows the classic bug of predicting in training mode;
# 4. runs it under mixed precision, where its statistics must stay in float32.
#
# Run it as a script (`python -m chapters.ch02_batch_norm [--quick] [--out DIR] [--mine]
# [--dataset NAME]`) or open it as a notebook with jupytext.

# %%
from course.chapter import setup

ch = setup(2, "Batch normalization")

# %% [markdown]
# ### Which layer this run uses
#
# It comes from `solutions/ch02_batch_norm.py`, or with `--mine` from your
# `exercises/ch02_batch_norm.py`. If that is still a stub, its reference stand-in,
# `keras.layers.BatchNormalization`, is used instead, with a note.

# %%
import numpy as np


def calls_in_both_modes(cls) -> None:
    """The chapter trains (batch statistics) and predicts (moving averages) with the layer: a stub
    raises NotImplementedError in either mode."""
    layer = cls()
    layer(np.ones((4, 3), "float32"), training=True)
    layer(np.ones((4, 3), "float32"), training=False)


BatchNormalization = ch.pick("BatchNormalization", probe=calls_in_both_modes)

# %% [markdown]
# ## 1. The mechanic
#
# For each channel (a unit of a Dense layer, a feature map of a convolution), over the `N`
# values it takes in the batch (all positions, for images):
#
# ```
# mu  = sum(x) / N                  var = sum((x - mu)^2) / N      (biased: divide by N)
# y   = gamma * (x - mu) / sqrt(var + epsilon) + beta
# ```
#
# `gamma` and `beta` are trained like any weight. They let the network undo the normalization
# where that is better (`gamma = sqrt(var + epsilon)`, `beta = mu` gives back `x`), so nothing
# is lost in expressive power. `epsilon` (Keras: 1e-3) sits *inside* the square root.
#
# **Training and inference differ.** In training the batch's own `mu` and `var` are used, and
# a running average of them is kept:
#
# ```
# moving_mean     = moving_mean     * momentum + mu  * (1 - momentum)     (Keras: momentum 0.99)
# moving_variance = moving_variance * momentum + var * (1 - momentum)
# ```
#
# At inference (`training=False`, which `predict`, `evaluate` and a plain `model(x)` use) the
# moving averages replace the batch statistics, so a prediction does not depend on which other
# examples share its batch. Keras's `momentum` weights the *old* value; PyTorch's `momentum=0.1`
# weights the *new* one and means the same as Keras's 0.9. A layer frozen with
# `trainable = False` runs in inference mode even when called with `training=True` (that is how
# fine-tuning keeps pretrained statistics).
#
# **Why it helps.** The source documents explain it by *internal covariate shift*: each layer's
# input distribution moves as earlier weights change, so later layers chase a moving target.
# Later work found the shift itself matters less than what normalization does to the
# optimization: gradients that neither vanish nor explode through depth, a loss surface on which
# larger steps are safe, and less dependence on the initial weights. Section 3 measures those
# effects directly. The price: the output for one example depends on the rest of its batch,
# which is noisy when batches are small.

# %%
import keras
from keras import layers

from course.toolkit import load_dataset, steps_per_call

QUICK = ch.quick
if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    # the experiments compile dozens of small models on purpose; TensorFlow's retracing
    # warnings about that are noise here
    tf.get_logger().setLevel("ERROR")
# features standardized with the training statistics (chapter 1); the test split is held out
DATA = load_dataset(ch.dataset, default="course_digits", cap=1000 if QUICK else 20000,
                    val_cap=1000 if QUICK else 20000, validation=True, classification_only=True)
print(f"{DATA.name}: {len(DATA.x)} training and {len(DATA.x_val)} test examples, "
      f"{DATA.features} features, {DATA.outputs} classes")

# %% [markdown]
# ## 2. The layer next to Keras's
#
# The same input and the same `gamma`, `beta` and starting statistics for both layers, with a
# low momentum (0.7) and a large epsilon (0.3) so that a wrong placement of either would show.

# %%
from course import mixed_precision as mp
from course.toolkit import max_gap, value_and_gradients


def pair(**kwargs):
    ours, theirs = BatchNormalization(**kwargs), layers.BatchNormalization(**kwargs)
    return ours, theirs


rng = np.random.default_rng(0)
rows = []
for label, shape, axis in (("Dense activations (32, 16), axis=-1", (32, 16), -1),
                           ("images NHWC (8, 5, 5, 6), axis=-1", (8, 5, 5, 6), -1),
                           ("images NCHW (8, 6, 5, 5), axis=1", (8, 6, 5, 5), 1)):
    ours, theirs = pair(axis=axis, momentum=0.7, epsilon=0.3)
    channels = shape[axis]
    gamma, beta = rng.uniform(0.5, 2, channels), rng.normal(size=channels)
    batches = [rng.normal(2, 3, shape).astype("float32") for _ in range(5)]
    weights = rng.normal(size=shape).astype("float32")
    results = []
    for layer in (ours, theirs):
        layer.build(shape)
        layer.gamma.assign(gamma)
        layer.beta.assign(beta)
        with keras.StatelessScope():  # the output alone: the statistics move in the next call
            first = layer(batches[0], training=True)
        # the first batch as a variable: the gradient with respect to the input is compared too
        first_batch = keras.Variable(batches[0])

        def loss(layer=layer, first_batch=first_batch):
            # keras.ops.multiply, not `*`: a PyTorch tensor times a NumPy array goes through NumPy
            return keras.ops.sum(keras.ops.multiply(
                layer(keras.ops.convert_to_tensor(first_batch), training=True), weights))

        _, grads = value_and_gradients(loss, [first_batch, layer.gamma, layer.beta])
        for x in batches[1:]:
            layer(x, training=True)
        results.append({"training output": first, "gradients": np.concatenate(
            [np.ravel(g) for g in grads]),
            "moving statistics after 5 steps": np.concatenate([layer.moving_mean, layer.moving_variance]),
            "inference output": layer(batches[0], training=False)})
    rows.append({"input": label, **{k: f"{max_gap(results[0][k], results[1][k]):.1e}"
                                    for k in results[0]}})
mp.print_table(rows, title="max |ours - keras.layers.BatchNormalization|")

# %% [markdown]
# ## 3. Experiments
#
# ### 3a. Activations and gradients in a deep sigmoid network
#
# Six Dense layers of 64 sigmoid units on the digit images, trained for a few epochs with plain
# SGD, once as they are and once with batch normalization between each Dense layer and its
# sigmoid (the Dense layers then need no bias: `beta` replaces it). Left: the distribution of
# each layer's outputs on the test images after training. Right: the size of the gradient that
# reaches each layer's weights at the start of training.

# %%
import matplotlib.pyplot as plt
import matplotlib.ticker

from course.plotting import figure

DEPTH, WIDTH = 6, 64
EPOCHS = 2 if QUICK else 8


def batch_norm():
    """The chapter's layer with momentum 0.9 rather than Keras's 0.99: these runs take a few
    hundred steps, and a 0.99 average would still remember its starting values (0 and 1) at the
    end of them."""
    return BatchNormalization(momentum=0.9)


def deep_net(normalization=None, activation: str = "sigmoid", depth: int = DEPTH) -> keras.Model:
    """``depth`` x [Dense -> ``normalization()`` (if given) -> activation] -> softmax, from the
    same starting weights each time.

    Not the toolkit's ``dense_model``: a Dense layer before a normalization has no bias (the
    normalization's ``beta`` replaces it), and every activation is a layer of its own, which
    ``layer_outputs`` reads."""
    keras.utils.set_random_seed(0)
    stack = [keras.Input((DATA.features,))]
    for _ in range(depth):
        stack.append(layers.Dense(WIDTH, use_bias=normalization is None))
        if normalization is not None:
            stack.append(normalization())
        stack.append(layers.Activation(activation))
    stack.append(layers.Dense(DATA.outputs, activation="softmax"))
    return keras.Sequential(stack)


def compiled(model, optimizer, batch_size: int = 32, examples: int = len(DATA.x)):
    """``model`` compiled with accuracy as its metric and each epoch as one call.

    Not the toolkit's ``train``: the chapter trains dozens of small models, and one call per
    epoch (``steps_per_execution``) instead of one per batch keeps the quick run short."""
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  steps_per_execution=steps_per_call(int(np.ceil(examples / batch_size))))
    return model


def layer_outputs(model, x):
    """The output of every activation layer, in order."""
    probe = keras.Model(model.inputs[0],
                        [l.output for l in model.layers if isinstance(l, layers.Activation)])
    return [keras.ops.convert_to_numpy(a) for a in probe(x, training=False)]


def kernel_gradient_norms(model, x, y):
    kernels = [l.kernel for l in model.layers if isinstance(l, layers.Dense)][:-1]
    _, grads = value_and_gradients(
        lambda: keras.losses.SparseCategoricalCrossentropy()(y, model(x, training=True)), kernels)
    return [float(np.linalg.norm(g)) for g in grads]


nets = {}
for normalize in (False, True):
    model = compiled(deep_net(batch_norm if normalize else None), keras.optimizers.SGD(0.5))
    gradients = kernel_gradient_norms(model, DATA.x[:256], DATA.y[:256])
    history = model.fit(DATA.x, DATA.y, batch_size=32, epochs=EPOCHS, verbose=0)
    nets[normalize] = {"model": model, "gradients": gradients,
                       "activations": layer_outputs(model, DATA.x_val),
                       "accuracy": model.evaluate(DATA.x_val, DATA.y_val, verbose=0)[1],
                       "loss": history.history["loss"]}

fig = plt.figure(figsize=(13, 8), layout="constrained")
grid = fig.add_gridspec(DEPTH, 3, width_ratios=(1, 1, 1.3))
for column, normalize in enumerate((False, True)):
    for i, a in enumerate(nets[normalize]["activations"]):
        ax = fig.add_subplot(grid[i, column])
        ax.hist(a.ravel(), bins=np.linspace(0, 1, 51), color="tab:red" if not normalize else "tab:blue")
        spread = float(np.mean(a.std(axis=0)))  # how much a unit's output varies between images
        ax.set_yticks([])
        ax.set_xlim(0, 1)
        ax.set_ylabel(f"layer {i + 1}", fontsize=8)
        ax.text(0.99, 0.92, f"a unit varies across images by {spread:.3f} (std)",
                transform=ax.transAxes, ha="right", va="top", fontsize=7,
                bbox=dict(facecolor="white", alpha=0.85, edgecolor="none"))
        if i == 0:
            ax.set_title(("with" if normalize else "without") + " BatchNormalization, "
                         f"test accuracy {nets[normalize]['accuracy']:.0%}", fontsize=10)
        if i < DEPTH - 1:
            ax.set_xticks([])
        else:
            ax.set_xlabel("sigmoid output")
ax = fig.add_subplot(grid[:, 2])
for normalize, colour in ((False, "tab:red"), (True, "tab:blue")):
    ax.plot(np.arange(1, DEPTH + 1), nets[normalize]["gradients"], "o-", color=colour,
            label=("with" if normalize else "without") + " BatchNormalization")
ax.set_yscale("log")
ax.set_xlabel("layer")
ax.set_ylabel("norm of the loss gradient w.r.t. the layer's kernel (at start)")
ax.set_title("Gradients reaching each layer", fontsize=10)
ax.grid(alpha=0.3, which="both")
ax.legend(fontsize=8)
fig.suptitle(f"A {DEPTH}-layer sigmoid network after {EPOCHS} epochs of SGD(0.5) on {DATA.name}")
ch.savefig(fig, "activations")

plain_grad, bn_grad = nets[False]["gradients"], nets[True]["gradients"]
print(f"gradient norm, layer 1 / layer {DEPTH}: without BN {plain_grad[0] / plain_grad[-1]:.2g}, "
      f"with BN {bn_grad[0] / bn_grad[-1]:.2g}")

# %% [markdown]
# Without normalization the first layer's gradient is a small fraction of the last layer's (the
# ratio printed above): each sigmoid multiplies the gradient by at most 0.25 on the way down, so
# five of them can shrink it to 0.25^5 = 1/1024 of its size. The deep layers' outputs barely
# differ from image to image (the std in each panel): every unit sits near one value whatever
# the digit, so the network has nothing to work with. With batch normalization every layer's
# units spread over the sigmoid's range and the gradient reaches the first layer much closer
# to the size it has at the last.
#
# ### 3b. How large a learning rate?
#
# The documents: batch normalization "allows dramatically higher learning rates", "10x higher".
# A sweep of rates for a 4-layer tanh network (which plain SGD *can* train, so the rates are
# comparable) and, in the full run, the 4-layer sigmoid one, with and without batch
# normalization. For each: the test accuracy after the same number of epochs.

# %%
RATES = (0.3, 3.0) if QUICK else tuple(np.round(np.geomspace(0.03, 30, 10), 3))
ACTIVATIONS = ("tanh",) if QUICK else ("tanh", "sigmoid")
SWEEP_EPOCHS = 2 if QUICK else 5
sweep = {}
for activation in ACTIVATIONS:
    for normalize in (False, True):
        accuracies, losses = [], []
        for rate in RATES:
            model = compiled(deep_net(batch_norm if normalize else None, activation, depth=4),
                             keras.optimizers.SGD(rate))
            history = model.fit(DATA.x, DATA.y, batch_size=32, epochs=SWEEP_EPOCHS, verbose=0)
            loss = history.history["loss"][-1]
            accuracies.append(model.evaluate(DATA.x_val, DATA.y_val, verbose=0)[1]
                              if np.isfinite(loss) else 0.0)
            losses.append(loss if np.isfinite(loss) else np.nan)
        sweep[activation, normalize] = {"accuracy": np.array(accuracies), "loss": np.array(losses)}

GOOD = 0.9  # "trains": at least 90% test accuracy after these epochs


def trainable_rates(result) -> np.ndarray:
    return np.array(RATES)[result["accuracy"] >= GOOD]


fig, axes = figure(1, 2, width=5.6, height=4.0, layout="constrained")
for (activation, normalize), result in sweep.items():
    style = dict(color="tab:blue" if normalize else "tab:red",
                 ls="-" if activation == "tanh" else "--", marker="o")
    name = f"{activation}, {'with' if normalize else 'without'} BN"
    axes[0, 0].plot(RATES, result["accuracy"], label=name, **style)
    axes[0, 1].plot(RATES, result["loss"], label=name, **style)
axes[0, 0].axhline(GOOD, color="k", lw=0.8, ls=":", label=f"{GOOD:.0%}")
axes[0, 1].set_yscale("log")
for ax, what in zip(axes[0], ("test accuracy", "final training loss")):
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(RATES, [f"{r:g}" for r in RATES], rotation=45 if len(RATES) > 5 else 0)
    ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.set_xlabel("SGD learning rate")
    ax.set_ylabel(what)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
fig.suptitle(f"4-layer networks, {SWEEP_EPOCHS} epochs of SGD at each rate (batch 32)")
ch.savefig(fig, "learning_rates")

rows, ratios = [], {}
for activation in ACTIVATIONS:
    plain, normalized = (trainable_rates(sweep[activation, n]) for n in (False, True))
    largest = [rates.max() if rates.size else None for rates in (plain, normalized)]
    ratios[activation] = largest
    rows.append({"network": f"4 x {activation}",
                 "largest rate with >= 90% accuracy, without BN": f"{largest[0]:g}" if largest[0] else "none",
                 "with BN": f"{largest[1]:g}" if largest[1] else "none",
                 "ratio": f"{largest[1] / largest[0]:.3g}x" if all(largest) else "-"})
mp.print_table(rows, title="How far batch normalization moves the usable learning rate")
tanh_plain, tanh_bn = ratios["tanh"]
measured = (f"4-layer tanh network: the largest rate reaching {GOOD:.0%} test accuracy is "
            f"{tanh_plain:g} without BN and {tanh_bn:g} with it" if tanh_plain and tanh_bn else
            "the tanh network did not reach the accuracy bar in this run")
if "sigmoid" in ratios:
    plain, normalized = ratios["sigmoid"]
    measured += (f"; 4-layer sigmoid: {'no rate' if not plain else f'up to {plain:g}'} without BN, "
                 f"{'no rate' if not normalized else f'up to {normalized:g}'} with it")
holds = None if QUICK or not (tanh_plain and tanh_bn) else bool(tanh_bn >= 10 * tanh_plain)
if QUICK:
    measured += " (quick run: two rates and two epochs are too few to judge)"
ch.claim("bn_higher_rates", measured, holds,
         reason="" if QUICK else "a network without it trained at none of the rates tried")

# %% [markdown]
# The ratio column is how far batch normalization moved the top of the usable range in this run
# (the quick run tries two rates, too few to tell a factor of a few from ten); above the largest
# usable rate the loss blows up, with or without it. The sigmoid rows (full run) ask a
# different question: whether plain SGD trains a 4-layer sigmoid network in a few epochs at any
# rate, and how wide a range of rates does once batch normalization keeps the units off the
# flat ends of the sigmoid. A single factor like "10x higher rates" cannot describe both; the
# claim check above weighs it against this run.
#
# **To remember: "10x higher rates" is not a constant. In our full run batch normalization
# raised a tanh network's largest good rate about 5x, and for a sigmoid network it made the
# difference between no good rate at all and a wide range of them.**
#
# ### 3c. Small batches
#
# Batch statistics from 2 or 4 examples are noisy, and the moving averages used at inference
# are averages of those noisy values. GroupNormalization (statistics over groups of units
# *within* one example) and LayerNormalization (over all units of one example) have no batch
# dimension in their statistics, so they work the same at any batch size. The same 3-layer ReLU
# network with each normalizer, trained with Adam for the same number of epochs at batch sizes
# 2, 4, 8 and 32 (2 and 8, without GroupNormalization, in the quick run), scored on the test
# set in inference mode.

# %%
# every model costs seconds of tracing whatever its size: the quick run keeps the two batch
# sizes the claim turns on, 2 (below the documents' threshold) and 8 (at it)
BATCH_SIZES = (2, 8) if QUICK else (2, 4, 8, 32)
SMALL_EPOCHS = 2 if QUICK else 5
small_x, small_y = (DATA.x[:256], DATA.y[:256]) if QUICK else (DATA.x, DATA.y)
NORMALIZERS = {"BatchNormalization": lambda: BatchNormalization(),
               "GroupNormalization(8 groups)": lambda: layers.GroupNormalization(groups=8),
               "LayerNormalization": lambda: layers.LayerNormalization()}
if QUICK:  # LayerNormalization alone stands for the batch-independent normalizers
    del NORMALIZERS["GroupNormalization(8 groups)"]


small = {name: [] for name in NORMALIZERS}
trained_bn, best_bn = None, -1.0
for batch_size in BATCH_SIZES:
    for name, make_norm in NORMALIZERS.items():
        model = compiled(deep_net(make_norm, "relu", depth=3), keras.optimizers.Adam(1e-3),
                         batch_size, examples=len(small_x))
        model.fit(small_x, small_y, batch_size=batch_size, epochs=SMALL_EPOCHS, verbose=0)
        small[name].append(model.evaluate(DATA.x_val, DATA.y_val, verbose=0)[1])
        if name == "BatchNormalization" and small[name][-1] > best_bn:
            trained_bn, best_bn = model, small[name][-1]  # 3d uses the best-trained one

fig, axes = figure(1, 1, width=6.5, height=4.2)
ax = axes[0, 0]
for name, accuracies in small.items():
    ax.plot(BATCH_SIZES, accuracies, "o-", lw=1.8, label=name)
ax.axvspan(1.5, 8, color="0.9", label="batch size below 8")
ax.set_xscale("log", base=2)
ax.set_xticks(BATCH_SIZES, [str(b) for b in BATCH_SIZES])
ax.set_xlabel("batch size")
ax.set_ylabel("test accuracy (inference mode)")
ax.set_title(f"3 x [Dense(64) -> normalization -> ReLU], Adam, {SMALL_EPOCHS} epochs on "
             f"{len(small_x)} examples", fontsize=9)
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
ch.savefig(fig, "small_batches")

rows = [{"batch size": b, **{name: f"{small[name][i]:.1%}" for name in NORMALIZERS}}
        for i, b in enumerate(BATCH_SIZES)]
mp.print_table(rows, title="Test accuracy by batch size")
alternatives = [name for name in NORMALIZERS if name != "BatchNormalization"]
gap = {b: max(small[name][i] for name in alternatives) - small["BatchNormalization"][i]
       for i, b in enumerate(BATCH_SIZES)}
ch.claim("bn_small_batches",
         f"BatchNormalization's test accuracy trails the better of {' / '.join(alternatives)} by "
         + ", ".join(f"{100 * gap[b]:.1f} points at batch {b}" for b in BATCH_SIZES),
         bool(gap[2] > 0.05 and gap[2] > gap[8] and (32 not in gap or gap[8] > gap[32] - 0.02)))

# %% [markdown]
# At batch size 2 every unit's batch variance comes from two numbers, and the moving averages
# the test set sees are averages of those; by batch size 8 each statistic rests on four times as
# many. The claim check gives this run's gap at each batch size. The threshold is not a sharp
# line (it depends on the data and the network): "avoid batch normalization below about 8
# examples per batch" is a rule of thumb that the gaps above either bear out or not.
#
# ### 3d. The forgotten inference mode
#
# PyTorch users know it as forgetting `model.eval()`; in Keras it is calling the model with
# `training=True` (or inside a custom loop that passes it) at test time. The best of 3c's
# batch-normalized networks predicts the test set in inference mode, then in training mode with
# the whole test set as one batch, and with batches of 32, 8 and 1. A training-mode call also
# *updates the moving statistics*, so the last row predicts in inference mode again, after those
# calls.

# %%
def accuracy(probabilities, labels) -> float:
    return float(np.mean(np.argmax(probabilities, axis=-1) == labels))


def predict_in_training_mode(model, x, batch_size):
    return np.concatenate([keras.ops.convert_to_numpy(model(x[i:i + batch_size], training=True))
                           for i in range(0, len(x), batch_size)])


# one eager call per example for the batches of 1: a subset keeps the quick run short
x_test, y_test = (DATA.x_val[:60], DATA.y_val[:60]) if QUICK else (DATA.x_val, DATA.y_val)
reference = keras.ops.convert_to_numpy(trained_bn(x_test, training=False))
bn_layer = next(l for l in trained_bn.layers if isinstance(l, BatchNormalization))
moving_before = np.asarray(bn_layer.moving_mean).copy()
modes = {"inference mode (right)": reference}
for batch_size in (len(x_test), 32, 8, 1):
    modes[f"training=True, batches of {batch_size}"] = predict_in_training_mode(trained_bn, x_test, batch_size)
modes["inference mode again, afterwards"] = keras.ops.convert_to_numpy(
    trained_bn(x_test, training=False))
drift = max_gap(bn_layer.moving_mean, moving_before)
rows = [{"how the test set is predicted": name, "accuracy": f"{accuracy(p, y_test):.1%}",
         "predictions that differ from inference mode":
         f"{np.mean(np.argmax(p, -1) != np.argmax(reference, -1)):.1%}"} for name, p in modes.items()]
mp.print_table(rows, title="One trained network, predicted several ways")
print(f"largest change of a moving mean caused by the training-mode calls: {drift:.3g}")

fig, axes = figure(1, 1, width=7.5, height=3.8)
ax = axes[0, 0]
names = list(modes)
values = [accuracy(modes[n], y_test) for n in names]
colours = ["tab:blue"] + ["tab:red"] * (len(names) - 2) + ["tab:purple"]
ax.barh(names[::-1], values[::-1], color=colours[::-1])
for i, v in enumerate(values[::-1]):
    ax.text(v + 0.01, i, f"{v:.0%}", va="center", fontsize=8)
ax.set_xlim(0, 1.1)
ax.set_xlabel("test accuracy")
ax.set_title("Predicting with batch statistics: worse the smaller the batch", fontsize=10)
ax.grid(alpha=0.3, axis="x")
ch.savefig(fig, "inference_mode_bug")

single = accuracy(modes["training=True, batches of 1"], y_test)
ch.claim("bn_inference_mode",
         f"test accuracy {accuracy(reference, y_test):.1%} in inference mode, {single:.1%} in "
         f"training mode one example at a time "
         f"({np.mean(np.argmax(modes['training=True, batches of 1'], -1) != np.argmax(reference, -1)):.0%} "
         f"of the predictions change); the calls also moved the moving means by up to {drift:.2g}",
         bool(single < accuracy(reference, y_test) - 0.3))

# %% [markdown]
# One example at a time, `x - mu` is exactly 0 for every unit: every image gets the same
# prediction (`beta` alone), and only the images of that one class are right. A whole test set
# as one batch is close to inference mode because many digits together have statistics much
# like the training set's; the fewer examples a batch has, the further its statistics stray. And the mistake is sticky: the training-mode calls rewrote the
# moving statistics, so correct inference afterwards is no longer what it was.
#
# ## 4. Mixed precision
#
# Under `mixed_float16` the layer receives float16 activations and must return float16, but it
# computes its statistics in float32, and keeps `gamma`, `beta` and the moving statistics in
# float32. float16's largest value is 65504: the square of anything above 256 overflows, and so
# does a plain float16 sum of 256 activations near 300, before it is divided into a mean.

# %%
def listed(values, digits: int = 2) -> str:
    """Numbers as "1.00, 2.50" (square brackets would be read as markup by the table printer)."""
    return ", ".join(f"{v:.{digits}f}" for v in np.asarray(values, "float64").ravel())


def float16_mean(x):
    """A mean as a plain float16 sum over the batch, divided by its size: every addition rounded
    to float16. (``keras.ops.mean`` would add in float32 and hide the overflow.)"""
    return np.sum(x, 0, dtype="float16") / np.float16(len(x))


rng = np.random.default_rng(1)
activations16 = (300 + rng.normal(0, 5, (256, 4))).astype("float16")
with np.errstate(over="ignore", invalid="ignore"):  # the overflow is the point
    naive = float16_mean(np.square(activations16)) - np.square(float16_mean(activations16))
    two_pass = float16_mean(np.square(activations16 - float16_mean(activations16)))
exact = activations16.astype("float64").var(axis=0)
mp.print_table([
    {"how": "float16, mean(x^2) - mean(x)^2", "variance per unit": listed(naive)},
    {"how": "float16, mean((x - mean(x))^2)", "variance per unit": listed(two_pass)},
    {"how": "float64 (exact)", "variance per unit": listed(exact)}],
    title="The variance of 256 activations near 300, computed three ways")

rows = []
outputs = {}
for policy_name in ("float32", "mixed_float16"):
    with mp.policy(policy_name):
        layer = BatchNormalization()
        y = layer(activations16.astype("float32"), training=True)
        outputs[policy_name] = keras.ops.convert_to_numpy(y).astype("float64")
        rows.append({"policy": policy_name,
                     "output": keras.backend.standardize_dtype(y.dtype),
                     "gamma / beta": keras.backend.standardize_dtype(layer.gamma.dtype),
                     "moving statistics": keras.backend.standardize_dtype(layer.moving_mean.dtype),
                     "moving mean after 1 step": listed(layer.moving_mean, 3)})
mp.print_table(rows, title="Our BatchNormalization on activations near 300")
print(f"largest difference of the normalized outputs, mixed_float16 vs float32: "
      f"{max_gap(outputs['float32'], outputs['mixed_float16']):.2g} (float16 rounding of the output)")

# %%
rows = []
for policy_name in ("float32", "mixed_float16"):
    with mp.policy(policy_name):
        model = deep_net(batch_norm, "tanh", depth=4)
        model.compile(optimizer=keras.optimizers.SGD(0.3), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    model.fit(DATA.x[:320] if QUICK else DATA.x, DATA.y[:320] if QUICK else DATA.y,
              batch_size=32, epochs=1, verbose=0)
    info = mp.describe(model)
    rows.append({"policy": policy_name, "Dense variables": info["variable dtype"],
                 "compute": info["compute dtype"],
                 "optimizer": info["optimizer"] + (f"({info['inner optimizer']})"
                                                   if "inner optimizer" in info else ""),
                 "loss scale": f"{info['loss scale']:g}" if "loss scale" in info else "-",
                 "test accuracy after 1 epoch":
                 f"{model.evaluate(DATA.x_val, DATA.y_val, verbose=0)[1]:.1%}"})
mp.print_table(rows, title="The 4-layer tanh network with our BatchNormalization, one epoch")

# %% [markdown]
# **Speed and memory** change only on a GPU with Tensor Cores, so that comparison runs only where
# Keras's backend sees one.

# %%
mp.compare_on_gpu(lambda x: mp.wide_classifier(keras.optimizers.SGD(0.01),
                                            middle=BatchNormalization),
                  title="Two 4096-wide Dense + BatchNormalization layers, batch 1024")

# %% [markdown]
# ## Summary
#
# - Batch normalization standardizes every unit over the batch (biased variance, epsilon inside
#   the square root) and rescales with learned `gamma` and `beta`; at inference it uses moving
#   averages, updated with Keras's momentum on the *old* value.
# - In a deep sigmoid network it keeps the units spread out and the gradients alive down to the
#   first layer; without it the deep layers' units barely vary from image to image.
# - It widens the range of usable learning rates; how far, against the quoted 10x, is what 3b
#   measures, and a single factor does not describe every network.
# - With very few examples per batch (the documents say below 8) its statistics are noisy;
#   Group- and LayerNormalization do not depend on the batch.
# - Predicting in training mode uses the test batch's statistics, which ruins single-example
#   predictions and silently rewrites the moving averages.
# - Under mixed precision its statistics and weights stay float32; only its output is float16.

# %%
print(f"\nDone. Plots are in {ch.out}")
