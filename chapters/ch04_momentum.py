# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Chapter 4 — Momentum: steps that remember the previous steps
#
# Plain gradient descent forgets everything between steps: each one follows the local slope and
# nothing else. In a long narrow valley the slope points mostly *across* the valley, so the steps
# bounce from wall to wall while creeping along the floor. Momentum keeps a running memory of past
# gradients, a *velocity*. Across the valley the gradients alternate in sign and cancel in that
# memory; along the floor they agree and add up. The bouncing is damped and the creeping speeds
# up.
#
# This chapter:
#
# 1. writes momentum down in the three forms you will meet (the source documents' average,
#    Keras's velocity, PyTorch's), shows when they agree, and how far back the memory reaches;
# 2. runs the chapter's `MomentumSGD` and `EMAMomentum` next to `keras.optimizers.SGD`;
# 3. draws plain descent, momentum and Nesterov momentum on an ill-conditioned bowl at several
#    rates and betas, and trains a small network with and without momentum;
# 4. shows where the documents' form and Keras's part ways: under a learning-rate schedule;
# 5. runs momentum under mixed precision, and shows why the velocity must be kept in float32;
# 6. checks the documents' claims against what it measured.
#
# Run it as a script (`python -m chapters.ch04_momentum [--quick] [--out DIR] [--mine]
# [--dataset NAME]`) or open it as a notebook with jupytext.

# %%
from course.chapter import setup

ch = setup(4, "Momentum")
QUICK = ch.quick

# %% [markdown]
# ## 1. The mechanic: one idea, three ways to write it
#
# The source documents write momentum as an **average** of gradients:
#
# ```
# v = beta * v + (1 - beta) * g          (v starts at 0; beta around 0.9)
# w = w - lr * v
# ```
#
# Keras (`keras.optimizers.SGD(momentum=mu)`) keeps a **velocity** with the rate already inside:
#
# ```
# v = mu * v - lr * g
# w = w + v
# ```
#
# and PyTorch keeps the velocity without the rate, `v = mu * v + g; w = w - lr * v`.
#
# Unroll them and each step is a weighted sum of all past gradients `g_1 ... g_t`:
#
# ```
# documents:  step_t = lr_t * (1 - beta) * sum_k beta^(t-k) * g_k        (today's rate for all)
# Keras:      step_t =        sum_k mu^(t-k) * lr_k * g_k                (each gradient with the
#                                                                         rate of ITS step)
# PyTorch:    step_t = lr_t * sum_k mu^(t-k) * g_k                       (today's rate for all)
# ```
#
# With a constant rate these are the same steps once `mu = beta` and
# `lr_keras = lr_documents * (1 - beta)` (PyTorch: `lr_keras = lr_pytorch`). With a rate that
# changes they are not, which section 4 measures. The `(1 - beta)` is what makes the documents'
# `v` an *average*: it has the size of one gradient. Keras's velocity is instead a *sum*: for a
# gradient that stays the same, `v` grows to `lr * g / (1 - mu)`, ten times plain SGD's step at
# `mu = 0.9`. Much of what momentum does at a given `lr` in Keras is this larger effective step.
#
# **Nesterov momentum** changes only where the gradient is "felt": Keras's form steps by
# `mu * v_new - lr * g`, i.e. it applies the velocity it just updated once more, a look-ahead
# that corrects the velocity one step earlier when it starts overshooting.
#
# **How far back does the memory reach?** The weight of the gradient `k` steps ago is
# `(1 - beta) * beta^k`. The weights sum to 1, and the last `1/(1 - beta)` gradients carry
# `1 - beta^(1/(1-beta))`, close to `1 - 1/e = 63%`, of it: beta = 0.9 averages "about the last
# 10 gradients", beta = 0.99 about the last 100. The price of a longer memory is lag: the average
# of a signal that changes trails it by about `beta/(1 - beta)` steps.

# %%
import numpy as np

from course.toolkit import table

