"""The contract between the MEC envs and their backends.

Data flows one way: env.step(action) -> backend.scale()/place() ->
backend.advance(stabilization_time_s) -> backend.observe() -> env builds obs/reward/info.
Backends never import envs.

Indexing convention: ``deployments[i]`` is the deployment serving edge site ``i``
(v3 has one deployment per site); ``node_names[j]`` is Kubernetes node ``j``.
Arrays in :class:`ClusterMeasurement` follow these orders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class ClusterMeasurement:
    """What a backend measured over the last control window.

    Attributes:
        time_s: seconds since ``reset`` (simulated time for ``sim``, wall clock for real backends).
        window_s: length of the measurement window in seconds.
        replicas_desired: ``int64 (n_deployments,)`` replicas asked for (``spec.replicas``).
        replicas_ready: ``int64 (n_deployments,)`` replicas ready to serve at the end of the window.
        pods_per_node: ``int64 (n_deployments, n_nodes)`` ready pods of each deployment on each node.
        demand_rps: ``float64 (n_deployments,)`` request rate offered to each deployment over the
            window (requests/s).
        latency_ms: ``float64 (n_deployments,)`` windowed mean end-to-end latency of the requests
            offered to each deployment (network RTT + queueing + service), ms. Never a cumulative mean.
        mean_latency_ms: request-weighted windowed mean over all deployments, ms.
        sla_violation_rate: fraction in [0, 1] of requests in the window whose latency exceeded the
            SLA, or ``None`` if the backend's latency source cannot tell.
        failed_rps: request rate that could not be served (no ready replica reachable, or dropped), req/s.
    """

    time_s: float
    window_s: float
    replicas_desired: np.ndarray
    replicas_ready: np.ndarray
    pods_per_node: np.ndarray
    demand_rps: np.ndarray
    latency_ms: np.ndarray
    mean_latency_ms: float
    sla_violation_rate: float | None
    failed_rps: float


@runtime_checkable
class ClusterBackend(Protocol):
    """A cluster the MEC envs can act on: the simulator or a real Kubernetes cluster."""

    #: Kubernetes node names, in index order.
    node_names: Sequence[str]
    #: Deployment names, in index order (one per edge site for v3).
    deployments: Sequence[str]

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: sim rewinds its workload to a seeded start; real re-reads cluster state."""

    def scale(self, replicas: Mapping[str, int]) -> None:
        """Set ``spec.replicas`` of the named deployments (v3). Takes effect after pod start-up."""

    def place(self, deployment: str, node: str) -> None:
        """Move ``deployment``'s pods to ``node`` (v0-v2: nodeSelector/nodeAffinity rollout)."""

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of (simulated or real) time pass: rollouts progress, requests are served."""

    def observe(self) -> ClusterMeasurement:
        """Measurements over the window since the previous ``advance`` began."""

    def close(self) -> None:
        """Release connections and resources."""
