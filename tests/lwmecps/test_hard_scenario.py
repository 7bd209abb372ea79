"""The hard scenario ``melbourne-flash`` (lwmecps_gym/ScalingHard-v0): events, budget, features, bounds."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import lwmecps_gym  # noqa: F401
from lwmecps_gym.baselines import MPCPolicy, ProportionalPolicy
from lwmecps_gym.benchmark import TASKS
from lwmecps_gym.core.evaluation import evaluate
from lwmecps_gym.scenarios.events import FlashCrowds
from lwmecps_gym.scenarios.hard import HARD_BUDGET, HARD_ID, ReplicaBudget

pytestmark = pytest.mark.filterwarnings("ignore:.*is out of date.*")


def test_flash_crowd_shape_and_mean_excess():
    fc = FlashCrowds(rate_per_hour=40.0, peak=(2.0, 4.0), ramp_s=(60.0, 60.0), hold_s=(300.0, 300.0),
                     decay_s=(120.0, 120.0))
    s = fc.shape(np.array([-1.0, 0.0, 30.0, 60.0, 200.0, 360.0, 420.0, 480.0, 1e4]), 60.0, 300.0, 120.0)
    np.testing.assert_allclose(s, [0, 0, 0.5, 1, 1, 1, 0.5, 0, 0])
    rng = np.random.default_rng(0)
    T, tau = 3_000, 30.0
    f, carry = fc.modulation(rng, T, 2, tau)
    assert f.shape == (T, 2) and f.min() >= 1.0 and carry.shape[1] == 2
    # E[excess] = events per second x E[K - 1] x area of the shape (ramp/2 + hold + decay/2)
    expect = 40.0 / 3600.0 * 2.0 * (30.0 + 300.0 + 60.0)
    n_events = 40.0 * T * tau / 3600.0 * 2
    rel_se = 1.5 / np.sqrt(n_events)  # Poisson count plus the spread of K (cv < 1.5 together)
    assert abs((f - 1.0).mean() / expect - 1.0) < 4 * rel_se


def test_flash_crowds_continue_across_chunks():
    fc = FlashCrowds(rate_per_hour=30.0)
    rng = np.random.default_rng(1)
    _, carry = fc.modulation(rng, 50, 3, 30.0)
    nxt, _ = fc.modulation(np.random.default_rng(2), 50, 3, 30.0, carry)
    assert np.all(nxt[: len(carry)] >= 1.0 + carry[: min(len(carry), 50)] - 1e-12)


def test_flash_crowd_validation():
    with pytest.raises(ValueError, match="peak"):
        FlashCrowds(peak=(0.5, 2.0))
    with pytest.raises(ValueError, match="ramp_s"):
        FlashCrowds(ramp_s=(60.0,))
    with pytest.raises(ValueError, match="rate_per_hour"):
        FlashCrowds(rate_per_hour=-1.0)


def test_budget_admission():
    np.testing.assert_array_equal(ReplicaBudget.admit(np.array([1, 2, 3]), 10), [1, 2, 3])
    a = ReplicaBudget.admit(np.array([10, 10, 0, 20]), 20)
    assert a.sum() == 20 and a[2] == 0
    np.testing.assert_array_equal(a, [5, 5, 0, 10])
    b = ReplicaBudget.admit(np.array([3, 3, 3]), 4)  # remainders tie: lower index first
    np.testing.assert_array_equal(b, [2, 1, 1])


def test_env_contract_budget_and_trend_features():
    env = gym.make(HARD_ID)
    u = env.unwrapped
    n = u.n
    assert env.observation_space.shape == (7 * n + 3,)
    obs, info = env.reset(seed=3)
    assert info["replica_budget"] == HARD_BUDGET and env.observation_space.contains(obs)
    prev = obs
    for _ in range(6):
        a = np.full(n, u.max_replicas)  # asks for far more than the budget
        obs, r, term, trunc, info = env.step(a)
        assert env.observation_space.contains(obs)
        assert sum(info["replicas_desired"]) == HARD_BUDGET and info["replicas_requested"] == list(a)
        unit = u.max_replicas / 4.0  # env demand entry -> demand in units of 4 replicas (4 mu)
        np.testing.assert_allclose(obs[5 * n + 2:6 * n + 2], np.clip((obs[:n] - prev[:n]) * unit, -4, 4), atol=1e-5)
        assert obs[-1] == pytest.approx(0.0)  # budget used up
        prev = obs
    # same seed, same actions -> same trajectory
    o1, _ = env.reset(seed=11)
    o2, _ = env.reset(seed=11)
    np.testing.assert_array_equal(o1, o2)


def test_demand_relative_action_offset_zero_is_the_hpa_rule():
    env = gym.make(HARD_ID, action="demand-relative")
    u = env.unwrapped
    _, info = env.reset(seed=0)
    zero = int(np.flatnonzero(env.get_wrapper_attr("offsets") == 0)[0])
    for _ in range(3):
        lam = np.asarray(info["demand_rps"])
        _, _, _, _, info = env.step(np.full(u.n, zero))
        hpa = np.clip(np.ceil(lam / (u.scenario.service_rate_rps * 0.7) - 1e-9), 0, u.max_replicas)
        np.testing.assert_array_equal(info["replicas_requested"], hpa)
    with pytest.raises(ValueError, match="action must be"):
        env.step(np.full(u.n, 99))


def test_demand_forecast_is_the_true_future_and_has_no_side_effects():
    env = gym.make(HARD_ID)
    env.reset(seed=5)
    b = env.unwrapped.backend
    f1 = b.demand_forecast(5)
    np.testing.assert_array_equal(f1, b.demand_forecast(5))
    env.step(np.full(env.unwrapped.n, 4))
    np.testing.assert_allclose(b.demand_forecast(4), f1[1:])
    with pytest.raises(ValueError, match="n_windows"):
        b.demand_forecast(0)


def test_oracle_bound_beats_tuned_hpa_and_naive_mpc_on_held_out_seeds():
    """Paired on 2 held-out seeds (full episodes): the clairvoyant MPC is better on every one.

    The HPA parameters are the ones the grid search picks on the tuning seeds (docs table).
    """
    task = TASKS[0]
    env = task.make_env()
    seeds = list(task.eval_seeds[:2])
    oracle = evaluate(env, MPCPolicy("oracle", env), seeds=seeds).values("return")
    hpa = evaluate(env, ProportionalPolicy(0.45, stabilization_windows=4), seeds=seeds).values("return")
    naive = evaluate(env, MPCPolicy("last-window", env), seeds=seeds).values("return")
    assert np.all(oracle > hpa) and np.all(oracle > naive)
    assert oracle.mean() > hpa.mean() + 0.1 * abs(hpa.mean())


def test_task_declaration_is_cheap_and_the_oracle_refuses_a_foreign_env():
    task = TASKS[0]
    env = task.make_env()
    names = [p.name for p in task.baselines(env)]  # tuned baselines tune lazily, on first use
    assert names == ["static", "hpa", "nearest-site", "mpc-last-window"]
    (oracle,) = task.oracles(env)
    with pytest.raises(RuntimeError, match="env instance"):
        evaluate(task.make_env(), oracle, seeds=[task.eval_seeds[0]], step_limit=2)
    assert len(evaluate(env, oracle, seeds=[task.eval_seeds[0]], step_limit=2).values("return")) == 1