BETAS = (0.5, 0.9, 0.99)
table("The averaging window of momentum",
      ["beta", "window 1/(1-beta)", "weight of the last window", "steps holding 90% of the weight",
       "lag beta/(1-beta)"],
      [[beta, f"{1 / (1 - beta):g} steps", f"{1 - beta ** round(1 / (1 - beta)):.1%}",
        f"{np.log(0.1) / np.log(beta):.0f}", f"{beta / (1 - beta):.0f} steps"] for beta in BETAS])

# %%
from course.plotting import figure

fig, axes = figure(1, 2, width=6.0, height=4.2)
ax = axes[0, 0]
for beta, colour in zip(BETAS, ("tab:green", "tab:blue", "tab:purple")):
    k = np.arange(0, 400)
    weights = (1 - beta) * beta**k
    window = 1 / (1 - beta)
    ax.plot(k + 1, weights, color=colour, lw=1.8, label=f"beta = {beta}: window {window:g}")
    inside = k + 1 <= window
    ax.fill_between(k[inside] + 1, weights[inside], color=colour, alpha=0.25)
    ax.axvline(window, color=colour, ls=":", lw=1)
ax.set_xscale("log")
ax.set_yscale("log")
ax.set_ylim(1e-5, 1)
ax.set_xlabel("how many steps ago (k + 1)")
ax.set_ylabel("weight (1 - beta) * beta^k of that gradient")
ax.set_title("Weights of past gradients (shaded: the last 1/(1-beta))", fontsize=10)
ax.grid(alpha=0.3)
ax.legend(fontsize=8)

ax = axes[0, 1]
rng = np.random.default_rng(0)
steps = np.arange(300)
signal = np.where(steps < 150, 1.0, -0.5)  # the gradient's true direction flips at step 150
noisy = signal + rng.normal(0, 0.8, size=steps.size)
ax.plot(steps, noisy, color="0.75", lw=0.8, label="noisy gradient")
ax.plot(steps, signal, "k--", lw=1, label="its mean")
for beta, colour in zip(BETAS, ("tab:green", "tab:blue", "tab:purple")):
    average, averages = 0.0, []
    for g in noisy:
        average = beta * average + (1 - beta) * g
        averages.append(average)
    ax.plot(steps, averages, color=colour, lw=1.8, label=f"average, beta = {beta}")
ax.set_xlabel("step")
ax.set_ylabel("gradient")
ax.set_title("Smoother with a longer memory, but later to turn", fontsize=10)
ax.grid(alpha=0.3)
ax.legend(fontsize=7, loc="lower left")
fig.suptitle("Momentum's memory: an exponential moving average of gradients")
ch.savefig(fig, "averaging_window")

ch.claim("momentum_window",
         f"the last 10 gradients carry {1 - 0.9**10:.0%} of the weight at beta = 0.9 "
         f"(the last 20: {1 - 0.9**20:.0%}); 90% of the weight takes "
         f"{np.log(0.1) / np.log(0.9):.0f} steps",
         True)

# %% [markdown]
# ## 2. The components next to Keras
#
# ### Which optimizers this run uses
#
# They come from `solutions/ch04_momentum.py`, or with `--mine` from your
# `exercises/ch04_momentum.py`. A class that is still a stub is replaced by its reference
# stand-in: Keras's SGD with momentum 0.9 by default for `MomentumSGD`, and for `EMAMomentum`
# the course's own optimizer written in the documents' averaging form (Keras has none).

# %%
import keras

MomentumSGD = ch.pick("MomentumSGD")
EMAMomentum = ch.pick("EMAMomentum")

# %% [markdown]
# ### Side by side
#
# The same start and the same gradients for each pair. `MomentumSGD` must follow
# `keras.optimizers.SGD(momentum, nesterov)` to float32 rounding. `EMAMomentum` at rate `lr` must
# follow Keras's SGD at `lr * (1 - beta)` with momentum `beta` while the rate is constant.
# The last row checks the NumPy model of the same update that the grader uses to recognise
# mistakes (this chapter also uses it for a fast parameter sweep below).

# %%
from course.plotting import BOWL, START, run_on_bowl
from course.references import momentum_update
from course.toolkit import max_gap


