"""The OpenFaaS backend against a REAL Prometheus server scraping a known exporter (127.0.0.1 only).

The session fixture ``faas_prometheus`` (tests/faas/conftest.py) runs the Debian ``prometheus``
binary with a 0.5 s scrape interval against an exporter whose counters grow linearly in time, so
every expected value is known in closed form (see ``default_exporter``). The Kubernetes side is
the loopback ``k8s_stub`` driven by the real ``kubernetes`` client.

Tolerances. Ratios of series scraped together (latency = sum/count, SLO fraction from buckets of
the same histogram, memory gauges, started - completed) are exact up to float rounding: 1e-6
relative. Rates compare a counter increase against Prometheus' scrape *timestamps*, which are
taken a few ms before our collector reads the clock; with a window of >= 3 s (>= 6 samples at
0.5 s) a jitter of <= 15 ms on each end bounds the relative error by 2 * 15 ms / 2.5 s = 1.2 %, so
rates are checked to 3 %. Counts are ``increase()`` over the window, rounded: rate * window with
the same 3 % plus 1 for the rounding.
"""

from __future__ import annotations

import threading
import time

import pytest

from faas_gym.backends.openfaas import OpenFaaSBackend
from lwmecps_gym.core.backend import PermanentBackendError
from tests.faas.conftest import (
    CPU_LIMIT_CORES,
    CPU_REQUEST_CORES,
    FUNCTION,
    HELLO_PODS,
    MEMORY_LIMIT_BYTES,
    SCRAPE_INTERVAL_S,
    MiB,
    deployment_json,
)
from tests.support.http_stub import HttpStub

pytestmark = pytest.mark.integration

WINDOW_S = 3.0
RATE_REL = 0.03
EXACT_REL = 1e-6
FAST_RETRY = {"retry_attempts": 2, "retry_initial_s": 0.01, "retry_max_s": 0.02, "timeout_s": 3.0}
#: Evaluate 2 scrape intervals before the window end, so the closing scrape is ingested even on a
#: loaded machine; otherwise rate() may extrapolate only half an interval at the end (-8 % here).
DELAY = {"evaluation_delay_s": 2 * SCRAPE_INTERVAL_S}


def backend_for(prom, api_client=None, **kw) -> OpenFaaSBackend:
    args = {"function_name": FUNCTION, "sample_interval_s": WINDOW_S, "slo_ms": 250.0, "min_replicas": 1,
            "max_replicas": 10, "prometheus_url": prom.url, "api_client": api_client, **FAST_RETRY, **DELAY}
    args.update(kw)
    return OpenFaaSBackend.from_env_kwargs(**args)


def cold_start_during(exporter, pod: str, delay_s: float) -> threading.Timer:
    """Restart ``pod``'s container ``delay_s`` into the coming window (inside it, by construction)."""
    timer = threading.Timer(delay_s, exporter.restart_pod, args=(pod,))
    timer.start()
    return timer


