"""The `course` command as a user meets it: listing, doctor, and clear errors for bad input."""

import json

import pytest

from graderlib import ROOT, SEED, run_cli


def test_list_shows_every_chapter_and_exercise_state():
    result = run_cli("list")
    assert result.returncode == 0, result.stderr
    for word in ("Feature scaling", "Batch normalization", "Momentum", "RMSProp", "Adam",
                 "Learning-rate decay", "not started"):
        assert word in result.stdout


def test_doctor_reports_versions_and_devices():
    result = run_cli("doctor")
    assert result.returncode == 0, result.stderr
    assert "tensorflow" in result.stdout and "keras" in result.stdout and "GPU" in result.stdout


def test_grade_a_folder_that_does_not_exist_is_a_clear_error(tmp_path):
    result = run_cli("grade", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "is not a folder" in result.stderr and "Traceback" not in result.stderr


def test_grade_an_unknown_chapter_or_check_is_a_clear_error(tmp_path):
    result = run_cli("grade", str(tmp_path), "--chapter", "9")
    assert result.returncode == 2 and "unknown chapter" in result.stderr
    result = run_cli("grade", str(tmp_path), "--chapter", "6", "--check", "adam.nonsense")
    assert result.returncode == 2 and "no check named adam.nonsense" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_an_unknown_chapter_is_a_clear_error():
    result = run_cli("run", "12")
    assert result.returncode == 2 and "unknown chapter" in result.stderr


def test_missing_and_broken_files_are_reported_and_grading_exits_zero(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    out = tmp_path / "r.json"
    # ch06 missing entirely
    result = run_cli("grade", str(folder), "--chapter", "6", "--json", str(out), "--seed", str(SEED))
    assert result.returncode == 0, result.stderr
    (exercise,) = json.loads(out.read_text())["exercises"]
    assert exercise["status"] == "missing" and exercise["score"] == 0
    assert "no file ch06_adam.py" in exercise["message"]
    # a syntax error: reported with its line, nothing runs
    (folder / "ch06_adam.py").write_text("import keras\n\nclass Adam(keras.optimizers.Optimizer:\n    pass\n")
    result = run_cli("grade", str(folder), "--chapter", "6", "--json", str(out), "--seed", str(SEED))
    assert result.returncode == 0
    (exercise,) = json.loads(out.read_text())["exercises"]
    assert exercise["status"] == "error" and "syntax error" in exercise["message"]
    assert "line 3" in exercise["message"]
    # none of the classes: nothing to run
    (folder / "ch06_adam.py").write_text("import keras\n")
    run_cli("grade", str(folder), "--chapter", "6", "--json", str(out), "--seed", str(SEED))
    (exercise,) = json.loads(out.read_text())["exercises"]
    assert exercise["status"] == "error"
    assert "does not define Adam, AdamW, AdamL2" in exercise["message"]
    # only Adam so far (and it is wrong): Adam's checks are graded, the others say what is missing
    (folder / "ch06_adam.py").write_text(
        "import keras\n\nclass Adam(keras.optimizers.Optimizer):\n    pass\n")
    run_cli("grade", str(folder), "--chapter", "6", "--json", str(out), "--seed", str(SEED),
            "--check", "adam.single_step", "--check", "adamw.single_step")
    (exercise,) = json.loads(out.read_text())["exercises"]
    assert exercise["status"] == "graded" and "does not define AdamW, AdamL2" in exercise["message"]
    adam, adamw = exercise["checks"]
    assert adam["name"] == "adam.single_step" and "AdamW" not in adam["feedback"]
    assert adamw["feedback"] == "AdamW is not defined in ch06_adam.py"


def test_grade_one_file_grades_that_chapter_alone(tmp_path):
    """`course grade exercises/ch04_momentum.py` is what a student types first."""
    (tmp_path / "ch04_momentum.py").write_text((ROOT / "solutions" / "ch04_momentum.py").read_text())
    (tmp_path / "ch06_adam.py").write_text("this file is not even Python\n")
    out = tmp_path / "r.json"
    result = run_cli("grade", str(tmp_path / "ch04_momentum.py"), "--check", "momentumsgd.single_step",
                     "--json", str(out), "--seed", str(SEED))
    assert result.returncode == 0, result.stderr
    (exercise,) = json.loads(out.read_text())["exercises"]
    assert exercise["name"] == "ch04_momentum" and exercise["score"] == exercise["max_score"] > 0
    # a file that is not an exercise, or a chapter that is not the file's: one clear line each
    result = run_cli("grade", str(tmp_path / "r.json"))
    assert result.returncode == 2 and "not one of the exercise files" in result.stderr
    assert "ch06_adam.py" in result.stderr and "Traceback" not in result.stderr
    result = run_cli("grade", str(tmp_path / "ch04_momentum.py"), "--chapter", "6")
    assert result.returncode == 2 and "does not match ch04_momentum.py" in result.stderr


def test_import_error_is_reported_with_its_line(tmp_path):
    folder = tmp_path / "sub"
    folder.mkdir()
    (folder / "ch06_adam.py").write_text(
        "import keras\nimport not_a_real_module\n\nAdam = AdamW = AdamL2 = None\n")
    out = tmp_path / "r.json"
    result = run_cli("grade", str(folder), "--chapter", "6", "--json", str(out), "--check",
                     "adam.single_step")
    assert result.returncode == 0, result.stderr
    (exercise,) = json.loads(out.read_text())["exercises"]
    assert exercise["status"] == "error"
    assert "ModuleNotFoundError" in exercise["message"] and "line 2" in exercise["message"]


def test_gradescope_results_have_gradescope_fields(tmp_path):
    out = tmp_path / "results.json"
    result = run_cli("grade", str(ROOT / "exercises"), "--chapter", "6", "--check", "adam.single_step",
                     "--gradescope", str(out))
    assert result.returncode == 0, result.stderr
    data = json.loads(out.read_text())
    assert set(data) >= {"score", "execution_time", "tests"}
    (test,) = data["tests"]
    assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility"}
    assert test["status"] == "failed" and "not implemented" in test["output"]


@pytest.mark.slow
def test_run_a_chapter_through_the_course_command(tmp_path):
    """`course run N --quick` as a self-learner types it (the chapters' own tests run them as
    notebooks): the chapter's plots and claims land where --out says."""
    result = run_cli("run", "3", "--quick", "--out", str(tmp_path), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert {"gd_variants.png", "linear_scaling.png"} <= {p.name for p in tmp_path.glob("*.png")}
    assert (tmp_path / "claims.json").is_file() and "Claim:" in result.stdout
    assert "I0000" not in result.stderr  # TensorFlow's start-up chatter is filtered
