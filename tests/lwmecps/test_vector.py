"""The native vector env of ``lwmecps_gym/Scaling-v0`` (``gymnasium.make_vec(..., "vector_entry_point")``).

Sub-env ``i`` must be the single env reset with ``seed + i`` bit for bit: the two share the
simulator's one kernel (``lwmecps_gym/backends/sim/batched.py``), so every observation, reward,
flag and info value is compared exactly (``tests/support/vector.py``), through autoresets in both
modes and over configurations that reach every branch of the model (failover, fluid overload,
several pending scale-ups in one window, the spread layout, workloads longer than one drawn chunk).
"""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode

import lwmecps_gym  # noqa: F401  (registers the ids)
from lwmecps_gym.core.vector import to_sb3_vecenv
from lwmecps_gym.envs.vector import ScalingVectorEnv
from lwmecps_gym.scenarios.events import FlashCrowds
from tests.support.compiled import compiled_and_interpreted_outputs
from tests.support.vector import assert_matches_single_env, check_vector_env

ID = "lwmecps_gym/Scaling-v0"


def make(n=2, **kw):
    return gym.make_vec(ID, num_envs=n, vectorization_mode="vector_entry_point", **kw)


@pytest.mark.parametrize("env_id", [ID, "lwmecps-v3"])
@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
def test_make_vec_gives_the_native_env_and_it_follows_the_vector_api(env_id, mode):
    venv = gym.make_vec(env_id, num_envs=3, vectorization_mode="vector_entry_point", autoreset_mode=mode,
                        max_episode_steps=4)
    assert isinstance(venv.unwrapped, ScalingVectorEnv)
    assert venv.metadata["autoreset_mode"] == AutoresetMode(mode)
    single = gym.make(env_id)
    assert venv.single_observation_space == single.observation_space
    assert venv.single_action_space == single.action_space
    assert venv.observation_space.shape == (3, *single.observation_space.shape)
    check_vector_env(venv, seed=3, steps=9)  # crosses two autoresets
    venv.close()
    venv.close()


@pytest.mark.parametrize("mode", ["NextStep", "SameStep"])
def test_sub_envs_equal_single_envs_bit_for_bit_through_autoresets(mode):
    counts = assert_matches_single_env(ID, 3, seeds=[0, 11], steps=25, autoreset_mode=mode, max_episode_steps=7)
    assert counts["autoresets"] >= 6 * 3


@pytest.mark.parametrize("kwargs", [
    # continuous actions, a small scenario
    {"scenario": "minikube-4", "action_mode": "continuous", "max_episode_steps": 9},
    # slow pods: several pending scale-ups become ready in one window (the general window);
    # 8-window workload chunks: episodes run past the drawn workload
    {"sim_config": {"pod_startup_median_s": 40.0, "pod_startup_sigma": 0.8, "horizon_windows": 8},
     "interval_s": 10.0},
    # no pods at reset: failover and failed requests
    {"scenario": "minikube-4", "sim_config": {"initial_replicas": 0}},
    # one deployment spread over all nodes
    {"scenario": "minikube-4", "deployments": ["spread"], "max_replicas": 8},
    # tight client timeout: drops from the fluid queue
    {"sim_config": {"timeout_s": 0.2}, "w_sla": 2.0},
    # demand events drawn from each sub-env's workload stream, carried across 8-window chunks
    {"sim_config": {"demand_events": FlashCrowds(rate_per_hour=6.0), "horizon_windows": 8}},
], ids=["continuous", "slow-pods", "no-pods", "spread", "timeouts", "flash-crowds"])
def test_sub_envs_equal_single_envs_across_configurations(kwargs):
    counts = assert_matches_single_env(ID, 2, seeds=[5], steps=40, autoreset_mode="SameStep", **kwargs)
    assert counts["steps"] == 80


def test_registered_episode_length_truncates_and_the_next_episode_matches():
    counts = assert_matches_single_env("lwmecps-v3", 2, seeds=[2], steps=245)  # registered max 240
    assert counts["autoresets"] == 2


