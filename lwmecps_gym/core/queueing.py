"""Closed-form queueing results shared by every family's simulator and tests.

One place for the formulas: M/M/c FCFS with Erlang C (lwmecps, faas_gym), processor sharing
(marllb_env). Functions raise :class:`ValueError` on unstable input (``lam >= c * mu``) rather than
returning a negative or infinite time.

For ``c`` identical exponential servers of rate ``mu`` (req/s), Poisson arrivals of rate
``lam`` and offered load ``a = lam / mu`` (``rho = a / c < 1``):

* Erlang B by the stable recursion ``B(0) = 1``, ``B(k) = a B(k-1) / (k + a B(k-1))``;
* Erlang C (probability of waiting) ``C = B / (1 - rho (1 - B))``;
* mean response time ``W = 1/mu + C / (c mu - lam)``;
* response-time tail: the wait is 0 w.p. ``1 - C`` and ``Exp(theta)``, ``theta = c mu - lam``,
  otherwise; adding the ``Exp(mu)`` service,
  ``P(T > s) = (1 - C) e^{-mu s} + C (mu e^{-theta s} - theta e^{-mu s}) / (mu - theta)``
  (``(1 + mu s) e^{-mu s}`` in the limit ``theta = mu``).

Sources: Kleinrock, *Queueing Systems Vol. 1* (1975), section 3.5; Gross & Harris,
*Fundamentals of Queueing Theory*, M/M/c waiting-time distribution.

:class:`ErlangCTable` tabulates C on a grid of ``rho`` so the simulator's step needs one
list lookup and a linear interpolation instead of the O(c) recursion.
"""

from __future__ import annotations

import math

import numpy as np


def erlang_b(c: int, a: float) -> float:
    """Erlang B blocking probability for ``c`` servers and offered load ``a`` (Erlangs)."""
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, a: float) -> float:
    """Probability that an arrival waits in M/M/c (1.0 if ``a >= c``; 0 servers -> 1.0)."""
    if c <= 0 or a >= c:
        return 1.0
    if a <= 0.0:
        return 0.0
    b = erlang_b(c, a)
    rho = a / c
    return b / (1.0 - rho * (1.0 - b))


def erlang_c_grid(c: int, rho: np.ndarray) -> np.ndarray:
    """Erlang C for ``c >= 1`` servers at each utilisation in ``rho`` (float64 array, all < 1).

    Same recursion as :func:`erlang_c` (Erlang B, then C = B / (1 - rho (1 - B))), vectorised
    over ``rho``; used to build the lookup tables below.
    """
    a = rho * c
    b = np.ones_like(a)
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b / (1.0 - rho * (1.0 - b))


def mmc_mean_response_s(c: int, lam: float, mu: float) -> float:
    """Mean response time (wait + service) of a stable M/M/c, seconds.

    Raises:
        ValueError: if ``c < 1``, ``mu <= 0``, ``lam < 0`` or ``lam >= c * mu`` (unstable).
    """
    if c < 1 or not mu > 0.0 or not lam >= 0.0:
        raise ValueError(f"M/M/c needs c >= 1, mu > 0, lam >= 0, got c={c}, mu={mu}, lam={lam}")
    if lam >= c * mu:
        raise ValueError(f"M/M/c unstable: lam={lam} >= c*mu={c * mu}")
    return 1.0 / mu + erlang_c(c, lam / mu) / (c * mu - lam)


def ps_rate(speed: float, cpus: float, n: int) -> float:
    """Per-flow service rate of a processor-sharing server with ``cpus`` cores and ``n`` flows in service.

    Each flow gets ``speed * min(1, cpus / n)`` (work units per second); ``n <= 0`` returns ``speed``.
    Source: Kleinrock, *Queueing Systems Vol. 2* (1976), section 4.4 (egalitarian processor sharing,
    here with ``cpus`` parallel cores).
    """
    if n <= cpus:
        return speed
    return speed * cpus / n


def mg1ps_mean_response_s(lam: float, mean_size: float, speed: float = 1.0) -> float:
    """Mean sojourn time of M/G/1-PS: ``E[S] / (1 - rho)`` with ``E[S] = mean_size / speed``, seconds.

    Insensitive to the size distribution beyond its mean (Kleinrock 1976, section 4.4).

    Raises:
        ValueError: if ``rho = lam * mean_size / speed >= 1`` or an argument is not positive.
    """
    if not (lam > 0.0 and mean_size > 0.0 and speed > 0.0):
        raise ValueError(f"M/G/1-PS needs lam, mean_size, speed > 0, got {lam}, {mean_size}, {speed}")
    es = mean_size / speed
    rho = lam * es
    if rho >= 1.0:
        raise ValueError(f"M/G/1-PS unstable: rho = lam * E[S] = {rho} >= 1")
    return es / (1.0 - rho)


