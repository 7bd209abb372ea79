"""Property tests of the core validation layer (lwmecps_gym.core.validation).

Every value outside an argument's contract raises ValueError/TypeError/FileNotFoundError naming the
parameter; every value inside it is returned unchanged in meaning. File readers name the file and the
line of a decode error.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from lwmecps_gym.core.validation import (
    check_array,
    check_bool,
    check_choice,
    check_float,
    check_int,
    check_path,
    check_seed,
    check_sequence,
    decode_text,
    read_text,
    read_text_lines,
)
from tests.support.badinput import (
    FAST,
    assert_rejected,
    bad_bool,
    bad_choice,
    bad_int,
    bad_real,
    bad_seed,
    not_a_sequence,
)


@FAST
@given(bad_real(low=0.0, high=1e6, low_open=True, allow_none=False))
def test_check_float_rejects_everything_but_finite_reals_in_range(value):
    assert_rejected(lambda: check_float("sla_ms", value, low=0.0, high=1e6, low_open=True), "sla_ms")


@FAST
@given(st.one_of(st.floats(min_value=1e-9, max_value=1e6), st.integers(1, 10**6),
                 st.integers(1, 1000).map(np.int32), st.floats(1e-3, 1e3).map(np.float32)))
def test_check_float_accepts_reals_in_range(value):
    assert check_float("sla_ms", value, low=0.0, high=1e6, low_open=True) == float(value)


def test_the_issue_examples():
    with pytest.raises(TypeError, match=r"sla_ms must be a real number.*'100'"):
        check_float("sla_ms", "100")
    with pytest.raises(TypeError, match="interval_s"):
        check_float("interval_s", "15")
    with pytest.raises(TypeError, match=r"use_ground_truth must be True or False, got 'no'"):
        check_bool("use_ground_truth", "no")
    with pytest.raises(TypeError, match=r"weight_levels must be a sequence"):
        check_sequence("weight_levels", 5)
    with pytest.raises(ValueError, match=r"site_seed must be an integer >= 0"):
        check_seed("site_seed", -1)


@FAST
@given(bad_int(low=1, high=64, allow_none=False))
def test_check_int_rejects(value):
    assert_rejected(lambda: check_int("max_replicas", value, low=1, high=64), "max_replicas")


@FAST
@given(bad_bool())
def test_check_bool_rejects_truthy_non_bools(value):
    assert_rejected(lambda: check_bool("flatten_obs", value), "flatten_obs")


@FAST
@given(st.sampled_from([True, False, np.True_, np.False_]))
def test_check_bool_accepts_bools(value):
    assert check_bool("flatten_obs", value) is bool(value)


@FAST
@given(bad_seed())
def test_check_seed_rejects(value):
    assert_rejected(lambda: check_seed("seed", value), "seed")


@FAST
@given(st.one_of(st.none(), st.integers(0, 2**64), st.integers(0, 2**31).map(np.int64)))
def test_check_seed_accepts(value):
    out = check_seed("seed", value)
    assert out is None if value is None else out == int(value)


@FAST
@given(bad_choice(["flat", "dict"], allow_none=False))
def test_check_choice_rejects_unknown_and_unhashable(value):
    exc = assert_rejected(lambda: check_choice("obs_mode", value, ["flat", "dict"]), "obs_mode")
    assert "'flat'" in str(exc) and "'dict'" in str(exc)  # the allowed values are listed


def test_check_choice_does_not_confuse_bools_and_ints_or_arrays():
    with pytest.raises(ValueError):
        check_choice("n", True, [1, 2])
    with pytest.raises(ValueError):
        check_choice("mode", np.array(["a", "b"]), ["a"])
    assert check_choice("n", np.int64(2), [1, 2]) == 2


@FAST
@given(not_a_sequence())
def test_check_sequence_rejects_scalars(value):
    assert_rejected(lambda: check_sequence("capacity_events", value), "capacity_events")


@FAST
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=1, max_size=6))
def test_check_sequence_items_are_checked_by_position(values):
    call = lambda: check_sequence("weight_levels", values, item=lambda n, x: check_float(n, x, low=0.0))  # noqa: E731
    if all(math.isfinite(v) and v >= 0 for v in values):
        assert call() == [float(v) for v in values]
    else:
        bad = next(i for i, v in enumerate(values) if not (math.isfinite(v) and v >= 0))
        assert_rejected(call, f"weight_levels[{bad}]")


@FAST
@given(st.one_of(st.just("abc"), st.just([[1, 2], [3]]), st.just([1.0, math.nan]), st.just([[1.0, 2.0]]),
                 st.just({"a": 1}), st.just([True, False]), st.none()))
def test_check_array_rejects_non_numeric_ragged_nonfinite_and_wrong_shape(value):
    assert_rejected(lambda: check_array("weights", value, shape=(2,)), "weights")


@FAST
@given(st.binary(min_size=1, max_size=200))
def test_decode_errors_name_the_file_line_and_column(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        with pytest.raises(ValueError) as exc:
            decode_text(data, "trace file 'x.csv'")
        line = data.count(b"\n", 0, err.start) + 1
        assert "trace file 'x.csv'" in str(exc.value) and f"line {line}," in str(exc.value)
        return
    if "\x00" in text:
        with pytest.raises(ValueError, match="NUL byte"):
            decode_text(data, "f")
    else:
        assert decode_text(data, "f") == text


def test_file_readers(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(b"time\tquery\n0.1\t/a?n=1\n\xff\xfe garbage\n")
    with pytest.raises(ValueError, match=r"trace .*t\.csv.*line 3, column 1"):
        read_text("trace", p)
    with pytest.raises(TypeError, match="path must be a file path"):
        read_text_lines("path", None)
    with pytest.raises(FileNotFoundError, match=r"path: file .*absent.* does not exist"):
        check_path("path", tmp_path / "absent")
    with pytest.raises(FileNotFoundError, match="is a directory"):
        check_path("path", tmp_path)
    p.write_text("a\nb\n")
    assert read_text_lines("path", str(p)) == ["a", "b"]


# ---------------------------------------------------------------------------------------- safe by default


def test_library_code_never_unpickles():
    """No checkpoint or data load can run code: no weights_only=False, pickle.load, allow_pickle, yaml.load."""
    import pathlib
    import re

    root = pathlib.Path(__file__).resolve().parent.parent
    bad = re.compile(r"weights_only\s*=\s*False|pickle\.loads?\(|allow_pickle\s*=\s*True|yaml\.load\(")
    kube = re.compile(r"load_kube_config\((?:[^()]|\([^()]*\))*\)")
    hits = []
    for pkg in ("lwmecps_gym", "faas_gym", "marllb_env", "examples", "benchmarks"):
        for path in (root / pkg).rglob("*.py"):
            text = path.read_text(encoding="utf-8")
            hits += [f"{path.relative_to(root)}: {m.group(0)}" for m in bad.finditer(text)]
            # the kubeconfig is never written back (refreshed tokens would land in the user's file)
            hits += [f"{path.relative_to(root)}: {m.group(0)}" for m in kube.finditer(text)
                     if "persist_config=False" not in m.group(0)]
    assert not hits, hits


def test_qmix_checkpoint_with_code_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    from marllb_env.qmix import QMIX

    class Evil:
        def __reduce__(self):
            return (print, ("ran code from a checkpoint",))

    path = tmp_path / "evil.pt"
    torch.save({"dims": Evil()}, path)
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        QMIX.load(str(path))


@FAST
@given(attempts=st.integers(1, 6), permanent=st.booleans())
def test_with_retry_calls_exactly_attempts_times_and_never_retries_permanent_errors(attempts, permanent):
    from lwmecps_gym.core.backend import PermanentBackendError, TransientBackendError
    from lwmecps_gym.core.retry import with_retry

    calls = []

    def fail():
        calls.append(1)
        raise (PermanentBackendError if permanent else TransientBackendError)("down")

    with pytest.raises(PermanentBackendError if permanent else TransientBackendError, match="down"):
        with_retry(attempts, 0.0, 0.0)(fail)()
    assert len(calls) == (1 if permanent else attempts)


@pytest.mark.parametrize(("args", "name"), [((0,), "retry_attempts"), ((2.0,), "retry_attempts"),
                                            ((2, "0.5"), "retry_initial_s"), ((2, 0.1, math.inf), "retry_max_s")])
def test_with_retry_arguments_are_checked(args, name):
    from lwmecps_gym.core.retry import with_retry

    assert_rejected(lambda: with_retry(*args), name)
