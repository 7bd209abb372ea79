"""``lwmecps_gym/Placement-v0`` and ``lwmecps_gym/PlacementNormalized-v0`` (upstream's ``lwmecps-v0`` and
``lwmecps-v2``/``v1``): placement of one deployment on one of the edge nodes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lwmecps_gym.backends.base import ClusterMeasurement, PlaceCommand
from lwmecps_gym.core.env import BackendEnv
from lwmecps_gym.core.validation import check_choice, check_float, check_int
from lwmecps_gym.envs.common import build_backend, build_scenario, time_features, wallclock_time_of_day_s
from lwmecps_gym.scenarios import RESOURCE_KEYS

#: Latency features saturate at this multiple of ``sla_ms``.
LATENCY_MAX = 10.0
#: The demand feature saturates at this multiple of the deployment's capacity.
DEMAND_MAX = 2.0


class _PlacementEnv(BackendEnv[ClusterMeasurement]):
    """Shared implementation of the raw-unit and the normalised placement env (see the subclasses)."""

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}
    #: ``True``: observations normalised to [0, 1] (PlacementNormalized / v2); ``False``: raw units (v0)
    normalized = True
    #: upstream's version number of the id (0 or 2), shown by the renderer
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
        interval_s: float | None = None,
        window_s: float | None = None,
        backend_kwargs: Mapping[str, Any] | None = None,
    ):
        self.obs_mode = check_choice("obs_mode", obs_mode, ("flat", "dict"))
        self.render_mode = check_choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))
        self._map = None  # rgb_array: the map renderer, with the episode's measurements (handed over in info())
        if self.render_mode == "rgb_array":
            from lwmecps_gym.rendering import MapRenderer

            self._map = MapRenderer()
        self.w_latency = check_float("w_latency", w_latency, low=0.0)
        self.w_sla = check_float("w_sla", w_sla, low=0.0)
        self.w_migration = check_float("w_migration", w_migration, low=0.0)
        peak_utilisation = check_float("peak_utilisation", peak_utilisation, low=0.0, low_open=True)
        if replicas is not None:
            check_int("replicas", replicas, low=1)
        sc = build_scenario(
            mode="placement", node_name=node_name, max_hardware=max_hardware, pod_usage=pod_usage,
            node_info=node_info, num_nodes=num_nodes, deployments=deployments, max_pods=max_pods,
            scenario=scenario, scenario_options=scenario_options, max_replicas=None,
        )
        # One deployment serves every user: the per-user rate is scaled so that the diurnal peak
        # loads its replicas to `peak_utilisation` (documented; only the simulator uses the rate).
        self.replicas = replicas if replicas is not None else max(1, min(int(sc.pods_fit().min()), sc.max_replicas))
        self.scenario = sc = _scaled(sc, self.replicas, peak_utilisation)
        setup = build_backend(
            sc, mode="placement", backend=backend, namespace=namespace, deployment_name=deployment_name,
            deployments=deployments, group_id=group_id, base_url=base_url, env_config=env_config,
            interval_s=interval_s, stabilization_time=stabilization_time, window_s=window_s,
            sim_config=sim_config, backend_kwargs=backend_kwargs, sla_ms=sla_ms, placement_replicas=replicas,
        )
        self.backend = setup.backend
        #: control period, seconds (simulated seconds on ``backend="sim"``)
        self.interval_s = setup.interval_s
        self.sla_ms = setup.sla_ms
        self.node_names = list(sc.node_names)
        self.n = n = sc.n_nodes
        self.deployment_name = deployment_name or (self.backend.deployments[0] if self.backend.deployments else "app")
        self.initial_node = check_int("initial_node", initial_node, low=0, high=n - 1)
        self.mu = float(sc.service_rate_rps)
        self.action_space = spaces.Discrete(n)
        # resource bounds: the larger of max_hardware and the node capacities
        mh = dict(max_hardware or {})
        self._res = [r for r in RESOURCE_KEYS if r in sc.node_capacity]
        self._res_max = np.array(
            [max(float(mh.get(r, 0.0)), float(sc.node_capacity[r].max()), 1e-9) for r in self._res]
        )
        norm = self.normalized
        self._lat_max = 1.0 if norm else float(mh.get("avg_latency", LATENCY_MAX * self.sla_ms))
        k = len(self._res) + 2
        self._k = k
        if norm:
            hi = np.ones(k * n + 3)
            lo = np.zeros(k * n + 3)
        else:
            per_node_hi = [*self._res_max, float(sc.max_pods), self._lat_max]
            hi = np.concatenate([np.tile(per_node_hi, n), [DEMAND_MAX * self.replicas * self.mu, 1.0, 1.0]])
            lo = np.concatenate([np.zeros(k * n + 1), [-1.0, -1.0]])
        self.flat_observation_space = spaces.Box(lo.astype(np.float32), hi.astype(np.float32), dtype=np.float32)
        self.observation_space = self.flat_observation_space if self.obs_mode == "flat" else self._dict_space()
        self._res_cache: dict[tuple, np.ndarray] = {}  # pod layout -> flat observation template
        # per-step constants of the observation: deployment capacity (req/s), latency bound, scale and cap
        self._obs_consts = (
            self.replicas * self.mu,
            1.0 if norm else self._lat_max,
            1.0 / (LATENCY_MAX * self.sla_ms) if norm else 1.0,
            LATENCY_MAX * self.sla_ms if norm else min(LATENCY_MAX * self.sla_ms, self._lat_max),
        )
        # static mean RTT from all users to each node: the per-node estimate when a backend measures none
        rtt = sc.bs_rtt_ms[sc.user_bs] if sc.n_users else sc.bs_rtt_ms
        self._static_rtt = rtt.mean(axis=0).tolist()
        self._view_of: ClusterMeasurement | None = None
        self._view: dict[str, Any] = {}

    def _dict_space(self) -> spaces.Dict:
        norm = self.normalized

        def box(hi: float) -> spaces.Box:
            return spaces.Box(0.0, np.float32(hi), shape=(), dtype=np.float32)

        per = {}
        for nm in self.node_names:
            d = {r: box(1.0 if norm else self._res_max[i]) for i, r in enumerate(self._res)}
            d["avg_latency"] = box(self._lat_max)
            d["deployments"] = spaces.Dict(
                {self.deployment_name: spaces.Dict({"replicas": box(1.0 if norm else self.scenario.max_pods)})}
            )
            per[nm] = spaces.Dict(d)
        return spaces.Dict(per)

    # ------------------------------------------------------------------ template hooks
    def start_episode(self, options: dict[str, Any] | None) -> ClusterMeasurement:
        """Place the deployment on ``initial_node`` (or ``options["initial_node"]``), wait for it, observe."""
        node = self.initial_node
        if options and "initial_node" in options:
            node = check_int("options['initial_node']", options["initial_node"], low=0, high=self.n - 1)
        self.backend.apply(PlaceCommand(self.deployment_name, node, initial=True))
        self.backend.advance(0.0)
        return self.backend.observe()

    def decode_action(self, action: Any) -> PlaceCommand:
        """The :class:`~lwmecps_gym.backends.base.PlaceCommand` of node index ``action``.

        Raises:
            ValueError: not an integer node index in ``[0, num_nodes - 1]``.
        """
        if isinstance(action, np.ndarray):
            if action.shape not in ((), (1,)) or action.dtype.kind not in "iu":
                raise ValueError(f"action must be a node index in [0, {self.n - 1}] (Discrete({self.n})), got {action!r}")
            action = int(action.reshape(()))
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
            raise ValueError(f"action must be a node index in [0, {self.n - 1}] (Discrete({self.n})), got {action!r}")
        j = int(action)
        if not 0 <= j < self.n:
            raise ValueError(f"action must be a node index in [0, {self.n - 1}] (nodes {self.node_names}), got {j}")
        return PlaceCommand(self.deployment_name, j)

    def features(self, m: ClusterMeasurement) -> dict[str, Any]:
        """The per-window values behind observation, reward and info, from measurement ``m``.

        Returns ``node`` (index of the node with the most ready pods of the deployment: during a
        rollout the old node serves), ``pods`` (ready pods per node), ``node_latency_ms`` (the
        measured windowed latency for that node; for the others the RTT difference plus the
        current queueing: ``rtt_j + max(L - rtt_node, 0)``, RTTs from ``m.rtt_to_nodes_ms`` or the
        scenario's static mean), ``demand_rps``, ``latency_ms``, ``time_of_day_s``. Computed once
        per measurement.
        """
        if m is self._view_of:
            return self._view
        pods = m.pods_per_node.sum(axis=0).tolist()
        node = pods.index(max(pods))  # the first node with the most pods
        lats = m.latency_ms.tolist()
        lat = sum(lats) / len(lats) if lats else float(m.mean_latency_ms)
        rtt = self._static_rtt if m.rtt_to_nodes_ms is None else m.rtt_to_nodes_ms.tolist()
        queue = max(lat - rtt[node], 0.0)
        node_latency = [r + queue for r in rtt]
        node_latency[node] = lat
        tod = m.time_of_day_s
        self._view = {
            "node": node,
            "pods": pods,
            "node_latency_ms": node_latency,
            "demand_rps": float(sum(m.demand_rps.tolist())),
            "time_of_day_s": wallclock_time_of_day_s() if tod is None else float(tod),
        }
        self._view_of = m
        return self._view

    def observation(self, m: ClusterMeasurement) -> Any:
        """The observation of ``m`` (see Observation Space): a fresh array (or dict) each call."""
        v = self.features(m)
        s, c = time_features(v["time_of_day_s"])
        cap, lat_hi, lat_scale, lat_cap = self._obs_consts
        lat = []
        for x in v["node_latency_ms"]:
            x = (x if x < lat_cap else lat_cap) * lat_scale
            lat.append(x if x < lat_hi else lat_hi)
        demand = v["demand_rps"]
        if self.normalized:
            glob = [min(demand / (DEMAND_MAX * cap), 1.0), (s + 1.0) / 2.0, (c + 1.0) / 2.0]
        else:
            glob = [min(demand, DEMAND_MAX * cap), s, c]
        n, k = self.n, self._k
        flat = self._resource_block(v["pods"]).copy()  # fresh array every step
        flat[k - 1:n * k:k] = lat  # latency column of the (n, k) node block
        flat[n * k:] = glob
        if self.obs_mode == "flat":
            return flat
        out = {}
        for j, nm in enumerate(self.node_names):
            row = flat[j * k:(j + 1) * k]
            d = {r: np.array(row[i], dtype=np.float32) for i, r in enumerate(self._res)}
            d["avg_latency"] = np.array(row[-1], dtype=np.float32)
            d["deployments"] = {self.deployment_name: {"replicas": np.array(row[-2], dtype=np.float32)}}
            out[nm] = d
        return out

    def reward(self, m: ClusterMeasurement) -> float:
        """The reward of the Rewards section, a pure function of ``m`` (and the weights)."""
        sla = m.sla_violation_rate
        return -(self.w_latency * m.mean_latency_ms / self.sla_ms + self.w_sla * (0.0 if sla is None else float(sla))
                 + self.w_migration * float(m.migrations))

    def metrics(self, m: ClusterMeasurement) -> dict[str, float]:
        """``info["metrics"]``: the window's raw, unit-labelled measurements (floats)."""
        v = self.features(m)
        out = {
            "latency_ms": float(m.mean_latency_ms),
            "replicas": float(sum(v["pods"])),
            "demand_rps": v["demand_rps"],
            "failed_rps": float(m.failed_rps),
            "migrations": float(m.migrations),
        }
        if m.sla_violation_rate is not None:
            out["sla_violation_rate"] = float(m.sla_violation_rate)
        return out

    def info(self, m: ClusterMeasurement) -> dict[str, Any]:
        """Step info: ``metrics``, ``node``, ``node_pods``, ``node_latency_ms``, ``demand_rps``, ``time_of_day_s``."""
        if self._map is not None:
            self._map.record(m)
        v = self.features(m)
        return {
            "metrics": self.metrics(m),
            "node": v["node"],
            "node_pods": list(v["pods"]),
            "node_latency_ms": list(v["node_latency_ms"]),
            "demand_rps": v["demand_rps"],
            "time_of_day_s": v["time_of_day_s"],
        }

    def reset_info(self, m: ClusterMeasurement) -> dict[str, Any]:
        """Reset info: scenario, names, replicas, service rate, SLA, control period + :meth:`info`."""
        return {
            "scenario": self.scenario.describe(),
            "node_names": list(self.node_names),
            "deployment": self.deployment_name,
            "replicas": self.replicas,
            "service_rate_rps": self.mu,
            "sla_ms": self.sla_ms,
            "interval_s": self.interval_s,
            **self.info(m),
        }

    def _resource_block(self, pods: list[int]) -> np.ndarray:
        """Flat ``float32`` observation template for a pod layout (cached per layout).

        The free resources and pods per node (the ``(n, k - 1)`` block in observation units)
        are filled in; the latency column and the global features are left for :meth:`observation`.
        """
        key = tuple(pods)
        cached = self._res_cache.get(key)
        if cached is not None:
            return cached
        sc, n = self.scenario, self.n
        feats = np.zeros((n, self._k - 1))
        p = np.array(pods, dtype=float)
        for i, r in enumerate(self._res):
            feats[:, i] = np.clip(sc.node_capacity[r] - p * float(sc.pod_usage.get(r, 0.0)), 0.0, self._res_max[i])
        feats[:, -1] = np.minimum(p, sc.max_pods)
        if self.normalized:
            feats[:, :-1] /= self._res_max
            feats[:, -1] /= sc.max_pods
        block = np.zeros((n, self._k), dtype=np.float32)
        block[:, :-1] = feats
        template = np.concatenate([block.ravel(), np.zeros(3, dtype=np.float32)])
        if len(self._res_cache) > 256:
            self._res_cache.clear()
        self._res_cache[key] = template
        return template

    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        from lwmecps_gym import rendering

        return rendering.placement_ansi(self) if self.render_mode == "ansi" else self._map.frame(self)


def _scaled(sc, replicas: int, peak_utilisation: float):
    """The scenario with ``user_rate_rps`` set so the diurnal peak loads ``replicas`` replicas to ``peak_utilisation``."""
    peak = max(sc.profile) * max(sc.n_users, 1)
    rate = peak_utilisation * replicas * sc.service_rate_rps / peak
    return replace(sc, user_rate_rps=rate)


_DOC = """Placement of one deployment on one of the edge nodes ({variant}).

    Registered as ``{new_id}`` and, for upstream's users, {old_ids} (the same env and
    episode length). The two placement ids differ only in the observation: raw units with
    upstream's bounds (``Placement-v0`` = ``lwmecps-v0``) or every value normalised to [0, 1]
    (``PlacementNormalized-v0`` = ``lwmecps-v2``, and ``lwmecps-v1``, upstream's 2024 name of
    the same env); dynamics, actions and rewards are identical.

    ## Description

    One deployment (``deployment_name``) serves all users of the scenario; each step the
    agent chooses the node that should run its ``replicas`` pods (upstream's 2024 design:
    a nodeSelector move). A move is a RollingUpdate: the old pods serve until the new ones
    are ready (seeded start-up delay), so frequent moves cost. Latency = RTT from the users'
    base stations to the node + M/M/c queueing (windowed, see
    :class:`~lwmecps_gym.backends.sim.SimBackend`). As users move and demand follows the
    day, the best node changes. The per-user rate is scaled so that the diurnal peak loads
    the deployment to ``peak_utilisation`` (0.7). A step is ``backend.apply(PlaceCommand(node))``,
    ``backend.advance(interval_s)``, ``m = backend.observe()``; observation, reward and info are
    functions of ``m`` (:class:`~lwmecps_gym.backends.base.ClusterMeasurement`).

    ## Action Space

    ``Discrete(num_nodes)``: node index to run the deployment on.

    ## Observation Space

    ``obs_mode="flat"``: ``Box(float32, (k * num_nodes + 3,))`` with, per node ``j``
    (``k = 8`` for upstream's resources), then three global values:

    | Index | Observation | Unit (Placement) | Placement max | PlacementNormalized |
    |---|---|---|---|---|
    | ``k j + 0..5`` | free cpu, ram, tx, rx, disk read, disk write (capacity - pods x pod_usage) | cores, MB, Mbit/s, MB/s | max(max_hardware, capacity) | / max, in [0, 1] |
    | ``k j + 6`` | pods of the deployment on the node | pods | max_pods | / max_pods |
    | ``k j + 7`` | windowed latency of the users if served from that node (measured for the current node; RTT difference + current queueing otherwise) | ms | max_hardware["avg_latency"] or 10 x sla | / (10 x sla) |
    | ``k n`` | arrival rate | req/s | 2 x capacity | / (2 x capacity) |
    | ``k n + 1``, ``k n + 2`` | sin, cos of the time of day | 1 | [-1, 1] | mapped to [0, 1] |

    Values are clipped to the bounds. ``obs_mode="dict"``: ``{{node: {{cpu, ram, ...,
    avg_latency, deployments: {{deployment_name: {{replicas}}}}}}}}`` (upstream's layout).

    ## Rewards

    ``r = -(w_latency * L / sla_ms + w_sla * V + w_migration * M)``: ``L`` the windowed mean
    latency (ms; failed requests at the timeout), ``V`` the SLA-violation fraction, ``M`` the
    moves started in the window (1 if the action changed the target node, else 0). Defaults
    1.0, 1.0, 0.1. A pure function of the measurement (:meth:`reward`). (Upstream returned
    the cumulative sum of latencies; this is per window.)

    ## Starting State

    The deployment runs on ``initial_node`` (default 0; upstream's reset left it on the last
    node: pass ``initial_node=num_nodes - 1`` or ``reset(options={{"initial_node": j}})``),
    seeded workload start time of day.

    ## Episode End

    Never terminates; registered with ``max_episode_steps=120`` (one simulated hour at 30 s).

    ## Arguments

    As :class:`~lwmecps_gym.envs.scaling.LWMECPSEnv3` (upstream's arguments, ``interval_s``
    and its aliases ``stabilization_time``/``window_s``, ``scenario``, ``backend``,
    ``sim_config``, ``backend_kwargs``, ``sla_ms``, ``obs_mode``, ``render_mode``), plus
    ``replicas`` (pods of the placed deployment; default: what fits on the smallest node, at
    most ``max_replicas``), ``peak_utilisation`` (0.7), ``w_latency``, ``w_sla``,
    ``w_migration``, ``initial_node``.

    ## Version History

    * {new_id}: this version. {history}

    ## Example

    >>> import gymnasium as gym, lwmecps_gym
    >>> env = gym.make("{new_id}", scenario="minikube-4")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.action_space, info["node"]
    ((35,), Discrete(4), 0)
    >>> obs, reward, terminated, truncated, info = env.step(3)
    >>> info["metrics"]["migrations"], type(reward).__name__
    (1.0, 'float')
    """


class LWMECPSEnv(_PlacementEnv):
    __doc__ = _DOC.format(
        variant="raw units, upstream's v0", new_id="lwmecps_gym/Placement-v0", old_ids="``lwmecps-v0``",
        history="Upstream v0 could not be constructed (missing deployment_name) and used Discrete(3).",
    )
    normalized = False
    version = 0


class LWMECPSEnv2(_PlacementEnv):
    __doc__ = _DOC.format(
        variant="normalised observations, upstream's v2/v1", new_id="lwmecps_gym/PlacementNormalized-v0",
        old_ids="``lwmecps-v2`` and ``lwmecps-v1``",
        history="Upstream v2 could not be constructed and had no latency in its observation; "
        "v1 is registered as an alias of v2, as upstream did in 2024.",
    )
    normalized = True
    version = 2
