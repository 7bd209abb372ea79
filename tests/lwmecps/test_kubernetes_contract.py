"""Contract tests: the REAL ``kubernetes`` client and ``requests`` driven against loopback stubs.

They check the exact requests the Kubernetes backend sends (method, path, content type, body, bearer
token, label selector), retries on transient statuses, permanent-error messages, the rollout wait and
its timeout, Running+Ready pod counting per node, and the test app's windowed latency.
"""

from __future__ import annotations

import socket

import numpy as np
import pytest

pytest.importorskip("kubernetes")
pytest.importorskip("requests")

from lwmecps_gym.backends.base import ClusterBackend, ClusterMeasurement  # noqa: E402
from lwmecps_gym.backends.kubernetes import (  # noqa: E402
    KubernetesBackend,
    KubernetesConfig,
    RolloutTimeoutError,
    UnknownNodeError,
)
from lwmecps_gym.backends.latency import RetryPolicy, TestAppLatencySource  # noqa: E402
from lwmecps_gym.core.backend import PermanentBackendError, TransientBackendError  # noqa: E402
from tests.lwmecps.test_kubernetes_fakes import NS, FakeCluster, FakeTestApp  # noqa: E402
from tests.support.http_stub import HttpStub, k8s_status  # noqa: E402

NODES = ["minikube", "minikube-m02", "minikube-m03", "minikube-m04"]
DEPS = ["bs1", "bs2", "bs3", "bs4"]
EXPS = {"e1": "bs1", "e2": "bs2.lwmecps-testapp.svc.cluster.local", "e3": "bs3", "e4": "bs4"}
GROUP = "65f1c0ffee0000000000abcd"
SCALE_RE = r"/apis/apps/v1/namespaces/lwmecps-testapp/deployments/(bs\d)/scale"


