"""Chapter 6 through the grader, both ways: the solution scores 10/10, the stub 0/10, every known
mistake loses points with its hint, correct implementations written differently score 10/10,
and delegating to Keras's own Adam scores 0."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from course import references

from graderlib import ROOT, by_check, grade, write_variant

STEM = "ch06_adam"


@dataclass(frozen=True)
class Variant:
    """A submission made from the solution by text replacements, and what grading must say."""

    name: str
    replacements: tuple[tuple[str, str], ...]
    expected: str  # "wrong" or "correct"
    checks: tuple[str, ...]  # the checks that must fail (wrong) or that are graded (correct)
    hint: str = ""  # a word the hint of each failing check must contain


ALPHA = "alpha = lr * ops.sqrt(1 - ops.power(beta_2, t)) / (1 - ops.power(beta_1, t))"
ADAMW_TO_BASE = "            weight_decay=weight_decay,\n            **kwargs,\n        )\n"


def hand_decay(body: str, then_adam: bool = True) -> tuple[tuple[str, str], ...]:
    """AdamW with its decay written in update_step (not handed to the base class), ``body``
    being that decay; Adam's step follows unless ``body`` takes it itself."""
    step = "\n        super().update_step(gradient, variable, learning_rate)" if then_adam else ""
    return ((ADAMW_TO_BASE,
             "            **kwargs,\n        )\n        self.decay = weight_decay\n\n"
             "    def update_step(self, gradient, variable, learning_rate):\n"
             "        lr = ops.cast(learning_rate, variable.dtype)\n"
             "        wd = ops.cast(self.decay, variable.dtype)\n"
             f"        {body}{step}\n\n"
             "    def get_config(self):\n"
             "        return {**super().get_config(), \"weight_decay\": self.decay}\n"),)
STEP = "self.assign_sub(variable, alpha * m / (ops.sqrt(v) + self.epsilon))"

