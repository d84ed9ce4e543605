"""Checks for chapter 6: Adam, AdamW and AdamL2 against keras.optimizers.Adam / AdamW.

The NumPy model below reproduces Keras's Adam and each known mistake, so a student whose numbers
match a mistake is told which one. Hyperparameters are drawn to separate them: epsilon between
0.05 and 0.5 (textbook epsilon placement), beta_2 between 0.9 and 0.99 (bias correction, amsgrad
on the corrected moment), weight decay and L2 up to 0.5 (their placement and scaling).
"""

from __future__ import annotations

import numpy as np

from course.grader.optimizer_suite import (SHARED_SLOT, SHARED_SLOT_ERROR, OptimizerSpec,
                                           optimizer_checks)
from course.grader.spec import Exercise

# Every optimizer Keras ships: an exercise may not subclass, wrap or call any of them.
KERAS_OPTIMIZERS = ("SGD", "RMSprop", "Adam", "AdamW", "Adamax", "Adagrad", "Adadelta", "Adafactor",
                    "Nadam", "Ftrl", "Lion", "Lamb", "Muon", "LossScaleOptimizer")


def adam_update(state, w, g, lr, t, hp, variant=None):
    """One step of Keras's Adam for one variable (and of each known-wrong variant)."""
    b1, b2, eps = hp["beta_1"], hp["beta_2"], hp["epsilon"]
    wd = hp.get("weight_decay", 0.0)
    l2 = hp.get("l2", 0.0)
    # the right decay, w -= lr * wd * w before the step, is the base class's (``simulate``'s);
    # these variants replace it with one of their own
    if wd and variant == "decay_unscaled":
        w = w - wd * w
    elif wd and variant == "decay_in_gradient":
        g = g + wd * w
    if l2 and variant == "l2_decoupled":
        w = w - lr * l2 * w
    elif l2:
        g = g + (2 * l2 if variant == "l2_doubled" else l2) * w
    m = state.get("m", np.zeros_like(w))
    v = state.get("v", np.zeros_like(w))
    m = m + (g - m) * (1 - b1)
    v = v + (g * g - v) * (1 - b2)
    state["m"], state["v"] = m, v
    step = t - 1 if variant == "t_from_zero" else t
    c1, c2 = 1 - b1**step, 1 - b2**step
    if hp.get("amsgrad"):  # the running maximum replaces v in the step below
        corrected = variant == "amsgrad_corrected"
        state["v_max"] = np.maximum(state.get("v_max", np.zeros_like(w)), v / c2 if corrected else v)
        v = state["v_max"] * c2 if corrected else state["v_max"]
    if variant == "no_bias_correction":
        update = lr * m / (np.sqrt(v) + eps)
    elif variant in ("textbook_epsilon", "amsgrad_corrected"):
        update = lr * (m / c1) / (np.sqrt(v / c2) + eps)
    else:  # Keras's form (t_from_zero: with the wrong t)
        update = lr * np.sqrt(c2) / c1 * m / (np.sqrt(v) + eps)
    w = w - update
    if wd and variant == "decay_after_step":
        w = w - lr * wd * w
    return w


def _adam_hparams(rng: np.random.Generator) -> dict:
    return {"beta_1": float(rng.uniform(0.6, 0.9)), "beta_2": float(rng.uniform(0.9, 0.99)),
            "epsilon": float(rng.uniform(0.05, 0.5))}


ADAM_MISTAKES = (
    ("no_bias_correction", "no bias correction",
     "bias correction is missing: m and v start at zero, so early on they are too small; divide by (1 - beta_1^t) and "
     "(1 - beta_2^t), or fold both into alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)."),
    ("textbook_epsilon", "textbook epsilon placement",
     "Keras adds epsilon to sqrt(v) AFTER folding the bias corrections into the rate: "
     "w -= alpha * m / (sqrt(v) + epsilon). The textbook m_hat / (sqrt(v_hat) + epsilon) puts "
     "epsilon in a different place, which shows with a large epsilon."),
    ("t_from_zero", "step counter starting at 0",
     "the first update is step t = 1: use iterations + 1 (iterations is 0 during the first "
     "update), otherwise 1 - beta^t is 0 and the first step divides by zero."),
    SHARED_SLOT,
)
AMSGRAD_MISTAKES = (
    ("amsgrad_corrected", "amsgrad maximum taken on the bias-corrected second moment",
     "Keras keeps the running maximum of the RAW v (v_max = max(v_max, v)) and applies the bias "
     "correction through alpha."),
)

ADAM = OptimizerSpec(
    "Adam", adam_update, _adam_hparams,
    defaults=("learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad"),
    mistakes=ADAM_MISTAKES + AMSGRAD_MISTAKES, error_mistakes=(SHARED_SLOT_ERROR,),
    options=(("amsgrad", {"amsgrad": True}),))


def _adamw_hparams(rng):
    hp = _adam_hparams(rng)
    hp["weight_decay"] = float(rng.uniform(0.2, 0.5))
    return hp


ADAMW = OptimizerSpec(
    "AdamW", adam_update, _adamw_hparams,
    defaults=("learning_rate", "weight_decay", "beta_1", "beta_2", "epsilon", "amsgrad"),
    mistakes=ADAM_MISTAKES + (
        ("decay_unscaled", "weight decay not scaled by the learning rate",
         "Keras's AdamW shrinks by lr * weight_decay * w each step (the rate in force, also under "
         "a schedule), not by weight_decay * w."),
        ("decay_after_step", "weight decay applied after the Adam step",
         "apply the decay first, to the weights before this step's Adam update: "
         "w -= lr * weight_decay * w, then the Adam step."),
        ("decay_in_gradient", "weight decay added to the gradient (L2, not decoupled)",
         "AdamW's decay must not go through m and v: subtract lr * weight_decay * w from the "
         "weights directly instead of adding weight_decay * w to the gradient."),
    ), error_mistakes=(SHARED_SLOT_ERROR,),
    options=(("amsgrad", {"amsgrad": True}),), lr_range=(0.05, 0.2),
    replaces_decay=("decay_unscaled", "decay_after_step", "decay_in_gradient"))


def _adaml2_hparams(rng):
    hp = _adam_hparams(rng)
    hp["l2"] = float(rng.uniform(0.2, 0.5))
    return hp


ADAML2 = OptimizerSpec(
    "AdamL2", adam_update, _adaml2_hparams,
    defaults=("learning_rate", "l2", "beta_1", "beta_2", "epsilon", "amsgrad"),
    mistakes=ADAM_MISTAKES + (
        ("l2_doubled", "2 * l2 * w added to the gradient",
         "AdamL2's gradient term is l2 * w (the gradient of l2/2 * ||w||^2), not 2 * l2 * w."),
        ("l2_decoupled", "decoupled decay instead of the L2 gradient term",
         "AdamL2 is the COUPLED form: add l2 * w to the gradient before the moments; "
         "shrinking the weights directly is AdamW."),
    ), error_mistakes=(SHARED_SLOT_ERROR,))


EXERCISE = Exercise(
    stem="ch06_adam",
    checks=tuple(optimizer_checks(ADAM) + optimizer_checks(ADAMW) + optimizer_checks(ADAML2)),
    reference="course.references.ch06_adam",
    forbidden=KERAS_OPTIMIZERS,
)
