"""PromQL for an OpenFaaS function: label quoting, the queries, and a retrying query client.

Pure string building lives in the ``*_query`` functions and :func:`promql_string` /
:func:`promql_regex_literal` (no dependencies, unit-testable); :class:`PrometheusQueries`
runs them with ``prometheus-api-client`` (imported lazily), maps failures onto
:class:`~lwmecps_gym.core.backend.TransientBackendError` /
:class:`~lwmecps_gym.core.backend.PermanentBackendError` and retries transient ones with
:func:`lwmecps_gym.core.retry.with_retry`.

Metric facts (OpenFaaS gateway source, ``gateway/handlers/notifiers.go`` and the
"Monitoring Functions" docs page):

* ``gateway_function_invocation_total{function_name, code}``: counter of completed invocations;
  ``code`` is the HTTP status as a string (``"200"``), so it must be quoted in PromQL
  (FaaSTrainGym's unquoted ``code=200`` is a parse error).
* ``gateway_function_invocation_started{function_name}``: counter of started invocations.
* ``gateway_functions_seconds{function_name, code}``: histogram of invocation time, s.
* ``gateway_service_count{function_name}``: replicas the gateway sees, refreshed for every
  deployed function whether or not it was invoked.
* ``function_name`` is ``"<name>.<namespace>"`` (the gateway appends its function namespace
  when the name has no dot).

cAdvisor (kubelet ``/metrics/cadvisor``): ``container_cpu_usage_seconds_total`` (counter, CPU s),
``container_memory_working_set_bytes`` (gauge, bytes), ``container_start_time_seconds`` (gauge,
Unix s), labels ``namespace``, ``pod``, ``container``; the pause container has ``container="POD"``
and the pod-level cgroup ``container=""``, both excluded by filtering on the function's container.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lwmecps_gym.core.backend import PermanentBackendError, TransientBackendError
from lwmecps_gym.core.promql import promql_regex_literal, promql_string  # noqa: F401 (re-exported)
from lwmecps_gym.core.redact import redact, redact_url, warn_cleartext_credentials
from lwmecps_gym.core.retry import TRANSIENT_HTTP_STATUS, with_retry

# --------------------------------------------------------------------------------------------
# Quoting
# --------------------------------------------------------------------------------------------

# promql_string / promql_regex_literal live once, in lwmecps_gym.core.promql (imported above).


def duration(seconds: float) -> str:
    """A PromQL duration literal in whole milliseconds, e.g. ``30.0 -> "30000ms"``."""
    ms = int(round(seconds * 1000.0))
    if ms <= 0:
        raise ValueError(f"a PromQL range must be positive, got {seconds!r} s")
    return f"{ms}ms"


def selector(metric: str, **labels: str | tuple[str, str]) -> str:
    """``metric{k="v", ...}``; a tuple value ``(op, v)`` uses ``op`` (``=~``, ``!~``, ``!=``)."""
    parts = []
    for k, v in labels.items():
        op, val = v if isinstance(v, tuple) else ("=", v)
        if op not in ("=", "!=", "=~", "!~"):
            raise ValueError(f"unknown label matcher {op!r} for {k}")
        parts.append(f"{k}{op}{promql_string(val)}")
    return f"{metric}{{{', '.join(parts)}}}"


# --------------------------------------------------------------------------------------------
# Query builders for one function
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionRef:
    """Which series belong to the function.

    Attributes:
        name: the OpenFaaS function (= Kubernetes Deployment and container) name.
        namespace: the function namespace (``openfaas-fn`` by default).
        gateway_label: the gateway's ``function_name`` label, ``"<name>.<namespace>"``.
        pod_regex: RE2 matching the function's pod names: ``<name>-<pod-template-hash>-<5 chars>``.
    """

    name: str
    namespace: str

    @property
    def gateway_label(self) -> str:
        return f"{self.name}.{self.namespace}"

    @property
    def pod_regex(self) -> str:
        return promql_regex_literal(self.name) + "-[a-z0-9]+-[a-z0-9]{5}"

    def gateway(self, metric: str, **extra: str | tuple[str, str]) -> str:
        return selector(metric, function_name=self.gateway_label, **extra)

    def cadvisor(self, metric: str) -> str:
        return selector(metric, namespace=self.namespace, pod=("=~", self.pod_regex), container=self.name)


def queries(fn: FunctionRef, window_s: float) -> dict[str, str]:
    """The PromQL the OpenFaaS backend runs, by purpose (also tabulated in docs/faas_openfaas.md)."""
    w = duration(window_s)
    ok = ("=~", "2..")  # successful invocations: the requests the backend reports as completed
    inv = fn.gateway("gateway_function_invocation_total")
    return {
        # completions per status class, requests/s and counts over the window
        "completed_rate_by_code": f"sum by (code) (rate({inv}[{w}]))",
        "completed_increase_by_code": f"sum by (code) (increase({inv}[{w}]))",
        # arrivals (started invocations)
        "started_rate": f"sum(rate({fn.gateway('gateway_function_invocation_started')}[{w}]))",
        "started_increase": f"sum(increase({fn.gateway('gateway_function_invocation_started')}[{w}]))",
        # requests in flight at the gateway at the evaluation time (started - completed, all codes)
        "in_flight": (f"sum({fn.gateway('gateway_function_invocation_started')})"
                      f" - sum({inv})"),
        # mean invocation time of the successful (2xx) invocations over the window, s
        "latency_sum_rate": f"sum(rate({fn.gateway('gateway_functions_seconds_sum', code=ok)}[{w}]))",
        "latency_count_rate": f"sum(rate({fn.gateway('gateway_functions_seconds_count', code=ok)}[{w}]))",
        # histogram buckets for the SLO-violation fraction
        "latency_buckets": f"sum by (le) (rate({fn.gateway('gateway_functions_seconds_bucket', code=ok)}[{w}]))",
        # is the function known to the gateway at all (emitted for every deployed function)
        "service_count": f"max({fn.gateway('gateway_service_count')})",
        # do invocation counters exist at all right now (then an empty rate() means too few samples)
        "invocation_series": (f"count({inv}) or count({fn.gateway('gateway_function_invocation_started')})"),
        # cAdvisor, per pod
        "cpu_cores_by_pod": f"sum by (pod) (rate({fn.cadvisor('container_cpu_usage_seconds_total')}[{w}]))",
        "memory_bytes_by_pod": (f"sum by (pod) (avg_over_time("
                                f"{fn.cadvisor('container_memory_working_set_bytes')}[{w}]))"),
        # samples per pod in the window: how long each pod existed (pods that came or went mid-window)
        "pod_samples": (f"sum by (pod) (count_over_time("
                        f"{fn.cadvisor('container_memory_working_set_bytes')}[{w}]))"),
        "container_start_time": f"max by (pod) ({fn.cadvisor('container_start_time_seconds')})",
    }


def fraction_at_most(buckets: Sequence[tuple[float, float]], threshold: float) -> float | None:
    """Fraction of histogram observations ``<= threshold`` from cumulative ``(le, count)`` buckets.

    Linear interpolation inside the bucket that contains ``threshold`` (the same assumption
    ``histogram_quantile`` makes); exact when ``threshold`` is a bucket bound. Returns ``None``
    if there are no observations or ``threshold`` lies above the largest finite bound (the
    histogram cannot tell), and raises ``PermanentBackendError`` if ``+Inf`` is missing.
    """
    pts = sorted((float(le), float(c)) for le, c in buckets)
    if not pts or not math.isinf(pts[-1][0]):
        raise PermanentBackendError("histogram has no le=\"+Inf\" bucket; cannot compute the SLO fraction")
    total = pts[-1][1]
    if not total > 0.0:
        return None
    prev_le, prev_c = 0.0, 0.0
    for le, c in pts:
        if math.isinf(le):
            return None
        if threshold <= le:
            width = le - prev_le
            frac_in = 1.0 if width <= 0 else (threshold - prev_le) / width
            at_most = prev_c + (c - prev_c) * frac_in
            return min(1.0, max(0.0, at_most / total))
        prev_le, prev_c = le, c
    return None  # pragma: no cover (the loop returns at +Inf)


# --------------------------------------------------------------------------------------------
# Running queries
# --------------------------------------------------------------------------------------------

_STATUS_RE = re.compile(r"HTTP Status Code (\d{3})")


@dataclass(frozen=True)
class Sample:
    """One instant-vector element: labels and value (``nan`` stays ``nan``)."""

    labels: dict[str, str]
    value: float


class PrometheusQueries:
    """Instant queries against Prometheus with bounded retries and clear errors.

    Args:
        url: Prometheus base URL, e.g. ``http://127.0.0.1:9090``.
        timeout_s: per-request timeout, s.
        retry_attempts, retry_initial_s, retry_max_s: see :func:`lwmecps_gym.core.retry.with_retry`;
            only transient failures (connection refused/reset, timeouts, HTTP 408/409/429/5xx) retry.
        client: an existing ``prometheus_api_client.PrometheusConnect`` (its own retry and timeout
            settings are then the caller's business); default: one built with ``Retry(total=0)``.
        headers: extra HTTP headers (e.g. ``Authorization``) for the default client.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        retry_attempts: int = 4,
        retry_initial_s: float = 0.5,
        retry_max_s: float = 4.0,
        client: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        #: the URL as shown in messages (``user:password@`` redacted)
        self.where = redact_url(url)
        self.timeout_s = float(timeout_s)
        if headers is not None and any(k.lower() == "authorization" for k in headers):
            warn_cleartext_credentials(url, "prometheus_headers (Authorization)")
        else:
            warn_cleartext_credentials(url, "prometheus_url", has_credentials=False)
        if client is None:
            from prometheus_api_client import PrometheusConnect
            from urllib3.util.retry import Retry

            client = PrometheusConnect(url=url, headers=headers, retry=Retry(total=0), timeout=self.timeout_s)
            self._owns_client = True
        else:
            self._owns_client = False
        self.client = client
        self._query = with_retry(retry_attempts, retry_initial_s, retry_max_s)(self._query_once)
        self._retry_raw = lambda fn: with_retry(retry_attempts, retry_initial_s, retry_max_s)(fn)()

    def _query_once(self, promql: str, at: float | None) -> list[Sample]:
        import requests
        from prometheus_api_client import PrometheusApiClientException

        params = {} if at is None else {"time": f"{at:.3f}"}
        try:
            result = self.client.custom_query(promql, params=params, timeout=self.timeout_s)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientBackendError(
                f"Prometheus at {self.where} unreachable for query {promql!r}: {redact(str(exc))}") from None
        except PrometheusApiClientException as exc:
            m = _STATUS_RE.search(str(exc))
            status = int(m.group(1)) if m else None
            msg = f"Prometheus at {self.where} rejected query {promql!r}: {redact(str(exc))}"
            if status in TRANSIENT_HTTP_STATUS:
                raise TransientBackendError(msg) from exc
            raise PermanentBackendError(msg) from exc
        except requests.RequestException as exc:
            raise PermanentBackendError(
                f"Prometheus request to {self.where} failed for query {promql!r}: {redact(str(exc))}") from None
        except ValueError:  # body is not JSON
            raise PermanentBackendError(f"Prometheus at {self.where} sent a malformed answer to {promql!r}") from None
        try:
            return [Sample(dict(r.get("metric", {})), float(r["value"][1])) for r in result]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise PermanentBackendError(
                f"unexpected result shape for {promql!r} (want an instant vector): {result!r:.300}"
            ) from exc

    def vector(self, promql: str, at: float | None = None) -> list[Sample]:
        """All elements of an instant-vector query (empty list if no series matched)."""
        return self._query(promql, at)

    def scalar(self, promql: str, at: float | None = None, *, missing: Callable[[], str] | None = None) -> float:
        """The single value of an aggregated query; an empty result raises ``PermanentBackendError``.

        ``missing`` can supply extra hint text for the error message.
        """
        res = self._query(promql, at)
        if not res:
            hint = f" ({missing()})" if missing is not None else ""
            raise PermanentBackendError(f"no series for query {promql!r} at {self.where}{hint}")
        if len(res) > 1:
            raise PermanentBackendError(f"query {promql!r} returned {len(res)} series, expected one")
        return res[0].value

    def scrape_interval_s(self, series: str, lookback_s: float = 120.0, at: float | None = None) -> float | None:
        """The scrape interval of ``series`` (a plain series selector), measured from its raw samples.

        Runs the range query ``series[lookback_s]`` and returns the median gap between consecutive
        sample timestamps of its first series, s; ``None`` if it has fewer than two samples.
        """
        promql = f"{series}[{duration(lookback_s)}]"
        params = {} if at is None else {"time": f"{at:.3f}"}

        def once() -> Any:
            import requests

            try:
                return self.client.custom_query(promql, params=params, timeout=self.timeout_s)
            except Exception as exc:  # PrometheusApiClientException carries the status in its text
                m = _STATUS_RE.search(str(exc))
                status = int(m.group(1)) if m else None
                msg = f"Prometheus at {self.where} failed range query {promql!r}: {redact(str(exc))}"
                if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
                    raise TransientBackendError(f"Prometheus at {self.where} unreachable for range query "
                                                f"{promql!r}: {redact(str(exc))}") from None
                if status in TRANSIENT_HTTP_STATUS:
                    raise TransientBackendError(msg) from None
                raise PermanentBackendError(msg) from None

        result = self._retry_raw(once)
        try:
            stamps = sorted(float(t) for t, _ in result[0]["values"]) if result else []
        except (KeyError, IndexError, TypeError, ValueError):
            raise PermanentBackendError(f"unexpected result shape for range query {promql!r}: {result!r:.300}") from None
        if len(stamps) < 2:
            return None
        gaps = sorted(b - a for a, b in zip(stamps, stamps[1:], strict=False))
        return float(gaps[len(gaps) // 2])

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
