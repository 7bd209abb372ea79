"""Hardening of the lwmecps Kubernetes backend, against the REAL ``kubernetes`` client and loopback stubs.

* retries are exactly as configured: no hidden urllib3 retries, so a hung API server sees
  ``retry_attempts`` GETs and the call ends after about ``retry_attempts x request_timeout_s``;
* permanent statuses (400/401/403/404/422) fail at once, naming the call and the resource;
* a kubeconfig that is not YAML, and a group_id that is not an ObjectId, are clear permanent errors;
* a rescale by another controller is visible in the measurement (spec and ready replicas are read);
* credentials never reach messages; PromQL label values are escaped.
"""

from __future__ import annotations

import os
import threading
import time
import warnings

import pytest

pytest.importorskip("kubernetes")
pytest.importorskip("requests")

from lwmecps_gym.backends.kubernetes import KubernetesBackend, KubernetesConfig, _make_api_client  # noqa: E402
from lwmecps_gym.backends.latency import PrometheusLatencySource, RetryPolicy, TestAppLatencySource  # noqa: E402
from lwmecps_gym.core.backend import PermanentBackendError, TransientBackendError  # noqa: E402
from lwmecps_gym.core.redact import redact, warn_cleartext_credentials  # noqa: E402
from tests.lwmecps.test_kubernetes_fakes import NS, FakeCluster, FakeTestApp  # noqa: E402
from tests.support.http_stub import HttpStub, k8s_status  # noqa: E402

NODES = ["n1", "n2"]
DEPS = ["bs1", "bs2"]
GROUP = "65f1c0ffee0000000000abcd"
EXPS = {"e1": "bs1", "e2": "bs2"}


@pytest.fixture
def stub():
    with HttpStub() as s:
        yield s


def _backend(stub, cluster, tmp_path, **cfg):
    conf = {"base_url": stub.url, "stabilization_time": 0, "retry_initial_s": 0.0, "retry_max_s": 0.01}
    conf.update(cfg)
    if "kubeconfig" not in conf:
        conf["kubeconfig"] = cluster.kubeconfig(str(tmp_path))
    return KubernetesBackend.from_env_kwargs(node_name=NODES, namespace=NS, deployments=DEPS, group_id=GROUP,
                                             env_config=conf)


# ------------------------------------------------------------------------------------------- retries


def test_hung_api_server_sees_exactly_the_configured_requests_and_time(stub, tmp_path):
    cluster = FakeCluster(stub, NODES, DEPS)
    release = threading.Event()
    arrivals: list[float] = []

    def hang(req):
        arrivals.append(time.monotonic())
        release.wait(20.0)  # never answers within the request timeout
        return 200, {"kind": "NodeList", "items": []}

    stub.route("GET", r"/api/v1/nodes", hang)
    try:
        with pytest.raises(TransientBackendError, match="list_node") as err:
            _backend(stub, cluster, tmp_path, retry_attempts=2, request_timeout_s=1.0)
        end = time.monotonic()
    finally:
        release.set()
    # urllib3's own retries would multiply this (8 GETs and 8.2 s before the fix); timed from the first
    # request, so the client's lazy imports do not count
    assert len(arrivals) == 2, f"{len(arrivals)} GETs for retry_attempts=2"
    assert 0.95 <= arrivals[1] - arrivals[0] < 1.6, arrivals
    assert 1.95 <= end - arrivals[0] < 3.0, end - arrivals[0]
    assert "timed out" in str(err.value).lower() or "timeout" in str(err.value).lower()


def test_our_client_has_urllib3_retries_off(stub, tmp_path):
    cluster = FakeCluster(stub, NODES, DEPS)
    api = _make_api_client(KubernetesConfig.from_mapping({"kubeconfig": cluster.kubeconfig(str(tmp_path))}))
    try:
        assert api.configuration.retries == 0
    finally:
        api.close()


def test_injected_client_with_retries_warns(stub, tmp_path):
    from kubernetes import client

    cluster = FakeCluster(stub, NODES, DEPS)
    FakeTestApp(stub, GROUP, EXPS)
    api = client.ApiClient(client.Configuration(host=stub.url))  # retries left at the default
    src = TestAppLatencySource(stub.url, GROUP, DEPS)
    try:
        with pytest.warns(UserWarning, match="urllib3 retries"):
            be = KubernetesBackend(NODES, DEPS, NS, src, api_client=api)
        be.close()
    finally:
        api.close()
    assert cluster.deps  # the backend read the stub


@pytest.mark.parametrize("status", [500, 504])
def test_transient_statuses_are_retried_exactly_retry_attempts_times(stub, tmp_path, status):
    cluster = FakeCluster(stub, NODES, DEPS)
    be = _backend(stub, cluster, tmp_path, retry_attempts=4)
    route = rf"/apis/apps/v1/namespaces/{NS}/deployments/bs2/scale"
    stub.route("PATCH", route, lambda r: (status, k8s_status(status, "InternalError", "etcd leader changed")))
    with pytest.raises(TransientBackendError, match=f"HTTP {status}"):
        be.scale({"bs2": 3})
    assert len(stub.calls("PATCH", route)) == 4
    be.close()


