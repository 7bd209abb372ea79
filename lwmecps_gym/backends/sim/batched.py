"""The scaling layout's per-window model over a batch of clusters: the simulator's one implementation.

The model of :mod:`lwmecps_gym.backends.sim.cluster` (see its docstring: pods and start-up
delays, failover, pointwise-stationary M/M/c and the fluid overload queue) is written once here,
as loops over ``(cluster k, deployment d)`` on arrays of shape ``(num_envs, n_deployments)``.
:class:`~lwmecps_gym.backends.sim.SimBackend` calls it with one cluster (``num_envs = 1``), the
native vector env (:class:`lwmecps_gym.envs.vector.ScalingVectorEnv`) with many, so both give the
same numbers bit for bit.

The loops are compiled with `numba <https://numba.pydata.org>`_ (``njit``, cached on disk) when it
is installed (a dependency of the package); without it the same Python functions run
interpreted (identical results, slower). Floating-point operations keep the scalar order of the
model (sequential sums, ``math.exp``), so compiled and interpreted runs agree bit for bit.

* :class:`ScalingModel`: the constants of one scenario and configuration (tables, fits, failover).
* :class:`ScalingState`: the mutable state of ``num_envs`` clusters (arrays, shapes below).
* :func:`reset_clusters`, :func:`scale` (a ``ScaleCommand``) and :func:`serve_window` (one control
  period, then the measured demand) work on it; :func:`step_clusters` is the three of them and
  :func:`scaling_features` (the scaling env's observation, reward and metric sums) in one compiled
  pass over the clusters (the native vector env's step), from the same source.
* :func:`deployment_window`, :func:`piece`, :func:`fluid_piece` (its fluid part :func:`fluid_run`), :func:`stat_violation`,
  :func:`fluid_violation`: the scalar pieces (also the placement layout's and the clairvoyant
  ``SimBackend.preview_site``'s model).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lwmecps_gym.core.compiled import jit
from lwmecps_gym.core.queueing import ErlangCTable, ViolationTable


def _row(fn):
    """A per-cluster or per-deployment function: inlined into its compiled callers (no call, no reference
    counting per row)."""
    return jit(fn, inline=True)


#: length of the per-episode ring of pod start-up delays (drawn at reset, used cyclically)
DELAY_RING = 256
#: offered load per ready pod reported for a deployment with demand and no ready pod (the scaling env's bound)
LOAD_MAX = 4.0
_INF = math.inf

_ERLANG_ARRAYS: dict[tuple[int, int], np.ndarray] = {}
_VIOLATION_POOLS: dict[tuple[int, float, int], ViolationPool] = {}


def erlang_array(table: ErlangCTable) -> np.ndarray:
    """``float64 (c_max + 1, grid + 1)``: the Erlang C table's rows as one array (cached per process)."""
    key = (table.c_max, table.grid)
    arr = _ERLANG_ARRAYS.get(key)
    if arr is None:
        arr = _ERLANG_ARRAYS[key] = np.asarray(table.rows, dtype=np.float64)
    return arr


class ViolationPool:
    """The rows of a :class:`~lwmecps_gym.core.queueing.ViolationTable` built so far, as arrays.

    ``pool[slot[s]]`` is ``vtable.rows(s)`` (``float64 (c_max + 1, grid + 1)``) for an integer slack
    ``s`` (ms); ``slot[s] = -1`` until it is built. Shared per process by every model with the same
    ``(c_max, mu, grid)``; memory grows with the slacks met, not with the SLA.
    """

    def __init__(self, vtable: ViolationTable):
        self.vtable = vtable
        self.slot = np.full(1, -1, dtype=np.int64)
        self.pool = np.empty((4, vtable.c_max + 1, vtable.grid + 1))
        self.count = 0

    def cover(self, s_max: int) -> None:
        """Make room for slacks ``0 .. s_max`` in :attr:`slot`."""
        if self.slot.shape[0] <= s_max:
            self.slot = np.concatenate([self.slot, np.full(s_max + 1 - self.slot.shape[0], -1, dtype=np.int64)])

    def build(self, missing: np.ndarray) -> None:
        """Build the rows of the slacks flagged in ``missing`` (bool, indexed by slack) and clear the flags."""
        for s in np.flatnonzero(missing).tolist():
            if self.slot[s] >= 0:
                continue
            if self.count == self.pool.shape[0]:
                self.pool = np.concatenate([self.pool, np.empty_like(self.pool)])
            self.pool[self.count] = np.asarray(self.vtable.rows(s))
            self.slot[s] = self.count
            self.count += 1
        missing[:] = False


