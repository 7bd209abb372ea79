"""The contract between the MEC envs and their backends (the core :class:`~lwmecps_gym.core.backend.Backend`).

Data flows one way (the template of :class:`lwmecps_gym.core.env.BackendEnv`)::

    env.step(action) -> command = env.decode_action(action)      # ScaleCommand / PlaceCommand
                     -> backend.apply(command)
                     -> backend.advance(interval_s)
                     -> m = backend.observe()                     # a ClusterMeasurement
                     -> obs(m), reward(m), info(m)

Backends never import envs; envs never branch on the kind of backend. A backend is the
simulator (:class:`~lwmecps_gym.backends.sim.SimBackend`), a real cluster
(:class:`~lwmecps_gym.backends.kubernetes.KubernetesBackend`) or any object implementing
:class:`ClusterBackend`.

Indexing convention: ``deployments[i]`` is the deployment serving edge site ``i``
(v3 has one deployment per site); ``node_names[j]`` is Kubernetes node ``j``.
Arrays in :class:`ClusterMeasurement` and :class:`ScaleCommand` follow these orders.
"""

from __future__ import annotations

from collections.abc import Sequence
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
        time_of_day_s: local time of day at the end of the window, s in [0, 86400) (simulated time
            for ``sim``), or ``None`` if the backend does not know it (the envs then use the wall clock).
        rtt_to_nodes_ms: ``float64 (n_nodes,)`` request-weighted mean RTT from the window's users
            of the placed deployment to every node, ms (placement layout of the simulator), or
            ``None`` if not measured (the placement envs then use the scenario's static mean RTT).
        migrations: placement moves (rollouts to another node) started in this window; the
            initial placement of an episode is not a move.
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
    time_of_day_s: float | None = None
    rtt_to_nodes_ms: np.ndarray | None = None
    migrations: int = 0


@dataclass(frozen=True)
class ScaleCommand:
    """Set ``spec.replicas`` of every deployment (``lwmecps-v3``).

    Attributes:
        replicas: desired replica count of deployment ``i`` at index ``i`` (ints >= 0, one per
            deployment; the env validated them against its action space).
    """

    replicas: Sequence[int]


@dataclass(frozen=True)
class PlaceCommand:
    """Run ``deployment``'s pods on node ``node`` (``lwmecps-v0``..``v2``).

    Attributes:
        deployment: name of the placed deployment.
        node: node index into ``backend.node_names``.
        initial: ``True`` for the episode's starting placement (right after ``reset``): the
            simulator starts the deployment there at once and counts no migration; a real
            cluster patches the pod template as for any move (``advance(0)`` then waits for the
            rollout). ``False``: a move, a RollingUpdate whose new pods serve once ready; a
            command for the node already targeted is a no-op.
    """

    deployment: str
    node: int
    initial: bool = False


#: The commands of the MEC envs.
ClusterCommand = ScaleCommand | PlaceCommand


@runtime_checkable
class ClusterBackend(Protocol):
    """A cluster the MEC envs can act on: the simulator or a real Kubernetes cluster.

    The core :class:`~lwmecps_gym.core.backend.Backend` contract with :class:`ClusterCommand`
    commands and :class:`ClusterMeasurement` records, plus the names of nodes and deployments.
    """

    #: Kubernetes node names, in index order.
    node_names: Sequence[str]
    #: Deployment names, in index order (one per edge site for v3).
    deployments: Sequence[str]

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: sim rewinds its workload to a seeded start; real re-reads cluster state."""

    def apply(self, command: ClusterCommand) -> None:
        """Enact a :class:`ScaleCommand` (v3) or :class:`PlaceCommand` (v0-v2); takes effect after pod start-up."""

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of (simulated or real) time pass: rollouts progress, requests are served.

        ``advance(0)`` starts no new window (the placement envs call it after the initial placement).
        """

    def observe(self) -> ClusterMeasurement:
        """Measurements over the last window; cheap and side-effect free."""

    def close(self) -> None:
        """Release connections and resources."""
