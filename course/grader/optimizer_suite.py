"""The checks every optimizer exercise gets, built from three things per optimizer:

- ``draw(rng)``: hyperparameters that separate a correct implementation from each known
  mistake by far more than the tolerance (a large epsilon, a low beta_2, ...);
- ``update(state, w, g, lr, t, hp, variant)``: a NumPy model of one step for one variable (and of
  each known-wrong ``variant``), used to recognise mistakes — never to grade correctness, which is
  always against the Keras reference run in its own worker;
- the known mistakes, each a variant name of ``update`` with its hint.

The same ``run`` functions execute in the student worker (``impl`` = the student's module) and in
the reference worker (``impl`` = the Keras built-ins under the student's names).

Every run function imports keras inside: this module is imported by the grading parent, which
never imports TensorFlow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from course.backends import to_numpy

from course.grader import core
from course.grader.compare import differences
from course.grader.spec import Check, Mistake, Verdict

# --------------------------------------------------------------------------------------------
# Problems: variables, a quadratic-plus-noise gradient, and an optional learning-rate schedule.
# The gradient is g = curvature * w + noise[t], computed from the variable's current value, so a
# NumPy model can replay exactly what the worker did.


def draw_problem(rng: np.random.Generator, *, shapes=None, steps: int | None = None,
                 noise_decay: bool = False, schedule: bool = False) -> dict:
    if shapes is None:
        shapes = [(int(rng.integers(2, 5)),), (int(rng.integers(2, 4)), int(rng.integers(2, 5))),
                  (int(rng.integers(1, 4)), 1, int(rng.integers(2, 4)))]
    steps = steps or int(rng.integers(20, 26))
    w0 = [rng.normal(0, 1.5, size=s).astype(np.float32) for s in shapes]
    curvature = [np.float32(rng.uniform(0.3, 3.0)) for _ in shapes]
    scale = np.geomspace(1.0, 0.05, steps) if noise_decay else np.ones(steps)
    noise = [[(rng.normal(0, 1.0, size=s) * scale[t]).astype(np.float32) for s in shapes]
             for t in range(steps)]
    problem = {"w0": w0, "curvature": curvature, "noise": noise, "steps": steps}
    if schedule:
        problem["schedule"] = {"initial": float(rng.uniform(0.05, 0.2)),
                               "decay_steps": int(rng.integers(2, 6)),
                               "decay_rate": float(rng.uniform(0.3, 0.7))}
    return problem


def learning_rate_at(inputs: dict, step: int) -> float:
    """The rate used by the update numbered ``step`` (0-based), as Keras evaluates it."""
    s = inputs.get("schedule")
    if s is None:
        return float(np.float32(inputs["kwargs"]["learning_rate"]))
    return float(np.float32(s["initial"] * s["decay_rate"] ** (step / s["decay_steps"])))


def keras_learning_rate(inputs: dict):
    """In a worker: the learning rate argument for the optimizer (a float or a schedule)."""
    s = inputs.get("schedule")
    if s is None:
        return inputs["kwargs"]["learning_rate"]
    import keras

    return keras.optimizers.schedules.ExponentialDecay(
        s["initial"], decay_steps=s["decay_steps"], decay_rate=s["decay_rate"])


def optimizer_kwargs(inputs: dict) -> dict:
    kwargs = dict(inputs["kwargs"])
    kwargs["learning_rate"] = keras_learning_rate(inputs)
    return kwargs


# How a run function builds the optimizer it checks: ``make(impl, inputs)``
Factory = Callable[[Any, dict], Any]


def factory(optimizer: str | Factory) -> Factory:
    """A check's optimizer: the exercise's class of that name, built with the check's kwargs
    (``inputs["kwargs"]``, the rate possibly a schedule), or a function ``make(impl, inputs)``
    for one that is built otherwise (an optimizer that wraps another)."""
    if callable(optimizer):
        return optimizer
    return lambda impl, inputs: getattr(impl, optimizer)(**optimizer_kwargs(inputs))


Update = Callable[..., np.ndarray]


def clip_by_norm(g: np.ndarray, clipnorm: float) -> np.ndarray:
    """Keras's per-variable ``clipnorm``: g * clipnorm / max(||g||, clipnorm)."""
    return g * clipnorm / max(float(np.sqrt(np.sum(g * g))), clipnorm)


