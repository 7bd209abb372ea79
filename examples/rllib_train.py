"""Scale-out with Ray RLlib: PPO on lwmecps-v3 and parameter-shared multi-agent PPO on MARLLB's
PettingZoo env, each with several env runners on a Ray cluster, evaluated with the shared harness.

    pip install torch==2.13.0 && pip install -e ".[rllib]"
    python examples/rllib_train.py --quick                       # local 2-CPU Ray, a few iterations
    python examples/rllib_train.py --address auto --env-runners 32 --iterations 200   # an existing cluster

``--address`` is passed to ``ray.init``: omit it to start a local Ray with ``--num-cpus`` CPUs, or give
``auto`` / ``ray://head:10001`` to join a cluster started with ``ray start --head`` (see
docs/rllib.md). Every worker needs this package and its extras installed at the same version.

Envs are created on the env runners through ``tune.register_env`` (so each runner imports the
package and makes its own copies); MARLLB's parallel env goes through RLlib's
``ParallelPettingZooEnv`` wrapper with one policy shared by every load balancer.
Evaluation: the trained RLModule acts through :class:`lwmecps_gym.core.policy.RLlibPolicy` in the
one harness (:func:`lwmecps_gym.core.evaluation.evaluate`) on held-out seeds, next to the
family's baselines. Checked with ray 2.60.0 (which pins gymnasium 1.2.2) and torch 2.13.0 (CPU).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _lwmecps_env(config):
    import gymnasium as gym

    import lwmecps_gym  # noqa: F401  (registers the ids on the env runner)

    return gym.make("lwmecps-v3", **config)


def _marllb_env(config):
    from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv

    import marllb_env

    return ParallelPettingZooEnv(marllb_env.parallel_env(**config))


def train_lwmecps(args) -> dict:
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.tune.registry import register_env

    register_env("lwmecps_v3", _lwmecps_env)
    config = (
        PPOConfig()
        .environment("lwmecps_v3", env_config={})
        .env_runners(num_env_runners=args.env_runners, rollout_fragment_length=args.fragment)
        .training(train_batch_size_per_learner=args.fragment * args.env_runners, minibatch_size=250, num_epochs=5,
                  lr=3e-4, gamma=0.95)
        .debugging(seed=args.seed)
    )
    return _run(config, args, "lwmecps-v3")


def train_marllb(args) -> dict:
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.multi_rl_module import MultiRLModuleSpec
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec
    from ray.tune.registry import register_env

    env_config = {"scenario": "moderate"}
    register_env("marllb_parallel", _marllb_env)
    config = (
        PPOConfig()
        .environment("marllb_parallel", env_config=env_config)
        .env_runners(num_env_runners=args.env_runners, rollout_fragment_length=args.fragment)
        .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, episode, **kw: "shared")
        .rl_module(rl_module_spec=MultiRLModuleSpec(rl_module_specs={"shared": RLModuleSpec()}))
        .training(train_batch_size_per_learner=args.fragment * args.env_runners, minibatch_size=250, num_epochs=5,
                  lr=3e-4, gamma=0.95)
        .debugging(seed=args.seed)
    )
    return _run(config, args, "marllb_env.parallel_env(scenario='moderate')", module_id="shared")


def _run(config, args, label: str, module_id: str | None = None) -> dict:
    from tqdm import tqdm

    algo = config.build_algo()
    t0 = time.time()
    history = []
    try:
        for _ in tqdm(range(args.iterations), desc=f"RLlib PPO {label}", unit="iter"):
            r = algo.train()
            runners = r["env_runners"]
            history.append({"episode_return_mean": runners.get("episode_return_mean"),
                            "env_steps": runners.get("num_env_steps_sampled_lifetime")})
        seconds = time.time() - t0
        module = algo.get_module(module_id) if module_id else algo.get_module()
        results = evaluate_module(module, label, args)
    finally:
        algo.stop()
    return {"env": label, "iterations": args.iterations, "env_runners": args.env_runners, "train_s": seconds,
            "history": history, "evaluation": results}


def evaluate_module(module, label: str, args) -> str:
    """The shared harness: the trained module next to the family's baselines on held-out seeds."""
    from lwmecps_gym.core.evaluation import HELD_OUT_SEED_BASE, compare_table, evaluate
    from lwmecps_gym.core.policy import RLlibPolicy

    seeds = [HELD_OUT_SEED_BASE + i for i in range(args.eval_episodes)]
    if label.startswith("lwmecps"):
        import gymnasium as gym

        from lwmecps_gym.baselines import baselines_for

        env = gym.make("lwmecps-v3")
        results = [evaluate(env, RLlibPolicy(module, name="RLlib PPO"), seeds=seeds, step_limit=args.eval_steps)]
        results += [evaluate(env, p, seeds=seeds, step_limit=args.eval_steps) for p in baselines_for(env)]
        return compare_table(results, ["return", "latency_ms", "replicas"])
    from marllb_env.multi_agent import JointEnv, evaluate_baselines, parallel_env

    kw = {"scenario": "moderate"}
    n_agents = len(parallel_env(**kw).possible_agents)
    results = [evaluate(lambda: JointEnv(**kw), RLlibPolicy(module, n_agents=n_agents, name="RLlib PPO (shared)"),
                        seeds=seeds, step_limit=args.eval_steps)]
    results += evaluate_baselines(seeds, **kw)
    return compare_table(results, ["fct_mean_s", "jain_util", "return"])


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", choices=["lwmecps", "marllb", "both"], default="both")
    p.add_argument("--iterations", type=int, default=20, help="RLlib training iterations per env")
    p.add_argument("--env-runners", type=int, default=2)
    p.add_argument("--fragment", type=int, default=500, help="rollout_fragment_length per env runner")
    p.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray (ignored with --address)")
    p.add_argument("--address", default=None, help="ray.init address of an existing cluster, e.g. auto")
    p.add_argument("--eval-episodes", type=int, default=5)
    p.add_argument("--eval-steps", type=int, default=None, help="cap on steps per evaluation episode")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="2 iterations of 500 steps per runner, 2 short evaluation episodes")
    p.add_argument("--out", default=None, help="write the run summary as JSON here")
    args = p.parse_args(argv)
    for name in ("iterations", "env_runners", "fragment", "num_cpus", "eval_episodes"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.quick:
        args.iterations, args.eval_episodes, args.eval_steps = 2, 2, 30
    try:
        import ray
    except ImportError as e:
        raise ImportError('examples/rllib_train.py needs Ray RLlib: pip install -e ".[rllib]"') from e

    if args.address:
        ray.init(address=args.address, log_to_driver=False)
    else:
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
    summary = {}
    try:
        if args.env in ("lwmecps", "both"):
            summary["lwmecps"] = train_lwmecps(args)
        if args.env in ("marllb", "both"):
            summary["marllb"] = train_marllb(args)
    finally:
        ray.shutdown()
    for s in summary.values():
        print(f"\n{s['env']}: {s['iterations']} iterations with {s['env_runners']} env runners in {s['train_s']:.1f} s; "
              f"env steps {s['history'][-1]['env_steps']}")
        print(s["evaluation"])
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=1, default=str))
    return summary


if __name__ == "__main__":
    main()
