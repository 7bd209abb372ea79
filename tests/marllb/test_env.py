"""LoadBalanceEnv: checkers, spaces, determinism, errors, info metrics, scenarios, backends."""

import warnings

import gymnasium as gym
import numpy as np
import pytest

import marllb_env
from marllb_env import LoadBalanceEnv
from marllb_env.backend import LBBackend, SimBackend

ENV_ID = "marllb_env/LoadBalance-v0"


def _rollout(env, seed, n=60):
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [obs]
    rewards = []
    for _ in range(n):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        out.append(obs)
        rewards.append(r)
    return np.array(out), rewards


def test_import_does_not_pull_heavy_deps():
    import subprocess
    import sys

    code = (
        "import sys, marllb_env; bad = [m for m in ('torch', 'stable_baselines3', 'pettingzoo', 'kubernetes')"
        " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_gymnasium_check_env_passes_without_warnings():
    from gymnasium.utils.env_checker import check_env

    for kw in ({}, {"action_type": "continuous"}, {"use_ground_truth": True, "flatten_obs": True}):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            check_env(gym.make(ENV_ID, **kw).unwrapped)
        assert not [str(x.message) for x in w], kw


def test_sb3_check_env_only_the_justified_2d_warning():
    from stable_baselines3.common.env_checker import check_env

    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        check_env(gym.make(ENV_ID).unwrapped)
    msgs = [str(x.message) for x in w]
    assert len(msgs) == 1 and "unconventional shape" in msgs[0]  # (N, 11) per-server layout, documented
    for kw in ({"flatten_obs": True}, {"flatten_obs": True, "action_type": "continuous"}):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            check_env(gym.make(ENV_ID, **kw).unwrapped)
        assert not [str(x.message) for x in w], kw


def test_spaces_dtypes_bounds_and_types():
    env = gym.make(ENV_ID)
    assert env.observation_space.shape == (4, 11)
    assert env.action_space == gym.spaces.MultiDiscrete([3] * 4)
    obs, info = env.reset(seed=0)
    for _ in range(200):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        assert obs.dtype == np.float32 and env.observation_space.contains(obs)
        assert np.all(np.isfinite(obs)) and np.all(obs >= 0)
        assert type(r) is float and 0.25 - 1e-9 <= r <= 1.0  # Jain over 4 servers
        assert type(term) is bool and type(trunc) is bool
    assert obs[:, 1:].max() > 0  # reservoirs filled
    assert gym.make(ENV_ID, use_ground_truth=True).observation_space.shape == (4, 14)
    assert gym.make(ENV_ID, flatten_obs=True).observation_space.shape == (44,)
    env = gym.make(ENV_ID, action_type="continuous", num_servers=7, weight_levels="paper")
    assert env.action_space.shape == (7,) and env.action_space.low.min() == -1.0
    assert gym.make(ENV_ID, weight_levels="paper").action_space.nvec.tolist() == [6] * 4


def test_same_seed_same_trajectory_and_different_seed_differs():
    a, ra = _rollout(gym.make(ENV_ID), seed=7)
    b, rb = _rollout(gym.make(ENV_ID), seed=7)
    c, _ = _rollout(gym.make(ENV_ID), seed=8)
    np.testing.assert_array_equal(a, b)
    assert ra == rb
    assert not np.array_equal(a, c)


def test_workload_is_identical_for_different_policies():
    def arrivals(action):
        env = gym.make(ENV_ID)
        env.reset(seed=3)
        for _ in range(100):
            env.step(action)
        return env.unwrapped.backend.sim.flow_records()

    r1 = arrivals(np.array([0, 0, 0, 0]))
    r2 = arrivals(np.array([2, 2, 0, 0]))
    np.testing.assert_array_equal(r1.arrival_s, r2.arrival_s)
    np.testing.assert_array_equal(r1.size_s, r2.size_s)
    assert not np.array_equal(r1.server, r2.server)


def test_weights_reach_the_data_plane():
    env = gym.make(ENV_ID, action_type="continuous")
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([-1.0, 0.0, 1.0, 1.0], dtype=np.float32))
    np.testing.assert_allclose(info["weights"], [0.1, 1.0, 10.0, 10.0], rtol=1e-9)
    np.testing.assert_allclose(env.unwrapped.backend.sim.weights(0), [0.1, 1.0, 10.0, 10.0], rtol=1e-9)
    codec = info["weight_codec"]
    np.testing.assert_allclose(codec.decode(codec.encode([1.0, 1.0, 2.0, 2.0])), [1 / 2**0.5] * 2 + [2**0.5] * 2)