def simulate(inputs: dict, update: Update, variant: str | None = None,
             shared_state: bool = False, replaces_decay: tuple[str, ...] = ()) -> dict:
    """Replay a trajectory in float64 NumPy with ``update(state, w, g, lr, t, hp, variant)``.

    The base class's share of a step is modelled here, in Keras's order, for every optimizer:
    ``clipnorm``, then the decoupled weight decay ``w -= lr * weight_decay * w`` for each
    variable not excluded (``inputs["excluded"]``: indices), then ``update``. The variants in
    ``replaces_decay`` apply a decay of their own inside ``update`` instead; ``decays_excluded``
    decays the excluded variables too; ``base_options_ignored`` neither clips nor decays.
    """
    hp = {k: float(np.float32(v)) if isinstance(v, float) else v
          for k, v in inputs["kwargs"].items()}
    ignored = variant == "base_options_ignored"
    wd = 0.0 if ignored else (hp.get("weight_decay") or 0.0)
    clipnorm = None if ignored else hp.get("clipnorm")
    excluded = set() if variant == "decays_excluded" else set(inputs.get("excluded", ()))
    own_decay = variant in replaces_decay
    ws = [w.astype(np.float64) for w in inputs["w0"]]
    shared: dict = {}
    states = [shared if shared_state else {} for _ in ws]
    out = [[] for _ in ws]
    with np.errstate(all="ignore"):
        for step in range(inputs["steps"]):
            lr = learning_rate_at(inputs, step)
            for i, w in enumerate(ws):
                g = (inputs["curvature"][i] * w.astype(np.float32)
                     + inputs["noise"][step][i]).astype(np.float64)
                if clipnorm:
                    g = clip_by_norm(g, clipnorm)
                decays = wd and i not in excluded
                if decays and not own_decay:
                    w = w - lr * wd * w
                hp_i = hp if decays else {**hp, "weight_decay": 0.0}
                ws[i] = update(states[i], w, g, lr, step + 1, hp_i, variant)
                out[i].append(ws[i])
    return {f"w{i}_trajectory": np.stack(traj) for i, traj in enumerate(out)}


def run_trajectory(optimizer: str | Factory):
    make = factory(optimizer)

    def run(impl, inputs, ctx):
        import keras

        optimizer = make(impl, inputs)
        variables = [keras.Variable(w, name=f"w{i}") for i, w in enumerate(inputs["w0"])]
        if "exclude" in inputs:  # one variable by name, the others by the variables themselves
            optimizer.exclude_from_weight_decay(
                var_list=[variables[i] for i in inputs["exclude"]["var_list"]],
                var_names=inputs["exclude"]["var_names"])
        out = [[] for _ in variables]
        for step in range(inputs["steps"]):
            grads = [keras.ops.convert_to_tensor(
                inputs["curvature"][i] * v.numpy() + inputs["noise"][step][i])
                for i, v in enumerate(variables)]
            optimizer.apply_gradients(zip(grads, variables))
            for i, v in enumerate(variables):
                out[i].append(np.array(v.numpy()))
        return {f"w{i}_trajectory": np.stack(traj) for i, traj in enumerate(out)}

    return run


# --------------------------------------------------------------------------------------------
# Small models for the integration checks (fit, mixed precision, jit, save/load, distribution).


def draw_fit_data(rng: np.random.Generator, n: int = 64, features: int = 5, hidden: int = 8) -> dict:
    """A regression problem and a model's starting weights: a tanh layer of ``hidden`` units and
    a linear output, or (``hidden=0``) the linear output alone, whose two variables (a matrix
    and a vector) are all an optimizer's graph-mode checks need and trace in half the time."""
    x = rng.normal(size=(n, features)).astype(np.float32)
    true_w = rng.normal(size=(features, 1)).astype(np.float32)
    y = (np.tanh(x @ true_w) + 0.1 * rng.normal(size=(n, 1))).astype(np.float32)
    if hidden:
        weights = [rng.normal(0, 0.5, size=(features, hidden)).astype(np.float32),
                   np.zeros(hidden, np.float32),
                   rng.normal(0, 0.5, size=(hidden, 1)).astype(np.float32),
                   np.zeros(1, np.float32)]
    else:
        weights = [rng.normal(0, 0.5, size=(features, 1)).astype(np.float32),
                   rng.normal(0, 0.5, size=(1,)).astype(np.float32)]
    return {"x": x, "y": y, "weights": weights}


