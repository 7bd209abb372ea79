"""The native vector env of faas_gym (faas_gym.vector.FaasVectorEnv) against the single env.

Sub-env ``i`` of ``make_vec(id, N, "vector_entry_point")`` reset with ``seed`` must reproduce
``gym.make(id)`` reset with ``seed + i`` under the same actions, bit for bit: the RNG streams are the
same (one workload stream per sub-env, seeded like the single env's simulator) and the fluid model's
math is the same source (faas_gym.backends.fluid). Configurations are chosen to reach every branch
of that math: cold starts longer than an interval (fractional servers, Erlang C interpolation),
keep-alive revivals, overload with a growing backlog and drops, a Poisson workload whose expected
counts drive the backlog, and scale to zero.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import faas_gym  # noqa: F401
from faas_gym import vector as faas_vector
from faas_gym.backends import fluid
from faas_gym.vector import FaasVectorEnv
from lwmecps_gym.core.queueing import erlang_c
from tests.support.vector import assert_matches_single_env, check_vector_env

VECTOR_IDS = ("faas_gym/Autoscaling-v0", "faas_gym/AutoscalingDay-v0", "FaaSTrainGym-v1")

#: Autoscaling-v0 variants that drive the model through its branches (see the module docstring).
BRANCH_CONFIGS = {
    "slow_cold_start": {"sim_config": {"cold_start_s": 40.0, "keep_alive_s": 45.0}, "deltas": [-4, 0, 4]},
    "overload_drops": {"sim_config": {"queue_capacity": 20, "workload": {"kind": "orcbench", "model": 0,
                                                                         "mean_rps": 40.0}},
                       "deltas": [-3, 0, 1]},
    "poisson_scale_to_zero": {"sim_config": {"workload": {"kind": "diurnal", "mean_rps": 6.0, "amplitude": 0.8,
                                                          "period_s": 1800.0}},
                              "min_replicas": 0, "initial_replicas": 1, "deltas": [-2, 0, 1, 3]},
}


@pytest.mark.parametrize("env_id", VECTOR_IDS)
@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
def test_sub_envs_equal_single_env(env_id, mode):
    # short episodes so both autoreset paths are crossed several times
    counts = assert_matches_single_env(env_id, 3, seeds=[0, 11], steps=40, autoreset_mode=mode, max_episode_steps=12)
    assert counts["autoresets"] >= 6 and counts["steps"] >= 200


@pytest.mark.parametrize("name", sorted(BRANCH_CONFIGS))
def test_model_branches_equal_single_env(name):
    counts = assert_matches_single_env("faas_gym/Autoscaling-v0", 4, seeds=[3], steps=150,
                                       autoreset_mode="SameStep", max_episode_steps=60, **BRANCH_CONFIGS[name])
    assert counts["autoresets"] >= 8


def test_day_thinning_without_the_compiled_binomial_equals_single_env(monkeypatch):
    """Where the compiled binomial does not follow numpy (numpy >= 2.5: ``pcg64.BINOMIAL`` false) the
    day scenario's thinning falls back to numpy's own draws per sub-env: still the single env's numbers."""
    from lwmecps_gym.core import pcg64

    monkeypatch.setattr(pcg64, "BINOMIAL", False)
    counts = assert_matches_single_env("faas_gym/AutoscalingDay-v0", 2, seeds=[5], steps=300, max_episode_steps=120)
    assert counts["autoresets"] >= 4


def test_day_sub_envs_equal_single_env_across_long_chunks():
    # chunks of 32..256 intervals: the day workload's base drawn compiled 16 intervals at a time and
    # thinned per chunk; an autoreset after 300 steps desynchronises nothing
    counts = assert_matches_single_env("faas_gym/AutoscalingDay-v0", 2, seeds=[4], steps=700, max_episode_steps=300)
    assert counts["autoresets"] >= 4


