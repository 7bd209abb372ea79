"""Simulator fidelity: the exact DES against closed-form queueing results, the fluid model against both.

Tolerances follow from the sample size: each long run is split into batches (batch means), the
standard error (SE) of the grand mean is the batch std / sqrt(n_batches), and estimates must lie
within 4 SE of the closed form (for a t-distribution with 19 degrees of freedom that bound is
exceeded with probability < 0.1 % if the simulator is right). Each test also asserts the SE is small
(< 2-3 % of the target) so the check has power; runs use fixed seeds, so results are reproducible.
"""

from __future__ import annotations

import numpy as np
import pytest

from faas_gym.backends.base import FaasBackend, FaasMeasurement
from faas_gym.backends.sim import SimBackend, SimConfig
from lwmecps_gym.core.queueing import mmc_mean_response_s


def run_windows(backend: SimBackend, n: int, dt: float) -> list[FaasMeasurement]:
    out = []
    for _ in range(n):
        backend.advance(dt)
        out.append(backend.observe())
    return out


def batch_means(ms: list[FaasMeasurement], n_batches: int = 20):
    """Request-weighted mean response time (s) and utilisation per batch; grand means and SEs."""
    size = len(ms) // n_batches
    resp, util = [], []
    for b in range(n_batches):
        chunk = ms[b * size : (b + 1) * size]
        done = sum(m.completed for m in chunk)
        resp.append(sum(m.response_time_ms * m.completed for m in chunk) / done / 1000.0)
        util.append(np.mean([m.cpu_utilization for m in chunk]))
    resp, util = np.array(resp), np.array(util)
    se = lambda x: x.std(ddof=1) / np.sqrt(len(x))  # noqa: E731
    return resp.mean(), se(resp), util.mean(), se(util)


def mmc_config(c: int, lam: float, mu: float, model: str, **kw) -> SimConfig:
    return SimConfig(
        workload={"kind": "poisson", "rate_rps": lam},
        service_time={"kind": "exponential", "mean": 1.0 / mu},
        concurrency=1,
        initial_replicas=c,
        queue_capacity=kw.pop("queue_capacity", 10**9),
        cold_start_s=0.0,
        model=model,
        **kw,
    )


@pytest.mark.parametrize("c,lam", [(1, 0.7), (4, 3.2)])
def test_des_matches_erlang_c(c, lam):
    # ~150k-350k requests in 20 batches; after a 2000 s warm-up
    b = SimBackend(mmc_config(c, lam, 1.0, "des"))
    b.reset(seed=11)
    run_windows(b, 20, 100.0)
    ms = run_windows(b, 2000, 100.0 if c == 4 else 200.0)
    resp, resp_se, util, util_se = batch_means(ms)
    target = mmc_mean_response_s(c, lam, 1.0)
    assert resp_se < 0.03 * target
    assert abs(resp - target) < 4 * resp_se, (resp, target, resp_se)
    rho = lam / c
    assert util_se < 0.01
    assert abs(util - rho) < 4 * util_se, (util, rho, util_se)


def test_des_mm1k_blocking_probability():
    # M/M/1/N with N = 1 in service + 4 waiting: P_block = (1 - rho) rho^N / (1 - rho^(N+1))
    rho, n_sys = 0.9, 5
    b = SimBackend(mmc_config(1, rho, 1.0, "des", queue_capacity=4))
    b.reset(seed=3)
    ms = run_windows(b, 2000, 100.0)
    size = 100
    fr = [
        sum(m.dropped for m in ms[i : i + size]) / sum(m.arrived for m in ms[i : i + size])
        for i in range(0, len(ms), size)
    ]
    target = (1 - rho) * rho**n_sys / (1 - rho ** (n_sys + 1))
    se = np.std(fr, ddof=1) / np.sqrt(len(fr))
    assert se < 0.03 * target
    assert abs(np.mean(fr) - target) < 4 * se


def replicated_batch_means(c, rho, model, *, dt, seeds, horizon_s, warmup_s=2000.0, mu=1.0, n_batches=10):
    """M/M/c (concurrency 1, ``c`` replicas, no cold start) over ``seeds`` independent replications of
    ``horizon_s`` after ``warmup_s``: request-weighted batch means of the response time pooled over
    seeds (``n_batches`` per seed). Returns ``(mean_s, se_s, closed_form_s)``."""
    lam = rho * c * mu
    means = []
    for seed in seeds:
        b = SimBackend(mmc_config(c, lam, mu, model))
        b.reset(seed=seed)
        run_windows(b, int(warmup_s / dt), dt)
        ms = run_windows(b, int(horizon_s / dt), dt)
        size = len(ms) // n_batches
        for k in range(n_batches):
            chunk = ms[k * size : (k + 1) * size]
            means.append(sum(m.response_time_ms * m.completed for m in chunk) / sum(m.completed for m in chunk) / 1000.0)
    means = np.array(means)
    return means.mean(), means.std(ddof=1) / np.sqrt(len(means)), mmc_mean_response_s(c, lam, mu)