def build_model(inputs: dict):
    import keras

    x, weights = inputs["x"], inputs["weights"]
    layers = [keras.layers.Dense(1)]
    if len(weights) == 4:
        layers.insert(0, keras.layers.Dense(weights[0].shape[1], activation="tanh"))
    model = keras.Sequential([keras.Input((x.shape[1],)), *layers])
    model.set_weights(weights)
    return model


def _fit_outputs(model, history) -> dict:
    return {"loss_per_epoch": to_numpy(history.history["loss"], dtype=np.float64),
            "final_weights": np.concatenate([np.ravel(w) for w in model.get_weights()])}


def run_fit(optimizer: str | Factory, *, jit_compile: bool = False, policy: str | None = None,
            mirrored: bool = False, epochs: int = 3, batch_size: int = 16):
    """model.fit on the problem's data. Under MirroredStrategy each epoch costs a distributed
    iterator of its own (about 0.3 s), so that check runs one epoch of smaller batches."""
    make = factory(optimizer)

    def run(impl, inputs, ctx):
        import keras

        if policy:
            keras.config.set_dtype_policy(policy)
        extra = {}
        if mirrored and keras.backend.backend() == "jax":
            # JAX's data parallelism is Keras's own distribution API, over two XLA devices (the
            # worker asks XLA for two host devices; a GPU machine's accelerators otherwise)
            devices = keras.distribution.list_devices()[:2]
            keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
            try:
                model = build_model(inputs)
                model.compile(optimizer=make(impl, inputs), loss="mse")
                history = model.fit(inputs["x"], inputs["y"], batch_size=batch_size,
                                    epochs=epochs, shuffle=False, verbose=0)
            finally:
                keras.distribution.set_distribution(None)
            return {**_fit_outputs(model, history), "replicas": len(devices)}
        if mirrored:
            import tensorflow as tf

            strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
            with strategy.scope():
                model = build_model(inputs)
                model.compile(optimizer=make(impl, inputs), loss="mse")
            extra["replicas"] = int(strategy.num_replicas_in_sync)
        else:
            model = build_model(inputs)
            model.compile(optimizer=make(impl, inputs), loss="mse", jit_compile=jit_compile)
        history = model.fit(inputs["x"], inputs["y"], batch_size=batch_size, epochs=epochs,
                            shuffle=False, verbose=0)
        out = _fit_outputs(model, history)
        out.update(extra)
        if policy:
            optimizer = model.optimizer
            out["wrapped_in_loss_scale_optimizer"] = isinstance(
                optimizer, keras.optimizers.LossScaleOptimizer)
            out["kernel_dtype"] = str(model.layers[0].kernel.dtype)
            out["output_dtype"] = str(keras.ops.convert_to_tensor(model(inputs["x"][:2])).dtype)
            if out["wrapped_in_loss_scale_optimizer"]:
                out["loss_scale"] = float(to_numpy(optimizer.dynamic_scale))
        return out

    return run


def run_save_load(optimizer: str | Factory, steps_after: int = 4):
    """Train, save to .keras, load, then go on training the loaded model. The steps after loading
    are eager (the backend's gradients and apply_gradients, batches of 16 in order): they need the restored
    slots and step count to agree with the reference, and cost no second trace of a train step."""
    make = factory(optimizer)

    def run(impl, inputs, ctx):
        import keras

        model = build_model(inputs)
        model.compile(optimizer=make(impl, inputs), loss="mse")
        model.fit(inputs["x"], inputs["y"], batch_size=16, epochs=2, shuffle=False, verbose=0)
        path = ctx.tmpdir / "trained.keras"
        model.save(path)
        loaded = keras.saving.load_model(path)
        before = [to_numpy(v) for v in model.optimizer.variables]
        after = [to_numpy(v) for v in loaded.optimizer.variables]
        state_kept = len(before) == len(after) and all(
            a.shape == b.shape and np.allclose(a, b) for a, b in zip(before, after))
        from course.backends import value_and_gradients

        losses = []
        for step in range(steps_after):
            batch = slice(16 * step % len(inputs["x"]), 16 * step % len(inputs["x"]) + 16)
            x, y = inputs["x"][batch], inputs["y"][batch]
            loss, grads, _ = value_and_gradients(
                lambda: keras.ops.mean(keras.ops.square(keras.ops.subtract(loaded(x), y))),
                loaded.trainable_variables)
            loaded.optimizer.apply_gradients(zip(grads, loaded.trainable_variables))
            losses.append(float(keras.ops.convert_to_numpy(loss)))
        out = {"loss_per_step_after_load": to_numpy(losses, dtype=np.float64),
               "final_weights": np.concatenate([np.ravel(w) for w in loaded.get_weights()])}
        out["same_class_after_load"] = type(loaded.optimizer).__name__ == type(model.optimizer).__name__
        out["optimizer_state_restored"] = bool(state_kept)
        # the step count as the optimizer reports it (a wrapper's is the updates it applied)
        out["iterations_after_load"] = int(to_numpy(loaded.optimizer.iterations))
        return out

    return run


