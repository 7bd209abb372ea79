"""The v3 env over an arbitrary ClusterBackend (not the simulator): it must use only the protocol
and report what the backend measured, e.g. pods_per_node in the dict observation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import lwmecps_gym  # noqa: F401
from lwmecps_gym.backends.base import ClusterBackend, ClusterMeasurement, ScaleCommand

NODES = ["minikube", "minikube-m02"]
DEPS = ["app-bs1", "app-bs2"]


class RecordingBackend:
    """A protocol-only backend: deployment 0's pods sit on BOTH nodes (not pinned to node 0)."""

    def __init__(self):
        self.node_names, self.deployments = NODES, DEPS
        self.scaled: list[dict] = []
        self.replicas = [1, 1]
        self.t = 0.0

    def reset(self, seed=None):
        self.t = 0.0

    def apply(self, command):
        assert isinstance(command, ScaleCommand), "v3 never places"
        self.scaled.append(dict(zip(DEPS, command.replicas, strict=True)))
        self.replicas = [int(r) for r in command.replicas]

    def advance(self, seconds):
        self.t += seconds

    def observe(self):
        r = np.array(self.replicas, dtype=np.int64)
        per_node = np.array([[r[0] - r[0] // 2, r[0] // 2], [0, r[1]]], dtype=np.int64)
        return ClusterMeasurement(
            time_s=self.t, window_s=10.0, replicas_desired=r, replicas_ready=r, pods_per_node=per_node,
            demand_rps=np.array([20.0, 5.0]), latency_ms=np.array([40.0, 25.0]), mean_latency_ms=37.0,
            sla_violation_rate=None, failed_rps=0.0)

    def close(self):
        pass


def test_dict_observation_reports_measured_pods_per_node_and_no_sla_estimate():
    backend = RecordingBackend()
    assert isinstance(backend, ClusterBackend)
    env = gym.make("lwmecps-v3", node_name=NODES, deployments=DEPS, backend=backend, obs_mode="dict",
                   env_config={"stabilization_time": 10})
    env.reset(seed=0)
    obs, reward, term, trunc, info = env.step(np.array([4, 2]))
    assert backend.scaled[-1] == {"app-bs1": 4, "app-bs2": 2}
    nodes = obs["nodes"]
    # deployment 0 has 2 pods on each node; deployment 1 has 2 pods on the second node only
    assert float(nodes["minikube"]["deployments"]["app-bs1"]["Replicas"]) == 2.0
    assert float(nodes["minikube-m02"]["deployments"]["app-bs1"]["Replicas"]) == 2.0
    assert float(nodes["minikube"]["deployments"]["app-bs2"]["Replicas"]) == 0.0
    assert float(nodes["minikube-m02"]["deployments"]["app-bs2"]["Replicas"]) == 2.0
    # the latency source could not tell SLA violations: no made-up value in the metrics
    assert "sla_violation_rate" not in info["metrics"]
    assert info["metrics"]["latency_ms"] == 37.0 and isinstance(reward, float)
