"""The flow simulator against closed-form queueing results and exact small cases.

Tolerances: each run is split into B = 20 batches of consecutive completed flows (batch
means, after dropping a warm-up); the standard error of the mean sojourn time is
s_B / sqrt(B) with s_B the batch means' standard deviation. We assert the simulated mean
is within 4 standard errors of theory (a false failure has probability < 1e-4 under
approximate normality) and that the standard error is below 4% of theory, so the check
is not vacuous.
"""

import numpy as np
import pytest

from marllb_env.sim import COMPLETED, REJECTED, FlowSimulator, ServerSpec
from marllb_env.traces import PoissonWorkload

UNLIMITED = {"n_workers": 10**9, "backlog": 0}


def _batch_mean_check(fct: np.ndarray, theory: float, batches: int = 20) -> None:
    fct = fct[len(fct) // 10 :]  # warm-up: drop the first 10% of flows
    means = np.array([b.mean() for b in np.array_split(fct, batches)])
    est = means.mean()
    se = means.std(ddof=1) / np.sqrt(batches)
    assert se < 0.04 * theory, f"too few samples: se={se:.4f} for theory {theory:.4f}"
    assert abs(est - theory) < 4 * se, f"mean sojourn {est:.4f} vs theory {theory:.4f} (se {se:.4f})"


@pytest.mark.parametrize("size_dist", ["exponential", "deterministic"])
def test_single_ps_server_matches_mg1_ps(size_dist):
    # M/G/1-PS: E[T] = E[S] / (1 - rho), insensitive to the size distribution beyond its mean.
    rho, mean = 0.7, 1.0
    sim = FlowSimulator(
        [ServerSpec(cpus=1, **UNLIMITED)],
        PoissonWorkload(rho=rho, mean_size_s=mean, size_dist=size_dist),
        seed=11,
        dispatch="ecmp",
        fd_samples_per_arrival=0,
    )
    sim.run_until(60000.0)  # ~42,000 flows
    rec = sim.flow_records()
    order = np.argsort(rec.arrival_s)
    fct = (rec.completion_s - rec.arrival_s)[order][rec.status[order] == COMPLETED]
    _batch_mean_check(fct, mean / (1 - rho))


def test_random_dispatch_over_identical_servers_is_mm1():
    # Poisson splitting: each of 4 servers is M/M/1 with arrival rate lambda/4 and utilisation rho;
    # exponential sizes make PS and FCFS means equal: E[T] = E[S] / (1 - rho).
    rho, mean = 0.6, 0.5
    sim = FlowSimulator(
        [ServerSpec(cpus=1, **UNLIMITED)] * 4,
        PoissonWorkload(rho=rho, mean_size_s=mean),
        seed=5,
        dispatch="random",
        fd_samples_per_arrival=0,
    )
    sim.run_until(9000.0)  # lambda = 4.8/s: ~43,000 flows
    rec = sim.flow_records()
    fct = (rec.completion_s - rec.arrival_s)[rec.status == COMPLETED]
    _batch_mean_check(fct, mean / (1 - rho))
    # each server carries about a quarter of the flows (binomial sd ~ 0.2%)
    share = np.bincount(rec.server, minlength=4) / len(rec)
    np.testing.assert_allclose(share, 0.25, atol=0.01)


class FixedWorkload:
    """Arrivals at given times with given sizes (for exact cases)."""

    def __init__(self, times, sizes):
        self.times, self.sizes = np.asarray(times, float), np.asarray(sizes, float)

    def batches(self, rng, capacity):
        yield self.times, self.sizes


def _completions(sim):
    rec = sim.flow_records()
    return rec.completion_s.tolist(), rec.status.tolist()


def test_processor_sharing_exact_small_cases():
    # sizes 1 and 2 arrive at t=0 on one core: both at rate 1/2 until t=2 (job 1 done), then job 2
    # alone at rate 1: done at 3.
    sim = FlowSimulator([ServerSpec(cpus=1, **UNLIMITED)], FixedWorkload([0.0, 0.0], [1.0, 2.0]), dispatch="ecmp")
    sim.run_until(10)
    assert _completions(sim)[0] == pytest.approx([2.0, 3.0])
    # two cores: each job gets a full core
    sim = FlowSimulator([ServerSpec(cpus=2, **UNLIMITED)], FixedWorkload([0.0, 0.0], [1.0, 2.0]), dispatch="ecmp")
    sim.run_until(10)
    assert _completions(sim)[0] == pytest.approx([1.0, 2.0])


def test_capacity_change_mid_flow():
    # 1 CPU-s job; at t=0.5 the core speed doubles: 0.5 done, 0.5 left at rate 2 -> completes at 0.75
    sim = FlowSimulator([ServerSpec(cpus=1)], FixedWorkload([0.0], [1.0]), dispatch="ecmp")
    sim.set_capacity(0, speed=2.0, at=0.5)
    sim.run_until(2)
    assert _completions(sim)[0] == pytest.approx([0.75])
    assert sim.capacities().tolist() == [2.0]


def test_workers_backlog_and_rejects():
    # 1 worker, backlog 1: the first flow is served, the second waits, the third is rejected (RST)
    sim = FlowSimulator(
        [ServerSpec(cpus=1, n_workers=1, backlog=1)], FixedWorkload([0.0, 0.1, 0.2], [1.0, 1.0, 1.0]), dispatch="ecmp"
    )
    sim.run_until(0.5)
    gt = sim.ground_truth()
    assert gt["busy_workers"].tolist() == [1.0] and gt["queue_length"].tolist() == [1.0]
    sim.run_until(5)
    done, status = _completions(sim)
    assert status == [COMPLETED, COMPLETED, REJECTED]
    assert done[:2] == pytest.approx([1.0, 2.0])  # FIFO backlog: starts when the worker frees
    assert sim.counters()["rejects"].tolist() == [1]


def test_same_seed_same_flows_and_workload_independent_of_dispatch():
    kw = dict(workload=PoissonWorkload(rho=0.9, mean_size_s=0.2), n_lbs=2, seed=3)
    a = FlowSimulator([1, 1, 2, 2], dispatch="sed", **kw)
    b = FlowSimulator([1, 1, 2, 2], dispatch="sed", **kw)
    c = FlowSimulator([1, 1, 2, 2], dispatch="lsq", **kw)
    for s in (a, b, c):
        s.run_until(50.0)
    ra, rb, rc = a.flow_records(), b.flow_records(), c.flow_records()
    np.testing.assert_array_equal(ra.completion_s, rb.completion_s)
    np.testing.assert_array_equal(ra.server, rb.server)
    np.testing.assert_array_equal(a.features_all(), b.features_all())
    # another dispatch mode sees the identical input (arrival times, sizes, LB of each flow)
    np.testing.assert_array_equal(ra.arrival_s, rc.arrival_s)
    np.testing.assert_array_equal(ra.size_s, rc.size_s)
    np.testing.assert_array_equal(ra.lb, rc.lb)
    assert not np.array_equal(ra.server, rc.server)


def test_local_counts_add_up_to_global_and_features_match_raw_reservoirs():
    from marllb_env.reservoir import reservoir_stats

    sim = FlowSimulator([1, 1, 2, 2], PoissonWorkload(rho=0.9, mean_size_s=0.2), n_lbs=3, seed=9)
    sim.run_until(120.0)
    total = sum(sim.n_flow_on(lb) for lb in range(3))
    np.testing.assert_array_equal(total, sim.ground_truth()["flows_in_system"])
    feats = sim.features_all()
    assert feats.shape == (3, 4, 11) and np.all(np.isfinite(feats)) and np.all(feats >= 0)
    for lb in range(3):
        np.testing.assert_array_equal(feats[lb], sim.features(lb))
        for j in range(4):
            for k, kind in enumerate(("fct", "flow_duration")):
                t, v = sim.reservoir(lb, j, kind)
                assert len(v) == sim.reservoir_count(lb, j, kind) <= 128
                ref = reservoir_stats(v, t, np.asarray(len(v)), sim.now)
                np.testing.assert_allclose(feats[lb, j, 1 + 5 * k : 6 + 5 * k], ref, rtol=1e-9, atol=1e-12)


def test_features_do_not_depend_on_how_often_they_are_read():
    # reservoirs read every step keep sorted copies sample by sample; unread ones sort at the next read
    sims = [FlowSimulator([1, 1, 2], PoissonWorkload(rho=0.9, mean_size_s=0.2), n_lbs=2, seed=3) for _ in range(2)]
    for k in range(1, 401):
        for sim in sims:
            sim.run_until(0.25 * k)
        sims[0].features(0)  # LB 0 of the first sim is read every step; LB 1 never until the end
        if k % 97 == 0:
            sims[1].features_all()
    np.testing.assert_array_equal(sims[0].features_all(), sims[1].features_all())
    c = sims[0].counters()
    for lb in range(2):
        assert sims[0].lb_counters(lb) == (c["arrivals"][lb], c["completed"][lb], c["rejects"][lb], c["fct_sum_s"][lb])


def test_decay_rebase_keeps_features_exact_over_long_runs():
    from marllb_env.reservoir import reservoir_stats

    sim = FlowSimulator([1, 2], PoissonWorkload(rho=0.8, mean_size_s=0.5), seed=4)
    sim.run_until(1500.0)  # several rebases of the decay reference time (every 200 s)
    f = sim.features(0)
    for j in range(2):
        t, v = sim.reservoir(0, j, "fct")
        np.testing.assert_allclose(f[j, 1:6], reservoir_stats(v, t, np.asarray(len(v)), sim.now), rtol=1e-9)


def test_inactive_server_gets_no_new_flows():
    sim = FlowSimulator([1, 1, 1], PoissonWorkload(rho=0.5, mean_size_s=0.2), seed=2)
    sim.set_active(1, False)
    sim.run_until(100.0)
    assert sim.active_mask().tolist() == [True, False, True]
    assert sim.counters()["server_arrivals"][1] == 0
    with pytest.raises(ValueError, match="at least one server"):
        sim.set_active(0, False)
        sim.set_active(2, False)


def test_weights_validation():
    sim = FlowSimulator([1, 1], seed=0)
    with pytest.raises(ValueError, match="shape"):
        sim.set_weights(0, [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        sim.set_weights(0, [1.0, float("nan")])
    with pytest.raises(ValueError, match=">= 0"):
        sim.set_weights(0, [1.0, -1.0])
    with pytest.raises(ValueError, match="dispatch"):
        sim.set_dispatch("round_robin")
    with pytest.raises(ValueError, match="before now"):
        sim.run_until(5.0)
        sim.run_until(1.0)


def test_server_specs_from_numbers_arrays_and_mappings():
    from marllb_env.sim import as_server_specs

    specs = as_server_specs(np.array([1, 2]))
    assert [s.cpus for s in specs] == [1.0, 2.0]
    specs = as_server_specs([{"cpus": 4, "n_workers": 8}, ServerSpec(cpus=2, speed=1.5)])
    assert specs[0].n_workers == 8 and specs[1].capacity == 3.0
    with pytest.raises(ValueError, match="unknown keys"):
        as_server_specs([{"cores": 4}])
    with pytest.raises(ValueError, match="cpus"):
        as_server_specs([0])
    with pytest.raises(ValueError, match="non-empty"):
        as_server_specs([])