class ScalingModel:
    """Constants of the scaling layout (shared by every cluster of a batch).

    Args:
        tau: control period, s. mu: service rate per pod, req/s. timeout_s: client timeout, s.
        sla_s: end-to-end SLA, s. dep_fit: ``(n,)`` pods of each deployment that fit its node(s).
        pinned: deployment ``i`` pinned to node ``i`` (else one deployment spread over all nodes).
        failover_order: per deployment, the other deployments by RTT from its users (pinned).
        site_rtt: ``(n, n)`` mean RTT (ms) from site ``d``'s users to node ``e``.
        table, vtable: Erlang C and response-time tail tables (:mod:`lwmecps_gym.core.queueing`).
        spread_counts: spread layout only: ``int64 (k_max + 1, n_nodes)`` round-robin pods per
            node for ``k`` ready pods.
    """

    def __init__(self, *, tau: float, mu: float, timeout_s: float, sla_s: float, dep_fit: Sequence[int],
                 pinned: bool, failover_order: Sequence[Sequence[int]], site_rtt: Sequence[Sequence[float]],
                 table: ErlangCTable, vtable: ViolationTable, spread_counts: np.ndarray | None = None):
        self.tau = float(tau)
        self.mu = float(mu)
        self.timeout_s = float(timeout_s)
        self.sla_s = float(sla_s)
        self.dep_fit = np.asarray(dep_fit, dtype=np.int64)
        self.n = n = len(self.dep_fit)
        self.pinned = bool(pinned)
        self.erlang = erlang_array(table)
        self.vtable = vtable
        self.site_rtt = np.asarray(site_rtt, dtype=np.float64)
        self.fo_order = np.zeros((n, max(n - 1, 1)), dtype=np.int64)
        if self.pinned and n > 1:
            self.fo_order = np.asarray(failover_order, dtype=np.int64).reshape(n, n - 1)
        self.spread_counts = (np.zeros((1, 1), dtype=np.int64) if spread_counts is None
                              else np.asarray(spread_counts, dtype=np.int64))
        # violation tables by integer slack (ms) bucket, built lazily into a shared pool
        key = (vtable.c_max, vtable.mu, vtable.grid)
        pool = _VIOLATION_POOLS.get(key)
        if pool is None:
            pool = _VIOLATION_POOLS[key] = ViolationPool(vtable)
        s_max = int(self.sla_s * 1000.0 + 0.5) + 1
        pool.cover(s_max)
        self.violations = pool
        #: slacks the kernel found unbuilt (``bool``, indexed by slack in ms)
        self.vmissing = np.zeros(s_max + 1, dtype=np.bool_)


class ScalingState:
    """Mutable state of ``num_envs`` simulated clusters (scaling layout), as arrays.

    Attributes (``N = num_envs``, ``n`` deployments, ``G`` pending-group slots, grown on demand):
        desired, ready: ``int64 (N, n)`` replicas asked for / serving.
        backlog: ``float64 (N, n)`` fluid backlog (requests) carried between windows.
        pend_t, pend_c, pend_len: ``float64 (N, n, G)`` ready times (s since reset), ``int64 (N, n, G)``
            pod counts and ``int64 (N, n)`` number of pending scale-up groups, oldest first.
        delays, di: ``float64 (N, 256)`` the episode's start-up delays (s) and ``int64 (N,)`` the next one.
        now, t: ``float64 (N,)`` seconds since reset and ``int64 (N,)`` windows served.
        demand_rps, latency_ms, load: ``float64 (N, n)`` the last window's measured demand (req/s),
            latency of each deployment's requests (ms) and offered load per ready pod.
        mean_latency_ms, sla_violation_rate, failed_rps, served_rps: ``float64 (N,)`` of the last window.
    """

    def __init__(self, num_envs: int, n_dep: int, groups: int = 4):
        N, n = int(num_envs), int(n_dep)
        self.num_envs, self.n = N, n
        self.desired = np.zeros((N, n), dtype=np.int64)
        self.ready = np.zeros((N, n), dtype=np.int64)
        self.backlog = np.zeros((N, n))
        self.pend_t = np.full((N, n, groups), np.inf)
        self.pend_c = np.zeros((N, n, groups), dtype=np.int64)
        self.pend_len = np.zeros((N, n), dtype=np.int64)
        self.delays = np.zeros((N, DELAY_RING))
        self.di = np.zeros(N, dtype=np.int64)
        self.now = np.zeros(N)
        self.t = np.zeros(N, dtype=np.int64)
        self.demand_rps = np.zeros((N, n))
        self.latency_ms = np.zeros((N, n))
        self.load = np.zeros((N, n))
        self.mean_latency_ms = np.zeros(N)
        self.sla_violation_rate = np.zeros(N)
        self.failed_rps = np.zeros(N)
        self.served_rps = np.zeros(N)

    def grow(self) -> None:
        """Double the pending-group slots (as many scale-ups outstanding as slots)."""
        self.pend_t = np.concatenate([self.pend_t, np.full_like(self.pend_t, np.inf)], axis=2)
        self.pend_c = np.concatenate([self.pend_c, np.zeros_like(self.pend_c)], axis=2)

    def pending(self, k: int, d: int) -> list[list]:
        """Cluster ``k``'s pending groups of deployment ``d``: ``[[ready_time_s, pods], ...]`` oldest first."""
        m = int(self.pend_len[k, d])
        return [[float(a), int(b)] for a, b in zip(self.pend_t[k, d, :m], self.pend_c[k, d, :m], strict=True)]

    def copy(self) -> ScalingState:
        """A deep copy (for look-ahead without side effects)."""
        out = ScalingState.__new__(ScalingState)
        for name, value in vars(self).items():
            setattr(out, name, value.copy() if isinstance(value, np.ndarray) else value)
        return out

    def restore(self, other: ScalingState) -> None:
        """Take over ``other``'s values (a :meth:`copy`)."""
        for name, value in vars(other).items():
            setattr(self, name, value.copy() if isinstance(value, np.ndarray) else value)


