"""Checks for chapter 8: the LossCurveDoctor callback and the AccumulateGradients optimizer.

``LossCurveDoctor`` is compared with the course's reference doctor (``course.references``: a Keras
callback around ``DoctorRules``, the rules of the exercise's docstring in plain Python). Most
checks drive its hooks with scripted loss streams, turned into what Keras logs (each epoch's
running mean), and a stand-in model; four run it in a real ``model.fit`` engineered to show a
NaN, overfitting, a flat curve, or nothing wrong. ``DoctorRules`` with a ``variant`` is a known
mistake: it names the mistake a student's findings match.

``AccumulateGradients`` is compared with Keras's own accumulation (``gradient_accumulation_steps``
and ``global_clipnorm`` on an optimizer of the wrapped one's class): the optimizer suite's
trajectory, fit, mixed-precision, XLA and save/load runs, with the wrapper built around an inner
optimizer that the check creates (``given``: calling it is the exercise). ``accumulated`` models
its trajectory and the known mistakes in NumPy. Keras's accumulation itself is refused, however
it is switched on (``forbidden_options``).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from course.backends import to_numpy

from course.grader import core
from course.grader.ch06_adam import KERAS_OPTIMIZERS, adam_update
from course.grader.compare import default_judge
from course.grader.optimizer_suite import (NO_TORCH_COMPILE, build_model, draw_fit_data,
                                           draw_problem, learning_rate_at, optimizer_kwargs,
                                           run_fit, run_save_load, run_trajectory)
from course.grader.spec import Check, Exercise, Mistake
from course.references import DOCTOR_DEFAULTS, DoctorRules, momentum_update

# --------------------------------------------------------------------------------------------
# LossCurveDoctor: the driver that plays a run to a doctor (the student's, or DoctorRules)

CODES = ("nan", "spike", "noisy", "flat", "overfitting", "lr_too_high")


class StandIn:
    """What a callback touches of its model in the scripted checks: ``stop_training``."""

    def __init__(self):
        self.stop_training = False


def logged(epochs: list[dict]) -> list[dict]:
    """What Keras logs for scripted epochs (``{"losses": [...], "val_loss": v or None}``): each
    epoch's running means, and its validation loss."""
    out = []
    for epoch in epochs:
        total, means = 0.0, []
        for j, loss in enumerate(epoch["losses"]):
            total += loss
            means.append(total / (j + 1))
        out.append({"means": means, "val_loss": epoch.get("val_loss")})
    return out


def drive(doctor, run: list[dict]) -> dict:
    """Call a doctor's hooks in ``model.fit``'s order over logged epochs (``logged``'s form),
    with a stand-in model; stop as fit does once ``stop_training`` is set (the epoch still ends,
    with the running mean where it stopped as its loss)."""
    model = StandIn()
    doctor.set_model(model)
    doctor.on_train_begin({})
    batches = 0
    for e, epoch in enumerate(run):
        doctor.on_epoch_begin(e, {})
        logs = {}
        for j, mean in enumerate(epoch["means"]):
            doctor.on_train_batch_begin(j, {})
            doctor.on_train_batch_end(j, {"loss": mean})
            logs["loss"] = mean
            batches += 1
            if model.stop_training:
                break
        if epoch.get("val_loss") is not None:
            logs["val_loss"] = epoch["val_loss"]
        doctor.on_epoch_end(e, logs)
        if model.stop_training:
            break
    doctor.on_train_end({})
    return {"stop_training": bool(model.stop_training), "batches run": batches}


def describe(findings) -> str:
    """Findings as the line the parent compares: ``spike at step 40, epoch 1; overfitting at
    epoch 6`` (``none`` for no finding)."""

    def number(value):
        return str(int(value)) if isinstance(value, (int, float, np.number)) and value == int(
            value) else repr(value)

    parts = []
    for f in findings:
        where = (f"epoch {number(f.get('epoch'))}" if f.get("step") is None
                 else f"step {number(f.get('step'))}, epoch {number(f.get('epoch'))}")
        parts.append(f"{f.get('code')} at {where}")
    return "; ".join(parts) or "none"


def well_formed(findings) -> bool:
    """Every finding a dict with a known code, its step and epoch, a message and advice."""
    return all(isinstance(f, dict) and f.get("code") in CODES and "step" in f and "epoch" in f
               and isinstance(f.get("message"), str) and f["message"].strip()
               and isinstance(f.get("advice"), str) and f["advice"].strip() for f in findings)


def doctor_outputs(doctor, driven: dict, label: str = "") -> dict:
    prefix = f"{label}: " if label else ""
    return {f"{prefix}findings": describe(doctor.findings),
            f"{prefix}losses": to_numpy(doctor.losses, dtype=np.float64),
            f"{prefix}stop_training": driven["stop_training"],
            f"{prefix}batches run": driven["batches run"]}


# --------------------------------------------------------------------------------------------
# Scripted runs: each check's inputs are one or more labelled runs, each with the doctor's
# arguments and its epochs of true batch losses (and validation losses).


def _falling(rng, n, start=(2.0, 3.0), end=(0.4, 0.8), noise=0.04):
    """A healthy loss: it falls smoothly from about ``start`` to about ``end`` over n batches,
    with a few percent of noise (no spike, no noisy window, far from flat)."""
    first, last = rng.uniform(*start), rng.uniform(*end)
    base = last + (first - last) * np.exp(-np.arange(n) / (n / rng.uniform(2.5, 4.0)))
    return base * (1 + rng.uniform(-noise, noise, n))


def _level(rng, n, noise=0.03):
    """A flat loss: one level, a few percent of noise."""
    return rng.uniform(0.5, 2.0) * (1 + rng.uniform(-noise, noise, n))


