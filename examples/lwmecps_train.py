"""Train one of the seed's algorithms on an lwmecps env, save it, and evaluate it against the
baselines with the shared harness.

    python examples/lwmecps_train.py --algo PPO  --timesteps 100000    # lwmecps-v3 (per-site replicas)
    python examples/lwmecps_train.py --algo A2C  --timesteps 100000    # lwmecps-v3
    python examples/lwmecps_train.py --algo DQN  --timesteps 50000     # lwmecps-v2 (placement, Discrete)
    python examples/lwmecps_train.py --algo SAC  --timesteps 30000     # lwmecps-v3, action_mode="continuous"
    python examples/lwmecps_train.py --algo TD3  --timesteps 30000     # lwmecps-v3, action_mode="continuous"
    python examples/lwmecps_train.py --algo Q    --timesteps 72000     # tabular Q-learning, v3 minikube-4
    python examples/lwmecps_train.py --algo PPO  --quick               # under 2 minutes

Flags shared by every example (examples/_cli.py): ``--timesteps``, ``--eval-episodes``, ``--seed``,
``--out`` (default ``results/lwmecps``), ``--quick``, ``--tensorboard`` (logs in ``<out>/tb``).

Which env each algorithm gets:

* PPO/A2C handle ``MultiDiscrete`` natively -> ``lwmecps-v3``.
* DQN needs a ``Discrete`` action -> the placement env ``lwmecps-v2``.
* SAC/TD3 need a ``Box`` action -> ``lwmecps-v3`` with ``action_mode="continuous"`` (each
  component in [-1, 1] is a target replica fraction per site, rounded to whole replicas).
  Baselines are evaluated on the discrete twin (same scenario, same seeds): the metrics
  compare directly.
* Q: tabular Q-learning (:mod:`lwmecps_gym.agents.tabular_q`; SB3 has no tabular method):
  the state is the per-site demand, 4 uniform bins each over [0, 1.5] (demand is
  normalised by the site's maximum capacity), one Q-table per site (factorised over the
  ``MultiDiscrete`` action), on the small ``minikube-4`` scenario so states recur;
  ``--timesteps`` is rounded up to whole episodes of 240 steps.

Outputs in ``--out``: the model (``.zip`` for SB3, ``.npz`` for Q), ``table.md``,
``episodes.csv``, ``comparison.png``.
"""

from __future__ import annotations

import os
import time

import _cli  # examples/_cli.py: the shared flags
import gymnasium as gym

import lwmecps_gym  # noqa: F401  (registers the ids)
from lwmecps_gym.agents import ObservationDiscretizer, TabularQLearning
from lwmecps_gym.baselines import baselines_for
from lwmecps_gym.core import SB3Policy, compare_table
from lwmecps_gym.core.evaluation import results_to_csv
from lwmecps_gym.core.plotting import plot_comparison
from lwmecps_gym.core.training import train_sb3

#: algorithm -> (env id, env kwargs for training, SB3 constructor kwargs)
SETUP = {
    "PPO": ("lwmecps-v3", {}, {"n_steps": 256, "batch_size": 256, "gamma": 0.95, "ent_coef": 0.01}),
    "A2C": ("lwmecps-v3", {}, {"n_steps": 16, "gamma": 0.95, "ent_coef": 0.01}),
    "DQN": ("lwmecps-v2", {}, {"learning_starts": 1000, "exploration_fraction": 0.3, "gamma": 0.95}),
    "SAC": ("lwmecps-v3", {"action_mode": "continuous"}, {"learning_starts": 1000, "gamma": 0.95}),
    "TD3": ("lwmecps-v3", {"action_mode": "continuous"}, {"learning_starts": 1000, "gamma": 0.95}),
    "Q": ("lwmecps-v3", {"scenario": "minikube-4"}, {}),
}
#: --quick: training steps (PPO: one rollout of 8 envs x 256 steps; the Q agent: 9 episodes of 240 steps)
QUICK_TIMESTEPS = 2048
#: --quick for SAC/TD3: one gradient step per env step makes them the slowest per step
QUICK_TIMESTEPS_OFF_POLICY = 1024
METRICS = ["latency_ms", "sla_violation_rate", "replicas", "failed_rps", "return"]