def run_sparse(cls_name: str, steps: int = 5):
    """An Embedding trained for a few steps on its sparse gradients (``tf.IndexedSlices``, one
    slice per lookup), and again from the same start with each gradient made dense first."""

    def run(impl, inputs, ctx):
        import keras
        import tensorflow as tf

        table = inputs["table"]
        out, sparse_seen = {}, []
        for key, densify in (("table_trajectory", False), ("table_trajectory_dense", True)):
            layer = keras.layers.Embedding(table.shape[0], table.shape[1])
            layer.build((None,))
            layer.embeddings.assign(table)
            optimizer = getattr(impl, cls_name)(**optimizer_kwargs(inputs))
            trajectory = []
            for t in range(steps):
                ids = tf.constant(inputs["ids"][t])
                with tf.GradientTape() as tape:
                    rows = layer(ids)
                    loss = (tf.reduce_sum(rows * inputs["targets"][t])
                            + 0.5 * tf.reduce_sum(rows**2))
                grads = tape.gradient(loss, [layer.embeddings])
                if densify:
                    grads = [tf.convert_to_tensor(grads[0])]
                else:
                    sparse_seen.append(isinstance(grads[0], tf.IndexedSlices))
                optimizer.apply_gradients(zip(grads, [layer.embeddings]))
                trajectory.append(np.array(layer.embeddings.numpy()))
            out[key] = np.stack(trajectory)
        out["gradients_were_sparse"] = all(sparse_seen)
        return out

    return run


def draw_sparse(rng: np.random.Generator, kwargs: dict, steps: int = 5) -> dict:
    vocab, dim = int(rng.integers(6, 10)), int(rng.integers(2, 5))
    # Rows looked up twice in one step, as in any Embedding batch: the gradient then holds a
    # slice per lookup, and the two readings of it (below) differ for an optimizer that squares
    # the gradient. The last two rows are never looked up.
    ids = []
    for _ in range(steps):
        step = rng.choice(vocab - 2, size=int(rng.integers(4, 7)), replace=True)
        step[-1] = step[0]  # at least one row twice
        ids.append(rng.permutation(step).astype(np.int32))
    targets = [rng.normal(size=(len(i), dim)).astype(np.float32) for i in ids]
    return {"kwargs": kwargs, "table": rng.normal(size=(vocab, dim)).astype(np.float32),
            "ids": ids, "targets": targets}


DUPLICATE_LOOKUPS = Mistake(
    "a row looked up twice in a step counted once",
    "an Embedding's gradient holds one slice per lookup, and a row looked up twice has two "
    "slices that must both count. Write state and variables only with self.assign / assign_add "
    "/ assign_sub (they scatter-ADD the slices) and use keras.ops on the gradient, or make it "
    "dense first with keras.ops.convert_to_tensor(gradient).", id="duplicate_lookups_lost")


