"""Chapter 8 (the loss-curve doctor and gradient accumulation): the models behind its grader.

Fast tests check the reference doctor's rules on hand-made streams; the plain-Python rules
(``DoctorRules``, whose variants name mistakes) against the reference callback around them and
against the solution, on every scripted check and on real fits; the NumPy model of the wrapper
against Keras's own accumulation; every known mistake far from the right answer where a check
names it; the solution's and the reference's errors on bad arguments; and the source checks that
keep Keras's accumulation out of a submission. The submission variants are graded in test_variants.py; the solution's 10/10 and
the stub's 0/10 in test_solutions_and_stubs.py.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from course import references
from course.grader import ch08_training_recipe as g
from course.grader import static
from course.grader.compare import differences
from graderlib import solution_text

STEM = "ch08_training_recipe"
SEEDS = range(12)


@pytest.fixture(scope="module")
def reference_ns():
    return references.ch08_training_recipe()  # registers the reference classes: once per session


@pytest.fixture(scope="module")
def solution():
    from solutions import ch08_training_recipe

    return ch08_training_recipe


def _findings(doctor_cls, epochs, **hp):
    doctor = doctor_cls(verbose=False, **hp)
    driven = g.drive(doctor, g.logged(epochs))
    return g.describe(doctor.findings), driven


# ---------------------------------------------------------------------------------------------
# The reference doctor's rules on streams made by hand


def _one_epoch(losses, val=None):
    return [{"losses": list(losses), "val_loss": val}]


def test_reference_spike_needs_a_window_before_it_and_a_window_between(reference_ns):
    def spikes(stream):  # windows never noisy here
        return _findings(reference_ns.LossCurveDoctor, _one_epoch(stream), window=4,
                         noise_ratio=9.0)[0]

    calm = [1.0, 1.1, 0.9, 1.0]  # median 1.0
    # too early: only 3 finite losses before the jump
    assert spikes(calm[:3] + [9.0]) == "none"
    # 4.5 > 4 * 1.0: a spike; the next jump two batches later is within the window: silent;
    # the one a window later is reported again
    assert spikes(calm + [4.5, 1.0, 9.0, 1.0, 1.0, 1.0, 9.0]) == (
        "spike at step 4, epoch 0; spike at step 10, epoch 0")
    # 3.9 is below 4 times the median
    assert spikes(calm + [3.9]) == "none"


def test_reference_windows_do_not_overlap_and_report_once(reference_ns):
    doctor = reference_ns.LossCurveDoctor
    flat = [1.0, 1.02, 0.98, 1.0] * 5
    # windows close at steps 3, 7, 11, ...: flat at window 2 (step 11), only once
    assert _findings(doctor, _one_epoch(flat), window=4)[0] == "flat at step 11, epoch 0"
    # halving every window: never flat; a window of 0.2/1.8 swings: noisy, once
    falling = [2.0] * 4 + [1.0] * 4 + [0.2, 1.8] * 4 + [0.25] * 4
    assert _findings(doctor, _one_epoch(falling), window=4)[0] == "noisy at step 11, epoch 0"


def test_reference_nan_stops_and_is_left_out_of_the_windows(reference_ns):
    doctor = reference_ns.LossCurveDoctor
    found, driven = _findings(doctor, [{"losses": [1.0, 1.0, math.nan, 1.0], "val_loss": None},
                                       {"losses": [1.0] * 3, "val_loss": None}], window=2)
    assert found == "nan at step 2, epoch 0"
    assert driven == {"stop_training": True, "batches run": 3}
    # without the stop: the NaN poisons the rest of its epoch (Keras's running mean); the six
    # finite losses make windows at steps 1, 5 and 7: flat at the third
    epochs = [{"losses": [1.0, 1.0, math.nan, 1.0], "val_loss": None},
              {"losses": [1.0] * 4, "val_loss": None}]
    found, driven = _findings(doctor, epochs, window=2, stop_on_nan=False)
    assert found == "nan at step 2, epoch 0; flat at step 7, epoch 1"
    assert driven == {"stop_training": False, "batches run": 8}


def test_reference_overfitting_patience_and_the_first_best_epoch(reference_ns):
    doctor = reference_ns.LossCurveDoctor
    train = [3.0, 2.0, 1.5, 1.2, 1.0, 0.9, 0.8]
    val = [2.0, 1.5, 1.5, 1.6, 1.7, 1.8, 1.9]  # lowest first at epoch 1 (tied at 2)
    epochs = [{"losses": [t], "val_loss": v} for t, v in zip(train, val)]
    assert _findings(doctor, epochs, overfit_patience=3)[0] == "overfitting at epoch 4"
    assert _findings(doctor, epochs, overfit_patience=6)[0] == "none"
    rising = [{"losses": [t], "val_loss": v} for t, v in zip([3.0, 2.0, 2.1, 2.2, 2.3], val)]
    assert _findings(doctor, rising, overfit_patience=2)[0] == "none"  # diverging, not overfitting


def test_reference_lr_too_high_at_the_last_step(reference_ns):
    doctor = reference_ns.LossCurveDoctor
    stream = [2.0] * 4 + [1.0] * 4 + [0.2, 1.8, 0.2, 1.8] + [1.0, 1.0]
    found, _ = _findings(doctor, [{"losses": stream[:6], "val_loss": None},
                                  {"losses": stream[6:], "val_loss": None}], window=4)
    assert found == "noisy at step 11, epoch 1; lr_too_high at step 13, epoch 1"


def test_reference_undoes_the_running_mean_per_epoch(reference_ns):
    epochs = [{"losses": [3.0, 1.0, 2.0], "val_loss": None}, {"losses": [5.0, 1.0], "val_loss": None}]
    doctor = reference_ns.LossCurveDoctor(verbose=False)
    g.drive(doctor, g.logged(epochs))
    np.testing.assert_allclose(doctor.losses, [3.0, 1.0, 2.0, 5.0, 1.0], rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# The grader's models against the references


SCRIPTED = [c for c in g.EXERCISE.checks if c.run is g.run_scripted]
FITS = [c for c in g.EXERCISE.checks if c.run is g.run_doctor_fit]


@pytest.mark.parametrize("check", SCRIPTED, ids=lambda c: c.name)
def test_doctor_model_agrees_with_the_reference_and_solution(check, reference_ns, solution):
    for seed in SEEDS:
        inputs = check.make_inputs(seed)
        reference = check.run(reference_ns, inputs, SimpleNamespace())
        model = g.scripted_model(inputs)
        assert not differences(model, reference, 1e-9, 1e-12, list(model)), (check.name, seed)
        assert not differences(check.run(solution, inputs, SimpleNamespace()), reference,
                               1e-9, 1e-12), (check.name, seed)
        assert all(v for k, v in reference.items() if k.endswith(("well formed", "or one")))


@pytest.mark.parametrize("check", SCRIPTED, ids=lambda c: c.name)
def test_every_doctor_mistake_is_seen_where_it_is_named(check):
    for seed in SEEDS:
        inputs = check.make_inputs(seed)
        right = g.scripted_model(inputs)
        for mistake in check.mistakes:
            wrong = mistake.outputs(inputs)
            assert differences(wrong, right, 1e-4, 1e-5, list(wrong)), (check.name, seed, mistake.id)


def test_scripted_runs_show_what_they_are_made_for():
    """Each scripted check's runs hold the findings it is about (for many seeds)."""
    wanted = {"losscurvedoctor.spike": {"spikes": 3 * ["spike"]},
              "losscurvedoctor.windows": {"flat": ["flat"], "noisy": ["noisy"]},
              "losscurvedoctor.nan": {"stops": ["nan"], "goes on": ["nan", "flat"]},
              "losscurvedoctor.overfitting": {"overfits": ["overfitting"], "diverges": []},
              "losscurvedoctor.lr_too_high": {"too high": ["noisy", "lr_too_high"],
                                              "improving": ["noisy"]},
              "losscurvedoctor.epochs": {"epochs": ["flat", "spike", "noisy"]},
              "losscurvedoctor.floor": {"converges": ["spike", "noisy"]}}
    for name, runs in wanted.items():
        check = g.EXERCISE.check(name)
        for seed in range(40):
            inputs = check.make_inputs(seed)
            for label, codes in runs.items():
                doctor = references.DoctorRules(inputs["runs"][label]["hp"])
                g.drive(doctor, g.logged(inputs["runs"][label]["epochs"]))
                assert [f["code"] for f in doctor.findings] == codes, (name, seed, label)


