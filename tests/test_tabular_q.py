"""Tabular Q-learning: discretiser arithmetic and learning on a tiny known MDP."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from lwmecps_gym.agents import ObservationDiscretizer, TabularQLearning


def test_discretizer_maps_bins_and_edges():
    d = ObservationDiscretizer([0, 0], [1, 10], bins=[2, 5])
    assert d.n_states == 10
    assert d([0.0, 0.0]) == 0
    assert d([0.99, 0.0]) == 1          # second bin of dim 0
    assert d([0.0, 9.99]) == 2 * 4      # last bin of dim 1, radix 2
    assert d([5.0, -3.0]) == 1          # clipped into edge bins
    with pytest.raises(ValueError, match="components"):
        ObservationDiscretizer([0], [1], components=[3])


class MatchEnv(gym.Env):
    """Obs is a target in {0,1,2} (encoded in [0,1]); reward 1 iff each action dim equals the target."""

    observation_space = gym.spaces.Box(0.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.MultiDiscrete([3, 3])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        self.target = int(self.np_random.integers(3))
        return np.array([self.target / 3 + 0.1], np.float32)

    def step(self, action):
        r = float(np.mean(np.asarray(action) == self.target))
        self.t += 1
        return self._obs(), r, False, self.t >= 20, {}


def test_factorised_q_learns_matching_policy():
    env = MatchEnv()
    agent = TabularQLearning(env.action_space, ObservationDiscretizer([0], [1], bins=3),
                             learning_rate=0.2, gamma=0.0, epsilon_decay=0.95, seed=0)
    agent.learn(env, episodes=150)
    for target in range(3):
        obs = np.array([target / 3 + 0.1], np.float32)
        assert list(agent.act(obs)) == [target, target]


def test_rejects_unsupported_action_space():
    with pytest.raises(TypeError, match="action_space"):
        TabularQLearning(gym.spaces.Box(0, 1, (2,)), ObservationDiscretizer([0], [1]))
