"""Fixtures for the faas_gym tests: a real Prometheus scraping an OpenFaaS/cAdvisor-shaped exporter.

``faas_prometheus`` (session scope) starts a ``prometheus_client`` exporter on 127.0.0.1 whose
series follow known closed forms in wall-clock time, and a real ``prometheus`` server scraping
it every 0.5 s; the ~5.5 s first-sample delay is paid once per session. Tests that need it are
skipped with a clear reason when the ``prometheus`` binary is missing.

The exporter (what it mimics is in its module docstring) and the Deployment JSON live in the shipped
:mod:`lwmecps_gym.testing.openfaas`.
"""

from __future__ import annotations

import pytest

from lwmecps_gym.testing.openfaas import (  # noqa: F401  (moved to the shipped testing module; re-exported)
    CPU_LIMIT_CORES,
    CPU_REQUEST_CORES,
    DEFAULT_BUCKETS,
    FUNCTION,
    HELLO_PODS,
    MEMORY_LIMIT_BYTES,
    MEMORY_REQUEST_BYTES,
    NAMESPACE,
    SCRAPE_INTERVAL_S,
    FaasExporter,
    FunctionTraffic,
    MiB,
    Pod,
    default_exporter,
    deployment_json,
    scale_json,
)
from tests.support.prometheus import MISSING_REASON, PrometheusServer, free_port, prometheus_binary  # noqa: F401


@pytest.fixture(scope="session")
def faas_prometheus():
    """``(exporter, prometheus_server)``: session-wide, with >= 6 scrapes of the gateway series."""
    if prometheus_binary() is None:
        pytest.skip(MISSING_REASON)
    exporter = default_exporter().start()
    try:
        with PrometheusServer([exporter.target], scrape_interval_s=SCRAPE_INTERVAL_S) as prom:
            prom.wait_for_series('gateway_service_count{function_name="hello.openfaas-fn"}',
                                 min_samples=6, timeout_s=40.0)
            yield exporter, prom
    finally:
        exporter.stop()


@pytest.fixture
def k8s_stub():
    """An :class:`HttpStub` serving the ``hello`` Deployment; PATCH on ``/scale`` updates ``spec.replicas``."""
    from tests.support.http_stub import HttpStub

    state = {"deployment": deployment_json()}
    base = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{FUNCTION}"

    def get(req):
        return 200, state["deployment"]

    def patch_scale(req):
        n = int(req.body["spec"]["replicas"])
        state["deployment"]["spec"]["replicas"] = n
        return 200, scale_json(FUNCTION, NAMESPACE, n)

    with HttpStub() as stub:
        stub.route("GET", base, get)
        stub.route("PATCH", base + "/scale", patch_scale)
        stub.state = state
        yield stub


@pytest.fixture
def k8s_api_client(k8s_stub):
    """A real ``kubernetes.client.ApiClient`` pointed at :func:`k8s_stub`."""
    from kubernetes import client

    cfg = client.Configuration(host=k8s_stub.url)
    cfg.retries = 0
    api = client.ApiClient(cfg)
    yield api
    api.close()