def test_observation_matches_the_exporter(faas_prometheus, k8s_stub, k8s_api_client):
    exporter, prom = faas_prometheus
    hello = exporter.functions["hello.openfaas-fn"]
    backend = backend_for(prom, k8s_api_client, max_inflight=2)
    backend.reset(seed=0)
    backend.apply(4)
    timer = cold_start_during(exporter, HELLO_PODS[2], 0.5)
    backend.advance(WINDOW_S)
    timer.join()
    m = backend.observe()
    backend.close()

    # orchestrator view: the stub Deployment now asks for 4, 3 are ready
    assert (m.replicas, m.replicas_desired) == (3, 4)
    assert m.window_s == pytest.approx(WINDOW_S, abs=0.05)
    assert m.time_s >= m.window_s
    # gateway: 21.5 req/s started, 20 req/s answered 2xx, 1.5 req/s 502/429 (dropped)
    assert m.request_rate_rps == pytest.approx(hello.completed_rate, rel=RATE_REL)
    assert m.throughput_rps == pytest.approx(20.0, rel=RATE_REL)
    assert m.completed == pytest.approx(20.0 * m.window_s, rel=RATE_REL, abs=1)
    assert m.dropped == pytest.approx(1.5 * m.window_s, rel=RATE_REL, abs=1)
    assert m.arrived == pytest.approx(hello.completed_rate * m.window_s, rel=RATE_REL, abs=1)
    # mean over the 2xx (completed) requests: 0.6 * 80 ms + 0.4 * 300 ms; 502/429 are drops
    assert m.response_time_ms == pytest.approx(1000 * hello.mean_latency_s(), rel=EXACT_REL)
    assert m.response_time_ms == pytest.approx(168.0, rel=EXACT_REL)
    # SLO 250 ms is a bucket bound: exact fraction of completed requests over it = 8/20
    assert m.slo_violation_rate == pytest.approx(1 - hello.fraction_at_most(0.25), rel=EXACT_REL)
    assert m.slo_violation_rate == pytest.approx(0.4, rel=EXACT_REL)
    # in flight = started - completed = 7; queue = 7 - 3 ready * max_inflight 2
    assert (m.in_system, m.queue_length) == (7, 1)
    # cAdvisor: (0.05+0.06+0.07) cores over 3 pods with a 200m limit; (40+50+60) MiB over 3 x 128 MiB
    assert m.cpu_utilization == pytest.approx(0.18 / (3 * CPU_LIMIT_CORES), rel=RATE_REL)
    assert m.memory_utilization == pytest.approx(150 * MiB / (3 * MEMORY_LIMIT_BYTES), rel=EXACT_REL)
    assert m.cold_starts == 1


def test_request_basis_and_an_slo_between_buckets(faas_prometheus, k8s_stub, k8s_api_client):
    _, prom = faas_prometheus
    backend = backend_for(prom, k8s_api_client, utilization_basis="request", slo_ms=400.0)
    backend.reset()
    backend.advance(WINDOW_S)
    m = backend.observe()
    assert m.cpu_utilization == pytest.approx(0.18 / (3 * CPU_REQUEST_CORES), rel=RATE_REL)
    assert m.memory_utilization == pytest.approx(150 / (3 * 64), rel=EXACT_REL)
    # 400 ms lies in the (0.25, 0.5] bucket holding 8 of the 20 req/s answered 2xx; linear
    # interpolation counts 0.6 of them as <= 0.4 s (histogram_quantile's assumption), so
    # 12 + 4.8 are within the SLO. (All of them truly are: the interpolation is documented, not exact.)
    assert m.slo_violation_rate == pytest.approx(1 - (12 + 0.6 * 8) / 20, rel=EXACT_REL)
    assert m.cold_starts == 0
    assert m.queue_length == 0 and m.in_system == 7  # no max_inflight: the sync path has no queue


def test_decoy_functions_do_not_leak(faas_prometheus, k8s_api_client):
    """The same name in another namespace and a name with this one as prefix stay separate."""
    _, prom = faas_prometheus
    with HttpStub() as stub:
        dep = deployment_json("hello", "staging", spec_replicas=1, ready=1)
        stub.route("GET", "/apis/apps/v1/namespaces/staging/deployments/hello", lambda req: (200, dep))
        from kubernetes import client

        api = client.ApiClient(client.Configuration(host=stub.url))
        backend = backend_for(prom, api, namespace="staging", slo_ms=2000.0)
        backend.reset()
        backend.advance(WINDOW_S)
        m = backend.observe()
        api.close()
    assert m.throughput_rps == pytest.approx(50.0, rel=RATE_REL)
    assert m.request_rate_rps == pytest.approx(55.0, rel=RATE_REL)
    assert m.response_time_ms == pytest.approx(1000.0, rel=EXACT_REL)   # the 2xx requests, not the 500s
    assert m.slo_violation_rate == pytest.approx(0.0, abs=EXACT_REL)
    assert m.dropped == pytest.approx(5 * m.window_s, rel=RATE_REL, abs=1)
    assert m.cpu_utilization == pytest.approx(0.9 / CPU_LIMIT_CORES, rel=RATE_REL)  # one pod
    assert m.in_system == 30


