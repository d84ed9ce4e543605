"""Measurement (not a test): how often chapter 8's doctor raises a finding on a healthy run.

    python benchmarks/measure_doctor.py                  # 2000 scripted runs, 20 real fits
    python benchmarks/measure_doctor.py --scripted 500 --fits 5

Two kinds of healthy run, each from many seeds, watched by the reference doctor (the rules of
the exercise's docstring, at their defaults):

- scripted: the grader's healthy loss streams (a noisy exponential fall over epochs of uneven
  lengths), fed to the doctor as Keras logs them;
- real: the grader's healthy ``model.fit`` (a small network at a sensible Adam rate, with
  validation), and chapter 8's recipe (its CNN, AdamW with warmup and cosine decay, on
  MNIST-1D, 10 epochs).

Each false alarm is printed with its finding, so a rule that misfires can be read.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scripted", type=int, default=2000, help="scripted runs (2000)")
    parser.add_argument("--fits", type=int, default=20, help="seeds of each real fit (20)")
    args = parser.parse_args(argv)

    import keras
    import numpy as np

    from course import references
    from course.grader import ch08_training_recipe as g

    reference = references.ch08_training_recipe()
    counts = collections.Counter()
    rng = np.random.default_rng(0)
    alarms = 0
    for _ in range(args.scripted):
        run = g._healthy_run(rng)
        doctor = references.DoctorRules(run["hp"])
        g.drive(doctor, g.logged(run["epochs"]))
        alarms += bool(doctor.findings)
        counts.update(f["code"] for f in doctor.findings)
    print(f"scripted healthy runs: a finding in {alarms} of {args.scripted} "
          f"({alarms / max(args.scripted, 1):.2%}) {dict(counts) or ''}")

    check = g.EXERCISE.check("losscurvedoctor.fit_healthy")
    alarms = 0
    for seed in range(args.fits):
        keras.utils.set_random_seed(seed)
        out = check.run(reference, check.make_inputs(seed), SimpleNamespace())
        if out["findings"] != "none":
            alarms += 1
            print(f"  grader's healthy fit, seed {seed}: {out['findings']}")
    print(f"the grader's healthy model.fit: a finding in {alarms} of {args.fits} seeds")

    alarms = 0
    for seed in range(args.fits):
        found = _recipe_run(reference.LossCurveDoctor, seed)
        if found:
            alarms += 1
            print(f"  the recipe, seed {seed}: {found}")
    print(f"chapter 8's recipe on MNIST-1D (10 epochs): a finding in {alarms} of {args.fits} seeds")
    return 0


def _recipe_run(doctor_class, seed: int) -> str:
    """Chapter 8's recipe (section 3's settings, without accumulation): its CNN (three
    convolutions, batch normalization with momentum 0.9), AdamW at a peak of 0.01 with two
    epochs of warmup and cosine decay, weight decay 0.05, global-norm clipping at 1, batches of
    50, for 10 epochs on MNIST-1D with 10% held out for validation."""
    import keras

    from course.toolkit import load_dataset

    data = load_dataset("course_mnist1d", default="course_mnist1d")
    keras.utils.set_random_seed(seed)
    layers = [keras.Input((data.features,)), keras.layers.Reshape((data.features, 1))]
    for strides in (1, 2, 2):
        layers += [keras.layers.Conv1D(32, 5, strides=strides, padding="same", use_bias=False,
                                       kernel_initializer="he_normal"),
                   keras.layers.BatchNormalization(momentum=0.9, scale=False),
                   keras.layers.ReLU()]
    layers += [keras.layers.Flatten(), keras.layers.Dense(data.outputs, activation="softmax")]
    model = keras.Sequential(layers)
    epochs, batch = 10, 50
    per_epoch = -(-int(0.9 * len(data.x)) // batch)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, (epochs - 2) * per_epoch, warmup_target=0.01, warmup_steps=2 * per_epoch)
    model.compile(keras.optimizers.AdamW(schedule, weight_decay=0.05, global_clipnorm=1.0),
                  "sparse_categorical_crossentropy")
    doctor = doctor_class(verbose=False)
    history = model.fit(data.x, data.y, batch_size=batch, epochs=epochs, validation_split=0.1,
                        verbose=0, callbacks=[doctor]).history
    found = "; ".join(f"{f['code']} at step {f['step']}, epoch {f['epoch']}"
                      for f in doctor.findings)
    curves = ", ".join(f"{t:.3f}/{v:.3f}" for t, v in zip(history["loss"], history["val_loss"]))
    return found and f"{found} (training/validation loss per epoch: {curves})"


if __name__ == "__main__":
    raise SystemExit(main())
