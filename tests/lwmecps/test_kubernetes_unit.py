"""Unit tests of the Kubernetes backend's logic with autospec'd API objects (no network).

``create_autospec(..., instance=True)`` enforces the real client signatures, so a wrong call (missing
namespace, misspelled keyword) fails here as it would against a cluster.
"""

from __future__ import annotations

from unittest.mock import call, create_autospec

import numpy as np
import pytest

k8s = pytest.importorskip("kubernetes")
from kubernetes import client  # noqa: E402

from lwmecps_gym.backends.kubernetes import (  # noqa: E402
    KubernetesBackend,
    KubernetesConfig,
    RolloutTimeoutError,
    label_selector_string,
)
from lwmecps_gym.backends.latency import LatencySource, LatencyWindow  # noqa: E402
from lwmecps_gym.core.backend import PermanentBackendError, TransientBackendError  # noqa: E402

NS = "edge"
NODES = ["n1", "n2"]
DEPS = ["web-a", "web-b"]


def node(name: str) -> client.V1Node:
    return client.V1Node(metadata=client.V1ObjectMeta(name=name, labels={"kubernetes.io/hostname": name}),
                         status=client.V1NodeStatus(allocatable={"cpu": "3500m", "memory": "4Gi", "pods": "110"}))


def deployment(name: str, replicas: int | None = 1, *, gen: int = 1, obs: int | None = 1, upd: int | None = 1,
               tot: int | None = 1, ready: int | None = 1, conditions=None) -> client.V1Deployment:
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name=name, generation=gen),
        spec=client.V1DeploymentSpec(
            replicas=replicas, selector=client.V1LabelSelector(match_labels={"app": name}),
            template=client.V1PodTemplateSpec(spec=client.V1PodSpec(containers=[client.V1Container(name="c")]))),
        status=client.V1DeploymentStatus(observed_generation=obs, updated_replicas=upd, replicas=tot,
                                         ready_replicas=ready, conditions=conditions),
    )


def pod(dep: str, node_name: str, *, phase="Running", ready=True, owner_kind="ReplicaSet") -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=f"{dep}-abc12-xyz99", owner_references=[
            client.V1OwnerReference(api_version="apps/v1", kind=owner_kind, name=f"{dep}-abc12", uid="u")]),
        spec=client.V1PodSpec(node_name=node_name, containers=[client.V1Container(name="c")]),
        status=client.V1PodStatus(phase=phase, conditions=[
            client.V1PodCondition(type="Ready", status="True" if ready else "False")]),
    )


class Clock:
    def __init__(self):
        self.t = 0.0
        self.sleeps = []

    def __call__(self):
        return self.t

    def sleep(self, s):
        self.sleeps.append(s)
        self.t += s


@pytest.fixture(scope="module")
def _autospecs():
    # autospeccing these two large classes takes ~1 s; build once, reset per test
    return create_autospec(client.AppsV1Api, instance=True), create_autospec(client.CoreV1Api, instance=True)


@pytest.fixture
def apis(_autospecs):
    apps, core = _autospecs
    for m in (apps, core):
        m.reset_mock(return_value=True, side_effect=True)
    core.list_node.return_value = client.V1NodeList(items=[node(n) for n in NODES + ["n3"]])
    apps.read_namespaced_deployment.side_effect = lambda name, namespace, **kw: deployment(name)
    core.list_namespaced_pod.return_value = client.V1PodList(items=[])
    return apps, core


@pytest.fixture
def latency():
    src = create_autospec(LatencySource, instance=True)
    src.deployments = DEPS
    src.read.return_value = LatencyWindow(10.0, np.array([5.0, 15.0]), np.array([0.5, 1.5]),
                                          np.array([40.0, 80.0]), 70.0, 0.0, None)
    return src


def backend(apis, latency, clock=None, **cfg) -> KubernetesBackend:
    apps, core = apis
    clock = clock or Clock()
    conf = KubernetesConfig.from_mapping({"retry_initial_s": 0, "retry_max_s": 0.001, **cfg})
    return KubernetesBackend(NODES, DEPS, NS, latency, config=conf, apps_api=apps, core_api=core,
                             sleep=clock.sleep, clock=clock)


def test_construction_reads_nodes_and_parses_allocatable(apis, latency):
    be = backend(apis, latency)
    assert be.node_allocatable["n1"] == {"cpu_cores": 3.5, "memory_mb": pytest.approx(4 * 2**30 / 1e6), "pods": 110.0}
    apis[1].list_node.assert_called_once_with(_request_timeout=30.0)