@pytest.mark.parametrize(
    "action, match",
    [
        (np.array([0, 1, 2]), "shape"),
        (np.array([0, 1, 2, 3]), r"in \[0, 2\]"),
        (np.array([0, -1, 2, 1]), r"in \[0, 2\]"),  # not the last level (Python's negative index)
        (np.array([0.0, 1.0, 1.0, 1.0]), "integers"),
    ],
)
def test_bad_discrete_actions(action, match):
    env = gym.make(ENV_ID).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_nan_and_out_of_range_continuous_actions():
    env = gym.make(ENV_ID, action_type="continuous").unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="finite"):
        env.step(np.array([0.0, np.nan, 0.0, 0.0], dtype=np.float32))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        env.step(np.array([0.0, 2.0, 0.0, 0.0], dtype=np.float32))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"reward_type": "fairness"}, "reward_type must be one of"),
        ({"reward_field": "latency"}, "reward_field"),
        ({"action_type": "hybrid"}, "action_type"),
        ({"scenario": "nope"}, "scenario"),
        ({"num_servers": 5, "servers": [1, 2]}, "num_servers"),
        ({"weight_range": (2.0, 1.0)}, "w_max > w_min"),
        ({"backend": "grpc"}, "backend"),
        ({"step_interval": 0}, "step_interval"),
        ({"interval_s": -1.0}, "interval_s"),
        ({"action_mode": "hybrid"}, "action_mode"),
        ({"interval_s": 0.5, "step_interval": 0.5}, "interval_s or its alias step_interval"),
        ({"action_mode": "discrete", "action_type": "discrete"}, "action_mode or its alias action_type"),
        ({"sim_config": {}, "sim_options": {}}, "sim_config or its alias sim_options"),
        ({"max_steps": 100}, r"max_episode_steps=100"),
        ({"max_steps": None}, "TimeLimit"),
        ({"sim_config": {"reservoir_sise": 3}}, "reservoir_sise"),
    ],
)
def test_bad_config_is_a_clear_error(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        LoadBalanceEnv(**kwargs)


@pytest.mark.parametrize("reward_type", ["jain", "product", "var", "var_exp", "var_log", "max", "max_exp",
                                         "max_log", "cv", "max_min"])
def test_every_reward_type_runs(reward_type):
    env = gym.make(ENV_ID, reward_type=reward_type, reward_field="fct_avg")
    env.reset(seed=1)
    for _ in range(20):
        _, r, _, _, _ = env.step(env.action_space.sample())
        assert type(r) is float and np.isfinite(r)


def test_info_metrics_and_episode_metrics_at_truncation():
    env = gym.make(ENV_ID, max_episode_steps=400)
    obs, info = env.reset(seed=2)
    assert set(info["metrics"]) == {"arrivals", "completed", "rejects", "cpu_util_mean", "jain_cpu_util",
                                    "jain_reward_field", "flows_in_system"}
    assert info["ground_truth"].shape == (4, 3) and info["active_mask"].all()
    total = 0.0
    trunc = False
    while not trunc:
        _, _, term, trunc, info = env.step(env.action_space.sample())
        total += info["metrics"]["completed"]
        assert not term
    em = info["episode_metrics"]
    assert em["flows_completed"] == total  # per-step counts add up to the episode total
    assert 0 < em["fct_mean_s"] and em["fct_p50_s"] <= em["fct_p90_s"] <= em["fct_p99_s"]
    assert info["time_s"] == pytest.approx(100.0)


def test_ground_truth_only_in_obs_when_asked_and_cpu_util_is_a_fraction():
    env = gym.make(ENV_ID, use_ground_truth=True)
    env.reset(seed=0)
    for _ in range(50):
        obs, _, _, _, info = env.step(env.action_space.sample())
    np.testing.assert_array_equal(obs[:, 11:], info["ground_truth"])
    assert np.all(obs[:, 11] <= 1.0)


def test_named_scenarios_and_registered_ids():
    env = gym.make("marllb_env/LoadBalancePaper-v0")
    assert env.observation_space.shape == (7, 11)
    sim = env.unwrapped.backend.sim
    assert sim.n_lbs == 2 and sim.capacities().tolist() == [1, 1, 1, 1, 2, 2, 2]
    env.reset(seed=0)
    for _ in range(20):
        env.step(env.action_space.sample())
    # the agent sees only its own LB's flows: its n_flow_on is LB 0's local count
    np.testing.assert_array_equal(env.unwrapped.last_measurement.features[:, 0], sim.n_flow_on(0))
    env = gym.make("marllb_env/LoadBalanceTrace-v0", workload={"kind": "marllb_trace", "trace": "rate_150",
                                                                 "max_flows": 200})
    env.reset(seed=0)
    steps, trunc = 0, False
    while not trunc:
        _, _, _, trunc, info = env.step(env.action_space.sample())
        steps += 1
    assert 0 < steps < 200 and info["episode_metrics"]["flows_completed"] == 200  # trace end truncates


def test_capacity_drop_scenario_changes_capacity_mid_episode():
    env = gym.make(ENV_ID, scenario="capacity_drop")
    env.reset(seed=0)
    sim = env.unwrapped.backend.sim
    for _ in range(250):  # 62.5 s
        env.step(env.action_space.sample())
    assert sim.capacities().tolist() == [1.0, 1.0, 2.0, 0.5]
    env.reset(seed=0)
    assert sim.capacities().tolist() == [1.0, 1.0, 2.0, 2.0]


def test_spec_round_trip_and_pickle():
    import pickle

    env = gym.make(ENV_ID, num_servers=6, reward_type="cv")
    env2 = gym.make(gym.envs.registration.EnvSpec.from_json(env.spec.to_json()))
    assert env2.observation_space.shape == (6, 11)
    e3 = pickle.loads(pickle.dumps(env.unwrapped))
    o1, _ = env.unwrapped.reset(seed=4)
    o3, _ = e3.reset(seed=4)
    np.testing.assert_array_equal(o1, o3)


def test_custom_backend_instance_and_protocol():
    be = SimBackend([1, 2, 2], {"kind": "poisson", "rho": 0.5})
    assert isinstance(be, LBBackend)
    env = LoadBalanceEnv(backend=be)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (3, 11)
    with pytest.raises(TypeError, match="LBBackend"):
        LoadBalanceEnv(backend=object())


def test_render_ansi_and_parallel_env_is_lazy():
    env = gym.make(ENV_ID, render_mode="ansi")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    assert "dispatch=sed" in env.render()
    assert callable(marllb_env.parallel_env)


def test_marllb_agent_feature_subset_and_paper_reward_smoothing():
    full = gym.make(ENV_ID)
    sub = gym.make(ENV_ID, feature_set="marllb_agents")
    assert sub.observation_space.shape == (4, 6)
    of, _ = full.reset(seed=5)
    os_, _ = sub.reset(seed=5)
    for _ in range(30):
        a = full.action_space.sample()
        of, rf, *_ = full.step(a)
        os_, rs, *_ = sub.step(a)
    np.testing.assert_array_equal(os_, of[:, [0, 6, 7, 8, 9, 10]])
    # smoothing: r_{t+1} = Jain((1 - g) x_t + g x_{t+1}) with x the reward field of consecutive steps
    env = gym.make(ENV_ID, reward_smoothing=0.9)
    env.reset(seed=1)
    xs, rs = [], []
    for _ in range(20):
        obs, r, *_ = env.step(np.array([0, 1, 2, 2]))
        xs.append(obs[:, 9].astype(float))
        rs.append(r)
    from marllb_env.rewards import jain

    assert rs[-1] == pytest.approx(jain(0.1 * xs[-2] + 0.9 * xs[-1]), rel=1e-6)


class _NoGroundTruthBackend(SimBackend):
    """A backend that, like the shared-memory data plane, cannot see server ground truth."""

    def observe(self):
        m = super().observe()
        m.ground_truth[:] = np.nan
        return m


def test_missing_ground_truth_is_an_error_not_a_made_up_observation():
    from lwmecps_gym.core.backend import PermanentBackendError

    env = LoadBalanceEnv(backend=_NoGroundTruthBackend([1, 2]), use_ground_truth=True)
    with pytest.raises(PermanentBackendError, match="no ground truth"):
        env.reset(seed=0)
    env = LoadBalanceEnv(backend=_NoGroundTruthBackend([1, 2]), reward_field="cpu_util")
    with pytest.raises(PermanentBackendError, match="ground truth"):
        env.reset(seed=0)
    env = LoadBalanceEnv(backend=_NoGroundTruthBackend([1, 2]))  # features only: fine
    env.reset(seed=0)
    _, r, _, _, info = env.step(np.array([0, 2]))
    assert np.isfinite(r) and np.isnan(info["metrics"]["cpu_util_mean"]) and np.isnan(info["metrics"]["jain_cpu_util"])


def test_seed_names_are_aliases_of_the_field_names():
    """action_type / step_interval / sim_options (the seed's names) make the same env as
    action_mode / interval_s / sim_config: same spaces, same seeded trajectory."""
    kw_new = {"action_mode": "continuous", "interval_s": 0.5, "sim_config": {"reservoir_size": 32}}
    kw_old = {"action_type": "continuous", "step_interval": 0.5, "sim_options": {"reservoir_size": 32}}
    a, ra = _rollout(gym.make(ENV_ID, **kw_new), seed=3, n=40)
    b, rb = _rollout(gym.make(ENV_ID, **kw_old), seed=3, n=40)
    np.testing.assert_array_equal(a, b)
    assert ra == rb
    env = gym.make(ENV_ID, **kw_old).unwrapped
    assert env.action_mode == env.action_type == "continuous" and env.interval_s == env.step_interval == 0.5
    assert env.weight_codec.action_mode == env.weight_codec.action_type == "continuous"


def test_truncation_is_the_registered_time_limit_and_the_last_info_has_episode_metrics():
    for env_id in ("marllb_env/LoadBalance-v0", "marllb_env/LoadBalancePaper-v0", "marllb_env/LoadBalanceTrace-v0"):
        assert gym.spec(env_id).max_episode_steps == marllb_env.MAX_EPISODE_STEPS == 10_000
    env = gym.make(ENV_ID, max_episode_steps=5)
    env.reset(seed=0)
    out = [env.step(env.action_space.sample()) for _ in range(5)]
    assert [o[3] for o in out] == [False] * 4 + [True]
    assert all("episode_metrics" not in o[4] for o in out[:4])
    assert out[-1][4]["episode_metrics"] == env.unwrapped.episode_metrics()
    # the env does not count steps itself: unwrapped, it runs past any limit
    raw = LoadBalanceEnv()
    raw.reset(seed=0)
    assert not any(raw.step(raw.action_space.sample())[3] for _ in range(50))


def test_step_before_reset_is_an_error():
    from gymnasium.error import ResetNeeded

    with pytest.raises(ResetNeeded):
        LoadBalanceEnv().step(np.zeros(4, dtype=np.int64))


def test_backend_contract_one_reset_signature_and_the_env_seed_hand_off():
    """SimBackend.reset(seed) with the seed the env draws gives the env's trajectory (streams_from_seed)."""
    import inspect

    from lwmecps_gym.core.backend import Backend
    from lwmecps_gym.core.seeding import draw_seed
    from marllb_env.shm_backend import ShmBackend

    for cls in (SimBackend, ShmBackend):
        assert list(inspect.signature(cls.reset).parameters) == ["self", "seed"]
    be = SimBackend([1, 1, 2, 2], {"kind": "poisson", "rho": 0.9, "mean_size_s": 1.0})
    assert isinstance(be, Backend) and isinstance(be, LBBackend)
    env = LoadBalanceEnv()
    obs, _ = env.reset(seed=11)
    m_env = [obs]
    for _ in range(20):
        m_env.append(env.step(np.array([2, 1, 0, 2]))[0])
    be.reset(seed=draw_seed(np.random.default_rng(11)))  # what BackendEnv.reset hands the backend
    be.apply([1.0] * 4)
    m_be = [be.observe().features]
    for _ in range(20):
        be.apply([2.0, 1.5, 1.0, 2.0])
        be.advance(0.25)
        m_be.append(be.observe().features)
    np.testing.assert_array_equal(np.array(m_env), np.array(m_be))


def test_simulator_weight_validation_names_the_problem():
    from marllb_env.sim import FlowSimulator

    sim = FlowSimulator([1, 2])
    for bad, match in (([1.0], "shape"), ([1.0, float("nan")], "finite"), ([1.0, -1.0], ">= 0"),
                       ([float("inf"), 1.0], "finite"), (np.array([1.0, -0.5]), ">= 0")):
        with pytest.raises(ValueError, match=match):
            sim.set_weights(0, bad)
    sim.set_weights(0, [1, 3])  # ints are fine
    assert sim.weights(0).tolist() == [1.0, 3.0]


def test_docstring_examples_run():
    import doctest

    import marllb_env.backend
    import marllb_env.env
    import marllb_env.sim.simulator

    for mod in (marllb_env.env, marllb_env.backend, marllb_env.sim.simulator):
        res = doctest.testmod(mod)
        assert res.attempted > 0 and res.failed == 0, mod.__name__
