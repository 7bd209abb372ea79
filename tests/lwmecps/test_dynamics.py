"""Time matters: pod start-up, rollouts, failover, anticipation vs thrashing, Protocol vs fast path."""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest

import lwmecps_gym  # noqa: F401
from lwmecps_gym.backends.base import ClusterBackend
from lwmecps_gym.backends.sim import SimBackend
from lwmecps_gym.scenarios import from_rtt_matrix, minikube_4

pytestmark = pytest.mark.filterwarnings("ignore:.*is out of date.*")


def _backend(startup_s: float, c0: int = 1, rate: float = 120.0, window_s: float = 30.0) -> SimBackend:
    sc = from_rtt_matrix([[10.0, 15.0], [15.0, 10.0]], users_per_site=[100, 100], max_replicas=8,
                         user_rate_rps=rate / 100.0, service_rate_rps=50.0)
    sc = replace(sc, profile=(1.0,) * 24, dwell_s=1e12)
    b = SimBackend(sc, {"window_s": window_s, "pod_startup_median_s": startup_s, "pod_startup_sigma": 0.0,
                        "initial_replicas": c0})
    b.reset(seed=0)
    return b


def test_new_pods_serve_only_after_start_up():
    slow = _backend(startup_s=20.0, c0=2)
    fast = _backend(startup_s=0.0, c0=2)
    for b in (slow, fast):
        b.scale_list([4, 4])
        b.step_window()
    assert slow.ready == [4, 4] and fast.ready == [4, 4]  # 20 s < 30 s window: ready by its end
    # 20 of 30 s with 2 pods at 120 req/s (overload) vs 4 pods all along
    assert slow.observe().mean_latency_ms > 3 * fast.observe().mean_latency_ms
    longer = _backend(startup_s=75.0, c0=2)
    longer.scale_list([4, 4])
    readies = []
    for _ in range(3):
        longer.step_window()
        readies.append(list(longer.ready))
    assert readies == [[2, 2], [2, 2], [4, 4]]  # ready after 75 s, i.e. in the third window


def test_scale_down_removes_pending_pods_first():
    b = _backend(startup_s=75.0, c0=2)
    b.scale_list([5, 2])
    b.step_window()
    assert b.ready[0] == 2 and sum(g[1] for g in b.pending[0]) == 3
    b.scale_list([3, 2])
    assert b.ready[0] == 2 and sum(g[1] for g in b.pending[0]) == 1
    b.scale_list([1, 2])
    assert b.ready[0] == 1 and b.pending[0] == []


def test_failover_to_nearest_site_costs_rtt_and_without_any_pod_requests_fail():
    b = _backend(startup_s=10.0, c0=3, rate=40.0)
    b.scale_list([3, 0])
    b.step_window()
    m = b.observe()
    assert m.failed_rps == 0.0
    # site 1's users are served at node 0: 15 ms RTT instead of 10
    assert m.latency_ms[0] > 10.0
    b.scale_list([0, 0])
    b.step_window()
    assert b.observe().failed_rps == pytest.approx(80.0, rel=0.15)  # everything fails (2 x ~40 req/s)


def test_placement_rollout_keeps_old_pods_until_new_ones_are_ready():
    sc = minikube_4()
    b = SimBackend(sc, {"window_s": 10.0, "pod_startup_median_s": 25.0, "pod_startup_sigma": 0.0},
                   mode="placement", placement_replicas=2)
    b.reset(seed=0)
    b.place("lwmecps-testapp-server-bs1", "minikube-m04")
    b.step_window()
    assert b.node == 0  # still the old node after 10 s
    b.step_window()
    assert b.node == 0
    b.step_window()  # ready at 25 s
    assert b.node == 3
    with pytest.raises(ValueError, match="unknown node"):
        b.place("lwmecps-testapp-server-bs1", "minikube-m05")


def test_env_uses_only_the_backend_contract():
    """A wrapper exposing only the ClusterBackend contract (no simulator attributes) gives the
    bit-identical trajectory: the env reads nothing but apply/advance/observe."""

    class ProtocolOnly:
        def __init__(self, inner):
            self.inner = inner
            self.node_names, self.deployments = inner.node_names, inner.deployments

        def reset(self, seed=None):
            self.inner.reset(seed=seed)

        def apply(self, command):
            self.inner.apply(command)

        def advance(self, seconds):
            self.inner.advance(seconds)

        def observe(self):
            return self.inner.observe()

        def close(self):
            pass

    sc = minikube_4()
    direct = gym.make("lwmecps-v3", scenario=sc)
    wrapped = ProtocolOnly(SimBackend(sc, {"interval_s": 30.0, "sla_ms": sc.sla_ms}))
    assert isinstance(wrapped, ClusterBackend)
    via_protocol = gym.make("lwmecps-v3", scenario=sc, backend=wrapped, interval_s=30.0)
    o1, _ = direct.reset(seed=11)
    o2, _ = via_protocol.reset(seed=11)
    np.testing.assert_array_equal(o1, o2)
    rng = np.random.default_rng(0)
    for _ in range(30):
        a = rng.integers(0, 5, size=4)
        o1, r1, *_, i1 = direct.step(a)
        o2, r2, *_, i2 = via_protocol.step(a)
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2 and i1["metrics"] == i2["metrics"]


def _episode_return(policy, scenario_kw, seed: int) -> float:
    env = gym.make("lwmecps-v3", **scenario_kw)
    obs, info = env.reset(seed=seed)
    total = 0.0
    for t in range(120):
        obs, r, term, trunc, info = env.step(policy(t, info, env.unwrapped))
        total += r
    return total


def test_thrashing_is_penalised():
    """Alternating 0/4 replicas is worse than holding the same average (2) steadily."""
    kw = {"scenario": "minikube-4"}
    steady = lambda t, info, u: np.full(4, 2)  # noqa: E731
    thrash = lambda t, info, u: np.full(4, 4 if t % 2 else 0)  # noqa: E731
    for seed in (1, 2, 3):
        assert _episode_return(steady, kw, seed) > _episode_return(thrash, kw, seed)


def test_anticipation_is_rewarded():
    """Sizing for the next window's demand (known in advance) beats sizing for the last window's.

    Slow pods (30 s start-up in 30 s windows) and a steep demand profile make reacting late costly.
    """
    sc = replace(minikube_4(), profile=(0.1, 1.0) * 12, user_rate_rps=2.0)
    kw = {"scenario": sc, "sim_config": {"pod_startup_median_s": 25.0, "pod_startup_sigma": 0.0}}

    def sized(lam):
        return np.clip(np.ceil(np.asarray(lam) / (50.0 * 0.7)), 1, 4).astype(np.int64)

    reactive = lambda t, info, u: sized(info["demand_rps"])  # noqa: E731
    anticipating = lambda t, info, u: sized(u.backend.next_window_demand())  # noqa: E731
    wins = sum(_episode_return(anticipating, kw, s) > _episode_return(reactive, kw, s) for s in range(4))
    assert wins == 4
