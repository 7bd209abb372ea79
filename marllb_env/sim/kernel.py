"""The flow simulator's event loop over array state: its one implementation, compiled with numba.

:class:`marllb_env.sim.FlowSimulator` keeps its state in the arrays below and calls
:func:`run_events` to process events; the functions here are compiled with `numba
<https://numba.pydata.org>`_ (:func:`lwmecps_gym.core.compiled.jit`, cached on disk) when it is
installed (a dependency of the package) and run interpreted otherwise (``NUMBA_DISABLE_JIT=1`` too):
same source, same numbers, slower; both variants agree bit for bit (tests/marllb/test_sim_kernel.py).

The model (see :mod:`marllb_env.sim.simulator`): processor sharing with a virtual clock ``V_j`` per
server and finish tags ``V_arrival + size`` in a binary heap per server (ordered by ``(tag, flow
id)``), a FIFO backlog (ring buffer) per server, per-LB dispatch (:mod:`.dispatch` modes), and two
reservoirs per (LB, server) with running sums and their top tenth kept in order (what the p90
interpolation reads), so the five MARLLB statistics cost O(1) to read. :func:`run_events` returns at an event boundary whenever the Python side must act:
the arrival batch is used up (:data:`NEED_BATCH`), a control event is due (:data:`NEED_CONTROL`),
the uniform buffer runs low (:data:`NEED_RANDOM`) or a buffer is full (:data:`NEED_ROOM`).

Array layouts (``S`` servers, ``L`` load balancers, ``R = 2 L S`` reservoirs of ``K`` slots):

* ``srv_f`` float64 ``(8, S)``: rows :data:`V`, :data:`T`, :data:`BUSY`, :data:`CPUS`, :data:`SPEED`,
  :data:`SUMF`, :data:`WWORK`, :data:`ND` (next departure time, inf when idle).
* ``srv_i`` int64 ``(8, S)``: rows :data:`NSERV`, :data:`NWORKERS`, :data:`BACKLOG`, :data:`QHEAD`,
  :data:`QLEN`, :data:`S_ARR`, :data:`S_DONE`, :data:`S_REJ`.
* ``act`` int64 ``(S,)``: active server ids in increasing order, the first ``sc_i[N_ACT]`` valid.
* ``heap_v`` float64 / ``heap_id`` int64 ``(S, H)``: finish tags and flow ids in service (heap of
  ``srv_i[NSERV, j]`` entries); ``queue`` int64 ``(S, Q)``: backlog ring of flow ids.
* ``flow_f`` float64 ``(3, F)``: :data:`F_ARR`, :data:`F_SIZE`, :data:`F_DONE`; ``flow_i`` int64
  ``(4, F)``: :data:`F_LB`, :data:`F_SRV`, :data:`F_STATUS`, :data:`F_POS` (index in its LB's ongoing list).
* ``lb_i`` int64 ``(L, 5)``: :data:`MODE`, :data:`N_ONGOING`, :data:`C_ARR`, :data:`C_DONE`, :data:`C_REJ`;
  ``lb_fct`` float64 ``(L,)``; ``invw`` float64 ``(L, S)`` = ``1 / (w + 1e-9)``; ``n_on`` int64 ``(L, S)``;
  ``ongoing`` int64 ``(L, O)``; ``alias_p`` / ``alias_a`` ``(L, S)`` Vose tables (``wcmp``);
  ``maglev`` int64 ``(M,)``.
* ``res_f`` float64 ``(5, R, K)``: :data:`R_VAL`, :data:`R_TIME`, :data:`R_DEC` (``v * decay**(t0 - t)``)
  per slot, :data:`R_TOPV`, :data:`R_TOPD`: the :func:`top_count` largest values / decayed values in
  ascending order; ``top_i`` int64 ``(4, R, K)``: their slots (:data:`TOP_SLOT_V`, :data:`TOP_SLOT_D`)
  and per slot whether it is among them (:data:`IN_TOP_V`, :data:`IN_TOP_D`); ``res_s`` float64
  ``(R, 3)`` running sums of ``v``, ``v**2`` and the decayed values; ``res_i`` int64 ``(R, 2)``:
  :data:`R_N` filled slots, :data:`R_SEEN` samples offered (Algorithm R).
* ``unif`` float64: the system stream's uniforms in order, ``sc_i[UI]`` the next unused.
* ``batch_t``, ``batch_size`` float64, ``batch_lbh``, ``batch_hash`` int64: the current arrival batch,
  ``sc_i[BI]`` the next arrival; ``sc_f[TA]`` its time (inf once a finite workload is exhausted).
* ``sc_i`` int64 / ``sc_f`` float64: scalars (indices below).
"""

