"""Chapter 7's variants: the known mistakes of the schedules and of LRFinder, a correct set
written differently, and a schedule that subclasses Keras's CosineDecay.

Mistakes in different classes (or in parts of LRFinder that different checks see) share one
submission: each is seen by its own check, so two gradings judge all thirteen. The tests grade
such a submission once, on the checks of all its mistakes.
"""

from __future__ import annotations

from variants import Kind, from_file, from_solution

STEM = "ch07_lr_decay"

SUBMISSIONS = {
    "A": (
        ("self.initial_learning_rate / (1.0 + self.decay_rate * s / self.decay_steps)",
         "self.initial_learning_rate / (1.0 + self.decay_rate * ops.floor(s / self.decay_steps))"),
        ("exponent = _step(step) / self.decay_steps",
         "exponent = ops.floor(_step(step) / self.decay_steps)"),
        ("progress = ops.maximum(s - warmup, 0.0) / decay",
         "progress = ops.maximum(s - warmup, 0.0) / (warmup + decay)"),
        ("return end + (start - end) / 2.0 * (ops.cos(math.pi * pct) + 1.0)",
         "return start + (end - start) * pct"),
        ("smoothed = self._avg / (1.0 - self.beta ** (k + 1))", "smoothed = self._avg"),
        ("return float(lrs[int(np.nanargmin(slope))])", "return float(lrs[int(np.argmin(losses))])"),
    ),
    "B": (
        ("drops = ops.floor(_step(step) / self.steps_per_drop)",
         "drops = _step(step) / self.steps_per_drop"),
        ("return ops.where(s < warmup, warm, annealed)",
         "if s < warmup:\n            return warm\n        return annealed"),
        ("warm = start + (peak - start) * s / max(warmup, 1.0)",
         "warm = peak * s / max(warmup, 1.0)"),
        ("s = ops.minimum(_step(step), end_2)", "s = _step(step)"),
        ("return self.start_lr * (self.end_lr / self.start_lr) ** (k / (self.num_steps - 1))",
         "return self.start_lr + (self.end_lr - self.start_lr) * k / (self.num_steps - 1)"),
        ("if not math.isfinite(smoothed) or smoothed > self.diverge_factor * self._best:",
         "if False:"),
        ("        self.model.set_weights(self._saved_weights)\n", ""),
    ),
}

# (mistake, submission, check that must fail, words its hint must contain)
MISTAKES = (
    ("time-based decay with a floor", "A", "timebaseddecay.values", "continuously"),
    ("exponential decay with a floor", "A", "exponentialdecay.values", "continuously"),
    ("cosine over warmup + decay steps", "A", "warmupcosinedecay.values", "(s - warmup_steps)"),
    ("one-cycle with linear annealing", "A", "onecycle.values", "half a cosine"),
    ("LRFinder without debiasing", "A", "lrfinder.ramp_and_smoothing", "1 - beta ** (k + 1)"),
    ("suggestion at the lowest loss", "A", "lrfinder.suggestion", "falls fastest"),
    ("step decay without the floor", "B", "stepdecay.values", "floor(s / steps_per_drop)"),
    ("Python if on the step tensor", "B", "warmupcosinedecay.fit", "ops.where"),
    ("warmup from zero", "B", "warmupcosinedecay.values", "initial_learning_rate"),
    ("one-cycle not clamped after the end", "B", "onecycle.values", "final rate"),
    ("LRFinder with a linear ramp", "B", "lrfinder.ramp_and_smoothing", "geometrically"),
    ("LRFinder without a divergence stop", "B", "lrfinder.divergence_stop", "stop_training"),
    ("LRFinder not restoring weights", "B", "lrfinder.restore", "on_train_end"),
)

VARIANTS = (
    *(from_solution(STEM, name, SUBMISSIONS[submission], checks=(check,), hint=hint)
      for name, submission, check, hint in MISTAKES),
    from_file(STEM, "exp/log, ops.cond and running sums", "ch07_lr_decay_exp_log_cond.py"),
    from_solution(STEM, "WarmupCosineDecay subclassing CosineDecay",
                  (("class WarmupCosineDecay(Schedule):",
                    "class WarmupCosineDecay(keras.optimizers.schedules.CosineDecay):"),),
                  kind=Kind.DELEGATION, checks=("warmupcosinedecay.values",)),
)
