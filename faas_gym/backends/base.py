"""The contract between the faas_gym envs and their backends.

Data flows one way (the template of :class:`lwmecps_gym.core.env.BackendEnv`):
``env.step(action)`` -> ``backend.apply(replicas)`` -> ``backend.advance(interval_s)`` ->
``backend.observe()`` -> the env builds observation, reward and info from the returned
:class:`FaasMeasurement`. Backends never import envs.

Both the simulator (:mod:`faas_gym.backends.sim`) and the real OpenFaaS/Kubernetes
backend (:mod:`faas_gym.backends.openfaas`) implement :class:`FaasBackend`.
A real backend that cannot measure something it must report raises a
:class:`lwmecps_gym.core.backend.BackendError` instead of returning a made-up value;
fields that a backend genuinely cannot know are ``None`` where the type allows it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from lwmecps_gym.core.backend import Backend


@dataclass(frozen=True)
class FaasMeasurement:
    """What a backend measured over the last control interval (the window of the last ``advance``).

    Attributes:
        time_s: seconds since ``reset`` at the end of the window (simulated time for ``sim``,
            wall clock for real backends).
        window_s: length of the measurement window, s.
        replicas: replicas ready to serve at the end of the window (cold-starting ones excluded).
        replicas_desired: replicas asked for (the Deployment's ``spec.replicas``).
        cpu_utilization: mean CPU utilisation of the ready replicas over the window, in [0, 1]
            (busy time / (replicas x concurrency x window) for the sim; CPU used / CPU limit for real).
        memory_utilization: memory working set / (replicas x per-replica memory limit), in [0, 1].
        response_time_ms: mean response time (queueing + cold-start wait + service) of the requests
            completed in the window, ms; 0.0 if none completed (then ``throughput_rps`` is 0 too).
        request_rate_rps: arrivals / window_s, requests/s.
        throughput_rps: completions / window_s, requests/s.
        cold_starts: replicas that started cold (began start-up) during the window.
        queue_length: requests waiting (not in service) at the end of the window.
        dropped: requests dropped in the window (queue full or no replica could ever serve them).
        slo_violation_rate: fraction of completed requests in the window with response time
            > the SLO, in [0, 1]; ``None`` if the backend cannot tell (e.g. no histogram).
        arrived: requests that arrived in the window, or ``None`` if not counted (real backends).
        completed: requests that completed in the window, or ``None``.
        in_system: requests queued or in service at the end of the window, or ``None``.
            For the sim, conservation holds per window:
            ``in_system_prev + arrived = completed + dropped + in_system``.
    """

    time_s: float
    window_s: float
    replicas: int
    replicas_desired: int
    cpu_utilization: float
    memory_utilization: float
    response_time_ms: float
    request_rate_rps: float
    throughput_rps: float
    cold_starts: int
    queue_length: int
    dropped: int
    slo_violation_rate: float | None
    arrived: int | None = None
    completed: int | None = None
    in_system: int | None = None


@runtime_checkable
class FaasBackend(Backend[FaasMeasurement], Protocol):
    """The core :class:`~lwmecps_gym.core.backend.Backend` contract with a replica count as the command.

    A FaaS platform the faas_gym envs can act on: the simulator or a real OpenFaaS cluster.
    """

    def reset(self, seed: int | None = None) -> None:
        """Start an episode: the sim rewinds to a seeded start; a real backend re-reads cluster state."""

    def apply(self, command: int) -> None:
        """Ask for ``command`` (an int >= 0) replicas of the function; new ones pay a cold start before
        serving. Applying the current count again is a no-op."""

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of (simulated or real) time pass; requests arrive and are served."""

    def observe(self) -> FaasMeasurement:
        """Measurements over the window of the last :meth:`advance` (cheap, no side effects)."""

    def close(self) -> None:
        """Release connections and resources."""