class FakeTime:
    """A clock that only moves when the backend sleeps (so rollout timeouts are deterministic)."""

    def __init__(self) -> None:
        self.t = 1000.0
        self.sleeps: list[float] = []
        self.on_sleep = None

    def clock(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s
        if self.on_sleep is not None:
            self.on_sleep(s)


@pytest.fixture
def stub():
    with HttpStub() as s:
        yield s


@pytest.fixture
def cluster(stub):
    return FakeCluster(stub, NODES, DEPS)


@pytest.fixture
def testapp(stub):
    return FakeTestApp(stub, GROUP, EXPS, users=20, interval=10.0)


def make_backend(stub, cluster, tmp_path, ft: FakeTime | None = None, **cfg) -> KubernetesBackend:
    """Backend built the way the env builds it, but with injectable time for determinism."""
    ft = ft or FakeTime()
    conf = {"base_url": stub.url, "stabilization_time": 5, "kubeconfig": cluster.kubeconfig(str(tmp_path)),
            "retry_initial_s": 0.0, "retry_max_s": 0.01, "poll_interval_s": 1.0, "rollout_timeout_s": 30.0}
    conf.update(cfg)
    config = KubernetesConfig.from_mapping(conf)
    from lwmecps_gym.backends.kubernetes import _make_api_client

    retry = RetryPolicy(config.retry_attempts, config.retry_initial_s, config.retry_max_s)
    source = TestAppLatencySource(stub.url, GROUP, DEPS, retry=retry, clock=ft.clock)
    return KubernetesBackend(NODES, DEPS, NS, source, config=config, api_client=_make_api_client(config),
                             sleep=ft.sleep, clock=ft.clock)


# ---------------------------------------------------------------------------------------------- config


def test_from_env_kwargs_uses_kubeconfig_token_and_reads_allocatable(stub, cluster, testapp, tmp_path):
    be = KubernetesBackend.from_env_kwargs(
        node_name=NODES, namespace=NS, deployments=DEPS, group_id=GROUP,
        env_config={"base_url": stub.url, "stabilization_time": 0, "kubeconfig": cluster.kubeconfig(str(tmp_path))},
        max_hardware={"cpu": 8}, pod_usage={"cpu": 2}, num_nodes=4, max_pods=50,
    )
    try:
        assert isinstance(be, ClusterBackend)
        k8s_reqs = [r for r in stub.requests if r.path.startswith(("/api/v1", "/apis/"))]
        assert k8s_reqs and all(r.headers.get("authorization") == "Bearer test-token" for r in k8s_reqs)
        assert [r.path for r in stub.calls("GET", r"/apis/apps/v1/.*")] == [
            f"/apis/apps/v1/namespaces/{NS}/deployments/{d}" for d in DEPS]
        # 8029212Ki = 8 221 913 088 bytes
        assert be.node_allocatable["minikube-m03"] == {"cpu_cores": 4.0, "memory_mb": pytest.approx(8221.913088),
                                                       "pods": 110.0}
    finally:
        be.close()


def test_unknown_node_names_raise_listing_the_real_ones(stub, cluster, tmp_path):
    with pytest.raises(UnknownNodeError) as err:
        KubernetesBackend.from_env_kwargs(
            node_name=["minikube", "node-x"], namespace=NS, deployments=DEPS, group_id=GROUP,
            env_config={"base_url": stub.url, "kubeconfig": cluster.kubeconfig(str(tmp_path))})
    assert isinstance(err.value, ValueError)
    assert "['node-x']" in str(err.value)
    for n in NODES:
        assert n in str(err.value)


def test_missing_deployment_is_a_permanent_error_naming_it_and_the_call(stub, cluster, tmp_path):
    with pytest.raises(PermanentBackendError) as err:
        KubernetesBackend.from_env_kwargs(
            node_name=NODES, namespace=NS, deployments=["bs1", "bs9"], group_id=GROUP,
            env_config={"base_url": stub.url, "kubeconfig": cluster.kubeconfig(str(tmp_path)),
                        "retry_initial_s": 0})
    msg = str(err.value)
    assert "read_namespaced_deployment" in msg and f"'{NS}/bs9'" in msg and "404" in msg
    assert len(stub.calls("GET", rf"/apis/apps/v1/namespaces/{NS}/deployments/bs9")) == 1  # not retried


def test_kubeconfig_from_the_environment_and_context(stub, cluster, testapp, tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", cluster.kubeconfig(str(tmp_path), token="env-token"))
    be = KubernetesBackend.from_env_kwargs(node_name=NODES, namespace=NS, deployments=DEPS, group_id=GROUP,
                                           env_config={"base_url": stub.url, "context": "stub"})
    be.close()
    assert {r.headers["authorization"] for r in stub.calls("GET", r"/api/v1/nodes")} == {"Bearer env-token"}
    with pytest.raises(PermanentBackendError, match="context 'nope'"):
        KubernetesBackend.from_env_kwargs(node_name=NODES, namespace=NS, deployments=DEPS, group_id=GROUP,
                                          env_config={"base_url": stub.url, "context": "nope"})


def test_missing_kubeconfig_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(PermanentBackendError, match="cannot configure the Kubernetes client"):
        KubernetesBackend.from_env_kwargs(
            node_name=NODES, namespace=NS, deployments=DEPS, group_id=GROUP,
            env_config={"base_url": "http://127.0.0.1:9", "kubeconfig": str(tmp_path / "absent")})


# ---------------------------------------------------------------------------------------------- actions


def test_scale_patches_the_scale_subresource_including_zero(stub, cluster, tmp_path):
    be = make_backend(stub, cluster, tmp_path)
    be.scale({"bs1": 3, "bs3": 0})
    calls = stub.calls("PATCH", SCALE_RE)
    assert [c.path.rsplit("/", 2)[1] for c in calls] == ["bs1", "bs3"]
    assert [c.body for c in calls] == [{"spec": {"replicas": 3}}, {"spec": {"replicas": 0}}]
    assert {c.headers["content-type"] for c in calls} == {"application/strategic-merge-patch+json"}
    assert all(c.headers["authorization"] == "Bearer test-token" for c in calls)
    assert cluster.deps["bs3"].replicas == 0
    assert not stub.calls("PATCH", rf"/apis/apps/v1/namespaces/{NS}/deployments/bs\d")  # no whole-object patch


@pytest.mark.parametrize("bad", [{"bs1": -1}, {"bs1": 1.5}, {"bs7": 1}])
def test_scale_rejects_bad_input_before_any_request(stub, cluster, tmp_path, bad):
    be = make_backend(stub, cluster, tmp_path)
    with pytest.raises((ValueError, TypeError)):
        be.scale(bad)
    assert not stub.calls("PATCH")


def test_place_patches_node_selector_with_the_hostname_label(stub, tmp_path):
    cluster = FakeCluster(stub, NODES, DEPS, hostname_labels={"minikube-m03": "m03.example"})
    be = make_backend(stub, cluster, tmp_path)
    be.place("bs2", "minikube-m03")
    (call,) = stub.calls("PATCH", rf"/apis/apps/v1/namespaces/{NS}/deployments/bs2")
    assert call.headers["content-type"] == "application/strategic-merge-patch+json"
    assert call.body == {"spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/hostname": "m03.example"}}}}}
    assert cluster.deps["bs2"].node == "minikube-m03"


