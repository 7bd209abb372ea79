"""faas_gym.recipes: the burst-phase observation, its policy on the unwrapped env and its trainer."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest

import faas_gym  # noqa: F401  (registers ids)
from faas_gym.baselines import IdleGapPolicy
from faas_gym.benchmark import BURSTY_ID, TASKS, TUNED
from faas_gym.recipes import (
    RESIDUAL_OFFSETS,
    BurstPhaseFeatures,
    BurstPhaseObservation,
    BurstPhasePolicy,
    ResidualIdleGap,
    ResidualIdleGapEnv,
    ResidualIdleGapPolicy,
    burst_phase_trainer,
    residual_idle_gap_trainer,
)
from lwmecps_gym.core.evaluation import evaluate


def _rollout(env, seed, actions):
    obs, info = env.reset(seed=seed)
    out = [(obs, 0.0, info)]
    for a in actions:
        obs, r, _, _, info = env.step(a)
        out.append((obs, r, info))
    return out


def test_runs_follow_the_arrivals_and_are_capped():
    env = BurstPhaseObservation(gym.make(BURSTY_ID), max_run=8)
    assert env.observation_space.shape == (15,) and env.action_space == env.unwrapped.action_space
    rng = np.random.default_rng(0)
    steps = _rollout(env, 10_000, rng.integers(0, 5, size=120).tolist())
    idle = busy = 0
    seen_idle = seen_busy = False
    for obs, _, info in steps:
        assert env.observation_space.contains(obs)
        if info["metrics"]["arrived"] > 0:
            idle, busy = 0, busy + 1
        else:
            idle, busy = idle + 1, 0
        assert obs[11] == pytest.approx(min(idle, 8) / 8 * 2 - 1)
        assert obs[12] == pytest.approx(min(busy, 8) / 8 * 2 - 1)
        seen_idle |= idle >= 6  # the scenario's idle gaps (6-7 intervals) are in the sample
        seen_busy |= busy > 8  # and a burst longer than the cap
    assert seen_idle and seen_busy


def test_rate_features_are_the_last_two_intervals():
    env = BurstPhaseObservation(gym.make(BURSTY_ID))
    steps = _rollout(env, 10_001, [2] * 30)
    cap = np.log1p(env.unwrapped.rate_cap_rps)
    rates = [info["metrics"]["arrived"] / info["metrics"]["window_s"] for _, _, info in steps]
    for k, (obs, _, _) in enumerate(steps):
        assert obs[13] == pytest.approx(np.log1p(rates[k]) / cap * 2 - 1, abs=1e-6)
        prev = rates[k - 1] if k else 0.0
        assert obs[14] == pytest.approx(np.log1p(prev) / cap * 2 - 1, abs=1e-6)


def test_wrapper_changes_only_the_observation_and_reset_forgets_the_episode():
    actions = [4, 4, 0, 1, 2, 2, 3, 2] * 10
    raw = _rollout(gym.make(BURSTY_ID), 10_002, actions)
    env = BurstPhaseObservation(gym.make(BURSTY_ID))
    _rollout(env, 10_003, actions)  # a different episode first: its runs must not leak
    wrapped = _rollout(env, 10_002, actions)
    space = env.unwrapped.observation_space
    for (o_raw, r_raw, i_raw), (o_w, r_w, i_w) in zip(raw, wrapped, strict=True):
        assert r_raw == r_w and i_raw["metrics"] == i_w["metrics"]
        np.testing.assert_allclose(o_w[:11], 2 * (o_raw - space.low) / (space.high - space.low) - 1, atol=1e-6)
    again = BurstPhaseObservation(gym.make(BURSTY_ID))
    np.testing.assert_array_equal(_rollout(again, 10_002, actions)[-1][0], wrapped[-1][0])


class _Recorder:
    """An SB3-like model that records what it sees and answers a fixed action."""

    def __init__(self):
        self.seen = []

    def predict(self, obs, deterministic=True):
        self.seen.append(np.array(obs))
        return np.int64(2), None


def test_policy_sees_on_the_raw_env_what_the_wrapper_trains_on():
    model = _Recorder()
    policy = BurstPhasePolicy(model, gym.make(BURSTY_ID).observation_space, max_run=5)
    evaluate(gym.make(BURSTY_ID), policy, seeds=[10_004, 10_005], step_limit=25)
    env = BurstPhaseObservation(gym.make(BURSTY_ID), max_run=5)
    expected = []
    for seed in (10_004, 10_005):
        steps = _rollout(env, seed, [2] * 25)
        expected += [o for o, _, _ in steps[:25]]
    assert len(model.seen) == 50
    for got, want in zip(model.seen, expected, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("bad", [0, -1, 1.5, "8", True])
def test_max_run_must_be_a_positive_int(bad):
    space = gym.make(BURSTY_ID).observation_space
    with pytest.raises((ValueError, TypeError), match="max_run"):
        BurstPhaseFeatures(space, max_run=bad)
    with pytest.raises((ValueError, TypeError), match="max_run"):
        BurstPhaseObservation(gym.make(BURSTY_ID), max_run=bad)
    with pytest.raises((ValueError, TypeError), match="max_run"):
        burst_phase_trainer(max_run=bad)


def test_features_need_a_finite_faas_box():
    with pytest.raises(TypeError, match="observation_space"):
        BurstPhaseFeatures(gym.spaces.Discrete(3))
    with pytest.raises(ValueError, match="observation_space"):
        BurstPhaseFeatures(gym.spaces.Box(0.0, np.inf, shape=(11,)))


def _train_shipped(name, learning_starts, timesteps=200, seed=0):
    """The shipped recipe ``name`` trained for ``timesteps`` steps (buffer 1000) with training seed ``seed``."""
    import torch

    torch.set_num_threads(1)
    task = TASKS[0]
    (recipe,) = [r for r in task.recipes if r.name == name]
    small = dataclasses.replace(recipe, timesteps=timesteps, algo_kwargs={**recipe.algo_kwargs, "buffer_size": 1000,
                                                                           "learning_starts": learning_starts})
    return task, small.train(task, small, seed)


def test_shipped_burst_phase_recipe_trains_and_evaluates_on_the_task_env():
    task, policy = _train_shipped("DQN-burst-phase", learning_starts=50)
    assert isinstance(policy, BurstPhasePolicy) and policy.name == "DQN-burst-phase"
    r = evaluate(task.make_env(), policy, seeds=[10_000], step_limit=20)
    assert r.values("length") == [20]


# ----------------------------------------------------------------------------- residual on the idle-gap rule


def test_residual_offset_zero_is_the_idle_gap_rule_step_by_step():
    params = TUNED["idle_gap"]
    rule = IdleGapPolicy.from_env(gym.make(BURSTY_ID), **params)
    raw = gym.make(BURSTY_ID)
    obs, info = raw.reset(seed=10_003)
    rule.reset()
    env = ResidualIdleGapEnv(gym.make(BURSTY_ID), params)
    zero = RESIDUAL_OFFSETS.index(0)
    r_obs, r_info = env.reset(seed=10_003)
    changes = 0
    for _ in range(240):
        a = rule.act(obs, info)
        target = rule.last_target
        # the wrapper's observation carries the rule's target and idle run
        assert r_obs[15] == pytest.approx((target - 1) / 15 * 2 - 1)
        assert r_obs[16] == pytest.approx(min(rule.idle_intervals, 8) / 8 * 2 - 1)
        obs, r, term, trunc, info = raw.step(a)
        r_obs, r_r, r_term, r_trunc, r_info = env.step(zero)
        assert env.observation_space.contains(r_obs)
        assert r == r_r and r_info["metrics"] == info["metrics"] and (term, trunc) == (r_term, r_trunc)
        changes += a != raw.unwrapped.deltas.index(0)
        if term or trunc:
            break
    assert changes > 20  # the rule scales up and down many times in the episode


def test_residual_offsets_move_the_target():
    env = ResidualIdleGapEnv(gym.make(BURSTY_ID), TUNED["idle_gap"], offsets=(0, 4))
    env.reset(seed=10_000)
    replicas = []
    for _ in range(6):
        _, _, _, _, info = env.step(1)  # always 4 above the rule: climbs towards 7 + 4 = 11 while busy
        replicas.append(info["metrics"]["replicas_desired"])
    assert max(replicas) > TUNED["idle_gap"]["busy_replicas"]


def test_residual_policy_sees_what_the_wrapper_trains_on_and_none_is_the_rule():
    model = _Recorder()  # answers index 2 == offset 0 of RESIDUAL_OFFSETS
    assert RESIDUAL_OFFSETS[2] == 0
    env = gym.make(BURSTY_ID)
    policy = ResidualIdleGapPolicy(model, env, TUNED["idle_gap"])
    res = evaluate(gym.make(BURSTY_ID), policy, seeds=[10_004], step_limit=30)
    rule = IdleGapPolicy.from_env(env, **TUNED["idle_gap"])
    np.testing.assert_array_equal(res.values("return"),
                                  evaluate(gym.make(BURSTY_ID), rule, seeds=[10_004], step_limit=30).values("return"))
    none = ResidualIdleGapPolicy(None, env, TUNED["idle_gap"])
    np.testing.assert_array_equal(res.values("return"),
                                  evaluate(gym.make(BURSTY_ID), none, seeds=[10_004], step_limit=30).values("return"))
    wrapped = ResidualIdleGapEnv(gym.make(BURSTY_ID), TUNED["idle_gap"])
    expected = [o for o, _, _ in _rollout(wrapped, 10_004, [2] * 30)[:30]]
    for got, want in zip(model.seen, expected, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("bad", [(), (1, 2), (0, 0, 1), (0, 1.5), "0", None])
def test_residual_offsets_are_checked(bad):
    env = gym.make(BURSTY_ID)
    with pytest.raises((ValueError, TypeError), match="offsets"):
        ResidualIdleGap(env, offsets=bad)
    with pytest.raises((ValueError, TypeError), match="offsets"):
        residual_idle_gap_trainer(offsets=bad)


def test_residual_bad_rule_parameter_and_action_are_named():
    env = gym.make(BURSTY_ID)
    with pytest.raises(ValueError, match="rewarm_after"):
        ResidualIdleGap(env, {"drop_after": 3, "rewarm_after": 2})
    with pytest.raises((ValueError, TypeError), match="q_margin"):
        residual_idle_gap_trainer(q_margin=-1.0)
    wrapped = ResidualIdleGapEnv(gym.make(BURSTY_ID))
    wrapped.reset(seed=0)
    with pytest.raises(ValueError, match="residual action"):
        wrapped.step(len(RESIDUAL_OFFSETS))


def test_shipped_residual_recipe_starts_at_the_rule_and_trains():
    # no gradient step yet (learning_starts > timesteps): the greedy policy must be the rule itself
    task, policy = _train_shipped("DQN-residual-idle-gap", learning_starts=1000)
    assert isinstance(policy, ResidualIdleGapPolicy) and policy.name == "DQN-residual-idle-gap"
    rule = IdleGapPolicy.from_env(task.make_env(), **TUNED["idle_gap"])
    seeds = [10_000, 10_001]
    np.testing.assert_array_equal(evaluate(task.make_env(), policy, seeds=seeds).values("return"),
                                  evaluate(task.make_env(), rule, seeds=seeds).values("return"))
    _, trained = _train_shipped("DQN-residual-idle-gap", learning_starts=50, timesteps=300, seed=1)
    r = evaluate(task.make_env(), trained, seeds=[10_000], step_limit=20)
    assert r.values("length") == [20]
