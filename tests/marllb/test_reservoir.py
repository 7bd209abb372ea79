"""Reservoir sampling: semantics of random replacement vs Algorithm R, and the five statistics."""

import numpy as np
import pytest

from marllb_env.reservoir import STAT_NAMES, ReservoirSampler, reservoir_stats


def test_stats_match_numpy_definitions():
    rng = np.random.default_rng(0)
    v = rng.exponential(0.3, 128)
    t = rng.uniform(0, 10, 128)
    now = 12.0
    st = reservoir_stats(v, t, None, now, decay=0.9)
    dec = v * 0.9 ** (now - t)
    expected = [v.mean(), np.percentile(v, 90), v.std(), dec.mean(), np.percentile(dec, 90)]
    np.testing.assert_allclose(st, expected, rtol=1e-12)


def test_masked_stats_ignore_empty_slots_and_empty_is_zero():
    v = np.zeros(8)
    t = np.zeros(8)
    v[:3] = [1.0, 2.0, 3.0]
    t[:3] = 5.0
    st = reservoir_stats(v, t, np.asarray(3), now=5.0)
    np.testing.assert_allclose(st, [2.0, np.percentile([1, 2, 3], 90), np.std([1, 2, 3]), 2.0,
                                    np.percentile([1, 2, 3], 90)])
    # VPP semantics: the five empty (0, 0) slots pull the mean toward 0
    st_zero = reservoir_stats(v, t, None, now=5.0)
    assert st_zero[0] == pytest.approx(6.0 / 8)
    assert np.all(reservoir_stats(v, t, np.asarray(0), now=5.0) == 0.0)


def test_sampler_fills_then_replaces_and_stats_dict():
    r = ReservoirSampler(4, rng=np.random.default_rng(1))
    for i in range(4):
        r.add(float(i), float(i))
    assert sorted(r.sample().tolist()) == [0.0, 1.0, 2.0, 3.0]
    r.add(4.0, 10.0)
    assert 10.0 in r.sample() and len(r.sample()) == 4
    assert set(r.stats(now=4.0)) == set(STAT_NAMES)


def _retained_mean(mode: str, seed: int, n: int = 2000, k: int = 128) -> float:
    r = ReservoirSampler(k, mode=mode, rng=np.random.default_rng(seed))
    for i in range(n):
        r.add(float(i), float(i))
    return float(r.sample().mean())


def test_algorithm_r_is_uniform_and_random_replacement_favours_recent_samples():
    # Algorithm R keeps a uniform sample of 0..N-1: the mean of K=128 retained indices has mean
    # (N-1)/2 = 999.5 and std ~ sqrt((N^2/12)/K * (N-K)/(N-1)) ~ 49; averaged over 20 seeds the
    # standard error is ~11, so +-60 (over 5 SE) cannot fail by chance.
    ar = np.mean([_retained_mean("algorithm_r", s) for s in range(20)])
    assert abs(ar - 999.5) < 60
    # Random replacement: a sample survives k later writes w.p. (1 - 1/128)^k, so the retained
    # ages are ~geometric with mean ~128: the retained mean is ~N - 128 ~ 1870, far from uniform.
    rr = np.mean([_retained_mean("random_replacement", s) for s in range(20)])
    assert rr > 1800


def test_keep_prob_thins_the_writes():
    r = ReservoirSampler(1000, keep_prob=0.25, rng=np.random.default_rng(2))
    for i in range(800):
        r.add(float(i), 1.0)
    # Binomial(800, 0.25): mean 200, sd 12.2; +-60 is ~5 sd
    assert abs(r.n_filled - 200) < 60


@pytest.mark.parametrize(
    "kwargs",
    [
        {"capacity": 0},
        {"mode": "vitter"},
        {"empty_slots": "nan"},
        {"mode": "algorithm_r", "empty_slots": "zero"},
        {"keep_prob": 0.0},
        {"decay": 1.5},
    ],
)
def test_bad_arguments_raise(kwargs):
    with pytest.raises((ValueError, TypeError)):
        ReservoirSampler(**kwargs)