def test_place_with_node_affinity_replaces_the_required_terms(stub, cluster, tmp_path):
    be = make_backend(stub, cluster, tmp_path, placement="node_affinity")
    be.place("bs1", "minikube-m04")
    (call,) = stub.calls("PATCH", rf"/apis/apps/v1/namespaces/{NS}/deployments/bs1")
    assert call.body == {"spec": {"template": {"spec": {"affinity": {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In",
                                   "values": ["minikube-m04"]}]}]}}}}}}}


def test_place_rejects_unknown_node(stub, cluster, tmp_path):
    be = make_backend(stub, cluster, tmp_path)
    with pytest.raises(ValueError, match="node must be one of"):
        be.place("bs1", "minikube-m09")


# ---------------------------------------------------------------------------------------------- retries


@pytest.mark.parametrize("status,reason", [(503, "ServiceUnavailable"), (409, "Conflict"), (429, "TooManyRequests")])
def test_transient_status_is_retried_then_succeeds(stub, cluster, tmp_path, status, reason):
    be = make_backend(stub, cluster, tmp_path)
    seen = {"n": 0}
    real = cluster._patch_scale

    def flaky(req):
        seen["n"] += 1
        return (status, k8s_status(status, reason)) if seen["n"] <= 2 else real(req)

    stub.route("PATCH", r"/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/]+)/scale", flaky)
    be.scale({"bs2": 4})
    calls = stub.calls("PATCH", SCALE_RE)
    assert len(calls) == 3 and all(c.body == {"spec": {"replicas": 4}} for c in calls)
    assert cluster.deps["bs2"].replicas == 4


def test_transient_errors_give_up_after_the_configured_attempts(stub, cluster, tmp_path):
    be = make_backend(stub, cluster, tmp_path, retry_attempts=3)
    stub.route("PATCH", SCALE_RE, lambda r: (503, k8s_status(503, "ServiceUnavailable", "etcd is down")))
    with pytest.raises(TransientBackendError) as err:
        be.scale({"bs1": 2})
    assert len(stub.calls("PATCH", SCALE_RE)) == 3
    assert "patch_namespaced_deployment_scale" in str(err.value) and f"'{NS}/bs1'" in str(err.value)
    assert "etcd is down" in str(err.value)


