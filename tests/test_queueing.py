"""Fidelity: the simulator's queue agrees with M/M/c (Erlang C), checked against an independent DES."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lwmecps_gym.backends.sim import SimBackend
from lwmecps_gym.core.queueing import (
    erlang_c,
    erlang_table,
    mmc_mean_response_s,
    mmc_response_tail,
)
from lwmecps_gym.scenarios import from_rtt_matrix


def mmc_des(c: int, lam: float, mu: float, n: int, seed: int) -> np.ndarray:
    """Response times of ``n`` FCFS customers of an M/M/c queue (Kiefer-Wolfowitz workload vector)."""
    rng = np.random.default_rng(seed)
    inter = rng.exponential(1.0 / lam, n)
    serv = rng.exponential(1.0 / mu, n)
    w = [0.0] * c  # remaining work of each server, sorted
    out = np.empty(n)
    for i in range(n):
        wait = w[0]
        out[i] = wait + serv[i]
        w[0] = wait + serv[i]
        w.sort()
        a = inter[i]
        w = [x - a if x > a else 0.0 for x in w]
    return out


def batch_means(x: np.ndarray, n_batches: int = 20) -> tuple[float, float]:
    """Mean and standard error from batch means (batches of consecutive customers are ~independent)."""
    b = x[: len(x) // n_batches * n_batches].reshape(n_batches, -1).mean(axis=1)
    return float(b.mean()), float(b.std(ddof=1) / math.sqrt(n_batches))


@pytest.mark.parametrize("c,lam,mu", [(1, 35.0, 50.0), (3, 120.0, 50.0)])
def test_closed_forms_match_discrete_event_simulation(c, lam, mu):
    # 200k customers after a 10k warm-up, 20 batch means: the batch-means standard error of the
    # mean response time is ~1-2% here; we accept 4 standard errors (a false alarm has
    # probability < 1e-4 if the closed form is right).
    t = mmc_des(c, lam, mu, 210_000, seed=c)[10_000:]
    m, se = batch_means(t)
    assert abs(m - mmc_mean_response_s(c, lam, mu)) < 4 * se
    s = 0.06
    p, se_p = batch_means((t > s).astype(float))
    assert abs(p - mmc_response_tail(c, lam, mu, s)) < 4 * se_p + 1e-4


def test_erlang_c_known_values_and_table():
    # textbook values: C(1, a) = a (M/M/1); C(2, 1) = 1/3
    assert erlang_c(1, 0.7) == pytest.approx(0.7)
    assert erlang_c(2, 1.0) == pytest.approx(1.0 / 3.0)
    tab = erlang_table(8)
    for c in range(1, 9):
        for rho in np.linspace(0.0, 0.999, 400):
            assert abs(tab.lookup(c, rho) - erlang_c(c, c * rho)) < 1e-3  # nearest midpoint, grid 16384


def _flat_backend(c: int, rate_rps: float, mu: float = 50.0, window_s: float = 30.0) -> SimBackend:
    """One site, constant demand (flat profile, no mobility), ``c`` ready replicas, no start-up delay."""
    sc = from_rtt_matrix([[10.0]], users_per_site=100, max_replicas=8, user_rate_rps=rate_rps / 100.0,
                         service_rate_rps=mu, sla_ms=100.0)
    from dataclasses import replace

    sc = replace(sc, profile=(1.0,) * 24, dwell_s=1e12)
    b = SimBackend(sc, {"window_s": window_s, "pod_startup_median_s": 0.0, "initial_replicas": c})
    b.reset(seed=1)
    return b


def test_simulator_stationary_window_is_mmc():
    """Each stationary window reports RTT + the M/M/c mean response and tail at the arrival rate
    (the Poisson mean, not the window's random count: M/M/c already accounts for Poisson arrivals)."""
    c, mu = 3, 50.0
    b = _flat_backend(c, 120.0, mu)
    for _ in range(50):
        lam = b.workload.rate[b.t][0]
        assert lam == pytest.approx(120.0)
        b.step_window()
        m = b.observe()
        expect_ms = 10.0 + 1000.0 * mmc_mean_response_s(c, lam, mu)
        # Erlang C from a 16384-point midpoint table: |dC| <= c / (2 * 16384), so W is exact to ~1e-3 relative
        assert m.latency_ms[0] == pytest.approx(expect_ms, rel=2e-3)
        expect_v = mmc_response_tail(c, lam, mu, 0.100 - 0.010)
        assert m.sla_violation_rate == pytest.approx(expect_v, abs=5e-3)  # 4096-point tail table, 1 ms slack buckets


def test_simulator_mean_latency_agrees_with_des_over_an_episode():
    """End to end: request-weighted latency over 200 windows vs a DES of the same M/M/c at the mean rate.

    The windows' Poisson arrival counts (mean 3600 per window) move the per-window rate by
    ~1.7%; at rho = 0.8 this changes W by < 1% (Jensen), well inside the tolerance of 4
    DES standard errors plus 1%.
    """
    c, lam, mu = 3, 120.0, 50.0
    b = _flat_backend(c, lam, mu)
    tot = n = 0.0
    for _ in range(200):
        b.step_window()
        m = b.observe()
        w = float(m.demand_rps[0])
        tot += w * (m.latency_ms[0] - 10.0)
        n += w
    sim_ms = tot / n
    t = mmc_des(c, lam, mu, 110_000, seed=5)[10_000:]
    des, se = batch_means(t)
    assert abs(sim_ms / 1000.0 - des) < 4 * se + 0.01 * des


def test_overload_builds_a_backlog_that_persists():
    b = _flat_backend(2, 120.0)  # capacity 100 req/s < 120 req/s
    b.step_window()
    first = b.observe()
    assert b.backlog[0] > 0 and first.failed_rps > 0  # timeout cap (1 s of work) is exceeded -> drops
    b.scale_list([4])
    b.step_window()  # backlog drains, then stationary
    second = b.observe()
    b.step_window()
    third = b.observe()
    assert b.backlog[0] == 0.0
    assert second.latency_ms[0] > third.latency_ms[0]  # the carried backlog still hurt the next window
