"""What the optimizer, layer and schedule suites share: the interface and config round-trip
checks every Keras component gets, and turning config values into numbers the parent compares.

The run functions here execute in a worker (``impl`` is the student's module or the reference
namespace) and import keras inside: the grading parent imports this module without TensorFlow.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

Normalizer = Callable[[Any], Any]

# what each kind of component must be an instance of, by the name of the Keras base class
BASES = {"optimizer": ("optimizers", "Optimizer"), "layer": ("layers", "Layer"),
         "schedule": ("optimizers.schedules", "LearningRateSchedule")}


def plain(value):
    """A config value as something the wire carries and the parent compares: bools, strings and
    None as they are, numbers as floats, sequences as float arrays, anything else as its repr."""
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (list, tuple, np.ndarray)):
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            return repr(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return repr(value)


def config_values(config: dict, keys, normalizers: dict[str, Normalizer] | None = None) -> dict:
    """``keys`` of a config, each normalised (``(-1,)`` and ``-1`` may name the same axis)."""
    normalizers = normalizers or {}
    out = {}
    for key in keys:
        if key not in config:
            out[key] = "<missing from get_config()>"
            continue
        value = config[key]
        try:
            out[key] = normalizers.get(key, plain)(value)
        except Exception as exc:  # noqa: BLE001 - an odd value is reported, not fatal
            out[key] = f"<unreadable {value!r}: {exc}>"
    return out


def _is_a(obj, kind: str) -> bool:
    import keras

    module, name = BASES[kind]
    base = keras
    for part in module.split("."):
        base = getattr(base, part)
    return isinstance(obj, getattr(base, name))


def run_interface(cls_name: str, kind: str, defaults: tuple[str, ...],
                  normalizers: dict[str, Normalizer] | None = None,
                  extra: Callable[[Any], dict] | None = None):
    """Built with no arguments: the right Keras base class, the reference's defaults in
    ``get_config``, and an unknown keyword argument refused. ``extra(obj)`` adds outputs."""

    def run(impl, inputs, ctx):
        cls = getattr(impl, cls_name)
        obj = cls()
        out = {f"is a keras {BASES[kind][1]}": _is_a(obj, kind)}
        for key, value in config_values(obj.get_config(), defaults, normalizers).items():
            out[f"default {key}"] = value
        try:
            cls(not_an_argument=1.0)
            out["rejects_unknown_argument"] = False
        except (TypeError, ValueError):
            out["rejects_unknown_argument"] = True
        if extra:
            out.update(extra(obj))
        return out

    return run


def round_trip(obj) -> tuple[dict, dict, dict, object]:
    """``obj``'s config, its clone's via ``from_config``, and its Keras (de)serialized twin's
    (with the twin itself): a registered class with a complete config survives all three."""
    import keras

    config = obj.get_config()
    clone = type(obj).from_config(config)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(obj))
    return config, clone.get_config(), restored.get_config(), restored


def run_config(cls_name: str, keys: tuple[str, ...],
               normalizers: dict[str, Normalizer] | None = None):
    """``cls(**inputs["kwargs"])`` through get_config, from_config and Keras serialization."""

    def run(impl, inputs, ctx):
        cls = getattr(impl, cls_name)
        config, cloned, deserialized, restored = round_trip(cls(**inputs["kwargs"]))
        out = {"same_class_after_deserialize": type(restored).__name__ == cls.__name__}
        for label, cfg in (("config", config), ("from_config", cloned),
                           ("deserialized", deserialized)):
            for key, value in config_values(cfg, keys, normalizers).items():
                out[f"{label} {key}"] = value
        return out

    return run
