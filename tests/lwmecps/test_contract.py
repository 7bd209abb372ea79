"""The lwmecps envs over the one backend contract: ids and aliases, the seed hand-off, commands,
the reward as a function of the measurement, the control-period vocabulary, the day-trace cache."""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.seeding import np_random

import lwmecps_gym
from lwmecps_gym.backends.base import ClusterBackend, ClusterMeasurement, PlaceCommand, ScaleCommand
from lwmecps_gym.backends.sim import SimBackend, SimConfig
from lwmecps_gym.core.seeding import draw_seed
from lwmecps_gym.scenarios import minikube_4

pytestmark = pytest.mark.filterwarnings("ignore:.*is out of date.*")

NAMESPACED = {
    "lwmecps-v0": "lwmecps_gym/Placement-v0",
    "lwmecps-v1": "lwmecps_gym/PlacementNormalized-v0",
    "lwmecps-v2": "lwmecps_gym/PlacementNormalized-v0",
    "lwmecps-v3": "lwmecps_gym/Scaling-v0",
}


def _rollout(env_id: str, steps: int = 25, seed: int = 3, **kwargs):
    env = gym.make(env_id, **kwargs)
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    out = [obs]
    rewards = []
    for _ in range(steps):
        obs, r, *_ = env.step(env.action_space.sample())
        out.append(obs)
        rewards.append(r)
    return np.stack(out), rewards


@pytest.mark.parametrize("alias,namespaced", sorted(NAMESPACED.items()))
def test_upstream_ids_are_aliases_of_the_namespaced_ids(alias, namespaced):
    a, b = gym.spec(alias), gym.spec(namespaced)
    assert a.entry_point == b.entry_point and a.max_episode_steps == b.max_episode_steps
    assert lwmecps_gym.UPSTREAM_ALIASES[alias] == namespaced
    oa, ra = _rollout(alias, scenario="minikube-4")
    ob, rb = _rollout(namespaced, scenario="minikube-4")
    np.testing.assert_array_equal(oa, ob)
    assert ra == rb


def test_placement_ids_differ_only_in_observation_units():
    raw = gym.make("lwmecps_gym/Placement-v0", scenario="minikube-4")
    norm = gym.make("lwmecps_gym/PlacementNormalized-v0", scenario="minikube-4")
    assert raw.action_space == norm.action_space and raw.observation_space.shape == norm.observation_space.shape
    assert float(norm.observation_space.high.max()) == 1.0 and float(raw.observation_space.high.max()) > 1.0
    raw.reset(seed=1)
    norm.reset(seed=1)
    for a in (0, 2, 2, 3, 1):
        *_, r1, _, _, i1 = raw.step(a)
        *_, r2, _, _, i2 = norm.step(a)
        assert r1 == r2 and i1["metrics"] == i2["metrics"]


# ----------------------------------------------------------------------------- vocabulary and aliases
@pytest.mark.parametrize("kwargs", [{"interval_s": 12.0}, {"stabilization_time": 12.0}, {"window_s": 12.0},
                                    {"env_config": {"stabilization_time": 12}},
                                    {"sim_config": {"window_s": 12.0}}, {"sim_config": {"interval_s": 12.0}}])
@pytest.mark.parametrize("env_id", ["lwmecps_gym/Scaling-v0", "lwmecps_gym/Placement-v0"])
def test_control_period_and_its_aliases(env_id, kwargs):
    env = gym.make(env_id, scenario="minikube-4", **kwargs)
    u = env.unwrapped
    assert u.interval_s == 12.0 and u.backend.tau == 12.0
    _, info = env.reset(seed=0)
    assert info["interval_s"] == 12.0
    env.step(env.action_space.sample())
    assert u.last_measurement.time_s == 12.0


@pytest.mark.parametrize(
    "kwargs,err,match",
    [
        ({"interval_s": 10.0, "stabilization_time": 10.0}, TypeError, "alias stabilization_time"),
        ({"interval_s": 10.0, "window_s": 10.0}, TypeError, "alias window_s"),
        ({"interval_s": 10.0, "env_config": {"stabilization_time": 20}}, ValueError, "give it once"),
        ({"interval_s": 10.0, "sim_config": {"interval_s": 20.0}}, ValueError, "give it once"),
        ({"sim_config": {"interval_s": 20.0, "window_s": 20.0}}, TypeError, "alias"),
        ({"interval_s": 0.0}, ValueError, "interval_s"),
        ({"interval_s": "ten"}, TypeError, "interval_s"),
        ({"backend_kwargs": {"api_client": None}}, ValueError, "backend_kwargs apply to backend='kubernetes'"),
        ({"backend_kwargs": ["x"]}, TypeError, "backend_kwargs must be a mapping"),
    ],
)
def test_conflicting_or_bad_vocabulary_raises(kwargs, err, match):
    with pytest.raises(err, match=match):
        gym.make("lwmecps_gym/Scaling-v0", scenario="minikube-4", **kwargs)


def test_sim_config_window_s_is_a_read_alias():
    cfg = SimConfig.coerce({"window_s": 15.0})
    assert cfg.interval_s == 15.0 and cfg.window_s == 15.0
    with pytest.raises(ValueError, match="unknown keys"):
        SimConfig.coerce({"windw_s": 1.0})


