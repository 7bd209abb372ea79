"""The backend contract and the errors backends raise.

An env owns the MDP (spaces, reward, episode logic, info); a backend owns the world: it applies
a control decision and reports measurements. Every family's backends (simulated and real)
implement :class:`Backend`; the env template over it is :class:`lwmecps_gym.core.env.BackendEnv`.
Backends never import envs. Real backends raise the errors below and never fabricate a
measurement.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, runtime_checkable

M_co = TypeVar("M_co", covariant=True)


class BackendError(RuntimeError):
    """A backend could not apply an action or produce a measurement."""


class TransientBackendError(BackendError):
    """A failure worth retrying (HTTP 409/429/5xx, connection reset, timeout)."""


class PermanentBackendError(BackendError):
    """A failure that retrying cannot fix (403, 404, malformed response, missing series)."""


@runtime_checkable
class Backend(Protocol[M_co]):
    """The contract every backend of every family implements.

    * ``reset(seed)``: start a new episode; a simulator rewinds its workload to the seeded start
      (``seed`` is a non-negative int or ``None``), a real backend re-reads the cluster's state.
    * ``apply(command)``: enact the decoded control decision (family-specific type).
    * ``advance(seconds)``: let ``seconds`` of (simulated or wall-clock) time pass.
    * ``observe()``: the measurement record of the last control period (a frozen dataclass with
      units in its field names); cheap and side-effect free.
    * ``close()``: release processes, sockets, shared memory.

    Real backends raise :class:`lwmecps_gym.core.backend.BackendError` subclasses and never
    fabricate a measurement.
    """

    def reset(self, seed: int | None = None) -> None: ...

    def apply(self, command: Any) -> None: ...

    def advance(self, seconds: float) -> None: ...

    def observe(self) -> M_co: ...

    def close(self) -> None: ...
