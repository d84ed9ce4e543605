"""What every chapter script shares: its command line, where its component comes from, where its
plots go, and how it prints a measured claim.

A chapter script does::

    from course.chapter import setup
    ch = setup(6, "Adam")            # parses --quick / --out / --mine / --dataset
    Adam = ch.pick("Adam")           # the solution's, the learner's (--mine), or Keras's stand-in
    ...
    ch.savefig(fig, "trajectories")  # writes <out>/ch06_adam/trajectories.png
    ch.claim("adam_3_5x", measured="4.2x fewer epochs", holds=True)  # declared in course.claims
"""

from __future__ import annotations

import argparse
import atexit
import functools
import importlib
import json
import os
import re
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from course.catalog import chapter as find_chapter

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def in_notebook() -> bool:
    """True inside Jupyter (then the command line is not ours to parse)."""
    return "ipykernel" in sys.modules


@dataclass
class ChapterRun:
    number: int
    stem: str
    quick: bool
    out: Path
    mine: bool
    dataset: str | None
    component: object = None
    component_source: str = ""
    claims: list = field(default_factory=list)
    started: float = field(default_factory=time.time)
    _finished: bool = False

    def savefig(self, fig, name: str) -> Path:
        """Save a matplotlib figure as ``<out>/<name>.png``, close it, and print the path."""
        import matplotlib.pyplot as plt

        self.out.mkdir(parents=True, exist_ok=True)
        path = self.out / f"{name}.png"
        fig.savefig(path, dpi=110, bbox_inches="tight")
        if not in_notebook():
            plt.close(fig)
        print(f"  [plot] {path}")
        return path

    def pick(self, name: str, probe: Callable | None = None, fallback=None):
        """The chapter's component ``name``: the learner's (``--mine``) or the solution's when it
        is implemented, else its reference stand-in (``course.references``: the Keras built-in
        under the exercise's name, or the course's closed form) with a note, so that every plot
        still appears. Implemented means ``probe(component)`` runs without NotImplementedError;
        the default probe for an optimizer takes one step, for a layer calls it, for a callback
        builds it; a schedule or a function needs the chapter's own ``probe`` (its arguments).
        ``fallback`` stands in where ``course.references`` has nothing (a function the grader
        checks by its properties)."""
        from course import references

        component = getattr(self.component, name, None)
        kind = find_chapter(self.stem).kinds.get(name)
        probe = probe or _PROBES.get(kind)
        if probe is None:
            raise ValueError(f"pick({name!r}) needs a probe: a {kind} has no default one")
        failed = ""
        if component is not None:
            try:
                probe(component)
                return component
            except NotImplementedError:
                pass
            except Exception as exc:  # noqa: BLE001 - judged below
                # written and tested on TensorFlow, a component may use what another backend
                # cannot trace (a variable inside keras.ops.cond on JAX): there the chapter goes
                # on with the stand-in and says why; on TensorFlow an error is the learner's
                import keras

                if keras.backend.backend() == "tensorflow":
                    raise
                # Keras wraps a layer's error: its first line says only where it happened
                lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip()
                         for line in str(exc).splitlines()]
                cause = next((line for line in lines if line and not line.startswith(
                    "Exception encountered")), type(exc).__name__)
                failed = f"does not run on Keras's {keras.backend.backend()} backend ({cause[:200]})"
        stand_in = getattr(getattr(references, self.stem)(), name, None) or fallback
        where = self.component_source or "any exercise file"
        why = f"{name} from {where} {failed}" if failed else f"{name} is not implemented in {where}"
        if stand_in is None:
            print(f"note: {why} and has no stand-in: the parts that need it are skipped")
        else:
            origin = ("Keras's" if stand_in.__module__.startswith(("keras", "tensorflow"))
                      else "the course's")
            print(f"note: {why}; {origin} stand-in {stand_in.__qualname__.rsplit('.', 1)[-1]} "
                  "is used below")
        return stand_in

    def claim(self, claim_id: str, measured: str, holds: bool | None, *, effect: str = "",
              spread: str = "", seeds: int | None = None, reason: str = "") -> None:
        """Print a claim of the source documents (declared in ``course.claims``) next to what
        this run measured, and record it in ``<out>/claims.json``.

        ``holds``: True (consistent), False (not what we measured) or None (inconclusive; give
        the ``reason``). ``effect`` is the measured effect in a few words ("3.1x fewer epochs"),
        ``spread`` its spread over ``seeds`` seeds where there are several."""
        from rich.console import Console
        from rich.panel import Panel

        from course.claims import VERDICTS, claim as declared

        c = declared(claim_id)
        if c.chapter != self.number:
            raise ValueError(f"claim {claim_id!r} belongs to chapter {c.chapter}, not {self.number}")
        if holds is not None:
            reason = ""  # a reason explains an inconclusive verdict only
        elif not reason:
            reason = "the quick run is too small to tell" if self.quick else "no reason given"
        verdict = VERDICTS[holds]
        self.claims = [r for r in self.claims if r["id"] != claim_id]
        self.claims.append({"id": claim_id, "claim": c.text, "source": c.document,
                            "section": c.section, "measured": measured, "holds": holds,
                            "verdict": verdict, "effect": effect, "spread": spread,
                            "seeds": seeds, "reason": reason})
        self.write_claims()
        colour = {True: "green", False: "red", None: "yellow"}[holds]
        why = f" ({reason})" if holds is None and reason else ""
        Console().print(Panel(f"[bold]Claim:[/] {c.text}\n[dim]{c.document}, {c.section}[/]\n"
                              f"[bold]Measured:[/] {measured}\n[{colour}]{verdict}[/]{why}",
                              title="claim check", expand=False))

    def write_claims(self, complete: bool = False) -> None:
        """``<out>/claims.json``: the claims so far, and the run they come from (mode, data set,
        device, versions, when, how long). Written after every claim, and once more, marked
        complete, when the chapter ends."""
        if not self.claims:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        now = time.time()
        record = {"chapter": self.number, "stem": self.stem,
                  "mode": "quick" if self.quick else "full", "dataset": self.dataset or "default",
                  "component": self.component_source, "backend": _backend(),
                  "device": _device(), "versions": _versions(), "started": _iso(self.started),
                  "seconds": round(now - self.started, 1), "complete": complete,
                  "finished": _iso(now) if complete else None,
                  "finished_at": now if complete else None, "code": _code_hash(self.stem),
                  "claims": self.claims}
        tmp = self.out / ".claims.json.tmp"
        tmp.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(self.out / "claims.json")

    def finish(self) -> None:
        """Mark the run's claims complete (called at exit; ``course claims`` trusts only a
        complete run)."""
        if not self._finished:
            self._finished = True
            self.write_claims(complete=True)


