"""Loopback fakes of a Kubernetes cluster and the lwmecps test app, for tests of the ``kubernetes`` backend.

``FakeCluster`` serves a small Kubernetes API (nodes, deployments, the scale subresource, pods by
label selector) from an :class:`~lwmecps_gym.testing.http_stub.HttpStub`, with deployment status that lags
``spec`` for a configurable number of reads, so rollout waits are exercised. ``FakeTestApp`` serves the
lwmecps test app's ``/api/manage_group``, ``/api/group_stats`` ``/api/result_experiment`` and ``/api/list_groups``.
Both keep cumulative state that tests drive explicitly; nothing here decides a test's outcome.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field

from lwmecps_gym.testing.http_stub import HttpStub, Request, k8s_status

NS = "lwmecps-testapp"
DEPLOY_RE = r"/apis/apps/v1/namespaces/(?P<ns>[^/]+)/deployments/(?P<name>[^/]+)"


@dataclass
class FakeDeployment:
    name: str
    replicas: int = 1
    generation: int = 1
    node: str | None = None  # where its pods run (nodeSelector/affinity target); None = first node
    lag_reads: int = 0  # reads left before status catches up with spec
    observed_generation: int = 1
    status_replicas: int = 1
    labels: dict = field(default_factory=dict)


class FakeCluster:
    """A minimal stateful Kubernetes API server behind ``HttpStub`` routes."""

    def __init__(self, stub: HttpStub, nodes: list[str], deployments: list[str], *, lag_reads: int = 0,
                 hostname_labels: dict[str, str] | None = None, namespace: str = NS) -> None:
        self.stub = stub
        self.namespace = namespace
        self.nodes = list(nodes)
        self.hostname = {n: (hostname_labels or {}).get(n, n) for n in nodes}
        self.lag_reads = lag_reads
        self.deps = {d: FakeDeployment(d, labels={"app": d}) for d in deployments}
        self.extra_pods: list[dict] = []
        self.lock = threading.Lock()
        stub.route("GET", r"/api/v1/nodes", self._nodes)
        stub.route("GET", DEPLOY_RE, self._get_dep)
        stub.route("PATCH", DEPLOY_RE + "/scale", self._patch_scale)
        stub.route("PATCH", DEPLOY_RE, self._patch_dep)
        stub.route("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods", self._pods)

    # -- helpers for tests ------------------------------------------------------------------------

    def kubeconfig(self, directory: str, token: str = "test-token") -> str:
        """Write a kubeconfig pointing at the stub with a bearer token; return its path."""
        path = os.path.join(directory, "kubeconfig")
        cfg = {
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "stub", "cluster": {"server": self.stub.url}}],
            "users": [{"name": "tester", "user": {"token": token}}],
            "contexts": [{"name": "stub", "context": {"cluster": "stub", "user": "tester",
                                                      "namespace": self.namespace}}],
            "current-context": "stub",
        }
        with open(path, "w") as f:
            json.dump(cfg, f)
        return path

    # -- serialisation ----------------------------------------------------------------------------

    def _dep_json(self, d: FakeDeployment) -> dict:
        converged = d.lag_reads <= 0
        ready = d.replicas if converged else min(d.replicas, d.status_replicas)
        pod_spec: dict = {"containers": [{"name": "server", "image": "testapp-server"}]}
        if d.node is not None:
            pod_spec["nodeSelector"] = {"kubernetes.io/hostname": self.hostname[d.node]}
        return {
            "kind": "Deployment", "apiVersion": "apps/v1",
            "metadata": {"name": d.name, "namespace": self.namespace, "generation": d.generation},
            "spec": {"replicas": d.replicas, "selector": {"matchLabels": dict(d.labels)},
                     "template": {"metadata": {"labels": dict(d.labels)}, "spec": pod_spec}},
            "status": {"observedGeneration": d.generation if converged else d.observed_generation,
                       "replicas": d.replicas if converged else d.status_replicas,
                       "updatedReplicas": d.replicas if converged else 0,
                       "readyReplicas": ready or None,
                       "availableReplicas": ready or None},
        }

    def pod_json(self, dep: str, i: int, node: str, *, phase: str = "Running", ready: bool = True,
                 deleting: bool = False, owner: str | None = None, labels: dict | None = None) -> dict:
        meta = {"name": f"{dep}-5d9c7b8f4-{i:05d}"[: 63], "namespace": self.namespace,
                "labels": labels if labels is not None else dict(self.deps[dep].labels) if dep in self.deps else {},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                     "name": owner or f"{dep}-5d9c7b8f4", "uid": f"uid-{dep}",
                                     "controller": True}]}
        if deleting:
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        return {"metadata": meta, "spec": {"nodeName": node, "containers": [{"name": "server"}]},
                "status": {"phase": phase,
                           "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}

    # -- routes -----------------------------------------------------------------------------------

    def _nodes(self, req: Request) -> tuple:
        items = [{"metadata": {"name": n, "labels": {"kubernetes.io/hostname": self.hostname[n]}},
                  "status": {"allocatable": {"cpu": "4", "memory": "8029212Ki", "pods": "110"},
                             "capacity": {"cpu": "4", "memory": "8131612Ki", "pods": "110"}}}
                 for n in self.nodes]
        return 200, {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": items}

    def _get_dep(self, req: Request) -> tuple:
        with self.lock:
            d = self.deps.get(req.match["name"])
            if d is None or req.match["ns"] != self.namespace:
                return 404, k8s_status(404, "NotFound", f'deployments.apps "{req.match["name"]}" not found')
            body = self._dep_json(d)
            if d.lag_reads > 0:
                d.lag_reads -= 1
                if d.lag_reads == 0:
                    d.observed_generation, d.status_replicas = d.generation, d.replicas
            return 200, body

    def _patch_scale(self, req: Request) -> tuple:
        with self.lock:
            d = self.deps.get(req.match["name"]) if req.match["ns"] == self.namespace else None
            if d is None:
                return 404, k8s_status(404, "NotFound", f'deployments.apps "{req.match["name"]}" not found')
            n = int(req.body["spec"]["replicas"])
            if n != d.replicas:
                d.replicas, d.generation, d.lag_reads = n, d.generation + 1, self.lag_reads
            return 200, {"kind": "Scale", "apiVersion": "autoscaling/v1",
                         "metadata": {"name": d.name, "namespace": self.namespace},
                         "spec": {"replicas": d.replicas}, "status": {"replicas": d.status_replicas}}

    def _patch_dep(self, req: Request) -> tuple:
        with self.lock:
            d = self.deps.get(req.match["name"]) if req.match["ns"] == self.namespace else None
            if d is None:
                return 404, k8s_status(404, "NotFound", f'deployments.apps "{req.match["name"]}" not found')
            spec = req.body["spec"]["template"]["spec"]
            host = None
            if "nodeSelector" in spec:
                host = spec["nodeSelector"]["kubernetes.io/hostname"]
            else:
                terms = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                host = terms["nodeSelectorTerms"][0]["matchExpressions"][0]["values"][0]
            node = next(n for n, h in self.hostname.items() if h == host)
            if node != d.node:
                d.node, d.generation, d.lag_reads = node, d.generation + 1, self.lag_reads
            return 200, self._dep_json(d)

    def _pods(self, req: Request) -> tuple:
        sel = req.query.get("labelSelector", [""])[0]
        wanted = dict(p.split("=", 1) for p in sel.split(",") if "=" in p)
        items = []
        with self.lock:
            for d in self.deps.values():
                node = d.node or self.nodes[0]
                ready = d.replicas if d.lag_reads <= 0 else min(d.replicas, d.status_replicas)
                for i in range(ready):
                    items.append(self.pod_json(d.name, i, node))
            items.extend(self.extra_pods)
        items = [p for p in items if all(p["metadata"]["labels"].get(k) == v for k, v in wanted.items())]
        return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}


class FakeTestApp:
    """The lwmecps test app's client API: one experiment per site with cumulative counters."""

    def __init__(self, stub: HttpStub, group_id: str, experiments: dict[str, str], *,
                 users: int = 10, interval: float = 10.0) -> None:
        self.stub = stub
        self.group_id = group_id
        self.experiments = dict(experiments)  # experiment id -> target Service host
        self.count = {e: 0 for e in experiments}
        self.latency_sum = {e: 0.0 for e in experiments}
        self.users = {e: users for e in experiments}
        self.interval = interval
        self.state = "pending"
        self.lock = threading.Lock()
        stub.route("POST", r"/api/manage_group", self._manage)
        stub.route("GET", r"/api/group_stats", self._stats)
        stub.route("GET", r"/api/result_experiment", self._experiment)
        stub.route("GET", r"/api/list_groups", self._groups)
        self.per_read: tuple[int, float] | None = None  # (n, latency_ms) served before each group_stats answer
        self.on_stats = None  # optional callable run at each group_stats request (e.g. another controller acting)

    def serve(self, exp: str, n: int, latency_ms: float) -> None:
        """Record ``n`` successful requests of ``latency_ms`` each for experiment ``exp``."""
        with self.lock:
            self.count[exp] += n
            self.latency_sum[exp] += n * latency_ms

    def _manage(self, req: Request) -> tuple:
        if req.query.get("group_id") != [self.group_id]:
            return 404, {"detail": "Group not found"}
        if self.state == "completed":
            return 400, {"detail": "Group is already completed and cannot be started again"}
        self.state = "running"
        return 200, {"_id": self.group_id, "state": "running"}

    def _stats(self, req: Request) -> tuple:
        gid = req.query.get("group_id", [""])[0]
        if gid != self.group_id:
            return 404, {"detail": "Group not found"}
        if self.on_stats is not None:
            self.on_stats()
        if self.per_read is not None:
            for e in self.experiments:
                self.serve(e, *self.per_read)
        with self.lock:
            stats = {}
            for e in self.experiments:
                if self.count[e] == 0:
                    continue  # the app omits experiments without stored results
                stats[e] = {"current_users": self.users[e], "current_interval": self.interval,
                            "current_profile_index": 3, "total_profiles": 8640,
                            "average_latency": self.latency_sum[e] / self.count[e],
                            "average_latency_per_interval": 0, "requests_count": self.count[e],
                            "success_rate": 1.0}
            total = sum(self.count.values())
            avg = sum(self.latency_sum.values()) / total if total else 0
            return 200, {"state": self.state, "experiments_stats": stats, "total_requests": total,
                         "average_latency": avg, "success_rate": 1.0 if total else 0,
                         "avg_latency_1m": avg, "avg_latency_5m": avg, "avg_latency_15m": avg}

    def _groups(self, req: Request) -> tuple:
        return 200, [{"_id": "5f0000000000000000000000", "name": "other", "experiment_ids": ["zz"]},
                     {"_id": self.group_id, "name": "run", "state": self.state,
                      "experiment_ids": list(self.experiments)}]

    def _experiment(self, req: Request) -> tuple:
        e = req.query.get("experiment_id", [""])[0]
        if e not in self.experiments:
            return 404, {"detail": "Experiment not found"}
        return 200, {"_id": e, "name": f"site {e}", "state": "running",
                     "settings": {"hosts": [{"host": self.experiments[e], "port": 8000}],
                                  "load_profiles": [], "timeout": 0.4}}


