"""Equivalence gate of the optional C kernel (``lwmecps_gym.backends.sim._ckernel``) and the Python reference.

The same seeds and actions go through ``sim_config={"kernel": "c"}`` and ``{"kernel": "python"}``;
observations, rewards, ``info`` (incl. ``info["metrics"]``) and the simulator's whole state
(ready pods, pending groups, backlog, desired replicas, delay cursor, last-window lists) must be
identical bit for bit (the C kernel keeps the reference's operand order, uses the same libm
``exp`` and is built without FMA contraction). Every run also checks that it exercised the
paths it is meant to (failover, overload/backlog, drops, several readiness events in one
window, replicas beyond node capacity, scale to 0, unchanged actions), so a run that drifts
away from them fails instead of silently testing less.
"""

from __future__ import annotations

from dataclasses import replace

import gymnasium as gym
import numpy as np
import pytest

import lwmecps_gym  # noqa: F401  (registers ids)
from lwmecps_gym.backends.sim import SimBackend, cluster
from lwmecps_gym.backends.sim.cluster import c_kernel_available, resolve_kernel
from lwmecps_gym.scenarios import from_rtt_matrix, minikube_4

needs_c = pytest.mark.skipif(
    not c_kernel_available(),
    reason="the optional C kernel lwmecps_gym.backends.sim._ckernel is not built (no C compiler at install "
    "time); the pure-Python kernel is the reference and is used instead",
)

_RTT3 = [[5.0, 20.0, 40.0], [20.0, 5.0, 30.0], [40.0, 30.0, 5.0]]


def _small_overloaded():
    """3 sites whose nodes fit 2, 3 and 5 pods (< max_replicas = 6) under heavy demand."""
    return from_rtt_matrix(_RTT3, users_per_site=[80, 40, 10], max_replicas=6,
                           node_capacity={"cpu": [2.0, 3.0, 5.0]}, user_rate_rps=2.0)


def _spread():
    """One deployment spread round-robin over 3 nodes (the non-pinned scaling layout)."""
    return from_rtt_matrix(_RTT3, deployments=["app"], users_per_site=[60, 30, 10], max_replicas=6,
                           node_capacity={"cpu": [2.0, 3.0, 5.0]}, user_rate_rps=1.5)


def _idle():
    """Two sites with almost no demand: most windows have zero arrivals."""
    sc = from_rtt_matrix([[10.0, 15.0], [15.0, 10.0]], users_per_site=[1, 1], max_replicas=4,
                         user_rate_rps=0.002)
    return replace(sc, profile=(1.0,) * 24)


def _actions(rng: np.random.Generator, n: int, m: int, prev: np.ndarray) -> np.ndarray:
    """A mix of uniform replicas, scale-to-0, all-max, per-site 0-or-max and unchanged actions."""
    u = rng.random()
    if u < 0.4:
        return rng.integers(0, m + 1, size=n)
    if u < 0.55:
        return np.zeros(n, dtype=np.int64)
    if u < 0.7:
        return np.full(n, m, dtype=np.int64)
    if u < 0.85:
        return np.where(rng.random(n) < 0.5, 0, m).astype(np.int64)
    return prev.copy()


def _state(b: SimBackend) -> tuple:
    return (list(b.ready), [[list(g) for g in p] for p in b.pending], list(b.backlog), list(b.desired), b._di,
            b.t, b.now, list(b.last_latency_ms), list(b.last_load), list(b.last_demand), b.last_failed_rps,
            b.last_served_rps, b.last_mean_latency_ms, b.last_sla)


def _run(kernel: str, kwargs: dict, n_steps: int, seed: int):
    kw = dict(kwargs)
    kw["sim_config"] = {**kw.get("sim_config", {}), "kernel": kernel}
    env = gym.make("lwmecps-v3", **kw)
    u = env.unwrapped
    b = u.backend
    assert b.kernel == kernel
    seen = {"failover": 0, "backlog": 0, "dropped": 0, "multi_event": 0, "beyond_fit": 0, "zero": 0,
            "unchanged": 0, "zero_demand": 0}
    inner = b._deployment_window

    def counting(*args):
        seen["multi_event"] += 1
        return inner(*args)

    b._deployment_window = counting  # both kernels call the backend's method for several events in a window
    rng = np.random.default_rng(seed)
    n, m = u.n, u.max_replicas
    trace = []
    obs, info = env.reset(seed=seed)
    trace.append((obs.tobytes(), info["metrics"], _state(b)))
    prev = np.zeros(n, dtype=np.int64)
    for _ in range(n_steps):
        a = _actions(rng, n, m, prev)
        if u.action_mode == "continuous":
            act = (a / m * 2.0 - 1.0).astype(np.float32)
        else:
            act = a
        seen["failover"] += 0 in b.ready
        seen["zero"] += int(not a.any())
        seen["unchanged"] += int(np.array_equal(a, prev))
        seen["beyond_fit"] += any(int(x) > f for x, f in zip(a, b.dep_fit, strict=True))
        obs, r, term, trunc, info = env.step(act)
        assert type(r) is float
        seen["backlog"] += any(x > 0.0 for x in b.backlog)
        seen["dropped"] += b.last_failed_rps > 0.0 and 0 not in b.ready
        seen["zero_demand"] += 0.0 in b.last_demand
        trace.append((obs.tobytes(), r, term, trunc, info, _state(b)))
        prev = a
        if term or trunc:
            obs, info = env.reset()
            trace.append((obs.tobytes(), info["metrics"], _state(b)))
    env.close()
    return trace, seen


