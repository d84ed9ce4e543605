"""Checks for chapter 4: MomentumSGD against keras.optimizers.SGD(momentum, nesterov), and
EMAMomentum against a course-written reference of the documents' averaging form.

The NumPy models below reproduce both forms and each known mistake, so a student whose numbers
match a mistake is told which one. Hyperparameters separate them: momentum 0.5-0.95 (every
velocity mistake scales with it), beta 0.75-0.95 (far from 0.5, where swapping beta and 1 - beta
would not show). The PyTorch-style velocity ``v = mu*v + g; w -= lr*v`` equals Keras's form at a
constant rate, so only the schedule check (ExponentialDecay as the rate) can see it; likewise
EMAMomentum written as Keras SGD at the scaled rate ``lr*(1 - beta)``.
"""

from __future__ import annotations

import numpy as np

from course.grader.ch06_adam import KERAS_OPTIMIZERS
from course.grader.optimizer_suite import OptimizerSpec, optimizer_checks
from course.grader.spec import Exercise
from course.references import momentum_update


def ema_update(state, w, g, lr, t, hp, variant=None):
    """One step of the documents' momentum ``v = b*v + (1-b)*g; w -= lr*v`` (and its mistakes)."""
    b = hp["beta"]
    v = state.get("v", np.zeros_like(w))
    if variant == "rate_in_velocity":  # Keras SGD at the rate lr*(1 - b): v is a velocity here
        v = b * v - lr * (1 - b) * g
        state["v"] = v
        return w + v
    if variant == "no_one_minus_beta":
        v = b * v + g
    elif variant == "swapped":
        v = (1 - b) * v + b * g
    else:
        v = b * v + (1 - b) * g
    state["v"] = v
    return w + lr * v if variant == "sign" else w - lr * v


VELOCITY_SIGN = (
    "velocity_sign", "velocity sign error",
    "Keras's velocity points downhill: v = mu * v - lr * g, then w = w + v. Adding lr * g to the "
    "velocity (or subtracting v from w) climbs the loss.")
NESTEROV_IGNORED = (
    "nesterov_ignored", "Nesterov ignored, or its look-ahead computed with the old velocity",
    "with nesterov=True the step is w = w + mu * v_new - lr * g, where v_new is the velocity "
    "just updated. Note that mu * v_old - lr * g IS v_new, so a look-ahead written with the old "
    "velocity collapses to classic momentum: read the slot again after assigning it.")
PYTORCH_VELOCITY = (
    "pytorch", "PyTorch-style velocity (the rate outside the velocity)",
    "v = mu * v + g; w -= lr * v gives Keras's numbers only while the rate is constant: with a "
    "schedule, PyTorch's form multiplies the whole velocity by TODAY's rate, Keras's form keeps "
    "each past gradient scaled by the rate of ITS step. Put the rate inside: v = mu * v - lr * g.")
EMA_IN_MOMENTUM = (
    "ema", "the documents' averaging form used for MomentumSGD",
    "MomentumSGD is Keras's form, v = mu * v - lr * g; w = w + v. The average "
    "v = mu * v + (1 - mu) * g is EMAMomentum's, and takes steps (1 - mu) times smaller.")

MOMENTUM = OptimizerSpec(
    "MomentumSGD", momentum_update, lambda rng: {"momentum": float(rng.uniform(0.5, 0.95)),
                                                 "nesterov": False},
    defaults=("learning_rate", "momentum", "nesterov"),
    mistakes=(VELOCITY_SIGN, NESTEROV_IGNORED, PYTORCH_VELOCITY, EMA_IN_MOMENTUM),
    options=(("nesterov", {"nesterov": True}),))

EMA = OptimizerSpec(
    "EMAMomentum", ema_update, lambda rng: {"beta": float(rng.uniform(0.75, 0.95))},
    defaults=("learning_rate", "beta"),
    mistakes=(
        ("no_one_minus_beta", "average without (1 - beta)",
         "the documents' form weights the new gradient by (1 - beta): v = beta * v + "
         "(1 - beta) * g. Without it v sums the gradients instead of averaging them and every "
         "step is 1 / (1 - beta) times too large."),
        ("swapped", "beta and 1 - beta swapped",
         "beta multiplies the OLD average: v = beta * v + (1 - beta) * g. With the two swapped, "
         "a beta of 0.9 keeps only 10% of the history."),
        ("sign", "sign error: a step up the gradient",
         "step against the average: w = w - lr * v (assign_sub)."),
        ("rate_in_velocity", "Keras's velocity form at the scaled rate lr * (1 - beta)",
         "that equals the documents' form only at a constant rate. With a schedule the average "
         "must be multiplied by the CURRENT rate: keep v = beta * v + (1 - beta) * g free of the "
         "rate and step w -= lr * v."),
    ), lr_range=(0.05, 0.3))


EXERCISE = Exercise(
    stem="ch04_momentum",
    checks=tuple(optimizer_checks(MOMENTUM) + optimizer_checks(EMA)),
    reference="course.references.ch04_momentum",
    forbidden=KERAS_OPTIMIZERS,
)
