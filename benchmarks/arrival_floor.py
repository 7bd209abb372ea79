"""How fast can faas_gym/AutoscalingDay-v0's native vector env be at N=256? A bound from its arrivals.

The day scenario's base process is a renewal process (OrcBench model 0 at 16 requests/s at the daily
peak) counted over 60 s intervals: about 960 base arrivals per sub-env step, each a gap drawn from
2,000 quantiles and added to a running sum. This script measures, in CPU time on this machine:

1. ``exact``: the library's compiled renewal streams (:func:`faas_gym.workloads.renewal_counts`, the
   draws the vector env makes, bit-identical to the single env's), in ns per base arrival;
2. ``law ceiling``: the best case of a distribution-level alternative (same renewal law, other random
   numbers): a counter-based SplitMix64 stream (Steele, Lea & Flood 2014) hashed 64 draws at a time
   (the loop numba vectorises), each mapped to a quantile by Lemire's multiply-shift, gaps in int64
   fixed point (exact, associative sums) gathered and summed in blocks. It leaves out what a real
   mode needs (the rejection step that makes the index exactly uniform, the walk to the interval
   edge, the redraw of the block that crosses it), so a real mode is slower;
3. the env's vector step at N=256 and CartPole-v1's native vector step at N=256 (interleaved), and
   from them the rest of the step (the env's step minus its exact arrivals) and the ratio each
   arrival generator would give: ``CartPole step / (rest + arrivals per step * ns per arrival)``.

    python benchmarks/arrival_floor.py            # about a minute; needs numba
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
from numba import njit

from faas_gym import DAY_WORKLOAD
from faas_gym.workloads import make_workload, renewal_counts, renewal_start
from lwmecps_gym.core import pcg64

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_U32 = np.uint64(32)


@njit(boundscheck=False)
def _law_ceiling(key, block, reps, tab_fixed, idx):
    """Sum ``reps * block`` gaps of SplitMix64 stream ``key``: ``reps`` blocks of hashed indices
    (vectorised), then a gather and sum of their fixed-point gaps. Returns the sum (kept so the work
    is not optimised away)."""
    k = np.uint64(tab_fixed.shape[0])
    total = 0
    for r in range(reps):
        base = key + np.uint64(r * block) * _GAMMA
        for b in range(block):
            z = base + np.uint64(b + 1) * _GAMMA
            z = (z ^ (z >> np.uint64(30))) * _M1
            z = (z ^ (z >> np.uint64(27))) * _M2
            z = z ^ (z >> np.uint64(31))
            idx[b] = (z >> _U32) * k
        s = np.int64(0)
        for b in range(block):
            s += tab_fixed[idx[b] >> _U32]
        total += s
    return total


def exact_ns(iat, cum, mean, n_streams, intervals, dt):
    """(ns per arrival, arrivals per stream and interval) of the compiled exact streams."""
    st = pcg64.new_states(n_streams)
    rf = np.zeros((n_streams, 4))
    ri = np.zeros(n_streams, dtype=np.int64)
    for i in range(n_streams):
        pcg64.get_state(np.random.PCG64(i), st, i)
        renewal_start(st, i, iat, cum, rf, ri, 0.0)
    rows = np.arange(n_streams)
    out = np.zeros((n_streams, intervals), dtype=np.int64)
    renewal_counts(st, rows, iat, mean, rf, ri, dt, 1, 1, out)  # compile (the arrays as timed)
    t = time.process_time()
    renewal_counts(st, rows, iat, mean, rf, ri, dt, intervals, 16, out)
    return (time.process_time() - t) / out.sum() * 1e9, float(out.mean())


def law_ns(iat, draws):
    """ns per arrival of :func:`_law_ceiling` (fixed point: 2**-32 s)."""
    tab = np.round(iat * 2.0**32).astype(np.int64)
    block = 64
    idx = np.empty(block, dtype=np.uint64)
    _law_ceiling(np.uint64(1), block, 1, tab, idx)  # compile
    reps = draws // block
    t = time.process_time()
    _law_ceiling(np.uint64(12345), block, reps, tab, idx)
    return (time.process_time() - t) / (reps * block) * 1e9


def vector_steps_us(n_envs, steps, rounds):
    """Median CPU µs per vector step of AutoscalingDay-v0 and of CartPole-v1 (native vector envs,
    ``n_envs`` sub-envs), measured in alternating chunks of ``steps``."""
    envs = {
        "day": gym.make_vec("faas_gym/AutoscalingDay-v0", n_envs, vectorization_mode="vector_entry_point"),
        "cartpole": gym.make_vec("CartPole-v1", n_envs, vectorization_mode="vector_entry_point"),
    }
    acts, times = {}, {k: [] for k in envs}
    for k, env in envs.items():
        env.action_space.seed(0)
        acts[k] = [env.action_space.sample() for _ in range(64)]
        env.reset(seed=0)
        for a in acts[k][:16]:
            env.step(a)  # compile / warm up
    for _ in range(rounds):
        for k, env in envs.items():
            n = steps if k == "day" else 4 * steps
            t = time.process_time()
            for j in range(n):
                env.step(acts[k][j % 64])
            times[k].append((time.process_time() - t) / n * 1e6)
    return {k: float(np.median(v)) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-envs", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    base = make_workload(DAY_WORKLOAD).base  # the registered scenario's base process
    iat, cum, mean = base.renewal_tables()
    dt = 60.0
    ex, law, per = [], [], 0.0
    for _ in range(args.repeats):
        ns, per = exact_ns(iat, cum, mean, 256, 32, dt)
        ex.append(ns)
        law.append(law_ns(iat, 4_000_000))
    ex_ns, law_ns_ = float(np.median(ex)), float(np.median(law))
    steps = vector_steps_us(args.num_envs, 200, args.repeats)
    arrivals_us = args.num_envs * per * ex_ns / 1e3
    rest = steps["day"] - arrivals_us
    print(f"base arrivals per sub-env step: {per:.0f}")
    print(
        f"exact streams: {ex_ns:.2f} ns per arrival (median of {args.repeats}: {', '.join(f'{v:.2f}' for v in ex)})"
    )
    print(
        f"law ceiling:   {law_ns_:.2f} ns per arrival (median of {args.repeats}: {', '.join(f'{v:.2f}' for v in law)})"
    )
    print(
        f"N={args.num_envs}: AutoscalingDay-v0 step {steps['day']:.0f} µs (arrivals ~{arrivals_us:.0f}, rest ~{rest:.0f}); "
        f"CartPole-v1 step {steps['cartpole']:.1f} µs; 0.25x needs <= {4 * steps['cartpole']:.0f} µs"
    )
    for name, ns in (("exact", ex_ns), ("law ceiling", law_ns_)):
        step = rest + args.num_envs * per * ns / 1e3
        print(f"  {name:12s} -> step ~{step:.0f} µs, ratio ~{steps['cartpole'] / step:.3f}")
    print(f"  arrivals free  -> ratio at most ~{steps['cartpole'] / rest:.3f}")


if __name__ == "__main__":
    main()
