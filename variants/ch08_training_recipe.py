"""Chapter 8's variants: the known mistakes of LossCurveDoctor and AccumulateGradients, a
correct pair written differently (a doctor with its own finding records, a wrapper that chooses
with ops.where instead of ops.cond), and the ways of leaning on Keras: its own gradient
accumulation (in the source, and hidden from it), a wrapper that subclasses Adam, a doctor that
subclasses TerminateOnNaN.

A doctor's mistake and a wrapper's share one submission where they show in different checks
(the classes are graded apart): fourteen submissions judge all twenty-three mistakes.
"""

from __future__ import annotations

from dataclasses import replace

from variants import Kind, from_file, from_solution

STEM = "ch08_training_recipe"

UNDO = "loss = (batch + 1) * mean - batch * self._previous_mean"
STEP = "step = len(self.losses)"
MEDIAN = "median = float(np.median(recent))"
SPACING = "spike_allowed = self._last_spike is None or step >= self._last_spike + w"
WINDOWS = "if len(self._finite) % w == 0:"
NOISY = '''            self._report("noisy", step, f"over the {self.window} batches to step {step} the loss "
                         f"spreads by {cv:.0%} of its mean ({mean:.4g})")'''
FLAT = '''            self._report("flat", step, f"after {(i + 1) * self.window} batches the loss ({mean:.4g})"
                         f" is still {mean / first:.0%} of where it started ({first:.4g})")'''
NAN = '''            self._report("nan", step, f"the loss of step {step} is {loss}: training diverged")
            return'''
STOP = '''            if self.stop_on_nan:
                self.model.stop_training = True
'''
OVERFIT = "if epoch - best_epoch >= self.overfit_patience and train < best_train:"
MEAN = "mean = [(g + a) / self.steps for g, a in zip(grads, accumulators)]"
CLIP = '''        if self.global_clipnorm is not None:
            norm = ops.sqrt(sum(ops.sum(ops.square(m)) for m in mean))
            mean = [m * (self.global_clipnorm / ops.maximum(norm, self.global_clipnorm))
                    for m in mean]
'''
RESET = "a.assign(ops.where(is_update, ops.zeros(a.shape, a.dtype), a + g))"
APPLY = '''        with self._rate_of(micro_batch):
            self.optimizer.apply(mean, variables)'''
IS_UPDATE = "is_update = ops.equal((micro_batch + 1) % self.steps, 0)"
KEEP = '''        for v, before in zip(kept, old):
            v.assign(ops.where(is_update, v.value, before))'''
ITERATIONS = "        return self.optimizer.iterations\n"
FLOORED = "start = abs(self._window_means[0]) if self._window_means else 0.0"

# (doctor's mistake, wrapper's mistake): each pair one submission, each mistake its edits
SUBMISSIONS = {
    "A": (((UNDO, "loss = mean"),), ((MEAN, "mean = [g + a for g, a in zip(grads, accumulators)]"),)),
    "B": (((UNDO, "loss = (len(self.losses) + 1) * mean - len(self.losses) * self._previous_mean"),),
          ((MEAN, "mean = list(grads)"), (CLIP, ""),
           (IS_UPDATE, "is_update = ops.equal(micro_batch, micro_batch)"))),
    "C": (((STEP, "step = batch"),), ((RESET, "a.assign(ops.where(is_update, a.value, a + g))"),)),
    "D": (((MEDIAN, "median = float(np.mean(recent))"),),
          ((CLIP, ""), ("        micro_batch = super().iterations\n",
                        "        micro_batch = super().iterations\n"
                        "        if self.global_clipnorm is not None:\n"
                        "            norm = ops.sqrt(sum(ops.sum(ops.square(g)) for g in grads))\n"
                        "            grads = [g * (self.global_clipnorm / ops.maximum(norm, "
                        "self.global_clipnorm)) for g in grads]\n"))),
    "E": (((MEDIAN, "median = float(np.median(self._finite))"),),
          ((CLIP, ""),)),
    "F": (((SPACING, "spike_allowed = True"),),
          ((APPLY, "        self.optimizer.iterations.assign(micro_batch)\n"
                   "        self.optimizer.apply(mean, variables)"),)),
    "G": (((WINDOWS, "if len(self._finite) >= w:"),),
          ((APPLY, "        self.optimizer.apply(mean, variables)"),)),
    "H": (((NOISY, NOISY[:-1] + ", once=False)"), (FLAT, FLAT[:-1] + ", once=False)")),
          ((ITERATIONS, "        return super().iterations\n"),)),
    "I": (((NAN, NAN.replace("diverged\")", "diverged\", once=False)")),),
          ((KEEP, "        if not is_update:\n"
                  "            for v, before in zip(kept, old):\n"
                  "                v.assign(before)"),)),
    "J": (((NAN, NAN.rsplit("\n", 1)[0]),), ()),
    "K": (((STOP, ""),), ()),
    "L": (((OVERFIT, "if epoch - best_epoch >= 1 and train < best_train:"),), ()),
    "M": (((OVERFIT, "if epoch - best_epoch > self.overfit_patience and train < best_train:"),), ()),
    "N": (((OVERFIT, "if epoch - best_epoch >= self.overfit_patience:"),), ()),
    "O": (((FLOORED, "start = 0.0"),), ()),
}

