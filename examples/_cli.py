"""The one command-line vocabulary of the example scripts, and their evaluation progress bar.

Every training example takes:

| flag | meaning |
|---|---|
| ``--timesteps N`` | environment steps of training per agent |
| ``--eval-episodes N`` | evaluation episodes per policy (held-out seeds 10000, 10001, ...) |
| ``--seed N`` | seed of training (model and training envs) |
| ``--out DIR`` | where tables, CSVs, plots, models and TensorBoard logs go |
| ``--quick`` | small budgets: the whole script in under 2 minutes on a 2-core CPU |
| ``--tensorboard`` | TensorBoard event files in ``<out>/tb`` (``tensorboard --logdir <out>/tb``) |

Training shows SB3's progress bar; evaluation shows a tqdm bar over all episodes of all policies.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Sequence
from typing import Any


def parser(doc: str | None, *, timesteps: int, eval_episodes: int, out: str) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the shared flags (script-specific ones are added by the caller)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--timesteps", type=int, default=timesteps, help=f"training steps per agent (default {timesteps})")
    ap.add_argument("--eval-episodes", type=int, default=eval_episodes,
                    help=f"evaluation episodes per policy, held-out seeds (default {eval_episodes})")
    ap.add_argument("--seed", type=int, default=0, help="training seed (default 0)")
    ap.add_argument("--out", default=out, help=f"output directory (default {out})")
    ap.add_argument("--quick", action="store_true", help="small budgets: under 2 minutes on a 2-core CPU")
    ap.add_argument("--tensorboard", action="store_true", help="write TensorBoard logs to <out>/tb")
    return ap


def finish(ap: argparse.ArgumentParser, args: argparse.Namespace, **quick: Any) -> argparse.Namespace:
    """Apply ``--quick`` (each ``quick`` value caps the argument of that name), check budgets, make ``--out``."""
    if args.quick:
        for name, cap in quick.items():
            setattr(args, name, min(getattr(args, name), cap))
    for name in ("timesteps", "eval_episodes"):
        if getattr(args, name, 1) < 1:
            ap.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    os.makedirs(args.out, exist_ok=True)
    try:  # small MLPs train faster on one thread, and the examples share small machines
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    return args


def tensorboard_dir(args: argparse.Namespace) -> str | None:
    """``<out>/tb`` with ``--tensorboard``, else ``None``."""
    return os.path.join(args.out, "tb") if args.tensorboard else None


def evaluate_all(
    jobs: Sequence[tuple[Any, Any, dict[str, Any]]],
    n_episodes: int,
    desc: str = "evaluation",
    evaluate_fn: Callable[..., Any] | None = None,
    **kwargs: Any,
) -> list:
    """Evaluate ``(env, policy, env_kwargs)`` jobs on the same held-out seeds, with one progress bar.

    ``env`` is whatever :func:`lwmecps_gym.core.evaluation.evaluate` takes (an id, a factory, an env);
    ``env_kwargs`` go to ``evaluate`` too, so they may hold its own keywords (``name=``).
    Returns one ``EvaluationResult`` per job, in order.
    """
    from tqdm.auto import tqdm

    from lwmecps_gym.core.evaluation import evaluate

    evaluate_fn = evaluate_fn or evaluate
    results = []
    with tqdm(total=len(jobs) * n_episodes, desc=desc, unit="episode") as bar:
        for env, policy, env_kwargs in jobs:
            bar.set_postfix_str(getattr(policy, "name", type(policy).__name__), refresh=True)
            results.append(evaluate_fn(env, policy, n_episodes=n_episodes, on_episode=lambda *_: bar.update(),
                                       **kwargs, **env_kwargs))
    return results


def multi_lb_baseline_jobs(**env_kwargs: Any) -> list[tuple[Any, Any, dict[str, Any]]]:
    """``evaluate_all`` jobs of the multi-LB heuristics (``marllb_env.multi_agent.BASELINES``) on
    ``JointEnv(**env_kwargs)``: the jobs behind ``marllb_env.multi_agent.evaluate_baselines``."""
    import functools

    from marllb_env.multi_agent import BASELINES, JointEnv, MultiLoadBalanceEnv, StaticWeightsPolicy

    jobs = []
    for name, mode in BASELINES.items():
        kw = {**env_kwargs, "dispatch": mode}
        policy = StaticWeightsPolicy(MultiLoadBalanceEnv(**kw), name=name)
        jobs.append((functools.partial(JointEnv, **kw), policy, {"name": name}))
    return jobs
