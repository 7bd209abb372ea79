"""An OpenFaaS gateway + cAdvisor metrics exporter stub and a loopback Kubernetes API for one function,
for tests of ``faas_gym``'s ``backend="openfaas"`` (the exporter needs ``prometheus_client``, in the
``test`` extra; :class:`MockOpenFaaS` also needs the ``prometheus`` binary).

The exporter (:class:`FaasExporter`) mimics:

* the OpenFaaS gateway: ``gateway_function_invocation_total{function_name, code}`` (counter),
  ``gateway_function_invocation_started{function_name}`` (exposed untyped, without ``_total``,
  as the Go gateway names it), ``gateway_functions_seconds`` (histogram with the Go client's
  default buckets) and ``gateway_service_count`` (gauge);
* the kubelet's cAdvisor: ``container_cpu_usage_seconds_total``, ``container_memory_working_set_bytes``
  and ``container_start_time_seconds`` with ``namespace``/``pod``/``container`` labels, including the
  pause container (``container="POD"``) and the pod cgroup (``container=""``) that must be filtered out.

Every counter is ``rate x (t - t0)`` (+ an offset), so ``rate()`` over any window is the rate
exactly up to scrape-timestamp jitter; the expected observation is in :attr:`FaasExporter.expected`.
Decoy series (function ``hello-world``, namespace ``staging``) must not leak into the results.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from lwmecps_gym.testing.prometheus import free_port

FUNCTION = "hello"
NAMESPACE = "openfaas-fn"
SCRAPE_INTERVAL_S = 0.5
#: prometheus/client_golang DefBuckets (what the OpenFaaS gateway histogram uses), s.
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class FunctionTraffic:
    """Closed-form gateway traffic of one function.

    ``latencies[code]`` is a list of ``(seconds, share)``: that share of the code's requests takes
    exactly that long (so histogram buckets, sum and count are all linear in time).
    """

    rates: dict[str, float]                       # completions/s by HTTP code
    latencies: dict[str, list[tuple[float, float]]]
    in_flight: float                              # started - completed, constant
    replicas: int

    @property
    def completed_rate(self) -> float:
        return sum(self.rates.values())

    def _ok(self) -> dict[str, float]:
        return {c: r for c, r in self.rates.items() if c.startswith("2")}

    def mean_latency_s(self) -> float:
        """Mean invocation time of the successful (2xx) requests, s."""
        ok = self._ok()
        return sum(r * sum(s * w for s, w in self.latencies[c]) for c, r in ok.items()) / sum(ok.values())

    def fraction_at_most(self, threshold_s: float) -> float:
        """Fraction of successful (2xx) requests taking <= ``threshold_s``."""
        ok = self._ok()
        within = sum(r * sum(w for s, w in self.latencies[c] if s <= threshold_s) for c, r in ok.items())
        return within / sum(ok.values())


@dataclass
class Pod:
    namespace: str
    name: str
    container: str
    cpu_cores: float          # rate of container_cpu_usage_seconds_total
    memory_bytes: float       # working set
    start_time: float         # container_start_time_seconds


@dataclass(eq=False)
class FaasExporter:
    """A loopback exporter of OpenFaaS gateway and cAdvisor series with known values."""

    functions: dict[str, FunctionTraffic] = field(default_factory=dict)   # key: function_name label
    pods: list[Pod] = field(default_factory=list)
    t0: float = field(default_factory=time.time)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: object = None

    # --- exposition -------------------------------------------------------------------------
    def collect(self):
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
            UnknownMetricFamily,
        )

        now = time.time()
        dt = now - self.t0
        with self._lock:
            functions = dict(self.functions)
            pods = list(self.pods)
        inv = CounterMetricFamily("gateway_function_invocation", "Function invocation count",
                                  labels=["function_name", "code"])
        started = UnknownMetricFamily("gateway_function_invocation_started", "Function invocations started",
                                      labels=["function_name"])
        hist = HistogramMetricFamily("gateway_functions_seconds", "Function invocation time taken",
                                     labels=["function_name", "code"])
        svc = GaugeMetricFamily("gateway_service_count", "Number of function replicas", labels=["function_name"])
        for fname, tr in functions.items():
            for code, rate in tr.rates.items():
                n = rate * dt
                inv.add_metric([fname, code], n)
                lat = tr.latencies[code]
                buckets = [(str(le), n * sum(w for s, w in lat if s <= le)) for le in DEFAULT_BUCKETS]
                buckets.append(("+Inf", n))
                hist.add_metric([fname, code], buckets, sum_value=n * sum(s * w for s, w in lat))
            if tr.rates:  # the Go gateway creates these series at the first invocation
                started.add_metric([fname], tr.completed_rate * dt + tr.in_flight)
            svc.add_metric([fname], float(tr.replicas))
        cpu = CounterMetricFamily("container_cpu_usage_seconds", "Cumulative cpu time consumed",
                                  labels=["namespace", "pod", "container"])
        mem = GaugeMetricFamily("container_memory_working_set_bytes", "Current working set",
                                labels=["namespace", "pod", "container"])
        start = GaugeMetricFamily("container_start_time_seconds", "Start time of the container",
                                  labels=["namespace", "pod", "container"])
        for p in pods:
            cpu.add_metric([p.namespace, p.name, p.container], 100.0 + p.cpu_cores * dt)
            mem.add_metric([p.namespace, p.name, p.container], p.memory_bytes)
            start.add_metric([p.namespace, p.name, p.container], p.start_time)
        yield from (inv, started, hist, svc, cpu, mem, start)

    def start(self) -> FaasExporter:
        from prometheus_client import CollectorRegistry, start_http_server

        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        self.port = free_port()
        self._server, _thread = start_http_server(self.port, addr="127.0.0.1", registry=registry)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- control ----------------------------------------------------------------------------
    def restart_pod(self, name: str, at: float | None = None) -> None:
        """Set a pod's container start time (a cold start at ``at``, default now)."""
        with self._lock:
            for p in self.pods:
                if p.name == name and p.container != "POD":
                    p.start_time = time.time() if at is None else at

    def drop_function(self, function_label: str) -> FunctionTraffic:
        with self._lock:
            return self.functions.pop(function_label)

    def add_pod(self, pod: Pod) -> None:
        with self._lock:
            self.pods.append(pod)

    def drop_pods(self, name: str) -> None:
        with self._lock:
            self.pods = [p for p in self.pods if p.name != name]

    def add_function(self, function_label: str, traffic: FunctionTraffic) -> None:
        with self._lock:
            self.functions[function_label] = traffic


