"""A short SB3 run on the default id: the env trains with DQN/PPO and the harness evaluates the models."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import faas_gym  # noqa: F401
from lwmecps_gym.core import SB3Policy, evaluate


def make_env():
    return gym.wrappers.RescaleObservation(gym.make("faas_gym/Autoscaling-v0"), np.float32(-1.0), np.float32(1.0))


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["DQN", "PPO"])
def test_sb3_trains_and_evaluates(algo):
    import stable_baselines3 as sb3

    kw = {"learning_starts": 100, "buffer_size": 2000} if algo == "DQN" else {"n_steps": 256, "batch_size": 64}
    model = getattr(sb3, algo)("MlpPolicy", make_env(), seed=0, verbose=0, **kw)
    model.learn(total_timesteps=600)
    res = evaluate(make_env, SB3Policy(model), seeds=[0, 1], step_limit=50)
    summary = res.summary()
    assert res.policy == algo and len(res.episodes) == 2
    assert all(ep["length"] == 50 for ep in res.episodes)
    assert summary["replica_seconds"][0] > 0 and -50 * 2.55 <= summary["return"][0] <= 0
