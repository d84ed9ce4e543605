"""``ast.parse`` made safe to call from several threads of one process.

CPython 3.11 keeps one recursion counter per interpreter while it turns a parsed tree into Python
objects; when a thread switch falls inside (a garbage-collected ``__del__`` in another thread is
enough), a second thread's parse corrupts it and one of them fails with ``SystemError: AST
constructor recursion depth mismatch``. The course parses in threads in two places: the grader's
source checks (``course grade-class`` grades students in threads) and the explorer's server,
whose request threads trace ``tf.function`` s, which AutoGraph parses. Both go through one lock.
"""

from __future__ import annotations

import ast
import threading

_LOCK = threading.RLock()  # re-entrant: a finalizer run inside a parse may parse again
_original_parse = ast.parse


def parse(source, filename: str = "<unknown>", mode: str = "exec", **kwargs) -> ast.AST:
    """``ast.parse``, one thread at a time."""
    with _LOCK:
        return _original_parse(source, filename, mode, **kwargs)


def guard_ast_parse() -> None:
    """Route every ``ast.parse`` of this process through the lock (what TensorFlow's AutoGraph
    and the ``gast`` package it uses call). Idempotent."""
    ast.parse = parse
