"""``course gradescope``: the autograder zip, and its run_autograder on a simulated /autograder
(the zip unpacked into source/, the package installed from it, a submission, results/)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
import zlib

import pytest

from course.release import BEGIN, END
from graderlib import ROOT, run_cli, solution_text

STEM = "ch06_adam"
CHECKS = ("adam.interface", "adam.single_step")


def validate_results(results: dict) -> None:
    """Gradescope's results.json: the fields it reads, with the types it accepts."""
    assert isinstance(results["score"], (int, float))
    assert isinstance(results["execution_time"], (int, float))
    assert isinstance(results["output"], str)
    assert results.get("visibility", "visible") in ("visible", "hidden", "after_due_date",
                                                    "after_published")
    assert isinstance(results["tests"], list)
    for test in results["tests"]:
        assert isinstance(test["name"], str) and test["name"]
        assert isinstance(test["score"], (int, float)) and isinstance(test["max_score"], (int, float))
        assert 0 <= test["score"] <= test["max_score"] + 1e-9
        assert test["status"] in ("passed", "failed")
        assert isinstance(test["output"], str)
        assert test["visibility"] in ("visible", "hidden", "after_due_date", "after_published")
    if results["tests"]:
        assert results["score"] == pytest.approx(sum(t["score"] for t in results["tests"]), abs=0.01)
    json.dumps(results, allow_nan=False)  # plain JSON: no NaN


@pytest.fixture(scope="module")
def autograder(tmp_path_factory):
    """The zip, unpacked as Gradescope does, with the package installed from the zip's copy."""
    base = tmp_path_factory.mktemp("gradescope")
    zip_path = base / "autograder.zip"
    args = ["gradescope", "--out", str(zip_path), "--chapter", "6", "--timeout", "30"]
    result = run_cli(*args, *(a for c in CHECKS for a in ("--check", c)))
    assert result.returncode == 0, result.stdout + result.stderr
    root = base / "autograder"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(root / "source")
        modes = {i.filename: i.external_attr >> 16 for i in archive.infolist()}
        names = archive.namelist()
    site = base / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                              "--no-build-isolation", "--target", str(site),
                              str(root / "source" / "package")],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stdout + install.stderr
    return {"zip": zip_path, "root": root, "site": site, "names": names, "modes": modes}


def run_autograder(autograder, submission_files: dict[str, str], submission_id=4242) -> dict:
    root = autograder["root"]
    for folder in ("submission", "results"):
        subprocess.run(["rm", "-rf", str(root / folder)], check=True)
        (root / folder).mkdir()
    for name, text in submission_files.items():
        (root / "submission" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "submission" / name).write_text(text)
    (root / "submission_metadata.json").write_text(json.dumps({"id": submission_id}))
    env = dict(os.environ, AUTOGRADER_ROOT=str(root), AUTOGRADER_PYTHON=sys.executable,
               PYTHONPATH=str(autograder["site"]))
    result = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    validate_results(results)
    return results


def test_the_zip_has_the_scripts_the_settings_and_the_package_without_solutions(autograder):
    names, modes = autograder["names"], autograder["modes"]
    assert {"setup.sh", "run_autograder", "autograder.json", "package/pyproject.toml",
            "package/course/grader/grade.py", "package/course/gradescope.py"} <= set(names)
    for script in ("setup.sh", "run_autograder"):
        assert modes[script] & stat.S_IXUSR, f"{script} is not executable"
        check = subprocess.run(["bash", "-n", str(autograder["root"] / "source" / script)])
        assert check.returncode == 0
    assert not [n for n in names if n.startswith(("package/solutions", "package/exercises",
                                                  "package/tests"))]
    for name in names:
        if name.endswith(".py"):
            text = (autograder["root"] / "source" / name).read_text()
            assert not [l for l in text.splitlines() if BEGIN.match(l) or END.match(l)], name
    settings = json.loads((autograder["root"] / "source" / "autograder.json").read_text())
    assert settings == {"chapters": [STEM], "checks": sorted(CHECKS), "timeout": 30.0, "seed": None,
                        "budget": 540.0, "backend": "tensorflow"}


@pytest.mark.slow
def test_a_submission_is_graded_into_results_json_and_cannot_write_it_itself(autograder):
    results_path = autograder["root"] / "results" / "results.json"
    forger = (f"\n\ntry:\n    open({str(results_path)!r}, 'w').write('{{\"score\": 100}}')\n"
              "except OSError:\n    pass\nprint('{\"score\": 100.0, \"tests\": []}')\n")
    results = run_autograder(autograder, {f"upload/{STEM}.py": solution_text(STEM) + forger})
    assert [t["name"] for t in results["tests"]] == [f"{STEM}: {c}" for c in CHECKS]
    assert all(t["status"] == "passed" for t in results["tests"])
    assert results["score"] == pytest.approx(sum(t["max_score"] for t in results["tests"]), abs=0.01)
    assert results["score"] < 100
    assert f"seed {zlib.crc32(b'4242') % 10**6}" in results["output"]


def test_an_empty_submission_gets_zero_and_says_what_to_upload(autograder):
    results = run_autograder(autograder, {"README.txt": "forgot the file"})
    assert results["score"] == 0 and results["tests"] == []
    assert "No exercise file" in results["output"] and f"{STEM}.py" in results["output"]


def test_a_grader_failure_still_writes_results_json(tmp_path):
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / f"{STEM}.py").write_text("x = 1\n")
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps({"chapters": [STEM], "checks": ["no.such_check"]}))
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-m", "course.gradescope", "run", "--root",
                             str(tmp_path), "--settings", str(settings)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    results = json.loads((tmp_path / "results" / "results.json").read_text())
    validate_results(results)
    assert results["score"] == 0 and "could not grade" in results["output"]
