"""Reservoir sampling of per-flow measurements and MARLLB's five reservoir statistics.

MARLLB's data plane (VPP plugin ``lbhash.h``) keeps, per server, two reservoirs of
128 ``(t, v)`` pairs: flow completion times (FCT) and flow durations (elapsed time
of ongoing flows). Every new sample overwrites a **uniformly random slot**
(``res_id = rand() % 128``): *random replacement*, which biases the sample toward
recent values (a sample survives ``k`` later writes with probability
``(1 - 1/128)^k``). That is **not** Vitter's Algorithm R, which keeps a uniform
sample of the whole stream (sample ``i > K`` is kept with probability ``K / i``).
Both are offered here; random replacement is the default because it is what the
MARLLB features are computed from. The paper's Algorithm 2 is random replacement
with a keep probability ``p`` (``keep_prob``; the code uses ``p = 1``).

Empty slots: the VPP reservoir starts zeroed and every statistic includes the
empty ``(0, 0)`` slots, which pulls early features toward 0 (``empty_slots="zero"``
reproduces that). The default ``empty_slots="mask"`` fills empty slots first, then
replaces at random (the steady state is the same), and computes statistics over
the filled slots only; an empty reservoir reports 0 for every statistic.

Statistics (MARLLB ``shm_proxy.py``), for samples ``v`` taken at times ``t`` and
the current time ``now`` (seconds), with freshness ``f = decay ** (now - t)``:

====  ============  ===========================================
 idx  name          formula
====  ============  ===========================================
  0   ``avg``       mean(v)
  1   ``90``        90th percentile of v (linear interpolation)
  2   ``std``       population standard deviation of v
  3   ``avg_decay`` mean(v * f)
  4   ``90_decay``  90th percentile of v * f
====  ============  ===========================================
"""

from __future__ import annotations

import numpy as np

from lwmecps_gym.core.validation import check_choice, check_float, check_int

#: Names of the five statistics, in column order (MARLLB suffixes).
STAT_NAMES: tuple[str, ...] = ("avg", "90", "std", "avg_decay", "90_decay")

MODES = ("random_replacement", "algorithm_r")
EMPTY_SLOTS = ("mask", "zero")


def reservoir_stats(
    values: np.ndarray,
    times: np.ndarray,
    counts: np.ndarray | None,
    now: float,
    decay: float = 0.9,
) -> np.ndarray:
    """The five MARLLB statistics of many reservoirs at once (vectorised).

    Args:
        values: ``(..., K)`` float sample values (seconds for FCT / flow duration).
        times: ``(..., K)`` float sample times (seconds, same clock as ``now``).
        counts: ``(...)`` int number of filled slots, filled from slot 0 upward
            (``empty_slots="mask"``); slots ``>= count`` are ignored. ``None``
            means every slot counts, empty ones as ``(0, 0)`` (``"zero"``, as VPP).
        now: current time in seconds.
        decay: freshness base, ``f = decay ** (now - t)`` (MARLLB: 0.9).

    Returns:
        ``(..., 5)`` float64 array, columns as :data:`STAT_NAMES`; 0 where a
        reservoir is empty.
    """
    v = np.asarray(values, dtype=np.float64)
    k = v.shape[-1]
    f = np.exp((now - np.asarray(times, dtype=np.float64)) * np.log(decay))
    vd = v * f
    both = np.stack((v, vd), axis=-2)  # (..., 2, K)
    if counts is None:
        n = np.full(v.shape[:-1], k, dtype=np.int64)
        s = np.sort(both, axis=-1)
    else:
        n = np.asarray(counts, dtype=np.int64)
        valid = np.arange(k) < n[..., None]
        both = np.where(valid[..., None, :], both, 0.0)
        s = np.sort(np.where(valid[..., None, :], both, np.inf), axis=-1)
        s[np.isinf(s)] = 0.0  # only slots >= count (never indexed when count > 0) or empty reservoirs
    nn = np.maximum(n, 1)
    sums = both.sum(axis=-1)  # (..., 2)
    mean = sums[..., 0] / nn
    mean_decay = sums[..., 1] / nn
    var = np.maximum((v * v if counts is None else both[..., 0, :] ** 2).sum(axis=-1) / nn - mean * mean, 0.0)
    h = 0.9 * (nn - 1)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, nn - 1)
    frac = (h - lo)[..., None]
    x_lo = np.take_along_axis(s, np.broadcast_to(lo[..., None, None], s.shape[:-1] + (1,)), axis=-1)[..., 0]
    x_hi = np.take_along_axis(s, np.broadcast_to(hi[..., None, None], s.shape[:-1] + (1,)), axis=-1)[..., 0]
    p90 = x_lo + frac * (x_hi - x_lo)  # (..., 2)
    out = np.stack((mean, p90[..., 0], np.sqrt(var), mean_decay, p90[..., 1]), axis=-1)
    if counts is not None:
        out[n == 0] = 0.0
    return out


