"""`course explore`: the API's paths are the real optimizers' paths, bad input is a clear 400,
stubs and raising code are messages on the page, and the page loads nothing from elsewhere."""

import json
import re
import urllib.error
import urllib.request
from urllib.parse import urlencode

import numpy as np
import pytest

from graderlib import run_cli

from course.explore import paths
from course.explore.server import STATIC, serve_in_thread


@pytest.fixture(scope="module")
def server():
    srv, thread = serve_in_thread("127.0.0.1", 0)
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def get(server, path, **params):
    url = server.url.rstrip("/") + path + ("?" + urlencode(params) if params else "")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def api(server, **params):
    status, _, body = get(server, "/api/path", **params)
    return status, json.loads(body)


def gap(a, b):
    a, b = np.asarray(a["points"]), np.asarray(b["points"])
    assert a.shape == b.shape
    return float(np.linalg.norm(a - b, axis=1).max())


@pytest.mark.parametrize("optimizer, params", [
    ("momentum", {"lr": 0.02, "momentum": 0.9}),
    ("nesterov", {"lr": 0.02, "momentum": 0.8}),
    ("adam", {"lr": 0.1, "surface": "rosenbrock"}),
    ("adam", {"lr": 0.01}),
])
def test_solution_and_keras_give_the_same_path(server, optimizer, params):
    status, keras_path = api(server, optimizer=optimizer, impl="keras", steps=100, **params)
    assert status == 200 and keras_path["error"] is None
    status, solution = api(server, optimizer=optimizer, impl="solution", steps=100, **params)
    assert status == 200 and solution["error"] is None
    assert len(solution["points"]) == 101 and not solution["diverged"]
    # the path really moves (a path stuck at the start would also "agree")
    assert np.linalg.norm(np.subtract(solution["points"][-1], solution["points"][0])) > 0.5
    assert gap(solution, keras_path) <= 1e-5
    comparison = solution["comparison"]
    assert comparison["max_gap"] <= 1e-5 and comparison["first_step_over"] is None
    assert len(comparison["keras_points"]) == 101


def test_adam_on_the_bowl_agrees_with_keras_to_float32_rounding(server):
    # float32 rounding differs from step 1 (1 - beta_2 taken after or before the cast), so over
    # 100 steps from |start| ~ 5.4 the paths drift apart by about 2e-5, never by 1e-4
    status, solution = api(server, optimizer="adam", impl="solution", lr=0.1)
    assert status == 200
    assert solution["comparison"]["max_gap"] < 1e-4
    assert solution["comparison"]["first_step_over"] is None


def test_a_different_rate_gives_a_different_path(server):
    _, a = api(server, optimizer="adam", lr=0.1)
    _, b = api(server, optimizer="adam", lr=0.05)
    assert gap(a, b) > 0.1


def test_the_losses_are_the_surface_at_the_points(server):
    _, r = api(server, optimizer="sgd", lr=0.1, steps=20, surface="bowl")
    pts = np.asarray(r["points"])
    assert np.allclose(r["losses"], 0.1 * pts[:, 0] ** 2 + 2.0 * pts[:, 1] ** 2)
    # SGD on the bowl in closed form: each coordinate shrinks by (1 - 2 a lr) per step
    assert np.allclose(pts[-1], np.array([-5.0 * 0.98 ** 20, -2.0 * 0.6 ** 20]), atol=1e-5)


def test_a_stub_is_not_implemented_yet(server):
    status, r = api(server, optimizer="adam", impl="yours")
    assert status == 200
    assert r["error"] == "Adam in exercises/ch06_adam.py is not implemented yet"
    assert r["points"] == []


LEARNER = """
import keras

class RMSprop(keras.optimizers.Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        raise ValueError("shapes do not match\\nsecond line of detail")

class Adam(keras.optimizers.Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)

    def update_step(self, gradient, variable, learning_rate):
        while True:  # the learner's bug: the explorer must not wait for it
            pass
"""


