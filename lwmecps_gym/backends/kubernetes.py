"""The real-cluster backend of the MEC envs: the official ``kubernetes`` client plus a latency source.

:class:`KubernetesBackend` implements :class:`lwmecps_gym.backends.base.ClusterBackend`:

* ``scale`` sets ``spec.replicas`` through the **scale subresource** (``PATCH
  /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale`` with ``{"spec": {"replicas": n}}``),
  including ``n = 0`` (upstream skipped the call for 0 and let env and cluster drift apart).
* ``place`` moves a deployment by patching its pod template's ``nodeSelector`` (default) or its
  required ``nodeAffinity`` on the node's ``kubernetes.io/hostname`` label; the rolling update then
  recreates the pods on that node.
* ``advance(seconds)`` waits until every deployment touched since the last ``advance`` has rolled out
  (``status.observedGeneration >= metadata.generation`` and updated, total and ready replicas all equal
  to ``spec.replicas``) within ``rollout_timeout_s``, then waits ``seconds`` (the stabilization time).
* ``observe`` reads each deployment's replicas, counts its **Running and Ready** pods per node (listed
  with the deployment's own label selector and owned by one of its ReplicaSets; a fresh count per
  deployment and node, unlike upstream's counter shared across nodes), and reads the windowed latency
  from the latency source (:mod:`lwmecps_gym.backends.latency`).

Transient API failures (HTTP 408/409/429/5xx, connection errors, timeouts) are retried with exponential
backoff; permanent ones (401/403/404/422, ...) raise
:class:`~lwmecps_gym.core.backend.PermanentBackendError` naming the API call and the deployment. The
backend never makes up an observation: missing data raises.

The ``kubernetes`` package is imported only inside this module, and this module is imported only when an
env is built with ``backend="kubernetes"``. Minimal RBAC: ``docs/rbac/lwmecps-rbac.yaml``.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from lwmecps_gym.backends.base import ClusterMeasurement, PlaceCommand, ScaleCommand
from lwmecps_gym.backends.latency import (
    DEFAULT_PROM_SELECTOR,
    LatencySource,
    PrometheusLatencySource,
    RetryPolicy,
    TestAppLatencySource,
)
from lwmecps_gym.core.backend import BackendError, PermanentBackendError, TransientBackendError
from lwmecps_gym.core.redact import redact
from lwmecps_gym.core.retry import TRANSIENT_HTTP_STATUS
from lwmecps_gym.core.validation import check_choice, check_float, check_int, check_keys

__all__ = [
    "HOSTNAME_LABEL",
    "KubernetesBackend",
    "KubernetesConfig",
    "RolloutTimeoutError",
    "UnknownNodeError",
    "label_selector_string",
]

#: The well-known node label that placement patches select on.
HOSTNAME_LABEL = "kubernetes.io/hostname"


class UnknownNodeError(PermanentBackendError, ValueError):
    """A node name given by the user does not exist in the cluster."""


class RolloutTimeoutError(BackendError):
    """A deployment did not finish rolling out within ``rollout_timeout_s``."""


@dataclass(frozen=True)
class KubernetesConfig:
    """The ``env_config`` keys understood by the Kubernetes backend (all optional except as noted).

    Attributes:
        base_url: test-app client API URL; required when ``latency_source="testapp"``.
        stabilization_time: seconds to wait after the rollout before measuring (>= 0; default 10).
        latency_source: ``"testapp"`` or ``"prometheus"``; default ``"testapp"`` if ``base_url`` is
            set, else ``"prometheus"`` if ``prometheus_url`` is set.
        experiments: mapping deployment -> test-app experiment id (default: matched by Service host).
        prometheus_url: Prometheus base URL; required when ``latency_source="prometheus"``.
        prometheus_metric: latency histogram base name, seconds (default ``http_request_duration_seconds``).
        prometheus_selector: label matchers with ``{namespace}``/``{deployment}`` placeholders.
        prometheus_failed_matcher: extra matcher selecting failed requests (default ``status=~"5.."``).
        prometheus_min_window_s: smallest ``increase()`` range, seconds (default 30).
        kubeconfig: kubeconfig path (default: in-cluster config, else ``$KUBECONFIG`` or ``~/.kube/config``).
        context: kubeconfig context name (default: current context).
        placement: ``"node_selector"`` (patch ``nodeSelector``) or ``"node_affinity"`` (replace the
            required node affinity terms).
        rollout_timeout_s: maximal wait for a rollout, seconds (default 300).
        poll_interval_s: rollout polling period, seconds (default 2).
        request_timeout_s: timeout of one Kubernetes API request, seconds (default 30).
        http_timeout_s: timeout of one latency-source request, seconds (default 10).
        retry_attempts: tries per call for transient failures (default 5).
        retry_initial_s: first backoff, seconds (default 0.5).
        retry_max_s: longest backoff, seconds (default 8).
        reset_replicas: replicas set on every deployment at ``reset`` (int, or mapping deployment -> int),
            so episodes start from a known state; default ``None`` leaves the cluster as it is.
        measure_from: ``"advance_start"`` (the window includes the rollout, so disruptive actions cost
            latency, as in the simulator) or ``"rollout_ready"`` (the window starts after the rollout).
    """

    base_url: str | None = None
    stabilization_time: float = 10.0
    latency_source: str | None = None
    experiments: Mapping[str, str] | None = None
    prometheus_url: str | None = None
    prometheus_metric: str = "http_request_duration_seconds"
    prometheus_selector: str = DEFAULT_PROM_SELECTOR
    prometheus_failed_matcher: str = 'status=~"5.."'
    prometheus_min_window_s: float = 30.0
    kubeconfig: str | None = None
    context: str | None = None
    placement: str = "node_selector"
    rollout_timeout_s: float = 300.0
    poll_interval_s: float = 2.0
    request_timeout_s: float = 30.0
    http_timeout_s: float = 10.0
    retry_attempts: int = 5
    retry_initial_s: float = 0.5
    retry_max_s: float = 8.0
    reset_replicas: int | Mapping[str, int] | None = None
    measure_from: str = "advance_start"

    @classmethod
    def from_mapping(cls, env_config: Mapping[str, Any] | None) -> KubernetesConfig:
        """Validate ``env_config`` and return a config.

        Raises:
            TypeError / ValueError: unknown keys, wrong types or out-of-range values, naming the key.
        """
        if env_config is None:
            env_config = {}
        allowed = [f.name for f in fields(cls)]
        cfg = check_keys("env_config", env_config, allowed=allowed)
        out: dict[str, Any] = {}
        for key in ("base_url", "prometheus_url", "kubeconfig", "context"):
            if cfg.get(key) is not None:
                if not isinstance(cfg[key], str) or not cfg[key]:
                    raise TypeError(f"env_config['{key}'] must be a non-empty string, got {cfg[key]!r}")
                out[key] = cfg[key]
        for key in ("base_url", "prometheus_url"):
            if key in out and not out[key].startswith(("http://", "https://")):
                raise ValueError(f"env_config['{key}'] must start with http:// or https://, got {out[key]!r}")
        for key in ("prometheus_metric", "prometheus_selector", "prometheus_failed_matcher"):
            if key in cfg:
                if not isinstance(cfg[key], str) or not cfg[key]:
                    raise TypeError(f"env_config['{key}'] must be a non-empty string, got {cfg[key]!r}")
                out[key] = cfg[key]
        if "stabilization_time" in cfg:
            out["stabilization_time"] = check_float("env_config['stabilization_time']", cfg["stabilization_time"], low=0.0)
        for key in ("rollout_timeout_s", "poll_interval_s", "request_timeout_s", "http_timeout_s",
                    "retry_max_s", "prometheus_min_window_s"):
            if key in cfg:
                out[key] = check_float(f"env_config['{key}']", cfg[key], low=0.0, low_open=True)
        if "retry_initial_s" in cfg:
            out["retry_initial_s"] = check_float("env_config['retry_initial_s']", cfg["retry_initial_s"], low=0.0)
        if "retry_attempts" in cfg:
            out["retry_attempts"] = check_int("env_config['retry_attempts']", cfg["retry_attempts"], low=1)
        if "latency_source" in cfg and cfg["latency_source"] is not None:
            out["latency_source"] = check_choice("env_config['latency_source']", cfg["latency_source"],
                                                 ["testapp", "prometheus"])
        if "placement" in cfg:
            out["placement"] = check_choice("env_config['placement']", cfg["placement"],
                                            ["node_selector", "node_affinity"])
        if "measure_from" in cfg:
            out["measure_from"] = check_choice("env_config['measure_from']", cfg["measure_from"],
                                               ["advance_start", "rollout_ready"])
        if cfg.get("experiments") is not None:
            exps = cfg["experiments"]
            if not isinstance(exps, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in exps.items()):
                raise TypeError(f"env_config['experiments'] must map deployment names to experiment id strings, got {exps!r}")
            out["experiments"] = dict(exps)
        if cfg.get("reset_replicas") is not None:
            rr = cfg["reset_replicas"]
            if isinstance(rr, Mapping):
                out["reset_replicas"] = {str(k): check_int(f"env_config['reset_replicas'][{k!r}]", v, low=0)
                                         for k, v in rr.items()}
            else:
                out["reset_replicas"] = check_int("env_config['reset_replicas']", rr, low=0)
        return cls(**out)


def label_selector_string(selector: Any) -> str:
    """Turn a ``V1LabelSelector`` (model or dict) into the ``labelSelector`` query syntax.

    ``matchLabels`` become ``k=v``; ``matchExpressions`` become ``k in (a,b)``, ``k notin (a,b)``,
    ``k`` (Exists) or ``!k`` (DoesNotExist).

    Raises:
        PermanentBackendError: an empty selector (it would select every pod) or an unknown operator.
    """
    labels = _field(selector, "match_labels", "matchLabels") or {}
    exprs = _field(selector, "match_expressions", "matchExpressions") or []
    parts = [f"{k}={v}" for k, v in sorted(labels.items())]
    for e in exprs:
        key = _field(e, "key", "key")
        op = _field(e, "operator", "operator")
        values = ",".join(sorted(_field(e, "values", "values") or []))
        if op == "In":
            parts.append(f"{key} in ({values})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise PermanentBackendError(f"unknown label selector operator {op!r} in {selector!r}")
    if not parts:
        raise PermanentBackendError("deployment has an empty label selector; refusing to count every pod")
    return ",".join(parts)


def _field(obj: Any, snake: str, camel: str) -> Any:
    """Read a field from a client model (snake_case attribute) or a plain dict (camelCase key)."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(camel, obj.get(snake))
    return getattr(obj, snake, None)