def _epochs(losses, lengths, val=None) -> list[dict]:
    """``losses`` cut into epochs of the given lengths (the last one takes the rest)."""
    out, start = [], 0
    for e, length in enumerate(lengths):
        stop = len(losses) if e == len(lengths) - 1 else start + length
        out.append({"losses": [float(v) for v in losses[start:stop]],
                    "val_loss": None if val is None else float(val[e])})
        start = stop
    return out


def _lengths(rng, n, low, high):
    lengths = []
    while sum(lengths) < n:
        lengths.append(int(rng.integers(low, high + 1)))
    return lengths


def _healthy_run(rng, hp=None) -> dict:
    n = int(rng.integers(100, 161))
    losses = _falling(rng, n)
    lengths = _lengths(rng, n, 25, 40)
    ends = np.cumsum(lengths)[:-1].tolist() + [n]
    val = [1.1 * float(np.mean(losses[max(0, end - 10):end])) for end in ends]  # falls too
    return {"hp": {"verbose": False, **(hp or {})}, "epochs": _epochs(losses, lengths, val)}


def _median_before(losses, k, w):
    return float(np.median(losses[k - w:k]))


def _spike_inputs(rng):
    """One run with four spikes: the second too soon after the first (not reported), the third
    above spike_factor times the median but below spike_factor times the mean of a window that
    holds a spike, the fourth late, when the median of ALL past losses is far above the recent
    one. The spikes are the point: windows are never noisy (noise_ratio is high), and the loss
    falls steeply enough that no window with a spike in it is flat."""
    w, factor = int(rng.integers(8, 13)), float(rng.uniform(3.0, 5.0))
    n = 7 * w
    losses = list(_falling(rng, n, start=(8.0, 10.0), end=(0.5, 0.7), noise=0.03))
    first = w + int(rng.integers(2, 5))
    for k, scale in ((first, 2.0), (first + 2, 2.0), (first + w + 1, 1.2), (6 * w, 1.2)):
        losses[k] = scale * factor * _median_before(losses, k, w)
    return {"runs": {"spikes": {
        "hp": {"window": w, "spike_factor": factor, "noise_ratio": 5.0, "flat_tolerance": 0.0,
               "floor": 0.0, "verbose": False},
        "epochs": _epochs(losses, [n])}}}


def _window_inputs(rng):
    """A flat run (flat at window 2), and a falling run whose windows 2 and 3 are noisy."""
    w = int(rng.integers(8, 13))
    tolerance, ratio = float(rng.uniform(0.03, 0.08)), float(rng.uniform(0.4, 0.6))
    hp = {"window": w, "flat_tolerance": tolerance, "noise_ratio": ratio, "spike_factor": 50.0,
          "floor": 0.0, "verbose": False}
    flat = _level(rng, 4 * w + 3)
    falling = _falling(rng, 5 * w, noise=0.02)
    swing = float(rng.uniform(0.85, 0.95))  # batches alternate +-swing: a spread of `swing`
    falling[2 * w:4 * w] *= 1 + swing * np.where(np.arange(2 * w) % 2, 1.0, -1.0)
    return {"runs": {"flat": {"hp": hp, "epochs": _epochs(flat, [2 * w + 1, 2 * w + 2])},
                     "noisy": {"hp": hp, "epochs": _epochs(falling, [3 * w, 2 * w])}}}


def _nan_inputs(rng):
    """A run that turns NaN (and must stop there), and one that does not stop on NaN, with an
    infinite batch in one epoch and a NaN in another (each poisons the rest of its epoch's
    running mean) around a flat loss: windows count finite losses only."""
    w = int(rng.integers(8, 11))
    n, length = 4 * w, w + int(rng.integers(2, 5))
    diverging = list(_falling(rng, n))
    at = length + int(rng.integers(1, length - 1))
    diverging[at:] = [math.nan] * (n - at)
    flat = list(_level(rng, 7 * w))
    lengths = [w, w + 2, w + 3, 4 * w]
    flat[3] = math.inf
    flat[2 * w + 2 + 4] = math.nan
    return {"runs": {
        "stops": {"hp": {"window": w, "verbose": False},
                  "epochs": _epochs(diverging, [length, length, n])},
        "goes on": {"hp": {"window": w, "stop_on_nan": False, "verbose": False},
                    "epochs": _epochs(flat, lengths)}}}


def _overfit_inputs(rng):
    """Validation loss falling to its lowest at epoch e* (tied the epoch after: the FIRST one
    counts), then rising while the training loss falls: overfitting at e* + patience. And a
    run where both rise: not overfitting."""
    patience = int(rng.integers(2, 5))
    best = int(rng.integers(2, 5))
    epochs = best + patience + 2
    per_epoch = 3
    train = _falling(rng, epochs * per_epoch, noise=0.01)
    val = [1.5 - 0.1 * e for e in range(best + 1)]
    val += [val[-1]] + [val[-1] + 0.05 * e for e in range(1, epochs - best - 1)]
    rising = list(train[:per_epoch * (best + 1)]) + [
        float(train[per_epoch * best]) * (1 + 0.1 * i)
        for i in range(1, per_epoch * (epochs - best - 1) + 1)]
    # the windows are not the point here: noise_ratio high enough never to see a noisy one
    hp = {"overfit_patience": patience, "noise_ratio": 5.0, "verbose": False}
    lengths = [per_epoch] * epochs
    return {"runs": {"overfits": {"hp": hp, "epochs": _epochs(train, lengths, val)},
                     "diverges": {"hp": hp, "epochs": _epochs(rising, lengths, val)}}}


