"""The real faas_gym backend: an OpenFaaS function on Kubernetes, measured through Prometheus.

``apply(n)`` patches the function Deployment's ``scale`` subresource in the function
namespace (``openfaas-fn``) with the official ``kubernetes`` client, or, with
``scale_via="gateway"``, calls the OpenFaaS gateway's ``POST /system/scale-function/{name}``.
``advance(s)`` sleeps ``s`` seconds of wall-clock time. ``observe()`` reads the replica counts
and per-replica CPU/memory capacity from the Deployment (or the gateway's function status) and
everything else from Prometheus (gateway metrics and cAdvisor; the PromQL is in
:mod:`faas_gym.backends.promql` and tabulated in ``docs/faas_openfaas.md``).

Heavy dependencies (``kubernetes``, ``prometheus_api_client``, ``requests``, ``tenacity``) are
imported inside functions: importing this module costs nothing, constructing a backend needs
the ``k8s``/``prometheus`` extras.

Failures never turn into numbers: connection errors, timeouts and HTTP 408/409/429/5xx from
either API are retried with exponential backoff (bounded attempts), then re-raised as
:class:`~lwmecps_gym.core.backend.TransientBackendError`; anything retrying cannot fix (403,
404, a missing series, a malformed answer) raises
:class:`~lwmecps_gym.core.backend.PermanentBackendError` naming the call or PromQL query.

How each :class:`~faas_gym.backends.base.FaasMeasurement` field is measured (window ``w`` =
the wall-clock length of the last ``advance``, queries evaluated at its end minus
``evaluation_delay_s``):

=====================  ==========================================================================
field                  source
=====================  ==========================================================================
replicas               Deployment ``status.readyReplicas`` (gateway: ``availableReplicas``)
replicas_desired       Deployment ``spec.replicas`` (gateway: ``replicas``)
cpu_utilization        cAdvisor CPU cores used by the function's containers / (pods x CPU capacity)
memory_utilization     cAdvisor working set / (pods x memory capacity); capacity = limit (default)
                       or request, from the Deployment's pod template (gateway: function status)
response_time_ms       ``rate(gateway_functions_seconds_sum) / rate(..._count)`` x 1000, 2xx codes
request_rate_rps       ``rate(gateway_function_invocation_started)``
throughput_rps         ``rate(gateway_function_invocation_total{code=~"2.."})``
completed, dropped     ``increase(...invocation_total)`` for 2xx / non-2xx codes, rounded
arrived                ``increase(gateway_function_invocation_started)``, rounded
in_system              started - completed counters now (requests in flight at the gateway)
queue_length           ``max(0, in_system - replicas * max_inflight)`` if ``max_inflight`` is
                       given; else 0 (the synchronous OpenFaaS path has no queue, see docs)
cold_starts            function containers whose ``container_start_time_seconds`` is in the window
slo_violation_rate     1 - fraction of 2xx ``gateway_functions_seconds`` observations <= SLO
                       (bucket interpolation); ``None`` if nothing completed or the SLO is above
                       the last finite bucket
=====================  ==========================================================================
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from faas_gym.backends.base import FaasMeasurement
from faas_gym.backends.promql import FunctionRef, PrometheusQueries, Sample, fraction_at_most, queries
from lwmecps_gym.core.backend import BackendError, PermanentBackendError, TransientBackendError
from lwmecps_gym.core.redact import redact, redact_url, warn_cleartext_credentials
from lwmecps_gym.core.retry import TRANSIENT_HTTP_STATUS, with_retry
from lwmecps_gym.core.validation import check_choice, check_float, check_int, check_positive

DEFAULT_NAMESPACE = "openfaas-fn"

#: Options accepted by :meth:`OpenFaaSBackend.from_env_kwargs` besides the named arguments.
BACKEND_OPTIONS = frozenset({
    "timeout_s", "retry_attempts", "retry_initial_s", "retry_max_s", "utilization_basis",
    "cpu_capacity_cores", "memory_capacity_bytes", "rate_window_s", "max_inflight",
    "gateway_auth", "prometheus_headers", "evaluation_delay_s", "scrape_interval_s",
})

#: ``rate()``/``increase()`` need at least two samples in their range. Unless ``rate_window_s`` is
#: given, the range is ``max(window, RATE_WINDOW_SCRAPES x scrape interval)`` (Grafana's
#: ``$__rate_interval`` rule), so a control interval no longer than the scrape interval (the
#: default ``interval_s=15`` equals the OpenFaaS chart's 15 s scrape interval) still measures.
RATE_WINDOW_SCRAPES = 4
#: Scrape interval assumed when it cannot be measured at ``reset`` (the OpenFaaS chart's), s.
DEFAULT_SCRAPE_INTERVAL_S = 15.0


class MissingSamplesError(PermanentBackendError):
    """The function's counters exist but ``rate()`` over the window had fewer than two samples.

    Reading that as "no traffic" would report 0 req/s and no SLO violation while the function
    serves requests; the backend raises instead.
    """


@dataclass(frozen=True)
class DeploymentState:
    """What the orchestrator says about the function right now.

    Attributes:
        replicas_ready: replicas ready to serve.
        replicas_desired: replicas asked for.
        cpu_capacity_cores: per-replica CPU capacity (limit or request), cores; ``None`` if unset.
        memory_capacity_bytes: per-replica memory capacity (limit or request), bytes; ``None`` if unset.
    """

    replicas_ready: int
    replicas_desired: int
    cpu_capacity_cores: float | None
    memory_capacity_bytes: float | None


def _quantity(value: Any) -> float | None:
    if value is None:
        return None
    from kubernetes.utils import parse_quantity

    try:
        return float(parse_quantity(str(value)))
    except ValueError as exc:
        raise PermanentBackendError(f"cannot parse Kubernetes quantity {value!r}") from exc


# --------------------------------------------------------------------------------------------
# Scalers: Kubernetes scale subresource, or the OpenFaaS gateway
# --------------------------------------------------------------------------------------------


class KubernetesScaler:
    """Scale and read the function's Deployment through the Kubernetes API.

    Minimal RBAC in the function namespace: ``get`` on ``deployments`` and ``get``/``patch`` on
    ``deployments/scale`` (group ``apps``).

    Args:
        name, namespace: the Deployment.
        api_client: a ``kubernetes.client.ApiClient``; default: built from ``kubeconfig`` (a path),
            else in-cluster config, else the default kubeconfig, with urllib3 retries off
            (this class retries itself).
        basis: ``"limit"`` or ``"request"``: which container resource is the capacity.
        timeout_s: per-request timeout, s.
    """

    def __init__(self, name: str, namespace: str, *, api_client: Any = None, kubeconfig: str | None = None,
                 basis: str = "limit", timeout_s: float = 5.0, retry: tuple[int, float, float] = (4, 0.5, 4.0)):
        from kubernetes import client

        self.name, self.namespace, self.basis, self.timeout_s = name, namespace, basis, timeout_s
        if api_client is None:
            api_client = self._default_client(kubeconfig)
        self.apps = client.AppsV1Api(api_client)
        self._read = with_retry(*retry)(self._read_once)
        self._scale = with_retry(*retry)(self._scale_once)

    @staticmethod
    def _default_client(kubeconfig: str | None) -> Any:
        """A client with urllib3 retries off; the kubeconfig is never written back (``persist_config=False``).

        Raises:
            PermanentBackendError: the kubeconfig is missing, not YAML (naming file and line) or incomplete.
        """
        import yaml
        from kubernetes import client, config

        cfg = client.Configuration()
        where = kubeconfig or "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"
        try:
            if kubeconfig is not None:
                config.load_kube_config(config_file=kubeconfig, client_configuration=cfg, persist_config=False)
            else:
                try:
                    config.load_incluster_config(client_configuration=cfg)
                except config.ConfigException:
                    config.load_kube_config(client_configuration=cfg, persist_config=False)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
            raise PermanentBackendError(
                f"kubeconfig {where!r} is not valid YAML:{line} {getattr(exc, 'problem', None) or type(exc).__name__}"
            ) from None
        except (config.ConfigException, OSError, TypeError, ValueError, KeyError, AttributeError) as exc:
            raise PermanentBackendError(
                f"cannot configure the Kubernetes client from {where!r}: {type(exc).__name__}: {redact(str(exc))}"
            ) from None
        cfg.retries = 0
        return client.ApiClient(cfg)

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        try:
            return fn()
        except ApiException as exc:
            msg = (f"Kubernetes API {what} for deployment {self.namespace}/{self.name} failed: "
                   f"HTTP {exc.status} {exc.reason}")
            if exc.status in TRANSIENT_HTTP_STATUS:
                raise TransientBackendError(msg) from exc
            if exc.status == 404:
                msg += " (no such deployment: check function_name and namespace)"
            elif exc.status in (400, 422):
                msg += " (the API server rejected the request as invalid)"
            elif exc.status in (401, 403):
                msg += (" (RBAC: needs get on deployments and get/patch on deployments/scale in "
                        f"namespace {self.namespace})")
            raise PermanentBackendError(msg) from exc
        except (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError) as exc:
            raise TransientBackendError(
                f"Kubernetes API {what} for deployment {self.namespace}/{self.name} unreachable: {redact(str(exc))}"
            ) from None

    def _read_once(self) -> DeploymentState:
        dep = self._call("read", lambda: self.apps.read_namespaced_deployment(
            self.name, self.namespace, _request_timeout=self.timeout_s))
        try:
            containers = dep.spec.template.spec.containers
            desired = int(dep.spec.replicas if dep.spec.replicas is not None else 1)
            ready = int(dep.status.ready_replicas or 0) if dep.status is not None else 0
        except AttributeError as exc:
            raise PermanentBackendError(f"deployment {self.namespace}/{self.name} has no pod template") from exc
        named = [c for c in containers if c.name == self.name]
        if not named and len(containers) == 1:
            named = list(containers)
        if len(named) != 1:
            raise PermanentBackendError(
                f"deployment {self.namespace}/{self.name}: cannot tell which of containers "
                f"{[c.name for c in containers]} is the function (expected one named {self.name!r})")
        res = named[0].resources
        values = (res.limits if self.basis == "limit" else res.requests) if res is not None else None
        values = values or {}
        return DeploymentState(ready, desired, _quantity(values.get("cpu")), _quantity(values.get("memory")))

    def _scale_once(self, replicas: int) -> None:
        self._call("patch scale", lambda: self.apps.patch_namespaced_deployment_scale(
            self.name, self.namespace, {"spec": {"replicas": int(replicas)}}, _request_timeout=self.timeout_s))

    def read(self) -> DeploymentState:
        return self._read()

    def scale(self, replicas: int) -> None:
        self._scale(replicas)

    def close(self) -> None:
        self.apps.api_client.close()


class GatewayScaler:
    """Scale and read the function through the OpenFaaS gateway's REST API.

    ``POST {gateway}/system/scale-function/{name}?namespace={ns}`` with JSON
    ``{"serviceName": name, "replicas": n, "namespace": ns}`` (faas-provider ``ScaleServiceRequest``);
    ``GET {gateway}/system/function/{name}?namespace={ns}`` for ``replicas``,
    ``availableReplicas``, ``limits`` and ``requests``. The gateway needs basic auth
    (``gateway_auth=("admin", password)``).
    """

    def __init__(self, name: str, namespace: str, gateway_url: str, *, auth: tuple[str, str] | None = None,
                 basis: str = "limit", timeout_s: float = 5.0, retry: tuple[int, float, float] = (4, 0.5, 4.0)):
        import requests

        self.name, self.namespace, self.basis, self.timeout_s = name, namespace, basis, timeout_s
        self.base = gateway_url.rstrip("/")
        self.where = redact_url(self.base)
        self.session = requests.Session()
        if auth is not None:
            if (not isinstance(auth, (tuple, list)) or len(auth) != 2
                    or not all(isinstance(x, str) for x in auth)):
                raise TypeError("gateway_auth must be a (user, password) pair of strings")
            self.session.auth = tuple(auth)
        warn_cleartext_credentials(gateway_url, "gateway_auth (basic auth)", has_credentials=auth is not None)
        self._read = with_retry(*retry)(self._read_once)
        self._scale = with_retry(*retry)(self._scale_once)

    def _request(self, method: str, path: str, **kw: Any) -> Any:
        import requests

        url = self.base + path
        shown = self.where + path  # credentials in the URL never reach a message
        try:
            resp = self.session.request(method, url, params={"namespace": self.namespace},
                                        timeout=self.timeout_s, **kw)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise TransientBackendError(f"OpenFaaS gateway {method} {shown} unreachable: {redact(str(exc))}") from None
        body = redact(resp.text[:200])
        if resp.status_code in TRANSIENT_HTTP_STATUS:
            raise TransientBackendError(f"OpenFaaS gateway {method} {shown}: HTTP {resp.status_code} {body}")
        if resp.status_code >= 400:
            hint = {401: " (gateway_auth missing or wrong)", 403: " (gateway_auth lacks the permission)",
                    404: " (no such function in this namespace)"}
            raise PermanentBackendError(f"OpenFaaS gateway {method} {shown}: HTTP {resp.status_code}"
                                        f"{hint.get(resp.status_code, '')} {body}")
        return resp

    def _read_once(self) -> DeploymentState:
        resp = self._request("GET", f"/system/function/{self.name}")
        try:
            body = resp.json()
            desired, ready = int(body["replicas"]), int(body.get("availableReplicas") or 0)
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentBackendError(
                f"OpenFaaS gateway sent a malformed function status: {redact(resp.text[:200])}") from exc
        values = body.get("limits" if self.basis == "limit" else "requests") or {}
        return DeploymentState(ready, desired, _quantity(values.get("cpu")), _quantity(values.get("memory")))

    def _scale_once(self, replicas: int) -> None:
        self._request("POST", f"/system/scale-function/{self.name}",
                      json={"serviceName": self.name, "replicas": int(replicas), "namespace": self.namespace})

    def read(self) -> DeploymentState:
        return self._read()

    def scale(self, replicas: int) -> None:
        self._scale(replicas)

    def close(self) -> None:
        self.session.close()


# --------------------------------------------------------------------------------------------
# The backend
# --------------------------------------------------------------------------------------------


class OpenFaaSBackend:
    """A :class:`~faas_gym.backends.base.FaasBackend` on a real OpenFaaS function.

    Build it with :meth:`from_env_kwargs` (what ``gym.make(..., backend="openfaas")`` does) or
    directly from a scaler and a :class:`~faas_gym.backends.promql.PrometheusQueries`.

    Args:
        function_name: the OpenFaaS function = Deployment = container name.
        namespace: the function namespace.
        scaler: a :class:`KubernetesScaler` or :class:`GatewayScaler` (anything with
            ``read() -> DeploymentState``, ``scale(n)``, ``close()``).
        prometheus: the query client.
        slo_ms: response-time SLO, ms (for ``slo_violation_rate``).
        min_replicas, max_replicas: the range ``apply`` accepts.
        rate_window_s: PromQL range for ``rate``/``increase``; default: the longer of the last
            ``advance`` and ``RATE_WINDOW_SCRAPES`` (4) scrape intervals (counts are then scaled to
            the window). Must cover at least two scrape intervals (checked at :meth:`reset`).
        scrape_interval_s: Prometheus' scrape interval of the gateway, s; default: measured at
            :meth:`reset` from the raw samples of ``gateway_service_count`` (median gap over the
            last 120 s), else ``DEFAULT_SCRAPE_INTERVAL_S`` (15 s, the OpenFaaS chart's).
        evaluation_delay_s: evaluate the queries this long before the end of the window (the
            window shifts back with it), so that the scrape closing the window is already ingested;
            without it, a last sample older than 1.1 scrape intervals makes ``rate()`` extrapolate
            only half an interval and under-read. One or two scrape intervals is a good value.
        max_inflight: per-replica concurrency limit of the watchdog (``max_inflight``), used for
            ``queue_length``; ``None`` if unlimited/unknown.
        cpu_capacity_cores, memory_capacity_bytes: override the per-replica capacity read from
            the Deployment (needed when the container sets no limit/request).
        clock, sleep: wall clock (Unix s) and sleep function.

    Raises:
        ValueError / TypeError: bad arguments. BackendError subclasses at run time (see module doc).
    """

    def __init__(
        self,
        *,
        function_name: str,
        namespace: str,
        scaler: Any,
        prometheus: PrometheusQueries,
        slo_ms: float,
        min_replicas: int,
        max_replicas: int,
        rate_window_s: float | None = None,
        evaluation_delay_s: float = 0.0,
        max_inflight: int | None = None,
        scrape_interval_s: float | None = None,
        cpu_capacity_cores: float | None = None,
        memory_capacity_bytes: float | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.fn = FunctionRef(function_name, namespace)
        self.scaler = scaler
        self.prometheus = prometheus
        self.slo_ms = check_positive("slo_ms", slo_ms)
        self.min_replicas = check_int("min_replicas", min_replicas, low=0)
        self.max_replicas = check_int("max_replicas", max_replicas, low=max(1, self.min_replicas))
        self.rate_window_s = None if rate_window_s is None else check_positive("rate_window_s", rate_window_s)
        self.scrape_interval_s = (None if scrape_interval_s is None
                                  else check_positive("scrape_interval_s", scrape_interval_s))
        #: the scrape interval in use (given, or measured), s; ``None`` until measured
        self.scrape_interval: float | None = self.scrape_interval_s
        self.evaluation_delay_s = check_float("evaluation_delay_s", evaluation_delay_s, low=0.0)
        self.max_inflight = None if max_inflight is None else check_int("max_inflight", max_inflight, low=1)
        self.cpu_capacity_cores = (None if cpu_capacity_cores is None
                                   else check_positive("cpu_capacity_cores", cpu_capacity_cores))
        self.memory_capacity_bytes = (None if memory_capacity_bytes is None
                                      else check_positive("memory_capacity_bytes", memory_capacity_bytes))
        self._clock, self._sleep = clock, sleep
        self._t0: float | None = None
        self._window: tuple[float, float] | None = None
        self._applied: int | None = None
        self._closed = False

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_env_kwargs(
        cls,
        *,
        function_name: str,
        namespace: str = DEFAULT_NAMESPACE,
        sample_interval_s: float,
        slo_ms: float,
        min_replicas: int,
        max_replicas: int,
        prometheus_url: str = "http://127.0.0.1:9090",
        scale_via: str = "kubernetes",
        gateway_url: str | None = None,
        kubeconfig: str | None = None,
        api_client: Any = None,
        prometheus: Any = None,
        **opts: Any,
    ) -> OpenFaaSBackend:
        """Build the backend from env-level arguments.

        Args:
            function_name: OpenFaaS function name (= Deployment name), a DNS-1123 name.
            namespace: function namespace.
            sample_interval_s: the env's control interval, s (the default ``rate_window_s``
                floor check: it must be positive).
            slo_ms: response-time SLO, ms.
            min_replicas, max_replicas: replica range.
            prometheus_url: Prometheus base URL (ignored if ``prometheus`` is given).
            scale_via: ``"kubernetes"`` (Deployment scale subresource) or ``"gateway"``.
            gateway_url: OpenFaaS gateway URL, required for ``scale_via="gateway"``.
            kubeconfig: kubeconfig path (``scale_via="kubernetes"``, no ``api_client``).
            api_client: a ready ``kubernetes.client.ApiClient``.
            prometheus: a ready ``PrometheusConnect`` to use instead of building one.
            **opts: any of :data:`BACKEND_OPTIONS`: ``timeout_s`` (5), ``retry_attempts`` (4),
                ``retry_initial_s`` (0.5), ``retry_max_s`` (4), ``utilization_basis``
                (``"limit"``/``"request"``), ``cpu_capacity_cores``, ``memory_capacity_bytes``,
                ``rate_window_s``, ``evaluation_delay_s`` (0), ``max_inflight``,
                ``gateway_auth`` (user, password), ``prometheus_headers``.

        Raises:
            ValueError / TypeError: unknown option, bad value, or a missing ``gateway_url``.
        """
        unknown = sorted(set(opts) - BACKEND_OPTIONS)
        if unknown:
            raise ValueError(f"unknown openfaas backend option(s) {unknown}; allowed: {sorted(BACKEND_OPTIONS)}")
        _check_name("function_name", function_name)
        _check_name("namespace", namespace)
        check_positive("sample_interval_s", sample_interval_s)
        check_choice("scale_via", scale_via, ("kubernetes", "gateway"))
        basis = check_choice("utilization_basis", opts.get("utilization_basis", "limit"), ("limit", "request"))
        timeout_s = check_positive("timeout_s", opts.get("timeout_s", 5.0))
        retry = (check_int("retry_attempts", opts.get("retry_attempts", 4), low=1),
                 check_float("retry_initial_s", opts.get("retry_initial_s", 0.5), low=0.0),
                 check_float("retry_max_s", opts.get("retry_max_s", 4.0), low=0.0))
        if scale_via == "gateway":
            if not gateway_url:
                raise ValueError("gateway_url is required when scale_via='gateway'")
            scaler: Any = GatewayScaler(function_name, namespace, gateway_url, auth=opts.get("gateway_auth"),
                                        basis=basis, timeout_s=timeout_s, retry=retry)
        else:
            scaler = KubernetesScaler(function_name, namespace, api_client=api_client, kubeconfig=kubeconfig,
                                      basis=basis, timeout_s=timeout_s, retry=retry)
        prom = PrometheusQueries(prometheus_url, timeout_s=timeout_s, retry_attempts=retry[0],
                                 retry_initial_s=retry[1], retry_max_s=retry[2], client=prometheus,
                                 headers=opts.get("prometheus_headers"))
        return cls(function_name=function_name, namespace=namespace, scaler=scaler, prometheus=prom,
                   slo_ms=slo_ms, min_replicas=min_replicas, max_replicas=max_replicas,
                   rate_window_s=opts.get("rate_window_s"), max_inflight=opts.get("max_inflight"),
                   scrape_interval_s=opts.get("scrape_interval_s"),
                   evaluation_delay_s=opts.get("evaluation_delay_s", 0.0),
                   cpu_capacity_cores=opts.get("cpu_capacity_cores"),
                   memory_capacity_bytes=opts.get("memory_capacity_bytes"))

    # -- protocol -----------------------------------------------------------------------------

    def reset(self, seed: int | None = None) -> None:
        """Re-read the Deployment and check that Prometheus knows the function.

        ``seed`` is accepted for the protocol and ignored: the real world is not seedable.
        Raises ``PermanentBackendError`` if the Deployment or the gateway series are missing.
        """
        self._check_open()
        self.scaler.read()
        self.prometheus.scalar(queries(self.fn, 60.0)["service_count"], missing=self._unknown_function_hint)
        if self.scrape_interval_s is None:
            self.scrape_interval = self._measure_scrape_interval(final=False)
        if (self.rate_window_s is not None and self.scrape_interval is not None
                and self.rate_window_s < 2.0 * self.scrape_interval):
            raise ValueError(
                f"rate_window_s must be >= 2 scrape intervals (2 x {self.scrape_interval:g} s) so that rate() "
                f"has two samples, got {self.rate_window_s!r}; leave it unset to choose it automatically")
        self._t0 = self._clock()
        self._window = None
        self._applied = None

    def apply(self, command: int) -> None:
        """Set the Deployment's ``spec.replicas`` to ``command`` replicas (in ``[min_replicas, max_replicas]``).

        The count this backend applied last (since :meth:`reset`) is not sent again.
        """
        self._check_open()
        n = check_int("replicas", command, low=self.min_replicas, high=self.max_replicas)
        if n == self._applied:
            return
        self.scaler.scale(n)
        self._applied = n

    def advance(self, seconds: float) -> None:
        """Sleep ``seconds`` of wall-clock time; the next :meth:`observe` covers exactly this window."""
        self._check_open()
        seconds = check_positive("seconds", seconds)
        if self._t0 is None:
            raise BackendError("call reset() before advance()")
        start = self._clock()
        self._sleep(seconds)
        self._window = (start, self._clock())

    def observe(self) -> FaasMeasurement:
        """Measure the last ``advance`` window (see the module docstring for each field)."""
        self._check_open()
        if self._window is None or self._t0 is None:
            raise BackendError("observe() needs a window: call reset() and advance() first")
        start, end = self._window
        window_s = end - start
        rate_w = self.rate_window_for(window_s)
        # counts are per control window: increase() over a longer range is scaled down to it
        count_scale = window_s / rate_w
        q = queries(self.fn, rate_w)
        at = end - self.evaluation_delay_s
        state = self.scaler.read()

        # ---- gateway: completions, arrivals, latency --------------------------------------
        rate_by_code = self.prometheus.vector(q["completed_rate_by_code"], at)
        inc_by_code = self.prometheus.vector(q["completed_increase_by_code"], at)
        started_rate = self.prometheus.vector(q["started_rate"], at)
        known = bool(rate_by_code or started_rate)
        if not known:
            if self.prometheus.vector(q["invocation_series"], at):
                # the counters exist, but rate() found < 2 samples: unknown, not idle
                raise MissingSamplesError(
                    f"the invocation counters of {self.fn.gateway_label!r} exist but rate() over "
                    f"{rate_w:g} s returned no series (fewer than two samples: scrape interval "
                    f"{'unknown' if self.scrape_interval is None else format(self.scrape_interval, 'g')} s); "
                    "the request rate is unknown, not 0. Use a longer "
                    "rate_window_s or interval_s, or check that the gateway is being scraped "
                    f"({q['completed_rate_by_code']!r})")
            # No invocation series at all: a real zero only if the gateway knows the function.
            self.prometheus.scalar(q["service_count"], at, missing=lambda: (
                f"neither {q['completed_rate_by_code']!r} nor {q['started_rate']!r} returned series, "
                + self._unknown_function_hint()))
        ok_rps = sum(s.value for s in rate_by_code if _is_2xx(s))
        ok_n = count_scale * sum(s.value for s in inc_by_code if _is_2xx(s))
        bad_n = count_scale * sum(s.value for s in inc_by_code if not _is_2xx(s))
        all_rps = sum(s.value for s in rate_by_code)
        started_inc = self.prometheus.vector(q["started_increase"], at) if started_rate else []
        if started_rate:
            request_rate = started_rate[0].value
            arrived: int | None = _count(count_scale * started_inc[0].value) if started_inc else None
        else:
            # no started series: either the function had no invocation at all (arrivals are a measured
            # 0) or the gateway predates the started counter (arrivals unobservable: use completions)
            request_rate, arrived = all_rps, (None if known else 0)

        response_time_ms = 0.0
        slo_violation: float | None = None
        if ok_rps > 0.0:
            lat_sum = self.prometheus.scalar(q["latency_sum_rate"], at)
            lat_cnt = self.prometheus.scalar(q["latency_count_rate"], at)
            if not lat_cnt > 0.0 or not math.isfinite(lat_sum / lat_cnt):
                raise PermanentBackendError(
                    f"invocations were counted but {q['latency_count_rate']!r} is {lat_cnt}: "
                    "the gateway_functions_seconds histogram is inconsistent")
            response_time_ms = 1000.0 * lat_sum / lat_cnt
            buckets = self.prometheus.vector(q["latency_buckets"], at)
            if not buckets:
                raise PermanentBackendError(f"no series for query {q['latency_buckets']!r}")
            frac = fraction_at_most([(_le(s), s.value) for s in buckets], self.slo_ms / 1000.0)
            slo_violation = None if frac is None else 1.0 - frac

        in_flight_v = self.prometheus.vector(q["in_flight"], at) if started_rate else []
        in_system = max(0, _count(in_flight_v[0].value)) if in_flight_v else (None if started_rate or known else 0)
        ready = state.replicas_ready
        if self.max_inflight is not None and in_system is not None:
            queue_length = max(0, in_system - ready * self.max_inflight)
        else:
            queue_length = 0

        # ---- cAdvisor: CPU, memory, cold starts ------------------------------------------
        cpu_util, mem_util, cold = self._resources(q, at, window_s, state)

        return FaasMeasurement(
            time_s=float(end - self._t0),
            window_s=float(window_s),
            replicas=int(ready),
            replicas_desired=int(state.replicas_desired),
            cpu_utilization=cpu_util,
            memory_utilization=mem_util,
            response_time_ms=float(response_time_ms),
            request_rate_rps=float(request_rate),
            throughput_rps=float(ok_rps),
            cold_starts=int(cold),
            queue_length=int(queue_length),
            dropped=_count(bad_n),
            slo_violation_rate=slo_violation,
            arrived=arrived,
            completed=_count(ok_n),
            in_system=in_system,
        )

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.scaler.close()
        self.prometheus.close()

    # -- helpers ------------------------------------------------------------------------------

    def _resources(self, q: dict[str, str], at: float, window_s: float,
                   state: DeploymentState) -> tuple[float, float, int]:
        cpu = self.prometheus.vector(q["cpu_cores_by_pod"], at)
        mem = self.prometheus.vector(q["memory_bytes_by_pod"], at)
        starts = self.prometheus.vector(q["container_start_time"], at)
        if not cpu or not mem or not starts:
            if state.replicas_ready == 0:
                # nothing ready to measure (scaled to zero, or every replica still starting)
                return 0.0, 0.0, sum(1 for s in starts if at - window_s < s.value <= at)
            missing = [k for k, v in (("cpu_cores_by_pod", cpu), ("memory_bytes_by_pod", mem),
                                      ("container_start_time", starts)) if not v]
            raise PermanentBackendError(
                f"no cAdvisor series for {', '.join(repr(q[k]) for k in missing)} although the deployment "
                f"has {state.replicas_ready} ready replica(s): is the kubelet's /metrics/cadvisor scraped, "
                f"and are pods named {self.fn.name}-<hash>-<id> with container {self.fn.name!r}?")
        cpu_cap = self.cpu_capacity_cores or state.cpu_capacity_cores
        mem_cap = self.memory_capacity_bytes or state.memory_capacity_bytes
        if cpu_cap is None or mem_cap is None:
            which = "cpu" if cpu_cap is None else "memory"
            raise PermanentBackendError(
                f"the function container sets no {which} capacity ({self.scaler.basis}); set "
                f"resources.{self.scaler.basis}s.{which} on the function or pass "
                f"{'cpu_capacity_cores' if which == 'cpu' else 'memory_capacity_bytes'}=")
        # Pod presence: pods that existed for part of the window weigh by their sample count.
        presence = self.prometheus.vector(q["pod_samples"], at)
        weights = _presence_weights(presence)
        pods_equiv = sum(weights.get(s.labels.get("pod", ""), 1.0) for s in mem)
        cpu_cores = sum(s.value for s in cpu)
        mem_bytes = sum(s.value * weights.get(s.labels.get("pod", ""), 1.0) for s in mem)
        cpu_util = cpu_cores / (pods_equiv * cpu_cap)
        mem_util = mem_bytes / (pods_equiv * mem_cap)
        lo = at - window_s
        cold = sum(1 for s in starts if lo < s.value <= at)
        return float(cpu_util), float(mem_util), cold

    def rate_window_for(self, window_s: float) -> float:
        """The ``rate()``/``increase()`` range used for a control window of ``window_s`` seconds, s."""
        if self.rate_window_s is not None:
            return self.rate_window_s
        if self.scrape_interval is None:
            self.scrape_interval = self._measure_scrape_interval(final=True)
        return max(window_s, RATE_WINDOW_SCRAPES * self.scrape_interval)

    def _measure_scrape_interval(self, *, final: bool) -> float | None:
        """Median gap of ``gateway_service_count``'s raw samples; if under two samples: ``None``, or the
        default (15 s) when ``final`` (a function that has just appeared is measured at the first observe)."""
        measured = self.prometheus.scrape_interval_s(self.fn.gateway("gateway_service_count"))
        if measured is None and final:
            return DEFAULT_SCRAPE_INTERVAL_S
        return measured

    def _unknown_function_hint(self) -> str:
        return (f"the gateway does not report function_name={self.fn.gateway_label!r}: is the function "
                f"deployed in namespace {self.fn.namespace!r} and is the gateway scraped by this Prometheus?")

    def _check_open(self) -> None:
        if self._closed:
            raise BackendError("the backend is closed")


def _is_2xx(s: Sample) -> bool:
    return s.labels.get("code", "").startswith("2")


def _le(s: Sample) -> float:
    try:
        return float(s.labels["le"])
    except (KeyError, ValueError) as exc:
        raise PermanentBackendError(f"histogram bucket without a numeric le label: {s.labels}") from exc


def _count(x: float) -> int:
    """Round an ``increase()`` (extrapolated, so fractional) to a request count."""
    if not math.isfinite(x):
        raise PermanentBackendError(f"Prometheus returned a non-finite count {x!r}")
    return int(round(x))


def _presence_weights(samples: list[Sample]) -> dict[str, float]:
    """Fraction of the window each pod was present, from per-pod sample counts (max count = 1)."""
    if not samples:
        return {}
    top = max(s.value for s in samples)
    return {s.labels.get("pod", ""): (s.value / top if top > 0 else 1.0) for s in samples}


def _check_name(name: str, value: Any) -> str:
    import re

    if not isinstance(value, str) or not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*",
                                                      value) or len(value) > 253:
        raise ValueError(f"{name} must be a Kubernetes DNS-1123 name (lower-case alphanumerics, '-', '.'), "
                         f"got {value!r}")
    return value