def test_episode_draws_do_not_depend_on_how_they_are_batched_or_chunked():
    """What the vector env's batched reset relies on: NumPy's array Poisson draw consumes the bit
    generator element by element (the same counts as scalar draws, in any chunking), a standard
    normal drawn into ``out`` equals the returned one, and ``draw_windows`` gives an episode the same
    windows alone, in a batch, or in several chunks."""
    from lwmecps_gym.backends.sim.workload import draw_windows

    mean = np.random.default_rng(0).uniform(0.5, 5000.0, size=(37, 8))  # both Poisson algorithms (< 10, >= 10)
    mean[:3] = 0.0
    mean[3:6] = 4.0
    whole = np.random.default_rng(5).poisson(mean)
    rng = np.random.default_rng(5)
    scalar = np.array([[rng.poisson(m) for m in row] for row in mean])
    rng = np.random.default_rng(5)
    chunks = np.concatenate([rng.poisson(mean[:10]), rng.poisson(mean[10:11]), rng.poisson(mean[11:])])
    np.testing.assert_array_equal(whole, scalar)
    np.testing.assert_array_equal(whole, chunks)
    out = np.empty(256)
    np.random.default_rng(9).standard_normal(out=out)
    np.testing.assert_array_equal(out, np.random.default_rng(9).standard_normal(256))

    be = ScalingVectorEnv(1).template.backend
    start = np.array([100.0, 86399.0, 43210.5])

    def draw(seeds, t0, T, s=start):
        return draw_windows(be.trace, be.sc, [np.random.default_rng(x) for x in seeds], s, np.asarray(t0), T)

    batch = draw([1, 2, 3], [0, 0, 0], 40)
    for j in range(3):
        alone = draw([j + 1], [0], 40, start[j:j + 1])
        for a, b in zip(batch, alone, strict=True):
            if isinstance(a, np.ndarray):
                np.testing.assert_array_equal(a[:, j], b[:, 0])
    rngs = [np.random.default_rng(1)]
    first = draw_windows(be.trace, be.sc, rngs, start[:1], np.array([0]), 25)
    second = draw_windows(be.trace, be.sc, rngs, start[:1], np.array([25]), 15)
    for name in ("rate", "lam", "rtt", "starts"):
        joined = np.concatenate([getattr(first, name)[:, 0], getattr(second, name)[:, 0]])
        np.testing.assert_array_equal(joined, getattr(batch, name)[:, 0], err_msg=name)
    # from PCG64 state rows (one compiled pass, written into given arrays, here strided views) as from Generators
    from lwmecps_gym.backends.sim.poisson import pcg64_state

    states = np.array([pcg64_state(np.random.default_rng(x).bit_generator) for x in (1, 2, 3)])
    stacked = np.zeros((3, 50, 5, 8))
    compiled = draw_windows(be.trace, be.sc, states, start, np.zeros(3, dtype=np.int64), 40,
                            out=tuple(a[:40, 1:4] for a in stacked))
    for name in ("rate", "lam", "rtt", "starts"):
        np.testing.assert_array_equal(getattr(compiled, name), getattr(batch, name), err_msg=name)
    np.testing.assert_array_equal(stacked[1, :40, 1:4], batch.lam)
    assert not stacked[:, 40:].any() and not stacked[:, :, [0, 4]].any()
    ref = [np.random.default_rng(x) for x in (1, 2, 3)]  # the state rows were advanced where NumPy leaves them
    draw_windows(be.trace, be.sc, ref, start, np.zeros(3, dtype=np.int64), 40)
    for j in range(3):
        np.testing.assert_array_equal(states[j], pcg64_state(ref[j].bit_generator))


