"""Checks for chapter 5: RMSprop against keras.optimizers.RMSprop, with every option combination.

The NumPy model below reproduces Keras's RMSprop and each known mistake, so a student whose numbers
match a mistake is told which one. Hyperparameters are drawn to separate them:

- epsilon between 0.05 and 0.5 in EVERY numeric check: at the default 1e-7, ``sqrt(v + eps)`` and
  ``sqrt(v) + eps`` differ by far less than the tolerance whenever ``v`` is not tiny;
- rho between 0.7 and 0.95, away from 0.5 where ``rho`` and ``1 - rho`` swapped would coincide;
- momentum between 0.5 and 0.9 in the momentum checks, with gradient noise that decays over the
  run, so ``den`` changes from step to step and accumulating gradients instead of increments shows.
"""

from __future__ import annotations

import numpy as np

from course.grader.ch06_adam import KERAS_OPTIMIZERS
from course.grader.optimizer_suite import (SHARED_SLOT, SHARED_SLOT_ERROR, OptimizerSpec,
                                           optimizer_checks)
from course.grader.spec import Exercise


def rmsprop_update(state, w, g, lr, t, hp, variant=None):
    """One step of Keras's RMSprop for one variable (and of each known-wrong variant)."""
    rho, eps = hp["rho"], hp["epsilon"]
    momentum = hp.get("momentum", 0.0)
    centered = hp.get("centered", False)
    keep, new = (1 - rho, rho) if variant == "rho_swapped" else (rho, 1 - rho)
    v = keep * state.get("v", np.zeros_like(w)) + new * g * g
    state["v"] = v
    den = v
    if centered and variant != "centered_ignored":
        a = keep * state.get("a", np.zeros_like(w)) + new * g
        state["a"] = a
        den = v - (a if variant == "centered_linear" else a * a)
    if variant == "bias_corrected":
        den = den / (1 - rho**t)
    if variant == "epsilon_outside":
        inc = lr * g / (np.sqrt(den) + eps)
    else:
        inc = lr * g / np.sqrt(den + eps)
    if momentum > 0 and variant != "momentum_ignored":
        if variant == "momentum_on_gradient":
            m = momentum * state.get("m", np.zeros_like(w)) + g
            state["m"] = m
            return w - lr * m / np.sqrt(den + eps)
        m = momentum * state.get("m", np.zeros_like(w)) + inc
        state["m"] = m
        return w - m
    return w - inc


def _rmsprop_hparams(rng: np.random.Generator) -> dict:
    return {"rho": float(rng.uniform(0.7, 0.95)), "epsilon": float(rng.uniform(0.05, 0.5))}


def _momentum(rng: np.random.Generator) -> dict:
    return {"momentum": float(rng.uniform(0.5, 0.9))}


def _centered_momentum(rng: np.random.Generator) -> dict:
    return {"centered": True, **_momentum(rng)}


MISTAKES = (
    ("epsilon_outside", "epsilon outside the square root",
     "Keras puts epsilon UNDER the root: inc = lr * g / sqrt(den + epsilon). The textbook "
     "lr * g / (sqrt(v) + epsilon) is a different optimizer once epsilon is not tiny."),
    ("centered_linear", "centered with v - a instead of v - a^2",
     "the centered denominator is the variance estimate v - a^2 (mean of squares minus the square "
     "of the mean), so square the running mean of gradients a before subtracting it."),
    ("rho_swapped", "rho and 1 - rho swapped",
     "rho weights the OLD average: v = rho * v + (1 - rho) * g^2 (and the same for a). With "
     "rho = 0.9 each new squared gradient counts for 10%, not 90%."),
    ("momentum_on_gradient", "momentum applied to the gradient instead of the increment",
     "Keras accumulates the whole increment: mom = momentum * mom + lr * g / sqrt(den + epsilon), "
     "then w -= mom. Accumulating g and dividing afterwards rescales old gradients by today's "
     "denominator and rate."),
    ("bias_corrected", "Adam's bias correction added to RMSprop",
     "RMSprop has no bias correction: divide by sqrt(v + epsilon) with the raw v (its first steps "
     "are about lr / sqrt(1 - rho) long, and that is the reference's behaviour too)."),
    ("centered_ignored", "centered option ignored",
     "with centered=True keep a running mean of gradients a = rho * a + (1 - rho) * g as an extra "
     "slot and divide by sqrt(v - a^2 + epsilon)."),
    ("momentum_ignored", "momentum option ignored",
     "with momentum > 0 keep a momentum slot: mom = momentum * mom + inc, then w -= mom."),
    SHARED_SLOT,
)

RMSPROP = OptimizerSpec(
    "RMSprop", rmsprop_update, _rmsprop_hparams,
    defaults=("learning_rate", "rho", "momentum", "epsilon", "centered"),
    mistakes=MISTAKES, error_mistakes=(SHARED_SLOT_ERROR,),
    options=(("centered", {"centered": True}), ("momentum", _momentum),
             ("centered_momentum", _centered_momentum)))


EXERCISE = Exercise(
    stem="ch05_rmsprop",
    checks=tuple(optimizer_checks(RMSPROP)),
    reference="course.references.ch05_rmsprop",
    forbidden=KERAS_OPTIMIZERS,
)
