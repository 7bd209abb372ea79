"""``render_mode="rgb_array"`` frames of the FaaS autoscaling env (needs the ``plot`` extra: matplotlib).

A frame shows the episode so far, one control interval per point, on a shared time axis:

1. demand: arrival rate and throughput (requests/s), dropped requests marked;
2. replicas: ready and desired replicas against ``max_replicas``;
3. response time: mean response time of the interval against the SLO (ms), intervals over the
   SLO shaded;
4. cold starts per interval (bars; the running total for episodes over 120 intervals) and the
   gateway queue at the end of the interval.

The renderer keeps its own history of :class:`~faas_gym.backends.base.FaasMeasurement` records
(the env hands it each measurement); it reads nothing else from the env. Frames are drawn on a
figure with its own Agg canvas, so rendering never changes the matplotlib backend.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lwmecps_gym.core.optional import require
from lwmecps_gym.core.plotting import EpisodeHistory

#: Frame size, pixels (width, height).
FRAME_SIZE = (960, 720)

# legends sit above each panel, right-aligned, next to the panel's left-aligned title
_LEGEND = {"fontsize": 7, "loc": "lower right", "bbox_to_anchor": (1.0, 1.0), "frameon": False,
           "borderaxespad": 0.1}


class FaasRenderer(EpisodeHistory):
    """Accumulates an episode's measurements and draws them.

    Args:
        slo_ms: the response-time SLO, ms (drawn as a line).
        max_replicas: the replica cap (drawn as a line).
        title: prefix of the frame title (e.g. the env id).

    A measurement whose ``time_s`` is not after the last one starts a new episode's history.
    """

    def __init__(self, slo_ms: float, max_replicas: int, title: str = "FaaS autoscaling"):
        self.slo_ms = float(slo_ms)
        self.max_replicas = int(max_replicas)
        self.title = title
        super().__init__()

    def record(self, m: Any) -> None:
        """Append measurement ``m`` (a ``FaasMeasurement``); the same object twice is recorded once."""
        self.append(m)

    def _series(self) -> dict[str, np.ndarray]:
        h = self.history

        def col(name: str) -> np.ndarray:
            return np.array([np.nan if getattr(m, name) is None else float(getattr(m, name)) for m in h])

        return {n: col(n) for n in (
            "time_s", "window_s", "replicas", "replicas_desired", "request_rate_rps", "throughput_rps",
            "response_time_ms", "cold_starts", "queue_length", "dropped", "slo_violation_rate", "completed",
        )}

    def figure(self):
        """The current frame as a :class:`matplotlib.figure.Figure` (not registered with pyplot)."""
        require("matplotlib", "plot", "render_mode='rgb_array'")
        from matplotlib.figure import Figure

        fig = Figure(figsize=(FRAME_SIZE[0] / 100, FRAME_SIZE[1] / 100), dpi=100, layout="constrained")
        axes = fig.subplots(4, 1, sharex=True, height_ratios=[1, 1, 1.1, 0.9])
        if not self.history:
            fig.suptitle(f"{self.title}: no measurement yet (call reset)")
            return fig
        s = self._series()
        hours = s["time_s"][-1] > 3 * 3600
        scale, unit = (3600.0, "h") if hours else (60.0, "min")
        t = s["time_s"] / scale
        w = s["window_s"] / scale

        ax = axes[0]
        ax.plot(t, s["request_rate_rps"], color="tab:blue", lw=1.4, label="arrivals")
        ax.plot(t, s["throughput_rps"], color="tab:green", lw=1.2, ls="--", label="throughput")
        drop = s["dropped"] > 0
        if drop.any():
            ax.scatter(t[drop], s["request_rate_rps"][drop], color="tab:red", marker="x", s=22, zorder=3,
                       label="requests dropped")
        ax.set_ylabel("requests/s")
        ax.set_ylim(bottom=0)
        ax.set_title("demand", fontsize=9, loc="left")
        ax.legend(**_LEGEND, ncol=3)

        ax = axes[1]
        ax.step(t, s["replicas"], where="post", color="tab:blue", lw=1.6, label="ready")
        ax.step(t, s["replicas_desired"], where="post", color="tab:orange", lw=1.2, ls="--", label="desired")
        ax.axhline(self.max_replicas, color="0.4", lw=0.8, ls=":", label=f"max_replicas = {self.max_replicas}")
        ax.set_ylabel("replicas")
        ax.set_ylim(0, self.max_replicas * 1.1 + 0.5)
        ax.set_title("replicas", fontsize=9, loc="left")
        ax.legend(**_LEGEND, ncol=3)

        ax = axes[2]
        rt = s["response_time_ms"].copy()
        rt[s["completed"] == 0] = np.nan  # no request finished: no response time to show
        ax.plot(t, rt, color="tab:purple", lw=1.4, marker="." if len(t) < 60 else None, label="mean response time")
        ax.axhline(self.slo_ms, color="tab:red", lw=1.0, ls="--", label=f"SLO {self.slo_ms:g} ms")
        over = np.nan_to_num(rt, nan=0.0) > self.slo_ms
        for k in np.flatnonzero(over):
            ax.axvspan(t[k] - w[k], t[k], color="tab:red", alpha=0.12, lw=0)
        finite = rt[np.isfinite(rt)]
        if finite.size and finite.max() > 20 * max(finite.min(), 1e-9):
            from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        else:
            ax.set_ylim(bottom=0)
        ax.set_ylabel("ms")
        v = s["slo_violation_rate"]
        done = np.nan_to_num(s["completed"], nan=0.0)
        vr = float(np.nansum(v * done) / done.sum()) if done.sum() > 0 and np.isfinite(v).any() else math.nan
        ax.set_title(f"response time vs SLO (violation rate so far {vr:.1%})", fontsize=9, loc="left")
        ax.legend(**_LEGEND, ncol=2)

        ax = axes[3]
        total_cold = int(np.nansum(s["cold_starts"]))
        if len(t) <= 120:  # bars per interval while they stay readable, else the running total
            ax.bar(t - w / 2, s["cold_starts"], width=w * 0.9, color="tab:cyan", label="cold starts")
            cold_title = f"cold starts per interval ({total_cold} so far) and queue"
        else:
            ax.plot(t, np.nancumsum(s["cold_starts"]), color="tab:cyan", lw=1.6, label="cold starts (cumulative)")
            cold_title = f"cold starts, cumulative ({total_cold} so far), and queue"
        ax.set_ylabel("cold starts")
        ax.set_ylim(bottom=0)
        from matplotlib.ticker import MaxNLocator

        ax.yaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        q = ax.twinx()
        q.plot(t, s["queue_length"], color="0.3", lw=1.0, label="queue length")
        q.set_ylabel("queue (requests)", fontsize=8)
        q.set_ylim(bottom=0)
        ax.set_title(cold_title, fontsize=9, loc="left")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = q.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, **_LEGEND, ncol=2)
        ax.set_xlabel(f"episode time ({unit})")
        ax.set_xlim(0, max(t[-1], w[0]) * 1.02)

        last = self.history[-1]
        fig.suptitle(
            f"{self.title}   t = {last.time_s / scale:.1f} {unit}   ready/desired {last.replicas}/"
            f"{last.replicas_desired}   dropped so far {int(np.nansum(s['dropped']))}",
            fontsize=10,
        )
        return fig

    def frame(self) -> np.ndarray:
        """The current frame, ``uint8 (720, 960, 3)``."""
        from lwmecps_gym.core.plotting import figure_to_rgb

        return figure_to_rgb(self.figure())
