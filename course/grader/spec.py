"""What an exercise's checks are made of.

An exercise module (``course/grader/<stem>.py``) defines ``EXERCISE = Exercise(...)``. It must be
importable WITHOUT TensorFlow (the grading parent process never imports TensorFlow): import
keras/tensorflow inside the functions that run in a worker.

How one check is graded::

    inputs = check.inputs(rng)                         # parent and both workers: same seed, same inputs
    student   = check.run(student_module, inputs, ctx) # in the student worker (child process)
    reference = check.run(reference_ns,   inputs, ctx) # in the reference worker (no student code)
    verdict   = judge(student, reference, inputs)      # in the parent: numbers only, never code

``run`` gets the student's module or the reference namespace (the Keras built-ins under the
student's names) and must use only ``impl.<Name>``, so the very same code computes both sides.
It returns a flat dict of plain values: numpy arrays, floats, ints, bools, strings.

When the student's numbers differ from the reference, each ``Mistake`` whose ``outputs(inputs)``
(a NumPy model of the wrong variant, computed in the parent) matches the student's numbers names
the mistake in the feedback.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from course.catalog import chapter as find_chapter

Outputs = dict[str, Any]


def no_inputs(rng: np.random.Generator) -> dict:
    return {}


@dataclass(frozen=True)
class Mistake:
    """A known-wrong variant and the hint that names it.

    ``outputs(inputs)`` computes (in NumPy, in the parent) what that variant would return for the
    check's keys; it may return a subset of keys. ``error`` is a regular expression on the
    student's exception text that identifies the mistake when it makes the code raise.
    ``id`` is the mistake's stable identifier in reports (``no_bias_correction``); by default the
    name written in lower case with underscores.
    """

    name: str
    hint: str
    outputs: Callable[[dict], Outputs] | None = None
    error: str | None = None
    id: str = ""

    def __post_init__(self):
        if not self.id:
            object.__setattr__(self, "id", re.sub(r"[^a-z0-9]+", "_", self.name.lower()).strip("_"))

    def as_data(self) -> dict:
        """What a report records of the mistake: its id and its name."""
        return {"id": self.id, "name": self.name}


@dataclass(frozen=True)
class Verdict:
    passed: bool
    feedback: str
    hint: str | None = None
    credit: float | None = None  # fraction of the check's points; default 1 if passed else 0
    mistake: Mistake | None = None  # the known mistake the student's numbers match
    detail: str = ""  # the first difference alone, for a short line where the mistake is named


@dataclass(frozen=True)
class Check:
    """One graded property of an exercise.

    ``judge(student, reference, inputs) -> Verdict`` replaces the default comparison (all keys
    of the reference within ``rtol``/``atol``) for checks that are properties rather than
    equalities (e.g. "every example exactly once per epoch").
    """

    name: str
    run: Callable[[Any, dict, Any], Outputs]
    description: str
    inputs: Callable[[np.random.Generator], dict] = no_inputs
    weight: float = 1.0
    rtol: float = 1e-5
    atol: float = 1e-6
    mistakes: tuple[Mistake, ...] = ()
    judge: Callable[[Outputs, Outputs, dict], Verdict] | None = None
    needs_reference: bool = True
    timeout_factor: float = 1.0
    # (backend, reason) for each Keras backend the check has no counterpart on: it is not run
    # there, the report says why, and the exercise's points go to the checks that do run
    unsupported: tuple[tuple[str, str], ...] = ()

    def skipped_on(self, backend: str) -> str | None:
        """Why this check does not run on ``backend``, or None when it does."""
        return dict(self.unsupported).get(backend)

    def make_inputs(self, seed: int) -> dict:
        """The check's inputs for a grading seed: the same in the parent and in every worker."""
        rng = np.random.default_rng([seed, zlib.crc32(self.name.encode())])
        return self.inputs(rng)


@dataclass(frozen=True)
class Exercise:
    """An exercise file's contract: its checks, its reference and what it may not use. Its
    names and their kinds are the chapter's, in ``course.catalog``.

    ``reference`` is the dotted path of a zero-argument function in ``course.references`` that
    returns the namespace of Keras built-ins (or course closed forms) standing in for the
    student's names. ``forbidden`` lists the Keras built-ins the student may not subclass, wrap
    or call (it is what they are checked against). ``given`` lists the built-ins the checks hand
    to the student's code to use (the optimizer a wrapper wraps): calling them is the exercise,
    subclassing one is still delegation. ``forbidden_options`` names the Keras optimizers'
    options that switch on the very mechanic the exercise writes (``gradient_accumulation_steps``
    for an exercise on gradient accumulation): the student's code may not set them.
    """

    stem: str
    checks: tuple[Check, ...]
    reference: str
    forbidden: tuple[str, ...] = ()
    given: tuple[str, ...] = ()
    forbidden_options: tuple[str, ...] = ()
    # exported names whose job is TensorFlow's own (a tf.data pipeline, which Keras takes as
    # input on every backend): their TensorFlow calls cost nothing on JAX or PyTorch
    tensorflow_by_design: tuple[str, ...] = ()

    @property
    def chapter(self) -> int:
        return find_chapter(self.stem).number

    @property
    def exports(self) -> tuple[str, ...]:
        return find_chapter(self.stem).exports

    @property
    def kinds(self) -> dict[str, str]:
        """Each exported name -> optimizer | layer | schedule | callback | function."""
        return find_chapter(self.stem).kinds

    def check(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(name)
