"""Step latency of ``LoadBalanceEnv(backend="shm")`` over the Python data-plane emulator.

    python examples/bench_shm.py --steps 200 --step-interval 0.25
    python examples/bench_shm.py --quick        # 40 env steps: about 15 s

The seed's performance target: a step takes the step interval plus under 50 ms. A step is
``write msg_in -> sleep(step_interval) -> read the newest msg_out frame + reservoirs ->
features``; the overhead is everything but the sleep. Also times the raw region operations
(``write_msg_in``, ``read_msg_out``) and the multi-agent env on the simulator for scale.
Reports median, p90, p99 and max; nothing here is asserted (timing is not a test).
"""

from __future__ import annotations

import argparse
import time
import uuid

import numpy as np

from marllb_env import LoadBalanceEnv
from marllb_env.shm import SharedMemoryRegion


def pct(x: list[float]) -> str:
    a = np.asarray(x) * 1e3
    return f"median {np.median(a):.3f} ms, p90 {np.percentile(a, 90):.3f} ms, p99 {np.percentile(a, 99):.3f} ms, max {a.max():.3f} ms"


def bench_env(steps: int, interval: float, speed: float) -> None:
    env = LoadBalanceEnv(
        backend="shm", num_servers=7, interval_s=interval, backend_kwargs={"speed": speed}
    )
    rng = np.random.default_rng(0)
    actions = [env.action_space.sample() for _ in range(steps)]
    env.action_space.seed(0)
    t0 = time.perf_counter()
    env.reset(seed=0)
    reset_s = time.perf_counter() - t0
    lat = []
    for a in actions:
        t = time.perf_counter()
        env.step(a)
        lat.append(time.perf_counter() - t)
    env.close()
    wall_interval = interval / speed
    over = [x - wall_interval for x in lat]
    print(f"env over shm: {steps} steps, step_interval {interval} s, speed {speed}x (sleep {wall_interval * 1e3:.1f} ms)")
    print(f"  reset (starts the emulator process): {reset_s:.2f} s")
    print(f"  step latency: {pct(lat)}")
    print(f"  overhead beyond the sleep: {pct(over)}")
    del rng


def bench_region(n: int) -> None:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with SharedMemoryRegion.create(name) as r:
        w = np.linspace(1.0, 2.0, 7)
        fct = np.random.default_rng(0).random((7, 128, 2))
        wr, rd, pub = [], [], []
        for i in range(n):
            t = time.perf_counter()
            r.write_reservoirs(fct, fct)
            r.write_msg_out(np.arange(7), np.ones(7, bool), ts=float(i))
            pub.append(time.perf_counter() - t)
            t = time.perf_counter()
            r.read_msg_out()
            rd.append(time.perf_counter() - t)
            t = time.perf_counter()
            r.write_msg_in(w)
            wr.append(time.perf_counter() - t)
    print(f"region ops ({n} each): publish msg_out+reservoirs {pct(pub)}")
    print(f"  read_msg_out (frame + 131 KB reservoirs): {pct(rd)}")
    print(f"  write_msg_in (scores + alias table): {pct(wr)}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--step-interval", type=float, default=0.25)
    p.add_argument("--speed", type=float, default=1.0, help="emulator: data-plane seconds per wall second")
    p.add_argument("--quick", action="store_true", help="40 env steps (a few seconds of data-plane time)")
    args = p.parse_args()
    if args.quick:
        args.steps = min(args.steps, 40)
    bench_region(2000)
    bench_env(args.steps, args.step_interval, args.speed)


if __name__ == "__main__":
    main()
