"""Argument checks that fail loudly, naming the parameter and the allowed values.

Nothing is silently clipped, coerced or guessed: bad input raises ``ValueError`` (a value out of
the allowed set or range, a non-finite number) or ``TypeError`` (the wrong kind of object) with a
message of the form ``"<name> must be <rule>, got <value!r>"``. Types are exact: a numeric string
is not a number (``check_float("sla_ms", "100")`` raises ``TypeError``), a truthy string is not a
bool (``check_bool("use_ground_truth", "no")`` raises ``TypeError``), a bool is not a number.

Files: :func:`read_text` / :func:`read_text_lines` raise ``FileNotFoundError`` naming the path and
the parameter, and turn a decode error into a ``ValueError`` naming the file and the line.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def check_choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return ``value`` if it is one of ``allowed`` (compared by type and equality); else raise.

    ``True`` is not accepted for an allowed ``1`` (nor ``1`` for ``True``), and an object that cannot
    be compared (a numpy array, ...) raises ``TypeError`` instead of an ambiguous truth value.

    Raises:
        ValueError: ``value`` is not one of ``allowed`` (the message lists them).
    """
    allowed = list(allowed)
    for a in allowed:
        if type(a) is type(value) or (isinstance(a, str) and isinstance(value, str)):
            try:
                if bool(a == value):
                    return value
            except (TypeError, ValueError):  # pragma: no cover (exotic __eq__)
                continue
        elif _is_number(a) and _is_number(value) and not isinstance(a, bool):
            try:
                if a == value:
                    return value
            except (TypeError, ValueError):  # pragma: no cover
                continue
    raise ValueError(f"{name} must be one of {allowed!r}, got {_short(value)}")