def test_no_false_alarm_on_healthy_streams(reference_ns):
    """The doctor's defaults on 200 healthy scripted runs: no finding at all."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        run = g._healthy_run(rng)
        assert _findings(reference_ns.LossCurveDoctor, run["epochs"])[0] == "none"


@pytest.mark.parametrize("check", FITS, ids=lambda c: c.name)
def test_real_fits_show_their_pathology_and_the_driver_replays_them(check, reference_ns):
    """The reference doctor in a real model.fit finds what the run is engineered to show, and
    the model fed the logs that run recorded (through ``drive``, which calls the hooks as
    model.fit does) finds the same; each named mistake differs."""
    import keras

    expected = {"fit_nan": "nan", "fit_overfitting": "overfitting", "fit_flat": "flat",
                "fit_healthy": None}[check.name.split(".")[1]]
    for seed in range(3):
        keras.utils.set_random_seed(seed)
        inputs = check.make_inputs(seed)
        reference = check.run(reference_ns, inputs, SimpleNamespace())
        codes = [part.split(" at ")[0] for part in reference["findings"].split("; ")]
        assert (reference["findings"] == "none") if expected is None else expected in codes
        replayed = g.fit_model({**inputs, "observed": reference})
        assert not differences(replayed, reference, 1e-9, 1e-12, list(replayed)), (seed,)
        for mistake in check.mistakes:
            wrong = mistake.outputs({**inputs, "observed": reference})
            assert differences(wrong, reference, 1e-4, 1e-5, list(wrong)), (seed, mistake.id)


WRAPPER_TRAJECTORIES = [c for c in g.EXERCISE.checks if c.mistakes and c.mistakes[0].outputs
                        and c.name.startswith("accumulategradients.")]


@pytest.mark.parametrize("check", WRAPPER_TRAJECTORIES, ids=lambda c: c.name)
def test_wrapper_model_matches_keras_and_every_mistake_is_far(check, reference_ns):
    model = g.counting if check.run is g.run_counting else g.accumulated
    for seed in range(6):
        inputs = check.make_inputs(seed)
        keras_out = check.run(reference_ns, inputs, SimpleNamespace())
        right = model(inputs)
        assert not differences(right, keras_out, 1e-5, 1e-6), (check.name, seed)
        for mistake in check.mistakes:
            wrong = mistake.outputs(inputs)
            if mistake.id == "inner_step_every_micro_batch" and inputs["inner"] != "Adam":
                continue  # SGD's step does not depend on its count: no check names it there
            assert differences(wrong, right, 100 * check.rtol, 100 * check.atol, list(wrong)), (
                check.name, seed, mistake.id)


def _keras_accumulating(optimizer, steps, clipnorm):
    return type(optimizer).from_config({**optimizer.get_config(),
                                        "gradient_accumulation_steps": steps,
                                        "global_clipnorm": clipnorm})


@pytest.mark.parametrize("inner", ["sgd", "momentum", "adam"])
def test_reference_and_solution_are_keras_accumulation(inner, reference_ns, solution):
    """Eager trajectories of the reference wrapper and the solution against Keras's own
    accumulation on the same inner optimizer: a constant rate and a schedule, with and without
    global clipping (model.fit, XLA, mixed precision and save/load are the grader's checks)."""
    import keras

    def make(schedule):
        rate = keras.optimizers.schedules.ExponentialDecay(0.1, 3, 0.5) if schedule else 0.1
        return {"sgd": lambda: keras.optimizers.SGD(rate),
                "momentum": lambda: keras.optimizers.SGD(rate, momentum=0.8),
                "adam": lambda: keras.optimizers.Adam(rate, beta_2=0.95, epsilon=0.1)}[inner]()

    def trajectory(optimizer):
        rng = np.random.default_rng(0)
        variables = [keras.Variable(rng.normal(size=s).astype("float32")) for s in [(3,), (2, 4)]]
        out = []
        for _ in range(11):
            grads = [keras.ops.convert_to_tensor(
                (1.3 * v.numpy() + rng.normal(size=v.shape)).astype("float32")) for v in variables]
            optimizer.apply_gradients(zip(grads, variables))
            out.append(np.concatenate([v.numpy().ravel() for v in variables]))
        return np.asarray(out), int(np.asarray(optimizer.iterations))

    for schedule in (False, True):
        for steps, clipnorm in ((3, None), (2, 0.4)):
            want, updates = trajectory(_keras_accumulating(make(schedule), steps, clipnorm))
            assert updates == 11 // steps
            for wrapper in (reference_ns.AccumulateGradients, solution.AccumulateGradients):
                got, count = trajectory(wrapper(make(schedule), steps=steps,
                                                global_clipnorm=clipnorm))
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
                assert count == updates


# ---------------------------------------------------------------------------------------------
# Bad arguments, and keeping Keras's accumulation out of a submission


def test_bad_arguments_give_clear_errors(reference_ns, solution):
    import keras

    for doctor in (solution.LossCurveDoctor, reference_ns.LossCurveDoctor):
        for kwargs, word in (({"window": 1}, "window"), ({"window": 2.5}, "window"),
                             ({"overfit_patience": 0}, "overfit_patience"),
                             ({"spike_factor": 1.0}, "spike_factor"),
                             ({"flat_tolerance": 1.0}, "flat_tolerance"),
                             ({"noise_ratio": 0.0}, "noise_ratio")):
            with pytest.raises(ValueError, match=word):
                doctor(**kwargs)
    for wrapper in (solution.AccumulateGradients, reference_ns.AccumulateGradients):
        sgd = keras.optimizers.SGD(0.1)
        with pytest.raises(TypeError, match="Optimizer"):
            wrapper("sgd")
        for kwargs, word in (({"steps": 0}, "steps"), ({"steps": 1.5}, "steps"),
                             ({"steps": True}, "steps"), ({"global_clipnorm": 0.0}, "global_clipnorm")):
            with pytest.raises(ValueError, match=word):
                wrapper(sgd, **kwargs)
        with pytest.raises(ValueError, match="accumulat"):
            wrapper(keras.optimizers.SGD(0.1, gradient_accumulation_steps=2))
        with pytest.raises(ValueError, match="global_clipnorm"):
            wrapper(keras.optimizers.SGD(0.1, clipnorm=1.0), global_clipnorm=1.0)
    with pytest.raises(ValueError, match="the optimizer it wraps"):
        solution.AccumulateGradients(keras.optimizers.SGD(0.1), weight_decay=0.1)


OPTION = g.EXERCISE.forbidden_options


@pytest.mark.parametrize("source", [
    "opt = keras.optimizers.SGD(0.1, gradient_accumulation_steps=4)",
    "optimizer.gradient_accumulation_steps = self.steps",
    "inner = type(o).from_config({**o.get_config(), 'gradient_accumulation_steps': steps})",
    "config['gradient_accumulation_steps'] = steps",
])
def test_keras_accumulation_in_the_source_is_delegation(source):
    assert "gradient_accumulation_steps" in static.find_forbidden_option(
        static.ast.parse(source), OPTION)


@pytest.mark.parametrize("source", [
    "super().__init__(learning_rate=0.0, gradient_accumulation_steps=None)",
    "if optimizer.gradient_accumulation_steps:\n    raise ValueError('accumulates already')",
    "unknown = kwargs.pop('gradient_accumulation_steps', None)",
])
def test_mentioning_keras_accumulation_is_not_delegation(source):
    assert static.find_forbidden_option(static.ast.parse(source), OPTION) is None


def test_the_solution_passes_the_source_checks_and_a_subclass_does_not():
    exercise = g.EXERCISE
    ok = static.inspect_source(solution_text(STEM), f"{STEM}.py", exercise.exports,
                               exercise.forbidden, exercise.given, exercise.forbidden_options)
    assert ok.ok, ok.message
    text = solution_text(STEM).replace("class AccumulateGradients(keras.optimizers.Optimizer):",
                                       "class AccumulateGradients(keras.optimizers.Adam):")
    flagged = static.inspect_source(text, f"{STEM}.py", exercise.exports, exercise.forbidden,
                                    exercise.given, exercise.forbidden_options)
    assert not flagged.ok and "subclasses the Keras built-in keras.optimizers.Adam" in flagged.message


@pytest.mark.parametrize("line", [
    "from course.references import ch08_training_recipe",
    "from course import references",
    "import course.references as r",
    "from course.grader.ch08_training_recipe import DoctorRules",
    "from solutions.ch08_training_recipe import LossCurveDoctor",
])
def test_importing_the_course_answers_is_refused(line):
    """The student bundle carries the references and the grader (it grades locally): a
    submission that imports them is not the student's own code."""
    exercise = g.EXERCISE
    text = line + "\n" + solution_text(STEM)
    flagged = static.inspect_source(text, f"{STEM}.py", exercise.exports, exercise.forbidden,
                                    exercise.given, exercise.forbidden_options)
    assert not flagged.ok and flagged.status.name == "DELEGATION" and "line 1 imports" in flagged.message


def test_the_course_toolkit_may_be_imported():
    exercise = g.EXERCISE
    text = "from course import toolkit\n" + solution_text(STEM)
    assert static.inspect_source(text, f"{STEM}.py", exercise.exports, exercise.forbidden,
                                 exercise.given, exercise.forbidden_options).ok