from __future__ import annotations

import math

import numpy as np

from lwmecps_gym.core import queueing
from lwmecps_gym.core.compiled import jit

INF = math.inf
#: :func:`lwmecps_gym.core.queueing.ps_rate` compiled (its source is the formula's one place).
ps_rate = jit(queueing.ps_rate)

# srv_f rows
V, T, BUSY, CPUS, SPEED, SUMF, WWORK, ND = range(8)
# srv_i rows
NSERV, NWORKERS, BACKLOG, QHEAD, QLEN, S_ARR, S_DONE, S_REJ = range(8)
# flow_f / flow_i rows
F_ARR, F_SIZE, F_DONE = range(3)
F_LB, F_SRV, F_STATUS, F_POS = range(4)
# lb_i columns
MODE, N_ONGOING, C_ARR, C_DONE, C_REJ = range(5)
# res_f planes, res_i columns
R_VAL, R_TIME, R_DEC, R_TOPV, R_TOPD = range(5)
R_N, R_SEEN = range(2)
# top_i planes: the slots of the top values (ascending, as R_TOPV / R_TOPD), and per slot whether it
# is in the top, for the values and for the decayed values
TOP_SLOT_V, TOP_SLOT_D, IN_TOP_V, IN_TOP_D = range(4)
# sc_i entries
UI, BI, N_FLOWS, N_ACT, N_FD, RES_MODE, MARGIN = range(7)
N_SC_I = 7
# sc_f entries
TA, T0, LN_INV_DECAY, KEEP_PROB, DECAY = range(5)
N_SC_F = 5
# reservoir modes (sc_i[RES_MODE])
RES_FAST, RES_ALGORITHM_R, RES_KEEP = range(3)
# dispatch modes: codes are indices into marllb_env.sim.dispatch.DISPATCH_MODES
SED, SED2, LSQ, LSQ2, WCMP, ECMP, MAGLEV, RANDOM, GSQ, LWL, SRT = range(11)
# flow status codes
IN_PROGRESS, COMPLETED, REJECTED = 0, 1, 2
# run_events return codes
DONE, NEED_BATCH, NEED_CONTROL, NEED_RANDOM, NEED_ROOM = range(5)


def uniforms_per_event(n_servers: int, fd_samples_per_arrival: int) -> int:
    """Most uniforms one event can use: SED ties over every server, 3 per flow-duration sample
    (pick + keep + slot), 2 for an FCT sample, 1 for a dispatch draw; plus slack."""
    return n_servers + 3 * fd_samples_per_arrival + 8


@jit
def _next_uniform(unif, sc_i):
    i = sc_i[UI]
    sc_i[UI] = i + 1
    return unif[i]


@jit
def _heap_push(heap_v, heap_id, j, n, v, fid):
    """Push ``(v, fid)`` onto server ``j``'s heap of ``n`` entries (ordered by tag, then flow id)."""
    i = n
    while i > 0:
        p = (i - 1) >> 1
        pv = heap_v[j, p]
        if v < pv or (v == pv and fid < heap_id[j, p]):
            heap_v[j, i] = pv
            heap_id[j, i] = heap_id[j, p]
            i = p
        else:
            break
    heap_v[j, i] = v
    heap_id[j, i] = fid


