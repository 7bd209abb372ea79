"""numpy's ``PCG64`` bit generator and the draws the envs' streams make, as compiled scalar functions.

The native vector envs (:mod:`faas_gym.vector`, :mod:`lwmecps_gym.envs.vector`) keep one stream per
sub-env and must reproduce the single env's numpy draws bit for bit without a Python call per sub-env.
This module (the library's one copy of it) re-states, for numba, the algorithms numpy documents for
the generator those streams use:

* ``PCG64`` (O'Neill 2014; numpy's default bit generator): a 128-bit LCG, state ``s <- s * M + inc``
  with ``M = 0x2360ED051FC65DA44385DF649FCCF645``, output XSL-RR of the NEW state
  (``rotr64(hi ^ lo, hi >> 58)``); ``next_uint32`` returns the low half of a 64-bit output and keeps
  the high half for the next call (numpy's ``has_uint32`` / ``uinteger`` buffer);
* ``Generator.random()``: ``(next_uint64 >> 11) * 2**-53``;
* ``Generator.integers(0, k)`` (int64): Lemire's nearly-divisionless rejection (Lemire 2019) on
  ``next_uint32`` for ``k <= 2**32``, on ``next_uint64`` (a 128-bit product) above; scalar and array
  calls draw alike, one value after another;
* ``Generator.binomial(n, p)`` (:func:`binomial`): numpy's choice between inversion (``n min(p, 1 - p)
  <= 30``) and BTPE (Kachitvichyanukul & Schmeiser 1988) with numpy's constants, operations and
  order of uniform draws; only where :data:`BINOMIAL` (numpy < 2.5: numpy 2.5 changed BTPE's
  Stirling correction; elsewhere callers use numpy's);
* SplitMix64 seeding of :func:`faas_gym.backends.sim.seed_pcg64_pair`.

State of one generator: a row of a ``uint64`` array, :data:`STATE_WIDTH` wide (``state_hi, state_lo,
inc_hi, inc_lo, has_uint32, uinteger``); :func:`get_state` / :func:`set_state` convert from / to a
:class:`numpy.random.PCG64`. tests/faas/test_compiled_streams.py checks every function against numpy.

Needs numba (:data:`AVAILABLE`); without it (or with ``NUMBA_DISABLE_JIT=1``) callers use numpy's own
generators instead (the same numbers, slower).
"""

from __future__ import annotations

import math

import numpy as np

from lwmecps_gym.core.compiled import JIT_ENABLED, jit

#: The compiled draws exist (numba installed and not disabled: they need a numba intrinsic).
AVAILABLE = JIT_ENABLED
if AVAILABLE:
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

#: Columns of a state row.
STATE_WIDTH = 6
#: Whether :func:`binomial` reproduces this numpy's ``Generator.binomial`` (the form numpy < 2.5 uses).
BINOMIAL = AVAILABLE and np.lib.NumpyVersion(np.__version__) < "2.5.0"
_MASK64 = (1 << 64) - 1