def mmc_response_tail(c: int, lam: float, mu: float, s: float) -> float:
    """``P(T > s)`` for the response time T of a stable M/M/c FCFS queue (``s`` in seconds)."""
    if s <= 0.0:
        return 1.0
    C = erlang_c(c, lam / mu)
    return tail_from_c(C, c * mu - lam, mu, s)


def tail_from_c(C: float, theta: float, mu: float, s: float) -> float:
    """``P(T > s)`` given Erlang C ``C``, ``theta = c mu - lam`` and ``mu`` (see module docstring)."""
    if s <= 0.0:
        return 1.0
    es = math.exp(-mu * s)
    d = mu - theta
    if abs(d) < 1e-9 * mu:
        wait = (1.0 + mu * s) * es
    else:
        wait = (mu * math.exp(-theta * s) - theta * es) / d
    return (1.0 - C) * es + C * wait


class ErlangCTable:
    """Erlang C tabulated at the midpoints ``rho = (i + 0.5) / grid`` for ``c = 0..c_max``.

    ``rows[c][int(rho * grid)]`` is the value at the midpoint of the grid cell containing
    ``rho`` (plain lists: one index in the simulator's hot loop). With ``grid = 16384`` the
    error is below 1e-4 absolute (dC/drho <= c; checked in the tests against :func:`erlang_c`).
    Built with the Erlang B recursion vectorised over the grid.
    """

    def __init__(self, c_max: int, grid: int = 16384):
        self.c_max = int(c_max)
        self.grid = g = int(grid)
        self.rows: list[list[float]] = [[1.0] * (g + 1)]
        rho = (np.arange(g) + 0.5) / g
        for c in range(1, self.c_max + 1):
            cc = erlang_c_grid(c, rho)
            self.rows.append(cc.tolist() + [1.0])

    def lookup(self, c: int, rho: float) -> float:
        """Erlang C for ``c`` servers at utilisation ``rho`` (1.0 when ``rho >= 1``)."""
        if rho >= 1.0:
            return 1.0
        return self.rows[c][int(rho * self.grid)]


_TABLES: dict[int, ErlangCTable] = {}


def erlang_table(c_max: int) -> ErlangCTable:
    """A shared :class:`ErlangCTable` covering at least ``c_max`` servers (cached per process)."""
    for cm, t in _TABLES.items():
        if cm >= c_max:
            return t
    t = ErlangCTable(max(c_max, 16))
    _TABLES[t.c_max] = t
    return t


_VT_CACHE: dict[tuple, dict[int, list[list[float]]]] = {}


class ViolationTable:
    """``P(T > s)`` of M/M/c tabulated per SLA slack ``s`` (1 ms buckets) and ``c``, on a ``rho`` grid.

    ``rows(slack_ms)[c][int(rho * grid)]`` is the response-time tail at the midpoint of the
    grid cell (formula in the module docstring), built lazily per slack bucket with numpy.
    Rounding the slack to 1 ms changes the tail by at most ``1 - exp(-mu * 0.0005)``
    relative (2.5% for mu = 50/s); the grid cell adds at most ``0.5 / grid * dP/drho``.
    """

    def __init__(self, c_max: int, mu: float, grid: int = 4096):
        self.c_max = int(c_max)
        self.mu = float(mu)
        self.grid = int(grid)
        #: slack (ms) -> rows; shared by all tables with the same (c_max, mu, grid) in this process
        self._rows: dict[int, list[list[float]]] = _VT_CACHE.setdefault((self.c_max, self.mu, self.grid), {})

    def rows(self, slack_ms: int) -> list[list[float]]:
        """Rows for an integer slack in ms (``<= 0``: every request violates)."""
        r = self._rows.get(slack_ms)
        if r is None:
            r = self._rows[slack_ms] = self._build(slack_ms)
        return r

    def _build(self, slack_ms: int) -> list[list[float]]:
        g, mu = self.grid, self.mu
        if slack_ms <= 0:
            return [[1.0] * (g + 1) for _ in range(self.c_max + 1)]
        s = slack_ms / 1000.0
        rho = (np.arange(g) + 0.5) / g
        es = math.exp(-mu * s)
        out = [[1.0] * (g + 1)]
        for c in range(1, self.c_max + 1):
            cc = erlang_c_grid(c, rho)
            theta = c * mu * (1.0 - rho)
            d = mu - theta
            near = np.abs(d) < 1e-9 * mu
            safe_d = np.where(near, 1.0, d)
            wait = np.where(near, (1.0 + mu * s) * es, (mu * np.exp(-theta * s) - theta * es) / safe_d)
            out.append(((1.0 - cc) * es + cc * wait).tolist() + [1.0])
        return out