@jit
def _heap_pop(heap_v, heap_id, j, n):
    """Remove and return the smallest ``(tag, flow id)`` of server ``j``'s heap of ``n > 0`` entries."""
    v0 = heap_v[j, 0]
    f0 = heap_id[j, 0]
    n -= 1
    if n > 0:
        lv = heap_v[j, n]
        lf = heap_id[j, n]
        i = 0
        while True:
            c = 2 * i + 1
            if c >= n:
                break
            d = c + 1
            if d < n and (heap_v[j, d] < heap_v[j, c] or (heap_v[j, d] == heap_v[j, c] and heap_id[j, d] < heap_id[j, c])):
                c = d
            if heap_v[j, c] < lv or (heap_v[j, c] == lv and heap_id[j, c] < lf):
                heap_v[j, i] = heap_v[j, c]
                heap_id[j, i] = heap_id[j, c]
                i = c
            else:
                break
        heap_v[j, i] = lv
        heap_id[j, i] = lf
    return v0, f0


@jit
def advance_server(srv_f, srv_i, j, t):
    """Bring server ``j``'s virtual clock and busy core-seconds to time ``t``."""
    dt = t - srv_f[T, j]
    if dt > 0:
        n = srv_i[NSERV, j]
        if n:
            c = srv_f[CPUS, j]
            srv_f[V, j] += ps_rate(srv_f[SPEED, j], c, n) * dt
            srv_f[BUSY, j] += (n if n <= c else c) * dt
        srv_f[T, j] = t


@jit
def advance_all(srv_f, srv_i, now):
    """Bring every busy server's clock to ``now`` (an idle server's clock is set by its next arrival)."""
    for j in range(srv_f.shape[1]):
        if srv_i[NSERV, j]:
            advance_server(srv_f, srv_i, j, now)


@jit
def reschedule(srv_f, srv_i, heap_v, j):
    """Recompute server ``j``'s next departure time from its clock (after a capacity change)."""
    n = srv_i[NSERV, j]
    if n:
        r = ps_rate(srv_f[SPEED, j], srv_f[CPUS, j], n)
        d = heap_v[j, 0] - srv_f[V, j]
        srv_f[ND, j] = srv_f[T, j] + (d if d > 0.0 else 0.0) / r
    else:
        srv_f[ND, j] = INF


@jit
def work_left(srv_f, srv_i, j, t):
    """Unfinished work at server ``j`` at time ``t`` (CPU-seconds): in service plus backlog."""
    n = srv_i[NSERV, j]
    v = srv_f[V, j]
    if n:
        c = srv_f[CPUS, j]
        v += ps_rate(srv_f[SPEED, j], c, n) * (t - srv_f[T, j])
    w = srv_f[SUMF, j] - n * v + srv_f[WWORK, j]
    return w if w > 0.0 else 0.0


@jit
def ps_completion(srv_f, srv_i, heap_v, queue, flow_f, j, t, size):
    """Time a new job of ``size`` would take at server ``j`` under PS if no other flow arrived.

    Uses the true remaining sizes of the server's flows (backlogged ones counted as in service, an
    approximation); with ``k`` flows sharing ``cpus`` cores each progresses at
    ``speed * min(1, cpus / k)``, and ``k`` drops as the smaller jobs finish.
    """
    n = srv_i[NSERV, j]
    c = srv_f[CPUS, j]
    v = srv_f[V, j]
    if n:
        v += ps_rate(srv_f[SPEED, j], c, n) * (t - srv_f[T, j])
    q = srv_i[QLEN, j]
    rem = np.empty(n + q)
    for i in range(n):
        rem[i] = heap_v[j, i] - v
    head = srv_i[QHEAD, j]
    qcap = queue.shape[1]
    for i in range(q):
        rem[n + i] = flow_f[F_SIZE, queue[j, (head + i) % qcap]]
    rem.sort()
    k = n + q + 1
    sp = srv_f[SPEED, j]
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


