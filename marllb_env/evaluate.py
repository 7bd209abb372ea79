"""Evaluate an agent saved by ``python -m marllb_env.train`` with the shared harness.

    python -m marllb_env.evaluate --model runs/isac.pt --episodes 20
    python -m marllb_env.evaluate --model runs/ppo.zip --episodes 10 --no-baselines

Rebuilds the run's env from the JSON file next to the model (scenario, servers, LBs, workload),
runs the greedy policy on ``--episodes`` held-out seeds (``--seed-base + i``, default 10000: the
same workloads for every policy), and by default also SED, LSQ, WCMP and the oracles GSQ and SRT.
Prints the table (mean and 95% CI over episodes) and the per-seed differences to SED; ``--out``
writes the table, a per-episode CSV and a PNG plot. SAC-GRU and QMIX checkpoints are read with
``torch.load(..., weights_only=True)``.
"""

from __future__ import annotations

import argparse
import os
import sys

from marllb_env.pipeline import EVAL_SEED_BASE, evaluate_setup, load_policy, metrics_for


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m marllb_env.evaluate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint written by marllb_env.train (.pt or .zip)")
    p.add_argument("--episodes", type=int, default=10, help="held-out evaluation episodes")
    p.add_argument("--episode-steps", type=int, default=None, help="steps per episode (default: the run's)")
    p.add_argument("--seed-base", type=int, default=EVAL_SEED_BASE)
    p.add_argument("--no-baselines", action="store_true", help="evaluate the model only")
    p.add_argument("--out", default=None, metavar="PREFIX", help="write PREFIX.md, PREFIX.csv and PREFIX.png")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.episodes < 1:
        print(f"error: --episodes must be >= 1, got {args.episodes}", file=sys.stderr)
        return 2
    if args.episode_steps is not None and args.episode_steps < 1:
        print(f"error: --episode-steps must be >= 1, got {args.episode_steps}", file=sys.stderr)
        return 2
    try:
        policy, setup, _ = load_policy(args.model)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(1)
    if args.episode_steps is not None:
        setup.episode_steps = args.episode_steps
    from lwmecps_gym.core.evaluation import compare_table, paired_table, results_to_csv

    results = evaluate_setup(setup, [policy], args.episodes, with_baselines=not args.no_baselines,
                             seed_base=args.seed_base)
    cols = metrics_for(setup)
    table = compare_table(results, cols)
    print(f"{setup.agent_type} on {setup.scenario} ({setup.n_lbs} LBs, {len(setup.servers)} servers), "
          f"{args.episodes} episodes of {setup.episode_steps} steps, seeds {args.seed_base}..")
    print(table)
    paired = ""
    if not args.no_baselines:
        paired = paired_table(results, "SED", "fct_mean_s")
        print()
        print(paired)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(f"{args.out}.md", "w") as fh:
            fh.write(table + ("\n\n" + paired if paired else "") + "\n")
        results_to_csv(results, f"{args.out}.csv")
        try:
            from lwmecps_gym.core.plotting import plot_comparison

            plot_comparison(results, cols, f"{args.out}.png", title=f"{setup.agent_type} on {setup.scenario}")
        except ImportError:
            print("(no plot: matplotlib is not installed)")
        print(f"wrote {args.out}.md, {args.out}.csv, {args.out}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
