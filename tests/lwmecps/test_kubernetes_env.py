"""End to end: ``gymnasium.make("lwmecps-v3", backend="kubernetes", ...)`` with the seed README's
arguments, the real ``kubernetes`` client and ``requests``, against loopback stubs of the API server
and of the test app. Checks the scale requests the env's actions produce and that observations are
built from the measured (windowed) latency.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("kubernetes")
pytest.importorskip("requests")

import lwmecps_gym  # noqa: E402,F401  (registers the ids)
from tests.lwmecps.test_kubernetes_fakes import FakeCluster, FakeTestApp  # noqa: E402
from tests.support.http_stub import HttpStub  # noqa: E402

NODES = ["minikube", "minikube-m02", "minikube-m03", "minikube-m04"]
# the seed README's arguments (max_hardware / pod_usage / node_info as in the upstream examples)
SEED_ARGS = dict(
    node_name=NODES,
    max_hardware={"cpu": 8, "ram": 16000, "tx_bandwidth": 1000, "rx_bandwidth": 1000,
                  "read_disks_bandwidth": 500, "write_disks_bandwidth": 500, "avg_latency": 300},
    pod_usage={"cpu": 2, "ram": 2000, "tx_bandwidth": 20, "rx_bandwidth": 20,
               "read_disks_bandwidth": 100, "write_disks_bandwidth": 100},
    node_info={n: {"cpu": 4, "ram": 8000, "tx_bandwidth": 100, "rx_bandwidth": 100, "read_disks_bandwidth": 300,
                   "write_disks_bandwidth": 300, "avg_latency": 10 + 10 * i} for i, n in enumerate(NODES)},
    num_nodes=len(NODES),
    namespace="default",
    deployment_name="mec-test-app",
    deployments=["mec-test-app"],
    max_pods=10000,
    group_id="test-group-1",  # the stub accepts it; the real test app wants a 24-hex-digit ObjectId
)
# the env requires stabilization_time > 0; 0.05 s of real time keeps the test fast
STAB_S = 0.05


@pytest.fixture
def stub():
    with HttpStub() as s:
        yield s


def test_seed_readme_v3_on_kubernetes_scales_through_the_scale_subresource(stub, tmp_path):
    cluster = FakeCluster(stub, NODES, ["mec-test-app"], namespace="default")
    app = FakeTestApp(stub, "test-group-1", {"e1": "mec-test-app"}, users=30, interval=10.0)
    app.serve("e1", 500, 300.0)  # history the window must not see
    app.per_read = (3, 42.0)  # between any two reads, 3 requests at 42 ms
    env = gym.make("lwmecps-v3", backend="kubernetes", **SEED_ARGS, env_config={
        "base_url": stub.url, "stabilization_time": STAB_S, "kubeconfig": cluster.kubeconfig(str(tmp_path))})
    try:
        obs, info = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        assert info["metrics"]["latency_ms"] == pytest.approx(42.0)
        (start,) = stub.calls("POST", "/api/manage_group")
        assert start.query == {"group_id": ["test-group-1"], "state": ["start"]}
        actions = [3, 0, 2]
        for a in actions:
            obs, reward, terminated, truncated, info = env.step(np.array([a]))
            assert env.observation_space.contains(obs)
            assert isinstance(reward, float) and np.isfinite(reward)
            assert info["metrics"]["latency_ms"] == pytest.approx(42.0)  # windowed, not the 300 ms history
            assert info["metrics"]["replicas"] == a
            assert cluster.deps["mec-test-app"].replicas == a
        calls = stub.calls("PATCH", r"/apis/apps/v1/namespaces/default/deployments/mec-test-app/scale")
        assert [c.body for c in calls] == [{"spec": {"replicas": a}} for a in actions]
        assert {c.headers["content-type"] for c in calls} == {"application/strategic-merge-patch+json"}
        assert {c.headers["authorization"] for c in calls} == {"Bearer test-token"}
    finally:
        env.close()


def test_four_sites_one_deployment_per_node(stub, tmp_path):
    deps = [f"lwmecps-testapp-server-bs{i}" for i in range(1, 5)]
    cluster = FakeCluster(stub, NODES, deps, namespace="lwmecps-testapp")
    exps = {f"exp{i}": f"{d}.lwmecps-testapp.svc" for i, d in enumerate(deps)}
    app = FakeTestApp(stub, "65f1c0ffee0000000000abcd", exps, users=20, interval=10.0)
    app.per_read = (2, 25.0)
    args = dict(SEED_ARGS, namespace="lwmecps-testapp", deployments=deps, deployment_name=None,
                group_id="65f1c0ffee0000000000abcd", max_pods=50)
    env = gym.make("lwmecps-v3", backend="kubernetes", **args, env_config={
        "base_url": stub.url, "stabilization_time": STAB_S, "kubeconfig": cluster.kubeconfig(str(tmp_path))})
    try:
        env.reset(seed=1)
        action = np.array([4, 0, 1, 2])
        env.step(action)
        calls = stub.calls("PATCH", r"/apis/apps/v1/namespaces/lwmecps-testapp/deployments/[^/]+/scale")
        sent = {c.path.split("/")[-2]: c.body["spec"]["replicas"] for c in calls}
        assert sent == dict(zip(deps, action.tolist(), strict=True))
    finally:
        env.close()


def test_node_names_missing_from_the_cluster_fail_at_make(stub, tmp_path):
    cluster = FakeCluster(stub, ["minikube", "minikube-m02"], ["mec-test-app"], namespace="default")
    FakeTestApp(stub, "test-group-1", {"e1": "mec-test-app"})
    with pytest.raises(ValueError, match=r"do not exist in the cluster: \['minikube-m03', 'minikube-m04'\]"):
        gym.make("lwmecps-v3", backend="kubernetes", **SEED_ARGS, env_config={
            "base_url": stub.url, "stabilization_time": STAB_S, "kubeconfig": cluster.kubeconfig(str(tmp_path))})
    assert not stub.calls("PATCH")


def test_malformed_env_config_fails_at_make(stub, tmp_path):
    with pytest.raises(ValueError, match="unknown keys"):
        gym.make("lwmecps-v3", backend="kubernetes", **SEED_ARGS, env_config={
            "base_url": stub.url, "stabilization_time": 1, "rollout_timeout": 5})
    assert not stub.requests


# Gymnasium flags any id with a newer version as "out of date"; v0/v2 are distinct upstream envs, not old v3s
@pytest.mark.filterwarnings(r"ignore:.*The environment lwmecps-v[0-2] is out of date:DeprecationWarning")
@pytest.mark.parametrize("env_id", ["lwmecps-v0", "lwmecps-v2"])
def test_placement_moves_the_deployment_with_node_selector_patches(stub, tmp_path, env_id):
    hostnames = {"minikube-m03": "m03.edge.example"}  # a hostname label that differs from the node name
    cluster = FakeCluster(stub, NODES, ["mec-test-app"], namespace="default", hostname_labels=hostnames)
    app = FakeTestApp(stub, "test-group-1", {"e1": "mec-test-app"})
    app.per_read = (2, 33.0)
    env = gym.make(env_id, backend="kubernetes", **SEED_ARGS, env_config={
        "base_url": stub.url, "stabilization_time": STAB_S, "kubeconfig": cluster.kubeconfig(str(tmp_path))})
    try:
        obs, info = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        for a in (2, 2, 1):
            obs, reward, terminated, truncated, info = env.step(a)
            assert env.observation_space.contains(obs) and isinstance(reward, float)
            assert cluster.deps["mec-test-app"].node == NODES[a]
        patches = stub.calls("PATCH", r"/apis/apps/v1/namespaces/default/deployments/mec-test-app")
        # reset places on the initial node 0, then 2 (the repeated 2 sends nothing), then 1
        assert [p.body["spec"]["template"]["spec"]["nodeSelector"]["kubernetes.io/hostname"] for p in patches] == [
            "minikube", "m03.edge.example", "minikube-m02"]
        assert {p.headers["content-type"] for p in patches} == {"application/strategic-merge-patch+json"}
        assert not stub.calls("PATCH", r".*/scale")
    finally:
        env.close()