@jit
def _pick(scores, n, unif, sc_i):
    """Index of the minimum of ``scores[:n]``; exact ties broken uniformly at random."""
    best = scores[0]
    for i in range(1, n):
        if scores[i] < best:
            best = scores[i]
    nt = 0
    first = -1
    for i in range(n):
        if scores[i] == best:
            if nt == 0:
                first = i
            nt += 1
    if nt == 1:
        return first
    k = int(_next_uniform(unif, sc_i) * nt)
    for i in range(n):
        if scores[i] == best:
            if k == 0:
                return i
            k -= 1
    return first


@jit
def sed_choice(lb, act, invw, n_on, unif, sc_i):
    """SED (the default mode, also called directly by the event loop): the active server with the
    smallest ``(n_flow_on + 1) / (w + 1e-9)`` of LB ``lb``; exact ties broken uniformly at random."""
    best = INF
    j = -1
    nt = 0
    for i in range(sc_i[N_ACT]):
        s = act[i]
        x = (n_on[lb, s] + 1) * invw[lb, s]
        if x < best:
            best = x
            j = s
            nt = 1
        elif x == best:  # exact tie: keep each tied server with prob 1/nt (uniform)
            nt += 1
            if _next_uniform(unif, sc_i) * nt < 1.0:
                j = s
    return j


@jit
def choose(lb, mode, h, size, t, srv_f, srv_i, act, heap_v, queue, flow_f, invw, n_on, alias_p, alias_a,
           maglev, unif, sc_i):
    """Server for a new flow of LB ``lb`` in dispatch ``mode`` (see :mod:`.dispatch`); ``h`` its hash."""
    n = sc_i[N_ACT]
    if mode == SED:
        return sed_choice(lb, act, invw, n_on, unif, sc_i)
    if mode == ECMP:
        return act[h % n]
    if mode == RANDOM:
        return act[int(_next_uniform(unif, sc_i) * n)]
    if mode == WCMP:
        i = h % n
        u = (h >> 31) * (1.0 / (1 << 31))
        return act[i] if u < alias_p[lb, i] else act[alias_a[lb, i]]
    if mode == MAGLEV:
        return maglev[h % maglev.shape[0]]
    if mode == SED2 or mode == LSQ2:
        a = h % n
        if n == 1:
            return act[a]
        b = (a + 1 + (h >> 20) % (n - 1)) % n
        ja = act[a]
        jb = act[b]
        if mode == SED2:
            sa = (n_on[lb, ja] + 1) * invw[lb, ja]
            sb = (n_on[lb, jb] + 1) * invw[lb, jb]
        else:
            sa = float(n_on[lb, ja])
            sb = float(n_on[lb, jb])
        if sa < sb:
            return ja
        if sb < sa:
            return jb
        return ja if _next_uniform(unif, sc_i) < 0.5 else jb
    scores = np.empty(n)
    for i in range(n):
        s = act[i]
        if mode == LSQ:
            scores[i] = n_on[lb, s]
        elif mode == GSQ:
            scores[i] = (srv_i[NSERV, s] + srv_i[QLEN, s] + 1) * invw[lb, s]
        elif mode == LWL:
            scores[i] = work_left(srv_f, srv_i, s, t) / (srv_f[CPUS, s] * srv_f[SPEED, s])
        else:  # SRT
            scores[i] = ps_completion(srv_f, srv_i, heap_v, queue, flow_f, s, t, size)
    return act[_pick(scores, n, unif, sc_i)]


@jit
def top_count(n):
    """How many of ``n`` values sit at ranks ``>= int(0.9 (n - 1))``: the p90 (linear interpolation
    between ranks ``lo`` and ``lo + 1``) reads the two smallest of them."""
    return n - int(0.9 * (n - 1)) if n > 0 else 0


