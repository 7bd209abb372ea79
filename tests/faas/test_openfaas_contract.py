"""Contract tests of the OpenFaaS backend against loopback stubs (no cluster, no Prometheus binary).

The REAL ``kubernetes`` client, ``requests`` and ``prometheus-api-client`` talk HTTP to
:class:`tests.support.http_stub.HttpStub` on 127.0.0.1; the tests assert the exact requests sent
and that failures become retries or clear errors, never numbers.
"""

from __future__ import annotations

import base64

import pytest

from faas_gym.backends.base import FaasBackend
from faas_gym.backends.openfaas import OpenFaaSBackend
from lwmecps_gym.core.backend import BackendError, PermanentBackendError, TransientBackendError
from tests.faas.conftest import FUNCTION, NAMESPACE, deployment_json
from tests.support.http_stub import HttpStub, k8s_status
from tests.support.prometheus import free_port

FAST_RETRY = {"retry_attempts": 3, "retry_initial_s": 0.01, "retry_max_s": 0.02, "timeout_s": 2.0}
#: the stub answers instant queries only: give the scrape interval instead of measuring it at reset
SCRAPE = {"scrape_interval_s": 0.25}
SCALE_PATH = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{FUNCTION}/scale"
SERVICE_COUNT_QUERY = 'max(gateway_service_count{function_name="hello.openfaas-fn"})'


def vector(*values: tuple[dict, float]) -> dict:
    return {"status": "success", "data": {"resultType": "vector",
                                          "result": [{"metric": m, "value": [1.7e9, str(v)]} for m, v in values]}}


@pytest.fixture
def prom_stub():
    """A loopback stand-in for Prometheus' ``/api/v1/query`` that knows the function."""
    with HttpStub() as stub:
        stub.route("GET", "/api/v1/query", lambda req: (200, vector(({}, 3.0))))
        yield stub


def make_backend(api_client=None, prom_url="http://127.0.0.1:9", **kw) -> OpenFaaSBackend:
    args = {"function_name": FUNCTION, "sample_interval_s": 1.0, "slo_ms": 250.0, "min_replicas": 1,
            "max_replicas": 10, "prometheus_url": prom_url, "api_client": api_client, **FAST_RETRY, **SCRAPE}
    args.update(kw)
    return OpenFaaSBackend.from_env_kwargs(**args)


# ---- Kubernetes scale subresource ------------------------------------------------------------


def test_backend_satisfies_the_faas_backend_protocol(k8s_api_client):
    assert isinstance(make_backend(k8s_api_client), FaasBackend)


def test_apply_patches_the_scale_subresource_exactly(k8s_stub, k8s_api_client):
    backend = make_backend(k8s_api_client)
    backend.apply(5)
    (call,) = k8s_stub.calls("PATCH")
    assert call.path == SCALE_PATH
    assert call.headers["content-type"] == "application/strategic-merge-patch+json"
    assert call.body == {"spec": {"replicas": 5}}
    assert k8s_stub.state["deployment"]["spec"]["replicas"] == 5


def test_apply_rejects_out_of_range_without_calling_the_api(k8s_stub, k8s_api_client):
    backend = make_backend(k8s_api_client, min_replicas=1, max_replicas=4)
    with pytest.raises(ValueError, match=r"replicas must be <= 4"):
        backend.apply(5)
    with pytest.raises(ValueError, match=r"replicas must be >= 1"):
        backend.apply(0)
    with pytest.raises(TypeError, match="replicas must be an integer"):
        backend.apply(2.5)
    assert k8s_stub.calls("PATCH") == []


def test_scale_retries_503_then_succeeds(k8s_stub, k8s_api_client):
    answers = iter([(503, k8s_status(503, "ServiceUnavailable")), (503, k8s_status(503, "ServiceUnavailable"))])
    k8s_stub.route("PATCH", SCALE_PATH, lambda req: next(answers, (200, {"kind": "Scale", "spec": {"replicas": 2}})))
    make_backend(k8s_api_client).apply(2)
    assert len(k8s_stub.calls("PATCH", SCALE_PATH)) == 3


