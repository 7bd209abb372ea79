"""Workloads: rates, OrcBench data and units, Azure CSV replay, and clear errors for malformed files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faas_gym import workloads as wl


def rate_of(workload, seconds=20_000.0, seed=0):
    s = workload.stream(np.random.default_rng(seed))
    counts = s.counts(10.0, int(seconds / 10.0))
    return counts.sum() / seconds


@pytest.mark.parametrize(
    "workload",
    [
        wl.PoissonWorkload(4.0),
        wl.DiurnalWorkload(4.0, 0.8, period_s=2000.0),
        wl.SpikeWorkload(1.0, 10.0, spike_start_s=100.0, spike_duration_s=100.0, period_s=500.0),
        wl.AzureTraceReplay((120, 0, 600, 60)),
    ],
)
def test_poisson_family_long_run_rate(workload):
    # 20,000 s at >= 2.8 req/s: > 56k arrivals, Poisson SD of the rate < 0.5 %; 3 % tolerance (6 SD)
    assert rate_of(workload) == pytest.approx(workload.mean_rate_rps(), rel=0.03)
    times = workload.stream(np.random.default_rng(1)).arrivals_until(20_000.0)
    assert np.all(np.diff(times) >= 0) and times.size / 20_000.0 == pytest.approx(workload.mean_rate_rps(), rel=0.03)


def test_spike_and_trace_rates_follow_the_profile():
    sp = wl.SpikeWorkload(1.0, 10.0, spike_start_s=100.0, spike_duration_s=50.0)
    assert sp.rate(np.array([50.0, 120.0, 160.0])).tolist() == [1.0, 10.0, 1.0]
    tr = wl.AzureTraceReplay((60, 120, 0), start_minute=1)
    assert tr.rate(np.array([30.0, 90.0, 150.0, 210.0])).tolist() == [2.0, 0.0, 1.0, 2.0]  # wraps around
    # expected count of a window equals the integrated rate
    assert tr.cumulative(np.array([180.0]))[0] == pytest.approx(180.0)


def test_orcbench_models_load_with_documented_units():
    for k in range(wl.N_ORCBENCH_MODELS):
        m = wl.load_orcbench_model(k)
        assert m["iat_s"].size > 0 and np.all(m["iat_s"] > 0) and np.all(np.diff(m["iat_s"]) >= 0)
        assert m["num_functions"] >= 1
        # execution time in ms in the file: nothing beyond the 10-minute Azure limit (600 s)
        assert m["service_s"].max() <= 600.0
        assert 50.0 < np.median(m["memory_mb"]) < 1000.0
        assert np.all(m["iat_s"] < wl.ORCBENCH_SENTINEL * wl.ORCBENCH_IAT_UNIT_S)
    assert wl.load_orcbench_model(0)["num_functions"] == 8198


def test_orcbench_workload_rate_and_burstiness():
    w = wl.OrcBenchWorkload(0, mean_rps=10.0)
    # renewal process: ~400k arrivals; heavy-tailed gaps (SCV ~ 30) make the count noisier than
    # Poisson: SD of the rate over 40,000 s ~ sqrt(SCV / (rate * T)) ~ 0.9 %; 5 % tolerance
    assert rate_of(w, seconds=40_000.0) == pytest.approx(10.0, rel=0.05)
    iat = w.iat_s()
    assert iat.var() / iat.mean() ** 2 > 10.0  # bursty, unlike Poisson (SCV 1)
    raw = wl.OrcBenchWorkload(0, mean_rps=None)
    assert raw.mean_rate_rps() == pytest.approx(1.0 / (wl.load_orcbench_model(0)["iat_s"].mean()))


def test_streams_are_reproducible_and_chunking_invariant():
    w = wl.OrcBenchWorkload(3, mean_rps=5.0)
    a = w.stream(np.random.default_rng(7)).arrivals_until(5000.0)
    s = w.stream(np.random.default_rng(7))
    b = np.concatenate([s.arrivals_until(t) for t in np.arange(7.0, 5000.0 + 7.0, 7.0).clip(max=5000.0)])
    # same draws, same count; only the floating-point summation order of the gaps differs
    assert a.size == b.size
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_make_workload_and_service_round_trip():
    for w in [
        wl.PoissonWorkload(3.0),
        wl.DiurnalModulation(wl.OrcBenchWorkload(2, 4.0), amplitude=0.3),
        wl.AzureTraceReplay((1, 2, 3), scale=2.0),
        wl.SpikeWorkload(period_s=900.0),
    ]:
        d = json.loads(json.dumps(w.to_dict()))
        assert wl.make_workload(d) == w
    for s in [wl.ExponentialService(0.3), wl.LogNormalService(0.5, 2.0), wl.DeterministicService(1.0)]:
        assert wl.make_service_time(json.loads(json.dumps(s.to_dict()))) == s
    st = wl.make_service_time({"kind": "orcbench", "model": 0, "max_s": 5.0})
    assert st.mean_s == pytest.approx(np.clip(wl.load_orcbench_model(0)["service_s"], 0.001, 5.0).mean())
    ln = wl.LogNormalService(0.5, 2.0)
    x = ln.sample(np.random.default_rng(0), 400_000)
    assert x.mean() == pytest.approx(0.5, rel=0.03)  # SE = cv * mean / sqrt(n) = 0.3 %


@pytest.mark.parametrize(
    "spec,match",
    [
        ({"kind": "gamma"}, "kind"),
        ({"kind": "poisson", "rate": 3}, "unknown keys"),
        ({"kind": "poisson", "rate_rps": -1}, "rate_rps"),
        ({"kind": "orcbench", "model": 25}, "model"),
        ({"kind": "diurnal", "amplitude": 1.5}, "amplitude"),
    ],
)
def test_bad_workload_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        wl.make_workload(spec)


HEADER = "HashOwner,HashApp,HashFunction,Trigger," + ",".join(str(i) for i in range(1, 1441))


def write_csv(tmp_path, lines):
    p = tmp_path / "invocations_per_function_md.anon.d01.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def row(fn, counts, trigger="http"):
    return f"o1,a1,{fn},{trigger}," + ",".join(str(c) for c in counts)


def test_azure_csv_replay(tmp_path):
    c1 = [i % 7 for i in range(1440)]
    c2 = [60] * 1440
    p = write_csv(tmp_path, [HEADER, row("f0abc", c1), row("f1def", c2)])
    w = wl.AzureTraceReplay.from_csv(p, function="f1")
    assert w.counts_per_minute == tuple(c2) and w.mean_rate_rps() == pytest.approx(1.0)
    assert wl.AzureTraceReplay.from_csv(p, function=0).counts_per_minute == tuple(c1)
    total = wl.AzureTraceReplay.from_csv(p, scale=0.5)
    assert total.counts_per_minute == tuple(a + b for a, b in zip(c1, c2, strict=True))
    assert total.mean_rate_rps() == pytest.approx(0.5 * (sum(c1) + sum(c2)) / 86_400.0)
    d = wl.make_workload({"kind": "azure_trace", "path": str(p), "function": "f0abc"})
    assert d.counts_per_minute == tuple(c1)


@pytest.mark.parametrize(
    "lines,match",
    [
        ([], "empty file"),
        (["Owner,App,Function,Trigger,1"], "line 1: header must start with"),
        (["HashOwner,HashApp,HashFunction,Trigger,1,3"], "line 1: minute column 6 must be named '2'"),
        (["HashOwner,HashApp,HashFunction,Trigger"], "no minute columns"),
        (["HashOwner,HashApp,HashFunction,Trigger,1,2", "o,a,f,http,1"], "line 2: expected 6 fields, got 5"),
        (["HashOwner,HashApp,HashFunction,Trigger,1,2", "o,a,f,http,1,2", "o,a,g,http,x,2"], r"line 3: minute 1: expected a non-negative integer"),
        (["HashOwner,HashApp,HashFunction,Trigger,1,2", "o,a,f,http,1,-4"], "line 2: minute 2: negative count"),
        (["HashOwner,HashApp,HashFunction,Trigger,1,2", "o,a,f,http,1,2.5"], "line 2: minute 2"),
        (["HashOwner,HashApp,HashFunction,Trigger,1,2"], "no data rows"),
    ],
)
def test_malformed_azure_csv(tmp_path, lines, match):
    p = write_csv(tmp_path, lines) if lines else (tmp_path / "empty.csv")
    if not lines:
        p.write_text("")
    with pytest.raises(ValueError, match=match):
        wl.AzureTraceReplay.from_csv(p)


def test_azure_csv_function_selection_errors(tmp_path):
    p = write_csv(tmp_path, ["HashOwner,HashApp,HashFunction,Trigger,1", "o,a,fab,http,1", "o,a,fac,http,2"])
    with pytest.raises(ValueError, match="not a HashFunction"):
        wl.AzureTraceReplay.from_csv(p, function="zz")
    with pytest.raises(ValueError, match="matches 2 rows"):
        wl.AzureTraceReplay.from_csv(p, function="fa")
    with pytest.raises(ValueError, match="function must be <= 1"):
        wl.AzureTraceReplay.from_csv(p, function=5)
    with pytest.raises(FileNotFoundError):
        wl.AzureTraceReplay.from_csv(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    "text,match",
    [
        ('{"inverse_ecdf": [1, 2', "invalid JSON at line 1"),
        ('{"inverse_ecdf": [1, 2], "cpu": [1], "mbs": [1]}', "missing keys"),
        ('{"inverse_ecdf": [2, 1], "cpu": [1], "mbs": [1], "num_functions": 1}', "sorted ascending"),
        ('{"inverse_ecdf": [1, "a"], "cpu": [1], "mbs": [1], "num_functions": 1}', "only numbers"),
        ('{"inverse_ecdf": [0, 1], "cpu": [1], "mbs": [1], "num_functions": 1}', r"inverse_ecdf'\[0\] must be a finite positive"),
        ('{"inverse_ecdf": [1], "cpu": [1], "mbs": [1], "num_functions": 0}', "num_functions"),
        ('{"inverse_ecdf": [1e7], "cpu": [1], "mbs": [1], "num_functions": 1}', "only sentinel"),
        ("[1, 2]", "expected a JSON object"),
    ],
)
def test_malformed_orcbench_json(text, match):
    with pytest.raises(ValueError, match=match):
        wl.parse_orcbench_model(text, where="bad.json")