def sparse_judge(student: dict, reference: dict, inputs: dict, rtol: float = 1e-5,
                 atol: float = 1e-6) -> Verdict:
    """Either reading of a sparse gradient passes (the exercise docstrings say why):

    - Keras's: keras.ops work on the slices, so an optimizer that squares the gradient adds up
      the squares of a row's slices (``g1^2 + g2^2``);
    - the dense gradient's: the slices summed first (``(g1 + g2)^2``), as PyTorch's sparse Adam
      does and as the same model would compute with a dense gradient.
    """
    flag = differences(student, reference, rtol, atol, ["gradients_were_sparse"])
    if flag:
        return Verdict(False, f"{flag[0]} (the check needs the Embedding's sparse gradients)")
    with np.errstate(all="ignore"):
        dense = differences(student, reference, rtol, atol, ["table_trajectory_dense"])
        if dense:
            return Verdict(False, f"with a dense gradient: {dense[0]}", detail=dense[0])
        as_keras = differences(student, reference, rtol, atol, ["table_trajectory"])
        readings_agree = not differences({"table_trajectory": reference["table_trajectory"]},
                                         {"table_trajectory": reference["table_trajectory_dense"]},
                                         rtol, atol)
        if not as_keras:
            return Verdict(True, "matches the reference" if readings_agree else
                           "matches Keras on sparse gradients (each slice squared on its own)")
        as_dense = differences({"table_trajectory": student.get("table_trajectory")},
                               {"table_trajectory": reference["table_trajectory_dense"]},
                               rtol, atol)
        if not as_dense:
            return Verdict(True, "matches the update of the dense gradient (the slices of a row "
                                 "looked up twice summed before squaring), which the course accepts")
        mine = to_numpy(student.get("table_trajectory"), dtype=np.float64)
        theirs = to_numpy(reference["table_trajectory"], dtype=np.float64)
        twice = {int(i) for ids in inputs["ids"] for i, n in zip(*np.unique(ids, return_counts=True))
                 if n > 1}
        if mine.shape == theirs.shape:
            bad = ~np.isclose(mine, theirs, rtol=rtol, atol=atol)
            rows = {int(r) for r in np.argwhere(bad.any(axis=(0, 2)))[:, 0]}
            if rows and rows <= twice:
                return Verdict(False, f"only rows looked up twice in a step differ ({sorted(rows)}): "
                                      f"{as_keras[0]}", hint=DUPLICATE_LOOKUPS.hint,
                               mistake=DUPLICATE_LOOKUPS, detail=as_keras[0])
        return Verdict(False, f"{as_keras[0]} (nor does it match the dense gradient's update)",
                       detail=as_keras[0])


# Checks with no counterpart on a backend, and why (the report gives the reason; the exercise's
# points are shared among the checks that do run there)
NO_SPARSE_GRADIENTS = (
    ("jax", "JAX has no sparse gradients: an Embedding's gradient is a dense array on this backend"),
    ("torch", "Keras on PyTorch gives an Embedding a dense gradient: there is no sparse gradient "
              "to check on this backend"))
NO_TORCH_COMPILE = (
    ("torch", "jit_compile=True on PyTorch is torch.compile, which builds C++ kernels with a "
              "compiler in child processes: the grader's sandbox lets a student's code start "
              "none, so there is no compiled check on this backend"),)
NO_DATA_PARALLEL = (
    ("torch", "Keras's data-parallel API (keras.distribution) runs on JAX only, and "
              "tf.distribute is TensorFlow's: PyTorch has no data-parallel check here"),)


def single_step_inputs(draw: Callable[[np.random.Generator], dict]):
    """Keras's own test case (lr 0.5, gradient [1,6,7,2], variable [1,2,3,4]) with drawn options."""

    def inputs(rng):
        kwargs = draw(rng)
        kwargs["learning_rate"] = 0.5
        return {"kwargs": kwargs, "w0": [np.array([1.0, 2.0, 3.0, 4.0], np.float32)],
                "curvature": [np.float32(0.0)],
                "noise": [[np.array([1.0, 6.0, 7.0, 2.0], np.float32)]], "steps": 1}

    return inputs


# --------------------------------------------------------------------------------------------
# Assembling the checks


@dataclass(frozen=True)
class OptimizerSpec:
    """One optimizer class of an exercise, as the suite needs it."""

    cls_name: str
    update: Update                    # NumPy model: update(state, w, g, lr, t, hp, variant)
    draw: Callable[[np.random.Generator], dict]  # separating hyperparameters (no learning_rate)
    defaults: tuple[str, ...]         # get_config keys whose defaults must equal the reference's
    mistakes: tuple[tuple[str, str, str], ...] = ()  # (variant, name, hint)
    error_mistakes: tuple[Mistake, ...] = ()  # recognised from an exception's text
    # (check name, extra kwargs), e.g. ("amsgrad", {...}); the extra kwargs may also be a
    # function of the check's rng, to draw an option's value (e.g. a momentum) per seed
    options: tuple[tuple[str, dict | Callable[[np.random.Generator], dict]], ...] = ()
    lr_range: tuple[float, float] = (0.01, 0.1)
    # variants whose ``update`` applies a (wrong) weight decay of its own instead of the base
    # class's, e.g. AdamW's decay added to the gradient
    replaces_decay: tuple[str, ...] = ()