def numpy_bowl_path(lr, mu, nesterov=False, steps=50, start=START):
    """Paths on the bowl from the NumPy model of Keras's momentum; lr and mu may be arrays
    (one path per setting: the arrays broadcast against the (settings, 2) positions)."""
    curvature = 2 * np.asarray(BOWL)
    lr, mu = np.asarray(lr, dtype="float64")[..., None], np.asarray(mu, dtype="float64")[..., None]
    w = np.broadcast_to(np.asarray(start, dtype="float64"), np.broadcast(lr, mu).shape[:-1] + (2,))
    state, hp, path = {}, {"momentum": mu, "nesterov": nesterov}, [w]
    with np.errstate(all="ignore"):  # a diverging setting overflows; it is simply never best
        for t in range(steps):
            w = momentum_update(state, w, curvature * w, lr, t + 1, hp)
            path.append(w)
    return np.stack(path, axis=-2)  # (..., steps + 1, 2)


pairs = [
    ("MomentumSGD(0.1, momentum 0.8)", MomentumSGD(0.1, momentum=0.8),
     keras.optimizers.SGD(0.1, momentum=0.8)),
    ("MomentumSGD(0.1, momentum 0.8, nesterov)", MomentumSGD(0.1, momentum=0.8, nesterov=True),
     keras.optimizers.SGD(0.1, momentum=0.8, nesterov=True)),
    ("EMAMomentum(0.5, beta 0.8)", EMAMomentum(0.5, beta=0.8),
     keras.optimizers.SGD(0.5 * (1 - 0.8), momentum=0.8)),
]
rows = []
for label, ours, reference in pairs:
    ours_path, reference_path = run_on_bowl(ours, steps=50), run_on_bowl(reference, steps=50)
    rows.append([label, f"SGD({float(reference.learning_rate):.2g}, momentum "
                 f"{reference.momentum:g}{', nesterov' if reference.nesterov else ''})",
                 f"{max_gap(ours_path, reference_path):.1e}"])
numpy_gap = max_gap(numpy_bowl_path(0.1, 0.8),
                    run_on_bowl(keras.optimizers.SGD(0.1, momentum=0.8)))
rows.append(["NumPy model, lr 0.1, momentum 0.8", "SGD(0.1, momentum 0.8)", f"{numpy_gap:.1e}"])
table("On the bowl 0.1*x1^2 + 2*x2^2 from (-5, -2)",
      ["ours", "Keras", "max |difference| over 50 steps"], rows)

# %% [markdown]
# ## 3. Experiments
#
# ### 3a. Plain descent, momentum and Nesterov on an ill-conditioned bowl
#
# `f(x1, x2) = 0.1*x1^2 + 2*x2^2` is twenty times steeper across (`x2`) than along (`x1`). Plain
# descent must keep `lr < 0.5` or the steep direction blows up; at rates near that limit it
# zig-zags across the valley, and at any rate it crawls along it. Each panel below runs plain
# descent, Keras-form momentum and Nesterov momentum at one rate and one `beta` (the same number
# as Keras's `momentum`). The legend gives the number of steps until `f < 0.01`.

# %%
from course.plotting import bowl_loss, plot_trajectories
from course.toolkit import shown

RATES = (0.05, 0.2, 0.45)
GRID_BETAS = (0.5, 0.9)
GRID_STEPS = 40 if QUICK else 60
TARGET = 0.01


def steps_to(path: np.ndarray, target: float = TARGET) -> float:
    """First step at which the bowl loss is at or below target (inf if never)."""
    with np.errstate(all="ignore"):
        values = bowl_loss(path[..., 0], path[..., 1])
    hit = values <= target
    return np.where(hit.any(axis=-1), hit.argmax(axis=-1), np.inf)


EXTENT = (-6.0, 3.0, -3.0, 3.0)


def label(name: str, path: np.ndarray) -> str:
    reached = float(steps_to(path))
    if np.isfinite(reached):
        return f"{name}: f < {TARGET} at step {reached:.0f}"
    diverged = not np.isfinite(path[-1]).all() or np.abs(path[-1]).max() > 100
    return f"{name}: " + ("diverges" if diverged else f"not within {len(path) - 1} steps")