def _lr_too_high_inputs(rng):
    """The last complete window no lower than the one before and noisy: the rate is still too
    high (reported at the last step, three batches after that window). And the same with a
    last window that is lower: only noisy."""
    w = 2 * int(rng.integers(4, 6))  # even: the alternating batches average to the level
    hp = {"window": w, "floor": 0.0, "verbose": False}
    runs = {}
    for label, rise in (("too high", 1.05), ("improving", 0.8)):
        losses = _falling(rng, 4 * w + 3, noise=0.02)
        level = rise * float(np.mean(losses[2 * w:3 * w]))
        losses[3 * w:4 * w] = level * (1 + 0.8 * np.where(np.arange(w) % 2, 1.0, -1.0))
        losses[4 * w:] = level
        runs[label] = {"hp": hp, "epochs": _epochs(losses, [2 * w, 2 * w + 3])}
    return {"runs": runs}


def _epochs_inputs(rng):
    """Steps go on across epochs: a flat loss over six epochs (flat completes in epoch 1 or
    later), with a spike late in epoch 3 (past the window's length within its epoch) that makes
    its window noisy; the windows after it are calm again."""
    w = int(rng.integers(6, 10))
    length = w + int(rng.integers(3, 7))
    losses = _level(rng, 6 * length)
    at = 3 * length + w + 1
    losses[at] = 10.0 * float(np.median(losses[at - w:at]))
    return {"runs": {"epochs": {"hp": {"window": w, "spike_factor": 5.0, "floor": 0.0,
                                       "verbose": False},
                                "epochs": _epochs(losses, [length] * 6)}}}


def _floor_inputs(rng):
    """A good run that converges: the loss falls from about 2.5 to about 1% of that, and once
    it is below 1.2% of its start its batches scatter by a factor of two or more (as a nearly fit
    model's do: a few hard examples make most of a batch's loss). Relative to their own small
    level those batches look like spikes and noisy windows; relative to the floor, a fifth of
    the start, they are nothing. One real spike late (three times the floored threshold) is
    reported, and makes its window noisy."""
    w = int(rng.integers(10, 16))
    n = 10 * w
    first = rng.uniform(2.0, 3.0)
    base = first * (0.01 + 0.99 * np.exp(-np.arange(n) / (n / 13)))
    sigma = np.where(base < 0.012 * first, 0.8, 0.04)
    losses = base * np.exp(sigma * np.clip(rng.normal(size=n), -2.0, 2.0))
    at = n - 3 * w + w // 2  # in window 7 of 10: the last windows are calm again
    losses[at] = 3 * DOCTOR_DEFAULTS["spike_factor"] * DOCTOR_DEFAULTS["floor"] * float(
        np.mean(losses[:w]))
    lengths = _lengths(rng, n, 2 * w, 3 * w)
    return {"runs": {"converges": {"hp": {"window": w, "verbose": False},
                                   "epochs": _epochs(losses, lengths)}}}


def _losses_inputs(rng):
    """A healthy run over several epochs of different lengths: the true losses recovered."""
    return {"runs": {"healthy": _healthy_run(rng, {"window": int(rng.integers(10, 21))})}}


def _healthy_inputs(rng):
    """Healthy runs from four seeds, the doctor's defaults: nothing to report."""
    return {"runs": {f"seed {i}": _healthy_run(np.random.default_rng(rng.integers(2**31)))
                     for i in range(4)}}


def run_scripted(impl, inputs, ctx):
    out = {}
    for label, run in inputs["runs"].items():
        doctor = impl.LossCurveDoctor(**run["hp"])
        out.update(doctor_outputs(doctor, drive(doctor, logged(run["epochs"])), label))
        out[f"{label}: findings well formed"] = well_formed(doctor.findings)
        summary = doctor.summary()
        out[f"{label}: summary() has a line per finding, or one"] = (
            isinstance(summary, str) and bool(summary.strip())
            and len(summary.strip().splitlines()) >= len(doctor.findings))
    return out


def scripted_model(inputs, variant=None) -> dict:
    """What ``run_scripted`` returns, from ``DoctorRules`` with ``variant``."""
    out = {}
    for label, run in inputs["runs"].items():
        doctor = DoctorRules(run["hp"], variant)
        out.update(doctor_outputs(doctor, drive(doctor, logged(run["epochs"])), label))
    return out


# --------------------------------------------------------------------------------------------
# Real model.fit runs: each engineered to show one thing (or nothing). What the doctor was fed
# is recorded by a probe after it in the callback list, so that a mistake's model replays the
# student's own run.

FIT_RUNS = {
    # SGD at a rate ~20x past stability on a linear regression: the loss overflows within two
    # epochs, then NaN
    "nan": {"hidden": 0, "optimizer": ("SGD", (30.0, 60.0)), "n": 64, "batch_size": 8,
            "epochs": 4, "validation": 0, "noise_labels": False},
    # a 32-unit network memorizing 16 examples of pure-noise labels from a zero output layer (the
    # best guess for noise): validation is at its best after the first epoch or two, then worse
    "overfitting": {"hidden": 32, "optimizer": ("Adam", (0.02, 0.04)), "n": 16, "batch_size": 8,
                    "epochs": 8, "validation": 64, "noise_labels": True},
    # a rate so small that three epochs (three windows of 20 batches) barely move the loss
    "flat": {"hidden": 0, "optimizer": ("SGD", (1e-6, 1e-5)), "n": 640, "batch_size": 32,
             "epochs": 3, "validation": 0, "noise_labels": False},
    # a sensible rate on a learnable problem, with validation
    "healthy": {"hidden": 8, "optimizer": ("Adam", (0.003, 0.006)), "n": 640, "batch_size": 32,
                "epochs": 3, "validation": 128, "noise_labels": False},
}
OBSERVED = ("logged means", "logged batch index", "logged val_loss")


