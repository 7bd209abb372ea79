"""Leaderboard declarations of lwmecps_gym (see :mod:`lwmecps_gym.core.benchmark`).

One task: the hard scenario ``melbourne-flash`` (:mod:`lwmecps_gym.scenarios.hard`, id
``lwmecps_gym/ScalingHard-v0``), primary metric the episode return (higher is better).

* Non-clairvoyant baselines (:func:`hard_baselines`): ``static`` and ``hpa`` grid-searched on
  :data:`lwmecps_gym.baselines.TUNING_SEEDS`, ``nearest-site`` (M/M/c greedy on the last
  window), ``mpc-last-window`` (the MPC below with a last-window forecast).
* Clairvoyant upper bound (:func:`hard_oracles`): ``oracle-mpc``, the same receding-horizon
  MPC over the simulator's TRUE future arrival rates, planning through the pod start-up delay
  and the shared budget (exact DP over sites).
* Recipe: PPO on the demand-relative action (HPA rule plus a per-site offset, see
  :class:`~lwmecps_gym.scenarios.hard.DemandRelativeAction`) with the demand-trend
  observation. Training seeds are the leaderboard's; evaluation seeds are :data:`EVAL_SEEDS`.

Nothing here imports SB3 or torch.
"""

from __future__ import annotations

from typing import Any

from lwmecps_gym.baselines import LazyPolicy, MPCPolicy, NearestSitePolicy, tuned_proportional, tuned_static
from lwmecps_gym.core.benchmark import BenchmarkTask, Recipe
from lwmecps_gym.scenarios.hard import HARD_ID, HARD_SCENARIO

#: Held-out workload seeds of the hard task (disjoint from TUNING_SEEDS and training seeds).
EVAL_SEEDS = tuple(range(10_000, 10_010))


def hard_baselines(env: Any) -> list:
    """The tuned non-clairvoyant controllers for ``melbourne-flash``.

    ``static`` and ``hpa`` are grid-searched on the tuning seeds when first used (10-25 s on
    a fresh copy of ``env`` made from its spec); listing them is free.
    """
    return [LazyPolicy("static", lambda: tuned_static(env)), LazyPolicy("hpa", lambda: tuned_proportional(env)),
            NearestSitePolicy(), MPCPolicy("last-window", env)]


def hard_oracles(env: Any) -> list:
    """The clairvoyant bound for ``melbourne-flash``: it reads the TRUE future of ``env``'s
    simulator, so it must be evaluated on that same env instance (it raises otherwise)."""
    return [MPCPolicy("oracle", env)]


#: PPO on the demand-relative action: an offset of 0 is the HPA rule, so the policy starts
#: near a sensible controller and learns when to add headroom (rising demand trend, time of
#: day) and where to save replicas. 240-step episodes; rollouts of 4 x 256 steps. Chosen from
#: short runs (docs/lwmecps_gym.md, "PPO quick check"): lr 1e-3 / gamma 0.95 / no entropy bonus
#: learned faster than lr 3e-4 / gamma 0.97 / ent 0.005 with rollouts of 4 x 512.
PPO_RECIPE = Recipe(
    name="PPO",
    algo="PPO",
    timesteps=400_000,
    algo_kwargs={
        "n_steps": 256,
        "batch_size": 256,
        "n_epochs": 10,
        "learning_rate": 1e-3,
        "gamma": 0.95,
        "gae_lambda": 0.95,
        "ent_coef": 0.0,
        "clip_range": 0.2,
        "policy_kwargs": {"net_arch": [128, 128]},
    },
    env_kwargs={"action": "demand-relative"},
    n_envs=4,
)

TASKS = (
    BenchmarkTask(
        family="lwmecps_gym",
        scenario=HARD_SCENARIO,
        env_id=HARD_ID,
        metric="return",
        higher_is_better=True,
        baselines=hard_baselines,
        oracles=hard_oracles,
        recipes=(PPO_RECIPE,),
        eval_seeds=EVAL_SEEDS,
        description="Melbourne CBD, 6 EUA sites: flash crowds, 90 s pod start-up, replica cost, shared budget of 40",
    ),
)