MiB = 1024.0 * 1024.0
HELLO_PODS = ("hello-7d9f8b6c5d-abcde", "hello-7d9f8b6c5d-fghij", "hello-7d9f8b6c5d-klmno")
#: per-replica limits of the function container in the stub Deployment (and the gateway status)
CPU_LIMIT_CORES, MEMORY_LIMIT_BYTES = 0.2, 128 * MiB
CPU_REQUEST_CORES, MEMORY_REQUEST_BYTES = 0.1, 64 * MiB


def default_exporter() -> FaasExporter:
    old = time.time() - 3600.0
    hello = FunctionTraffic(
        rates={"200": 20.0, "502": 1.0, "429": 0.5},
        latencies={"200": [(0.08, 0.6), (0.3, 0.4)], "502": [(0.01, 1.0)], "429": [(0.002, 1.0)]},
        in_flight=7.0, replicas=3)
    decoy_name = FunctionTraffic(rates={"200": 100.0}, latencies={"200": [(2.0, 1.0)]}, in_flight=50.0, replicas=9)
    decoy_ns = FunctionTraffic(rates={"200": 50.0, "500": 5.0},
                               latencies={"200": [(1.0, 1.0)], "500": [(3.0, 1.0)]}, in_flight=30.0, replicas=5)
    pods = []
    for name, cores, mib in zip(HELLO_PODS, (0.05, 0.06, 0.07), (40.0, 50.0, 60.0), strict=True):
        pods.append(Pod(NAMESPACE, name, "hello", cores, mib * MiB, old))
        pods.append(Pod(NAMESPACE, name, "POD", 0.001, 1 * MiB, old))          # pause container
        pods.append(Pod(NAMESPACE, name, "", cores + 0.001, (mib + 1) * MiB, old))  # pod cgroup
    pods.append(Pod(NAMESPACE, "hello-world-5c6d7e8f9b-pqrst", "hello-world", 1.5, 900 * MiB, time.time()))
    pods.append(Pod("staging", "hello-6b7c8d9f4d-uvwxy", "hello", 0.9, 700 * MiB, time.time()))
    return FaasExporter(functions={"hello.openfaas-fn": hello, "hello-world.openfaas-fn": decoy_name,
                                   "hello.staging": decoy_ns}, pods=pods)



# ---- a loopback Kubernetes API for the function's Deployment ---------------------------------


