# This file is generated from solutions/ch08_training_recipe.py by `course release`: fill in the 20 parts
# that raise NotImplementedError, then run `course grade` to check your work.
"""Chapter 8 — the training recipe: reading a run's loss curves, and gradient accumulation.

Every backend: write it with ``keras.ops`` only (``ops.sqrt``, ``ops.sum``, ``ops.where``),
never ``tf.*``, so Keras runs it on TensorFlow, JAX and PyTorch alike (``course grade
--backend jax`` grades it there); a component that calls TensorFlow directly scores 0 on
the other backends.

Two components the recipe leans on, each a real Keras subclass:

- ``LossCurveDoctor``, a ``keras.callbacks.Callback`` that watches the loss of every batch (and
  the validation loss of every epoch) while ``model.fit`` runs, and names what looks wrong — a NaN,
  a spike, a noisy or flat curve, overfitting, a rate still too high at the end — each with advice;
- ``AccumulateGradients``, a ``keras.optimizers.Optimizer`` that wraps another optimizer and
  applies the mean gradient of ``steps`` micro-batches once every ``steps`` calls: the update of a
  batch ``steps`` times larger, in the memory of a small one.

The grader compares the doctor with the course's reference doctor (the rules below, exactly) on
scripted loss streams and on real ``model.fit`` runs, and the wrapper with Keras's own
accumulation (``gradient_accumulation_steps``) on the same inner optimizer. It refuses a wrapper
that leans on Keras's accumulation, and a doctor that subclasses or calls Keras's
``TerminateOnNaN`` or ``EarlyStopping``.

Keras 3 quirk the doctor must undo: ``logs["loss"]`` at the end of batch j of an epoch (j counts
from 0 in each epoch; it is the ``batch`` argument) is the MEAN loss of batches 0..j of that
epoch, not batch j's own loss (chapter 7's LRFinder met it too).
"""

import contextlib
import math

import keras
import numpy as np
from keras import ops

Schedule = keras.optimizers.schedules.LearningRateSchedule

# What each finding tells the student, and what to try: the doctor's words, given. The messages
# are filled in with the numbers that triggered the finding.
ADVICE = {
    "nan": "lower the learning rate (10x), clip the gradients (global_clipnorm=1.0), check the "
           "inputs for NaN; under float16, make sure a loss scale is in use",
    "spike": "clip the gradients (global_clipnorm=1.0), add a warmup, or lower the learning rate; "
             "look for a bad batch in the data",
    "noisy": "average more examples per update (a larger batch, or AccumulateGradients), lower "
             "the learning rate, or decay it",
    "flat": "raise the learning rate (an LR range test finds one), standardize the inputs, check "
            "that the labels match the inputs",
    "overfitting": "stop at the best epoch (EarlyStopping with restore_best_weights=True), add "
                   "weight decay or augmentation, or train on more data",
    "lr_too_high": "decay the learning rate towards the end (cosine or step decay), or start "
                   "lower",
}


