"""Comparison plots of evaluation results (needs the ``plot`` extra: matplotlib).

Notebook-first: every helper returns a :class:`matplotlib.figure.Figure` built without pyplot
(no global figure state, and the active backend is never changed: library code never calls
``matplotlib.use``), and also writes it to ``path`` when one is given. In Jupyter, put the
returned figure last in a cell (after ``%matplotlib inline``) to see it inline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from lwmecps_gym.core.evaluation import EvaluationResult, check_metrics, mean_ci
from lwmecps_gym.core.optional import require

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

#: Metric name -> (axis label, unit, lower bound, upper bound) of the harness' metrics in the three
#: families (``None``: unbounded). Names not listed fall back to their suffix (``_ms``, ``_s``, ``_rps``).
METRIC_INFO: dict[str, tuple[str, str, float | None, float | None]] = {
    "return": ("episode return", "reward", None, None),
    "length": ("episode length", "steps", 0.0, None),
    # lwmecps
    "latency_ms": ("mean latency", "ms", 0.0, None),
    "demand_rps": ("demand", "requests/s", 0.0, None),
    "failed_rps": ("failed requests", "requests/s", 0.0, None),
    "sla_violation_rate": ("SLA violation rate", "fraction", 0.0, 1.0),
    "replicas": ("replicas", "replicas", 0.0, None),
    "replicas_ready": ("ready replicas", "replicas", 0.0, None),
    "migrations": ("migrations", "per step", 0.0, None),
    "imbalance": ("load imbalance", "-", 0.0, None),
    # faas_gym
    "response_time_ms": ("response time", "ms", 0.0, None),
    "slo_violation_rate": ("SLO violation rate", "fraction", 0.0, 1.0),
    "replica_seconds": ("replica-seconds", "replica·s", 0.0, None),
    "cold_starts": ("cold starts", "replicas", 0.0, None),
    "replicas_desired": ("desired replicas", "replicas", 0.0, None),
    "cpu_utilization": ("CPU utilisation", "fraction", 0.0, 1.0),
    "memory_utilization": ("memory utilisation", "fraction", 0.0, 1.0),
    "queue_length": ("queue length", "requests", 0.0, None),
    "dropped": ("dropped requests", "requests", 0.0, None),
    "drop_rate": ("drop rate", "fraction", 0.0, 1.0),
    # marllb_env
    "fct_mean_s": ("mean flow completion time", "s", 0.0, None),
    "fct_p90_s": ("p90 flow completion time", "s", 0.0, None),
    "fct_p99_s": ("p99 flow completion time", "s", 0.0, None),
    "jain_cpu_util": ("Jain's index of CPU use", "-", 0.0, 1.0),
    "jain_reward_field": ("Jain's index of the reward field", "-", 0.0, 1.0),
    "cpu_util_mean": ("mean CPU utilisation", "fraction", 0.0, 1.0),
    "flows_in_system": ("flows in system", "flows", 0.0, None),
    "rejects": ("rejected flows", "flows", 0.0, None),
}

_SUFFIX_UNITS = (("_ms", "ms"), ("_s", "s"), ("_rps", "requests/s"), ("_rate", "fraction"))


def metric_info(name: str) -> tuple[str, str, float | None, float | None]:
    """``(label, unit, lower, upper)`` of a harness metric.

    Known names come from :data:`METRIC_INFO`; otherwise the unit is read from the name's suffix
    (``_ms`` -> ms, ``_s`` -> s, ``_rps`` -> requests/s, all non-negative; ``_rate`` -> a fraction in
    [0, 1]) and anything else is unitless and unbounded.
    """
    if name in METRIC_INFO:
        return METRIC_INFO[name]
    for suffix, unit in _SUFFIX_UNITS:
        if name.endswith(suffix):
            return name[: -len(suffix)].replace("_", " "), unit, 0.0, (1.0 if unit == "fraction" else None)
    return name.replace("_", " "), "", None, None


def _stat(result: EvaluationResult, metric: str, confidence: float) -> tuple[float, float]:
    """``(mean, half-width)``, or NaNs when this policy did not record ``metric`` (others did)."""
    if metric not in result.metric_names:
        return math.nan, math.nan
    return mean_ci(result.values(metric), confidence)


def _policy_colours(n: int) -> list:
    from matplotlib import colormaps

    if n <= 10:
        return [colormaps["tab10"](i) for i in range(n)]
    # tab20 holds 10 hue pairs (dark, light): all dark hues first, then the light ones
    cmap = colormaps["tab20"]
    idx = [*range(0, 20, 2), *range(1, 20, 2)]
    return [cmap(idx[i % 20]) for i in range(n)]


def plot_comparison(
    results: Sequence[EvaluationResult],
    metrics: Sequence[str],
    path: str | None = None,
    title: str | None = None,
    confidence: float = 0.95,
    *,
    bounds: Mapping[str, tuple[float | None, float | None]] | None = None,
    sort_by: str | None = None,
    dpi: int = 120,
) -> Figure:
    """Horizontal bar chart, one panel per metric, one bar per policy with its confidence interval.

    Policies keep one colour and one row across all panels, so a reader can follow a policy along
    a row. Intervals are clipped to the metric's valid range (e.g. a latency or a violation rate
    cannot be negative; see :func:`metric_info`), and each x-axis is labelled with the unit.

    Args:
        results: one :class:`EvaluationResult` per policy (typically the same seeds).
        metrics: metric names to plot (one panel each), e.g. ``["latency_ms", "return"]``.
        path: if given, the figure is also written there (format from the suffix, e.g. ``.png``).
        title: figure title; default ``"<env>: mean and <confidence> CI over <n> episodes"``.
        confidence: two-sided level of the Student-t interval, in (0, 1).
        bounds: metric -> ``(lower, upper)`` valid range, overriding :func:`metric_info`.
        sort_by: order the rows by this metric's mean (best-to-worst is up to the reader; the
            smallest is at the top); default: the order of ``results``.
        dpi: resolution of the saved file.

    Returns:
        The :class:`matplotlib.figure.Figure` (not registered with pyplot).

    Raises:
        ValueError: ``results`` or ``metrics`` empty, or ``sort_by`` not one of ``metrics``.
        KeyError: a metric no result recorded (the message lists the recorded names).
        ImportError: matplotlib missing (install the ``plot`` extra).
    """
    require("matplotlib", "plot", "plot_comparison")
    from matplotlib.figure import Figure

    results = list(results)
    metrics = list(metrics)
    if not results or not metrics:
        raise ValueError("results and metrics must be non-empty")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    check_metrics(results, metrics)
    stats = {m: [_stat(r, m, confidence) for r in results] for m in metrics}
    order = list(range(len(results)))
    if sort_by is not None:
        if sort_by not in stats:
            raise ValueError(f"sort_by must be one of the plotted metrics {metrics}, got {sort_by!r}")
        order.sort(key=lambda i: (math.isnan(stats[sort_by][i][0]), stats[sort_by][i][0]))
    names = [results[i].policy for i in order]
    colours = _policy_colours(len(results))
    colours = [colours[i] for i in order]
    n_pol = len(results)
    width = 3.4 * len(metrics) + 1.6
    height = 0.32 * n_pol + 1.5
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    y = list(range(n_pol))
    for k, (ax, m) in enumerate(zip(axes, metrics, strict=True)):
        label, unit, lo, hi = metric_info(m)
        if bounds and m in bounds:
            lo, hi = bounds[m]
        means, err_lo, err_hi = [], [], []
        for i in order:
            mu, half = stats[m][i]
            half = 0.0 if math.isnan(half) else half
            a, b = mu - half, mu + half
            if lo is not None:
                a = max(a, lo)
            if hi is not None:
                b = min(b, hi)
            means.append(mu)
            err_lo.append(max(mu - a, 0.0))
            err_hi.append(max(b - mu, 0.0))
        ax.barh(y, means, xerr=[err_lo, err_hi], color=colours, alpha=0.9, capsize=2.5,
                error_kw={"elinewidth": 1.0, "ecolor": "0.2"}, height=0.7)
        ax.set_title(m, fontsize=10, family="monospace")
        ax.set_xlabel(f"{label} ({unit})" if unit else label, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=8)
        if lo is not None and all(v >= lo for v in means):
            ax.set_xlim(left=lo)
        if k == 0:
            ax.set_yticks(y, names)
            ax.invert_yaxis()
    if title is None:
        n = len(results[0].episodes)
        title = f"{results[0].env}: mean and {confidence:.0%} CI over {n} episodes"
    fig.suptitle(title, fontsize=11)
    if path is not None:
        fig.savefig(path, dpi=dpi)
    return fig


def figure_to_rgb(fig: Figure) -> np.ndarray:
    """Rasterise ``fig`` with an Agg canvas attached to this figure only (the pyplot backend, if
    any, is untouched): ``uint8 (H, W, 3)`` with ``H, W`` = figure size in inches times its dpi.

    This is how every ``render_mode="rgb_array"`` frame of the library is made.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.ascontiguousarray(np.asarray(canvas.buffer_rgba())[:, :, :3], dtype=np.uint8)


class EpisodeHistory:
    """The measurements of the episode so far, kept by a renderer (one entry per control interval).

    A measurement whose ``time_s`` is not after the last one's starts a new episode's history; the
    same measurement object twice is recorded once (an env may hand it over from ``reset`` and
    ``render``). Renderers of every family subclass it.
    """

    def __init__(self) -> None:
        self.history: list = []
        self._last = None

    def reset(self) -> None:
        """Forget the history (a new episode)."""
        self.history = []
        self._last = None

    def append(self, m, entry=None) -> bool:
        """Record measurement ``m`` (stored as ``entry`` if given); returns ``False`` for a repeat of the last."""
        last = self._last
        if last is not None:
            if m is last:
                return False
            if m.time_s <= last.time_s:
                self.history = []
        self._last = m
        self.history.append(m if entry is None else entry)
        return True

