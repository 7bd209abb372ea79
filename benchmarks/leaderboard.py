"""The leaderboard: every family's benchmark tasks, shipped recipes over several training seeds,
tuned baselines and clairvoyant oracles on held-out workload seeds, reported with rliable.

For each :class:`lwmecps_gym.core.benchmark.BenchmarkTask` declared in ``<package>/benchmark.py``:

1. every baseline and oracle is evaluated once on the task's ``eval_seeds`` (they have no training
   variance; tuned baselines tune themselves on training seeds when constructed);
2. every recipe is trained with ``--seeds`` training seeds (0..N-1) and each trained policy is
   evaluated on the same ``eval_seeds``; its score is the mean primary metric over those episodes;
3. across training seeds, rliable gives the interquartile mean (IQM) with a stratified bootstrap
   95% CI and the probability of improvement over the best non-clairvoyant baseline (with CI);
4. the headroom is the oracle's gain over the best non-clairvoyant baseline (relative).

Writes ``<out>/results.md`` (default ``docs/results.md``), ``<out-dir>/leaderboard_<task>.png`` and a
JSON with every raw score. Needs the ``bench`` and ``sb3`` extras.

    python benchmarks/leaderboard.py                 # full run (>= 5 seeds per recipe)
    python benchmarks/leaderboard.py --smoke --out /tmp/lb/results.md   # seconds; used by the tests
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import replace
from pathlib import Path

import numpy as np

FAMILIES = ("lwmecps_gym", "faas_gym", "marllb_env")


def load_tasks(families=FAMILIES):
    """All declared tasks, in family order. A family without a ``benchmark`` module is skipped."""
    tasks = []
    for fam in families:
        try:
            mod = importlib.import_module(f"{fam}.benchmark")
        except ModuleNotFoundError as e:
            if e.name == f"{fam}.benchmark":
                continue
            raise
        tasks.extend(mod.TASKS)
    return tasks


def _score(result, metric: str, higher_is_better: bool) -> float:
    """Mean primary metric over the evaluation episodes, signed so that higher is better."""
    v = float(np.mean(result.values(metric)))
    return v if higher_is_better else -v


def _train_and_score(args):
    """Worker: train one recipe with one seed, evaluate it, return (recipe name, seed, raw metric, seconds)."""
    family, scenario, recipe_name, seed, smoke, scale, n_eval = args
    import torch

    torch.set_num_threads(1)
    from lwmecps_gym.core.evaluation import evaluate
    from lwmecps_gym.core.policy import SB3Policy
    from lwmecps_gym.core.training import train_sb3

    task = next(t for t in load_tasks((family,)) if t.scenario == scenario)
    recipe = next(r for r in task.recipes if r.name == recipe_name)
    if smoke:
        task, recipe = smoke_task(task), replace(recipe, timesteps=256)
    else:
        task = cut_task(task, n_eval)
        recipe = replace(recipe, timesteps=max(1, int(round(recipe.timesteps * scale))))
    t0 = time.process_time()
    env_kwargs = {**task.env_kwargs, **recipe.env_kwargs}
    if recipe.train is not None:
        policy = recipe.train(task, recipe, seed)
    else:
        algo_kwargs = dict(recipe.algo_kwargs)
        if smoke:
            for key, small in (("n_steps", 64), ("batch_size", 32), ("learning_starts", 32), ("buffer_size", 1000)):
                if key in algo_kwargs or (key == "n_steps" and recipe.algo in ("PPO", "A2C", "RecurrentPPO")):
                    algo_kwargs[key] = small
        model = train_sb3(recipe.algo, task.env_id, recipe.timesteps, env_kwargs=env_kwargs, n_envs=recipe.n_envs,
                          seed=seed, algo_kwargs=algo_kwargs, progress_bar=False)
        policy = SB3Policy(model, name=recipe.name)
    res = evaluate(task.env_id, policy, seeds=list(task.eval_seeds), step_limit=task.step_limit, **env_kwargs)
    return recipe.name, seed, float(np.mean(res.values(task.metric))), time.process_time() - t0, recipe.timesteps


def smoke_task(task):
    """The task cut down for a smoke run: two evaluation seeds, 20-step episodes."""
    return replace(task, eval_seeds=task.eval_seeds[:2], step_limit=20)


def cut_task(task, n_eval):
    """The task evaluated on its first ``n_eval`` held-out seeds (all of them for ``None``)."""
    return task if n_eval is None else replace(task, eval_seeds=task.eval_seeds[:n_eval])


def _fixed_policies(task, which: str, env):
    return task.baselines(env) if which == "baseline" else task.oracles(env)


def _evaluate_fixed(args):
    """Worker: evaluate the ``index``-th baseline or oracle of one task on its evaluation seeds,
    on the env the policy was built with (a clairvoyant oracle reads that env's simulator).
    Returns (policy name, mean primary metric)."""
    family, scenario, which, index, smoke, n_eval = args
    from lwmecps_gym.core.evaluation import evaluate

    task = next(t for t in load_tasks((family,)) if t.scenario == scenario)
    task = smoke_task(task) if smoke else cut_task(task, n_eval)
    env = task.make_env()
    policy = _fixed_policies(task, which, env)[index]
    res = evaluate(env, policy, seeds=list(task.eval_seeds), step_limit=task.step_limit)
    env.close()
    return res.policy, float(np.mean(res.values(task.metric)))


def _rliable(task, recipe_scores: dict[str, list[float]], best_baseline: float, reps: int):
    """IQM with 95% CI per recipe and P(recipe > best baseline) with 95% CI, over training seeds."""
    from rliable import library as rly
    from rliable import metrics

    sign = 1.0 if task.higher_is_better else -1.0
    scores = {name: sign * np.asarray(v, dtype=float).reshape(-1, 1) for name, v in recipe_scores.items()}
    iqm = lambda x: np.array([metrics.aggregate_iqm(x)])  # noqa: E731
    point, ci = rly.get_interval_estimates(scores, iqm, reps=reps)
    base = np.full((1, 1), sign * best_baseline)
    pairs = {name: (s, base) for name, s in scores.items()}
    p_point, p_ci = rly.get_interval_estimates(pairs, metrics.probability_of_improvement, reps=reps)
    out = {}
    for name in scores:
        lo, hi = sorted((sign * ci[name][0, 0], sign * ci[name][1, 0]))
        out[name] = {"iqm": sign * float(point[name][0]), "iqm_ci": [float(lo), float(hi)],
                     "p_improve": float(p_point[name]), "p_improve_ci": [float(p_ci[name][0, 0]), float(p_ci[name][1, 0])]}
    return out


def _fmt(v: float) -> str:
    return f"{v:.4g}"


def plot_entry(e: dict, path: Path) -> None:
    """The leaderboard figure of one task entry of the report (also re-drawable from the JSON)."""
    import textwrap

    import matplotlib.figure

    rows = [(n, "oracle", v, None, None) for n, v in e["oracles"]] + [(n, "baseline", v, None, None) for n, v in e["baselines"]]
    rows += [(n, "RL", s["iqm"], *s["iqm_ci"]) for n, s in e["recipes"].items()]
    fig = matplotlib.figure.Figure(figsize=(9, 0.5 * len(rows) + 1.8), layout="constrained")
    ax = fig.add_subplot()
    colours = {"oracle": "#6a3d9a", "baseline": "#1f78b4", "RL": "#e6550d"}
    for i, (_, kind, value, lo, hi) in enumerate(rows):
        err = None if lo is None else [[value - lo], [hi - value]]
        ax.barh(i, value, color=colours[kind], xerr=err, capsize=3, label=kind)
    ax.set_yticks(range(len(rows)), [textwrap.fill(n, 34) for n, *_ in rows], fontsize=8)
    ax.invert_yaxis()
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), ["clairvoyant oracle" if k == "oracle" else "non-clairvoyant baseline" if k == "baseline"
                                else "RL: IQM over training seeds, 95% CI" for k in unique], fontsize=8, loc="best")
    direction = "higher is better" if e["higher_is_better"] else "lower is better"
    ax.set_xlabel(f"{e['metric']}, mean over {len(e['eval_seeds'])} held-out seeds ({direction})")
    ax.set_title(f"{e['family']} / {e['scenario']}")
    fig.savefig(path, dpi=110)


def _job_key(kind: str, job: tuple) -> str:
    return json.dumps([kind, *job])


def _run_jobs(fixed: list, jobs: list, workers: int, cache: Path | None) -> tuple[list, list]:
    """Run the fixed-policy evaluations and the training jobs in one process pool.

    With ``cache`` (a JSON-lines file), every finished job is appended as ``{"key", "result"}``
    and jobs already there are not run again: an interrupted run resumes, and jobs may be
    finished on several machines (the results page states one command and machine; say so).
    """
    done: dict[str, list] = {}
    if cache is not None and cache.exists():
        for line in cache.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                done[rec["key"]] = rec["result"]
    keyed = [("fixed", j) for j in fixed] + [("train", j) for j in jobs]
    todo = [(k, j) for k, j in keyed if _job_key(k, j) not in done]
    if todo:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            # fixed policies first: an oracle's planning can be the longest single job
            futures = {pool.submit(_evaluate_fixed if k == "fixed" else _train_and_score, j): (k, j) for k, j in todo}
            for f in as_completed(futures):
                key = _job_key(*futures[f])
                done[key] = list(f.result())
                if cache is not None:
                    with cache.open("a") as fh:
                        fh.write(json.dumps({"key": key, "result": done[key], "machine": platform.node()}) + "\n")
    rows = [tuple(done[_job_key(k, j)]) for k, j in keyed]
    return rows[:len(fixed)], rows[len(fixed):], len(keyed) - len(todo)


def run(args) -> dict:
    tasks = load_tasks(args.families)
    if not tasks:
        raise SystemExit("no family declares benchmark TASKS (<package>/benchmark.py)")
    out_md = Path(args.out)
    out_md.parent.mkdir(parents=True, exist_ok=True)
    fig_dir = out_md.parent / "figures"
    fig_dir.mkdir(exist_ok=True)
    seeds = list(range(args.seeds))
    report = {"command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "machine": _machine(), "tasks": []}
    jobs = [(t.family, t.scenario, r.name, s, args.smoke, args.budget_scale, args.eval_seeds)
            for t in tasks for r in t.recipes for s in seeds]
    fixed = []
    for t in tasks:
        env = t.make_env()
        fixed += [(t.family, t.scenario, which, i, args.smoke, args.eval_seeds)
                  for which in ("baseline", "oracle") for i in range(len(_fixed_policies(t, which, env)))]
        env.close()
    t0 = time.time()
    fixed_rows, trained, report["jobs_from_cache"] = _run_jobs(fixed, jobs, args.jobs,
                                                                 Path(args.cache) if args.cache else None)
    report["jobs"] = len(fixed) + len(jobs)
    for task in tasks:
        t = smoke_task(task) if args.smoke else cut_task(task, args.eval_seeds)
        mine = [(j[2], row) for j, row in zip(fixed, fixed_rows, strict=True) if (j[0], j[1]) == (task.family, task.scenario)]
        baselines = [row for which, row in mine if which == "baseline"]
        oracles = [row for which, row in mine if which == "oracle"]
        if not baselines:
            raise SystemExit(f"{task.family}/{task.scenario} declares no baseline")
        pick = max if task.higher_is_better else min
        best_name, best = pick(baselines, key=lambda r: r[1])
        recipe_scores: dict[str, list[float]] = {}
        cpu: dict[str, float] = {}
        budget: dict[str, int] = {}
        for fam, scen, name, _seed, value, secs, steps in ((j[0], j[1], *r) for j, r in zip(jobs, trained, strict=True)):
            if (fam, scen) == (task.family, task.scenario):
                recipe_scores.setdefault(name, []).append(value)
                cpu[name] = cpu.get(name, 0.0) + secs
                budget[name] = steps
        stats = _rliable(task, recipe_scores, best, args.reps) if recipe_scores else {}
        entry = {"family": task.family, "scenario": task.scenario, "env_id": task.env_id, "env_kwargs": dict(task.env_kwargs),
                 "metric": task.metric, "higher_is_better": task.higher_is_better, "description": task.description,
                 "eval_seeds": list(t.eval_seeds), "step_limit": t.step_limit,
                 "baselines": baselines, "oracles": oracles, "best_baseline": [best_name, best],
                 "recipes": {n: {"scores": recipe_scores[n], "train_cpu_s": cpu[n],
                                 "timesteps": budget[n], **stats[n]}
                             for n in recipe_scores}}
        if oracles:
            from lwmecps_gym.core.benchmark import headroom

            best_oracle = pick(oracles, key=lambda r: r[1])
            entry["headroom"] = {"oracle": best_oracle[0], "value": headroom(best_oracle[1], best, task.higher_is_better)}
        fig = fig_dir / f"leaderboard_{task.family}_{task.scenario}.png"
        plot_entry(entry, fig)
        entry["figure"] = os.path.relpath(fig, out_md.parent)
        report["tasks"].append(entry)
    report["wall_s"] = time.time() - t0
    out_md.write_text(_markdown(report, args))
    out_md.with_suffix(".json").write_text(json.dumps(report, indent=1))
    return report


def _machine() -> str:
    import torch

    return (f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}, "
            f"torch {torch.__version__.split('+')[0]} (CPU training, 1 thread per job)")


def _markdown(report: dict, args) -> str:
    lines = ["# Results: the leaderboard", "",
             "Generated by `benchmarks/leaderboard.py`; do not edit by hand.", "",
             f"- Command: `python benchmarks/{report['command']}`",
             f"- Machine: {report['machine']}; wall time {report['wall_s'] / 60:.1f} min"
             + (f" (this invocation: {report['jobs_from_cache']} of the {report['jobs']} jobs were read from "
                "the `--cache` file written by an earlier invocation of the same command, with their CPU "
                "times)" if report.get("jobs_from_cache") else ""),
             f"- Training budget: {args.budget_scale:g} x each recipe's shipped timesteps"
             + (" (REDUCED: these are not the shipped recipes' results)" if args.budget_scale < 1 else "") + ".",
             f"- Training seeds per recipe: {args.seeds}; statistics over training seeds with rliable "
             "(interquartile mean, stratified bootstrap 95% CI; probability of improvement over the best "
             "non-clairvoyant baseline, with its 95% CI). Baselines and oracles are deterministic given the "
             "evaluation seeds and are evaluated once.", ""]
    for e in report["tasks"]:
        d = "higher is better" if e["higher_is_better"] else "lower is better"
        lines += [f"## {e['family']} / {e['scenario']}", "", e["description"], "",
                  f"`gym.make({e['env_id']!r}{''.join(f', {k}={v!r}' for k, v in e['env_kwargs'].items())})`; "
                  f"primary metric `{e['metric']}` ({d}), mean over {len(e['eval_seeds'])} held-out seeds "
                  f"{e['eval_seeds'][0]}..{e['eval_seeds'][-1]}"
                  + (f", {e['step_limit']} steps each" if e["step_limit"] else "") + ".", ""]
        best_name, best = e["best_baseline"]
        if "headroom" in e:
            h = e["headroom"]
            lines += [f"Headroom: oracle `{h['oracle']}` is {100 * h['value']:.1f}% better than the best "
                      f"non-clairvoyant baseline `{best_name}`.", ""]
        lines += ["| policy | kind | " + e["metric"] + " | 95% CI | P(improve over best baseline) [95% CI] | training |",
                  "|---|---|---|---|---|---|"]
        for n, v in e["oracles"]:
            lines.append(f"| {n} | oracle (clairvoyant) | {_fmt(v)} | | | |")
        for n, v in e["baselines"]:
            lines.append(f"| {n} | baseline{' (best)' if n == best_name else ''} | {_fmt(v)} | | | |")
        for n, s in e["recipes"].items():
            p = s["p_improve"]
            lo, hi = s["p_improve_ci"]
            lines.append(f"| {n} | RL, IQM of {len(s['scores'])} seeds | {_fmt(s['iqm'])} | "
                         f"[{_fmt(s['iqm_ci'][0])}, {_fmt(s['iqm_ci'][1])}] | {p:.2f} [{lo:.2f}, {hi:.2f}] | "
                         f"{s['timesteps']:,} steps, {s['train_cpu_s'] / len(s['scores']):.0f} CPU-s/seed |")
        verdicts = []
        for n, s in e["recipes"].items():
            won = s["p_improve_ci"][0] > 0.5
            verdicts.append(f"`{n}` {'beats' if won else 'does NOT beat'} the best baseline `{best_name}` "
                            f"(lower CI bound of P(improve) {s['p_improve_ci'][0]:.2f} {'>' if won else '<='} 0.5).")
        lines += ["", *verdicts, "", f"![{e['scenario']}]({e['figure']})", ""]
        lines += ["Per-seed scores: " + "; ".join(f"{n}: {', '.join(_fmt(x) for x in s['scores'])}"
                                                  for n, s in e["recipes"].items()), ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--families", nargs="+", default=list(FAMILIES), choices=FAMILIES)
    p.add_argument("--seeds", type=int, default=5, help="training seeds per recipe (default 5)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="parallel training processes")
    p.add_argument("--reps", type=int, default=5000, help="bootstrap repetitions")
    p.add_argument("--out", default="docs/results.md")
    p.add_argument("--budget-scale", type=float, default=1.0,
                   help="train each recipe for this fraction of its shipped timesteps (default 1.0); stated in the results")
    p.add_argument("--eval-seeds", type=int, default=None, help="use only the first N held-out seeds of each task")
    p.add_argument("--cache", default=None, metavar="JSONL",
                   help="append every finished job here and skip jobs already there (resume an interrupted run; "
                        "keyed by task, recipe, seed and flags, not by code: use a fresh file after changing code)")
    p.add_argument("--smoke", action="store_true",
                   help="256 training steps, 2 evaluation seeds of 20 steps, 2 seeds: checks the pipeline, not results")
    args = p.parse_args(argv)
    if args.seeds < 1:
        p.error(f"--seeds must be >= 1, got {args.seeds}")
    if not 0.0 < args.budget_scale <= 1.0:
        p.error(f"--budget-scale must be in (0, 1], got {args.budget_scale}")
    if args.eval_seeds is not None and args.eval_seeds < 2:
        p.error(f"--eval-seeds must be >= 2, got {args.eval_seeds}")
    if args.smoke:
        args.seeds = min(args.seeds, 2)
        args.reps = min(args.reps, 200)
    report = run(args)
    for e in report["tasks"]:
        print(f"{e['family']}/{e['scenario']}: best baseline {e['best_baseline']}, "
              + ", ".join(f"{n} IQM {s['iqm']:.4g} P(imp) {s['p_improve']:.2f}" for n, s in e["recipes"].items()))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