def test_forbidden_is_permanent_and_not_retried(stub, cluster, tmp_path):
    be = make_backend(stub, cluster, tmp_path)
    stub.route("PATCH", SCALE_RE, lambda r: (403, k8s_status(
        403, "Forbidden", 'deployments.apps "bs1" is forbidden: cannot patch resource "deployments/scale"')))
    with pytest.raises(PermanentBackendError) as err:
        be.scale({"bs1": 2})
    assert len(stub.calls("PATCH", SCALE_RE)) == 1
    assert "403" in str(err.value) and "deployments/scale" in str(err.value) and f"'{NS}/bs1'" in str(err.value)


def test_unreachable_api_server_is_transient_after_retries(tmp_path, monkeypatch):
    # a bound socket that never listens: connections are refused, and no other process can take the port
    closed = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    closed.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    cluster_cfg = tmp_path / "kubeconfig"
    cluster_cfg.write_text(
        '{"apiVersion": "v1", "kind": "Config", "current-context": "c",'
        f' "clusters": [{{"name": "c", "cluster": {{"server": "{url}"}}}}],'
        ' "users": [{"name": "u", "user": {"token": "t"}}],'
        ' "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}'
    )
    try:
        with pytest.raises(TransientBackendError, match="list_node.*(Connection|refused|Max retries)"):
            KubernetesBackend.from_env_kwargs(
                node_name=NODES, namespace=NS, deployments=DEPS, group_id=GROUP,
                env_config={"base_url": "http://127.0.0.1:9", "kubeconfig": str(cluster_cfg), "retry_attempts": 2,
                            "retry_initial_s": 0, "retry_max_s": 0.01, "request_timeout_s": 2})
    finally:
        closed.close()


# ---------------------------------------------------------------------------------------------- rollout


def test_advance_waits_for_rollout_then_stabilization(stub, tmp_path, testapp):
    cluster = FakeCluster(stub, NODES, DEPS, lag_reads=3)
    ft = FakeTime()
    be = make_backend(stub, cluster, tmp_path, ft=ft)
    for e in EXPS:
        testapp.serve(e, 5, 40.0)
    be.reset(seed=0)
    be.scale({"bs1": 2})
    n_reads = len(stub.calls("GET", rf"/apis/apps/v1/namespaces/{NS}/deployments/bs1"))
    ft.on_sleep = lambda s: [testapp.serve(e, 10, 30.0) for e in EXPS] if s == 5 else None
    be.advance(5)
    reads = stub.calls("GET", rf"/apis/apps/v1/namespaces/{NS}/deployments/bs1")[n_reads:]
    # status lags 3 reads behind spec: 3 polls that see it unfinished, a 4th that sees it done
    assert len(reads) == 4
    # reset's first window, then poll, poll, poll, then the stabilization time
    assert ft.sleeps == [5.0, 1.0, 1.0, 1.0, 5]
    assert not stub.calls("GET", rf"/apis/apps/v1/namespaces/{NS}/deployments/bs2")[len(DEPS):]  # untouched
    m = be.observe()
    assert m.replicas_desired.tolist() == [2, 1, 1, 1] and m.replicas_ready.tolist() == [2, 1, 1, 1]
    assert m.window_s == pytest.approx(8.0)  # from the start of advance: 3 s of rollout + 5 s


def test_rollout_timeout_names_the_deployment_and_its_status(stub, tmp_path, testapp):
    cluster = FakeCluster(stub, NODES, DEPS, lag_reads=10_000)
    ft = FakeTime()
    be = make_backend(stub, cluster, tmp_path, ft=ft, rollout_timeout_s=4.5)
    be.place("bs3", "minikube-m02")
    with pytest.raises(RolloutTimeoutError) as err:
        be.advance(10)
    msg = str(err.value)
    assert f"'{NS}/bs3'" in msg and "observedGeneration 1" in msg and "generation 2" in msg
    assert sum(ft.sleeps) == pytest.approx(4.5) and 10 not in ft.sleeps  # never reached stabilization


# ---------------------------------------------------------------------------------------------- observe


