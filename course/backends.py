"""Keras 3's backends as the course uses them: which are installed, which one to run on, and what
devices each sees.

Keras picks its backend once, when it is first imported, from ``KERAS_BACKEND`` (else its config
file, else TensorFlow). So the course never switches a backend inside a process: a chapter, a
grading worker or a reference worker is a process started with ``KERAS_BACKEND`` set
(``environment(backend)``). This module imports no backend unless a function here is asked about
devices, so the grading parent stays light.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT = "tensorflow"

# the Python package each backend needs, and how to install it (the course's extras)
PACKAGES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}
INSTALL = {"tensorflow": 'pip install -e .',
           "jax": 'pip install -e ".[jax]"  (a CUDA GPU: ".[jax-cuda]")',
           "torch": 'pip install -e ".[torch]"'}

# XLA on the CPU shows one device unless asked for more: two let a JAX worker check data-parallel
# training (keras.distribution.DataParallel) on any machine, as TensorFlow's two logical CPUs do
# for MirroredStrategy.
JAX_HOST_DEVICES = "--xla_force_host_platform_device_count=2"


class BackendError(ValueError):
    """A backend that is unknown or not installed, with what to do about it."""


def installed(name: str) -> bool:
    return importlib.util.find_spec(PACKAGES[name]) is not None


def available() -> list[str]:
    """The backends whose package is installed here, in the course's order."""
    return [b for b in BACKENDS if installed(b)]


def resolve(name: str | None = None) -> str:
    """The backend to use: ``name``, else ``KERAS_BACKEND``, else TensorFlow; checked to be one
    Keras knows and installed here (``BackendError`` says how to install it otherwise)."""
    chosen = (name or os.environ.get("KERAS_BACKEND") or DEFAULT).strip().lower()
    if chosen == "pytorch":
        chosen = "torch"
    if chosen not in BACKENDS:
        raise BackendError(f"unknown backend {chosen!r}: choose one of {', '.join(BACKENDS)}")
    if not installed(chosen):
        raise BackendError(f"the {chosen} backend is not installed here ({PACKAGES[chosen]} is "
                           f"missing): {INSTALL[chosen]}")
    return chosen


def environment(backend: str, env: dict[str, str] | None = None, *, device: str = "auto") -> dict[str, str]:
    """A copy of ``env`` (default: this process's) for a child process running Keras on
    ``backend``; ``device="cpu"`` hides every accelerator from it."""
    env = dict(os.environ if env is None else env)
    env["KERAS_BACKEND"] = backend
    if backend == "jax" and JAX_HOST_DEVICES not in env.get("XLA_FLAGS", ""):
        env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") + " " + JAX_HOST_DEVICES).strip()
    if backend == "jax":
        # JAX would otherwise take 75% of a GPU's memory at start-up, beside TensorFlow's
        env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if device == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = "-1"
        if backend == "jax":
            env["JAX_PLATFORMS"] = "cpu"
    return env


def accelerators() -> list[str]:
    """In a process already running Keras: the accelerators its backend sees (names), [] for
    none. Asks the backend itself (TensorFlow's, JAX's or PyTorch's own device query)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        names = []
        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                names.append(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name))
            except Exception:  # noqa: BLE001 - a name is all we want
                names.append(gpu.name)
        return names
    if backend == "jax":
        import jax

        return [getattr(d, "device_kind", str(d)) for d in jax.devices() if d.platform != "cpu"]
    if backend == "torch":
        import torch

        if torch.cuda.is_available():
            return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        return []
    return []


def compute_capability() -> tuple[int, int] | None:
    """The first GPU's compute capability (7.0 and up have float16 Tensor Cores), or None."""
    import keras

    backend = keras.backend.backend()
    try:
        if backend == "tensorflow":
            import tensorflow as tf

            gpus = tf.config.list_physical_devices("GPU")
            return tuple(tf.config.experimental.get_device_details(gpus[0])["compute_capability"]) if gpus else None
        if backend == "jax":
            import jax

            gpus = [d for d in jax.devices() if d.platform == "gpu"]
            cc = getattr(gpus[0], "compute_capability", None) if gpus else None
            return tuple(int(p) for p in str(cc).split(".")[:2]) if cc else None
        if backend == "torch":
            import torch

            return tuple(torch.cuda.get_device_capability(0)) if torch.cuda.is_available() else None
    except Exception:  # noqa: BLE001 - unknown is an answer
        return None
    return None


