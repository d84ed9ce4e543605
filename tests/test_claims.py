"""The claims table: each claim declared once (course/claims.py) with its source, made by its
chapter, gathered by ``course claims`` from the chapters' claims.json, and kept in step with
the README's table."""

from __future__ import annotations

import ast
import csv
import io
import json
import re

import pytest

from course import claims
from course.catalog import CHAPTERS
from course.chapter import ChapterRun
from graderlib import ROOT, run_cli


def made_by_chapters() -> dict[str, int]:
    """Every ``ch.claim("<id>", ...)`` in the chapter scripts: id -> chapter number."""
    found = {}
    for chapter in CHAPTERS:
        tree = ast.parse((ROOT / "chapters" / f"{chapter.stem}.py").read_text())
        for node in ast.walk(tree):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "claim"):
                claim_id = ast.literal_eval(node.args[0])
                assert claim_id not in found, f"{claim_id} is claimed twice"
                found[claim_id] = chapter.number
    return found


def test_each_claim_is_declared_once_with_a_source_and_made_by_its_chapter():
    ids = [c.id for c in claims.CLAIMS]
    assert len(ids) == len(set(ids))
    for c in claims.CLAIMS:
        assert c.source in claims.DOCUMENTS and c.section and c.text
    assert made_by_chapters() == {c.id: c.chapter for c in claims.CLAIMS}


def test_the_readme_table_lists_the_declared_claims_in_order():
    text = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- claims-table -->\n(.*?)<!-- /claims-table -->", text, re.S)
    assert match, "README.md has no claims table between <!-- claims-table --> markers"
    rows = [line for line in match.group(1).splitlines() if re.match(r"\| \d ", line)]
    assert len(rows) == len(claims.CLAIMS), "regenerate it: course claims --markdown FILE"
    for row, c in zip(rows, claims.CLAIMS):
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        assert cells[0] == str(c.chapter) and cells[1].startswith(c.text.replace("|", "\\|")), (
            row, c.text)
        assert "not measured" not in cells[2], row
        assert "inconclusive" not in cells[2] or ": " in cells[2], f"no reason printed: {row}"


def _chapter_run(tmp_path, number, quick=False):
    info = next(c for c in CHAPTERS if c.number == number)
    return ChapterRun(number, info.stem, quick, tmp_path / info.stem, False, None)


def test_a_chapter_records_its_claims_with_source_run_and_verdict(tmp_path, capsys):
    run = _chapter_run(tmp_path, 4)
    run.claim("momentum_faster", "final loss 0.18 against 1.39", True, effect="7.7x lower")
    run.claim("momentum_window", "65% of the weight", None, reason="a definition, not a test")
    record = json.loads((run.out / "claims.json").read_text())
    assert record["mode"] == "full" and not record["complete"] and record["versions"]["keras"]
    first, second = record["claims"]
    assert first["source"] == "Chapter 14: Optimization in Deep Learning"
    assert first["verdict"] == "consistent with our run" and first["effect"] == "7.7x lower"
    assert second["verdict"] == "inconclusive at this size"
    assert second["reason"] == "a definition, not a test"
    run.finish()
    record = json.loads((run.out / "claims.json").read_text())
    assert record["complete"] and record["finished"] and record["seconds"] >= 0
    assert "a definition, not a test" in capsys.readouterr().out


def test_a_chapter_refuses_a_claim_it_does_not_declare(tmp_path):
    run = _chapter_run(tmp_path, 4)
    with pytest.raises(KeyError, match="declare it in course/claims.py"):
        run.claim("adam_is_magic", "1", True)
    with pytest.raises(ValueError, match="belongs to chapter 6"):
        run.claim("adam_3_5x", "1", True)


def test_stale_runs_are_told_apart(tmp_path):
    script = ROOT / "chapters" / "ch04_momentum.py"
    assert claims.stale_reason(None, script) == "not run yet"
    run = _chapter_run(tmp_path, 4, quick=True)
    for c in (c for c in claims.CLAIMS if c.chapter == 4):
        run.claim(c.id, "1", True)
    record = json.loads((run.out / "claims.json").read_text())
    assert claims.stale_reason(record, script) == "its last run did not finish"
    run.finish()
    record = json.loads((run.out / "claims.json").read_text())
    assert claims.stale_reason(record, script) is None
    assert claims.stale_reason(record, script, quick_ok=False) == "measured in a quick run"
    edited = tmp_path / "ch04_momentum.py"
    edited.write_text(script.read_text() + "\n# a comment: no change to the code\n")
    assert claims.stale_reason(record, edited) is None
    edited.write_text(script.read_text() + "\nprint('one more measurement')\n")
    assert claims.stale_reason(record, edited) == "the chapter's code changed since"


def test_course_claims_gathers_every_claim_and_says_what_is_missing(tmp_path):
    run = _chapter_run(tmp_path, 4)
    for c in (c for c in claims.CLAIMS if c.chapter == 4):
        run.claim(c.id, f"measured {c.id} 1.0", c.id != "momentum_faster")
    run.finish()
    md, table = tmp_path / "claims.md", tmp_path / "claims.csv"
    result = run_cli("claims", "--out", str(tmp_path), "--markdown", str(md), "--csv", str(table))
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(table.read_text())))
    assert [r["id"] for r in rows] == [c.id for c in claims.CLAIMS]
    by_id = {r["id"]: r for r in rows}
    assert by_id["momentum_window"]["verdict"] == "consistent with our run"
    assert by_id["momentum_faster"]["verdict"] == "not what we measured"
    assert by_id["adam_3_5x"]["verdict"] == "not measured"
    assert "course run 6" in by_id["adam_3_5x"]["measured"]
    lines = md.read_text().splitlines()
    assert sum(line.startswith("| ") for line in lines) == len(claims.CLAIMS) + 1  # and a header
    assert "not measured" in result.stdout and "course run 6" in result.stdout


@pytest.mark.slow
def test_course_claims_run_runs_what_is_missing_then_nothing(tmp_path):
    first = run_cli("claims", "--out", str(tmp_path), "--run", "--quick", "--chapter", "4",
                    "--csv", str(tmp_path / "claims.csv"))
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert ("Running 1 chapter(s) (quick runs on Keras's tensorflow backend): about 1 minute(s)"
            in " ".join(first.stdout.split()))
    assert "chapter 4 (ch04_momentum): not run yet" in first.stdout
    rows = [r for r in csv.DictReader(io.StringIO((tmp_path / "claims.csv").read_text()))
            if r["chapter"] == "4"]
    assert rows and all(r["mode"] == "quick" and r["verdict"] in claims.VERDICTS.values()
                        for r in rows)
    assert (tmp_path / "ch04_momentum" / "run.log").is_file()
    again = run_cli("claims", "--out", str(tmp_path), "--run", "--quick", "--chapter", "4")
    assert again.returncode == 0 and "up to date" in again.stdout