def test_persistent_conflict_gives_transient_error_after_bounded_attempts(k8s_stub, k8s_api_client):
    k8s_stub.route("PATCH", SCALE_PATH, lambda req: (409, k8s_status(409, "Conflict")))
    with pytest.raises(TransientBackendError, match="HTTP 409"):
        make_backend(k8s_api_client).apply(2)
    assert len(k8s_stub.calls("PATCH", SCALE_PATH)) == FAST_RETRY["retry_attempts"]


@pytest.mark.parametrize(("code", "reason", "hint"), [(404, "NotFound", "no such deployment"),
                                                      (403, "Forbidden", "RBAC")])
def test_permanent_api_errors_are_not_retried_and_say_why(k8s_stub, k8s_api_client, code, reason, hint):
    k8s_stub.route("PATCH", SCALE_PATH, lambda req: (code, k8s_status(code, reason)))
    with pytest.raises(PermanentBackendError, match=hint):
        make_backend(k8s_api_client).apply(2)
    assert len(k8s_stub.calls("PATCH", SCALE_PATH)) == 1


def test_reading_the_deployment_gives_ready_desired_and_capacity(k8s_stub, k8s_api_client):
    k8s_stub.state["deployment"] = deployment_json(spec_replicas=4, ready=None,
                                                   limits={"cpu": "1500m", "memory": "1Gi"})
    state = make_backend(k8s_api_client).scaler.read()
    assert (state.replicas_ready, state.replicas_desired) == (0, 4)   # readyReplicas absent = 0 ready
    assert state.cpu_capacity_cores == pytest.approx(1.5)
    assert state.memory_capacity_bytes == 1024**3
    by_request = make_backend(k8s_api_client, utilization_basis="request").scaler.read()
    assert by_request.cpu_capacity_cores == pytest.approx(0.1)
    assert by_request.memory_capacity_bytes == 64 * 1024**2


def test_unreachable_api_server_is_a_transient_error():
    from kubernetes import client

    cfg = client.Configuration(host=f"http://127.0.0.1:{free_port()}")
    cfg.retries = 0
    with pytest.raises(TransientBackendError, match="unreachable"):
        make_backend(client.ApiClient(cfg)).apply(2)


# ---- OpenFaaS gateway ------------------------------------------------------------------------


@pytest.fixture
def gateway_stub():
    with HttpStub() as stub:
        stub.route("POST", rf"/system/scale-function/{FUNCTION}", lambda req: (202, {}))
        stub.route("GET", rf"/system/function/{FUNCTION}", lambda req: (200, {
            "name": FUNCTION, "namespace": NAMESPACE, "replicas": 3, "availableReplicas": 2,
            "limits": {"cpu": "200m", "memory": "128Mi"}, "requests": {"cpu": "100m", "memory": "64Mi"}}))
        yield stub


def test_gateway_scale_posts_scale_function_with_auth_and_namespace(gateway_stub):
    backend = make_backend(scale_via="gateway", gateway_url=gateway_stub.url + "/",
                           gateway_auth=("admin", "s3cret"))
    backend.apply(4)
    (call,) = gateway_stub.calls("POST")
    assert call.path == f"/system/scale-function/{FUNCTION}"
    assert call.query == {"namespace": [NAMESPACE]}
    assert call.headers["content-type"] == "application/json"
    assert call.body == {"serviceName": FUNCTION, "replicas": 4, "namespace": NAMESPACE}
    assert call.headers["authorization"] == "Basic " + base64.b64encode(b"admin:s3cret").decode()
    state = backend.scaler.read()
    assert (state.replicas_ready, state.replicas_desired, state.cpu_capacity_cores) == (2, 3, pytest.approx(0.2))


