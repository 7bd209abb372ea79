"""The flow simulator's compiled event loop (marllb_env/sim/kernel.py): exact sums, buffer growth,
compiled == interpreted."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from marllb_env.reservoir import reservoir_stats
from marllb_env.sim import COMPLETED, IN_PROGRESS, REJECTED, FlowSimulator, ServerSpec
from marllb_env.sim import kernel as kn
from tests.support.compiled import compiled_and_interpreted_outputs

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(finite, st.floats(min_value=-1e-3, max_value=1e3), st.sampled_from([0.1, 1e16, -1e16, 1.0])),
                max_size=40))
def test_fsum_is_correctly_rounded_as_math_fsum(xs):
    a = np.asarray(xs + [0.0], dtype=np.float64)  # a spare slot: fsum reads only the first n
    assert kn.fsum(a, len(xs)) == math.fsum(xs)


def test_fsum_half_way_cases():
    for xs in ([1.0, 1e-16, 1e-16 * 1e-16], [1e16, 1.0, 1e-16], [1.0, 2.0**-53, 2.0**-106], [-1.0, -(2.0**-53), -(2.0**-106)]):
        assert kn.fsum(np.asarray(xs), len(xs)) == math.fsum(xs)


def _check_books(sim: FlowSimulator) -> None:
    """Flow records, per-server state and counters tell the same story."""
    fr = sim.flow_records()
    c = sim.counters()
    gt = sim.ground_truth()
    assert len(fr) == sim.n_flows == int(c["arrivals"].sum())
    assert np.sum(fr.status == COMPLETED) == c["completed"].sum()
    assert np.sum(fr.status == REJECTED) == c["rejects"].sum()
    live = fr.status == IN_PROGRESS
    np.testing.assert_array_equal(np.bincount(fr.server[live], minlength=sim.n_servers), gt["flows_in_system"])
    on = sum(np.bincount(fr.server[live & (fr.lb == lb)], minlength=sim.n_servers) for lb in range(sim.n_lbs))
    np.testing.assert_array_equal(on, sum(sim.n_flow_on(lb) for lb in range(sim.n_lbs)))
    done = fr.status == COMPLETED
    assert np.all(fr.completion_s[done] - fr.arrival_s[done] >= fr.size_s[done] - 1e-9)  # speed 1: never faster


def test_buffers_grow_under_overload_and_the_books_balance():
    """Overload with room for hundreds of flows in service and in the backlog (the event loop starts
    with 32-slot heaps and backlogs, 64-slot ongoing lists and 1024 flow records and doubles them)."""
    servers = [ServerSpec(cpus=1, n_workers=400, backlog=10), ServerSpec(cpus=2, n_workers=2, backlog=300)]
    sim = FlowSimulator(servers, {"kind": "poisson", "rho": 1.6, "mean_size_s": 0.2}, n_lbs=2, seed=5)
    peak_service = peak_backlog = 0
    for _ in range(100):  # ~24 flows/s
        sim.advance(2.0)
        gt = sim.ground_truth()
        peak_service = max(peak_service, gt["busy_workers"][0])
        peak_backlog = max(peak_backlog, gt["queue_length"][1])
        _check_books(sim)
    assert peak_service > 100 and peak_backlog > 100 and sim.n_flows > 4 * 1024
    assert sim.counters()["rejects"].sum() > 0
    for lb in range(2):  # the sorted copies behind the statistics stayed right through all of it
        for j in range(2):
            for kind, cols in (("fct", slice(1, 6)), ("flow_duration", slice(6, 11))):
                t, v = sim.reservoir(lb, j, kind)
                ref = reservoir_stats(v, t, np.asarray(len(v)), sim.now)
                np.testing.assert_allclose(sim.features(lb)[j, cols], ref, rtol=1e-9, atol=1e-12)


def test_compiled_and_interpreted_event_loops_agree_bit_for_bit():
    """The kernel's Python source is the model: run interpreted (NUMBA_DISABLE_JIT=1) it gives the
    compiled run's flows, features and counters exactly (every dispatch mode, a control event, a
    100-s step that rebases the decay inside the loop)."""
    code = (
        "import hashlib, numpy as np\n"
        "from marllb_env.sim import FlowSimulator, DISPATCH_MODES, ServerSpec\n"
        "h = hashlib.sha256()\n"
        "for mode in DISPATCH_MODES:\n"
        "    sim = FlowSimulator([1, 2, ServerSpec(cpus=2, n_workers=3, backlog=2)], "
        "{'kind': 'poisson', 'rho': 0.95, 'mean_size_s': 0.3}, n_lbs=2, seed=1, dispatch=mode)\n"
        "    sim.set_capacity(1, cpus=1, at=3.0)\n"
        "    for k in range(12):\n"
        "        sim.set_weights(k % 2, [1.0 + k % 3, 1.0, 0.5])\n"
        "        sim.advance(0.5)\n"
        "        h.update(sim.features_all().tobytes())\n"
        "    if mode == 'sed':\n"
        "        sim.advance(310.0)\n"
        "    fr = sim.flow_records()\n"
        "    for a in (fr.arrival_s, fr.completion_s, fr.server, sim.features_all(), sim.counters()['fct_sum_s']):\n"
        "        h.update(np.ascontiguousarray(a).tobytes())\n"
        "print(h.hexdigest())\n"
    )
    compiled, interpreted = compiled_and_interpreted_outputs(code)
    assert compiled == interpreted and len(compiled.strip()) == 64


@settings(max_examples=60, deadline=None)
@given(k=st.integers(1, 20), mode=st.sampled_from([kn.RES_FAST, kn.RES_ALGORITHM_R, kn.RES_KEEP]),
       values=st.lists(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.0]) | st.floats(0.0, 5.0), min_size=1, max_size=120))
def test_reservoir_top_values_are_the_sorted_tail(k, mode, values):
    """After every sample, a reservoir's kept top (values and decayed values) is exactly the sorted tail
    of its slots from rank int(0.9 (n - 1)) on, and the slot marks agree (ties included)."""
    r = 0
    res_f = np.zeros((5, 1, k))
    res_s = np.zeros((1, 3))
    res_i = np.zeros((1, 2), dtype=np.int64)
    top_i = np.zeros((4, 1, k), dtype=np.int64)
    unif = np.random.default_rng(k).random(4 * len(values) + 8)
    sc_i = np.zeros(kn.N_SC_I, dtype=np.int64)
    sc_i[kn.RES_MODE] = mode
    sc_f = np.zeros(kn.N_SC_F)
    sc_f[kn.LN_INV_DECAY], sc_f[kn.DECAY], sc_f[kn.KEEP_PROB] = -math.log(0.9), 0.9, 0.7
    for i, v in enumerate(values):
        kn.sample(r, 0.37 * i, v, res_f, res_s, res_i, top_i, unif, sc_i, sc_f)
        n = res_i[r, kn.R_N]
        m = kn.top_count(n)
        for plane, slots, flags, top in ((kn.R_VAL, kn.TOP_SLOT_V, kn.IN_TOP_V, kn.R_TOPV),
                                         (kn.R_DEC, kn.TOP_SLOT_D, kn.IN_TOP_D, kn.R_TOPD)):
            vals = res_f[plane, r, :n]
            np.testing.assert_array_equal(res_f[top, r, :m], np.sort(vals)[n - m:])
            assert sorted(top_i[slots, r, :m]) == sorted(np.flatnonzero(top_i[flags, r, :n]))
            np.testing.assert_array_equal(vals[top_i[slots, r, :m]], res_f[top, r, :m])
