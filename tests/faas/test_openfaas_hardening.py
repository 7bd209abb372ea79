"""The OpenFaaS backend never reads missing samples as idle, and keeps credentials safe.

Against the REAL Prometheus of ``faas_prometheus`` (0.5 s scrape interval, tests/faas/conftest.py)
and loopback stubs:

* a step no longer than the scrape interval still measures the function's true rate (the ``rate()``
  range grows to 4 scrape intervals; before, ``rate()`` had < 2 samples, returned no series and the
  backend reported 0 req/s, 0 ms and no SLO violation while the function served 21.5 req/s);
* when the counters exist but ``rate()`` still finds < 2 samples, ``observe`` raises instead of
  reporting zeros; a ``rate_window_s`` shorter than 2 scrape intervals is refused at ``reset``;
* kubeconfig errors are clear, the kubeconfig is never written back, urllib3 retries are off;
* gateway credentials never reach messages, and basic auth over plain http warns.

Tolerances: as in test_openfaas_integration.py, a rate over a range of >= 2 s (>= 4 samples) has a
relative error <= 2 x 15 ms / 1.5 s = 2 % from scrape-timestamp jitter; checked to 5 % because the
range here is the shortest the backend picks.
"""

from __future__ import annotations

import os
import warnings

import pytest

from faas_gym.backends.openfaas import GatewayScaler, KubernetesScaler, MissingSamplesError, OpenFaaSBackend
from lwmecps_gym.core.backend import PermanentBackendError
from tests.faas.conftest import FUNCTION, SCRAPE_INTERVAL_S
from tests.support.http_stub import HttpStub

FAST_RETRY = {"retry_attempts": 2, "retry_initial_s": 0.01, "retry_max_s": 0.02, "timeout_s": 3.0}
DELAY = {"evaluation_delay_s": 2 * SCRAPE_INTERVAL_S}
RATE_REL = 0.05


def backend_for(prom, api_client, **kw) -> OpenFaaSBackend:
    args = {"function_name": FUNCTION, "sample_interval_s": 0.3, "slo_ms": 250.0, "min_replicas": 1,
            "max_replicas": 10, "prometheus_url": prom.url, "api_client": api_client, **FAST_RETRY, **DELAY}
    args.update(kw)
    return OpenFaaSBackend.from_env_kwargs(**args)


@pytest.mark.integration
def test_step_shorter_than_the_scrape_interval_measures_the_true_rate(faas_prometheus, k8s_stub, k8s_api_client):
    exporter, prom = faas_prometheus
    hello = exporter.functions["hello.openfaas-fn"]
    backend = backend_for(prom, k8s_api_client)
    backend.reset()
    assert backend.scrape_interval == pytest.approx(SCRAPE_INTERVAL_S, rel=0.1)  # measured, not given
    backend.advance(0.3)  # < the 0.5 s scrape interval
    m = backend.observe()
    backend.close()
    assert backend.rate_window_for(m.window_s) == pytest.approx(4 * backend.scrape_interval)
    assert m.request_rate_rps == pytest.approx(hello.completed_rate, rel=RATE_REL)  # 21.5, not 0
    assert m.throughput_rps == pytest.approx(20.0, rel=RATE_REL)
    assert m.response_time_ms == pytest.approx(168.0, rel=1e-6)
    assert m.slo_violation_rate == pytest.approx(0.4, rel=1e-6)
    # counts are per control window: rate x 0.3 s (about 6 arrivals), not the 2 s range's 43
    assert m.arrived == pytest.approx(hello.completed_rate * m.window_s, rel=RATE_REL, abs=1)
    assert m.completed == pytest.approx(20.0 * m.window_s, rel=RATE_REL, abs=1)