def reset_clusters(model: ScalingModel, st: ScalingState, k: np.ndarray, initial_replicas: int,
                   demand0: np.ndarray, rtt0: np.ndarray, delays: np.ndarray) -> None:
    """Rewind clusters ``k``: ``initial_replicas`` ready pods, nothing pending, empty backlog.

    Args:
        k: ``int64 (K,)`` cluster indices. demand0, rtt0: ``float64 (K, n)`` the first window's
            measured demand (req/s) and own-node RTT (ms). delays: ``float64 (K, 256)`` start-up delays (s).
    """
    st.desired[k] = initial_replicas
    st.ready[k] = np.minimum(initial_replicas, model.dep_fit)
    st.backlog[k] = 0.0
    st.pend_len[k] = 0
    st.pend_t[k] = np.inf
    st.pend_c[k] = 0
    st.delays[k] = delays
    st.di[k] = 0
    st.now[k] = 0.0
    st.t[k] = 0
    lat = rtt0 + 1000.0 / model.mu
    st.latency_ms[k] = lat
    _reset_measures(k, demand0, lat, st.ready, st.demand_rps, st.load, st.mean_latency_ms, model.mu)
    st.sla_violation_rate[k] = 0.0
    st.failed_rps[k] = 0.0
    st.served_rps[k] = 0.0


@jit
def _reset_measures(ks, demand0, lat, ready, demand_out, load_out, mean_out, mu):
    n = demand0.shape[1]
    for i in range(ks.shape[0]):
        k = ks[i]
        s = 0.0
        for d in range(n):
            lam = demand0[i, d]
            c = ready[k, d]
            demand_out[k, d] = lam
            load_out[k, d] = lam / (c * mu) if c > 0 else (LOAD_MAX if lam > 0.0 else 0.0)
            s += lat[i, d]
        mean_out[k] = s / n


def scale(model: ScalingModel, st: ScalingState, replicas: np.ndarray) -> None:
    """Set every cluster's desired replicas to ``replicas`` (``int64 (N, n)``, checked by the caller: >= 0).

    A scale-up adds the missing pods as one pending group, ready after the next start-up delay of
    the cluster's ring (delays are used in deployment order); a scale-down removes pending pods
    first, newest first, then ready pods (invariant: ready + pending == min(desired, fit)).
    """
    top = _scale_kernel(replicas, st.desired, st.ready, st.pend_t, st.pend_c, st.pend_len, st.delays, st.di,
                        st.now, model.dep_fit)
    if top >= st.pend_t.shape[2]:  # keep a free slot for the next scale-up
        st.grow()


@jit
def _scale_kernel(replicas, desired, ready, pend_t, pend_c, pend_len, delays, di, now, dep_fit):
    top = 0
    for k in range(replicas.shape[0]):
        j = _scale_row(k, replicas, desired, ready, pend_t, pend_c, pend_len, delays, di, now, dep_fit)
        if j > top:
            top = j
    return top


@_row
def _scale_row(k, replicas, desired, ready, pend_t, pend_c, pend_len, delays, di, now, dep_fit):
    """:func:`scale` of cluster ``k``; returns the most pending groups a deployment of it now has (0 if none added)."""
    n = replicas.shape[1]
    top = 0
    dik = di[k]
    for d in range(n):
        r = replicas[k, d]
        cur = desired[k, d]
        if r == cur:
            continue
        desired[k, d] = r
        fit = dep_fit[d]
        target = r if r < fit else fit
        have = cur if cur < fit else fit
        if target > have:
            j = pend_len[k, d]
            pend_t[k, d, j] = now[k] + delays[k, dik]
            pend_c[k, d, j] = target - have
            pend_len[k, d] = j + 1
            if j + 1 > top:
                top = j + 1
            dik = (dik + 1) & 255
        elif target < have:
            remove = have - target
            j = pend_len[k, d]
            while remove > 0 and j > 0:  # Pending pods go first (newest first)
                g = pend_c[k, d, j - 1]
                take = remove if remove < g else g
                g -= take
                remove -= take
                pend_c[k, d, j - 1] = g
                if g == 0:
                    j -= 1
                    pend_t[k, d, j] = _INF
            pend_len[k, d] = j
            ready[k, d] -= remove
    di[k] = dik
    return top


