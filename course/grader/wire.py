"""The worker-to-parent message format: one JSON object per line, arrays as base64.

JSON rather than pickle because the parent reads what a student's process wrote: unpickling
it could run the student's code in the parent.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import numpy as np

MAX_LINE = 64 * 1024 * 1024  # one message; larger means a flood, not a result


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray) or (hasattr(value, "shape") and hasattr(value, "dtype")
                                         and not isinstance(value, (bool, int, float, str))):
        array = np.asarray(value)
        if array.dtype == object:
            raise TypeError("object arrays cannot be sent")
        if array.dtype.kind in "fc" and array.dtype.itemsize < 4:
            array = array.astype(np.float32)  # float16/bfloat16 travel as float32
        if array.dtype.kind == "V":  # ml_dtypes (bfloat16) show up as void
            array = array.astype(np.float32)
        array = np.ascontiguousarray(array)
        return {"__nd__": array.dtype.str, "shape": list(array.shape),
                "data": base64.b64encode(array.tobytes()).decode("ascii")}
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            return {"__float__": repr(value)}
        return value
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    raise TypeError(f"cannot send a {type(value).__name__}")


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if "__nd__" in value:
            dtype = np.dtype(value["__nd__"])
            if dtype.kind not in "biufc":
                raise ValueError(f"refusing dtype {dtype}")
            data = base64.b64decode(value["data"])
            return np.frombuffer(data, dtype=dtype).reshape(value["shape"]).copy()
        if "__float__" in value:
            return float(value["__float__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def dumps(message: dict) -> bytes:
    return (json.dumps(_encode(message), allow_nan=False) + "\n").encode()


def loads(line: bytes) -> dict:
    message = _decode(json.loads(line))
    if not isinstance(message, dict) or "event" not in message:
        raise ValueError("not a worker message")
    return message