# The known mistakes (docs/grader-contract.md, and more), each as a small edit of the solution.
VARIANTS = (
    Variant("no bias correction", ((ALPHA, "alpha = lr"),), "wrong",
            ("adam.single_step", "adam.trajectory"), "bias"),
    Variant("textbook epsilon", ((STEP, "self.assign_sub(variable, lr * (m / (1 - ops.power(beta_1, t)))"
                                        " / (ops.sqrt(v / (1 - ops.power(beta_2, t))) + self.epsilon))"),),
            "wrong", ("adam.single_step", "adam.trajectory"), "epsilon"),
    Variant("t starting at 0", (("t = ops.cast(self.iterations + 1, variable.dtype)",
                                 "t = ops.cast(self.iterations, variable.dtype)"),),
            "wrong", ("adam.single_step", "adam.trajectory"), "iterations + 1"),
    Variant("one slot shared by all variables",
            (('self._m, self._v = self.add_optimizer_variables(var_list, ["m", "v"])',
              'self._m = [self.add_variable_from_reference(var_list[0], "m")] * len(var_list)\n'
              '        self._v = [self.add_variable_from_reference(var_list[0], "v")] * len(var_list)'),),
            "wrong", ("adam.slots_per_variable", "adam.trajectory"), "EACH variable"),
    Variant("amsgrad on the bias-corrected second moment",
            (("self.assign(v_max, ops.maximum(v_max, v))\n            v = v_max",
              "self.assign(v_max, ops.maximum(v_max, v / (1 - ops.power(beta_2, t))))\n"
              "            self.assign_sub(variable, lr / (1 - ops.power(beta_1, t)) * m"
              " / (ops.sqrt(v_max) + self.epsilon))\n            return"),),
            "wrong", ("adam.amsgrad",), "RAW v"),
    Variant("AdamW decay not scaled by the rate", hand_decay("self.assign_sub(variable, variable * wd)"),
            "wrong", ("adamw.trajectory", "adamw.schedule"), "lr * weight_decay"),
    Variant("AdamW decay after the Adam step",
            hand_decay("super().update_step(gradient, variable, learning_rate)\n"
                       "        self.assign_sub(variable, variable * wd * lr)", then_adam=False),
            "wrong", ("adamw.trajectory",), "first"),
    Variant("AdamW decay through the gradient",
            hand_decay("super().update_step(ops.cast(gradient, variable.dtype) + wd * variable,"
                       " variable, learning_rate)", then_adam=False),
            "wrong", ("adamw.trajectory",), "must not go through m and v"),
    Variant("AdamW decay of excluded variables",
            hand_decay("self.assign_sub(variable, variable * wd * lr)"),
            "wrong", ("adamw.base_options",), "exclude_from_weight_decay"),
    Variant("base options dropped", (("super().__init__(learning_rate=learning_rate, **kwargs)",
                                      "super().__init__(learning_rate=learning_rate)"),),
            "wrong", ("adam.base_options",), "**kwargs"),
    Variant("duplicate lookups lost in a sparse gradient",
            (("        g = ops.cast(gradient, variable.dtype)\n        t = ops.cast(",
              "        if hasattr(gradient, \"indices\"):  # a scatter UPDATE: one slice per row wins\n"
              "            gradient = ops.scatter_update(ops.zeros(variable.shape, variable.dtype),"
              " ops.expand_dims(gradient.indices, -1), gradient.values)\n"
              "        g = ops.cast(gradient, variable.dtype)\n        t = ops.cast("),),
            "wrong", ("adam.sparse_gradients",), "looked up twice"),
    Variant("AdamW decay written by hand, exclusions honoured",
            hand_decay("if self._use_weight_decay(variable):\n"
                       "            self.assign_sub(variable, variable * wd * lr)"),
            "correct", ()),
    Variant("sparse gradient made dense first",
            (("        g = ops.cast(gradient, variable.dtype)\n        t = ops.cast(",
              "        g = ops.cast(ops.convert_to_tensor(gradient), variable.dtype)\n"
              "        t = ops.cast("),),
            "correct", ()),
    Variant("AdamL2 with 2*l2*w",
            (("g = g + ops.cast(self.l2, variable.dtype) * variable",
              "g = g + 2 * ops.cast(self.l2, variable.dtype) * variable"),),
            "wrong", ("adaml2.trajectory",), "l2 * w"),
    Variant("AdamL2 decoupled",
            (("g = g + ops.cast(self.l2, variable.dtype) * variable",
              "self.assign_sub(variable, ops.cast(learning_rate, variable.dtype)"
              " * ops.cast(self.l2, variable.dtype) * variable)"),),
            "wrong", ("adaml2.trajectory",), "COUPLED"),
    Variant("wrong default epsilon", (("epsilon=1e-7,\n        amsgrad=False,\n        **kwargs,\n    ):\n"
                                       "        # TODO: call", "epsilon=1e-8,\n        amsgrad=False,\n"
                                       "        **kwargs,\n    ):\n        # TODO: call"),),
            "wrong", ("adam.interface",), ""),
)

CORRECT_FILES = ("ch06_adam_textbook_tf.py",)


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v.expected == "wrong"], ids=lambda v: v.name)
def test_known_mistake_loses_points_with_its_hint(variant, tmp_path):
    path = write_variant(tmp_path, STEM, variant.replacements)
    entry = grade(path, STEM, checks=variant.checks)
    checks = by_check(entry)
    for name in variant.checks:
        assert not checks[name]["passed"], f"{name} passed for '{variant.name}'"
        assert checks[name]["feedback"]
        if variant.hint:
            assert checks[name]["hint"] and variant.hint in checks[name]["hint"], checks[name]
    assert entry["score"] < entry["max_score"]


@pytest.mark.parametrize("variant", [v for v in VARIANTS if v.expected == "correct"],
                         ids=lambda v: v.name)
def test_correct_variant_scores_full_marks(variant, tmp_path):
    path = write_variant(tmp_path, STEM, variant.replacements)
    entry = grade(path, STEM)
    failed = {c["name"]: c["feedback"] for c in entry["checks"] if not c["passed"]}
    assert not failed and entry["score"] == pytest.approx(10.0)


