"""The fluid model's per-interval math, written once for one env (Python floats) and many (a compiled loop).

:class:`~faas_gym.backends.sim.SimBackend` (one function, Python scalars) and
:class:`~faas_gym.vector.FaasVectorEnv` (``num_envs`` functions, a compiled loop over them: :data:`compiled`)
run the same source here; the model is described in :mod:`faas_gym.backends.sim`. The functions below are
written with ``where(c, a, b)``; :data:`scalar` holds the same functions compiled from the same
source with every ``where(c, a, b)`` turned into ``(a if c else b)`` (an AST rewrite at import: only
the branch taken is evaluated). Each function also takes an
``ops`` object (:class:`ScalarOps`) for rounding, counting, Erlang C and the SLO tail.

:data:`compiled` holds a third variant of the same source for the native vector env's per-sub-env
loop: the same ``where`` -> ``IfExp`` rewrite, ``ops.NAME`` replaced by compiled scalar operations
(:data:`COMPILED_OPS`: Erlang C by the recursion without a memo, :func:`slo_tail_scalar` with a
compiled bisect), compiled with numba (no fastmath; interpreted where numba is missing or
``NUMBA_DISABLE_JIT=1``). Both variants compute the selected value by the same floating-point
operations in the same order, so a sub-env of the vector env reproduces the single env bit for bit
(tested).
"""

from __future__ import annotations

import ast
import bisect
import collections
import inspect
import math
import types
from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np

from lwmecps_gym.core import compiled as core_compiled

_exp = math.exp
bisect_left = bisect.bisect_left  # a loop in the compiled variants (:data:`compiled`)

#: Entries each memo holds before it is cleared (see :data:`faas_gym.backends.sim.MEMO_MAX_ENTRIES`).
MEMO_MAX_ENTRIES = 4096


@dataclass(frozen=True)
class FluidParams:
    """Constants of one simulated function for the fluid model (times in s).

    Attributes:
        mu: service rate of one slot, 1/E[S] (1/s).
        mean_s: mean service time E[S].
        ac: Allen-Cunneen factor ``(1 + SCV_S) / 2``.
        slo_s: response-time objective.
        sq: 16 mid-point service-time quantiles, ascending (tuple of float).
        p_svc_over_slo: fraction of ``sq`` above ``slo_s``.
        qcap: queue capacity (requests).
        memory_idle_mb, memory_per_request_mb, memory_limit_mb: memory model (MB).
    """

    mu: float
    mean_s: float
    ac: float
    slo_s: float
    sq: tuple
    p_svc_over_slo: float
    qcap: int
    memory_idle_mb: float
    memory_per_request_mb: float
    memory_limit_mb: float

    @classmethod
    def from_config(cls, cfg: Any) -> FluidParams:
        """From a :class:`~faas_gym.backends.sim.SimConfig`."""
        svc = cfg.service_time
        sq = tuple(float(v) for v in svc.quantiles(16))
        slo_s = cfg.slo_ms / 1000.0
        return cls(
            mu=1.0 / svc.mean_s,
            mean_s=svc.mean_s,
            ac=(1.0 + svc.scv) / 2.0,
            slo_s=slo_s,
            sq=sq,
            p_svc_over_slo=sum(1 for v in sq if v > slo_s) / len(sq),
            qcap=cfg.queue_capacity,
            memory_idle_mb=cfg.memory_idle_mb,
            memory_per_request_mb=cfg.memory_per_request_mb,
            memory_limit_mb=cfg.memory_limit_mb,
        )


def _erlang_c_from_b_scalar(b: float, n: int, a: float) -> float:
    """:func:`~lwmecps_gym.core.queueing.erlang_c` for ``n`` servers from Erlang B ``b = B(n, a)``."""
    if n <= 0 or a >= n:
        return 1.0
    if a <= 0.0:
        return 0.0
    return b / (1.0 - a / n * (1.0 - b))


