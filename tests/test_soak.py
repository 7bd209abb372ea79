"""Soak: resident memory must not grow over many steps of every registered id.

The short version (``SHORT_STEPS`` steps per id) always runs. For a long run set
``LWMECPS_SOAK_STEPS`` (e.g. 1000000) and run ``python -m pytest -m soak tests/test_soak.py -s``;
``LWMECPS_SOAK_REPORT=<file>`` appends one line per id with the measured figures.

Method: make the env, run ``WARMUP_STEPS`` random steps (100; 1500 in long runs: caches, lazy
imports, numpy buffers and the heap settle), ``gc.collect()`` and ``malloc_trim(0)``, read the resident set size (``VmRSS`` of
``/proc/self/status``), run the steps with a seeded random policy (resetting on episode end), and read
it again the same way. The
growth must stay below ``LIMIT_MB`` (10 MB), for any number of steps.
"""

from __future__ import annotations

import gc
import os
import time
import warnings

import gymnasium as gym
import pytest

import faas_gym  # noqa: F401 (registers the ids)
import lwmecps_gym  # noqa: F401
import marllb_env  # noqa: F401

pytestmark = [pytest.mark.soak,
              pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmRSS from /proc")]

LIMIT_MB = 10.0
SHORT_STEPS = 200
STEPS = int(os.environ.get("LWMECPS_SOAK_STEPS", SHORT_STEPS))
#: long runs warm up for a whole day-long episode (AutoscalingDay-v0: 1440 steps) so that the heap's
#: one-time growth to its working size is not counted as a leak
WARMUP_STEPS = 100 if STEPS <= SHORT_STEPS else 1500
IDS = sorted(k for k, spec in gym.registry.items()
             if str(spec.entry_point).split(".", 1)[0] in ("lwmecps_gym", "faas_gym", "marllb_env")
             or k.split("/", 1)[0] in ("lwmecps_gym", "faas_gym", "marllb_env"))


def _trim_heap() -> None:
    """Return free heap pages to the OS (glibc ``malloc_trim``), so that memory the allocator merely
    keeps (its dynamic mmap threshold moves large numpy buffers onto the heap) is not read as a leak."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: measure as is
        pass


def rss_mb() -> float:
    """Resident set size of this process after ``gc.collect()`` and a heap trim, MB (/proc/self/status)."""
    gc.collect()
    _trim_heap()
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmRSS line in /proc/self/status")


def run(env: gym.Env, steps: int, seed: int) -> int:
    """``steps`` random steps with episode resets; returns the number of episodes started."""
    env.action_space.seed(seed)
    env.reset(seed=seed)
    episodes = 1
    for _ in range(steps):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
            episodes += 1
    return episodes


def test_every_package_id_is_soaked():
    assert any(i.startswith("lwmecps") for i in IDS) and "FaaSTrainGym-v1" in IDS
    assert any(i.startswith("marllb_env/") for i in IDS)


@pytest.mark.parametrize("env_id", IDS)
def test_rss_growth_is_bounded(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make(env_id)
        try:
            run(env, WARMUP_STEPS, seed=1)
            gc.collect()
            before = rss_mb()
            t0 = time.perf_counter()
            episodes = run(env, STEPS, seed=2)
            elapsed = time.perf_counter() - t0
            gc.collect()
            after = rss_mb()
        finally:
            env.close()
    line = (f"{env_id}: {STEPS} steps, {episodes} episodes, {elapsed:.1f} s, RSS {before:.1f} -> {after:.1f} MB "
            f"(growth {after - before:+.2f} MB)")
    print(line)
    report = os.environ.get("LWMECPS_SOAK_REPORT")
    if report:
        with open(report, "a") as fh:
            fh.write(line + "\n")
    assert after - before < LIMIT_MB, line