def test_gateway_mode_reads_and_scales_through_the_gateway(faas_prometheus):
    _, prom = faas_prometheus
    with HttpStub() as gw:
        status = {"name": FUNCTION, "namespace": "openfaas-fn", "replicas": 3, "availableReplicas": 3,
                  "limits": {"cpu": "200m", "memory": "128Mi"}}
        gw.route("GET", f"/system/function/{FUNCTION}", lambda req: (200, status))
        gw.route("POST", f"/system/scale-function/{FUNCTION}", lambda req: (202, {}))
        backend = backend_for(prom, scale_via="gateway", gateway_url=gw.url, gateway_auth=("admin", "pw"))
        backend.reset()
        backend.apply(2)
        backend.advance(WINDOW_S)
        m = backend.observe()
        assert gw.calls("POST")[0].body == {"serviceName": FUNCTION, "replicas": 2, "namespace": "openfaas-fn"}
    assert m.replicas == 3 and m.throughput_rps == pytest.approx(20.0, rel=RATE_REL)
    assert m.cpu_utilization == pytest.approx(0.3, rel=RATE_REL)


def test_unknown_function_is_a_clear_error(faas_prometheus, k8s_stub, k8s_api_client):
    _, prom = faas_prometheus
    dep = deployment_json("nothere")
    k8s_stub.route("GET", "/apis/apps/v1/namespaces/openfaas-fn/deployments/nothere", lambda req: (200, dep))
    backend = backend_for(prom, k8s_api_client, function_name="nothere")
    with pytest.raises(PermanentBackendError, match=r'gateway_service_count\{function_name="nothere.openfaas-fn"\}'):
        backend.reset()


def test_idle_function_gives_measured_zeros_and_missing_cadvisor_is_an_error(faas_prometheus):
    """No invocation series but gateway_service_count present = genuinely idle: the zeros are measured.

    The same function without cAdvisor series while a replica is ready is an error, not 0 % CPU.
    """
    from kubernetes import client

    from tests.faas.conftest import FunctionTraffic, Pod

    exporter, prom = faas_prometheus
    pod = "idle-6f7d8c9b5-qrstu"
    with HttpStub() as stub:
        dep = deployment_json("idle", "openfaas-fn", spec_replicas=1, ready=1)
        stub.route("GET", "/apis/apps/v1/namespaces/openfaas-fn/deployments/idle", lambda req: (200, dep))
        api = client.ApiClient(client.Configuration(host=stub.url))
        backend = backend_for(prom, api, function_name="idle")
        exporter.add_function("idle.openfaas-fn", FunctionTraffic(rates={}, latencies={}, in_flight=0.0, replicas=1))
        try:
            prom.wait_for_series('gateway_service_count{function_name="idle.openfaas-fn"}')
            backend.reset()
            backend.advance(1.0)
            with pytest.raises(PermanentBackendError, match="no cAdvisor series") as err:
                backend.observe()
            assert 'container=\"idle\"' in str(err.value) or 'container="idle"' in str(err.value)

            exporter.add_pod(Pod("openfaas-fn", pod, "idle", 0.01, 32 * MiB, time.time() - 600))
            prom.wait_for_series(f'container_cpu_usage_seconds_total{{pod="{pod}"}}', min_samples=7)
            backend.advance(1.5)
            m = backend.observe()
        finally:
            exporter.drop_function("idle.openfaas-fn")
            exporter.drop_pods(pod)
            api.close()
    assert (m.request_rate_rps, m.throughput_rps, m.response_time_ms) == (0.0, 0.0, 0.0)
    assert (m.arrived, m.completed, m.dropped, m.in_system, m.queue_length) == (0, 0, 0, 0, 0)
    assert m.slo_violation_rate is None  # no request completed: nothing to violate
    assert m.cpu_utilization == pytest.approx(0.01 / CPU_LIMIT_CORES, rel=RATE_REL)
    assert m.memory_utilization == pytest.approx(0.25, rel=EXACT_REL)