def train_tabular_q(env_id: str, env_kwargs: dict, timesteps: int, seed: int) -> TabularQLearning:
    """Tabular Q-learning for ``timesteps`` env steps, rounded up to whole episodes (progress bar per episode)."""
    from tqdm.auto import tqdm

    env = gym.make(env_id, **env_kwargs)
    n = env.unwrapped.n
    disc = ObservationDiscretizer([0.0] * n, [1.5] * n, bins=4)  # obs[0:n] = per-site demand
    agent = TabularQLearning(env.action_space, disc, learning_rate=0.1, gamma=0.9,
                             epsilon_decay=0.99, seed=seed)
    episodes = -(-timesteps // env.spec.max_episode_steps)
    for ep in tqdm(range(episodes), desc="tabular Q training", unit="episode"):
        agent.learn(env, 1, seed=seed + ep)  # = agent.learn(env, episodes, seed) in one call
    env.close()
    return agent


def main() -> None:
    ap = _cli.parser(__doc__, timesteps=100_000, eval_episodes=10, out="results/lwmecps")
    ap.add_argument("--algo", choices=sorted(SETUP), default="PPO")
    ap.add_argument("--scenario", default=None, help="override the scenario (default: melbourne-cbd; Q: minikube-4)")
    ap.add_argument("--n-envs", type=int, default=None, help="parallel envs (default: 8 on-policy, 1 off-policy)")
    ap.add_argument("--wandb", metavar="PROJECT", help="log to Weights & Biases (needs wandb)")
    args = ap.parse_args()
    quick_steps = QUICK_TIMESTEPS_OFF_POLICY if args.algo in ("SAC", "TD3") else QUICK_TIMESTEPS
    args = _cli.finish(ap, args, timesteps=quick_steps, eval_episodes=2)
    env_id, env_kwargs, algo_kwargs = SETUP[args.algo]
    env_kwargs = dict(env_kwargs)
    if args.scenario:
        env_kwargs["scenario"] = args.scenario
    out = args.out

    t0 = time.perf_counter()
    if args.algo == "Q":
        agent = train_tabular_q(env_id, env_kwargs, args.timesteps, args.seed)
        agent.save(os.path.join(out, "q_table.npz"))
        trained = agent
    else:
        n_envs = args.n_envs or (8 if args.algo in ("PPO", "A2C") else 1)
        kw = dict(algo_kwargs)
        if args.quick and "learning_starts" in kw:
            kw["learning_starts"] = min(kw["learning_starts"], args.timesteps // 4)
        model = train_sb3(args.algo, env_id, args.timesteps, env_kwargs=env_kwargs, n_envs=n_envs,
                          seed=args.seed, algo_kwargs=kw, tensorboard_log=_cli.tensorboard_dir(args),
                          wandb_project=args.wandb, progress_bar=True)
        model.save(os.path.join(out, f"{args.algo.lower()}_{env_id}.zip"))
        trained = SB3Policy(model, name=args.algo)
    print(f"trained {args.algo} on {env_id} {env_kwargs} in {time.perf_counter() - t0:.0f} s")

    baseline_kwargs = {k: v for k, v in env_kwargs.items() if k != "action_mode"}
    base_env = gym.make(env_id, **baseline_kwargs)
    jobs = [(env_id, trained, {**env_kwargs, "name": args.algo})] + [(base_env, p, {}) for p in baselines_for(base_env)]
    results = _cli.evaluate_all(jobs, args.eval_episodes)
    base_env.close()

    table = compare_table(results, METRICS)
    print(table)
    with open(os.path.join(out, "table.md"), "w") as fh:
        fh.write(table + "\n")
    results_to_csv(results, os.path.join(out, "episodes.csv"))
    plot_comparison(results, METRICS, os.path.join(out, "comparison.png"),
                    title=f"{args.algo} on {env_id}: {args.eval_episodes} held-out seeds")
    print(f"wrote {out}/")


if __name__ == "__main__":
    main()
