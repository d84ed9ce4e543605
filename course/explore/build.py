"""``course explore --build DIR``: the explorer as static files an instructor can host anywhere.

The folder holds the page (the same files the server sends), ``mode.js`` with the grid of
slider values, and ``data/<endpoint>/<key>.json``: the API's answer for every combination on the
grid (``key`` is the request's parameters sorted by name, ``name-value`` joined by ``_``, the
same key app.js builds). In that mode the page snaps each slider to the grid and reads the files;
a slider the grid does not hold is fixed at its default. The grid is small on purpose (it
builds in about a minute on two cores); "yours" is left out, as it needs the learner's own
computer.
"""

from __future__ import annotations

import itertools
import json
import shutil
import time
from pathlib import Path

from course.explore import paths, scaling, schedules
from course.explore.server import STATIC, catalog

IMPLS = ["keras", "solution"]
GRIDS = {
    "surface": {"name": list(paths.SURFACES)},
    "path": {"surface": list(paths.SURFACES), "optimizer": list(paths.OPTIMIZERS), "impl": IMPLS,
             "lr": ["0.001", "0.003", "0.01", "0.03", "0.1", "0.3", "1"],
             "momentum": ["0.5", "0.9", "0.97"], "rho": ["0.5", "0.9", "0.99"],
             "beta_1": ["0.5", "0.9", "0.97"]},
    "schedule": {"schedule": list(schedules.SCHEDULES), "impl": IMPLS, "lr": ["0.01", "0.1", "1"],
                 "steps": ["1000"], "decay": ["0.1", "0.5", "0.9"],
                 "decay_steps": ["50", "200", "500"], "warmup": ["0", "100", "300"],
                 "alpha": ["0", "0.1"], "pct_start": ["0.1", "0.3", "0.5"]},
    "range_test": {"impl": ["solution"], "steps": ["50", "100", "200"], "beta": ["0.9", "0.98"]},
    "scaling": {"data": list(scaling.DATA), "features": ["raw", "standardized"], "impl": IMPLS,
                # raw and standardized rates are far apart: the page snaps each slider to its own;
                # each data set's default and a rate just over its stable limit are on the grid
                "lr": ["2e-08", "5e-08", "9.5e-08", "1.05e-07", "1e-07", "3.5e-07", "5e-07",
                       "0.01", "0.03", "0.1", "0.3", "1"],
                "batch": ["1", "4", "16", "64", "256", "2000"]},
}
RAW_LRS = {"2e-08", "5e-08", "9.5e-08", "1.05e-07", "1e-07", "3.5e-07", "5e-07"}


def _product(**choices):
    names = list(choices)
    for values in itertools.product(*choices.values()):
        yield dict(zip(names, values))


def requests(g: dict):
    """``(endpoint, params)`` for every answer on the grid ``g`` (an endpoint it lacks: none)."""
    g = {endpoint: {name: [] for name in GRIDS[endpoint]} | g.get(endpoint, {}) for endpoint in GRIDS}
    for name in g["surface"]["name"]:
        yield "surface", {"name": name}
    for surface, key, impl in itertools.product(g["path"]["surface"], g["path"]["optimizer"],
                                                g["path"]["impl"]):
        hypers = {h: g["path"][h] for h in paths.OPTIMIZERS[key].hyper if h in g["path"]}
        for values in _product(lr=g["path"]["lr"], **hypers):
            yield "path", {"surface": surface, "optimizer": key, "impl": impl, **values}
    for key, impl in itertools.product(g["schedule"]["schedule"], g["schedule"]["impl"]):
        own = {p: g["schedule"][p] for p in schedules.SCHEDULES[key].params}
        for values in _product(lr=g["schedule"]["lr"], steps=g["schedule"]["steps"], **own):
            yield "schedule", {"schedule": key, "impl": impl, **values}
    for values in _product(**g["range_test"]):
        yield "range_test", values
    s = g["scaling"]
    raw = [v for v in s["lr"] if v in RAW_LRS] if "raw" in s["features"] else []
    standardized = [v for v in s["lr"] if v not in RAW_LRS] if "standardized" in s["features"] else []
    for data in s["data"]:
        for lr, batch in itertools.product(raw, s["batch"]):
            yield "scaling", {"data": data, "features": "raw", "lr": lr, "batch": batch}
        for impl, lr, batch in itertools.product(s["impl"], standardized, s["batch"]):
            yield "scaling", {"data": data, "features": "standardized", "impl": impl, "lr": lr,
                              "batch": batch}


def key(params: dict) -> str:
    """The file name of an answer, as app.js's ``staticKey`` builds it."""
    return "_".join(f"{k}-{v}" for k, v in sorted(params.items())) or "index"


COMPUTE = {"surface": lambda p: paths.surface_grid(p["name"]), "path": paths.compute,
           "schedule": schedules.compute, "range_test": schedules.range_test,
           "scaling": scaling.compute}


def build(folder: Path, progress=None, grids: dict = GRIDS) -> dict:
    """Write the static explorer into ``folder``; returns the number of files, bytes, seconds.
    (The tests pass a smaller ``grids``.)"""
    started = time.perf_counter()
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for source in (p for p in STATIC.iterdir() if p.is_file()):
        shutil.copyfile(source, folder / source.name)
        written.append(folder / source.name)

    def write(path: Path, text: str):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)

    write(folder / "mode.js", "window.EXPLORE_STATIC = " + json.dumps({"grids": grids}) + ";\n")
    write(folder / "data" / "catalog" / "index.json", json.dumps(catalog(), allow_nan=False))
    jobs = list(requests(grids))
    for i, (endpoint, params) in enumerate(jobs):
        answer = COMPUTE[endpoint](params)
        if answer.get("error"):  # the grid must hold answers, not messages
            raise RuntimeError(f"{endpoint} {params}: {answer['error']}")
        write(folder / "data" / endpoint / f"{key(params)}.json", json.dumps(answer, allow_nan=False))
        if progress:
            progress(i + 1, len(jobs))
    return {"files": len(written), "bytes": sum(p.stat().st_size for p in written),
            "seconds": time.perf_counter() - started}