#: What a permanent HTTP status from the API server usually means (appended to the error message).
_PERMANENT_HINTS = {
    400: " (the API server rejected the request as malformed)",
    401: " (the credentials in the kubeconfig were rejected: expired token or certificate?)",
    403: " (RBAC denies it: see docs/rbac/lwmecps-rbac.yaml for the minimal role)",
    404: " (no such object: check the names and the namespace)",
    422: " (the API server rejected the change as invalid)",
}


def _status_message(exc: Any) -> str:
    """The API server's ``Status.message`` (or the raw body, cut), with credentials redacted."""
    body = getattr(exc, "body", None)
    if body:
        try:
            msg = json.loads(body).get("message")
            if msg:
                return redact(str(msg))
        except (ValueError, AttributeError, TypeError):
            return redact(str(body)[:300])
    return redact(str(getattr(exc, "reason", "") or exc))


class KubernetesBackend:
    """A real Kubernetes cluster as a :class:`~lwmecps_gym.backends.base.ClusterBackend`.

    Args:
        node_names: Kubernetes node names in index order; each must exist.
        deployments: deployment names in index order (one per edge site for v3).
        namespace: namespace of the deployments.
        latency_source: where windowed latency and demand come from (see :mod:`.latency`).
        config: validated settings (:class:`KubernetesConfig`); defaults if ``None``.
        extra_deployments: further deployments ``place`` may move (e.g. v0's ``deployment_name``).
        api_client: a ready ``kubernetes.client.ApiClient`` (tests); default: from the config.
        apps_api / core_api: ready ``AppsV1Api`` / ``CoreV1Api`` objects (unit tests inject autospecs).
        sleep / clock: injectable ``time.sleep`` and monotonic clock.

    Attributes:
        node_allocatable: ``{node: {"cpu_cores": float, "memory_mb": float, "pods": float}}`` from
            ``status.allocatable`` (read at construction and each ``reset``).
        node_labels: ``{node: {label: value}}``.

    Raises:
        UnknownNodeError: a node name does not exist (the message lists the real ones).
        PermanentBackendError: a deployment does not exist or access is denied (naming it and the call).
    """

    def __init__(
        self,
        node_names: Sequence[str],
        deployments: Sequence[str],
        namespace: str,
        latency_source: LatencySource,
        *,
        config: KubernetesConfig | None = None,
        extra_deployments: Sequence[str] = (),
        api_client: Any = None,
        apps_api: Any = None,
        core_api: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from kubernetes import client as k8s_client

        self.config = config or KubernetesConfig()
        self.node_names = [_check_name("node_name", n) for n in node_names]
        self.deployments = [_check_name("deployments", d) for d in deployments]
        if not self.node_names:
            raise ValueError("node_name must list at least one node")
        if not self.deployments:
            raise ValueError("deployments must list at least one deployment")
        for seq, what in ((self.node_names, "node_name"), (self.deployments, "deployments")):
            if len(set(seq)) != len(seq):
                raise ValueError(f"{what} has duplicates: {list(seq)}")
        self.namespace = _check_name("namespace", namespace)
        self._extra = [d for d in extra_deployments if d not in self.deployments]
        if isinstance(self.config.reset_replicas, Mapping):
            for dep in self.config.reset_replicas:
                check_choice("env_config['reset_replicas'] deployment", dep, self.deployments + self._extra)
        self.latency = latency_source
        self._sleep = sleep
        self._clock = clock
        self._retry = RetryPolicy(self.config.retry_attempts, self.config.retry_initial_s, self.config.retry_max_s)
        self._client = k8s_client
        self._own_api_client = False
        if apps_api is None or core_api is None:
            if api_client is None:
                api_client = _make_api_client(self.config)
                self._own_api_client = True
            elif getattr(getattr(api_client, "configuration", None), "retries", 0) not in (0, False):
                warnings.warn(
                    "the api_client given to KubernetesBackend keeps urllib3 retries "
                    f"(configuration.retries={api_client.configuration.retries!r}), so each call may send "
                    "more requests and take longer than retry_attempts x request_timeout_s; build it "
                    "with Configuration.retries = 0", UserWarning, stacklevel=2)
            apps_api = apps_api or k8s_client.AppsV1Api(api_client)
            core_api = core_api or k8s_client.CoreV1Api(api_client)
        self._api_client = api_client
        self.apps = apps_api
        self.core = core_api
        self.node_allocatable: dict[str, dict[str, float]] = {}
        self.node_labels: dict[str, dict[str, str]] = {}
        self._hostname: dict[str, str] = {}
        self._selectors: dict[str, str] = {}
        self._dirty: set[str] = set()
        #: node each deployment was last placed on by :meth:`apply` (moves to another node count as migrations)
        self._placed: dict[str, str] = {}
        self._moves = 0
        self.last_migrations = 0
        self._t0 = self._clock()
        self._window_t0 = self._t0
        self._last_latency = np.full(len(self.deployments), np.nan)
        #: ``bool (n_deployments,)``: True where the last ``observe`` saw no request for that deployment and
        #: carried its previous windowed latency forward.
        self.latency_stale = np.zeros(len(self.deployments), dtype=bool)
        self._read_nodes()
        for dep in self.deployments + self._extra:
            self._selectors[dep] = label_selector_string(self._read_deployment(dep).spec.selector)

    # ------------------------------------------------------------------ construction from env kwargs

    @classmethod
    def from_env_kwargs(
        cls,
        *,
        node_name: Sequence[str],
        namespace: str,
        deployments: Sequence[str] | None,
        deployment_name: str | None = None,
        group_id: str | None = None,
        env_config: Mapping[str, Any] | None = None,
        sla_ms: float | None = None,
        api_client: Any = None,
        **_ignored: Any,
    ) -> KubernetesBackend:
        """Build the backend from the env's constructor arguments (upstream names).

        Args:
            node_name: node names in index order.
            namespace: namespace of the deployments.
            deployments: deployment names in index order; if empty, ``[deployment_name]``.
            deployment_name: the deployment v0-v2 place (also movable with ``place``).
            group_id: the test-app experiment group id (required for ``latency_source="testapp"``).
            env_config: see :class:`KubernetesConfig` for the keys.
            sla_ms: SLA threshold, ms (used by the Prometheus source's violation rate).
            api_client: a ready ``ApiClient`` instead of in-cluster/kubeconfig loading.
            **_ignored: the env's other arguments (max_hardware, pod_usage, ...), unused here.

        Raises:
            TypeError / ValueError: malformed ``env_config`` or missing settings for the latency source.
            UnknownNodeError / PermanentBackendError: see the class.
        """
        cfg = KubernetesConfig.from_mapping(env_config)
        if isinstance(node_name, str):
            raise TypeError(f"node_name must be a list of node names, got the string {node_name!r}")
        deps = list(deployments or [])
        if not deps:
            if deployment_name is None:
                raise ValueError("deployments must list at least one deployment (or give deployment_name)")
            deps = [deployment_name]
        extra = [deployment_name] if deployment_name is not None and deployment_name not in deps else []
        source = cfg.latency_source or ("testapp" if cfg.base_url else "prometheus" if cfg.prometheus_url else None)
        retry = RetryPolicy(cfg.retry_attempts, cfg.retry_initial_s, cfg.retry_max_s)
        latency: LatencySource
        if source is None:
            raise ValueError(
                "the kubernetes backend needs a latency source: set env_config['base_url'] (the test "
                "app's client API) or env_config['prometheus_url']"
            )
        if source == "testapp":
            if not cfg.base_url:
                raise ValueError("env_config['base_url'] is required for latency_source='testapp'")
            if not group_id:
                raise ValueError("group_id (the test app's experiment group id) is required for latency_source='testapp'")
            latency = TestAppLatencySource(cfg.base_url, group_id, deps, experiments=cfg.experiments,
                                           timeout_s=cfg.http_timeout_s, retry=retry)
        else:
            if not cfg.prometheus_url:
                raise ValueError("env_config['prometheus_url'] is required for latency_source='prometheus'")
            latency = PrometheusLatencySource(
                cfg.prometheus_url, deps, namespace, metric=cfg.prometheus_metric,
                selector=cfg.prometheus_selector, failed_matcher=cfg.prometheus_failed_matcher,
                min_window_s=cfg.prometheus_min_window_s, sla_ms=sla_ms, timeout_s=cfg.http_timeout_s, retry=retry,
            )
        try:
            return cls(list(node_name), deps, namespace, latency, config=cfg, extra_deployments=extra,
                       api_client=api_client)
        except BaseException:
            latency.close()
            raise

    # ------------------------------------------------------------------ API call plumbing

    def _call(self, what: str, target: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` with a request timeout, retrying transient failures; classify errors."""
        import urllib3

        api_exc = self._client.ApiException

        def once() -> Any:
            try:
                return fn(*args, _request_timeout=self.config.request_timeout_s, **kwargs)
            except api_exc as exc:
                status = getattr(exc, "status", None)
                msg = f"{what} for {target} failed: HTTP {status} {getattr(exc, 'reason', '')}: {_status_message(exc)}"
                if status in TRANSIENT_HTTP_STATUS:
                    raise TransientBackendError(msg) from exc
                # permanent: retrying cannot help, so fail at once with a hint at the cause
                raise PermanentBackendError(msg + _PERMANENT_HINTS.get(status, "")) from exc
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise TransientBackendError(
                    f"{what} for {target} failed: {type(exc).__name__}: {redact(str(exc))}") from exc

        return self._retry.call(once)

    def _dep_target(self, dep: str) -> str:
        return f"deployment '{self.namespace}/{dep}'"

    def _read_deployment(self, dep: str) -> Any:
        return self._call("read_namespaced_deployment", self._dep_target(dep),
                          self.apps.read_namespaced_deployment, dep, self.namespace)

    def _read_nodes(self) -> None:
        from kubernetes.utils import parse_quantity

        nodes = self._call("list_node", "the cluster's nodes", self.core.list_node).items
        real = {n.metadata.name: n for n in nodes}
        missing = [n for n in self.node_names if n not in real]
        if missing:
            raise UnknownNodeError(
                f"node_name lists nodes that do not exist in the cluster: {missing}; the cluster's nodes "
                f"are {sorted(real)}"
            )
        for name in self.node_names:
            node = real[name]
            labels = dict(node.metadata.labels or {})
            alloc = dict((node.status.allocatable if node.status is not None else None) or {})
            try:
                self.node_allocatable[name] = {
                    "cpu_cores": float(parse_quantity(alloc["cpu"])),
                    "memory_mb": float(parse_quantity(alloc["memory"])) / 1e6,
                    "pods": float(parse_quantity(alloc.get("pods", "0"))),
                }
            except (KeyError, ValueError) as exc:
                raise PermanentBackendError(
                    f"node {name!r} reports no usable status.allocatable cpu/memory: {alloc!r}"
                ) from exc
            self.node_labels[name] = labels
            self._hostname[name] = labels.get(HOSTNAME_LABEL, name)

    # ------------------------------------------------------------------ ClusterBackend

    def reset(self, seed: int | None = None) -> None:
        """Re-read nodes and deployments, optionally set ``reset_replicas`` and wait for the rollout,
        then start the workload, open a measurement window and wait ``stabilization_time`` so the
        first :meth:`observe` of the episode measures one full window.

        A real cluster cannot be rewound: ``seed`` is recorded (``last_seed``) but cannot make the
        workload repeat; only the workload's own schedule (the test app's load profile) does that.
        """
        self.last_seed = seed
        self._read_nodes()
        for dep in self.deployments + self._extra:
            self._selectors[dep] = label_selector_string(self._read_deployment(dep).spec.selector)
        rr = self.config.reset_replicas
        if rr is not None:
            target = dict(rr) if isinstance(rr, Mapping) else {d: rr for d in self.deployments}
            self.scale(target)
            self._wait_rollouts()
        self.latency.start()
        self._last_latency = np.full(len(self.deployments), np.nan)
        self.latency_stale = np.zeros(len(self.deployments), dtype=bool)
        self._t0 = self._clock()
        self._window_t0 = self._t0
        self._placed = {}
        self._moves = 0
        self.last_migrations = 0
        self.latency.mark()
        if self.config.stabilization_time > 0:
            # the env observes right after reset: let one window of the starting configuration pass
            self._sleep(self.config.stabilization_time)

    def apply(self, command: ScaleCommand | PlaceCommand) -> None:
        """Enact an env's command: a :class:`~lwmecps_gym.backends.base.ScaleCommand` is :meth:`scale` of
        every deployment; a :class:`~lwmecps_gym.backends.base.PlaceCommand` is :meth:`place`, skipped when
        the deployment is already placed on that node (a move to another node counts as a migration in
        the next window's measurement; the initial placement of an episode does not).

        Raises:
            TypeError: not one of the two commands.
            ValueError: wrong number of replica counts, an unknown deployment or node index.
        """
        if isinstance(command, ScaleCommand):
            replicas = list(command.replicas)
            if len(replicas) != len(self.deployments):
                raise ValueError(f"expected {len(self.deployments)} replica counts (one per deployment), got {replicas}")
            self.scale(dict(zip(self.deployments, replicas, strict=True)))
        elif isinstance(command, PlaceCommand):
            j = check_int("node index", command.node, low=0, high=len(self.node_names) - 1)
            node = self.node_names[j]
            previous = self._placed.get(command.deployment)
            if command.initial or previous != node:
                self.place(command.deployment, node)
                if not command.initial:
                    self._moves += 1
                self._placed[command.deployment] = node
        else:
            raise TypeError(f"command must be a ScaleCommand or PlaceCommand, got {type(command).__name__}")

    def scale(self, replicas: Mapping[str, int]) -> None:
        """``PATCH .../deployments/{name}/scale`` with ``{"spec": {"replicas": n}}`` per deployment.

        Raises:
            ValueError / TypeError: an unknown deployment or a replica count that is not an int >= 0.
            PermanentBackendError: the API refused the change (names the deployment and the call).
        """
        if not isinstance(replicas, Mapping):
            raise TypeError(f"replicas must be a mapping deployment -> int, got {type(replicas).__name__}")
        known = self.deployments + self._extra
        checked = {}
        for dep, n in replicas.items():
            check_choice("deployment", dep, known)
            checked[dep] = check_int(f"replicas[{dep!r}]", n, low=0)
        for dep, n in checked.items():
            self._call("patch_namespaced_deployment_scale", self._dep_target(dep),
                       self.apps.patch_namespaced_deployment_scale, dep, self.namespace, {"spec": {"replicas": n}})
            self._dirty.add(dep)

    def place(self, deployment: str, node: str) -> None:
        """Patch the pod template so the deployment's pods run on ``node`` (a rolling update).

        ``placement="node_selector"`` sends the strategic merge patch
        ``{"spec": {"template": {"spec": {"nodeSelector": {"kubernetes.io/hostname": <hostname>}}}}}``
        (other nodeSelector keys are kept); ``"node_affinity"`` replaces
        ``affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution`` with one term
        ``kubernetes.io/hostname In [<hostname>]`` (use it when the manifests pin pods by affinity, as
        the test app's do; a nodeSelector would then conflict with the existing affinity).
        ``<hostname>`` is the node's ``kubernetes.io/hostname`` label (usually its name).
        """
        check_choice("deployment", deployment, self.deployments + self._extra)
        check_choice("node", node, self.node_names)
        host = self._hostname[node]
        if self.config.placement == "node_selector":
            pod_spec: dict[str, Any] = {"nodeSelector": {HOSTNAME_LABEL: host}}
        else:
            term = {"matchExpressions": [{"key": HOSTNAME_LABEL, "operator": "In", "values": [host]}]}
            pod_spec = {"affinity": {"nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}}}
        self._call("patch_namespaced_deployment", self._dep_target(deployment),
                   self.apps.patch_namespaced_deployment, deployment, self.namespace,
                   {"spec": {"template": {"spec": pod_spec}}})
        self._dirty.add(deployment)

    def advance(self, seconds: float) -> None:
        """Wait for the rollouts of the deployments changed since the last ``advance``, then ``seconds``.

        The measurement window for :meth:`observe` opens at the start of this call
        (``measure_from="advance_start"``) or once the rollouts are done (``"rollout_ready"``).
        ``advance(0)`` only waits for the rollouts and keeps the current window open (an env that
        places its deployment right after ``reset`` then observes reset's window plus the rollout).

        Raises:
            ValueError: ``seconds`` negative or not finite.
            RolloutTimeoutError: a rollout did not finish within ``rollout_timeout_s``.
        """
        seconds = check_float("seconds", seconds, low=0.0)
        # advance(0) only completes pending rollouts: no time is meant to pass, so the current window
        # (e.g. the one opened by reset) continues instead of shrinking to the rollout's duration.
        new_window = seconds > 0
        if new_window:
            self.last_migrations, self._moves = self._moves, 0
        if new_window and self.config.measure_from == "advance_start":
            self._window_t0 = self._clock()
            self.latency.mark()
        self._wait_rollouts()
        if new_window and self.config.measure_from == "rollout_ready":
            self._window_t0 = self._clock()
            self.latency.mark()
        if new_window:
            self._sleep(seconds)

    def observe(self) -> ClusterMeasurement:
        """Read replicas, Running+Ready pods per node, and the latency window; nothing is made up.

        A deployment that received no request in the window has no windowed latency; its most recent
        windowed value in this episode is carried forward and flagged in :attr:`latency_stale`. If there
        is none yet, or no deployment received any request, this raises.

        Raises:
            PermanentBackendError / TransientBackendError: API or latency-source failures, or no data.
        """
        n_dep, n_node = len(self.deployments), len(self.node_names)
        desired = np.zeros(n_dep, dtype=np.int64)
        ready = np.zeros(n_dep, dtype=np.int64)
        per_node = np.zeros((n_dep, n_node), dtype=np.int64)
        node_index = {n: j for j, n in enumerate(self.node_names)}
        for i, dep in enumerate(self.deployments):
            d = self._read_deployment(dep)
            desired[i] = _replicas(d.spec.replicas, default=1)
            ready[i] = _replicas(d.status.ready_replicas if d.status is not None else None)
            self._selectors[dep] = label_selector_string(d.spec.selector)
            pods = self._call("list_namespaced_pod", self._dep_target(dep), self.core.list_namespaced_pod,
                              self.namespace, label_selector=self._selectors[dep]).items
            for pod in pods:
                j = node_index.get(pod.spec.node_name if pod.spec is not None else None)
                if j is not None and _pod_serves(pod, dep):
                    per_node[i, j] += 1
        window = self.latency.read()
        latency = np.array(window.latency_ms, dtype=np.float64)
        stale = np.isnan(latency)
        if stale.any():
            missing = [d for d, s, last in zip(self.deployments, stale, self._last_latency, strict=True) if s and np.isnan(last)]
            if missing:
                raise PermanentBackendError(
                    f"no request reached deployments {missing} in the {window.window_s:g} s measurement window "
                    "and none earlier in this episode, so their latency is unknown; make stabilization_time "
                    "longer than the workload's request interval"
                )
            latency[stale] = self._last_latency[stale]
        self.latency_stale = stale
        self._last_latency = latency.copy()
        now = self._clock()
        return ClusterMeasurement(
            time_s=float(now - self._t0),
            window_s=float(window.window_s),
            replicas_desired=desired,
            replicas_ready=ready,
            pods_per_node=per_node,
            demand_rps=np.asarray(window.demand_rps, dtype=np.float64),
            latency_ms=latency,
            mean_latency_ms=float(window.mean_latency_ms),
            sla_violation_rate=window.sla_violation_rate,
            failed_rps=float(window.failed_rps),
            time_of_day_s=_local_time_of_day_s(),
            migrations=self.last_migrations,
        )

    def close(self) -> None:
        """Close the latency source and the API client this backend created."""
        try:
            self.latency.close()
        finally:
            if self._own_api_client and self._api_client is not None:
                self._api_client.close()
                self._api_client = None

    # ------------------------------------------------------------------ rollouts

    def rollout_done(self, deployment: Any) -> tuple[bool, str]:
        """Whether a ``V1Deployment`` has finished rolling out, and a one-line status for messages.

        Done means ``observedGeneration >= generation`` and updated == total == ready == ``spec.replicas``
        (so no pod of an old ReplicaSet is left); a ``Progressing`` condition with reason
        ``ProgressDeadlineExceeded`` raises at once.

        Raises:
            PermanentBackendError: the deployment's progress deadline was exceeded.
        """
        spec = _replicas(deployment.spec.replicas, default=1)
        st = deployment.status
        gen = deployment.metadata.generation or 0
        obs = (st.observed_generation if st is not None else None) or 0
        upd = _replicas(st.updated_replicas if st is not None else None)
        tot = _replicas(st.replicas if st is not None else None)
        rdy = _replicas(st.ready_replicas if st is not None else None)
        detail = (f"generation {gen}, observedGeneration {obs}, spec.replicas {spec}, updated {upd}, "
                  f"total {tot}, ready {rdy}")
        for cond in (st.conditions if st is not None else None) or []:
            if cond.type == "Progressing" and cond.reason == "ProgressDeadlineExceeded":
                raise PermanentBackendError(
                    f"rollout of deployment '{self.namespace}/{deployment.metadata.name}' failed: "
                    f"ProgressDeadlineExceeded: {cond.message} ({detail})"
                )
        return (obs >= gen and upd == spec and tot == spec and rdy == spec), detail

    def _wait_rollouts(self) -> None:
        pending = [d for d in self.deployments + self._extra if d in self._dirty]
        deadline = self._clock() + self.config.rollout_timeout_s
        while pending:
            still = []
            details = {}
            for dep in pending:
                done, detail = self.rollout_done(self._read_deployment(dep))
                if not done:
                    still.append(dep)
                    details[dep] = detail
            pending = still
            if not pending:
                break
            remaining = deadline - self._clock()
            if remaining <= 0:
                self._dirty = set(pending)
                raise RolloutTimeoutError(
                    f"rollout not finished after {self.config.rollout_timeout_s:g} s (rollout_timeout_s): "
                    + "; ".join(f"deployment '{self.namespace}/{d}': {details[d]}" for d in pending)
                    + "; check `kubectl describe` for unschedulable or failing pods"
                )
            self._sleep(min(self.config.poll_interval_s, remaining))
        self._dirty.clear()


def _local_time_of_day_s() -> float:
    """Local wall-clock time of day, s in [0, 86400)."""
    lt = time.localtime()
    return lt.tm_hour * 3600.0 + lt.tm_min * 60.0 + lt.tm_sec


def _replicas(value: Any, default: int = 0) -> int:
    return default if value is None else int(value)


def _pod_serves(pod: Any, deployment: str) -> bool:
    """A pod counts if it is Running, Ready, not being deleted, and owned by a ReplicaSet of ``deployment``."""
    meta = pod.metadata
    if meta is None or meta.deletion_timestamp is not None:
        return False
    owners = meta.owner_references or []
    # a Deployment's ReplicaSets are named "<deployment>-<pod-template-hash>" (hash without dashes), so
    # pods of deployment "web-api" never count for "web" even if the label selectors overlap
    prefix = f"{deployment}-"
    if not any(o.kind == "ReplicaSet" and str(o.name).startswith(prefix) and "-" not in str(o.name)[len(prefix):]
               for o in owners):
        return False
    st = pod.status
    if st is None or st.phase != "Running":
        return False
    return any(c.type == "Ready" and c.status == "True" for c in (st.conditions or []))


def _check_name(what: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"{what} must be a non-empty string (a Kubernetes object name), got {value!r}")
    return value


def _make_api_client(cfg: KubernetesConfig) -> Any:
    """In-cluster config when running in a pod (and no kubeconfig was given), else the kubeconfig.

    The client's own urllib3 retries are turned off (``Configuration.retries = 0``): this backend
    retries transient failures itself, so ``retry_attempts`` and ``request_timeout_s`` bound a call
    exactly (at most ``retry_attempts`` requests of at most ``request_timeout_s`` each, plus the
    backoffs). The kubeconfig is never written back (``persist_config=False``).

    Raises:
        PermanentBackendError: no in-cluster config and the kubeconfig is missing, is not valid YAML
            (the message names the file and the line), or lacks the context/cluster/user it needs.
    """
    import yaml
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    if cfg.kubeconfig is None and cfg.context is None:
        conf = client.Configuration()
        try:
            config.load_incluster_config(client_configuration=conf)
            conf.retries = 0
            return client.ApiClient(conf)
        except ConfigException:
            pass
    # $KUBECONFIG is read now, not when the kubernetes package was imported (it may hold several
    # paths separated by os.pathsep; the client merges them).
    path = cfg.kubeconfig or os.environ.get("KUBECONFIG") or None
    if path is not None:
        path = os.pathsep.join(os.path.expanduser(p) for p in path.split(os.pathsep))
    where = path or os.path.expanduser("~/.kube/config")
    ctx = f" context {cfg.context!r}" if cfg.context else ""
    conf = client.Configuration()
    try:
        # persist_config=False: never write refreshed credentials back into the user's kubeconfig.
        config.load_kube_config(config_file=path, context=cfg.context, client_configuration=conf,
                                persist_config=False)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise PermanentBackendError(
            f"cannot configure the Kubernetes client: kubeconfig {where!r} is not valid YAML:{line} {problem}"
        ) from None
    except (ConfigException, OSError, TypeError, ValueError, KeyError, AttributeError) as exc:
        raise PermanentBackendError(
            f"cannot configure the Kubernetes client: not running in a pod, and loading kubeconfig {where!r}"
            f"{ctx} failed: {type(exc).__name__}: {redact(str(exc))}"
        ) from None
    conf.retries = 0
    return client.ApiClient(conf)