class MockKubernetes:
    """A whole mocked edge cluster for ``gym.make("lwmecps-v3", backend="kubernetes", ...)``: one
    loopback :class:`HttpStub` serving a :class:`FakeCluster` (one deployment per node) and a
    :class:`FakeTestApp` (one experiment per deployment) that serves ``requests_per_read`` requests
    of ``latency_ms`` between any two reads.

    >>> with MockKubernetes() as k8s:                      # doctest: +SKIP
    ...     env = gym.make("lwmecps-v3", backend="kubernetes", **k8s.env_kwargs(tmp_dir))

    Args:
        nodes: node names (one deployment ``<prefix><i>`` pinned to each).
        namespace: the namespace of the deployments.
        latency_ms: latency of the requests the fake test app reports, ms.
        requests_per_read: requests served per experiment between two reads of the app's stats.
        lag_reads: reads before a deployment's status catches up with a scale (rollout lag).

    Attributes:
        stub, cluster, app: the :class:`HttpStub`, :class:`FakeCluster` and :class:`FakeTestApp`
            (drive them, or assert on ``stub.calls(...)``).
    """

    def __init__(self, nodes: tuple[str, ...] = ("edge-0", "edge-1"), *, namespace: str = NS,
                 latency_ms: float = 40.0, requests_per_read: int = 5, lag_reads: int = 0,
                 group_id: str = "65f1c0ffee0000000000abcd", prefix: str = "lwmecps-testapp-server-bs") -> None:
        self.nodes = list(nodes)
        self.namespace = namespace
        self.group_id = group_id
        self.deployments = [f"{prefix}{i + 1}" for i in range(len(self.nodes))]
        self.stub = HttpStub()
        self.cluster = FakeCluster(self.stub, self.nodes, self.deployments, namespace=namespace, lag_reads=lag_reads)
        exps = {f"exp{i}": f"{d}.{namespace}.svc" for i, d in enumerate(self.deployments)}
        self.app = FakeTestApp(self.stub, group_id, exps)
        self.app.per_read = (requests_per_read, latency_ms)

    def env_kwargs(self, directory: str, stabilization_time: float = 0.05) -> dict:
        """``gym.make`` keyword arguments of ``lwmecps-v3`` on this cluster (writes a kubeconfig into
        ``directory``); ``stabilization_time`` is the real seconds each step waits."""
        return {
            "backend": "kubernetes", "node_name": list(self.nodes), "num_nodes": len(self.nodes),
            "namespace": self.namespace, "deployments": list(self.deployments), "group_id": self.group_id,
            "node_info": {n: {"cpu": 4, "ram": 8000, "avg_latency": 10 + 10 * i} for i, n in enumerate(self.nodes)},
            "env_config": {"base_url": self.stub.url, "stabilization_time": stabilization_time,
                           "kubeconfig": self.cluster.kubeconfig(directory)},
        }

    def start(self) -> MockKubernetes:
        self.stub.start()
        return self

    def stop(self) -> None:
        self.stub.stop()

    def __enter__(self) -> MockKubernetes:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
