"""The Python data-plane emulator and ``backend="shm"``: LoadBalanceEnv end to end over shared
memory, weights reaching the data plane, failures (stalled, missing, mismatched data plane),
and cleanup of files and processes."""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

from lwmecps_gym.core.backend import PermanentBackendError, TransientBackendError
from marllb_env.emulator import EmulatorProcess
from marllb_env.shm import SharedMemoryRegion
from marllb_env.shm_backend import ShmBackend

pytestmark = [pytest.mark.integration, pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="needs /dev/shm")]


def _name() -> str:
    return f"test_marllb_be_{uuid.uuid4().hex[:10]}"


def test_load_balance_env_runs_over_shm_emulator():
    from marllb_env import LoadBalanceEnv

    # speed 10: 0.25 s of data-plane time per step in 25 ms of wall time
    env = LoadBalanceEnv(
        backend="shm", num_servers=4, backend_kwargs={"speed": 10.0, "publish_interval": 0.05}
    )
    try:
        obs, info = env.reset(seed=0)
        backend = env.unwrapped.backend
        pid = backend.emulator_pid
        assert obs.shape == (4, 11) and env.observation_space.contains(obs)
        times = [info["time_s"]]
        for _ in range(20):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            assert env.observation_space.contains(obs) and np.all(np.isfinite(obs))
            assert isinstance(reward, float) and not terminated and not truncated
            times.append(info["time_s"])
        # data-plane time advances by about one step interval per step (frames every 0.05 s)
        dts = np.diff(times)
        assert np.all(dts > 0) and 0.15 < float(np.median(dts)) < 0.4
        assert obs[:, 0].sum() > 0  # flows on servers (n_flow_on from msg_out)
        assert obs[:, 6].max() > 0  # flow-duration reservoir statistics from res_as
        path = backend.region.path
    finally:
        env.close()
    assert not os.path.exists(path)
    with pytest.raises(ProcessLookupError):  # the emulator process is gone
        os.kill(pid, 0)


def test_shm_episode_truncates_without_flow_records():
    """The data plane exports no per-flow records: truncation ends the episode without FCT episode metrics."""
    from gymnasium.wrappers import TimeLimit

    from marllb_env import EpisodeMetricsInfo, LoadBalanceEnv

    env = EpisodeMetricsInfo(TimeLimit(LoadBalanceEnv(backend="shm", num_servers=4,
                                                      backend_kwargs={"speed": 10.0, "publish_interval": 0.05}), 3))
    try:
        env.reset(seed=0)
        steps = [env.step(env.action_space.sample()) for _ in range(3)]
        assert [s[3] for s in steps] == [False, False, True]
        assert "episode_metrics" not in steps[-1][4]
        with pytest.raises(NotImplementedError, match="per-flow records"):
            env.unwrapped.episode_metrics()
    finally:
        env.close()


def test_weights_written_by_the_agent_steer_the_emulated_sed():
    """Bin 3's weight 50x the others: SED sends it most flows (n_flow_on counts come back via msg_out)."""
    name = _name()
    region = SharedMemoryRegion.create(name)
    emu = EmulatorProcess(name, {"servers": [2, 2, 2, 2], "seed": 1}, speed=20.0, publish_interval=0.05)
    try:
        region.write_msg_in(np.array([1.0, 1.0, 1.0, 50.0]))
        region.read_msg_out(timeout=10)
        counts = []
        for _ in range(20):
            f = region.read_msg_out(timeout=10)
            counts.append(f.n_flow_on[:4])
        q = np.mean(counts[5:], axis=0)
        assert q[3] > 2 * q[:3].max(), q
        assert f.active_bins.tolist() == [0, 1, 2, 3]
    finally:
        emu.stop()
        region.close()
    assert not emu.alive()


def test_emulator_serves_one_region_per_lb():
    names = [_name(), _name()]
    regions = [SharedMemoryRegion.create(n) for n in names]
    emu = EmulatorProcess(names, {"servers": [1, 1, 2], "seed": 2}, speed=20.0)
    try:
        frames = [r.read_msg_out(timeout=10) for r in regions]
        for _ in range(10):
            frames = [r.read_msg_out(timeout=10) for r in regions]
        assert all(f.active_bins.tolist() == [0, 1, 2] for f in frames)
        # each LB counts only its own flows: the two regions' counts differ
        assert frames[0].n_flow_on[:3].sum() + frames[1].n_flow_on[:3].sum() > 0
    finally:
        emu.stop()
        for r in regions:
            r.close()


def test_stalled_data_plane_raises_transient_and_missing_region_permanent():
    name = _name()
    with SharedMemoryRegion.create(name) as dp:  # a "data plane" that publishes once, then stalls
        dp.write_msg_out(np.array([1, 2, 0, 0]), np.ones(4, bool), ts=1.0)
        be = ShmBackend(4, 0.25, name=name, emulate=False, frame_timeout=0.2)
        m = be.observe()
        assert m.features.shape == (4, 11) and m.features[:, 0].tolist() == [1, 2, 0, 0]
        assert np.all(np.isnan(m.ground_truth))  # not carried by shm: never invented
        with pytest.raises(TransientBackendError, match="stalled"):
            be.observe()
        be.apply(np.array([1.0, 2.0, 1.5, 1.0]))
        assert dp.read_msg_in().score[:4].tolist() == [1.0, 2.0, 1.5, 1.0]
        with pytest.raises(ValueError, match="shape"):
            be.apply(np.ones(3))
        with pytest.raises(ValueError, match="finite"):
            be.apply(np.array([1.0, np.nan, 1.0, 1.0]))
        be.close()
        assert os.path.exists(dp.path)  # attaching backend does not remove the data plane's file
    with pytest.raises(PermanentBackendError, match="VPP"):
        ShmBackend(4, name=_name(), emulate=False)


def test_active_server_mismatch_is_permanent_error():
    name = _name()
    with SharedMemoryRegion.create(name) as dp:
        active = np.zeros(8, bool)
        active[[1, 3, 5]] = True
        dp.write_msg_out(np.zeros(8, int), active, ts=0.5)
        be = ShmBackend(4, name=name, emulate=False, frame_timeout=0.2)
        with pytest.raises(PermanentBackendError, match="3 active servers"):
            be.observe()
        be.close()


def test_features_from_reservoirs_match_reservoir_stats():
    """Active bins map to servers in ascending order; stats over filled (t, v) slots."""
    from marllb_env.reservoir import reservoir_stats

    name = _name()
    with SharedMemoryRegion.create(name) as dp:
        fct = np.zeros((3, 128, 2))
        fct[2, :10, 0] = np.linspace(1.0, 2.0, 10)
        fct[2, :10, 1] = np.arange(1, 11) / 10
        dp.write_reservoirs(fct, np.zeros((3, 128, 2)))
        dp.write_msg_out(np.array([0, 4, 7]), np.array([False, True, True]), ts=2.0)
        be = ShmBackend(2, name=name, emulate=False, frame_timeout=0.2)
        m = be.observe()
        expect = reservoir_stats(fct[2, :10, 1], fct[2, :10, 0], np.array(10), 2.0, 0.9)
        assert m.features[:, 0].tolist() == [4, 7]
        assert np.allclose(m.features[1, 1:6], expect, rtol=1e-5)
        assert np.all(m.features[0, 1:] == 0)
        be.apply(np.array([1.0, 2.0]))  # written at bins 1 and 2
        assert dp.read_msg_in().score[:3].tolist() == [0.0, 1.0, 2.0]
        be.close()