def _fit_run_inputs(kind: str):
    setup = FIT_RUNS[kind]

    def inputs(rng):
        total = setup["n"] + setup["validation"]
        data = draw_fit_data(rng, n=total, hidden=setup["hidden"])
        if setup["noise_labels"]:
            data["y"] = rng.normal(size=data["y"].shape).astype(np.float32)
            data["weights"][2] = np.zeros_like(data["weights"][2])
        name, (low, high) = setup["optimizer"]
        return {**data, "kind": kind, "optimizer": name, "learning_rate": float(rng.uniform(low, high))}

    return inputs


def run_doctor_fit(impl, inputs, ctx):
    import keras

    setup = FIT_RUNS[inputs["kind"]]

    class Probe(keras.callbacks.Callback):
        """After the doctor: the logs it was given."""

        def __init__(self):
            super().__init__()
            self.means, self.index, self.val = [], [], []

        def on_train_batch_end(self, batch, logs=None):
            self.means.append(float(logs["loss"]))
            self.index.append(int(batch))

        def on_epoch_end(self, epoch, logs=None):
            self.val.append(float(logs.get("val_loss", math.nan)))

    n = setup["n"]
    model = build_model(inputs)
    optimizer = getattr(keras.optimizers, inputs["optimizer"])(learning_rate=inputs["learning_rate"])
    model.compile(optimizer=optimizer, loss="mse")
    doctor, probe = impl.LossCurveDoctor(verbose=False), Probe()
    validation = (inputs["x"][n:], inputs["y"][n:]) if setup["validation"] else None
    model.fit(inputs["x"][:n], inputs["y"][:n], batch_size=setup["batch_size"],
              epochs=setup["epochs"], shuffle=False, verbose=0, validation_data=validation,
              callbacks=[doctor, probe])
    return {"findings": describe(doctor.findings),
            "losses": to_numpy(doctor.losses, dtype=np.float64),
            "stop_training": bool(model.stop_training), "batches run": len(probe.means),
            "findings well formed": well_formed(doctor.findings),
            "logged means": to_numpy(probe.means), "logged batch index": to_numpy(probe.index),
            "logged val_loss": to_numpy(probe.val)}


def observed_run(outputs: dict) -> list[dict]:
    """The logged epochs (``logged``'s form) of a recorded fit: a new epoch at each batch 0."""
    run = []
    for mean, index in zip(outputs["logged means"], outputs["logged batch index"]):
        if index == 0:
            run.append({"means": [], "val_loss": None})
        run[-1]["means"].append(float(mean))
    for epoch, val in zip(run, outputs["logged val_loss"]):
        epoch["val_loss"] = None if math.isnan(val) else float(val)
    return run


def fit_model(inputs, variant=None) -> dict:
    """What ``run_doctor_fit`` returns of the doctor, from ``DoctorRules`` with ``variant`` fed
    the logs the student's own run recorded (``inputs["observed"]``)."""
    doctor = DoctorRules({"verbose": False}, variant)
    return doctor_outputs(doctor, drive(doctor, observed_run(inputs["observed"])))


# --------------------------------------------------------------------------------------------
# The doctor's known mistakes, each a variant of DoctorRules

DOCTOR_MISTAKES = {
    "running_mean": ("Keras's running epoch mean taken as the batch loss",
                     "in Keras 3, logs['loss'] after batch j of an epoch is the mean of batches "
                     "0..j; the batch's own loss is (j + 1) * mean_j - j * mean_(j-1), with j the "
                     "`batch` argument and mean_(-1) = 0 at the start of every epoch."),
    "global_index": ("the running mean undone with the global step",
                     "the running mean restarts every epoch, and so does `batch`: undo it with "
                     "j = batch, (j + 1) * mean_j - j * mean_(j-1), not with the step counted "
                     "across epochs."),
    "steps_restart": ("steps that restart every epoch",
                      "a finding's step is the global batch index, counted from 0 across epochs "
                      "(len(self.losses) before appending), not the `batch` argument, which "
                      "restarts at 0 every epoch."),
    "spike_mean": ("a spike judged against the mean instead of the median",
                   "compare the loss with spike_factor times the MEDIAN of the last window "
                   "finite losses: one earlier spike in the window inflates their mean and hides "
                   "the next spike, but barely moves the median."),
    "spike_all_past": ("a spike judged against all past losses",
                       "the median is over the last `window` finite losses only: the loss falls "
                       "as training goes on, and the median of all past losses stays far above "
                       "where the loss is now."),
    "spike_every_batch": ("spikes reported on consecutive batches",
                          "after a spike at step s, the next one can be reported at step "
                          "s + window at the earliest: one bad stretch is one finding."),
    "overlapping_windows": ("window rules on overlapping windows",
                            "the windows do not overlap: window i closes each time the count of "
                            "finite losses reaches a multiple of `window` (not after every batch "
                            "once there are `window` of them)."),
    "findings_repeated": ("noisy or flat reported at every window",
                          "each kind of finding but 'spike' is reported once, at the first "
                          "window (or batch, or epoch) where it holds."),
    "no_floor": ("spikes and spread judged without the floor",
                 "near the end of a good run the loss is a small fraction of where it started, "
                 "and its batches scatter by large factors of that small level: harmless. "
                 "Judge spikes and spread against level(x) = max(x, floor * |mean_0|), with "
                 "mean_0 the first window's mean."),
    "nan_repeated": ("every non-finite loss reported",
                     "report only the first non-finite loss: after a NaN the running mean stays "
                     "NaN for the rest of the epoch, and one finding says it."),
    "nan_in_windows": ("non-finite losses counted in the windows",
                       "a NaN or infinite loss takes no part in the spike median or the windows: "
                       "keep a list of the finite losses and apply those rules to it."),
    "no_nan_stop": ("no stop on a non-finite loss",
                    "with stop_on_nan, set self.model.stop_training = True when the loss is NaN "
                    "or infinite: nothing useful comes after."),
    "overfit_no_patience": ("overfitting reported without the patience",
                            "report overfitting only when the best validation loss is "
                            "overfit_patience or more epochs old (epoch - best_epoch >= "
                            "overfit_patience): a single worse epoch is noise."),
    "overfit_patience_off_by_one": ("the overfitting patience off by one",
                                    "report at the first epoch with epoch - best_epoch >= "
                                    "overfit_patience (not >), best_epoch being the FIRST epoch "
                                    "of the lowest validation loss."),
    "overfit_ignores_training": ("overfitting without a falling training loss",
                                 "overfitting means the training loss still falls while the "
                                 "validation loss does not: also require t_e < t_(best epoch); "
                                 "if both rise, the run diverges, it does not overfit."),
}