@pytest.mark.parametrize("c", [1, 4, 8])
@pytest.mark.parametrize("rho", [0.5, 0.8, 0.9])
def test_default_fluid_model_matches_mmc(c, rho):
    # the DEFAULT model (fluid) at the env's default interval (15 s), Poisson arrivals, exponential
    # service: stationary mean response within 3 % of Erlang C's M/M/c (plus 4 SE of sampling error;
    # the fluid model's SE is ~0 here: Erlang C at the workload's expected rate, no noise-driven backlog)
    assert SimConfig().model == "fluid"
    mean, se, target = replicated_batch_means(c, rho, "fluid", dt=15.0, seeds=(1, 2, 3), horizon_s=20_000.0)
    assert abs(mean - target) < 0.03 * target + 4 * se, (mean, target, se)


@pytest.mark.parametrize("dt", [30.0, 60.0])
def test_fluid_model_matches_mm1_at_the_other_registered_intervals(dt):
    mean, se, target = replicated_batch_means(1, 0.9, "fluid", dt=dt, seeds=(1, 2), horizon_s=30_000.0)
    assert abs(mean - target) < 0.03 * target + 4 * se, (mean, target, se)


@pytest.mark.parametrize("c,horizon_s", [(1, 300_000.0), (4, 120_000.0), (8, 60_000.0)])
def test_exact_des_matches_mmc_at_rho_09(c, horizon_s):
    # rho 0.9 is the hardest case for sampling (M/M/1 relaxation time ~ 400 s); 3 seeds x 10 batches,
    # estimates within 4 SE of Erlang C and the SE below 3 % of it
    mean, se, target = replicated_batch_means(c, 0.9, "des", dt=15.0, seeds=(1, 2, 3), horizon_s=horizon_s)
    assert se < 0.03 * target
    assert abs(mean - target) < 4 * se, (mean, target, se)


@pytest.mark.parametrize(
    "service,c,conc,lam",
    [
        ({"kind": "lognormal", "mean": 0.5, "cv": 1.5}, 3, 2, 9.0),
        ({"kind": "deterministic", "value": 1.0}, 5, 1, 4.0),
        ({"kind": "orcbench", "model": 0, "max_s": 5.0}, 4, 4, 10.0),
    ],
)
def test_fluid_agrees_with_des_in_stable_load(service, c, conc, lam):
    # M/G/c: the fluid model's Allen-Cunneen waiting time is an approximation; its error for these
    # loads is a few percent of the response time. Tolerance: 10 % model error + 4 DES batch SEs.
    def cfg(model):
        return SimConfig(
            workload={"kind": "poisson", "rate_rps": lam},
            service_time=service,
            concurrency=conc,
            initial_replicas=c,
            queue_capacity=10**6,
            model=model,
        )

    des = SimBackend(cfg("des"))
    des.reset(seed=5)
    d_resp, d_se, d_util, _ = batch_means(run_windows(des, 1000, 60.0))
    flu = SimBackend(cfg("fluid"))
    flu.reset(seed=5)
    f_resp, _, f_util, _ = batch_means(run_windows(flu, 1000, 60.0))
    assert abs(f_resp - d_resp) < 0.10 * d_resp + 4 * d_se, (f_resp, d_resp, d_se)
    assert abs(f_util - d_util) < 0.02


def test_fluid_and_des_agree_on_overload_backlog_and_drops():
    # 2 replicas x concurrency 1, lambda = 3, mu = 1: the queue (cap 300) fills at ~1 request/s, then
    # arrivals beyond capacity are dropped at ~lambda - c mu = 1 request/s in both models.
    def cfg(model):
        return SimConfig(
            workload={"kind": "poisson", "rate_rps": 3.0},
            service_time={"kind": "exponential", "mean": 1.0},
            concurrency=1,
            initial_replicas=2,
            queue_capacity=300,
            model=model,
        )

    res = {}
    for model in ("des", "fluid"):
        b = SimBackend(cfg(model))
        b.reset(seed=2)
        ms = run_windows(b, 200, 30.0)
        res[model] = (ms[-1].queue_length, sum(m.dropped for m in ms), np.mean([m.cpu_utilization for m in ms[20:]]))
    # drops over 6000 s: expected ~ (3 - 2) * (6000 - 300) = 5700; Poisson noise ~ sqrt(18000) ~ 134
    assert abs(res["des"][1] - res["fluid"][1]) < 0.05 * res["des"][1]
    assert res["des"][0] >= 280 and res["fluid"][0] == 300
    assert res["des"][2] == pytest.approx(1.0, abs=0.01) and res["fluid"][2] == pytest.approx(1.0)