def slo_tail_scalar(mask, pw, wq, x0, sq):
    """``mean_j P(S_j + W > slo)`` with ``P(W > x) = pw exp(-theta x)``, ``theta = pw / wq``
    (quantiles ``>= x0`` always violate); terms summed from the largest quantile below ``x0``
    downwards, stopping after the first term < 1e-12 (they shrink as ``j`` falls). One env's
    evaluation (:meth:`ScalarOps.slo_tail`; compiled in :data:`compiled`)."""
    if not mask:
        return 0.0
    theta = pw / wq
    k = bisect_left(sq, x0)  # quantiles >= x0 violate whatever the wait
    acc = float(len(sq) - k)
    for j in range(k - 1, -1, -1):  # the rest need a wait > x0 - s_j; terms shrink as j falls
        term = pw * math.exp(-theta * (x0 - sq[j]))
        acc += term
        if term < 1e-12:
            break
    return acc / len(sq)


def erlang_c_direct(mask, c, a):
    """:meth:`ScalarOps.erlang_c` without its memo (the Erlang B recursion from ``B(0) = 1`` up to
    ``floor(c) + 1`` servers each call: the same operations, so the same numbers); the compiled
    kernel's Erlang C."""
    if not mask:
        return 0.0
    lo = int(c)
    frac = c - lo
    top = lo + 1 if frac > 1e-12 else lo
    b = 1.0
    b_lo = 1.0
    for k in range(1, top + 1):  # B(k) = a B(k-1) / (k + a B(k-1))
        b = a * b / (k + a * b)
        if k == lo:
            b_lo = b
    c_lo = _erlang_c_from_b_scalar(b_lo, lo, a)
    if frac <= 1e-12:
        return c_lo
    return c_lo + frac * (_erlang_c_from_b_scalar(b, lo + 1, a) - c_lo)


class ScalarOps:
    """Operations on Python floats (one env).

    Erlang C comes from Erlang B rows kept per offered load ``a`` (``B(k, a)`` for ``k = 0, 1, ...``
    by the recursion of :func:`lwmecps_gym.core.queueing.erlang_b`, extended on demand), so a load
    seen once serves every server count: the same numbers
    as :func:`~lwmecps_gym.core.queueing.erlang_c`. At most ``MEMO_MAX_ENTRIES`` rows (``array('d')``,
    ~2 MB at 64 servers; a bursty day workload sees a few thousand loads).
    """

    def __init__(self):
        self._b_rows: dict[float, array] = {}

    @staticmethod
    def rint(x) -> int:
        return int(round(x))

    @staticmethod
    def count_le(sq, x) -> int:
        """Number of ``sq`` values <= ``x``."""
        return bisect.bisect_right(sq, x)

    sin = staticmethod(math.sin)
    cos = staticmethod(math.cos)

    def erlang_c(self, mask, c, a):
        """Erlang C interpolated at ``c`` servers, offered load ``a`` (0.0 where ``mask`` is false):
        linear between ``floor(c)`` and ``floor(c) + 1`` servers."""
        if not mask:
            return 0.0
        lo = int(c)
        frac = c - lo
        row = self._b_rows.get(a)
        if row is None:
            if len(self._b_rows) >= MEMO_MAX_ENTRIES:
                self._b_rows.clear()
            row = self._b_rows[a] = array("d", (1.0,))
        top = lo + 1 if frac > 1e-12 else lo
        k = len(row)
        if k <= top:
            b = row[-1]
            while k <= top:  # B(k) = a B(k-1) / (k + a B(k-1))
                b = a * b / (k + a * b)
                row.append(b)
                k += 1
        c_lo = _erlang_c_from_b_scalar(row[lo], lo, a)
        if frac <= 1e-12:
            return c_lo
        return c_lo + frac * (_erlang_c_from_b_scalar(row[lo + 1], lo + 1, a) - c_lo)

    slo_tail = staticmethod(slo_tail_scalar)


where = np.where  # the plain meaning of ``where`` in the source below (the variants rewrite it)


