"""Seeded discrete-event, flow-level load-balancing simulator.

Topology (as MARLLB's testbed and SimLB)::

    clients --(edge router: ECMP over LBs)--> LB_0..LB_{m-1} --(dispatch)--> servers 0..n-1

Flows
    A flow (one request) arrives at time ``t`` with a job size ``s`` in CPU-seconds.
    The edge router picks its LB by a hash of the flow (uniform, ECMP); that LB picks
    the server by its dispatch mode (:mod:`.dispatch`). The flow's arrival, size, LB,
    server, completion time and status are recorded (:meth:`FlowSimulator.flow_records`).

Servers (Apache prefork + CPU, as the MARLLB testbed)
    Server ``j`` has ``cpus`` cores of ``speed`` CPU-seconds per second, ``n_workers``
    worker slots and a TCP ``backlog``. Up to ``n_workers`` flows are in service and
    share the cores by processor sharing: each gets ``speed * min(1, cpus / n)`` with
    ``n`` flows in service. Further flows wait FIFO in the backlog; a flow arriving to
    a full backlog is **rejected** (``tcp_abort_on_overflow``: an RST, no retry). With
    ``cpus=1, n_workers=inf`` a server is an M/G/1-PS queue. Capacity (cpus, speed)
    and the active set can change mid-episode (:meth:`set_capacity`, :meth:`set_active`).

Load-balancer state and features (MARLLB data plane)
    Each LB keeps **its own** per-server ``n_flow_on`` (flows it put there that have
    not completed, including backlogged ones) and two reservoirs per server
    (:mod:`marllb_env.reservoir`): FCT samples (at completion) and flow-duration
    samples (``now - arrival`` of an ongoing flow). Flow-duration samples stand for
    the ACK packets VPP samples: at each new flow arriving at an LB,
    ``fd_samples_per_arrival`` of that LB's ongoing flows are picked uniformly and
    sampled (SimLB's packet-density scheme). Rejected flows enter no reservoir.
    :meth:`features` gives the ``(n_servers, 11)`` MARLLB feature matrix.

Randomness
    Two streams: the *workload* stream (arrival times, sizes, flow hashes) and the
    *system* stream (tie breaks, reservoir slots, flow-duration sampling, ``random``
    dispatch). Two runs with the same workload seed see the same flows whatever the
    policy does.

Implementation: the state lives in arrays and the events run in one compiled loop
(:mod:`marllb_env.sim.kernel`, numba; the same Python source runs interpreted where numba is
missing): per server a virtual clock ``V_j`` (attained service per in-service flow) and a binary
heap of finish tags ``V_arrival + s``; the earliest next departure over the servers is the next
departure event. The processor-sharing rate is :func:`lwmecps_gym.core.queueing.ps_rate` (compiled
from its source). This class validates, schedules control events, feeds the loop its arrival
batches and uniforms, grows its buffers and serves the observation API; backends read
:meth:`FlowSimulator.snapshot` and never the simulator's internals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from functools import lru_cache
from heapq import heappop, heappush
from typing import Any, NamedTuple

import numpy as np

from lwmecps_gym.core.compiled import grown
from lwmecps_gym.core.seeding import streams_from_seed
from lwmecps_gym.core.validation import check_choice, check_float, check_int, check_positive
from marllb_env.reservoir import STAT_NAMES
from marllb_env.sim import kernel as kn
from marllb_env.sim.dispatch import DISPATCH_MODES, HASH_BITS, build_alias, maglev_table
from marllb_env.sim.kernel import COMPLETED, IN_PROGRESS, REJECTED  # noqa: F401  (FlowRecords.status codes)
from marllb_env.traces import Workload, make_workload

#: The 11 MARLLB features per server, in column order (``shm_proxy.FEATURE_AS_ALL``).
FEATURE_NAMES: tuple[str, ...] = ("n_flow_on",) + tuple(
    f"{m}_{s}" for m in ("fct", "flow_duration") for s in STAT_NAMES
)

#: Ground-truth fields per server (not visible to a real LB).
GROUND_TRUTH_NAMES: tuple[str, ...] = (
    "cpu_util",
    "busy_workers",
    "queue_length",
    "flows_in_system",
    "remaining_work_s",
    "capacity",
)

RESERVOIR_MODES = ("random_replacement", "algorithm_r")
INF = math.inf


@dataclass(frozen=True)
class ServerSpec:
    """One server.

    Attributes:
        cpus: cores (> 0); PS over in-service flows, per-flow rate ``speed * min(1, cpus / n)``.
        speed: CPU-seconds of work per second per core (> 0).
        n_workers: max flows in service (Apache workers; MARLLB testbed: 32).
        backlog: max flows waiting for a worker (TCP backlog; testbed: 128); further arrivals are rejected.
    """

    cpus: float = 1.0
    speed: float = 1.0
    n_workers: int = 32
    backlog: int = 128

    def __post_init__(self) -> None:
        check_positive("cpus", self.cpus)
        check_positive("speed", self.speed)
        check_int("n_workers", self.n_workers, low=1)
        check_int("backlog", self.backlog, low=0)

    @property
    def capacity(self) -> float:
        """Total service rate in CPU-seconds per second."""
        return self.cpus * self.speed


def as_server_specs(servers: Sequence[ServerSpec | Mapping[str, Any] | float]) -> tuple[ServerSpec, ...]:
    """Servers from specs, mappings of ServerSpec fields, or bare numbers (= cpus); a 1-D array of cpus works too."""
    if isinstance(servers, np.ndarray):
        if servers.ndim != 1:
            raise ValueError(f"servers array must be 1-D (cpus per server), got shape {servers.shape}")
        servers = servers.tolist()
    if isinstance(servers, (str, bytes)) or not isinstance(servers, Sequence) or len(servers) == 0:
        raise ValueError(f"servers must be a non-empty sequence, got {servers!r}")
    out = []
    names = {f.name for f in fields(ServerSpec)}
    for i, s in enumerate(servers):
        if isinstance(s, ServerSpec):
            out.append(s)
        elif isinstance(s, Mapping):
            bad = sorted(set(s) - names)
            if bad:
                raise ValueError(f"servers[{i}] has unknown keys {bad}; allowed: {sorted(names)}")
            out.append(ServerSpec(**s))
        elif isinstance(s, (int, float, np.integer, np.floating)) and not isinstance(s, (bool, np.bool_)):
            out.append(ServerSpec(cpus=float(s)))
        else:
            raise TypeError(f"servers[{i}] must be a ServerSpec, mapping or number of cpus, got {s!r}")
    return tuple(out)


@dataclass(frozen=True)
class FlowRecords:
    """Per-flow records, one entry per flow that has arrived (numpy arrays of equal length).

    Attributes:
        arrival_s: arrival time (s).
        size_s: job size (CPU-seconds).
        lb: load balancer index.
        server: server index the flow was dispatched to.
        completion_s: completion time (s); NaN if in progress or rejected.
        status: 0 in progress, 1 completed, 2 rejected.
    """

    arrival_s: np.ndarray
    size_s: np.ndarray
    lb: np.ndarray
    server: np.ndarray
    completion_s: np.ndarray
    status: np.ndarray

    @property
    def fct_s(self) -> np.ndarray:
        """Flow completion time (completion - arrival) of completed flows only."""
        done = self.status == COMPLETED
        return self.completion_s[done] - self.arrival_s[done]

    def __len__(self) -> int:
        return len(self.arrival_s)


class LBSnapshot(NamedTuple):
    """What one load balancer's backend reads from the simulator at ``now``, in one pass.

    Built by :meth:`FlowSimulator.snapshot` every control step, so it is a named tuple (cheap to
    build) of plain Python values and lists (fresh copies, ``n_servers`` long), not arrays.

    Attributes:
        time_s: simulated time (s).
        feature_rows: per server the 11 MARLLB features of this LB (:data:`FEATURE_NAMES`).
        busy_core_seconds: cumulative busy core-seconds per server since reset, up to ``time_s``.
        cpus: current cores per server.
        busy_workers: flows in service per server (all LBs' flows).
        queue_length: flows in the backlog per server (all LBs' flows).
        active: whether each server receives new flows.
        arrivals, completed, rejects: this LB's cumulative flow counts since reset.
        fct_sum_s: sum of the FCTs of this LB's completed flows since reset (s).
        drained: a finite workload has delivered its last flow and no flow is in service.
    """

    time_s: float
    feature_rows: list[list[float]]
    busy_core_seconds: list[float]
    cpus: list[float]
    busy_workers: list[int]
    queue_length: list[int]
    active: list[bool]
    arrivals: int
    completed: int
    rejects: int
    fct_sum_s: float
    drained: bool


class FlowSimulator:
    """Flow-level DES of one or more load balancers in front of shared servers.

    Args:
        servers: server specs (:class:`ServerSpec`, mappings of its fields, or numbers = cpus).
        workload: a :class:`marllb_env.traces.Workload`, dict spec or bundled trace name
            (default: Poisson, exponential 0.5 CPU-s jobs at rho = 0.9).
        n_lbs: number of load balancers (edge router spreads flows uniformly by hash).
        seed: seed of both streams for :meth:`reset` when no generators are given.
        dispatch: initial dispatch mode of every LB (see :mod:`.dispatch`).
        reservoir_size: slots per reservoir (MARLLB: 128).
        reservoir_mode: ``"random_replacement"`` (MARLLB) or ``"algorithm_r"``.
        keep_prob: write probability per sample (random replacement; paper's ``p``).
        empty_slots: ``"mask"`` (stats over filled slots) or ``"zero"`` (VPP).
        decay: freshness base of decayed statistics, ``decay ** age_s`` (MARLLB 0.9).
        fd_samples_per_arrival: flow-duration samples taken per new flow at an LB.
        maglev_size: prime size of the Maglev table.

    Public state: ``now`` (s), ``n_servers``, ``n_lbs``, ``servers`` (current specs).
    All arrays returned are fresh copies.

    Example:

    >>> from marllb_env.sim import FlowSimulator
    >>> sim = FlowSimulator([1, 2], {"kind": "poisson", "rho": 0.8, "mean_size_s": 0.5}, seed=0)
    >>> sim.set_weights(0, [1.0, 2.0])
    >>> sim.advance(60.0)
    >>> sim.now, sim.features(0).shape, sim.snapshot(0).completed == int(sim.counters()["completed"][0])
    (60.0, (2, 11), True)
    """

    def __init__(
        self,
        servers: Sequence[ServerSpec | Mapping[str, Any] | float],
        workload: Workload | dict | str | None = None,
        n_lbs: int = 1,
        *,
        seed: int | None = None,
        dispatch: str = "sed",
        reservoir_size: int = 128,
        reservoir_mode: str = "random_replacement",
        keep_prob: float = 1.0,
        empty_slots: str = "mask",
        decay: float = 0.9,
        fd_samples_per_arrival: int = 1,
        maglev_size: int = 65537,
    ) -> None:
        self._specs0 = as_server_specs(servers)
        self.workload = make_workload(workload)
        self.n_lbs = check_int("n_lbs", n_lbs, low=1)
        self.n_servers = len(self._specs0)
        self._dispatch0 = check_choice("dispatch", dispatch, DISPATCH_MODES)
        self.reservoir_size = check_int("reservoir_size", reservoir_size, low=1)
        self.reservoir_mode = check_choice("reservoir_mode", reservoir_mode, RESERVOIR_MODES)
        self.keep_prob = check_float("keep_prob", keep_prob, low=0.0, high=1.0, low_open=True)
        self.empty_slots = check_choice("empty_slots", empty_slots, ("mask", "zero"))
        if self.reservoir_mode == "algorithm_r" and (self.empty_slots == "zero" or self.keep_prob != 1.0):
            raise ValueError("reservoir_mode='algorithm_r' needs empty_slots='mask' and keep_prob=1")
        self.decay = check_float("decay", decay, low=0.0, high=1.0, low_open=True)
        self.fd_samples_per_arrival = check_int("fd_samples_per_arrival", fd_samples_per_arrival, low=0)
        self.maglev_size = check_int("maglev_size", maglev_size, low=2)
        self.reset(seed)

    # ------------------------------------------------------------------ lifecycle
    def reset(
        self,
        seed: int | None = None,
        *,
        workload_rng: np.random.Generator | None = None,
        system_rng: np.random.Generator | None = None,
    ) -> None:
        """Start a new episode at ``now = 0``: empty servers, zero counters and reservoirs.

        Args:
            seed: seeds both streams (ignored for a stream whose generator is given) by
                :func:`lwmecps_gym.core.seeding.streams_from_seed`; ``None``: fresh OS entropy.
            workload_rng: generator for arrivals, sizes and flow hashes.
            system_rng: generator for tie breaks, reservoir slots, sampling. The simulator draws
                its uniforms in blocks of 4096 ahead of use, so share it with nothing else.
        """
        if workload_rng is None or system_rng is None:
            streams = streams_from_seed(seed)
            workload_rng = workload_rng or streams.workload
            system_rng = system_rng or streams.system
        self._wrng = workload_rng
        self._srng = system_rng
        S, L, K = self.n_servers, self.n_lbs, self.reservoir_size
        self.now = 0.0
        specs = self._specs0
        self._srv_f = np.zeros((8, S))
        self._srv_f[kn.CPUS] = [s.cpus for s in specs]
        self._srv_f[kn.SPEED] = [s.speed for s in specs]
        self._srv_f[kn.ND] = INF
        self._srv_i = np.zeros((8, S), dtype=np.int64)
        self._srv_i[kn.NWORKERS] = [s.n_workers for s in specs]
        self._srv_i[kn.BACKLOG] = [s.backlog for s in specs]
        self._active = [True] * S
        self._act = np.arange(S, dtype=np.int64)
        h = min(max(s.n_workers for s in specs), 32)
        q = min(max(max(s.backlog for s in specs), 1), 32)
        self._heap_v = np.zeros((S, h))
        self._heap_id = np.zeros((S, h), dtype=np.int64)
        self._queue = np.zeros((S, q), dtype=np.int64)
        self._flow_f = np.zeros((3, 1024))
        self._flow_i = np.zeros((4, 1024), dtype=np.int64)
        self._ctl: list[tuple[float, int, str, tuple]] = []
        self._ctl_seq = 0
        # per LB
        self._mode = [self._dispatch0] * L
        self._lb_i = np.zeros((L, 5), dtype=np.int64)
        self._lb_i[:, kn.MODE] = DISPATCH_MODES.index(self._dispatch0)
        self._lb_fct = np.zeros(L)
        self._w = [[1.0] * S for _ in range(L)]
        self._invw = np.full((L, S), 1.0 / (1.0 + 1e-9))
        self._n_on = np.zeros((L, S), dtype=np.int64)
        self._ongoing = np.zeros((L, 64), dtype=np.int64)
        self._alias_p = np.zeros((L, S))
        self._alias_a = np.zeros((L, S), dtype=np.int64)
        self._maglev = np.zeros(1, dtype=np.int64)
        # reservoirs, one per (lb, server, kind), index r = (lb * S + j) * 2 + kind (0 FCT, 1 flow
        # duration); "zero" mode starts with K filled (0, 0) slots as VPP
        R = L * S * 2
        self._res_f = np.zeros((5, R, K))
        self._res_s = np.zeros((R, 3))
        self._res_i = np.zeros((R, 2), dtype=np.int64)
        self._top_i = np.zeros((4, R, K), dtype=np.int64)
        if self.empty_slots == "zero":  # K zeros: any kn.top_count(K) of them are the top
            self._res_i[:, kn.R_N] = K
            m = kn.top_count(K)
            self._top_i[kn.TOP_SLOT_V, :, :m] = self._top_i[kn.TOP_SLOT_D, :, :m] = np.arange(m)
            self._top_i[kn.IN_TOP_V, :, :m] = self._top_i[kn.IN_TOP_D, :, :m] = 1
        res_mode = (kn.RES_ALGORITHM_R if self.reservoir_mode == "algorithm_r"
                    else kn.RES_FAST if self.keep_prob == 1.0 else kn.RES_KEEP)
        self._unif = np.zeros(0)
        self._sc_i = np.zeros(kn.N_SC_I, dtype=np.int64)
        self._sc_i[kn.N_FD] = self.fd_samples_per_arrival
        self._sc_i[kn.RES_MODE] = res_mode
        self._sc_i[kn.N_ACT] = S
        self._sc_i[kn.MARGIN] = kn.uniforms_per_event(S, self.fd_samples_per_arrival)
        self._sc_f = np.zeros(kn.N_SC_F)
        self._sc_f[kn.LN_INV_DECAY] = -math.log(self.decay)
        self._sc_f[kn.KEEP_PROB] = self.keep_prob
        self._sc_f[kn.DECAY] = self.decay
        self._feat = np.zeros((S, len(FEATURE_NAMES)))
        self._kargs: tuple | None = None  # run_events' array arguments, None after any is replaced
        # lb_observation's array arguments (never replaced within an episode)
        self._obs_args = (self._srv_f, self._srv_i, self._n_on, self._res_f, self._res_s, self._res_i, self._feat)
        self._rebuild_tables()
        # workload
        cap = sum(s.cpus * s.speed for s in specs)
        self._wl = iter(self.workload.batches(self._wrng, cap))
        self._bt = self._bs = np.zeros(0)
        self._be = self._bh = np.zeros(0, dtype=np.int64)
        self._load_next_batch()

    # ------------------------------------------------------------------ control API
    def set_weights(self, lb: int, weights: Sequence[float] | np.ndarray) -> None:
        """Set LB ``lb``'s per-server weights (used by sed, sed2, wcmp, gsq).

        Args:
            lb: load balancer index.
            weights: ``(n_servers,)`` finite, non-negative floats (a list or an array); the SED
                score is ``(n + 1) / (w + 1e-9)`` as VPP, so a zero weight means "avoid".
                Setting the weights the LB already has is a no-op.

        Raises:
            ValueError: wrong length, NaN/inf or negative weight, or all-zero
                weights over the active servers while the LB is in ``wcmp`` mode.
        """
        if not (type(lb) is int and 0 <= lb < self.n_lbs):
            lb = self._check_lb(lb)
        if type(weights) is list and len(weights) == self.n_servers:  # the env's list of floats: no array round trip
            wl = [float(x) for x in weights]
        else:
            w = np.asarray(weights, dtype=np.float64)
            if w.shape != (self.n_servers,):
                raise ValueError(f"weights must have shape ({self.n_servers},), got {w.shape}")
            wl = w.tolist()
        for x in wl:
            if not 0.0 <= x < INF:  # also catches NaN
                bad = ">= 0" if math.isfinite(x) else "finite (no NaN/inf)"
                raise ValueError(f"weights must be {bad}, got {wl}")
        if wl == self._w[lb]:
            return
        if self._mode[lb] == "wcmp" and sum(wl[j] for j in self._active_ids()) <= 0:
            raise ValueError("wcmp needs a positive weight on at least one active server")
        self._w[lb] = wl
        self._invw[lb] = [1.0 / (x + 1e-9) for x in wl]
        if self._mode[lb] == "wcmp":
            self._rebuild_tables()

    def weights(self, lb: int) -> np.ndarray:
        """LB ``lb``'s current weights, ``(n_servers,)`` float64."""
        return np.asarray(self._w[self._check_lb(lb)], dtype=np.float64)

    def set_dispatch(self, mode: str, lb: int | None = None) -> None:
        """Set the dispatch mode of LB ``lb`` (all LBs if ``None``); see :mod:`.dispatch`."""
        check_choice("dispatch", mode, DISPATCH_MODES)
        lbs = range(self.n_lbs) if lb is None else [self._check_lb(lb)]
        for i in lbs:
            if mode == "wcmp" and sum(self._w[i][j] for j in self._active_ids()) <= 0:
                raise ValueError("wcmp needs a positive weight on at least one active server")
            self._mode[i] = mode
            self._lb_i[i, kn.MODE] = DISPATCH_MODES.index(mode)
        self._rebuild_tables()

    def dispatch_mode(self, lb: int = 0) -> str:
        return self._mode[self._check_lb(lb)]

    def set_capacity(
        self, server: int, cpus: float | None = None, speed: float | None = None, at: float | None = None
    ) -> None:
        """Change server ``server``'s cores and/or speed now or at simulated time ``at`` (s).

        In-service flows continue at the new rate (PS); nothing is lost.
        """
        server = self._check_server(server)
        if cpus is not None:
            check_positive("cpus", cpus)
        if speed is not None:
            check_positive("speed", speed)
        self._schedule(at, "capacity", (server, cpus, speed))

    def set_active(self, server: int, active: bool, at: float | None = None) -> None:
        """Add (``True``) or remove (``False``) a server from every LB's dispatch set.

        A removed server finishes its flows but gets no new ones. At least one
        server must stay active.
        """
        server = self._check_server(server)
        self._schedule(at, "active", (server, bool(active)))

    def _schedule(self, at: float | None, kind: str, args: tuple) -> None:
        if at is None or at <= self.now:
            self._apply_control(self.now, kind, args)
        else:
            check_float("at", at)
            self._ctl_seq += 1
            heappush(self._ctl, (float(at), self._ctl_seq, kind, args))

    def _apply_control(self, t: float, kind: str, args: tuple) -> None:
        if kind == "capacity":
            j, cpus, speed = args
            kn.advance_server(self._srv_f, self._srv_i, j, t)
            if cpus is not None:
                self._srv_f[kn.CPUS, j] = float(cpus)
            if speed is not None:
                self._srv_f[kn.SPEED, j] = float(speed)
            kn.reschedule(self._srv_f, self._srv_i, self._heap_v, j)
        else:
            j, flag = args
            act = [i for i in range(self.n_servers) if (flag if i == j else self._active[i])]
            if not act:
                raise ValueError("at least one server must stay active")
            self._active[j] = flag
            self._act[: len(act)] = act
            self._sc_i[kn.N_ACT] = len(act)
            self._rebuild_tables()

    def _active_ids(self) -> list[int]:
        return self._act[: self._sc_i[kn.N_ACT]].tolist()

    def _rebuild_tables(self) -> None:
        """Vose alias tables of the LBs in ``wcmp`` mode and the Maglev table (if any LB uses it)
        over the active servers; called whenever weights, modes or the active set change."""
        act = self._active_ids()
        for lb, mode in enumerate(self._mode):
            if mode == "wcmp":
                prob, alias = build_alias([self._w[lb][s] for s in act])
                self._alias_p[lb, : len(act)] = prob
                self._alias_a[lb, : len(act)] = alias
        if "maglev" in self._mode:
            self._maglev = _maglev_array(tuple(act), self.maglev_size)
            self._kargs = None

    # ------------------------------------------------------------------ running
    def run_until(self, t_end: float) -> None:
        """Process all events up to simulated time ``t_end`` (s) and set ``now = t_end``.

        The events run in the compiled loop :func:`marllb_env.sim.kernel.run_events`; this method
        serves its requests (next arrival batch, control events, uniforms, buffer room).
        """
        if not t_end >= self.now:
            raise ValueError(f"run_until target {t_end!r} is before now={self.now!r}")
        ctl = self._ctl
        sc_i = self._sc_i
        while True:
            ka = self._kargs
            if ka is None:  # an array was replaced (grown, refilled, next batch)
                ka = self._kargs = (
                    self._srv_f, self._srv_i, self._act, self._heap_v, self._heap_id, self._queue, self._flow_f,
                    self._flow_i, self._lb_i, self._lb_fct, self._invw, self._n_on, self._ongoing, self._alias_p,
                    self._alias_a, self._maglev, self._res_f, self._res_s, self._res_i, self._top_i, self._unif, self._bt,
                    self._bs, self._be, self._bh, sc_i, self._sc_f,
                )
            code = kn.run_events(t_end, ctl[0][0] if ctl else INF, *ka)
            if code == kn.DONE:
                break
            if code == kn.NEED_CONTROL:
                if ctl[0][0] > t_end:
                    break
                tc, _, kind, args = heappop(ctl)
                self._apply_control(tc, kind, args)
            elif code == kn.NEED_BATCH:
                self._load_next_batch()
            elif code == kn.NEED_RANDOM:
                ui = int(sc_i[kn.UI])
                self._unif = np.concatenate((self._unif[ui:], self._srng.random(4096)))
                self._kargs = None
                sc_i[kn.UI] = 0
            else:
                self._make_room()
        self.now = t_end = float(t_end)
        if t_end - self._sc_f[kn.T0] > 200.0:  # keep stored v * decay**(t0 - t) finite (mid-run: after 300 s)
            kn.rebase_decay(t_end, self._res_f, self._res_s, self._res_i, self._sc_f)

    def advance(self, seconds: float) -> None:
        """Run for ``seconds`` of simulated time."""
        self.run_until(self.now + seconds)

    @property
    def workload_exhausted(self) -> bool:
        """True once a finite workload (trace) has delivered its last flow."""
        return bool(self._sc_f[kn.TA] == INF)

    # ------------------------------------------------------------------ internals
    def _load_next_batch(self) -> None:
        """The workload's next non-empty batch of arrivals (times, sizes, two flow hashes each), or
        ``TA = inf`` when a finite workload has none left."""
        while True:
            try:
                t, s = next(self._wl)
            except StopIteration:
                self._sc_f[kn.TA] = INF
                return
            n = len(t)
            self._bt = np.ascontiguousarray(t, dtype=np.float64)
            self._bs = np.ascontiguousarray(s, dtype=np.float64)
            self._be = self._wrng.integers(0, 1 << HASH_BITS, n)
            self._bh = self._wrng.integers(0, 1 << HASH_BITS, n)
            self._sc_i[kn.BI] = 0
            self._kargs = None
            if n:
                self._sc_f[kn.TA] = self._bt[0]
                return

    def _make_room(self) -> None:
        """Double every buffer of the event loop that is full (flows, ongoing lists, heaps, backlogs)."""
        self._kargs = None
        n = int(self._sc_i[kn.N_FLOWS])
        if n == self._flow_f.shape[1]:
            self._flow_f = grown(self._flow_f, self._flow_f.shape[1] + 1, axis=1)
            self._flow_i = grown(self._flow_i, self._flow_i.shape[1] + 1, axis=1)
        if self._lb_i[:, kn.N_ONGOING].max() == self._ongoing.shape[1]:
            self._ongoing = grown(self._ongoing, self._ongoing.shape[1] + 1, axis=1)
        if self._srv_i[kn.NSERV].max() == self._heap_v.shape[1]:
            self._heap_v = grown(self._heap_v, self._heap_v.shape[1] + 1, axis=1)
            self._heap_id = grown(self._heap_id, self._heap_id.shape[1] + 1, axis=1)
        qcap = self._queue.shape[1]
        if self._srv_i[kn.QLEN].max() == qcap:  # unroll each ring so it starts at slot 0
            head, qlen = self._srv_i[kn.QHEAD], self._srv_i[kn.QLEN]
            idx = (head[:, None] + np.arange(qcap)) % qcap
            q = np.zeros((self.n_servers, 2 * qcap), dtype=np.int64)
            q[:, :qcap] = np.take_along_axis(self._queue, idx, axis=1)
            q[np.arange(2 * qcap) >= qlen[:, None]] = 0
            self._queue = q
            head[:] = 0

    def _check_lb(self, lb: int) -> int:
        return check_int("lb", lb, low=0, high=self.n_lbs - 1)

    def _check_server(self, j: int) -> int:
        return check_int("server", j, low=0, high=self.n_servers - 1)

    # ------------------------------------------------------------------ observation API
    def n_flow_on(self, lb: int) -> np.ndarray:
        """LB ``lb``'s local ongoing-flow counts per server, ``(n_servers,)`` int64."""
        return self._n_on[self._check_lb(lb)].copy()

    def _feature_rows(self, lb: int) -> np.ndarray:
        """LB ``lb``'s features into the shared ``(S, 11)`` buffer (valid until the next call)."""
        kn.feature_rows(lb, self.decay ** (self.now - self._sc_f[kn.T0]), self._n_on, self._res_f, self._res_s,
                        self._res_i, self._feat)
        return self._feat

    def features(self, lb: int) -> np.ndarray:
        """MARLLB features of LB ``lb`` at ``now``: ``(n_servers, 11)`` float64, columns :data:`FEATURE_NAMES`.

        Column 0 is ``n_flow_on`` (count); columns 1-10 are seconds (the five
        reservoir statistics of FCT, then of flow duration, as
        :func:`marllb_env.reservoir.reservoir_stats` computes them from
        :meth:`reservoir`). Non-negative and finite. Empty reservoirs give 0.
        """
        return self._feature_rows(self._check_lb(lb)).copy()

    def features_all(self) -> np.ndarray:
        """Features of every LB at once: ``(n_lbs, n_servers, 11)`` float64."""
        return np.array([self._feature_rows(lb).copy() for lb in range(self.n_lbs)], dtype=np.float64)

    def _reservoir_index(self, lb: int, server: int, kind: str) -> int:
        lb, server = self._check_lb(lb), self._check_server(server)
        k = int(check_choice("kind", kind, ("fct", "flow_duration")) == "flow_duration")
        return (lb * self.n_servers + server) * 2 + k

    def reservoir(self, lb: int, server: int, kind: str = "fct") -> tuple[np.ndarray, np.ndarray]:
        """Raw ``(times_s, values_s)`` of one reservoir's slots (``"zero"`` mode: empty slots are ``(0, 0)``); copies.

        Args:
            kind: ``"fct"`` or ``"flow_duration"``.
        """
        r = self._reservoir_index(lb, server, kind)
        n = self._res_i[r, kn.R_N]
        return self._res_f[kn.R_TIME, r, :n].copy(), self._res_f[kn.R_VAL, r, :n].copy()

    def reservoir_count(self, lb: int, server: int, kind: str = "fct") -> int:
        """Number of filled slots of one reservoir (``reservoir_size`` in ``"zero"`` mode)."""
        return int(self._res_i[self._reservoir_index(lb, server, kind), kn.R_N])

    def active_mask(self) -> np.ndarray:
        """``(n_servers,)`` bool: servers currently receiving new flows."""
        return np.asarray(self._active, dtype=bool)

    def capacities(self) -> np.ndarray:
        """``(n_servers,)`` float64 current capacity (cpus * speed, CPU-seconds/s)."""
        return self._srv_f[kn.CPUS] * self._srv_f[kn.SPEED]

    def busy_core_seconds(self) -> np.ndarray:
        """Cumulative busy core-seconds per server up to ``now`` (``(n_servers,)`` float64)."""
        kn.advance_all(self._srv_f, self._srv_i, self.now)
        return self._srv_f[kn.BUSY].copy()

    def snapshot(self, lb: int) -> LBSnapshot:
        """Everything LB ``lb``'s backend reports at ``now`` (:class:`LBSnapshot`), in one cheap pass.

        Busy time is brought up to ``now`` first, so differencing ``busy_core_seconds`` of two
        snapshots gives the busy core-seconds of the interval between them.
        """
        if not (type(lb) is int and 0 <= lb < self.n_lbs):
            lb = self._check_lb(lb)
        srv_f, srv_i = self._srv_f, self._srv_i
        kn.advance_all(srv_f, srv_i, self.now)
        nserv = srv_i[kn.NSERV].tolist()
        c_arr, c_done, c_rej = self._lb_i[lb, kn.C_ARR : kn.C_REJ + 1].tolist()
        return LBSnapshot(
            self.now,
            self._feature_rows(lb).tolist(),
            srv_f[kn.BUSY].tolist(),
            srv_f[kn.CPUS].tolist(),
            nserv,
            srv_i[kn.QLEN].tolist(),
            list(self._active),
            c_arr,
            c_done,
            c_rej,
            float(self._lb_fct[lb]),
            self.workload_exhausted and not any(nserv),
        )

    def lb_observation(self, lb: int, busy_since: np.ndarray, since_s: float) -> np.ndarray:
        """LB ``lb``'s observation block at ``now`` in one compiled pass (the single-agent backend's step).

        Args:
            lb: load balancer index.
            busy_since: ``(n_servers,)`` float64 busy core-seconds at ``since_s`` (e.g. from
                :meth:`busy_core_seconds`); overwritten with the values at ``now``.
            since_s: start of the interval (s), ``<= now``.

        Returns:
            ``(n_servers, 14)`` float32, fresh: the 11 features (:data:`FEATURE_NAMES`), then the CPU
            utilisation over ``[since_s, now]`` (busy cores / cores, in [0, 1]; 0 for an empty
            interval), busy workers and backlog length per server.
        """
        if not (type(lb) is int and 0 <= lb < self.n_lbs):
            lb = self._check_lb(lb)
        out = np.empty((self.n_servers, len(FEATURE_NAMES) + 3), dtype=np.float32)
        now = self.now
        kn.lb_observation(lb, self.decay ** (now - self._sc_f[kn.T0]), now - since_s, now, busy_since, *self._obs_args,
                          out)
        return out

    def ground_truth(self) -> dict[str, np.ndarray]:
        """True server state at ``now`` (a real LB cannot see it), ``(n_servers,)`` arrays.

        Keys: ``cpu_util`` (busy cores / cpus now, in [0, 1]), ``busy_workers``
        (flows in service), ``queue_length`` (flows in the backlog), ``flows_in_system``,
        ``remaining_work_s`` (unfinished CPU-seconds), ``capacity`` (CPU-seconds/s).
        """
        srv_f, srv_i = self._srv_f, self._srv_i
        ns = srv_i[kn.NSERV].astype(np.float64)
        cpus = srv_f[kn.CPUS].copy()
        ql = srv_i[kn.QLEN].astype(np.float64)
        return {
            "cpu_util": np.minimum(ns, cpus) / cpus,
            "busy_workers": ns,
            "queue_length": ql,
            "flows_in_system": ns + ql,
            "remaining_work_s": np.asarray([kn.work_left(srv_f, srv_i, j, self.now) for j in range(self.n_servers)]),
            "capacity": cpus * srv_f[kn.SPEED],
        }

    def flows_in_system(self) -> np.ndarray:
        """Flows at each server now (in service + backlogged, all LBs), ``(n_servers,)`` float64.

        The ``flows_in_system`` column of :meth:`ground_truth` without the rest of it (cheap).
        """
        return (self._srv_i[kn.NSERV] + self._srv_i[kn.QLEN]).astype(np.float64)

    def counters(self) -> dict[str, np.ndarray]:
        """Cumulative counters since reset (copies).

        Keys: per LB ``(n_lbs,)``: ``arrivals``, ``completed``, ``rejects`` (int64),
        ``fct_sum_s`` (float64); per server ``(n_servers,)``: ``server_arrivals``,
        ``server_completed``, ``server_rejects`` (int64).
        """
        lb_i, srv_i = self._lb_i, self._srv_i
        return {
            "arrivals": lb_i[:, kn.C_ARR].copy(),
            "completed": lb_i[:, kn.C_DONE].copy(),
            "rejects": lb_i[:, kn.C_REJ].copy(),
            "fct_sum_s": self._lb_fct.copy(),
            "server_arrivals": srv_i[kn.S_ARR].copy(),
            "server_completed": srv_i[kn.S_DONE].copy(),
            "server_rejects": srv_i[kn.S_REJ].copy(),
        }

    def lb_counters(self, lb: int) -> tuple[int, int, int, float]:
        """LB ``lb``'s ``(arrivals, completed, rejects, fct_sum_s)`` since reset: its entries of
        :meth:`counters` as Python numbers (cheap enough to read every step)."""
        if not (type(lb) is int and 0 <= lb < self.n_lbs):
            lb = self._check_lb(lb)
        c_arr, c_done, c_rej = self._lb_i[lb, kn.C_ARR : kn.C_REJ + 1].tolist()
        return c_arr, c_done, c_rej, float(self._lb_fct[lb])

    def flow_records(self, start: int = 0) -> FlowRecords:
        """Records of flows ``start..`` (arrival order) as numpy arrays (copies)."""
        n = int(self._sc_i[kn.N_FLOWS])
        ff, fi = self._flow_f[:, start:n], self._flow_i[:, start:n]
        return FlowRecords(
            arrival_s=ff[kn.F_ARR].copy(),
            size_s=ff[kn.F_SIZE].copy(),
            lb=fi[kn.F_LB].copy(),
            server=fi[kn.F_SRV].copy(),
            completion_s=ff[kn.F_DONE].copy(),
            status=fi[kn.F_STATUS].astype(np.int8),
        )

    @property
    def n_flows(self) -> int:
        """Flows that have arrived since reset."""
        return int(self._sc_i[kn.N_FLOWS])


@lru_cache(maxsize=16)
def _maglev_array(servers: tuple[int, ...], size: int) -> np.ndarray:
    """:func:`.dispatch.maglev_table` as a read-only int64 array."""
    a = np.asarray(maglev_table(servers, size), dtype=np.int64)
    a.flags.writeable = False
    return a