# (mistake, submission, which half of it, checks that must fail, words their hint must contain)
MISTAKES = (
    ("running mean taken as the batch loss", "A", 0,
     ("losscurvedoctor.losses", "losscurvedoctor.epochs"), "(j + 1) * mean_j"),
    ("running mean undone with the global step", "B", 0,
     ("losscurvedoctor.losses", "losscurvedoctor.epochs"), "j = batch"),
    ("steps restarting every epoch", "C", 0, ("losscurvedoctor.epochs",), "global batch index"),
    ("spike against the mean", "D", 0, ("losscurvedoctor.spike",), "MEDIAN"),
    ("spike against all past losses", "E", 0, ("losscurvedoctor.spike",), "last `window`"),
    ("spikes on consecutive batches", "F", 0, ("losscurvedoctor.spike",), "s + window"),
    ("overlapping windows", "G", 0, ("losscurvedoctor.windows", "losscurvedoctor.healthy"),
     "do not overlap"),
    ("noisy and flat reported at every window", "H", 0, ("losscurvedoctor.windows",),
     "reported once"),
    ("every non-finite loss reported", "I", 0, ("losscurvedoctor.nan",), "only the first"),
    ("non-finite losses in the windows", "J", 0, ("losscurvedoctor.nan",), "no part"),
    ("no stop on NaN", "K", 0, ("losscurvedoctor.nan", "losscurvedoctor.fit_nan"),
     "stop_training"),
    ("overfitting without the patience", "L", 0,
     ("losscurvedoctor.overfitting", "losscurvedoctor.fit_overfitting"), "overfit_patience or more"),
    ("overfitting patience off by one", "M", 0, ("losscurvedoctor.overfitting",), "(not >)"),
    ("overfitting without a falling training loss", "N", 0, ("losscurvedoctor.overfitting",),
     "diverges"),
    ("spikes and spread judged without the floor", "O", 0, ("losscurvedoctor.floor",),
     "floor * |mean_0|"),
    ("sum of the micro-batch gradients", "A", 1,
     ("accumulategradients.sgd", "accumulategradients.adam"), "MEAN gradient"),
    ("an update every micro-batch", "B", 1,
     ("accumulategradients.sgd", "accumulategradients.adam"), "every steps-th call"),
    ("accumulators never reset", "C", 1,
     ("accumulategradients.sgd", "accumulategradients.adam"), "back to zero"),
    ("each micro-batch clipped", "D", 1, ("accumulategradients.global_clipnorm",),
     "once per update"),
    ("global_clipnorm ignored", "E", 1, ("accumulategradients.global_clipnorm",), "global norm"),
    ("the inner step count advancing every micro-batch", "F", 1, ("accumulategradients.adam",),
     "counts updates only"),
    ("the schedule at the update count", "G", 1, ("accumulategradients.schedule",),
     "schedule(k)"),
    ("iterations counting micro-batches", "H", 1, ("accumulategradients.counting",),
     "number of updates"),
    ("a Python if on the step tensor", "I", 1,
     ("accumulategradients.fit", "accumulategradients.jit_compile"), "ops.where"),
)

DELEGATE = '''        super().__init__(learning_rate=0.0, **kwargs)
        self.optimizer = optimizer'''

# PyTorch's eager model.fit takes a tensor's truth value: this mistake shows where steps are traced
TRACED_ONLY = {"a Python if on the step tensor"}


def _where_it_shows(variant):
    return replace(variant, backends=("tensorflow", "jax")) if variant.name in TRACED_ONLY else variant


VARIANTS = (
    *(_where_it_shows(from_solution(STEM, name, SUBMISSIONS[submission][0]
                                    + SUBMISSIONS[submission][1], checks=checks, hint=hint))
      for name, submission, _, checks, hint in MISTAKES),
    from_file(STEM, "finding records, ops.where and its own counter",
              "ch08_training_recipe_records_where.py"),
    # Keras's own accumulation switched on: plainly (the source says so), and hidden from a
    # reading of the source (seen when the inner optimizer applies an update)
    from_solution(STEM, "Keras's accumulation on the inner optimizer",
                  ((DELEGATE, DELEGATE + "\n        optimizer.gradient_accumulation_steps = steps"),
                   (IS_UPDATE, "is_update = ops.equal(micro_batch, micro_batch)")),
                  kind=Kind.DELEGATION, checks=("accumulategradients.sgd",)),
    from_solution(STEM, "Keras's accumulation, hidden",
                  ((DELEGATE, DELEGATE + "\n        setattr(optimizer, 'gradient_' + "
                                         "'accumulation_steps', steps)"),
                   (IS_UPDATE, "is_update = ops.equal(micro_batch, micro_batch)")),
                  kind=Kind.DELEGATION,
                  checks=("losscurvedoctor.spike", "accumulategradients.sgd")),
    from_solution(STEM, "wrapper subclassing Adam",
                  (("class AccumulateGradients(keras.optimizers.Optimizer):",
                    "class AccumulateGradients(keras.optimizers.Adam):"),),
                  kind=Kind.DELEGATION, checks=("accumulategradients.adam",)),
    from_solution(STEM, "doctor subclassing TerminateOnNaN",
                  (("class LossCurveDoctor(keras.callbacks.Callback):",
                    "class LossCurveDoctor(keras.callbacks.TerminateOnNaN):"),),
                  kind=Kind.DELEGATION, checks=("losscurvedoctor.nan",)),
    # the student bundle carries the course's references (it grades on the student's machine):
    # a doctor that is the reference's, taken from there
    from_solution(STEM, "doctor taken from the course's reference",
                  (("Schedule = keras.optimizers.schedules.LearningRateSchedule",
                    "Schedule = keras.optimizers.schedules.LearningRateSchedule\n"
                    "from course.references import ch08_training_recipe as _reference\n"
                    "LossCurveDoctor = _reference().LossCurveDoctor"),
                   ("class LossCurveDoctor(keras.callbacks.Callback):",
                    "class _Unused(keras.callbacks.Callback):")),
                  kind=Kind.DELEGATION, checks=("losscurvedoctor.healthy",)),
)