if AVAILABLE:
    _jit = jit

    @intrinsic
    def _mul128(typingctx, a, b):
        """``(hi, lo)`` of the 128-bit product of two ``uint64``."""
        sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

        def codegen(context, builder, signature, args):
            i128 = ir.IntType(128)
            p = builder.mul(builder.zext(args[0], i128), builder.zext(args[1], i128))
            lo = builder.trunc(p, ir.IntType(64))
            hi = builder.trunc(builder.lshr(p, ir.Constant(i128, 64)), ir.IntType(64))
            return context.make_tuple(builder, signature.return_type, [hi, lo])

        return sig, codegen

    _M_HI = np.uint64(0x2360ED051FC65DA4)
    _M_LO = np.uint64(0x4385DF649FCCF645)
    _U0 = np.uint64(0)
    _U1 = np.uint64(1)
    _U11 = np.uint64(11)
    _U32 = np.uint64(32)
    _U58 = np.uint64(58)
    _U63 = np.uint64(63)
    _U64 = np.uint64(64)
    _LOW32 = np.uint64(0xFFFFFFFF)
    _ALL64 = np.uint64(0xFFFFFFFFFFFFFFFF)
    _GOLDEN = np.uint64(0x9E3779B97F4A7C15)
    _SM1 = np.uint64(0xBF58476D1CE4E5B9)
    _SM2 = np.uint64(0x94D049BB133111EB)
    _U30 = np.uint64(30)
    _U27 = np.uint64(27)
    _U31 = np.uint64(31)

    # The draws on a state held as a tuple ``(state_hi, state_lo, inc_hi, inc_lo, has_uint32, uinteger)``
    # of uint64 (kept in registers inside a loop: load it with :func:`load`, store it back with
    # :func:`store`), and the same on a row of a state array.

    @_jit
    def load(st, i):
        """Row ``i`` of ``st`` as a state tuple."""
        return (st[i, 0], st[i, 1], st[i, 2], st[i, 3], st[i, 4], st[i, 5])

    @_jit
    def store(st, i, s):
        """Write state tuple ``s`` into row ``i`` of ``st``."""
        st[i, 0] = s[0]
        st[i, 1] = s[1]
        st[i, 2] = s[2]
        st[i, 3] = s[3]
        st[i, 4] = s[4]
        st[i, 5] = s[5]

    @_jit
    def lcg_step(hi, lo, ihi, ilo):
        """The state transition ``s <- s * M + inc`` of the 128-bit state ``(hi, lo)`` with increment
        ``(ihi, ilo)``: the new ``(hi, lo)``."""
        ph, pl = _mul128(lo, _M_LO)
        nh = ph + hi * _M_LO + lo * _M_HI
        nl = pl + ilo
        return nh + ihi + (_U1 if nl < pl else _U0), nl

    @_jit
    def output(hi, lo):
        """The 64-bit output of state ``(hi, lo)``: XSL-RR, ``rotr64(hi ^ lo, hi >> 58)``."""
        x = hi ^ lo
        rot = hi >> _U58
        return (x >> rot) | (x << ((_U64 - rot) & _U63))

    @_jit
    def to_double(v):
        """``Generator.random()`` of a 64-bit output: ``(v >> 11) * 2**-53``."""
        return float(v >> _U11) * (1.0 / 9007199254740992.0)

    @_jit
    def next64(s):
        """``(new state, next 64-bit output)`` (numpy's ``pcg64_next64``)."""
        hi, lo, ihi, ilo, has, buf = s
        nh, nl = lcg_step(hi, lo, ihi, ilo)
        return (nh, nl, ihi, ilo, has, buf), output(nh, nl)

    @_jit
    def next32(s):
        """``(new state, next 32-bit output)`` (numpy's ``pcg64_next32``: the low half of a 64-bit
        output; the high half is kept for the next call)."""
        if s[4] != _U0:
            return (s[0], s[1], s[2], s[3], _U0, s[5]), s[5]
        s, v = next64(s)
        return (s[0], s[1], s[2], s[3], _U1, v >> _U32), v & _LOW32

    @_jit
    def random(s):
        """``(new state, Generator.random())``: a float64 in ``[0, 1)``."""
        s, v = next64(s)
        return s, to_double(v)

    @_jit
    def bounded32(s, k):
        """``(new state, Generator.integers(0, k))`` for ``1 <= k <= 2**32 - 1`` (int64 value)."""
        rng = np.uint64(k - 1)
        excl = rng + _U1
        s, u = next32(s)
        m = u * excl
        left = m & _LOW32
        if left < excl:
            threshold = (_LOW32 - rng) % excl
            while left < threshold:
                s, u = next32(s)
                m = u * excl
                left = m & _LOW32
        return s, np.int64(m >> _U32)

    @_jit
    def bounded64(s, k):
        """``(new state, Generator.integers(0, k))`` for ``2**32 < k < 2**63`` (int64 value)."""
        rng = np.uint64(k - 1)
        excl = rng + _U1
        s, u = next64(s)
        hi, lo = _mul128(u, excl)
        if lo < excl:
            threshold = (_ALL64 - rng) % excl
            while lo < threshold:
                s, u = next64(s)
                hi, lo = _mul128(u, excl)
        return s, np.int64(hi)

    @_jit
    def _binomial_inversion(s, n, p):
        q = 1.0 - p
        qn = math.exp(n * math.log(q))
        npq = n * p
        bound = min(n, npq + 10.0 * math.sqrt(npq * q + 1))
        x = 0
        px = qn
        s, u = random(s)
        while u > px:
            x += 1
            if x > bound:
                x = 0
                px = qn
                s, u = random(s)
            else:
                u -= px
                px = ((n - x + 1) * p * px) / (x * q)
        return s, x

    @_jit
    def _binomial_btpe(s, n, p):
        r = min(p, 1.0 - p)
        q = 1.0 - r
        fm = n * r + r
        m = int(math.floor(fm))
        p1 = math.floor(2.195 * math.sqrt(n * r * q) - 4.6 * q) + 0.5
        xm = m + 0.5
        xl = xm - p1
        xr = xm + p1
        c = 0.134 + 20.5 / (15.3 + m)
        a = (fm - xl) / (fm - xl * r)
        laml = a * (1.0 + a / 2.0)
        a = (xr - fm) / (xr * q)
        lamr = a * (1.0 + a / 2.0)
        p2 = p1 * (1.0 + 2.0 * c)
        p3 = p2 + c / laml
        p4 = p3 + c / lamr
        nrq = n * r * q
        while True:  # one candidate per pass (numpy's Step10); ``continue`` rejects it
            s, u = random(s)
            u = u * p4
            s, v = random(s)
            if u <= p1:  # triangular region: accepted at once
                y = int(math.floor(xm - p1 * v + u))
                break
            if u <= p2:  # parallelograms
                x = xl + (u - p1) / c
                v = v * c + 1.0 - math.fabs(m - x + 0.5) / p1
                if v > 1.0:
                    continue
                y = int(math.floor(x))
            elif u <= p3:  # left exponential tail
                y = int(math.floor(xl + math.log(v) / laml))
                if y < 0 or v == 0.0:
                    continue
                v = v * (u - p2) * laml
            else:  # right exponential tail
                y = int(math.floor(xr - math.log(v) / lamr))
                if y > n or v == 0.0:
                    continue
                v = v * (u - p3) * lamr
            k = abs(y - m)
            if not (k > 20 and k < nrq / 2.0 - 1):  # explicit evaluation of f(y) / f(m)
                sr = r / q
                a = sr * (n + 1)
                f = 1.0
                if m < y:
                    for i in range(m + 1, y + 1):
                        f = f * (a / i - sr)
                elif m > y:
                    for i in range(y + 1, m + 1):
                        f = f / (a / i - sr)
                if v > f:
                    continue
                break
            # squeeze on log f(y) / f(m), then the Stirling bound (numpy < 2.5's constants)
            rho = (k / nrq) * ((k * (k / 3.0 + 0.625) + 0.16666666666666666) / nrq + 0.5)
            t = -k * k / (2 * nrq)
            aa = math.log(v)
            if aa < t - rho:
                break
            if aa > t + rho:
                continue
            x1 = float(y + 1)
            f1 = float(m + 1)
            z = float(n + 1 - m)
            w = float(n - y + 1)
            x2 = x1 * x1
            f2 = f1 * f1
            z2 = z * z
            w2 = w * w
            bound = (xm * math.log(f1 / x1) + (n - m + 0.5) * math.log(z / w) + (y - m) * math.log(w * r / (x1 * q))
                     + (13680. - (462. - (132. - (99. - 140. / f2) / f2) / f2) / f2) / f1 / 166320.
                     + (13680. - (462. - (132. - (99. - 140. / z2) / z2) / z2) / z2) / z / 166320.
                     + (13680. - (462. - (132. - (99. - 140. / x2) / x2) / x2) / x2) / x1 / 166320.
                     + (13680. - (462. - (132. - (99. - 140. / w2) / w2) / w2) / w2) / w / 166320.)
            if aa > bound:
                continue
            break
        if p > 0.5:
            y = n - y
        return s, y

    @_jit
    def binomial(s, n, p):
        """``(new state, Generator.binomial(n, p))`` for ``n >= 0``, ``0 <= p <= 1`` (see :data:`BINOMIAL`)."""
        if n == 0 or p == 0.0:
            return s, 0
        if p <= 0.5:
            if p * n <= 30.0:
                return _binomial_inversion(s, n, p)
            return _binomial_btpe(s, n, p)
        q = 1.0 - p
        if q * n <= 30.0:
            s, x = _binomial_inversion(s, n, q)
        else:
            s, x = _binomial_btpe(s, n, q)
        return s, n - x

    @_jit
    def next_uint64(st, i):
        """:func:`next64` on row ``i`` of ``st``."""
        s, v = next64(load(st, i))
        store(st, i, s)
        return v

    @_jit
    def next_uint32(st, i):
        """:func:`next32` on row ``i`` of ``st``."""
        s, v = next32(load(st, i))
        store(st, i, s)
        return v

    @_jit
    def next_double(st, i):
        """:func:`random` on row ``i`` of ``st``."""
        s, v = random(load(st, i))
        store(st, i, s)
        return v

    @_jit
    def integers32(st, i, k):
        """:func:`bounded32` on row ``i`` of ``st``."""
        s, v = bounded32(load(st, i), k)
        store(st, i, s)
        return v

    @_jit
    def integers64(st, i, k):
        """:func:`bounded64` on row ``i`` of ``st``."""
        s, v = bounded64(load(st, i), k)
        store(st, i, s)
        return v

    @_jit
    def seed_splitmix(st, i, seed):
        """Row ``i`` of ``st`` <- the workload generator of :func:`faas_gym.backends.sim.seed_pcg64_pair`
        (``seed`` a non-negative int64): state and increment from four SplitMix64 outputs."""
        x = np.uint64(seed)
        w0 = _U0
        w1 = _U0
        w2 = _U0
        w3 = _U0
        for j in range(4):
            x = x + _GOLDEN
            z = x
            z = (z ^ (z >> _U30)) * _SM1
            z = (z ^ (z >> _U27)) * _SM2
            z = z ^ (z >> _U31)
            if j == 0:
                w0 = z
            elif j == 1:
                w1 = z
            elif j == 2:
                w2 = z
            else:
                w3 = z
        st[i, 0] = w0
        st[i, 1] = w1
        st[i, 2] = w2
        st[i, 3] = w3 | _U1
        st[i, 4] = _U0
        st[i, 5] = _U0


def get_state(bitgen: np.random.PCG64, out: np.ndarray, i: int) -> None:
    """Copy ``bitgen``'s state into row ``i`` of ``out`` (``uint64``, :data:`STATE_WIDTH` columns)."""
    s = bitgen.state
    state, inc = s["state"]["state"], s["state"]["inc"]
    out[i] = (state >> 64, state & _MASK64, inc >> 64, inc & _MASK64, s["has_uint32"], s["uinteger"])


def set_state(row: np.ndarray, bitgen: np.random.PCG64) -> None:
    """Set ``bitgen``'s state from a state row (the inverse of :func:`get_state`)."""
    r = [int(v) for v in row]
    bitgen.state = {
        "bit_generator": "PCG64",
        "state": {"state": (r[0] << 64) | r[1], "inc": (r[2] << 64) | r[3]},
        "has_uint32": r[4],
        "uinteger": r[5],
    }


def new_states(n: int) -> np.ndarray:
    """``uint64 (n, STATE_WIDTH)`` zeros: room for ``n`` generators."""
    return np.zeros((n, STATE_WIDTH), dtype=np.uint64)
