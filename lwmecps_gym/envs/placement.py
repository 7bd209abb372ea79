"""``lwmecps-v0`` / ``lwmecps-v2`` (and ``v1``): placement of one deployment on one of the edge nodes."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lwmecps_gym.core.seeding import make_streams
from lwmecps_gym.core.validation import check_choice, check_float, check_int
from lwmecps_gym.envs.common import build_setup, time_features, wallclock_time_of_day_s
from lwmecps_gym.scenarios import RESOURCE_KEYS, make_scenario

#: Latency features saturate at this multiple of ``sla_ms``.
LATENCY_MAX = 10.0
#: The demand feature saturates at this multiple of the deployment's capacity.
DEMAND_MAX = 2.0


class _PlacementEnv(gym.Env):
    """Shared implementation of v0 (raw units) and v2 (normalised); see :class:`LWMECPSEnv2`."""

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}
    version = 2

    def __init__(
        self,
        node_name: Sequence[str] | None = None,
        max_hardware: Mapping[str, float] | None = None,
        pod_usage: Mapping[str, float] | None = None,
        node_info: Mapping[str, Mapping[str, float]] | None = None,
        num_nodes: int | None = None,
        namespace: str = "default",
        deployment_name: str | None = None,
        deployments: Sequence[str] | None = None,
        max_pods: int | None = None,
        group_id: str | None = None,
        base_url: str | None = None,
        env_config: Mapping[str, Any] | None = None,
        stabilization_time: float | None = None,
        scenario: Any = None,
        scenario_options: Mapping[str, Any] | None = None,
        backend: Any = "sim",
        sim_config: Mapping[str, Any] | None = None,
        sla_ms: float | None = None,
        replicas: int | None = None,
        peak_utilisation: float = 0.7,
        w_latency: float = 1.0,
        w_sla: float = 1.0,
        w_migration: float = 0.1,
        initial_node: int = 0,
        obs_mode: str = "flat",
        render_mode: str | None = None,
    ):
        self.obs_mode = check_choice("obs_mode", obs_mode, ("flat", "dict"))
        self.render_mode = check_choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))
        self.w_latency = check_float("w_latency", w_latency, low=0.0)
        self.w_sla = check_float("w_sla", w_sla, low=0.0)
        self.w_migration = check_float("w_migration", w_migration, low=0.0)
        peak_utilisation = check_float("peak_utilisation", peak_utilisation, low=0.0, low_open=True)
        if replicas is not None:
            check_int("replicas", replicas, low=1)
        # Placement serves every user with one deployment: scale the per-user rate so that the
        # diurnal peak loads the deployment's replicas to `peak_utilisation` (documented).
        if isinstance(backend, str) and backend == "sim" and node_name is None and node_info is None:
            sc0 = make_scenario(scenario, **dict(scenario_options or {}))
        else:
            sc0 = None
        setup = build_setup(
            mode="placement", node_name=node_name, max_hardware=max_hardware, pod_usage=pod_usage,
            node_info=node_info, num_nodes=num_nodes, namespace=namespace, deployment_name=deployment_name,
            deployments=deployments, max_pods=max_pods, group_id=group_id, base_url=base_url,
            env_config=env_config, stabilization_time=stabilization_time,
            scenario=_scaled(sc0, replicas, peak_utilisation) if sc0 is not None else scenario,
            scenario_options=None if sc0 is not None else scenario_options, backend=backend,
            sim_config=sim_config, sla_ms=sla_ms, max_replicas=None, placement_replicas=replicas,
        )
        if sc0 is None and setup.is_sim:
            sc = _scaled(setup.scenario, replicas, peak_utilisation)
            setup = build_setup(
                mode="placement", node_name=None, max_hardware=None, pod_usage=None, node_info=None,
                num_nodes=None, namespace=namespace, deployment_name=deployment_name, deployments=deployments,
                max_pods=None, group_id=group_id, base_url=base_url, env_config=env_config,
                stabilization_time=stabilization_time, scenario=sc, scenario_options=None, backend="sim",
                sim_config=sim_config, sla_ms=sla_ms, max_replicas=None, placement_replicas=replicas,
            )
        self.scenario = sc = setup.scenario
        self.backend = setup.backend
        self._is_sim = setup.is_sim
        self.window_s = setup.window_s
        self.sla_ms = setup.sla_ms
        self.node_names = list(sc.node_names)
        self.n = n = sc.n_nodes
        self.deployment_name = deployment_name or (self.backend.deployments[0] if self.backend.deployments else "app")
        self.initial_node = check_int("initial_node", initial_node, low=0, high=n - 1)
        self.replicas = self.backend.placement_replicas if self._is_sim else (replicas or 1)
        self.mu = float(sc.service_rate_rps)
        self.action_space = spaces.Discrete(n)
        # resource bounds: the larger of max_hardware and the node capacities
        mh = dict(max_hardware or {})
        self._res = [r for r in RESOURCE_KEYS if r in sc.node_capacity]
        self._res_max = np.array(
            [max(float(mh.get(r, 0.0)), float(sc.node_capacity[r].max()), 1e-9) for r in self._res]
        )
        self._lat_max = float(mh.get("avg_latency", LATENCY_MAX * self.sla_ms)) if self.version == 0 else 1.0
        k = len(self._res) + 2
        self._k = k
        if self.version == 0:
            per_node_hi = [*self._res_max, float(sc.max_pods), self._lat_max]
            hi = np.concatenate([np.tile(per_node_hi, n), [DEMAND_MAX * self.replicas * self.mu, 1.0, 1.0]])
            lo = np.concatenate([np.zeros(k * n + 1), [-1.0, -1.0]])
        else:
            hi = np.ones(k * n + 3)
            lo = np.zeros(k * n + 3)
        self._flat_space = spaces.Box(lo.astype(np.float32), hi.astype(np.float32), dtype=np.float32)
        if self.obs_mode == "flat":
            self.observation_space = self._flat_space
        else:
            self.observation_space = self._dict_space()
        self._res_cache: dict[tuple, np.ndarray] = {}  # pod layout -> flat observation template
        # per-step constants of _obs: deployment capacity (req/s), latency bound, scale and cap
        self._obs_consts = (
            self.replicas * self.mu,
            self._lat_max if self.version == 0 else 1.0,
            1.0 if self.version == 0 else 1.0 / (LATENCY_MAX * self.sla_ms),
            min(LATENCY_MAX * self.sla_ms, self._lat_max) if self.version == 0 else LATENCY_MAX * self.sla_ms,
        )
        self._node = self.initial_node
        self._target = self.initial_node
        self._pods = [0] * n
        self._node_latency = [0.0] * n
        self._steps = 0
        self._last_reward = 0.0
        self._tod = 0.0
        self._demand = 0.0
        # static mean RTT from all users to each node (generic backends' per-node latency estimate)
        rtt = sc.bs_rtt_ms[sc.user_bs] if sc.n_users else sc.bs_rtt_ms
        self._static_rtt = rtt.mean(axis=0).tolist()

    def _dict_space(self) -> spaces.Dict:
        def box(hi: float) -> spaces.Box:
            return spaces.Box(0.0, np.float32(hi), shape=(), dtype=np.float32)

        per = {}
        for nm in self.node_names:
            d = {r: box(self._res_max[i] if self.version == 0 else 1.0) for i, r in enumerate(self._res)}
            d["avg_latency"] = box(self._lat_max)
            d["deployments"] = spaces.Dict(
                {self.deployment_name: spaces.Dict({"replicas": box(self.scenario.max_pods if self.version == 0 else 1.0)})}
            )
            per[nm] = spaces.Dict(d)
        return spaces.Dict(per)

    # ------------------------------------------------------------------ API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        streams = make_streams(self.np_random)
        node = self.initial_node
        if options and "initial_node" in options:
            node = check_int("options['initial_node']", options["initial_node"], low=0, high=self.n - 1)
        if self._is_sim:
            b = self.backend
            b.reset(rng_workload=streams.workload, rng_system=streams.system)
            b.node = b.target = node
        else:
            self.backend.reset(seed=seed)
            self.backend.place(self.deployment_name, self.node_names[node])
            self.backend.advance(0.0)
        self._node = self._target = node
        self._steps = 0
        obs, metrics = self._measure(moved=False)
        info = {
            "scenario": self.scenario.describe(),
            "node_names": list(self.node_names),
            "deployment": self.deployment_name,
            "replicas": self.replicas,
            "service_rate_rps": self.mu,
            "sla_ms": self.sla_ms,
            "window_s": self.window_s,
            "metrics": metrics,
            **self._raw_info(),
        }
        return obs, info

    def _raw_info(self) -> dict[str, Any]:
        return {
            "node": self._node,
            "node_latency_ms": list(self._node_latency),
            "demand_rps": self._demand,
            "time_of_day_s": self._tod,
        }

    def step(self, action: Any):
        if isinstance(action, np.ndarray):
            if action.shape not in ((), (1,)) or action.dtype.kind not in "iu":
                raise ValueError(f"action must be a node index in [0, {self.n - 1}] (Discrete({self.n})), got {action!r}")
            action = int(action.reshape(()))
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
            raise ValueError(f"action must be a node index in [0, {self.n - 1}] (Discrete({self.n})), got {action!r}")
        j = int(action)
        if not 0 <= j < self.n:
            raise ValueError(f"action must be a node index in [0, {self.n - 1}] (nodes {self.node_names}), got {j}")
        moved = j != self._target
        if self._is_sim:
            b = self.backend
            b.place_index(j)
            b.step_window()
        else:
            if moved:
                self.backend.place(self.deployment_name, self.node_names[j])
            self.backend.advance(self.window_s)
        self._target = j
        self._steps += 1
        obs, metrics = self._measure(moved)
        info = {"metrics": metrics, **self._raw_info()}
        return obs, self._last_reward, False, False, info

    # ------------------------------------------------------------------ observation
    def _measure(self, moved: bool):
        n = self.n
        if self._is_sim:
            b = self.backend
            self._node = b.node
            lam = b.last_demand[0]
            lat = b.last_latency_ms[0]
            mean_lat = b.last_mean_latency_ms
            sla = b.last_sla
            failed = b.last_failed_rps
            rtt = b.last_rtt_to_nodes_ms if b.t > 0 else b.next_window_rtt_ms()
            pods = [0] * n
            pods[b.node] = b.ready[0]
            if b.switch_at >= 0.0 and math.isfinite(b.switch_at):
                pods[b.target] += 0  # new pods not ready yet: not counted
            tod = b.time_of_day_s
        else:
            meas = self.backend.observe()
            lam = float(meas.demand_rps.sum())
            lat = float(meas.latency_ms.mean()) if meas.latency_ms.size else float(meas.mean_latency_ms)
            mean_lat = float(meas.mean_latency_ms)
            sla = meas.sla_violation_rate
            failed = float(meas.failed_rps)
            pods = [int(x) for x in meas.pods_per_node.sum(axis=0)]
            if sum(pods):
                self._node = int(np.argmax(pods))
            rtt = self._static_rtt
            t = getattr(self.backend, "time_of_day_s", None)
            tod = wallclock_time_of_day_s() if t is None else float(t)
        queue = max(lat - rtt[self._node], 0.0)
        self._node_latency = [r + queue for r in rtt]
        self._node_latency[self._node] = lat
        self._pods = pods
        self._demand = lam
        self._tod = tod
        sla_v = 0.0 if sla is None else float(sla)
        self._last_reward = -(self.w_latency * mean_lat / self.sla_ms + self.w_sla * sla_v
                              + self.w_migration * (1.0 if moved else 0.0))
        metrics = {
            "latency_ms": mean_lat,
            "replicas": float(sum(pods)),
            "demand_rps": lam,
            "failed_rps": failed,
            "migrations": 1.0 if moved else 0.0,
        }
        if sla is not None:
            metrics["sla_violation_rate"] = sla_v
        return self._obs(), metrics

    def _resource_block(self) -> np.ndarray:
        """Flat ``float32`` observation template for the current pod layout (cached per layout).

        The free resources and pods per node (the ``(n, k - 1)`` block in observation units)
        are filled in; the latency column and the global features are left for :meth:`_obs`.
        """
        key = tuple(self._pods)
        cached = self._res_cache.get(key)
        if cached is not None:
            return cached
        sc, n = self.scenario, self.n
        feats = np.zeros((n, self._k - 1))
        pods = np.array(self._pods, dtype=float)
        for i, r in enumerate(self._res):
            feats[:, i] = np.clip(sc.node_capacity[r] - pods * float(sc.pod_usage.get(r, 0.0)), 0.0, self._res_max[i])
        feats[:, -1] = np.minimum(pods, sc.max_pods)
        if self.version != 0:
            feats[:, :-1] /= self._res_max
            feats[:, -1] /= sc.max_pods
        block = np.zeros((n, self._k), dtype=np.float32)
        block[:, :-1] = feats
        template = np.concatenate([block.ravel(), np.zeros(3, dtype=np.float32)])
        if len(self._res_cache) > 256:
            self._res_cache.clear()
        self._res_cache[key] = template
        return template

    def _obs(self):
        s, c = time_features(self._tod)
        cap, lat_hi, lat_scale, lat_cap = self._obs_consts
        lat = []
        for x in self._node_latency:
            x = (x if x < lat_cap else lat_cap) * lat_scale
            lat.append(x if x < lat_hi else lat_hi)
        if self.version == 0:
            glob = [min(self._demand, DEMAND_MAX * cap), s, c]
        else:
            glob = [min(self._demand / (DEMAND_MAX * cap), 1.0), (s + 1.0) / 2.0, (c + 1.0) / 2.0]
        n, k = self.n, self._k
        flat = self._resource_block().copy()  # fresh array every step
        flat[k - 1:n * k:k] = lat  # latency column of the (n, k) node block
        flat[n * k:] = glob
        if self.obs_mode == "flat":
            return flat
        out = {}
        k = self._k
        for j, nm in enumerate(self.node_names):
            row = flat[j * k:(j + 1) * k]
            d = {r: np.array(row[i], dtype=np.float32) for i, r in enumerate(self._res)}
            d["avg_latency"] = np.array(row[-1], dtype=np.float32)
            d["deployments"] = {self.deployment_name: {"replicas": np.array(row[-2], dtype=np.float32)}}
            out[nm] = d
        return out

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        from lwmecps_gym import rendering

        return rendering.placement_ansi(self) if self.render_mode == "ansi" else rendering.placement_rgb(self)

    def close(self):
        self.backend.close()


def _scaled(sc, replicas: int | None, peak_utilisation: float):
    """The scenario with ``user_rate_rps`` set so the diurnal peak loads the deployment to ``peak_utilisation``."""
    fit = int(sc.pods_fit().min())
    r = replicas if replicas is not None else max(1, min(fit, sc.max_replicas))
    peak = max(sc.profile) * max(sc.n_users, 1)
    rate = peak_utilisation * r * sc.service_rate_rps / peak
    return replace(sc, user_rate_rps=rate)


_DOC = """Placement of one deployment on one of the edge nodes ({variant}).

    ## Description

    One deployment (``deployment_name``) serves all users of the scenario; each step the
    agent chooses the node that should run its ``replicas`` pods (upstream's 2024 design:
    a nodeSelector move). A move is a RollingUpdate: the old pods serve until the new ones
    are ready (seeded start-up delay), so frequent moves cost. Latency = RTT from the users'
    base stations to the node + M/M/c queueing (windowed, see
    :class:`~lwmecps_gym.backends.sim.SimBackend`). As users move and demand follows the
    day, the best node changes. The per-user rate is scaled so that the diurnal peak loads
    the deployment to ``peak_utilisation`` (0.7).

    ## Action Space

    ``Discrete(num_nodes)``: node index to run the deployment on.

    ## Observation Space

    ``obs_mode="flat"``: ``Box(float32, (k * num_nodes + 3,))`` with, per node ``j``
    (``k = 8`` for upstream's resources), then three global values:

    | Index | Observation | Unit (v0) | v0 max | v2 |
    |---|---|---|---|---|
    | ``k j + 0..5`` | free cpu, ram, tx, rx, disk read, disk write (capacity - pods x pod_usage) | cores, MB, Mbit/s, MB/s | max(max_hardware, capacity) | / max, in [0, 1] |
    | ``k j + 6`` | pods of the deployment on the node | pods | max_pods | / max_pods |
    | ``k j + 7`` | windowed latency of the users if served from that node (measured for the current node; RTT difference + current queueing otherwise) | ms | max_hardware["avg_latency"] or 10 x sla | / (10 x sla) |
    | ``k n`` | arrival rate | req/s | 2 x capacity | / (2 x capacity) |
    | ``k n + 1``, ``k n + 2`` | sin, cos of the time of day | 1 | [-1, 1] | mapped to [0, 1] |

    Values are clipped to the bounds. ``obs_mode="dict"``: ``{{node: {{cpu, ram, ...,
    avg_latency, deployments: {{deployment_name: {{replicas}}}}}}}}`` (upstream's layout).

    ## Rewards

    ``r = -(w_latency * L / sla_ms + w_sla * V + w_migration * moved)``: ``L`` the windowed mean
    latency (ms; failed requests at the timeout), ``V`` the SLA-violation fraction, ``moved``
    1 if the action changed the node. Defaults 1.0, 1.0, 0.1. (Upstream returned the
    cumulative sum of latencies; this is per window.)

    ## Starting State

    The deployment runs on ``initial_node`` (default 0; upstream's reset left it on the last
    node: pass ``initial_node=num_nodes - 1`` or ``reset(options={{"initial_node": j}})``),
    seeded workload start time of day.

    ## Episode End

    Never terminates; registered with ``max_episode_steps=120`` (one simulated hour at 30 s).

    ## Arguments

    As :class:`~lwmecps_gym.envs.scaling.LWMECPSEnv3` (upstream's arguments, ``scenario``,
    ``backend``, ``sim_config``, ``sla_ms``, ``obs_mode``, ``render_mode``), plus
    ``replicas`` (pods of the placed deployment; default: what fits on the smallest node),
    ``peak_utilisation`` (0.7), ``w_latency``, ``w_sla``, ``w_migration``, ``initial_node``.

    ## Version History

    * v{version}: this version. {history}
    """


class LWMECPSEnv(_PlacementEnv):
    __doc__ = _DOC.format(
        variant="raw units, upstream's v0", version=0,
        history="Upstream v0 could not be constructed (missing deployment_name) and used Discrete(3).",
    )
    version = 0


class LWMECPSEnv2(_PlacementEnv):
    __doc__ = _DOC.format(
        variant="normalised observations, upstream's v2/v1", version=2,
        history="Upstream v2 could not be constructed and had no latency in its observation; "
        "v1 is registered as an alias of v2, as upstream did in 2024.",
    )
    version = 2