def _assert_same(kwargs: dict, n_steps: int, seed: int) -> dict:
    ref, seen = _run("python", kwargs, n_steps, seed)
    fast, seen_c = _run("c", kwargs, n_steps, seed)
    assert seen == seen_c
    assert len(ref) == len(fast)
    for i, (x, y) in enumerate(zip(ref, fast, strict=True)):
        # exact equality: bytes of the float32 observation, Python floats of reward/metrics/state
        assert x == y, f"C and Python kernels differ at record {i}"
    return seen


@needs_c
def test_melbourne_cbd_discrete_random_actions_identical():
    # 600 steps = 2.5 episodes of 240 windows: crosses two resets
    seen = _assert_same({}, 600, seed=3)
    assert seen["failover"] > 50 and seen["zero"] > 20 and seen["unchanged"] > 20
    assert seen["backlog"] > 20


@needs_c
def test_minikube_4_identical():
    seen = _assert_same({"scenario": "minikube-4"}, 400, seed=5)
    assert seen["failover"] > 20 and seen["zero"] > 10


@needs_c
def test_slow_pod_start_several_readiness_events_per_window_identical():
    # pods need ~45 s (two 30 s windows): scale-ups in consecutive windows become ready in the same one
    kw = {"sim_config": {"pod_startup_median_s": 45.0, "pod_startup_sigma": 0.6}}
    seen = _assert_same(kw, 500, seed=7)
    assert seen["multi_event"] > 10


@needs_c
def test_continuous_action_mode_identical():
    seen = _assert_same({"action_mode": "continuous"}, 300, seed=11)
    assert seen["zero"] > 10 and seen["failover"] > 10


@needs_c
def test_overload_backlog_drops_and_replicas_beyond_node_capacity_identical():
    # short windows (10 s) and 25 s start-up: readiness falls inside windows at varied fractions
    kw = {"scenario": _small_overloaded(), "sim_config": {"window_s": 10.0, "pod_startup_median_s": 25.0,
                                                         "timeout_s": 0.5}}
    seen = _assert_same(kw, 500, seed=13)
    assert seen["beyond_fit"] > 100 and seen["backlog"] > 50 and seen["multi_event"] > 0
    assert seen["dropped"] > 10


@needs_c
def test_spread_single_deployment_identical():
    seen = _assert_same({"scenario": _spread()}, 300, seed=17)
    assert seen["zero"] > 10


@needs_c
def test_zero_demand_windows_identical():
    # regression: a window without arrivals in which pending pods become ready used to divide by zero
    seen = _assert_same({"scenario": _idle(), "sim_config": {"pod_startup_median_s": 5.0}}, 200, seed=19)
    assert seen["zero_demand"] > 100


@needs_c
def test_backend_scale_list_beyond_action_bounds_and_protocol_scale_identical():
    sc = minikube_4()
    rng = np.random.default_rng(23)
    bs = [SimBackend(sc, {"kernel": k, "pod_startup_median_s": 35.0}) for k in ("python", "c")]
    for b in bs:
        b.reset(seed=1)
    for step in range(300):
        lst = rng.integers(0, 40, size=4).tolist()  # far beyond the 4 pods a node fits
        if step % 7 == 0:
            lst[rng.integers(0, 4)] = 0
        for b in bs:
            if step % 5 == 0:
                b.scale(dict(zip(b.deployments, lst, strict=True)))
            else:
                b.scale_list(list(lst))
            b.step_window()
            if b.t >= 100:
                b.reset(seed=step)
        assert _state(bs[0]) == _state(bs[1]), f"step {step}"


@needs_c
def test_c_kernel_errors_match_python():
    for k in ("python", "c"):
        b = SimBackend(minikube_4(), {"kernel": k})
        with pytest.raises(ValueError, match="expected 4 replica counts"):
            b.scale_list([1, 2])


def test_kernel_selection(monkeypatch):
    sc = minikube_4()
    monkeypatch.delenv("LWMECPS_SIM_KERNEL", raising=False)
    assert SimBackend(sc, {"kernel": "python"}).kernel == "python"
    assert SimBackend(sc).kernel == ("c" if c_kernel_available() else "python")
    with pytest.raises(ValueError, match="kernel"):
        SimBackend(sc, {"kernel": "fortran"})
    monkeypatch.setenv("LWMECPS_SIM_KERNEL", "python")
    assert resolve_kernel("auto") == "python"
    assert SimBackend(sc).kernel == "python"
    monkeypatch.setenv("LWMECPS_SIM_KERNEL", "rust")
    with pytest.raises(ValueError, match="LWMECPS_SIM_KERNEL"):
        resolve_kernel("auto")


def test_without_the_extension_auto_falls_back_and_c_raises(monkeypatch):
    monkeypatch.delenv("LWMECPS_SIM_KERNEL", raising=False)
    monkeypatch.setattr(cluster, "_load_c_kernel", lambda: None)
    assert resolve_kernel("auto") == "python"
    b = SimBackend(minikube_4())
    assert b.kernel == "python" and "scale_list" not in vars(b)
    with pytest.raises(ImportError, match="kernel='c'"):
        SimBackend(minikube_4(), {"kernel": "c"})
    env = gym.make("lwmecps-v3", scenario="minikube-4")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    assert env.unwrapped.backend.kernel == "python"