def drawable(path: np.ndarray) -> np.ndarray:
    """The path up to its first point well outside the plot (a diverging path ends there)."""
    outside = (np.abs(path[:, 0]) > 20) | (np.abs(path[:, 1]) > 10) | ~np.isfinite(path).all(axis=1)
    return path[: int(np.argmax(outside)) + 1] if outside.any() else path


fig, axes = figure(len(RATES), len(GRID_BETAS), width=5.0, height=3.6, layout="constrained")
steps_in_panel = {}
for i, rate in enumerate(RATES):
    plain = run_on_bowl(MomentumSGD(rate, momentum=0.0), steps=GRID_STEPS)
    for j, beta in enumerate(GRID_BETAS):
        paths = {"plain GD": plain,
                 "momentum": run_on_bowl(MomentumSGD(rate, momentum=beta), steps=GRID_STEPS),
                 "Nesterov": run_on_bowl(MomentumSGD(rate, momentum=beta, nesterov=True),
                                         steps=GRID_STEPS)}
        steps_in_panel[rate, beta] = [float(steps_to(p)) for p in paths.values()]
        drawn = {label(n, p): drawable(p) for n, p in paths.items()}
        plot_trajectories(axes[i, j], drawn, title=f"lr = {rate}, momentum (beta) = {beta}",
                          extent=EXTENT)
        axes[i, j].legend(fontsize=7, loc="lower right")
fig.suptitle(f"{GRID_STEPS} steps from (-5, -2) on 0.1*x1^2 + 2*x2^2 (Keras-form momentum)")
ch.savefig(fig, "trajectories")
table(f"Steps until f < {TARGET} in each panel ({GRID_STEPS} steps at most)",
      ["lr", "beta", "plain GD", "momentum", "Nesterov"],
      [[rate, beta, *(shown(s) for s in steps)] for (rate, beta), steps in steps_in_panel.items()])

# %% [markdown]
# What the grid shows, row by row. At `lr = 0.05` plain descent is smooth but barely moves along
# `x1`. Momentum multiplies the effective step by up to `1/(1 - beta)`: twice as far with
# `beta = 0.5`, ten times with `beta = 0.9`, where it reaches the minimum but overshoots and
# swings back, damped only slowly. Nesterov's look-ahead brakes before the overshoot, so its
# swings are smaller. At `lr = 0.45` plain descent zig-zags across the valley at every step;
# momentum with `beta = 0.5` turns that into a short spiral, while `beta = 0.9` is too much
# memory for this rate. The table under the grid counts each panel's steps to the target. Nesterov
# diverges in the whole last row: its extra gradient step makes it *less* stable than plain
# momentum at large rates (it needs `lr * curvature < 2(1 + mu)/(1 + 2 mu)`, here 4 * 0.45 = 1.8
# against a limit of 1.5 at `mu = 0.5`). A look-ahead is not free.
#
# Each panel is one setting, though. To compare the methods fairly, each gets its best setting:
# below, a sweep over rates and betas (run with the NumPy model checked in section 2, because
# it can run thousands of settings at once), counting steps to `f < 0.001`.

# %%
SWEEP_RATES = np.linspace(0.02, 1.0, 25 if QUICK else 99)
SWEEP_BETAS = np.linspace(0.0, 0.95, 20 if QUICK else 96)
lr_grid, beta_grid = np.meshgrid(SWEEP_RATES, SWEEP_BETAS, indexing="ij")
best = {}
for name, nesterov, betas in (("plain GD", False, np.zeros_like(lr_grid[:, :1])),
                              ("momentum", False, beta_grid), ("Nesterov", True, beta_grid)):
    rates = lr_grid[:, : betas.shape[1]]
    reached = steps_to(numpy_bowl_path(rates, betas, nesterov, steps=300), 1e-3)
    k = np.unravel_index(np.argmin(reached), reached.shape)
    best[name] = (float(reached[k]), float(rates[k]), float(betas[k]))
