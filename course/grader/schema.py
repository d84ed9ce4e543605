"""The grading report's JSON format (``course grade --json``, a class's ``students/*.json``), as a
JSON Schema with its version. Fields are only ever added within a version; a consumer reads the
fields it knows and ignores the rest.

The statuses are the values of ``course.grader.outcomes``; a check's ``mistake`` and an
exercise's ``mistakes`` name known mistakes by a stable ``id`` (for programs) and a ``name``
(for people).
"""

from __future__ import annotations

from course.grader.outcomes import CheckStatus, ExerciseStatus

VERSION = 1

_MISTAKE = {"type": "object", "required": ["id", "name"],
            "properties": {"id": {"type": "string"}, "name": {"type": "string"}}}

CHECK = {
    "type": "object",
    "required": ["name", "score", "max_score", "passed", "status", "feedback", "hint", "seconds"],
    "properties": {
        "name": {"type": "string"},                      # "<component>.<check>", e.g. adam.fit
        "description": {"type": "string"},
        "score": {"type": "number", "minimum": 0},
        "max_score": {"type": "number", "minimum": 0},
        "passed": {"type": "boolean"},
        "status": {"enum": [s.value for s in CheckStatus if s is not CheckStatus.RAN]},
        "feedback": {"type": "string"},                  # the whole text: where, by how much
        "hint": {"type": ["string", "null"]},
        "mistake": {"oneOf": [{"type": "null"}, _MISTAKE]},  # the known mistake it matches
        "detail": {"type": "string"},                    # the first difference alone
        "exception": {"type": ["string", "null"]},       # the exception type, when it raised
        "seconds": {"type": "number", "minimum": 0},
    },
}

EXERCISE = {
    "type": "object",
    "required": ["chapter", "name", "score", "max_score", "status", "checks"],
    "properties": {
        "chapter": {"type": "integer"},
        "name": {"type": "string"},                      # the file stem, e.g. ch06_adam
        "score": {"type": "number", "minimum": 0},
        "max_score": {"type": "number", "minimum": 0},
        "status": {"enum": [s.value for s in ExerciseStatus]},
        "message": {"type": "string"},
        "checks": {"type": "array", "items": CHECK},
        # each known mistake behind failed checks, once, with the checks it explains
        "mistakes": {"type": "array", "items": {
            "type": "object", "required": ["id", "name", "checks"],
            "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                           "hint": {"type": ["string", "null"]},
                           "checks": {"type": "array", "items": {"type": "string"}},
                           "components": {"type": "array", "items": {"type": "string"}}}}},
        # checks with no counterpart on this grading's backend: not run, worth no points here
        "skipped": {"type": "array", "items": {
            "type": "object", "required": ["name", "reason"],
            "properties": {"name": {"type": "string"}, "description": {"type": "string"},
                           "reason": {"type": "string"}}}},
        "grader_error": {"type": "boolean"},             # not the student's doing: grade again
        "device": {"type": "string"},
        "backend": {"type": "string"},
        "seconds": {"type": "number"},
    },
}

REPORT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "course grading report",
    "type": "object",
    "required": ["schema", "submission", "seed", "backend", "devices", "score", "max_score",
                 "exercises"],
    "properties": {
        "schema": {"const": VERSION},
        "submission": {"type": "string"},
        "seed": {"type": "integer"},                     # --seed reproduces the grading
        "backend": {"type": "string"},
        "devices": {"type": "array", "items": {"type": "string"}},
        "score": {"type": "number", "minimum": 0},
        "max_score": {"type": "number", "minimum": 0},
        "seconds": {"type": "number"},
        "exercises": {"type": "array", "items": EXERCISE},
    },
}
