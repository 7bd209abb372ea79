"""NumPy's Poisson draws from ``PCG64`` streams, compiled: :func:`poisson_streams`.

An episode's arrivals are ``Generator.poisson`` draws from its workload stream (a
``numpy.random.PCG64``). The native vector env draws the episodes of many sub-envs at once; one
NumPy call per sub-env costs its call overhead and NumPy's per-element dispatch. This module
re-states, for numba, the algorithms NumPy uses, so that one compiled call draws every stream's
counts and leaves each generator where NumPy would have:

* ``PCG64`` (O'Neill, "PCG: A Family of Simple Fast Space-Efficient Statistically Good
  Algorithms for Random Number Generation", 2014; NumPy's default bit generator): a 128-bit
  LCG ``s <- s * 0x2360ED051FC65DA44385DF649FCCF645 + inc`` whose 64-bit output is the XSL-RR
  of the new state, ``rotr64(hi ^ lo, hi >> 58)``; a double is ``(next64 >> 11) * 2**-53``.
* ``Generator.poisson(lam)``: 0 for ``lam == 0``; for ``lam < 10`` the multiplication method
  (count uniforms until their product drops to ``exp(-lam)``); for ``lam >= 10`` the
  transformed rejection with squeeze PTRS (Hormann, "The transformed rejection method for
  generating Poisson random variables", Insurance: Mathematics and Economics 12, 1993), with
  NumPy's constants and its Stirling-series ``loggam``. Array arguments are drawn element after
  element in C order, exactly as sequential scalar draws.

The floating-point operations are NumPy's, in its order, so the counts are equal bit for bit
(``tests/lwmecps/test_vector.py`` checks them against ``Generator.poisson``). :data:`COMPILED`
is false without numba or under ``NUMBA_DISABLE_JIT=1``; callers then use NumPy's own generator
(the same numbers).
"""

from __future__ import annotations

import math

import numpy as np

try:
    from llvmlite import ir
    from numba import config as _config
    from numba import njit, types
    from numba.extending import intrinsic

    COMPILED = not _config.DISABLE_JIT
except ImportError:  # pragma: no cover - exercised only where numba is missing
    COMPILED = False

_MASK64 = (1 << 64) - 1
#: largest mean drawn compiled (NumPy refuses means near 2**63; those go to NumPy)
_LAM_MAX = 1e18

