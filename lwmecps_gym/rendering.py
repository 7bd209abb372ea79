"""Rendering of the MEC envs: ``"ansi"`` text tables and ``"rgb_array"`` maps (matplotlib, lazy import).

The map shows base stations (grey dots), users (small dots, coloured by the edge site
serving them) and edge nodes (squares sized by ready replicas, labelled
``ready/desired``); scenarios without coordinates are drawn on a circle. Returns
``uint8 (H, W, 3)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: Size of rendered frames (pixels).
FRAME_W, FRAME_H = 640, 480


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


def _coords(sc: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    if sc.node_lat is not None:
        bs = (sc.bs_lon, sc.bs_lat) if sc.bs_lat is not None else (sc.node_lon, sc.node_lat)
        return np.asarray(sc.node_lon), np.asarray(sc.node_lat), np.asarray(bs[0]), np.asarray(bs[1])
    n = sc.n_nodes
    ang = 2 * math.pi * np.arange(n) / max(n, 1)
    return np.cos(ang), np.sin(ang), None, None


def map_rgb(env: Any, ready: list[int], desired: list[int], title: str, highlight: int | None = None) -> np.ndarray:
    """A map frame ``uint8 (FRAME_H, FRAME_W, 3)`` of the scenario with replicas per node."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    sc = env.scenario
    fig = Figure(figsize=(FRAME_W / 100, FRAME_H / 100), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(111)
    nx, ny, bx, by = _coords(sc)
    home = sc.bs_home_node()
    if bx is not None:
        ax.scatter(bx, by, s=6, c="0.75", label="base stations", zorder=1)
        if sc.user_lat is not None:
            ax.scatter(sc.user_lon, sc.user_lat, s=2, c=home[sc.user_bs], cmap="tab10", alpha=0.5, zorder=2)
    sizes = [60 + 40 * r for r in ready]
    colors = ["tab:red" if (highlight is not None and j == highlight) else "tab:blue" for j in range(len(nx))]
    ax.scatter(nx, ny, s=sizes, marker="s", c=colors, edgecolors="k", zorder=3)
    for j in range(len(nx)):
        r = ready[j] if j < len(ready) else 0
        dsr = desired[j] if j < len(desired) else 0
        ax.annotate(f"{sc.node_names[j]}\n{r}/{dsr}", (nx[j], ny[j]), fontsize=7, xytext=(4, 4),
                    textcoords="offset points", zorder=4)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    fig.canvas.draw()
    buf = np.asarray(fig.canvas.buffer_rgba())
    return np.ascontiguousarray(buf[:, :, :3], dtype=np.uint8)


def scaling_rgb(env: Any) -> np.ndarray:
    """Map frame of the scaling env: node squares sized by ready replicas, labels ``ready/desired``."""
    m = env.last_measurement
    if m is None:
        raise RuntimeError("render() before reset(): nothing to draw yet")
    info = env.info(m)
    ready, desired = list(info["replicas_ready"]), list(info["replicas_desired"])
    if len(ready) != env.scenario.n_nodes:  # single spread deployment: measured pods per node
        ready = [int(x) for x in m.pods_per_node.sum(axis=0)]
        desired = ready
    title = f"{env.scenario.name}  {_hms(info['time_of_day_s'])}  reward {env.reward(m):+.3f}"
    return map_rgb(env, ready, desired, title)


def placement_rgb(env: Any) -> np.ndarray:
    """Map frame of a placement env: the node hosting the deployment in red."""
    m = env.last_measurement
    if m is None:
        raise RuntimeError("render() before reset(): nothing to draw yet")
    info = env.info(m)
    node = info["node"]
    title = f"{env.scenario.name}  {_hms(info['time_of_day_s'])}  {env.deployment_name} on {env.node_names[node]}"
    return map_rgb(env, list(info["node_pods"]), list(info["node_pods"]), title, highlight=node)
