"""The residual (demand-relative) action options of ``melbourne-flash`` and the residual PPO trainer."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import lwmecps_gym  # noqa: F401
from lwmecps_gym.baselines import ProportionalPolicy
from lwmecps_gym.core.evaluation import evaluate
from lwmecps_gym.core.policy import BasePolicy
from lwmecps_gym.scenarios.hard import HARD_ID

HPA_LIKE = {"target_utilisation": 0.45, "stabilization_windows": 4, "min_replicas": 1, "offsets": (-1, 0, 1, 2)}


class _ConstantIndex(BasePolicy):
    name = "constant-index"

    def __init__(self, index: int, n: int):
        self.index, self.n = index, n

    def act(self, obs, info):
        return np.full(self.n, self.index, dtype=np.int64)


def test_offset_zero_with_the_hpa_options_is_the_hpa_policy():
    """Same target, stabilisation window and floor: offset 0 requests exactly what ProportionalPolicy does."""
    env = gym.make(HARD_ID, action="demand-relative", action_options=HPA_LIKE)
    ref = gym.make(HARD_ID)
    hpa = ProportionalPolicy(0.45, stabilization_windows=4)
    n = env.unwrapped.n
    _, info = env.reset(seed=3)
    _, rinfo = ref.reset(seed=3)
    hpa.reset(3)
    for _ in range(40):  # long enough for crowds, scale-downs and the 5-window max to matter
        _, _, _, _, info = env.step(np.full(n, 1))
        _, _, _, _, rinfo = ref.step(hpa.act(None, rinfo))
        np.testing.assert_array_equal(info["replicas_requested"], rinfo["replicas_requested"])
    a = evaluate(env, _ConstantIndex(1, n), seeds=[10_000], step_limit=30).values("return")
    b = evaluate(ref, ProportionalPolicy(0.45, stabilization_windows=4), seeds=[10_000], step_limit=30).values("return")
    np.testing.assert_allclose(a, b)


def test_stabilisation_window_keeps_the_largest_recent_recommendation():
    env = gym.make(HARD_ID, action="demand-relative",
                   action_options={"target_utilisation": 0.7, "stabilization_windows": 2, "offsets": (0, 1)})
    w = env.get_wrapper_attr("base")  # bound method of the DemandRelativeAction wrapper
    u = env.unwrapped
    mu = u.scenario.service_rate_rps
    _, info = env.reset(seed=0)
    recs = []
    for _ in range(8):
        recs.append(np.ceil(np.asarray(info["demand_rps"]) / (mu * 0.7) - 1e-9))
        np.testing.assert_array_equal(w(), np.max(recs[-3:], axis=0))
        _, _, _, _, info = env.step(np.ones(u.n, dtype=np.int64))
        np.testing.assert_array_equal(info["replicas_requested"],
                                      np.clip(np.max(recs[-3:], axis=0) + 1, 0, u.max_replicas))


def test_min_replicas_floor_and_action_space_size():
    env = gym.make(HARD_ID, action="demand-relative",
                   action_options={"offsets": (-20, 0), "min_replicas": 2})
    assert env.action_space.nvec.tolist() == [2] * env.unwrapped.n
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(env.unwrapped.n, dtype=np.int64))
    assert info["replicas_requested"] == [2] * env.unwrapped.n


def test_default_demand_relative_action_is_unchanged():
    env = gym.make(HARD_ID, action="demand-relative")
    assert env.get_wrapper_attr("offsets").tolist() == [-2, -1, 0, 1, 2, 3, 4, 6, 8]
    assert env.get_wrapper_attr("stabilization_windows") == 0
    assert env.get_wrapper_attr("min_replicas") == 0


@pytest.mark.parametrize(("options", "match"), [
    ({"stabilization_windows": -1}, "stabilization_windows"),
    ({"stabilization_windows": 1.5}, "stabilization_windows"),
    ({"min_replicas": 21}, "min_replicas"),
    ({"min_replicas": -1}, "min_replicas"),
    ({"offsets": ()}, "offsets"),
    ({"offsets": (0, 0)}, "offsets"),
    ({"offsets": (0, 1.5)}, "offsets"),
    ({"offsets": (0, True)}, "offsets"),
    ({"target_utilisation": 0.0}, "target_utilisation"),
    ({"target": 0.5}, "action_options"),
    ([("offsets", (0,))], "action_options"),
])
def test_bad_action_options_are_rejected_naming_the_parameter(options, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gym.make(HARD_ID, action="demand-relative", action_options=options)


def test_action_options_need_the_demand_relative_action():
    with pytest.raises(ValueError, match="action_options"):
        gym.make(HARD_ID, action_options={"offsets": (0, 1)})


def test_residual_prior_makes_the_fresh_policy_the_hpa_rule():
    pytest.importorskip("stable_baselines3")
    import torch
    from stable_baselines3 import PPO

    from lwmecps_gym.benchmark import RESIDUAL_ACTION, set_residual_prior

    env = gym.make(HARD_ID, action="demand-relative", action_options=RESIDUAL_ACTION)
    model = PPO("MlpPolicy", env, seed=0, n_steps=64, batch_size=64)
    set_residual_prior(model, RESIDUAL_ACTION["offsets"], 2.0)
    zero = RESIDUAL_ACTION["offsets"].index(0)
    k = len(RESIDUAL_ACTION["offsets"])
    obs, _ = env.reset(seed=10_000)
    for _ in range(10):
        action, _ = model.predict(obs, deterministic=True)
        assert action.tolist() == [zero] * env.unwrapped.n
        with torch.no_grad():
            dist = model.policy.get_distribution(model.policy.obs_to_tensor(obs)[0])
        p = torch.stack([d.probs[0, zero] for d in dist.distribution])
        # near-zero action-head weights: within 0.05 of e^2 / (e^2 + k - 1)
        np.testing.assert_allclose(p.numpy(), np.e ** 2 / (np.e ** 2 + k - 1), atol=0.05)
        obs, *_ = env.step(action)
    with pytest.raises(ValueError, match="offsets must contain 0"):
        set_residual_prior(model, (1, 2, 3, 4), 2.0)
    with pytest.raises(ValueError, match="prior_logit"):
        set_residual_prior(model, RESIDUAL_ACTION["offsets"], -1.0)
    with pytest.raises(ValueError, match="action space"):
        set_residual_prior(model, (-1, 0, 1), 2.0)


def test_residual_trainer_rejects_other_algorithms_and_actions():
    pytest.importorskip("stable_baselines3")
    from dataclasses import replace

    from lwmecps_gym.benchmark import PPO_RECIPE, TASKS, train_residual_ppo

    with pytest.raises(ValueError, match="algo"):
        train_residual_ppo(TASKS[0], replace(PPO_RECIPE, algo="A2C"), 0)
    with pytest.raises(ValueError, match="demand-relative"):
        train_residual_ppo(TASKS[0], replace(PPO_RECIPE, env_kwargs={}), 0)