def fluid_window(q0, wait_area, slot_s, arrived, mean_count, dt, p: FluidParams, ops):
    """One fluid-model window (module docstring of :mod:`faas_gym.backends.sim`).

    Args:
        q0: fluid backlog at the start (requests, float).
        wait_area: its accumulated waiting area (request-seconds).
        slot_s: ready slot-seconds in the window.
        arrived: arrivals in the window (int).
        mean_count: their expected number, or a negative value if the workload cannot say.
        dt: window length, s (a Python float).
        p: the function's :class:`FluidParams`.
        ops: a :class:`ScalarOps` instance (the compiled variant uses :data:`COMPILED_OPS` instead).

    Returns:
        ``(q1, wait_area1, dropped, busy_s, resp_s, slo_violation_rate, lq)``: backlog at the end,
        its waiting area, drops (int), busy slot-seconds, mean response time of the completed
        requests (s), SLO-violation rate, stationary queue length.
    """
    # (expressions that only one branch needs sit inside the ``where``: the scalar variant then
    # evaluates them only on that branch)
    mu = p.mu
    c = slot_s / dt  # time-averaged servers
    lam = arrived / dt
    lam_stat = where(mean_count >= 0.0, mean_count / dt, lam)  # expected rate when the workload knows it
    cap = c * mu  # completions per second at full load
    has_cap = cap > 0.0
    # drift of the fluid backlog: the expected rate when known (its Poisson noise is Erlang C's)
    net = lam_stat - cap
    over = net >= 0.0
    # overloaded: the backlog grows by the arrivals beyond capacity; stable: it drains at -net
    q1_over = where(over, q0 + (lam - cap) * dt, 0.0)
    grows = q1_over > 0.0
    drain = where(over, 0.0, q0 / where(over, 1.0, -net))
    long = drain >= dt
    stationary = has_cap & (net < 0.0) & (drain < dt)
    pw = where(stationary, ops.erlang_c(stationary, c, lam_stat / mu), 0.0)
    wq = where(stationary, pw / where(stationary, -(lam_stat - cap), 1.0) * p.ac, 0.0)
    q1 = where(over, where(grows, q1_over, 0.0), where(long, q0 + net * dt, 0.0))
    q_avg = where(over, 0.5 * (q0 + q1), where(long, 0.5 * (q0 + q1), 0.5 * q0 * drain / dt))
    busy_s = where(
        over,
        where(grows, slot_s, where((q0 + arrived) / mu > slot_s, slot_s, (q0 + arrived) / mu)),
        where(
            long,
            slot_s,
            where(c * drain + (lam / mu) * (dt - drain) > slot_s, slot_s, c * drain + (lam / mu) * (dt - drain)),
        ),
    )
    # fluid wait: the backlog's waiting area is released to the requests that leave it, in proportion
    pool = wait_area + q_avg * dt
    through = q0 + arrived
    served_frac = where(through > 0.0, (through - q1) / where(through > 0.0, through, 1.0), 1.0)
    released = pool * served_frac
    wait_area1 = pool - released
    served = through - q1
    d = where(served > 0.0, released / where(served > 0.0, served, 1.0), 0.0)
    resp = p.mean_s + d + wq
    x0 = p.slo_s - d
    tail = (pw > 1e-4) & (wq > 0.0)  # below 1e-4 the waiting tail changes the rate by < 1e-4
    n_q = len(p.sq)
    viol = where(
        tail,
        ops.slo_tail(tail, pw, where(tail, wq, 1.0), x0, p.sq),
        where(d > 0.0, (n_q - ops.count_le(p.sq, x0)) / n_q, p.p_svc_over_slo),
    )
    lq = where((pw > 0.0) & (q1 == 0.0), wq * lam, 0.0)  # Little's law for the stationary queue
    # no ready capacity at all: everything waits
    q1 = where(has_cap, q1, q0 + arrived)
    busy_s = where(has_cap, busy_s, 0.0)
    wait_area1 = where(has_cap, wait_area1, wait_area + 0.5 * (q0 + q1) * dt)
    resp = where(has_cap, resp, 0.0)
    viol = where(has_cap, viol, 0.0)
    lq = where(has_cap, lq, 0.0)
    # drops beyond the queue capacity take their share of the age
    qcap = p.qcap
    excess = q1 > qcap
    dropped = where(excess, ops.rint(q1 - qcap), 0)
    wait_area1 = where(excess, wait_area1 * (qcap / where(excess, q1, 1.0)), wait_area1)
    q1 = where(excess, float(qcap), q1)
    return q1, wait_area1, dropped, busy_s, resp, viol, lq


