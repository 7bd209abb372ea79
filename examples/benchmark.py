"""Throughput of the project's envs as ratios to CartPole-v1, measured in ONE process, interleaved.

CartPole's own speed jumps between two levels on shared machines, so back-to-back runs give
unstable ratios. Here CartPole and the env under test alternate in chunks (``--chunk`` steps each)
for ``--rounds`` rounds, and each side's steps are divided by its own accumulated CPU time
(``time.process_time``; wall time is reported beside it). Actions are pre-sampled with a fixed
seed so sampling is not timed; resets on episode end are timed, as in training.

Modes (``--mode``, any of):

* ``single``: ``gym.make(id)`` (default wrappers) vs ``gym.make("CartPole-v1")``; also
  ``marllb_env.parallel_env`` (the multi-agent PettingZoo env, all agents' actions per step);
* ``vector``: ``gym.make_vec(id, N, "sync")`` (and ``"vector_entry_point"`` where the id registers a
  native vector env; ``"async"`` with ``--async``) vs CartPole's native numpy vector env at the same
  ``N``, for each ``--num-envs`` (env-steps/s = N x vector steps/s);
* ``ppo``: the env's share of Stable-Baselines3 PPO's CPU time (``MlpPolicy``, ``n_steps=512``,
  ``--ppo-steps`` steps), measured by a wrapper that accumulates the CPU time spent inside
  ``step``/``reset``.

Usage::

    python examples/benchmark.py                          # single mode, every project id
    python examples/benchmark.py lwmecps-v3 --mode single vector ppo --num-envs 1 64 256
    python examples/benchmark.py --quick                  # a small run (about a minute)
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import warnings

import gymnasium as gym
import numpy as np

import faas_gym  # noqa: F401  (registers ids)
import lwmecps_gym  # noqa: F401
import marllb_env  # noqa: F401

PACKAGES = ("lwmecps_gym", "faas_gym", "marllb_env")
CARTPOLE = "CartPole-v1"


class _ParallelAsEnv:
    """A PettingZoo ``ParallelEnv`` stepped like one env (``single`` mode only): a ``Dict`` action of
    every agent's action; the episode ends when any agent's does."""

    def __init__(self, env):
        self.env = env
        self.action_space = gym.spaces.Dict({a: env.action_space(a) for a in env.possible_agents})

    def reset(self, seed=None):
        return self.env.reset(seed=seed)

    def step(self, actions):
        obs, rew, term, trunc, info = self.env.step(actions)
        return obs, rew, any(term.values()), any(trunc.values()), info

    def close(self):
        self.env.close()


#: ids that are not Gymnasium ids: the multi-agent env (its default moderate scenario), ``single`` mode only
PARALLEL_ENVS = {"marllb_env.parallel_env": lambda: _ParallelAsEnv(marllb_env.parallel_env())}


def project_ids() -> list[str]:
    """Every registered id whose entry point lives in one of the three packages."""
    return sorted(
        i for i, s in gym.registry.items()
        if isinstance(s.entry_point, str) and s.entry_point.split(".")[0] in PACKAGES
    )


class _Runner:
    """Steps one env (or vector env) in chunks and accumulates steps, CPU and wall time."""

    def __init__(self, env, vector: bool):
        self.env, self.vector = env, vector
        space = env.action_space
        space.seed(0)
        self.actions = [space.sample() for _ in range(256)]
        env.reset(seed=0)
        self.i = self.steps = 0
        self.cpu = self.wall = 0.0
        self.per_step = getattr(env, "num_envs", 1) if vector else 1

    def run(self, n: int) -> None:
        env, actions, k = self.env, self.actions, len(self.actions)
        i = self.i
        c0, w0 = time.process_time(), time.perf_counter()
        if self.vector:
            for _ in range(n):
                env.step(actions[i % k])
                i += 1
        else:
            for _ in range(n):
                _, _, term, trunc, _ = env.step(actions[i % k])
                i += 1
                if term or trunc:
                    env.reset()
        self.cpu += time.process_time() - c0
        self.wall += time.perf_counter() - w0
        self.i = i
        self.steps += n * self.per_step

    def rate(self, clock: str = "cpu") -> float:
        t = self.cpu if clock == "cpu" else self.wall
        return self.steps / t if t > 0 else float("nan")


#: vector mode: fewest vector steps per round, and warm-up vector steps before measuring
VECTOR_MIN_STEPS = 32
VECTOR_WARMUP = 64


def interleaved(make_a, make_b, vector: bool, chunk: int, rounds: int, warmup: int = 1) -> tuple[_Runner, _Runner]:
    """Alternate ``chunk`` steps of A and B for ``rounds`` rounds (after a warm-up of
    ``max(chunk // 4, warmup)`` steps each)."""
    a, b = _Runner(make_a(), vector), _Runner(make_b(), vector)
    a.run(max(chunk // 4, warmup))
    b.run(max(chunk // 4, warmup))
    a.steps = b.steps = 0
    a.cpu = a.wall = b.cpu = b.wall = 0.0
    for _ in range(rounds):
        a.run(chunk)
        b.run(chunk)
    a.env.close()
    b.env.close()
    return a, b


def bench_single(ids, chunk, rounds) -> list[dict]:
    rows = []
    for env_id in ids:
        make = PARALLEL_ENVS.get(env_id, lambda env_id=env_id: gym.make(env_id))
        cp, env = interleaved(lambda: gym.make(CARTPOLE), make, False, chunk, rounds)
        rows.append({"mode": "single", "id": env_id, "num_envs": 1, "steps_s": env.rate(), "cartpole_steps_s": cp.rate(),
                     "ratio_cpu": env.rate() / cp.rate(), "ratio_wall": env.rate("wall") / cp.rate("wall")})
        print(_row(rows[-1]), flush=True)
    return rows


def bench_vector(ids, num_envs, chunk, rounds, use_async) -> list[dict]:
    rows = []
    for n in num_envs:
        # at least VECTOR_MIN_STEPS vector steps per round and a warm-up of VECTOR_WARMUP steps, so that
        # large N measures steady state, not episode start-up (per-sub-env buffers, tables)
        vchunk = max(VECTOR_MIN_STEPS, chunk // n)
        for env_id in ids:
            modes = ["sync"] + (["async"] if use_async else [])
            if gym.spec(env_id).vector_entry_point is not None:
                modes.append("vector_entry_point")
            for mode in modes:
                cp, env = interleaved(
                    lambda n=n: gym.make_vec(CARTPOLE, num_envs=n, vectorization_mode="vector_entry_point"),
                    lambda env_id=env_id, n=n, mode=mode: gym.make_vec(env_id, num_envs=n, vectorization_mode=mode),
                    True, vchunk, rounds, warmup=VECTOR_WARMUP)
                rows.append({"mode": f"vector:{mode}", "id": env_id, "num_envs": n, "steps_s": env.rate(),
                             "cartpole_steps_s": cp.rate(), "ratio_cpu": env.rate() / cp.rate(),
                             "ratio_wall": env.rate("wall") / cp.rate("wall")})
                print(_row(rows[-1]), flush=True)
    return rows


class _EnvTimer(gym.Wrapper):
    """Accumulates the CPU time spent in the wrapped env's ``step`` and ``reset``."""

    cpu = 0.0

    def step(self, action):
        t = time.process_time()
        out = self.env.step(action)
        _EnvTimer.cpu += time.process_time() - t
        return out

    def reset(self, **kwargs):
        t = time.process_time()
        out = self.env.reset(**kwargs)
        _EnvTimer.cpu += time.process_time() - t
        return out


def bench_ppo(ids, ppo_steps) -> list[dict]:
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    torch.set_num_threads(1)
    rows = []
    for env_id in ids:
        _EnvTimer.cpu = 0.0
        venv = make_vec_env(env_id, n_envs=1, seed=0, wrapper_class=_EnvTimer)
        model = PPO("MlpPolicy", venv, n_steps=512, batch_size=64, seed=0, verbose=0)
        c0 = time.process_time()
        model.learn(ppo_steps)
        total = time.process_time() - c0
        venv.close()
        rows.append({"mode": "ppo", "id": env_id, "num_envs": 1, "env_cpu_s": _EnvTimer.cpu, "ppo_cpu_s": total,
                     "env_share": _EnvTimer.cpu / total})
        print(_row(rows[-1]), flush=True)
    return rows


def _row(r: dict) -> str:
    if r["mode"] == "ppo":
        return f"| {r['id']} | ppo | 1 | env {r['env_cpu_s']:.1f} CPU-s of PPO's {r['ppo_cpu_s']:.1f} | {100 * r['env_share']:.1f}% | |"
    return (f"| {r['id']} | {r['mode']} | {r['num_envs']} | {r['steps_s']:,.0f} (CartPole {r['cartpole_steps_s']:,.0f}) "
            f"| {r['ratio_cpu']:.3f} | {r['ratio_wall']:.3f} |")


def main(argv=None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("ids", nargs="*", help="env ids (default: every project id)")
    ap.add_argument("--mode", nargs="+", default=["single"], choices=["single", "vector", "ppo"])
    ap.add_argument("--chunk", type=int, default=500, help="env steps per interleaved chunk (default 500)")
    ap.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    ap.add_argument("--num-envs", type=int, nargs="+", default=[1, 16, 64, 256, 1024])
    ap.add_argument("--async", dest="use_async", action="store_true", help="also measure AsyncVectorEnv")
    ap.add_argument("--ppo-steps", type=int, default=8192)
    ap.add_argument("--quick", action="store_true", help="5 rounds of 200 steps, N in {1, 64}, 2048 PPO steps")
    ap.add_argument("--out", help="write the rows as JSON to this file")
    args = ap.parse_args(argv)
    for name in ("chunk", "rounds", "ppo_steps"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.quick:
        args.chunk, args.rounds, args.num_envs, args.ppo_steps = 200, 5, [1, 64], 2048
    ids = args.ids or project_ids() + (list(PARALLEL_ENVS) if args.mode == ["single"] else [])
    unknown = [i for i in ids if i not in gym.registry and i not in PARALLEL_ENVS]
    if unknown:
        ap.error(f"unknown ids {unknown}; registered project ids: {project_ids()}")
    if set(args.mode) - {"single"} and set(ids) & set(PARALLEL_ENVS):
        ap.error(f"{sorted(PARALLEL_ENVS)} are measured in --mode single only")
    warnings.filterwarnings("ignore", message=".*is out of date.*")
    print(f"# {platform.machine()}, Python {platform.python_version()}, gymnasium {gym.__version__}; "
          f"{args.rounds} rounds x {args.chunk} steps interleaved with {CARTPOLE}; ratios of steps per CPU-second")
    print("| env | mode | num_envs | env-steps/s (CPU) | ratio to CartPole (CPU) | ratio (wall) |")
    print("|---|---|---|---|---|---|")
    rows = []
    if "single" in args.mode:
        rows += bench_single(ids, args.chunk, args.rounds)
    if "vector" in args.mode:
        rows += bench_vector(ids, args.num_envs, args.chunk, args.rounds, args.use_async)
    if "ppo" in args.mode:
        rows += bench_ppo(ids, args.ppo_steps)
    if args.out:
        with open(args.out, "w") as f:
            json.dump(rows, f, indent=1, default=float)
    return rows


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
