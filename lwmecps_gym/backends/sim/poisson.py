"""NumPy's Poisson draws from ``PCG64`` streams, compiled: :func:`poisson_streams`.

An episode's arrivals are ``Generator.poisson`` draws from its workload stream (a
``numpy.random.PCG64``). The native vector env draws the episodes of many sub-envs at once; one
NumPy call per sub-env costs its call overhead and NumPy's per-element dispatch. This module
re-states, for numba, the algorithms NumPy uses, so that one compiled call draws every stream's
counts and leaves each generator where NumPy would have:

* ``PCG64`` (NumPy's default bit generator): the step, output and double conversion of
  :mod:`lwmecps_gym.core.pcg64` (the library's one copy), here on state rows
  ``uint64 [state_hi, state_lo, inc_hi, inc_lo]``.
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

from lwmecps_gym.core import pcg64
from lwmecps_gym.core.compiled import jit

#: The compiled draws exist (numba installed and not disabled; the PCG64 step needs a numba intrinsic).
COMPILED = pcg64.AVAILABLE

_MASK64 = (1 << 64) - 1
#: largest mean drawn compiled (NumPy refuses means near 2**63; those go to NumPy)
_LAM_MAX = 1e18

if COMPILED:
    from numba import njit

    _jit = jit
    _ONE = np.uint64(1)
    _ZERO = np.uint64(0)

    @njit(inline="always")
    def _next_double(s):
        """Advance PCG64 state ``s`` (``uint64 [state_hi, state_lo, inc_hi, inc_lo]``) and return a double
        in [0, 1) (:mod:`lwmecps_gym.core.pcg64`'s step, output and conversion)."""
        hi, lo = pcg64.lcg_step(s[0], s[1], s[2], s[3])
        s[0] = hi
        s[1] = lo
        return pcg64.to_double(pcg64.output(hi, lo))

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


    @_jit
    def _poisson_windows(states, idx, prof, act, rtt, scale, tau, rate_out, lam_out, rtt_out):
        T, K = idx.shape
        n = act.shape[1]
        for j in range(K):  # check every mean first: a refused one leaves every stream untouched
            for t in range(T):
                p = scale * prof[t, j]
                i = idx[t, j]
                for d in range(n):
                    m = p * act[i, d] * tau
                    if not (m >= 0.0 and m <= _LAM_MAX):
                        return False
        for j in range(K):
            s = states[j]
            for t in range(T):
                p = scale * prof[t, j]
                i = idx[t, j]
                for d in range(n):
                    mean = p * act[i, d]
                    rate_out[t, j, d] = mean
                    lam_out[t, j, d] = _poisson(s, mean * tau) / tau
                    rtt_out[t, j, d] = rtt[i, d]
        return True

    # ---- SeedSequence(seed).spawn(C) -> PCG64 states (NumPy's bit_generator.pyx and pcg64.c, restated)
    _M32 = np.uint64(0xFFFFFFFF)
    _INIT_A = np.uint64(0x43B0D7E5)
    _MULT_A = np.uint64(0x931E8875)
    _INIT_B = np.uint64(0x8B51F9DD)
    _MULT_B = np.uint64(0x58F38DED)
    _MIX_L = np.uint64(0xCA01F9DD)
    _MIX_R = np.uint64(0x4973F715)
    _X16 = np.uint64(16)
    _S32 = np.uint64(32)
    _S63 = np.uint64(63)

    @njit(inline="always")
    def _hashmix(value, hc):
        """SeedSequence's ``hashmix`` on 32-bit words held in ``uint64``: ``(value, next hash constant)``."""
        value = value ^ hc
        hc = (hc * _MULT_A) & _M32
        value = (value * hc) & _M32
        return value ^ (value >> _X16), hc

    @njit(inline="always")
    def _mix(x, y):
        r = (_MIX_L * x - _MIX_R * y) & _M32
        return r ^ (r >> _X16)

    @njit(inline="always")
    def _lcg_step(s):
        """One step ``s <- s * M + inc`` of PCG64 state ``s`` (``uint64 [state_hi, state_lo, inc_hi, inc_lo]``)."""
        s[0], s[1] = pcg64.lcg_step(s[0], s[1], s[2], s[3])

    @_jit
    def _spawn_states(seeds, out):
        K, C = out.shape[0], out.shape[1]
        ent = np.zeros(5, dtype=np.uint64)
        pool = np.zeros(4, dtype=np.uint64)
        w = np.zeros(8, dtype=np.uint64)
        for j in range(K):
            # the entropy words of a seed < 2**64, padded with zeros to the pool size (a spawn key follows)
            ent[0] = seeds[j] & _M32
            ent[1] = seeds[j] >> _S32
            for c in range(C):
                ent[4] = np.uint64(c)  # the child's spawn key (c,)
                hc = _INIT_A
                for i in range(4):
                    pool[i], hc = _hashmix(ent[i], hc)
                for i_src in range(4):
                    for i_dst in range(4):
                        if i_src != i_dst:
                            h, hc = _hashmix(pool[i_src], hc)
                            pool[i_dst] = _mix(pool[i_dst], h)
                for i_dst in range(4):
                    h, hc = _hashmix(ent[4], hc)
                    pool[i_dst] = _mix(pool[i_dst], h)
                hb = _INIT_B
                for i in range(8):  # generate_state(4, uint64): 8 words, little-endian pairs
                    v = pool[i & 3] ^ hb
                    hb = (hb * _MULT_B) & _M32
                    v = (v * hb) & _M32
                    w[i] = v ^ (v >> _X16)
                seed_hi = w[0] | (w[1] << _S32)
                seed_lo = w[2] | (w[3] << _S32)
                inc_hi = w[4] | (w[5] << _S32)
                inc_lo = w[6] | (w[7] << _S32)
                s = out[j, c]
                # pcg64_set_seed: state 0, inc = initseq << 1 | 1, step, state += initstate, step
                s[0] = _ZERO
                s[1] = _ZERO
                s[2] = (inc_hi << _ONE) | (inc_lo >> _S63)
                s[3] = (inc_lo << _ONE) | _ONE
                _lcg_step(s)
                lo = s[1] + seed_lo
                s[0] = s[0] + seed_hi + (_ONE if lo < seed_lo else _ZERO)
                s[1] = lo
                _lcg_step(s)

    @_jit
    def _uniform_states(states, scale, out):
        for j in range(states.shape[0]):
            out[j] = 0.0 + scale * _next_double(states[j])


def spawned_states(seeds, n_children: int) -> np.ndarray:
    """PCG64 states of ``Generator(PCG64(c)) for c in SeedSequence(seed).spawn(n_children)``, for each seed.

    Args:
        seeds: ``K`` integer seeds in ``[0, 2**64)``.
        n_children: streams per seed (the children's spawn keys are ``(0,) .. (n_children - 1,)``).

    Returns:
        ``uint64 (K, n_children, 4)``: ``[state_hi, state_lo, inc_hi, inc_lo]`` of each child's
        freshly seeded ``PCG64`` (what :func:`lwmecps_gym.core.seeding.streams_from_seed` builds with
        ``n_children = 2``: workload, system). Compiled (NumPy's hash and seeding restated; tested
        against NumPy) where :data:`COMPILED`, else from NumPy's own ``SeedSequence``.
    """
    K = len(seeds)
    out = np.zeros((K, int(n_children), 4), dtype=np.uint64)
    if COMPILED:
        _spawn_states(np.asarray(seeds, dtype=np.uint64), out)
        return out
    for j, seed in enumerate(seeds):
        for c, child in enumerate(np.random.SeedSequence(int(seed)).spawn(int(n_children))):
            out[j, c] = pcg64_state(np.random.PCG64(child))
    return out


def pcg64_state(bitgen: np.random.PCG64) -> np.ndarray:
    """``uint64 (4,)`` ``[state_hi, state_lo, inc_hi, inc_lo]`` of a ``PCG64`` (its 32-bit buffer must be empty)."""
    st = bitgen.state
    s, inc = st["state"]["state"], st["state"]["inc"]
    return np.array([s >> 64, s & _MASK64, inc >> 64, inc & _MASK64], dtype=np.uint64)


def set_pcg64_state(bitgen: np.random.PCG64, row: np.ndarray) -> None:
    """Put ``bitgen`` at state ``row`` (``uint64 (4,)``, as :func:`pcg64_state`), its 32-bit buffer empty."""
    hi, lo, ihi, ilo = (int(x) for x in row)
    bitgen.state = {"bit_generator": "PCG64", "state": {"state": (hi << 64) | lo, "inc": (ihi << 64) | ilo},
                    "has_uint32": 0, "uinteger": 0}


def generator_at(row: np.ndarray) -> np.random.Generator:
    """A new ``Generator(PCG64)`` at state ``row`` (``uint64 (4,)``)."""
    bg = np.random.PCG64(0)
    set_pcg64_state(bg, row)
    return np.random.Generator(bg)


def uniform_states(states: np.ndarray, high: float) -> np.ndarray:
    """``float64 (K,)``: ``Generator.uniform(0, high)`` from each PCG64 state row of ``states`` (advanced in place)."""
    out = np.empty(states.shape[0])
    if COMPILED:
        _uniform_states(states, float(high), out)
        return out
    for j in range(states.shape[0]):
        g = generator_at(states[j])
        out[j] = g.uniform(0.0, high)
        states[j] = pcg64_state(g.bit_generator)
    return out


def poisson_windows(states: np.ndarray, idx: np.ndarray, prof: np.ndarray, act: np.ndarray, rtt: np.ndarray,
                    scale: float, tau: float, rate_out: np.ndarray, lam_out: np.ndarray, rtt_out: np.ndarray) -> bool:
    """Windows of ``K`` episodes from rows of a day's tables, with their Poisson arrivals, in one compiled pass.

    For window ``t`` of episode ``j`` (``i = idx[t, j]``, deployment ``d``): ``rate_out = scale * prof[t, j]
    * act[i, d]`` (req/s), ``lam_out = Poisson(rate_out * tau) / tau`` drawn from PCG64 state row
    ``states[j]`` (advanced in place; draws in window order, as ``Generator.poisson`` of the block),
    ``rtt_out = rtt[i, d]``: the numbers of :func:`~.workload.draw_windows`' NumPy lines, without their
    temporaries (written straight into the native vector env's stacked arrays).

    Args:
        states: ``uint64 (K, 4)``. idx: ``int64 (T, K)`` rows of ``act`` and ``rtt`` (``float64 (W, n)``).
        prof: ``float64 (T, K)``. rate_out, lam_out, rtt_out: ``float64 (T, K, n)`` (views allowed).

    Returns:
        ``False``, nothing drawn or written, where not :data:`COMPILED` or a mean is negative, NaN or
        above ``1e18`` (the caller then takes the NumPy lines, and NumPy's errors).
    """
    if not COMPILED:
        return False
    return bool(_poisson_windows(states, idx, prof, act, rtt, float(scale), float(tau), rate_out, lam_out, rtt_out))


def poisson_streams(rngs, lam: np.ndarray, out: np.ndarray) -> None:
    """``out[:, j] = rngs[j].poisson(lam[:, j])`` for every ``j``, in one compiled pass where possible.

    Args:
        rngs: ``K`` :class:`numpy.random.Generator` (``PCG64``) streams, or ``uint64 (K, 4)`` PCG64
            states (:func:`pcg64_state` rows, advanced in place); each is left where its own
            ``poisson`` call would leave it.
        lam: ``float64 (T, K, n)`` Poisson means (>= 0, finite).
        out: ``float64 (T, K, n)`` receives the counts.

    Falls back to one ``Generator.poisson`` call per stream (the same numbers, and NumPy's errors
    for bad means) when numba is missing or disabled, a stream's bit generator is not ``PCG64``,
    or a mean is negative, NaN or above ``1e18``.

    Raises:
        ValueError: a mean NumPy refuses (negative, NaN, too large).
    """
    fast = COMPILED and lam.size > 0 and lam.min() >= 0.0 and lam.max() <= _LAM_MAX
    if isinstance(rngs, np.ndarray):  # states
        if fast:
            _poisson_streams(rngs, np.ascontiguousarray(lam, dtype=np.float64), out)
            return
        for j in range(rngs.shape[0]):
            g = generator_at(rngs[j])
            out[:, j] = g.poisson(lam[:, j])
            rngs[j] = pcg64_state(g.bit_generator)
        return
    if not fast or any(type(r.bit_generator) is not np.random.PCG64 for r in rngs):
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