table(f"Each method at its best ({len(SWEEP_RATES)} rates x {len(SWEEP_BETAS)} betas)",
      ["method", "fewest steps to f < 0.001", "at lr", "beta"],
      [[n, f"{s:.0f}", f"{r:.3f}", f"{b:.2f}" if n != "plain GD" else "-"]
       for n, (s, r, b) in best.items()])
zigzag = {}
for name, beta in (("plain GD", 0.0), ("momentum", 0.5)):
    path = run_on_bowl(MomentumSGD(0.45, momentum=beta), steps=30)
    zigzag[name] = int(np.sum(np.diff(np.sign(path[:, 1])) != 0))
ch.claim("momentum_valley",
         f"on 0.1*x1^2 + 2*x2^2 at lr 0.45: x2 changed sign {zigzag['plain GD']} times in 30 steps "
         f"without momentum, {zigzag['momentum']} with momentum 0.5; best settings: "
         f"{best['plain GD'][0]:.0f} steps to f < 0.001 for plain GD, {best['momentum'][0]:.0f} "
         f"with momentum ({best['plain GD'][0] / best['momentum'][0]:.1f}x fewer)",
         bool(zigzag["momentum"] < zigzag["plain GD"]
              and best["momentum"][0] < best["plain GD"][0]))

# %% [markdown]
# For comparison, the textbook optimum of heavy-ball momentum on a quadratic whose curvatures
# are 0.2 and 4 (condition number 20) is `beta = ((sqrt(20) - 1)/(sqrt(20) + 1))^2 = 0.40` and
# `lr = 4/(sqrt(0.2) + sqrt(4))^2 = 0.67`. That optimum is about the long run; counting steps to
# a fixed target from a fixed start, as here, rewards somewhat more momentum. Either way the
# reason momentum wins is the same: plain descent's speed is set by the condition number, the
# best momentum's by its square root.
#
# ### 3b. On a real network
#
# A network with one hidden layer of 32 on the standardized `course_digits` images (or
# `--dataset NAME`), batch size 32, the same initial weights and batches for each optimizer.
# Four runs: plain SGD; momentum 0.9 at the same rate; plain SGD at ten times the rate (the
# momentum run's effective step, `lr/(1 - mu)`, for a gradient that stays put); and the
# documents' form, `EMAMomentum`, at ten times the rate, which is the momentum run again in other
# words.

# %%
import dataclasses

from course.plotting import plot_curves
from course.toolkit import dense_model, epochs_to_reach, load_dataset, loss_for, train

DATA = load_dataset(ch.dataset, cap=2000 if QUICK else 10000)
# the training set is also the validation set: Keras then measures the loss on all of it after
# each epoch (the epoch's own running loss mixes in the weights of earlier batches)
WHOLE_SET = dataclasses.replace(DATA, x_val=DATA.x, y_val=DATA.y)
NET_EPOCHS = 3 if QUICK else 25
NET_RATE = 0.01
# every run starts from these weights (dense_model's seed), so epoch 0 is the same for all
INITIAL_LOSS = float(keras.ops.mean(keras.losses.get(loss_for(DATA))(DATA.y,
                                                                     dense_model(DATA, (32,))(DATA.x))))


def fit_curve(optimizer) -> np.ndarray:
    """The loss on the whole training set before training and after each epoch, from the same
    initial weights and through the same batches (one shuffling seed) for every optimizer."""
    run = train(dense_model(DATA, (32,)), optimizer, WHOLE_SET, epochs=NET_EPOCHS, shuffle_seed=1)
    return np.concatenate([[INITIAL_LOSS], run.val_loss])


net = {f"plain SGD, lr {NET_RATE}": fit_curve(MomentumSGD(NET_RATE, momentum=0.0)),
       f"momentum 0.9, lr {NET_RATE}": fit_curve(MomentumSGD(NET_RATE, momentum=0.9)),
       f"plain SGD, lr {10 * NET_RATE:g}": fit_curve(MomentumSGD(10 * NET_RATE, momentum=0.0)),
       f"EMAMomentum beta 0.9, lr {10 * NET_RATE:g}":
       fit_curve(EMAMomentum(10 * NET_RATE, beta=0.9))}