def serve_window(model: ScalingModel, st: ScalingState, lam: np.ndarray, rtt_own: np.ndarray,
                 demand: np.ndarray, rtt_all: np.ndarray | None = None) -> None:
    """Serve one window of every cluster, then measure it (the model of ``SimBackend``, scaling layout).

    The inputs are the clusters' workloads, window first: cluster ``k`` serves window ``st.t[k]``,
    ``lam[st.t[k], k]`` (clusters that step together read one contiguous slab).

    Args:
        lam: ``float64 (T, N, n)`` arrival rates the queues see (req/s).
        rtt_own: ``float64 (T, N, n)`` request-weighted RTT (ms) of each deployment's users to its node.
        demand: ``float64 (T, N, n)`` the measured demand (Poisson count / window, req/s).
        rtt_all: spread layout only: ``float64 (T, N, n_nodes)`` RTT (ms) of the users to every node.

    Updates ready pods, pending groups and backlogs, writes the window's measurements and advances
    ``now`` by ``tau`` and ``t`` by one.
    """
    ra = rtt_all if rtt_all is not None else np.zeros((1, 1, 1))
    k = 0
    N = lam.shape[1]
    while True:
        k = _window_kernel(k, lam, rtt_own, demand, ra, model.pinned, model.spread_counts, model.fo_order,
                           model.site_rtt, model.erlang, model.violations.pool, model.violations.slot, model.vmissing,
                           st.ready, st.backlog, st.pend_t, st.pend_c, st.pend_len, st.now, st.t,
                           st.latency_ms, st.load, st.demand_rps, st.mean_latency_ms, st.sla_violation_rate,
                           st.failed_rps, st.served_rps, model.tau, model.mu, model.timeout_s, model.sla_s)
        if k >= N:
            return
        model.violations.build(model.vmissing)  # cluster k needs rows not built yet: build them, go on from k



def step_clusters(model: ScalingModel, st: ScalingState, replicas: np.ndarray, lam: np.ndarray, rtt_own: np.ndarray,
                  demand: np.ndarray, rtt_all: np.ndarray | None, skip: np.ndarray, start_s: np.ndarray,
                  consts: np.ndarray, scale_: np.ndarray, low: np.ndarray, high: np.ndarray, obs: np.ndarray,
                  out: np.ndarray, load: np.ndarray, scalars: np.ndarray) -> None:
    """One control period of every cluster not in ``skip``, in one compiled pass: for each cluster,
    :func:`scale` to ``replicas``, :func:`serve_window`, then :func:`scaling_features` of its new measurement
    (the native vector env's step). It is :func:`serve_window`'s kernel given the scale and feature
    arguments (numba compiles the variant without them for :func:`serve_window`), with the same row
    functions as :func:`scale` and :func:`scaling_features`: one source of the model.

    Args:
        replicas: ``int64 (N, n)`` desired replicas (checked by the caller: >= 0).
        lam, rtt_own, demand, rtt_all: the workloads, window first (see :func:`serve_window`).
        skip: ``bool (N,)`` clusters left untouched (their output rows too): sub-envs about to be reset.
        start_s: ``float64 (N,)`` the episodes' start times of day (s): the time of day after the
            window is ``(start_s + now) % 86400``.
        consts, scale_, low, high, obs, out, load: as :func:`scaling_features` (``obs``, ``out``,
            ``load`` written).
        scalars: ``float64 (3, N)`` receives the mean latency (ms), SLA-violation rate and time of day (s).
    """
    ra = rtt_all if rtt_all is not None else np.zeros((1, 1, 1))
    N = lam.shape[1]
    tops = np.zeros(1, dtype=np.int64)
    k = 0
    resumed = False
    while True:
        k = _window_kernel(k, lam, rtt_own, demand, ra, model.pinned, model.spread_counts, model.fo_order,
                           model.site_rtt, model.erlang, model.violations.pool, model.violations.slot, model.vmissing,
                           st.ready, st.backlog, st.pend_t, st.pend_c, st.pend_len, st.now, st.t,
                           st.latency_ms, st.load, st.demand_rps, st.mean_latency_ms, st.sla_violation_rate,
                           st.failed_rps, st.served_rps, model.tau, model.mu, model.timeout_s, model.sla_s,
                           (resumed, tops, replicas, skip, st.desired, st.delays, st.di, model.dep_fit),
                           (start_s, consts, scale_, low, high, obs, out, load, scalars))
        if k >= N:
            break
        model.violations.build(model.vmissing)  # cluster k (already scaled) needs rows not built yet
        resumed = True
    if tops[0] >= st.pend_t.shape[2]:  # keep a free slot for the next scale-up
        st.grow()