def window_counts(q1, lq, busy_s, slot_s, dt, in_system, arrived, dropped, resp, viol, ops):
    """Integer request counts of a fluid window that conserve requests exactly.

    Returns:
        ``(completed, in_system_end, queue, resp_sum_s, slo_violation_rate)``: completions (int),
        requests in the system at the end (int), waiting ones (int, <= in_system_end), summed response
        time of the completions (s), and the violation rate (0.0 when nothing completed).
    """
    busy_end = where(q1 == 0.0, busy_s / dt, slot_s / dt)
    queue = ops.rint(q1 + lq)
    in_end = queue + ops.rint(busy_end)
    completed = in_system + arrived - dropped - in_end
    neg = completed < 0
    in_end = where(neg, in_system + arrived - dropped, in_end)
    completed = where(neg, 0, completed)
    # no completions -> no response time and no violations measured in this window
    resp_sum = resp * completed
    viol_out = where(completed != 0, viol, 0.0)
    queue = where(queue < in_end, queue, in_end)
    return completed, in_end, queue, resp_sum, viol_out


def window_metrics(n_ready, busy_s, ready_slot_s, dt, arrived, completed, resp_sum_s, p: FluidParams, ops):
    """Utilisations, response time and rates of a window (fluid model and DES alike).

    Returns:
        ``(cpu_utilization, memory_utilization, response_time_ms, request_rate_rps, throughput_rps)``.
    """
    cpu = busy_s / where(ready_slot_s > 0, ready_slot_s, 1.0)
    cpu = where(ready_slot_s > 0, cpu, 0.0)
    cpu = where(cpu > 1.0, 1.0, cpu)
    busy_avg = busy_s / dt
    ready = n_ready > 0
    nr = where(ready, n_ready, 1)
    mem = (nr * p.memory_idle_mb + busy_avg * p.memory_per_request_mb) / (nr * p.memory_limit_mb)
    mem = where(mem > 1.0, 1.0, mem)
    mem = where(ready, mem, 0.0)
    done = completed != 0
    resp_ms = where(done, resp_sum_s * 1000.0 / where(done, completed, 1), 0.0)
    return cpu, mem, resp_ms, arrived / dt, completed / dt


class _WhereToIfExp(ast.NodeTransformer):
    def visit_Call(self, node):
        self.generic_visit(node)
        if isinstance(node.func, ast.Name) and node.func.id == "where" and len(node.args) == 3 and not node.keywords:
            test, body, orelse = node.args
            return ast.copy_location(ast.IfExp(test=test, body=body, orelse=orelse), node)
        return node


def _scalar_where(cond, a, b):
    return a if cond else b


def scalar_variant(fn):
    """``fn`` recompiled from its source with ``where(c, a, b)`` -> ``(a if c else b)``; without the
    source (a bytecode-only install) the same code with an eager scalar ``where`` (denominators of
    untaken branches are guarded, so this is only slower)."""
    try:
        lines, first = inspect.getsourcelines(fn)
    except (OSError, TypeError):
        out = types.FunctionType(fn.__code__, {**fn.__globals__, "where": _scalar_where}, fn.__name__)
    else:
        tree = _WhereToIfExp().visit(ast.parse("".join(lines)))
        ast.increment_lineno(tree, first - 1)
        ns: dict[str, Any] = {}
        exec(compile(ast.fix_missing_locations(tree), inspect.getsourcefile(fn) or "<fluid>", "exec"), fn.__globals__, ns)
        out = ns[fn.__name__]
    out.__doc__ = f"Python-float variant of :func:`{fn.__name__}` (same source). " + (fn.__doc__ or "")
    return out


