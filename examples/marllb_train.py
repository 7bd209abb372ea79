"""Train SB3 agents on MARLLB single-LB load balancing and compare them with the heuristic baselines.

Agents: PPO (discrete weight levels, MultiDiscrete), SAC (continuous weights, Box in
[-1, 1] mapped log-uniformly onto weight_range) and sb3-contrib RecurrentPPO (LSTM; the
recurrent counterpart of MARLLB's SAC-GRU). Every agent and baseline is evaluated with
the shared harness on the same held-out seeds (so the same workloads), and the table
(mean and 95% CI over episodes) is printed and a PNG bar chart saved.

Usage::

    python examples/marllb_train.py --quick                 # under 2 minutes on a 2-core CPU
    python examples/marllb_train.py --timesteps 200000 --eval-episodes 20 --scenario paper_moderate

Flags shared by every example (examples/_cli.py): ``--timesteps``, ``--eval-episodes``, ``--seed``,
``--out``, ``--quick``, ``--tensorboard`` (logs in ``<out>/tb``).

Needs the ``sb3`` and ``plot`` extras (stable-baselines3, sb3-contrib, torch, matplotlib).
"""

from __future__ import annotations

import functools
import os
import time

import _cli  # examples/_cli.py: the shared flags
import gymnasium as gym

import marllb_env  # noqa: F401  (registers the ids)
from lwmecps_gym.core.evaluation import compare_table, paired_table, results_to_csv
from lwmecps_gym.core.plotting import plot_comparison
from lwmecps_gym.core.policy import SB3Policy
from marllb_env import baselines as B

ENV_ID = "marllb_env/LoadBalance-v0"
#: --quick: training steps per agent (PPO: 4 rollouts of 256 steps)
QUICK_TIMESTEPS = 1024
METRICS = ["fct_mean_s", "fct_p90_s", "fct_p99_s", "jain_cpu_util", "jain_reward_field", "reject_rate", "return"]


def make_env(episode_steps: int, scenario: str, action_type: str = "discrete", **kw):
    return gym.make(ENV_ID, scenario=scenario, max_episode_steps=episode_steps, action_type=action_type, **kw)


def train(algo: str, steps: int, episode_steps: int, scenario: str, seed: int, tensorboard_log: str | None = None):
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.monitor import Monitor

    tb = {"tensorboard_log": tensorboard_log, "verbose": 0, "seed": seed}
    if algo == "SAC":
        env = Monitor(make_env(episode_steps, scenario, "continuous"))
        model = SAC("MlpPolicy", env, learning_starts=min(200, steps // 4), batch_size=128, train_freq=4,
                    gradient_steps=1, **tb)
    elif algo == "PPO":
        env = Monitor(make_env(episode_steps, scenario))
        model = PPO("MlpPolicy", env, n_steps=256, batch_size=64, n_epochs=5, learning_rate=3e-4, **tb)
    elif algo == "RecurrentPPO":
        from sb3_contrib import RecurrentPPO

        env = Monitor(make_env(episode_steps, scenario))
        model = RecurrentPPO("MlpLstmPolicy", env, n_steps=256, batch_size=64, n_epochs=5, learning_rate=3e-4, **tb)
    else:
        raise ValueError(algo)
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps, progress_bar=True, tb_log_name=algo)
    print(f"trained {algo} for {steps} steps in {time.perf_counter() - t0:.1f} s")
    return model


def main() -> None:
    ap = _cli.parser(__doc__, timesteps=50_000, eval_episodes=10, out="results/marllb")
    ap.add_argument("--episode-steps", type=int, default=400, help="steps per episode (0.25 s each)")
    ap.add_argument("--scenario", default="default")
    ap.add_argument("--algos", default="PPO,SAC,RecurrentPPO")
    args = _cli.finish(ap, ap.parse_args(), timesteps=QUICK_TIMESTEPS, eval_episodes=3)

    jobs = []
    for algo in [a for a in args.algos.split(",") if a]:
        model = train(algo, args.timesteps, args.episode_steps, args.scenario, args.seed, _cli.tensorboard_dir(args))
        action_type = "continuous" if algo == "SAC" else "discrete"
        factory = functools.partial(make_env, args.episode_steps, args.scenario, action_type)
        jobs.append((factory, SB3Policy(model, name=f"{algo} ({args.timesteps} steps)"), {}))
    for pol in B.all_baselines():
        action_type = "continuous" if isinstance(pol, B.ActiveWCMP) else "discrete"
        factory = functools.partial(make_env, args.episode_steps, args.scenario, action_type, **pol.env_kwargs)
        jobs.append((factory, pol, {}))
    results = _cli.evaluate_all(jobs, args.eval_episodes)

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
                    title=f"{ENV_ID} ({args.scenario}), {args.eval_episodes} held-out seeds", sort_by="fct_mean_s")
    print(f"saved {png}")


if __name__ == "__main__":
    main()
