"""``lwmecps_gym/Scaling-v0`` (upstream's ``lwmecps-v3``): per-site replica scaling of MEC deployments."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from lwmecps_gym.backends.base import ClusterMeasurement, ScaleCommand
from lwmecps_gym.backends.sim.batched import LOAD_MAX, scaling_features  # noqa: F401  (LOAD_MAX: a bound below)
from lwmecps_gym.core.env import BackendEnv
from lwmecps_gym.core.validation import check_choice, check_float
from lwmecps_gym.envs.common import build_backend, build_scenario, wallclock_time_of_day_s

#: Saturation bounds of the flat observation (documented in the class docstring).
DEMAND_MAX = 4.0
LATENCY_MAX = 10.0


class LWMECPSEnv3(BackendEnv[ClusterMeasurement]):
    """Per-site replica scaling of MEC deployments on an edge Kubernetes cluster.

    Registered as ``lwmecps_gym/Scaling-v0`` and, for upstream's users, ``lwmecps-v3`` (the
    same env and episode length).

    ## Description

    One deployment per edge site (deployment ``i`` is pinned to node ``i`` by node affinity,
    as upstream's ``lwmecps-testapp-server-bsN``). Users attached to base stations send
    requests to the deployment of their nearest edge node; the agent sets every
    deployment's replica count each control period (``interval_s`` seconds) and is
    rewarded for low windowed latency, few SLA violations, few replicas and balanced load.
    New pods serve only after a start-up delay, so anticipating demand pays and thrashing
    costs. With ``backend="sim"`` (default) the cluster is the seeded simulator
    :class:`~lwmecps_gym.backends.sim.SimBackend` on scenario ``melbourne-cbd`` (real EUA
    sites and users); ``backend="kubernetes"`` drives a real cluster. A step is
    ``backend.apply(ScaleCommand(replicas))``, ``backend.advance(interval_s)``,
    ``m = backend.observe()``; observation, reward and info are functions of ``m``
    (:class:`~lwmecps_gym.backends.base.ClusterMeasurement`), whatever the backend.

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
    (replicas are the measured pods *on that node*, latency is windowed). SB3 warns about
    nested dicts; use it for inspection, not training.

    ## Rewards

    ``r = -(w_latency * L / sla_ms + w_replicas * R / (n max_replicas) + w_imbalance * I + w_sla * V)``
    where ``L`` is the request-weighted mean end-to-end latency of the window (ms; failed
    requests count at the client timeout), ``R`` the total desired replicas, ``I`` the
    population standard deviation over deployments of ``min(load_i, 1)`` (in [0, 0.5]), and
    ``V`` the SLA-violation fraction. Defaults 1.0, 0.1, 0.1 (upstream's alpha, beta, gamma)
    and ``w_sla = 1.0``. Rewards are Python floats, a pure function of the measurement
    (:meth:`reward`). A real backend whose latency source cannot measure ``V`` (the test app's
    API has no per-request latencies) reports it as ``None``: the SLA term is then left out of
    the reward (not replaced by an estimate) and ``sla_violation_rate`` is absent from
    ``info["metrics"]``.

    ## Starting State

    ``reset(seed)`` rewinds the simulator: every deployment has ``initial_replicas`` (1)
    ready pods, the backlog is empty, the workload starts at a seeded time of day. Same seed
    -> same trajectory for the same actions. On Kubernetes the cluster cannot be rewound.

    ## Episode End

    No terminal state (a continuing control task); both ids are registered with
    ``max_episode_steps=240`` (2 simulated hours at the default 30 s period), so episodes
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
    | ``base_url`` | str | None | test-app URL (real backend; also an ``env_config`` key) |
    | ``env_config`` | dict | {} | upstream's: ``base_url``, ``stabilization_time``; on Kubernetes any :class:`~lwmecps_gym.backends.kubernetes.KubernetesConfig` key |
    | ``interval_s`` | float | 30 (sim), 10 (kubernetes) | control period, s (simulated on ``sim``); aliases ``stabilization_time`` (upstream), ``window_s`` |
    | ``scenario`` | str or Scenario | "melbourne-cbd" | ``"melbourne-cbd"``, ``"minikube-4"`` or a Scenario |
    | ``scenario_options`` | dict | None | builder options, e.g. ``{"n_nodes": 10}`` |
    | ``backend`` | str or ClusterBackend | "sim" | ``"sim"``, ``"kubernetes"`` or an instance |
    | ``sim_config`` | dict | None | :class:`~lwmecps_gym.backends.sim.SimConfig` fields (``sim`` only) |
    | ``backend_kwargs`` | dict | None | ``kubernetes`` only: KubernetesConfig keys and ``api_client`` |
    | ``sla_ms`` | float | scenario's (100) | end-to-end latency SLA, ms |
    | ``w_latency``, ``w_replicas``, ``w_imbalance``, ``w_sla`` | float | 1.0, 0.1, 0.1, 1.0 | reward weights |
    | ``max_replicas`` | int | from capacities | action bound per deployment |
    | ``obs_mode`` | str | "flat" | "flat" or "dict" |
    | ``action_mode`` | str | "discrete" | "discrete" or "continuous" |
    | ``render_mode`` | str | None | "ansi" or "rgb_array" |

    ## Version History

    * Scaling-v0 / lwmecps-v3: this version (upstream's v3 semantics, rebuilt: windowed
      latency, per-site demand and time of day observed, independent seeded episodes, flat
      SB3-ready spaces).

    ## Example

    >>> import gymnasium as gym, lwmecps_gym
    >>> env = gym.make("lwmecps_gym/Scaling-v0", scenario="minikube-4")
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, env.action_space
    ((22,), MultiDiscrete([5 5 5 5]))
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> sorted(info["metrics"])[:3], type(reward).__name__
    (['demand_rps', 'failed_rps', 'imbalance'], 'float')
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
        interval_s: float | None = None,
        window_s: float | None = None,
        backend_kwargs: Mapping[str, Any] | None = None,
    ):
        self.obs_mode = check_choice("obs_mode", obs_mode, ("flat", "dict"))
        self.action_mode = check_choice("action_mode", action_mode, ("discrete", "continuous"))
        self.render_mode = check_choice("render_mode", render_mode, (None, *self.metadata["render_modes"]))
        self._map = None  # rgb_array: the map renderer, with the episode's measurements (handed over in info())
        if self.render_mode == "rgb_array":
            from lwmecps_gym.rendering import MapRenderer

            self._map = MapRenderer()
        self.w_latency = check_float("w_latency", w_latency, low=0.0)
        self.w_replicas = check_float("w_replicas", w_replicas, low=0.0)
        self.w_imbalance = check_float("w_imbalance", w_imbalance, low=0.0)
        self.w_sla = check_float("w_sla", w_sla, low=0.0)
        self.scenario = sc = build_scenario(
            mode="scaling", node_name=node_name, max_hardware=max_hardware, pod_usage=pod_usage,
            node_info=node_info, num_nodes=num_nodes, deployments=deployments, max_pods=max_pods,
            scenario=scenario, scenario_options=scenario_options, max_replicas=max_replicas,
        )
        setup = build_backend(
            sc, mode="scaling", backend=backend, namespace=namespace, deployment_name=deployment_name,
            deployments=deployments, group_id=group_id, base_url=base_url, env_config=env_config,
            interval_s=interval_s, stabilization_time=stabilization_time, window_s=window_s,
            sim_config=sim_config, backend_kwargs=backend_kwargs, sla_ms=sla_ms,
        )
        self.backend = setup.backend
        #: control period, seconds (simulated seconds on ``backend="sim"``)
        self.interval_s = setup.interval_s
        self.sla_ms = setup.sla_ms
        self.max_replicas = m = sc.max_replicas
        self.deployments = list(self.backend.deployments)
        self.node_names = list(sc.node_names)
        self.n = n = len(self.deployments)
        self.mu = float(sc.service_rate_rps)
        # the reward's normalisations folded into the weights
        self._wl = self.w_latency * (1.0 / self.sla_ms)
        self._wr = self.w_replicas * (1.0 / (n * m))

        if self.action_mode == "discrete":
            self.action_space = spaces.MultiDiscrete(np.full(n, m + 1, dtype=np.int64))
        else:
            self.action_space = spaces.Box(-1.0, 1.0, shape=(n,), dtype=np.float32)
        low = np.zeros(5 * n + 2, dtype=np.float32)
        high = np.concatenate(
            [np.full(n, DEMAND_MAX), np.ones(n), np.ones(n), np.full(n, LATENCY_MAX), np.full(n, LOAD_MAX), [1.0, 1.0]]
        ).astype(np.float32)
        low[5 * n:] = -1.0
        self.flat_observation_space = spaces.Box(low, high, dtype=np.float32)
        self.observation_space = self.flat_observation_space if self.obs_mode == "flat" else self._dict_space()
        self._obs_low, self._obs_high = low, high
        inv_m = 1.0 / m
        # observation = features (float64 -> float32) x scale, capped at the space's bounds
        self._obs_scale = np.concatenate(
            [np.full(n, 1.0 / (m * self.mu)), np.full(2 * n, inv_m), np.full(n, 1.0 / self.sla_ms), np.ones(n + 2)]
        ).astype(np.float32)
        #: (w_latency / sla_ms, w_replicas / (n max_replicas), w_imbalance, w_sla, service rate): :func:`scaling_features`
        self._consts = np.array([self._wl, self._wr, self.w_imbalance, self.w_sla, self.mu])
        #: the constant arguments of :func:`scaling_features` for this env: ``(consts, scale, low, high)``
        self.feature_constants = (self._consts, self._obs_scale, self._obs_low, self._obs_high)
        self._view_of: ClusterMeasurement | None = None
        self._view: dict[str, Any] = {}

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
                "CPU": box(float(cap["cpu"][j]) if "cpu" in cap else 0.0),
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

    # ------------------------------------------------------------------ template hooks
    def decode_action(self, action: Any) -> ScaleCommand:
        """The :class:`~lwmecps_gym.backends.base.ScaleCommand` of ``action`` (see Action Space).

        Raises:
            ValueError: wrong shape, non-integer counts, or values outside the action space.
        """
        n, m = self.n, self.max_replicas
        if self.action_mode == "discrete":
            arr = action if action.__class__ is np.ndarray else np.asarray(action)
            if arr.shape != (n,):
                raise ValueError(f"action must be {n} replica counts (MultiDiscrete shape ({n},)), got {action!r}")
            if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
                arr = arr.astype(np.int64)
            if arr.dtype.kind not in "iu":
                raise ValueError(f"action must contain integer replica counts, got {action!r}")
            lst = arr.tolist()
            if min(lst) < 0 or max(lst) > m:
                raise ValueError(f"action replica counts must be in [0, {m}] (max_replicas), got {action!r}")
            return ScaleCommand(lst)
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"action must be {n} target replica fractions in [-1, 1] (Box shape ({n},)), "
                             f"got {action!r}") from None
        if a.shape != (n,):
            raise ValueError(f"action must have shape ({n},) (target replica fraction per deployment), got {a.shape}")
        if not np.all(np.isfinite(a)) or np.any(a < -1.0) or np.any(a > 1.0):
            raise ValueError(f"continuous action values must be finite and in [-1, 1], got {action!r}")
        return ScaleCommand([int(math.floor((x + 1.0) * 0.5 * m + 0.5)) for x in a.tolist()])

    def features(self, m: ClusterMeasurement) -> dict[str, Any]:
        """The per-window values behind observation, reward and info, from measurement ``m``.

        Returns a dict: Python lists ``demand_rps``, ``replicas_ready``, ``replicas_desired``,
        ``latency_ms``, ``load`` (per deployment; offered load per ready replica, ``demand / (ready
        x service rate)``, ``LOAD_MAX`` with demand and no ready pod), floats ``imbalance``
        (population std of ``min(load, 1)``), ``time_of_day_s`` (the backend's, else the wall clock)
        and ``reward``, and ``obs`` (``float32 (5n + 2,)``, the flat observation). Computed once per
        measurement by :func:`scaling_features` (shared with the native vector env).
        """
        if m is self._view_of:
            return self._view
        tod = m.time_of_day_s
        tod = wallclock_time_of_day_s() if tod is None else float(tod)
        sla = m.sla_violation_rate
        n = self.n
        obs = np.empty((1, 5 * n + 2), dtype=np.float32)
        out = np.empty((5, 1))
        load = np.empty((1, n))
        dem, ready, desired = m.demand_rps, m.replicas_ready, m.replicas_desired
        scaling_features(dem.reshape(1, n), ready.reshape(1, n), desired.reshape(1, n), m.latency_ms.reshape(1, n),
                         np.array([m.mean_latency_ms, 0.0 if sla is None else sla, tod]).reshape(3, 1),
                         self._consts, self._obs_scale, self._obs_low, self._obs_high, obs, out, load)
        o = out[:, 0].tolist()
        self._view = {
            "demand_rps": dem.tolist(),
            "replicas_ready": ready.tolist(),
            "replicas_desired": desired.tolist(),
            "latency_ms": m.latency_ms.tolist(),
            "load": load[0].tolist(),
            "imbalance": o[1],
            "time_of_day_s": tod,
            "reward": o[0],
            "sums": o[2:],
            "obs": obs[0],
        }
        self._view_of = m
        return self._view

    def observation(self, m: ClusterMeasurement) -> Any:
        """The observation of ``m`` (see Observation Space): a fresh array (or dict) each call."""
        obs = self.features(m)["obs"].copy()
        if self.obs_mode == "flat":
            return obs
        return self._to_dict(obs, m.pods_per_node)

    def reward(self, m: ClusterMeasurement) -> float:
        """The reward of the Rewards section, a pure function of ``m`` (and the weights)."""
        return self.features(m)["reward"]

    def metrics(self, m: ClusterMeasurement) -> dict[str, float]:
        """``info["metrics"]``: the window's raw, unit-labelled measurements (floats)."""
        v = self.features(m)
        replicas, replicas_ready, demand = v["sums"]
        out = {
            "latency_ms": float(m.mean_latency_ms),
            "replicas": replicas,
            "replicas_ready": replicas_ready,
            "demand_rps": demand,
            "failed_rps": float(m.failed_rps),
            "imbalance": v["imbalance"],
        }
        if m.sla_violation_rate is not None:
            out["sla_violation_rate"] = float(m.sla_violation_rate)
        return out

    def info(self, m: ClusterMeasurement) -> dict[str, Any]:
        """Step info: ``metrics`` and the per-deployment lists of :meth:`features` (fresh copies)."""
        if self._map is not None:
            self._map.record(m)
        v = self.features(m)
        return {
            "metrics": self.metrics(m),
            "demand_rps": list(v["demand_rps"]),
            "replicas_ready": list(v["replicas_ready"]),
            "replicas_desired": list(v["replicas_desired"]),
            "latency_ms": list(v["latency_ms"]),
            "load": list(v["load"]),
            "time_of_day_s": v["time_of_day_s"],
        }

    def reset_info(self, m: ClusterMeasurement) -> dict[str, Any]:
        """Reset info: the static values baselines need (scenario, names, bounds, weights, site RTTs) + :meth:`info`."""
        sc = self.scenario
        site = sc.site_rtt_ms()
        return {
            "scenario": sc.describe(),
            "deployments": list(self.deployments),
            "node_names": list(self.node_names),
            "max_replicas": self.max_replicas,
            "service_rate_rps": self.mu,
            "sla_ms": self.sla_ms,
            "interval_s": self.interval_s,
            "reward_weights": {"w_latency": self.w_latency, "w_replicas": self.w_replicas,
                               "w_imbalance": self.w_imbalance, "w_sla": self.w_sla},
            # mean RTT (ms) from each deployment's home users to its own node (spread layout: the best node)
            "site_rtt_ms": [float(site[d][d]) if sc.pinned else float(min(site[0])) for d in range(self.n)],
            **self.info(m),
        }

    def _to_dict(self, flat: np.ndarray, per_node: np.ndarray) -> dict[str, Any]:
        n, sc = self.n, self.scenario
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
        return self._map.frame(self)
