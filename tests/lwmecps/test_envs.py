"""Env API: both checkers on every id and variant, determinism, spec round-trip, upstream constructor, errors."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import lwmecps_gym  # noqa: F401  (registers the ids)

IDS = ["lwmecps-v0", "lwmecps-v1", "lwmecps-v2", "lwmecps-v3"]
pytestmark = pytest.mark.filterwarnings("ignore:.*is out of date.*")

VARIANTS = [(i, {}) for i in IDS] + [
    ("lwmecps-v3", {"action_mode": "continuous"}),
    ("lwmecps-v3", {"scenario": "minikube-4"}),
    ("lwmecps-v3", {"render_mode": "ansi"}),
    ("lwmecps-v2", {"scenario": "minikube-4", "render_mode": "ansi"}),
]
#: nested Dict observations are upstream's layout, offered for inspection; SB3 warns about them by design
DICT_VARIANTS = [("lwmecps-v3", {"obs_mode": "dict"}), ("lwmecps-v2", {"obs_mode": "dict"}), ("lwmecps-v0", {"obs_mode": "dict"})]


@pytest.mark.parametrize("env_id,kwargs", VARIANTS + DICT_VARIANTS)
def test_gymnasium_checker_without_warnings(env_id, kwargs):
    env = gym.make(env_id, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped)
    msgs = [str(w.message) for w in caught if "out of date" not in str(w.message)]
    assert msgs == []


@pytest.mark.parametrize("env_id,kwargs", VARIANTS + DICT_VARIANTS)
def test_sb3_checker(env_id, kwargs):
    from stable_baselines3.common.env_checker import check_env as sb3_check

    env = gym.make(env_id, **kwargs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sb3_check(env.unwrapped)
    msgs = [str(w.message) for w in caught if "out of date" not in str(w.message)]
    if kwargs.get("obs_mode") == "dict":
        assert msgs and all("Nested observation spaces" in m for m in msgs)
    else:
        assert msgs == []


def _rollout(env_id: str, seed: int, steps: int = 40, **kwargs) -> tuple[np.ndarray, list[float]]:
    env = gym.make(env_id, **kwargs)
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(123)
    out, rewards = [obs], []
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        assert isinstance(r, float) and type(term) is bool and type(trunc) is bool
        assert env.observation_space.contains(obs)
        out.append(obs)
        rewards.append(r)
    return np.stack(out), rewards


@pytest.mark.parametrize("env_id", IDS)
def test_same_seed_same_trajectory(env_id):
    a, ra = _rollout(env_id, 7)
    b, rb = _rollout(env_id, 7)
    c, rc = _rollout(env_id, 8)
    np.testing.assert_array_equal(a, b)
    assert ra == rb
    assert not np.array_equal(a, c)


def test_observations_are_fresh_arrays():
    env = gym.make("lwmecps-v3")
    o0, _ = env.reset(seed=0)
    o1, *_ = env.step(env.action_space.sample())
    o2, *_ = env.step(env.action_space.sample())
    assert not np.shares_memory(o0, o1) and not np.shares_memory(o1, o2)


@pytest.mark.parametrize("env_id", IDS)
def test_spec_json_round_trip(env_id):
    env = gym.make(env_id, scenario="minikube-4", sla_ms=120.0, sim_config={"pod_startup_median_s": 5.0})
    spec = gym.envs.registration.EnvSpec.from_json(env.spec.to_json())
    assert spec.kwargs["sim_config"] == {"pod_startup_median_s": 5.0}
    env2 = spec.make()
    o1, _ = env.reset(seed=3)
    o2, _ = env2.reset(seed=3)
    np.testing.assert_array_equal(o1, o2)
    json.dumps(env.spec.kwargs)


def test_registered_episode_lengths():
    assert gym.spec("lwmecps-v3").max_episode_steps == 240
    assert gym.spec("lwmecps-v2").max_episode_steps == 120
    assert gym.spec("lwmecps-v1").entry_point == gym.spec("lwmecps-v2").entry_point
    env = gym.make("lwmecps-v3", scenario="minikube-4")
    env.reset(seed=0)
    n = 0
    while True:
        n += 1
        *_, term, trunc, _ = env.step(env.action_space.sample())
        if term or trunc:
            break
    assert n == 240 and trunc


SEED_NODES = ["minikube", "minikube-m02", "minikube-m03", "minikube-m04"]
SEED_MAX_HW = {"cpu": 8, "ram": 16000, "tx_bandwidth": 1000, "rx_bandwidth": 1000,
               "read_disks_bandwidth": 500, "write_disks_bandwidth": 500, "avg_latency": 300}
SEED_POD = {"cpu": 2, "ram": 2000, "tx_bandwidth": 20, "rx_bandwidth": 20,
            "read_disks_bandwidth": 100, "write_disks_bandwidth": 100}
SEED_INFO = {n: {"cpu": 4, "ram": 8000, "tx_bandwidth": 100, "rx_bandwidth": 100, "read_disks_bandwidth": 300,
                 "write_disks_bandwidth": 300, "avg_latency": 10 + 10 * i} for i, n in enumerate(SEED_NODES)}


def _seed_readme_kwargs(**over):
    kw = dict(node_name=SEED_NODES, max_hardware=SEED_MAX_HW, pod_usage=SEED_POD, node_info=SEED_INFO,
              num_nodes=len(SEED_NODES), namespace="default", deployment_name="mec-test-app",
              deployments=["mec-test-app"], max_pods=10000, group_id="test-group-1",
              env_config={"base_url": "http://localhost:8001", "stabilization_time": 10})
    kw.update(over)
    return kw


@pytest.mark.parametrize("env_id", IDS)
def test_seed_readme_constructor_call(env_id):
    """The exact argument set of upstream's README works on the simulator."""
    env = gym.make(env_id, **_seed_readme_kwargs())
    obs, info = env.reset(seed=0)
    u = env.unwrapped
    assert u.node_names == SEED_NODES and u.interval_s == 10.0
    if env_id == "lwmecps-v3":
        # one deployment spread over the 4 nodes; 8 CPU / 2 CPU -> 4 replicas, as upstream v3
        assert env.action_space.nvec.tolist() == [5]
        assert u.backend.fit == [2, 2, 2, 2]  # node_info cpu 4 / pod cpu 2
    else:
        assert env.action_space.n == 4
    for _ in range(3):
        obs, r, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)