_PROBE = r"""
import json, os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
try:
    import keras
    from course import backends
    info = {"keras": keras.__version__, "backend": keras.backend.backend(),
            "accelerators": backends.accelerators(), "compute_capability": backends.compute_capability()}
    name = keras.backend.backend()
    module = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[name]
    info["version"] = __import__(module).__version__
except Exception as exc:
    info = {"error": f"{type(exc).__name__}: {exc}"}
sys.stdout.write("\n" + json.dumps(info) + "\n")
"""


def probe(backend: str, timeout: float = 180.0) -> dict:
    """Start a process on ``backend`` and ask it for its version and accelerators:
    ``{"version", "keras", "accelerators", "compute_capability"}`` or ``{"error": ...}``."""
    import json
    from pathlib import Path

    env = environment(backend)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE], env=env, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"no answer in {timeout:.0f} s"}
    lines = [l for l in done.stdout.splitlines() if l.startswith("{")]
    if not lines:
        return {"error": (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]}
    return json.loads(lines[-1])


def value_and_gradients(fn, variables, tensors=()):
    """The loss ``fn(*tensors)`` and its gradients with respect to ``variables`` (Keras
    Variables that ``fn`` reads, trainable or not) and to ``tensors`` (arrays passed in), on
    whatever backend Keras runs: a ``tf.GradientTape`` on TensorFlow, ``jax.value_and_grad`` on
    JAX (the variables' values passed in through a ``keras.StatelessScope``),
    ``torch.autograd.grad`` on PyTorch.

    Whatever ``fn`` assigns to a variable (a batch-normalization layer's moving statistics) is
    kept, as in eager TensorFlow: on JAX the call runs stateless and the assignments are
    written back afterwards.

    Returns ``(loss, [gradient per variable], [gradient per tensor])``, as the backend's tensors.
    """
    import keras

    backend = keras.backend.backend()
    variables = list(variables)
    if backend == "tensorflow":
        import tensorflow as tf

        tensors = [tf.convert_to_tensor(t) for t in tensors]
        watched = [v.value for v in variables] + tensors
        with tf.GradientTape() as tape:
            tape.watch(watched)
            loss = fn(*tensors)
        grads = tape.gradient(loss, watched)
    elif backend == "jax":
        import jax

        assigned = {}

        class Recording(keras.StatelessScope):
            def add_update(self, update):
                super().add_update(update)
                assigned[id(update[0])] = update[0]

        def pure(values, inputs):
            with Recording(state_mapping=list(zip(variables, values))) as scope:
                loss = fn(*inputs)
            changed = list(assigned.values())
            return loss, (changed, [scope.get_current_value(v) for v in changed])

        (loss, (changed, values)), (var_grads, tensor_grads) = jax.value_and_grad(
            pure, argnums=(0, 1), has_aux=True)(
                [v.value for v in variables], [keras.ops.convert_to_tensor(t) for t in tensors])
        for variable, value in zip(changed, values):
            variable.assign(value)
        grads = list(var_grads) + list(tensor_grads)
    elif backend == "torch":
        import torch

        tensors = [keras.ops.convert_to_tensor(t).detach().requires_grad_(True) for t in tensors]
        # a non-trainable variable is a tensor without requires_grad until asked for
        values = [v.value for v in variables]
        wanted = [t.requires_grad for t in values]
        for t in values:
            t.requires_grad_(True)
        try:
            loss = fn(*tensors)
            grads = torch.autograd.grad(loss, values + tensors, allow_unused=True)
        finally:
            for t, flag in zip(values, wanted):
                t.requires_grad_(flag)
        grads = [torch.zeros_like(t) if g is None else g for g, t in zip(grads, values + tensors)]
    else:
        raise BackendError(f"no gradients for the {backend} backend")
    return loss, list(grads[:len(variables)]), list(grads[len(variables):])


def to_numpy(x, *args, **kwargs):
    """``np.asarray`` for anything a check returns, a tensor of any backend included: a PyTorch
    tensor that takes part in autograd (a layer's output, a trainable variable's value) is
    detached and moved to the CPU first, which ``np.asarray`` alone refuses."""
    import numpy as np

    detach = getattr(x, "detach", None)
    if detach is not None and not isinstance(x, np.ndarray):
        x = detach()
        x = x.cpu() if hasattr(x, "cpu") else x
    return np.asarray(x, *args, **kwargs)