def _mistakes(spec: OptimizerSpec, shared: bool = False) -> tuple[Mistake, ...]:
    made = []
    for variant, name, hint in spec.mistakes:
        if variant == "shared_slot" and not shared:
            continue

        def outputs(inputs, _variant=variant):
            return simulate(inputs, spec.update,
                            variant=None if _variant == "shared_slot" else _variant,
                            shared_state=_variant == "shared_slot",
                            replaces_decay=spec.replaces_decay)

        made.append(Mistake(name, hint, outputs=outputs, id=variant))
    return tuple(made) + spec.error_mistakes


# One optimizer state for all variables: modelled as a state dict shared across variables (the
# "shared_slot" variant of simulate) and recognised when shapes clash and the code raises.
SHARED_SLOT = (
    "shared_slot", "one optimizer state shared by all variables",
    "create the slots for EACH variable in build() (add_optimizer_variables(var_list, ...)) and "
    "look them up with self._get_variable_index(variable); variables of different shapes cannot "
    "share one slot.")
SHARED_SLOT_ERROR = Mistake(SHARED_SLOT[1], SHARED_SLOT[2], error=r"(incompatible|shape|broadcast)",
                            id=SHARED_SLOT[0])

# What every optimizer inherits from keras.optimizers.Optimizer and a subclass can lose.
BASE_MISTAKES = (
    ("decays_excluded", "weight decay applied to excluded variables",
     "variables excluded with optimizer.exclude_from_weight_decay(var_list=..., var_names=...) "
     "must not be decayed. Hand weight_decay to the base class (super().__init__(weight_decay="
     "...)), which skips them; a decay written in update_step must skip every variable for "
     "which self._use_weight_decay(variable) is False."),
    ("base_options_ignored", "the base class's options (weight_decay, clipnorm) ignored",
     "pass **kwargs on to super().__init__(...): weight_decay, clipnorm, clipvalue, "
     "global_clipnorm, use_ema, gradient_accumulation_steps and loss_scale_factor are the base "
     "class's, and it applies them around update_step for you."),
)
UNKNOWN_KEYWORD = Mistake(
    "the base class's keyword arguments refused",
    "accept **kwargs in __init__ and pass them on to super().__init__(...): weight_decay, "
    "clipnorm, name, ... belong to the base class.",
    error=r"unexpected keyword argument", id="kwargs_not_forwarded")


def _base_mistakes(spec: OptimizerSpec) -> tuple[Mistake, ...]:
    made = []
    for variant, name, hint in BASE_MISTAKES:
        def outputs(inputs, _variant=variant):
            return simulate(inputs, spec.update, variant=_variant,
                            replaces_decay=spec.replaces_decay)

        made.append(Mistake(name, hint, outputs=outputs, id=variant))
    return tuple(made) + (UNKNOWN_KEYWORD,)


def _base_options_inputs(draw):
    """A trajectory with the base class's weight decay (one variable excluded by name, one by
    the variable itself, one decayed) and per-variable gradient clipping."""

    def inputs(rng):
        out = draw_problem(rng, shapes=[(3,), (2, 3), (4,)])
        kwargs = draw(rng)
        kwargs.setdefault("weight_decay", float(rng.uniform(0.2, 0.5)))
        kwargs["clipnorm"] = float(rng.uniform(0.5, 1.5))  # below the gradients' norms
        order = rng.permutation(3)
        out.update(kwargs=kwargs, excluded=[int(order[0]), int(order[1])],
                   exclude={"var_names": [f"w{int(order[0])}"], "var_list": [int(order[1])]})
        return out

    return inputs


def _with_lr(spec: OptimizerSpec, extra: dict | None = None):
    def draw(rng):
        kwargs = spec.draw(rng)
        kwargs.update((extra(rng) if callable(extra) else extra) or {})
        kwargs["learning_rate"] = float(rng.uniform(*spec.lr_range))
        return kwargs

    return draw