@pytest.fixture(scope="module")
def learner(tmp_path_factory):
    """An exercises folder whose RMSprop raises and whose Adam never returns, a 3 s limit."""
    from course.explore import sandbox

    folder = tmp_path_factory.mktemp("exercises")
    (folder / "ch05_rmsprop.py").write_text(LEARNER)
    (folder / "ch06_adam.py").write_text(LEARNER)
    saved = paths.EXERCISES, sandbox.TIME_LIMIT
    paths.EXERCISES, sandbox.TIME_LIMIT = folder, 3.0
    yield folder
    paths.EXERCISES, sandbox.TIME_LIMIT = saved


def test_code_that_raises_gives_the_type_and_message(learner):
    r = paths.compute({"optimizer": "rmsprop", "impl": "yours", "lr": "0.0123"})
    assert r["error"].startswith("RMSprop in exercises/ch05_rmsprop.py raised ValueError: "
                                 "shapes do not match")
    assert "second line" not in r["error"]
    assert "Traceback" not in r["error"]


def test_a_hanging_implementation_is_stopped_and_the_rest_keeps_answering(learner, server):
    import threading
    import time

    from course.explore import sandbox

    paths.compute({"optimizer": "rmsprop", "impl": "yours"})  # the worker is started
    answers = {}
    hang = threading.Thread(target=lambda: answers.update(
        hung=api(server, optimizer="adam", impl="yours", lr=0.07)))
    started = time.perf_counter()
    hang.start()
    time.sleep(0.5)
    # meanwhile Keras's and the solution's paths keep coming, quickly
    status, keras_path = api(server, optimizer="momentum", impl="keras", lr=0.0311)
    assert status == 200 and keras_path["error"] is None
    assert time.perf_counter() - started < 2.5 and hang.is_alive()
    hang.join(timeout=60)
    status, hung = answers["hung"]
    assert status == 200 and hung["points"] == []
    assert hung["error"] == ("your implementation did not finish in 3 s "
                             "(the explorer stopped it)")
    assert sandbox._worker is None  # killed; the next "yours" request starts a fresh one
    r = paths.compute({"optimizer": "rmsprop", "impl": "yours", "lr": "0.0123"})
    assert "shapes do not match" in r["error"]


@pytest.mark.parametrize("params, message", [
    ({"surface": "volcano"}, "unknown surface 'volcano'"),
    ({"optimizer": "lion"}, "unknown optimizer 'lion'"),
    ({"impl": "/etc/passwd"}, "unknown implementation"),
    ({"lr": "0"}, "must be positive"),
    ({"lr": "-0.1"}, "must be positive"),
    ({"lr": "inf"}, "must be a finite number"),
    ({"lr": "nan"}, "must be a finite number"),
    ({"lr": "fast"}, "lr must be a number"),
    ({"steps": "0"}, "steps must be between 1 and 1000"),
    ({"steps": "5000"}, "steps must be between 1 and 1000"),
    ({"steps": "ten"}, "steps must be a whole number"),
    ({"optimizer": "adam", "beta_1": "1"}, "beta_1 must be in [0, 1)"),
    ({"x0": "1e9"}, "x0 must be between"),
])
def test_bad_input_is_a_400_with_a_message(server, params, message):
    status, r = api(server, **params)
    assert status == 400
    assert message in r["error"]


def test_unknown_address_is_a_404(server):
    status, _, body = get(server, "/api/nothing")
    assert status == 404 and "error" in json.loads(body)


@pytest.mark.parametrize("params", [
    {"optimizer": "sgd", "lr": 50, "surface": "bowl"},
    {"optimizer": "sgd", "lr": 0.3, "surface": "saddle"},
])
def test_a_diverging_path_is_cut_and_flagged(server, params):
    status, r = api(server, steps=100, **params)
    assert status == 200 and r["error"] is None
    assert r["diverged"] is True
    pts = np.asarray(r["points"])
    assert 1 <= len(pts) < 101
    assert np.all(np.isfinite(pts)) and np.abs(pts).max() <= paths.ESCAPE
    assert len(r["losses"]) == len(pts) and np.all(np.isfinite(r["losses"]))


