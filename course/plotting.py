"""Plots the chapters share: optimizer paths on an ill-conditioned bowl, loss curves.

The bowl is ``f(x1, x2) = a*x1^2 + b*x2^2`` (by default ``0.1*x1^2 + 2*x2^2``): twenty times
steeper along x2 than along x1, the shape that unscaled features give a loss surface.
"""

from __future__ import annotations

import sys

import matplotlib

if "ipykernel" not in sys.modules:  # scripts and tests draw off-screen; notebooks keep inline plots
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

BOWL = (0.1, 2.0)
START = (-5.0, -2.0)


def bowl_loss(x1, x2, a: float = BOWL[0], b: float = BOWL[1]):
    return a * np.square(x1) + b * np.square(x2)


def run_on_bowl(optimizer, steps: int = 50, start=START, a: float = BOWL[0], b: float = BOWL[1]) -> np.ndarray:
    """Run a Keras optimizer on the bowl from ``start``; return the (steps+1, 2) path.

    The gradient is the closed form ``(2*a*x1, 2*b*x2)``, so any Keras optimizer (a built-in or
    a course component) can be dropped in and the paths compared point by point.
    """
    import keras

    x = keras.Variable(np.asarray(start, dtype="float32"), name="x")
    coef = np.asarray([2 * a, 2 * b], dtype="float32")
    path = [x.numpy().copy()]
    for _ in range(steps):
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(coef * x.numpy()), x)])
        path.append(x.numpy().copy())
    return np.stack(path)


def steps_to_reach(path: np.ndarray, loss: float, a: float = BOWL[0], b: float = BOWL[1]) -> int | None:
    """The first step at which the bowl loss is at or below ``loss`` (None if never)."""
    values = bowl_loss(path[:, 0], path[:, 1], a, b)
    hits = np.nonzero(values <= loss)[0]
    return int(hits[0]) if hits.size else None


def plot_trajectories(ax, paths: dict, title: str = "", a: float = BOWL[0], b: float = BOWL[1],
                      extent=(-6.0, 2.0, -3.0, 3.0)) -> None:
    """Draw the bowl's contours and one path per optimizer (name -> (n, 2) array)."""
    x1 = np.linspace(extent[0], extent[1], 200)
    x2 = np.linspace(extent[2], extent[3], 200)
    g1, g2 = np.meshgrid(x1, x2)
    ax.contour(g1, g2, bowl_loss(g1, g2, a, b), levels=np.geomspace(0.01, 30, 14), colors="0.8",
               linewidths=0.8)
    for name, path in paths.items():
        path = np.asarray(path)
        ax.plot(path[:, 0], path[:, 1], "o-", ms=2.5, lw=1.2, label=name)
    ax.plot([0], [0], "k*", ms=10)
    ax.set_xlim(extent[0], extent[1])
    ax.set_ylim(extent[2], extent[3])
    ax.set_xlabel("x1 (shallow)")
    ax.set_ylabel("x2 (steep)")
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="lower right")


def plot_curves(ax, curves: dict, xlabel: str = "epoch", ylabel: str = "loss", logy: bool = True,
                title: str = "", x: dict | None = None) -> None:
    """One line per name -> sequence of values (optionally with its own x values)."""
    for name, values in curves.items():
        xs = x[name] if x and name in x else np.arange(1, len(values) + 1)
        ax.plot(xs, values, label=name, lw=1.5)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def figure(nrows: int = 1, ncols: int = 1, width: float = 5.0, height: float = 4.0, **kwargs):
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False,
                             **kwargs)
    return fig, axes


def plain_log_axis(ax, log_y: bool = True, integer_x: bool = False, grid: bool = False) -> None:
    """A log y axis labelled 0.1, 0.2, 0.5, 1 rather than in powers of ten (one label a decade
    over many decades), with ``integer_x`` whole numbers on x (epochs), with ``grid`` a light
    grid on both."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator, MaxNLocator, NullFormatter

    if integer_x:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if log_y:
        if ax.get_yscale() != "log":
            ax.set_yscale("log")
        low, high = ax.get_ylim()
        ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if high / low < 300 else (1.0,)))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    if grid:
        ax.grid(alpha=0.3, which="both")
