"""Fairness rewards over a per-server vector ``x`` (one feature of the active servers).

MARLLB's ``env.py: fair_fn`` variants, the paper's product fairness, and the seed's
extra metrics. ``x`` is non-negative (times in seconds, counts or utilisations),
``n = len(x) >= 1``. Higher is always better (fairer).

=================  ==========================================  =====================  ==============
name               formula                                     range                  source
=================  ==========================================  =====================  ==============
``jain``           (sum x)^2 / (n sum x^2); 1 if sum x = 0     [1/n, 1]               Jain 1984; MARLLB
``product``        prod_j x_j / (max x + 1e-6)                 [0, 1)                 MARLLB paper F(l)
``var``            -Var(x) (population)                        (-inf, 0]              MARLLB (code default)
``var_exp``        exp(-10000 Var(x))                          (0, 1]                 MARLLB
``var_log``        -log(Var(x) + 1e-12)                        (-inf, 27.6]           MARLLB (+eps: finite)
``max``            -max x                                      (-inf, 0]              MARLLB
``max_exp``        exp(-10000 max x)                           (0, 1]                 MARLLB
``max_log``        -log(max x + 1e-12)                         (-inf, 27.6]           MARLLB (+eps: finite)
``cv``             -std(x) / mean(x); 0 if mean x = 0          (-sqrt(n-1), 0]        seed
``max_min``        min x / max x; 1 if max x = 0               [0, 1]                 seed
=================  ==========================================  =====================  ==============

Notes: ``product`` is 0 as soon as one server has ``x = 0`` (e.g. an empty
reservoir early in an episode). ``var_exp``/``max_exp`` use MARLLB's scale 1e4, tuned
for values in seconds around 1e-2; for 0.5 s jobs they saturate near 0, so prefer
``jain``, ``cv`` or ``max_min`` there. The ``log`` forms add 1e-12 so a perfectly
equal ``x`` gives a finite reward (MARLLB's code would return ``inf``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from operator import mul

_EPS_LOG = 1e-12


def _mean_var(x: Sequence[float]) -> tuple[float, float]:
    n = len(x)
    m = sum(x) / n
    return m, max(sum((v - m) * (v - m) for v in x) / n, 0.0)


def jain(x: Sequence[float]) -> float:
    """Jain's fairness index, in [1/n, 1]."""
    s = sum(x)
    if s <= 0.0:
        return 1.0
    return s * s / (len(x) * sum(map(mul, x, x)))


def product(x: Sequence[float]) -> float:
    """MARLLB's product fairness F(x) = prod_j x_j / max(x), in [0, 1)."""
    mx = max(x) + 1e-6
    p = 1.0
    for v in x:
        p *= v / mx
    return p


def var(x: Sequence[float]) -> float:
    return -_mean_var(x)[1]


def var_exp(x: Sequence[float]) -> float:
    return math.exp(-10000.0 * _mean_var(x)[1])


def var_log(x: Sequence[float]) -> float:
    return -math.log(_mean_var(x)[1] + _EPS_LOG)


def max_(x: Sequence[float]) -> float:
    return -max(x)


def max_exp(x: Sequence[float]) -> float:
    return math.exp(-10000.0 * max(x))


def max_log(x: Sequence[float]) -> float:
    return -math.log(max(x) + _EPS_LOG)


def cv(x: Sequence[float]) -> float:
    """Negative coefficient of variation, in (-sqrt(n-1), 0]."""
    m, v = _mean_var(x)
    return 0.0 if m <= 0.0 else -math.sqrt(v) / m


def max_min(x: Sequence[float]) -> float:
    """min/max ratio, in [0, 1]."""
    mx = max(x)
    return 1.0 if mx <= 0.0 else min(x) / mx


#: name -> function ``f(x) -> float``.
REWARD_FUNCTIONS: dict[str, Callable[[Sequence[float]], float]] = {
    "jain": jain,
    "product": product,
    "var": var,
    "var_exp": var_exp,
    "var_log": var_log,
    "max": max_,
    "max_exp": max_exp,
    "max_log": max_log,
    "cv": cv,
    "max_min": max_min,
}

#: name -> (low, high) bounds of the value for ``n`` servers (used in docs and tests).
def reward_range(name: str, n: int) -> tuple[float, float]:
    """Closed bounds of reward ``name`` for ``n`` servers (``-inf``/``inf`` where unbounded)."""
    get_reward_function(name)
    return {
        "jain": (1.0 / n, 1.0),
        "product": (0.0, 1.0),
        "var": (-math.inf, 0.0),
        "var_exp": (0.0, 1.0),
        "var_log": (-math.inf, -math.log(_EPS_LOG)),
        "max": (-math.inf, 0.0),
        "max_exp": (0.0, 1.0),
        "max_log": (-math.inf, -math.log(_EPS_LOG)),
        "cv": (-math.sqrt(max(n - 1, 0)), 0.0),
        "max_min": (0.0, 1.0),
    }[name]


def get_reward_function(name: str) -> Callable[[Sequence[float]], float]:
    """The reward function called ``name``.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    try:
        return REWARD_FUNCTIONS[name]
    except (KeyError, TypeError):
        raise ValueError(f"reward_type must be one of {sorted(REWARD_FUNCTIONS)}, got {name!r}") from None


def fairness(name: str, x: Sequence[float]) -> float:
    """Reward ``name`` of vector ``x`` as a Python float (``x`` non-empty)."""
    if len(x) == 0:
        raise ValueError("fairness needs at least one value")
    return float(get_reward_function(name)(list(map(float, x))))


def smoothed(prev: Sequence[float] | None, x: Sequence[float], gamma: float | None) -> Sequence[float]:
    """The reward input of the MARLLB paper's smoothed reward ``F((1 - g) x_t + g x_{t+1})``.

    Args:
        prev: ``x_t``, the previous control step's vector (``None`` at the first step).
        x: ``x_{t+1}``, this step's vector.
        gamma: ``g`` in [0, 1] (paper: 0.9), or ``None`` for no smoothing.

    Returns:
        ``x`` itself when ``gamma`` is ``None``, ``prev`` is ``None`` or the lengths differ (the
        active server set changed); else the element-wise mix as a list of floats.
    """
    if gamma is None or prev is None or len(prev) != len(x):
        return x
    return [(1.0 - gamma) * a + gamma * b for a, b in zip(prev, x, strict=True)]
