"""The one evaluation harness: run any policy over seeded episodes, summarise with 95% CIs.

Metrics convention (all three families follow it):

* every ``info`` returned by ``step`` carries ``info["metrics"]``: a flat dict of
  raw, unit-labelled per-step measurements (``latency_ms``, ``replicas``,
  ``cold_starts``, ``fct_p90_s`` ...); the harness averages each over the
  episode's steps;
* the last ``info`` of an episode may carry ``info["episode_metrics"]``: values
  that only make sense per episode (totals, percentiles over all requests); they
  override a per-step mean of the same name;
* the harness adds ``return`` (undiscounted sum of rewards) and ``length``.

The confidence interval is the Student-t interval ``mean +- t_{0.975, n-1} * s / sqrt(n)``
over episodes (one i.i.d. sample per seed).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from lwmecps_gym.core.policy import Policy, as_policy

#: Seeds used when the caller gives only ``n_episodes``: disjoint from the small
#: seeds training scripts usually start from, so evaluation is on held-out input.
HELD_OUT_SEED_BASE = 10_000


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float]:
    """Mean and half-width of the Student-t confidence interval.

    Args:
        values: i.i.d. samples (one per episode).
        confidence: two-sided level in (0, 1).

    Returns:
        ``(mean, half_width)``; ``half_width`` is ``nan`` for fewer than 2 samples.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, math.nan
    m = float(x.mean())
    if x.size < 2:
        return m, math.nan
    from scipy.stats import t  # lazy: scipy.stats import costs ~0.3 s

    half = float(t.ppf(0.5 + confidence / 2.0, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m, half


@dataclass
class EvaluationResult:
    """Per-episode metrics of one policy on one env configuration.

    Attributes:
        policy: the policy's name.
        env: the env id or factory name.
        seeds: the reset seed of each episode.
        episodes: one dict per episode, metric name -> float.
    """

    policy: str
    env: str
    seeds: list[int] = field(default_factory=list)
    episodes: list[dict[str, float]] = field(default_factory=list)

    @property
    def metric_names(self) -> list[str]:
        names: dict[str, None] = {}
        for ep in self.episodes:
            names.update(dict.fromkeys(ep))
        return list(names)

    def values(self, metric: str) -> np.ndarray:
        """Per-episode values of ``metric`` (``KeyError`` if no episode has it)."""
        vals = [ep[metric] for ep in self.episodes if metric in ep]
        if not vals:
            raise KeyError(f"metric {metric!r} not recorded; have {self.metric_names}")
        return np.asarray(vals, dtype=float)

    def summary(self, confidence: float = 0.95) -> dict[str, tuple[float, float]]:
        """Metric name -> ``(mean, CI half-width)`` over episodes."""
        return {m: mean_ci(self.values(m), confidence) for m in self.metric_names}

    def table(self, metrics: Sequence[str] | None = None) -> str:
        """A Markdown table of this result alone (one row)."""
        return compare_table([self], metrics)

    def to_csv(self, path: str) -> None:
        """Write one row per episode (policy, env, seed, metrics...)."""
        results_to_csv([self], path)


def results_to_csv(results: Iterable[EvaluationResult], path: str) -> None:
    """Write every episode of every result to one CSV (policy, env, seed, then the union of metrics)."""
    results = list(results)
    names: dict[str, None] = {}
    for r in results:
        names.update(dict.fromkeys(r.metric_names))
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["policy", "env", "seed", *names])
        for r in results:
            for seed, ep in zip(r.seeds, r.episodes, strict=True):
                w.writerow([r.policy, r.env, seed, *(ep.get(n, "") for n in names)])


def _format(mean: float, half: float) -> str:
    def f(v: float) -> str:
        if math.isnan(v):
            return "nan"
        a = abs(v)
        if a != 0 and (a >= 1e5 or a < 1e-3):
            return f"{v:.3g}"
        return f"{v:.3f}" if a < 10 else f"{v:.1f}"

    return f(mean) if math.isnan(half) else f"{f(mean)} ± {f(half)}"


def check_metrics(results: Iterable[EvaluationResult], metrics: Sequence[str]) -> None:
    """Raise ``KeyError`` naming every metric in ``metrics`` that no result recorded, and the recorded names.

    A metric recorded by some results but not others is fine (e.g. an oracle's extra metric).
    """
    recorded: dict[str, None] = {}
    for r in results:
        recorded.update(dict.fromkeys(r.metric_names))
    unknown = [m for m in metrics if m not in recorded]
    if unknown:
        raise KeyError(f"unknown metric(s) {unknown}; the results recorded {list(recorded)}")


def compare_table(
    results: Iterable[EvaluationResult], metrics: Sequence[str] | None = None, confidence: float = 0.95
) -> str:
    """A Markdown table, one row per policy, cells ``mean ± half-width`` of the CI.

    Args:
        results: evaluation results (typically one per policy, same seeds).
        metrics: columns to show, in order; default: every metric of the first result. A cell is
            ``-`` where that policy did not record the metric.
        confidence: CI level.

    Raises:
        ValueError: ``results`` is empty.
        KeyError: a metric in ``metrics`` that no result recorded (the message lists the recorded ones).
    """
    results = list(results)
    if not results:
        raise ValueError("results must contain at least one EvaluationResult")
    cols = list(metrics) if metrics is not None else results[0].metric_names
    check_metrics(results, cols)
    n = len(results[0].episodes)
    head = f"| policy (n={n}, {int(confidence * 100)}% CI) | " + " | ".join(cols) + " |"
    sep = "|---|" + "---|" * len(cols)
    rows = [head, sep]
    for r in results:
        cells = []
        for c in cols:
            try:
                cells.append(_format(*mean_ci(r.values(c), confidence)))
            except KeyError:
                cells.append("-")
        rows.append(f"| {r.policy} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def paired_table(
    results: Iterable[EvaluationResult], reference: str, metric: str, confidence: float = 0.95
) -> str:
    """Per-seed differences ``metric(policy) - metric(reference)``, mean and CI, as a Markdown table.

    With the same seeds every policy sees the same workload (the workload has its own RNG
    stream), so the paired difference has far less variance than the gap between two
    independent CIs: a difference whose CI excludes 0 is significant at the given level.

    Raises:
        ValueError: ``reference`` is not among the results, or a result's seeds differ from it.
    """
    results = list(results)
    ref = next((r for r in results if r.policy == reference), None)
    if ref is None:
        raise ValueError(f"reference must be one of {[r.policy for r in results]}, got {reference!r}")
    check_metrics(results, [metric])
    base = ref.values(metric)
    rows = [f"| policy | {metric} minus {reference}'s, paired by seed ({int(confidence * 100)}% CI) |", "|---|---|"]
    for r in results:
        if r is ref:
            continue
        if r.seeds != ref.seeds:
            raise ValueError(f"{r.policy!r} was evaluated on other seeds than {reference!r}; pairing needs the same seeds")
        rows.append(f"| {r.policy} | {_format(*mean_ci(r.values(metric) - base, confidence))} |")
    return "\n".join(rows)


def _episode(env: gym.Env, policy: Policy, seed: int, step_limit: int | None) -> dict[str, float]:
    obs, info = env.reset(seed=seed)
    reset = getattr(policy, "reset", None)
    if callable(reset):
        reset(seed)
    sums: dict[str, float] = {}
    steps = 0
    ret = 0.0
    last_info: dict[str, Any] = info
    while True:
        action = policy.act(obs, info)
        obs, reward, terminated, truncated, info = env.step(action)
        ret += float(reward)
        steps += 1
        for k, v in info.get("metrics", {}).items():
            sums[k] = sums.get(k, 0.0) + float(v)
        last_info = info
        if terminated or truncated or (step_limit is not None and steps >= step_limit):
            break
    ep = {k: v / steps for k, v in sums.items()}
    ep.update({k: float(v) for k, v in last_info.get("episode_metrics", {}).items()})
    ep["return"] = ret
    ep["length"] = float(steps)
    return ep


def evaluate(
    env: str | Callable[..., gym.Env] | gym.Env,
    policy: Any,
    n_episodes: int | None = None,
    seeds: Sequence[int] | None = None,
    *,
    step_limit: int | None = None,
    name: str | None = None,
    on_episode: Callable[[int, dict[str, float]], None] | None = None,
    **env_kwargs: Any,
) -> EvaluationResult:
    """Run ``policy`` for one episode per seed and collect per-episode metrics.

    Args:
        env: a registered env id (made with ``gym.make(env, **env_kwargs)``), a
            factory ``f(**env_kwargs) -> Env``, or an existing env instance
            (``env_kwargs`` must then be empty). Envs the harness makes it also closes.
        policy: a :class:`~lwmecps_gym.core.policy.Policy`, an SB3 model, or a
            function ``f(obs, info) -> action`` (see :func:`as_policy`).
        n_episodes: number of episodes; with ``seeds=None`` the seeds are
            ``HELD_OUT_SEED_BASE + i``.
        seeds: explicit reset seeds, one episode each (overrides ``n_episodes``
            unless both are given and disagree, which raises ``ValueError``).
        step_limit: stop an episode after this many steps even if the env does not (named so
            that it cannot collide with env kwargs such as ``max_steps`` or ``max_episode_steps``,
            which go to the env).
        name: row label; defaults to the policy's ``name``.
        on_episode: called as ``on_episode(seed, metrics)`` after each episode (e.g. to advance a
            progress bar: ``on_episode=lambda *_: bar.update()``).
        **env_kwargs: passed to ``gym.make`` or the factory.

    Returns:
        :class:`EvaluationResult` with one metrics dict per episode.

    Raises:
        ValueError: neither ``n_episodes`` nor ``seeds`` given, or they disagree,
            or ``env_kwargs`` given with an env instance.
    """
    if seeds is None:
        if n_episodes is None or n_episodes < 1:
            raise ValueError(f"give n_episodes >= 1 or seeds; got n_episodes={n_episodes!r}, seeds=None")
        seeds = [HELD_OUT_SEED_BASE + i for i in range(n_episodes)]
    elif n_episodes is not None and n_episodes != len(seeds):
        raise ValueError(f"n_episodes={n_episodes} disagrees with len(seeds)={len(seeds)}")
    if not seeds:
        raise ValueError("seeds must not be empty")
    pol = as_policy(policy)
    owned = True
    if isinstance(env, str):
        env_obj, env_name = gym.make(env, **env_kwargs), env
    elif isinstance(env, gym.Env):
        if env_kwargs:
            raise ValueError("env_kwargs cannot be applied to an existing env instance")
        env_obj, env_name, owned = env, (env.spec.id if env.spec else type(env.unwrapped).__name__), False
    elif callable(env):
        env_obj, env_name = env(**env_kwargs), getattr(env, "__name__", "factory")
    else:
        raise TypeError(f"env must be an env id, a factory or a gymnasium.Env, got {type(env).__name__}")
    result = EvaluationResult(policy=name or getattr(pol, "name", type(pol).__name__), env=env_name)
    try:
        for s in seeds:
            result.seeds.append(int(s))
            result.episodes.append(_episode(env_obj, pol, int(s), step_limit))
            if on_episode is not None:
                on_episode(int(s), result.episodes[-1])
    finally:
        if owned:
            env_obj.close()
    return result