def test_scale_calls_the_scale_subresource(apis, latency):
    be = backend(apis, latency)
    be.scale({"web-a": 0, "web-b": 3})
    assert apis[0].patch_namespaced_deployment_scale.call_args_list == [
        call("web-a", NS, {"spec": {"replicas": 0}}, _request_timeout=30.0),
        call("web-b", NS, {"spec": {"replicas": 3}}, _request_timeout=30.0),
    ]
    apis[0].patch_namespaced_deployment.assert_not_called()


def test_scale_accepts_numpy_integers(apis, latency):
    be = backend(apis, latency)
    be.scale({"web-a": np.int64(2)})
    apis[0].patch_namespaced_deployment_scale.assert_called_once_with(
        "web-a", NS, {"spec": {"replicas": 2}}, _request_timeout=30.0)


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504])
def test_transient_statuses_are_retried(apis, latency, status):
    be = backend(apis, latency)
    apis[0].patch_namespaced_deployment_scale.side_effect = [client.ApiException(status=status, reason="x"), None]
    be.scale({"web-a": 1})
    assert apis[0].patch_namespaced_deployment_scale.call_count == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_permanent_statuses_raise_at_once_naming_call_and_deployment(apis, latency, status):
    be = backend(apis, latency)
    apis[0].patch_namespaced_deployment.side_effect = client.ApiException(status=status, reason="Nope")
    with pytest.raises(PermanentBackendError, match=rf"patch_namespaced_deployment for deployment 'edge/web-b' failed: HTTP {status}"):
        be.place("web-b", "n2")
    assert apis[0].patch_namespaced_deployment.call_count == 1


def test_connection_errors_are_transient(apis, latency):
    import urllib3

    be = backend(apis, latency, retry_attempts=2)
    apis[0].patch_namespaced_deployment_scale.side_effect = urllib3.exceptions.MaxRetryError(None, "/x", "refused")
    with pytest.raises(TransientBackendError, match="MaxRetryError"):
        be.scale({"web-a": 1})
    assert apis[0].patch_namespaced_deployment_scale.call_count == 2


@pytest.mark.parametrize(
    "dep,done",
    [
        (deployment("d", 2, gen=3, obs=3, upd=2, tot=2, ready=2), True),
        (deployment("d", 2, gen=3, obs=2, upd=2, tot=2, ready=2), False),  # controller has not seen the change
        (deployment("d", 2, gen=3, obs=3, upd=1, tot=2, ready=2), False),  # old ReplicaSet still serving
        (deployment("d", 2, gen=3, obs=3, upd=2, tot=3, ready=2), False),  # old pod not yet gone
        (deployment("d", 2, gen=3, obs=3, upd=2, tot=2, ready=1), False),  # a pod not ready
        (deployment("d", 0, gen=4, obs=4, upd=None, tot=None, ready=None), True),  # scaled to zero
        (deployment("d", 0, gen=4, obs=4, upd=None, tot=1, ready=None), False),  # last pod terminating
        (deployment("d", None, gen=1, obs=1, upd=1, tot=1, ready=1), True),  # spec.replicas defaults to 1
    ],
)
def test_rollout_done(apis, latency, dep, done):
    assert backend(apis, latency).rollout_done(dep)[0] is done


def test_progress_deadline_exceeded_raises(apis, latency):
    cond = client.V1DeploymentCondition(type="Progressing", status="False", reason="ProgressDeadlineExceeded",
                                        message='ReplicaSet "d-1" has timed out progressing.')
    with pytest.raises(PermanentBackendError, match="ProgressDeadlineExceeded.*timed out"):
        backend(apis, latency).rollout_done(deployment("d", 1, gen=2, obs=2, upd=0, conditions=[cond]))


