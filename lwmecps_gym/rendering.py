"""Rendering of the MEC envs: ``"ansi"`` text tables and ``"rgb_array"`` maps (matplotlib, lazy import).

The map (:class:`MapRenderer`) shows base stations, users coloured by the edge site serving them,
edge sites sized by ready replicas and filled by their latency, with a legend, a colour bar, a km
scale bar and a timeline strip of latency and replicas over the episode so far; scenarios without
coordinates are drawn on a circle. Frames are ``uint8 (720, 960, 3)``, drawn on a figure with its
own Agg canvas (the matplotlib backend is never changed).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from lwmecps_gym.core.optional import require
from lwmecps_gym.core.plotting import EpisodeHistory

#: Size of rendered frames (pixels).
FRAME_W, FRAME_H = 960, 720


def _hms(tod_s: float) -> str:
    h = int(tod_s // 3600) % 24
    m = int(tod_s % 3600 // 60)
    return f"{h:02d}:{m:02d}"


def scaling_ansi(env: Any) -> str:
    """Text table of the last window of the scaling env (one row per deployment).

    Reads only public API: ``env.last_measurement`` and the env's ``info``/``reward`` of it.
    """
    m = env.last_measurement
    if m is None:
        return "(reset the env before rendering)\n"
    info = env.info(m)
    lines = [
        f"{env.spec.id if env.spec else 'lwmecps_gym/Scaling'} | scenario {env.scenario.name} | "
        f"t={_hms(info['time_of_day_s'])} | +{m.time_s:.0f} s | reward {env.reward(m):+.3f}",
        f"{'deployment':<34} {'node':<18} {'demand rps':>10} {'ready':>5} {'desired':>7} {'latency ms':>10} {'load':>5}",
    ]
    nodes = env.node_names
    dem, ready, desired = info["demand_rps"], info["replicas_ready"], info["replicas_desired"]
    lat, load = info["latency_ms"], info["load"]
    for i, dep in enumerate(env.deployments):
        node = nodes[i] if len(nodes) == len(env.deployments) else "(spread)"
        lines.append(
            f"{dep[:34]:<34} {node[:18]:<18} {dem[i]:>10.1f} {ready[i]:>5d} {desired[i]:>7d} {lat[i]:>10.1f} {load[i]:>5.2f}"
        )
    lines.append(" | ".join(f"{k} {v:.3g}" for k, v in info["metrics"].items()))
    return "\n".join(lines) + "\n"


def placement_ansi(env: Any) -> str:
    """Text table of the last window of a placement env (one row per node)."""
    m = env.last_measurement
    if m is None:
        return "(reset the env before rendering)\n"
    info = env.info(m)
    node = info["node"]
    lines = [
        f"{env.spec.id if env.spec else 'lwmecps_gym/Placement'} | scenario {env.scenario.name} | "
        f"t={_hms(info['time_of_day_s'])} | +{m.time_s:.0f} s | "
        f"deployment {env.deployment_name} on {env.node_names[node]} | reward {env.reward(m):+.3f}",
        f"{'node':<20} {'pods':>4} {'est. latency ms':>15}",
    ]
    for j, nm in enumerate(env.node_names):
        lines.append(f"{nm[:20]:<20} {info['node_pods'][j]:>4d} {info['node_latency_ms'][j]:>15.1f}")
    return "\n".join(lines) + "\n"


def _coords(sc: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, bool]:
    """Node x/y, base-station x/y (or ``None``) and whether the layout is geographic (lon/lat)."""
    if sc.node_lat is not None:
        bs = (sc.bs_lon, sc.bs_lat) if sc.bs_lat is not None else (sc.node_lon, sc.node_lat)
        return np.asarray(sc.node_lon), np.asarray(sc.node_lat), np.asarray(bs[0]), np.asarray(bs[1]), True
    n = sc.n_nodes
    ang = 2 * math.pi * np.arange(n) / max(n, 1)
    return np.cos(ang), np.sin(ang), None, None, False


def serving_site(sc: Any, ready: Sequence[int]) -> np.ndarray:
    """``int64 (n_users,)``: the site serving each user of a per-site (pinned) scenario, ``-1`` if none.

    A user is served by its home site (the node of its home base station) while that site has a
    ready replica; otherwise by the first site with one in the failover order, sites sorted by the
    RTT from the home site's users (:meth:`~lwmecps_gym.scenarios.Scenario.site_rtt_ms`), as the
    simulator routes them; ``-1`` when no site has a ready replica.
    """
    home = sc.bs_home_node()[sc.user_bs]
    ready = np.asarray(ready)
    if not sc.pinned:
        return home
    site_rtt = sc.site_rtt_ms()
    serve = np.empty(sc.n_nodes, dtype=np.int64)
    for d in range(sc.n_nodes):
        if ready[d] > 0:
            serve[d] = d
            continue
        order = [int(e) for e in np.argsort(site_rtt[d], kind="stable") if e != d and ready[e] > 0]
        serve[d] = order[0] if order else -1
    return serve[home]


def _scale_bar(ax: Any, lon: np.ndarray, lat: np.ndarray) -> None:
    """A scale bar (km) in the lower left of a lon/lat map (equirectangular, at the mean latitude)."""
    km_per_deg = 111.32 * math.cos(math.radians(float(np.mean(lat))))
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    width_km = (x1 - x0) * km_per_deg
    length = next(v for v in (0.1, 0.2, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500) if v >= width_km / 6)
    xa, ya = x0 + 0.04 * (x1 - x0), y0 + 0.05 * (y1 - y0)
    ax.plot([xa, xa + length / km_per_deg], [ya, ya], color="k", lw=3, solid_capstyle="butt", zorder=6)
    ax.annotate(f"{length:g} km", (xa, ya), xytext=(0, 4), textcoords="offset points", fontsize=8, zorder=6)


class MapRenderer(EpisodeHistory):
    """``rgb_array`` frames of the MEC envs: a map of the scenario over a timeline strip.

    Map: base stations (grey dots); users (small dots) coloured by the site serving them
    (:func:`serving_site`; users no site can serve as black crosses); edge sites as squares
    sized by ready replicas, filled by the last window's mean latency of their requests (colour
    bar, ms; the SLA marked), edged in the site's colour and labelled ``name``,
    ``ready/desired replicas`` and ``demand``; a km scale bar on geographic scenarios (others are
    drawn on a circle). Placement envs outline the node hosting the deployment in red.
    Timeline: mean latency (ms) against the SLA and ready replicas over the episode so far.

    The env hands the renderer each measurement (:meth:`record`); the frame reads only the env's
    public API (``scenario``, ``last_measurement``, ``info(m)``, ``sla_ms``). A measurement whose
    ``time_s`` is not after the last one starts a new episode's history.
    """

    def record(self, m: Any) -> None:
        """Append measurement ``m`` (a ``ClusterMeasurement``); the same object twice counts once."""
        self.append(m)

    def figure(self, env: Any) -> Any:
        """The current frame of ``env`` as a :class:`matplotlib.figure.Figure` (not registered with pyplot)."""
        require("matplotlib", "plot", "render_mode='rgb_array'")
        from matplotlib import colormaps
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D

        m = env.last_measurement
        if m is None:
            raise RuntimeError("render() before reset(): nothing to draw yet")
        self.record(m)
        info = env.info(m)
        sc = env.scenario
        placement = "node" in info
        if placement:
            node = int(info["node"])
            ready = list(info["node_pods"])
            desired = ready
            lat = np.asarray(info["node_latency_ms"], dtype=float)
            dem = np.zeros(sc.n_nodes)
            dem[node] = float(info["demand_rps"])
        else:
            node = None
            ready, desired = list(info["replicas_ready"]), list(info["replicas_desired"])
            lat = np.asarray(info["latency_ms"], dtype=float)
            dem = np.asarray(info["demand_rps"], dtype=float)
            if len(ready) != sc.n_nodes:  # one deployment spread over the nodes: pods per node
                ready = desired = [int(x) for x in m.pods_per_node.sum(axis=0)]
                lat = np.full(sc.n_nodes, float(m.mean_latency_ms))
                dem = np.full(sc.n_nodes, float(np.sum(info["demand_rps"])) / sc.n_nodes)
        sla = float(env.sla_ms)

        fig = Figure(figsize=(FRAME_W / 100, FRAME_H / 100), dpi=100, layout="constrained")
        gs = fig.add_gridspec(2, 2, height_ratios=[3.0, 1.0], width_ratios=[40, 1])
        ax = fig.add_subplot(gs[0, 0])
        cax = fig.add_subplot(gs[0, 1])
        tax = fig.add_subplot(gs[1, :])
        # tab10 without its grey (the base stations' colour), then tab20's light hues
        palette = [colormaps["tab10"](k) for k in (0, 1, 2, 3, 4, 5, 6, 8, 9)]
        palette += [colormaps["tab20"](k) for k in range(1, 20, 2) if k != 15]
        site_colours = [palette[j % len(palette)] for j in range(sc.n_nodes)]
        nx, ny, bx, by, geo = _coords(sc)
        if bx is not None:
            ax.scatter(bx, by, s=7, c="0.72", zorder=1)
        if geo and sc.user_lat is not None and sc.n_users:
            serve = serving_site(sc, ready) if not placement else np.full(sc.n_users, node)
            ok = serve >= 0
            ax.scatter(np.asarray(sc.user_lon)[ok], np.asarray(sc.user_lat)[ok], s=3, alpha=0.6, zorder=2,
                       c=[site_colours[k] for k in serve[ok]])
            if (~ok).any():
                ax.scatter(np.asarray(sc.user_lon)[~ok], np.asarray(sc.user_lat)[~ok], s=8, marker="x",
                           c="k", lw=0.6, zorder=2)
        norm = Normalize(0.0, 2.0 * sla)
        cmap = colormaps["RdYlGn_r"]
        sizes = [90 + 45 * r for r in ready]
        edge = ["red" if (node is not None and j == node) else site_colours[j] for j in range(sc.n_nodes)]
        ax.scatter(nx, ny, s=sizes, marker="s", c=np.nan_to_num(lat), cmap=cmap, norm=norm, edgecolors=edge,
                   linewidths=2.5, zorder=4)
        for j in range(sc.n_nodes):
            label = f"{sc.node_names[j]}\n{ready[j]}/{desired[j]} repl."
            if not placement or j == node:
                label += f"\n{dem[j]:.0f} req/s, {lat[j]:.0f} ms"
            ax.annotate(label, (nx[j], ny[j]), fontsize=7, xytext=(7, 5), textcoords="offset points", zorder=5,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.7})
        cb = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), cax=cax)
        cb.set_label(f"site latency (ms); black line: SLA {sla:g} ms", fontsize=8)
        cb.ax.axhline(sla, color="k", lw=1.5)
        cb.ax.tick_params(labelsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal" if not geo else 1.0 / math.cos(math.radians(float(np.mean(ny)))), adjustable="datalim")
        if geo:
            ax.margins(0.06)
            _scale_bar(ax, nx, ny)
        else:
            ax.margins(0.3)
            ax.text(0.99, 0.01, "schematic layout (the scenario has no coordinates)", transform=ax.transAxes,
                    ha="right", va="bottom", fontsize=7, color="0.4")
        handles = []
        if bx is not None:
            handles.append(Line2D([], [], ls="", marker="o", ms=4, color="0.72", label="base station"))
        if geo and sc.user_lat is not None and sc.n_users:
            handles += [
                Line2D([], [], ls="", marker="o", ms=3, color=site_colours[0], label="user (colour: serving site)"),
                Line2D([], [], ls="", marker="x", ms=5, color="k", label="user with no reachable replica"),
            ]
        handles.append(Line2D([], [], ls="", marker="s", ms=9, mfc="0.9", mec="0.3",
                              label="edge site (size: ready replicas)"))
        if node is not None:
            handles.append(Line2D([], [], ls="", marker="s", ms=9, mfc="0.9", mec="red", mew=2,
                                  label=f"hosts {env.deployment_name}"))
        ax.legend(handles=handles, fontsize=7, loc="upper left", framealpha=0.85)
        name = env.spec.id if getattr(env, "spec", None) else type(env).__name__
        ax.set_title(f"{name}: {sc.name}   {_hms(info['time_of_day_s'])}   +{m.time_s / 60:.0f} min   "
                     f"reward {env.reward(m):+.3f}", fontsize=10)

        h = self.history
        t = np.array([x.time_s for x in h]) / 60.0
        tax.plot(t, [x.mean_latency_ms for x in h], color="tab:purple", lw=1.5, marker="." if len(h) < 40 else None,
                 label="mean latency")
        tax.axhline(sla, color="tab:red", ls="--", lw=1.0, label=f"SLA {sla:g} ms")
        tax.set_ylabel("latency (ms)", fontsize=8)
        tax.set_xlabel("episode time (min)", fontsize=8)
        tax.set_ylim(bottom=0)
        tax.set_xlim(0, max(float(t[-1]), 1e-9) * 1.01)
        tax.tick_params(labelsize=7)
        rax = tax.twinx()
        rax.step(t, [int(np.sum(x.replicas_ready)) for x in h], where="post", color="tab:blue", lw=1.2,
                 label="ready replicas")
        rax.set_ylabel("replicas", fontsize=8)
        rax.set_ylim(bottom=0)
        rax.tick_params(labelsize=7)
        h1, l1 = tax.get_legend_handles_labels()
        h2, l2 = rax.get_legend_handles_labels()
        tax.legend(h1 + h2, l1 + l2, fontsize=7, loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=3, frameon=False,
                   borderaxespad=0.1)
        return fig

    def frame(self, env: Any) -> np.ndarray:
        """The current frame, ``uint8 (FRAME_H, FRAME_W, 3)``."""
        from lwmecps_gym.core.plotting import figure_to_rgb

        return figure_to_rgb(self.figure(env))


def scaling_rgb(env: Any) -> np.ndarray:
    """One map frame of the scaling env without a history (the env's own renderer keeps one)."""
    return MapRenderer().frame(env)


def placement_rgb(env: Any) -> np.ndarray:
    """One map frame of a placement env without a history (the env's own renderer keeps one)."""
    return MapRenderer().frame(env)
