"""Backend protocol style and backend errors.

An env owns the MDP (spaces, reward, episode logic, info); a backend owns the
world: it applies an action and reports measurements. Each family declares its
own small :class:`typing.Protocol` (e.g. ``lwmecps_gym.backends.base``) in this
style:

* ``reset(seed: int | None) -> None``: start a new episode; simulated backends
  rewind their workload to a seeded start, real backends re-read cluster state.
* ``apply(...)``: enact a control decision (replicas, placement, weights).
* ``observe() -> <Measurement dataclass>``: report what was measured over the
  last control interval, with units in the field names (``latency_ms``).
* ``close() -> None``.

Backends never import envs. Real backends raise the errors below and never
fabricate a measurement.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class BackendError(RuntimeError):
    """A backend could not apply an action or produce a measurement."""


class TransientBackendError(BackendError):
    """A failure worth retrying (HTTP 409/429/5xx, connection reset, timeout)."""


class PermanentBackendError(BackendError):
    """A failure that retrying cannot fix (403, 404, malformed response, missing series)."""


@runtime_checkable
class Backend(Protocol):
    """The minimal lifecycle every backend implements."""

    def reset(self, seed: int | None = None) -> None: ...

    def close(self) -> None: ...