def optimizer_checks(spec: OptimizerSpec) -> list[Check]:
    """Every check an optimizer class gets: interface, config, single step, trajectory, slots,
    schedule, each option, the base class's options, model.fit, mixed_float16, sparse gradients,
    jit_compile, .keras save/load and MirroredStrategy."""
    p = spec.cls_name.lower()
    draw = _with_lr(spec)
    mistakes = _mistakes(spec)

    def problem(**kw):
        def inputs(rng):
            out = draw_problem(rng, **kw)
            out["kwargs"] = draw(rng)
            return out
        return inputs

    checks = [
        # defaults and configs are exact values: no absolute slack (1e-8 must not pass for 1e-7)
        Check(f"{p}.interface", core.run_interface(spec.cls_name, "optimizer", spec.defaults),
              f"{spec.cls_name} is a keras Optimizer with the reference's constructor defaults",
              rtol=1e-6, atol=0.0),
        Check(f"{p}.config", core.run_config(spec.cls_name, spec.defaults),
              inputs=lambda rng: {"kwargs": draw(rng)},
              description="get_config / from_config / keras serialization round trip",
              rtol=1e-6, atol=0.0),
        Check(f"{p}.single_step", run_trajectory(spec.cls_name), inputs=single_step_inputs(spec.draw),
              description="one step on Keras's own test case", mistakes=mistakes),
        Check(f"{p}.trajectory", run_trajectory(spec.cls_name), inputs=problem(), weight=2.0,
              description="20+ steps over three variables of different shapes", mistakes=mistakes),
        Check(f"{p}.slots_per_variable", run_trajectory(spec.cls_name),
              inputs=problem(shapes=[(4,), (4,), (4,)]), mistakes=_mistakes(spec, shared=True),
              description="three variables of one shape: each needs its own optimizer state"),
        Check(f"{p}.schedule", run_trajectory(spec.cls_name), inputs=problem(schedule=True),
              description="a LearningRateSchedule as the learning rate", mistakes=mistakes),
    ]
    for option, extra in spec.options:
        draw_option = _with_lr(spec, extra)

        def option_inputs(rng, _draw=draw_option):
            out = draw_problem(rng, noise_decay=True)
            out["kwargs"] = _draw(rng)
            return out

        checks.append(Check(f"{p}.{option}", run_trajectory(spec.cls_name), inputs=option_inputs,
                            description=f"the {option} option over 20+ steps", mistakes=mistakes))
    checks.append(Check(f"{p}.base_options", run_trajectory(spec.cls_name),
                        inputs=_base_options_inputs(draw), mistakes=_base_mistakes(spec) + mistakes,
                        description="the base class's weight_decay with exclude_from_weight_decay, "
                                    "and clipnorm"))

    fit_inputs = _fit_inputs(draw)
    checks += [
        Check(f"{p}.fit", run_fit(spec.cls_name), inputs=fit_inputs,
              description="model.fit losses and weights"),
        Check(f"{p}.mixed_float16", run_fit(spec.cls_name, policy="mixed_float16"),
              inputs=fit_inputs, rtol=2e-3, atol=2e-3,
              description="mixed_float16: compile() wraps it in a LossScaleOptimizer; float32 variables"),
        Check(f"{p}.sparse_gradients", run_sparse(spec.cls_name),
              inputs=lambda rng: draw_sparse(rng, draw(rng)), mistakes=(DUPLICATE_LOOKUPS,),
              judge=sparse_judge, unsupported=NO_SPARSE_GRADIENTS,
              description="an Embedding's IndexedSlices gradients over 5 steps"),
        Check(f"{p}.jit_compile", run_fit(spec.cls_name, jit_compile=True), inputs=fit_inputs,
              description="model.fit with jit_compile=True (XLA)", timeout_factor=2.0,
              unsupported=NO_TORCH_COMPILE),
        Check(f"{p}.save_load", run_save_load(spec.cls_name), inputs=fit_inputs,
              description=".keras save/load of a trained model with its optimizer state"),
        Check(f"{p}.mirrored_strategy", run_fit(spec.cls_name, mirrored=True, epochs=1, batch_size=8),
              inputs=fit_inputs,
              rtol=1e-4, atol=1e-5, unsupported=NO_DATA_PARALLEL,
              description="data-parallel model.fit on two devices: tf.distribute.MirroredStrategy "
                          "on TensorFlow, keras.distribution.DataParallel on JAX",
              timeout_factor=2.0),
    ]
    return checks


def _fit_inputs(draw):
    def inputs(rng):
        out = draw_fit_data(rng, hidden=0)
        out["kwargs"] = draw(rng)
        return out
    return inputs

