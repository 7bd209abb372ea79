"""Argument checks that fail loudly, naming the parameter and the allowed values.

Nothing is silently clipped or guessed: bad input raises ``ValueError`` (or
``TypeError`` for the wrong kind of object) with a message of the form
``"<name> must be <rule>, got <value!r>"``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed``; else raise ``ValueError``."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed!r}, got {value!r}")
    return value


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as ``int`` if it is an integer in ``[low, high]``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    _check_range(name, value, low, high)
    return value


def check_float(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """Return ``value`` as a finite ``float`` in ``[low, high]`` (``(low, high]`` if ``low_open``)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if low_open and low is not None and v <= low:
        raise ValueError(f"{name} must be > {low}, got {value!r}")
    _check_range(name, v, low, high)
    return v


def check_positive(name: str, value: Any) -> float:
    """Return ``value`` as a finite float ``> 0``."""
    return check_float(name, value, low=0.0, low_open=True)


def _check_range(name: str, v: float, low: float | None, high: float | None) -> None:
    if low is not None and v < low:
        raise ValueError(f"{name} must be >= {low}, got {v!r}")
    if high is not None and v > high:
        raise ValueError(f"{name} must be <= {high}, got {v!r}")


def check_keys(name: str, mapping: Any, *, allowed: Iterable[str], required: Iterable[str] = ()) -> dict:
    """Check that ``mapping`` is a Mapping with only ``allowed`` keys and all ``required`` ones."""
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{name} must be a mapping (dict), got {type(mapping).__name__}")
    allowed = set(allowed)
    unknown = sorted(set(mapping) - allowed)
    if unknown:
        raise ValueError(f"{name} has unknown keys {unknown}; allowed keys: {sorted(allowed)}")
    missing = sorted(set(required) - set(mapping))
    if missing:
        raise ValueError(f"{name} is missing required keys {missing}")
    return dict(mapping)


def coerce_dataclass(cls: type[T], value: T | Mapping[str, Any] | None, name: str = "config") -> T:
    """Return an instance of dataclass ``cls`` from an instance, a Mapping or ``None``.

    A dataclass passed through ``gym.make`` kwargs comes back as a plain dict
    after an ``EnvSpec`` JSON round-trip; this turns it back. Unknown keys raise
    ``ValueError`` listing the allowed field names.
    """
    if not is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        names = {f.name for f in fields(cls)}
        check_keys(name, value, allowed=names)
        return cls(**value)
    raise TypeError(f"{name} must be a {cls.__name__} or a mapping, got {type(value).__name__}")


_UNSET: Any = object()


def unset() -> Any:
    """The sentinel default of an argument that has a documented upstream alias (see :func:`resolve_alias`)."""
    return _UNSET


def resolve_alias(name: str, value: Any, alias: str, alias_value: Any, default: Any) -> Any:
    """Resolve an argument that also accepts an upstream (seed) name, e.g. ``interval_s`` / ``stabilization_time``.

    Both ``value`` and ``alias_value`` default to :func:`unset`. Returns whichever was given, or
    ``default`` when neither was.

    Raises:
        TypeError: if both names were given.
    """
    if value is not _UNSET and alias_value is not _UNSET:
        raise TypeError(f"give {name} or its alias {alias}, not both")
    if value is not _UNSET:
        return value
    if alias_value is not _UNSET:
        return alias_value
    return default
