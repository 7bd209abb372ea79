"""Demand events for the MEC simulator: flash crowds at edge sites.

A flash crowd is a sudden, site-local surge of requests (a concert, a sports match, an
incident) on top of the diurnal demand: the site's arrival rate is multiplied by a factor
that ramps up linearly to a peak ``K``, holds, then decays linearly back to 1. Such surges are
the classic case for anticipatory autoscaling: the ramp takes minutes, and so do pod start-ups
that pull a large image (Jung et al., "Flash crowds and denial of service attacks", WWW 2002,
for the surge shape; Ahmad et al., "Characterizing and Mitigating Cold Starts", for image-pull
start-up times). The numbers are ours, chosen to make anticipation pay; they are not fitted
to a trace.

Used through :attr:`lwmecps_gym.backends.sim.SimConfig.demand_events`: the simulator calls
:meth:`FlashCrowds.modulation` once per chunk of windows with the episode's *workload* stream,
so every policy evaluated on a seed sees the same crowds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lwmecps_gym.core.validation import check_float


def _check_range(name: str, r: tuple[float, float], low: float) -> tuple[float, float]:
    if not isinstance(r, (tuple, list)) or len(r) != 2:
        raise ValueError(f"{name} must be a (low, high) pair, got {r!r}")
    lo = check_float(f"{name}[0]", r[0], low=low)
    hi = check_float(f"{name}[1]", r[1], low=lo)
    return lo, hi


@dataclass(frozen=True)
class FlashCrowds:
    """Poisson-arriving flash crowds, independently at every deployment (edge site).

    Attributes:
        rate_per_hour: mean number of crowds per site per hour (Poisson process).
        peak: ``(low, high)`` of the peak rate multiplier ``K`` (uniform), >= 1.
        ramp_s: ``(low, high)`` of the linear ramp-up duration, s (uniform).
        hold_s: ``(low, high)`` of the time at the peak, s (uniform).
        decay_s: ``(low, high)`` of the linear decay duration, s (uniform).
        sites: indices of the deployments that can have crowds (``None``: all).

    Overlapping crowds add their excess (``factor = 1 + sum_e (K_e - 1) shape_e(t)``).
    Raises ``ValueError`` on a bad field.
    """

    rate_per_hour: float = 0.5
    peak: tuple[float, float] = (3.0, 6.0)
    ramp_s: tuple[float, float] = (60.0, 180.0)
    hold_s: tuple[float, float] = (300.0, 900.0)
    decay_s: tuple[float, float] = (120.0, 480.0)
    sites: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        check_float("rate_per_hour", self.rate_per_hour, low=0.0)
        _check_range("peak", self.peak, 1.0)
        _check_range("ramp_s", self.ramp_s, 0.0)
        _check_range("hold_s", self.hold_s, 0.0)
        _check_range("decay_s", self.decay_s, 0.0)

    def max_duration_s(self) -> float:
        """Longest possible crowd, s."""
        return self.ramp_s[1] + self.hold_s[1] + self.decay_s[1]

    def shape(self, t_s: np.ndarray, ramp: float, hold: float, decay: float) -> np.ndarray:
        """Crowd profile in [0, 1] at times ``t_s`` (s since the crowd began)."""
        t = np.asarray(t_s, dtype=float)
        up = np.clip(t / ramp, 0.0, 1.0) if ramp > 0 else (t >= 0).astype(float)
        down = np.clip(1.0 - (t - ramp - hold) / decay, 0.0, 1.0) if decay > 0 else (t < ramp + hold).astype(float)
        return np.where(t < 0, 0.0, np.minimum(up, down))

    def modulation(self, rng: np.random.Generator, n_windows: int, n_deployments: int, window_s: float,
                   carry: Any = None) -> tuple[np.ndarray, Any]:
        """Rate multipliers of the next ``n_windows`` windows (evaluated at window midpoints).

        Returns ``(float64 (n_windows, n_deployments) factors >= 1, carry)``; ``carry`` holds
        the excess of crowds that run past this chunk and must be passed to the next call.
        """
        T, n, tau = int(n_windows), int(n_deployments), float(window_s)
        tail = int(np.ceil(self.max_duration_s() / tau)) + 1
        excess = np.zeros((T + tail, n))
        if carry is not None:
            k = min(len(carry), T + tail)
            excess[:k] += carry[:k]
        sites = range(n) if self.sites is None else [s for s in self.sites if 0 <= s < n]
        mid = (np.arange(T + tail) + 0.5) * tau
        for d in sites:
            for _ in range(rng.poisson(self.rate_per_hour * T * tau / 3600.0)):
                t0 = rng.uniform(0.0, T * tau)
                k = rng.uniform(*self.peak)
                ramp, hold, decay = rng.uniform(*self.ramp_s), rng.uniform(*self.hold_s), rng.uniform(*self.decay_s)
                excess[:, d] += (k - 1.0) * self.shape(mid - t0, ramp, hold, decay)
        return 1.0 + excess[:T], excess[T:].copy()