@pytest.mark.parametrize("status,reason,hint", [
    (400, "BadRequest", "malformed"),
    (401, "Unauthorized", "credentials"),
    (403, "Forbidden", "RBAC"),
    (404, "NotFound", "no such object"),
    (422, "Invalid", "invalid"),
])
def test_permanent_statuses_fail_fast_naming_the_call_and_resource(stub, tmp_path, status, reason, hint):
    cluster = FakeCluster(stub, NODES, DEPS)
    be = _backend(stub, cluster, tmp_path, retry_attempts=5, retry_initial_s=1.0)
    route = rf"/apis/apps/v1/namespaces/{NS}/deployments/bs1/scale"
    stub.route("PATCH", route, lambda r: (status, k8s_status(status, reason, f"scale of bs1 refused ({reason})")))
    t0 = time.monotonic()
    with pytest.raises(PermanentBackendError) as err:
        be.scale({"bs1": 2})
    assert time.monotonic() - t0 < 0.9  # no backoff sleep: not retried
    assert len(stub.calls("PATCH", route)) == 1
    msg = str(err.value)
    assert "patch_namespaced_deployment_scale" in msg and f"'{NS}/bs1'" in msg and f"HTTP {status}" in msg
    assert hint in msg
    be.close()


# ------------------------------------------------------------------------------------------- config