@pytest.mark.parametrize("model", ["des", "fluid"])
def test_requests_are_conserved(model):
    cfg = SimConfig(queue_capacity=50, cold_start_s=7.0, keep_alive_s=20.0, model=model, initial_replicas=2)
    b = SimBackend(cfg)
    b.reset(seed=9)
    rng = np.random.default_rng(0)
    prev = 0
    totals = np.zeros(3, dtype=np.int64)
    for _ in range(400):
        b.apply(int(rng.integers(0, 9)))
        b.advance(float(rng.choice([5.0, 15.0, 30.0])))
        m = b.observe()
        assert m.arrived + prev == m.completed + m.dropped + m.in_system
        assert 0 <= m.queue_length <= m.in_system
        assert 0.0 <= m.cpu_utilization <= 1.0 and 0.0 <= m.memory_utilization <= 1.0
        assert 0.0 <= m.slo_violation_rate <= 1.0
        prev = m.in_system
        totals += (m.arrived, m.dropped, m.cold_starts)
    assert totals[0] > 1000 and totals[1] > 0 and totals[2] > 0  # the run exercised drops and cold starts


@pytest.mark.parametrize("model", ["des", "fluid"])
def test_cold_start_delays_service(model):
    cfg = SimConfig(
        workload={"kind": "poisson", "rate_rps": 5.0},
        service_time={"kind": "deterministic", "value": 0.2},
        initial_replicas=0,
        cold_start_s=10.0,
        model=model,
    )
    b = SimBackend(cfg)
    b.reset(seed=0)
    b.apply(2)
    b.advance(8.0)
    m = b.observe()
    assert (m.replicas, m.replicas_desired, m.cold_starts) == (0, 2, 2)
    assert m.completed == 0 and m.queue_length == m.arrived > 0  # nothing can be served yet
    b.advance(8.0)
    m = b.observe()
    assert m.replicas == 2 and m.cold_starts == 0 and m.completed > 0
    # queued requests waited for the cold start: mean response far above the 0.2 s service time
    assert m.response_time_ms > 1000.0


@pytest.mark.parametrize("model", ["des", "fluid"])
def test_keep_alive_revives_warm_then_reclaims(model):
    cfg = SimConfig(cold_start_s=3.0, keep_alive_s=60.0, initial_replicas=3, model=model)
    b = SimBackend(cfg)
    b.reset(seed=0)
    b.advance(15.0)
    b.apply(1)  # two replicas go to the keep-alive pool
    b.advance(30.0)
    b.apply(3)  # within keep-alive: revived warm
    b.advance(15.0)
    m = b.observe()
    assert m.cold_starts == 0 and m.replicas == 3
    b.apply(1)
    b.advance(61.0)  # keep-alive expired: reclaimed
    b.apply(2)
    b.advance(2.0)
    m = b.observe()
    assert m.cold_starts == 1 and m.replicas == 1 and m.replicas_desired == 2


def test_same_seed_same_measurements_and_protocol():
    cfg = SimConfig(model="des")
    a, b = SimBackend(cfg), SimBackend(cfg)
    assert isinstance(a, FaasBackend)
    for be in (a, b):
        be.reset(seed=42)
        be.apply(4)
    for _ in range(20):
        a.advance(15.0)
        b.advance(15.0)
        assert a.observe() == b.observe()
    a.reset(seed=43)
    a.apply(4)
    a.advance(15.0)
    b.reset(seed=42)
    b.apply(4)
    b.advance(15.0)
    assert a.observe() != b.observe()


def test_fast_measurement_builder_matches_dataclass():
    from faas_gym.backends import sim

    vals = (1.0, 2.0, 3, 4, 0.5, 0.6, 7.0, 8.0, 9.0, 10, 11, 12, 0.1, 14, 15, 16)
    assert sim._measurement(*vals) == FaasMeasurement(*vals)


def test_bad_config_and_calls_raise():
    with pytest.raises(ValueError, match="model"):
        SimConfig(model="exact")
    with pytest.raises(ValueError, match="concurrency"):
        SimConfig(concurrency=0)
    with pytest.raises(ValueError, match="unknown keys"):
        SimBackend({"concurency": 2})
    b = SimBackend()
    with pytest.raises(RuntimeError, match="before advance"):
        b.observe()
    with pytest.raises(ValueError, match="replicas"):
        b.apply(-1)
    with pytest.raises(ValueError, match="seconds"):
        b.advance(0.0)


@pytest.mark.parametrize("workload", [{"kind": "poisson", "rate_rps": 10.0}, {"kind": "orcbench", "model": 0, "mean_rps": 10.0}])
def test_fluid_windows_of_varying_length_keep_the_arrival_rate(workload):
    # windows of 5-30 s over ~43,000 s: ~430k arrivals. Poisson: SD of the rate 0.15 %, tolerance
    # 1 %; OrcBench renewal (inter-arrival SCV ~30): SD ~ sqrt(30 / 430k) ~ 0.8 %, tolerance 4 %.
    b = SimBackend(SimConfig(workload=workload, initial_replicas=10))
    b.reset(seed=1)
    rng = np.random.default_rng(0)
    arrived = elapsed = 0.0
    for _ in range(3000):
        dt = float(rng.choice([5.0, 7.5, 15.0, 30.0]))
        b.advance(dt)
        arrived += b.observe().arrived
        elapsed += dt
    tol = 0.01 if workload["kind"] == "poisson" else 0.04
    assert arrived / elapsed == pytest.approx(10.0, rel=tol)
