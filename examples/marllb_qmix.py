"""Train QMIX on the multi-LB MARLLB env, save a checkpoint, evaluate against the heuristics.

    python examples/marllb_qmix.py --timesteps 7200 --scenario moderate   # 60 training episodes of 120 steps
    python examples/marllb_qmix.py --quick                                # under 2 minutes

Flags shared by every example (examples/_cli.py): ``--timesteps`` (training env steps, in whole
episodes of ``--train-steps``), ``--eval-episodes``, ``--seed``, ``--out`` (``<out>/qmix.pt``),
``--quick``, ``--tensorboard`` (the training return, loss and epsilon per episode in ``<out>/tb``).
QMIX updates need ``--batch`` stored episodes: a budget of fewer episodes cannot train, and the
script says so and exits with status 2 instead of saving an untrained network.

QMIX (``marllb_env.qmix``): per-agent GRU Q-networks with parameter sharing and a
monotonic hypernetwork mixer over ``state()``, as MARLLB. Training episodes are shorter than
evaluation episodes (``--train-steps``) to fit a CPU budget. Evaluation uses the shared
harness (``lwmecps_gym.core.evaluate``) through ``marllb_env.multi_agent.JointEnv`` on
held-out seeds, the same seeds (so the same flows) for every policy.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

import _cli  # examples/_cli.py: the shared flags
import numpy as np

from lwmecps_gym.core.evaluation import compare_table, paired_table
from marllb_env.multi_agent import JointEnv, MultiLoadBalanceEnv
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


def train(args: argparse.Namespace, episodes: int) -> tuple[QMIX, np.ndarray, int]:
    """Train for ``episodes`` episodes; returns the learner, the observation scale and the gradient steps made."""
    from tqdm.auto import tqdm
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
        config=QMIXConfig(hidden=args.hidden, lr=args.lr, batch_episodes=args.batch,
                          eps_decay_episodes=max(1, episodes // 2)),
        seed=args.seed,
    )
    writer = None
    if args.tensorboard:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(_cli.tensorboard_dir(args))
    grad_steps = 0
    bar = tqdm(range(episodes), desc="QMIX training", unit="episode")
    for ep in bar:
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
        grad_steps += len(losses)
        loss = float(np.mean(losses)) if losses else float("nan")
        bar.set_postfix(ret=f"{np.sum(R):.1f}", eps=f"{learner.epsilon:.2f}", loss=f"{loss:.4f}")
        if writer is not None:
            writer.add_scalar("train/return", float(np.sum(R)), ep)
            writer.add_scalar("train/epsilon", learner.epsilon, ep)
            if losses:
                writer.add_scalar("train/loss", loss, ep)
    if writer is not None:
        writer.close()
    return learner, scale, grad_steps


def main() -> None:
    p = _cli.parser(__doc__, timesteps=7200, eval_episodes=10, out="results/marllb_qmix")
    p.add_argument("--scenario", default="moderate")
    p.add_argument("--train-steps", type=int, default=120, help="steps per training episode (0.25 s each)")
    p.add_argument("--eval-steps", type=int, default=240, help="steps per evaluation episode (60 s)")
    p.add_argument("--updates", type=int, default=4, help="gradient steps per episode")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--reward", default="jain")
    args = _cli.finish(p, p.parse_args(), timesteps=16 * 60, eval_episodes=2, eval_steps=120, train_steps=60)
    episodes = -(-args.timesteps // args.train_steps)  # whole training episodes
    if episodes < args.batch:
        p.error(f"--timesteps {args.timesteps} gives {episodes} training episodes of {args.train_steps} steps, fewer "
                f"than --batch {args.batch}: QMIX would make no gradient step. Give --timesteps >= "
                f"{args.batch * args.train_steps} or a smaller --batch.")

    learner, scale, grad_steps = train(args, episodes)
    if grad_steps == 0:
        print("QMIX made no gradient step (the replay buffer never held --batch episodes): nothing saved",
              file=sys.stderr)
        sys.exit(2)
    checkpoint = os.path.join(args.out, "qmix.pt")
    learner.save(checkpoint)
    learner = QMIX.load(checkpoint)  # evaluate what was saved
    print(f"{grad_steps} gradient steps over {episodes} episodes; checkpoint: {checkpoint}")

    kw = {"scenario": args.scenario, "max_steps": args.eval_steps, "reward_type": args.reward}
    jobs = [(functools.partial(JointEnv, **kw), ScaledQMIXPolicy(learner, scale), {"name": "QMIX"})]
    results = _cli.evaluate_all(jobs + _cli.multi_lb_baseline_jobs(**kw), args.eval_episodes)
    print(compare_table(results, METRICS))
    print(paired_table(results, "SED", "fct_mean_s"))


if __name__ == "__main__":
    main()
