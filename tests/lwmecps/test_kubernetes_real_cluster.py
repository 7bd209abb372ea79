"""Smoke test against a REAL cluster (marker ``k8s``), skipped unless configured.

Set ``LWMECPS_K8S_NAMESPACE`` and ``LWMECPS_K8S_DEPLOYMENTS`` (comma-separated) and have a kubeconfig
(``KUBECONFIG`` or ``~/.kube/config``) or run in a pod with the RBAC of ``docs/rbac/lwmecps-rbac.yaml``.
It reads nodes and deployments, and re-sends each deployment's current replica count through the scale
subresource (a no-op that still needs the ``patch deployments/scale`` permission), then waits for the
rollouts. It never changes the cluster's state.
"""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.k8s

NAMESPACE = os.environ.get("LWMECPS_K8S_NAMESPACE")
DEPLOYMENTS = [d for d in os.environ.get("LWMECPS_K8S_DEPLOYMENTS", "").split(",") if d]


@pytest.mark.skipif(not (NAMESPACE and DEPLOYMENTS),
                    reason="set LWMECPS_K8S_NAMESPACE and LWMECPS_K8S_DEPLOYMENTS to run against a real cluster")
def test_real_cluster_reads_and_idempotent_scale():
    pytest.importorskip("kubernetes")
    from kubernetes import client

    from lwmecps_gym.backends.kubernetes import KubernetesBackend, KubernetesConfig, _make_api_client
    from lwmecps_gym.backends.latency import TestAppLatencySource

    cfg = KubernetesConfig.from_mapping({"rollout_timeout_s": 120})
    api = _make_api_client(cfg)
    nodes = [n.metadata.name for n in client.CoreV1Api(api).list_node().items]
    # the latency source is not used by this test (no observe); it only satisfies the constructor
    unused = TestAppLatencySource("http://127.0.0.1:9", "unused", DEPLOYMENTS)
    be = KubernetesBackend(nodes, DEPLOYMENTS, NAMESPACE, unused, config=cfg, api_client=api)
    try:
        assert set(be.node_allocatable) == set(nodes)
        assert all(v["cpu_cores"] > 0 and v["memory_mb"] > 0 for v in be.node_allocatable.values())
        apps = client.AppsV1Api(api)

        def replicas() -> dict[str, int]:
            return {d: apps.read_namespaced_deployment(d, NAMESPACE).spec.replicas or 0 for d in DEPLOYMENTS}

        current = replicas()
        be.scale(current)
        be.advance(0)  # waits for the rollouts, no window
        assert replicas() == current
    finally:
        be.close()
        api.close()