@keras.saving.register_keras_serializable(package="course")
class LossCurveDoctor(keras.callbacks.Callback):
    """Reads a run's loss curves while it trains and reports what looks wrong, with advice.

    w = window; b_k = the true loss of global batch k (k counts batches from 0 across epochs).

    b          = (j + 1) * mean_j - j * mean_(j-1)     (mean_j: logs["loss"] after batch j of
                                                        this epoch; mean_(-1) = 0)
    "nan"      b is NaN or infinite: reported the first time; stop training if stop_on_nan.
               A non-finite b is kept in ``losses`` but takes no part in any rule below.
    level(x)   max(x, floor * |mean_0|): near zero a loss's relative jumps are large and
               harmless (0.02 to 0.1 late in a good run), so every level a rule divides by or
               multiplies is at least a fraction ``floor`` of where the loss started (mean_0,
               the first window's mean).
    "spike"    at least w finite losses before b, and b > spike_factor * level(median(the last
               w of them)); after a spike at step s the next one can be reported at step s + w.
    windows    every time the count of finite losses reaches a multiple of w, window i (from 0)
               is the last w finite losses: mean_i, cv_i = std_i / level(|mean_i|) (population
               std).
    "noisy"    the first window with cv_i > noise_ratio.
    "flat"     the first window i >= 2 with mean_i > (1 - flat_tolerance) * mean_0.
    "overfitting"  at the end of epoch e, over the epochs with finite training and validation
               losses t and v: e* = the first epoch of the lowest v; reported when
               e - e* >= overfit_patience and t_e < t_e* (the training loss still falls).
    "lr_too_high"  at the end of training, with at least two windows: the last one, L, has
               mean_L >= mean_(L-1) and cv_L > noise_ratio (no progress, only jumps).

    Each kind of finding is reported once, except spikes. Within one batch the order is "nan",
    "spike", "noisy", "flat". A finding is a dict ``{"code", "step", "epoch", "message",
    "advice"}``: ``step`` is k (None for "overfitting"), ``epoch`` counts from 0.

    Args:
        window: w, the number of batches a window and a spike's median look at.
        spike_factor: how many times the recent median a batch's loss must exceed to be a spike.
        flat_tolerance: the fraction of its starting level the loss must lose by window 2.
        noise_ratio: the spread (std / mean) above which a window is noisy.
        overfit_patience: epochs since the best validation loss before overfitting is reported.
        floor: the fraction of the starting level below which the spike and spread rules stop
            looking closer (see level above).
        stop_on_nan: set ``model.stop_training`` on a non-finite loss.
        verbose: print each finding when found, and the summary when training ends.
    """

    def __init__(self, window=20, spike_factor=4.0, flat_tolerance=0.05, noise_ratio=0.5,
                 overfit_patience=3, floor=0.2, stop_on_nan=True, verbose=True):
        # TODO: call super().__init__(); check the arguments (window an integer >= 2,
        # spike_factor > 1, 0 <= flat_tolerance < 1, noise_ratio > 0, overfit_patience an
        # integer >= 1, 0 <= floor < 1) with clear errors; keep them; start with empty `losses`
        # and `findings`.
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    def on_train_begin(self, logs=None):
        """Forget everything: a doctor can watch several runs, one after the other."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    def on_epoch_begin(self, epoch, logs=None):
        """Remember the epoch; Keras's running mean starts again."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    def on_train_batch_end(self, batch, logs=None):
        """Recover this batch's loss, then apply the batch rules ("nan", "spike", the windows)."""
        # TODO: compute in Python floats; the step k is len(self.losses) before appending (it
        # goes on across epochs, while `batch` restarts at 0 every epoch).
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    def _level(self, value):
        """``value``, or ``floor`` times the first window's |mean| if that is larger."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    def _close_window(self, step):
        """Window i (the last w finite losses) is complete at ``step``: its rules."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    def on_epoch_end(self, epoch, logs=None):
        """Record the epoch's training and validation losses; the overfitting rule."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    def on_train_end(self, logs=None):
        """The "lr_too_high" rule on the last two windows, then the summary."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    def _report(self, code, step, message, epoch=None, once=True):
        """Add a finding (each code once unless ``once`` is False) and print it if verbose."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    @staticmethod
    def _line(finding):
        where = (f"step {finding['step']}, epoch {finding['epoch']}" if finding["step"] is not None
                 else f"epoch {finding['epoch']}")
        return f"[{finding['code']}] {where}: {finding['message']}. Try: {finding['advice']}."

    def summary(self):
        """Every finding, one line each; or one line saying the run looks healthy."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    def get_config(self):
        """The constructor's eight arguments, so that ``from_config(get_config())`` rebuilds it."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package="course")
class AccumulateGradients(keras.optimizers.Optimizer):
    """Applies the mean gradient of ``steps`` micro-batches once every ``steps`` calls, through
    the optimizer it wraps: the update of a batch ``steps`` times larger, in the memory of one.

    k = this optimizer's own step counter: the micro-batches seen so far (0 at the first call)

    (k + 1) % steps != 0:   acc = acc + g                     (per variable; no update)
    (k + 1) % steps == 0:   m = (g + acc) / steps             (the mean of the steps gradients)
                            n = sqrt(sum over all variables of sum(m * m))   (the global norm)
                            m = m * global_clipnorm / max(n, global_clipnorm)
                                                              (only with global_clipnorm)
                            inner.apply(m) at the rate schedule(k);  acc = 0

    The counting is Keras's own accumulation's (``gradient_accumulation_steps``), which the
    grader compares with:

    - the wrapped optimizer's ``iterations`` counts the updates applied, not the micro-batches:
      it is the step Adam's bias correction sees (t = updates + 1), and this optimizer's
      ``iterations`` reports the same;
    - a learning-rate schedule is a function of the micro-batch: an update applied on
      micro-batch k uses ``schedule(k)``, for its step and for the weight decay. The wrapped
      optimizer would evaluate its schedule at its own step count (the updates), so during an
      update it is handed the rate of micro-batch k instead;
    - the wrapped optimizer's own options (weight decay, clipnorm) act once per update, on the
      mean (and globally clipped) gradient, because it only sees the updates.

    Args:
        optimizer: the ``keras.optimizers.Optimizer`` that applies the updates.
        steps: micro-batches per update (1: every call is an update).
        global_clipnorm: clip the mean gradient to this global norm first (None: no clipping).
        **kwargs: ``name``; the base optimizer's other options belong to the wrapped optimizer.
    """

    def __init__(self, optimizer, steps=2, global_clipnorm=None, **kwargs):
        # TODO: check the arguments with clear errors (a keras Optimizer that does not
        # accumulate already; steps an integer >= 1; global_clipnorm None or > 0, and not on top
        # of the wrapped optimizer's own clipping). Call the base constructor with
        # learning_rate=0.0 (the rate is the wrapped optimizer's, as in LossScaleOptimizer) and
        # the name; keep the arguments, and the wrapped optimizer's schedule if its rate is one
        # (its private `_learning_rate`).
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    def build(self, var_list):
        """One accumulator per variable (zeros, the variable's shape); build the wrapped one."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    @property
    def variables(self):
        """This optimizer's variables (its counter, the accumulators) and the wrapped one's: what
        a .keras file saves, so that a loaded model resumes mid-accumulation."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    @property
    def iterations(self):
        """The updates applied (the wrapped optimizer's step count), as in Keras's accumulation."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    @property
    def learning_rate(self):
        """The rate the next update would use: ``schedule(k)``, or the wrapped optimizer's rate."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    @learning_rate.setter
    def learning_rate(self, value):
        self.optimizer.learning_rate = value

    def apply(self, grads, trainable_variables=None):
        """Accumulate this micro-batch's gradients, or apply the mean of the last ``steps``."""
        # TODO: build on the first call; k is the base class's counter (super().iterations,
        # which you increment yourself since this replaces the base class's apply). No Python
        # `if` on k: inside model.fit it is a symbolic tensor. Nor ops.cond with assignments in
        # its branches: on JAX a branch is a pure function, and what it assigns is lost. Keep
        # it to keras.ops so it runs on every backend: let the wrapped optimizer apply the mean
        # gradient at every call, then keep the new values only on an update step,
        # v.assign(ops.where(is_update, new, old)) for the variables and the wrapped
        # optimizer's own variables (old: ops.copy of each, taken before), as Keras's JAX
        # backend does for its own accumulation; the accumulators likewise.
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    @contextlib.contextmanager
    def _rate_of(self, micro_batch):
        """While the wrapped optimizer applies an update, it reads the rate of this micro-batch:
        its schedule is swapped for a function that returns ``schedule(k)``, then put back (its
        config, and so a saved model, keep the schedule itself)."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    def get_config(self):
        """The wrapped optimizer serialized, ``steps`` and ``global_clipnorm`` (and the name)."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")

    @classmethod
    def from_config(cls, config, custom_objects=None):
        """Rebuild the wrapped optimizer from its serialized form, then this one around it."""
        raise NotImplementedError("ch08_training_recipe.py: your code here")
