"""Diurnal demand profile.

:data:`CBD_DIURNAL_PROFILE` is the relative request rate of a user in each hour of the day
(value at hh:00, linearly interpolated in between, peak = 1.0). Its shape follows the
measured weekday pattern of cellular towers in office/business districts: traffic is
lowest around 04:00 (about 15% of peak), ramps up between 07:00 and 09:00, stays high
through business hours with a midday peak, and decays in the evening (Wang et al.,
"Understanding Mobile Traffic Patterns of Large Scale Cellular Towers in Urban
Environment", ACM IMC 2015, office-area cluster; Paul et al., "Understanding Traffic
Dynamics in Cellular Data Networks", IEEE INFOCOM 2011). The exact hourly numbers are
ours (a smooth curve with that shape), not digitised from those papers.
"""

from __future__ import annotations

import numpy as np

#: Relative per-user request rate at hh:00 for hh = 0..23 (peak 1.0). See module docstring.
CBD_DIURNAL_PROFILE: tuple[float, ...] = (
    0.30, 0.22, 0.18, 0.15, 0.15, 0.18, 0.28, 0.45,  # 00-07
    0.70, 0.88, 0.95, 0.97, 1.00, 0.98, 0.95, 0.93,  # 08-15
    0.92, 0.88, 0.75, 0.62, 0.55, 0.50, 0.44, 0.36,  # 16-23
)  # fmt: skip


def profile_at(profile: tuple[float, ...] | np.ndarray, t_s: np.ndarray) -> np.ndarray:
    """Relative rate at times of day ``t_s`` (seconds, any real; wraps at 86400 s)."""
    p = np.asarray(profile, dtype=float)
    h = (np.asarray(t_s, dtype=float) % 86400.0) / 3600.0 * (len(p) / 24.0)
    i = np.floor(h).astype(int) % len(p)
    f = h - np.floor(h)
    return p[i] * (1.0 - f) + p[(i + 1) % len(p)] * f
