"""A short SB3 training run on the env (the SB3 path works end to end)."""

import functools

import gymnasium as gym
import numpy as np
import pytest

import marllb_env  # noqa: F401
from lwmecps_gym.core.evaluation import evaluate
from lwmecps_gym.core.policy import SB3Policy


@pytest.mark.slow
@pytest.mark.parametrize("algo, action_type", [("PPO", "discrete"), ("SAC", "continuous")])
def test_sb3_trains_and_evaluates(algo, action_type):
    sb3 = pytest.importorskip("stable_baselines3")
    import torch

    torch.set_num_threads(1)
    make = functools.partial(gym.make, "marllb_env/LoadBalance-v0", max_episode_steps=64, action_type=action_type)
    env = make()
    if algo == "PPO":
        model = sb3.PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0)
    else:
        model = sb3.SAC("MlpPolicy", env, learning_starts=32, batch_size=32, seed=0)
    model.learn(total_timesteps=128)
    res = evaluate(make, SB3Policy(model, name=algo), seeds=[0, 1])
    assert np.all(res.values("length") == 64)
    assert np.all((res.values("jain_reward_field") >= 0.25) & (res.values("jain_reward_field") <= 1.0))
    assert np.all(res.values("fct_mean_s") > 0)