#: The Python-float variants of :func:`fluid_window`, :func:`window_counts` and
#: :func:`window_metrics` (use with a :class:`ScalarOps`).
scalar = types.SimpleNamespace(
    fluid_window=scalar_variant(fluid_window),
    window_counts=scalar_variant(window_counts),
    window_metrics=scalar_variant(window_metrics),
)


# --------------------------------------------------------------------------- compiled variants
COMPILED = core_compiled.COMPILED


def jit(fn=None, *, cache=False, inline=False):
    """:func:`lwmecps_gym.core.compiled.jit` (numba, or ``fn`` itself without it), here not cached on
    disk by default: these functions call other modules' compiled code, which numba's cache does not
    track. Usable as ``@jit``, ``@jit(cache=True)`` or ``@jit(inline=True)`` (inlined into compiled callers)."""
    return core_compiled.jit(fn, cache=cache, inline=inline)


class _OpsToGlobals(ast.NodeTransformer):
    def visit_Call(self, node):
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "ops":
            node.func = ast.copy_location(ast.Name(id="_ops_" + f.attr, ctx=ast.Load()), f)
            node.args = [ast.Name(id="ops", ctx=ast.Load()), *node.args]
        return node


def compiled_variant(fn, names: dict[str, Any] | None = None):
    """``fn`` recompiled from its source for numba: ``where(c, a, b)`` -> ``(a if c else b)`` (as
    :func:`scalar_variant`), ``ops.NAME(...)`` -> ``_ops_NAME(ops, ...)``, the compiled scalar operations
    below (:data:`COMPILED_OPS`; ``ops`` is then an :func:`erlang_memo`, which only Erlang C uses),
    other globals overridden by ``names``; then jitted (:func:`jit`, inlined into its compiled callers:
    the vector env's loop calls these per sub-env; interpreted where numba is missing or
    ``NUMBA_DISABLE_JIT=1``). ``p`` must be a :func:`compiled_params` tuple."""
    lines, first = inspect.getsourcelines(fn)
    tree = _OpsToGlobals().visit(_WhereToIfExp().visit(ast.parse("".join(lines))))
    ast.increment_lineno(tree, first - 1)
    glb = {**fn.__globals__, **COMPILED_OPS, **(names or {})}
    ns: dict[str, Any] = {}
    exec(compile(ast.fix_missing_locations(tree), inspect.getsourcefile(fn) or "<fluid>", "exec"), glb, ns)
    out = ns[fn.__name__]
    out.__doc__ = f"Compiled variant of :func:`{fn.__name__}` (same source). " + (fn.__doc__ or "")
    return jit(out, inline=True)


