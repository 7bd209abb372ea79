"""Baselines: the HPA rules exactly as the Kubernetes documentation states them, KPA, OpenFaaS, others."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest

import faas_gym  # noqa: F401
from faas_gym.baselines import (
    HPAPolicy,
    KPAPolicy,
    OpenFaaSRPSPolicy,
    StaticPolicy,
    ThresholdPolicy,
    all_baselines,
)
from lwmecps_gym.core.evaluation import evaluate


def metrics(replicas_desired, replicas=None, cpu=0.5, rate=0.0, resp=0.0, queue=0, slo=0.0):
    return {
        "replicas_desired": replicas_desired,
        "replicas": replicas_desired if replicas is None else replicas,
        "cpu_utilization": cpu,
        "request_rate_rps": rate,
        "response_time_ms": resp,
        "queue_length": queue,
        "slo_violation_rate": slo,
    }


@pytest.mark.parametrize(
    "current,util,target,expected",
    [
        (4, 0.9, 0.5, 8),  # ceil(4 * 0.9 / 0.5) = ceil(7.2) = 8
        (3, 0.2, 0.5, 2),  # ceil(1.2) = 2
        (10, 0.54, 0.5, 10),  # ratio 1.08 within tolerance 0.1 -> no change
        (10, 0.46, 0.5, 10),  # ratio 0.92 within tolerance
        (10, 0.56, 0.5, 12),  # ratio 1.12 -> ceil(11.2) = 12
        (1, 1.0, 0.7, 2),  # ceil(1.43) = 2
    ],
)
def test_hpa_replica_formula_and_tolerance(current, util, target, expected):
    assert HPAPolicy.raw_recommendation(current, current, util, target, 0.1) == expected


def test_hpa_unready_pods_count_as_zero_on_scale_up():
    # 2 ready pods at 90 % + 2 cold-starting; target 50 %: ratio over ready = 1.8 (scale up),
    # with unready at 0 %: 0.9 * 2 / (0.5 * 4) = 0.9 -> reverses direction -> no change
    assert HPAPolicy.raw_recommendation(4, 2, 0.9, 0.5, 0.1) == 4
    # 2 ready at 100 % + 1 unready, target 50 %: 2 * 1.0 / (0.5 * 3) = 1.33 -> ceil(3 * 1.33) = 4
    assert HPAPolicy.raw_recommendation(3, 2, 1.0, 0.5, 0.1) == 4


def test_hpa_scale_down_stabilisation_takes_max_over_window():
    p = HPAPolicy(target_utilization=0.5, interval_s=15.0, scale_down_stabilization_s=300.0, max_replicas=50)
    p.reset()
    assert p.desired_replicas(metrics(10, cpu=0.5)) == 10  # rec 10
    assert p.desired_replicas(metrics(10, cpu=0.1)) == 10  # rec 2, but max over window is 10
    for _ in range(17):  # 15 s steps: the rec of 10 leaves the 300 s window after 20 steps in total
        assert p.desired_replicas(metrics(10, cpu=0.1)) == 10
    assert p.desired_replicas(metrics(10, cpu=0.1)) == 10
    assert p.desired_replicas(metrics(10, cpu=0.1)) == 2


def test_hpa_scale_up_limited_to_max_of_100_percent_and_4_pods():
    p = HPAPolicy(target_utilization=0.1, interval_s=15.0, max_replicas=100)
    assert p.desired_replicas(metrics(2, cpu=1.0)) == 6  # rec 20; limit max(2 + 4, 2 * 2) = 6
    p.reset()
    assert p.desired_replicas(metrics(10, cpu=1.0)) == 20  # rec 100; limit max(14, 20) = 20
    p30 = HPAPolicy(target_utilization=0.1, interval_s=30.0, max_replicas=100)
    assert p30.desired_replicas(metrics(2, cpu=1.0)) == 12  # two 15 s periods: 2 -> 6 -> 12


def test_action_mapping_picks_closest_delta():
    p = StaticPolicy(replicas=5, deltas=(-1, 0, 1), max_replicas=10)
    assert p.act(None, {"metrics": metrics(3)}) == 2
    assert p.act(None, {"metrics": metrics(5)}) == 1
    assert p.act(None, {"metrics": metrics(8)}) == 0
    big = StaticPolicy(replicas=9, deltas=tuple(range(-5, 6)), max_replicas=10)
    assert big.deltas[big.act(None, {"metrics": metrics(1)})] == 5
    assert big.deltas[big.act(None, {"metrics": metrics(6)})] == 3
    two = StaticPolicy(replicas=4, deltas=(-1, 1), max_replicas=10)
    assert two.deltas[two.act(None, {"metrics": metrics(4)})] in (-1, 1)


def test_kpa_concurrency_rule_and_panic():
    p = KPAPolicy(target=4.0, target_utilization=0.5, interval_s=15.0, max_replicas=100)
    # concurrency by Little's law: 10 req/s * 0.8 s = 8 in flight -> ceil(8 / 2) = 4
    assert p.desired_replicas(metrics(4, rate=10.0, resp=800.0)) == 4
    # burst: 40 req/s * 2 s = 80 in flight; panic window (1 step) wants 40 >= 2 x 4 ready -> panic
    assert p.desired_replicas(metrics(4, rate=40.0, resp=2000.0)) == 40
    # load gone, but no scale-down while panicking (stable window = 4 steps)
    assert p.desired_replicas(metrics(40, rate=1.0, resp=500.0)) == 40
    # scale-down rate limit: at most halve the ready replicas per decision
    p2 = KPAPolicy(target=4.0, target_utilization=0.5, interval_s=60.0, max_replicas=100)
    assert p2.desired_replicas(metrics(20, rate=0.1, resp=100.0)) == 10


def test_openfaas_rps_rule():
    p = OpenFaaSRPSPolicy(target_rps=50.0, target_proportion=0.9, max_replicas=20)
    assert p.desired_replicas(metrics(1, rate=100.0)) == math.ceil(100 / 45)
    env = gym.make("faas_gym/Autoscaling-v0")
    cfg = env.unwrapped.backend.config
    cal = OpenFaaSRPSPolicy.from_env(env)
    assert cal.target_rps == pytest.approx(0.8 * cfg.concurrency / cfg.service_time.mean_s)


def test_threshold_rule():
    p = ThresholdPolicy(upper=0.8, lower=0.3, slo_upper=0.1)
    assert p.desired_replicas(metrics(3, cpu=0.9)) == 4
    assert p.desired_replicas(metrics(3, cpu=0.5, slo=0.2)) == 4
    assert p.desired_replicas(metrics(3, cpu=0.1)) == 2
    assert p.desired_replicas(metrics(3, cpu=0.1, queue=5)) == 3
    assert p.desired_replicas(metrics(3, cpu=0.5)) == 3


def test_bad_baseline_arguments():
    with pytest.raises(ValueError, match="target_utilization"):
        HPAPolicy(target_utilization=0)
    with pytest.raises(ValueError, match="replicas"):
        StaticPolicy(replicas=99, max_replicas=10)
    with pytest.raises(ValueError, match="lower"):
        ThresholdPolicy(upper=0.5, lower=0.6)
    with pytest.raises(TypeError, match="not a faas_gym env"):
        HPAPolicy.from_env(gym.make("CartPole-v1"))


def test_baselines_run_in_the_harness_and_scaling_beats_static_min():
    env_id = "faas_gym/Autoscaling-v0"
    results = {p.name: evaluate(env_id, p, seeds=[0, 1], step_limit=60) for p in all_baselines(gym.make(env_id))}
    assert set(results) == {"hpa", "kpa", "openfaas_rps", "threshold", "static_min", "static_max"}
    mean = {k: r.summary()["slo_violation_rate"][0] for k, r in results.items()}
    cost = {k: r.summary()["replica_seconds"][0] for k, r in results.items()}
    # every autoscaler keeps the SLO far better than one replica, and costs less than max replicas
    for k in ("hpa", "kpa", "openfaas_rps", "threshold"):
        assert mean[k] < 0.5 * mean["static_min"]
        assert cost[k] < cost["static_max"]