def test_rollout_wait_polls_until_done_and_times_out(apis, latency):
    clock = Clock()
    be = backend(apis, latency, clock, rollout_timeout_s=5, poll_interval_s=2)
    pending = deployment("web-a", 2, gen=2, obs=1, upd=0, tot=1, ready=1)
    done = deployment("web-a", 2, gen=2, obs=2, upd=2, tot=2, ready=2)
    apis[0].read_namespaced_deployment.side_effect = [pending, pending, done]
    be.scale({"web-a": 2})
    be.advance(7)
    assert clock.sleeps == [2, 2, 7]
    latency.mark.assert_called_once_with()
    apis[0].read_namespaced_deployment.side_effect = lambda name, namespace, **kw: pending
    be.scale({"web-a": 2})
    with pytest.raises(RolloutTimeoutError, match="edge/web-a.*observedGeneration 1"):
        be.advance(7)
    assert clock.sleeps[3:] == [2, 2, 1]  # capped by the 5 s timeout, no stabilization sleep


def test_advance_zero_waits_for_rollouts_but_keeps_the_window(apis, latency):
    clock = Clock()
    be = backend(apis, latency, clock, poll_interval_s=2)
    apis[0].read_namespaced_deployment.side_effect = [deployment("web-a", 1, gen=2, obs=1),
                                                      deployment("web-a", 1, gen=2, obs=2)]
    be.place("web-a", "n2")
    be.advance(0)
    assert clock.sleeps == [2]  # one poll, no stabilization sleep
    latency.mark.assert_not_called()


def test_measure_from_rollout_ready_opens_the_window_after_the_rollout(apis, latency):
    clock = Clock()
    be = backend(apis, latency, clock, measure_from="rollout_ready", poll_interval_s=3)
    marks = []
    latency.mark.side_effect = lambda: marks.append(clock.t)
    apis[0].read_namespaced_deployment.side_effect = [deployment("web-a", 2, gen=2, obs=1),
                                                      deployment("web-a", 2, gen=2, obs=2, upd=2, tot=2, ready=2)]
    be.scale({"web-a": 2})
    be.advance(4)
    assert marks == [3.0]


def test_observe_counts_running_ready_pods_per_node(apis, latency):
    apps, core = apis
    be = backend(apis, latency)
    pods = {
        "app=web-a": [pod("web-a", "n1"), pod("web-a", "n2"), pod("web-a", "n2"),
                      pod("web-a", "n1", phase="Pending", ready=False), pod("web-a", "n2", ready=False),
                      pod("web-a", "n3")],  # n3 is not one of the env's nodes
        "app=web-b": [pod("web-b", "n2"), pod("web-b", "n1", owner_kind="Job"),
                      pod("web-b-canary", "n1")],  # same labels, another Deployment's ReplicaSet
    }
    core.list_namespaced_pod.side_effect = lambda ns, label_selector, **kw: client.V1PodList(items=pods[label_selector])
    apps.read_namespaced_deployment.side_effect = lambda name, namespace, **kw: deployment(
        name, 3 if name == "web-a" else 1, ready=3 if name == "web-a" else None)
    m = be.observe()
    assert m.pods_per_node.tolist() == [[1, 2], [0, 1]]
    assert m.replicas_desired.tolist() == [3, 1] and m.replicas_ready.tolist() == [3, 0]
    assert m.latency_ms.tolist() == [40.0, 80.0] and m.mean_latency_ms == 70.0 and m.window_s == 10.0
    core.list_namespaced_pod.assert_any_call(NS, label_selector="app=web-a", _request_timeout=30.0)


def test_observe_propagates_latency_source_errors(apis, latency):
    latency.read.side_effect = PermanentBackendError("no series")
    with pytest.raises(PermanentBackendError, match="no series"):
        backend(apis, latency).observe()


def test_reset_applies_reset_replicas_and_starts_the_workload(apis, latency):
    be = backend(apis, latency, reset_replicas={"web-a": 1, "web-b": 0})
    be.reset(seed=3)
    assert apis[0].patch_namespaced_deployment_scale.call_count == 2
    latency.start.assert_called_once_with()
    latency.mark.assert_called_once_with()
    assert be.last_seed == 3


def test_reset_replicas_must_name_known_deployments(apis, latency):
    with pytest.raises(ValueError, match="reset_replicas.*must be one of"):
        backend(apis, latency, reset_replicas={"web-z": 1})
    apis[0].patch_namespaced_deployment_scale.assert_not_called()