@jit
def _top_update(tv, ts, flag, vals, n_old, n_new, slot, replaced, x):
    """Keep ``tv`` / ``ts`` the ascending values / slots of the :func:`top_count` largest of ``vals[:n]``
    after slot ``slot`` got ``x`` (``vals`` already updated; ``replaced``: it held a value before,
    else the reservoir grew from ``n_old`` to ``n_new``). ``flag[s]`` marks the slots in the top.

    Most updates touch only the top's few values; a scan of the other slots is needed only when
    the top loses a value and ``x`` does not replace it (about 1 update in 10 when full)."""
    m = top_count(n_old)
    if replaced and flag[slot]:  # the old value leaves the top
        i = 0
        while ts[i] != slot:
            i += 1
        for k in range(i, m - 1):
            tv[k] = tv[k + 1]
            ts[k] = ts[k + 1]
        m -= 1
    if m > 0 and x >= tv[0]:  # x is among the largest: insert in order
        k = m
        while k > 0 and tv[k - 1] > x:
            tv[k] = tv[k - 1]
            ts[k] = ts[k - 1]
            k -= 1
        tv[k] = x
        ts[k] = slot
        flag[slot] = 1
        m += 1
    else:
        flag[slot] = 0
    target = top_count(n_new)
    while m > target:  # the top's smallest moves out
        flag[ts[0]] = 0
        for k in range(m - 1):
            tv[k] = tv[k + 1]
            ts[k] = ts[k + 1]
        m -= 1
    while m < target:  # the largest value outside the top joins it as its smallest
        best = 0.0
        bs = -1
        for q in range(n_new):
            if flag[q] == 0 and (bs < 0 or vals[q] > best):
                best = vals[q]
                bs = q
        for k in range(m, 0, -1):
            tv[k] = tv[k - 1]
            ts[k] = ts[k - 1]
        tv[0] = best
        ts[0] = bs
        flag[bs] = 1
        m += 1


@jit
def fsum(x, n):
    """Correctly rounded sum of ``x[:n]`` (as :func:`math.fsum`): Shewchuk's exact partials
    (Shewchuk, "Adaptive precision floating-point arithmetic", 1997), then the top partials
    rounded with the half-way correction. Finite inputs."""
    partials = np.empty(n + 1)
    m = 0
    for i in range(n):
        xv = x[i]
        k = 0
        for p in range(m):
            y = partials[p]
            if abs(xv) < abs(y):
                xv, y = y, xv
            hi = xv + y
            lo = y - (hi - xv)
            if lo != 0.0:
                partials[k] = lo
                k += 1
            xv = hi
        partials[k] = xv
        m = k + 1
    if m == 0:
        return 0.0
    m -= 1
    hi = partials[m]
    lo = 0.0
    while m > 0:
        xv = hi
        m -= 1
        y = partials[m]
        hi = xv + y
        lo = y - (hi - xv)
        if lo != 0.0:
            break
    if m > 0 and ((lo < 0.0 and partials[m - 1] < 0.0) or (lo > 0.0 and partials[m - 1] > 0.0)):
        y = lo * 2.0
        xv = hi + y
        if y == xv - hi:
            hi = xv
    return hi


@jit
def rebase_decay(t, res_f, res_s, res_i, sc_f):
    """Move the decay origin ``t0`` to ``t`` (> ``t0``): scale the stored ``v * decay**(t0 - t)``
    and refresh the running sums exactly (:func:`fsum`), so they stay finite over long runs."""
    f = sc_f[DECAY] ** (t - sc_f[T0])
    sc_f[T0] = t
    R = res_f.shape[1]
    sq = np.empty(res_f.shape[2])
    for r in range(R):
        n = res_i[r, R_N]
        for k in range(top_count(n)):  # scaling keeps the order
            res_f[R_TOPD, r, k] *= f
        for k in range(n):
            res_f[R_DEC, r, k] *= f
            v = res_f[R_VAL, r, k]
            sq[k] = v * v
        res_s[r, 0] = fsum(res_f[R_VAL, r], n)
        res_s[r, 1] = fsum(sq, n)
        res_s[r, 2] = fsum(res_f[R_DEC, r], n)


