"""Latency sources for the Kubernetes backend: where measured latency and demand come from.

A latency source measures, per deployment (edge site), the request rate and the **windowed** mean
latency between two instants: :meth:`LatencySource.mark` opens a window, :meth:`LatencySource.read`
closes it and returns a :class:`LatencyWindow`. The window is never a cumulative mean since some
distant start (the upstream project used the test app's cumulative ``average_latency``, which after a
few hours barely reacts to any action).

Two sources:

* :class:`TestAppLatencySource`: the lwmecps test application's client API (``POST
  /api/manage_group``, ``GET /api/group_stats``). It keeps, per experiment, the cumulative request
  count ``requests_count`` and cumulative mean ``average_latency``; the window mean is recovered by
  differencing the sums: ``(avg_1 * n_1 - avg_0 * n_0) / (n_1 - n_0)``.
* :class:`PrometheusLatencySource`: a Prometheus latency histogram per deployment, through
  ``prometheus_api_client`` (imported lazily), with ``increase()`` over the window.

Both use ``requests`` with timeouts; transient failures (HTTP 408/409/429/5xx, connection errors,
timeouts) are retried with exponential backoff by :func:`lwmecps_gym.core.retry.with_retry`;
anything else raises :class:`~lwmecps_gym.core.backend.PermanentBackendError`. Missing data raises
an error; a source never returns made-up zeros.

This module imports neither ``kubernetes`` nor any env.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lwmecps_gym.core.backend import BackendError, PermanentBackendError, TransientBackendError
from lwmecps_gym.core.promql import promql_escape, promql_regex_literal
from lwmecps_gym.core.redact import redact, redact_url, warn_cleartext_credentials
from lwmecps_gym.core.retry import TRANSIENT_HTTP_STATUS, with_retry

__all__ = [
    "LatencySource",
    "LatencyWindow",
    "PrometheusLatencySource",
    "RetryPolicy",
    "TestAppLatencySource",
]


@dataclass(frozen=True)
class RetryPolicy:
    """How real backends retry transient failures (see :func:`lwmecps_gym.core.retry.with_retry`).

    Attributes:
        attempts: total tries per call (>= 1).
        initial_s: first backoff, seconds.
        max_s: cap on one backoff, seconds.
    """

    attempts: int = 5
    initial_s: float = 0.5
    max_s: float = 8.0

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` retrying :class:`TransientBackendError` with backoff; re-raise the last one."""
        return with_retry(self.attempts, self.initial_s, self.max_s)(fn)()


@dataclass(frozen=True)
class LatencyWindow:
    """What a latency source measured between :meth:`~LatencySource.mark` and :meth:`~LatencySource.read`.

    Attributes:
        window_s: length of the window, seconds (wall clock).
        requests: ``float64 (n_deployments,)`` requests counted in the window per deployment.
        demand_rps: ``float64 (n_deployments,)`` request rate offered to each deployment, req/s.
        latency_ms: ``float64 (n_deployments,)`` windowed mean latency per deployment, ms; ``nan`` for a
            deployment with no request in the window (its latency is undefined, not zero).
        mean_latency_ms: request-weighted mean over all deployments in the window, ms.
        failed_rps: rate of requests that were offered but not served successfully, req/s.
        sla_violation_rate: fraction of the window's requests slower than the SLA, or ``None`` when the
            source cannot tell.
    """

    window_s: float
    requests: np.ndarray
    demand_rps: np.ndarray
    latency_ms: np.ndarray
    mean_latency_ms: float
    failed_rps: float
    sla_violation_rate: float | None


@runtime_checkable
class LatencySource(Protocol):
    """Measures windowed per-deployment latency and demand on a real system."""

    #: Deployment names, in the backend's index order.
    deployments: Sequence[str]

    def start(self) -> None:
        """Start (or confirm running) the workload at the beginning of an episode."""

    def mark(self) -> None:
        """Open a measurement window now."""

    def read(self) -> LatencyWindow:
        """Close the window opened by the last :meth:`mark` and return its measurements.

        Raises:
            BackendError: if no window is open, the data is missing, or the source is unreachable.
        """

    def close(self) -> None:
        """Release connections."""


def _weighted_mean(latency_ms: np.ndarray, requests: np.ndarray, what: str) -> float:
    total = float(requests.sum())
    if total <= 0:
        raise PermanentBackendError(
            f"{what}: no request was recorded in the measurement window, so latency is undefined; "
            "check that the workload is running and make stabilization_time longer than the "
            "workload's request interval"
        )
    mask = requests > 0
    return float(np.sum(latency_ms[mask] * requests[mask]) / total)


