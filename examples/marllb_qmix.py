"""Train QMIX on the multi-LB MARLLB env, save a checkpoint, evaluate against the heuristics.

    python examples/marllb_qmix.py --episodes 60 --scenario moderate

QMIX (``marllb_env.qmix``): per-agent GRU Q-networks with parameter sharing and a
monotonic hypernetwork mixer over ``state()``, as MARLLB. Training episodes are shorter than
evaluation episodes (``--train-steps``) to fit a CPU budget. Evaluation uses the shared
harness (``lwmecps_gym.core.evaluate``) through ``marllb_env.multi_agent.JointEnv`` on
held-out seeds, the same seeds (so the same flows) for every policy.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from lwmecps_gym.core.evaluation import compare_table, evaluate, paired_table
from marllb_env.multi_agent import JointEnv, MultiLoadBalanceEnv, evaluate_baselines
from marllb_env.qmix import QMIX, QMIXConfig, QMIXPolicy

METRICS = ["fct_mean_s", "fct_p90_s", "jain_util", "rejects", "return"]


def obs_scale(env: MultiLoadBalanceEnv) -> np.ndarray:
    """Per-feature divisor: flow counts / 10, seconds as they are (typical FCTs are 0.1-5 s)."""
    s = np.ones((env.n_servers, 11), np.float32)
    s[:, 0] = 10.0
    return s.reshape(-1)


class ScaledQMIXPolicy(QMIXPolicy):
    def __init__(self, learner: QMIX, scale: np.ndarray, name: str = "QMIX"):
        super().__init__(learner, name)
        self.scale = scale

    def act(self, obs, info):
        o = np.asarray(obs).reshape(self.learner.n_agents, -1) / self.scale
        return self.learner.act(o).reshape(-1)


def train(args: argparse.Namespace) -> tuple[QMIX, np.ndarray]:
    env = MultiLoadBalanceEnv(args.scenario, max_steps=args.train_steps, reward_type=args.reward)
    scale = obs_scale(env)
    state_scale = np.concatenate([np.tile(scale, env.n_lbs), np.full(env.n_servers, 10.0), np.ones(env.n_servers)])
    n, m = env.n_servers, env.n_lbs
    learner = QMIX(
        n_agents=m,
        obs_dim=n * 11,
        state_dim=env.state_space.shape[0],
        heads=n,
        levels=len(env.weight_levels),
        config=QMIXConfig(hidden=args.hidden, lr=args.lr, batch_episodes=args.batch, eps_decay_episodes=args.episodes // 2),
        seed=args.seed,
    )
    t0 = time.time()
    for ep in range(args.episodes):
        obs, _ = env.reset(seed=args.seed * 100_000 + ep)
        learner.reset_hidden()
        obs_seq = [np.stack([obs[a] for a in env.possible_agents]) / scale]
        S = [env.state() / state_scale]
        A, R, D = [], [], []
        while env.agents:
            a = learner.act(obs_seq[-1], explore=True)
            obs, rew, term, trunc, _ = env.step({ag: a[i] for i, ag in enumerate(env.possible_agents)})
            obs_seq.append(np.stack([obs[ag] for ag in env.possible_agents]) / scale)
            S.append(env.state() / state_scale)
            A.append(a)
            R.append(rew["lb_0"])
            D.append(bool(term["lb_0"]))
        learner.store({"obs": np.array(obs_seq), "state": np.array(S), "actions": np.array(A), "rewards": np.array(R), "terminated": np.array(D)})
        losses = [x for x in (learner.update() for _ in range(args.updates)) if x is not None]
        if ep % 10 == 0 or ep == args.episodes - 1:
            print(
                f"episode {ep:3d} return {np.sum(R):7.2f} eps {learner.epsilon:.2f} "
                f"loss {np.mean(losses) if losses else float('nan'):.4f} ({time.time() - t0:.0f} s)"
            )
    return learner, scale


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="moderate")
    p.add_argument("--episodes", type=int, default=60)
    p.add_argument("--train-steps", type=int, default=120, help="steps per training episode (0.25 s each)")
    p.add_argument("--eval-steps", type=int, default=240, help="steps per evaluation episode (60 s)")
    p.add_argument("--updates", type=int, default=4, help="gradient steps per episode")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--reward", default="jain")
    p.add_argument("--eval-seeds", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", default="marllb_qmix.pt")
    args = p.parse_args()
    torch.set_num_threads(1)

    learner, scale = train(args)
    learner.save(args.checkpoint)
    learner = QMIX.load(args.checkpoint)  # evaluate what was saved
    print(f"checkpoint: {args.checkpoint}")

    seeds = [10_000 + i for i in range(args.eval_seeds)]
    kw = {"scenario": args.scenario, "max_steps": args.eval_steps, "reward_type": args.reward}
    results = [evaluate(lambda: JointEnv(**kw), ScaledQMIXPolicy(learner, scale), seeds=seeds, name="QMIX")]
    results += evaluate_baselines(seeds, **kw)
    print(compare_table(results, METRICS))
    print(paired_table(results, "SED", "fct_mean_s"))


if __name__ == "__main__":
    main()