@pytest.mark.parametrize("filename", CORRECT_FILES)
def test_differently_written_correct_implementation_scores_full_marks(filename, tmp_path):
    text = (ROOT / "tests" / "alternatives" / filename).read_text()
    path = write_variant(tmp_path, STEM, text=text)
    entry = grade(path, STEM)
    failed = {c["name"]: c["feedback"] for c in entry["checks"] if not c["passed"]}
    assert not failed and entry["score"] == pytest.approx(10.0)


def test_feedback_says_where_and_by_how_much(tmp_path):
    path = write_variant(tmp_path, STEM, VARIANTS[0].replacements)
    check = by_check(grade(path, STEM, checks=["adam.trajectory"]))["adam.trajectory"]
    assert "at step 1" in check["feedback"] and "off by" in check["feedback"]
    assert "known mistake (no bias correction)" in check["feedback"]


DELEGATIONS = {
    "subclass": "import keras\n\nclass Adam(keras.optimizers.Adam):\n    pass\n\n"
                "class AdamW(keras.optimizers.AdamW):\n    pass\n\nclass AdamL2(Adam):\n    pass\n",
    "import": "from keras.optimizers import Adam, AdamW\n\nclass AdamL2(Adam):\n    pass\n",
    # hides the name from a reading of the source: caught when the built-in is created at run time
    "hidden wrapper": (
        "import keras\n_builtin = getattr(keras.optimizers, 'Ad' + 'am')\n\n"
        "class Adam(keras.optimizers.Optimizer):\n"
        "    def __init__(self, learning_rate=0.001, **kwargs):\n"
        "        super().__init__(learning_rate=learning_rate)\n"
        "        self._inner = _builtin(learning_rate=learning_rate, **kwargs)\n"
        "    def apply_gradients(self, grads_and_vars):\n"
        "        return self._inner.apply_gradients(grads_and_vars)\n\n"
        "AdamW = AdamL2 = Adam\n"),
}


@pytest.mark.parametrize("kind", sorted(DELEGATIONS))
def test_delegating_to_keras_scores_zero_with_a_message(kind, tmp_path):
    path = write_variant(tmp_path, STEM, text=DELEGATIONS[kind])
    entry = grade(path, STEM, checks=["adam.single_step", "adam.trajectory"])
    assert entry["score"] == 0.0
    assert "built-in" in entry["message"], entry


def test_same_seed_same_inputs_and_different_seed_different_inputs():
    from course.grader.grade import exercise_spec

    check = exercise_spec(STEM).check("adam.trajectory")
    a, b, c = check.make_inputs(1), check.make_inputs(1), check.make_inputs(2)
    assert a["kwargs"] == b["kwargs"] and a["kwargs"] != c["kwargs"]


def test_numpy_model_matches_keras_so_hints_are_trustworthy():
    """The NumPy model that recognises mistakes must itself agree with Keras's Adam."""
    import numpy as np
    from types import SimpleNamespace

    from course.grader import ch06_adam
    from course.grader.optimizer_suite import run_trajectory, simulate

    ns = references.ch06_adam()
    for spec in (ch06_adam.ADAM, ch06_adam.ADAMW, ch06_adam.ADAML2):
        # base_options: weight decay with exclusions and clipnorm, modelled for every optimizer
        for name in ("trajectory", "base_options"):
            check = ch06_adam.EXERCISE.check(f"{spec.cls_name.lower()}.{name}")
            inputs = check.make_inputs(7)
            keras_out = run_trajectory(spec.cls_name)(ns, inputs, SimpleNamespace())
            numpy_out = simulate(inputs, spec.update)
            for key in keras_out:
                np.testing.assert_allclose(numpy_out[key], keras_out[key], rtol=1e-4, atol=1e-5)
            if name == "base_options":  # and the mistakes it names are far from the answer
                for variant in ("decays_excluded", "base_options_ignored"):
                    wrong = simulate(inputs, spec.update, variant)
                    assert max(np.abs(wrong[k] - keras_out[k]).max() for k in keras_out) > 1e-2
