"""The backend contract of :class:`marllb_env.env.LoadBalanceEnv`, and the simulator backend.

The env owns the MDP (spaces, reward, episode logic, info); a backend owns the
world seen by **one** load balancer: it applies that LB's per-server weights,
lets time pass, and reports what the LB measured. Two backends implement
:class:`LBBackend`:

* :class:`SimBackend` (default, ``backend="sim"``): one LB of a
  :class:`marllb_env.sim.FlowSimulator`; other LBs, if any, run a fixed dispatch
  mode (``background_dispatch``) with static capacity weights.
* ``marllb_env.shm_backend.ShmBackend`` (``backend="shm"``): the MARLLB data
  plane's POSIX shared-memory layout (VPP plugin); built with
  ``ShmBackend.from_env_kwargs(num_servers=..., step_interval=..., **backend_kwargs)``.

Backends never import envs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lwmecps_gym.core.backend import Backend
from lwmecps_gym.core.validation import check_choice, check_int, check_positive
from marllb_env.sim import DISPATCH_MODES, FlowRecords, FlowSimulator, ServerSpec, as_server_specs
from marllb_env.traces import Workload

#: Ground-truth columns in :attr:`LBMeasurement.ground_truth`.
GT_NAMES: tuple[str, ...] = ("cpu_util", "busy_workers", "queue_length")


@dataclass(slots=True)
class LBMeasurement:
    """What one load balancer measured at the end of a control interval.

    Attributes:
        time_s: backend time at the measurement (s; simulated or data-plane clock).
        features: ``(n_servers, 11)`` float32 MARLLB features
            (:data:`marllb_env.sim.FEATURE_NAMES`): ``n_flow_on`` (count), then FCT and
            flow-duration reservoir statistics (s).
        active: ``(n_servers,)`` bool mask of servers that receive new flows.
        ground_truth: ``(n_servers, 3)`` float32, columns :data:`GT_NAMES`: CPU
            utilisation averaged over the interval (busy cores / cores, in [0, 1]), busy
            workers (flows in service) and queue length (flows in the backlog) at
            ``time_s``. A real LB learns these from server agents (MARLLB: TCP 50008).
        flow_stats: this LB's flows over the interval: ``arrivals``, ``completed``,
            ``rejects`` (counts), ``fct_sum_s`` (sum of FCTs of completed flows, s).
        exhausted: the workload has ended (trace replay); the env truncates.
    """

    time_s: float
    features: np.ndarray
    active: np.ndarray
    ground_truth: np.ndarray
    flow_stats: dict[str, float] = field(default_factory=dict)
    exhausted: bool = False


@runtime_checkable
class LBBackend(Backend[LBMeasurement], Protocol):
    """The world as one load balancer sees it: :class:`lwmecps_gym.core.backend.Backend` with
    weights as the command and :class:`LBMeasurement` as the measurement.

    * ``reset(seed)``: start an episode; a backend with randomness derives its workload and system
      streams with :func:`lwmecps_gym.core.seeding.streams_from_seed` (so the env's drawn seed
      reproduces the env's streams bit for bit).
    * ``apply(weights)``: set this LB's ``(n_servers,)`` weights (finite, >= 0; a list of floats or
      an array). Raises ``ValueError`` otherwise.
    * ``advance(seconds)``, ``observe() -> LBMeasurement``, ``close()``: as the core protocol.

    Attributes:
        n_servers: number of server slots (fixed for the backend's life).
    """

    n_servers: int


def default_servers(num_servers: int) -> tuple[ServerSpec, ...]:
    """The default heterogeneous cluster: the first ``ceil(n/2)`` servers have 1 CPU, the rest 2.

    ``n = 4`` gives cpus ``[1, 1, 2, 2]``; ``n = 7`` gives MARLLB's moderate-scale
    ``[1, 1, 1, 1, 2, 2, 2]`` (``config/cluster/conf01-0.json``). Every server has the
    testbed's Apache limits: 32 workers, backlog 128.
    """
    n = check_int("num_servers", num_servers, low=1)
    small = n - n // 2
    return tuple(ServerSpec(cpus=1.0 if j < small else 2.0) for j in range(n))


class SimBackend:
    """LB ``lb`` of a :class:`~marllb_env.sim.FlowSimulator` as an :class:`LBBackend`.

    Args:
        servers: server specs (see :func:`marllb_env.sim.as_server_specs`).
        workload: workload spec (see :func:`marllb_env.traces.make_workload`).
        n_lbs: load balancers behind the edge router (flows split uniformly by hash).
        lb: the LB this backend drives.
        dispatch: dispatch mode of LB ``lb`` (``"sed"`` uses the applied weights).
        background_dispatch: dispatch mode of the other LBs; they use static weights
            proportional to capacity.
        capacity_events: ``[(time_s, server, cpus), ...]`` capacity changes applied each episode.
        **sim_kwargs: passed to :class:`FlowSimulator` (reservoir_size, empty_slots, ...).

    Example (the core backend contract, without an env):

    >>> from marllb_env.backend import SimBackend
    >>> be = SimBackend([1, 1, 2, 2], {"kind": "poisson", "rho": 0.9, "mean_size_s": 1.0})
    >>> be.reset(seed=0)
    >>> be.apply([1.0, 1.0, 2.0, 2.0])
    >>> be.advance(10.0)
    >>> m = be.observe()
    >>> m.time_s, m.features.shape, m.ground_truth.shape, bool((m.ground_truth[:, 0] <= 1).all())
    (10.0, (4, 11), (4, 3), True)
    """

    def __init__(
        self,
        servers: Sequence[ServerSpec | Mapping[str, Any] | float],
        workload: Workload | dict | str | None = None,
        *,
        n_lbs: int = 1,
        lb: int = 0,
        dispatch: str = "sed",
        background_dispatch: str = "sed",
        capacity_events: Sequence[Sequence[float]] = (),
        **sim_kwargs: Any,
    ) -> None:
        self.sim = FlowSimulator(servers, workload, n_lbs=n_lbs, dispatch=dispatch, **sim_kwargs)
        self.n_servers = self.sim.n_servers
        #: configured capacity per server (cpus * speed at episode start; read-only), as an
        #: operator's static weights (MARLLB ``meta.weights``)
        self.configured_capacity = self.sim.capacities()
        self.configured_capacity.flags.writeable = False
        self.lb = check_int("lb", lb, low=0, high=self.sim.n_lbs - 1)
        self.dispatch = check_choice("dispatch", dispatch, DISPATCH_MODES)
        self.background_dispatch = check_choice("background_dispatch", background_dispatch, DISPATCH_MODES)
        self.capacity_events = []
        for i, ev in enumerate(capacity_events):
            if len(ev) != 3:
                raise ValueError(f"capacity_events[{i}] must be (time_s, server, cpus), got {ev!r}")
            t, j, c = ev
            self.capacity_events.append(
                (check_positive(f"capacity_events[{i}] time_s", t), check_int(f"capacity_events[{i}] server", j,
                 low=0, high=self.n_servers - 1), check_positive(f"capacity_events[{i}] cpus", c))
            )
        self._mark_interval_start()

    def _mark_interval_start(self) -> None:
        """Remember the simulator's time, busy core-seconds and this LB's counters: the start of the
        interval the next :meth:`observe` reports."""
        sim = self.sim
        self._t_prev = sim.now
        self._busy_prev = sim.busy_core_seconds()
        self._counts_prev = sim.lb_counters(self.lb)

    def reset(self, seed: int | None = None) -> None:
        """Rewind the simulator to ``t = 0`` with streams ``streams_from_seed(seed)``; the other LBs
        get ``background_dispatch`` with capacity weights, this LB ``dispatch``; capacity events
        are scheduled again."""
        sim = self.sim
        sim.reset(seed)
        cap = sim.capacities()
        for i in range(sim.n_lbs):
            if i != self.lb:
                sim.set_dispatch(self.background_dispatch, i)
                sim.set_weights(i, cap)
        sim.set_dispatch(self.dispatch, self.lb)
        for t, j, c in self.capacity_events:
            sim.set_capacity(j, cpus=c, at=t)
        self._mark_interval_start()

    def apply(self, weights: Sequence[float] | np.ndarray) -> None:
        """Set this LB's SED weights (see :meth:`marllb_env.sim.FlowSimulator.set_weights`)."""
        self.sim.set_weights(self.lb, weights)

    #: alias of :meth:`apply` (the name before the core backend contract)
    apply_weights = apply

    def set_dispatch(self, mode: str) -> None:
        """Switch this LB's dispatch mode (baselines that are not weight-based)."""
        self.sim.set_dispatch(mode, self.lb)
        self.dispatch = mode

    def advance(self, seconds: float) -> None:
        """Run the simulator for ``seconds`` of simulated time."""
        sim = self.sim
        sim.run_until(sim.now + seconds)

    def observe(self) -> LBMeasurement:
        """This LB's measurement over the interval since the previous ``observe`` (or reset).

        ``cpu_util`` is the interval's busy core-seconds over ``cpus * interval`` (0 for an empty
        interval); ``flow_stats`` are this LB's counts over the interval.
        """
        sim = self.sim
        both = sim.lb_observation(self.lb, self._busy_prev, self._t_prev)  # features + ground truth, float32
        self._t_prev = now = sim.now
        counts = sim.lb_counters(self.lb)
        a0, c0, r0, f0 = self._counts_prev
        self._counts_prev = a, c, r, f = counts
        return LBMeasurement(
            now,
            both[:, :11],
            sim.active_mask(),
            both[:, 11:],
            {"arrivals": float(a - a0), "completed": float(c - c0), "rejects": float(r - r0), "fct_sum_s": f - f0},
            sim.workload_exhausted and not both[:, 12].any(),
        )

    def flow_records(self) -> FlowRecords:
        """Per-flow records of this episode (all LBs)."""
        return self.sim.flow_records()

    def close(self) -> None:
        pass


@dataclass(slots=True)
class MultiLBMeasurement:
    """What ``M`` load balancers sharing the servers measured at the end of a control interval.

    Attributes:
        time_s: backend time (s).
        features: ``(n_lbs, n_servers, 11)`` float64 MARLLB features of every LB (its own flows).
        active: ``(n_servers,)`` bool, servers receiving new flows.
        flows_in_system: ``(n_servers,)`` float64 true flows at each server now (ground truth; NaN
            where the backend cannot see it, e.g. the shm data plane).
        cpu_util: ``(n_servers,)`` float64 CPU utilisation over the interval (busy cores / cores;
            NaN where not measured).
        completed, rejects: flows (all LBs) completed / rejected in the interval (NaN if not measured).
        fct_sum_s: sum of the FCTs of the flows completed in the interval (s; NaN if not measured).
        workload_ended: a finite workload (trace) has delivered its last flow.
    """

    time_s: float
    features: np.ndarray
    active: np.ndarray
    flows_in_system: np.ndarray
    cpu_util: np.ndarray
    completed: float
    rejects: float
    fct_sum_s: float
    workload_ended: bool = False


@runtime_checkable
class MultiLBBackend(Backend[MultiLBMeasurement], Protocol):
    """``M`` load balancers as one backend of the core contract: ``apply(weights)`` takes one
    ``(n_servers,)`` weight vector per LB; ``observe()`` returns a :class:`MultiLBMeasurement`.

    Attributes:
        n_lbs, n_servers: fixed for the backend's life.
    """

    n_lbs: int
    n_servers: int


class MultiSimBackend:
    """Every LB of a :class:`~marllb_env.sim.FlowSimulator` as a :class:`MultiLBBackend`.

    Args:
        servers: server specs (see :func:`marllb_env.sim.as_server_specs`); their cores are the
            denominators of ``cpu_util`` (this backend schedules no capacity change).
        workload: workload spec (see :func:`marllb_env.traces.make_workload`).
        n_lbs: load balancers (the edge router spreads flows uniformly by hash).
        dispatch: dispatch mode of every LB.
        **sim_kwargs: passed to :class:`FlowSimulator` (reservoir_size, empty_slots, ...).
    """

    def __init__(
        self,
        servers: Sequence[ServerSpec | Mapping[str, Any] | float],
        workload: Workload | dict | str | None = None,
        *,
        n_lbs: int = 1,
        dispatch: str = "sed",
        **sim_kwargs: Any,
    ) -> None:
        specs = as_server_specs(servers)
        self.sim = FlowSimulator(specs, workload, n_lbs=n_lbs, dispatch=dispatch, **sim_kwargs)
        self.n_lbs, self.n_servers = self.sim.n_lbs, self.sim.n_servers
        self.dispatch = check_choice("dispatch", dispatch, DISPATCH_MODES)
        self._cpus = np.array([s.cpus for s in specs], dtype=np.float64)  # cpu_util's denominators
        self._cdt: tuple[float, np.ndarray] = (0.0, self._cpus * 0.0)
        self._start_interval()

    def _start_interval(self) -> None:
        self._busy = self.sim.busy_core_seconds()  # the interval's start
        self._totals = self._sum_counters()
        self._elapsed = 0.0

    def _sum_counters(self) -> tuple[int, int, float]:
        """All LBs' cumulative ``(completed, rejects, fct_sum_s)``, added LB by LB (as ``sum``)."""
        lb_counters = self.sim.lb_counters
        c = r = 0
        f = 0
        for i in range(self.n_lbs):
            _, ci, ri, fi = lb_counters(i)
            c += ci
            r += ri
            f += fi
        return c, r, f

    def _core_seconds(self, dt: float) -> np.ndarray:
        """``cpus * dt`` per server (kept for the last ``dt``: every interval has the same length)."""
        if dt != self._cdt[0]:
            self._cdt = (dt, self._cpus * dt)
        return self._cdt[1]

    def reset(self, seed: int | None = None) -> None:
        """Rewind the simulator to ``t = 0`` with streams ``streams_from_seed(seed)``; every LB gets ``dispatch``."""
        self.sim.reset(seed)
        self.sim.set_dispatch(self.dispatch)
        self._start_interval()

    def apply(self, weights: Sequence[Sequence[float] | np.ndarray]) -> None:
        """Set LB ``i``'s weights to ``weights[i]`` (``n_lbs`` vectors of ``n_servers`` finite weights >= 0).

        Raises:
            ValueError: not one vector per LB, or a bad vector (see ``FlowSimulator.set_weights``).
        """
        if len(weights) != self.n_lbs:
            raise ValueError(f"weights must hold one vector per LB ({self.n_lbs}), got {len(weights)}")
        for i, w in enumerate(weights):
            self.sim.set_weights(i, w)

    def advance(self, seconds: float) -> None:
        """Run the simulator for ``seconds`` of simulated time."""
        self.sim.advance(seconds)
        self._elapsed += seconds

    def observe(self) -> MultiLBMeasurement:
        """Every LB's features now and the interval's utilisation and flow counts since the last ``observe``."""
        sim = self.sim
        busy = sim.busy_core_seconds()
        dt = self._elapsed
        c0, r0, f0 = self._totals
        c, r, f = totals = self._sum_counters()
        m = MultiLBMeasurement(
            sim.now,
            sim.features_all(),
            sim.active_mask(),
            sim.flows_in_system(),
            (busy - self._busy) / self._core_seconds(dt) if dt > 0 else np.zeros(self.n_servers),
            float(c - c0),
            float(r - r0),
            float(f - f0),
            sim.workload_exhausted,
        )
        self._busy, self._totals, self._elapsed = busy, totals, 0.0
        return m

    def flow_records(self) -> FlowRecords:
        """Per-flow records of this episode (all LBs)."""
        return self.sim.flow_records()

    def close(self) -> None:
        pass


def fct_summary(records: FlowRecords, lb: int | None = None) -> dict[str, float]:
    """Episode FCT metrics from flow records (optionally one LB's flows).

    Returns ``fct_mean_s``, ``fct_p50_s``, ``fct_p90_s``, ``fct_p99_s`` (NaN if no
    flow completed), ``flows_completed``, ``flows_rejected``, ``reject_rate``.
    """
    sel = np.ones(len(records), dtype=bool) if lb is None else records.lb == lb
    st = records.status[sel]
    fct = records.completion_s[sel][st == 1] - records.arrival_s[sel][st == 1]
    n_rej = int((st == 2).sum())
    n_dec = int((st != 0).sum())
    if fct.size:
        p50, p90, p99 = np.percentile(fct, [50, 90, 99]).tolist()
        mean = float(fct.mean())
    else:
        p50 = p90 = p99 = mean = math.nan
    return {
        "fct_mean_s": mean,
        "fct_p50_s": p50,
        "fct_p90_s": p90,
        "fct_p99_s": p99,
        "flows_completed": float(fct.size),
        "flows_rejected": float(n_rej),
        "reject_rate": n_rej / n_dec if n_dec else 0.0,
    }