def test_seed_call_with_one_deployment_per_node():
    env = gym.make("lwmecps-v3", **_seed_readme_kwargs(deployments=[f"bs{i}" for i in range(1, 5)]))
    assert env.action_space.nvec.tolist() == [5, 5, 5, 5]
    env.reset(seed=1)
    _, _, _, _, info = env.step(np.array([1, 2, 0, 4]))
    assert info["replicas_desired"] == [1, 2, 0, 4]


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"scenario": "atlantis"}, "scenario must be one of"),
        ({"node_name": ["a", "b"], "node_info": {"a": {"avg_latency": 1}, "c": {"avg_latency": 2}}}, "unknown nodes"),
        ({"env_config": {"stabilisation": 10}}, "unknown keys"),
        ({"env_config": {"stabilization_time": "ten"}}, "stabilization_time"),
        ({"env_config": {"stabilization_time": -5}}, "stabilization_time"),
        ({"env_config": "http://x"}, "env_config must be a mapping"),
        ({"obs_mode": "image"}, "obs_mode must be one of"),
        ({"action_mode": "binary"}, "action_mode must be one of"),
        ({"backend": "docker"}, "backend must be one of"),
        ({"max_replicas": -1}, "max_replicas"),
        ({"num_nodes": 3}, "num_nodes=3 does not match"),
        ({"node_name": "minikube"}, "node_name must be a list"),
        ({"sla_ms": 0}, "sla_ms"),
        ({"w_latency": -1.0}, "w_latency"),
        ({"deployments": ["a", "b", "c"]}, "deployments must have one name per node"),
        ({"scenario_options": {"n_nodez": 3}}, "unknown keys"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        gym.make("lwmecps-v3", **kwargs)


@pytest.mark.parametrize(
    "action,match",
    [
        (np.array([1, 2, 3]), "MultiDiscrete shape"),
        (np.array([-1, 0, 0, 0, 0, 0, 0, 0]), r"must be in \[0, 8\]"),
        (np.array([9, 0, 0, 0, 0, 0, 0, 0]), r"must be in \[0, 8\]"),
        (np.array([0.5] * 8), "integer replica counts"),
        ("four", "MultiDiscrete shape"),
    ],
)
def test_bad_actions_raise(action, match):
    env = gym.make("lwmecps-v3")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_list_actions_and_continuous_rounding():
    env = gym.make("lwmecps-v3", scenario="minikube-4")
    env.reset(seed=0)
    *_, info = env.step([1, 2, 3, 4])
    assert info["replicas_desired"] == [1, 2, 3, 4]
    envc = gym.make("lwmecps-v3", scenario="minikube-4", action_mode="continuous")
    envc.reset(seed=0)
    *_, info = envc.step(np.array([-1.0, 0.0, 0.49, 1.0], dtype=np.float32))
    assert info["replicas_desired"] == [0, 2, 3, 4]  # round((a + 1) / 2 * 4)
    with pytest.raises(ValueError, match=r"in \[-1, 1\]"):
        envc.step(np.array([0.0, 0.0, 0.0, 1.5], dtype=np.float32))


def test_placement_bad_node_index():
    env = gym.make("lwmecps-v2", scenario="minikube-4")
    env.reset(seed=0)
    with pytest.raises(ValueError, match="node index"):
        env.step(4)
    with pytest.raises(ValueError, match="node index"):
        env.step(-1)


def test_metrics_and_info_for_the_harness():
    env = gym.make("lwmecps-v3")
    _, info = env.reset(seed=0)
    for key in ("max_replicas", "service_rate_rps", "sla_ms", "reward_weights", "site_rtt_ms", "demand_rps"):
        assert key in info
    _, r, _, _, info = env.step(env.action_space.sample())
    m = info["metrics"]
    for key in ("latency_ms", "sla_violation_rate", "replicas", "failed_rps", "demand_rps"):
        assert isinstance(m[key], float)
    assert 0.0 <= m["sla_violation_rate"] <= 1.0
    w = info and env.unwrapped
    # reward formula with the documented normalisation
    expect = -(w.w_latency * m["latency_ms"] / w.sla_ms + w.w_replicas * m["replicas"] / (w.n * w.max_replicas)
               + w.w_imbalance * m["imbalance"] + w.w_sla * m["sla_violation_rate"])
    assert r == pytest.approx(expect)


@pytest.mark.parametrize("env_id", ["lwmecps-v3", "lwmecps-v2"])
def test_render_modes(env_id):
    env = gym.make(env_id, scenario="minikube-4", render_mode="ansi")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    text = env.render()
    assert isinstance(text, str) and "minikube-m02" in text
    env = gym.make(env_id, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3 and frame.std() > 0


def test_default_import_path_is_light():
    import subprocess
    import sys

    code = ("import sys, gymnasium as gym, lwmecps_gym; e = gym.make('lwmecps-v3'); e.reset(seed=0); "
            "e.step(e.action_space.sample()); "
            "bad = [m for m in ('torch', 'stable_baselines3', 'kubernetes', 'prometheus_api_client', 'pettingzoo', "
            "'matplotlib') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_trajectory_is_identical_across_processes():
    """No hidden process state (hash seeds, caches): two interpreters produce the same rollout."""
    import os
    import subprocess
    import sys

    code = ("import hashlib, numpy as np, gymnasium as gym, lwmecps_gym; e = gym.make('lwmecps-v3'); "
            "o, _ = e.reset(seed=5); e.action_space.seed(1); h = hashlib.sha256(o.tobytes())\n"
            "for _ in range(30):\n    o, r, *_ = e.step(e.action_space.sample()); h.update(o.tobytes()); "
            "h.update(np.float64(r).tobytes())\nprint(h.hexdigest())")
    outs = [
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": str(s)}).stdout
        for s in (1, 2)
    ]
    assert outs[0] == outs[1] and len(outs[0].strip()) == 64


def test_make_vec_sync():
    envs = gym.make_vec("lwmecps-v3", num_envs=2, vectorization_mode="sync", scenario="minikube-4")
    obs, _ = envs.reset(seed=[0, 1])
    assert obs.shape == (2, 22)
    obs, r, term, trunc, info = envs.step(envs.action_space.sample())
    assert r.shape == (2,) and np.all(np.isfinite(r))
    envs.close()
