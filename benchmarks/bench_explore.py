"""Latency of ``/api/path`` (100 steps) against a running ``course explore`` server.

    course explore --no-browser --port 8765 &
    python benchmarks/bench_explore.py --url http://127.0.0.1:8765/

Without ``--url`` the script starts a server in this process on a free port (and warms it up as
``course explore`` does). For each optimizer it measures, over several distinct slider values:

    fresh rate     a new learning rate: the traced loop is re-run, nothing is cached
    fresh hyper    a new momentum / rho / beta_1: a new optimizer is built and its loop traced
    cached         the same request again: the answer comes from the cache

and prints the median and the worst time from sending the request to reading the whole answer.
Then the other two views: ``/api/schedule`` per schedule and slider (Keras and the solution),
``/api/scaling`` (a new rate, a new batch size; 100 steps, 17 paths) and ``/api/range_test``
(first call, another setting, cached).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# hyperparameter varied in the "fresh hyper" rows (AdamW's weight decay, SGD's rate only)
VARY = {"sgd": None, "momentum": "momentum", "nesterov": "momentum", "rmsprop": "rho",
        "adam": "beta_1", "adamw": "weight_decay"}


def fetch(base: str, endpoint="path", **params) -> float:
    url = base.rstrip("/") + f"/api/{endpoint}?" + urlencode(params)
    t = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:
        body = json.loads(response.read())
    elapsed = time.perf_counter() - t
    if body.get("error"):
        raise SystemExit(f"{params}: {body['error']}")
    return elapsed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running server (default: start one here)")
    parser.add_argument("--repeats", type=int, default=7, help="distinct slider values per row")
    parser.add_argument("--impl", default="keras", choices=("keras", "solution"))
    parser.add_argument("--surface", default="bowl")
    args = parser.parse_args(argv)
    base = args.url
    if base is None:
        from course.explore.server import serve_in_thread, warm_up

        t = time.perf_counter()
        warm_up()
        print(f"warm-up (TensorFlow import, first trace): {time.perf_counter() - t:.2f} s")
        server, _ = serve_in_thread("127.0.0.1", 0)
        base = server.url
    print(f"server {base}; impl={args.impl}, surface={args.surface}, 100 steps, "
          f"{args.repeats} distinct values per row; milliseconds")
    print(f"{'optimizer':<10} {'first call':>10} {'fresh rate':>16} {'fresh hyper':>16} {'cached':>14}")
    for opt in VARY:
        common = dict(surface=args.surface, optimizer=opt, impl=args.impl, steps=100)
        first = fetch(base, lr=0.0123, **common)  # the first request for this optimizer: traces
        rates = [fetch(base, lr=0.01 + 0.003 * i, **common) for i in range(args.repeats)]
        hyper = []
        if VARY[opt]:
            for i in range(args.repeats):
                value = 0.5 + 0.01 * i if VARY[opt] != "weight_decay" else 0.01 * (i + 1)
                hyper.append(fetch(base, lr=0.02, **{VARY[opt]: value}, **common))
        cached = [fetch(base, lr=0.01, **common) for _ in range(args.repeats)]

        def cell(values):
            if not values:
                return "-"
            ms = [1000 * v for v in values]
            return f"{statistics.median(ms):6.1f} (max {max(ms):5.1f})"

        print(f"{opt:<10} {1000 * first:10.1f} {cell(rates):>16} {cell(hyper):>16} {cell(cached):>14}")
    views(base, args.repeats)
    return 0


def views(base: str, repeats: int) -> None:
    """The schedules and scaling views: one row per kind of slider move."""
    def row(name, times):
        ms = [1000 * t for t in times]
        print(f"{name:<52} {statistics.median(ms):7.1f} (max {max(ms):6.1f})")

    print("\nother views: median (max) milliseconds over distinct slider values")
    fetch(base, "schedule", schedule="warmup_cosine")
    for schedule, knob in (("warmup_cosine", "warmup"), ("one_cycle", "pct_start"),
                           ("step", "decay"), ("exponential", "decay_steps"), ("time", "decay")):
        whole = knob in ("warmup", "decay_steps")
        for impl in ("keras", "solution"):
            row(f"schedule {schedule} ({impl}), new {knob}",
                [fetch(base, "schedule", schedule=schedule, impl=impl,
                       **{knob: 50 + 10 * i if whole else 0.2 + 0.05 * i}) for i in range(repeats)])
    for kind, rates in (("standardized", [0.05 + 0.01 * i for i in range(repeats)]),
                        ("raw", [3e-7 + 5e-9 * i for i in range(repeats)])):
        fetch(base, "scaling", features=kind)
        row(f"scaling {kind}, new rate", [fetch(base, "scaling", features=kind, lr=v) for v in rates])
        row(f"scaling {kind}, new batch size",
            [fetch(base, "scaling", features=kind, batch=3 + i) for i in range(repeats)])
    row("range test, first call (100 batches)", [fetch(base, "range_test", steps=100)])
    row("range test, another setting (200 batches)", [fetch(base, "range_test", steps=200)])
    row("range test, cached", [fetch(base, "range_test", steps=100) for _ in range(repeats)])


if __name__ == "__main__":
    sys.exit(main())
