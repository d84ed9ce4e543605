"""The explorer's local web app: the page, its script and style, and a small JSON API.

    GET /                      the page (static/index.html), /app.js, /style.css
    GET /api/catalog           the surfaces, optimizers, hyperparameters and implementations
    GET /api/surface?name=     a surface's view and contour lines
    GET /api/path?surface=&optimizer=&impl=&lr=&steps=&x0=&y0=&momentum=&rho=&beta_1=&beta_2=&weight_decay=
                               {points, losses, diverged, error, comparison}
    GET /api/schedule?schedule=&impl=&lr=&steps=&decay=&decay_steps=&warmup=&alpha=&pct_start=
                               {rates, error, comparison}           (schedules.py)
    GET /api/range_test?impl=&steps=&beta=   {lrs, losses, suggestion, error}
    GET /api/scaling?data=&features=&impl=&lr=&steps=&batch=
                               {extent, contours, points, batch_paths, gradient_spread, error, ...}
    GET /mode.js               ``EXPLORE_STATIC = null``: this is the live app (``course explore
                               --build`` writes a mode.js with the grid of precomputed answers)

Bad input is an HTTP 400 with ``{"error": message}``; an implementation that is not written
yet or raises is an HTTP 200 whose ``error`` says so (the page shows it next to the path).
Everything is served from this package: the page loads nothing from anywhere else.
"""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8"}
FILES = {"/": ("index.html", TYPES[".html"]),
         **{f"/{p.name}": (p.name, TYPES[p.suffix]) for p in STATIC.iterdir() if p.suffix in TYPES}}


class Handler(BaseHTTPRequestHandler):
    server_version = "course-explore"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # quiet: the console shows the address and the stop message only

    def _send(self, status, body: bytes, content_type: str):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status, payload):
        self._send(status, json.dumps(payload, allow_nan=False).encode("utf-8"),
                   "application/json")

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        from course.explore import paths, scaling, schedules

        api = {"/api/catalog": lambda p: catalog(), "/api/path": paths.compute,
               "/api/surface": lambda p: paths.surface_grid(p.get("name") or "bowl"),
               "/api/schedule": schedules.compute, "/api/range_test": schedules.range_test,
               "/api/scaling": scaling.compute}

        url = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            if url.path in FILES:
                name, content_type = FILES[url.path]
                self._send(HTTPStatus.OK, (STATIC / name).read_bytes(), content_type)
            elif url.path == "/mode.js":
                self._send(HTTPStatus.OK, b"window.EXPLORE_STATIC = null;\n",
                           "text/javascript; charset=utf-8")
            elif url.path in api:
                self._json(HTTPStatus.OK, api[url.path](params))
            else:
                self._json(HTTPStatus.NOT_FOUND, {"error": f"nothing at {url.path}"})
        except paths.ExploreError as exc:
            self._json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except (BrokenPipeError, ConnectionResetError):
            pass  # the page moved on (a newer slider value); nobody is listening
        except Exception as exc:  # a bug here: say what, keep serving
            try:
                self._json(HTTPStatus.INTERNAL_SERVER_ERROR,
                           {"error": f"the explorer failed: {type(exc).__name__}: {exc}"})
            except OSError:
                pass


def catalog() -> dict:
    """Everything the page offers, for the three views."""
    from course.explore import paths, scaling, schedules

    return {**paths.catalog(), "schedule_view": schedules.catalog(), "scaling_view": scaling.catalog()}


class ExploreServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}/"


def make_server(host: str = "127.0.0.1", port: int = 8765) -> ExploreServer:
    """A server bound to ``host:port`` (port 0: any free port), not yet serving."""
    from course.threadsafe import guard_ast_parse

    guard_ast_parse()  # its request threads trace tf.functions at once (AutoGraph parses source)
    return ExploreServer((host, port), Handler)


def warm_up() -> None:
    """Import TensorFlow and trace the page's first path, so the first slider move is quick."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # a new tf.function per hyperparameter set is on purpose
    from course.explore import paths

    paths.surface_grid("bowl")
    paths.compute({"surface": "bowl", "optimizer": "adam", "impl": "keras"})


def serve_in_thread(host: str = "127.0.0.1", port: int = 0) -> tuple[ExploreServer, threading.Thread]:
    """Start a server in a daemon thread (tests, benchmarks); stop it with ``server.shutdown()``."""
    server = make_server(host, port)
    thread = threading.Thread(target=server.serve_forever, name="course-explore", daemon=True)
    thread.start()
    return server, thread
