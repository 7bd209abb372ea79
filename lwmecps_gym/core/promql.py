"""Quoting of values put into PromQL: one implementation for every family's Prometheus queries.

A label value must never be pasted into a query unescaped: a name with a quote or a backslash would
break the query, or change what it selects. :func:`promql_string` makes a double-quoted PromQL
string literal; :func:`promql_regex_literal` makes a value match itself literally inside a RE2
regular expression (for ``=~`` matchers; wrap the result with :func:`promql_string` too).
Reference: the PromQL string-literal rules (Go escapes) and the RE2 syntax.
"""

from __future__ import annotations

__all__ = ["promql_escape", "promql_regex_literal", "promql_string"]

_RE2_SPECIAL = frozenset(r"\.+*?()|[]{}^$")


def promql_escape(value: str) -> str:
    """The body of a double-quoted PromQL string literal for ``value`` (no surrounding quotes).

    Backslash, double quote, newline, carriage return and tab are escaped.

    Raises:
        TypeError: ``value`` is not a ``str``.
    """
    if not isinstance(value, str):
        raise TypeError(f"label value must be a str, got {value!r}")
    return (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            .replace("\r", "\\r").replace("\t", "\\t"))


def promql_string(value: str) -> str:
    """``value`` as a double-quoted PromQL string literal (see :func:`promql_escape`)."""
    return f'"{promql_escape(value)}"'


def promql_regex_literal(value: str) -> str:
    """Escape ``value`` so that it matches itself literally inside a RE2 regular expression.

    The result still has to be quoted with :func:`promql_string` / :func:`promql_escape` (which
    double the backslashes).
    """
    if not isinstance(value, str):
        raise TypeError(f"label value must be a str, got {value!r}")
    return "".join("\\" + ch if ch in _RE2_SPECIAL else ch for ch in value)
