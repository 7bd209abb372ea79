"""The simulated FaaS platform: a seeded model of one function with replicas, cold starts and keep-alive.

Two models share one replica life cycle and one configuration (:class:`SimConfig`):

``model="des"`` -- exact request-level discrete-event simulation (SimFaaS-style):
    arrivals from the workload; each ready replica serves up to ``concurrency`` requests at
    once (``concurrency`` independent slots); one FIFO queue with room for ``queue_capacity``
    waiting requests (an arrival that finds it full is dropped); service times i.i.d. from
    ``service_time``; a new replica serves only after ``cold_start_s``; a replica removed by
    a scale-down finishes its in-flight requests and is kept alive (warm, not billed to the
    function's replicas) for ``keep_alive_s``, after which it is reclaimed; a scale-up first
    revives kept-alive replicas (no cold start), newest first. The queue is work-conserving
    FCFS over all slots: a waiting request starts on the first slot that frees (or becomes
    ready). With constant replicas, concurrency 1, Poisson arrivals and exponential service
    this is exactly M/M/c/(c+K) (tests compare it with Erlang C).

``model="fluid"`` (default, fast) -- a per-interval queueing/fluid hybrid (a pointwise-stationary
    approximation with a carried-over backlog, in the spirit of Stolletz's stationary
    backlog-carryover approach, EJOR 2008):
    the interval's arrival count ``A`` is drawn from the same workload (vectorised in chunks);
    capacity is ``c = concurrency * time-averaged ready replicas`` (cold starts finishing
    mid-interval count pro rata), ``mu = 1 / E[S]``. A deterministic fluid backlog ``Q`` carries
    overload between intervals: it grows by ``A - c mu dt`` while the interval is overloaded and
    drains at ``c mu - lambda`` otherwise, with drops when ``Q`` exceeds ``queue_capacity``. The
    backlog's drift uses the workload's expected rate when it has one (Poisson family: poisson,
    diurnal, spike, azure_trace): the count's Poisson noise around it is exactly what Erlang C
    already accounts for, so it must not also build a backlog (letting it do so made intervals with
    more arrivals than capacity lose their stationary queue: 31 % optimistic at M/M/1 rho 0.9). For
    renewal workloads (OrcBench) the count drives the backlog: their bursts are the count's
    fluctuations. On top of the fluid backlog, the stochastic queue of a stable interval
    (``rho = lambda / (c mu) < 1``) uses Erlang C with the Allen-Cunneen factor ``(1 + SCV_S) / 2``
    (exact for M/M/c): ``Wq = C(c, a) / (c mu - lambda) * (1 + SCV_S) / 2``
    (:func:`lwmecps_gym.core.queueing.erlang_c`); non-integer ``c`` interpolates linearly between
    floor and ceiling; the rate in Erlang C is the expected rate when known, else the count's.
    Response time = ``E[S]`` + fluid wait + ``Wq``, where the fluid wait releases the backlog's
    accumulated waiting area (request-seconds, ``integral Q dt``) to the requests that leave the
    backlog, in proportion (so a backlog built during a cold start carries its age into the
    window where it is served). The SLO-violation rate uses the exponential waiting-time tail
    ``P(W > x) = C e^{-theta x}`` (exact for M/M/c; ``theta`` matched to ``Wq``) convolved with
    16 service-time quantiles. Counts are integers and conserve requests exactly
    (``completed`` is computed from the balance). A window without backlog is a pure function
    of (ready slot-seconds, arrivals, expected arrivals, length) and is memoised. Measured
    fidelity (``docs/faas_gym.md``, ``tests/faas/test_sim.py``): stationary M/M/c mean response
    within 0.01 % at c in {1, 4, 8}, rho in {0.5, 0.8, 0.9}, 15-60 s intervals; against the DES,
    M/G/c within the stated tolerances; with bursty renewal (OrcBench) arrivals it is optimistic
    close to saturation (within-interval burstiness is not modelled).

The fluid model's per-interval math is :mod:`faas_gym.backends.fluid`, one source shared with the
batched vector env (:mod:`faas_gym.vector`): this backend runs it on Python floats.
The DES's window (its event loop over the free-slot heap, the waiting queue and the heap of
requests in service) is :func:`faas_gym.backends.des.des_window`, compiled with numba.

Random streams: ``reset(seed)`` seeds a workload stream and a system stream (service times);
arrivals depend only on the seed, never on the actions.

Both report a :class:`~faas_gym.backends.base.FaasMeasurement` per ``advance``. CPU
utilisation is busy slot-time over ready slot-time; memory utilisation is
``(replicas * memory_idle_mb + busy slots * memory_per_request_mb) / (replicas * memory_limit_mb)``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from faas_gym.backends import des, fluid
from faas_gym.backends.base import FaasMeasurement
from faas_gym.backends.fluid import FluidParams
from faas_gym.workloads import (
    CountsStream,
    ServiceTime,
    Workload,
    copy_generator,
    make_service_time,
    make_workload,
)
from lwmecps_gym.core.compiled import grown
from lwmecps_gym.core.validation import check_choice, check_float, check_int, coerce_dataclass

MODELS = ("fluid", "des")
_CHUNK = 256  # intervals of arrival counts generated at once by the fluid model
MAX_CHUNK_INTERVALS = _CHUNK  #: the longest chunk of :func:`chunk_length`


def _default_workload() -> dict:
    return {"kind": "orcbench", "model": 0, "mean_rps": 12.0}


def _default_service() -> dict:
    return {"kind": "orcbench", "model": 0, "max_s": 5.0}


@dataclass(frozen=True)
class SimConfig:
    """Parameters of the simulated function (all times in seconds).

    Attributes:
        workload: arrival process (:class:`~faas_gym.workloads.Workload` or dict); default OrcBench
            model 0 (the largest Azure cluster) rescaled to 12 requests/s.
        service_time: service-time distribution (warm execution time); default OrcBench model 0's
            execution times clipped to [1 ms, 5 s] (mean 1.17 s, SCV 2.0).
        concurrency: requests a replica serves at once (OpenFaaS ``max_inflight``), >= 1.
        queue_capacity: waiting requests the gateway queue holds; arrivals beyond are dropped, >= 0.
        cold_start_s: delay from creating a replica to it serving, >= 0.
        keep_alive_s: how long a scaled-down replica stays warm for reuse, >= 0.
        memory_limit_mb: memory limit per replica, MB.
        memory_idle_mb: working set of an idle replica, MB.
        memory_per_request_mb: extra working set per in-flight request, MB.
        slo_ms: response-time objective for the SLO-violation rate, ms.
        initial_replicas: ready (warm) replicas at reset.
        model: ``"fluid"`` (fast hybrid) or ``"des"`` (exact request-level DES).
    """

    workload: Any = field(default_factory=_default_workload)
    service_time: Any = field(default_factory=_default_service)
    concurrency: int = 4
    queue_capacity: int = 200
    cold_start_s: float = 5.0
    keep_alive_s: float = 60.0
    memory_limit_mb: float = 256.0
    memory_idle_mb: float = 64.0
    memory_per_request_mb: float = 32.0
    slo_ms: float = 6000.0
    initial_replicas: int = 1
    model: str = "fluid"

    def __post_init__(self):
        check_int("concurrency", self.concurrency, low=1)
        check_int("queue_capacity", self.queue_capacity, low=0)
        check_float("cold_start_s", self.cold_start_s, low=0.0)
        check_float("keep_alive_s", self.keep_alive_s, low=0.0)
        check_float("memory_limit_mb", self.memory_limit_mb, low=0.0, low_open=True)
        check_float("memory_idle_mb", self.memory_idle_mb, low=0.0, high=self.memory_limit_mb)
        check_float("memory_per_request_mb", self.memory_per_request_mb, low=0.0)
        check_float("slo_ms", self.slo_ms, low=0.0, low_open=True)
        check_int("initial_replicas", self.initial_replicas, low=0)
        check_choice("model", self.model, MODELS)
        object.__setattr__(self, "workload", make_workload(self.workload))
        object.__setattr__(self, "service_time", make_service_time(self.service_time))


_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> tuple[int, int]:
    """One SplitMix64 step (Steele, Lea & Flood 2014): returns (new state, output)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x, z ^ (z >> 31)