_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")


def is_object_id(value: str) -> bool:
    """Whether ``value`` is a MongoDB ObjectId string (24 hex digits), the test app's id format."""
    return isinstance(value, str) and _OBJECT_ID.fullmatch(value) is not None


# --------------------------------------------------------------------------------------------------
# The lwmecps test application
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _ExperimentCounters:
    requests: float
    latency_sum_ms: float
    offered_rps: float


@dataclass(frozen=True)
class _GroupSnapshot:
    t: float
    state: str
    experiments: dict[str, _ExperimentCounters]


class TestAppLatencySource:
    """Windowed latency from the lwmecps test application's client API.

    The test app (client on port 8001) runs one *experiment* per edge site: each tick it fires
    ``current_users`` requests every ``current_interval`` seconds at the site's server Service (with
    fail-over to the next sites) and stores each request that returned HTTP 200 within its timeout.
    ``GET /api/group_stats?group_id=`` returns, per experiment id, the cumulative ``requests_count``
    and ``average_latency`` (ms) plus the current load profile (``current_users``,
    ``current_interval``).

    Per deployment ``i`` (mapped to experiment ``e_i``) and window ``[t0, t1]``:

    * ``requests_i = n_1 - n_0`` (recorded requests in the window),
    * ``latency_ms_i = (avg_1 * n_1 - avg_0 * n_0) / requests_i`` (exact windowed mean of the stored
      latencies; ``nan`` if ``requests_i == 0``),
    * ``demand_rps_i``: the offered load ``current_users / current_interval`` of the profile slot in
      force, averaged over the two reads (trapezoid: a window may straddle two slots),
    * ``failed_rps = sum_i max(0, demand_rps_i - requests_i / window_s)``: offered requests the app
      did not record as served (failed, or cancelled after ``2 * timeout``). The app stores results in
      chunks every 5 s, so this estimate is noisy over windows shorter than ~30 s.
    * ``sla_violation_rate`` is ``None``: the API exposes no per-request latencies.

    Note the app's latencies are censored: requests slower than twice the client timeout are
    cancelled and not stored, so the mean under overload is biased low; ``failed_rps`` shows them.

    Args:
        base_url: the client API, e.g. ``"http://lwmecps-testapp-client.lwmecps-testapp:8001"``.
        group_id: the experiment group's id (a MongoDB ObjectId string).
        deployments: deployment names in index order.
        experiments: optional mapping deployment -> experiment id. Without it, each deployment is
            matched to the experiment whose first target host is the deployment's Service (the first
            DNS label of ``settings.hosts[0].host`` equals the deployment name), read once at the first
            :meth:`read` from ``GET /api/list_groups`` and ``GET /api/result_experiment``; a single
            deployment with a single experiment is matched directly. Anything ambiguous raises an
            error asking for this mapping.
        timeout_s: per-request timeout, seconds.
        retry: retry policy for transient failures.
        session: an optional ``requests.Session`` (tests inject one; default: a new session).
        clock: monotonic clock, seconds.
    """

    __test__ = False  # not a pytest test class despite the name

    def __init__(
        self,
        base_url: str,
        group_id: str,
        deployments: Sequence[str],
        *,
        experiments: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        session: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import requests

        if not isinstance(base_url, str) or not re.match(r"^https?://", base_url):
            raise ValueError(f"base_url must be an http(s) URL string, got {base_url!r}")
        if not isinstance(group_id, str) or not group_id:
            raise ValueError(f"group_id must be a non-empty string (the test app's group id), got {group_id!r}")
        warn_cleartext_credentials(base_url, "test app base_url", has_credentials=False)
        self.base_url = base_url.rstrip("/")
        self._where = redact_url(self.base_url)
        self.group_id = group_id
        self.deployments = list(deployments)
        if experiments is not None:
            if not isinstance(experiments, Mapping):
                raise TypeError(f"experiments must be a mapping deployment -> experiment id, got {experiments!r}")
            unknown = sorted(set(experiments) - set(self.deployments))
            missing = [d for d in self.deployments if d not in experiments]
            if unknown or missing:
                raise ValueError(
                    f"experiments must map every deployment {self.deployments} to an experiment id; "
                    f"missing {missing}, unknown {unknown}"
                )
            experiments = {d: str(experiments[d]) for d in self.deployments}
        self._experiments: dict[str, str] | None = experiments
        self.timeout_s = float(timeout_s)
        self.retry = retry or RetryPolicy()
        self._requests = requests
        self._session = session if session is not None else requests.Session()
        self._own_session = session is None
        self._clock = clock
        self._mark: _GroupSnapshot | None = None

    # -- HTTP -------------------------------------------------------------------------------------

    def _http(self, method: str, path: str, params: dict[str, str], what: str) -> Any:
        url = f"{self.base_url}{path}"
        shown = f"{self._where}{path}"  # credentials in the URL never reach a message

        def once() -> Any:
            try:
                resp = self._session.request(method, url, params=params, timeout=self.timeout_s)
            except (self._requests.ConnectionError, self._requests.Timeout) as exc:
                raise TransientBackendError(f"test app {what} ({method} {shown}): {redact(str(exc))}") from None
            except self._requests.RequestException as exc:
                raise PermanentBackendError(f"test app {what} ({method} {shown}): {redact(str(exc))}") from None
            body = redact(resp.text[:300])
            if resp.status_code >= 500 and "group_id" in params and not is_object_id(self.group_id):
                # the app parses group_id as a MongoDB ObjectId and answers a malformed one with 500:
                # that is a bad argument, which no retry can fix
                raise PermanentBackendError(
                    f"test app {what} ({method} {shown}) returned HTTP {resp.status_code} for group_id="
                    f"{self.group_id!r}, which is not a MongoDB ObjectId (24 hex digits, e.g. "
                    "'65f1c0ffee0000000000abcd'): pass the id the app returned when the group was created "
                    f"(GET /api/list_groups lists them); answer: {body}"
                )
            if resp.status_code in TRANSIENT_HTTP_STATUS:
                raise TransientBackendError(
                    f"test app {what} ({method} {shown}) returned HTTP {resp.status_code}: {body}"
                )
            if resp.status_code != 200:
                raise PermanentBackendError(
                    f"test app {what} ({method} {shown}, group_id={self.group_id!r}) returned HTTP "
                    f"{resp.status_code}: {body}"
                )
            try:
                return resp.json()
            except ValueError:
                raise PermanentBackendError(
                    f"test app {what} ({method} {shown}) returned a body that is not JSON: {body[:200]!r}"
                ) from None

        return self.retry.call(once)

    # -- protocol ---------------------------------------------------------------------------------

    def start(self) -> None:
        """``POST /api/manage_group?group_id=&state=start`` (a group already running is fine).

        Deployments are mapped to experiments at the first :meth:`read` (a new group has no results yet).

        Raises:
            PermanentBackendError: the group does not exist or is completed (the app answers 400/404:
                create a new group).
        """
        self._http("POST", "/api/manage_group", {"group_id": self.group_id, "state": "start"}, "manage_group start")
        self._mark = None

    def mark(self) -> None:
        self._mark = self._snapshot()

    def read(self) -> LatencyWindow:
        if self._mark is None:
            raise BackendError("TestAppLatencySource.read() called before mark(): no window is open")
        start, end = self._mark, self._snapshot()
        window_s = end.t - start.t
        if window_s <= 0:
            raise BackendError(f"measurement window must be > 0 s, got {window_s!r}")
        n = len(self.deployments)
        requests = np.zeros(n)
        latency = np.full(n, np.nan)
        demand = np.zeros(n)
        if self._experiments is None:
            self._experiments = self._discover_experiments()
        for i, dep in enumerate(self.deployments):
            exp = self._experiments[dep]
            c1 = end.experiments.get(exp)
            if c1 is None:
                raise PermanentBackendError(
                    f"test app group {self.group_id!r} reports no statistics for experiment {exp!r} "
                    f"(deployment {dep!r}); it has not stored any result yet or has finished its profiles "
                    f"(group state {end.state!r})"
                )
            c0 = start.experiments.get(exp, _ExperimentCounters(0.0, 0.0, c1.offered_rps))
            dn = c1.requests - c0.requests
            if dn < 0:
                raise PermanentBackendError(
                    f"test app experiment {exp!r} (deployment {dep!r}): requests_count went down from "
                    f"{c0.requests:g} to {c1.requests:g}; its results were reset during the episode"
                )
            requests[i] = dn
            if dn > 0:
                latency[i] = max(0.0, (c1.latency_sum_ms - c0.latency_sum_ms) / dn)
            demand[i] = 0.5 * (c0.offered_rps + c1.offered_rps)
        mean = _weighted_mean(latency, requests, f"test app group {self.group_id!r}")
        served_rps = requests / window_s
        failed = float(np.sum(np.maximum(0.0, demand - served_rps)))
        self._mark = end
        return LatencyWindow(window_s, requests, demand, latency, mean, failed, None)

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    # -- helpers ----------------------------------------------------------------------------------

    def _snapshot(self) -> _GroupSnapshot:
        data = self._http("GET", "/api/group_stats", {"group_id": self.group_id}, "group_stats")
        t = self._clock()
        if not isinstance(data, Mapping) or not isinstance(data.get("experiments_stats"), Mapping):
            raise PermanentBackendError(
                f"test app group_stats for group {self.group_id!r} has no 'experiments_stats' object: {str(data)[:300]}"
            )
        exps: dict[str, _ExperimentCounters] = {}
        for exp_id, st in data["experiments_stats"].items():
            try:
                n = float(st["requests_count"])
                avg = float(st["average_latency"])
                users = float(st["current_users"])
                interval = float(st["current_interval"])
            except (KeyError, TypeError, ValueError) as exc:
                raise PermanentBackendError(
                    f"test app group_stats: experiment {exp_id!r} lacks a numeric {exc} field: {str(st)[:300]}"
                ) from exc
            if not all(math.isfinite(v) for v in (n, avg, users, interval)) or n < 0 or avg < 0 or users < 0:
                raise PermanentBackendError(f"test app group_stats: experiment {exp_id!r} has invalid values: {st}")
            offered = users / interval if interval > 0 else 0.0
            exps[str(exp_id)] = _ExperimentCounters(n, avg * n, offered)
        if str(data.get("state", "")).lower() == "completed":
            raise PermanentBackendError(
                f"test app group {self.group_id!r} is COMPLETED: its load profiles have ended; create and "
                "start a new experiment group to continue"
            )
        return _GroupSnapshot(t, str(data.get("state", "")), exps)

    def _group_experiment_ids(self) -> list[str]:
        """The group's experiment ids from ``GET /api/list_groups`` (else those with results so far)."""
        groups = self._http("GET", "/api/list_groups", {}, "list_groups")
        for g in groups if isinstance(groups, list) else []:
            if isinstance(g, Mapping) and str(g.get("_id")) == self.group_id:
                return sorted(str(e) for e in g.get("experiment_ids") or [])
        return sorted(self._snapshot().experiments)

    def _discover_experiments(self) -> dict[str, str]:
        exp_ids = self._group_experiment_ids()
        if len(self.deployments) == 1 and len(exp_ids) == 1:
            return {self.deployments[0]: exp_ids[0]}
        mapping: dict[str, str] = {}
        for exp in exp_ids:
            doc = self._http("GET", "/api/result_experiment", {"experiment_id": exp}, "result_experiment")
            try:
                host = str(doc["settings"]["hosts"][0]["host"])
            except (KeyError, IndexError, TypeError):
                continue
            label = host.split(".", 1)[0]
            if label in self.deployments:
                if label in mapping:
                    raise PermanentBackendError(
                        f"experiments {mapping[label]!r} and {exp!r} both target deployment {label!r}; "
                        "set env_config['experiments'] = {deployment: experiment_id}"
                    )
                mapping[label] = exp
        missing = [d for d in self.deployments if d not in mapping]
        if missing:
            raise PermanentBackendError(
                f"cannot match deployments {missing} to experiments of test app group {self.group_id!r} "
                f"(its experiments: {exp_ids}; matched: {mapping}); set "
                "env_config['experiments'] = {deployment: experiment_id}"
            )
        return mapping


# --------------------------------------------------------------------------------------------------
# Prometheus
# --------------------------------------------------------------------------------------------------

#: Default label matchers selecting one deployment's pods (pods are named ``<deployment>-<rs hash>-<suffix>``).
#: Placeholders: ``{namespace}`` and ``{deployment}`` are filled with the PromQL-string-escaped names,
#: ``{deployment_re}`` with the name escaped as a RE2 literal too (for ``=~`` matchers).
DEFAULT_PROM_SELECTOR = 'namespace="{namespace}",pod=~"{deployment_re}-[a-z0-9]{{1,10}}-[a-z0-9]{{5}}"'


class PrometheusLatencySource:
    """Windowed latency from a Prometheus latency histogram (``<metric>_sum``, ``_count``, ``_bucket``).

    For deployment ``d`` with label matchers ``S = selector.format(namespace=..., deployment=d)`` and a
    window of ``W`` whole seconds (the measured window rounded up, at least ``min_window_s``) the
    PromQL evaluated at the end of the window is::

        requests:   sum(increase(<metric>_count{S}[Ws]))
        latency_ms: 1000 * sum(increase(<metric>_sum{S}[Ws])) / sum(increase(<metric>_count{S}[Ws]))
        demand_rps: requests / W
        failed_rps: sum over d of sum(increase(<metric>_count{S,<failed_matcher>}[Ws])) / W
        SLA:        sum by (le) (increase(<metric>_bucket{S}[Ws]))  (only if ``sla_ms`` is given)

    The histogram is assumed in **seconds** (Prometheus naming convention ``*_seconds``). An empty
    result for ``_count``/``_sum`` is missing data and raises; an empty result for the failed-request
    query means zero failures (a labelled counter only exists after its first increment). The SLA
    violation rate is ``1 - bucket(le == sla_s) / count`` summed over deployments; it is ``None`` if no
    bucket bound equals ``sla_ms / 1000`` exactly.

    Args:
        url: Prometheus base URL, e.g. ``"http://prometheus.monitoring:9090"``.
        deployments: deployment names in index order.
        namespace: their namespace (available as ``{namespace}`` in ``selector``).
        metric: histogram base name (default ``http_request_duration_seconds``).
        selector: label matchers with ``{namespace}`` and ``{deployment}`` placeholders.
        failed_matcher: extra matcher that selects failed requests (default ``status=~"5.."``).
        min_window_s: smallest range used in ``increase()``; keep it >= 2 scrape intervals.
        sla_ms: SLA threshold in ms for the violation rate, or ``None``.
        timeout_s: per-query timeout, seconds.
        retry: retry policy for transient failures.
        connection: an optional ``PrometheusConnect``-like object (tests inject one).
        clock: monotonic clock, seconds.
    """

    def __init__(
        self,
        url: str,
        deployments: Sequence[str],
        namespace: str,
        *,
        metric: str = "http_request_duration_seconds",
        selector: str = DEFAULT_PROM_SELECTOR,
        failed_matcher: str = 'status=~"5.."',
        min_window_s: float = 30.0,
        sla_ms: float | None = None,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        connection: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not isinstance(url, str) or not re.match(r"^https?://", url):
            raise ValueError(f"prometheus_url must be an http(s) URL string, got {url!r}")
        if not re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", str(metric)):
            raise ValueError(f"prometheus_metric must be a Prometheus metric name, got {metric!r}")
        if not isinstance(selector, str):
            raise TypeError(f"prometheus_selector must be a string, got {selector!r}")
        try:
            selector.format(namespace="x", deployment="x", deployment_re="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                "prometheus_selector may only use the placeholders {namespace}, {deployment} and "
                f"{{deployment_re}}, got {selector!r}"
            ) from exc
        warn_cleartext_credentials(url, "prometheus_url", has_credentials=False)
        self.url = url.rstrip("/")
        self._where = redact_url(self.url)
        self.deployments = list(deployments)
        self.namespace = namespace
        self.metric = metric
        self.selector = selector
        self.failed_matcher = failed_matcher
        self.min_window_s = float(min_window_s)
        self.sla_ms = None if sla_ms is None else float(sla_ms)
        self.timeout_s = float(timeout_s)
        self.retry = retry or RetryPolicy()
        self._clock = clock
        self._mark_t: float | None = None
        if connection is None:
            from prometheus_api_client import PrometheusConnect
            from urllib3.util.retry import Retry

            # No retries inside the client: this class retries transient failures itself.
            connection = PrometheusConnect(url=self.url, disable_ssl=False, retry=Retry(total=0), timeout=self.timeout_s)
        self._prom = connection

    def _matchers(self, deployment: str, extra: str = "") -> str:
        # names are escaped, never pasted: a quote or backslash in a name cannot change the query
        s = self.selector.format(namespace=promql_escape(self.namespace), deployment=promql_escape(deployment),
                                 deployment_re=promql_escape(promql_regex_literal(deployment)))
        return f"{s},{extra}" if extra else s

    def queries(self, window_s: int) -> dict[str, dict[str, str]]:
        """The PromQL sent for each deployment for a window of ``window_s`` seconds (for docs and tests)."""
        out: dict[str, dict[str, str]] = {}
        for d in self.deployments:
            s = self._matchers(d)
            q = {
                "count": f"sum(increase({self.metric}_count{{{s}}}[{window_s}s]))",
                "sum": f"sum(increase({self.metric}_sum{{{s}}}[{window_s}s]))",
                "failed": f"sum(increase({self.metric}_count{{{self._matchers(d, self.failed_matcher)}}}[{window_s}s]))",
            }
            if self.sla_ms is not None:
                q["buckets"] = f"sum by (le) (increase({self.metric}_bucket{{{s}}}[{window_s}s]))"
            out[d] = q
        return out

    def _query(self, promql: str) -> list:
        from requests import ConnectionError as ReqConnectionError
        from requests import RequestException, Timeout

        def once() -> list:
            try:
                return self._prom.custom_query(promql, timeout=self.timeout_s)
            except (ReqConnectionError, Timeout) as exc:
                raise TransientBackendError(f"Prometheus query {promql!r} at {self._where}: {redact(str(exc))}") from None
            except RequestException as exc:
                raise PermanentBackendError(f"Prometheus query {promql!r} at {self._where}: {redact(str(exc))}") from None
            except Exception as exc:  # PrometheusApiClientException carries the status in its text
                m = re.search(r"HTTP Status Code (\d+)", str(exc))
                if m and int(m.group(1)) in TRANSIENT_HTTP_STATUS:
                    raise TransientBackendError(f"Prometheus query {promql!r} at {self._where}: {redact(str(exc))}") from None
                raise PermanentBackendError(f"Prometheus query {promql!r} at {self._where}: {redact(str(exc))}") from None

        return self.retry.call(once)

    def _scalar(self, promql: str, deployment: str, *, empty_is_zero: bool = False) -> float:
        result = self._query(promql)
        if not result:
            if empty_is_zero:
                return 0.0
            raise PermanentBackendError(
                f"Prometheus returned no series for deployment {deployment!r}: {promql}; check "
                "prometheus_metric / prometheus_selector and that the pods are scraped"
            )
        try:
            v = float(result[0]["value"][1])
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise PermanentBackendError(f"Prometheus result for {promql!r} is malformed: {str(result)[:200]}") from exc
        if math.isnan(v):
            if empty_is_zero:
                return 0.0
            raise PermanentBackendError(f"Prometheus returned NaN for deployment {deployment!r}: {promql}")
        return v

    def start(self) -> None:
        self._mark_t = None

    def mark(self) -> None:
        self._mark_t = self._clock()

    def read(self) -> LatencyWindow:
        if self._mark_t is None:
            raise BackendError("PrometheusLatencySource.read() called before mark(): no window is open")
        elapsed = self._clock() - self._mark_t
        w = int(math.ceil(max(elapsed, self.min_window_s)))
        qs = self.queries(w)
        n = len(self.deployments)
        requests = np.zeros(n)
        latency = np.full(n, np.nan)
        failed = 0.0
        below_sla = 0.0
        sla_known = self.sla_ms is not None
        for i, d in enumerate(self.deployments):
            cnt = self._scalar(qs[d]["count"], d)
            requests[i] = max(0.0, cnt)
            if cnt > 0:
                latency[i] = 1000.0 * self._scalar(qs[d]["sum"], d) / cnt
            failed += self._scalar(qs[d]["failed"], d, empty_is_zero=True)
            if sla_known and cnt > 0:
                b = self._bucket_at(qs[d]["buckets"], self.sla_ms / 1000.0)
                if b is None:
                    sla_known = False
                else:
                    below_sla += b
        mean = _weighted_mean(latency, requests, f"Prometheus ({self.metric})")
        total = float(requests.sum())
        sla = min(1.0, max(0.0, 1.0 - below_sla / total)) if sla_known else None
        self._mark_t = self._clock()
        return LatencyWindow(float(w), requests, requests / w, latency, mean, failed / w, sla)

    def _bucket_at(self, promql: str, bound_s: float) -> float | None:
        for series in self._query(promql):
            try:
                le = float(series["metric"]["le"])
                v = float(series["value"][1])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if math.isclose(le, bound_s, rel_tol=1e-9):
                return v
        return None

    def close(self) -> None:
        close = getattr(self._prom, "close", None)
        if callable(close):
            close()
