"""PPO with parameter sharing over the multi-LB MARLLB env (the SB3 route), via SuperSuit.

    python examples/marllb_ppo_shared.py --timesteps 20000 --scenario moderate

SuperSuit's ``pettingzoo_env_to_vec_env_v1`` turns every agent into one sub-env of a vector
env (all agents share one policy: parameter sharing); ``concat_vec_envs_v1`` stacks copies
of the env (it copies by pickling: ``MultiLoadBalanceEnv`` pickles as its constructor
arguments). Checked with supersuit 3.11.0, pettingzoo 1.27.0, stable-baselines3 2.9.2,
gymnasium 1.4.0. Observations are normalised by ``VecNormalize`` (its statistics are used
at evaluation). Evaluation uses the shared harness through ``JointEnv`` on held-out seeds.
"""

from __future__ import annotations

import argparse
import time

import supersuit as ss
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

from lwmecps_gym.core.evaluation import compare_table, evaluate, paired_table
from marllb_env.multi_agent import JointEnv, evaluate_baselines, parallel_env
from marllb_env.pipeline import SharedPPOPolicy

METRICS = ["fct_mean_s", "fct_p90_s", "jain_util", "rejects", "return"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenario", default="moderate")
    p.add_argument("--timesteps", type=int, default=20_000, help="agent-steps (each env step gives M)")
    p.add_argument("--train-steps", type=int, default=120)
    p.add_argument("--eval-steps", type=int, default=240)
    p.add_argument("--copies", type=int, default=2, help="env copies stacked by concat_vec_envs_v1")
    p.add_argument("--reward", default="jain")
    p.add_argument("--eval-seeds", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", default="marllb_ppo_shared.zip")
    args = p.parse_args()
    torch.set_num_threads(1)

    env = parallel_env(scenario=args.scenario, max_steps=args.train_steps, reward_type=args.reward)
    n_agents = env.n_lbs
    venv = ss.pettingzoo_env_to_vec_env_v1(env)
    venv = ss.concat_vec_envs_v1(venv, args.copies, num_cpus=0, base_class="stable_baselines3")
    venv = VecMonitor(venv)
    venv = VecNormalize(venv, norm_obs=True, norm_reward=True)
    # SuperSuit 3.11's ConcatVecEnv has no seed() (SuperSuit#160), so PPO(seed=...) fails: seed torch/numpy here
    set_random_seed(args.seed)
    model = PPO("MlpPolicy", venv, n_steps=128, batch_size=128, n_epochs=5, learning_rate=3e-4, gamma=0.95, verbose=0)
    t0 = time.time()
    model.learn(args.timesteps)
    print(f"trained {args.timesteps} agent-steps in {time.time() - t0:.0f} s")
    model.save(args.save)
    venv.save(args.save.replace(".zip", "_vecnormalize.pkl"))
    venv.training = False

    seeds = [10_000 + i for i in range(args.eval_seeds)]
    kw = {"scenario": args.scenario, "max_steps": args.eval_steps, "reward_type": args.reward}
    policy = SharedPPOPolicy(model, n_agents, venv.obs_rms.mean, venv.obs_rms.var, venv.clip_obs, venv.epsilon)
    results = [evaluate(lambda: JointEnv(**kw), policy, seeds=seeds)]
    results += evaluate_baselines(seeds, **kw)
    print(compare_table(results, METRICS))
    print(paired_table(results, "SED", "fct_mean_s"))


if __name__ == "__main__":
    main()