def test_gateway_503_is_retried_and_401_is_permanent(gateway_stub):
    answers = iter([(503, {"error": "busy"})])
    gateway_stub.route("POST", rf"/system/scale-function/{FUNCTION}", lambda req: next(answers, (200, {})))
    backend = make_backend(scale_via="gateway", gateway_url=gateway_stub.url)
    backend.apply(2)
    assert len(gateway_stub.calls("POST")) == 2
    gateway_stub.route("POST", rf"/system/scale-function/{FUNCTION}", lambda req: (401, {"error": "unauthorized"}))
    with pytest.raises(PermanentBackendError, match="gateway_auth"):
        backend.apply(3)
    assert len(gateway_stub.calls("POST")) == 3


def test_apply_does_not_resend_the_count_it_applied_last(k8s_stub, k8s_api_client):
    backend = make_backend(k8s_api_client)
    backend.apply(3)
    backend.apply(3)  # unchanged: no API call (the env applies its target every step)
    backend.apply(4)
    assert [c.body for c in k8s_stub.calls("PATCH")] == [{"spec": {"replicas": 3}}, {"spec": {"replicas": 4}}]


# ---- Prometheus ------------------------------------------------------------------------------


def test_reset_checks_the_function_is_known_to_prometheus(k8s_stub, k8s_api_client, prom_stub):
    backend = make_backend(k8s_api_client, prom_url=prom_stub.url)
    backend.reset(seed=123)
    (q,) = prom_stub.calls("GET", "/api/v1/query")
    assert q.query["query"] == [SERVICE_COUNT_QUERY]


def test_missing_series_is_a_clear_error_naming_the_query(k8s_stub, k8s_api_client, prom_stub):
    prom_stub.route("GET", "/api/v1/query", lambda req: (200, vector()))
    backend = make_backend(k8s_api_client, prom_url=prom_stub.url)
    with pytest.raises(PermanentBackendError) as err:
        backend.reset()
    assert SERVICE_COUNT_QUERY in str(err.value)
    assert "hello.openfaas-fn" in str(err.value) and "scraped" in str(err.value)
    assert len(prom_stub.calls("GET", "/api/v1/query")) == 1  # not retried


def test_prometheus_503_then_success_is_retried(k8s_stub, k8s_api_client, prom_stub):
    answers = iter([(503, {"status": "error", "error": "overloaded"})])
    prom_stub.route("GET", "/api/v1/query", lambda req: next(answers, (200, vector(({}, 3.0)))))
    make_backend(k8s_api_client, prom_url=prom_stub.url).reset()
    assert len(prom_stub.calls("GET", "/api/v1/query")) == 2


def test_prometheus_always_503_fails_after_bounded_retries(k8s_stub, k8s_api_client, prom_stub):
    prom_stub.route("GET", "/api/v1/query", lambda req: (503, {"status": "error"}))
    with pytest.raises(TransientBackendError, match="503"):
        make_backend(k8s_api_client, prom_url=prom_stub.url).reset()
    assert len(prom_stub.calls("GET", "/api/v1/query")) == FAST_RETRY["retry_attempts"]


def test_prometheus_bad_query_is_permanent(k8s_stub, k8s_api_client, prom_stub):
    prom_stub.route("GET", "/api/v1/query", lambda req: (400, {"status": "error", "errorType": "bad_data"}))
    with pytest.raises(PermanentBackendError, match="400"):
        make_backend(k8s_api_client, prom_url=prom_stub.url).reset()
    assert len(prom_stub.calls("GET", "/api/v1/query")) == 1


def test_dead_prometheus_is_a_clear_transient_error(k8s_stub, k8s_api_client):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(TransientBackendError, match=f"Prometheus at {url} unreachable"):
        make_backend(k8s_api_client, prom_url=url).reset()


# ---- lifecycle and arguments -----------------------------------------------------------------


