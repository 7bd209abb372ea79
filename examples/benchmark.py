"""Single-env step throughput of the project's envs relative to CartPole-v1, measured in one process.

Usage::

    python examples/benchmark.py                       # every registered project id
    python examples/benchmark.py lwmecps-v3 --steps 20000
    python examples/benchmark.py 'marllb_env/LoadBalance-v0' --kwargs '{"num_servers": 8}'

Method: ``gym.make`` (with its default wrappers) for both CartPole-v1 and the env
under test; actions pre-sampled from the action space with a fixed seed so
sampling is not timed; reset on episode end (reset time included, as in
training); the runs of CartPole and each env are interleaved ``--repeats`` times
and the median steps/s is reported with the ratio to CartPole's median.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import gymnasium as gym

import faas_gym  # noqa: F401  (registers ids)
import lwmecps_gym  # noqa: F401
import marllb_env  # noqa: F401

PREFIXES = ("lwmecps", "faas_gym/", "FaaSTrainGym", "marllb_env/")


def project_ids() -> list[str]:
    return sorted(i for i in gym.registry if i.startswith(PREFIXES))


def steps_per_second(env_id: str, n_steps: int, kwargs: dict) -> float:
    env = gym.make(env_id, **kwargs)
    env.action_space.seed(0)
    actions = [env.action_space.sample() for _ in range(min(n_steps, 4096))]
    env.reset(seed=0)
    t0 = time.perf_counter()
    for i in range(n_steps):
        _, _, term, trunc, _ = env.step(actions[i % len(actions)])
        if term or trunc:
            env.reset()
    dt = time.perf_counter() - t0
    env.close()
    return n_steps / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ids", nargs="*", help="env ids (default: all project ids)")
    ap.add_argument("--steps", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--kwargs", default="{}", help="JSON kwargs for gym.make of the envs under test")
    args = ap.parse_args()
    ids = args.ids or project_ids()
    kwargs = json.loads(args.kwargs)
    runs: dict[str, list[float]] = {"CartPole-v1": [], **{i: [] for i in ids}}
    for _ in range(args.repeats):
        for env_id in runs:
            runs[env_id].append(steps_per_second(env_id, args.steps, {} if env_id == "CartPole-v1" else kwargs))
    base = statistics.median(runs["CartPole-v1"])
    print(f"| env | steps/s (median of {args.repeats}) | min-max | ratio to CartPole-v1 |")
    print("|---|---|---|---|")
    for env_id, vals in runs.items():
        med = statistics.median(vals)
        print(f"| {env_id} | {med:,.0f} | {min(vals):,.0f}-{max(vals):,.0f} | {med / base:.2f} |")


if __name__ == "__main__":
    main()