@jit(inline=True)
def sample(r, t, v, res_f, res_s, res_i, top_i, unif, sc_i, sc_f):
    """Offer sample ``v`` taken at ``t`` to reservoir ``r = (lb * S + server) * 2 + kind`` (kind 0 FCT,
    1 flow duration): random replacement (keep probability ``sc_f[KEEP_PROB]``) or Algorithm R."""
    K = res_f.shape[2]
    n = res_i[r, R_N]
    mode = sc_i[RES_MODE]
    if mode == RES_FAST:
        slot = -1 if n < K else int(_next_uniform(unif, sc_i) * K)
    elif mode == RES_ALGORITHM_R:
        res_i[r, R_SEEN] += 1
        if n < K:
            slot = -1
        else:
            slot = int(_next_uniform(unif, sc_i) * res_i[r, R_SEEN])
            if slot >= K:
                return
    else:
        if _next_uniform(unif, sc_i) >= sc_f[KEEP_PROB]:
            return
        slot = -1 if n < K else int(_next_uniform(unif, sc_i) * K)
    if t - sc_f[T0] > 300.0:  # long run: rebase before exp() could overflow
        rebase_decay(t, res_f, res_s, res_i, sc_f)
    ve = v * math.exp((t - sc_f[T0]) * sc_f[LN_INV_DECAY])
    if slot >= 0:  # replace
        old = res_f[R_VAL, r, slot]
        olde = res_f[R_DEC, r, slot]
        res_f[R_VAL, r, slot] = v
        res_f[R_DEC, r, slot] = ve
        res_f[R_TIME, r, slot] = t
        res_s[r, 0] += v - old
        res_s[r, 1] += v * v - old * old
        res_s[r, 2] += ve - olde
        n_new = n
    else:  # fill the next empty slot
        res_f[R_VAL, r, n] = v
        res_f[R_TIME, r, n] = t
        res_f[R_DEC, r, n] = ve
        res_s[r, 0] += v
        res_s[r, 1] += v * v
        res_s[r, 2] += ve
        n_new = n + 1
        res_i[r, R_N] = n_new
        slot = n
    _top_update(res_f[R_TOPV, r], top_i[TOP_SLOT_V, r], top_i[IN_TOP_V, r], res_f[R_VAL, r], n, n_new, slot,
                n_new == n, v)
    _top_update(res_f[R_TOPD, r], top_i[TOP_SLOT_D, r], top_i[IN_TOP_D, r], res_f[R_DEC, r], n, n_new, slot,
                n_new == n, ve)


@jit
def feature_rows(lb, c, n_on, res_f, res_s, res_i, out):
    """LB ``lb``'s ``(S, 11)`` MARLLB features into ``out``: ``n_flow_on``, then per reservoir kind
    (FCT, flow duration) mean, p90 (linear interpolation), population std, and ``c`` times the mean
    and p90 of the decayed values (``c = decay ** (now - t0)``); an empty reservoir gives zeros."""
    S = n_on.shape[1]
    for j in range(S):
        out[j, 0] = n_on[lb, j]
        for kind in range(2):
            r = (lb * S + j) * 2 + kind
            o = 1 + 5 * kind
            n = res_i[r, R_N]
            if n == 0:
                for k in range(5):
                    out[j, o + k] = 0.0
                continue
            mean = res_s[r, 0] / n
            var = res_s[r, 1] / n - mean * mean
            h = 0.9 * (n - 1)
            lo = int(h)
            fr = h - lo
            hi = 1 if lo + 1 < n else 0  # ranks lo and lo + 1 (or lo) are the top's first values
            sv = res_f[R_TOPV, r]
            se = res_f[R_TOPD, r]
            out[j, o] = mean
            out[j, o + 1] = sv[0] + fr * (sv[hi] - sv[0])
            out[j, o + 2] = math.sqrt(var) if var > 0.0 else 0.0
            out[j, o + 3] = c * (res_s[r, 2] / n)
            out[j, o + 4] = c * (se[0] + fr * (se[hi] - se[0]))


