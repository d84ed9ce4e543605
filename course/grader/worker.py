"""The child process that runs checks: ``python -m course.grader.worker JOB_JSON``.

It imports Keras (on the backend its environment names) and TensorFlow, loads either the student's exercise file or the reference
namespace, runs the requested checks in order and writes one message per event to the result
file descriptor (see ``wire``). It never judges anything: the parent compares the numbers.

Events: ready, imported | import_error | delegation, start, result, fatal.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import SimpleNamespace

from course.grader import wire


class Channel:
    def __init__(self, fd: int):
        self.fd = fd

    def send(self, **message) -> None:
        self.send_bytes(wire.dumps(message))

    def send_bytes(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]


def tight_memory() -> bool:
    """Whether the grading runs in a container with less than 1.5 GiB (Gradescope's 768 MB), as
    the grading process found (``runner.TIGHT_MEMORY``): a confined worker may not read its
    control group itself."""
    from course.grader import runner

    return os.environ.get(runner.TIGHT_MEMORY) == "1"


def imports_tensorflow() -> bool:
    """Whether a worker imports TensorFlow up front: on its own backend, always; beside JAX or
    PyTorch, where memory allows, since tf.data checks (chapters 1 and 3) and Keras's own
    serialization use it. Under a small container it is left to whatever uses it: beside JAX
    it more than doubles the memory every worker shares (301 -> 759 MB), past 768 MB."""
    import importlib.util

    if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        return True
    return importlib.util.find_spec("tensorflow") is not None and not tight_memory()


def _setup_backend(device: str):
    """Keras on the backend the job's environment names (``KERAS_BACKEND``), set up for checks:
    on TensorFlow, two logical CPUs (a check runs tf.distribute.MirroredStrategy on one
    machine) and GPU memory growth. Returns ``(keras, device, versions)``, the device as the
    backend itself sees it ("GPU" or "CPU")."""
    import keras

    from course import backends

    backend = keras.backend.backend()
    versions = {"keras": keras.__version__}
    if backend == "tensorflow":
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
        cpus = tf.config.list_physical_devices("CPU")
        try:
            tf.config.set_logical_device_configuration(
                cpus[0], [tf.config.LogicalDeviceConfiguration()] * 2)
        except RuntimeError:  # already initialised
            pass
        for gpu in tf.config.list_physical_devices("GPU"):
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:
                pass
    else:
        versions[backend] = __import__(backends.PACKAGES[backend]).__version__
        _tensorflow_when_used()
    return keras, ("GPU" if backends.accelerators() else "CPU"), versions


def _tensorflow_when_used() -> None:
    """On JAX or PyTorch, keep Keras from importing TensorFlow only to ask whether an object is
    one of its types (its serialization asks ``tf.available`` for every object): that import
    would more than double the worker's memory (a chapter 6 worker on JAX reached 1.1 GB, past
    Gradescope's 768 MB). TensorFlow is still imported by whatever uses it: a tf.data check, a
    student's ``import tensorflow``, Keras reading a tf.data pipeline."""
    import sys

    try:  # Keras's private module: where it has changed, only the memory saving is lost
        from keras.src.utils import module_utils

        lazy = module_utils.tensorflow
        type(lazy).available  # noqa: B018 - the property this replaces
    except (ImportError, AttributeError):
        return

    class ImportedOnUse(type(lazy)):
        @property
        def available(self):
            if self.module is None and "tensorflow" not in sys.modules:
                return False  # nothing can be a TensorFlow object yet
            return super().available

    lazy.__class__ = ImportedOnUse


def describe_exception(exc: BaseException, source: str | None) -> dict:
    """Type, message and the innermost line of the student's file where it happened."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = None
    if source:
        mine = [f for f in frames if os.path.abspath(f.filename) == os.path.abspath(source)]
        if mine:
            f = mine[-1]
            where = f"line {f.lineno}, in {f.name}: {(f.line or '').strip()}"
    message = str(exc)
    if len(message) > 600:
        message = message[:600] + " ..."
    detail = {"type": type(exc).__name__, "message": message, "where": where}
    if not source:  # the reference failing is the course's bug: keep the whole traceback
        detail["traceback"] = "".join(traceback.format_exception(exc))[-4000:]
    return detail


def load_student(path: str, stem: str):
    spec = importlib.util.spec_from_file_location(stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[stem] = module
    spec.loader.exec_module(module)
    return module


def find_delegation(module, exercise) -> str | None:
    """A student class that inherits from one of the Keras built-ins it is checked against, or
    from one its checks give it to use."""
    forbidden = set(exercise.forbidden) | set(exercise.given)
    for name in exercise.exports:
        obj = getattr(module, name, None)
        if not inspect.isclass(obj):
            continue
        for base in inspect.getmro(obj)[1:]:
            if base.__module__.startswith(("keras.", "tf_keras.", "tensorflow.")) and base.__name__ in forbidden:
                return (f"{name} subclasses the Keras built-in {base.__name__}; "
                        "write the algorithm yourself on top of the base class")
    return None


# Built-ins the harness itself creates in a student's run (compile() wraps an optimizer in a
# LossScaleOptimizer under mixed_float16): their use is not the student's delegation.
_HARNESS_BUILTINS = {"LossScaleOptimizer"}


def watch_builtins(exercise) -> list[str]:
    """Record every use of a forbidden Keras built-in from now on: constructing one (wrapping),
    or calling one of its own methods (a class of the student's that borrows
    ``Adam.update_step``), and every update applied with a forbidden optimizer option set.
    Installed before the student's file is imported, so that a method taken from the class at
    import time is the recording one. The built-ins the checks give the student's code to use
    (``exercise.given``, never among the forbidden) are not watched: calling them is the
    exercise."""
    import keras

    used: list[str] = []
    for name in exercise.forbidden:
        if name in _HARNESS_BUILTINS:
            continue
        for module in (keras.optimizers, keras.optimizers.schedules, keras.layers, keras.callbacks):
            cls = getattr(module, name, None)
            if not inspect.isclass(cls):
                continue
            for attr, function in list(vars(cls).items()):
                if not inspect.isfunction(function) or (attr.startswith("__") and attr != "__init__"):
                    continue

                def record(*args, _original=function, _name=name if attr == "__init__"
                           else f"{name}.{attr}", **kwargs):
                    used.append(_name)
                    return _original(*args, **kwargs)

                # Keras layers read their own __init__'s argument names when they are created
                # (Operation.__new__); the recorder must show the original signature
                record.__signature__ = inspect.signature(function)
                setattr(cls, attr, record)
    if exercise.forbidden_options:
        _watch_options(exercise.forbidden_options, used)
    return used


def _watch_options(options: tuple[str, ...], used: list[str]) -> None:
    """Record every update a Keras optimizer applies with one of ``options`` set: the base
    class's ``_backend_apply_gradients`` is where its own gradient accumulation (and the other
    options' work) happens, however the option came to be set."""
    import keras

    owner = next(c for c in inspect.getmro(keras.optimizers.Optimizer)
                 if "_backend_apply_gradients" in vars(c))
    original = owner._backend_apply_gradients

    def record(self, *args, **kwargs):
        used.extend(option for option in options if getattr(self, option, None))
        return original(self, *args, **kwargs)

    owner._backend_apply_gradients = record


def main(argv: list[str]) -> int:
    job = json.loads(Path(argv[0]).read_text())
    channel = Channel(int(job["result_fd"]))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        keras, device, versions = _setup_backend(job["device"])
        if job["device"] == "gpu" and device != "GPU":
            channel.send(event="fatal", message=f"--device gpu was asked for, but Keras's "
                                                f"{keras.backend.backend()} backend sees no GPU")
            return 3
        exercise = importlib.import_module(f"course.grader.{job['stem']}").EXERCISE
    except BaseException as exc:  # noqa: BLE001 - report, then stop
        channel.send(event="fatal", message="".join(traceback.format_exception(exc))[-4000:])
        return 3
    channel.send(event="ready", backend=keras.backend.backend(), device=device, versions=versions)

    source = job.get("source")
    if source:
        # when memory runs out, the kernel is to stop this process, not the grader's
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")
        except OSError:
            pass
    used_builtins = watch_builtins(exercise) if source else []
    try:
        if source:
            impl = load_student(source, job["stem"])
        else:
            module_name, _, func = exercise.reference.rpartition(".")
            impl = getattr(importlib.import_module(module_name), func)()
    except BaseException as exc:  # noqa: BLE001 - SystemExit included: a student's sys.exit
        channel.send(event="import_error", error=describe_exception(exc, source))
        return 0
    if source:
        missing = [n for n in exercise.exports if not hasattr(impl, n)]
        delegation = find_delegation(impl, exercise)
        if used_builtins and not delegation:
            delegation = (f"your file used the Keras built-in {used_builtins[0]} when it was "
                          "imported: an exercise may not subclass, wrap or call the built-in it is "
                          "checked against")
        if delegation:
            channel.send(event="delegation", message=delegation)
            return 0
        channel.send(event="imported", missing=missing)
    else:
        channel.send(event="imported", missing=[])

    seed = int(job["seed"])
    free_caches = keras.backend.backend() == "jax" and tight_memory()
    if free_caches:
        import gc

        import jax
    with tempfile.TemporaryDirectory(prefix="course-check-") as tmp:
        for name in job["checks"]:
            check = exercise.check(name)
            channel.send(event="start", check=name)
            inputs = check.make_inputs(seed)
            ctx = SimpleNamespace(tmpdir=Path(tmp) / name, device=device, seed=seed, source=source)
            ctx.tmpdir.mkdir(parents=True, exist_ok=True)
            keras.config.set_dtype_policy("float32")
            keras.utils.clear_session(free_memory=False)  # its gc.collect() costs 0.3 s a check
            if free_caches:
                # JAX keeps every compiled function for the process's life: 13 checks of an
                # optimizer grew a worker by 400 MB, past Gradescope's memory; freed, by 190 MB
                # (at the cost of compiling again: only where memory is short)
                jax.clear_caches()
                gc.collect()
            keras.utils.set_random_seed(seed % (2**31))
            start = time.perf_counter()
            try:
                outputs = check.run(impl, inputs, ctx)
                # encode here: a value that cannot be sent is this check's error
                data = wire.dumps({"event": "result", "check": name, "outputs": outputs,
                                   "seconds": time.perf_counter() - start})
            except BaseException as exc:  # noqa: BLE001 - SystemExit and KeyboardInterrupt too
                data = wire.dumps({"event": "result", "check": name,
                                   "error": describe_exception(exc, source),
                                   "seconds": time.perf_counter() - start})
            finally:
                keras.config.set_dtype_policy("float32")
            if used_builtins:
                channel.send(event="delegation", message=(
                    f"your code used the Keras built-in {used_builtins[0]} during check {name}: "
                    "an exercise may not subclass, wrap or call the built-in it is checked against"))
                return 0
            channel.send_bytes(data)
    return 0


if __name__ == "__main__":
    # stdout belongs to the student (it is drained and discarded by the parent); keep ours quiet.
    code = main(sys.argv[1:])
    sys.stdout.flush()
    os._exit(code)  # skip interpreter teardown: TensorFlow's can take seconds