def test_kubeconfig_with_a_yaml_error_names_the_file_and_line(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    bad = tmp_path / "broken-kubeconfig"
    bad.write_text("apiVersion: v1\nkind: Config\nclusters:\n  - name: a\n    cluster: {server: [\n")
    with pytest.raises(PermanentBackendError) as err:
        KubernetesBackend.from_env_kwargs(node_name=NODES, namespace=NS, deployments=DEPS, group_id=GROUP,
                                          env_config={"base_url": "http://127.0.0.1:9", "kubeconfig": str(bad)})
    msg = str(err.value)
    assert str(bad) in msg and "not valid YAML" in msg and "line " in msg
    assert err.value.__cause__ is None  # no raw yaml traceback chained


def test_kubeconfig_that_is_a_yaml_list_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    bad = tmp_path / "kc"
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(PermanentBackendError, match="kubeconfig .*kc"):
        KubernetesBackend.from_env_kwargs(node_name=NODES, namespace=NS, deployments=DEPS, group_id=GROUP,
                                          env_config={"base_url": "http://127.0.0.1:9", "kubeconfig": str(bad)})


def test_kubeconfig_is_never_written_back(stub, tmp_path):
    cluster = FakeCluster(stub, NODES, DEPS)
    FakeTestApp(stub, GROUP, EXPS)
    path = cluster.kubeconfig(str(tmp_path))
    before = (open(path).read(), os.stat(path).st_mtime_ns)
    be = _backend(stub, cluster, tmp_path, kubeconfig=path)
    be.reset()
    be.close()
    assert (open(path).read(), os.stat(path).st_mtime_ns) == before


def test_non_objectid_group_id_answered_with_500_is_a_bad_group_id_not_retried(stub):
    def manage(req):  # what the test app does with "test-group-1": bson.ObjectId() raises -> 500
        return 500, {"detail": "Internal Server Error"}

    stub.route("POST", r"/api/manage_group", manage)
    src = TestAppLatencySource(stub.url, "test-group-1", DEPS, retry=RetryPolicy(5, 0.5, 8.0))
    t0 = time.monotonic()
    with pytest.raises(PermanentBackendError) as err:
        src.start()
    assert time.monotonic() - t0 < 0.5
    assert len(stub.calls("POST", "/api/manage_group")) == 1
    assert "group_id='test-group-1'" in str(err.value) and "ObjectId" in str(err.value)
    src.close()


def test_valid_group_id_with_500_is_still_transient(stub):
    stub.route("POST", r"/api/manage_group", lambda r: (500, {"detail": "mongo down"}))
    src = TestAppLatencySource(stub.url, GROUP, DEPS, retry=RetryPolicy(3, 0.0, 0.01))
    with pytest.raises(TransientBackendError, match="HTTP 500"):
        src.start()
    assert len(stub.calls("POST", "/api/manage_group")) == 3
    src.close()


# ------------------------------------------------------------------------------------------- measured


def test_rescale_by_another_controller_is_visible_in_the_measurement(stub, tmp_path):
    cluster = FakeCluster(stub, NODES, DEPS)
    app = FakeTestApp(stub, GROUP, EXPS)
    app.per_read = (10, 40.0)
    be = _backend(stub, cluster, tmp_path)
    be.reset()
    be.scale({"bs1": 2, "bs2": 2})
    be.advance(0.01)
    m = be.observe()
    assert list(m.replicas_desired) == [2, 2] and list(m.replicas_ready) == [2, 2]
    # an HPA (or a person) scales bs1 to 5; two of the new pods are not ready yet
    with cluster.lock:
        d = cluster.deps["bs1"]
        d.replicas, d.generation, d.lag_reads, d.status_replicas = 5, d.generation + 1, 100, 3
    be.advance(0.0)  # nothing of ours to roll out
    m = be.observe()
    assert int(m.replicas_desired[0]) == 5  # spec.replicas as the cluster now has it, not our action
    assert int(m.replicas_ready[0]) == 3    # status.readyReplicas: measured
    assert int(m.pods_per_node[0].sum()) == 3
    be.close()


# ------------------------------------------------------------------------------------------- secrets


def test_credentials_in_urls_never_reach_messages(stub):
    stub.route("GET", r"/api/group_stats", lambda r: (403, {"detail": "token=abc123 rejected"}))
    url = stub.url.replace("http://", "http://admin:s3cr3t@")
    src = TestAppLatencySource(url, GROUP, DEPS, retry=RetryPolicy(1, 0, 0))
    with pytest.raises(PermanentBackendError) as err:
        src.mark()
    assert "s3cr3t" not in str(err.value) and "abc123" not in str(err.value)
    assert "***" in str(err.value)
    src.close()


def test_redact_covers_urls_headers_and_tokens():
    text = ("GET https://bob:hunter2@api.example:6443/x?token=t0k3n failed; "
            "headers {'Authorization': 'Bearer eyJhbGciOi'} password: pw9")
    out = redact(text)
    for secret in ("hunter2", "t0k3n", "eyJhbGciOi", "pw9"):
        assert secret not in out
    assert "api.example:6443/x" in out


def test_basic_auth_over_plain_http_warns_except_on_loopback():
    with pytest.warns(UserWarning, match="plain http"):
        assert warn_cleartext_credentials("http://gateway.openfaas:8080", "gateway_auth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_cleartext_credentials("https://gateway.openfaas:8080", "gateway_auth")
        assert not warn_cleartext_credentials("http://127.0.0.1:8080", "gateway_auth")
        assert not warn_cleartext_credentials("http://gateway:8080", "x", has_credentials=False)
    with pytest.warns(UserWarning, match=r"\*\*\*@prom"):
        warn_cleartext_credentials("http://u:p@prom:9090", "prometheus_url", has_credentials=False)


def test_prometheus_label_values_are_escaped():
    class NoConn:
        def custom_query(self, *a, **k):  # pragma: no cover (queries() sends nothing)
            raise AssertionError

    src = PrometheusLatencySource("http://127.0.0.1:9", ['we"b', "a.b"], 'e\\dge', connection=NoConn())
    q = src.queries(30)
    assert 'namespace="e\\\\dge"' in q['we"b']["count"]
    assert 'pod=~"we\\"b-[a-z0-9]' in q['we"b']["count"]
    # a dot in a name matches only a dot (RE2-escaped, then string-escaped)
    assert 'pod=~"a\\\\.b-[a-z0-9]' in q["a.b"]["count"]


def test_v3_on_kubernetes_reports_the_measured_replicas_after_an_external_rescale(stub, tmp_path):
    """lwmecps-v3 observes spec.replicas and readyReplicas as the API reports them after the window,
    so an HPA (or a person) rescaling during the window is visible, not the action the env sent."""
    import gymnasium as gym
    import numpy as np

    import lwmecps_gym  # noqa: F401

    nodes, dep = ["minikube", "minikube-m02"], "mec-test-app"
    cluster = FakeCluster(stub, nodes, [dep], namespace="default")
    app = FakeTestApp(stub, GROUP, {"e1": dep})
    app.per_read = (3, 42.0)
    hpa = {"armed": False}

    def hpa_acts():  # at the window's opening read, another controller scales the deployment to 5
        if hpa["armed"]:
            hpa["armed"] = False
            with cluster.lock:
                d = cluster.deps[dep]
                d.replicas, d.generation = 5, d.generation + 1

    app.on_stats = hpa_acts
    env = gym.make("lwmecps-v3", backend="kubernetes", node_name=nodes, namespace="default", deployments=[dep],
                   deployment_name=dep, group_id=GROUP, max_replicas=8,
                   env_config={"base_url": stub.url, "stabilization_time": 0.05,
                               "kubeconfig": cluster.kubeconfig(str(tmp_path))})
    try:
        env.reset(seed=0)
        obs, _, _, _, info = env.step(np.array([2]))
        assert info["metrics"]["replicas"] == 2 and info["replicas_desired"] == [2]
        hpa["armed"] = True
        obs, _, _, _, info = env.step(np.array([2]))
        assert stub.calls("PATCH")[-1].body == {"spec": {"replicas": 2}}  # the env asked for 2 ...
        assert info["metrics"]["replicas"] == 5                             # ... the cluster runs 5
        assert info["replicas_desired"] == [5] and info["replicas_ready"] == [5]
        assert obs[2] == np.float32(5 / 8)  # observation index 2n + i: desired / max_replicas
    finally:
        env.close()
