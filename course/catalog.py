"""The chapters: ids, file stems, titles and what each exercise file must define.

The same stem names the chapter script (``chapters/``), the reference implementation
(``solutions/``), the student version (``exercises/``) and the grader's checks
(``course/grader/<stem>.py``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Chapter:
    number: int
    stem: str
    title: str
    mechanic: str
    # what the exercise file defines, in order: each name with its kind (optimizer, layer,
    # schedule, callback or function); the grader, the chapters and `course list` read it here
    components: tuple[tuple[str, str], ...]

    @property
    def exports(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.components)

    @property
    def kinds(self) -> dict[str, str]:
        return dict(self.components)


CHAPTERS: tuple[Chapter, ...] = (
    Chapter(1, "ch01_feature_scaling", "Feature scaling", "standardization and min-max scaling",
            (("Standardization", "layer"), ("MinMaxScaling", "layer"))),
    Chapter(2, "ch02_batch_norm", "Batch normalization", "normalizing hidden activations per batch",
            (("BatchNormalization", "layer"),)),
    Chapter(3, "ch03_mini_batch", "Mini-batch gradient descent", "batches, epochs and plain SGD",
            (("mini_batches", "function"), ("SGD", "optimizer"))),
    Chapter(4, "ch04_momentum", "Momentum", "velocity and Nesterov look-ahead",
            (("MomentumSGD", "optimizer"), ("EMAMomentum", "optimizer"))),
    Chapter(5, "ch05_rmsprop", "RMSProp", "per-parameter step sizes from squared gradients",
            (("RMSprop", "optimizer"),)),
    Chapter(6, "ch06_adam", "Adam", "momentum plus RMSProp with bias correction; AdamW",
            (("Adam", "optimizer"), ("AdamW", "optimizer"), ("AdamL2", "optimizer"))),
    Chapter(7, "ch07_lr_decay", "Learning-rate decay", "schedules, warmup, one-cycle, LR range test",
            (("TimeBasedDecay", "schedule"), ("StepDecay", "schedule"),
             ("ExponentialDecay", "schedule"), ("WarmupCosineDecay", "schedule"),
             ("OneCycle", "schedule"), ("LRFinder", "callback"))),
    Chapter(8, "ch08_training_recipe", "The training recipe",
            "the seven mechanics assembled; reading a run's loss curves",
            (("LossCurveDoctor", "callback"), ("AccumulateGradients", "optimizer"))),
)

BY_NUMBER = {c.number: c for c in CHAPTERS}
BY_STEM = {c.stem: c for c in CHAPTERS}


def chapter(key: int | str) -> Chapter:
    """Look a chapter up by number (6, "6") or stem ("ch06_adam"); ValueError if unknown."""
    if isinstance(key, str) and key.strip().isdigit():
        key = int(key)
    found = BY_NUMBER.get(key) if isinstance(key, int) else BY_STEM.get(key)
    if found is None:
        known = ", ".join(f"{c.number} ({c.stem})" for c in CHAPTERS)
        raise ValueError(f"unknown chapter {key!r}; the chapters are {known}")
    return found
