"""Independent random streams from one seed.

All randomness flows from ``env.reset(seed=...)``. The workload (arrivals, job
sizes, user movement) gets its own stream, separate from the system's other
randomness (pod start-up delays, service times, dispatch ties), so two policies
run with the same seed see an identical workload even when their actions make
the system draw a different number of random variates.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Names of the streams every family uses; families may ask for more.
DEFAULT_STREAMS = ("workload", "system")


@dataclass(frozen=True)
class RngStreams:
    """Named :class:`numpy.random.Generator` streams derived from one seed."""

    workload: np.random.Generator
    system: np.random.Generator


def make_streams(np_random: np.random.Generator) -> RngStreams:
    """Derive the workload and system streams from an env's ``np_random``.

    Call right after ``super().reset(seed=seed)``: with a fixed seed the env's
    ``np_random`` is freshly seeded, so the two streams are reproducible; with
    ``seed=None`` they continue the env's sequence.

    Args:
        np_random: the env's generator (``self.np_random``).

    Returns:
        :class:`RngStreams` with independent ``workload`` and ``system`` generators.
    """
    return streams_from_seed(draw_seed(np_random))


def draw_seed(np_random: np.random.Generator) -> int:
    """One integer seed in ``[0, 2**63 - 1)`` drawn from ``np_random``: what an env hands its backend."""
    return int(np_random.integers(0, 2**63 - 1))


def streams_from_seed(seed: int | None) -> RngStreams:
    """The workload and system streams of a backend reset with ``seed``.

    ``streams_from_seed(draw_seed(env.np_random))`` equals ``make_streams(env.np_random)``, so a
    backend that receives the env's drawn seed reproduces the env's streams exactly. ``None``
    draws fresh OS entropy.

    Raises:
        ValueError: if ``seed`` is negative or not an integer.
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}")
    children = np.random.SeedSequence(None if seed is None else int(seed)).spawn(len(DEFAULT_STREAMS))
    return RngStreams(*(np.random.Generator(np.random.PCG64(c)) for c in children))
