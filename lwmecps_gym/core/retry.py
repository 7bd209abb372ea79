"""Retry with exponential backoff for real backends (needs ``tenacity``, in the k8s/prometheus extras).

Only :class:`~lwmecps_gym.core.backend.TransientBackendError` is retried; a
:class:`~lwmecps_gym.core.backend.PermanentBackendError` propagates at once, and
the last transient error is re-raised when attempts run out (``reraise=True``),
so callers always see the real cause and never a made-up value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from lwmecps_gym.core.backend import TransientBackendError
from lwmecps_gym.core.validation import check_float, check_int

F = TypeVar("F", bound=Callable[..., Any])

#: HTTP statuses treated as transient by real backends.
TRANSIENT_HTTP_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


def with_retry(attempts: int = 5, initial_s: float = 0.5, max_s: float = 8.0) -> Callable[[F], F]:
    """Decorator: retry on :class:`TransientBackendError` with exponential backoff and jitter.

    Exactly ``attempts`` calls at most, so with a per-call timeout ``T`` a call ends within
    ``attempts * T + (attempts - 1) * max_s`` seconds (the clients underneath must not retry on
    their own: real backends turn urllib3's retries off).

    Args:
        attempts: total tries (int >= 1).
        initial_s: first backoff in seconds (finite, >= 0).
        max_s: cap on one backoff in seconds (finite, >= 0).

    Raises:
        TypeError / ValueError: a bad argument, naming it.
    """
    import tenacity

    attempts = check_int("retry_attempts", attempts, low=1)
    initial_s = check_float("retry_initial_s", initial_s, low=0.0)
    max_s = check_float("retry_max_s", max_s, low=0.0)

    return tenacity.retry(
        retry=tenacity.retry_if_exception_type(TransientBackendError),
        stop=tenacity.stop_after_attempt(attempts),
        # wait = initial_s * 2**(n-1) + U(0, initial_s), capped at max_s
        wait=tenacity.wait_exponential_jitter(multiplier=initial_s, max=max_s, jitter=initial_s),
        reraise=True,
    )
