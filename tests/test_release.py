"""`course release`: the student version is generated from the solutions, never edited by hand."""

import pytest

from course.release import ReleaseError, release, strip_solutions
from graderlib import ROOT, run_cli


def test_committed_exercises_are_what_release_generates():
    assert release(ROOT, check=True) == []


def test_release_check_through_the_cli():
    result = run_cli("release", "--check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_solution_blocks_become_stubs_and_everything_else_is_kept():
    text = (
        "def f(x):\n"
        '    """Doc."""\n'
        "    # TODO: square it\n"
        "    # BEGIN SOLUTION\n"
        "    y = x * x\n"
        "    return y\n"
        "    # END SOLUTION\n"
    )
    out = strip_solutions(text, "demo.py")
    assert '"""Doc."""' in out and "# TODO: square it" in out
    assert "x * x" not in out and "BEGIN SOLUTION" not in out
    assert '    raise NotImplementedError("demo.py: your code here")' in out
    namespace = {}
    exec(compile(out, "demo.py", "exec"), namespace)
    with pytest.raises(NotImplementedError):
        namespace["f"](2)


@pytest.mark.parametrize("text", [
    "# BEGIN SOLUTION\nx = 1\n",
    "x = 1\n# END SOLUTION\n",
    "# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n",
])
def test_unbalanced_markers_are_an_error_with_the_line(text):
    with pytest.raises(ReleaseError, match=r"demo.py:\d+"):
        strip_solutions(text, "demo.py")


def test_no_solution_code_survives_in_exercises():
    for solution in sorted((ROOT / "solutions").glob("ch*.py")):
        exercise = (ROOT / "exercises" / solution.name).read_text()
        assert "BEGIN SOLUTION" not in exercise and "END SOLUTION" not in exercise
