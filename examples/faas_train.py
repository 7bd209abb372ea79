"""Train SB3 DQN and PPO on faas_gym/Autoscaling-v0 and compare them with every baseline.

Usage::

    python examples/faas_train.py            # 40k steps per agent (a few CPU minutes), 10 eval episodes
    python examples/faas_train.py --quick    # under 2 minutes: 2k steps per agent, 3 eval episodes
    python examples/faas_train.py --env-id FaaSTrainGym-v1 --timesteps 20000 --out results/faas --tensorboard

Flags shared by every example (examples/_cli.py): ``--timesteps``, ``--eval-episodes``, ``--seed``,
``--out``, ``--quick``, ``--tensorboard`` (logs in ``<out>/tb``).

Agents see the observation rescaled to [-1, 1] with Gymnasium's ``RescaleObservation``
(every faas_gym observation bound is finite); baselines read the raw metrics in ``info``.
Evaluation uses the shared harness on seeds disjoint from training: each policy runs one
episode per seed and the table shows mean +- 95 % Student-t half-width over episodes.
Writes ``<out>/faas_results.md``, ``<out>/faas_results.png`` and per-policy CSVs.
"""

from __future__ import annotations

import time
from pathlib import Path

import _cli  # examples/_cli.py: the shared flags
import gymnasium as gym
import numpy as np

import faas_gym  # noqa: F401  (registers the ids)
from faas_gym.baselines import all_baselines
from lwmecps_gym.core import SB3Policy, compare_table
from lwmecps_gym.core.plotting import plot_comparison

METRICS = ["return", "response_time_ms", "slo_violation_rate", "replica_seconds", "cold_starts", "drop_rate"]


def make_env(env_id: str, seed: int | None = None) -> gym.Env:
    env = gym.make(env_id)
    return gym.wrappers.RescaleObservation(env, np.float32(-1.0), np.float32(1.0))


def train(algo: str, env_id: str, timesteps: int, seed: int, tensorboard_log: str | None = None):
    from stable_baselines3 import DQN, PPO  # heavy imports only here

    env = make_env(env_id)
    if algo == "dqn":
        model = DQN(
            "MlpPolicy",
            env,
            learning_rate=5e-4,
            buffer_size=50_000,
            learning_starts=min(1000, timesteps // 4),
            batch_size=64,
            gamma=0.95,
            train_freq=4,
            target_update_interval=1000,
            exploration_fraction=0.3,
            exploration_final_eps=0.02,
            seed=seed,
            verbose=0,
            tensorboard_log=tensorboard_log,
        )
    else:
        model = PPO("MlpPolicy", env, n_steps=960, batch_size=240, gamma=0.95, ent_coef=0.01, seed=seed, verbose=0,
                    tensorboard_log=tensorboard_log)
    t0 = time.perf_counter()
    model.learn(total_timesteps=timesteps, progress_bar=True, tb_log_name=algo)
    print(f"trained {algo.upper()} for {timesteps} steps in {time.perf_counter() - t0:.0f} s", flush=True)
    return model


def main() -> None:
    ap = _cli.parser(__doc__, timesteps=40_000, eval_episodes=10, out="results/faas")
    ap.add_argument("--env-id", default="faas_gym/Autoscaling-v0")
    args = _cli.finish(ap, ap.parse_args(), timesteps=2000, eval_episodes=3)
    out = Path(args.out)

    policies = []
    for algo in ("dqn", "ppo"):
        model = train(algo, args.env_id, args.timesteps, args.seed, _cli.tensorboard_dir(args))
        policies.append(SB3Policy(model, name=f"{algo}_{args.timesteps // 1000}k"))
    policies += all_baselines(gym.make(args.env_id))

    # the harness' held-out seeds 10000, 10001, ...: disjoint from training seeds
    results = _cli.evaluate_all([(lambda: make_env(args.env_id), p, {}) for p in policies], args.eval_episodes)
    seeds = results[0].seeds
    table = compare_table(results, METRICS)
    header = (
        f"{args.env_id}, {len(seeds)} evaluation episodes per policy (seeds {seeds[0]}..{seeds[-1]}), "
        f"agents trained {args.timesteps} steps; mean +- 95% CI over episodes.\n"
        "response_time_ms and slo_violation_rate are request-weighted over the episode; replica_seconds "
        "and cold_starts are episode totals.\n\n"
    )
    print(header + table)
    (out / "faas_results.md").write_text(header + table + "\n")
    for r in results:
        r.to_csv(str(out / f"faas_{r.policy}.csv"))
    plot_comparison(results, ["return", "slo_violation_rate", "replica_seconds", "cold_starts"],
                    str(out / "faas_results.png"),
                    title=f"{args.env_id}: agents ({args.timesteps} steps) vs baselines, {len(seeds)} held-out seeds")
    print(f"wrote {out / 'faas_results.md'} and {out / 'faas_results.png'}")


if __name__ == "__main__":
    main()