def deployment_json(name: str = FUNCTION, namespace: str = NAMESPACE, *, spec_replicas: int = 3,
                    ready: int | None = 3, limits: dict | None = None, requests: dict | None = None) -> dict:
    """A ``apps/v1`` Deployment as an OpenFaaS faas-netes provider creates it."""
    resources = {}
    resources["limits"] = {"cpu": "200m", "memory": "128Mi"} if limits is None else limits
    resources["requests"] = {"cpu": "100m", "memory": "64Mi"} if requests is None else requests
    status = {"replicas": spec_replicas, "availableReplicas": ready or 0}
    if ready:
        status["readyReplicas"] = ready
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"faas_function": name}},
        "spec": {
            "replicas": spec_replicas,
            "selector": {"matchLabels": {"faas_function": name}},
            "template": {
                "metadata": {"labels": {"faas_function": name}},
                "spec": {"containers": [{"name": name, "image": f"ghcr.io/example/{name}:latest",
                                         "resources": resources}]},
            },
        },
        "status": status,
    }


def scale_json(name: str, namespace: str, replicas: int) -> dict:
    return {"apiVersion": "autoscaling/v1", "kind": "Scale",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas}, "status": {"replicas": replicas}}


class MockOpenFaaS:
    """A mocked OpenFaaS function for ``gym.make(..., backend="openfaas")``: the gateway/cAdvisor
    exporter (:func:`default_exporter`: function ``hello`` with 3 replicas and known traffic), a real
    Prometheus scraping it every ``scrape_interval_s`` (needs the ``prometheus`` binary), and a
    loopback Kubernetes API serving the function's Deployment, where ``PATCH .../scale`` sets
    ``spec.replicas``.

    Args:
        scrape_interval_s: Prometheus scrape interval, s.

    Attributes:
        exporter, prometheus, stub: the :class:`FaasExporter`, the
            :class:`~lwmecps_gym.testing.prometheus.PrometheusServer` and the k8s :class:`HttpStub`.
        deployment: the Deployment JSON the stub serves (``["spec"]["replicas"]`` follows the scale calls).

    Raises:
        RuntimeError: the ``prometheus`` binary is not installed (the message says how to get it).
    """

    def __init__(self, scrape_interval_s: float = SCRAPE_INTERVAL_S) -> None:
        from lwmecps_gym.testing.http_stub import HttpStub
        from lwmecps_gym.testing.prometheus import MISSING_REASON, prometheus_binary

        if prometheus_binary() is None:
            raise RuntimeError(MISSING_REASON)
        self.scrape_interval_s = scrape_interval_s
        self.exporter = default_exporter()
        self.deployment = deployment_json()
        self.stub = HttpStub()
        base = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/{FUNCTION}"
        self.stub.route("GET", base, lambda req: (200, self.deployment))
        self.stub.route("PATCH", base + "/scale", self._scale)
        self.prometheus = None

    def _scale(self, req) -> tuple:
        n = int(req.body["spec"]["replicas"])
        self.deployment["spec"]["replicas"] = n
        return 200, scale_json(FUNCTION, NAMESPACE, n)

    def env_kwargs(self, directory: str, interval_s: float = 3.0) -> dict:
        """``gym.make("faas_gym/Autoscaling-v0", ...)`` arguments for this function (writes a kubeconfig
        into ``directory``); each step waits ``interval_s`` seconds of real time."""
        import json
        import os

        path = os.path.join(directory, "kubeconfig")
        with open(path, "w") as fh:
            json.dump({"apiVersion": "v1", "kind": "Config",
                       "clusters": [{"name": "stub", "cluster": {"server": self.stub.url}}],
                       "users": [{"name": "tester", "user": {"token": "test-token"}}],
                       "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "tester"}}],
                       "current-context": "stub"}, fh)
        return {"backend": "openfaas", "function_name": FUNCTION, "namespace": NAMESPACE, "interval_s": interval_s,
                "backend_kwargs": {"prometheus_url": self.prometheus.url, "kubeconfig": path,
                                   "evaluation_delay_s": 2 * self.scrape_interval_s}}

    def start(self) -> MockOpenFaaS:
        from lwmecps_gym.testing.prometheus import PrometheusServer

        self.stub.start()
        self.exporter.start()
        self.prometheus = PrometheusServer([self.exporter.target], scrape_interval_s=self.scrape_interval_s)
        self.prometheus.start()
        self.prometheus.wait_for_series(f'gateway_service_count{{function_name="{FUNCTION}.{NAMESPACE}"}}',
                                        min_samples=3, timeout_s=40.0)
        return self

    def stop(self) -> None:
        if self.prometheus is not None:
            self.prometheus.stop()
        self.exporter.stop()
        self.stub.stop()

    def __enter__(self) -> MockOpenFaaS:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