fig, axes = figure(1, 1, width=7.0, height=4.3)
plot_curves(axes[0, 0], net, x={n: np.arange(len(c)) for n, c in net.items()},
            ylabel="training loss (whole training set)",
            title=f"{DATA.name}: one hidden layer of 32, batch 32 (epoch 0: before training)")
axes[0, 0].lines[1].set_linewidth(4)  # momentum and EMAMomentum coincide: draw one over the other
axes[0, 0].lines[1].set_alpha(0.5)
axes[0, 0].lines[3].set_linestyle("--")
axes[0, 0].legend(fontsize=8)
ch.savefig(fig, "network")
net_target = 0.1 * INITIAL_LOSS
table(f"{NET_EPOCHS} epochs", ["run", f"epochs to loss {net_target:.3f}", "final loss"],
      # curve[0] is the loss before training: the epochs are counted from curve[1]
      [[n, shown(epochs_to_reach(c[1:], net_target)), f"{c[-1]:.4f}"] for n, c in net.items()])
(plain_name, plain), (momentum_name, with_momentum), (big_name, big), _ = net.items()
ch.claim("momentum_faster",
         f"{DATA.name}: final loss after {NET_EPOCHS} epochs {with_momentum[-1]:.4f} with "
         f"momentum 0.9 against {plain[-1]:.4f} without, at lr {NET_RATE}; but plain SGD at the "
         f"same effective step (lr {10 * NET_RATE:g}) reaches {big[-1]:.4f}",
         bool(with_momentum[-1] < plain[-1]))

# %% [markdown]
# At the same rate, momentum wins clearly, as the documents say. Against plain SGD at the same
# *effective* step it is much closer: on a well-scaled problem like this one (the inputs are
# standardized), a good part of momentum's advantage is simply a larger step, and its damping
# matters most where the loss surface is badly conditioned, as on the bowl. The last two curves
# coincide: at a constant rate the documents' form is the Keras form in disguise.
#
# ## 4. The documents' form and Keras's form under a schedule
#
# Section 1 says the two forms agree only while the rate is constant. Here the rate drops
# tenfold after 15 steps (`PiecewiseConstantDecay`), on the bowl. The documents' form multiplies
# its whole average by *today's* rate, so its very next step is ten times smaller. Keras's
# velocity still holds the gradients of the last steps at the *old* rate, so it keeps coasting
# and slows down over about `1/(1 - beta)` steps. Neither is wrong; they are two different
# optimizers that only share a name and their behaviour at a constant rate.

# %%
def scaled_rate(learning_rate, factor: float):
    """``learning_rate`` times ``factor``: a float, or a piecewise-constant schedule rescaled."""
    if isinstance(learning_rate, keras.optimizers.schedules.PiecewiseConstantDecay):
        return keras.optimizers.schedules.PiecewiseConstantDecay(
            learning_rate.boundaries, [v * factor for v in learning_rate.values])
    if isinstance(learning_rate, keras.optimizers.schedules.LearningRateSchedule):
        raise TypeError("scaled_rate handles floats and PiecewiseConstantDecay only")
    return learning_rate * factor


def keras_ema_form(learning_rate=0.01, beta=0.9):
    """Keras's SGD set up to take the documents' steps (exactly so only at a constant rate)."""
    return keras.optimizers.SGD(scaled_rate(learning_rate, 1 - beta), momentum=beta)


EMA_BETA, EMA_RATE, DROP_AT = 0.9, 1.0, 15
# boundaries are inclusive: steps 0 .. DROP_AT - 1 (the first DROP_AT updates) take the first rate
schedule = keras.optimizers.schedules.PiecewiseConstantDecay([DROP_AT - 1],
                                                             [EMA_RATE, EMA_RATE / 10])
