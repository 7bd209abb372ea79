"""Fairness rewards: known values, documented ranges, errors."""

import math

import numpy as np
import pytest

from marllb_env.rewards import REWARD_FUNCTIONS, fairness, get_reward_function, reward_range


def test_ten_functions_exist_including_the_seeds_nine():
    assert set(REWARD_FUNCTIONS) == {
        "jain", "product", "var", "var_exp", "var_log", "max", "max_exp", "max_log", "cv", "max_min"
    }


def test_known_values():
    assert fairness("jain", [1, 1, 1, 1]) == 1.0
    assert fairness("jain", [1, 0, 0, 0]) == pytest.approx(0.25)  # seed: [0.25, 1] for 4 servers
    assert fairness("jain", [0, 0]) == 1.0
    assert fairness("product", [1.0, 2.0]) == pytest.approx(0.5 * 1.0, rel=1e-5)
    assert fairness("var", [1.0, 3.0]) == -1.0
    assert fairness("var_exp", [0.01, 0.03]) == pytest.approx(math.exp(-10000 * 1e-4))
    assert fairness("max", [0.2, 0.5]) == -0.5
    assert fairness("max_log", [math.e, 1.0]) == pytest.approx(-1.0)
    assert fairness("cv", [1.0, 3.0]) == pytest.approx(-0.5)
    assert fairness("max_min", [1.0, 4.0]) == 0.25


@pytest.mark.parametrize("name", sorted(REWARD_FUNCTIONS))
def test_values_stay_in_documented_range(name):
    rng = np.random.default_rng(0)
    n = 4
    lo, hi = reward_range(name, n)
    for _ in range(200):
        x = rng.exponential(rng.choice([1e-3, 0.1, 2.0]), n) * (rng.random(n) > 0.2)
        r = fairness(name, x)
        assert isinstance(r, float) and math.isfinite(r)
        assert lo - 1e-12 <= r <= hi + 1e-12, (name, x, r)
    assert fairness(name, [0.3] * n) == pytest.approx(max(min(hi, fairness(name, [0.3] * n)), lo))


def test_unknown_reward_name_is_a_clear_error():
    with pytest.raises(ValueError, match="reward_type must be one of"):
        get_reward_function("fairness")
