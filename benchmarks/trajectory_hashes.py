"""Print a SHA-256 of a seeded trajectory for every registered id of the three families.

Used to show that a refactor keeps behaviour: run it before and after and diff the output.
Each id is reset with seeds 0 and 1 and stepped ``--steps`` times with actions sampled from the
action space seeded with the same seed; the hash covers observations, rewards and the
terminated/truncated flags.

    python benchmarks/trajectory_hashes.py --steps 200 > before.txt
"""

from __future__ import annotations

import argparse
import hashlib

import gymnasium as gym
import numpy as np

import faas_gym  # noqa: F401  (registers ids)
import lwmecps_gym  # noqa: F401
import marllb_env  # noqa: F401

FAMILIES = ("lwmecps", "faas_gym/", "FaaSTrainGym", "marllb_env/", "lwmecps_gym/")


def _feed(h, obs) -> None:
    if isinstance(obs, dict):
        for k in sorted(obs):
            _feed(h, obs[k])
    else:
        h.update(np.ascontiguousarray(np.asarray(obs)).tobytes())


def trajectory_hash(env_id: str, steps: int, seeds=(0, 1)) -> str:
    h = hashlib.sha256()
    env = gym.make(env_id)
    try:
        for seed in seeds:
            obs, _ = env.reset(seed=seed)
            env.action_space.seed(seed)
            _feed(h, obs)
            for _ in range(steps):
                obs, r, term, trunc, _ = env.step(env.action_space.sample())
                _feed(h, obs)
                h.update(repr((float(r), bool(term), bool(trunc))).encode())
                if term or trunc:
                    obs, _ = env.reset()
                    _feed(h, obs)
    finally:
        env.close()
    return h.hexdigest()[:16]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--steps", type=int, default=200)
    args = p.parse_args()
    ids = sorted(i for i in gym.registry if i.startswith(FAMILIES))
    for env_id in ids:
        print(f"{env_id}\t{trajectory_hash(env_id, args.steps)}", flush=True)


if __name__ == "__main__":
    main()