@jit
def _window_kernel(k0, lam, rtt_own, demand, rtt_all, pinned, spread_counts, fo_order, site_rtt, erlang,
                   vpool, vslot, vmissing, ready, backlog, pend_t, pend_c, pend_len, now, t,
                   lat_out, load_out, demand_out, mean_out, sla_out, failed_out, served_out,
                   tau, mu, timeout, sla_s, scaling=None, features=None):
    N = lam.shape[1]
    n = lam.shape[2]
    inv_mu = 1.0 / mu
    sla_ms = sla_s * 1000.0
    grid = erlang.shape[1] - 1
    vgrid = vpool.shape[2] - 1
    in_rate = np.zeros(n)
    in_rtt = np.zeros(n)
    rtt_row = np.zeros(n)
    lt_row = np.zeros(n)
    fo_on = np.zeros(n, dtype=np.bool_)
    fo_e = np.zeros(n, dtype=np.int64)
    fo_r = np.zeros(n)
    # the native vector env's step (step_clusters) also scales each cluster first and computes its features after;
    # serve_window passes None for both (numba compiles that variant without them)
    if scaling is not None:
        s_resumed, s_tops, s_replicas, s_skip, s_desired, s_delays, s_di, s_fit = scaling
    if features is not None:
        f_start, f_consts, f_scale, f_low, f_high, f_obs, f_out, f_load, f_scalars = features
    for k in range(k0, N):
        if scaling is not None:
            if s_skip[k]:
                continue
            if k > k0 or not s_resumed:
                s_top = _scale_row(k, s_replicas, s_desired, ready, pend_t, pend_c, pend_len, s_delays, s_di, now, s_fit)
                if s_top > s_tops[0]:
                    s_tops[0] = s_top
        nowk = now[k]
        end = nowk + tau
        tk = t[k]
        # ------------------------------------------------ failover of deployments without a ready pod
        failed = 0.0
        any_fo = False
        for d in range(n):
            in_rate[d] = 0.0
            in_rtt[d] = 0.0
            fo_on[d] = False
        for d in range(n):
            if ready[k, d] != 0:
                continue
            lamd = lam[tk, k, d]
            if lamd <= 0.0:
                continue
            first = pend_t[k, d, 0] if pend_len[k, d] > 0 else _INF
            f = 1.0 if first >= end else (first - nowk) / tau
            if f <= 0.0:
                continue
            moved = lamd * f
            any_fo = True
            fo_on[d] = True
            fo_e[d] = -1
            if pinned:
                for j in range(n - 1):
                    e = fo_order[d, j]
                    if ready[k, e] > 0:
                        r = site_rtt[d, e]
                        in_rate[e] += moved
                        in_rtt[e] += moved * r
                        fo_e[d] = e
                        fo_r[d] = r
                        break
            if fo_e[d] < 0:
                failed += moved
        # ------------------------------------------------ RTT and arrival rate of each queue; tables needed
        need = False
        for d in range(n):
            lamd = lam[tk, k, d]
            if pinned:
                rtt = rtt_own[tk, k, d]
            else:
                c = ready[k, d]
                if c <= 0:
                    rtt = rtt_all[tk, k, 0]
                    for j in range(1, rtt_all.shape[2]):
                        if rtt_all[tk, k, j] < rtt:
                            rtt = rtt_all[tk, k, j]
                else:
                    s = 0.0
                    for j in range(rtt_all.shape[2]):
                        s += spread_counts[c, j] * rtt_all[tk, k, j]
                    rtt = s / c
            lt = lamd
            if any_fo:
                m = in_rate[d]
                if m > 0.0:
                    lt = lamd + m
                    rtt = (lamd * rtt + in_rtt[d]) / lt
            rtt_row[d] = rtt
            lt_row[d] = lt
            si = int(sla_ms - rtt + 0.5)
            if si < 0:
                si = 0
            if vslot[si] < 0:
                vmissing[si] = True
                need = True
        if need:
            return k
        # ------------------------------------------------ the deployments' queues
        L = 0.0
        V = 0.0
        Nacc = 0.0
        drop_total = 0.0
        for d in range(n):
            lamd = lam[tk, k, d]
            c = ready[k, d]
            B = backlog[k, d]
            rtt = rtt_row[d]
            lam_t = lt_row[d]
            f = 1.0  # fraction of the window before the pending pods are ready
            c1 = c
            pl = pend_len[k, d]
            if pl > 0:
                g0 = pend_t[k, d, 0]
                if g0 < end:
                    if pl > 1 and pend_t[k, d, 1] < end:  # several readiness events: the general window
                        Lr, Vr, Nr, Dr, c_new, k_ev, B_new, lat = deployment_window(
                            c, pend_t[k, d], pend_c[k, d], pl, B, lam_t, rtt, nowk, tau, mu, erlang, timeout, sla_s)
                        L += Lr
                        V += Vr
                        Nacc += Nr
                        drop_total += Dr
                        ready[k, d] = c_new
                        _pop(pend_t, pend_c, pend_len, k, d, k_ev)
                        backlog[k, d] = B_new
                        lat_out[k, d] = lat
                        continue
                    f = (g0 - nowk) / tau
                    if f < 0.0:
                        f = 0.0
                    c1 = c + pend_c[k, d, 0]
                    ready[k, d] = c1
                    _pop(pend_t, pend_c, pend_len, k, d, 1)
            if c1 <= 0:
                lat_out[k, d] = rtt + 1000.0 * inv_mu
                continue
            rtt_s = rtt * 0.001
            cap1 = c1 * mu
            si = int(sla_ms - rtt + 0.5)
            if si < 0:
                si = 0
            if B <= 0.0 and lam_t < cap1 and (c == 0 or lam_t < c * mu):
                # stationary pieces: Erlang C and the response-time tail from tables
                cap = cap1
                x = lam_t / cap
                w = erlang[c1, int(x * grid)] / (cap - lam_t)
                w = inv_mu + (w if w < timeout else timeout)  # no wait beyond the client timeout
                vrow = vslot[si]
                v = vpool[vrow, c1, int(x * vgrid)]
                if f >= 1.0 or lam_t <= 0.0:  # one piece, or no requests to weight the pieces by
                    nn = lam_t * tau
                else:
                    nn = lam_t * (1.0 - f) * tau
                    w *= nn
                    v *= nn
                    if c > 0:
                        n0 = lam_t * f * tau
                        cap = c * mu
                        x0 = lam_t / cap
                        q = erlang[c, int(x0 * grid)] / (cap - lam_t)
                        w += n0 * (inv_mu + (q if q < timeout else timeout))
                        v += n0 * vpool[vrow, c, int(x0 * vgrid)]
                        nn += n0
                    w /= nn
                    v /= nn
                w += rtt_s
                L += nn * w
                V += nn * v
                Nacc += nn
                lat_out[k, d] = 1000.0 * w
                continue
            # fluid (overload or backlog) pieces (see fluid_piece for the model)
            slack = (sla_ms - rtt) * 0.001
            wsum_d = 0.0
            nacc_d = 0.0
            for p in range(2):
                if p == 0:
                    dur = f * tau
                    cc = c
                else:
                    dur = (1.0 - f) * tau
                    cc = c1
                if dur <= 0.0 or cc <= 0:
                    continue
                cap = cc * mu
                if lam_t <= 0.0:
                    if B > 0.0:
                        B -= cap * dur
                        if B < 0.0:
                            B = 0.0
                    continue
                if B <= 0.0 and lam_t < cap:
                    t_f = 0.0
                else:
                    t_f, B1, drop, w0, w1, n_f = fluid_run(B, lam_t, cap, dur, timeout)
                    drop_total += drop
                    if n_f > 0.0:
                        wsum_d += n_f * (0.5 * (w0 + w1) + inv_mu)
                        V += n_f * fluid_violation(w0, w1, slack, mu)
                        nacc_d += n_f
                    B = B1
                if t_f < dur:
                    x = lam_t / cap
                    nn = lam_t * (dur - t_f)
                    q = erlang[cc, int(x * grid)] / (cap - lam_t)
                    wsum_d += nn * (inv_mu + (q if q < timeout else timeout))
                    V += nn * vpool[vslot[si], cc, int(x * vgrid)]
                    nacc_d += nn
                    B = 0.0
            backlog[k, d] = B
            L += wsum_d + nacc_d * rtt_s
            Nacc += nacc_d
            lat_out[k, d] = 1000.0 * ((wsum_d / nacc_d if nacc_d > 0.0 else inv_mu) + rtt_s)
        if any_fo:
            # what the failed-over users saw: the target's latency with their own RTT
            for d in range(n):
                if fo_on[d]:
                    e = fo_e[d]
                    lat_out[k, d] = 1000.0 * timeout if e < 0 else lat_out[k, e] + fo_r[d] - rtt_own[tk, k, e]
        # failed requests (no ready pod anywhere, or dropped) count at the timeout and as violations
        nf = failed * tau + drop_total
        total = Nacc + nf
        failed_out[k] = nf / tau
        served_out[k] = Nacc / tau
        if total > 0.0:
            mean_out[k] = 1000.0 * (L + nf * timeout) / total
            sla_out[k] = (V + nf) / total
        else:
            mean_out[k] = 0.0
            sla_out[k] = 0.0
        # the queues ran at the arrival rate; the cluster measures the window's Poisson count
        for d in range(n):
            obs = demand[tk, k, d]
            c = ready[k, d]
            demand_out[k, d] = obs
            load_out[k, d] = obs / (c * mu) if c > 0 else (LOAD_MAX if obs > 0.0 else 0.0)
        t[k] += 1
        now[k] = nowk + tau
        if features is not None:
            f_tod = (f_start[k] + now[k]) % 86400.0
            f_scalars[0, k] = mean_out[k]
            f_scalars[1, k] = sla_out[k]
            f_scalars[2, k] = f_tod
            _features_row(k, demand_out, ready, s_desired, lat_out, mean_out[k], sla_out[k], f_tod, f_consts, f_scale,
                          f_low, f_high, f_obs, f_out, f_load)
    return N



