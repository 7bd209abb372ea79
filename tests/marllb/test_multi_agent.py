"""Multi-agent MARLLB env: PettingZoo API and seeding tests, spaces, scenarios, the
cooperative reward, and the motivating effect (local SED/LSQ vs oracle GSQ with many LBs)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from pettingzoo.test import parallel_api_test, parallel_seed_test  # noqa: E402

from lwmecps_gym.core import evaluate  # noqa: E402
from marllb_env.multi_agent import (  # noqa: E402
    SCENARIOS,
    JointEnv,
    MultiLoadBalanceEnv,
    StaticWeightsPolicy,
    parallel_env,
)
from marllb_env.rewards import fairness  # noqa: E402


def test_parallel_api_test_passes():
    parallel_api_test(parallel_env(scenario="moderate", max_steps=60), num_cycles=200)


def test_parallel_seed_test_passes():
    parallel_seed_test(lambda: parallel_env(scenario="seed_4x4", max_steps=40), num_cycles=100)


def test_pettingzoo_state_test_passes():
    import warnings

    from pettingzoo.test import state_test
    from pettingzoo.utils.conversions import parallel_to_aec

    with warnings.catch_warnings():
        # justified: the state right after reset (empty servers, t = 0) is all zeros
        warnings.filterwarnings("ignore", message="State numpy array is all zeros")
        state_test(
            parallel_to_aec(parallel_env(scenario="seed_4x4", max_steps=30)),
            parallel_env(scenario="seed_4x4", max_steps=30),
        )


def test_exposed_from_package():
    import marllb_env

    env = marllb_env.parallel_env(scenario="seed_4x4")
    assert isinstance(env, MultiLoadBalanceEnv)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenarios_spaces_and_state(scenario):
    env = parallel_env(scenario=scenario, max_steps=8)
    m, n = SCENARIOS[scenario]["n_lbs"], len(SCENARIOS[scenario]["servers"])
    assert env.possible_agents == [f"lb_{i}" for i in range(m)]
    obs, infos = env.reset(seed=3)
    spaces = {id(env.observation_space(a)) for a in env.agents}
    assert len(spaces) == 1  # homogeneous: one shared space object
    assert env.observation_space("lb_0").shape == (n * 11,)
    assert env.action_space("lb_0").nvec.tolist() == [3] * n
    assert env.state_space.shape == (m * n * 11 + 2 * n,)
    rng = np.random.default_rng(0)
    while env.agents:
        acts = {a: rng.integers(0, 3, n) for a in env.agents}
        obs, rew, term, trunc, infos = env.step(acts)
        for a, o in obs.items():
            assert o.dtype == np.float32 and env.observation_space(a).contains(o)
        s = env.state()
        assert s.dtype == np.float32 and env.state_space.contains(s)
        assert len(set(rew.values())) == 1  # cooperative: one reward for all
        assert all(isinstance(r, float) for r in rew.values())
    assert all(trunc.values()) and env.agents == []
    em = infos["lb_0"]["episode_metrics"]
    assert em["fct_mean_s"] > 0 and em["fct_p90_s"] >= em["fct_mean_s"] * 0.5


def test_local_view_and_cooperative_reward():
    env = parallel_env(scenario="moderate", max_steps=40, reward_type="jain")
    env.reset(seed=1)
    for _ in range(40):
        obs, rew, *_ = env.step({a: np.full(7, 1) for a in env.agents})
    # each LB sees only its own flows: local counts add up to the global in-system count
    local = np.stack([obs[a].reshape(7, 11)[:, 0] for a in ("lb_0", "lb_1")])
    assert not np.array_equal(local[0], local[1])
    gt = env.backend.sim.ground_truth()["flows_in_system"]
    assert np.array_equal(local.sum(0), gt)
    # reward = Jain over servers of the reward field averaged over the LBs
    field = np.stack([obs[a].reshape(7, 11)[:, 9] for a in ("lb_0", "lb_1")]).mean(0)
    assert rew["lb_0"] == pytest.approx(fairness("jain", field), rel=1e-5)
    assert 1 / 7 - 1e-9 <= rew["lb_0"] <= 1 + 1e-9


def test_same_seed_same_trajectory_and_workload_independent_of_actions():
    def run(seed, level):
        env = parallel_env(scenario="seed_4x4", max_steps=20)
        env.reset(seed=seed)
        out = []
        while env.agents:
            obs, rew, *_ = env.step({a: np.full(4, level) for a in env.agents})
            out.append((obs["lb_0"].copy(), rew["lb_0"]))
        return out, env.backend.sim.flow_records()

    a, ra = run(5, 0)
    b, rb = run(5, 0)
    assert all(np.array_equal(x[0], y[0]) and x[1] == y[1] for x, y in zip(a, b, strict=True))
    _, rc = run(5, 2)  # other actions, same input flows
    k = min(len(ra), len(rc))
    assert np.array_equal(ra.arrival_s[:k], rc.arrival_s[:k]) and np.array_equal(ra.size_s[:k], rc.size_s[:k])


def test_bad_actions_and_arguments_raise():
    env = parallel_env(scenario="seed_4x4")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        env.step({a: np.zeros(3, np.int64) for a in env.agents})
    with pytest.raises(ValueError, match="outside"):
        env.step({a: np.full(4, 3) for a in env.agents})
    with pytest.raises(ValueError, match=r"lb_1 has indices outside \[0, 3\)"):  # not the last level
        env.step({a: np.array([0, 1, 2, -1 if a == "lb_1" else 0]) for a in env.agents})
    with pytest.raises(ValueError, match="integer array"):
        env.step({a: np.zeros(4) for a in env.agents})
    with pytest.raises(ValueError, match=r"missing for agents \['lb_1', 'lb_2', 'lb_3'\]"):
        env.step({"lb_0": np.zeros(4, np.int64)})
    with pytest.raises(ValueError, match=r"unknown agents \['lb_9'\]"):
        env.step({**{a: np.zeros(4, np.int64) for a in env.agents}, "lb_9": np.zeros(4, np.int64)})
    with pytest.raises(TypeError, match="dict agent -> action"):
        env.step([np.zeros(4, np.int64)] * 4)
    assert env.backend.sim.now == 0.0  # refused actions never reached the simulator
    with pytest.raises(ValueError, match="scenario"):
        parallel_env(scenario="huge")
    with pytest.raises(ValueError, match="reward_type"):
        parallel_env(reward_type="nope")
    with pytest.raises(ValueError, match="weight_levels"):
        parallel_env(weight_levels=[1.0, float("nan")])


def test_joint_env_runs_in_shared_harness():
    from gymnasium.utils.env_checker import check_env

    check_env(JointEnv(scenario="seed_4x4", max_steps=10), skip_render_check=True)
    env = MultiLoadBalanceEnv("seed_4x4", max_steps=20)
    res = evaluate(lambda: JointEnv(scenario="seed_4x4", max_steps=20), StaticWeightsPolicy(env, "SED"), seeds=[0, 1])
    assert res.values("length").tolist() == [20.0, 20.0]
    assert np.all(res.values("fct_p90_s") > 0)


def _mean_fct(n_lbs: int, dispatch: str, seeds) -> np.ndarray:
    out = []
    for s in seeds:
        env = MultiLoadBalanceEnv(
            None, n_lbs=n_lbs, servers=[1, 1, 1, 1, 2, 2, 2], max_steps=160, dispatch=dispatch,
            workload={"kind": "poisson", "rho": 0.9},
        )
        act = StaticWeightsPolicy(env).action.reshape(n_lbs, -1)  # capacity weights 1,1,1,1,2,2,2
        env.reset(seed=s)
        while env.agents:
            _, _, _, _, infos = env.step({a: act[i] for i, a in enumerate(env.agents)})
        out.append(infos["lb_0"]["episode_metrics"]["fct_mean_s"])
    return np.asarray(out)


def test_local_sed_and_lsq_lose_to_gsq_only_with_several_lbs():
    """MARLLB's motivating effect (paper Fig. 2, section 5.2).

    Paired comparison on identical flows (same seeds), moderate servers at rho 0.9. With 1
    LB the local counts are global, so SED and GSQ pick the same servers (ratio ~1); with 6
    LBs each LB sees ~1/6 of the flows and local SED/LSQ mis-balance. 40 s at 18 flows/s is
    ~720 flows per episode; measured over seeds 0-2: SED/GSQ 0.99 (1 LB) vs 1.44 (6 LBs),
    LSQ/GSQ 1.15 vs 1.68. Per-episode mean FCTs of the paired policies differ by a few
    percent between seeds, so the asserted margins (SED within 5% with 1 LB, > 20% with 6;
    LSQ's gap grows by > 20 points) sit several standard errors from the measured values.
    """
    seeds = [0, 1, 2]
    gsq1, sed1, lsq1 = (_mean_fct(1, d, seeds) for d in ("gsq", "sed", "lsq"))
    gsq6, sed6, lsq6 = (_mean_fct(6, d, seeds) for d in ("gsq", "sed", "lsq"))
    assert abs(sed1.mean() / gsq1.mean() - 1.0) < 0.05
    assert sed6.mean() / gsq6.mean() > 1.20
    assert lsq6.mean() / gsq6.mean() > lsq1.mean() / gsq1.mean() + 0.20
    assert np.all(sed6 > gsq6)  # in every paired episode


@pytest.mark.integration
def test_multi_agent_env_over_shm_one_region_per_lb():
    """Decentralised execution over the data plane: one shm region per LB, one emulator."""
    import os

    env = parallel_env(scenario="moderate", max_steps=12, backend="shm", backend_kwargs={"speed": 10.0})
    try:
        names = list(env.backend.names)
        assert len(names) == 2 and all(os.path.exists(f"/dev/shm/{n}") for n in names)
        pid = None
        obs, _ = env.reset(seed=0)
        pid = env.backend.emulator_pid
        rng = np.random.default_rng(0)
        counts = []
        while env.agents:
            obs, rew, term, trunc, infos = env.step({a: rng.integers(0, 3, 7) for a in env.agents})
            for a, o in obs.items():
                assert env.observation_space(a).contains(o)
            counts.append([obs[a].reshape(7, 11)[:, 0] for a in ("lb_0", "lb_1")])
            assert len(set(rew.values())) == 1
        assert all(trunc.values()) and np.asarray(counts).sum() > 0
        with pytest.raises(NotImplementedError, match="ground truth"):
            env.state()
    finally:
        env.close()
    assert not any(os.path.exists(f"/dev/shm/{n}") for n in names)
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    with pytest.raises(ValueError, match="dispatch must be 'sed'"):
        parallel_env(backend="shm", dispatch="lsq")


def test_backend_is_an_object_and_interval_alias():
    from lwmecps_gym.core.backend import Backend
    from marllb_env.backend import MultiLBBackend, MultiSimBackend
    from marllb_env.multi_agent import MAX_STEPS

    env = parallel_env(scenario="seed_4x4")
    assert env.backend_name == "sim" and isinstance(env.backend, MultiSimBackend)
    assert isinstance(env.backend, Backend) and isinstance(env.backend, MultiLBBackend)
    assert env.max_steps == MAX_STEPS == 240
    # the seeds' step_interval is an alias of interval_s: same trajectory
    a, b = parallel_env(scenario="seed_4x4", interval_s=0.5), parallel_env(scenario="seed_4x4", step_interval=0.5)
    assert a.interval_s == b.step_interval == 0.5
    oa, _ = a.reset(seed=3)
    ob, _ = b.reset(seed=3)
    act = {ag: np.array([0, 1, 2, 2]) for ag in a.possible_agents}
    for _ in range(10):
        oa, ra, *_ = a.step(act)
        ob, rb, *_ = b.step(act)
    assert all(np.array_equal(oa[k], ob[k]) for k in oa) and ra == rb
    with pytest.raises(TypeError, match="interval_s or its alias step_interval"):
        parallel_env(interval_s=0.5, step_interval=0.5)
    with pytest.raises(ValueError, match="step_interval"):
        parallel_env(step_interval=0)


def test_docstring_example_runs():
    import doctest

    import marllb_env.multi_agent

    res = doctest.testmod(marllb_env.multi_agent)
    assert res.attempted > 0 and res.failed == 0