def test_a_converging_path_is_not_flagged(server):
    _, r = api(server, optimizer="sgd", lr=0.1, surface="saddle", y0=0)
    assert r["diverged"] is False and len(r["points"]) == 101


def test_surface_has_contours(server):
    status, _, body = get(server, "/api/surface", name="rosenbrock")
    s = json.loads(body)
    assert status == 200 and s["extent"] == [-2.0, 2.0, -1.0, 3.0]
    assert len(s["contours"]) >= 10 and any(c["lines"] for c in s["contours"])
    status, _, body = get(server, "/api/surface", name="nope")
    assert status == 400 and "unknown surface" in json.loads(body)["error"]


def test_the_page_and_its_files_are_served_and_self_contained(server):
    status, headers, page = get(server, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    html = page.decode()
    assert 'src="app.js"' in html and 'href="style.css"' in html
    for name, kind in (("/app.js", "text/javascript"), ("/style.css", "text/css")):
        status, headers, body = get(server, name)
        assert status == 200 and headers["Content-Type"].startswith(kind) and body
    for path in STATIC.iterdir():
        text = path.read_text()
        # no external resource: no src/href/url()/import pointing anywhere with a scheme or //
        assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", text, re.I), path
        assert not re.search(r"""url\(\s*["']?\s*(https?:)?//""", text, re.I), path
        assert not re.search(r"""(fetch|import)\s*\(\s*["'`]\s*(https?:)?//""", text, re.I), path
        # the only absolute address allowed is the SVG namespace name in createElementNS
        others = set(re.findall(r"https?://[^\s\"'`)]+", text)) - {"http://www.w3.org/2000/svg"}
        assert not others, (path, others)


def test_the_static_files_are_package_data():
    text = (STATIC.parents[2] / "pyproject.toml").read_text()
    assert '"course.explore" = ["static/*.html", "static/*.js", "static/*.css"]' in text
    assert {p.name for p in STATIC.iterdir()} >= {"index.html", "app.js", "style.css"}


def test_explore_help():
    result = run_cli("explore", "--help", timeout=120)
    assert result.returncode == 0, result.stderr
    for option in ("--port", "--no-browser", "--host"):
        assert option in result.stdout


def test_explore_on_a_port_in_use_is_a_clear_error(server):
    port = server.server_address[1]
    result = run_cli("explore", "--port", str(port), "--no-browser", timeout=120)
    assert result.returncode == 2
    assert "cannot listen on 127.0.0.1" in result.stderr and "Traceback" not in result.stderr


def test_ctrl_c_stops_the_server_cleanly():
    import os
    import signal
    import subprocess
    import sys

    from graderlib import ROOT

    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # SIG_DFL in the child: a shell's background job would otherwise ignore SIGINT
    proc = subprocess.Popen([sys.executable, "-m", "course.cli", "explore", "--port", "0",
                             "--no-browser"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        first = proc.stdout.readline()
        assert "The explorer is at http://127.0.0.1:" in first
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0 and "The explorer stopped." in out
    assert "Traceback" not in err


# a slice of the static build's grid: the optimizers view's first screen
SMALL_GRID = {"surface": {"name": ["bowl"]},
              "path": {"surface": ["bowl"], "optimizer": ["adam", "momentum"], "impl": ["keras"],
                       "lr": ["0.03", "0.1"], "momentum": ["0.9"], "beta_1": ["0.9"]}}


def test_the_static_build_writes_the_page_and_an_answer_per_grid_point(tmp_path):
    from course.explore import build

    result = build.build(tmp_path, grids=SMALL_GRID)
    data = tmp_path / "data"
    answers = sorted(p.relative_to(data).as_posix() for p in data.rglob("*.json"))
    assert answers == ["catalog/index.json",
                       "path/beta_1-0.9_impl-keras_lr-0.03_optimizer-adam_surface-bowl.json",
                       "path/beta_1-0.9_impl-keras_lr-0.1_optimizer-adam_surface-bowl.json",
                       "path/impl-keras_lr-0.03_momentum-0.9_optimizer-momentum_surface-bowl.json",
                       "path/impl-keras_lr-0.1_momentum-0.9_optimizer-momentum_surface-bowl.json",
                       "surface/name-bowl.json"]
    assert {p.name for p in STATIC.iterdir()} <= {p.name for p in tmp_path.iterdir()}
    assert (tmp_path / "mode.js").read_text().startswith('window.EXPLORE_STATIC = {"grids": ')
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert result["files"] == len(written)
    assert result["bytes"] == sum(p.stat().st_size for p in written)
    answer = json.loads((data / "path" / answers[2].split("/")[1]).read_text())
    assert answer == paths.compute({"optimizer": "adam", "lr": "0.1", "beta_1": "0.9"})


def test_the_full_grid_leaves_out_yours_and_holds_every_view():
    from course.explore import build

    jobs = list(build.requests(build.GRIDS))
    assert {e for e, _ in jobs} == {"surface", "path", "schedule", "range_test", "scaling"}
    assert all(p.get("impl") != "yours" for _, p in jobs)
    assert len(jobs) == len({(e, build.key(p)) for e, p in jobs}) < 1200


def test_explore_build_on_a_file_is_a_clear_error(tmp_path):
    target = tmp_path / "a-file"
    target.write_text("")
    result = run_cli("explore", "--build", str(target), timeout=120)
    assert result.returncode == 2 and "not a folder" in result.stderr


@pytest.mark.parametrize("schedule", ["time", "step", "exponential", "warmup_cosine", "one_cycle"])
def test_each_solution_schedule_is_keras_s_curve(server, schedule):
    status, _, body = get(server, "/api/schedule", schedule=schedule, impl="solution", steps=600,
                          warmup=150, decay_steps=100)
    r = json.loads(body)
    assert status == 200 and r["error"] is None and len(r["rates"]) == 600
    c = r["comparison"]
    assert c["first_step_over"] is None and c["max_relative_gap"] < 1e-6
    assert np.allclose(r["rates"], c["keras_rates"], rtol=1e-5, atol=1e-9)
    assert max(r["rates"]) <= 0.1 + 1e-7 and min(r["rates"]) < 0.05  # the rate really moves


def test_the_warmup_slider_moves_the_peak(server):
    curves = [json.loads(get(server, "/api/schedule", schedule="warmup_cosine", warmup=w)[2])["rates"]
              for w in (100, 300)]
    assert int(np.argmax(curves[0])) == 100 and int(np.argmax(curves[1])) == 300


def test_a_schedule_that_differs_says_from_which_step(monkeypatch):
    from course.explore import schedules

    class Late(schedules.paths.load("solution", "ch07_lr_decay", "StepDecay")):
        def __call__(self, step):  # drops one step late
            return super().__call__(np.maximum(np.asarray(step) - 1, 0))

    real = schedules.paths.load
    monkeypatch.setattr(schedules.paths, "load", lambda impl, stem, name, stamp=None:
                        Late if impl == "solution" else real(impl, stem, name, stamp))
    schedules.rates.cache_clear()
    try:
        r = schedules.compute({"schedule": "step", "impl": "solution", "decay_steps": "200"})
    finally:
        schedules.rates.cache_clear()
    assert r["comparison"]["first_step_over"] == 200
    assert abs(r["comparison"]["max_gap"] - 0.05) < 1e-6


def test_the_range_test_suggests_a_rate_inside_its_ramp(server):
    status, _, body = get(server, "/api/range_test", impl="solution", steps=100)
    r = json.loads(body)
    assert status == 200 and r["error"] is None and len(r["lrs"]) == len(r["losses"]) >= 20
    assert r["lrs"][0] == pytest.approx(1e-4) and r["lrs"] == sorted(r["lrs"])
    assert r["lrs"][0] < r["suggestion"] < r["lrs"][-1]


@pytest.mark.parametrize("path, params, message", [
    ("/api/schedule", {"schedule": "linear"}, "unknown schedule 'linear'"),
    ("/api/schedule", {"lr": "0"}, "lr (the initial or peak rate) must be in (0, 10]"),
    ("/api/schedule", {"warmup": "2000", "steps": "1000"}, "warmup (2000) must be below steps"),
    ("/api/schedule", {"schedule": "step", "decay_steps": "2.5"}, "decay_steps must be a whole number"),
    ("/api/schedule", {"schedule": "one_cycle", "pct_start": "1"}, "pct_start must be in"),
    ("/api/range_test", {"impl": "keras"}, "unknown impl 'keras'"),
    ("/api/range_test", {"beta": "1"}, "beta must be in [0, 1)"),
    ("/api/scaling", {"features": "log"}, "unknown features 'log'"),
    ("/api/scaling", {"data": "iris"}, "unknown data 'iris'"),
    ("/api/scaling", {"features": "raw", "lr": "0.1"}, "lr must be in [1e-10, 1e-06] for raw"),
    ("/api/scaling", {"batch": "0"}, "batch must be a whole number from 1 to 2000"),
])
def test_bad_input_to_the_new_views_is_a_400(server, path, params, message):
    status, _, body = get(server, path, **params)
    assert status == 400 and message in json.loads(body)["error"]


def test_scaling_standardized_features_condition_the_problem(server):
    raw = json.loads(get(server, "/api/scaling", features="raw")[2])
    std = json.loads(get(server, "/api/scaling", features="standardized", impl="solution")[2])
    assert raw["error"] is None and std["error"] is None
    assert raw["request"]["data"] == "generated"
    # independent features: standardized, the contours are circles
    assert raw["condition_number"] > 1000 and std["condition_number"] < 1.1
    assert std["comparison"]["max_feature_gap"] < 1e-4
    # at the default rates SGD reaches the minimum on standardized features; on raw ones it
    # zig-zags across the valley and crawls along it
    assert np.allclose(std["points"][-1], std["optimum"], rtol=0.01)
    assert std["progress"] == pytest.approx([1, 1], abs=0.01)
    assert raw["progress"][0] < 0.2
    w2 = np.asarray(raw["points"])[:6, 1]
    assert np.all(np.diff(w2) * np.diff(w2)[0] * [1, -1, 1, -1, 1] > 0)  # up, down, up, ...
    over = json.loads(get(server, "/api/scaling", features="raw", lr=5e-7)[2])
    assert over["diverged"] is True and len(over["points"]) < 101


def test_scaling_windows_hold_the_path_and_the_minimum(server):
    for features in ("raw", "standardized"):
        r = json.loads(get(server, "/api/scaling", features=features)[2])
        x0, x1, y0, y1 = r["extent"]
        for x, y in [*r["points"], r["optimum"]]:
            assert x0 < x < x1 and y0 < y < y1
        assert r["contours"] and all(c["lines"] for c in r["contours"][:3])
    std = json.loads(get(server, "/api/scaling", features="standardized")[2])
    x0, x1, y0, y1 = std["extent"]
    assert x1 - x0 == pytest.approx(y1 - y0)  # the same scale on both axes: circles look round


def test_the_house_prices_stay_elongated_when_standardized(server):
    # bedrooms and area are correlated: standardizing fixes the scales, not the correlation
    raw = json.loads(get(server, "/api/scaling", data="house_prices", features="raw")[2])
    std = json.loads(get(server, "/api/scaling", data="house_prices", features="standardized")[2])
    assert raw["condition_number"] > 1e6 and 10 < std["condition_number"] < 100
    assert abs(raw["points"][-1][0]) < 0.01 * abs(raw["optimum"][0])


def test_a_smaller_batch_gives_noisier_gradients(server):
    answers = {b: json.loads(get(server, "/api/scaling", batch=b)[2]) for b in (2, 32, 512)}
    spread = {b: a["gradient_spread"]["relative"] for b, a in answers.items()}
    assert spread[2] > 2 * spread[32] > 4 * spread[512]
    # and the mini-batch paths end farther from the full-batch one
    assert answers[2]["final_spread"] > 3 * answers[512]["final_spread"]
    assert len(answers[2]["batch_paths"]) == 16