def _doctor_mistakes(model, *variants) -> tuple[Mistake, ...]:
    return tuple(Mistake(DOCTOR_MISTAKES[v][0], DOCTOR_MISTAKES[v][1], id=v,
                         outputs=lambda inputs, _v=v: model(inputs, _v)) for v in variants)


def _scripted(name, inputs, variants, description, weight=1.0) -> Check:
    return Check(f"losscurvedoctor.{name}", run_scripted, description, inputs=inputs,
                 weight=weight, mistakes=_doctor_mistakes(scripted_model, *variants))


def _fit_check(kind, variants, description) -> Check:
    check = Check(f"losscurvedoctor.fit_{kind}", run_doctor_fit, description,
                  inputs=_fit_run_inputs(kind), weight=0.5,
                  mistakes=_doctor_mistakes(fit_model, *variants))

    def judge(student, reference, inputs):
        # the logs each run was fed are not graded: a run that did not stop logged more
        graded = {k: v for k, v in reference.items() if k not in OBSERVED}
        return default_judge(check, student, graded, {**inputs, "observed": student})

    return dataclasses.replace(check, judge=judge)


def run_doctor_interface(impl, inputs, ctx):
    import inspect

    import keras

    cls = impl.LossCurveDoctor
    parameters = inspect.signature(cls.__init__).parameters
    out = {"is a keras Callback": issubclass(cls, keras.callbacks.Callback)}
    for name in DOCTOR_DEFAULTS:
        p = parameters.get(name)
        out[f"default {name}"] = core.plain(p.default if p is not None else "<missing>")
    try:
        cls(not_an_argument=1.0)
        out["rejects_unknown_argument"] = False
    except (TypeError, ValueError):
        out["rejects_unknown_argument"] = True
    doctor = cls()
    out["losses starts empty"] = list(getattr(doctor, "losses", [None])) == []
    out["findings starts empty"] = list(getattr(doctor, "findings", [None])) == []
    return out


def _doctor_config_inputs(rng):
    return {"kwargs": {"window": int(rng.integers(5, 40)),
                       "spike_factor": float(rng.uniform(2.0, 8.0)),
                       "flat_tolerance": float(rng.uniform(0.01, 0.2)),
                       "noise_ratio": float(rng.uniform(0.2, 1.0)),
                       "overfit_patience": int(rng.integers(1, 8)),
                       "floor": float(rng.uniform(0.0, 0.3)),
                       "stop_on_nan": bool(rng.integers(2)), "verbose": bool(rng.integers(2))}}


DOCTOR_CHECKS = [
    Check("losscurvedoctor.interface", run_doctor_interface, weight=0.5, rtol=1e-9, atol=0.0,
          description="a keras Callback with the specified defaults; empty losses and findings"),
    Check("losscurvedoctor.config", core.run_config("LossCurveDoctor", tuple(DOCTOR_DEFAULTS)),
          inputs=_doctor_config_inputs, weight=0.5, rtol=1e-9, atol=0.0,
          description="get_config / from_config / keras serialization round trip"),
    _scripted("losses", _losses_inputs, ("running_mean", "global_index"),
              "the true batch losses recovered from Keras's running means, over epochs of "
              "different lengths"),
    _scripted("spike", _spike_inputs, ("spike_mean", "spike_all_past", "spike_every_batch"),
              "spikes against the median of the last window, one per window of batches"),
    _scripted("windows", _window_inputs, ("overlapping_windows", "findings_repeated"),
              "noisy and flat, on consecutive windows, each reported once"),
    _scripted("nan", _nan_inputs, ("no_nan_stop", "nan_repeated", "nan_in_windows"),
              "a non-finite loss: reported once, training stopped (unless stop_on_nan=False), "
              "and left out of the windows"),
    _scripted("overfitting", _overfit_inputs,
              ("overfit_no_patience", "overfit_patience_off_by_one", "overfit_ignores_training"),
              "validation loss rising for overfit_patience epochs while the training loss falls"),
    _scripted("lr_too_high", _lr_too_high_inputs, (), weight=0.5,
              description="a last window no lower and noisy: the rate is still too high"),
    _scripted("epochs", _epochs_inputs, ("steps_restart", "running_mean", "global_index"),
              "over several epochs: steps go on, the running mean restarts"),
    _scripted("floor", _floor_inputs, ("no_floor",),
              "a run that converges near zero: its scatter there judged against the floor, one "
              "real spike"),
    _scripted("healthy", _healthy_inputs, ("overlapping_windows",),
              description="healthy runs from several seeds, the defaults: no finding, and a "
                          "summary"),
    _fit_check("nan", ("no_nan_stop", "running_mean"),
               "model.fit at a diverging rate: the NaN found, training stopped"),
    _fit_check("overfitting", ("overfit_no_patience", "overfit_patience_off_by_one"),
               "model.fit memorizing noise labels: overfitting found"),
    _fit_check("flat", ("overlapping_windows", "running_mean"),
               "model.fit at a tiny rate: a flat curve found"),
    _fit_check("healthy", ("running_mean",),
               "model.fit that trains well: no finding"),
]