_TWO_PI_DAY = 2.0 * math.pi / 86400.0


@jit
def scaling_features(demand, ready, desired, latency, scalars, consts, scale, low, high, obs, out, load):
    """Observation, reward and metrics sums of ``N`` measurements (one formula for the single and vector envs).

    The formula of :class:`lwmecps_gym.envs.scaling.LWMECPSEnv3` (its Observation Space and Rewards
    sections), kept here beside the model so that :func:`step_clusters` compiles it with the window.

    Args:
        demand, latency: ``float64 (N, n)`` measured demand (req/s) and latency (ms) per deployment.
        ready, desired: ``int64 (N, n)`` ready and desired replicas.
        scalars: ``float64 (3, N)``: mean latency (ms), SLA-violation rate (0 if unmeasured), time of day (s).
        consts: ``(w_latency / sla_ms, w_replicas / (n max_replicas), w_imbalance, w_sla, service rate)``.
        scale, low, high: ``float32 (5n + 2,)`` the observation's scale and bounds.

    Writes ``obs`` ``float32 (N, 5n + 2)`` (the Observation Space table), ``load`` ``float64 (N, n)``
    and ``out`` ``float64 (5, N)``: reward, imbalance, total desired, total ready, total demand.
    """
    for k in range(demand.shape[0]):
        _features_row(k, demand, ready, desired, latency, scalars[0, k], scalars[1, k], scalars[2, k], consts,
                      scale, low, high, obs, out, load)