def test_deployment_without_limits_needs_an_explicit_capacity(faas_prometheus, k8s_stub, k8s_api_client):
    _, prom = faas_prometheus
    k8s_stub.state["deployment"] = deployment_json(limits={})
    backend = backend_for(prom, k8s_api_client)
    backend.reset()
    backend.advance(WINDOW_S)
    with pytest.raises(PermanentBackendError, match="no cpu capacity"):
        backend.observe()
    backend = backend_for(prom, k8s_api_client, cpu_capacity_cores=0.3, memory_capacity_bytes=100 * MiB)
    backend.reset()
    backend.advance(WINDOW_S)
    m = backend.observe()
    assert m.cpu_utilization == pytest.approx(0.18 / 0.9, rel=RATE_REL)
    assert m.memory_utilization == pytest.approx(0.5, rel=EXACT_REL)


def test_prometheus_stopping_mid_episode_is_an_error_not_zeros(k8s_stub, k8s_api_client):
    """A Prometheus that dies between steps: observe() fails loudly after bounded retries."""
    from lwmecps_gym.core.backend import TransientBackendError
    from tests.faas.conftest import default_exporter
    from tests.support.prometheus import MISSING_REASON, PrometheusServer, prometheus_binary

    if prometheus_binary() is None:
        pytest.skip(MISSING_REASON)
    exporter = default_exporter().start()
    try:
        with PrometheusServer([exporter.target], scrape_interval_s=0.5) as prom:
            # ready answers at once; the function is unknown until the first scrape lands (~5.5 s)
            backend = backend_for(prom, k8s_api_client)
            url = prom.url
            with pytest.raises(PermanentBackendError, match="gateway_service_count"):
                backend.reset()
            prom.wait_for_series('gateway_service_count{function_name="hello.openfaas-fn"}')
            backend.reset()
            prom.stop()
            backend.advance(0.2)
            with pytest.raises(TransientBackendError, match=f"Prometheus at {url} unreachable"):
                backend.observe()
    finally:
        exporter.stop()


def test_env_observation_through_gym_make(faas_prometheus, k8s_stub, k8s_api_client):
    """``gym.make(..., backend="openfaas")``: the env's observation is the exporter's known values."""
    import gymnasium as gym
    import numpy as np

    import faas_gym  # noqa: F401  (registers the ids)

    env_id = "faas_gym/Autoscaling-v0"
    exporter, prom = faas_prometheus
    hello = exporter.functions["hello.openfaas-fn"]
    env = gym.make(env_id, backend="openfaas", function_name=FUNCTION, interval_s=WINDOW_S, slo_ms=250.0,
                   min_replicas=1, max_replicas=10, initial_replicas=3,
                   backend_kwargs={"prometheus_url": prom.url, "api_client": k8s_api_client, **FAST_RETRY, **DELAY})
    try:
        obs, info = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        obs, reward, terminated, truncated, info = env.step(2)  # +1 replica
    finally:
        env.close()
    assert isinstance(reward, float) and (terminated, truncated) == (False, False)
    assert obs.dtype == np.float32 and env.observation_space.contains(obs)
    # the scale call went to the stub: 3 at reset, then 3 + 1
    assert [c.body for c in k8s_stub.calls("PATCH")] == [{"spec": {"replicas": 3}}, {"spec": {"replicas": 4}}]
    f32 = 1e-6  # float32 rounding of the observation
    assert obs[0] == 3 and obs[8] == 4                                  # ready, desired
    assert obs[1] == pytest.approx(0.3, rel=RATE_REL)                  # cpu
    assert obs[2] == pytest.approx(150 / 384, rel=f32)                 # memory
    assert obs[3] == pytest.approx(1000 * hello.mean_latency_s(), rel=f32)
    assert obs[4] == pytest.approx(21.5, rel=RATE_REL)
    assert obs[5] == pytest.approx(20.0, rel=RATE_REL)
    assert obs[6] == 0 and obs[7] == 0                                  # cold starts, queue
    m = info["metrics"]
    assert m["slo_violation_rate"] == pytest.approx(0.4, rel=EXACT_REL)
    assert m["dropped"] == pytest.approx(1.5 * WINDOW_S, rel=RATE_REL, abs=1)