# --------------------------------------------------------------------------------------------
# AccumulateGradients: Keras's accumulation on the inner optimizer, and its mistakes in NumPy


def wrapped(impl, inputs):
    """In a worker: the check's inner optimizer (a Keras built-in, created here, not by the
    student's code), wrapped in the exercise's AccumulateGradients."""
    import keras

    inner = getattr(keras.optimizers, inputs["inner"])(**optimizer_kwargs(inputs))
    return impl.AccumulateGradients(inner, **inputs["wrapper"])


def _global_clip(grads, clipnorm):
    norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
    return [g * clipnorm / max(norm, clipnorm) for g in grads]


def accumulated(inputs: dict, variant: str | None = None) -> dict:
    """Replay a trajectory through the wrapper in float64 NumPy: the mean of ``steps``
    micro-batch gradients, globally clipped, applied once every ``steps`` micro-batches by the
    inner optimizer (``adam_update`` or ``momentum_update``, the base class's weight decay
    first) at step t = updates + 1 and rate ``learning_rate_at(micro-batch)``."""
    hp = {k: float(np.float32(v)) if isinstance(v, float) else v
          for k, v in inputs["kwargs"].items()}
    hp.setdefault("momentum", 0.0)
    inner = adam_update if inputs["inner"] == "Adam" else momentum_update
    steps, clipnorm = inputs["wrapper"]["steps"], inputs["wrapper"].get("global_clipnorm")
    clipnorm = None if clipnorm is None or variant == "no_clip" else float(np.float32(clipnorm))
    ws = [w.astype(np.float64) for w in inputs["w0"]]
    sums = [np.zeros_like(w) for w in ws]
    states = [{} for _ in ws]
    out, updates = [[] for _ in ws], 0
    with np.errstate(all="ignore"):
        for k in range(inputs["steps"]):
            grads = [(inputs["curvature"][i] * w.astype(np.float32)
                      + inputs["noise"][k][i]).astype(np.float64) for i, w in enumerate(ws)]
            if clipnorm and variant == "clip_each_micro_batch":
                grads = _global_clip(grads, clipnorm)
            if variant == "every_micro_batch":
                mean = grads
            elif (k + 1) % steps:
                sums = [s + g for s, g in zip(sums, grads)]
                mean = None
            else:
                mean = [g + s for g, s in zip(grads, sums)]
                if variant != "sum":
                    mean = [m / steps for m in mean]
                if variant != "no_reset":
                    sums = [np.zeros_like(s) for s in sums]
            if mean is not None:
                if clipnorm and variant not in ("clip_each_micro_batch", "every_micro_batch"):
                    mean = _global_clip(mean, clipnorm)
                lr = learning_rate_at(inputs, updates if variant == "schedule_at_update_count"
                                      else k)
                t = k + 1 if variant == "inner_step_every_micro_batch" else updates + 1
                for i, (w, g) in enumerate(zip(ws, mean)):
                    if hp.get("weight_decay"):
                        w = w - lr * hp["weight_decay"] * w
                    ws[i] = inner(states[i], w, g, lr, t, hp)
                updates += 1
            for i, w in enumerate(ws):
                out[i].append(w)
    return {f"w{i}_trajectory": np.stack(trajectory) for i, trajectory in enumerate(out)}


def counting(inputs: dict, variant: str | None = None) -> dict:
    """What ``run_counting`` records: the updates applied and the rate in force after each
    call (the schedule at the number of micro-batches seen)."""
    steps = inputs["wrapper"]["steps"]
    calls = np.arange(1, inputs["steps"] + 1)
    updates = calls // steps
    iterations = calls if variant == "iterations_micro_batches" else updates
    at = updates if variant == "schedule_at_update_count" else calls
    return {"iterations after each call": iterations.astype(np.float64),
            "learning_rate after each call": to_numpy(
                [learning_rate_at(inputs, int(s)) for s in at])}


def run_counting(impl, inputs, ctx):
    import keras

    optimizer = wrapped(impl, inputs)
    variable = keras.Variable(inputs["w0"][0])
    iterations, rates = [], []
    for step in range(inputs["steps"]):
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(inputs["noise"][step][0]),
                                    variable)])
        iterations.append(int(to_numpy(optimizer.iterations)))
        rates.append(float(to_numpy(optimizer.learning_rate)))
    return {"iterations after each call": to_numpy(iterations, dtype=np.float64),
            "learning_rate after each call": to_numpy(rates)}


def _adam(rng) -> dict:
    # a low beta_2 and a large epsilon: Adam's bias correction shows at every step
    return {"beta_1": float(rng.uniform(0.6, 0.9)), "beta_2": float(rng.uniform(0.9, 0.99)),
            "epsilon": float(rng.uniform(0.05, 0.5))}