constant_gap = max_gap(run_on_bowl(EMAMomentum(EMA_RATE, beta=EMA_BETA), steps=40),
                       run_on_bowl(keras_ema_form(EMA_RATE, beta=EMA_BETA), steps=40))
forms = {"documents' form: EMAMomentum":
         run_on_bowl(EMAMomentum(schedule, beta=EMA_BETA), steps=40),
         "Keras's form: SGD at lr*(1-beta)":
         run_on_bowl(keras_ema_form(schedule, beta=EMA_BETA), steps=40)}
schedule_gap = max_gap(*forms.values())
table(f"EMAMomentum(beta {EMA_BETA}) against Keras's SGD at lr*(1 - beta)",
      ["rate", "max |difference| over 40 steps"],
      [[f"constant {EMA_RATE}", f"{constant_gap:.1e}"],
       [f"{EMA_RATE}, then {EMA_RATE / 10} from step {DROP_AT + 1}", f"{schedule_gap:.2f}"]])

# %%
fig, axes = figure(1, 3, width=4.6, height=4.0, layout="constrained")
plot_trajectories(axes[0, 0], forms, title=f"Paths (rate / 10 after step {DROP_AT})",
                  extent=(-6.0, 3.0, -3.0, 3.0))
axes[0, 0].legend(fontsize=7, loc="lower right")
ax = axes[0, 1]
for (name, path), style in zip(forms.items(), ("o-", "s-")):
    ax.plot(np.arange(1, len(path)), np.linalg.norm(np.diff(path, axis=0), axis=1), style, ms=3,
            label=name)
ax.axvline(DROP_AT + 0.5, color="k", ls=":", lw=1, label="the rate drops tenfold")
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel("length of the step")
ax.set_title("Step length per step", fontsize=10)
ax.grid(alpha=0.3)
ax.legend(fontsize=7)
ax = axes[0, 2]
t = DROP_AT + 3  # three steps after the drop: how is each past gradient weighted now?
k = np.arange(1, t + 1)
rates = np.where(k <= DROP_AT, EMA_RATE, EMA_RATE / 10)
ax.bar(k - 0.2, (rates[-1] * (1 - EMA_BETA)) * EMA_BETA ** (t - k), width=0.4,
       label="documents: lr_t (1-beta) beta^(t-k)")
ax.bar(k + 0.2, rates * (1 - EMA_BETA) * EMA_BETA ** (t - k), width=0.4,
       label="Keras: lr_k (1-beta) beta^(t-k)")
ax.axvline(DROP_AT + 0.5, color="k", ls=":", lw=1)
ax.set_yscale("log")
ax.set_xlabel(f"gradient of step k (at step t = {t})")
ax.set_ylabel("its weight in step t")
ax.set_title("Why: which rate each past gradient carries", fontsize=10)
ax.grid(alpha=0.3)
ax.legend(fontsize=7, loc="upper left")
fig.suptitle(f"Momentum beta = {EMA_BETA}, rate {EMA_RATE} then {EMA_RATE / 10}: "
             "the two forms part at the drop")
ch.savefig(fig, "ema_vs_keras_form")

# %% [markdown]
# The right panel is the whole story: after the drop, the documents' form weights *every* past
# gradient with the new small rate; Keras's form still weights the gradients from before the drop
# with the old large rate, which is what keeps it coasting. The same difference separates
# PyTorch's velocity (`v = mu*v + g; w -= lr*v`, today's rate for all) from Keras's. During
# warmup, when the rate *rises*, it works the other way round: Keras's velocity remembers the
# small early rates and starts more gently.
#
# ## 5. Mixed precision
#
# Under `mixed_float16`, layers compute in float16 and keep float32 weights; `compile()` wraps
# the optimizer in a `LossScaleOptimizer`. Our optimizers create their velocity slots like the
# weights they belong to, so the velocity is float32 too.

# %%
from course import mixed_precision as mp

