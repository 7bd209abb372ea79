"""The residual recipe of ``hidden_drift`` (:mod:`marllb_env.residual`): a bounded multiplicative
correction on the tuned FCT-adaptive SED, which it reproduces exactly at residual 0."""

import gymnasium as gym
import numpy as np
import pytest

import marllb_env  # noqa: F401  (registers the ids)
from lwmecps_gym.core.evaluation import evaluate
from marllb_env.baselines import FCTAdaptiveSED
from marllb_env.benchmark import HARD_ID, TASKS, TUNED_ADAPTIVE
from marllb_env.residual import FEATURE_MODES, ResidualPolicy, ResidualSED, ResidualSEDWrapper


def _base():
    return FCTAdaptiveSED(**TUNED_ADAPTIVE)


def test_residual_zero_is_the_tuned_heuristic_exactly():
    seeds = [10_000, 10_001]
    ref = evaluate(HARD_ID, _base(), seeds=seeds)
    res = evaluate(HARD_ID, ResidualPolicy(None, _base()), seeds=seeds)
    np.testing.assert_array_equal(res.values("fct_mean_s"), ref.values("fct_mean_s"))
    np.testing.assert_array_equal(res.values("flows_completed"), ref.values("flows_completed"))


@pytest.mark.parametrize("features", FEATURE_MODES)
def test_wrapper_applies_weights_times_exp_scale_residual(features):
    scale, steps = 0.5, 60
    plain, wrapped = gym.make(HARD_ID), ResidualSEDWrapper(gym.make(HARD_ID), _base(), scale, features)
    heuristic, mirror = _base(), ResidualSED(_base(), scale, features)
    obs, info = plain.reset(seed=3)
    heuristic.reset(3)
    x, _ = wrapped.reset(seed=3)
    np.testing.assert_array_equal(x, mirror.observe(obs, info))
    assert wrapped.observation_space.contains(x)
    assert wrapped.action_space.shape == (8,)
    rng = np.random.default_rng(0)
    for t in range(steps):
        if t < steps // 2:  # residual 0: the heuristic's action, bit for bit
            a = heuristic.act(obs, info)
            obs, _, _, _, info = plain.step(a)
            x, _, _, _, winfo = wrapped.step(np.zeros(8, np.float32))
            np.testing.assert_array_equal(winfo["weights"], info["weights"])
            np.testing.assert_array_equal(x, mirror.observe(obs, info))  # same observation as on the plain env
        else:  # the applied weight ratios are the heuristic's times exp(scale * (r_i - r_j))
            base_w = wrapped.residual.base_weights.copy()
            r = rng.uniform(-1, 1, 8).astype(np.float32)
            x, _, _, _, winfo = wrapped.step(r)
            applied = np.asarray(winfo["weights"])
            want = base_w * np.exp(scale * r.astype(np.float64))
            np.testing.assert_allclose(applied / applied[0], want / want[0], rtol=1e-5)
        assert wrapped.observation_space.contains(x)
        assert np.all(np.isfinite(x))
    plain.close()
    wrapped.close()


def test_bad_residuals_and_envs_are_refused():
    env = ResidualSEDWrapper(gym.make(HARD_ID), _base())
    env.reset(seed=0)
    for bad, match in ((np.full(8, 1.5, np.float32), r"\[-1, 1\]"), (np.full(8, np.nan, np.float32), r"\[-1, 1\]"),
                       (np.zeros(7, np.float32), r"shape \(8,\)")):
        with pytest.raises(ValueError, match=match):
            env.step(bad)
    env.step(np.zeros(8, np.float32))  # still usable after a refused action
    env.close()
    with pytest.raises(RuntimeError, match="before observe"):
        ResidualSED(_base()).action(np.zeros(8))
    with pytest.raises(ValueError, match="scale"):
        ResidualSED(_base(), scale=0.0)
    with pytest.raises(ValueError, match="features"):
        ResidualSED(_base(), features="raw")
    with pytest.raises(TypeError, match="FCTAdaptiveSED"):
        ResidualSED(object())
    for kwargs, match in (({"action_mode": "discrete"}, "continuous"), ({"dispatch": "lsq"}, "dispatch='sed'")):
        env = ResidualSEDWrapper(gym.make(HARD_ID, **kwargs), _base())
        with pytest.raises(ValueError, match=match):
            env.reset(seed=0)
        env.close()


def test_residual_recipe_trains_and_evaluates_smoke():
    pytest.importorskip("stable_baselines3")
    import dataclasses

    import torch

    torch.set_num_threads(1)
    task = TASKS[0]
    recipe = next(r for r in task.recipes if r.name.startswith("Residual"))
    recipe = dataclasses.replace(recipe, timesteps=64, n_envs=1)
    policy = recipe.train(task, recipe, 0)
    assert isinstance(policy, ResidualPolicy) and policy.name == recipe.name
    res = evaluate(HARD_ID, policy, seeds=[10_000], step_limit=40)
    assert res.values("length").tolist() == [40.0]
    assert np.all(res.values("fct_mean_s") > 0)
