"""``render_mode="rgb_array"`` frames of the MARLLB load-balancing envs (needs the ``plot`` extra).

Single agent (:class:`LBRenderer`), one frame:

* per-server weights set by the agent (inactive servers hatched);
* per-server flows: busy workers and backlog queue (ground truth), and the agent LB's own
  ``n_flow_on`` count (diamonds);
* per-server CPU utilisation over the last interval;
* flow completion time over the episode so far: the mean FCT of the flows completed in each
  interval and the running mean since the episode start (s), with the flows in the system.

Multi-agent (:class:`MultiLBRenderer`): the same panels with one bar per load balancer in the
weights and ``n_flow_on`` panels.

The renderers keep their own history of what the env hands them each step (the measurement,
the weights, the step's metrics); they read nothing from the env. Frames are drawn on a figure
with its own Agg canvas, so rendering never changes the matplotlib backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lwmecps_gym.core.optional import require
from lwmecps_gym.core.plotting import EpisodeHistory

#: Frame size, pixels (width, height).
FRAME_SIZE = (960, 720)

_LEGEND = {"fontsize": 7, "loc": "lower right", "bbox_to_anchor": (1.0, 1.0), "frameon": False,
           "borderaxespad": 0.1}


def _new_figure(title: str):
    require("matplotlib", "plot", "render_mode='rgb_array'")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(FRAME_SIZE[0] / 100, FRAME_SIZE[1] / 100), dpi=100, layout="constrained")
    gs = fig.add_gridspec(2, 3, height_ratios=[1.0, 0.9])
    axes = [fig.add_subplot(gs[0, k]) for k in range(3)] + [fig.add_subplot(gs[1, :])]
    fig.suptitle(title, fontsize=10)
    return fig, axes


def _server_ticks(ax, n: int, capacity: np.ndarray | None) -> None:
    labels = [f"s{j}" if capacity is None else f"s{j}\n{capacity[j]:g}" for j in range(n)]
    ax.set_xticks(range(n), labels, fontsize=7)
    ax.set_xlabel("server" if capacity is None else "server (CPUs)", fontsize=7)


def _fct_panel(ax, t: np.ndarray, fct_sum: np.ndarray, completed: np.ndarray, in_system: np.ndarray) -> None:
    with np.errstate(invalid="ignore", divide="ignore"):
        per = np.where(completed > 0, fct_sum / completed, np.nan)
        cum_c = np.cumsum(np.nan_to_num(completed))
        run = np.where(cum_c > 0, np.cumsum(np.nan_to_num(fct_sum)) / cum_c, np.nan)
    ax.plot(t, per, color="tab:purple", lw=0.9, alpha=0.55, label="mean FCT of the interval's flows")
    ax.plot(t, run, color="tab:purple", lw=2.0, label="running mean FCT")
    ax.set_ylabel("flow completion time (s)")
    ax.set_xlabel("episode time (s)")
    ax.set_ylim(bottom=0)
    q = ax.twinx()
    q.plot(t, in_system, color="0.45", lw=0.9, ls="--", label="flows in system")
    q.set_ylabel("flows in system", fontsize=8)
    q.set_ylim(bottom=0)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = q.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, ncol=3, **_LEGEND)
    last = run[np.isfinite(run)]
    so_far = f"{last[-1]:.3g} s" if last.size else "no flow completed yet"
    ax.set_title(f"flow completion time so far (running mean {so_far})", fontsize=9, loc="left")
    if t.size:
        ax.set_xlim(0, max(float(t[-1]), 1e-9) * 1.02)


def _cpu_panel(ax, util: np.ndarray, capacity: np.ndarray | None) -> None:
    n = util.size
    ax.bar(range(n), np.clip(np.nan_to_num(util), 0.0, 1.0), color="tab:red", alpha=0.8)
    ax.axhline(1.0, color="0.4", lw=0.8, ls=":")
    ax.set_ylim(0, 1.08)
    ax.set_ylabel("CPU utilisation (fraction)")
    _server_ticks(ax, n, capacity)
    ax.set_title("CPU use (last interval)", fontsize=9, loc="left")


class LBRenderer(EpisodeHistory):
    """History and frames of the single-agent :class:`~marllb_env.env.LoadBalanceEnv`.

    Args:
        title: prefix of the frame title (e.g. the env id).
    """

    def __init__(self, title: str = "MARLLB load balancing"):
        self.title = title
        super().__init__()
        self.capacity: np.ndarray | None = None

    def record(self, m: Any, weights: Sequence[float], capacity: Sequence[float] | None = None) -> None:
        """Append one interval.

        Args:
            m: the :class:`~marllb_env.backend.LBMeasurement` at the end of the interval (the same
                object twice is recorded once; a ``time_s`` not after the last starts a new episode).
            weights: ``(n_servers,)`` weights in force during the interval.
            capacity: ``(n_servers,)`` CPUs per server, for the axis labels (optional).
        """
        if self.append(m, (m, np.array(weights, dtype=float))) and capacity is not None:
            self.capacity = np.asarray(capacity, dtype=float)

    def figure(self):
        """The current frame as a :class:`matplotlib.figure.Figure` (not registered with pyplot)."""
        if not self.history:
            fig, _ = _new_figure(f"{self.title}: no measurement yet (call reset)")
            return fig
        m, w = self.history[-1]
        n = w.size
        fig, (aw, af, ac, at) = _new_figure(f"{self.title}   t = {m.time_s:.2f} s   interval {len(self.history) - 1}")
        active = np.asarray(m.active, dtype=bool)
        bars = aw.bar(range(n), w, color=["tab:blue" if a else "0.8" for a in active])
        for b, a in zip(bars, active, strict=True):
            if not a:
                b.set_hatch("//")
        aw.set_ylabel("weight")
        aw.set_ylim(0, max(float(w.max()), 1e-9) * 1.15)
        _server_ticks(aw, n, self.capacity)
        aw.set_title("weights (grey: inactive)", fontsize=9, loc="left")

        gt = np.asarray(m.ground_truth, dtype=float)
        if np.isfinite(gt).all():
            af.bar(range(n), gt[:, 1], color="tab:green", label="busy workers")
            af.bar(range(n), gt[:, 2], bottom=gt[:, 1], color="tab:orange", label="queue")
        af.scatter(range(n), np.asarray(m.features)[:, 0], marker="D", color="k", s=18, zorder=3,
                   label="this LB's n_flow_on")
        af.set_ylabel("flows")
        top = np.nanmax(np.concatenate([gt[:, 1] + gt[:, 2], np.asarray(m.features)[:, 0]]))
        af.set_ylim(0, max(float(np.nan_to_num(top)), 1.0) * 1.35)
        _server_ticks(af, n, self.capacity)
        af.set_title("flows per server", fontsize=9, loc="left")
        af.legend(ncol=1, fontsize=6, loc="upper left", framealpha=0.8)

        _cpu_panel(ac, gt[:, 0] if np.isfinite(gt).all() else np.full(n, np.nan), self.capacity)

        hist = [h[0] for h in self.history]
        t = np.array([h.time_s for h in hist]) - hist[0].time_s
        fs = [h.flow_stats for h in hist]
        fct_sum = np.array([f.get("fct_sum_s", np.nan) for f in fs], dtype=float)
        completed = np.array([f.get("completed", np.nan) for f in fs], dtype=float)
        in_system = np.array([np.nansum(np.asarray(h.ground_truth)[:, 1:]) for h in hist])
        _fct_panel(at, t, fct_sum, completed, in_system)
        return fig

    def frame(self) -> np.ndarray:
        """The current frame, ``uint8 (720, 960, 3)``."""
        from lwmecps_gym.core.plotting import figure_to_rgb

        return figure_to_rgb(self.figure())


class MultiLBRenderer:
    """History and frames of the multi-agent :class:`~marllb_env.multi_agent.MultiLoadBalanceEnv`.

    Args:
        n_lbs: number of load balancers.
        capacity: ``(n_servers,)`` CPUs per server (axis labels).
        title: prefix of the frame title.
    """

    def __init__(self, n_lbs: int, capacity: Sequence[float] | None = None, title: str = "MARLLB, several LBs"):
        self.n_lbs = int(n_lbs)
        self.capacity = None if capacity is None else np.asarray(capacity, dtype=float)
        self.title = title
        self.reset()

    def reset(self) -> None:
        """Forget the history (a new episode)."""
        self.t: list[float] = []
        self.fct_sum: list[float] = []
        self.completed: list[float] = []
        self.in_system: list[float] = []
        self.weights: np.ndarray | None = None
        self.n_flow_on: np.ndarray | None = None
        self.util: np.ndarray | None = None

    def record(
        self,
        time_s: float,
        weights: np.ndarray | None,
        n_flow_on: np.ndarray,
        util: np.ndarray,
        metrics: dict[str, float] | None,
        in_system: float,
    ) -> None:
        """Append one interval (``time_s`` not after the last starts a new episode).

        Args:
            time_s: time at the end of the interval, s.
            weights: ``(n_lbs, n_servers)`` weights in force (``None`` at reset: all ones).
            n_flow_on: ``(n_lbs, n_servers)`` each LB's flow count per server.
            util: ``(n_servers,)`` CPU utilisation over the interval.
            metrics: the step's ``info["metrics"]`` (``fct_mean_s``, ``completed``), ``None`` at reset.
            in_system: flows in the system (all servers).
        """
        if self.t and time_s <= self.t[-1]:
            self.reset()
        nf = np.asarray(n_flow_on, dtype=float)
        self.weights = np.ones_like(nf) if weights is None else np.asarray(weights, dtype=float)
        self.n_flow_on = nf
        self.util = np.asarray(util, dtype=float)
        self.t.append(float(time_s))
        c = float((metrics or {}).get("completed", 0.0))
        self.completed.append(c)
        self.fct_sum.append(float((metrics or {}).get("fct_mean_s", 0.0)) * c)
        self.in_system.append(float(in_system))

    def figure(self):
        """The current frame as a :class:`matplotlib.figure.Figure` (not registered with pyplot)."""
        if not self.t:
            fig, _ = _new_figure(f"{self.title}: no measurement yet (call reset)")
            return fig
        fig, (aw, af, ac, at) = _new_figure(f"{self.title}   t = {self.t[-1]:.2f} s   interval {len(self.t) - 1}")
        from matplotlib import colormaps

        cmap = colormaps["tab10"]
        m, n = self.weights.shape
        width = 0.8 / m
        for i in range(m):
            x = np.arange(n) - 0.4 + width * (i + 0.5)
            aw.bar(x, self.weights[i], width=width, color=cmap(i % 10), label=f"lb_{i}")
            af.bar(x, self.n_flow_on[i], width=width, color=cmap(i % 10), label=f"lb_{i}")
        aw.set_ylabel("weight")
        aw.set_ylim(0, max(float(self.weights.max()), 1e-9) * 1.15)
        aw.set_title("weights per LB", fontsize=9, loc="left")
        af.set_ylabel("flows (n_flow_on)")
        af.set_ylim(0, max(float(self.n_flow_on.max()), 1.0) * 1.35)
        af.set_title("flows per LB", fontsize=9, loc="left")
        for ax in (aw, af):
            _server_ticks(ax, n, self.capacity)
        aw.set_ylim(0, max(float(self.weights.max()), 1e-9) * 1.35)
        aw.legend(ncol=min(m, 4), fontsize=6, loc="upper left", framealpha=0.8)
        _cpu_panel(ac, self.util, self.capacity)
        t = np.asarray(self.t) - self.t[0]
        _fct_panel(at, t, np.asarray(self.fct_sum), np.asarray(self.completed), np.asarray(self.in_system))
        return fig

    def frame(self) -> np.ndarray:
        """The current frame, ``uint8 (720, 960, 3)``."""
        from lwmecps_gym.core.plotting import figure_to_rgb

        return figure_to_rgb(self.figure())
