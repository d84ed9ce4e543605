"""The seven chapters: ids, file stems, titles and what each exercise file must define.

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
    exports: tuple[str, ...]  # the names an exercise file must define


CHAPTERS: tuple[Chapter, ...] = (
    Chapter(1, "ch01_feature_scaling", "Feature scaling", "standardization and min-max scaling",
            ("Standardization", "MinMaxScaling")),
    Chapter(2, "ch02_batch_norm", "Batch normalization", "normalizing hidden activations per batch",
            ("BatchNormalization",)),
    Chapter(3, "ch03_mini_batch", "Mini-batch gradient descent", "batches, epochs and plain SGD",
            ("mini_batches", "SGD")),
    Chapter(4, "ch04_momentum", "Momentum", "velocity and Nesterov look-ahead",
            ("MomentumSGD", "EMAMomentum")),
    Chapter(5, "ch05_rmsprop", "RMSProp", "per-parameter step sizes from squared gradients",
            ("RMSprop",)),
    Chapter(6, "ch06_adam", "Adam", "momentum plus RMSProp with bias correction; AdamW",
            ("Adam", "AdamW", "AdamL2")),
    Chapter(7, "ch07_lr_decay", "Learning-rate decay", "schedules, warmup, one-cycle, LR range test",
            ("TimeBasedDecay", "StepDecay", "ExponentialDecay", "WarmupCosineDecay", "OneCycle",
             "LRFinder")),
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