def test_compiled_poisson_draws_equal_numpys_and_leave_the_streams_where_numpy_does():
    from lwmecps_gym.backends.sim.poisson import poisson_streams

    lam = np.random.default_rng(1).uniform(10.0, 6000.0, size=(300, 3, 4))  # PTRS, its loggam branch too
    lam[:40, 0] = np.random.default_rng(2).uniform(0.0, 10.0, size=(40, 4))  # the multiplication method
    lam[40:50, 1] = 0.0
    lam[50, :, 0] = [10.0, np.nextafter(10.0, 0.0), 1e-300]
    out = np.empty_like(lam)
    mine = [np.random.Generator(np.random.PCG64(s)) for s in (7, 8, 9)]
    ref = [np.random.Generator(np.random.PCG64(s)) for s in (7, 8, 9)]
    for r in mine + ref:
        r.random(3)  # not at a fresh state
    ref[2].integers(0, 10, size=3, dtype=np.uint32)  # a buffered 32-bit half, which poisson leaves alone
    mine[2].integers(0, 10, size=3, dtype=np.uint32)
    poisson_streams(mine, lam, out)
    for j in range(3):
        np.testing.assert_array_equal(out[:, j], ref[j].poisson(lam[:, j]))
        assert mine[j].bit_generator.state == ref[j].bit_generator.state
        assert mine[j].random() == ref[j].random()
    with pytest.raises(ValueError, match="lam"):
        poisson_streams(mine[:1], np.full((2, 1, 1), -1.0), np.empty((2, 1, 1)))


def test_compiled_stream_seeding_equals_seed_sequence_spawn():
    """``spawned_states`` gives the PCG64 states of ``streams_from_seed`` (SeedSequence(seed).spawn(2)),
    for seeds of one and two 32-bit words and the edges; ``uniform_states`` draws ``uniform(0, high)``."""
    from lwmecps_gym.backends.sim.poisson import generator_at, pcg64_state, spawned_states, uniform_states
    from lwmecps_gym.core.seeding import streams_from_seed

    rng = np.random.default_rng(3)
    seeds = [0, 1, 2**32 - 1, 2**32, 2**63 - 2, *rng.integers(0, 2**63 - 1, size=40).tolist(),
             *rng.integers(0, 2**32, size=20).tolist()]
    got = spawned_states(seeds, 2)
    for j, seed in enumerate(seeds):
        ref = streams_from_seed(seed)
        np.testing.assert_array_equal(got[j, 0], pcg64_state(ref.workload.bit_generator), err_msg=str(seed))
        np.testing.assert_array_equal(got[j, 1], pcg64_state(ref.system.bit_generator), err_msg=str(seed))
        assert uniform_states(got[j:j + 1, 0], 86400.0)[0] == ref.workload.uniform(0.0, 86400.0)
        assert generator_at(got[j, 0]).random() == ref.workload.random()  # the state row was advanced in place
    kids = np.random.SeedSequence(2**64 - 1).spawn(3)
    np.testing.assert_array_equal(spawned_states([2**64 - 1], 3)[0],
                                  [pcg64_state(np.random.PCG64(k)) for k in kids])


def test_episodes_drawn_without_a_seed_differ_and_bad_seeds_are_refused():
    from lwmecps_gym.backends.sim import SimBackend

    be = make(1).template.backend
    assert isinstance(be, SimBackend)
    w = be.draw_episodes([None, None]).windows
    assert not np.array_equal(w.lam[:, 0], w.lam[:, 1])
    with pytest.raises(ValueError, match="seed"):
        be.draw_episodes([-1])


def test_an_episode_drawn_shorter_is_the_start_of_the_full_one():
    """The vector env draws only the windows a truncated episode can read; they and the stream after
    them are the full draw's (the next chunk continues alike). With demand events that is refused."""
    from lwmecps_gym.backends.sim.workload import draw_windows

    be = make(1).template.backend
    full, short = be.draw_episodes([5, 6]), be.draw_episodes([5, 6], n_windows=200)
    for name in ("rate", "lam", "rtt", "starts"):
        np.testing.assert_array_equal(getattr(short.windows, name), getattr(full.windows, name)[:200], err_msg=name)
    np.testing.assert_array_equal(short.delays, full.delays)
    rest = draw_windows(be.trace, be.sc, short.streams, short.start_s, np.full(2, 200), 56)
    np.testing.assert_array_equal(rest.lam, full.windows.lam[200:])
    np.testing.assert_array_equal(short.streams, full.streams)
    flash = make(1, sim_config={"demand_events": FlashCrowds(rate_per_hour=2.0)}).template.backend
    with pytest.raises(ValueError, match="n_windows"):
        flash.draw_episodes([5], n_windows=200)


