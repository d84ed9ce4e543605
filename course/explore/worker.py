"""The process that runs the learner's code for the explorer (see ``sandbox``).

    python -m course.explore.worker

Reads one JSON job per line on stdin (``{"view": name, "params": {...}, "exercises": folder}``) and writes one JSON
answer per line on the stdout it was started with; whatever the learner's code prints goes to
stderr instead, so it cannot break the protocol.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path


def main() -> int:
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    from course.explore import paths, sandbox

    sandbox.IN_WORKER = True
    channel.write("ready\n")
    for line in sys.stdin:
        job = json.loads(line)
        paths.EXERCISES = Path(job["exercises"])
        module, name = sandbox.VIEWS[job["view"]]
        try:
            answer = getattr(importlib.import_module(module), name)(job["params"])
        except Exception as exc:  # an explorer bug: the parent says so and keeps serving
            answer = {"failed": paths._describe(exc)}
        channel.write(json.dumps(answer, allow_nan=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
