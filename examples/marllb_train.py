"""Train SB3 agents on MARLLB single-LB load balancing and compare them with the heuristic baselines.

Agents: PPO (discrete weight levels, MultiDiscrete), SAC (continuous weights, Box in
[-1, 1] mapped log-uniformly onto weight_range) and sb3-contrib RecurrentPPO (LSTM; the
recurrent counterpart of MARLLB's SAC-GRU). Every agent and baseline is evaluated with
the shared harness on the same held-out seeds (so the same workloads), and the table
(mean and 95% CI over episodes) is printed and a PNG bar chart saved.

Usage::

    python examples/marllb_train.py --quick                 # minutes on a laptop CPU
    python examples/marllb_train.py --steps 200000 --episodes 20 --scenario paper_moderate

Needs the ``sb3`` and ``plot`` extras (stable-baselines3, sb3-contrib, torch, matplotlib).
"""

from __future__ import annotations

import argparse
import functools
import os
import time

import gymnasium as gym

import marllb_env  # noqa: F401  (registers the ids)
from lwmecps_gym.core.evaluation import compare_table, evaluate, paired_table, results_to_csv
from lwmecps_gym.core.plotting import plot_comparison
from lwmecps_gym.core.policy import SB3Policy
from marllb_env import baselines as B

ENV_ID = "marllb_env/LoadBalance-v0"
METRICS = ["fct_mean_s", "fct_p90_s", "fct_p99_s", "jain_cpu_util", "jain_reward_field", "reject_rate", "return"]


def make_env(episode_steps: int, scenario: str, action_type: str = "discrete", **kw):
    return gym.make(ENV_ID, scenario=scenario, max_steps=episode_steps, action_type=action_type, **kw)


def train(algo: str, steps: int, episode_steps: int, scenario: str, seed: int):
    import torch
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.monitor import Monitor

    torch.set_num_threads(1)
    if algo == "SAC":
        env = Monitor(make_env(episode_steps, scenario, "continuous"))
        model = SAC("MlpPolicy", env, seed=seed, learning_starts=200, batch_size=128, train_freq=4,
                    gradient_steps=1, verbose=0)
    elif algo == "PPO":
        env = Monitor(make_env(episode_steps, scenario))
        model = PPO("MlpPolicy", env, seed=seed, n_steps=256, batch_size=64, n_epochs=5, learning_rate=3e-4,
                    verbose=0)
    elif algo == "RecurrentPPO":
        from sb3_contrib import RecurrentPPO

        env = Monitor(make_env(episode_steps, scenario))
        model = RecurrentPPO("MlpLstmPolicy", env, seed=seed, n_steps=256, batch_size=64, n_epochs=5,
                             learning_rate=3e-4, verbose=0)
    else:
        raise ValueError(algo)
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    print(f"trained {algo} for {steps} steps in {time.perf_counter() - t0:.1f} s")
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small budgets (a few minutes in total)")
    ap.add_argument("--steps", type=int, default=50_000, help="training steps per agent")
    ap.add_argument("--episodes", type=int, default=10, help="evaluation episodes (held-out seeds)")
    ap.add_argument("--episode-steps", type=int, default=400, help="steps per episode (0.25 s each)")
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--algos", default="PPO,SAC,RecurrentPPO")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="marllb_results")
    args = ap.parse_args()
    if args.quick:
        args.steps, args.episodes = min(args.steps, 3000), min(args.episodes, 5)
    os.makedirs(args.out, exist_ok=True)

    results = []
    for algo in [a for a in args.algos.split(",") if a]:
        model = train(algo, args.steps, args.episode_steps, args.scenario, args.seed)
        action_type = "continuous" if algo == "SAC" else "discrete"
        factory = functools.partial(make_env, args.episode_steps, args.scenario, action_type)
        results.append(evaluate(factory, SB3Policy(model, name=f"{algo} ({args.steps} steps)"),
                                n_episodes=args.episodes))
    for pol in B.all_baselines():
        action_type = "continuous" if isinstance(pol, B.ActiveWCMP) else "discrete"
        factory = functools.partial(make_env, args.episode_steps, args.scenario, action_type, **pol.env_kwargs)
        results.append(evaluate(factory, pol, n_episodes=args.episodes))

    table = compare_table(results, METRICS)
    print(table)
    # paired differences to SED (same seeds = same workloads), a tighter comparison than overlapping CIs
    print()
    print(paired_table(results, "SED", "fct_mean_s"))
    results_to_csv(results, os.path.join(args.out, "episodes.csv"))
    with open(os.path.join(args.out, "marllb_table.md"), "w") as fh:
        fh.write(table + "\n")
    png = os.path.join(args.out, "marllb_comparison.png")
    plot_comparison(results, ["fct_mean_s", "fct_p90_s", "jain_cpu_util", "return"],
                    png,
                    title=f"{ENV_ID} ({args.scenario}), {args.episodes} held-out seeds")
    print(f"saved {png}")


if __name__ == "__main__":
    main()