def _bisect_left(sq, x):
    """``bisect.bisect_left`` over a sorted array (a loop numba compiles)."""
    lo, hi = 0, len(sq)
    while lo < hi:
        mid = (lo + hi) // 2
        if sq[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _bisect_right(sq, x):
    """``bisect.bisect_right`` over a sorted array (a loop numba compiles)."""
    lo, hi = 0, len(sq)
    while lo < hi:
        mid = (lo + hi) // 2
        if x < sq[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _rint(x):
    """``int(round(x))`` (round half to even) for the compiled variants."""
    return int(np.rint(x))


bisect_left_compiled = jit(_bisect_left)
bisect_right_compiled = jit(_bisect_right)
_erlang_c_from_b_compiled = jit(_erlang_c_from_b_scalar)
_rint_compiled = jit(_rint)
#: The compiled scalar operations :func:`compiled_variant` substitutes for ``ops.NAME(...)`` (key
#: ``"_ops_NAME"``, called with ``ops`` first; filled below).
COMPILED_OPS: dict[str, Any] = {}
#: :func:`erlang_c_direct` compiled (no memo).
erlang_c_direct_compiled = compiled_variant(erlang_c_direct, {"_erlang_c_from_b_scalar": _erlang_c_from_b_compiled})
#: :func:`slo_tail_scalar` compiled (with a compiled bisect).
slo_tail_compiled = compiled_variant(slo_tail_scalar, {"bisect_left": bisect_left_compiled})

#: Slots of an :func:`erlang_memo` (a prime: a load's slot is ``int(a * 2**20) % ERLANG_MEMO_SLOTS``).
ERLANG_MEMO_SLOTS = 2039


def erlang_memo(max_servers: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An empty memo of Erlang B rows for :func:`erlang_c_memo` (the ``ops`` of the compiled variants):
    ``(loads float64 (S,), row lengths int64 (S,), rows float64 (S, max_servers + 2))``, ``S`` =
    :data:`ERLANG_MEMO_SLOTS` direct-mapped slots keyed by the offered load (~1 MB at 64 servers)."""
    return (np.full(ERLANG_MEMO_SLOTS, np.nan), np.zeros(ERLANG_MEMO_SLOTS, dtype=np.int64),
            np.empty((ERLANG_MEMO_SLOTS, max_servers + 2)))


@jit
def erlang_c_memo(memo, mask, c, a):
    """:meth:`ScalarOps.erlang_c` on an :func:`erlang_memo`: the row of Erlang B values ``B(k, a)``
    (the same recursion, extended on demand) kept in the slot of ``a`` (a load that meets another's
    slot replaces it; rows longer than the memo's fall back to :func:`erlang_c_direct`). The same
    numbers as :func:`erlang_c_direct` (tested)."""
    if not mask:
        return 0.0
    loads, lens, rows = memo
    lo = int(c)
    frac = c - lo
    top = lo + 1 if frac > 1e-12 else lo
    if top + 1 > rows.shape[1] or not (0.0 <= a < 1e9):
        return erlang_c_direct_compiled(mask, c, a)
    h = int(a * 1048576.0) % rows.shape[0]
    if loads[h] != a:
        loads[h] = a
        rows[h, 0] = 1.0
        lens[h] = 1
    k = lens[h]
    if k <= top:
        b = rows[h, k - 1]
        while k <= top:  # B(k) = a B(k-1) / (k + a B(k-1))
            b = a * b / (k + a * b)
            rows[h, k] = b
            k += 1
        lens[h] = k
    c_lo = _erlang_c_from_b_compiled(rows[h, lo], lo, a)
    if frac <= 1e-12:
        return c_lo
    return c_lo + frac * (_erlang_c_from_b_compiled(rows[h, lo + 1], lo + 1, a) - c_lo)


COMPILED_OPS.update({
    "_ops_rint": jit(lambda ops, x: _rint_compiled(x)),
    "_ops_count_le": jit(lambda ops, sq, x: bisect_right_compiled(sq, x)),
    "_ops_sin": jit(lambda ops, x: math.sin(x)),
    "_ops_cos": jit(lambda ops, x: math.cos(x)),
    "_ops_erlang_c": erlang_c_memo,
    "_ops_slo_tail": jit(lambda ops, mask, pw, wq, x0, sq: slo_tail_compiled(mask, pw, wq, x0, sq)),
})

_ParamsTuple = collections.namedtuple("_ParamsTuple", tuple(FluidParams.__dataclass_fields__))


def compiled_params(p: FluidParams):
    """``p`` as a named tuple numba accepts (``sq`` a float64 array)."""
    return _ParamsTuple(**{k: (np.asarray(v, dtype=np.float64) if k == "sq" else v) for k, v in p.__dict__.items()})


#: numba-compiled variants of :func:`fluid_window`, :func:`window_counts` and :func:`window_metrics`
#: (same source; scalars; ``p`` from :func:`compiled_params`, ``ops`` an :func:`erlang_memo`): the
#: vector env's kernel.
compiled = types.SimpleNamespace(
    fluid_window=compiled_variant(fluid_window),
    window_counts=compiled_variant(window_counts),
    window_metrics=compiled_variant(window_metrics),
)