def _problem(inner: str, extra=None, *, steps=(2, 4), clip=False, schedule=False, shapes=None):
    """A trajectory of 20+ micro-batches through the wrapper around ``inner``."""

    def inputs(rng):
        out = draw_problem(rng, shapes=shapes, schedule=schedule)
        kwargs = {"learning_rate": float(rng.uniform(0.05, 0.2))}
        kwargs.update(extra(rng) if extra else {})
        wrapper = {"steps": int(rng.integers(steps[0], steps[1] + 1))}
        if clip:  # below the mean gradient's norm: the clipping acts at every update
            wrapper["global_clipnorm"] = float(rng.uniform(0.2, 0.5))
        return {**out, "inner": inner, "kwargs": kwargs, "wrapper": wrapper}

    return inputs


def _wrapper_fit_inputs(rng):
    out = draw_fit_data(rng, hidden=0)
    return {**out, "inner": "Adam", "kwargs": {"learning_rate": float(rng.uniform(0.02, 0.08)),
                                               **_adam(rng)},
            "schedule": {"initial": float(rng.uniform(0.05, 0.2)), "decay_steps": 4,
                         "decay_rate": float(rng.uniform(0.3, 0.7))},
            # 4 micro-batches an epoch: updates straddle epochs, and the model saved after two
            # epochs is saved mid-accumulation
            "wrapper": {"steps": 3, "global_clipnorm": float(rng.uniform(0.3, 1.0))}}


WRAPPER_MISTAKES = {
    "sum": ("the sum of the micro-batch gradients instead of their mean",
            "apply the MEAN gradient, (g + accumulated) / steps: the update of one batch `steps` "
            "times larger, whose loss is a mean over its examples."),
    "every_micro_batch": ("an update on every micro-batch",
                          "only every steps-th call updates the weights: on the others, add the "
                          "gradients to the accumulators and leave the weights as they were "
                          "(keep the new values only where (k + 1) % steps == 0, with "
                          "ops.where)."),
    "no_reset": ("accumulators never reset",
                 "after an update, set every accumulator back to zero: the next update must "
                 "average only its own `steps` micro-batches."),
    "clip_each_micro_batch": ("each micro-batch clipped instead of their mean",
                              "global_clipnorm clips the MEAN gradient, once per update, to that "
                              "global norm (over all variables), as Keras does; clipping each "
                              "micro-batch gives a different (smaller) update."),
    "no_clip": ("global_clipnorm ignored",
                "clip the mean gradient to the global norm: m * c / max(||m||, c) with ||m|| "
                "over all variables together."),
    "inner_step_every_micro_batch": ("the wrapped optimizer's step count advancing every "
                                     "micro-batch",
                                     "the wrapped optimizer's iterations counts updates only "
                                     "(Adam's bias correction uses t = updates + 1): leave its "
                                     "counter to it, and let the schedule see the micro-batch "
                                     "another way."),
    "schedule_at_update_count": ("the schedule evaluated at the update count",
                                 "a schedule sees every micro-batch, as in Keras's "
                                 "accumulation: the update on micro-batch k uses schedule(k). "
                                 "The wrapped optimizer evaluates its schedule at its own step "
                                 "count (the updates): hand it the rate of micro-batch k while "
                                 "it applies the update."),
    "iterations_micro_batches": ("iterations counting micro-batches",
                                 "as in Keras's accumulation, the wrapper's `iterations` is the "
                                 "number of updates applied: return the wrapped optimizer's."),
}

PYTHON_IF = Mistake(
    "a Python `if` on the step tensor",
    "inside model.fit the step counter is a symbolic tensor and `if` on it raises: compute "
    "the update's new values at every call and keep them only on an update step, "
    "v.assign(ops.where(is_update, new, old)) (an ops.cond whose branches assign variables "
    "works on TensorFlow but not on JAX).",
    error=r"(OperatorNotAllowedInGraph|Python bool|symbolic tensor)", id="python_if_on_step")


def _wrapper_mistakes(model, *variants) -> tuple[Mistake, ...]:
    return tuple(Mistake(WRAPPER_MISTAKES[v][0], WRAPPER_MISTAKES[v][1], id=v,
                         outputs=lambda inputs, _v=v: model(inputs, _v)) for v in variants)


TRAJECTORY_MISTAKES = ("sum", "every_micro_batch", "no_reset", "inner_step_every_micro_batch")


def run_wrapper_interface(impl, inputs, ctx):
    import inspect

    import keras

    cls = impl.AccumulateGradients
    parameters = inspect.signature(cls.__init__).parameters
    out = {"is a keras Optimizer": isinstance(cls(keras.optimizers.SGD(0.1)),
                                              keras.optimizers.Optimizer)}
    for name, default in (("steps", 2), ("global_clipnorm", None)):
        p = parameters.get(name)
        out[f"default {name}"] = core.plain(p.default if p is not None else "<missing>")
    for label, kwargs in (("rejects_unknown_argument", {"not_an_argument": 1.0}),
                          ("rejects steps=0", {"steps": 0}),
                          ("rejects a global_clipnorm <= 0", {"global_clipnorm": -1.0})):
        try:
            cls(keras.optimizers.SGD(0.1), **kwargs)
            out[label] = False
        except (TypeError, ValueError):
            out[label] = True
    return out


