"""Clairvoyant oracles for :class:`marllb_env.drift.HiddenCapacityEnv` (``marllb_env/LoadBalanceHard-v0``).

An oracle reads what a real load balancer cannot: here the servers' **true current
capacities**, which :class:`~marllb_env.drift.HiddenCapacityEnv` reports in
``info["true_capacity"]``. It bounds what knowing the hidden capacities is worth: the
non-clairvoyant controllers (:mod:`marllb_env.baselines`) and a learned policy act on the same SED data plane with
weights they must infer from latency features.

=========================  ========  ==================================================  ==================
oracle                     dispatch  rule                                                knows
=========================  ========  ==================================================  ==================
``TrueCapacitySED``        sed       argmin (n_j + 1) / c_j(t), ``c_j(t)`` the true      current capacities
                                     capacity now (SimLB's GSQ with true weights: with
                                     one LB, local counts are the global ones)
=========================  ========  ==================================================  ==================

The simulator's ``lwl`` and ``srt`` dispatch modes (:func:`marllb_env.baselines.LWL`,
:func:`marllb_env.baselines.SRT`) also use the true current speeds, and the job sizes; they are
greedy per flow and, measured on the hard scenario, worse than ``TrueCapacitySED`` (see
docs/marllb_env.md), so they are reported but are not the bound.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from marllb_env.baselines import LBBaseline


class TrueCapacitySED(LBBaseline):
    """Oracle: SED with the servers' true current capacities as weights, refreshed every step.

    Reads ``info["true_capacity"]`` (:class:`marllb_env.drift.HiddenCapacityEnv`). With
    continuous actions, capacity ratios beyond the codec's ``w_max / w_min`` are clipped to it
    (the smallest weights raised); discrete actions round to the nearest level.

    Args:
        env: unused; accepted so that ``TrueCapacitySED(env)`` fits ``BenchmarkTask.oracles``.

    Raises:
        KeyError: ``info`` has no ``"true_capacity"`` (an env without hidden capacities).
    """

    dispatch = "sed"
    name = "SED, true capacity (oracle)"

    def __init__(self, env: gym.Env | None = None):
        self._cached = None

    def static(self) -> bool:
        return False

    def weights(self, obs: Any, info: dict[str, Any]) -> np.ndarray:
        if "true_capacity" not in info:
            raise KeyError("info has no 'true_capacity'; TrueCapacitySED runs on marllb_env/LoadBalanceHard-v0")
        w = np.asarray(info["true_capacity"], dtype=np.float64)
        codec = info["weight_codec"]
        w = w / w.max()
        if codec.action_type == "continuous":
            w = np.maximum(w, codec.w_min / codec.w_max)
        return w


__all__ = ["TrueCapacitySED"]
