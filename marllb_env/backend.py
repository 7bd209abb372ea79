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

from lwmecps_gym.core.validation import check_choice, check_int, check_positive
from marllb_env.sim import DISPATCH_MODES, FlowRecords, FlowSimulator, ServerSpec
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
class LBBackend(Protocol):
    """The world as one load balancer sees it.

    Attributes:
        n_servers: number of server slots (fixed for the backend's life).
    """

    n_servers: int

    def reset(self, seed: int | None = None, *, rngs: Any = None) -> None:
        """Start an episode. ``rngs`` (``lwmecps_gym.core.seeding.RngStreams``) carries the
        env's workload/system streams; backends without randomness ignore it."""
        ...

    def apply_weights(self, weights: np.ndarray) -> None:
        """Set this LB's ``(n_servers,)`` float64 weights (finite, >= 0). Raises ValueError otherwise."""
        ...

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of (simulated or wall) time pass."""
        ...

    def observe(self) -> LBMeasurement:
        """The measurement at the current time (never fabricated: errors raise BackendError)."""
        ...

    def close(self) -> None: ...


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
        self._prev_busy = [0.0] * self.n_servers
        self._prev_t = 0.0
        self._prev_counts = (0, 0, 0, 0.0)

    def reset(self, seed: int | None = None, *, rngs: Any = None) -> None:
        sim = self.sim
        if rngs is not None:
            sim.reset(workload_rng=rngs.workload, system_rng=rngs.system)
        else:
            sim.reset(seed)
        cap = sim.capacities()
        for i in range(sim.n_lbs):
            if i != self.lb:
                sim.set_dispatch(self.background_dispatch, i)
                sim.set_weights(i, cap)
        sim.set_dispatch(self.dispatch, self.lb)
        for t, j, c in self.capacity_events:
            sim.set_capacity(j, cpus=c, at=t)
        self._prev_busy = [0.0] * self.n_servers
        self._prev_t = 0.0
        self._prev_counts = (0, 0, 0, 0.0)

    def apply_weights(self, weights: np.ndarray) -> None:
        self.sim.set_weights(self.lb, weights)

    def set_dispatch(self, mode: str) -> None:
        """Switch this LB's dispatch mode (baselines that are not weight-based)."""
        self.sim.set_dispatch(mode, self.lb)
        self.dispatch = mode

    def advance(self, seconds: float) -> None:
        self.sim.run_until(self.sim.now + seconds)

    def observe(self) -> LBMeasurement:
        sim = self.sim
        lb = self.lb
        now = sim.now
        dt = now - self._prev_t
        cpus, nserv, waitq, busy = sim._cpus, sim._nserv, sim._waitq, sim._busy
        prev = self._prev_busy
        rows = sim._feature_rows(lb)  # 11 features per server; the 3 ground-truth columns are appended
        T, speed, V = sim._T, sim._speed, sim._V
        for j in range(self.n_servers):
            n = nserv[j]
            if n:  # bring server j's busy time (and virtual clock) up to now
                c = cpus[j]
                d = now - T[j]
                if d > 0:
                    V[j] += speed[j] * (1.0 if n <= c else c / n) * d
                    busy[j] += (n if n <= c else c) * d
                    T[j] = now
            # busy <= cpus * dt by construction; the cap only absorbs float rounding
            u = (busy[j] - prev[j]) / (cpus[j] * dt) if dt > 0 else 0.0
            rows[j] += (u if u < 1.0 else 1.0, n, len(waitq[j]))
        self._prev_busy = busy.copy()
        self._prev_t = now
        c = (sim._c_arr[lb], sim._c_done[lb], sim._c_rej[lb], sim._c_fct[lb])
        p = self._prev_counts
        self._prev_counts = c
        both = np.array(rows, dtype=np.float32)  # one array per step; features and ground truth are views
        return LBMeasurement(
            now,
            both[:, :11],
            np.array(sim._active, dtype=np.bool_),
            both[:, 11:],
            {
                "arrivals": float(c[0] - p[0]),
                "completed": float(c[1] - p[1]),
                "rejects": float(c[2] - p[2]),
                "fct_sum_s": c[3] - p[3],
            },
            sim._ta == math.inf and not any(nserv),
        )

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