@jit
def lb_observation(lb, c, dt, now, busy_since, srv_f, srv_i, n_on, res_f, res_s, res_i, feat, out):
    """One LB's observation block at ``now``: ``out[:, :11]`` its features (:func:`feature_rows`, via
    the float64 buffer ``feat``), then per server the CPU utilisation over the last ``dt`` seconds
    (busy core-seconds since ``busy_since`` over ``cpus * dt``, at most 1; 0 when ``dt <= 0``),
    busy workers and backlog. ``busy_since`` becomes the busy core-seconds at ``now``."""
    advance_all(srv_f, srv_i, now)
    feature_rows(lb, c, n_on, res_f, res_s, res_i, feat)
    for j in range(out.shape[0]):
        for k in range(11):
            out[j, k] = feat[j, k]
        b = srv_f[BUSY, j]
        if dt > 0:
            u = (b - busy_since[j]) / (srv_f[CPUS, j] * dt)  # <= 1 by construction; the cap absorbs rounding
            out[j, 11] = u if u < 1.0 else 1.0
        else:
            out[j, 11] = 0.0
        out[j, 12] = srv_i[NSERV, j]
        out[j, 13] = srv_i[QLEN, j]
        busy_since[j] = b


@jit
def run_events(t_end, t_ctl, srv_f, srv_i, act, heap_v, heap_id, queue, flow_f, flow_i, lb_i, lb_fct,
               invw, n_on, ongoing, alias_p, alias_a, maglev, res_f, res_s, res_i, top_i, unif,
               batch_t, batch_size, batch_lbh, batch_hash, sc_i, sc_f):
    """Process arrivals and departures in time order up to ``t_end`` (s); return a code.

    Returns :data:`DONE` when the next event is after ``t_end``; :data:`NEED_CONTROL` when the
    control event at ``t_ctl`` comes before the next event; :data:`NEED_RANDOM` when fewer than
    ``sc_i[MARGIN]`` uniforms are left; :data:`NEED_BATCH` when the batch is used up and ``sc_f[TA]``
    is still finite (the caller loads the next batch, or sets ``TA`` to inf when there is none);
    :data:`NEED_ROOM` when a flow, heap, backlog or ongoing-list buffer is full. Always at an event
    boundary: the caller acts and calls again.
    """
    S = srv_f.shape[1]
    n_lbs = lb_i.shape[0]
    n_fd = sc_i[N_FD]
    nb = batch_t.shape[0]
    while True:
        if sc_i[BI] >= nb and sc_f[TA] < INF:  # batch used up (the caller loads the next or sets TA = inf)
            return NEED_BATCH
        td = INF
        jd = -1
        for j in range(S):
            x = srv_f[ND, j]
            if x < td:
                td = x
                jd = j
        ta = sc_f[TA]
        t = td if td <= ta else ta
        if t_ctl < t:
            return NEED_CONTROL
        if t > t_end:
            return DONE
        if sc_i[UI] + sc_i[MARGIN] > unif.shape[0]:
            return NEED_RANDOM
        if td > ta:
            # ---- arrival of the next flow of the workload at its LB (edge router: hash % n_lbs)
            bi = sc_i[BI]
            size = batch_size[bi]
            lb = batch_lbh[bi] % n_lbs
            h = batch_hash[bi]
            bi += 1
            sc_i[BI] = bi
            if bi < nb:
                sc_f[TA] = batch_t[bi]  # else TA stays finite until the caller loads the next batch
            fid = sc_i[N_FLOWS]
            mode = lb_i[lb, MODE]
            if mode == SED:  # the default, without choose's many arguments
                j = sed_choice(lb, act, invw, n_on, unif, sc_i)
            else:
                j = choose(lb, mode, h, size, t, srv_f, srv_i, act, heap_v, queue, flow_f, invw, n_on, alias_p,
                           alias_a, maglev, unif, sc_i)
            flow_f[F_ARR, fid] = t
            flow_f[F_SIZE, fid] = size
            flow_f[F_DONE, fid] = math.nan
            flow_i[F_LB, fid] = lb
            flow_i[F_SRV, fid] = j
            sc_i[N_FLOWS] = fid + 1
            lb_i[lb, C_ARR] += 1
            srv_i[S_ARR, j] += 1
            # flow-duration samples of this LB's ongoing flows (the ACKs VPP samples)
            no = lb_i[lb, N_ONGOING]
            if no:
                base = lb * S
                for _ in range(n_fd):
                    g = ongoing[lb, int(_next_uniform(unif, sc_i) * no)]
                    sample(((base + flow_i[F_SRV, g]) << 1) + 1, t, t - flow_f[F_ARR, g],
                           res_f, res_s, res_i, top_i, unif, sc_i, sc_f)
            n = srv_i[NSERV, j]
            if n < srv_i[NWORKERS, j]:
                advance_server(srv_f, srv_i, j, t)
                v = srv_f[V, j]
                fv = v + size
                _heap_push(heap_v, heap_id, j, n, fv, fid)
                srv_f[SUMF, j] += fv
                n += 1
                srv_i[NSERV, j] = n
                d = heap_v[j, 0] - v
                srv_f[ND, j] = t + (d if d > 0.0 else 0.0) / ps_rate(srv_f[SPEED, j], srv_f[CPUS, j], n)
            elif srv_i[QLEN, j] < srv_i[BACKLOG, j]:
                q = srv_i[QLEN, j]
                queue[j, (srv_i[QHEAD, j] + q) % queue.shape[1]] = fid
                srv_i[QLEN, j] = q + 1
                srv_f[WWORK, j] += size
            else:
                flow_i[F_STATUS, fid] = REJECTED
                flow_i[F_POS, fid] = -1
                lb_i[lb, C_REJ] += 1
                srv_i[S_REJ, j] += 1
                if fid + 1 == flow_f.shape[1]:
                    return NEED_ROOM
                continue
            flow_i[F_STATUS, fid] = IN_PROGRESS
            n_on[lb, j] += 1
            flow_i[F_POS, fid] = no
            ongoing[lb, no] = fid
            lb_i[lb, N_ONGOING] = no + 1
            if (fid + 1 == flow_f.shape[1] or no + 1 == ongoing.shape[1] or srv_i[NSERV, j] == heap_v.shape[1]
                    or srv_i[QLEN, j] == queue.shape[1]):
                return NEED_ROOM
            continue
        # ---- departure of the flow with the smallest finish tag at server jd
        j = jd
        advance_server(srv_f, srv_i, j, t)
        n = srv_i[NSERV, j]
        c = srv_f[CPUS, j]
        fv, fid = _heap_pop(heap_v, heap_id, j, n)
        srv_f[SUMF, j] -= fv
        n -= 1
        lb = flow_i[F_LB, fid]
        flow_f[F_DONE, fid] = t
        flow_i[F_STATUS, fid] = COMPLETED
        fct = t - flow_f[F_ARR, fid]
        n_on[lb, j] -= 1
        p = flow_i[F_POS, fid]
        last_i = lb_i[lb, N_ONGOING] - 1
        last = ongoing[lb, last_i]
        lb_i[lb, N_ONGOING] = last_i
        if last != fid:
            ongoing[lb, p] = last
            flow_i[F_POS, last] = p
        lb_i[lb, C_DONE] += 1
        lb_fct[lb] += fct
        srv_i[S_DONE, j] += 1
        sample((lb * S + j) << 1, t, fct, res_f, res_s, res_i, top_i, unif, sc_i, sc_f)
        q = srv_i[QLEN, j]
        if q:  # a backlogged flow gets the freed worker
            head = srv_i[QHEAD, j]
            nxt = queue[j, head]
            srv_i[QHEAD, j] = (head + 1) % queue.shape[1]
            srv_i[QLEN, j] = q - 1
            sz = flow_f[F_SIZE, nxt]
            srv_f[WWORK, j] -= sz
            fv2 = srv_f[V, j] + sz
            _heap_push(heap_v, heap_id, j, n, fv2, nxt)
            srv_f[SUMF, j] += fv2
            n += 1
        srv_i[NSERV, j] = n
        if n:
            d = heap_v[j, 0] - srv_f[V, j]
            srv_f[ND, j] = t + (d if d > 0.0 else 0.0) / ps_rate(srv_f[SPEED, j], c, n)
        else:
            srv_f[ND, j] = INF
