"""Out of memory under real limits, as on Gradescope (a 768 MB container, half a CPU).

A submission that allocates without bound must be reported as out of memory (never as a crash
whose reason is one of TensorFlow's log lines), and an honest one graded in the same container
must keep its marks. The container is a real control group where this machine lets the tests
make one (root, cgroup v1 or v2); the address-space limit of ``resource`` stands in elsewhere.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from course.grader import container
from graderlib import ROOT, SEED, solution_text

STEM = "ch06_adam"
LIMIT = 768 * 1024**2
HOG = '''        hoard = []
        while True:
            hoard.append(bytearray(b"\\x01") * (64 << 20))  # written, so the pages are real
'''
UPDATE_STEP_DOC = '        """One Adam step for one variable, with the formulas of the class docstring."""\n'


def _submissions(tmp_path: Path) -> tuple[Path, Path]:
    honest, hog = tmp_path / "honest", tmp_path / "hog"
    for folder in (honest, hog):
        folder.mkdir()
    text = solution_text(STEM)
    (honest / f"{STEM}.py").write_text(text)
    assert UPDATE_STEP_DOC in text
    (hog / f"{STEM}.py").write_text(text.replace(UPDATE_STEP_DOC, UPDATE_STEP_DOC + HOG, 1))
    return honest, hog


def _grade(folder: Path, tmp_path: Path, checks: list[str], preexec=None) -> dict:
    out = tmp_path / f"{folder.name}.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    args = [sys.executable, "-m", "course.cli", "grade", str(folder), "--chapter", "6",
            "--seed", str(SEED), "--json", str(out)]
    for check in checks:
        args += ["--check", check]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900,
                            preexec_fn=preexec)
    assert result.returncode == 0, result.stdout + result.stderr
    return {c["name"]: c for c in json.loads(out.read_text())["exercises"][0]["checks"]}


# ---------------------------------------------------------------------------- reading the files

def test_a_v1_group_gives_its_limit_working_set_and_kills(tmp_path):
    parent, group = tmp_path, tmp_path / "job"
    group.mkdir()
    (parent / "memory.limit_in_bytes").write_text("9223372036854771712\n")  # no limit above
    (group / "memory.limit_in_bytes").write_text(f"{LIMIT}\n")
    (group / "memory.usage_in_bytes").write_text(f"{700 * 1024**2}\n")
    (group / "memory.stat").write_text(f"cache 1\ntotal_inactive_file {200 * 1024**2}\n")
    (group / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n")
    found = container.MemoryGroup(group, 1)
    assert found.limit() == LIMIT
    assert found.working_set() == 500 * 1024**2
    assert found.oom_kills() == 3


def test_a_v2_group_gives_its_limit_working_set_and_kills(tmp_path):
    (tmp_path / "memory.max").write_text(f"{LIMIT}\n")
    (tmp_path / "memory.current").write_text(f"{600 * 1024**2}\n")
    (tmp_path / "memory.stat").write_text(f"anon 5\ninactive_file {100 * 1024**2}\n")
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 2\noom 1\noom_kill 1\n")
    found = container.MemoryGroup(tmp_path, 2)
    assert (found.limit(), found.working_set(), found.oom_kills()) == (LIMIT, 500 * 1024**2, 1)
    (tmp_path / "memory.max").write_text("max\n")
    assert found.limit() is None


def test_this_machine_is_read_without_error():
    group = container.memory_group()
    assert group is None or group.version in (1, 2)
    assert container.cpu_limit() is None or container.cpu_limit() > 0


# ---------------------------------------------------------------------------- real limits

@pytest.fixture(scope="module")
def gradescope_container():
    try:
        group = container.limited_group(LIMIT, 0.5, name=f"course-test-{uuid.uuid4().hex[:8]}")
    except OSError as exc:
        pytest.skip(f"{exc}; the resource-limit test below covers the fallback")
    yield group.enter  # in the child, before it runs anything: all it starts stays inside
    group.remove()


@pytest.mark.slow
def test_out_of_memory_in_a_container_is_named_and_the_honest_student_keeps_marks(
        gradescope_container, tmp_path):
    honest, hog = _submissions(tmp_path)
    checks = ["adam.single_step", "adamw.single_step", "adaml2.single_step"]
    hogged = _grade(hog, tmp_path, checks, preexec=gradescope_container)
    for name in checks:
        assert hogged[name]["status"] in ("memory", "not_run"), hogged[name]
    first = hogged["adam.single_step"]
    assert first["status"] == "memory" and "out of memory" in first["feedback"]
    for check in hogged.values():  # TensorFlow's log lines are never given as the reason
        assert "E0000" not in check["feedback"] and "cuInit" not in check["feedback"]
    graded = _grade(honest, tmp_path, ["adam.single_step", "adam.fit", "adamw.base_options"],
                    preexec=gradescope_container)
    assert all(c["passed"] for c in graded.values()), graded


@pytest.mark.slow
def test_out_of_memory_under_an_address_space_limit_is_named(tmp_path):
    _, hog = _submissions(tmp_path)

    def limit():  # TensorFlow maps about 2 GB of address space; the hog hits the rest
        resource.setrlimit(resource.RLIMIT_AS, (4 * 1024**3, 4 * 1024**3))

    hogged = _grade(hog, tmp_path, ["adam.single_step"], preexec=limit)
    check = hogged["adam.single_step"]
    assert check["status"] == "memory" and "out of memory" in check["feedback"], check