def run_wrapper_config(impl, inputs, ctx):
    import keras

    inner = keras.optimizers.Adam(learning_rate=keras.optimizers.schedules.ExponentialDecay(
        inputs["initial"], 5, 0.5), beta_1=inputs["beta_1"])
    config, cloned, deserialized, restored = core.round_trip(
        impl.AccumulateGradients(inner, steps=inputs["steps"],
                                 global_clipnorm=inputs["global_clipnorm"]))
    out = {"same_class_after_deserialize": type(restored).__name__ == "AccumulateGradients"}
    for label, cfg in (("config", config), ("from_config", cloned),
                       ("deserialized", deserialized)):
        out.update({f"{label} {k}": v for k, v in
                    core.config_values(cfg, ("steps", "global_clipnorm")).items()})
        inner_config = cfg.get("optimizer")
        if not (isinstance(inner_config, dict) and isinstance(inner_config.get("config"), dict)):
            out[f"{label} optimizer"] = f"<not a serialized optimizer: {inner_config!r:.80}>"
            continue
        # as serialized, or as Keras's deserializers leave a config they read: the optimizer's
        # class name in lower case, its schedule an object
        out[f"{label} optimizer class"] = str(inner_config.get("class_name")).lower()
        out[f"{label} optimizer beta_1"] = core.plain(inner_config["config"].get("beta_1"))
        rate = inner_config["config"].get("learning_rate")
        out[f"{label} optimizer schedule"] = str(rate.get("class_name") if isinstance(rate, dict)
                                                 else type(rate).__name__)
    return out


def _wrapper_config_inputs(rng):
    return {"initial": float(rng.uniform(0.01, 0.1)), "beta_1": float(rng.uniform(0.5, 0.9)),
            "steps": int(rng.integers(2, 9)), "global_clipnorm": float(rng.uniform(0.1, 5.0))}


WRAPPER_CHECKS = [
    Check("accumulategradients.interface", run_wrapper_interface, weight=0.5, rtol=1e-9, atol=0.0,
          description="a keras Optimizer with defaults steps=2, global_clipnorm=None; bad "
                      "arguments refused"),
    Check("accumulategradients.config", run_wrapper_config, inputs=_wrapper_config_inputs,
          weight=0.5, rtol=1e-6, atol=0.0,
          description="get_config (the wrapped optimizer serialized, steps, global_clipnorm) / "
                      "from_config / keras serialization round trip"),
    Check("accumulategradients.counting", run_counting, inputs=_problem("SGD", schedule=True),
          weight=0.5, mistakes=_wrapper_mistakes(counting, "iterations_micro_batches",
                                                 "schedule_at_update_count"),
          description="iterations (the updates applied) and learning_rate (the schedule at the "
                      "micro-batch) after each call"),
    Check("accumulategradients.sgd", run_trajectory(wrapped), inputs=_problem("SGD"),
          mistakes=_wrapper_mistakes(accumulated, *TRAJECTORY_MISTAKES),
          description="around SGD: 20+ micro-batches over three variables of different shapes"),
    Check("accumulategradients.adam", run_trajectory(wrapped), inputs=_problem("Adam", _adam),
          weight=1.5, mistakes=_wrapper_mistakes(accumulated, *TRAJECTORY_MISTAKES),
          description="around Adam: its bias correction counts updates, not micro-batches"),
    Check("accumulategradients.schedule", run_trajectory(wrapped),
          inputs=_problem("SGD", lambda rng: {"momentum": float(rng.uniform(0.5, 0.9))},
                          steps=(3, 4), schedule=True),
          mistakes=_wrapper_mistakes(accumulated, "schedule_at_update_count",
                                     *TRAJECTORY_MISTAKES),
          description="around momentum SGD with a LearningRateSchedule: the update on "
                      "micro-batch k uses schedule(k)"),
    Check("accumulategradients.global_clipnorm", run_trajectory(wrapped),
          inputs=_problem("Adam", lambda rng: {**_adam(rng),
                                               "weight_decay": float(rng.uniform(0.1, 0.4))},
                          clip=True),
          # a sum and a mean clipped to the same norm are the same update: "sum" shows elsewhere
          mistakes=_wrapper_mistakes(accumulated, "clip_each_micro_batch", "no_clip",
                                     *(m for m in TRAJECTORY_MISTAKES if m != "sum")),
          description="global_clipnorm on the mean gradient, and the wrapped Adam's weight "
                      "decay once per update"),
    Check("accumulategradients.fit", run_fit(wrapped), inputs=_wrapper_fit_inputs, weight=0.5,
          mistakes=(PYTHON_IF,), description="model.fit losses and weights"),
    Check("accumulategradients.mixed_float16", run_fit(wrapped, policy="mixed_float16"),
          inputs=_wrapper_fit_inputs, weight=0.5, rtol=2e-3, atol=2e-3, mistakes=(PYTHON_IF,),
          description="mixed_float16: compile() wraps it in a LossScaleOptimizer"),
    Check("accumulategradients.jit_compile", run_fit(wrapped, jit_compile=True),
          inputs=_wrapper_fit_inputs, weight=0.5, mistakes=(PYTHON_IF,), timeout_factor=2.0,
          unsupported=NO_TORCH_COMPILE, description="model.fit with jit_compile=True (XLA)"),
    Check("accumulategradients.save_load", run_save_load(wrapped), inputs=_wrapper_fit_inputs,
          mistakes=(PYTHON_IF,),
          description=".keras save/load mid-accumulation, with the accumulators and the wrapped "
                      "optimizer's state, then more steps"),
]


EXERCISE = Exercise(
    stem="ch08_training_recipe",
    checks=tuple(DOCTOR_CHECKS + WRAPPER_CHECKS),
    reference="course.references.ch08_training_recipe",
    # Keras's own callbacks for what the doctor does in part (stop on NaN, watch val_loss)
    forbidden=("TerminateOnNaN", "EarlyStopping"),
    # the optimizer the wrapper wraps is one of these, created by the checks
    given=KERAS_OPTIMIZERS,
    forbidden_options=("gradient_accumulation_steps",),
)
