"""Chapter 4's variants: the known mistakes of MomentumSGD and EMAMomentum (each named by the
hint of the check that can see it) and a correct pair written differently."""

from __future__ import annotations

from course.grader import ch04_momentum as spec
from variants import from_file, from_solution

STEM = "ch04_momentum"

MOMENTUM_STEP = """        self.assign(v, mu * v - lr * g)
        if self.nesterov:
            # read v again after the assignment: the look-ahead uses the NEW velocity
            self.assign_add(variable, mu * v - lr * g)
        else:
            self.assign_add(variable, v)"""
EMA_STEP = """        self.assign(v, beta * v + (1 - beta) * g)
        self.assign_sub(variable, lr * v)"""


def _hint(mistake: tuple) -> str:
    """The hint of a mistake declared as (variant, name, hint)."""
    return mistake[2]


VARIANTS = (
    from_solution(STEM, "velocity sign error",
                  (("self.assign(v, mu * v - lr * g)", "self.assign(v, mu * v + lr * g)"),),
                  checks=("momentumsgd.trajectory",), hint=_hint(spec.VELOCITY_SIGN)),
    from_solution(STEM, "Nesterov with the old velocity",
                  ((MOMENTUM_STEP, """        look_ahead = mu * v - lr * g  # v is still the old velocity here
        self.assign(v, mu * v - lr * g)
        if self.nesterov:
            self.assign_add(variable, look_ahead)
        else:
            self.assign_add(variable, v)"""),),
                  checks=("momentumsgd.nesterov",), hint=_hint(spec.NESTEROV_IGNORED)),
    from_solution(STEM, "Nesterov ignored",
                  (("        if self.nesterov:\n            # read", "        if False:\n            # read"),),
                  checks=("momentumsgd.nesterov",), hint=_hint(spec.NESTEROV_IGNORED)),
    from_solution(STEM, "PyTorch-style velocity",
                  ((MOMENTUM_STEP, """        self.assign(v, mu * v + g)
        if self.nesterov:
            self.assign_sub(variable, lr * (mu * v + g))
        else:
            self.assign_sub(variable, lr * v)"""),),
                  checks=("momentumsgd.schedule",), hint=_hint(spec.PYTORCH_VELOCITY)),
    from_solution(STEM, "EMA without (1 - beta)",
                  (("self.assign(v, beta * v + (1 - beta) * g)", "self.assign(v, beta * v + g)"),),
                  checks=("emamomentum.trajectory",), hint=_hint(spec.EMA.mistakes[0])),
    from_solution(STEM, "EMA as Keras's velocity at the scaled rate",
                  ((EMA_STEP, """        self.assign(v, beta * v - lr * (1 - beta) * g)
        self.assign_add(variable, v)"""),),
                  checks=("emamomentum.schedule",), hint=_hint(spec.EMA.mistakes[3])),
    from_file(STEM, "the step stored instead of the velocity", "ch04_momentum_stored_step.py"),
)