def test_pods_are_counted_per_deployment_and_node_running_ready_only(stub, cluster, tmp_path, testapp):
    # each deployment: one pod on every node -> per-node counts 1,1,1,1 (upstream reported 1,2,3,4)
    for dep in ("bs1", "bs2"):  # the fake puts a deployment's own replica on NODES[0]
        for j, node in enumerate(NODES[1:], start=1):
            cluster.extra_pods.append(cluster.pod_json(dep, j, node))
    # pods that must not count
    cluster.extra_pods += [
        cluster.pod_json("bs3", 7, "minikube-m02", phase="Pending", ready=False),
        cluster.pod_json("bs3", 8, "minikube-m02", ready=False),
        cluster.pod_json("bs3", 9, "minikube-m03", deleting=True),
        cluster.pod_json("bs3", 10, "minikube-m03", owner="other-rs-abc"),
        cluster.pod_json("bs4", 11, "worker-elsewhere"),
    ]
    ft = FakeTime()
    be = make_backend(stub, cluster, tmp_path, ft=ft)
    for e in EXPS:
        testapp.serve(e, 3, 10.0)
    be.reset()
    ft.on_sleep = lambda s: [testapp.serve(e, 4, 25.0) for e in EXPS]
    be.advance(5)
    m = be.observe()
    assert isinstance(m, ClusterMeasurement)
    assert m.pods_per_node.dtype == np.int64 and m.pods_per_node.shape == (4, 4)
    assert m.pods_per_node.tolist() == [[1, 1, 1, 1], [1, 1, 1, 1], [1, 0, 0, 0], [1, 0, 0, 0]]
    sels = {r.query["labelSelector"][0] for r in stub.calls("GET", rf"/api/v1/namespaces/{NS}/pods")}
    assert sels == {f"app={d}" for d in DEPS}


def test_observe_reports_windowed_not_cumulative_latency(stub, cluster, tmp_path, testapp):
    ft = FakeTime()
    be = make_backend(stub, cluster, tmp_path, ft=ft)
    # a long history at 50 ms, then a window at 200/100/50/20 ms
    for e in EXPS:
        testapp.serve(e, 1000, 50.0)
    be.reset()
    (start,) = stub.calls("POST", "/api/manage_group")
    assert start.query == {"group_id": [GROUP], "state": ["start"]}
    window = {"e1": (10, 200.0), "e2": (20, 100.0), "e3": (5, 50.0), "e4": (2, 20.0)}
    ft.on_sleep = lambda s: [testapp.serve(e, n, lat) for e, (n, lat) in window.items()]
    be.advance(10)
    m = be.observe()
    assert m.window_s == pytest.approx(10.0)
    assert m.latency_ms == pytest.approx([200.0, 100.0, 50.0, 20.0])  # the history's 50 ms does not leak in
    assert m.mean_latency_ms == pytest.approx((10 * 200 + 20 * 100 + 5 * 50 + 2 * 20) / 37)
    assert m.demand_rps == pytest.approx([2.0] * 4)  # 20 users every 10 s
    # offered 2 req/s per site, served 1.0, 2.0, 0.5, 0.2 req/s
    assert m.failed_rps == pytest.approx(1.0 + 0.0 + 1.5 + 1.8)
    assert m.sla_violation_rate is None
    assert m.time_s == pytest.approx(15.0)  # reset's 5 s window + this 10 s one
    assert not be.latency_stale.any()
    # next window: no request reached bs4 -> its last windowed latency is carried forward and flagged
    window = {"e1": (10, 30.0), "e2": (10, 30.0), "e3": (10, 30.0), "e4": (0, 0.0)}
    be.advance(10)
    m2 = be.observe()
    assert m2.latency_ms == pytest.approx([30.0, 30.0, 30.0, 20.0])
    assert be.latency_stale.tolist() == [False, False, False, True]
    assert m2.mean_latency_ms == pytest.approx(30.0)