def test_seed_readme_v3_constructor_on_the_namespaced_id():
    """The lwmecps-v3 call of the seed README (upstream names, env_config stabilization_time)."""
    nodes = ["minikube", "minikube-m02", "minikube-m03", "minikube-m04"]
    kw = dict(
        node_name=nodes,
        max_hardware={"cpu": 8, "ram": 16000, "tx_bandwidth": 1000, "rx_bandwidth": 1000,
                      "read_disks_bandwidth": 500, "write_disks_bandwidth": 500, "avg_latency": 300},
        pod_usage={"cpu": 2, "ram": 2000, "tx_bandwidth": 20, "rx_bandwidth": 20,
                   "read_disks_bandwidth": 100, "write_disks_bandwidth": 100},
        node_info={n: {"cpu": 4, "ram": 8000, "avg_latency": 10 + 10 * i} for i, n in enumerate(nodes)},
        num_nodes=4, namespace="default", deployment_name="mec-test-app", deployments=["mec-test-app"],
        max_pods=10000, group_id="test-group-1",
        env_config={"base_url": "http://localhost:8001", "stabilization_time": 10},
    )
    for env_id in ("lwmecps-v3", "lwmecps_gym/Scaling-v0"):
        env = gym.make(env_id, **kw)
        assert env.unwrapped.interval_s == 10.0 and env.action_space.nvec.tolist() == [5]
        env.reset(seed=0)
        obs, r, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs) and isinstance(r, float)


# ----------------------------------------------------------------------------- the seed hand-off
def test_env_hands_the_backend_one_drawn_seed():
    """env.reset(seed=s) == backend.reset(draw_seed(np_random(s))) (core.seeding's contract)."""
    sc = minikube_4()
    env = gym.make("lwmecps_gym/Scaling-v0", scenario=sc)
    env.reset(seed=21)
    rng, _ = np_random(21)
    b = SimBackend(sc, {"sla_ms": sc.sla_ms})
    b.reset(draw_seed(rng))
    m_env, m_b = env.unwrapped.last_measurement, b.observe()
    for f in dataclasses.fields(ClusterMeasurement):
        x, y = getattr(m_env, f.name), getattr(m_b, f.name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y)
        else:
            assert x == y, f.name


def test_backend_reset_has_one_signature_and_is_seeded():
    sc = minikube_4()
    a, b = SimBackend(sc), SimBackend(sc)
    a.reset(5)
    b.reset(seed=5)
    for _ in range(4):
        for be in (a, b):
            be.apply(ScaleCommand([2, 1, 0, 3]))
            be.advance(be.tau)
    assert a.observe().latency_ms.tolist() == b.observe().latency_ms.tolist()
    with pytest.raises(TypeError):
        a.reset(seed=1, rng_workload=None)  # the old stream-passing form is gone
    with pytest.raises(ValueError, match="seed"):
        a.reset(-1)


# ----------------------------------------------------------------------------- commands and time
def test_sim_commands_and_advance_errors():
    sc = minikube_4()
    scaling, placing = SimBackend(sc), SimBackend(sc, mode="placement")
    assert isinstance(scaling, ClusterBackend) and isinstance(placing, ClusterBackend)
    with pytest.raises(TypeError, match="ScaleCommand or PlaceCommand"):
        scaling.apply({"lwmecps-testapp-server-bs1": 2})
    with pytest.raises(RuntimeError, match="scaling"):
        placing.apply(ScaleCommand([1]))
    with pytest.raises(RuntimeError, match="placement"):
        scaling.apply(PlaceCommand(scaling.deployments[0], 1))
    with pytest.raises(ValueError, match="one per deployment"):
        scaling.apply(ScaleCommand([1, 1]))
    with pytest.raises(ValueError, match=">= 0"):
        scaling.apply(ScaleCommand([1, -1, 1, 1]))
    with pytest.raises(ValueError, match="node index"):
        placing.apply(PlaceCommand(placing.deployments[0], 4))
    with pytest.raises(ValueError, match="unknown deployment"):
        placing.apply(PlaceCommand("other", 1))
    with pytest.raises(ValueError, match="interval_s"):
        scaling.advance(7.0)
    t = scaling.observe().time_s
    scaling.advance(0)  # no time passes
    assert scaling.observe().time_s == t


def test_placement_moves_are_measured_migrations():
    env = gym.make("lwmecps_gym/PlacementNormalized-v0", scenario="minikube-4")
    _, info = env.reset(seed=0, options={"initial_node": 2})
    u = env.unwrapped
    assert info["node"] == 2 and info["metrics"]["migrations"] == 0.0
    assert u.last_measurement.pods_per_node[0, 2] == u.replicas
    steps = [(2, 0), (1, 1), (1, 0), (3, 1), (1, 1)]  # (action, expected moves started in the window)
    for action, moves in steps:
        *_, r, _, _, info = env.step(action)
        m = u.last_measurement
        assert m.migrations == moves and info["metrics"]["migrations"] == float(moves)
        expect = -(u.w_latency * m.mean_latency_ms / u.sla_ms + u.w_sla * m.sla_violation_rate
                   + u.w_migration * moves)
        assert r == expect


