"""The main job: train PPO on lwmecps-v3 (Melbourne CBD, real EUA sites and users), compare it with
every baseline on held-out seeds, print the table and save a plot.

    python examples/quickstart.py                 # ~3-5 CPU minutes of training
    python examples/quickstart.py --quick         # under 2 minutes: 4096 steps, 2 evaluation episodes
    python examples/quickstart.py --timesteps 20000 --eval-episodes 3 --tensorboard

Flags shared by every example (examples/_cli.py): ``--timesteps``, ``--eval-episodes``, ``--seed``,
``--out``, ``--quick``, ``--tensorboard`` (logs in ``<out>/tb``).

Outputs in ``--out`` (default ``results/quickstart``): ``ppo_lwmecps_v3.zip`` (the model),
``table.md`` (mean and 95% CI over evaluation episodes), ``episodes.csv`` (per-episode
metrics of every policy) and ``comparison.png``.
"""

from __future__ import annotations

import os
import time

import _cli  # examples/_cli.py: the shared flags
import gymnasium as gym

import lwmecps_gym  # noqa: F401  (registers the ids)
from lwmecps_gym.baselines import baselines_for
from lwmecps_gym.core import SB3Policy, compare_table
from lwmecps_gym.core.evaluation import results_to_csv
from lwmecps_gym.core.plotting import plot_comparison
from lwmecps_gym.core.training import train_sb3

ENV_ID = "lwmecps-v3"
METRICS = ["latency_ms", "sla_violation_rate", "replicas", "failed_rps", "return"]


def main() -> None:
    ap = _cli.parser(__doc__, timesteps=200_000, eval_episodes=10, out="results/quickstart")
    ap.add_argument("--scenario", default="melbourne-cbd")
    ap.add_argument("--n-envs", type=int, default=8)
    ap.add_argument("--wandb", metavar="PROJECT", help="also log to Weights & Biases (needs wandb)")
    args = _cli.finish(ap, ap.parse_args(), timesteps=4096, eval_episodes=2)
    env_kwargs = {"scenario": args.scenario}

    env = gym.make(ENV_ID, **env_kwargs)
    u = env.unwrapped
    print(f"{ENV_ID} scenario={args.scenario}: {u.n} edge sites, action {env.action_space}, "
          f"observation {env.observation_space.shape}, {env.spec.max_episode_steps} steps/episode")

    t0 = time.perf_counter()
    model = train_sb3(
        "PPO", ENV_ID, args.timesteps, env_kwargs=env_kwargs, n_envs=args.n_envs, seed=args.seed,
        algo_kwargs={"n_steps": 256, "batch_size": 256, "n_epochs": 10, "learning_rate": 3e-4,
                     "gamma": 0.95, "ent_coef": 0.01},
        tensorboard_log=_cli.tensorboard_dir(args),
        wandb_project=args.wandb,
        progress_bar=True,
    )
    print(f"trained PPO for {args.timesteps} steps in {time.perf_counter() - t0:.0f} s")
    model.save(os.path.join(args.out, "ppo_lwmecps_v3.zip"))

    policies = [SB3Policy(model, name="PPO"), *baselines_for(env)]
    results = _cli.evaluate_all([(env, p, {}) for p in policies], args.eval_episodes)
    env.close()

    table = compare_table(results, METRICS)
    print()
    print(table)
    with open(os.path.join(args.out, "table.md"), "w") as fh:
        fh.write(table + "\n")
    results_to_csv(results, os.path.join(args.out, "episodes.csv"))
    png = os.path.join(args.out, "comparison.png")
    plot_comparison(results, METRICS, png,
                    title=f"{ENV_ID} {args.scenario}: PPO vs baselines ({args.eval_episodes} held-out seeds)")
    print(f"\nwrote {png}, table.md, episodes.csv and the model to {args.out}/")


if __name__ == "__main__":
    main()
