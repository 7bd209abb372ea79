"""Optional smoke test against a LIVE OpenFaaS-on-Kubernetes cluster (skipped unless configured).

Set ``KUBECONFIG`` (a cluster you may scale), ``FAAS_GYM_LIVE_FUNCTION`` (a deployed function in
``FAAS_GYM_LIVE_NAMESPACE``, default ``openfaas-fn``) and ``FAAS_GYM_LIVE_PROMETHEUS`` (a Prometheus
URL that scrapes the gateway and cAdvisor), then run ``pytest -m k8s tests/faas/test_openfaas_live.py``.
The test re-applies the function's current desired replica count (no disruption), waits one
interval and checks the measurement's invariants. Send some traffic to the function meanwhile to
exercise the latency path.
"""

from __future__ import annotations

import math
import os

import pytest

pytestmark = pytest.mark.k8s

FUNCTION = os.environ.get("FAAS_GYM_LIVE_FUNCTION")
PROMETHEUS = os.environ.get("FAAS_GYM_LIVE_PROMETHEUS")


@pytest.mark.skipif(not (os.environ.get("KUBECONFIG") and FUNCTION and PROMETHEUS),
                    reason="needs KUBECONFIG, FAAS_GYM_LIVE_FUNCTION and FAAS_GYM_LIVE_PROMETHEUS")
def test_live_cluster_measurement_invariants():
    from faas_gym.backends.openfaas import OpenFaaSBackend

    interval = float(os.environ.get("FAAS_GYM_LIVE_INTERVAL_S", "30"))
    backend = OpenFaaSBackend.from_env_kwargs(
        function_name=FUNCTION, namespace=os.environ.get("FAAS_GYM_LIVE_NAMESPACE", "openfaas-fn"),
        sample_interval_s=interval, slo_ms=1000.0, min_replicas=0, max_replicas=1000,
        prometheus_url=PROMETHEUS, kubeconfig=os.environ["KUBECONFIG"],
        evaluation_delay_s=float(os.environ.get("FAAS_GYM_LIVE_EVAL_DELAY_S", "15")))
    try:
        backend.reset()
        desired = backend.scaler.read().replicas_desired
        backend.apply(desired)
        backend.advance(interval)
        m = backend.observe()
    finally:
        backend.close()
    assert m.replicas_desired == desired
    assert 0 <= m.replicas
    assert m.window_s == pytest.approx(interval, abs=1.0) and m.time_s >= m.window_s
    for value in (m.cpu_utilization, m.memory_utilization, m.response_time_ms, m.request_rate_rps,
                  m.throughput_rps):
        assert math.isfinite(value) and value >= 0.0
    assert min(m.cold_starts, m.queue_length, m.dropped, m.completed) >= 0
    assert m.slo_violation_rate is None or 0.0 <= m.slo_violation_rate <= 1.0
    if m.completed > 0:
        assert m.response_time_ms > 0.0
