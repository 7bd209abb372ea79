"""``lwmecps-v3``: per-site replica scaling of MEC deployments."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lwmecps_gym.core.seeding import make_streams
from lwmecps_gym.core.validation import check_choice, check_float
from lwmecps_gym.envs.common import build_setup, time_features, wallclock_time_of_day_s

#: Saturation bounds of the flat observation (documented in the class docstring).
DEMAND_MAX = 4.0
LATENCY_MAX = 10.0
LOAD_MAX = 4.0
_TWO_PI_DAY = 2.0 * math.pi / 86400.0


class LWMECPSEnv3(gym.Env):
    """Per-site replica scaling of MEC deployments on an edge Kubernetes cluster.

    ## Description

    One deployment per edge site (deployment ``i`` is pinned to node ``i`` by node affinity,
    as upstream's ``lwmecps-testapp-server-bsN``). Users attached to base stations send
    requests to the deployment of their nearest edge node; the agent sets every
    deployment's replica count each control window (``stabilization_time`` seconds) and is
    rewarded for low windowed latency, few SLA violations, few replicas and balanced load.
    New pods serve only after a start-up delay, so anticipating demand pays and thrashing
    costs. With ``backend="sim"`` (default) the cluster is the seeded simulator
    :class:`~lwmecps_gym.backends.sim.SimBackend` on scenario ``melbourne-cbd`` (real EUA
    sites and users); ``backend="kubernetes"`` drives a real cluster.

    ## Action Space

    ``action_mode="discrete"`` (default): ``MultiDiscrete([max_replicas + 1] * n)``, the
    replica count of each deployment (``n = len(deployments)``).
    ``action_mode="continuous"``: ``Box(-1, 1, (n,), float32)``, a target fraction of
    ``max_replicas`` per deployment, ``replicas_i = round((a_i + 1) / 2 * max_replicas)``
    (for SAC/TD3). Out-of-range or wrongly shaped actions raise ``ValueError``.

    ## Observation Space

    ``obs_mode="flat"`` (default): ``Box(float32, (5 n + 2,))``, grouped by feature
    (``i`` = deployment index, ``n`` deployments), all values from the last window:

    | Index | Observation | Unit | Min | Max |
    |---|---|---|---|---|
    | ``i`` | demand: arrival rate / (max_replicas x service rate) | 1 | 0 | 4 (saturates) |
    | ``n + i`` | ready replicas / max_replicas | 1 | 0 | 1 |
    | ``2n + i`` | desired replicas (``spec.replicas``) / max_replicas | 1 | 0 | 1 |
    | ``3n + i`` | windowed mean latency of the site's requests / ``sla_ms`` | 1 | 0 | 10 (saturates) |
    | ``4n + i`` | offered load per ready replica: arrival rate / (ready x service rate) | 1 | 0 | 4 (saturates; 4 if no ready pod and demand > 0) |
    | ``5n`` | sin(2 pi time_of_day / 24 h) | 1 | -1 | 1 |
    | ``5n + 1`` | cos(2 pi time_of_day / 24 h) | 1 | -1 | 1 |

    ``obs_mode="dict"``: upstream's nested layout ``{"nodes": {node: {"CPU", "RAM", "TX",
    "RX", "deployments": {dep: {"CPU_usage", "RAM_usage", "TX_usage", "RX_usage",
    "Replicas"}}, "avg_latency"}}, "demand", "time_of_day"}`` with the bug fixes of the docs
    (replicas are the pods *on that node*, latency is windowed). SB3 warns about nested
    dicts; use it for inspection, not training.

    ## Rewards

    ``r = -(w_latency * L / sla_ms + w_replicas * R / (n max_replicas) + w_imbalance * I + w_sla * V)``
    where ``L`` is the request-weighted mean end-to-end latency of the window (ms; failed
    requests count at the client timeout), ``R`` the total desired replicas, ``I`` the
    population standard deviation over deployments of ``min(load_i, 1)`` (in [0, 0.5]), and
    ``V`` the SLA-violation fraction. Defaults 1.0, 0.1, 0.1 (upstream's alpha, beta, gamma)
    and ``w_sla = 1.0``. Rewards are Python floats. A real backend whose latency source cannot
    measure ``V`` (the test app's API has no per-request latencies) reports it as ``None``: the
    SLA term is then left out of the reward (not replaced by an estimate) and
    ``sla_violation_rate`` is absent from ``info["metrics"]``.

    ## Starting State

    ``reset(seed)`` rewinds the simulator: every deployment has ``initial_replicas`` (1)
    ready pods, the backlog is empty, the workload starts at a seeded time of day. Same seed
    -> same trajectory for the same actions. On Kubernetes the cluster cannot be rewound.

    ## Episode End

    No terminal state (a continuing control task); ``lwmecps-v3`` is registered with
    ``max_episode_steps=240`` (2 simulated hours at the default 30 s window), so episodes
    are truncated by ``TimeLimit``.

    ## Arguments

    | Parameter | Type | Default | Description |
    |---|---|---|---|
    | ``node_name`` | list[str] | None | node names: with it, a user-defined scenario from the upstream arguments |
    | ``max_hardware``, ``pod_usage``, ``node_info`` | dict | upstream's | capacities, per-pod requests, per-node ``avg_latency`` (ms, base RTT) |
    | ``num_nodes`` | int | None | must equal ``len(node_name)`` if given |
    | ``namespace`` | str | "default" | Kubernetes namespace (real backend) |
    | ``deployment_name`` | str | None | accepted for upstream compatibility (v0-v2 place it) |
    | ``deployments`` | list[str] | per node | one per node, or one spread over all nodes |
    | ``max_pods`` | int | n x max_replicas | bound of replica counts |
    | ``group_id`` | str | None | test-app experiment group (real backend) |
    | ``env_config`` | dict | {} | ``base_url``, ``stabilization_time`` (simulated seconds on ``sim``) |
    | ``scenario`` | str or Scenario | "melbourne-cbd" | ``"melbourne-cbd"``, ``"minikube-4"`` or a Scenario |
    | ``scenario_options`` | dict | None | builder options, e.g. ``{"n_nodes": 10}`` |
    | ``backend`` | str or ClusterBackend | "sim" | ``"sim"``, ``"kubernetes"`` or an instance |
    | ``sim_config`` | dict | None | :class:`~lwmecps_gym.backends.sim.SimConfig` fields |
    | ``sla_ms`` | float | scenario's (100) | end-to-end latency SLA, ms |
    | ``w_latency``, ``w_replicas``, ``w_imbalance``, ``w_sla`` | float | 1.0, 0.1, 0.1, 1.0 | reward weights |
    | ``max_replicas`` | int | from capacities | action bound per deployment |
    | ``obs_mode`` | str | "flat" | "flat" or "dict" |
    | ``action_mode`` | str | "discrete" | "discrete" or "continuous" |
    | ``render_mode`` | str | None | "ansi" or "rgb_array" |

    ## Version History

    * v3: this version (upstream's v3 semantics, rebuilt: windowed latency, per-site demand
      and time of day observed, independent seeded episodes, flat SB3-ready spaces).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4}

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
        w_latency: float = 1.0,
        w_replicas: float = 0.1,
        w_imbalance: float = 0.1,
        w_sla: float = 1.0,
        max_replicas: int | None = None,
        obs_mode: str = "flat",
        action_mode: str = "discrete",
        render_mode: str | None = None,
    ):
        self.obs_mode = check_choice("obs_mode", obs_mode, ("flat", "dict"))
        self.action_mode = check_choice("action_mode", action_mode, ("discrete", "continuous"))
        self.render_mode = check_choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))
        self.w_latency = check_float("w_latency", w_latency, low=0.0)
        self.w_replicas = check_float("w_replicas", w_replicas, low=0.0)
        self.w_imbalance = check_float("w_imbalance", w_imbalance, low=0.0)
        self.w_sla = check_float("w_sla", w_sla, low=0.0)
        setup = build_setup(
            mode="scaling", node_name=node_name, max_hardware=max_hardware, pod_usage=pod_usage,
            node_info=node_info, num_nodes=num_nodes, namespace=namespace, deployment_name=deployment_name,
            deployments=deployments, max_pods=max_pods, group_id=group_id, base_url=base_url,
            env_config=env_config, stabilization_time=stabilization_time, scenario=scenario,
            scenario_options=scenario_options, backend=backend, sim_config=sim_config, sla_ms=sla_ms,
            max_replicas=max_replicas,
        )
        self.scenario = setup.scenario
        self.backend = setup.backend
        self._is_sim = setup.is_sim
        self.window_s = setup.window_s
        self.sla_ms = setup.sla_ms
        self.max_replicas = m = setup.max_replicas
        self.deployments = list(self.backend.deployments)
        self.node_names = list(self.scenario.node_names)
        self.n = n = len(self.deployments)
        self.mu = float(self.scenario.service_rate_rps)
        self._demand_scale = 1.0 / (m * self.mu)
        self._lat_scale = 1.0 / self.sla_ms
        self._rep_scale = 1.0 / (n * m)
        self._inv_m = 1.0 / m

        if self.action_mode == "discrete":
            self.action_space = spaces.MultiDiscrete(np.full(n, m + 1, dtype=np.int64))
        else:
            self.action_space = spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)
        low = np.zeros(5 * n + 2, dtype=np.float32)
        high = np.concatenate(
            [np.full(n, DEMAND_MAX), np.ones(n), np.ones(n), np.full(n, LATENCY_MAX), np.full(n, LOAD_MAX), [1.0, 1.0]]
        ).astype(np.float32)
        low[5 * n:] = -1.0
        self._flat_space = spaces.Box(low, high, dtype=np.float32)
        if self.obs_mode == "flat":
            self.observation_space = self._flat_space
        else:
            self.observation_space = self._dict_space()
        self._shape = (n,)
        self._discrete = self.action_mode == "discrete"
        self._wl = self.w_latency * self._lat_scale
        self._wr = self.w_replicas * self._rep_scale
        self._obs_scale = np.concatenate(
            [np.full(n, self._demand_scale), np.full(3 * n, 0.0) + [*([self._inv_m] * 2 * n), *([self._lat_scale] * n)],
             np.ones(n + 2)]
        ).astype(np.float32)
        self._obs_high = high
        self._last_desired = [0] * n
        self._steps = 0
        self._last_reward = 0.0
        self._last_metrics: dict[str, float] = {}
        self._last_ready = [0] * n
        self._last_lat = [0.0] * n
        self._last_dem = [0.0] * n
        self._last_load = [0.0] * n
        self._tod = 0.0

    # ------------------------------------------------------------------ spaces
    def _dict_space(self) -> spaces.Dict:
        sc = self.scenario
        cap = sc.node_capacity

        def box(hi: float) -> spaces.Box:
            return spaces.Box(0.0, np.float32(hi), shape=(), dtype=np.float32)

        pu = sc.pod_usage
        usage_max = {k: pu.get(k, 0.0) * sc.max_pods for k in ("cpu", "ram", "tx_bandwidth", "rx_bandwidth")}
        nodes = {}
        for j, nm in enumerate(sc.node_names):
            nodes[nm] = spaces.Dict({
                "CPU": box(float(cap.get("cpu", np.zeros(sc.n_nodes))[j]) if "cpu" in cap else 0.0),
                "RAM": box(float(cap["ram"][j]) if "ram" in cap else 0.0),
                "TX": box(float(cap["tx_bandwidth"][j]) if "tx_bandwidth" in cap else 0.0),
                "RX": box(float(cap["rx_bandwidth"][j]) if "rx_bandwidth" in cap else 0.0),
                "deployments": spaces.Dict({
                    dep: spaces.Dict({
                        "CPU_usage": box(usage_max["cpu"]),
                        "RAM_usage": box(usage_max["ram"]),
                        "TX_usage": box(usage_max["tx_bandwidth"]),
                        "RX_usage": box(usage_max["rx_bandwidth"]),
                        "Replicas": box(float(sc.max_pods)),
                    })
                    for dep in self.deployments
                }),
                "avg_latency": box(LATENCY_MAX * self.sla_ms),
            })
        return spaces.Dict({
            "nodes": spaces.Dict(nodes),
            "demand": spaces.Box(0.0, DEMAND_MAX, shape=(self.n,), dtype=np.float32),
            "time_of_day": spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32),
        })

    # ------------------------------------------------------------------ API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        streams = make_streams(self.np_random)
        if self._is_sim:
            self.backend.reset(rng_workload=streams.workload, rng_system=streams.system)
        else:
            self.backend.reset(seed=seed)
        self._steps = 0
        if self._is_sim:
            b = self.backend
            self._last_desired = list(b.desired)
            obs = self._observe_sim(b)
            metrics = self._metrics_sim(b, list(b.desired))
        else:
            meas = self.backend.observe()
            self._last_desired = [int(x) for x in meas.replicas_desired]
            obs, metrics = self._observe_generic(meas)
        info = {
            "scenario": self.scenario.describe(),
            "deployments": list(self.deployments),
            "node_names": list(self.node_names),
            "max_replicas": self.max_replicas,
            "service_rate_rps": self.mu,
            "sla_ms": self.sla_ms,
            "window_s": self.window_s,
            "reward_weights": {"w_latency": self.w_latency, "w_replicas": self.w_replicas,
                               "w_imbalance": self.w_imbalance, "w_sla": self.w_sla},
            "site_rtt_ms": self._site_rtt_ms(),
            "metrics": metrics,
            **self._raw_info(),
        }
        return obs, info

    def _site_rtt_ms(self) -> list[float]:
        """Mean RTT (ms) from each deployment's home users to its own node (static; for baselines)."""
        if self._is_sim:
            return [float(self.backend.site_rtt[d][d]) if self.backend.pinned else float(min(self.backend.site_rtt[0]))
                    for d in range(self.n)]
        sc = self.scenario
        home = sc.bs_home_node()
        rtt = sc.bs_rtt_ms
        return [float(rtt[home == d, d].mean()) if np.any(home == d) else float(rtt[:, d].min()) for d in range(self.n)]

    def _raw_info(self) -> dict[str, Any]:
        if self._is_sim:
            b = self.backend
            self._last_dem, self._last_ready, self._last_lat = b.last_demand, b.ready, b.last_latency_ms
        return {
            "demand_rps": list(self._last_dem),
            "replicas_ready": list(self._last_ready),
            "replicas_desired": list(self._last_desired),
            "latency_ms": list(self._last_lat),
            "time_of_day_s": self._tod,
        }

    def _action_to_list(self, action: Any) -> list[int]:
        n, m = self.n, self.max_replicas
        if self.action_mode == "discrete":
            if action.__class__ is np.ndarray and action.dtype.kind in "iu" and action.shape == self._shape:
                lst = action.tolist()
                if min(lst) >= 0 and max(lst) <= m:
                    return lst
                raise ValueError(f"action replica counts must be in [0, {m}] (max_replicas), got {action!r}")
            arr = np.asarray(action)
            if arr.shape != self._shape:
                raise ValueError(f"action must be {n} replica counts (MultiDiscrete shape ({n},)), got {action!r}")
            if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                arr = arr.astype(np.int64)
            if arr.dtype.kind not in "iu":
                raise ValueError(f"action must contain integer replica counts, got {action!r}")
            lst = [int(x) for x in arr.tolist()]
            if min(lst) < 0 or max(lst) > m:
                raise ValueError(f"action replica counts must be in [0, {m}] (max_replicas), got {action!r}")
            return lst
        a = np.asarray(action, dtype=np.float64)
        if a.shape != self._shape:
            raise ValueError(f"action must have shape ({n},) (target replica fraction per deployment), got {a.shape}")
        if not np.all(np.isfinite(a)) or np.any(a < -1.0) or np.any(a > 1.0):
            raise ValueError(f"continuous action values must be finite and in [-1, 1], got {action!r}")
        return [int(math.floor((x + 1.0) * 0.5 * m + 0.5)) for x in a.tolist()]

    def step(self, action: Any):
        if self._is_sim:
            return self._step_sim(action)
        lst = self._action_to_list(action)
        self.backend.scale({d: int(r) for d, r in zip(self.deployments, lst, strict=True)})
        self.backend.advance(self.window_s)
        meas = self.backend.observe()
        obs, metrics = self._observe_generic(meas, lst)
        self._last_desired = lst
        self._steps += 1
        info = {"metrics": metrics, **self._raw_info()}
        return obs, self._last_reward, False, False, info

    def _step_sim(self, action: Any):
        """The simulator's hot path: validate the action cheaply, one window, observation and reward."""
        if (action.__class__ is np.ndarray and self._discrete and action.dtype.kind in "iu"
                and action.shape == self._shape):
            lst = action.tolist()
            if min(lst) < 0 or max(lst) > self.max_replicas:
                lst = self._action_to_list(action)  # raises with the full message
        else:
            lst = self._action_to_list(action)
        b = self.backend
        b.scale_list(lst)
        b.step_window()
        obs = self._observe_sim(b)
        metrics = self._metrics_sim(b, lst)
        self._last_desired = lst
        self._steps += 1
        info = {
            "metrics": metrics,
            "demand_rps": b.last_demand,
            "replicas_ready": list(b.ready),
            "replicas_desired": lst,
            "latency_ms": list(b.last_latency_ms),
            "time_of_day_s": self._tod,
        }
        return obs, self._last_reward, False, False, info

    # ------------------------------------------------------------------ sim fast path
    def _observe_sim(self, b) -> Any:
        load = b.last_load
        tod = (b.workload.start_s + b.now) % 86400.0
        a = tod * _TWO_PI_DAY
        obs = np.array(b.last_demand + b.ready + b.desired + b.last_latency_ms + load + [math.sin(a), math.cos(a)],
                       dtype=np.float32)
        obs *= self._obs_scale
        np.minimum(obs, self._obs_high, out=obs)
        s1 = s2 = 0.0
        for u in load:
            if u > 1.0:
                u = 1.0
            s1 += u
            s2 += u * u
        mean = s1 / self.n
        var = s2 / self.n - mean * mean
        self._imbalance = math.sqrt(var) if var > 0.0 else 0.0
        self._tod = tod
        if self.obs_mode == "flat":
            return obs
        return self._to_dict(obs)

    def _reward(self, latency_ms: float, total_replicas: int, sla_rate: float) -> float:
        """The reward of the Rewards section (uses ``self._imbalance`` of the same window);
        ``_wl`` and ``_wr`` fold the latency and replica normalisations into the weights."""
        return -(self._wl * latency_ms + self._wr * total_replicas + self.w_imbalance * self._imbalance
                 + self.w_sla * sla_rate)

    def _metrics_sim(self, b, desired: list[int]) -> dict[str, float]:
        total = sum(desired)
        lat = b.last_mean_latency_ms
        sla = b.last_sla
        self._last_reward = self._reward(lat, total, sla)
        return {
            "latency_ms": lat,
            "sla_violation_rate": sla,
            "replicas": float(total),
            "replicas_ready": float(sum(b.ready)),
            "demand_rps": float(sum(b.last_demand)),
            "failed_rps": b.last_failed_rps,
            "imbalance": self._imbalance,
        }

    # ------------------------------------------------------------------ generic backends
    def _observe_generic(self, meas, desired: list[int] | None = None):
        n = self.n
        dem = [float(x) for x in meas.demand_rps]
        ready = [int(x) for x in meas.replicas_ready]
        des = [int(x) for x in meas.replicas_desired] if desired is None else list(desired)
        lat = [float(x) for x in meas.latency_ms]
        load = []
        for i in range(n):
            c = ready[i]
            load.append(dem[i] / (c * self.mu) if c > 0 else (LOAD_MAX if dem[i] > 0 else 0.0))
        tod = getattr(self.backend, "time_of_day_s", None)
        tod = wallclock_time_of_day_s() if tod is None else float(tod)
        s, c_ = time_features(tod)
        m = self.max_replicas
        vals = (
            [min(max(x * self._demand_scale, 0.0), DEMAND_MAX) for x in dem]
            + [min(r / m, 1.0) for r in ready]
            + [min(r / m, 1.0) for r in des]
            + [min(max(x * self._lat_scale, 0.0), LATENCY_MAX) for x in lat]
            + [min(x, LOAD_MAX) for x in load]
            + [s, c_]
        )
        us = [min(x, 1.0) for x in load]
        mean = sum(us) / n
        var = sum(u * u for u in us) / n - mean * mean
        self._imbalance = math.sqrt(var) if var > 0 else 0.0
        self._tod = tod
        self._last_dem, self._last_ready, self._last_lat, self._last_load = dem, ready, lat, load
        self._last_pods_per_node = np.asarray(meas.pods_per_node, dtype=np.int64)
        total = sum(des)
        mean_lat = float(meas.mean_latency_ms)
        sla = meas.sla_violation_rate
        sla_v = 0.0 if sla is None else float(sla)
        self._last_reward = self._reward(mean_lat, total, sla_v)
        metrics = {
            "latency_ms": mean_lat,
            "replicas": float(total),
            "replicas_ready": float(sum(ready)),
            "demand_rps": float(sum(dem)),
            "failed_rps": float(meas.failed_rps),
            "imbalance": self._imbalance,
        }
        if sla is not None:
            metrics["sla_violation_rate"] = sla_v
        flat = np.array(vals, dtype=np.float32)
        return (flat if self.obs_mode == "flat" else self._to_dict(flat)), metrics

    def _to_dict(self, flat: np.ndarray) -> dict[str, Any]:
        n, sc = self.n, self.scenario
        # measured ready pods of each deployment on each node (ClusterMeasurement.pods_per_node)
        per_node = self.backend.pods_per_node() if self._is_sim else self._last_pods_per_node
        cap = sc.node_capacity
        pu = sc.pod_usage
        f32 = np.float32
        nodes = {}
        for j, nm in enumerate(sc.node_names):
            deps = {}
            for i, dep in enumerate(self.deployments):
                k = int(per_node[i, j])
                deps[dep] = {
                    "CPU_usage": np.array(pu.get("cpu", 0.0) * k, dtype=f32),
                    "RAM_usage": np.array(pu.get("ram", 0.0) * k, dtype=f32),
                    "TX_usage": np.array(pu.get("tx_bandwidth", 0.0) * k, dtype=f32),
                    "RX_usage": np.array(pu.get("rx_bandwidth", 0.0) * k, dtype=f32),
                    "Replicas": np.array(min(k, sc.max_pods), dtype=f32),
                }
            served = [i for i in range(n) if per_node[i, j] > 0]
            lat = (sum(float(flat[3 * n + i]) for i in served) / len(served)) * self.sla_ms if served else 0.0
            nodes[nm] = {
                "CPU": np.array(cap["cpu"][j] if "cpu" in cap else 0.0, dtype=f32),
                "RAM": np.array(cap["ram"][j] if "ram" in cap else 0.0, dtype=f32),
                "TX": np.array(cap["tx_bandwidth"][j] if "tx_bandwidth" in cap else 0.0, dtype=f32),
                "RX": np.array(cap["rx_bandwidth"][j] if "rx_bandwidth" in cap else 0.0, dtype=f32),
                "deployments": deps,
                "avg_latency": np.array(min(lat, LATENCY_MAX * self.sla_ms), dtype=f32),
            }
        return {"nodes": nodes, "demand": flat[:n].copy(), "time_of_day": flat[5 * n:].copy()}

    # ------------------------------------------------------------------ rendering
    def render(self):
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; pass render_mode='ansi' or 'rgb_array'")
            return None
        from lwmecps_gym import rendering

        if self.render_mode == "ansi":
            return rendering.scaling_ansi(self)
        return rendering.scaling_rgb(self)

    def close(self):
        self.backend.close()
