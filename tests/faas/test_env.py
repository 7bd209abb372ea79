"""The faas_gym envs: checkers, spaces, determinism, clipping, reward bounds, arguments, backends."""

from __future__ import annotations

import subprocess
import sys
import warnings
from unittest import mock

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import faas_gym
from faas_gym.backends.base import FaasBackend, FaasMeasurement
from faas_gym.backends.sim import SimBackend
from faas_gym.env import FaasAutoscalingEnv

IDS = ["FaaSTrainGym-v1", "faas_gym/Autoscaling-v0", "faas_gym/AutoscalingDay-v0"]


@pytest.mark.parametrize("env_id", IDS)
def test_both_checkers_pass_without_warnings(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("kwargs", [{"sim": {"model": "des"}}, {"action_mode": "scale_up_down"}])
def test_checkers_pass_for_variants(kwargs):
    env = gym.make("faas_gym/Autoscaling-v0", **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)
    assert [str(w.message) for w in caught] == []


def test_registered_shapes_and_episode_lengths():
    expected = {"FaaSTrainGym-v1": (11, 10, 30.0), "faas_gym/Autoscaling-v0": (3, 240, 15.0), "faas_gym/AutoscalingDay-v0": (3, 1440, 60.0)}
    for env_id, (n_actions, steps, interval) in expected.items():
        env = gym.make(env_id)
        assert env.action_space.n == n_actions and env.spec.max_episode_steps == steps
        assert env.unwrapped.interval_s == interval
        assert env.observation_space.shape == (11,) and env.observation_space.dtype == np.float32
    assert gym.make("FaaSTrainGym-v1").unwrapped.deltas == tuple(range(-5, 6))
    env = gym.make("FaaSTrainGym-v1")
    env.reset(seed=0)
    n = 0
    while True:
        n += 1
        *_, term, trunc, _ = env.step(5)
        if term or trunc:
            break
    assert (n, term, trunc) == (10, False, True)


def rollout(env, seed, actions):
    obs, info = env.reset(seed=seed)
    out = [obs]
    rewards, metrics = [], []
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        out.append(obs)
        rewards.append(r)
        metrics.append(info["metrics"])
    return np.array(out), rewards, metrics


@pytest.mark.parametrize("model", ["fluid", "des"])
def test_same_seed_same_trajectory(model):
    actions = np.random.default_rng(0).integers(0, 3, 60)
    a = rollout(gym.make("faas_gym/Autoscaling-v0", sim_config={"model": model}), 5, actions)
    b = rollout(gym.make("faas_gym/Autoscaling-v0", sim_config={"model": model}), 5, actions)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[1] == b[1] and a[2] == b[2]
    c = rollout(gym.make("faas_gym/Autoscaling-v0", sim_config={"model": model}), 6, actions)
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize("model", ["fluid", "des"])
def test_workload_independent_of_actions(model):
    # the workload has its own random stream: two policies see the same arrivals for a seed
    up = rollout(gym.make("faas_gym/Autoscaling-v0", sim_config={"model": model}), 3, [2] * 40)[2]
    down = rollout(gym.make("faas_gym/Autoscaling-v0", sim_config={"model": model}), 3, [0] * 40)[2]
    assert [m["arrived"] for m in up] == [m["arrived"] for m in down]
    assert [m["replicas_desired"] for m in up] != [m["replicas_desired"] for m in down]


def test_observations_in_bounds_reward_bounded_fresh_arrays():
    env = gym.make("faas_gym/Autoscaling-v0", sim_config={"queue_capacity": 30}, min_replicas=0, max_replicas=6)
    space = env.observation_space
    bound = -(1.0 + 0.5 + 0.05 + 1.0)
    obs, _ = env.reset(seed=1)
    rng = np.random.default_rng(1)
    prev = obs
    for _ in range(400):
        obs, r, term, trunc, info = env.step(int(rng.integers(0, 3)))
        assert space.contains(obs) and obs is not prev
        assert isinstance(r, float) and bound <= r <= 0.0
        assert type(term) is bool and type(trunc) is bool
        assert set(info["metrics"]) >= {"response_time_ms", "replica_seconds", "cold_starts", "slo_violation_rate"}
        prev = obs
        if trunc:
            env.reset()


def test_saturating_observation_keeps_raw_metric_in_info():
    env = gym.make("faas_gym/Autoscaling-v0", response_time_cap_ms=100.0, rate_cap_rps=1.0)
    obs, info = env.reset(seed=0)
    for _ in range(5):
        obs, _, _, _, info = env.step(1)
    assert env.observation_space.contains(obs)
    assert obs[4] == pytest.approx(min(info["metrics"]["request_rate_rps"], 1.0))
    assert info["metrics"]["response_time_ms"] > 100.0 and obs[3] == pytest.approx(100.0)


def test_clipping_is_reported():
    env = gym.make("FaaSTrainGym-v1")
    env.reset(seed=0)
    _, _, _, _, info = env.step(10)  # +5 from 1
    assert info["clipped"] is False and info["metrics"]["replicas_desired"] == 6
    _, _, _, _, info = env.step(10)  # +5 from 6 -> 11 > max 10
    assert info["clipped"] is True and info["requested_replicas"] == 11 and info["metrics"]["replicas_desired"] == 10
    _, _, _, _, info = env.step(0)  # -5
    assert info["metrics"]["replicas_desired"] == 5
    _, _, _, _, info = env.step(0)  # -5 from 5 -> 0 < min 1
    assert info["clipped"] is True and info["requested_replicas"] == 0 and info["metrics"]["replicas_desired"] == 1


def test_two_action_mode_scales_by_one():
    env = gym.make("faas_gym/Autoscaling-v0", action_mode="scale_up_down", initial_replicas=3)
    env.reset(seed=0)
    assert env.action_space.n == 2
    assert env.step(1)[4]["metrics"]["replicas_desired"] == 4
    assert env.step(0)[4]["metrics"]["replicas_desired"] == 3


def test_reward_matches_documented_formula():
    env = gym.make("faas_gym/Autoscaling-v0", w_slo=2.0, w_cost=0.3, w_cold_start=0.7, w_drop=1.5, max_replicas=8)
    env.reset(seed=4)
    for a in [2, 2, 2, 0, 1, 2]:
        _, r, _, _, info = env.step(a)
        m = info["metrics"]
        drop = m["dropped"] / m["arrived"] if m["arrived"] else 0.0
        expect = -(2.0 * m["slo_violation_rate"] + 0.3 * m["replicas_desired"] / 8 + 0.7 * m["cold_starts"] / 8 + 1.5 * drop)
        assert r == pytest.approx(expect)


def test_episode_metrics_are_request_weighted_totals():
    env = gym.make("faas_gym/Autoscaling-v0")
    env.reset(seed=2)
    ms = []
    for _ in range(30):
        _, _, _, _, info = env.step(2)
        ms.append(info["metrics"])
    ep = info["episode_metrics"]
    done = sum(m["completed"] for m in ms)
    assert ep["response_time_ms"] == pytest.approx(sum(m["response_time_ms"] * m["completed"] for m in ms) / done)
    assert ep["replica_seconds"] == pytest.approx(sum(m["replica_seconds"] for m in ms))
    assert ep["cold_starts"] == sum(m["cold_starts"] for m in ms) > 0


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        ({"min_replicas": -1}, ValueError, "min_replicas"),
        ({"min_replicas": 5, "max_replicas": 3}, ValueError, "max_replicas"),
        ({"initial_replicas": 20}, ValueError, "initial_replicas"),
        ({"interval_s": 0}, ValueError, "interval_s"),
        ({"action_mode": "absolute"}, ValueError, "action_mode"),
        ({"deltas": []}, ValueError, "deltas"),
        ({"deltas": [1, 1]}, ValueError, "repeat"),
        ({"deltas": [0.5]}, TypeError, "deltas"),
        ({"w_cost": -1}, ValueError, "w_cost"),
        ({"slo_ms": 0}, ValueError, "slo_ms"),
        ({"backend": "knative"}, ValueError, "backend"),
        ({"backend": "openfaas"}, ValueError, "function_name"),
        ({"backend": object()}, TypeError, "lacks"),
        ({"sim_config": {"concurrency": 0}}, ValueError, "concurrency"),
        ({"sim_config": {"workload": {"kind": "poisson", "rate": 1}}}, ValueError, "unknown keys"),
        ({"render_mode": "human"}, ValueError, "render_mode"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        FaasAutoscalingEnv(**kwargs)


def test_bad_actions_raise():
    env = FaasAutoscalingEnv()
    with pytest.raises(ResetNeeded, match="reset"):
        env.step(0)
    env.reset(seed=0)
    for bad in (3, -1, 1.5):
        with pytest.raises(ValueError, match=r"action must be an integer in \[0, 2\]"):
            env.step(bad)
    assert env.step(np.int64(2))[4]["metrics"]["replicas_desired"] == 2


def test_accepts_a_backend_instance_and_drives_it_through_the_protocol():
    m = FaasMeasurement(15.0, 15.0, 2, 2, 0.5, 0.4, 120.0, 3.0, 3.0, 0, 1, 0, 0.25, None, None, None)
    backend = mock.create_autospec(FaasBackend, instance=True)
    backend.observe.return_value = m
    env = FaasAutoscalingEnv(backend=backend, initial_replicas=2)
    obs, _ = env.reset(seed=0)
    backend.reset.assert_called_once()
    backend.apply.assert_called_with(2)
    backend.advance.assert_called_with(15.0)
    obs, r, *_ = env.step(2)
    backend.apply.assert_called_with(3)
    assert obs[:9].tolist() == pytest.approx([2, 0.5, 0.4, 120.0, 3.0, 3.0, 0, 1, 2])
    assert r == pytest.approx(-(0.25 + 0.5 * 2 / 16))  # arrived unknown -> rate x window; no drops


def test_slo_falls_back_to_mean_response_time_when_backend_cannot_tell():
    m = FaasMeasurement(15.0, 15.0, 1, 1, 0.5, 0.4, 9000.0, 3.0, 3.0, 0, 0, 0, None)
    backend = mock.create_autospec(FaasBackend, instance=True)
    backend.observe.return_value = m
    env = FaasAutoscalingEnv(backend=backend)
    env.reset(seed=0)
    _, r, _, _, info = env.step(1)
    assert r == pytest.approx(-(1.0 + 0.5 / 16)) and np.isnan(info["metrics"]["slo_violation_rate"])


def test_openfaas_backend_is_built_lazily_with_env_arguments():
    fake = mock.MagicMock()
    with mock.patch.dict(sys.modules, {"faas_gym.backends.openfaas": mock.MagicMock(OpenFaaSBackend=fake)}):
        FaasAutoscalingEnv(
            backend="openfaas",
            function_name="figlet",
            interval_s=30.0,
            min_replicas=1,
            max_replicas=5,
            slo_ms=500.0,
            backend_kwargs={"prometheus_url": "http://127.0.0.1:9"},
        )
    fake.from_env_kwargs.assert_called_once_with(
        function_name="figlet",
        namespace="openfaas-fn",
        sample_interval_s=30.0,
        slo_ms=500.0,
        min_replicas=1,
        max_replicas=5,
        prometheus_url="http://127.0.0.1:9",
    )


def test_spec_round_trip_with_dict_config():
    env = gym.make("faas_gym/AutoscalingDay-v0")
    again = gym.make(env.spec)
    assert isinstance(again.unwrapped.backend, SimBackend)
    assert again.unwrapped.backend.workload == env.unwrapped.backend.workload


def test_import_does_not_pull_heavy_dependencies():
    code = (
        "import sys, faas_gym, faas_gym.env, faas_gym.baselines, faas_gym.backends.sim, gymnasium as gym;"
        "gym.make('faas_gym/Autoscaling-v0').reset(seed=0);"
        "bad=[m for m in ('torch','stable_baselines3','kubernetes','prometheus_api_client','pettingzoo','faas_gym.backends.openfaas') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_registration_is_idempotent():
    import importlib

    before = dict(gym.registry)
    importlib.reload(faas_gym)
    assert set(gym.registry) == set(before)


def test_render_ansi():
    env = gym.make("faas_gym/Autoscaling-v0", render_mode="ansi")
    env.reset(seed=0)
    env.step(1)
    assert "replicas=" in env.render()


def test_fluid_default_scenario_agrees_with_exact_des():
    # Same seeds -> the same OrcBench arrivals in both models (the fluid model counts the DES's
    # arrival times), so the comparison is paired and the differences are model error plus DES
    # service-time noise. Over 3 half-hour episodes (~65k requests per policy) the measured gaps
    # are a few % (response time) and < 0.01 (SLO rate); tolerances: 10 % and 0.02 absolute.
    from faas_gym.baselines import HPAPolicy, StaticPolicy
    from lwmecps_gym.core.evaluation import evaluate

    env = gym.make("faas_gym/Autoscaling-v0")
    for policy in (HPAPolicy.from_env(env), StaticPolicy.from_env(env, replicas=8)):
        out = {}
        for model in ("fluid", "des"):
            r = evaluate("faas_gym/Autoscaling-v0", policy, seeds=[0, 1, 2], step_limit=120, sim_config={"model": model})
            out[model] = {k: v[0] for k, v in r.summary().items()}
        f, d = out["fluid"], out["des"]
        assert f["response_time_ms"] == pytest.approx(d["response_time_ms"], rel=0.10)
        assert abs(f["slo_violation_rate"] - d["slo_violation_rate"]) < 0.02
        assert f["cpu_utilization"] == pytest.approx(d["cpu_utilization"], abs=0.03)
        assert f["return"] == pytest.approx(d["return"], rel=0.05)


def test_upstream_aliases_give_the_same_env():
    a = FaasAutoscalingEnv(sim={"cold_start_s": 9.0}, sample_interval=30.0)
    b = FaasAutoscalingEnv(sim_config={"cold_start_s": 9.0}, interval_s=30.0)
    assert a.interval_s == b.interval_s == 30.0
    assert a.backend.config == b.backend.config and a.backend.config.cold_start_s == 9.0
    with pytest.raises(TypeError, match="interval_s or its alias sample_interval"):
        FaasAutoscalingEnv(interval_s=15.0, sample_interval=30.0)
    with pytest.raises(TypeError, match="sim_config or its alias sim"):
        FaasAutoscalingEnv(sim_config={}, sim={})


@pytest.mark.parametrize("kwargs", [{"backend_kwargs": {"prometheus_url": "http://127.0.0.1:9"}},
                                    {"function_name": "figlet"}, {"namespace": "openfaas-fn"}])
def test_openfaas_arguments_with_the_simulator_raise(kwargs):
    name = next(iter(kwargs))
    with pytest.raises(ValueError, match=f"{name} is only valid with backend='openfaas'"):
        FaasAutoscalingEnv(**kwargs)


def test_env_follows_the_backend_env_template():
    from lwmecps_gym.core.backend import Backend
    from lwmecps_gym.core.env import BackendEnv

    env = FaasAutoscalingEnv()
    assert isinstance(env, BackendEnv) and isinstance(env.backend, Backend)
    env.reset(seed=3)
    _, r, *_ = env.step(2)
    m = env.unwrapped.last_measurement
    assert r == env.reward(m)  # the reward is a pure function of the measurement
    assert env.reward(m) == env.reward(m)