def test_site_without_any_request_in_the_episode_raises(stub, cluster, tmp_path, testapp):
    ft = FakeTime()
    be = make_backend(stub, cluster, tmp_path, ft=ft)
    for e in EXPS:
        testapp.serve(e, 10, 50.0)
    be.reset()
    ft.on_sleep = lambda s: [testapp.serve(e, 3, 40.0) for e in ("e1", "e2", "e3")]
    be.advance(10)
    with pytest.raises(PermanentBackendError, match=r"no request reached deployments \['bs4'\]"):
        be.observe()


def test_first_observation_after_reset_covers_one_window(stub, cluster, tmp_path, testapp):
    ft = FakeTime()
    be = make_backend(stub, cluster, tmp_path, ft=ft)
    ft.on_sleep = lambda s: [testapp.serve(e, 4, 12.0) for e in EXPS]
    be.reset()
    m = be.observe()
    assert ft.sleeps == [5.0] and m.window_s == pytest.approx(5.0)
    assert m.latency_ms == pytest.approx([12.0] * 4) and m.replicas_desired.tolist() == [1, 1, 1, 1]


def test_empty_window_raises_instead_of_reporting_zero_latency(stub, cluster, tmp_path, testapp):
    be = make_backend(stub, cluster, tmp_path)
    for e in EXPS:
        testapp.serve(e, 10, 50.0)
    be.reset()
    be.advance(1)
    with pytest.raises(PermanentBackendError, match="no request was recorded"):
        be.observe()


def test_completed_group_is_reported(stub, cluster, tmp_path, testapp):
    testapp.state = "completed"
    be = make_backend(stub, cluster, tmp_path)
    with pytest.raises(PermanentBackendError, match="completed"):
        be.reset()


def test_invalid_group_id_is_a_permanent_error(stub, cluster, tmp_path, testapp):
    source = TestAppLatencySource(stub.url, "test-group-1", DEPS, retry=RetryPolicy(2, 0, 0))
    with pytest.raises(PermanentBackendError, match="HTTP 404.*Group not found"):
        source.start()
    assert len(stub.calls("POST", "/api/manage_group")) == 1


def test_prometheus_latency_source_through_the_backend(stub, cluster, tmp_path):
    """latency_source="prometheus": the real prometheus-api-client sends the documented PromQL."""
    pytest.importorskip("prometheus_api_client")
    answers = {"count": 50.0, "sum": 2.5, "failed": None}  # 50 requests, 2.5 s in total -> 50 ms

    def query(req):
        q = req.query["query"][0]
        kind = "failed" if 'status=~"5.."' in q else "sum" if "_sum{" in q else "count"
        value = answers[kind]
        result = [] if value is None else [{"metric": {}, "value": [1.7e9, str(value)]}]
        return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}

    stub.route("GET", r"/api/v1/query", query)
    be = KubernetesBackend.from_env_kwargs(
        node_name=NODES, namespace=NS, deployments=DEPS, env_config={
            "prometheus_url": stub.url, "kubeconfig": cluster.kubeconfig(str(tmp_path)),
            "stabilization_time": 0, "prometheus_min_window_s": 20, "prometheus_metric": "testapp_latency_seconds"})
    try:
        be.reset()
        m = be.observe()
    finally:
        be.close()
    assert m.latency_ms == pytest.approx([50.0] * 4) and m.window_s == 20.0
    assert m.demand_rps == pytest.approx([2.5] * 4) and m.failed_rps == 0.0 and m.sla_violation_rate is None
    sent = {r.query["query"][0] for r in stub.calls("GET", r"/api/v1/query")}
    sel = f'namespace="{NS}",pod=~"bs2-[a-z0-9]{{1,10}}-[a-z0-9]{{5}}"'
    assert f"sum(increase(testapp_latency_seconds_count{{{sel}}}[20s]))" in sent
    assert f"sum(increase(testapp_latency_seconds_sum{{{sel}}}[20s]))" in sent
    assert f'sum(increase(testapp_latency_seconds_count{{{sel},status=~"5.."}}[20s]))' in sent
    assert len(sent) == 3 * len(DEPS)