@_row
def _features_row(k, demand, ready, desired, latency, mean_latency, sla_rate, tod, consts, scale, low, high, obs,
                  out, load):
    """:func:`scaling_features` of row ``k`` (mean latency, SLA-violation rate and time of day given)."""
    n = demand.shape[1]
    wl, wr, wi, ws, mu = consts[0], consts[1], consts[2], consts[3], consts[4]
    s1 = 0.0
    s2 = 0.0
    sdes = 0
    srdy = 0
    sdem = 0.0
    for d in range(n):
        lam = demand[k, d]
        c = ready[k, d]
        u = lam / (c * mu) if c > 0 else (LOAD_MAX if lam > 0.0 else 0.0)
        load[k, d] = u
        obs[k, 4 * n + d] = np.float32(u)
        if u > 1.0:
            u = 1.0
        s1 += u
        s2 += u * u
        sdes += desired[k, d]
        srdy += c
        sdem += lam
        obs[k, d] = np.float32(lam)
        obs[k, n + d] = np.float32(c)
        obs[k, 2 * n + d] = np.float32(desired[k, d])
        obs[k, 3 * n + d] = np.float32(latency[k, d])
    a = tod * _TWO_PI_DAY
    obs[k, 5 * n] = np.float32(math.sin(a))
    obs[k, 5 * n + 1] = np.float32(math.cos(a))
    for j in range(5 * n + 2):
        x = obs[k, j] * scale[j]
        if x > high[j]:
            x = high[j]
        if x < low[j]:
            x = low[j]
        obs[k, j] = x
    mean = s1 / n
    var = s2 / n - mean * mean
    imb = math.sqrt(var) if var > 0.0 else 0.0
    out[0, k] = -(wl * mean_latency + wr * sdes + wi * imb + ws * sla_rate)
    out[1, k] = imb
    out[2, k] = sdes
    out[3, k] = srdy
    out[4, k] = sdem


@_row
def _pop(pend_t, pend_c, pend_len, k, d, m):
    """Drop the ``m`` oldest pending groups of cluster ``k``'s deployment ``d`` (they became ready)."""
    pl = pend_len[k, d]
    G = pend_t.shape[2]
    for j in range(G):
        if j + m < pl:
            pend_t[k, d, j] = pend_t[k, d, j + m]
            pend_c[k, d, j] = pend_c[k, d, j + m]
        else:
            pend_t[k, d, j] = _INF
            pend_c[k, d, j] = 0
    pend_len[k, d] = pl - m


@_row
def deployment_window(c, pend_t, pend_c, n_pend, B, lam, rtt_ms, now, tau, mu, erlang, timeout, sla):
    """General window of one deployment: pieces between readiness events, fluid backlog.

    Args: ready pods ``c``; pending groups: ready times ``pend_t`` (s), pods ``pend_c``, the first
    ``n_pend`` in use (read only); backlog ``B``; arrival rate ``lam`` (req/s); RTT ``rtt_ms``;
    window start ``now`` (s); the model constants (``erlang``: the Erlang C table as an array).

    Returns ``(latency [s x requests], SLA violations, accepted requests, dropped requests, ready
    pods at the end, pending groups that became ready, backlog at the end, latency of the window's
    requests [ms])``. The response-time tail is the analytic :func:`stat_violation`, not the table.
    """
    grid = erlang.shape[1] - 1
    end = now + tau
    inv_mu = 1.0 / mu
    rtt_s = rtt_ms * 0.001
    slack = sla - rtt_s
    L = 0.0
    V = 0.0
    N = 0.0
    drop_total = 0.0
    wsum_d = 0.0
    nacc_d = 0.0
    t_prev = 0.0
    k_ev = 0
    while True:
        if k_ev < n_pend and pend_t[k_ev] < end:
            t_next = pend_t[k_ev] - now
            if t_next < 0.0:
                t_next = 0.0
        else:
            t_next = tau
        dur = t_next - t_prev
        if dur > 0.0 and c > 0:
            cap = c * mu
            if lam <= 0.0:
                B -= cap * dur
                if B < 0.0:
                    B = 0.0
            else:
                if B <= 0.0 and lam < cap:
                    nn = lam * dur
                    C = erlang[c, int(lam / cap * grid)]
                    theta = cap - lam
                    q = C / theta
                    wsum = nn * (inv_mu + (q if q < timeout else timeout))
                    vsum = nn * stat_violation(C, theta, mu, slack)
                    nacc = nn
                else:
                    wsum, vsum, nacc, drop, B = fluid_piece(c, lam, dur, B, mu, erlang[c], grid, timeout, slack)
                    drop_total += drop
                wsum_d += wsum
                nacc_d += nacc
                L += wsum + nacc * rtt_s
                V += vsum
                N += nacc
        t_prev = t_next
        if t_next >= tau:
            break
        c += pend_c[k_ev]
        k_ev += 1
    lat = 1000.0 * ((wsum_d / nacc_d if nacc_d > 0.0 else inv_mu) + rtt_s)
    return L, V, N, drop_total, c, k_ev, B, lat


