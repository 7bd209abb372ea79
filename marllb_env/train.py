"""Train a MARLLB agent, keep the best checkpoint, and compare it with SED and the oracles.

    python -m marllb_env.train --agent-type i-sac --scenario moderate --episodes 72 --save-path runs/isac.pt
    python -m marllb_env.train --agent-type qmix --num-servers 16 --num-agents 4 --trace-type marllb \\
        --episodes 100 --save-path checkpoints/qmix_best.pt
    python -m marllb_env.train --agent-type sac-gru --quick --save-path /tmp/sac.pt

Agent types (see :mod:`marllb_env.pipeline`): ``qmix``, ``i-sac``, ``s-sac`` and ``ppo``
(parameter-shared) on the multi-agent env; ``sac-gru`` and ``recurrent-ppo`` drive LB 0 of the
single-agent env. SAC-GRU learners use :data:`marllb_env.sac_gru.PRESETS` (MARLLB Table 2;
``--preset large`` for the large scale) with ``--sac-*`` overrides.

Every ``--eval-every`` training episodes the greedy policy is run on ``--val-episodes`` validation
seeds (``20000 + i``, disjoint from training and test seeds; score: the return, or minus the mean
FCT on ``hidden_drift``, which trains on the task's reward ``-interval_s * flows in system``); the
best one is saved at
``--save-path`` (plus ``<stem>.json``: setup and hyper-parameters), the final one at
``<stem>_last<ext>``. At the end the best model, SED, LSQ, WCMP and the oracles GSQ and SRT are
evaluated with the shared harness on ``--eval-episodes`` held-out seeds (``10000 + i``); the table
(mean and 95% CI) and the paired differences to SED are printed and written with a PNG plot next to
the checkpoint. ``--tensorboard DIR`` logs training curves. ``--quick`` shrinks every budget for a
smoke run.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import asdict
from typing import Any

import numpy as np

from marllb_env.pipeline import (
    AGENT_TYPES,
    TRACE_TYPES,
    VALIDATION_SEED_BASE,
    Setup,
    evaluate_setup,
    meta_path,
    metrics_for,
    resolve_setup,
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m marllb_env.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--agent-type", required=True, choices=AGENT_TYPES)
    p.add_argument("--scenario", default=None,
                   help="scenario name (marllb_env.scenarios, or the multi-agent env's moderate/large/seed_4x4); "
                        "default: moderate, or a custom cluster from --num-servers")
    p.add_argument("--num-servers", type=int, default=None)
    p.add_argument("--num-agents", type=int, default=None, help="load balancers")
    p.add_argument("--trace-type", default="poisson", choices=TRACE_TYPES)
    p.add_argument("--trace", default=None, help="bundled MARLLB trace for --trace-type marllb (rate_150, rate_400)")
    p.add_argument("--trace-path", default=None, help="Wikibench trace file for --trace-type wikibench")
    p.add_argument("--rho", type=float, default=0.9, help="offered load a MARLLB trace is rescaled to")
    p.add_argument("--weight-levels", default="code",
                   help="weight of each action index: code (1, 1.5, 2), paper (1 .. 2 step 0.2) or a list, e.g. "
                        "0.25,0.5,1,2,4")
    p.add_argument("--episodes", type=int, default=None,
                   help="training episodes (default: the paper's 72; for ppo/recurrent-ppo the same number of "
                        "episodes' worth of steps)")
    p.add_argument("--episode-steps", type=int, default=None,
                   help="steps of 0.25 s per evaluation episode (default 240 = 60 s; 800 on hidden_drift)")
    p.add_argument("--train-steps", type=int, default=None, help="steps per training episode (default: --episode-steps)")
    p.add_argument("--save-path", required=True, help="checkpoint of the best model (.pt; .zip for ppo/recurrent-ppo)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tensorboard", default=None, metavar="DIR", help="TensorBoard log directory")
    p.add_argument("--quick", action="store_true", help="tiny budgets for a smoke run (seconds)")
    p.add_argument("--eval-every", type=int, default=None, help="training episodes between validations")
    p.add_argument("--val-episodes", type=int, default=3)
    p.add_argument("--eval-episodes", type=int, default=10, help="held-out test episodes at the end")
    p.add_argument("--no-final-eval", action="store_true", help="skip the final comparison")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--preset", default="moderate", choices=("moderate", "large"), help="SAC-GRU hyper-parameters")
    p.add_argument("--sac", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a SACGRUConfig field, e.g. --sac hidden=64 --sac init_alpha=0.05")
    p.add_argument("--updates", type=int, default=None, help="gradient steps per episode (SAC-GRU and QMIX)")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    return p


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for it in items:
        if "=" not in it:
            raise ValueError(f"--sac expects FIELD=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


class _Logger:
    """TensorBoard scalars (optional) and a tqdm bar over episodes."""

    def __init__(self, logdir: str | None, total: int, desc: str, progress: bool):
        from tqdm import tqdm

        self.writer = None
        if logdir:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(logdir)
        self.bar = tqdm(total=total, desc=desc, disable=not progress, file=sys.stderr, dynamic_ncols=True)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        if self.writer is not None:
            for k, v in values.items():
                if v is not None and math.isfinite(v):
                    self.writer.add_scalar(k, v, step)

    def advance(self, n: int = 1, **postfix: Any) -> None:
        self.bar.update(n)
        if postfix:
            self.bar.set_postfix({k: f"{v:.3g}" if isinstance(v, float) else v for k, v in postfix.items()})

    def close(self) -> None:
        self.bar.close()
        if self.writer is not None:
            self.writer.close()


def _validate(setup: Setup, policy: Any, n: int, steps: int) -> float:
    """Validation score (higher is better): the mean return, or minus the mean FCT on ``hidden_drift``
    (its task metric)."""
    from lwmecps_gym.core.evaluation import evaluate

    seeds = [VALIDATION_SEED_BASE + i for i in range(n)]
    res = evaluate(lambda: setup.make_env(steps), policy, seeds=seeds)
    return -float(res.values("fct_mean_s").mean()) if setup.hard else float(res.values("return").mean())


def _training_env(setup: Setup, steps: int) -> Any:
    """The env learners train on: ``setup.make_env``; on ``hidden_drift`` with the task's training reward
    ``-interval_s * flows in system`` (:class:`marllb_env.benchmark.FlowsInSystemReward`)."""
    env = setup.make_env(steps)
    if setup.hard:
        from marllb_env.benchmark import FlowsInSystemReward

        env = FlowsInSystemReward(env)
    return env


def _write_meta(path: str, meta: dict[str, Any]) -> None:
    with open(meta_path(path), "w") as fh:
        json.dump(meta, fh, indent=1)


def _last_path(path: str) -> str:
    stem, ext = os.path.splitext(path)
    return f"{stem}_last{ext}"


# ---------------------------------------------------------------------------- episode collection
def run_episode(env: Any, act: Any, seed: int) -> dict[str, np.ndarray]:
    """One episode with ``act(obs) -> action`` on a Gymnasium env; flat ``obs (T+1, d)``,
    ``actions (T, k)``, ``rewards (T,)``, ``terminated (T,)``."""
    obs, _ = env.reset(seed=seed)
    obs_seq, A, R, D = [np.asarray(obs, np.float32).reshape(-1)], [], [], []
    while True:
        a = act(obs_seq[-1])
        obs, r, term, trunc, _ = env.step(a)
        obs_seq.append(np.asarray(obs, np.float32).reshape(-1))
        A.append(np.asarray(a).reshape(-1))
        R.append(float(r))
        D.append(bool(term))
        if term or trunc:
            break
    return {"obs": np.array(obs_seq), "actions": np.array(A), "rewards": np.array(R), "terminated": np.array(D)}


# ------------------------------------------------------------------------------------- learners
def train_sac(setup: Setup, args: argparse.Namespace, episodes: int, train_steps: int, log: _Logger,
              eval_every: int) -> dict[str, Any]:
    """SAC-GRU (single-agent), I-SAC or S-SAC; saves the best and the last model. Returns a summary."""
    from marllb_env.sac_gru import SACGRUAgents, preset

    over = _parse_overrides(args.sac)
    if args.updates is not None:
        over["updates_per_episode"] = args.updates
    if args.quick:
        over = {"hidden": 16, "batch_episodes": 2, "learning_starts": 1, "updates_per_episode": 2,
                "seq_len": 8, "burn_in": 4, **over}
    cfg = preset(args.preset, **over)
    env = _training_env(setup, train_steps)
    obs_dim = int(np.prod(env.observation_space.shape))
    nvec = np.asarray(env.action_space.nvec)
    levels = int(nvec[0])
    if setup.agent_type == "i-sac":
        agents = SACGRUAgents.independent(setup.n_lbs, obs_dim // setup.n_lbs, nvec.size // setup.n_lbs, levels,
                                          cfg, args.seed)
    else:
        agents = SACGRUAgents.single(obs_dim, nvec.size, levels, cfg, args.seed, kind=setup.agent_type)
    extra = {"agent_type": setup.agent_type, "setup": setup.to_json(), "seed": args.seed, "episodes": episodes,
             "train_steps": train_steps}
    best = -math.inf
    for ep in range(episodes):
        agents.reset()
        e = run_episode(env, lambda o: agents.joint_action(o, explore=True), args.seed * 100_000 + ep)
        agents.store(e["obs"], e["actions"], e["rewards"], e["terminated"])
        stats: dict[str, float] | None = None
        for _ in range(cfg.updates_per_episode):
            stats = agents.update() or stats
        ret = float(e["rewards"].sum())
        log.scalars(ep, {"train/return": ret, **{f"train/{k}": v for k, v in (stats or {}).items()}})
        if (ep + 1) % eval_every == 0 or ep == episodes - 1:
            val = _validate(setup, agents, args.val_episodes, train_steps)
            log.scalars(ep, {"val/return": val})
            if val > best:
                best = val
                agents.save(args.save_path, {**extra, "best_episode": ep, "val_return": val})
        log.advance(1, ret=ret, best=best)
    agents.save(_last_path(args.save_path), {**extra, "best_episode": episodes - 1})
    env.close()
    return {"best_val_return": best}


def train_qmix(setup: Setup, args: argparse.Namespace, episodes: int, train_steps: int, log: _Logger,
               eval_every: int) -> dict[str, Any]:
    """QMIX (:mod:`marllb_env.qmix`) on the multi-agent env with ``log1p`` observations and state."""
    import torch

    from marllb_env.pipeline import ScaledQMIXPolicy
    from marllb_env.qmix import QMIX, QMIXConfig

    env = setup.make_parallel_env(train_steps)
    n, m = env.n_servers, env.n_lbs
    cfg = QMIXConfig(hidden=16 if args.quick else 64, batch_episodes=2 if args.quick else 8,
                     eps_decay_episodes=max(1, episodes // 2))
    learner = QMIX(n_agents=m, obs_dim=int(env.observation_space("lb_0").shape[0]),
                   state_dim=int(env.state_space.shape[0]), heads=n, levels=len(setup.weight_levels), config=cfg,
                   seed=args.seed)
    updates = args.updates if args.updates is not None else (1 if args.quick else 4)
    policy = ScaledQMIXPolicy(learner)
    meta = {"format": "marllb_env.train/1", "dims": {"n_agents": m, "obs_dim": learner.obs_dim,
            "state_dim": learner.state_dim, "heads": n, "levels": learner.levels}, "config": asdict(cfg),
            "extra": {"agent_type": "qmix", "setup": setup.to_json(), "seed": args.seed, "episodes": episodes,
                      "train_steps": train_steps}}

    def save(path: str, **more: Any) -> None:
        torch.save({"agent": learner.agent.state_dict(), "mixer": learner.mixer.state_dict()}, path)
        _write_meta(path, {**meta, "extra": {**meta["extra"], **more}})

    best = -math.inf
    agents = env.possible_agents
    for ep in range(episodes):
        obs, _ = env.reset(seed=args.seed * 100_000 + ep)
        learner.reset_hidden()
        obs_seq = [np.log1p(np.stack([obs[a] for a in agents]))]
        S = [np.log1p(env.state())]
        A, R, D = [], [], []
        while env.agents:
            a = learner.act(obs_seq[-1], explore=True)
            obs, rew, term, _, _ = env.step({ag: a[i] for i, ag in enumerate(agents)})
            obs_seq.append(np.log1p(np.stack([obs[ag] for ag in agents])))
            S.append(np.log1p(env.state()))
            A.append(a)
            R.append(rew[agents[0]])
            D.append(bool(term[agents[0]]))
        learner.store({"obs": np.array(obs_seq), "state": np.array(S), "actions": np.array(A), "rewards": np.array(R),
                       "terminated": np.array(D)})
        losses = [x for x in (learner.update() for _ in range(updates)) if x is not None]
        ret = float(np.sum(R))
        log.scalars(ep, {"train/return": ret, "train/epsilon": learner.epsilon,
                         "train/loss": float(np.mean(losses)) if losses else math.nan})
        if (ep + 1) % eval_every == 0 or ep == episodes - 1:
            val = _validate(setup, policy, args.val_episodes, train_steps)
            log.scalars(ep, {"val/return": val})
            if val > best:
                best = val
                save(args.save_path, best_episode=ep, val_return=val)
        log.advance(1, ret=ret, best=best)
    save(_last_path(args.save_path), best_episode=episodes - 1)
    env.close()
    return {"best_val_return": best}


def train_sb3(setup: Setup, args: argparse.Namespace, episodes: int, train_steps: int, log: _Logger,
              eval_every: int) -> dict[str, Any]:
    """PPO shared by the LBs (SuperSuit + VecNormalize) or single-agent PPO / RecurrentPPO (SB3).

    The budget is ``episodes * train_steps`` env steps (times the LBs for shared PPO: every LB's step
    is one agent-step), learned in ``episodes / eval_every`` chunks with a validation after each.
    """
    import torch  # noqa: F401  (SB3 imports it anyway; keeps the thread setting effective)
    from stable_baselines3.common.utils import set_random_seed

    from lwmecps_gym.core.training import algorithm_class
    from marllb_env.pipeline import SharedPPOPolicy, load_policy

    algo = "RecurrentPPO" if setup.agent_type == "recurrent-ppo" else "PPO"
    shared = setup.family == "multi"
    n_steps = 16 if args.quick else 128
    kw = {"n_steps": n_steps, "batch_size": n_steps, "n_epochs": 1 if args.quick else 5, "learning_rate": 3e-4,
          "gamma": 0.95}
    set_random_seed(args.seed)
    if shared:
        import supersuit as ss
        from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

        venv = ss.pettingzoo_env_to_vec_env_v1(setup.make_parallel_env(train_steps))
        venv = ss.concat_vec_envs_v1(venv, 1, num_cpus=0, base_class="stable_baselines3")
        venv = VecNormalize(VecMonitor(venv), norm_obs=True, norm_reward=True)
        per_episode = train_steps * setup.n_lbs
    else:
        from stable_baselines3.common.env_util import make_vec_env

        venv = make_vec_env(lambda: _training_env(setup, train_steps), n_envs=1, seed=args.seed)
        per_episode = train_steps
    policy_name = "MlpLstmPolicy" if algo == "RecurrentPPO" else "MlpPolicy"
    model = algorithm_class(algo)(policy_name, venv, verbose=0, seed=None if shared else args.seed,
                                  tensorboard_log=args.tensorboard, **kw)
    meta: dict[str, Any] = {"format": "marllb_env.train/1", "algo": algo, "algo_kwargs": kw,
                            "extra": {"agent_type": setup.agent_type, "setup": setup.to_json(), "seed": args.seed,
                                      "episodes": episodes, "train_steps": train_steps}}

    def save(path: str, **more: Any) -> None:
        model.save(path)
        m = {**meta, "extra": {**meta["extra"], **more}}
        if shared:
            m["obs_norm"] = {"mean": venv.obs_rms.mean.tolist(), "var": venv.obs_rms.var.tolist(),
                             "clip_obs": float(venv.clip_obs), "epsilon": float(venv.epsilon)}
        _write_meta(path, m)

    best = -math.inf
    done = 0
    while done < episodes:
        chunk = min(eval_every, episodes - done)
        model.learn(chunk * per_episode, reset_num_timesteps=False, tb_log_name=setup.agent_type)
        done += chunk
        if shared:
            pol: Any = SharedPPOPolicy(model, setup.n_lbs, venv.obs_rms.mean, venv.obs_rms.var, venv.clip_obs,
                                       venv.epsilon)
        else:
            save(_last_path(args.save_path))
            pol = load_policy(_last_path(args.save_path))[0]
        val = _validate(setup, pol, args.val_episodes, train_steps)
        log.scalars(done, {"val/return": val})
        if val > best:
            best = val
            save(args.save_path, best_episode=done - 1, val_return=val)
        log.advance(chunk, best=best)
    save(_last_path(args.save_path), best_episode=episodes - 1)
    venv.close()
    return {"best_val_return": best}


TRAINERS = {"sac-gru": train_sac, "i-sac": train_sac, "s-sac": train_sac, "qmix": train_qmix, "ppo": train_sb3,
            "recurrent-ppo": train_sb3}


def final_report(path: str, setup: Setup, n_episodes: int, out_prefix: str | None = None) -> str:
    """Evaluate the model at ``path`` and the baselines; print and write the table, CSV and PNG plot."""
    from lwmecps_gym.core.evaluation import compare_table, paired_table, results_to_csv
    from marllb_env.pipeline import load_policy

    policy, setup, meta = load_policy(path)
    results = evaluate_setup(setup, [policy], n_episodes)
    cols = metrics_for(setup)
    table = compare_table(results, cols)
    paired = paired_table(results, "SED", "fct_mean_s")
    stem = out_prefix or os.path.splitext(path)[0]
    results_to_csv(results, f"{stem}_eval.csv")
    with open(f"{stem}_eval.md", "w") as fh:
        fh.write(table + "\n\n" + paired + "\n")
    text = table + "\n\n" + paired
    try:
        from lwmecps_gym.core.plotting import plot_comparison

        plot_comparison(results, cols, f"{stem}_eval.png",
                        title=f"{setup.scenario}: {len(results[0].seeds)} held-out seeds")
        text += f"\n\nplot: {stem}_eval.png"
    except ImportError:  # matplotlib is the optional 'plot' extra
        text += "\n\n(no plot: matplotlib is not installed)"
    return text


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        setup = resolve_setup(args.agent_type, args.scenario, args.num_servers, args.num_agents, args.trace_type,
                              trace=args.trace, trace_path=args.trace_path, rho=args.rho,
                              episode_steps=args.episode_steps, weight_levels=args.weight_levels)
        if args.quick:
            setup.episode_steps = min(setup.episode_steps, 20)
            args.eval_episodes = min(args.eval_episodes, 2)
            args.val_episodes = min(args.val_episodes, 1)
        episodes = args.episodes if args.episodes is not None else (3 if args.quick else 72)
        if episodes < 1:
            raise ValueError(f"--episodes must be >= 1, got {episodes}")
        train_steps = args.train_steps if args.train_steps is not None else setup.episode_steps
        if args.quick:
            train_steps = min(train_steps, 20)
        if train_steps < 1:
            raise ValueError(f"--train-steps must be >= 1, got {train_steps}")
        eval_every = args.eval_every if args.eval_every is not None else max(1, episodes // 5)
        if eval_every < 1:
            raise ValueError(f"--eval-every must be >= 1, got {eval_every}")
        for name in ("val_episodes", "eval_episodes", "threads"):
            if getattr(args, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
        want_ext = ".zip" if args.agent_type in ("ppo", "recurrent-ppo") else ".pt"
        if os.path.splitext(args.save_path)[1] != want_ext:
            raise ValueError(f"--save-path for {args.agent_type} must end in {want_ext}, got {args.save_path!r}")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    os.makedirs(os.path.dirname(os.path.abspath(args.save_path)), exist_ok=True)
    log = _Logger(args.tensorboard, episodes, f"{args.agent_type} on {setup.scenario}", not args.no_progress)
    t0 = time.perf_counter()
    try:
        summary = TRAINERS[args.agent_type](setup, args, episodes, train_steps, log, eval_every)
    finally:
        log.close()
    print(f"trained {args.agent_type} on {setup.scenario} ({setup.n_lbs} LBs, {len(setup.servers)} servers) for "
          f"{episodes} episodes of {train_steps} steps in {time.perf_counter() - t0:.0f} s; best validation score "
          f"{summary['best_val_return']:.2f}; saved {args.save_path} (+ {os.path.basename(meta_path(args.save_path))})")
    if not args.no_final_eval:
        print(final_report(args.save_path, setup, args.eval_episodes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
