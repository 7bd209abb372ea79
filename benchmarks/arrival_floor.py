"""How fast can faas_gym/AutoscalingDay-v0's native vector env be at N=256? A bound from its arrivals.

The day scenario's base process is a renewal process (OrcBench model 0 at 16 requests/s at the daily
peak) counted over 60 s intervals: about 960 base arrivals per sub-env step, each a gap drawn from
2,000 quantiles and added to a running sum. This script measures, in CPU time on this machine, in
rounds that each span one 256-step chunk of the env's arrivals (drawn at the chunk's first step), so
that only figures of the same round are combined (this machine's speed jumps between two levels):

1. CartPole-v1's native vector step at N (``4 * 256`` steps) and AutoscalingDay-v0's (256 steps), with
   the env's arrival draws (:func:`faas_gym.workloads.renewal_counts`, bit-identical to the single
   env's) timed inside it by wrapping the vector module's reference to that function; the rest of the
   step is the step minus its arrivals;
2. ``law ceiling``: the best case of a distribution-level alternative (same renewal law, other random
   numbers): a counter-based SplitMix64 stream (Steele, Lea & Flood 2014) hashed 64 draws at a time
   (the loop numba vectorises), each mapped to a quantile by Lemire's multiply-shift, gaps in int64
   fixed point (exact, associative sums) gathered and summed in blocks. It leaves out what a real
   mode needs (the rejection step that makes the index exactly uniform, the walk to the interval
   edge, the redraw of the block that crosses it), so a real mode is slower;
3. per round, the ratio to CartPole now, with the law ceiling in place of the exact draws
   (``CartPole step / (rest + arrivals per step * ns per arrival)``), and with arrivals free.

    python benchmarks/arrival_floor.py            # about 10 s; needs numba
"""

from __future__ import annotations

import argparse
import time

import gymnasium as gym
import numpy as np
from numba import njit

from faas_gym import DAY_WORKLOAD
from faas_gym import vector as faas_vector
from faas_gym.backends.sim import chunk_length
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
    """ns per arrival of the compiled exact streams alone."""
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
    return (time.process_time() - t) / out.sum() * 1e9


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


class _Timed:
    """``faas_gym.vector.renewal_counts`` with its calls, CPU time and the arrivals it drew added up."""

    def __init__(self, fn):
        self.fn, self.calls, self.cpu_s, self.arrivals = fn, 0, 0.0, 0

    def __call__(self, *args):
        t = time.process_time()
        self.fn(*args)
        self.cpu_s += time.process_time() - t
        self.calls += 1
        self.arrivals += int(args[-1].sum())


def _steps_us(env, acts, n):
    t = time.process_time()
    for j in range(n):
        env.step(acts[j % len(acts)])
    return (time.process_time() - t) / n * 1e6


#: The vector env's chunks of arrivals (faas_gym.backends.sim.chunk_length): 2, 4, ... intervals, then
#: full ones. Steps after a reset before the full ones start, and their length.
_CHUNK = chunk_length(1000)
_RAMP = sum(n for n in map(chunk_length, range(64)) if n < _CHUNK)


def one_round(envs, acts, timed, iat):
    """One round, the measurements back to back (this machine's speed jumps between levels, so only
    figures of the same round are combined): CartPole-v1 µs per vector step (``4 * 256`` steps),
    AutoscalingDay-v0 µs per vector step over one chunk (256 steps: one draw of the arrivals, timed
    inside the env), and the law ceiling (ns per arrival)."""
    cartpole = _steps_us(envs["cartpole"], acts["cartpole"], 4 * _CHUNK)
    calls, cpu, drawn = timed.calls, timed.cpu_s, timed.arrivals
    day = _steps_us(envs["day"], acts["day"], _CHUNK)
    if timed.calls != calls + 1:
        raise RuntimeError("a round must span exactly one chunk of arrivals; chunk_length changed?")
    return {
        "cartpole": cartpole,
        "day": day,
        "arrivals": (timed.arrivals - drawn) / _CHUNK,
        "arrivals_us": (timed.cpu_s - cpu) / _CHUNK * 1e6,
        "law_ns": law_ns(iat, 2_000_000),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--num-envs", type=int, default=256)
    ap.add_argument("--episodes", type=int, default=2, help="4 rounds of 256 steps in each")
    args = ap.parse_args()
    iat, cum, mean = make_workload(DAY_WORKLOAD).base.renewal_tables()  # the registered scenario's base
    envs = {
        "day": gym.make_vec(
            "faas_gym/AutoscalingDay-v0", args.num_envs, vectorization_mode="vector_entry_point"
        ),
        "cartpole": gym.make_vec("CartPole-v1", args.num_envs, vectorization_mode="vector_entry_point"),
    }
    acts = {}
    for k, env in envs.items():
        env.action_space.seed(0)
        acts[k] = [env.action_space.sample() for _ in range(64)]
    envs["cartpole"].reset(seed=0)
    alone = [exact_ns(iat, cum, mean, 256, 16, 60.0) for _ in range(4)][1:]  # the first compiles
    law_ns(iat, 64)
    timed = _Timed(faas_vector.renewal_counts)
    faas_vector.renewal_counts = timed  # the env's module-level reference, restored below
    rounds = []
    try:
        for e in range(args.episodes):
            envs["day"].reset(seed=e)
            _steps_us(envs["day"], acts["day"], _RAMP)
            rounds += [one_round(envs, acts, timed, iat) for _ in range(4)]  # _RAMP + 4 * _CHUNK < 1440 steps
    finally:
        faas_vector.renewal_counts = timed.fn
    print(
        f"exact streams alone: {', '.join(f'{v:.2f}' for v in alone)} ns per arrival (256 streams, 16 intervals)"
    )
    print(
        "| round | CartPole µs/step | day µs/step | arrivals/sub-env step | ns/arrival in env | law ceiling ns | "
        "rest µs | ratio now | ratio, law ceiling | ratio, free arrivals |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    cols = []
    for k, r in enumerate(rounds):
        rest = r["day"] - r["arrivals_us"]
        law_step = rest + r["arrivals"] * r["law_ns"] / 1e3
        row = (r["cartpole"] / r["day"], r["cartpole"] / law_step, r["cartpole"] / rest)
        cols.append(row)
        print(
            f"| {k} | {r['cartpole']:.1f} | {r['day']:.0f} | {r['arrivals'] / args.num_envs:.0f} | "
            f"{r['arrivals_us'] * 1e3 / r['arrivals']:.2f} | {r['law_ns']:.2f} | {rest:.0f} | "
            + " | ".join(f"{v:.3f}" for v in row)
            + " |"
        )
    med = np.median(np.array(cols), axis=0)
    print(
        f"medians over {len(rounds)} rounds: ratio now {med[0]:.3f}, with the law ceiling {med[1]:.3f}, "
        f"with free arrivals {med[2]:.3f} (goal 0.25)"
    )


if __name__ == "__main__":
    main()