@_row
def fluid_run(B, lam, cap, dur, timeout):
    """The deterministic fluid part of a piece: backlog ``B`` at the start, arrival rate ``lam``,
    service capacity ``cap = c mu`` (requests/s), ``dur`` s, backlog capped at ``cap * timeout``.

    Returns ``(t_f, B1, dropped, w0, w1, n_f)``: how long the backlog lasts inside the piece (s,
    at most ``dur``), the backlog after it, the requests dropped at the cap, the queueing delay at
    its start and end (s), and the requests accepted during it (may be <= 0 when all were dropped).
    """
    bmax = cap * timeout
    drift = lam - cap
    if drift >= 0.0:
        t_f = dur
    else:
        t_f = B / -drift
        if t_f > dur:
            t_f = dur
    B1 = B + drift * t_f
    dropped = 0.0
    if B1 > bmax:
        dropped = B1 - bmax
        B1 = bmax
    w0 = (B if B < bmax else bmax) / cap
    w1 = B1 / cap
    return t_f, B1, dropped, w0, w1, lam * t_f - dropped


@_row
def fluid_piece(c, lam, dur, B, mu, row, grid, timeout, slack):
    """A piece with a backlog or ``lam >= c mu``: deterministic fluid queue, then stationary if it drains.

    The backlog grows (or drains) at ``lam - c mu``; a request arriving at backlog ``b``
    waits ``b / (c mu)``; the backlog is capped at ``c mu timeout`` (the excess is dropped:
    those clients time out). If the backlog empties inside the piece, the rest of the piece
    is the stationary M/M/c regime (``row``: the Erlang C table row of ``c`` as an array).

    Returns ``(sum of response times [s], expected SLA violations, accepted, dropped, backlog at the end)``.
    """
    cap = c * mu
    inv_mu = 1.0 / mu
    t_f, B1, dropped, w0, w1, n_f = fluid_run(B, lam, cap, dur, timeout)
    if n_f < 0.0:
        n_f = 0.0
    wsum = n_f * (0.5 * (w0 + w1) + inv_mu)
    vsum = n_f * fluid_violation(w0, w1, slack, mu)
    n_s = lam * (dur - t_f)
    if n_s > 0.0:
        C = row[int(lam / cap * grid)]
        theta = cap - lam
        q = C / theta
        wsum += n_s * (inv_mu + (q if q < timeout else timeout))
        vsum += n_s * stat_violation(C, theta, mu, slack)
        B1 = 0.0
    return wsum, vsum, n_f + n_s, dropped, B1


@_row
def piece(c, lam, dur, B, mu, row, grid, timeout, slack):
    """One piece: ``c`` ready pods, arrival rate ``lam``, ``dur`` s, backlog ``B``, ``slack`` = SLA - RTT (s).

    Returns ``(sum of response times of accepted requests [s], expected SLA violations
    among them, accepted requests, dropped requests, backlog at the end)``. Stationary
    M/M/c with Erlang C when there is no backlog and ``lam < c mu``, else :func:`fluid_piece`.
    """
    cap = c * mu
    if B <= 0.0 and lam < cap:
        n = lam * dur
        C = row[int(lam / cap * grid)]
        theta = cap - lam
        q = C / theta
        return n * (1.0 / mu + (q if q < timeout else timeout)), n * stat_violation(C, theta, mu, slack), n, 0.0, 0.0
    return fluid_piece(c, lam, dur, B, mu, row, grid, timeout, slack)


@_row
def stat_violation(C, theta, mu, s):
    """M/M/c response-time tail ``P(T > s)`` from Erlang C ``C`` and ``theta = c mu - lam`` (see :mod:`.queueing`)."""
    if s <= 0.0:
        return 1.0
    es = math.exp(-mu * s)
    dd = mu - theta
    if -1e-9 < dd < 1e-9:
        return (1.0 - C) * es + C * (1.0 + mu * s) * es
    return (1.0 - C) * es + C * (mu * math.exp(-theta * s) - theta * es) / dd


@_row
def fluid_violation(w0, w1, s, mu):
    """Fraction of requests with a wait uniform on ``[w0, w1]`` (fluid) plus ``Exp(mu)`` service exceeding ``s``."""
    if w0 <= w1:
        lo = w0
        hi = w1
    else:
        lo = w1
        hi = w0
    if s <= lo:
        return 1.0
    if hi - lo < 1e-12:
        return math.exp(-mu * (s - lo))
    top = hi if hi < s else s
    part = (math.exp(-mu * (s - top)) - math.exp(-mu * (s - lo))) / mu + (hi - s if hi > s else 0.0)
    return part / (hi - lo)