@pytest.mark.parametrize("env_id", VECTOR_IDS)
def test_compiled_streams_equal_python_streams(env_id, monkeypatch):
    # the compiled arrival streams (numba) and the per-sub-env Python streams (the fallback) give the
    # same trajectories, across autoresets and over chunks of up to 256 intervals
    def run():
        venv = gym.make_vec(env_id, 3, vectorization_mode="vector_entry_point", autoreset_mode="SameStep",
                            max_episode_steps=280)
        venv.action_space.seed(2)
        out = [venv.reset(seed=9)[0]]
        for _ in range(600):
            obs, reward, _, _, info = venv.step(venv.action_space.sample())
            out += [obs, reward, info["metrics"]["arrived"]]
        venv.close()
        return out

    compiled = run()
    monkeypatch.setattr(faas_vector, "_compiled_arrivals", lambda workload: None)
    python = run()
    assert all(np.array_equal(a, b) for a, b in zip(compiled, python, strict=True))
    assert sum(int(x.sum()) for x in compiled[3::3]) > 0


def test_branch_configs_reach_the_branches():
    # the configurations above do exercise what they are named for (else the equality proves little)
    seen = {"fractional_servers": False, "drops": False, "empty": False, "backlog": False}
    for kw in BRANCH_CONFIGS.values():
        venv = gym.make_vec("faas_gym/Autoscaling-v0", 4, vectorization_mode="vector_entry_point", **kw)
        venv.action_space.seed(1)
        venv.reset(seed=5)
        for _ in range(120):
            _, _, _, _, info = venv.step(venv.action_space.sample())
            m = info["metrics"]
            seen["fractional_servers"] |= bool(np.any(m["replicas"] < m["replicas_desired"]))
            seen["drops"] |= bool(np.any(m["dropped"] > 0))
            seen["empty"] |= bool(np.any(m["replicas_desired"] == 0))
            seen["backlog"] |= bool(np.any(m["queue_length"] > 5))
        venv.close()
    assert all(seen.values()), seen


def test_vector_api_and_seeding():
    venv = gym.make_vec("faas_gym/Autoscaling-v0", 5, vectorization_mode="vector_entry_point")
    check_vector_env(venv, seed=4, steps=10)
    assert venv.metadata["autoreset_mode"].value == "NextStep"
    assert venv.observation_space.shape == (5, 11) and venv.action_space.nvec.tolist() == [3] * 5
    a, _ = venv.reset(seed=7)
    b, _ = venv.reset(seed=[7, 8, 9, 10, 11])  # an int seed is seed + i per sub-env
    assert np.array_equal(a, b)
    venv.reset(seed=None)
    c = [venv.step(np.ones(5, dtype=np.int64))[0] for _ in range(5)]
    venv.reset(seed=None)
    d = [venv.step(np.ones(5, dtype=np.int64))[0] for _ in range(5)]
    assert not all(np.array_equal(x, y) for x, y in zip(c, d, strict=True))  # unseeded: fresh streams
    venv.close()


def test_same_step_mode_metadata_and_final_info():
    venv = gym.make_vec("FaaSTrainGym-v1", 2, vectorization_mode="vector_entry_point", autoreset_mode="SameStep")
    assert venv.metadata["autoreset_mode"].value == "SameStep"
    venv.reset(seed=0)
    for _ in range(10):
        obs, _, _, trunc, info = venv.step(np.array([5, 5]))
    assert trunc.all() and info["_final_obs"].all() and info["final_obs"][0].shape == (11,)
    assert info["final_info"]["_episode_metrics"].all() and not info["_episode_metrics"].any()
    assert np.array_equal(obs[:, 0], [1.0, 1.0])  # reset to one warm replica
    venv.close()


@pytest.mark.parametrize(
    "actions,exc,match",
    [
        (np.array([0, 1]), ValueError, r"actions must have shape \(3,\)"),
        (np.array([0.0, 1.0, 2.0]), TypeError, "actions must be integers"),
        (np.array([0, 3, 1]), ValueError, r"actions\[1\] must be an integer in \[0, 2\]"),
        (np.array([-1, 0, 1]), ValueError, r"actions\[0\]"),
    ],
)
def test_bad_actions_name_the_parameter(actions, exc, match):
    venv = gym.make_vec("faas_gym/Autoscaling-v0", 3, vectorization_mode="vector_entry_point")
    venv.reset(seed=0)
    with pytest.raises(exc, match=match):
        venv.step(actions)
    venv.step(np.array([0, 1, 2]))  # still usable
    venv.close()


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="num_envs"):
        FaasVectorEnv(num_envs=0)
    with pytest.raises(ValueError, match="autoreset_mode"):
        FaasVectorEnv(num_envs=2, autoreset_mode="Sometimes")
    with pytest.raises(ValueError, match="max_episode_steps"):
        FaasVectorEnv(num_envs=2, max_episode_steps=0)
    with pytest.raises(ValueError, match="model='fluid'"):
        FaasVectorEnv(num_envs=2, sim_config={"model": "des"})
    with pytest.raises(ValueError, match="max_replicas"):
        FaasVectorEnv(num_envs=2, max_replicas=0)  # the single env's own validation
    venv = FaasVectorEnv(num_envs=2)
    with pytest.raises(gym.error.ResetNeeded):
        venv.step(np.array([0, 0]))
    with pytest.raises(ValueError, match="seed"):
        venv.reset(seed=[1, 2, 3])
    with pytest.raises(ValueError, match="seed"):
        venv.reset(seed=-1)


