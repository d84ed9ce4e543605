"""Presenting a grading report: the console table, the JSON file and Gradescope's results.json."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from course.grader.outcomes import CheckStatus, ExerciseStatus

_STATUS_STYLE = {CheckStatus.PASSED: "green", CheckStatus.FAILED: "red", CheckStatus.ERROR: "red",
                 CheckStatus.TIMEOUT: "magenta", CheckStatus.MEMORY: "magenta",
                 CheckStatus.CRASHED: "magenta", CheckStatus.MISSING: "yellow",
                 CheckStatus.DELEGATION: "red", CheckStatus.GRADER_ERROR: "yellow",
                 CheckStatus.NOT_RUN: "yellow"}


def write_atomic(path: str | os.PathLike, text: str) -> None:
    """Write a file so that a reader (or a crash) never sees half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(report: dict, path: str | os.PathLike) -> None:
    write_atomic(path, json.dumps(report, indent=2, allow_nan=False) + "\n")


def mistake_lines(exercise: dict) -> list[tuple[str, str | None]]:
    """Each known mistake behind an exercise's failures, as (the sentence, its hint), once."""
    checks = exercise["checks"]
    lines = []
    for i, mistake in enumerate(exercise.get("mistakes") or []):
        components = mistake.get("components") or [exercise["name"]]
        named = mistake["checks"]
        sentence = (f"{', '.join(components)}: your numbers match a known mistake, "
                    f"{mistake['name']}, in {len(named)} of {len(checks)} checks"
                    + (f" ({', '.join(named)})" if len(named) <= 4 else ""))
        if i == 0:  # failed checks that no model names (model.fit, ...) likely share the cause
            prefixes = {name.split(".", 1)[0] for name in named}
            others = [c["name"] for c in checks if not c["passed"] and not c.get("mistake")
                      and c["status"] == CheckStatus.FAILED and c["name"].split(".", 1)[0] in prefixes]
            if others:
                sentence += (f"; it probably explains the {len(others)} other failed check(s) "
                             f"of {', '.join(components)} too")
        lines.append((sentence, mistake.get("hint")))
    return lines


def short_feedback(check: dict, limit: int = 160) -> str:
    """A check's feedback for a table row: where its known mistake is summarised above, its name
    and the first difference only (the full text stays in the JSON report)."""
    if check.get("mistake"):
        text = f"= {check['mistake']['name']}: {check.get('detail') or check['feedback']}"
    else:
        text = check["feedback"] or ""
    return text if len(text) <= limit else text[:limit - 3] + "..."


def skipped_text(report: dict, skipped: dict) -> str:
    """Why a check did not run on this grading's backend (its points went to the others)."""
    return (f"not run on {report.get('backend', 'this backend')}: {skipped['reason']} (its "
            "points are shared among the checks that run)")


def gradescope_results(report: dict) -> dict:
    """Gradescope's results.json: one test per check, the seed and the known mistakes (each hint
    once) in the top-level output."""
    tests = []
    summary = []
    for exercise in report["exercises"]:
        for sentence, hint in mistake_lines(exercise):
            summary.append(f"{sentence}." + (f"\n  Hint: {hint}" if hint else ""))
        for check in exercise["checks"]:
            output = short_feedback(check, limit=600)
            if check.get("hint") and not check.get("mistake"):
                output += f"\nHint: {check['hint']}"
            tests.append({
                "name": f"{exercise['name']}: {check['name']}",
                "score": check["score"],
                "max_score": check["max_score"],
                "status": "passed" if check["passed"] else "failed",  # Gradescope's two words
                "output": output,
                "visibility": "visible",
            })
        for skipped in exercise.get("skipped") or []:  # shown, worth nothing, never "passed"
            tests.append({"name": f"{exercise['name']}: {skipped['name']}", "score": 0.0,
                          "max_score": 0.0, "output": skipped_text(report, skipped),
                          "visibility": "visible"})
    output = (f"Graded with seed {report['seed']} on {', '.join(report['devices'])} "
              f"({report['backend']}).")
    if summary:
        output += "\n\nWhat explains the failed checks:\n" + "\n".join(summary)
    return {
        "score": report["score"],
        "execution_time": report.get("seconds", 0.0),
        "output": output,
        "visibility": "visible",
        "tests": tests,
    }


def _most(points: float) -> str:
    """A maximum as a reader expects it: 10 for a whole exercise, 0.23 for one ``--check``."""
    return f"{points:.0f}" if abs(points - round(points)) < 1e-6 else f"{points:.2f}"


def print_report(report: dict, console: Console | None = None, verbose: bool = False) -> None:
    console = console or Console()
    table = Table(title=f"Grading {report['submission']}  (seed {report['seed']}, "
                        f"{report['backend']} on {', '.join(report['devices'])})",
                  show_lines=False, expand=False)
    table.add_column("exercise / check", no_wrap=True)
    table.add_column("points", justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("feedback", overflow="fold")
    for exercise in report["exercises"]:
        style = "green" if exercise["score"] >= exercise["max_score"] - 1e-6 else (
            "red" if exercise["score"] == 0 else "yellow")
        table.add_row(Text(f"ch{exercise['chapter']:02d} {exercise['name']}", style="bold"),
                      Text(f"{exercise['score']:.2f}/{_most(exercise['max_score'])}", style=style),
                      exercise["status"], exercise.get("message", ""))
        if exercise["status"] == ExerciseStatus.MISSING:
            continue
        for sentence, hint in mistake_lines(exercise):
            table.add_row(Text("  known mistake", style="red"), "", "",
                          Text(sentence + "." + (f"\n[hint] {hint}" if hint else "")))
        all_same = len({c["feedback"] for c in exercise["checks"]}) == 1 and exercise.get("message")
        for check in exercise["checks"]:
            status = check["status"]
            if check["passed"] and not verbose:
                feedback = ""
            elif all_same and not verbose:
                feedback = ""
            elif verbose:
                feedback = check["feedback"] + (f"\n[hint] {check['hint']}" if check.get("hint") else "")
            else:
                feedback = short_feedback(check)
                if check.get("hint") and not check.get("mistake"):
                    feedback += f"\n[hint] {check['hint']}"
            table.add_row(f"  {check['name']}", f"{check['score']:.2f}/{check['max_score']:.2f}",
                          Text(status, style=_STATUS_STYLE.get(status, "")), Text(feedback))
        for skipped in exercise.get("skipped") or []:
            table.add_row(f"  {skipped['name']}", "-", Text("skipped", style="dim"),
                          Text(skipped_text(report, skipped), style="dim"))
    console.print(table)
    console.print(f"[bold]Total: {report['score']:.2f} / {_most(report['max_score'])}[/]   "
                  f"(seed {report['seed']}; rerun with --seed {report['seed']} to reproduce; "
                  f"{report.get('seconds', 0):.0f} s)")
