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

Implementation: per server a virtual clock ``V_j`` (attained service per in-service
flow) and a heap of finish tags ``V_arrival + s``; the next departure time of each
server in a list whose minimum (O(n_servers), in C) is the next departure event.
The processor-sharing rate is :func:`lwmecps_gym.core.queueing.ps_rate` everywhere (the hot
departure loop inlines only the bookkeeping around it; measured: calling the core function
there costs nothing measurable). All time-advance logic lives here: backends read
:meth:`FlowSimulator.snapshot` and never the simulator's internals.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from heapq import heappop, heappush
from typing import Any, NamedTuple

import numpy as np

from lwmecps_gym.core.queueing import ps_rate
from lwmecps_gym.core.seeding import streams_from_seed
from lwmecps_gym.core.validation import check_choice, check_float, check_int, check_positive
from marllb_env.reservoir import STAT_NAMES
from marllb_env.sim.dispatch import DISPATCH_MODES, HASH_BITS, build_alias, maglev_table
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
#: samples a reservoir takes between two reads of its statistics before it stops keeping its
#: sorted copies up to date and sorts once at the next read (two ``sorted`` of 128 values cost
#: about as much as this many incremental updates)
LAZY_SORT_AFTER = 8
INF = math.inf

#: Flow status codes in :class:`FlowRecords`.
IN_PROGRESS, COMPLETED, REJECTED = 0, 1, 2


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
            system_rng: generator for tie breaks, reservoir slots, sampling.
        """
        if workload_rng is None or system_rng is None:
            streams = streams_from_seed(seed)
            workload_rng = workload_rng or streams.workload
            system_rng = system_rng or streams.system
        self._wrng = workload_rng
        self._srng = system_rng
        self._ub: list[float] = []
        self._ui = 4096
        S, L, K = self.n_servers, self.n_lbs, self.reservoir_size
        self.now = 0.0
        specs = self._specs0
        self._cpus = [float(s.cpus) for s in specs]
        self._speed = [float(s.speed) for s in specs]
        self._nw = [int(s.n_workers) for s in specs]
        self._bl = [int(s.backlog) for s in specs]
        self._nserv = [0] * S
        self._V = [0.0] * S
        self._T = [0.0] * S
        self._busy = [0.0] * S  # busy core-seconds
        self._sumF = [0.0] * S
        self._wwork = [0.0] * S
        self._heaps: list[list[tuple[float, int]]] = [[] for _ in range(S)]
        self._waitq: list[deque[int]] = [deque() for _ in range(S)]
        self._nd = [INF] * S  # next departure time per server
        self._ctl: list[tuple[float, int, str, tuple]] = []
        self._ctl_seq = 0
        self._active = [True] * S
        self._act = list(range(S))
        # per LB
        self._mode = [self._dispatch0] * L
        self._w = [[1.0] * S for _ in range(L)]
        self._invw = [[1.0 / (1.0 + 1e-9)] * S for _ in range(L)]
        self._alias: list[tuple[list[float], list[int]] | None] = [None] * L
        self._maglev: tuple[int, ...] | None = None
        self._on = [[0] * S for _ in range(L)]
        self._ongoing: list[list[int]] = [[] for _ in range(L)]
        # reservoirs [lb][server][kind] counts; kind 0 = FCT, 1 = flow duration
        # reservoirs, one per (lb, server, kind), index r = (lb * S + j) * 2 + kind (0 FCT, 1 flow duration):
        # slots (values, times, v * decay**(t0 - t)), sorted copies, running sums, filled count
        R = L * S * 2
        zero = self.empty_slots == "zero"
        # per reservoir: [values, times, v * decay**(t0 - t), sorted values, sorted decayed, sum v, sum v^2,
        # sum decayed, samples since the statistics were last read]; the sorted copies are None while
        # stale (see _sample); "zero" mode starts with K (0, 0) slots as VPP
        self._res = [
            [[0.0] * K, [0.0] * K, [0.0] * K, [0.0] * K, [0.0] * K, 0.0, 0.0, 0.0, 0] if zero
            else [[], [], [], [], [], 0.0, 0.0, 0.0, 0]
            for _ in range(R)
        ]
        self._cache: list[list[float] | None] = [None] * R
        self._rseen = [0] * R
        self._t0 = 0.0
        self._lninvd = -math.log(self.decay)
        self._res_fast = self.reservoir_mode == "random_replacement" and self.keep_prob == 1.0
        # flows
        self._f_arr: list[float] = []
        self._f_size: list[float] = []
        self._f_lb: list[int] = []
        self._f_srv: list[int] = []
        self._f_done: list[float] = []
        self._f_status: list[int] = []
        self._f_pos: list[int] = []
        # cumulative counters per LB and per server
        self._c_arr = [0] * L
        self._c_done = [0] * L
        self._c_rej = [0] * L
        self._c_fct = [0.0] * L
        self._s_arr = [0] * S
        self._s_done = [0] * S
        self._s_rej = [0] * S
        # workload
        cap = sum(c * s for c, s in zip(self._cpus, self._speed, strict=True))
        self._wl = iter(self.workload.batches(self._wrng, cap))
        self._bt: list[float] = []
        self._bs: list[float] = []
        self._be: list[int] = []
        self._bh: list[int] = []
        self._bi = 0
        self._ta = 0.0
        self._load_next_arrival()

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
        if self._mode[lb] == "wcmp" and sum(wl[j] for j in self._act) <= 0:
            raise ValueError("wcmp needs a positive weight on at least one active server")
        self._w[lb] = wl
        self._invw[lb] = [1.0 / (x + 1e-9) for x in wl]
        self._alias[lb] = None

    def weights(self, lb: int) -> np.ndarray:
        """LB ``lb``'s current weights, ``(n_servers,)`` float64."""
        return np.asarray(self._w[self._check_lb(lb)], dtype=np.float64)

    def set_dispatch(self, mode: str, lb: int | None = None) -> None:
        """Set the dispatch mode of LB ``lb`` (all LBs if ``None``); see :mod:`.dispatch`."""
        check_choice("dispatch", mode, DISPATCH_MODES)
        lbs = range(self.n_lbs) if lb is None else [self._check_lb(lb)]
        for i in lbs:
            if mode == "wcmp" and sum(self._w[i][j] for j in self._act) <= 0:
                raise ValueError("wcmp needs a positive weight on at least one active server")
            self._mode[i] = mode
            self._alias[i] = None

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
            self._advance_server(j, t)
            if cpus is not None:
                self._cpus[j] = float(cpus)
            if speed is not None:
                self._speed[j] = float(speed)
            self._resched(j)
        else:
            j, flag = args
            act = [i for i in range(self.n_servers) if (flag if i == j else self._active[i])]
            if not act:
                raise ValueError("at least one server must stay active")
            self._active[j] = flag
            self._act = act
            self._alias = [None] * self.n_lbs
            self._maglev = None

    # ------------------------------------------------------------------ running
    def run_until(self, t_end: float) -> None:
        """Process all events up to simulated time ``t_end`` (s) and set ``now = t_end``."""
        if not t_end >= self.now:
            raise ValueError(f"run_until target {t_end!r} is before now={self.now!r}")
        nd = self._nd
        ctl = self._ctl
        ta = self._ta
        if ta > t_end and not ctl and min(nd) > t_end:  # nothing happens in this interval
            self.now = float(t_end)
            self._rebase_decay()
            return
        # the event loop, arrivals and departures inlined (it is the hot loop): locals throughout
        V, T, busy, cpus, speed, nserv = self._V, self._T, self._busy, self._cpus, self._speed, self._nserv
        heaps, sumF, waitq, wwork, nw, bl = self._heaps, self._sumF, self._waitq, self._wwork, self._nw, self._bl
        f_lb, f_done, f_status, f_arr, f_pos, f_size, f_srv = (
            self._f_lb, self._f_done, self._f_status, self._f_arr, self._f_pos, self._f_size, self._f_srv
        )
        on, ongoing, c_done, c_fct, s_done = self._on, self._ongoing, self._c_done, self._c_fct, self._s_done
        c_arr, s_arr, c_rej, s_rej = self._c_arr, self._s_arr, self._c_rej, self._s_rej
        modes, invws = self._mode, self._invw
        bt, bs, be, bh, bi = self._bt, self._bs, self._be, self._bh, self._bi
        nb = len(bt)
        sample = self._sample
        rand = self._rand
        S = self.n_servers
        n_lbs = self.n_lbs
        n_fd = range(self.fd_samples_per_arrival)
        nan = math.nan
        while True:
            td = min(nd)
            t = td if td <= ta else ta
            if ctl and ctl[0][0] < t:
                if ctl[0][0] > t_end:
                    break
                tc, _, kind, args = heappop(ctl)
                self._apply_control(tc, kind, args)
                continue
            if t > t_end:
                break
            if td > ta:
                # ---- arrival of the next flow of the workload at its LB (edge router: hash % n_lbs)
                size = bs[bi]
                lb = be[bi] % n_lbs
                h = bh[bi]
                bi += 1
                if bi < nb:
                    ta = bt[bi]
                else:
                    self._bi = bi
                    self._load_next_arrival()
                    bt, bs, be, bh, bi, ta = self._bt, self._bs, self._be, self._bh, self._bi, self._ta
                    nb = len(bt)
                fid = len(f_arr)
                mode = modes[lb]
                o = on[lb]
                if mode == "sed":  # the default mode, inlined (same rule as _choose)
                    iw = invws[lb]
                    best = INF
                    j = -1
                    nt = 0
                    for k in self._act:
                        x = (o[k] + 1) * iw[k]
                        if x < best:
                            best = x
                            j = k
                            nt = 1
                        elif x == best:
                            nt += 1
                            if rand() * nt < 1.0:
                                j = k
                else:
                    j = self._choose(lb, mode, h, size, t)
                f_arr.append(t)
                f_size.append(size)
                f_lb.append(lb)
                f_srv.append(j)
                c_arr[lb] += 1
                s_arr[j] += 1
                # flow-duration samples of this LB's ongoing flows (the ACKs VPP samples)
                lst = ongoing[lb]
                if lst:
                    base = lb * S
                    for _ in n_fd:
                        g = lst[int(rand() * len(lst))]
                        sample(((base + f_srv[g]) << 1) + 1, t, t - f_arr[g])
                n = nserv[j]
                if n < nw[j]:
                    dt = t - T[j]  # bring server j's clock to t (as _advance_server)
                    if dt > 0:
                        if n:
                            c = cpus[j]
                            V[j] += ps_rate(speed[j], c, n) * dt
                            busy[j] += (n if n <= c else c) * dt
                        T[j] = t
                    v = V[j]
                    fv = v + size
                    hp = heaps[j]
                    heappush(hp, (fv, fid))
                    sumF[j] += fv
                    n += 1
                    nserv[j] = n
                    d = hp[0][0] - v
                    nd[j] = t + (d if d > 0.0 else 0.0) / ps_rate(speed[j], cpus[j], n)
                elif len(waitq[j]) < bl[j]:
                    waitq[j].append(fid)
                    wwork[j] += size
                else:
                    f_done.append(nan)
                    f_status.append(REJECTED)
                    f_pos.append(-1)
                    c_rej[lb] += 1
                    s_rej[j] += 1
                    continue
                f_done.append(nan)
                f_status.append(IN_PROGRESS)
                o[j] += 1
                f_pos.append(len(lst))
                lst.append(fid)
                continue
            # ---- departure of the flow with the smallest finish tag at server j
            j = nd.index(td)
            n = nserv[j]
            c = cpus[j]
            dt = t - T[j]
            if dt > 0:
                V[j] += ps_rate(speed[j], c, n) * dt
                busy[j] += (n if n <= c else c) * dt
                T[j] = t
            hp = heaps[j]
            fv, fid = heappop(hp)
            sumF[j] -= fv
            n -= 1
            lb = f_lb[fid]
            f_done[fid] = t
            f_status[fid] = COMPLETED
            fct = t - f_arr[fid]
            on[lb][j] -= 1
            lst = ongoing[lb]
            p = f_pos[fid]
            last = lst.pop()
            if last != fid:
                lst[p] = last
                f_pos[last] = p
            c_done[lb] += 1
            c_fct[lb] += fct
            s_done[j] += 1
            sample((lb * S + j) << 1, t, fct)
            wq = waitq[j]
            if wq:  # a backlogged flow gets the freed worker
                nxt = wq.popleft()
                sz = f_size[nxt]
                wwork[j] -= sz
                fv2 = V[j] + sz
                heappush(hp, (fv2, nxt))
                sumF[j] += fv2
                n += 1
            nserv[j] = n
            if hp:
                d = hp[0][0] - V[j]
                nd[j] = t + (d if d > 0.0 else 0.0) / ps_rate(speed[j], c, n)
            else:
                nd[j] = INF
        self._bi = bi
        self._ta = ta
        self.now = float(t_end)
        self._rebase_decay()

    def advance(self, seconds: float) -> None:
        """Run for ``seconds`` of simulated time."""
        self.run_until(self.now + seconds)

    @property
    def workload_exhausted(self) -> bool:
        """True once a finite workload (trace) has delivered its last flow."""
        return self._ta == INF

    # ------------------------------------------------------------------ internals
    def _rand(self) -> float:
        i = self._ui
        if i >= 4096:
            self._ub = self._srng.random(4096).tolist()
            i = 0
        self._ui = i + 1
        return self._ub[i]

    def _load_next_arrival(self) -> None:
        if self._bi >= len(self._bt):
            try:
                t, s = next(self._wl)
            except StopIteration:
                self._ta = INF
                return
            n = len(t)
            self._bt = np.asarray(t, dtype=np.float64).tolist()
            self._bs = np.asarray(s, dtype=np.float64).tolist()
            self._be = self._wrng.integers(0, 1 << HASH_BITS, n).tolist()
            self._bh = self._wrng.integers(0, 1 << HASH_BITS, n).tolist()
            self._bi = 0
            if n == 0:
                self._load_next_arrival()
                return
        self._ta = self._bt[self._bi]

    def _advance_all(self) -> None:
        """Bring every server's virtual clock and busy time up to ``now``."""
        now = self.now
        V, T, busy, cpus, speed = self._V, self._T, self._busy, self._cpus, self._speed
        for j, n in enumerate(self._nserv):
            if n:  # an idle server's clock needs no update (the next arrival sets it)
                dt = now - T[j]
                if dt > 0:  # as _advance_server, inlined: every observation calls this
                    c = cpus[j]
                    V[j] += ps_rate(speed[j], c, n) * dt
                    busy[j] += (n if n <= c else c) * dt
                    T[j] = now

    def _advance_server(self, j: int, t: float) -> None:
        dt = t - self._T[j]
        if dt > 0:
            n = self._nserv[j]
            if n:
                c = self._cpus[j]
                self._V[j] += ps_rate(self._speed[j], c, n) * dt
                self._busy[j] += (n if n <= c else c) * dt
            self._T[j] = t

    def _resched(self, j: int) -> None:
        hp = self._heaps[j]
        if hp:
            n = self._nserv[j]
            c = self._cpus[j]
            r = ps_rate(self._speed[j], c, n)
            d = hp[0][0] - self._V[j]
            self._nd[j] = self._T[j] + (d if d > 0.0 else 0.0) / r
        else:
            self._nd[j] = INF

    def _sample(self, r: int, t: float, v: float) -> None:
        """Offer sample ``v`` taken at ``t`` to reservoir ``r = (lb * S + server) * 2 + kind``.

        Kind 0 is FCT, 1 flow duration. Besides the slots, each reservoir keeps running sums and
        sorted copies of its values and of ``v * decay**(t0 - t)`` (the decayed order is
        time-invariant: the factor ``decay**(now - t0)`` is common to all samples), so the five
        statistics cost O(1) per step. The sorted copies are kept up to date sample by sample
        while the statistics are read (each step, for the observing LB); a reservoir that takes
        more than :data:`LAZY_SORT_AFTER` samples between two reads drops them and sorts once at
        its next read (LBs nobody observes, or many samples per step); same values either way.
        """
        R = self._res[r]
        vals = R[0]
        K = self.reservoir_size
        if self._res_fast:
            if len(vals) < K:
                slot = -1
            else:
                ui = self._ui
                if ui >= 4096:
                    self._ub = self._srng.random(4096).tolist()
                    ui = 0
                self._ui = ui + 1
                slot = int(self._ub[ui] * K)
        elif self.reservoir_mode == "algorithm_r":
            self._rseen[r] += 1
            if len(vals) < K:
                slot = -1
            else:
                slot = int(self._rand() * self._rseen[r])
                if slot >= K:
                    return
        else:
            if self._rand() >= self.keep_prob:
                return
            slot = -1 if len(vals) < K else int(self._rand() * K)
        if t - self._t0 > 300.0:  # long run_until: rebase before exp() could overflow
            self._rebase_decay(t)
        ve = v * math.exp((t - self._t0) * self._lninvd)
        sv = R[3]
        if sv is not None:
            unread = R[8] + 1
            if unread > LAZY_SORT_AFTER:
                sv = R[3] = R[4] = None  # sorted once at the next read
            else:
                R[8] = unread
        if slot >= 0:  # replace
            ves = R[2]
            old = vals[slot]
            olde = ves[slot]
            vals[slot] = v
            ves[slot] = ve
            R[1][slot] = t
            R[5] += v - old
            R[6] += v * v - old * old
            R[7] += ve - olde
            if sv is not None:
                del sv[bisect_left(sv, old)]
                se = R[4]
                del se[bisect_left(se, olde)]
                insort(sv, v)
                insort(se, ve)
        else:  # fill the next empty slot
            vals.append(v)
            R[1].append(t)
            R[2].append(ve)
            R[5] += v
            R[6] += v * v
            R[7] += ve
            if sv is not None:
                insort(sv, v)
                insort(R[4], ve)
        self._cache[r] = None

    def _rebase_decay(self, t: float | None = None) -> None:
        """Keep stored ``v * decay**(t0 - t)`` finite: move ``t0`` to ``t`` (default ``now``, if more
        than 200 s old); refresh the running sums."""
        if t is None:
            if self.now - self._t0 <= 200.0:
                return
            t = self.now
        if t > self._t0:
            f = self.decay ** (t - self._t0)
            self._t0 = t
            for R in self._res:
                R[2] = [x * f for x in R[2]]
                if R[4] is not None:  # x -> x * f keeps the order
                    R[4] = [x * f for x in R[4]]
                R[5] = math.fsum(R[0])
                R[6] = math.fsum(x * x for x in R[0])
                R[7] = math.fsum(R[2])
            self._cache = [None] * len(self._res)

    def _work_left(self, j: int, t: float) -> float:
        n = self._nserv[j]
        v = self._V[j]
        if n:
            c = self._cpus[j]
            v += ps_rate(self._speed[j], c, n) * (t - self._T[j])
        w = self._sumF[j] - n * v + self._wwork[j]
        return w if w > 0.0 else 0.0

    def _ps_completion(self, j: int, t: float, size: float) -> float:
        """Time a new job of ``size`` would take at server ``j`` under PS if no other flow arrived.

        Uses the true remaining sizes of the server's flows (backlogged ones counted as in
        service, an approximation); with ``k`` flows sharing ``cpus`` cores each progresses at
        ``speed * min(1, cpus / k)``, and ``k`` drops as the smaller jobs finish.
        """
        n = self._nserv[j]
        c = self._cpus[j]
        v = self._V[j]
        if n:
            v += ps_rate(self._speed[j], c, n) * (t - self._T[j])
        rem = sorted([fv - v for fv, _ in self._heaps[j]] + [self._f_size[f] for f in self._waitq[j]])
        k = len(rem) + 1
        sp = self._speed[j]
        done = 0.0
        total = 0.0
        for r in rem:
            if r >= size:
                break
            if r > done:
                total += (r - done) / ps_rate(sp, c, k)
                done = r
            k -= 1
        return total + (size - done) / ps_rate(sp, c, k)

    def _pick(self, scores: list[float]) -> int:
        """Index of the minimum score; exact ties broken uniformly at random (system stream)."""
        best = min(scores)
        if scores.count(best) == 1:
            return scores.index(best)
        ties = [i for i, sc in enumerate(scores) if sc == best]
        return ties[int(self._rand() * len(ties))]

    def _choose(self, lb: int, mode: str, h: int, size: float, t: float) -> int:
        act = self._act
        n = len(act)
        if mode == "sed":
            o = self._on[lb]
            iw = self._invw[lb]
            best = INF
            j = -1
            nt = 0
            for s in act:
                x = (o[s] + 1) * iw[s]
                if x < best:
                    best = x
                    j = s
                    nt = 1
                elif x == best:  # exact tie: keep each tied server with prob 1/nt (uniform)
                    nt += 1
                    if self._rand() * nt < 1.0:
                        j = s
            return j
        if mode == "lsq":
            o = self._on[lb]
            return act[self._pick([o[s] for s in act])]
        if mode == "gsq":
            iw = self._invw[lb]
            ns, wq = self._nserv, self._waitq
            return act[self._pick([(ns[s] + len(wq[s]) + 1) * iw[s] for s in act])]
        if mode == "lwl":
            return act[self._pick([self._work_left(s, t) / (self._cpus[s] * self._speed[s]) for s in act])]
        if mode == "srt":
            return act[self._pick([self._ps_completion(s, t, size) for s in act])]
        if mode == "ecmp":
            return act[h % n]
        if mode == "random":
            return act[int(self._rand() * n)]
        if mode == "sed2" or mode == "lsq2":
            a = h % n
            if n == 1:
                return act[a]
            b = (a + 1 + (h >> 20) % (n - 1)) % n
            ja, jb = act[a], act[b]
            o = self._on[lb]
            if mode == "sed2":
                iw = self._invw[lb]
                sa, sb = (o[ja] + 1) * iw[ja], (o[jb] + 1) * iw[jb]
            else:
                sa, sb = o[ja], o[jb]
            if sa < sb:
                return ja
            if sb < sa:
                return jb
            return ja if self._rand() < 0.5 else jb
        if mode == "wcmp":
            al = self._alias[lb]
            if al is None:
                al = self._alias[lb] = build_alias([self._w[lb][s] for s in act])
            i = h % n
            u = (h >> 31) * (1.0 / (1 << 31))
            return act[i] if u < al[0][i] else act[al[1][i]]
        # maglev
        tab = self._maglev
        if tab is None:
            tab = self._maglev = maglev_table(tuple(act), self.maglev_size)
        return tab[h % len(tab)]

    def _check_lb(self, lb: int) -> int:
        return check_int("lb", lb, low=0, high=self.n_lbs - 1)

    def _check_server(self, j: int) -> int:
        return check_int("server", j, low=0, high=self.n_servers - 1)

    # ------------------------------------------------------------------ observation API
    def n_flow_on(self, lb: int) -> np.ndarray:
        """LB ``lb``'s local ongoing-flow counts per server, ``(n_servers,)`` int64."""
        return np.asarray(self._on[self._check_lb(lb)], dtype=np.int64)

    def _stats_row(self, r: int) -> list[float]:
        """``[mean, p90, std, mean of v*decay**(t0-t), p90 of it]`` of reservoir ``r`` (cached until it changes)."""
        R = self._res[r]
        n = len(R[0])
        R[8] = 0
        if R[3] is None:  # dropped while unread (see _sample)
            R[3] = sorted(R[0])
            R[4] = sorted(R[2])
        if n == 0:
            row = [0.0, 0.0, 0.0, 0.0, 0.0]
        else:
            mean = R[5] / n
            var = R[6] / n - mean * mean
            h = 0.9 * (n - 1)
            lo = int(h)
            hi = lo + 1 if lo + 1 < n else lo
            fr = h - lo
            sv = R[3]
            se = R[4]
            row = [
                mean,
                sv[lo] + fr * (sv[hi] - sv[lo]),
                math.sqrt(var) if var > 0.0 else 0.0,
                R[7] / n,
                se[lo] + fr * (se[hi] - se[lo]),
            ]
        self._cache[r] = row
        return row

    def _feature_rows(self, lb: int) -> list[list[float]]:
        c = self.decay ** (self.now - self._t0)
        on = self._on[lb]
        cache = self._cache
        rows = []
        r = lb * self.n_servers * 2
        for j in range(self.n_servers):
            a = cache[r] or self._stats_row(r)
            b = cache[r + 1] or self._stats_row(r + 1)
            rows.append([on[j], a[0], a[1], a[2], c * a[3], c * a[4], b[0], b[1], b[2], c * b[3], c * b[4]])
            r += 2
        return rows

    def features(self, lb: int) -> np.ndarray:
        """MARLLB features of LB ``lb`` at ``now``: ``(n_servers, 11)`` float64, columns :data:`FEATURE_NAMES`.

        Column 0 is ``n_flow_on`` (count); columns 1-10 are seconds (the five
        reservoir statistics of FCT, then of flow duration, as
        :func:`marllb_env.reservoir.reservoir_stats` computes them from
        :meth:`reservoir`). Non-negative and finite. Empty reservoirs give 0.
        """
        return np.array(self._feature_rows(self._check_lb(lb)), dtype=np.float64)

    def features_all(self) -> np.ndarray:
        """Features of every LB at once: ``(n_lbs, n_servers, 11)`` float64."""
        return np.array([self._feature_rows(lb) for lb in range(self.n_lbs)], dtype=np.float64)

    def reservoir(self, lb: int, server: int, kind: str = "fct") -> tuple[np.ndarray, np.ndarray]:
        """Raw ``(times_s, values_s)`` of one reservoir's slots (``"zero"`` mode: empty slots are ``(0, 0)``); copies.

        Args:
            kind: ``"fct"`` or ``"flow_duration"``.
        """
        lb, server = self._check_lb(lb), self._check_server(server)
        k = int(check_choice("kind", kind, ("fct", "flow_duration")) == "flow_duration")
        R = self._res[(lb * self.n_servers + server) * 2 + k]
        return np.array(R[1], dtype=np.float64), np.array(R[0], dtype=np.float64)

    def reservoir_count(self, lb: int, server: int, kind: str = "fct") -> int:
        """Number of filled slots of one reservoir (``reservoir_size`` in ``"zero"`` mode)."""
        lb, server = self._check_lb(lb), self._check_server(server)
        k = int(check_choice("kind", kind, ("fct", "flow_duration")) == "flow_duration")
        return len(self._res[(lb * self.n_servers + server) * 2 + k][0])

    def active_mask(self) -> np.ndarray:
        """``(n_servers,)`` bool: servers currently receiving new flows."""
        return np.asarray(self._active, dtype=bool)

    def capacities(self) -> np.ndarray:
        """``(n_servers,)`` float64 current capacity (cpus * speed, CPU-seconds/s)."""
        return np.array([c * s for c, s in zip(self._cpus, self._speed, strict=True)], dtype=np.float64)

    def busy_core_seconds(self) -> np.ndarray:
        """Cumulative busy core-seconds per server up to ``now`` (``(n_servers,)`` float64)."""
        self._advance_all()
        return np.asarray(self._busy, dtype=np.float64)

    def snapshot(self, lb: int) -> LBSnapshot:
        """Everything LB ``lb``'s backend reports at ``now`` (:class:`LBSnapshot`), in one cheap pass.

        Busy time is brought up to ``now`` first, so differencing ``busy_core_seconds`` of two
        snapshots gives the busy core-seconds of the interval between them.
        """
        if not (type(lb) is int and 0 <= lb < self.n_lbs):
            lb = self._check_lb(lb)
        self._advance_all()
        nserv = self._nserv
        return LBSnapshot(
            self.now,
            self._feature_rows(lb),
            list(self._busy),
            list(self._cpus),
            list(nserv),
            [len(q) for q in self._waitq],
            list(self._active),
            self._c_arr[lb],
            self._c_done[lb],
            self._c_rej[lb],
            self._c_fct[lb],
            self._ta == INF and not any(nserv),
        )

    def ground_truth(self) -> dict[str, np.ndarray]:
        """True server state at ``now`` (a real LB cannot see it), ``(n_servers,)`` arrays.

        Keys: ``cpu_util`` (busy cores / cpus now, in [0, 1]), ``busy_workers``
        (flows in service), ``queue_length`` (flows in the backlog), ``flows_in_system``,
        ``remaining_work_s`` (unfinished CPU-seconds), ``capacity`` (CPU-seconds/s).
        """
        S = self.n_servers
        ns = np.asarray(self._nserv, dtype=np.float64)
        cpus = np.asarray(self._cpus)
        ql = np.asarray([len(q) for q in self._waitq], dtype=np.float64)
        return {
            "cpu_util": np.minimum(ns, cpus) / cpus,
            "busy_workers": ns,
            "queue_length": ql,
            "flows_in_system": ns + ql,
            "remaining_work_s": np.asarray([self._work_left(j, self.now) for j in range(S)]),
            "capacity": cpus * np.asarray(self._speed),
        }

    def flows_in_system(self) -> np.ndarray:
        """Flows at each server now (in service + backlogged, all LBs), ``(n_servers,)`` float64.

        The ``flows_in_system`` column of :meth:`ground_truth` without the rest of it (cheap).
        """
        return np.asarray([n + len(q) for n, q in zip(self._nserv, self._waitq, strict=True)], dtype=np.float64)

    def counters(self) -> dict[str, np.ndarray]:
        """Cumulative counters since reset (copies).

        Keys: per LB ``(n_lbs,)``: ``arrivals``, ``completed``, ``rejects`` (int64),
        ``fct_sum_s`` (float64); per server ``(n_servers,)``: ``server_arrivals``,
        ``server_completed``, ``server_rejects`` (int64).
        """
        i64 = np.int64
        return {
            "arrivals": np.asarray(self._c_arr, dtype=i64),
            "completed": np.asarray(self._c_done, dtype=i64),
            "rejects": np.asarray(self._c_rej, dtype=i64),
            "fct_sum_s": np.asarray(self._c_fct, dtype=np.float64),
            "server_arrivals": np.asarray(self._s_arr, dtype=i64),
            "server_completed": np.asarray(self._s_done, dtype=i64),
            "server_rejects": np.asarray(self._s_rej, dtype=i64),
        }

    def lb_counters(self, lb: int) -> tuple[int, int, int, float]:
        """LB ``lb``'s ``(arrivals, completed, rejects, fct_sum_s)`` since reset: its entries of
        :meth:`counters` as Python numbers (cheap enough to read every step)."""
        if not (type(lb) is int and 0 <= lb < self.n_lbs):
            lb = self._check_lb(lb)
        return self._c_arr[lb], self._c_done[lb], self._c_rej[lb], self._c_fct[lb]

    def flow_records(self, start: int = 0) -> FlowRecords:
        """Records of flows ``start..`` (arrival order) as numpy arrays (copies)."""
        sl = slice(start, None)
        return FlowRecords(
            arrival_s=np.asarray(self._f_arr[sl], dtype=np.float64),
            size_s=np.asarray(self._f_size[sl], dtype=np.float64),
            lb=np.asarray(self._f_lb[sl], dtype=np.int64),
            server=np.asarray(self._f_srv[sl], dtype=np.int64),
            completion_s=np.asarray(self._f_done[sl], dtype=np.float64),
            status=np.asarray(self._f_status[sl], dtype=np.int8),
        )

    @property
    def n_flows(self) -> int:
        """Flows that have arrived since reset."""
        return len(self._f_arr)
