"""The SB3 route: SuperSuit parameter sharing over the PettingZoo env trains PPO
(pinned: supersuit 3.11, pettingzoo 1.27, stable-baselines3 2.9, gymnasium 1.4)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

ss = pytest.importorskip("supersuit")
pytest.importorskip("stable_baselines3")

from marllb_env.multi_agent import parallel_env  # noqa: E402


def test_env_pickles_by_constructor_arguments():
    env = parallel_env(scenario="seed_4x4", max_steps=7, reward_type="product")
    env.reset(seed=0)
    copy = pickle.loads(pickle.dumps(env))
    assert copy.max_steps == 7 and copy.reward_type == "product" and copy.n_lbs == 4
    o1, _ = env.reset(seed=3)
    o2, _ = copy.reset(seed=3)
    assert all(np.array_equal(o1[a], o2[a]) for a in o1)


@pytest.mark.slow
def test_supersuit_parameter_shared_ppo_trains():
    from stable_baselines3 import PPO

    env = parallel_env(scenario="seed_4x4", max_steps=16)
    venv = ss.pettingzoo_env_to_vec_env_v1(env)  # one sub-env per agent: parameter sharing
    venv = ss.concat_vec_envs_v1(venv, 2, num_cpus=0, base_class="stable_baselines3")
    assert venv.num_envs == 2 * env.n_lbs
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=1, verbose=0)
    model.learn(256)
    assert model.num_timesteps >= 256
    obs = np.stack([np.zeros(env.observation_space("lb_0").shape, np.float32)] * env.n_lbs)
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (env.n_lbs, env.n_servers)