def seed_pcg64_pair(seed: int, bitgens: Sequence[np.random.PCG64]) -> None:
    """Set the states of the workload and system ``PCG64`` generators of a simulator reset with ``seed``.

    Equivalent in role to :func:`lwmecps_gym.core.seeding.make_streams` (two independent streams,
    the workload one untouched by system draws), but existing generators are re-seeded by setting
    their 128-bit state and odd increment from SplitMix64 outputs of the seed: constructing
    Generators costs ~150 us, which would dominate short episodes (``FaaSTrainGym-v1`` has 10 steps).
    """
    x = seed & _MASK64
    for bg in bitgens:
        words = []
        for _ in range(4):
            x, w = _splitmix64(x)
            words.append(w)
        bg.state = {
            "bit_generator": "PCG64",
            "state": {"state": (words[0] << 64) | words[1], "inc": ((words[2] << 64) | words[3]) | 1},
            "has_uint32": 0,
            "uinteger": 0,
        }


def chunk_length(n_chunks: int) -> int:
    """Intervals in the fluid model's next chunk of arrival counts after ``n_chunks`` chunks: 2, 4, 8,
    ... up to 256, so short episodes do not pay for long ones."""
    return min(_CHUNK, 2 * 2 ** min(n_chunks, 7))


def draw_counts(stream, dt: float, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The next ``n`` intervals of ``dt`` s of ``stream``: ``(int64 counts, float64 expected counts or
    None when the workload cannot say)``."""
    counts = stream.counts(dt, n)
    return counts, getattr(stream, "last_means", None)


def ready_slot_seconds(ready_at, n: int, t0: float, t1: float, conc: int) -> float:
    """Ready slot-seconds in ``[t0, t1)`` of ``n`` replicas with sorted ready times ``ready_at[:n]``
    (s; a list or a float64 array: the vector env compiles this function), ``conc`` slots each."""
    if n == 0 or ready_at[n - 1] <= t0:  # all replicas ready during the whole window
        return n * (t1 - t0) * conc
    tot = 0.0
    for k in range(n):
        r = ready_at[k]
        if r < t1:
            tot += t1 - (r if r > t0 else t0)
    return tot * conc


_FIELDS = tuple(FaasMeasurement.__dataclass_fields__)
_new = object.__new__


def _measurement(*values: Any) -> FaasMeasurement:
    """Build a FaasMeasurement without the frozen-dataclass ``__init__`` (5 us -> 1 us on the hot path).

    Equivalent to ``FaasMeasurement(*values)`` (positional, in field order; a test checks the
    field list below against the dataclass); the fields are set once and never mutated.
    """
    m = _new(FaasMeasurement)
    d = m.__dict__
    (
        d["time_s"],
        d["window_s"],
        d["replicas"],
        d["replicas_desired"],
        d["cpu_utilization"],
        d["memory_utilization"],
        d["response_time_ms"],
        d["request_rate_rps"],
        d["throughput_rps"],
        d["cold_starts"],
        d["queue_length"],
        d["dropped"],
        d["slo_violation_rate"],
        d["arrived"],
        d["completed"],
        d["in_system"],
    ) = values
    return m


#: Entries each per-backend memo (fluid windows ~480 B, Erlang C values ~170 B) holds before it is
#: cleared: 4096 keeps both under ~3 MB (65,536 reached ~42 MB); the hit rate, and the step speed,
#: did not change measurably (AutoscalingDay-v0 ~3,690 steps/s either way).
MEMO_MAX_ENTRIES = fluid.MEMO_MAX_ENTRIES

class SimBackend:
    """Simulated :class:`~faas_gym.backends.base.FaasBackend` (see the module docstring).

    Args:
        config: a :class:`SimConfig` or a mapping of its fields (``None`` for defaults).

    Randomness: ``reset(seed)`` derives two streams; arrivals use the workload stream only,
    so two policies see the same arrivals for the same seed (the fluid model's counts and
    the DES's arrival times are different draws of the same process).
    """

    def __init__(self, config: SimConfig | Mapping[str, Any] | None = None):
        self.config = coerce_dataclass(SimConfig, config, "config")
        cfg = self.config
        self.service: ServiceTime = cfg.service_time
        self.workload: Workload = cfg.workload
        self._conc = cfg.concurrency
        self._des = cfg.model == "des"
        #: constants of the fluid model's per-interval math (:mod:`faas_gym.backends.fluid`)
        self.params = FluidParams.from_config(cfg)
        self._slo_s = self.params.slo_s
        self._ops = fluid.ScalarOps()  # holds the Erlang C memo
        self._fluid_memo: dict[tuple[float, int, float, float], tuple] = {}
        self._last: FaasMeasurement | None = None
        self._bitgens: tuple[np.random.PCG64, np.random.PCG64] | None = None
        if self._des:
            des.warm_up()  # the kernels' one-off load, here rather than in the first step
        self.reset(0)

    # ------------------------------------------------------------------ life cycle
    def reset(self, seed: int | None = None) -> None:
        """Rewind to time 0 with ``initial_replicas`` warm replicas, an empty queue, and fresh streams."""
        if seed is None:
            seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0])
        self._reseed(int(seed))
        self._stream = self.workload.stream(self._rng_wl, 0.0)
        cfg = self.config
        self.t = 0.0
        self._ready_at: list[float] = [0.0] * cfg.initial_replicas  # sorted ready times of live replicas
        self._pool: list[float] = []  # expiry times of kept-alive (warm, scaled-down) replicas
        self._cold_pending = 0
        self._in_system = 0
        # fluid state
        self._q = 0.0
        self._wait_area = 0.0  # request-seconds waited so far by the fluid backlog
        self._counts: list[int] = []
        self._means: list[float] = []
        self._ci = 0
        self._n_chunks = 0
        self._chunk_dt = -1.0
        self._head_end = 0.0  # end time of the chunk interval at index _ci
        self._head_full = False  # does that interval start exactly at the current time?
        # DES state (array layouts: faas_gym.backends.des)
        self._n_free = cfg.initial_replicas * cfg.concurrency
        self._free = np.zeros(max(self._n_free, 8))  # min-heap of slot free times (all 0: a valid heap)
        self._wq = np.zeros((8, 2))  # FIFO ring of waiting (arrival, service time)
        self._wq_head = 0
        self._wq_len = 0
        self._pend = np.zeros((8, 3))  # heap of (departure, start, arrival) in service
        self._n_pend = 0
        self._last = None

    def _reseed(self, seed: int) -> None:
        """Seed the workload and system streams from ``seed`` (:func:`seed_pcg64_pair`; the generators
        are built once)."""
        if self._bitgens is None:
            self._bitgens = (np.random.PCG64(0), np.random.PCG64(0))
            self._rng_wl = np.random.Generator(self._bitgens[0])
            self._rng_sys = np.random.Generator(self._bitgens[1])
        seed_pcg64_pair(seed, self._bitgens)

    def close(self) -> None:
        """Nothing to release."""

    def fork(self, future_counts: Sequence[int] | None = None, interval_s: float | None = None) -> SimBackend:
        """An independent copy of this simulator in its current state, for planning (MPC, oracles).

        The copy shares only immutable data and caches of pure functions; stepping it never changes
        this simulator. Without ``future_counts`` its workload stream and its service-time stream
        are copies of this one's, so it sees exactly the arrivals (and, in the DES, the service
        times) this simulator will see: the true future (a clairvoyant oracle's model). With
        ``future_counts`` its next ``len(future_counts)`` windows of ``interval_s`` seconds get
        those arrival counts instead (a forecast; :class:`~faas_gym.workloads.CountsStream`:
        uniform times inside each window, no arrivals after the last; the fluid model treats them
        like a renewal workload's counts), and its service times come from a fixed independent
        stream, so a forecast copy knows nothing of the true future.

        Raises:
            ValueError: ``future_counts`` without ``interval_s``, or with negative counts.
        """
        twin = object.__new__(SimBackend)
        twin.__dict__.update(self.__dict__)  # immutable config/service/workload and pure-function caches shared
        twin._bitgens = None  # a reset() of the twin builds its own generators
        for name in ("_ready_at", "_pool", "_counts", "_means"):
            setattr(twin, name, list(getattr(self, name)))
        for name in ("_free", "_wq", "_pend"):
            setattr(twin, name, getattr(self, name).copy())
        if future_counts is None:
            twin._stream = self._stream.fork()
            twin._rng_sys = copy_generator(self._rng_sys)
        else:
            if interval_s is None:
                raise ValueError("future_counts needs interval_s, the length of each counted window")
            dt = check_float("interval_s", interval_s, low=0.0, low_open=True)
            counts = [check_int(f"future_counts[{i}]", int(k), low=0) for i, k in enumerate(future_counts)]
            rng = np.random.Generator(np.random.PCG64(0))
            twin._stream = CountsStream(counts, dt, rng, twin.t)
            twin._rng_sys = rng
            twin._counts, twin._means, twin._ci = [], [], 0  # the fluid model re-counts from the stream
        twin._rng_wl = twin._stream.rng
        return twin

    # ------------------------------------------------------------------ scaling
    @property
    def replicas_desired(self) -> int:
        return len(self._ready_at)

    def apply(self, command: int) -> None:
        """Scale to ``command`` replicas (an int >= 0) at the current time; the current count is a no-op.

        Scale-up revives kept-alive replicas first (ready now), then creates new ones that are
        ready after ``cold_start_s`` (counted as cold starts). Scale-down removes cold-starting
        replicas first (newest first), then ready ones (idle slots first in the DES); removed ready
        replicas finish their in-flight requests and enter the keep-alive pool.
        """
        n = command if command.__class__ is int and command >= 0 else check_int("replicas", command, low=0)
        cur = len(self._ready_at)
        if n == cur:
            return
        cfg = self.config
        now = self.t
        if self._pool:
            self._pool = [e for e in self._pool if e > now]
        if n > cur:
            k = n - cur
            warm = min(k, len(self._pool))
            self._pool.sort()
            for _ in range(warm):
                self._pool.pop()
            cold = k - warm
            self._cold_pending += cold
            new = [now] * warm + [now + cfg.cold_start_s] * cold
            self._ready_at = sorted(self._ready_at + new)
            if cfg.model == "des":
                self._free = grown(self._free, self._n_free + k * cfg.concurrency)
                self._n_free = des.push_slots(self._free, self._n_free, np.array(new), cfg.concurrency)
        elif n < cur:
            removed = self._ready_at[n:]  # latest ready times: cold-starting replicas go first
            self._ready_at = self._ready_at[:n]
            if cfg.keep_alive_s > 0:
                self._pool.extend(now + cfg.keep_alive_s for r in removed if r <= now)
            if cfg.model == "des":
                self._des_remove_slots(removed)

    def _des_remove_slots(self, removed: list[float]) -> None:
        """Drop the slots of ``removed`` replicas (their ready times) from the DES free-slot heap.

        A cold-starting replica's slots are the entries equal to its ready time. A ready replica
        gives up the slots that free up first (idle ones before busy ones; a busy slot's request
        still completes), never the entries of replicas that are still cold-starting
        (:func:`faas_gym.backends.des.remove_slots`).
        """
        now = self.t
        cold = np.array([r for r in removed if r > now], dtype=np.float64)
        conc = self.config.concurrency
        self._n_free = des.remove_slots(self._free, self._n_free, cold, len(removed) - cold.size, conc)

    # ------------------------------------------------------------------ time
    def advance(self, seconds: float) -> None:
        """Simulate ``seconds`` (> 0) of time and record the window's measurement."""
        dt = seconds
        if dt.__class__ is not float or not 0.0 < dt < math.inf:
            dt = check_float("seconds", seconds, low=0.0, low_open=True)
        if self._des:
            self._advance_des(dt)
        else:
            self._advance_fluid(dt)

    def observe(self) -> FaasMeasurement:
        """The measurement of the last :meth:`advance` window.

        Raises:
            RuntimeError: if :meth:`advance` has not been called since :meth:`reset`.
        """
        if self._last is None:
            raise RuntimeError("observe() called before advance(): no measurement window yet")
        return self._last

    def _ready_slot_seconds(self, t0: float, t1: float) -> float:
        ready_at = self._ready_at
        return ready_slot_seconds(ready_at, len(ready_at), t0, t1, self._conc)

    def _finish_window(
        self, t1, dt, arrived, completed, dropped, in_system, queue, resp_sum_s, slo_viol, busy_s, ready_slot_s
    ) -> None:
        ready_at = self._ready_at
        n_ready = len(ready_at) if not ready_at or ready_at[-1] <= t1 else bisect.bisect_right(ready_at, t1)
        cpu, mem, resp_ms, rate, thr = fluid.scalar.window_metrics(
            n_ready, busy_s, ready_slot_s, dt, arrived, completed, resp_sum_s, self.params, self._ops
        )
        self._last = _measurement(
            t1,
            dt,
            n_ready,
            len(self._ready_at),
            cpu,
            mem,
            resp_ms,
            rate,
            thr,
            self._cold_pending,
            queue,
            dropped,
            slo_viol,
            arrived,
            completed,
            in_system,
        )
        self._cold_pending = 0
        self._in_system = in_system
        self.t = t1

    # ------------------------------------------------------------------ fluid model
    def _next_count(self, dt: float) -> tuple[int, float]:
        """Arrivals in ``[t, t + dt)`` and their expected number (-1.0 if the workload cannot say).

        Counts come from the workload in chunks of equal intervals. Fast path: ``dt`` equals the
        chunk's interval and the next interval starts now. Otherwise (a different ``dt``) the
        window takes whole intervals and a binomial share of a straddled one (exact for Poisson
        counts given the total; uniform-within-interval for renewal workloads), so no arrivals are
        lost or duplicated and the workload's clock stays aligned with the simulator's.
        """
        i = self._ci
        if dt == self._chunk_dt and i < len(self._counts) and self._head_full:
            self._ci = i + 1
            self._head_end += dt
            return self._counts[i], self._means[i]
        return self._next_count_slow(dt)

    def _next_count_slow(self, dt: float) -> tuple[int, float]:
        t0 = self.t
        t1 = t0 + dt
        eps = 1e-9 * max(dt, 1.0)
        total = 0
        mean_total = 0.0
        head_start = t0
        while True:
            if self._ci >= len(self._counts):
                # chunks grow 2, 4, 8, ... _CHUNK intervals: short episodes do not pay for long ones
                n = chunk_length(self._n_chunks)
                self._n_chunks += 1
                counts, means = draw_counts(self._stream, dt, n)
                self._counts = counts.tolist()
                self._means = means.tolist() if means is not None else [-1.0] * n
                self._chunk_dt = dt
                self._ci = 0
                self._head_end = head_start + dt
            i = self._ci
            end = self._head_end
            if end <= t1 + eps:  # the (rest of the) interval lies inside the window
                total += self._counts[i]
                mean_total += self._means[i]
                self._ci = i + 1
                self._head_end = end + self._chunk_dt
                head_start = end
                if end >= t1 - eps:
                    break
            else:  # the interval straddles the window end: split it
                frac = (t1 - head_start) / (end - head_start)
                k = int(self._stream.rng.binomial(self._counts[i], frac))
                total += k
                self._counts[i] -= k
                if self._means[i] >= 0.0:
                    mean_total += self._means[i] * frac
                    self._means[i] *= 1.0 - frac
                break
        self._head_full = abs(self._head_end - self._chunk_dt - t1) <= eps
        unknown = self._means and self._means[0] < 0.0
        return total, (-1.0 if unknown else mean_total)

    def _advance_fluid(self, dt: float) -> None:
        t0 = self.t
        t1 = t0 + dt
        arrived, mean_count = self._next_count(dt)
        slot_s = self._ready_slot_seconds(t0, t1)
        q0 = self._q
        wait_area = self._wait_area
        if q0 == 0.0 and wait_area == 0.0:
            # no backlog: the window is a pure function of its inputs -> memoised (exact)
            key = (slot_s, arrived, mean_count, dt)
            r = self._fluid_memo.get(key)
            if r is None:
                if len(self._fluid_memo) > MEMO_MAX_ENTRIES:
                    self._fluid_memo.clear()
                r = self._fluid_memo[key] = self._fluid_window(0.0, 0.0, slot_s, arrived, mean_count, dt)
        else:
            r = self._fluid_window(q0, wait_area, slot_s, arrived, mean_count, dt)
        q1, self._wait_area, dropped, busy_s, resp, viol, lq = r
        self._q = q1
        completed, in_end, queue, resp_sum, viol_out = fluid.scalar.window_counts(
            q1, lq, busy_s, slot_s, dt, self._in_system, arrived, dropped, resp, viol, self._ops
        )
        self._finish_window(t1, dt, arrived, completed, dropped, in_end, queue, resp_sum, viol_out, busy_s, slot_s)

    def _fluid_window(
        self, q0: float, wait_area: float, slot_s: float, arrived: int, mean_count: float, dt: float
    ) -> tuple[float, float, int, float, float, float, float]:
        """One fluid-model window: :func:`faas_gym.backends.fluid.fluid_window` on Python floats."""
        return fluid.scalar.fluid_window(q0, wait_area, slot_s, arrived, mean_count, dt, self.params, self._ops)

    # ------------------------------------------------------------------ exact DES
    def _advance_des(self, dt: float) -> None:
        """One window of the exact DES: :func:`faas_gym.backends.des.des_window` on this backend's arrays."""
        t0 = self.t
        t1 = t0 + dt
        arr = np.asarray(self._stream.arrivals_until(t1), dtype=np.float64)
        svc = np.asarray(self.service.sample(self._rng_sys, arr.size), dtype=np.float64)
        n = arr.size
        qcap = self.config.queue_capacity
        wq_len = self._wq_len
        self._wq, self._wq_head = des.grown_ring(self._wq, self._wq_head, wq_len, min(qcap, wq_len + n))
        self._pend = grown(self._pend, self._n_pend + wq_len + n)
        wq_head, wq_len, self._n_pend, dropped, completed, resp_sum, over, busy = des.des_window(
            arr, svc, t0, t1, self._slo_s, qcap, self._free, self._n_free,
            self._wq, self._wq_head, wq_len, self._pend, self._n_pend,
        )  # fmt: skip
        self._wq_head = wq_head
        self._wq_len = wq_len
        slot_s = self._ready_slot_seconds(t0, t1)
        viol = over / completed if completed else 0.0
        in_end = wq_len + self._n_pend
        resp_sum, busy = float(resp_sum), float(busy)  # numpy scalars when interpreted
        self._finish_window(t1, dt, n, completed, dropped, in_end, wq_len, resp_sum, viol, busy, slot_s)
