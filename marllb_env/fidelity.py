"""Stationary mean FCT of the flow simulator against the processor-sharing closed forms.

A server with ``c`` cores serving each of its ``n`` flows at ``speed * min(1, c / n)`` is a
symmetric queue (Kelly 1979, ch. 3): its number-in-system law is insensitive to the job-size
distribution beyond the mean and equals M/M/c's. So the mean sojourn time is M/G/1-PS's
``E[S] / (1 - rho)`` for ``c = 1`` (:func:`lwmecps_gym.core.queueing.mg1ps_mean_response_s`) and
M/M/c's Erlang-C formula for ``c > 1`` (:func:`lwmecps_gym.core.queueing.mmc_mean_response_s`).
With exponential sizes this also holds with the default Apache limits (32 workers, FIFO backlog
beyond): the departure rate is ``min(n, c) * mu`` whatever the discipline; rejects need more than
160 flows on one server (probability < 1e-7 at rho 0.9).

:func:`ps_fidelity_case` runs one server the way the env does (``run_until`` every
``interval_s``, default 0.25 s, with the default reservoirs and flow-duration sampling) and
returns the batch-means estimate. ``python -m marllb_env.fidelity`` prints the table of
docs/marllb_env.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lwmecps_gym.core.queueing import mg1ps_mean_response_s, mmc_mean_response_s
from lwmecps_gym.core.validation import check_float, check_int
from marllb_env.sim import COMPLETED, IN_PROGRESS, FlowSimulator, ServerSpec
from marllb_env.traces import PoissonWorkload


@dataclass(frozen=True)
class FidelityResult:
    """One case: ``cpus``, ``rho``, closed form ``theory_s``, batch-means ``estimate_s`` and its
    standard error ``se_s`` (seconds), ``flows`` (completed, after the warm-up)."""

    cpus: int
    rho: float
    theory_s: float
    estimate_s: float
    se_s: float
    flows: int

    @property
    def error(self) -> float:
        """Relative error ``estimate / theory - 1``."""
        return self.estimate_s / self.theory_s - 1.0


def closed_form_s(cpus: int, rho: float, mean_size_s: float) -> float:
    """Mean sojourn time (s) of a ``cpus``-core PS server at load ``rho`` (M/G/1-PS or M/M/c)."""
    lam = rho * cpus / mean_size_s
    if cpus == 1:
        return mg1ps_mean_response_s(lam, mean_size_s)
    return mmc_mean_response_s(cpus, lam, 1.0 / mean_size_s)


def ps_fidelity_case(cpus: int, rho: float, n_flows: int, seeds: tuple[int, ...] = (0,), *,
                     mean_size_s: float = 0.05, interval_s: float = 0.25, batches: int = 10,
                     warmup: float = 0.1) -> FidelityResult:
    """Simulate about ``n_flows`` arrivals per seed on one default :class:`ServerSpec` with ``cpus`` cores.

    The simulator is advanced in steps of ``interval_s`` until the arrival horizon
    ``n_flows / lambda``, then until every flow that arrived by then has completed (no
    censoring of the slowest flows). Per seed, the flows that arrived after the first
    ``warmup`` share of the horizon are cut, in arrival order, into ``batches`` consecutive
    batches; the estimate is the mean of all batch means over all seeds and the standard error
    their standard deviation over ``sqrt(count)``. Batches should span several relaxation times
    (about ``rho / (1 - sqrt(rho))**2`` flows: 340 at rho 0.9) for that error to be honest.

    Raises:
        ValueError: bad arguments, or ``rho >= 1`` (the closed forms raise).
    """
    cpus = check_int("cpus", cpus, low=1)
    rho = check_float("rho", rho, low=0.0, high=1.0, low_open=True)
    n_flows = check_int("n_flows", n_flows, low=batches * 10)
    theory = closed_form_s(cpus, rho, mean_size_s)
    lam = rho * cpus / mean_size_s
    horizon = n_flows / lam
    means = []
    total = 0
    for seed in seeds:
        sim = FlowSimulator([ServerSpec(cpus=cpus)], PoissonWorkload(rho=rho, mean_size_s=mean_size_s), seed=seed)
        k = 0
        while k * interval_s < horizon:
            k += 1
            sim.run_until(k * interval_s)
        n_in = sim.n_flows  # flows that arrived by the horizon (records are in arrival order)
        lo = 0  # first of them possibly still in progress
        while True:
            busy = np.flatnonzero(sim.flow_records(lo).status[: n_in - lo] == IN_PROGRESS)
            if busy.size == 0:
                break
            lo += int(busy[0])
            k += 1
            sim.run_until(k * interval_s)
        rec = sim.flow_records(0)
        keep = (rec.arrival_s[:n_in] >= warmup * horizon) & (rec.status[:n_in] == COMPLETED)
        fct = (rec.completion_s - rec.arrival_s)[:n_in][keep]
        total += len(fct)
        means.extend(b.mean() for b in np.array_split(fct, batches))
    m = np.asarray(means)
    return FidelityResult(cpus, rho, theory, float(m.mean()), float(m.std(ddof=1) / math.sqrt(len(m))), total)


def main() -> None:  # pragma: no cover - documentation table
    print("| cores | rho | closed form (s) | measured (s) | error | SE | flows |")
    print("|---|---|---|---|---|---|---|")
    for cpus in (1, 4, 16):
        for rho in (0.5, 0.8, 0.9):
            n = {0.5: 50_000, 0.8: 200_000, 0.9: 500_000}[rho]  # relaxation: ~6, 72, 340 flows
            r = ps_fidelity_case(cpus, rho, n, seeds=(1, 2, 3, 4, 5), batches=20)
            print(f"| {cpus} | {rho} | {r.theory_s:.4f} | {r.estimate_s:.4f} | {100 * r.error:+.2f}% | "
                  f"{100 * r.se_s / r.theory_s:.2f}% | {r.flows} |", flush=True)


if __name__ == "__main__":  # pragma: no cover
    main()