if COMPILED:
    _jit = njit(cache=True, nogil=True, error_model="numpy")
    _M_HI = np.uint64(0x2360ED051FC65DA4)
    _M_LO = np.uint64(0x4385DF649FCCF645)
    _ONE = np.uint64(1)
    _ZERO = np.uint64(0)

    @intrinsic
    def _mul_wide(typingctx, a, b):
        """``(high, low)`` 64-bit halves of the 128-bit product of two ``uint64``."""
        sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64)

        def codegen(context, builder, signature, args):
            wide = ir.IntType(128)
            prod = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
            low = builder.trunc(prod, ir.IntType(64))
            high = builder.trunc(builder.lshr(prod, ir.Constant(wide, 64)), ir.IntType(64))
            return context.make_tuple(builder, signature.return_type, [high, low])

        return sig, codegen

    @njit(inline="always")
    def _next_double(s):
        """Advance PCG64 state ``s`` (``uint64 [state_hi, state_lo, inc_hi, inc_lo]``) and return a double in [0, 1)."""
        carry_hi, lo = _mul_wide(s[1], _M_LO)
        hi = carry_hi + s[0] * _M_LO + s[1] * _M_HI
        lo2 = lo + s[3]
        hi = hi + s[2] + (_ONE if lo2 < lo else _ZERO)
        s[0] = hi
        s[1] = lo2
        x = hi ^ lo2
        r = hi >> np.uint64(58)
        out = (x >> r) | (x << ((np.uint64(64) - r) & np.uint64(63)))
        return np.float64(out >> np.uint64(11)) * (1.0 / 9007199254740992.0)

    @njit(inline="always")
    def _loggam(x):
        """NumPy's ``random_loggam``: log Gamma(x) by the Stirling series (shifted to x >= 7)."""
        if x == 1.0 or x == 2.0:
            return 0.0
        n = int(7 - x) if x < 7.0 else 0
        x0 = x + n
        x2 = (1.0 / x0) * (1.0 / x0)
        gl0 = -1.39243221690590e+00
        gl0 = gl0 * x2 + 1.796443723688307e-01
        gl0 = gl0 * x2 + -2.955065359477124e-02
        gl0 = gl0 * x2 + 6.410256410256410e-03
        gl0 = gl0 * x2 + -1.917526917526918e-03
        gl0 = gl0 * x2 + 8.417508417508418e-04
        gl0 = gl0 * x2 + -5.952380952380952e-04
        gl0 = gl0 * x2 + 7.936507936507937e-04
        gl0 = gl0 * x2 + -2.777777777777778e-03
        gl0 = gl0 * x2 + 8.333333333333333e-02
        gl = gl0 / x0 + 0.5 * 1.8378770664093453e+00 + (x0 - 0.5) * math.log(x0) - x0
        if x < 7.0:
            for _ in range(n):
                gl -= math.log(x0 - 1.0)
                x0 -= 1.0
        return gl

    @njit(inline="always")
    def _poisson(s, lam):
        """One ``Generator.poisson(lam)`` draw from PCG64 state ``s``."""
        if lam >= 10.0:
            slam = math.sqrt(lam)
            loglam = math.log(lam)
            b = 0.931 + 2.53 * slam
            a = -0.059 + 0.02483 * b
            invalpha = 1.1239 + 1.1328 / (b - 3.4)
            vr = 0.9277 - 3.6224 / (b - 2)
            while True:
                U = _next_double(s) - 0.5
                V = _next_double(s)
                us = 0.5 - abs(U)
                k = math.floor((2 * a / us + b) * U + lam + 0.43)
                if us >= 0.07 and V <= vr:
                    return k
                if k < 0 or (us < 0.013 and V > us):
                    continue
                if (math.log(V) + math.log(invalpha) - math.log(a / (us * us) + b)) <= (
                        -lam + k * loglam - _loggam(float(k + 1))):
                    return k
        if lam == 0.0:
            return 0
        enlam = math.exp(-lam)
        count = 0
        prod = 1.0
        while True:
            prod *= _next_double(s)
            if prod > enlam:
                count += 1
            else:
                return count

    @_jit
    def _poisson_streams(states, lam, out):
        T, K, n = lam.shape
        for j in range(K):
            s = states[j]
            for t in range(T):
                for d in range(n):
                    out[t, j, d] = _poisson(s, lam[t, j, d])


def poisson_streams(rngs, lam: np.ndarray, out: np.ndarray) -> None:
    """``out[:, j] = rngs[j].poisson(lam[:, j])`` for every ``j``, in one compiled pass where possible.

    Args:
        rngs: ``K`` :class:`numpy.random.Generator` (``PCG64``) streams; each is left where its own
            ``poisson`` call would leave it.
        lam: ``float64 (T, K, n)`` Poisson means (>= 0, finite).
        out: ``float64 (T, K, n)`` receives the counts.

    Falls back to one ``Generator.poisson`` call per stream (the same numbers, and NumPy's errors
    for bad means) when numba is missing or disabled, a stream's bit generator is not ``PCG64``,
    or a mean is negative, NaN or above ``1e18``.

    Raises:
        ValueError: a mean NumPy refuses (negative, NaN, too large).
    """
    if (not COMPILED or lam.size == 0 or not (lam.min() >= 0.0 and lam.max() <= _LAM_MAX)
            or any(type(r.bit_generator) is not np.random.PCG64 for r in rngs)):
        for j, rng in enumerate(rngs):
            out[:, j] = rng.poisson(lam[:, j])
        return
    states = np.empty((len(rngs), 4), dtype=np.uint64)
    full = []
    for j, rng in enumerate(rngs):
        st = rng.bit_generator.state
        full.append(st)
        s, inc = st["state"]["state"], st["state"]["inc"]
        states[j] = (s >> 64, s & _MASK64, inc >> 64, inc & _MASK64)
    _poisson_streams(states, np.ascontiguousarray(lam, dtype=np.float64), out)
    for j, rng in enumerate(rngs):
        st = full[j]
        st["state"]["state"] = (int(states[j, 0]) << 64) | int(states[j, 1])
        rng.bit_generator.state = st