def check_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as ``int`` if it is an integer (Python or numpy, not bool) in ``[low, high]``.

    Raises:
        TypeError: not an integer (``3.0``, ``"3"``, ``True`` are refused). ValueError: out of range.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer{_range_text(low, high)} (not {type(value).__name__}), "
                        f"got {_short(value)}")
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
    """Return ``value`` as a finite ``float`` in ``[low, high]`` (``(low, high]`` if ``low_open``).

    Accepts Python and numpy real numbers (ints included); strings, bools and other objects raise.

    Raises:
        TypeError: ``value`` is not a real number (e.g. the string ``"100"``, ``True``, ``None``).
        ValueError: NaN, infinite, or outside the range.
    """
    if not _is_number(value):
        raise TypeError(f"{name} must be a real number{_range_text(low, high, low_open)} (int or float, "
                        f"not {type(value).__name__}), got {_short(value)}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite (a real number, not NaN or inf), got {value!r}")
    if low_open and low is not None and v <= low:
        raise ValueError(f"{name} must be > {low}, got {value!r}")
    _check_range(name, v, low, high)
    return v


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` as ``bool`` if it is ``True``/``False`` (Python or numpy bool).

    Raises:
        TypeError: anything else, including truthy strings such as ``"no"`` and the ints 0/1.
    """
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {_short(value)}")


def check_seed(name: str, value: Any, *, allow_none: bool = True) -> int | None:
    """Return a random seed: ``None`` (if ``allow_none``) or an int ``>= 0`` (numpy's rule).

    Raises:
        TypeError: not an int (floats, strings and bools are refused).
        ValueError: negative.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        what = "None or an integer >= 0" if allow_none else "an integer >= 0"
        raise TypeError(f"{name} must be {what}, got {_short(value)}")
    value = int(value)
    if value < 0:
        raise ValueError(f"{name} must be an integer >= 0 (a random seed), got {value!r}")
    return value


def check_str(name: str, value: Any, *, allow_empty: bool = False) -> str:
    """Return ``value`` if it is a ``str`` (non-empty unless ``allow_empty``)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {_short(value)}")
    if not value and not allow_empty:
        raise ValueError(f"{name} must be a non-empty string, got ''")
    return value


def check_sequence(
    name: str,
    value: Any,
    *,
    length: int | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    item: Callable[[str, Any], Any] | None = None,
) -> list:
    """Return ``value`` as a list after checking that it is a sequence of the right length.

    A sequence is a list, tuple, range or 1-d numpy array; strings, bytes, mappings, sets (no order)
    and scalars raise ``TypeError`` naming the parameter. ``item(f"{name}[{i}]", x)`` checks (and may
    convert) each element, e.g. ``item=lambda n, x: check_float(n, x, low=0)``.

    Raises:
        TypeError: not a sequence (e.g. ``weight_levels=5``) or an element of the wrong type.
        ValueError: wrong length, or an element out of range.
    """
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise ValueError(f"{name} must be a 1-d sequence, got an array of shape {value.shape}")
        seq = list(value)
    elif isinstance(value, (list, tuple, range)) or (
            isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray))):
        seq = list(value)
    else:
        raise TypeError(f"{name} must be a sequence (list or tuple), got {_short(value)}")
    n = len(seq)
    if length is not None and n != length:
        raise ValueError(f"{name} must have exactly {length} elements, got {n}: {_short(value)}")
    if min_length is not None and n < min_length:
        raise ValueError(f"{name} must have at least {min_length} elements, got {n}: {_short(value)}")
    if max_length is not None and n > max_length:
        raise ValueError(f"{name} must have at most {max_length} elements, got {n}: {_short(value)}")
    if item is not None:
        seq = [item(f"{name}[{i}]", x) for i, x in enumerate(seq)]
    return seq


def check_array(
    name: str,
    value: Any,
    *,
    shape: tuple[int | None, ...] | None = None,
    low: float | None = None,
    high: float | None = None,
    integer: bool = False,
) -> np.ndarray:
    """Return ``value`` as a finite numeric numpy array (``float64``, or ``int64`` if ``integer``).

    ``shape`` entries of ``None`` match any length. Strings, objects, bools (unless the array is
    numeric) and ragged nested lists raise ``TypeError``; NaN/inf, a wrong shape or values outside
    ``[low, high]`` raise ``ValueError``. Integer arrays refuse non-integral floats.
    """
    if isinstance(value, (str, bytes, Mapping)) or value is None:
        raise TypeError(f"{name} must be a numeric array, got {_short(value)}")
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:  # ragged nesting
        raise TypeError(f"{name} must be a numeric array (a regular nested list), got {_short(value)}") from exc
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype} ({_short(value)})")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != d for s, d in zip(shape, arr.shape, strict=False)):
            want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
            raise ValueError(f"{name} must have shape {want}, got shape {arr.shape}")
    f = arr.astype(np.float64)
    if not np.all(np.isfinite(f)):
        raise ValueError(f"{name} must contain only finite numbers, got {_short(value)}")
    if integer:
        if not np.issubdtype(arr.dtype, np.integer) and not np.all(f == np.round(f)):
            raise ValueError(f"{name} must contain integers, got {_short(value)}")
        out = f.astype(np.int64) if not np.issubdtype(arr.dtype, np.integer) else arr.astype(np.int64)
    else:
        out = f
    if low is not None and out.size and float(f.min()) < low:
        raise ValueError(f"{name} must be >= {low} everywhere, got min {f.min()!r}")
    if high is not None and out.size and float(f.max()) > high:
        raise ValueError(f"{name} must be <= {high} everywhere, got max {f.max()!r}")
    return out


def check_path(name: str, value: Any, *, must_exist: bool = True) -> Path:
    """Return ``value`` (``str`` or ``os.PathLike``) as a ``Path``.

    Raises:
        TypeError: ``None`` or another object.
        FileNotFoundError: ``must_exist`` and the path is not an existing file (the message names
            the parameter and the path).
    """
    if isinstance(value, (bytes, bytearray)) or not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a file path (str or os.PathLike), got {_short(value)}")
    path = Path(value)
    if must_exist and not path.is_file():
        what = "is a directory, not a file" if path.is_dir() else "does not exist"
        raise FileNotFoundError(f"{name}: file {str(path)!r} {what}")
    return path


def decode_text(data: bytes, source: str, encoding: str = "utf-8") -> str:
    """Decode ``data`` strictly; a bad byte raises ``ValueError`` naming ``source``, line and column."""
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        col = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ValueError(
            f"{source}: line {line}, column {col}: not valid {encoding} text "
            f"(byte {data[exc.start:exc.start + 1]!r}: {exc.reason}); is it a binary file?"
        ) from None
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise ValueError(f"{source}: line {line}: contains a NUL byte; is it a binary file?")
    return text


def read_text(name: str, path: Any, *, encoding: str = "utf-8") -> str:
    """Read a text file strictly (see :func:`check_path` and :func:`decode_text`).

    Raises:
        TypeError: ``path`` is not a path. FileNotFoundError: it does not exist.
        ValueError: the bytes do not decode (names the file, line and column).
    """
    p = check_path(name, path)
    return decode_text(p.read_bytes(), f"{name} {str(p)!r}", encoding)


def read_text_lines(name: str, path: Any, *, encoding: str = "utf-8") -> list[str]:
    """:func:`read_text` split into lines (line ``i`` of the result is line ``i + 1`` of the file)."""
    return read_text(name, path, encoding=encoding).splitlines()


def check_positive(name: str, value: Any) -> float:
    """Return ``value`` as a finite float ``> 0``."""
    return check_float(name, value, low=0.0, low_open=True)


def _range_text(low: float | None, high: float | None, low_open: bool = False) -> str:
    """`` in [low, high]`` / `` > low`` / ... for messages (empty without bounds)."""
    if low is None and high is None:
        return ""
    if high is None:
        return f" {'>' if low_open else '>='} {low}"
    if low is None:
        return f" <= {high}"
    return f" in {'(' if low_open else '['}{low}, {high}]"


def _is_number(value: Any) -> bool:
    """A real number: Python/numpy ints and floats (not bools, strings, arrays or None)."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _short(value: Any, limit: int = 120) -> str:
    """``repr(value)`` cut to ``limit`` characters (error messages stay readable)."""
    try:
        r = repr(value)
    except Exception:  # pragma: no cover
        r = f"<{type(value).__name__}>"
    return r if len(r) <= limit else r[: limit - 3] + "..."


def _check_range(name: str, v: float, low: float | None, high: float | None) -> None:
    if low is not None and v < low:
        raise ValueError(f"{name} must be >= {low}, got {v!r}")
    if high is not None and v > high:
        raise ValueError(f"{name} must be <= {high}, got {v!r}")


def check_keys(name: str, mapping: Any, *, allowed: Iterable[str], required: Iterable[str] = ()) -> dict:
    """Check that ``mapping`` is a Mapping with only ``allowed`` keys and all ``required`` ones."""
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{name} must be a mapping (dict), got {type(mapping).__name__}: {_short(mapping)}")
    allowed = set(allowed)
    bad = [k for k in mapping if not isinstance(k, str)]
    if bad:
        raise TypeError(f"{name} keys must be strings; allowed keys: {sorted(allowed)}; got {_short(bad)}")
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

    Field values are then checked against the fields' annotations (:func:`check_fields`): a
    ``float`` field must hold a finite real number, an ``int`` field an int, a ``bool`` field a
    bool, a ``str`` field a str (each optionally ``| None``), and a field whose name ends in
    ``seed`` a seed (an int >= 0). The error names ``name[field]``.
    """
    if not is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    if value is None:
        return cls()
    if isinstance(value, cls):
        check_fields(value, name)
        return value
    if isinstance(value, Mapping):
        names = {f.name for f in fields(cls)}
        check_keys(name, value, allowed=names)
        for key, v in value.items():
            _check_annotated(cls, key, v, f"{name}[{key!r}]")
        return cls(**value)
    raise TypeError(f"{name} must be a {cls.__name__} or a mapping, got {type(value).__name__}")


_SCALAR_CHECKS: dict[str, Callable[[str, Any], Any]] = {
    "float": check_float,
    "int": check_int,
    "bool": check_bool,
    "str": lambda n, v: check_str(n, v, allow_empty=True),
}


def _annotation_check(cls: type, field_name: str) -> tuple[Callable[[str, Any], Any] | None, bool]:
    """The scalar check for a field's annotation (``None`` if not a plain scalar) and whether None is allowed."""
    ann = getattr(cls, "__annotations__", {}).get(field_name)
    if ann is None:
        for base in getattr(cls, "__mro__", ())[1:]:
            ann = getattr(base, "__annotations__", {}).get(field_name)
            if ann is not None:
                break
    if not isinstance(ann, str):
        ann = getattr(ann, "__name__", None) if isinstance(ann, type) else None
        if ann is None:
            return None, True
    parts = [p.strip() for p in ann.replace("Optional[", "").rstrip("]").split("|")]
    optional = "None" in parts
    kinds = [p for p in parts if p != "None"]
    if len(kinds) != 1 or kinds[0] not in _SCALAR_CHECKS:
        return None, True
    return _SCALAR_CHECKS[kinds[0]], optional


def _check_annotated(cls: type, field_name: str, value: Any, label: str) -> None:
    if field_name.endswith("seed"):
        check_seed(label, value)
        return
    check, optional = _annotation_check(cls, field_name)
    if check is None or (value is None and optional):
        return
    check(label, value)


def check_fields(obj: Any, name: str = "config") -> None:
    """Check a dataclass instance's field values against their annotations (see :func:`coerce_dataclass`).

    Raises:
        TypeError / ValueError: naming ``name[field]``.
    """
    for f in fields(obj):
        _check_annotated(type(obj), f.name, getattr(obj, f.name), f"{name}[{f.name!r}]")


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