class ReservoirSampler:
    """A fixed-size reservoir of ``(t, v)`` samples with MARLLB's statistics.

    Usable on its own (the seed's "Problem 01")::

        r = ReservoirSampler(128, rng=np.random.default_rng(0))
        for t, fct in stream:
            r.add(t, fct)
        r.stats(now=t)   # {'avg': ..., '90': ..., 'std': ..., 'avg_decay': ..., '90_decay': ...}

    Args:
        capacity: number of slots ``K`` (MARLLB: 128).
        mode: ``"random_replacement"`` (MARLLB/VPP: overwrite a uniformly random
            slot, with probability ``keep_prob``) or ``"algorithm_r"`` (Vitter 1985:
            uniform sample of the whole stream).
        keep_prob: probability that a sample is written at all (paper Algorithm 2's
            ``p``); only for random replacement.
        empty_slots: ``"mask"`` (statistics over filled slots) or ``"zero"`` (VPP:
            random slots from the first sample, empty ``(0, 0)`` slots included).
            ``"zero"`` requires random replacement.
        decay: freshness base of the decayed statistics.
        rng: ``numpy.random.Generator`` for slot choice (default: unseeded).

    Raises:
        ValueError / TypeError: for an invalid argument, naming it.
    """

    def __init__(
        self,
        capacity: int = 128,
        mode: str = "random_replacement",
        keep_prob: float = 1.0,
        empty_slots: str = "mask",
        decay: float = 0.9,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.capacity = check_int("capacity", capacity, low=1)
        self.mode = check_choice("mode", mode, MODES)
        self.keep_prob = check_float("keep_prob", keep_prob, low=0.0, high=1.0, low_open=True)
        self.empty_slots = check_choice("empty_slots", empty_slots, EMPTY_SLOTS)
        if self.mode == "algorithm_r" and self.empty_slots == "zero":
            raise ValueError("empty_slots='zero' is VPP's random-slot fill; it needs mode='random_replacement'")
        if self.mode == "algorithm_r" and self.keep_prob != 1.0:
            raise ValueError("keep_prob applies to mode='random_replacement' only")
        self.decay = check_float("decay", decay, low=0.0, high=1.0, low_open=True)
        self.rng = rng if rng is not None else np.random.default_rng()
        self.values = np.zeros(self.capacity)
        self.times = np.zeros(self.capacity)
        self.n_seen = 0
        self.n_filled = 0

    def add(self, t: float, v: float) -> None:
        """Offer one sample ``v`` taken at time ``t`` (seconds)."""
        self.n_seen += 1
        k = self.capacity
        if self.mode == "algorithm_r":
            if self.n_filled < k:
                slot = self.n_filled
            else:
                slot = int(self.rng.integers(0, self.n_seen))
                if slot >= k:
                    return
        else:
            if self.keep_prob < 1.0 and self.rng.random() >= self.keep_prob:
                return
            if self.empty_slots == "mask" and self.n_filled < k:
                slot = self.n_filled
            else:
                slot = int(self.rng.integers(0, k))
        self.values[slot] = v
        self.times[slot] = t
        self.n_filled = min(self.n_filled + 1, k) if self.empty_slots == "mask" else k

    def sample(self) -> np.ndarray:
        """The values currently held (filled slots only in ``"mask"`` mode), a copy."""
        if self.empty_slots == "mask":
            return self.values[: self.n_filled].copy()
        return self.values.copy()

    def stats_array(self, now: float) -> np.ndarray:
        """``(5,)`` float64 statistics, order :data:`STAT_NAMES`."""
        counts = np.asarray(self.n_filled) if self.empty_slots == "mask" else None
        return reservoir_stats(self.values, self.times, counts, now, self.decay)

    def stats(self, now: float) -> dict[str, float]:
        """The statistics as ``{name: value}``."""
        return dict(zip(STAT_NAMES, self.stats_array(now).tolist(), strict=True))
