"""Per-episode workload of the MEC simulator, drawn at ``reset`` in one vectorised pass.

Model (all draws from the env's *workload* stream, so two policies see the same input):

* **Users and demand.** User ``u`` sends Poisson requests at rate
  ``user_rate_rps * a_u * profile(t)``: ``profile`` is the diurnal curve of
  :mod:`lwmecps_gym.scenarios.demand` (evaluated at the middle of each window),
  ``a_u ~ LogNormal(0, 0.5)`` normalised to mean 1 is the user's activity level, drawn per
  episode (heavy users exist).
* **Mobility (home-activity model).** A user alternates between its home base station
  (from the data) and an activity location, the home base station of a uniformly drawn
  user (so popular areas attract more visits and the spatial distribution stays that of
  the data). Moves happen at rate ``1 / dwell_s`` per user; the number of moves in a chunk
  of windows is Binomial(users x windows, 1 - exp(-tau / dwell_s)) and each move falls in a
  uniformly drawn (window, user) cell. A user's location is constant within a window.
* **Arrivals.** The number of requests offered to deployment ``d`` in window ``t`` is
  Poisson with mean ``tau * sum_u rate_u(t)`` over the users whose base station is served
  by ``d``. The queues are evaluated at that mean (the arrival *rate*: M/M/c already accounts
  for the Poisson arrivals, so evaluating it at each window's random count would count the
  arrival noise twice); the realised count / tau is what the cluster measures and observes.
* **Demand events** (optional, ``SimConfig.demand_events``, e.g. flash crowds): a model that
  multiplies each deployment's rate window by window, drawn from the workload stream.
* **Start time.** The episode starts at a time of day drawn uniformly over the day
  (or ``start_time_s`` when given).

Implementation: only the moves are simulated (a few thousand events per episode, not
users x windows); per-deployment activity and activity-weighted RTT sums are the
all-at-home values plus cumulative sums of the moves' deltas. Chunks of windows are
drawn from the carried mobility state, so an episode may run past the precomputed
horizon.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from lwmecps_gym.backends.sim.poisson import (
    generator_at,
    pcg64_state,
    poisson_streams,
    poisson_windows,
    uniform_states,
)
from lwmecps_gym.scenarios import Scenario
from lwmecps_gym.scenarios.demand import profile_at


class Workload:
    """Per-window demand and request-weighted RTT of each deployment.

    After :meth:`generate`: ``lam[t][d]`` (req/s, Python floats) is the realised arrival
    rate of deployment ``d`` in window ``t``; ``rtt_own[t][d]`` (ms) the request-weighted
    mean RTT from its users' base stations to deployment ``d``'s own node (pinned layout);
    ``rtt_all[t]`` (array ``(T, n_dep, n_nodes)``) of the RTT to every node (failover,
    spread deployments, placement); ``tod_s[t]`` the time of day at the window start.
    """

    def __init__(self, scenario: Scenario, window_s: float, bs_deployment: np.ndarray,
                 rng: np.random.Generator, start_time_s: float | None = None, idle_rtt: np.ndarray | None = None,
                 n_dep: int | None = None):
        sc = self.sc = scenario
        self.tau = float(window_s)
        self.bs_dep = np.asarray(bs_deployment, dtype=np.int64)
        if n_dep is None:
            n_dep = int(self.bs_dep.max()) + 1 if self.bs_dep.size else 1
        self.n_dep = n_dep
        self.rng = rng
        U = sc.n_users
        a = rng.lognormal(0.0, 0.5, size=U)
        self.activity = a / a.mean() if U else a
        self.start_s = float(rng.uniform(0.0, 86400.0)) if start_time_s is None else float(start_time_s)
        # carried mobility state: current base station of each user, and whether at home
        self.loc = sc.user_bs.copy()
        self.at_home = np.ones(U, dtype=bool)
        self.p_move = float(1.0 - np.exp(-self.tau / sc.dwell_s))
        n_nodes = sc.n_nodes
        # current activity and activity-weighted RTT sums per deployment
        dep_u = self.bs_dep[self.loc]
        self.act = np.bincount(dep_u, weights=self.activity, minlength=n_dep)
        w = self.activity[:, None] * sc.bs_rtt_ms[self.loc]
        k = (dep_u[:, None] * n_nodes + np.arange(n_nodes)[None, :]).ravel()
        self.rsum = np.bincount(k, weights=w.ravel(), minlength=n_dep * n_nodes).reshape(n_dep, n_nodes)
        self.rown = np.diagonal(self.rsum).copy() if n_dep == n_nodes else self.rsum.min(axis=1)
        self.full = n_dep == 1 and n_nodes > 1
        self.idle_rtt = idle_rtt_of(sc, self.bs_dep) if idle_rtt is None else idle_rtt
        self.lam: list[list[float]] = []
        self.act_rows: list[list[float]] = []
        self.rtt_own: list[list[float]] = []
        self.rtt_all: np.ndarray = np.zeros((0, n_dep, n_nodes))
        self.tod_s: list[float] = []

    def generate(self, n_windows: int, poisson: bool = True) -> None:
        """Append ``n_windows`` windows (``poisson=False``: keep only the activity, for :class:`DayTrace`)."""
        sc, rng = self.sc, self.rng
        T, U, n_dep, n_nodes = int(n_windows), sc.n_users, self.n_dep, sc.n_nodes
        full = n_dep == 1 and n_nodes > 1  # spread/placement layouts need the RTT to every node
        t0 = len(self.tod_s)
        starts = self.start_s + (t0 + np.arange(T)) * self.tau
        d_act = np.zeros(T * n_dep)
        d_own = np.zeros(T * n_dep)
        d_full = np.zeros(T * n_dep * n_nodes) if full else None
        if U and self.p_move > 0.0:
            n_u = rng.binomial(T, self.p_move, size=U)
            E = int(n_u.sum())
            ue = np.repeat(np.arange(U, dtype=np.int64), n_u)
            key = np.sort(ue * T + rng.integers(0, T, size=E))
            ue, te = key // T, key % T
            dest_pick = sc.user_bs[rng.integers(0, U, size=E)]
        else:
            E = 0
        if E:
            idx = np.arange(E)
            first = np.ones(E, dtype=bool)
            first[1:] = ue[1:] != ue[:-1]
            rank = idx - np.maximum.accumulate(np.where(first, idx, 0))
            # leaving home on even ranks if the user starts the chunk at home, else on odd ranks
            leaving = (rank % 2 == 0) == self.at_home[ue]
            to_bs = np.where(leaving, dest_pick, sc.user_bs[ue])
            prev_to = np.empty(E, dtype=np.int64)
            prev_to[1:] = to_bs[:-1]
            from_bs = np.where(first, self.loc[ue], prev_to)
            a = self.activity[ue]
            fd, td = self.bs_dep[from_bs], self.bs_dep[to_bs]
            keys = np.concatenate([te * n_dep + td, te * n_dep + fd])
            d_act = np.bincount(keys, weights=np.concatenate([a, -a]), minlength=T * n_dep)
            rtt = sc.bs_rtt_ms
            if full:
                rw = np.concatenate([a[:, None] * rtt[to_bs], -a[:, None] * rtt[from_bs]])
                k2 = (keys[:, None] * n_nodes + np.arange(n_nodes)[None, :]).ravel()
                d_full = np.bincount(k2, weights=rw.ravel(), minlength=T * n_dep * n_nodes)
            else:
                w_own = np.concatenate([a * rtt[to_bs, td], -a * rtt[from_bs, fd]])
                d_own = np.bincount(keys, weights=w_own, minlength=T * n_dep)
            last = np.ones(E, dtype=bool)
            last[:-1] = ~first[1:]
            self.loc[ue[last]] = to_bs[last]
            self.at_home[ue[last]] = to_bs[last] == sc.user_bs[ue[last]]
        act = self.act[None, :] + np.cumsum(d_act.reshape(T, n_dep), axis=0)
        self.act = act[-1].copy()
        act = np.maximum(act, 0.0)  # guard float round-off of the cumulative sums
        ok = act > 1e-9
        safe = np.where(ok, act, 1.0)
        if full:
            rs = self.rsum[None] + np.cumsum(d_full.reshape(T, n_dep, n_nodes), axis=0)
            self.rsum = rs[-1].copy()
            rtt_all = np.where(ok[:, :, None], rs / safe[:, :, None], self.idle_rtt[None])
            self.rtt_all = rtt_all if not len(self.rtt_all) else np.concatenate([self.rtt_all, rtt_all])
            self.rtt_own.extend(rtt_all.min(axis=2).tolist())
        else:
            ro = self.rown[None, :] + np.cumsum(d_own.reshape(T, n_dep), axis=0)
            self.rown = ro[-1].copy()
            self.rtt_own.extend(np.where(ok, ro / safe, np.diagonal(self.idle_rtt)[None, :]).tolist())
        self.act_rows.extend(act.tolist())
        self.tod_s.extend((starts % 86400.0).tolist())
        if poisson:
            prof = profile_at(sc.profile, starts + self.tau / 2.0)
            lam = rng.poisson(sc.user_rate_rps * self.tau * prof[:, None] * act) / self.tau
            self.lam.extend(lam.tolist())


def idle_rtt_of(sc: Scenario, bs_dep: np.ndarray, n_dep: int | None = None) -> np.ndarray:
    """``(n_dep, n_nodes)`` RTT reported for a deployment without requests: best over its base stations."""
    rtt = sc.bs_rtt_ms
    if n_dep is None:
        n_dep = int(bs_dep.max()) + 1 if bs_dep.size else 1
    return np.array([rtt[bs_dep == d].min(axis=0) if np.any(bs_dep == d) else rtt.min(axis=0) for d in range(n_dep)])


_TRACE_CACHE: dict[tuple, DayTrace] = {}
_TRACE_CACHE_SIZE = 16


class DayTrace:
    """One simulated day of user mobility, drawn once per (scenario, window, layout, seed) and cached.

    ``act[t, d]`` is the summed activity of the users served by deployment ``d`` in window
    ``t`` of the day and ``rtt[t, d]`` / ``rtt_all[t, d, j]`` the activity-weighted mean
    RTT (ms) to the deployment's own node / to node ``j``. Episodes start at a seeded
    window of this trace (their seeded time of day) and wrap around at midnight; the
    users' activity levels and their day of movements belong to the env instance's
    scenario (``trace_seed``), while arrivals, start time and pod start-up delays are
    drawn per episode. Drawing the day once keeps ``reset`` cheap (a slice and one Poisson
    draw) instead of simulating 816 users per episode.
    """

    def __init__(self, scenario: Scenario, window_s: float, bs_deployment: np.ndarray, seed: int = 0,
                 idle_rtt: np.ndarray | None = None, n_dep: int | None = None):
        n_windows = int(np.ceil(86400.0 / float(window_s)))
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x4D4543]))
        wl = Workload(scenario, window_s, bs_deployment, rng, start_time_s=0.0, idle_rtt=idle_rtt, n_dep=n_dep)
        wl.generate(n_windows, poisson=False)
        self.n_windows = n_windows
        self.act = np.asarray(wl.act_rows)
        self.rtt = np.asarray(wl.rtt_own)
        self.rtt_all = wl.rtt_all if wl.full else None
        self.tau = float(window_s)

    @classmethod
    def cached(cls, scenario: Scenario, window_s: float, bs_deployment: np.ndarray, seed: int = 0,
               idle_rtt: np.ndarray | None = None, n_dep: int | None = None) -> DayTrace:
        """The trace for these arguments from a bounded per-process cache (least recently used out).

        The key is the scenario's *value* (:meth:`Scenario.mobility_digest`, what the day depends
        on), so scenarios rebuilt per ``gym.make`` (the placement envs rescale the user rate) hit it.
        """
        key = (scenario.mobility_digest(), float(window_s), bs_deployment.tobytes(), int(seed), n_dep)
        tr = _TRACE_CACHE.pop(key, None)
        if tr is None:
            tr = cls(scenario, window_s, bs_deployment, seed, idle_rtt, n_dep)
            if len(_TRACE_CACHE) >= _TRACE_CACHE_SIZE:
                _TRACE_CACHE.pop(next(iter(_TRACE_CACHE)))
        _TRACE_CACHE[key] = tr  # (re)inserted last: most recently used
        return tr


class EpisodeWorkload:
    """The workload of one episode: a seeded start window of a :class:`DayTrace` plus Poisson arrivals.

    Same interface as :class:`Workload` (``lam``, ``rtt_own``, ``rtt_all``, ``tod_s``,
    ``start_s``, :meth:`generate`). ``rng``, the episode's workload stream, is a
    ``numpy.random.Generator`` or a ``uint64 (4,)`` PCG64 state (:func:`~.poisson.pcg64_state`,
    advanced in place by later draws).
    """

    def __init__(self, trace: DayTrace, scenario: Scenario, rng: np.random.Generator | np.ndarray,
                 start_time_s: float | None = None, demand_events: Any = None):
        self.trace = trace
        self.sc = scenario
        self.rng = rng
        self.tau = trace.tau
        if isinstance(rng, np.ndarray) and start_time_s is None:
            self.start_s = float(uniform_states(rng[None], 86400.0)[0])  # draw_start's draw, from the state
        else:
            self.start_s = draw_start(rng, start_time_s)
        #: optional demand-event model (``SimConfig.demand_events``) and its state carried between chunks
        self.demand_events = demand_events
        self._events_carry: Any = None
        self.rtt_all: np.ndarray | None = None
        #: ``float64 (windows, n_dep)``: the true arrival rate (Poisson mean, req/s) the queues see
        self.rate_arr = np.zeros((0, trace.act.shape[1]))
        #: ``float64 (windows, n_dep)``: the measured rate, Poisson count / window (what the cluster observes)
        self.lam_arr = self.rate_arr
        #: ``float64 (windows, n_dep)``: request-weighted RTT (ms) of each deployment's users to its node
        self.rtt_arr = self.rate_arr
        #: ``float64 (windows,)``: time of day at each window's start, s
        self.tod_arr = np.zeros(0)
        self._lists: dict[str, list] = {}

    def _as_list(self, name: str, arr: np.ndarray) -> list:
        got = self._lists.get(name)
        if got is None or len(got) != len(arr):
            got = self._lists[name] = arr.tolist()
        return got

    @property
    def rate(self) -> list[list[float]]:
        """``rate[t][d]``: :attr:`rate_arr` as lists (built on first use)."""
        return self._as_list("rate", self.rate_arr)

    @property
    def lam(self) -> list[list[float]]:
        """``lam[t][d]``: :attr:`lam_arr` as lists (built on first use)."""
        return self._as_list("lam", self.lam_arr)

    @property
    def rtt_own(self) -> list[list[float]]:
        """``rtt_own[t][d]``: :attr:`rtt_arr` as lists (built on first use)."""
        return self._as_list("rtt_own", self.rtt_arr)

    @property
    def tod_s(self) -> list[float]:
        """``tod_s[t]``: :attr:`tod_arr` as a list (built on first use)."""
        return self._as_list("tod_s", self.tod_arr)

    def generate(self, n_windows: int) -> None:
        """Append the next ``n_windows`` windows (:func:`draw_windows` of this one episode)."""
        t0 = len(self.tod_arr)
        streams = self.rng[None] if isinstance(self.rng, np.ndarray) else [self.rng]
        self.append(draw_windows(self.trace, self.sc, streams, np.array([self.start_s]), np.array([t0]),
                                 int(n_windows), self.demand_events, [self._events_carry]))

    def append(self, w: Windows, j: int = 0) -> None:
        """Append episode ``j`` of ``w``: windows drawn for this episode (its stream, its start time),
        from window ``len(tod_arr)`` on."""
        t0 = len(self.tod_arr)
        self._events_carry = w.carries[j]
        mean, lam, rtt = w.rate[:, j], w.lam[:, j], w.rtt[:, j]
        if t0:
            self.rate_arr = np.concatenate([self.rate_arr, mean])
            self.lam_arr = np.concatenate([self.lam_arr, lam])
            self.rtt_arr = np.concatenate([self.rtt_arr, rtt])
        else:
            self.rate_arr, self.lam_arr, self.rtt_arr = mean, lam, rtt
        if w.rtt_all is not None:
            part = w.rtt_all[:, j]
            self.rtt_all = part if self.rtt_all is None else np.concatenate([self.rtt_all, part])
        self.tod_arr = np.concatenate([self.tod_arr, w.starts[:, j] % 86400.0])


def draw_start(rng: np.random.Generator, start_time_s: float | None) -> float:
    """An episode's start time of day, s: uniform on ``[0, 86400)`` from ``rng`` (the workload stream,
    its first draw) when ``start_time_s`` is ``None``, else ``start_time_s`` modulo a day."""
    return float(rng.uniform(0.0, 86400.0)) if start_time_s is None else float(start_time_s) % 86400.0


class Windows(NamedTuple):
    """Windows of ``K`` episodes drawn by :func:`draw_windows` (window axis first, as the native vector
    env stores them: ``T`` windows, ``K`` episodes, ``n`` deployments).

    rate: ``float64 (T, K, n)`` true arrival rate (Poisson mean, req/s). lam: ``float64 (T, K, n)``
    measured rate (Poisson count / window). rtt: ``float64 (T, K, n)`` request-weighted RTT (ms)
    to the deployment's own node. rtt_all: ``float64 (T, K, n, n_nodes)`` RTT to every node (spread
    layout) or ``None``. starts: ``float64 (T, K)`` each window's start, s after midnight of the
    episode's first day (time of day: modulo 86400). carries: the demand-event models' state after
    the windows (one per episode).
    """

    rate: np.ndarray
    lam: np.ndarray
    rtt: np.ndarray
    rtt_all: np.ndarray | None
    starts: np.ndarray
    carries: list


def draw_windows(trace: DayTrace, scenario: Scenario, rngs: Sequence[np.random.Generator] | np.ndarray, start_s: np.ndarray,
                 t0: np.ndarray, n_windows: int, demand_events: Any = None, carries: Sequence[Any] | None = None,
                 out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Windows:
    """Windows ``t0[j] .. t0[j] + n_windows - 1`` of ``K`` episodes, each from its own workload stream.

    Episode ``j`` starts at time of day ``start_s[j]`` (s) at window ``start_s[j] // tau`` of the
    day ``trace``, wrapping at midnight; its arrivals are Poisson draws from ``rngs[j]``, after the
    optional demand events' modulation (``demand_events.modulation(rngs[j], ...)``, carried state
    ``carries[j]``). The deterministic part (profile, trace windows) is computed for all episodes at
    once, element by element as for one: an episode's windows do not depend on the batch it is drawn
    in, and (the Poisson draws being sequential) without demand events not on ``n_windows`` either.
    The single episode (:class:`EpisodeWorkload`) and the native vector env both draw through here.

    Args:
        rngs: the episodes' workload streams: ``K`` ``numpy.random.Generator``, or ``uint64 (K, 4)``
            PCG64 states (:func:`~.poisson.pcg64_state` rows), advanced in place.
        start_s: ``float64 (K,)`` start times of day, s. t0: ``int64 (K,)`` first window to draw.
        n_windows: windows to draw (int >= 1).
        out: ``(rate, lam, rtt)`` ``float64 (T, K, n)`` arrays (views allowed) the windows are written
            into (the native vector env's stacked arrays); fresh ones by default. The returned
            :class:`Windows` holds them.

    From PCG64 state rows, without demand events and with numba, one compiled pass
    (:func:`~.poisson.poisson_windows`) computes the NumPy lines' numbers (tested equal).
    """
    tr, sc, T = trace, scenario, int(n_windows)
    K = len(rngs)
    tau = tr.tau
    start_s = np.asarray(start_s, dtype=np.float64)
    k0 = (start_s // tau).astype(np.int64) % tr.n_windows
    t = np.arange(T)[:, None] + np.asarray(t0, dtype=np.int64)
    idx = (k0 + t) % tr.n_windows
    starts = start_s + t * tau
    prof = profile_at(sc.profile, starts + tau / 2.0)
    carries = [None] * K if carries is None else list(carries)
    rtt_all = np.take(tr.rtt_all, idx, axis=0) if tr.rtt_all is not None else None
    if out is None:
        out = tuple(np.empty((T, K, tr.act.shape[1])) for _ in range(3))
    if (demand_events is None and isinstance(rngs, np.ndarray)
            and poisson_windows(rngs, idx, prof, tr.act, tr.rtt, sc.user_rate_rps, tau, *out)):
        return Windows(*out, rtt_all, starts, carries)  # the lines below in one compiled pass, the same numbers
    mean = sc.user_rate_rps * prof[..., None] * np.take(tr.act, idx, axis=0)
    states = None
    if demand_events is not None:  # drawn from each stream before its arrivals
        if isinstance(rngs, np.ndarray):  # the model draws from Generators: one per state, states written back after
            states, rngs = rngs, [generator_at(row) for row in rngs]
        for j, rng in enumerate(rngs):
            factor, carries[j] = demand_events.modulation(rng, T, mean.shape[2], tau, carries[j])
            mean[:, j] = mean[:, j] * factor
    counts = np.empty(mean.shape)
    poisson_streams(rngs, mean * tau, counts)  # counts[:, j] = rngs[j].poisson(mean[:, j] * tau)
    if states is not None:
        for j, rng in enumerate(rngs):
            states[j] = pcg64_state(rng.bit_generator)
    rate_out, lam_out, rtt_out = out
    rate_out[...] = mean
    np.divide(counts, tau, out=lam_out)
    rtt_out[...] = np.take(tr.rtt, idx, axis=0)
    return Windows(rate_out, lam_out, rtt_out, rtt_all, starts, carries)
