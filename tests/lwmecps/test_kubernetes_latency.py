"""Latency sources of the Kubernetes backend: the test app's API and Prometheus.

The test app is a loopback stub driven through real ``requests``; Prometheus is an autospec'd
``PrometheusConnect`` for the query logic and a real ``prometheus`` server on 127.0.0.1 scraping a real
``prometheus_client`` histogram for the end-to-end PromQL (skipped if the binary is missing).
"""

from __future__ import annotations

import math
import socket
import time
from unittest.mock import create_autospec

import numpy as np
import pytest

pytest.importorskip("requests")

from lwmecps_gym.backends.latency import (  # noqa: E402
    PrometheusLatencySource,
    RetryPolicy,
    TestAppLatencySource,
)
from lwmecps_gym.core.backend import BackendError, PermanentBackendError, TransientBackendError  # noqa: E402
from tests.lwmecps.test_kubernetes_fakes import FakeTestApp  # noqa: E402
from tests.support.http_stub import HttpStub  # noqa: E402

GROUP = "65f1c0ffee0000000000abcd"
FAST = RetryPolicy(attempts=3, initial_s=0.0, max_s=0.001)


class Tick:
    def __init__(self, t: float = 0.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def stub():
    with HttpStub() as s:
        yield s


# ------------------------------------------------------------------------------------------ test app


def test_testapp_maps_experiments_by_service_host_and_differences_sums(stub):
    app = FakeTestApp(stub, GROUP, {"e-b": "site-b.ns.svc", "e-a": "site-a"}, users=6, interval=2.0)
    app.serve("e-a", 100, 10.0)
    app.serve("e-b", 100, 10.0)
    tick = Tick()
    src = TestAppLatencySource(stub.url, GROUP, ["site-a", "site-b"], retry=FAST, clock=tick)
    src.start()
    assert not stub.calls("GET", "/api/result_experiment")  # mapped at the first read, not at start
    src.mark()
    app.serve("e-a", 30, 100.0)
    app.serve("e-b", 10, 20.0)
    app.serve("e-b", 10, 40.0)
    tick.t = 10.0
    w = src.read()
    assert {r.query["experiment_id"][0] for r in stub.calls("GET", "/api/result_experiment")} == {"e-a", "e-b"}
    assert w.window_s == 10.0
    assert w.requests.tolist() == [30.0, 20.0]
    assert w.latency_ms == pytest.approx([100.0, 30.0])
    assert w.mean_latency_ms == pytest.approx((30 * 100 + 20 * 30) / 50)
    assert w.demand_rps.tolist() == [3.0, 3.0]
    assert w.failed_rps == pytest.approx(0.0 + 1.0)  # site-b served 2 req/s of the 3 offered
    # the next window starts where this one ended; the profile slot changes within it
    app.serve("e-a", 5, 60.0)
    app.serve("e-b", 5, 60.0)
    app.users["e-a"] = 10
    tick.t = 15.0
    w2 = src.read()
    assert w2.latency_ms == pytest.approx([60.0, 60.0]) and w2.window_s == 5.0
    assert w2.demand_rps.tolist() == [(3.0 + 5.0) / 2, 3.0]  # offered rate averaged over the two reads


def test_testapp_explicit_mapping_skips_discovery(stub):
    app = FakeTestApp(stub, GROUP, {"x1": "unrelated", "x2": "other"})
    app.serve("x1", 1, 1.0)
    app.serve("x2", 1, 1.0)
    tick = Tick()
    src = TestAppLatencySource(stub.url, GROUP, ["a", "b"], experiments={"b": "x1", "a": "x2"}, retry=FAST,
                               clock=tick)
    src.start()
    src.mark()
    app.serve("x1", 1, 7.0)
    app.serve("x2", 1, 3.0)
    tick.t = 1.0
    assert src.read().latency_ms.tolist() == [3.0, 7.0]
    assert not stub.calls("GET", "/api/result_experiment") and not stub.calls("GET", "/api/list_groups")


def test_testapp_unmatched_deployment_asks_for_the_mapping(stub):
    app = FakeTestApp(stub, GROUP, {"x1": "site-a", "x2": "something-else"})
    app.serve("x1", 1, 1.0)
    app.serve("x2", 1, 1.0)
    tick = Tick()
    src = TestAppLatencySource(stub.url, GROUP, ["site-a", "site-b"], retry=FAST, clock=tick)
    src.start()
    src.mark()
    tick.t = 1.0
    with pytest.raises(PermanentBackendError, match=r"\['site-b'\].*env_config\['experiments'\]"):
        src.read()


def test_testapp_mapping_must_cover_every_deployment():
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        TestAppLatencySource("http://127.0.0.1:9", GROUP, ["a", "b"], experiments={"a": "x"})


def test_testapp_read_before_mark_is_an_error(stub):
    src = TestAppLatencySource(stub.url, GROUP, ["a"], retry=FAST)
    with pytest.raises(BackendError, match="before mark"):
        src.read()


def test_testapp_retries_5xx_then_succeeds(stub):
    app = FakeTestApp(stub, GROUP, {"e1": "a"})
    app.serve("e1", 4, 8.0)
    real = app._stats
    n = {"calls": 0}

    def flaky(req):
        n["calls"] += 1
        return (502, {"detail": "bad gateway"}) if n["calls"] == 1 else real(req)

    stub.route("GET", r"/api/group_stats", flaky)
    src = TestAppLatencySource(stub.url, GROUP, ["a"], retry=FAST)
    src.mark()
    assert len(stub.calls("GET", "/api/group_stats")) == 2


def test_testapp_unreachable_is_transient():
    # a bound socket that never listens: connections are refused, and no other process can take the port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        src = TestAppLatencySource(url, GROUP, ["a"], retry=RetryPolicy(2, 0.0, 0.001), timeout_s=1)
        with pytest.raises(TransientBackendError, match="group_stats"):
            src.mark()


def test_testapp_counter_going_back_is_an_error(stub):
    app = FakeTestApp(stub, GROUP, {"e1": "a"})
    app.serve("e1", 50, 8.0)
    tick = Tick()
    src = TestAppLatencySource(stub.url, GROUP, ["a"], retry=FAST, clock=tick)
    src.mark()
    app.count["e1"], app.latency_sum["e1"] = 10, 80.0
    tick.t = 5
    with pytest.raises(PermanentBackendError, match="went down from 50 to 10"):
        src.read()


def test_testapp_malformed_stats_are_an_error(stub):
    stub.route("GET", r"/api/group_stats", lambda r: (200, {"state": "running", "experiments_stats": {
        "e1": {"requests_count": 3, "average_latency": "fast", "current_users": 1, "current_interval": 1}}}))
    src = TestAppLatencySource(stub.url, GROUP, ["a"], experiments={"a": "e1"}, retry=FAST)
    with pytest.raises(PermanentBackendError, match="e1"):
        src.mark()


# ------------------------------------------------------------------------------------------ Prometheus


def prom_result(value: float | str, **labels) -> list[dict]:
    return [{"metric": labels, "value": [1700000000.0, str(value)]}]


@pytest.fixture
def prom():
    from prometheus_api_client import PrometheusConnect

    return create_autospec(PrometheusConnect, instance=True)


def test_prometheus_queries_and_window_arithmetic(prom):
    tick = Tick(100.0)
    src = PrometheusLatencySource("http://127.0.0.1:9090", ["web-a", "web-b"], "edge", connection=prom,
                                  min_window_s=30, sla_ms=250, retry=FAST, clock=tick)
    answers = {
        'sum(increase(http_request_duration_seconds_count{namespace="edge",pod=~"web-a-[a-z0-9]{1,10}-[a-z0-9]{5}"}[45s]))': prom_result(90),
        'sum(increase(http_request_duration_seconds_sum{namespace="edge",pod=~"web-a-[a-z0-9]{1,10}-[a-z0-9]{5}"}[45s]))': prom_result(9.0),
        'sum(increase(http_request_duration_seconds_count{namespace="edge",pod=~"web-b-[a-z0-9]{1,10}-[a-z0-9]{5}"}[45s]))': prom_result(45),
        'sum(increase(http_request_duration_seconds_sum{namespace="edge",pod=~"web-b-[a-z0-9]{1,10}-[a-z0-9]{5}"}[45s]))': prom_result(13.5),
        'sum(increase(http_request_duration_seconds_count{namespace="edge",pod=~"web-a-[a-z0-9]{1,10}-[a-z0-9]{5}",status=~"5.."}[45s]))': [],
        'sum(increase(http_request_duration_seconds_count{namespace="edge",pod=~"web-b-[a-z0-9]{1,10}-[a-z0-9]{5}",status=~"5.."}[45s]))': prom_result(9),
        'sum by (le) (increase(http_request_duration_seconds_bucket{namespace="edge",pod=~"web-a-[a-z0-9]{1,10}-[a-z0-9]{5}"}[45s]))':
            prom_result(80, le="0.1") + prom_result(85, le="0.25") + prom_result(90, le="+Inf"),
        'sum by (le) (increase(http_request_duration_seconds_bucket{namespace="edge",pod=~"web-b-[a-z0-9]{1,10}-[a-z0-9]{5}"}[45s]))':
            prom_result(10, le="0.1") + prom_result(40, le="0.25") + prom_result(45, le="+Inf"),
    }
    prom.custom_query.side_effect = lambda q, timeout=None: answers[q]
    src.start()
    src.mark()
    tick.t = 144.2  # 44.2 s -> a 45 s range
    w = src.read()
    assert w.window_s == 45.0
    assert w.requests.tolist() == [90.0, 45.0]
    assert w.latency_ms == pytest.approx([100.0, 300.0])
    assert w.mean_latency_ms == pytest.approx((90 * 100 + 45 * 300) / 135)
    assert w.demand_rps == pytest.approx([2.0, 1.0])
    assert w.failed_rps == pytest.approx(9 / 45)
    assert w.sla_violation_rate == pytest.approx(1 - (85 + 40) / 135)


def test_prometheus_short_windows_use_min_window(prom):
    tick = Tick(0.0)
    src = PrometheusLatencySource("http://127.0.0.1:9090", ["a"], "ns", connection=prom, min_window_s=30,
                                  retry=FAST, clock=tick)
    prom.custom_query.side_effect = lambda q, timeout=None: prom_result(0 if "5.." in q else 3)
    src.mark()
    tick.t = 5.0
    w = src.read()
    assert w.window_s == 30.0 and w.sla_violation_rate is None
    assert all("[30s]" in c.args[0] for c in prom.custom_query.call_args_list)


def test_prometheus_missing_series_is_an_error_not_zero(prom):
    src = PrometheusLatencySource("http://127.0.0.1:9090", ["a"], "ns", connection=prom, retry=FAST)
    prom.custom_query.return_value = []
    src.mark()
    with pytest.raises(PermanentBackendError, match="no series for deployment 'a'"):
        src.read()


def test_prometheus_errors_are_classified(prom):
    from prometheus_api_client import PrometheusApiClientException
    from requests import ConnectionError as ReqConnectionError

    src = PrometheusLatencySource("http://127.0.0.1:9090", ["a"], "ns", connection=prom, retry=FAST)
    src.mark()
    prom.custom_query.side_effect = PrometheusApiClientException("HTTP Status Code 503 (b'overloaded')")
    with pytest.raises(TransientBackendError, match="503"):
        src.read()
    assert prom.custom_query.call_count == 3
    prom.custom_query.reset_mock()
    prom.custom_query.side_effect = PrometheusApiClientException("HTTP Status Code 400 (b'parse error')")
    with pytest.raises(PermanentBackendError, match="400"):
        src.read()
    assert prom.custom_query.call_count == 1
    prom.custom_query.side_effect = ReqConnectionError("refused")
    with pytest.raises(TransientBackendError, match="refused"):
        src.read()


def test_prometheus_config_errors():
    with pytest.raises(ValueError, match="prometheus_url"):
        PrometheusLatencySource("prom:9090", ["a"], "ns", connection=object())
    with pytest.raises(ValueError, match="metric name"):
        PrometheusLatencySource("http://p:9090", ["a"], "ns", metric="bad metric", connection=object())
    with pytest.raises(ValueError, match="placeholders"):
        PrometheusLatencySource("http://p:9090", ["a"], "ns", selector='pod="{pod}"', connection=object())


@pytest.mark.integration
def test_prometheus_source_against_a_real_prometheus():
    """A real histogram scraped by a real Prometheus; the windowed mean must equal what was observed.

    The history mixes 0.2 s and 0.05 s requests; in the window every request takes 0.05 s, for two
    pods of two deployments. The windowed mean must be 50 ms; a cumulative mean would be ~125 ms.
    """
    from tests.support.prometheus import MISSING_REASON, PrometheusServer, prometheus_binary

    if prometheus_binary() is None:
        pytest.skip(MISSING_REASON)
    from prometheus_client import CollectorRegistry, Histogram, start_http_server

    reg = CollectorRegistry()
    hist = Histogram("http_request_duration_seconds", "request latency", ["namespace", "pod", "status"],
                     buckets=(0.1, 0.25, 1.0), registry=reg)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=reg)  # the OS picks a free port
    port = server.server_address[1]
    pods = {"web-a": "web-a-7c9d5f6b8-abcde", "web-b": "web-b-66f7d9c4b-fghij"}
    try:
        # a long history (1000 requests at 200 ms and 1000 at 50 ms per pod): large counters keep
        # increase()'s zero-point limit out of play, so _sum, _count and _bucket extrapolate alike
        for p in pods.values():
            for _ in range(1000):
                hist.labels("edge", p, "200").observe(0.2)
                hist.labels("edge", p, "200").observe(0.05)
        with PrometheusServer([f"127.0.0.1:{port}"], scrape_interval_s=1.0) as prom:
            prom.wait_for_series("http_request_duration_seconds_count", min_samples=2)
            src = PrometheusLatencySource(prom.url, list(pods), "edge", min_window_s=3, sla_ms=100, retry=FAST)
            time.sleep(1.2)
            src.mark()
            # the second phase: 20 requests/pod at 50 ms, spread over ~3 scrapes
            for _ in range(4):
                for p in pods.values():
                    for _ in range(5):
                        hist.labels("edge", p, "200").observe(0.05)
                time.sleep(0.8)
            time.sleep(2.2)  # let the last increments be scraped
            w = src.read()
            src.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    # increase() extrapolates to the range edges, so counts are approximate; ratios are exact because
    # every observation of the window has the same value.
    assert w.requests.min() > 0
    assert w.latency_ms == pytest.approx([50.0, 50.0], rel=1e-6)
    assert w.mean_latency_ms == pytest.approx(50.0, rel=1e-6)
    assert w.failed_rps == 0.0
    assert w.sla_violation_rate == pytest.approx(0.0, abs=1e-9)
    assert not np.any(np.isnan(w.latency_ms)) and math.isfinite(w.window_s)
