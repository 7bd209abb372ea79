"""The compiled generator and renewal streams of the native vector env against numpy and the Python streams.

lwmecps_gym.core.pcg64 re-states numpy's PCG64 and the draws the workload streams make; faas_gym.workloads'
renewal_counts re-states _RenewalStream.counts lazily. The vector env relies on both being equal to
numpy / the Python stream bit for bit, which is what these tests check (drawn value by drawn value,
count by count, over long runs so rare branches such as Lemire's rejection are crossed).
"""

from __future__ import annotations

import numpy as np
import pytest

from faas_gym import workloads as W
from faas_gym.backends.sim import chunk_length, seed_pcg64_pair
from lwmecps_gym.core import pcg64
from lwmecps_gym.core.seeding import draw_seed

pytestmark = pytest.mark.skipif(not pcg64.AVAILABLE, reason="compiled streams need numba")

if pcg64.AVAILABLE:
    from numba import njit

    @njit
    def _draw_all(st, i, k32, n32, n_dbl, k64, n64):
        a = np.empty(n32, dtype=np.int64)
        for j in range(n32):
            a[j] = pcg64.integers32(st, i, k32)
        b = np.empty(n_dbl)
        for j in range(n_dbl):
            b[j] = pcg64.next_double(st, i)
        c = np.empty(n64, dtype=np.int64)
        for j in range(n64):
            c[j] = pcg64.integers64(st, i, k64)
        d = np.empty(3, dtype=np.uint64)
        d[0] = pcg64.next_uint32(st, i)  # an odd number of 32-bit draws leaves the buffer full
        d[1] = pcg64.next_uint64(st, i)
        d[2] = pcg64.next_uint32(st, i)
        return a, b, c, d


@pytest.mark.parametrize("k32", [2, 3, 2000, 1999, 2**31 + 7, 2**32 - 1])
def test_draws_equal_numpy(k32):
    # bulk array draws of numpy and one-at-a-time compiled draws: the same values, the same final state
    # (2**31 + 7 rejects about half of the draws: Lemire's slow branch is crossed)
    for seed in (0, 5, 2**40 + 3):
        g = np.random.Generator(np.random.PCG64(seed))
        g.random()  # the 32-bit buffer state differs between the rows below
        st = pcg64.new_states(2)
        pcg64.get_state(g.bit_generator, st, 1)
        want = (g.integers(0, k32, 2001), g.random(7), [g.integers(0, 2**63 - 1) for _ in range(9)])
        a, b, c, d = _draw_all(st, 1, k32, 2001, 7, 2**63 - 1, 9)
        assert np.array_equal(a, want[0]) and np.array_equal(b, want[1]) and c.tolist() == want[2]
        assert st[0].tolist() == [0] * pcg64.STATE_WIDTH  # other rows untouched
        assert d[0] == g.integers(0, 2**32, dtype=np.uint32)  # next_uint32
        assert d[1] == g.bit_generator.random_raw()  # next_uint64 leaves the 32-bit buffer alone
        assert d[2] == g.integers(0, 2**32, dtype=np.uint32)  # the buffered high half
        back = np.random.PCG64(0)
        pcg64.set_state(st[1], back)
        assert back.state == g.bit_generator.state


@pytest.mark.skipif(not pcg64.BINOMIAL, reason="the compiled binomial follows numpy < 2.5")
def test_binomial_equals_numpy():
    # inversion (n min(p, 1-p) <= 30) and every BTPE region, including the squeeze and Stirling tests
    # of large n far from the mode; p = 0 and 1, n = 0
    rng = np.random.default_rng(1)
    for trial, n_max in enumerate((5, 60, 1000, 3000, 10**5, 10**7)):
        ns = rng.integers(0, n_max, 4000)
        ps = rng.uniform(0.0, 1.0, ns.size)
        ps[:40], ps[40:80], ns[80:100] = 0.0, 1.0, 0
        ps[100:200] = rng.uniform(0.0, 0.01, 100)
        ps[200:300] = 1.0 - rng.uniform(0.0, 0.01, 100)
        g = np.random.default_rng(trial)
        st = pcg64.new_states(2)
        pcg64.get_state(g.bit_generator, st, 1)
        got = np.tile(ns, (1, 1))
        for k in range(ns.size):  # thin_counts with one row: a different p per "interval"
            W.thin_counts(st, np.array([1]), got[:, k:k + 1], ps[k:k + 1])
        assert np.array_equal(got[0], g.binomial(ns, ps))
        back = np.random.PCG64(0)
        pcg64.set_state(st[1], back)
        assert back.state == g.bit_generator.state


