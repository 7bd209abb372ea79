"""PPO with parameter sharing over the multi-LB MARLLB env (the SB3 route), via SuperSuit.

    python examples/marllb_ppo_shared.py --timesteps 20000 --scenario moderate
    python examples/marllb_ppo_shared.py --quick            # under 2 minutes

Flags shared by every example (examples/_cli.py): ``--timesteps`` (agent-steps: each env step
gives one per LB), ``--eval-episodes``, ``--seed``, ``--out`` (model + VecNormalize statistics),
``--quick``, ``--tensorboard`` (logs in ``<out>/tb``).

SuperSuit's ``pettingzoo_env_to_vec_env_v1`` turns every agent into one sub-env of a vector
env (all agents share one policy: parameter sharing); ``concat_vec_envs_v1`` stacks copies
of the env (it copies by pickling: ``MultiLoadBalanceEnv`` pickles as its constructor
arguments). Checked with supersuit 3.11.0, pettingzoo 1.27.0, stable-baselines3 2.9.2,
gymnasium 1.4.0. Observations are normalised by ``VecNormalize`` (its statistics are used
at evaluation). Evaluation uses the shared harness through ``JointEnv`` on held-out seeds.
"""

from __future__ import annotations

import functools
import os
import time

import _cli  # examples/_cli.py: the shared flags
import supersuit as ss
from stable_baselines3 import PPO
from stable_baselines3.common.utils import set_random_seed
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

from lwmecps_gym.core.evaluation import compare_table, paired_table
from marllb_env.multi_agent import JointEnv, parallel_env
from marllb_env.pipeline import SharedPPOPolicy

METRICS = ["fct_mean_s", "fct_p90_s", "jain_util", "rejects", "return"]


def main() -> None:
    p = _cli.parser(__doc__, timesteps=20_000, eval_episodes=10, out="results/marllb_ppo_shared")
    p.add_argument("--scenario", default="moderate")
    p.add_argument("--train-steps", type=int, default=120)
    p.add_argument("--eval-steps", type=int, default=240)
    p.add_argument("--copies", type=int, default=2, help="env copies stacked by concat_vec_envs_v1")
    p.add_argument("--reward", default="jain")
    args = _cli.finish(p, p.parse_args(), timesteps=2048, eval_episodes=2, eval_steps=120)

    env = parallel_env(scenario=args.scenario, max_steps=args.train_steps, reward_type=args.reward)
    n_agents = env.n_lbs
    venv = ss.pettingzoo_env_to_vec_env_v1(env)
    venv = ss.concat_vec_envs_v1(venv, args.copies, num_cpus=0, base_class="stable_baselines3")
    venv = VecMonitor(venv)
    venv = VecNormalize(venv, norm_obs=True, norm_reward=True)
    # SuperSuit 3.11's ConcatVecEnv has no seed() (SuperSuit#160), so PPO(seed=...) fails: seed torch/numpy here
    set_random_seed(args.seed)
    model = PPO("MlpPolicy", venv, n_steps=128, batch_size=128, n_epochs=5, learning_rate=3e-4, gamma=0.95, verbose=0,
                tensorboard_log=_cli.tensorboard_dir(args))
    t0 = time.time()
    model.learn(args.timesteps, progress_bar=True, tb_log_name="ppo_shared")
    print(f"trained {args.timesteps} agent-steps in {time.time() - t0:.0f} s")
    model.save(os.path.join(args.out, "ppo_shared.zip"))
    venv.save(os.path.join(args.out, "ppo_shared_vecnormalize.pkl"))
    venv.training = False

    kw = {"scenario": args.scenario, "max_steps": args.eval_steps, "reward_type": args.reward}
    policy = SharedPPOPolicy(model, n_agents, venv.obs_rms.mean, venv.obs_rms.var, venv.clip_obs, venv.epsilon)
    jobs = [(functools.partial(JointEnv, **kw), policy, {})] + _cli.multi_lb_baseline_jobs(**kw)
    results = _cli.evaluate_all(jobs, args.eval_episodes)
    print(compare_table(results, METRICS))
    print(paired_table(results, "SED", "fct_mean_s"))


if __name__ == "__main__":
    main()