rows = []
for policy_name in ("float32", "mixed_float16"):
    with mp.policy(policy_name):
        # the same initial weights under both policies; the output layer stays float32
        model = dense_model(DATA, hidden=(32,), seed=0)
        model.compile(optimizer=MomentumSGD(0.01, momentum=0.9), loss=loss_for(DATA))
    history = model.fit(DATA.x, DATA.y, batch_size=32, epochs=1, verbose=0)
    info = mp.describe(model)
    inner = getattr(model.optimizer, "inner_optimizer", model.optimizer)
    slots = [v for v in inner.variables if "velocity" in v.name or "momentum" in v.name]
    info["velocity dtype"] = ", ".join(sorted({str(v.dtype) for v in slots})) or "-"
    info["loss after 1 epoch"] = f"{history.history['loss'][-1]:.4f}"
    rows.append(info)
mp.print_table(rows, title="Our MomentumSGD under each policy")

# %% [markdown]
# **Why the velocity must be float32.** An average with a long memory changes by a small fraction
# of itself each step: `(1 - beta) * (g - v)`. float16 keeps about three significant digits, so
# once that change is smaller than half the spacing of float16 numbers around `v`, it rounds to
# nothing and the average stops moving, short of the gradient it should reach. Below, our
# `EMAMomentum` averages a constant gradient of 0.001 (a typical size) for 3000 steps, with its
# state in float32 and in float16 (a float16 variable gets a float16 slot).

# %%
from course.toolkit import repeated_updates

AVERAGING_STEPS = 3000


def averages_of_constant_gradient(beta: float) -> dict:
    """Our EMAMomentum's average after AVERAGING_STEPS steps of the gradient 0.001, for a
    float32 and a float16 variable (one optimizer: each slot takes its own variable's dtype)."""
    weights = {d: keras.Variable(np.zeros(1), dtype=d) for d in ("float32", "float16")}
    optimizer = EMAMomentum(1e-9, beta=beta)  # a tiny rate: only the average is watched
    gradients = [np.full(1, 1e-3, dtype=d) for d in weights]
    # thousands of steps: one compiled loop rather than thousands of Python calls
    repeated_updates(optimizer, list(weights.values()), lambda values: gradients, AVERAGING_STEPS)
    slots = [v for v in optimizer.variables if tuple(v.shape) == (1,)]
    return {str(v.dtype): float(np.asarray(v)[0]) for v in slots}


rows = []
for beta in (0.9, 0.99, 0.999):
    reached = averages_of_constant_gradient(beta)
    f32, f16 = reached["float32"], reached["float16"]
    rows.append([beta, f"{f32:.4e}", f"{f16:.4e}", f"{1 - f16 / f32:.1%}"])
table(f"Averaging a constant gradient of 0.001 for {AVERAGING_STEPS} steps",
      ["beta", "float32 average", "float16 average", "float16 falls short by"], rows)

# %% [markdown]
# The longer the memory, the smaller each change, and the earlier float16 gives up. That is why
# mixed precision keeps optimizer state in float32 and only computes the layers in float16.
#
# **Speed and memory** change only on a GPU with Tensor Cores, so that comparison runs only where
# Keras's backend sees one.

# %%
mp.compare_on_gpu(lambda x: mp.wide_classifier(MomentumSGD(0.01, momentum=0.9)),
                  title="Two 4096-wide layers, batch 1024, our MomentumSGD")

# %% [markdown]
# ## Summary
#
# - Momentum is a memory of past gradients; `beta` sets its length, about `1/(1 - beta)` steps.
# - The documents average (`v = beta*v + (1-beta)*g; w -= lr*v`); Keras sums with the rate inside
#   (`v = mu*v - lr*g; w += v`). Same steps at a constant rate with `lr_keras = lr*(1 - beta)`;
#   different steps under a schedule, because Keras keeps each gradient's own rate.
# - On an ill-conditioned bowl momentum damps the zig-zag and needs several times fewer steps at
#   its best setting than plain descent at its best; Nesterov brakes earlier, but is less stable
#   at large rates.
# - At equal rates momentum trains faster; part of that is simply a larger effective step.
# - The velocity must be float32: a float16 average stops short of its target.

# %%
print(f"\nDone. Plots are in {ch.out}")