def test_seeding_equals_seed_pcg64_pair_and_draw_seed():
    bitgens = (np.random.PCG64(0), np.random.PCG64(0))
    st = pcg64.new_states(1)
    want = pcg64.new_states(1)
    for seed in (0, 1, 12345, 2**62 + 11, 2**63 - 2):
        seed_pcg64_pair(seed, bitgens)
        pcg64.get_state(bitgens[0], want, 0)
        pcg64.seed_splitmix(st, 0, seed)
        assert st.tolist() == want.tolist()
    env_rng = np.random.default_rng(3)
    pcg64.get_state(env_rng.bit_generator, st, 0)
    assert [pcg64.integers64(st, 0, 2**63 - 1) for _ in range(20)] == [draw_seed(env_rng) for _ in range(20)]


@pytest.mark.parametrize(
    "workload,dt,pieces",
    [
        (W.OrcBenchWorkload(0, 12.0), 15.0, False),  # Autoscaling-v0
        (W.OrcBenchWorkload(0, 12.0), 30.0, False),  # FaaSTrainGym-v1
        (W.OrcBenchWorkload(16, 8.0), 15.0, False),  # bursty: long gaps, empty intervals
        (W.OrcBenchWorkload(0, 16.0), 60.0, True),  # the day scenario's base, 16 intervals a request
        (W.OrcBenchWorkload(0, None), 7.0, False),  # the trace's own time scale (a request per 3 s)
    ],
)
def test_renewal_counts_equal_the_python_stream(workload, dt, pieces):
    iat, cum, mean = workload.renewal_tables()
    for seed in range(4):
        py = workload.stream(np.random.default_rng(seed))
        st = pcg64.new_states(3)
        rf = np.zeros((3, 4))
        ri = np.zeros(3, dtype=np.int64)
        py.export_state(st, rf, ri, 2)
        total = 0
        for c in range(12):  # chunks of 2, 4, ..., 256 intervals: about 2,000 intervals
            n = chunk_length(c)
            piece = 16 if pieces else n
            want = np.concatenate([py.counts(dt, min(piece, n - i)) for i in range(0, n, piece)])
            got = np.full((1, n + 1), -7, dtype=np.int64)
            W.renewal_counts(st, np.array([2]), iat, mean, rf, ri, dt, n, piece, got)
            assert np.array_equal(got[0, :n], want), (seed, c)
            assert got[0, n] == -7 and rf[2, 3] == py.t
            total += int(want.sum())
        assert total > 1000


def test_renewal_start_equals_the_python_stream():
    workload = W.OrcBenchWorkload(0, 12.0)
    iat, cum, _ = workload.renewal_tables()
    for seed in range(20):
        py = workload.stream(np.random.default_rng(seed), 0.0)
        st = pcg64.new_states(1)
        rf = np.zeros((1, 4))
        ri = np.zeros(1, dtype=np.int64)
        pcg64.get_state(np.random.default_rng(seed).bit_generator, st, 0)
        W.renewal_start(st, 0, iat, cum, rf, ri, 0.0)
        want_rf = np.zeros((1, 4))
        want_ri = np.zeros(1, dtype=np.int64)
        py.export_state(pcg64.new_states(1), want_rf, want_ri, 0)
        assert rf.tolist() == want_rf.tolist() and ri.tolist() == want_ri.tolist() == [-1]


def test_export_state_refuses_buffered_arrivals():
    stream = W.OrcBenchWorkload(0, 12.0).stream(np.random.default_rng(0))
    stream.counts(15.0, 1)  # a batch of >= 64 gaps was drawn: most of it is buffered
    with pytest.raises(RuntimeError, match="buffered"):
        stream.export_state(pcg64.new_states(1), np.zeros((1, 4)), np.zeros(1, dtype=np.int64), 0)


@pytest.mark.parametrize("workload,dt", [(W.OrcBenchWorkload(0, 12.0), 15.0), (W.OrcBenchWorkload(16, 8.0), 7.0),
                                         (W.OrcBenchWorkload(0, 16.0), 60.0)])
def test_single_env_counts_equal_arrivals_until(workload, dt):
    # _RenewalStream.counts runs compiled; counting arrivals_until's times (the interpreted batches) must
    # give the same counts, the same generator state and the same buffer, also when the two are mixed
    # (the DES's arrivals_until after the fluid model's counts) and across forks
    rng = np.random.default_rng(7)
    for seed in range(3):
        a = workload.stream(np.random.default_rng(seed))
        b = workload.stream(np.random.default_rng(seed))
        for step in range(60):
            n = int(rng.integers(1, 40))
            if step % 7 == 3:  # both draw raw arrival times
                t1 = a.t + float(rng.uniform(0.0, 5.0 * dt))
                assert np.array_equal(a.arrivals_until(t1), b.arrivals_until(t1))
                continue
            t0 = b.t
            want = W._interval_counts(b.arrivals_until(t0 + n * dt), t0, dt, n)
            assert np.array_equal(a.counts(dt, n), want), (seed, step)
            assert a.t == b.t and a.rng.bit_generator.state == b.rng.bit_generator.state
            if step % 11 == 5:
                a, b = a.fork(), b.fork()