def test_compiled_scalar_ops_agree_with_the_single_env_ones():
    # the vector env's kernel (numba where installed) evaluates Erlang C with its own memo (direct-mapped
    # slots, rows extended on demand; without a memo for rows longer than it holds) and the tail from
    # the same source with a compiled bisect: same numbers as ScalarOps, bit for bit
    rng = np.random.default_rng(1)
    c = np.concatenate([rng.integers(0, 80, 200).astype(float), rng.uniform(0.5, 80.0, 200)])
    a = c * rng.uniform(0.05, 1.2, c.size)
    c, a = np.concatenate([c, c[::-1], c[:50] / 2]), np.concatenate([a, a[::-1], a[:50]])  # revisited loads
    s = fluid.ScalarOps()
    erl = fluid.COMPILED_OPS["_ops_erlang_c"]
    want = [s.erlang_c(True, x, y) for x, y in zip(c.tolist(), a.tolist(), strict=True)]
    assert [fluid.erlang_c_direct_compiled(True, x, y) for x, y in zip(c.tolist(), a.tolist(), strict=True)] == want
    for memo in (fluid.erlang_memo(81), fluid.erlang_memo(30)):  # 30: rows past the memo's width fall back
        memo[0][:] = np.nan
        got = [erl(memo, True, x, y) for x, y in zip(c.tolist(), a.tolist(), strict=True)]
        assert got == want
    assert np.isfinite(memo[0]).sum() > 100  # the memo was used
    # at whole server counts below saturation both are the core Erlang C (lwmecps_gym.core.queueing)
    whole = [(x, y, w) for x, y, w in zip(c.tolist(), a.tolist(), want, strict=True) if x == int(x) and 0 < y < x]
    assert whole and all(w == erlang_c(int(x), y) for x, y, w in whole)
    assert erl(fluid.erlang_memo(4), False, 3.0, 1.0) == 0.0
    sq = np.sort(rng.exponential(1.0, 16))
    tail = fluid.slo_tail_compiled
    pw, wq, x0 = rng.uniform(1e-4, 1, 300), rng.uniform(1e-3, 30, 300), rng.uniform(-1, 8, 300)
    x0[:5] = sq[:5]  # ties with a quantile: bisect_left's side matters
    got = [tail(True, *v, sq) for v in zip(pw.tolist(), wq.tolist(), x0.tolist(), strict=True)]
    assert got == [s.slo_tail(True, *v, tuple(sq.tolist())) for v in zip(pw.tolist(), wq.tolist(), x0.tolist(),
                                                                        strict=True)]
    for x in [-1.0, *sq.tolist(), 9.0]:
        assert fluid.bisect_right_compiled(sq, x) == s.count_le(tuple(sq.tolist()), x)


def test_sb3_learns_through_the_adapter():
    pytest.importorskip("stable_baselines3")
    import torch
    from stable_baselines3 import PPO

    from lwmecps_gym.core.vector import to_sb3_vecenv

    torch.set_num_threads(1)
    venv = gym.make_vec("faas_gym/Autoscaling-v0", 8, vectorization_mode="vector_entry_point",
                        autoreset_mode="SameStep", max_episode_steps=40)
    model = PPO("MlpPolicy", to_sb3_vecenv(venv), n_steps=32, batch_size=64, n_epochs=2, seed=0)
    model.learn(512)
    assert model.num_timesteps >= 512
    obs, _ = venv.reset(seed=0)
    act, _ = model.predict(obs, deterministic=True)
    assert act.shape == (8,) and venv.action_space.contains(act)
    venv.close()