def test_seeding_per_sub_env_like_sync_vector_env():
    venv = make(3)
    singles = [gym.make(ID) for _ in range(3)]
    obs, _ = venv.reset(seed=40)
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(obs[i], env.reset(seed=40 + i)[0])
    obs, _ = venv.reset()  # None: each sub-env continues its own generator
    for i, env in enumerate(singles):
        np.testing.assert_array_equal(obs[i], env.reset()[0])
    obs, _ = venv.reset(seed=[7, None, 9])
    np.testing.assert_array_equal(obs[0], singles[0].reset(seed=7)[0])
    np.testing.assert_array_equal(obs[1], singles[1].reset()[0])
    np.testing.assert_array_equal(obs[2], singles[2].reset(seed=9)[0])
    c, _ = venv.reset(seed=[np.int64(40), 41, 42])  # NumPy integers too
    d, _ = venv.reset(seed=np.int64(40))
    np.testing.assert_array_equal(c, d)
    a, _ = venv.reset(seed=1)
    b, _ = venv.reset(seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a[0], a[1])  # sub-envs get different seeds


def test_next_step_autoreset_ignores_the_action_and_returns_the_reset_observation():
    venv = make(2, max_episode_steps=2)
    venv.reset(seed=0)
    acts = np.full((2, venv.unwrapped.n), 3)
    venv.step(acts)
    _, _, _, trunc, _ = venv.step(acts)
    assert trunc.all()
    obs, rew, term, trunc, info = venv.step(np.zeros_like(acts))  # the autoreset step
    assert not term.any() and not trunc.any() and (rew == 0.0).all()
    np.testing.assert_array_equal(info["replicas_desired"], 1)  # initial replicas, not the action's 0
    assert info["_replicas_desired"].all()


def test_same_step_autoreset_reports_the_final_observation_and_info():
    venv = make(2, max_episode_steps=2, autoreset_mode="SameStep")
    venv.reset(seed=0)
    acts = np.full((2, venv.unwrapped.n), 3)
    obs1, *_ = venv.step(acts)
    obs, rew, term, trunc, info = venv.step(acts)
    assert trunc.all() and info["_final_obs"].all() and info["_final_info"].all()
    np.testing.assert_array_equal(info["final_info"]["replicas_desired"], 3)
    np.testing.assert_array_equal(info["replicas_desired"], 1)  # the new episode's
    assert info["final_obs"][0].shape == obs1[0].shape and not np.array_equal(info["final_obs"][0], obs[0])


@pytest.mark.parametrize(("call", "match"), [
    (lambda: make(2).step(np.zeros((2, 8), dtype=int)), "reset"),
    (lambda: make(0), "num_envs"),
    (lambda: make(2, backend="kubernetes"), "backend"),
    (lambda: make(2, obs_mode="dict"), "obs_mode"),
    (lambda: make(2, render_mode="ansi"), "render_mode"),
    (lambda: make(2, autoreset_mode="Whenever"), "autoreset_mode"),
    (lambda: make(2, autoreset_mode="Disabled"), "autoreset_mode"),
    (lambda: make(2, max_episode_steps=0), "max_episode_steps"),
    (lambda: make(2).reset(seed=-1), "seed"),
    (lambda: make(2).reset(seed=[1, 2, 3]), "seed"),
    (lambda: make(2).reset(seed=1.5), "seed"),
    (lambda: make(2, w_latency=-1.0), "w_latency"),
])
def test_bad_arguments_are_refused_naming_them(call, match):
    with pytest.raises((ValueError, TypeError, ResetNeeded), match=match):
        call()


@pytest.mark.parametrize(("actions", "match"), [
    (np.zeros((3, 8), dtype=int), r"actions must have shape \(num_envs, n_deployments\) = \(2, 8\)"),
    (np.zeros(8, dtype=int), "actions must have shape"),
    (np.full((2, 8), 9), r"actions replica counts must be in \[0, 8\]"),
    (np.full((2, 8), -1), "actions replica counts"),
    (np.full((2, 8), 0.5), "actions must contain integer"),
])
def test_bad_actions_are_refused_naming_actions(actions, match):
    venv = make(2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        venv.step(actions)
    venv.step(np.ones((2, 8), dtype=np.int64))  # still usable


def test_continuous_actions_out_of_range_are_refused():
    venv = make(2, action_mode="continuous")
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=r"continuous actions must be finite and in \[-1, 1\]"):
        venv.step(np.full((2, 8), 1.5))