def test_lifecycle_errors(k8s_stub, k8s_api_client, prom_stub):
    backend = make_backend(k8s_api_client, prom_url=prom_stub.url)
    with pytest.raises(BackendError, match="reset"):
        backend.advance(0.01)
    backend.reset()
    with pytest.raises(BackendError, match="advance"):
        backend.observe()
    with pytest.raises(ValueError, match="seconds must be > 0"):
        backend.advance(0)
    backend.close()
    backend.close()  # idempotent
    with pytest.raises(BackendError, match="closed"):
        backend.apply(2)


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"bogus": 1}, ValueError, r"unknown openfaas backend option\(s\) \['bogus'\]"),
    ({"scale_via": "helm"}, ValueError, "scale_via must be one of"),
    ({"scale_via": "gateway"}, ValueError, "gateway_url is required"),
    ({"function_name": "Hello_World"}, ValueError, "function_name must be a Kubernetes DNS-1123 name"),
    ({"namespace": ""}, ValueError, "namespace must be"),
    ({"utilization_basis": "usage"}, ValueError, "utilization_basis must be one of"),
    ({"slo_ms": 0}, ValueError, "slo_ms must be > 0"),
    ({"min_replicas": 5, "max_replicas": 2}, ValueError, "max_replicas must be >= 5"),
    ({"retry_attempts": 0}, ValueError, "retry_attempts must be >= 1"),
    ({"max_inflight": 0}, ValueError, "max_inflight must be >= 1"),
])
def test_bad_arguments_are_named(k8s_api_client, kwargs, error, match):
    with pytest.raises(error, match=match):
        make_backend(k8s_api_client, **kwargs)


def test_scale_from_zero_with_nothing_ready_measures_zeros(k8s_stub, k8s_api_client, prom_stub):
    """All replicas still starting and no series anywhere yet: measured zeros, not an error.

    The gateway knows the function (``gateway_service_count``) but it has no invocation series and
    cAdvisor has no container for it yet; with no ready replica there is nothing to utilise.
    """
    k8s_stub.state["deployment"] = deployment_json(spec_replicas=1, ready=None)
    prom_stub.route("GET", "/api/v1/query", lambda req: (
        200, vector(({}, 0.0)) if "gateway_service_count" in req.query["query"][0] else vector()))
    backend = make_backend(k8s_api_client, prom_url=prom_stub.url, min_replicas=0)
    backend.reset()
    backend.advance(0.01)
    m = backend.observe()
    assert (m.replicas, m.replicas_desired) == (0, 1)
    assert (m.cpu_utilization, m.memory_utilization, m.cold_starts) == (0.0, 0.0, 0)
    assert (m.request_rate_rps, m.throughput_rps, m.response_time_ms, m.dropped, m.completed) == (0.0, 0.0, 0.0, 0, 0)
    assert m.slo_violation_rate is None and (m.arrived, m.in_system) == (0, 0)
    queries_sent = [c.query["query"][0] for c in prom_stub.calls("GET", "/api/v1/query")]
    assert any("container_cpu_usage_seconds_total" in q for q in queries_sent)


def test_importing_the_backend_modules_stays_light():
    """kubernetes, prometheus_api_client, requests and tenacity load only when a backend is built."""
    import subprocess
    import sys

    code = ("import sys, faas_gym, faas_gym.backends.openfaas, faas_gym.backends.promql; "
            "heavy = [m for m in ('kubernetes', 'prometheus_api_client', 'requests', 'tenacity', 'torch') "
            "if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_kubeconfig_path_is_used_with_its_token(k8s_stub, tmp_path):
    """Without an api_client the backend loads the given kubeconfig (server URL and bearer token)."""
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: stub\n"
        f"clusters:\n- name: stub\n  cluster:\n    server: {k8s_stub.url}\n"
        "users:\n- name: agent\n  user:\n    token: test-token\n"
        "contexts:\n- name: stub\n  context:\n    cluster: stub\n    user: agent\n")
    backend = make_backend(kubeconfig=str(kubeconfig))
    backend.apply(3)
    (call,) = k8s_stub.calls("PATCH", SCALE_PATH)
    assert call.headers["authorization"] == "Bearer test-token"
    assert call.body == {"spec": {"replicas": 3}}
    backend.close()