def test_label_selector_string():
    sel = client.V1LabelSelector(match_labels={"app": "web", "tier": "edge"}, match_expressions=[
        client.V1LabelSelectorRequirement(key="zone", operator="In", values=["b", "a"]),
        client.V1LabelSelectorRequirement(key="canary", operator="DoesNotExist"),
        client.V1LabelSelectorRequirement(key="site", operator="Exists"),
        client.V1LabelSelectorRequirement(key="env", operator="NotIn", values=["dev"]),
    ])
    assert label_selector_string(sel) == "app=web,tier=edge,zone in (a,b),!canary,site,env notin (dev)"
    assert label_selector_string({"matchLabels": {"app": "x"}}) == "app=x"
    with pytest.raises(PermanentBackendError, match="empty label selector"):
        label_selector_string(client.V1LabelSelector())


# ------------------------------------------------------------------------------------------ env_config


def test_config_defaults_and_values():
    cfg = KubernetesConfig.from_mapping({"base_url": "http://localhost:8001", "stabilization_time": 10})
    assert cfg.stabilization_time == 10.0 and cfg.placement == "node_selector" and cfg.latency_source is None
    assert KubernetesConfig.from_mapping(None) == KubernetesConfig()


@pytest.mark.parametrize(
    "env_config,exc,match",
    [
        ({"base_url": "http://x", "stabilisation_time": 3}, ValueError, "unknown keys \\['stabilisation_time'\\]"),
        ({"stabilization_time": -1}, ValueError, "stabilization_time"),
        ({"stabilization_time": "10s"}, TypeError, "stabilization_time"),
        ({"base_url": "localhost:8001"}, ValueError, "base_url.*http://"),
        ({"latency_source": "statsd"}, ValueError, "latency_source'\\] must be one of"),
        ({"placement": "anywhere"}, ValueError, "placement'\\] must be one of"),
        ({"rollout_timeout_s": 0}, ValueError, "rollout_timeout_s"),
        ({"retry_attempts": 0}, ValueError, "retry_attempts"),
        ({"experiments": ["e1"]}, TypeError, "experiments"),
        ({"reset_replicas": -2}, ValueError, "reset_replicas"),
        ("base_url=http://x", TypeError, "env_config must be a mapping"),
    ],
)
def test_config_rejects_bad_values(env_config, exc, match):
    with pytest.raises(exc, match=match):
        KubernetesConfig.from_mapping(env_config)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"env_config": {"stabilization_time": 1}}, "needs a latency source"),
        ({"env_config": {"base_url": "http://127.0.0.1:9"}, "group_id": None}, "group_id"),
        ({"env_config": {"latency_source": "prometheus", "base_url": "http://127.0.0.1:9"}}, "prometheus_url"),
        ({"env_config": {"base_url": "http://127.0.0.1:9"}, "deployments": []}, "deployments"),
    ],
)
def test_from_env_kwargs_validates_before_touching_the_cluster(kwargs, match, monkeypatch):
    import lwmecps_gym.backends.kubernetes as kb

    def boom(cfg):  # the cluster must not be contacted for a config error
        raise AssertionError("API client built")

    monkeypatch.setattr(kb, "_make_api_client", boom)
    args = {"node_name": NODES, "namespace": NS, "deployments": DEPS, "group_id": "g1", **kwargs}
    with pytest.raises(ValueError, match=match):
        KubernetesBackend.from_env_kwargs(**args)


def test_node_name_string_is_rejected():
    with pytest.raises(TypeError, match="list of node names"):
        KubernetesBackend.from_env_kwargs(node_name="n1", namespace=NS, deployments=DEPS, group_id="g",
                                          env_config={"base_url": "http://127.0.0.1:9"})


def test_kubernetes_is_not_imported_by_the_default_path():
    import subprocess
    import sys

    code = ("import sys, lwmecps_gym, lwmecps_gym.backends, lwmecps_gym.backends.latency; "
            "bad = [m for m in ('kubernetes', 'prometheus_api_client') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_in_cluster_config_is_preferred_inside_a_pod(tmp_path, monkeypatch):
    import kubernetes.config.incluster_config as incluster

    from lwmecps_gym.backends.kubernetes import _make_api_client

    token, ca = tmp_path / "token", tmp_path / "ca.crt"
    token.write_text("pod-sa-token")
    ca.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    monkeypatch.setattr(incluster, "SERVICE_TOKEN_FILENAME", str(token))
    monkeypatch.setattr(incluster, "SERVICE_CERT_FILENAME", str(ca))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "not-read"))
    api = _make_api_client(KubernetesConfig())
    assert api.configuration.host == "https://10.96.0.1:443"
    assert api.configuration.auth_settings()["BearerToken"]["value"].lower() == "bearer pod-sa-token"
    api.close()