@pytest.mark.integration
def test_counters_present_but_too_few_samples_raise_instead_of_zeros(faas_prometheus, k8s_stub, k8s_api_client):
    _, prom = faas_prometheus
    # a wrong (too small) scrape interval lets a 0.2 s range through reset; it holds <= 1 sample
    backend = backend_for(prom, k8s_api_client, scrape_interval_s=0.05, rate_window_s=0.2)
    backend.reset()
    backend.advance(0.2)
    with pytest.raises(MissingSamplesError, match="unknown, not 0") as err:
        backend.observe()
    assert "hello.openfaas-fn" in str(err.value) and "rate_window_s" in str(err.value)
    backend.close()


@pytest.mark.integration
def test_rate_window_shorter_than_two_scrapes_is_refused(faas_prometheus, k8s_stub, k8s_api_client):
    _, prom = faas_prometheus
    backend = backend_for(prom, k8s_api_client, rate_window_s=0.6)
    with pytest.raises(ValueError, match=r"rate_window_s must be >= 2 scrape intervals"):
        backend.reset()
    backend.close()


# ---- Kubernetes client --------------------------------------------------------------------------


def _kubeconfig(path, server: str) -> str:
    path.write_text(
        '{"apiVersion": "v1", "kind": "Config", "current-context": "c",'
        f' "clusters": [{{"name": "c", "cluster": {{"server": "{server}"}}}}],'
        ' "users": [{"name": "u", "user": {"token": "t"}}],'
        ' "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}')
    return str(path)


def test_default_client_has_retries_off_and_never_writes_the_kubeconfig(tmp_path, k8s_stub):
    path = _kubeconfig(tmp_path / "kc", k8s_stub.url)
    before = (open(path).read(), os.stat(path).st_mtime_ns)
    scaler = KubernetesScaler(FUNCTION, "openfaas-fn", kubeconfig=path, retry=(1, 0.0, 0.0))
    try:
        assert scaler.apps.api_client.configuration.retries == 0
        assert scaler.read().replicas_desired == 3
    finally:
        scaler.close()
    assert (open(path).read(), os.stat(path).st_mtime_ns) == before


def test_kubeconfig_with_a_yaml_error_names_the_file(tmp_path):
    bad = tmp_path / "kubeconfig-broken"
    bad.write_text("clusters:\n  - name: a\n    cluster: {server: [\n")
    with pytest.raises(PermanentBackendError, match=r"kubeconfig-broken.*not valid YAML: line \d+"):
        KubernetesScaler(FUNCTION, "openfaas-fn", kubeconfig=str(bad))


# ---- gateway credentials --------------------------------------------------------------------------


def test_gateway_credentials_never_reach_messages():
    with HttpStub() as gw:
        gw.route("GET", r"/system/function/hello", lambda r: (401, {"error": "Authorization: Basic YWRtaW46cHc="}))
        url = gw.url.replace("http://", "http://admin:pa55word@")
        scaler = GatewayScaler(FUNCTION, "openfaas-fn", url, auth=("admin", "s3cret-pw"), retry=(1, 0.0, 0.0))
        with pytest.raises(PermanentBackendError) as err:
            scaler.read()
        scaler.close()
    msg = str(err.value)
    assert "401" in msg and "gateway_auth" in msg
    for secret in ("pa55word", "s3cret-pw", "YWRtaW46cHc="):
        assert secret not in msg
    assert err.value.__cause__ is None


def test_basic_auth_over_plain_http_warns():
    with pytest.warns(UserWarning, match="plain http"):
        GatewayScaler(FUNCTION, "openfaas-fn", "http://gateway.openfaas:8080", auth=("admin", "pw")).close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GatewayScaler(FUNCTION, "openfaas-fn", "https://gateway.openfaas:8080", auth=("admin", "pw")).close()
        GatewayScaler(FUNCTION, "openfaas-fn", "http://gateway.openfaas:8080").close()  # no credentials
    with pytest.raises(TypeError, match="gateway_auth"):
        GatewayScaler(FUNCTION, "openfaas-fn", "https://gw:8080", auth="admin:pw")