def _code_hash(stem: str) -> str | None:
    from course.claims import code_hash

    return code_hash(Path(__file__).resolve().parents[1] / "chapters" / f"{stem}.py")


def _iso(seconds: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(seconds).astimezone().isoformat(timespec="seconds")


def _backend() -> str:
    """The Keras backend this process runs on (chosen once, at Keras's import)."""
    import keras

    return keras.backend.backend()


@functools.lru_cache(maxsize=None)  # the same for the whole run
def _versions() -> dict:
    """Python, the course, Keras, the backend that ran (its package: a JAX or PyTorch run
    names jax or torch beside tensorflow, which serves the data sets everywhere) and NumPy."""
    import platform
    from importlib import metadata

    from course.backends import PACKAGES

    found = {"python": platform.python_version()}
    backend = PACKAGES.get(_backend(), _backend())
    for label, name in dict.fromkeys((("course", "keras-optimization-course"), ("keras", "keras"),
                                      ("tensorflow", "tensorflow"), (backend, backend),
                                      ("numpy", "numpy"))):
        try:
            found[label] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return found


@functools.lru_cache(maxsize=None)  # the same for the whole run
def _device() -> str:
    """The accelerator the run used, as its backend sees it, or the CPU's name and core count."""
    import platform

    from course.backends import accelerators

    try:
        names = accelerators()
        if names:
            return ", ".join(names)
    except Exception:  # noqa: BLE001 - the record says what it can
        pass
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU: {cpu}, {os.cpu_count()} cores"


def _take_a_step(cls) -> None:
    import inspect

    import keras

    variable = keras.Variable([1.0, 2.0, 3.0])
    # an optimizer that wraps another (chapter 8's AccumulateGradients) is given one to wrap
    wraps = "optimizer" in inspect.signature(cls).parameters
    optimizer = cls(keras.optimizers.SGD(0.1)) if wraps else cls(learning_rate=0.1)
    optimizer.apply_gradients([(keras.ops.ones(3), variable)])


_PROBES = {
    "optimizer": _take_a_step,
    "layer": lambda cls: cls()(__import__("numpy").ones((4, 3), "float32")),
    "callback": lambda cls: cls(),
}


def _load_component(stem: str, mine: bool):
    """Import the chapter's component: the learner's own (--mine) or the reference solution.

    A student bundle has no solutions/, so then the learner's version is used if it is
    implemented; otherwise ``None`` is returned and the chapter falls back to Keras built-ins.
    """
    order = ["exercises", "solutions"] if mine else ["solutions", "exercises"]
    for package in order:
        try:
            module = importlib.import_module(f"{package}.{stem}")
        except ModuleNotFoundError as exc:
            if exc.name in (package, f"{package}.{stem}"):
                continue
            raise
        return module, package
    return None, ""


def setup(number: int, title: str, argv: list[str] | None = None, description: str = "") -> ChapterRun:
    """Parse the chapter's command line and load its component."""
    info = find_chapter(number)
    parser = argparse.ArgumentParser(
        prog=f"python -m chapters.{info.stem}",
        description=description or f"Chapter {number}: {title}",
    )
    parser.add_argument("--quick", action="store_true",
                        help="small sizes and few epochs (well under a minute on 2 CPU cores)")
    parser.add_argument("--out", default=None,
                        help=f"folder for the plots (default: ./out/{info.stem})")
    parser.add_argument("--mine", action="store_true",
                        help="use your implementation from exercises/ instead of the reference")
    parser.add_argument("--dataset", default=None,
                        help="a TensorFlow Datasets name to use instead of the course data set")
    if argv is None:
        # in a notebook the command line is Jupyter's: the options come from COURSE_CHAPTER_ARGS
        # (e.g. "--quick --out plots"), set before starting Jupyter, as they would be typed
        argv = (shlex.split(os.environ.get("COURSE_CHAPTER_ARGS", "")) if in_notebook()
                else sys.argv[1:])
    args = parser.parse_args(argv)
    if in_notebook():
        # rich draws 115 columns in Jupyter, and cuts the chapters' wider tables short
        os.environ.setdefault("JUPYTER_COLUMNS", "160")
    elif not sys.stdout.isatty():
        # rich lays tables out for $COLUMNS, or 80, when the output is a file or a pipe (a log, a
        # test, `course run` in CI): the chapters' wider tables would break words in two
        columns = os.environ.get("COLUMNS", "")
        os.environ["COLUMNS"] = str(max(int(columns) if columns.isdigit() else 0, 120))
    out = Path(args.out) if args.out else Path("out") / info.stem
    run = ChapterRun(number, info.stem, args.quick, out, args.mine, args.dataset)
    run.component, run.component_source = _load_component(info.stem, args.mine)
    atexit.register(run.finish)  # the script's (or the notebook kernel's) end: claims complete
    if args.mine and run.component_source != "exercises":
        print(f"note: no exercises/{info.stem}.py found; using the reference solution")
    print(f"Chapter {number}: {title}  ({'quick' if args.quick else 'full'} run on Keras's "
          f"{_backend()} backend, component from "
          f"{run.component_source or 'nowhere: Keras built-ins only'}, plots in {out})")
    return run