def test_compiled_and_interpreted_kernels_agree_bit_for_bit():
    """The kernel's Python source is the model: run interpreted (NUMBA_DISABLE_JIT=1) it gives the
    compiled run's trajectory exactly."""
    code = (
        "import hashlib, numpy as np, gymnasium as gym, lwmecps_gym\n"
        "v = gym.make_vec('lwmecps_gym/Scaling-v0', num_envs=2, vectorization_mode='vector_entry_point',"
        " max_episode_steps=9, scenario='minikube-4', sim_config={'pod_startup_median_s': 40.0})\n"
        "h = hashlib.sha256(v.reset(seed=3)[0].tobytes())\n"
        "rng = np.random.default_rng(0)\n"
        "for _ in range(20):\n"
        "    o, r, te, tr, i = v.step(rng.integers(0, 5, size=(2, 4)))\n"
        "    h.update(o.tobytes()); h.update(r.tobytes()); h.update(i['metrics']['sla_violation_rate'].tobytes())\n"
        "print(h.hexdigest())\n"
    )
    compiled, interpreted = compiled_and_interpreted_outputs(code)
    assert compiled == interpreted and len(compiled.strip()) == 64


# ---------------------------------------------------------------------------- the SB3 adapter


def test_core_vector_module_imports_without_stable_baselines3():
    code = "import sys, lwmecps_gym.core.vector; assert 'stable_baselines3' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sb3_adapter_refuses_next_step_autoreset():
    with pytest.raises(ValueError, match="autoreset_mode"):
        to_sb3_vecenv(make(2))
    with pytest.raises(TypeError, match="vector_env"):
        to_sb3_vecenv(gym.make(ID))


def test_sb3_adapter_over_native_and_sync_envs_gives_the_same_transitions():
    """SB3's view (obs, rewards, dones, terminal_observation, TimeLimit.truncated) of the native env
    equals its view of Gymnasium's SyncVectorEnv of single envs, both in SameStep mode."""
    native = to_sb3_vecenv(make(2, autoreset_mode="SameStep", max_episode_steps=3))
    sync = to_sb3_vecenv(gym.make_vec(ID, num_envs=2, vectorization_mode="sync", max_episode_steps=3,
                                      vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}))
    for venv in (native, sync):
        venv.seed(21)
    np.testing.assert_array_equal(native.reset(), sync.reset())
    rng = np.random.default_rng(0)
    dones_seen = 0
    for _ in range(7):
        acts = rng.integers(0, 9, size=(2, 8))
        o1, r1, d1, i1 = native.step(acts)
        o2, r2, d2, i2 = sync.step(acts)
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(d1, d2)
        assert r1.dtype == np.float32 and d1.dtype == bool
        for a, b, done in zip(i1, i2, d1, strict=True):
            assert a["TimeLimit.truncated"] == b["TimeLimit.truncated"] == bool(done)
            if done:
                dones_seen += 1
                np.testing.assert_array_equal(a["terminal_observation"], b["terminal_observation"])
                assert a["metrics"]["latency_ms"] == b["metrics"]["latency_ms"]
    assert dones_seen == 4
    assert native.reset_infos[0]["replicas_desired"].tolist() == [1] * 8
    native.close()
    sync.close()


@pytest.mark.slow
def test_sb3_ppo_learns_through_the_adapter():
    torch = pytest.importorskip("torch")
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor

    torch.set_num_threads(1)
    venv = VecMonitor(to_sb3_vecenv(make(8, autoreset_mode="SameStep", max_episode_steps=16)))
    model = PPO("MlpPolicy", venv, n_steps=32, batch_size=64, n_epochs=2, seed=0, verbose=0)
    model.learn(512)
    assert model.num_timesteps >= 512
    assert len(model.ep_info_buffer) >= 16  # episodes finished through the adapter's autoreset
    obs = venv.reset()
    actions, _ = model.predict(obs, deterministic=True)
    assert actions.shape == (8, 8)
    venv.close()
