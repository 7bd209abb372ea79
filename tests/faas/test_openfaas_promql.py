"""Unit tests of the PromQL layer of the OpenFaaS backend: quoting, query shapes, SLO fraction."""

from __future__ import annotations

import math
import re

import pytest

from faas_gym.backends.promql import (
    FunctionRef,
    duration,
    fraction_at_most,
    promql_regex_literal,
    promql_string,
    queries,
    selector,
)
from lwmecps_gym.core.backend import PermanentBackendError


def test_promql_string_escapes_quotes_backslashes_and_newlines():
    assert promql_string("hello.openfaas-fn") == '"hello.openfaas-fn"'
    assert promql_string('a"b') == r'"a\"b"'
    assert promql_string("a\\b") == r'"a\\b"'
    assert promql_string("a\nb") == r'"a\nb"'
    with pytest.raises(TypeError, match="label value must be a str"):
        promql_string(200)


def test_regex_literal_escapes_re2_metacharacters():
    lit = promql_regex_literal("my.fn+v2")
    assert lit == r"my\.fn\+v2"
    # Python's re agrees with RE2 on these escapes: the literal matches itself and nothing looser.
    assert re.fullmatch(lit, "my.fn+v2")
    assert not re.fullmatch(lit, "myXfn+v2")


def test_duration_is_whole_milliseconds_and_positive():
    assert duration(30) == "30000ms"
    assert duration(2.5) == "2500ms"
    with pytest.raises(ValueError, match="positive"):
        duration(0)


def test_selector_quotes_every_value_and_rejects_unknown_matchers():
    assert selector("m", code="200") == 'm{code="200"}'
    assert selector("m", code=("!~", "2..")) == 'm{code!~"2.."}'
    with pytest.raises(ValueError, match="unknown label matcher"):
        selector("m", code=("==", "200"))


def test_gateway_label_is_name_dot_namespace_and_code_is_never_unquoted():
    fn = FunctionRef("hello", "openfaas-fn")
    q = queries(fn, 30.0)
    assert fn.gateway_label == "hello.openfaas-fn"
    assert 'function_name="hello.openfaas-fn"' in q["completed_rate_by_code"]
    assert "[30000ms]" in q["completed_rate_by_code"]
    for text in q.values():
        assert "code=2" not in text and "code=200" not in text  # FaaSTrainGym's parse error
        assert "'" not in text  # only double-quoted literals


def test_pod_regex_matches_replicaset_pods_of_this_function_only():
    fn = FunctionRef("hello", "openfaas-fn")
    rx = re.compile(fn.pod_regex)  # RE2 and Python agree on this subset; Prometheus anchors it
    assert rx.fullmatch("hello-7d9f8b6c5d-abcde")
    assert not rx.fullmatch("hello-world-5c6d7e8f9b-pqrst")
    assert not rx.fullmatch("hello-7d9f8b6c5d")
    dotted = FunctionRef("api.v2", "fns")
    assert re.fullmatch(dotted.pod_regex, "api.v2-abc12-xyz12")
    assert not re.fullmatch(dotted.pod_regex, "apiXv2-abc12-xyz12")
    q = queries(dotted, 10)["cpu_cores_by_pod"]
    # the regex dot is escaped once for RE2 and once more inside the PromQL string literal
    assert r'pod=~"api\\.v2-[a-z0-9]+-[a-z0-9]{5}"' in q
    assert 'container="api.v2"' in q and 'namespace="fns"' in q


BUCKETS = [(0.05, 10.0), (0.1, 30.0), (0.25, 60.0), (0.5, 90.0), (float("inf"), 100.0)]


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        (0.1, 0.30),                  # a bucket bound: exact
        (0.25, 0.60),
        (0.175, 0.45),                # halfway through (0.1, 0.25]: 30 + 0.5 * 30
        (0.025, 0.05),                # inside the first bucket, interpolated from 0
    ],
)
def test_fraction_at_most_interpolates_inside_buckets(threshold, expected):
    assert fraction_at_most(BUCKETS, threshold) == pytest.approx(expected)


def test_fraction_at_most_unknowable_cases():
    assert fraction_at_most(BUCKETS, 0.75) is None               # above the last finite bound
    assert fraction_at_most([(0.1, 0.0), (math.inf, 0.0)], 0.1) is None  # no observations
    with pytest.raises(PermanentBackendError, match=r"\+Inf"):
        fraction_at_most([(0.1, 1.0)], 0.1)
