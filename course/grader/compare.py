"""Comparing a student's outputs with the reference's, and naming known mistakes.

Everything here is NumPy in the parent process: it never sees the student's code, only numbers.
"""

from __future__ import annotations

import re

import numpy as np

from course.grader.spec import Check, Mistake, Verdict


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _where(key: str, index: tuple) -> str:
    if not index:
        return key
    if "trajectory" in key or "per_step" in key or key.startswith("steps"):
        rest = f", element {index[1:]}" if len(index) > 1 else ""
        return f"{key} at step {index[0] + 1}{rest}"
    return f"{key}[{', '.join(map(str, index))}]"


def difference(key: str, student, reference, rtol: float, atol: float) -> str | None:
    """None when ``student`` matches ``reference``; else what differs, where and by how much."""
    if isinstance(reference, (bool, np.bool_, str)) or reference is None:
        if student != reference and not (isinstance(reference, (bool, np.bool_))
                                          and isinstance(student, (bool, np.bool_))
                                          and bool(student) == bool(reference)):
            return f"{key}: expected {reference!r}, got {student!r}"
        return None
    if isinstance(student, (str, type(None))) or (isinstance(student, (list, dict))):
        return f"{key}: expected a number or array, got {type(student).__name__}"
    try:
        s = np.asarray(student, dtype=np.float64)
    except (TypeError, ValueError):
        return f"{key}: expected numbers, got {type(student).__name__}"
    r = np.asarray(reference, dtype=np.float64)
    if s.shape != r.shape:
        return f"{key}: shape {s.shape} but the reference has shape {r.shape}"
    if r.size == 0:
        return None
    r_nan, s_nan = ~np.isfinite(r), ~np.isfinite(s)
    bad_finite = s_nan & ~r_nan
    if bad_finite.any():
        index = tuple(int(i) for i in np.argwhere(bad_finite)[0])
        value = s[index]
        return (f"{_where(key, index)}: yours is {value} where the reference is "
                f"{_fmt(r[index])} ({int(bad_finite.sum())} non-finite value(s))")
    both = r_nan & s_nan
    same_special = np.where(both, (s == r) | (np.isnan(s) & np.isnan(r)), True)
    if (r_nan & ~s_nan).any() or not same_special.all():
        index = tuple(int(i) for i in np.argwhere((r_nan & ~s_nan) | ~same_special)[0])
        return f"{_where(key, index)}: yours is {_fmt(s[index])} where the reference is {r[index]}"
    finite = ~r_nan
    with np.errstate(invalid="ignore"):  # inf - inf where both are inf: masked out here
        err = np.where(finite, np.abs(s - r), 0.0)
    bound = atol + rtol * np.abs(np.where(finite, r, 0.0))
    excess = err - bound
    if (excess <= 0).all():
        return None
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(excess)), r.shape))
    diff = err[index]
    rel = diff / abs(r[index]) if r[index] != 0 else float("inf")
    count = int((excess > 0).sum())
    return (f"{_where(key, index)}: yours {_fmt(s[index])}, reference {_fmt(r[index])} "
            f"(off by {diff:.3g}, relative {rel:.2g}; allowed {bound[index]:.2g}); "
            f"{count} of {r.size} value(s) differ")


def differences(student: dict, reference: dict, rtol: float, atol: float,
                keys=None) -> list[str]:
    out = []
    for key in keys if keys is not None else reference:
        if key not in reference:
            continue
        if key not in student:
            out.append(f"{key}: missing from your results")
            continue
        d = difference(key, student[key], reference[key], rtol, atol)
        if d:
            out.append(d)
    return out


def matching_mistake(check: Check, student: dict, reference: dict, inputs: dict) -> Mistake | None:
    """The first known mistake whose numbers match the student's but not the reference's."""
    rtol, atol = max(1e-4, 10 * check.rtol), max(1e-5, 10 * check.atol)
    for mistake in check.mistakes:
        if mistake.outputs is None:
            continue
        try:
            wrong = mistake.outputs(inputs)
        except (ArithmeticError, ValueError, FloatingPointError):
            continue
        keys = [k for k in wrong if k in reference]
        if not keys:
            continue
        with np.errstate(all="ignore"):
            separates = bool(differences(wrong, reference, rtol, atol, keys))
            if separates and not differences(student, wrong, rtol, atol, keys):
                return mistake
    return None


# Errors that say the same thing whatever the check: a backend's own way of refusing code
# that only works on another
BACKEND_MISTAKES = (
    Mistake("a Variable handed to keras.ops on JAX",
            "on the JAX backend some keras.ops functions (zeros_like, ones_like, copy, ...) do "
            "not take a keras.Variable: pass its array, variable.value, as in "
            "ops.zeros_like(accumulator.value). That works on every backend.",
            error=r"(Could not convert <Variable|__jax_array__\(\) during abstractification)",
            id="variable_into_ops"),
    Mistake("a traced value turned into a Python value",
            "on JAX (and inside any compiled step) a tensor has no value yet while the step is "
            "traced: float(x), x.numpy(), np.asarray(x) or a Python `if x:` on it fail. Keep the "
            "computation in keras.ops (ops.where instead of `if`).",
            error=r"(TracerArrayConversionError|ConcretizationTypeError|TracerBoolConversionError)",
            id="tracer_to_python"),
)


def mistake_from_error(check: Check, text: str) -> Mistake | None:
    for mistake in (*check.mistakes, *BACKEND_MISTAKES):
        if mistake.error and re.search(mistake.error, text, re.IGNORECASE | re.DOTALL):
            return mistake
    return None


def default_judge(check: Check, student: dict, reference: dict, inputs: dict) -> Verdict:
    with np.errstate(all="ignore"):
        diffs = differences(student, reference, check.rtol, check.atol)
    if not diffs:
        return Verdict(True, "matches the reference")
    feedback = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
    mistake = matching_mistake(check, student, reference, inputs)
    if mistake:
        return Verdict(False, f"your numbers match a known mistake ({mistake.name}). {feedback}",
                       hint=mistake.hint, mistake=mistake, detail=diffs[0])
    return Verdict(False, feedback, detail=diffs[0])