# ----------------------------------------------------------------------------- reward = f(measurement)
def _measurement(**over) -> ClusterMeasurement:
    base = dict(time_s=30.0, window_s=30.0, replicas_desired=np.array([2, 0, 4, 1]),
                replicas_ready=np.array([2, 0, 3, 1]), pods_per_node=np.diag([2, 0, 3, 1]),
                demand_rps=np.array([40.0, 10.0, 100.0, 0.0]), latency_ms=np.array([30.0, 1000.0, 80.0, 20.0]),
                mean_latency_ms=120.0, sla_violation_rate=0.25, failed_rps=10.0, time_of_day_s=3600.0)
    base.update(over)
    return ClusterMeasurement(**base)


def test_scaling_reward_is_a_pure_function_of_the_measurement():
    u = gym.make("lwmecps_gym/Scaling-v0", scenario="minikube-4").unwrapped
    m = _measurement()
    mu, n, mr = u.mu, u.n, u.max_replicas
    load = [40.0 / (2 * mu), 4.0, 100.0 / (3 * mu), 0.0]
    capped = np.minimum(load, 1.0)
    imbalance = float(np.sqrt(np.mean(capped ** 2) - np.mean(capped) ** 2))
    expect = -(120.0 / u.sla_ms + 0.1 * 7 / (n * mr) + 0.1 * imbalance + 0.25)
    r1 = u.reward(m)
    assert r1 == pytest.approx(expect, rel=1e-12) and isinstance(r1, float)
    u.reset(seed=0)  # env state changes; the reward of the same record does not
    assert u.reward(m) == r1
    assert u.info(m)["load"] == pytest.approx(load)
    # an unmeasurable SLA rate leaves the term out (no estimate) and the metric absent
    m2 = _measurement(sla_violation_rate=None)
    assert u.reward(m2) == pytest.approx(expect + 0.25, rel=1e-12)
    assert "sla_violation_rate" not in u.metrics(m2)
    obs = u.observation(m)
    assert u.observation_space.contains(obs)
    assert obs[3] == pytest.approx(0.0) and obs[4 * n + 1] == pytest.approx(4.0)  # no pod, demand: load 4


def test_placement_reward_uses_the_measured_migrations():
    u = gym.make("lwmecps_gym/Placement-v0", scenario="minikube-4").unwrapped
    m = ClusterMeasurement(time_s=30.0, window_s=30.0, replicas_desired=np.array([4]), replicas_ready=np.array([4]),
                           pods_per_node=np.array([[0, 4, 0, 0]]), demand_rps=np.array([50.0]),
                           latency_ms=np.array([45.0]), mean_latency_ms=45.0, sla_violation_rate=0.1, failed_rps=0.0,
                           time_of_day_s=0.0, rtt_to_nodes_ms=np.array([10.0, 20.0, 30.0, 40.0]), migrations=1)
    assert u.reward(m) == pytest.approx(-(45.0 / u.sla_ms + 0.1 + 0.1))
    assert u.reward(dataclasses.replace(m, migrations=0)) == pytest.approx(-(45.0 / u.sla_ms + 0.1))
    info = u.info(m)
    # measured latency on the serving node (1); the others: their RTT + the same queueing (45 - 20)
    assert info["node"] == 1 and info["node_latency_ms"] == [35.0, 45.0, 55.0, 65.0]


# ----------------------------------------------------------------------------- gym.make cost
def test_make_reuses_the_day_trace_of_an_equal_scenario():
    """Placement envs rebuild their (rescaled) scenario per make; the day trace is cached by value."""
    a = gym.make("lwmecps-v2").unwrapped
    b = gym.make("lwmecps-v2").unwrapped
    assert a.scenario is not b.scenario
    assert a.backend.workload.trace is b.backend.workload.trace
    c = gym.make("lwmecps-v2", scenario_options={"site_seed": 1}).unwrapped
    assert c.backend.workload.trace is not a.backend.workload.trace


def test_renderer_works_over_a_protocol_only_backend():
    """rendering reads the env's public API only: it works when the backend is not the simulator."""

    class ProtocolOnly:
        def __init__(self, inner):
            self.inner, self.node_names, self.deployments = inner, inner.node_names, inner.deployments

        def reset(self, seed=None):
            self.inner.reset(seed)

        def apply(self, command):
            self.inner.apply(command)

        def advance(self, seconds):
            self.inner.advance(seconds)

        def observe(self):
            return self.inner.observe()

        def close(self):
            pass

    sc = minikube_4()
    env = gym.make("lwmecps_gym/Scaling-v0", scenario=sc, render_mode="ansi", interval_s=30.0,
                   backend=ProtocolOnly(SimBackend(sc, {"sla_ms": sc.sla_ms})))
    env.reset(seed=0)
    env.step(np.array([1, 2, 3, 4]))
    text = env.render()
    assert "lwmecps-testapp-server-bs4" in text and "latency_ms" in text
