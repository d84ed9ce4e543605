"""The statuses grading speaks in: one vocabulary from the worker to the report, the class
tables and Gradescope's output.

They are string enums, so a report written as JSON holds their plain values ("passed",
"timeout", ...) and a report read back from JSON compares equal to them.
"""

from __future__ import annotations

from enum import Enum


class _Vocabulary(str, Enum):
    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


class CheckStatus(_Vocabulary):
    """How one check ended. A worker reports RAN (it has outputs for the parent to judge) or
    what stopped it; the judged check is PASSED or FAILED; the rest say why it scored 0."""

    RAN = "ran"                    # the worker's: outputs came back (never in a report)
    PASSED = "passed"
    FAILED = "failed"              # outputs differ from the reference's
    ERROR = "error"                # the student's code raised
    TIMEOUT = "timeout"            # stopped at its time limit, or the submission's budget ran out
    MEMORY = "memory"              # stopped for using too much memory
    CRASHED = "crashed"            # the process died (a segfault, os._exit, ...)
    NOT_RUN = "not_run"            # skipped: an earlier check of the same part hung, ...
    MISSING = "missing"            # no file for the exercise
    DELEGATION = "delegation"      # the file leans on the Keras built-in it is checked against
    GRADER_ERROR = "grader_error"  # not the student's doing: worth grading again

    @property
    def stopped(self) -> bool:
        """Stopped from outside: the kind of ending after which a worker must be replaced."""
        return self in (CheckStatus.TIMEOUT, CheckStatus.MEMORY, CheckStatus.CRASHED)


class ExerciseStatus(_Vocabulary):
    """How grading one exercise file went, as a whole (its checks say the details)."""

    GRADED = "graded"    # its checks ran (whatever they scored)
    MISSING = "missing"  # no file
    ERROR = "error"      # the file could not be read or imported
    TIMEOUT = "timeout"  # importing it hung, or the submission's budget ran out


class StudentStatus(_Vocabulary):
    """A student's row in a class's grades.csv: the most severe thing that happened while
    grading them, in this order of severity."""

    GRADER_ERROR = "grader error"
    CHEATING = "cheating detected"
    CRASHED = "crashed"
    OUT_OF_MEMORY = "out of memory"
    TIMEOUT = "timeout"
    ERROR = "error"
    WRONG = "wrong"
    INCOMPLETE = "incomplete"
    FULL_MARKS = "full marks"
    NO_FILES = "no files"


# what a check's status makes of the student who owns it
STUDENT_STATUS_OF = {CheckStatus.GRADER_ERROR: StudentStatus.GRADER_ERROR,
                     CheckStatus.DELEGATION: StudentStatus.CHEATING,
                     CheckStatus.CRASHED: StudentStatus.CRASHED,
                     CheckStatus.MEMORY: StudentStatus.OUT_OF_MEMORY,
                     CheckStatus.TIMEOUT: StudentStatus.TIMEOUT}
