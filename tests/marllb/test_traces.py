"""Workloads: bundled MARLLB traces, malformed trace lines, Wikibench, Poisson normalisation."""

import numpy as np
import pytest

from marllb_env.traces import (
    MARLLB_SECONDS_PER_ITERATION,
    MarllbTraceWorkload,
    PoissonWorkload,
    TraceFormatError,
    WikibenchWorkload,
    load_marllb_trace,
    make_workload,
)


def test_bundled_traces_match_the_measured_facts():
    t150, n150 = load_marllb_trace("rate_150")
    t400, n400 = load_marllb_trace("rate_400")
    assert len(t150) > 77000 and len(t400) > 77000
    assert len(t150) / t150[-1] == pytest.approx(145.9, rel=0.01)
    assert len(t400) / t400[-1] == pytest.approx(390.4, rel=0.01)
    np.testing.assert_array_equal(n150[:4], n400[:4])  # both files start with the same jobs
    assert n400.mean() == pytest.approx(n150.mean(), rel=0.01)
    assert n150.mean() == pytest.approx(3.67e6, rel=0.02)
    # calibration: mean job = 0.2 CPU-s
    assert (n150 * MARLLB_SECONDS_PER_ITERATION).mean() == pytest.approx(0.2, rel=0.02)


def test_replay_start_offsets_are_seeded():
    wl = MarllbTraceWorkload("rate_150", start="random", max_flows=100)
    a = next(wl.batches(np.random.default_rng(1), 1.0))
    b = next(wl.batches(np.random.default_rng(1), 1.0))
    c = next(wl.batches(np.random.default_rng(2), 1.0))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[1], c[1])
    assert a[0][0] >= 0 and len(a[0]) == 100


@pytest.mark.parametrize(
    "body, lineno, msg",
    [
        ("time\tquery\n0.1\t/dummy.php/?n=5\n0.2 /dummy.php/?n=5\n", 3, "expected 'time<TAB>query'"),
        ("time\tquery\n0.1\t/dummy.php/?n=5\nabc\t/dummy.php/?n=5\n", 3, "not a number"),
        ("time\tquery\n0.1\t/dummy.php/?x=5\n", 2, "no 'n=<iterations>'"),
        ("time\tquery\n0.5\t/dummy.php/?n=5\n0.1\t/dummy.php/?n=5\n", 3, "earlier"),
        ("t\tq\n0.1\t/dummy.php/?n=5\n", 1, "header"),
    ],
)
def test_malformed_marllb_lines_name_file_and_line(tmp_path, body, lineno, msg):
    p = tmp_path / "bad.csv"
    p.write_text(body)
    with pytest.raises(TraceFormatError, match=msg) as e:
        load_marllb_trace(str(p))
    assert f"bad.csv:{lineno}:" in str(e.value)


def test_wikibench_replay(tmp_path):
    p = tmp_path / "wiki.txt"
    p.write_text("1190146243.341 /wiki/Germany\n1190146243.541 /skins/common.css\n1190146244.341 /wiki/France\n")
    t, s = next(WikibenchWorkload(str(p)).batches(np.random.default_rng(0), 1.0))
    np.testing.assert_allclose(t, [0.0, 0.2, 1.0], atol=1e-6)  # unix-time doubles: ~1e-7 s resolution
    assert len(s) == 3 and np.all(s > 0)
    p.write_text("1190146243.341 /wiki/Germany\nnot-a-time /wiki/X\n")
    with pytest.raises(TraceFormatError, match="wiki.txt:2:"):
        next(WikibenchWorkload(str(p)).batches(np.random.default_rng(0), 1.0))


@pytest.mark.parametrize("dist", ["exponential", "pareto", "lognormal", "deterministic"])
def test_poisson_rate_is_normalised_to_capacity(dist):
    wl = PoissonWorkload(rho=0.8, mean_size_s=0.5, size_dist=dist, pareto_shape=2.5)
    assert wl.arrival_rate(6.0) == pytest.approx(0.8 * 6.0 / 0.5)
    it = wl.batches(np.random.default_rng(0), 6.0)
    t = np.concatenate([next(it)[0] for _ in range(40)])
    # 20,480 exponential gaps: relative se of the mean ~ 0.7%; 4% is > 5 se
    assert np.diff(t).mean() == pytest.approx(1 / 9.6, rel=0.04)
    sizes = np.concatenate([next(it)[1] for _ in range(40)])
    assert sizes.mean() == pytest.approx(0.5, rel=0.1)  # Pareto(2.5) has a heavy-ish tail: loose


def test_bad_workload_specs():
    with pytest.raises(ValueError, match="size_dist"):
        PoissonWorkload(size_dist="uniform")
    with pytest.raises(FileNotFoundError):
        MarllbTraceWorkload("rate_999")
    with pytest.raises(ValueError, match="kind"):
        make_workload({"kind": "mmpp"})
