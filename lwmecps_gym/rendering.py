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
    """Text table of the last window of ``lwmecps-v3`` (one row per deployment)."""
    lines = [
        f"lwmecps-v3 | scenario {env.scenario.name} | t={_hms(env._tod)} | step {env._steps} | "
        f"reward {env._last_reward:+.3f}",
        f"{'deployment':<34} {'node':<18} {'demand rps':>10} {'ready':>5} {'desired':>7} {'latency ms':>10} {'load':>5}",
    ]
    b = env.backend
    ready = b.ready if env._is_sim else env._last_ready
    desired = b.desired if env._is_sim else env._last_desired
    dem = b.last_demand if env._is_sim else env._last_dem
    lat = b.last_latency_ms if env._is_sim else env._last_lat
    load = b.last_load if env._is_sim else env._last_load
    nodes = env.node_names
    for i, dep in enumerate(env.deployments):
        node = nodes[i] if len(nodes) == len(env.deployments) else "(spread)"
        lines.append(
            f"{dep[:34]:<34} {node[:18]:<18} {dem[i]:>10.1f} {ready[i]:>5d} {desired[i]:>7d} {lat[i]:>10.1f} {load[i]:>5.2f}"
        )
    m = env._last_metrics_view() if hasattr(env, "_last_metrics_view") else {}
    if m:
        lines.append(" | ".join(f"{k} {v:.3g}" for k, v in m.items()))
    return "\n".join(lines) + "\n"


def placement_ansi(env: Any) -> str:
    """Text table of the last window of ``lwmecps-v0``/``v2`` (one row per node)."""
    lines = [
        f"lwmecps-v{env.version} | scenario {env.scenario.name} | t={_hms(env._tod)} | step {env._steps} | "
        f"deployment {env.deployment_name} on {env.node_names[env._node]} | reward {env._last_reward:+.3f}",
        f"{'node':<20} {'pods':>4} {'est. latency ms':>15}",
    ]
    for j, nm in enumerate(env.node_names):
        lines.append(f"{nm[:20]:<20} {env._pods[j]:>4d} {env._node_latency[j]:>15.1f}")
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
    import matplotlib

    matplotlib.use("Agg", force=False)
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
    """Map frame of ``lwmecps-v3``: node squares sized by ready replicas, labels ``ready/desired``."""
    b = env.backend
    ready = list(b.ready) if env._is_sim else list(env._last_ready)
    desired = list(b.desired) if env._is_sim else list(env._last_desired)
    if len(ready) != env.scenario.n_nodes:  # single spread deployment: per-node pods
        per_node = b.pods_per_node() if env._is_sim else np.zeros((1, env.scenario.n_nodes), dtype=int)
        ready = [int(x) for x in per_node.sum(axis=0)]
        desired = ready
    title = f"{env.scenario.name}  {_hms(env._tod)}  reward {env._last_reward:+.3f}"
    return map_rgb(env, ready, desired, title)


def placement_rgb(env: Any) -> np.ndarray:
    """Map frame of ``lwmecps-v0``/``v2``: the node hosting the deployment in red."""
    title = f"{env.scenario.name}  {_hms(env._tod)}  {env.deployment_name} on {env.node_names[env._node]}"
    return map_rgb(env, list(env._pods), list(env._pods), title, highlight=env._node)
