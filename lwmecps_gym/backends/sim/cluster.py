"""A seeded, fast model of an edge Kubernetes cluster serving location-bound users.

Model, per control period of ``interval_s`` simulated seconds (upstream's ``stabilization_time``):

* **Deployments and pods.** Deployment ``d`` is pinned to node ``d`` (v3's per-site layout)
  or, when the scenario has a single deployment, spread round-robin over all nodes. A node
  fits ``Scenario.pods_fit()`` pods (cpu and ram requests); extra pods stay Pending forever,
  as on Kubernetes. Scaling up creates pods that become ready after a **start-up delay**
  drawn once per scale-up event (the pods of one event share the image pull and readiness
  probe) from ``LogNormal(log(pod_startup_median_s), pod_startup_sigma)`` on the *system*
  stream. Scaling down removes Pending pods first, then ready pods (they stop serving at
  once). A placement move (v0-v2) is a RollingUpdate with ``maxUnavailable = 0``: the old
  pods serve until the new ones are ready, then traffic switches; a move to a node without
  room never completes (the new pods stay Pending) and the old pods keep serving.
* **Routing.** A request goes to the deployment serving its base station's nearest node.
  While a deployment has no ready pod, its requests fail over to the nearest deployment
  (by RTT) that has ready pods at the window start; if there is none they fail. Failed-over
  requests are spread over the window (a window-level approximation).
* **Queueing.** Each deployment is a pooled M/M/c queue (c = ready pods, exponential
  service of rate ``service_rate_rps``; pooled = least-request balancing across pods).
  Within a window the number of ready pods is piecewise constant (pods become ready at
  their start-up times); each piece is evaluated in its stationary regime with Erlang C
  (pointwise-stationary approximation, Green & Kolesar, Management Science 1991). When the
  offered load exceeds capacity, or a backlog is left from an overloaded window, the queue
  is a deterministic fluid: the backlog grows (or drains) at ``lam - c mu``, a request
  arriving at backlog ``B`` waits ``B / (c mu)``, and the backlog is carried to the next
  window, so under-provisioning hurts persistently. Requests that would wait longer than
  ``timeout_s`` are dropped (the client times out): they count as failed. A stationary
  piece's mean wait ``C / (c mu - lam)`` is capped at ``timeout_s`` (it diverges as
  ``lam -> c mu``, where no window reaches stationarity and clients give up).
* **Latency.** End-to-end latency of a request = RTT (request-weighted mean RTT from the
  users' base stations to the serving node) + wait + service. Reported per window (not
  cumulative). Failed requests count at ``timeout_s`` in the mean latency and always
  violate the SLA. The SLA-violation probability of a served request is the M/M/c
  response-time tail ``P(T > sla - rtt)`` (stationary pieces) or its fluid analogue.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, NamedTuple

import numpy as np

from lwmecps_gym.backends.base import ClusterMeasurement, PlaceCommand, ScaleCommand
from lwmecps_gym.backends.sim.batched import (
    DELAY_RING,
    ScalingModel,
    ScalingState,
    deployment_window,
    erlang_array,
    piece,
    reset_clusters,
    scale,
    serve_window,
)
from lwmecps_gym.backends.sim.poisson import pcg64_state, set_pcg64_state, spawned_states, uniform_states
from lwmecps_gym.backends.sim.workload import DayTrace, EpisodeWorkload, Windows, draw_start, draw_windows
from lwmecps_gym.core.queueing import ViolationTable, erlang_table
from lwmecps_gym.core.seeding import DEFAULT_STREAMS, streams_from_seed
from lwmecps_gym.core.validation import (
    check_choice,
    check_float,
    check_int,
    coerce_dataclass,
    resolve_alias,
    unset,
)
from lwmecps_gym.scenarios import Scenario


@dataclass(frozen=True)
class SimConfig:
    """Simulator constants (units in the names).

    Attributes:
        interval_s: control period (one window), simulated seconds; upstream's
            ``stabilization_time``. A mapping may give it as ``window_s`` (the earlier name,
            a documented alias; ``SimConfig.window_s`` reads it too).
        pod_startup_median_s: median pod start-up delay (scheduling, container start,
            readiness probe with a cached image), s. The Kubernetes SIG-scalability SLO
            asks for p99 <= 5 s for stateless pods without image pull; probes with a 10 s
            period push typical readiness to ~10 s.
        pod_startup_sigma: log-standard deviation of the start-up delay.
        timeout_s: client timeout; longer waits are dropped (failed), s.
        sla_ms: end-to-end SLA used for the violation rate, ms (``None``: the scenario's).
        horizon_windows: windows drawn per workload chunk (at reset, then whenever the
            episode runs past the drawn windows). Only a speed knob: the Poisson draws are
            sequential, so any chunk size gives the same arrivals. The default covers a
            whole ``lwmecps-v3`` episode (240 windows) in one draw.
        start_time_s: fixed episode start time of day, s (``None``: seeded uniform).
        initial_replicas: ready replicas of every deployment at ``reset`` (scaling mode).
        trace_seed: seed of the day of user mobility and activity levels (see
            :class:`~lwmecps_gym.backends.sim.workload.DayTrace`); part of the scenario.
        demand_events: optional demand-event model multiplying the deployments' arrival
            rates window by window (e.g. :class:`lwmecps_gym.scenarios.events.FlashCrowds`):
            any object with ``modulation(rng, n_windows, n_deployments, window_s, carry) ->
            (float64 (n_windows, n_deployments) factors, carry)``, drawn from the workload
            stream. ``None`` (default): no events.
    """

    interval_s: float = 30.0
    pod_startup_median_s: float = 10.0
    pod_startup_sigma: float = 0.4
    timeout_s: float = 1.0
    sla_ms: float | None = None
    horizon_windows: int = 256
    start_time_s: float | None = None
    initial_replicas: int = 1
    trace_seed: int = 0
    demand_events: Any = None

    @property
    def window_s(self) -> float:
        """Alias of :attr:`interval_s` (the earlier name)."""
        return self.interval_s

    @classmethod
    def coerce(cls, value: SimConfig | Mapping | None) -> SimConfig:
        """A :class:`SimConfig` from an instance, a mapping of its fields (``window_s`` accepted for
        ``interval_s``) or ``None``.

        Raises:
            ValueError / TypeError: unknown keys (naming the allowed ones), both ``interval_s`` and
                ``window_s``, or a value that is not a mapping.
        """
        if isinstance(value, Mapping) and "window_s" in value:
            value = dict(value)
            value["interval_s"] = resolve_alias("sim_config['interval_s']", value.pop("interval_s", unset()),
                                                "sim_config['window_s']", value.pop("window_s"), None)
        return coerce_dataclass(cls, value, "sim_config")


#: Field names of :class:`SimConfig` (``window_s`` is accepted as an alias of ``interval_s``).
SIM_CONFIG_FIELDS = tuple(f.name for f in fields(SimConfig))


class Episodes(NamedTuple):
    """The random input of ``K`` episodes (:meth:`SimBackend.draw_episodes`).

    streams: ``uint64 (K, 4)`` the episodes' workload streams as PCG64 states
    (:func:`~.poisson.pcg64_state` rows; :func:`~.poisson.generator_at` makes a Generator of one),
    where the drawn windows left them (later windows continue from there). start_s: ``float64 (K,)``
    start times of day, s.
    windows: the first ``horizon_windows`` windows (:class:`~.workload.Windows`, window axis first).
    delays: ``float64 (K, 256)`` pod start-up delays, s.
    """

    streams: np.ndarray
    start_s: np.ndarray
    windows: Windows
    delays: np.ndarray


class SimBackend:
    """Simulated cluster implementing :class:`~lwmecps_gym.backends.base.ClusterBackend`.

    Args:
        scenario: the static :class:`~lwmecps_gym.scenarios.Scenario`.
        config: :class:`SimConfig` (or a mapping of its fields).
        mode: ``"scaling"`` (v3: replicas per deployment) or ``"placement"`` (v0-v2: one
            deployment of ``placement_replicas`` pods, moved between nodes).
        placement_deployment: name of the placed deployment (placement mode).
        placement_replicas: replicas of the placed deployment (default: as many as fit on
            the smallest node, at most ``scenario.max_replicas``).

    The envs use only the contract: :meth:`reset` (one seed), :meth:`apply`
    (:class:`~lwmecps_gym.backends.base.ScaleCommand` / ``PlaceCommand``), :meth:`advance`
    and :meth:`observe` (a :class:`ClusterMeasurement` of the last window, a handful of small
    arrays). ``scale``/``place`` are the same operations named as on Kubernetes;
    :meth:`step_window` is ``advance(interval_s)``. Clairvoyant helpers for oracles and tests:
    :meth:`demand_forecast`, :meth:`next_window_demand`, :meth:`next_window_rtt_ms`,
    :meth:`preview_site`.

    The scaling layout's state is :attr:`state` (a one-cluster
    :class:`~lwmecps_gym.backends.sim.batched.ScalingState`) and its window is
    :func:`~lwmecps_gym.backends.sim.batched.serve_window`, the model the native vector env runs
    for many clusters; ``desired``, ``ready``, ``backlog`` and ``pending`` are list copies of it.
    :meth:`draw_episodes` draws episodes' random input (workload, start-up delays) for both.
    """

    def __init__(
        self,
        scenario: Scenario,
        config: SimConfig | Mapping | None = None,
        mode: str = "scaling",
        placement_deployment: str | None = None,
        placement_replicas: int | None = None,
    ):
        self.sc = scenario
        self.cfg = cfg = SimConfig.coerce(config)
        self.tau = check_float("interval_s", cfg.interval_s, low=0.0, low_open=True)
        check_float("pod_startup_median_s", cfg.pod_startup_median_s, low=0.0)
        check_float("pod_startup_sigma", cfg.pod_startup_sigma, low=0.0)
        check_int("horizon_windows", cfg.horizon_windows, low=1)
        self.timeout_s = check_float("timeout_s", cfg.timeout_s, low=0.0, low_open=True)
        if cfg.start_time_s is not None:
            start = check_float("start_time_s", cfg.start_time_s, low=0.0)
            if start >= 86400.0:
                raise ValueError(f"start_time_s is a time of day and must be in [0, 86400) s, got {cfg.start_time_s!r}")
        check_int("initial_replicas", cfg.initial_replicas, low=0, high=scenario.max_replicas)
        sla_ms = scenario.sla_ms if cfg.sla_ms is None else check_float("sla_ms", cfg.sla_ms, low=0.0, low_open=True)
        self.sla_s = sla_ms / 1000.0
        self.mode = check_choice("mode", mode, ("scaling", "placement"))
        self.node_names = list(scenario.node_names)
        self.mu = float(scenario.service_rate_rps)
        self.fit = [int(x) for x in scenario.pods_fit()]
        n = scenario.n_nodes
        home = scenario.bs_home_node()
        if self.mode == "scaling":
            self.deployments = list(scenario.deployments)
            self.pinned = scenario.pinned
            self.bs_dep = home if self.pinned else np.zeros(scenario.n_bs, dtype=np.int64)
            self.dep_fit = self.fit if self.pinned else [sum(self.fit)]
        else:
            name = placement_deployment or scenario.deployments[0]
            if not isinstance(name, str):
                raise TypeError(f"deployment_name must be a string, got {name!r}")
            self.deployments = [name]
            self.pinned = False
            self.bs_dep = np.zeros(scenario.n_bs, dtype=np.int64)
            default_rep = max(1, min(min(self.fit), scenario.max_replicas))
            self.placement_replicas = (
                default_rep if placement_replicas is None else check_int("replicas", placement_replicas, low=1)
            )
            self.dep_fit = [self.placement_replicas]
        self.n_dep = len(self.deployments)
        self._dep_index = {d: i for i, d in enumerate(self.deployments)}
        self._node_index = {nm: j for j, nm in enumerate(self.node_names)}
        self.table = erlang_table(max(max(self.dep_fit), scenario.max_replicas, 1) + 1)
        self.vtable = ViolationTable(self.table.c_max, self.mu)
        from lwmecps_gym.backends.sim.workload import idle_rtt_of

        self._idle_rtt = idle_rtt_of(scenario, self.bs_dep, self.n_dep)
        # static per-site RTT (users at home, unweighted) for failover, and failover order
        site_rtt = scenario.site_rtt_ms()
        #: ``site_rtt[d][e]``: mean RTT (ms) from site ``d``'s users to node ``e`` (:meth:`Scenario.site_rtt_ms`)
        self.site_rtt = site_rtt.tolist()
        if self.mode == "scaling" and self.pinned:
            self.failover_order = [[int(e) for e in np.argsort(site_rtt[d], kind="stable") if e != d] for d in range(n)]
        else:
            self.failover_order = [[] for _ in range(self.n_dep)]
        #: scaling layout: the model's constants (:mod:`.batched`, shared with the native vector env)
        self.model: ScalingModel | None = None
        if self.mode == "scaling":
            spread = None
            if not self.pinned:
                spread = np.array([self._spread_counts(k) for k in range(self.dep_fit[0] + 1)], dtype=np.int64)
            self.model = ScalingModel(
                tau=self.tau, mu=self.mu, timeout_s=self.timeout_s, sla_s=self.sla_s, dep_fit=self.dep_fit,
                pinned=self.pinned, failover_order=self.failover_order, site_rtt=self.site_rtt,
                table=self.table, vtable=self.vtable, spread_counts=spread,
            )
        #: the cluster's state as arrays of one cluster (:class:`~.batched.ScalingState`, ``num_envs = 1``)
        self.state = ScalingState(1, self.n_dep)
        self._trace = None
        self._system_bits = np.random.PCG64(0)  # set to each episode's system stream in turn (draw_episodes)
        self.reset(seed=0)

    # ------------------------------------------------------------------ episode
    def reset(self, seed: int | None = None) -> None:
        """Rewind: initial replicas, empty backlog, fresh workload from a seeded start.

        The workload and system streams are :func:`lwmecps_gym.core.seeding.streams_from_seed`
        of ``seed`` (the env hands over ``draw_seed(env.np_random)``); ``None``: OS entropy.
        """
        self.workload, delays = self.draw_episode(seed)
        self.t = 0
        self.now = 0.0
        nd = self.n_dep
        st = self.state
        if self.mode == "scaling":
            r0 = check_int("initial_replicas", self.cfg.initial_replicas, low=0)
            wl = self.workload
            reset_clusters(self.model, st, np.zeros(1, dtype=np.int64), r0, wl.lam_arr[0:1], wl.rtt_arr[0:1],
                           delays[None, :])
        else:
            st.delays[0] = delays
            st.di[0] = 0
            st.now[0] = 0.0
            st.backlog[0] = 0.0
            self.node = 0
            self.target = 0
            self.switch_at = -1.0
            self._place_pods(min(self.placement_replicas, self.fit[0]))
            lam = self.workload.lam[0]
            own = self.workload.rtt_own[0]
            c = self.ready[0]
            self.last_demand = list(lam)
            self.last_latency_ms = [own[d] + 1000.0 / self.mu for d in range(nd)]
            self.last_load = [lam[d] / (c * self.mu) if c else (4.0 if lam[d] > 0 else 0.0) for d in range(nd)]
            self.last_sla = 0.0
            self.last_mean_latency_ms = sum(self.last_latency_ms) / nd
            self.last_failed_rps = 0.0
            self.last_served_rps = 0.0
        #: placement layout: request-weighted RTT (ms) to every node in the last window
        self.last_rtt_to_nodes_ms: list[float] = []
        #: placement moves started since the last window began / in the last window
        self._moves = 0
        self.last_migrations = 0

    def draw_episode(self, seed: int | None) -> tuple[EpisodeWorkload, np.ndarray]:
        """The random input of an episode reset with ``seed``, without touching this backend's state.

        Returns ``(workload, delays)``: the :class:`~.workload.EpisodeWorkload` with its first
        ``horizon_windows`` windows drawn and ``float64 (256,)`` pod start-up delays, s: episode 0 of
        :meth:`draw_episodes`.
        """
        ep = self.draw_episodes([seed])
        workload = EpisodeWorkload(self.trace, self.sc, ep.streams[0], float(ep.start_s[0]), self.cfg.demand_events)
        workload.append(ep.windows, 0)
        return workload, ep.delays[0]

    def draw_episodes(self, seeds: Sequence[int | None], n_windows: int | None = None,
                      out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Episodes:
        """The random input of ``K = len(seeds)`` episodes, each as :meth:`reset` with its seed would draw it.

        ``n_windows`` (default ``horizon_windows``) windows are drawn; fewer only where no more can be
        used (episodes truncated sooner) and without demand events: the Poisson draws being sequential,
        the first windows and the stream after them do not depend on how many are drawn at once (with
        demand events they do: the modulation is drawn per chunk). ``out``: arrays the windows are
        written into (:func:`~.workload.draw_windows`).

        Episode ``j``'s workload and system streams are
        :func:`lwmecps_gym.core.seeding.streams_from_seed` of ``seeds[j]``; the workload stream gives
        the start time of day (:func:`~.workload.draw_start`, unless ``start_time_s`` is set), then the
        first ``horizon_windows`` windows (:func:`~.workload.draw_windows`, all episodes at once); the
        system stream gives 256 standard normals for the start-up delays (:meth:`startup_delays`).
        :meth:`reset` (one seed) and the native vector env (blocks of sub-envs) draw every episode here.
        Integer seeds' streams are seeded by :func:`~.poisson.spawned_states` (compiled, the same
        states), ``None`` (OS entropy) by ``streams_from_seed``.

        Raises:
            ValueError: a seed that is neither ``None`` nor a non-negative integer.
        """
        cfg = self.cfg
        K = len(seeds)
        normals = np.empty((K, DELAY_RING))
        if all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and 0 <= s < 2**64 for s in seeds):
            both = spawned_states([int(s) for s in seeds], len(DEFAULT_STREAMS))  # (K, [workload, system], 4)
            states = np.ascontiguousarray(both[:, 0])
            bg = self._system_bits
            gen = np.random.Generator(bg)
            for j in range(K):
                set_pcg64_state(bg, both[j, 1])
                gen.standard_normal(out=normals[j])
        else:
            states = np.empty((K, 4), dtype=np.uint64)
            for j, seed in enumerate(seeds):
                streams = streams_from_seed(seed)  # None: OS entropy; refuses bad seeds
                states[j] = pcg64_state(streams.workload.bit_generator)
                streams.system.standard_normal(out=normals[j])
        if cfg.start_time_s is None:
            start = uniform_states(states, 86400.0)  # draw_start's draw from each workload stream
        else:
            start = np.full(K, draw_start(None, cfg.start_time_s))
        T = cfg.horizon_windows if n_windows is None else check_int("n_windows", n_windows, low=1)
        if cfg.demand_events is not None and T != cfg.horizon_windows:
            raise ValueError(f"with demand events an episode's first chunk is horizon_windows={cfg.horizon_windows} "
                             f"windows, got n_windows={n_windows}")
        windows = draw_windows(self.trace, self.sc, states, start, np.zeros(K, dtype=np.int64), T, cfg.demand_events,
                               out=out)
        return Episodes(states, start, windows, self.startup_delays(normals))

    @property
    def trace(self) -> DayTrace:
        """The scenario's day of user mobility (:class:`~.workload.DayTrace`, built on first use, cached)."""
        if self._trace is None:
            self._trace = DayTrace.cached(self.sc, self.tau, self.bs_dep, self.cfg.trace_seed, self._idle_rtt, self.n_dep)
        return self._trace

    def startup_delays(self, normals: np.ndarray) -> np.ndarray:
        """Pod start-up delays, s, from standard normals (any shape; an episode draws ``DELAY_RING`` = 256
        from its system stream): LogNormal with median ``pod_startup_median_s`` and log-sd ``pod_startup_sigma``."""
        med, sig = self.cfg.pod_startup_median_s, self.cfg.pod_startup_sigma
        return med * np.exp(sig * normals) if med > 0 else np.zeros_like(normals)

    def _generate(self) -> None:
        """Draw the next chunk of workload windows."""
        self.workload.generate(self.cfg.horizon_windows)

    def _delay(self) -> float:
        st = self.state
        i = int(st.di[0])
        st.di[0] = (i + 1) & 255
        return float(st.delays[0, i])

    def _place_pods(self, pods: int) -> None:
        """Placement layout: the placed deployment has ``pods`` desired and ready pods."""
        self.state.desired[0, 0] = self.state.ready[0, 0] = pods

    # ------------------------------------------------------------------ state views (copies)
    @property
    def desired(self) -> list[int]:
        """Desired replicas (``spec.replicas``) per deployment (a copy)."""
        return self.state.desired[0].tolist()

    @property
    def ready(self) -> list[int]:
        """Ready pods per deployment (a copy)."""
        return self.state.ready[0].tolist()

    @property
    def backlog(self) -> list[float]:
        """Fluid backlog (requests) per deployment carried to the next window (a copy)."""
        return self.state.backlog[0].tolist()

    @property
    def pending(self) -> list[list[list]]:
        """Pending scale-ups per deployment: ``[[ready_time_s, pods], ...]`` oldest first (a copy)."""
        return [self.state.pending(0, d) for d in range(self.n_dep)]

    # ------------------------------------------------------------------ actions
    def apply(self, command: ScaleCommand | PlaceCommand) -> None:
        """Enact a :class:`~lwmecps_gym.backends.base.ScaleCommand` (scaling mode) or
        :class:`~lwmecps_gym.backends.base.PlaceCommand` (placement mode).

        Raises:
            TypeError: not one of the two commands.
            RuntimeError: the command does not fit the backend's mode.
            ValueError: wrong number of replica counts, a negative one, an unknown deployment or
                node index.
        """
        cls = command.__class__
        if cls is ScaleCommand:
            if self.mode != "scaling":
                raise RuntimeError("ScaleCommand needs mode='scaling' (v3); this backend is in placement mode")
            replicas = command.replicas
            if replicas.__class__ is not list:
                replicas = list(replicas)
            if replicas and min(replicas) < 0:
                raise ValueError(f"replica counts must be >= 0, got {replicas}")
            self.scale_list(replicas)
        elif cls is PlaceCommand:
            if self.mode != "placement":
                raise RuntimeError("PlaceCommand needs mode='placement' (v0-v2); this backend is in scaling mode")
            if command.deployment != self.deployments[0]:
                raise ValueError(f"unknown deployment {command.deployment!r}; placed deployment: {self.deployments[0]!r}")
            j = command.node
            if not 0 <= j < len(self.node_names):
                raise ValueError(f"node index must be in [0, {len(self.node_names) - 1}], got {j!r}")
            if command.initial:
                self._start_at(j)
            else:
                self.place_index(j)
        else:
            raise TypeError(f"command must be a ScaleCommand or PlaceCommand, got {type(command).__name__}")

    def scale(self, replicas: Mapping[str, int]) -> None:
        """Set ``spec.replicas`` of the named deployments (Protocol form of :meth:`scale_list`)."""
        if self.mode != "scaling":
            raise RuntimeError("scale() needs mode='scaling' (v3); this backend is in placement mode")
        if not isinstance(replicas, Mapping):
            raise TypeError(f"replicas must be a mapping deployment -> int, got {type(replicas).__name__}")
        lst = list(self.desired)
        for name, r in replicas.items():
            if name not in self._dep_index:
                raise ValueError(f"unknown deployment {name!r}; deployments: {self.deployments}")
            lst[self._dep_index[name]] = check_int(f"replicas[{name!r}]", r, low=0)
        self.scale_list(lst)

    def scale_list(self, replicas: list[int]) -> None:
        """Set desired replicas by deployment index (the caller validated: ints >= 0).

        The model is :func:`lwmecps_gym.backends.sim.batched.scale`: a scale-up adds the missing
        pods as a pending group, a scale-down removes pending pods first (newest first), then
        ready ones.
        """
        st = self.state
        if len(replicas) != self.n_dep:
            raise ValueError(f"expected {self.n_dep} replica counts (one per deployment), got {len(replicas)}")
        arr = np.array(replicas, dtype=np.int64)
        if np.array_equal(arr, st.desired[0]):
            return
        st.now[0] = self.now
        scale(self.model, st, arr[None, :])

    def place(self, deployment: str, node: str) -> None:
        """Move the placed deployment to ``node`` (RollingUpdate; see module docstring)."""
        if self.mode != "placement":
            raise RuntimeError("place() needs mode='placement' (v0-v2)")
        if deployment != self.deployments[0]:
            raise ValueError(f"unknown deployment {deployment!r}; placed deployment: {self.deployments[0]!r}")
        if node not in self._node_index:
            raise ValueError(f"unknown node {node!r}; nodes: {self.node_names}")
        self.place_index(self._node_index[node])

    def place_index(self, j: int) -> None:
        """Move the placed deployment to node index ``j`` (a migration unless ``j`` is already the target)."""
        if j == self.target:
            return
        self.target = j
        self._moves += 1
        if j == self.node:
            self.switch_at = -1.0  # rolled back before the new pods were ready
        elif self.fit[j] >= self.placement_replicas:
            self.switch_at = self.now + self._delay()
        else:
            self.switch_at = math.inf  # new pods never schedulable: the rollout stalls

    def _start_at(self, j: int) -> None:
        """Episode start: the placed deployment runs on node ``j`` (ready at once; no migration)."""
        self.node = self.target = j
        self.switch_at = -1.0
        self._place_pods(min(self.placement_replicas, self.fit[j]))

    # ------------------------------------------------------------------ time
    def advance(self, seconds: float) -> None:
        """Simulate one window of ``interval_s`` seconds; ``advance(0)`` lets no time pass (a no-op).

        Raises:
            ValueError: ``seconds`` is neither 0 nor the configured ``interval_s``.
        """
        if seconds == 0:
            return
        if abs(float(seconds) - self.tau) > 1e-9:
            raise ValueError(f"the simulator advances in windows of interval_s={self.tau} s (or 0), got {seconds!r}")
        self.step_window()

    def step_window(self) -> None:
        """Serve one window of requests and advance time (``advance(interval_s)``)."""
        self.last_migrations = self._moves
        self._moves = 0
        wl = self.workload
        t = self.t
        if t >= len(wl.lam_arr):
            self._generate()
        if self.mode == "placement":
            rtt = self.last_rtt_to_nodes_ms = wl.rtt_all[t][0].tolist()
            self._window_placement(wl.rate[t][0], rtt)
            # the queues ran at the arrival rate; the cluster measures the window's Poisson count
            obs = self.last_demand = wl.lam[t]
            for d, c in enumerate(self.ready):
                self.last_load[d] = obs[d] / (c * self.mu) if c > 0 else (4.0 if obs[d] > 0.0 else 0.0)
        else:
            st = self.state
            st.now[0] = self.now
            st.t[0] = t
            serve_window(self.model, st, wl.rate_arr[:, None], wl.rtt_arr[:, None], wl.lam_arr[:, None],
                         None if self.pinned else wl.rtt_all[:, :1])
        self.t = t + 1
        self.now += self.tau
        self.state.now[0] = self.now

    def _spread_rtt(self, t: int, ready: int) -> float:
        """Mean RTT of the single spread deployment with ``ready`` ready pods (round-robin over nodes)."""
        row = self.workload.rtt_all[t][0]
        if ready <= 0:
            return float(row.min())
        counts = self._spread_counts(ready)
        return float(sum(c * float(r) for c, r in zip(counts, row, strict=True)) / ready)

    def _spread_counts(self, k: int) -> list[int]:
        counts = [0] * len(self.fit)
        placed = 0
        while placed < k:
            progressed = False
            for j in range(len(self.fit)):
                if placed < k and counts[j] < self.fit[j]:
                    counts[j] += 1
                    placed += 1
                    progressed = True
            if not progressed:
                break
        return counts

    def _window_placement(self, lam: float, rtt_to_nodes: list[float]) -> None:
        tau, now, mu = self.tau, self.now, self.mu
        end = now + tau
        c = self.ready[0]
        row = erlang_array(self.table)[c] if c <= self.table.c_max else None
        if self.switch_at >= 0.0 and self.switch_at < end:
            cut = max(0.0, self.switch_at - now)
            pieces = [(cut, self.node), (tau - cut, self.target)]
        else:
            pieces = [(tau, self.node)]
        lat_sum = viol_sum = n_sum = drop = 0.0
        B = self.backlog[0]
        for dur, node in pieces:
            if dur <= 0.0 or lam <= 0.0 or c <= 0 or row is None:
                continue
            rtt_s = rtt_to_nodes[node] * 0.001
            wsum, vsum, nacc, dropped, B = piece(c, lam, dur, B, mu, row, self.table.grid, self.timeout_s,
                                                 self.sla_s - rtt_s)
            lat_sum += wsum + nacc * rtt_s
            viol_sum += vsum
            n_sum += nacc
            drop += dropped
        self.state.backlog[0, 0] = B
        if self.switch_at >= 0.0 and self.switch_at < end:
            self.node = self.target
            self.switch_at = -1.0
        nf = drop + (lam * tau if c <= 0 else 0.0)
        total = n_sum + nf
        self.last_demand = [lam]
        self.last_failed_rps = nf / tau
        self.last_served_rps = n_sum / tau
        rtt_now = rtt_to_nodes[self.node] * 0.001
        self.last_latency_ms = [1000.0 * lat_sum / n_sum if n_sum > 0 else 1000.0 * (rtt_now + 1.0 / mu)]
        self.last_load = [lam / (c * mu) if c > 0 else (4.0 if lam > 0 else 0.0)]
        if total > 0:
            self.last_mean_latency_ms = 1000.0 * (lat_sum + nf * self.timeout_s) / total
            self.last_sla = (viol_sum + nf) / total
        else:
            self.last_mean_latency_ms = self.last_latency_ms[0]
            self.last_sla = 0.0

    def demand_forecast(self, n_windows: int, measured: bool = False) -> np.ndarray:
        """The true future demand (clairvoyant; for oracles and tests), no side effects on the episode.

        Returns ``float64 (n_windows, n_deployments)``: row ``k`` is the window that the
        ``k``-th next :meth:`advance` will serve (row 0 = the next window). ``measured=False``:
        the arrival rates the queues see (req/s); ``True``: the measured Poisson count / window.
        Raises ``ValueError`` if ``n_windows < 1``.
        """
        n_windows = check_int("n_windows", n_windows, low=1)
        while len(self.workload.lam_arr) < self.t + n_windows:
            self._generate()
        src = self.workload.lam_arr if measured else self.workload.rate_arr
        return np.array(src[self.t:self.t + n_windows], dtype=np.float64)

    def next_window_demand(self) -> list[float]:
        """Arrival rates (req/s) of the next window, by deployment (clairvoyant; for oracle baselines and tests)."""
        if self.t >= len(self.workload.lam_arr):
            self._generate()
        return self.workload.rate_arr[self.t].tolist()

    def next_window_rtt_ms(self) -> list[float]:
        """Placement layout: request-weighted RTT (ms) from the next window's users to every node (clairvoyant)."""
        if self.t >= len(self.workload.lam_arr):
            self._generate()
        return self.workload.rtt_all[self.t][0].tolist()

    def preview_site(self, d: int, replicas: int) -> tuple[float, float, float, float]:
        """What deployment ``d`` would see in the next window with ``replicas`` desired (no side effects).

        Uses the true next-window arrivals (clairvoyant; for oracle baselines). Failover
        inflow from other deployments is ignored; with no ready pod the deployment's own
        requests count as failed. Returns ``(latency sum [s x requests], violations,
        accepted requests, failed requests)`` for the window, from
        :func:`~lwmecps_gym.backends.sim.batched.deployment_window`.
        """
        st = self.state
        saved = st.copy()
        try:
            lst = self.desired
            lst[d] = replicas
            self.scale_list(lst)
            wl = self.workload
            if self.t >= len(wl.lam_arr):
                self._generate()
            lam = float(wl.rate_arr[self.t, d])
            c = int(st.ready[0, d])
            rtt = float(wl.rtt_arr[self.t, d]) if self.pinned else self._spread_rtt(self.t, c)
            n_pend = int(st.pend_len[0, d])
            first = float(st.pend_t[0, d, 0]) if n_pend else math.inf
            f0 = 0.0
            if c == 0:
                f0 = 1.0 if first >= self.now + self.tau else (first - self.now) / self.tau
            L, V, N, drop, *_ = deployment_window(c, st.pend_t[0, d], st.pend_c[0, d], n_pend, float(st.backlog[0, d]),
                                                  lam, rtt, self.now, self.tau, self.mu, erlang_array(self.table),
                                                  self.timeout_s, self.sla_s)
            return L, V, N, drop + lam * self.tau * f0
        finally:
            st.restore(saved)

    # ------------------------------------------------------------------ measurements
    @property
    def current_node(self) -> int:
        """Placement mode: index of the node now serving the placed deployment."""
        return self.node

    def pods_per_node(self) -> np.ndarray:
        """``int64 (n_deployments, n_nodes)`` ready pods of each deployment on each node."""
        out = np.zeros((self.n_dep, len(self.node_names)), dtype=np.int64)
        if self.mode == "placement":
            out[0, self.node] = self.ready[0]
        elif self.pinned:
            np.fill_diagonal(out, self.state.ready[0])
        else:
            out[0] = self._spread_counts(self.ready[0])
        return out

    def observe(self) -> ClusterMeasurement:
        """Measurements of the last window (see :class:`ClusterMeasurement`); after ``reset``, the
        starting state with the first window's demand.

        ``rtt_to_nodes_ms`` is set in placement mode (the last window's users; after ``reset``, the
        first window's), ``None`` in scaling mode.
        """
        st = self.state
        if self.mode == "placement":
            rtt_nodes = np.array(self.last_rtt_to_nodes_ms if self.t > 0 else self.next_window_rtt_ms(),
                                 dtype=np.float64)
            demand = np.array(self.last_demand, dtype=np.float64)
            latency = np.array(self.last_latency_ms, dtype=np.float64)
            mean_ms, sla, failed = self.last_mean_latency_ms, self.last_sla, self.last_failed_rps
        else:
            rtt_nodes = None
            demand, latency = st.demand_rps[0].copy(), st.latency_ms[0].copy()
            mean_ms, sla, failed = st.mean_latency_ms[0], st.sla_violation_rate[0], st.failed_rps[0]
        return ClusterMeasurement(
            time_s=self.now,
            window_s=self.tau,
            replicas_desired=st.desired[0].copy(),
            replicas_ready=st.ready[0].copy(),
            pods_per_node=self.pods_per_node(),
            demand_rps=demand,
            latency_ms=latency,
            mean_latency_ms=float(mean_ms),
            sla_violation_rate=float(sla),
            failed_rps=float(failed),
            time_of_day_s=self.time_of_day_s,
            rtt_to_nodes_ms=rtt_nodes,
            migrations=self.last_migrations,
        )

    @property
    def time_of_day_s(self) -> float:
        """Simulated time of day now, s in [0, 86400)."""
        return (self.workload.start_s + self.now) % 86400.0

    def close(self) -> None:
        """Nothing to release."""
