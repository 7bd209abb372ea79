"""What a family declares so the leaderboard (``benchmarks/leaderboard.py``) can run it.

Each family module ``<package>/benchmark.py`` exposes ``TASKS: tuple[BenchmarkTask, ...]``: one per
named scenario on the leaderboard (the family's hard scenario(s), optionally its default). The
leaderboard trains every :class:`Recipe` over several training seeds, evaluates each trained policy,
every non-clairvoyant baseline and every oracle on the task's held-out ``eval_seeds`` with the one
harness (:func:`lwmecps_gym.core.evaluation.evaluate`), and reports across training seeds with
rliable. Nothing here imports SB3 or torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from lwmecps_gym.core.policy import Policy


@dataclass(frozen=True)
class Recipe:
    """A shipped training recipe.

    Attributes:
        name: label in tables (e.g. ``"PPO"``, ``"PPO-framestack"``).
        algo: an SB3 algorithm name of :data:`lwmecps_gym.core.training.ALGORITHMS`, used when
            ``train`` is ``None``.
        timesteps: training budget in env steps.
        algo_kwargs: SB3 constructor arguments (hyperparameters).
        env_kwargs: extra ``gym.make`` kwargs for training AND evaluating this recipe (merged over
            the task's ``env_kwargs``), e.g. an observation option with demand forecasts.
        n_envs: parallel training copies.
        train: optional custom trainer ``train(task, recipe, seed) -> Policy`` for non-SB3 learners.
    """

    name: str
    algo: str = "PPO"
    timesteps: int = 100_000
    algo_kwargs: Mapping[str, Any] = field(default_factory=dict)
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    n_envs: int = 1
    train: Callable[[BenchmarkTask, Recipe, int], Policy] | None = None


@dataclass(frozen=True)
class BenchmarkTask:
    """One leaderboard row group: a family's scenario with its bounds and baselines.

    Attributes:
        family: ``"lwmecps_gym"``, ``"faas_gym"`` or ``"marllb_env"``.
        scenario: short scenario name used in tables and file names.
        env_id: registered id; ``env_kwargs`` are passed to ``gym.make``.
        metric: the primary metric (a key of the harness' per-episode metrics, e.g. ``"return"``).
        higher_is_better: direction of ``metric``.
        baselines: ``baselines(env) -> [Policy]``, the non-clairvoyant controllers a practitioner
            would deploy (tuned heuristics, MPC with a naive forecast).
        oracles: ``oracles(env) -> [Policy]``, clairvoyant upper bounds (may read the true future).
        recipes: the shipped learning recipes.
        eval_seeds: held-out workload seeds (disjoint from training seeds).
        step_limit: steps per evaluation episode (``None``: the env's own TimeLimit).
        description: one line for the results page.
    """

    family: str
    scenario: str
    env_id: str
    metric: str = "return"
    higher_is_better: bool = True
    baselines: Callable[[gym.Env], list[Policy]] = lambda env: []
    oracles: Callable[[gym.Env], list[Policy]] = lambda env: []
    recipes: tuple[Recipe, ...] = ()
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    eval_seeds: tuple[int, ...] = tuple(range(10_000, 10_010))
    step_limit: int | None = None
    description: str = ""

    def make_env(self, **overrides: Any) -> gym.Env:
        """``gym.make(env_id, **env_kwargs, **overrides)``."""
        return gym.make(self.env_id, **{**self.env_kwargs, **overrides})


def headroom(oracle: float, best_baseline: float, higher_is_better: bool) -> float:
    """Relative gap of the oracle over the best non-clairvoyant baseline: ``|oracle - best| / |best|``,
    signed so that a positive value means the oracle is better. Raises ``ValueError`` if ``best`` is 0."""
    if best_baseline == 0:
        raise ValueError("headroom is undefined for a best baseline of 0")
    gain = oracle - best_baseline if higher_is_better else best_baseline - oracle
    return gain / abs(best_baseline)
