"""What ``python -m marllb_env.train`` and ``python -m marllb_env.evaluate`` share: the run setup
(scenario, servers, LBs, workload), env construction, baselines, and loading a saved agent.

No torch at import: the learners are imported inside :func:`load_policy`.

Agent types and the env they run on
-----------------------------------
==================  ===============  ===================================================================
agent type          env family       learner
==================  ===============  ===================================================================
``qmix``            multi-agent      :mod:`marllb_env.qmix` (CTDE over ``state()``)
``i-sac``           multi-agent      one :class:`~marllb_env.sac_gru.SACGRU` per LB, local observations
``s-sac``           multi-agent      one SAC-GRU over every LB's observation, setting every LB's weights
``ppo``             multi-agent      SB3 PPO shared by the LBs (SuperSuit); SB3 PPO if the setup has 1 LB
``sac-gru``         single-agent     one SAC-GRU driving LB 0; the other LBs run SED with capacity weights
``recurrent-ppo``   single-agent     sb3-contrib RecurrentPPO driving LB 0 (the recurrent SB3 counterpart)
==================  ===============  ===================================================================

Multi-agent runs are evaluated through :class:`marllb_env.multi_agent.JointEnv` (joint observation,
joint action, the cooperative reward); single-agent runs on ``marllb_env/LoadBalance-v0``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from lwmecps_gym.core.validation import check_choice, check_float, check_int
from marllb_env.scenarios import SCENARIOS as SINGLE_SCENARIOS
from marllb_env.sim import as_server_specs
from marllb_env.traces import BUNDLED_TRACES, MARLLB_SECONDS_PER_ITERATION, load_marllb_trace

AGENT_TYPES = ("qmix", "sac-gru", "i-sac", "s-sac", "ppo", "recurrent-ppo")
SINGLE_AGENT_TYPES = ("sac-gru", "recurrent-ppo")
TRACE_TYPES = ("poisson", "marllb", "wikibench")
SINGLE_ENV_ID = "marllb_env/LoadBalance-v0"
#: the hard scenario's env (``hidden_drift``: true core speeds hidden and drifting; :mod:`marllb_env.drift`)
HARD_ENV_ID = "marllb_env/LoadBalanceHard-v0"
#: MARLLB's weight levels: the code's (default) and the paper's.
WEIGHT_LEVELS = {"code": [1.0, 1.5, 2.0], "paper": [1.0, 1.2, 1.4, 1.6, 1.8, 2.0]}
#: Workload of a setup built from ``--num-servers`` alone, and of ``--trace-type poisson`` on a
#: trace scenario: Poisson arrivals at rho 0.9 with exponential 0.2 CPU-s jobs (the paper's "exp(200 ms)").
PAPER_POISSON = {"kind": "poisson", "rho": 0.9, "mean_size_s": 0.2}
#: Held-out evaluation seeds start here (the harness' convention); validation during training uses
#: ``VALIDATION_SEED_BASE + i``; training episodes use ``seed * 100_000 + episode``.
EVAL_SEED_BASE = 10_000
VALIDATION_SEED_BASE = 20_000
NO_WIKIBENCH = (
    "trace-type 'wikibench' needs --trace-path: no Wikibench trace is shipped with marllb_env (MARLLB's "
    "Wikipedia hour traces are not distributed); pass a file of '<unix_ts> <url>' lines, or use "
    "--trace-type poisson or marllb (bundled MARLLB traces: " + ", ".join(BUNDLED_TRACES) + ")"
)


def multi_agent_scenarios() -> dict[str, dict[str, Any]]:
    """The multi-agent env's own named scenarios (imports pettingzoo)."""
    from marllb_env.multi_agent import SCENARIOS

    return SCENARIOS


def scenario_names() -> list[str]:
    """Every scenario name the CLI accepts: :mod:`marllb_env.scenarios` and the multi-agent env's."""
    return sorted(set(SINGLE_SCENARIOS) | set(multi_agent_scenarios()))


@dataclass
class Setup:
    """One run's environment: JSON-serialisable, stored with every checkpoint.

    Attributes:
        agent_type: one of :data:`AGENT_TYPES`.
        scenario: the scenario label (name, or ``"custom"``).
        servers: cpus per server.
        n_lbs: load balancers (agents in the multi-agent env).
        workload: :func:`marllb_env.traces.make_workload` dict spec, or ``None`` (the multi-agent
            env's default: Poisson, rho 0.9, exp 0.5 CPU-s jobs).
        episode_steps: steps of 0.25 s per evaluation episode.
        weight_levels: weight of each action index.
        env_id: single-agent env id (default :data:`SINGLE_ENV_ID`; :data:`HARD_ENV_ID` for a scenario
            with hidden, drifting capacities, e.g. ``hidden_drift``).
    """

    agent_type: str
    scenario: str
    servers: list[float]
    n_lbs: int
    workload: dict[str, Any] | None
    episode_steps: int = 240
    weight_levels: list[float] = field(default_factory=lambda: list(WEIGHT_LEVELS["code"]))
    env_id: str | None = None

    @property
    def family(self) -> str:
        """``"single"`` (LB 0 on ``LoadBalance-v0``) or ``"multi"`` (every LB, ``JointEnv``)."""
        if self.agent_type in SINGLE_AGENT_TYPES or (self.agent_type == "ppo" and self.n_lbs == 1):
            return "single"
        return "multi"

    def env_kwargs(self, max_steps: int | None = None, **overrides: Any) -> dict[str, Any]:
        """Keyword arguments of the env (``JointEnv`` / ``MultiLoadBalanceEnv``, or ``gym.make(SINGLE_ENV_ID)``)."""
        steps = self.episode_steps if max_steps is None else max_steps
        kw: dict[str, Any] = {"servers": list(self.servers), "n_lbs": self.n_lbs, "workload": self.workload,
                              "max_steps": steps, "weight_levels": list(self.weight_levels)}
        if self.family == "multi":
            kw["scenario"] = None
        else:  # LoadBalanceEnv's episodes end by gym.make's TimeLimit
            kw["max_episode_steps"] = kw.pop("max_steps")
            kw["flatten_obs"] = True
            kw["action_mode"] = "discrete"
            if self.workload is None:  # the multi-agent env's default workload, made explicit
                kw["workload"] = {"kind": "poisson", "rho": 0.9, "mean_size_s": 0.5}
        kw.update(overrides)
        return kw

    def make_env(self, max_steps: int | None = None, **overrides: Any) -> gym.Env:
        """A fresh env of this setup (``JointEnv`` for multi-agent runs)."""
        kw = self.env_kwargs(max_steps, **overrides)
        if self.family == "multi":
            from marllb_env.multi_agent import JointEnv

            return JointEnv(**kw)
        return gym.make(self.env_id or SINGLE_ENV_ID, **kw)

    def make_parallel_env(self, max_steps: int | None = None) -> Any:
        """The PettingZoo env of this setup (multi-agent family)."""
        from marllb_env import parallel_env

        return parallel_env(**self.env_kwargs(max_steps))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Setup:
        return cls(**d)

    @property
    def hard(self) -> bool:
        """True for the hidden-capacity scenario's env (:data:`HARD_ENV_ID`)."""
        return self.env_id == HARD_ENV_ID


def parse_weight_levels(spec: str) -> list[float]:
    """``"code"`` (1.0, 1.5, 2.0), ``"paper"`` (1.0 .. 2.0 step 0.2) or a comma-separated list of at least
    two positive numbers (e.g. ``"0.25,0.5,1,2,4"``).

    Raises:
        ValueError: anything else.
    """
    if spec in WEIGHT_LEVELS:
        return list(WEIGHT_LEVELS[spec])
    try:
        levels = [float(x) for x in str(spec).split(",")]
    except ValueError:
        levels = []
    if len(levels) < 2 or not all(np.isfinite(v) and v > 0 for v in levels):
        raise ValueError(f"weight-levels must be 'code', 'paper' or a comma-separated list of at least two positive "
                         f"numbers, got {spec!r}")
    return levels


def _trace_cpu_rate(trace: str) -> float:
    """Offered CPU-seconds per second of a MARLLB trace (sum of job sizes / duration)."""
    times, iters = load_marllb_trace(trace)
    return float(np.sum(iters) * MARLLB_SECONDS_PER_ITERATION / times[-1])


def resolve_setup(
    agent_type: str,
    scenario: str | None = None,
    num_servers: int | None = None,
    num_agents: int | None = None,
    trace_type: str = "poisson",
    *,
    trace: str | None = None,
    trace_path: str | None = None,
    rho: float = 0.9,
    episode_steps: int | None = None,
    weight_levels: str = "code",
) -> Setup:
    """Build the :class:`Setup` of a run from the CLI's arguments.

    * ``scenario`` names a scenario of :mod:`marllb_env.scenarios` or of the multi-agent env
      (``moderate``, ``large``, ``seed_4x4``); ``num_servers``/``num_agents`` must then agree with it.
    * Without a scenario, ``num_servers`` gives :func:`marllb_env.backend.default_servers`'s mix
      (first half 1 CPU, rest 2), ``num_agents`` LBs (default 1 for single-agent types, 2 otherwise)
      and the paper's Poisson workload (:data:`PAPER_POISSON`); with neither, ``moderate``.
    * ``trace_type``: ``poisson`` keeps a Poisson scenario's workload (a trace scenario gets
      :data:`PAPER_POISSON`); ``marllb`` replays a bundled MARLLB trace (the scenario's own, else
      ``trace``, default ``rate_150``) with its inter-arrival times scaled so that the offered load is
      ``rho`` of the cluster's capacity (a trace scenario keeps its own rate); ``wikibench`` replays
      ``trace_path``.
    * ``weight_levels``: see :func:`parse_weight_levels`.
    * A scenario with hidden, drifting capacities (``hidden_drift``) runs on :data:`HARD_ENV_ID` with
      discrete weights, single-agent types only, 800-step episodes by default.

    Raises:
        ValueError: unknown names, counts that contradict the scenario, a single-agent type with
            more than one agent, or ``wikibench`` without ``trace_path`` (no Wikibench trace is shipped).
    """
    check_choice("agent-type", agent_type, AGENT_TYPES)
    check_choice("trace-type", trace_type, TRACE_TYPES)
    levels = parse_weight_levels(weight_levels)
    rho = check_float("rho", rho, low=0.0, low_open=True)
    if trace_type == "wikibench" and not trace_path:
        raise ValueError(NO_WIKIBENCH)
    if trace_path and trace_type != "wikibench":
        raise ValueError("--trace-path is for --trace-type wikibench (MARLLB traces are chosen with --trace)")
    if trace is not None:
        check_choice("trace", trace, tuple(BUNDLED_TRACES))
        if trace_type != "marllb":
            raise ValueError("--trace chooses the bundled MARLLB trace of --trace-type marllb")
    if num_servers is not None:
        num_servers = check_int("num-servers", num_servers, low=1)
    if num_agents is not None:
        num_agents = check_int("num-agents", num_agents, low=1)

    if scenario is None and num_servers is None:
        scenario = "moderate"
    env_id = None
    if scenario is not None:
        multi = multi_agent_scenarios()
        check_choice("scenario", scenario, scenario_names())
        if scenario in SINGLE_SCENARIOS:
            sc = SINGLE_SCENARIOS[scenario]
            if sc.get("capacity_events"):
                raise ValueError(f"scenario {scenario!r} has capacity events, which the CLI does not run; "
                                 "choose another scenario")
            if sc.get("capacity_drift"):
                if agent_type not in SINGLE_AGENT_TYPES + ("ppo",) or int(sc["n_lbs"]) != 1:
                    raise ValueError(f"scenario {scenario!r} runs on {HARD_ENV_ID}, a single-LB env: use "
                                     f"--agent-type sac-gru, recurrent-ppo or ppo")
                env_id = HARD_ENV_ID
            servers, n_lbs, workload = list(sc["servers"]), int(sc["n_lbs"]), dict(sc["workload"])
        else:
            sc = multi[scenario]
            servers, n_lbs, workload = list(sc["servers"]), int(sc["n_lbs"]), None
        if num_servers is not None and num_servers != len(servers):
            raise ValueError(f"--num-servers {num_servers} contradicts scenario {scenario!r} ({len(servers)} servers); "
                             "drop one of them")
        if num_agents is not None and num_agents != n_lbs:
            raise ValueError(f"--num-agents {num_agents} contradicts scenario {scenario!r} ({n_lbs} LBs); "
                             "drop one of them")
        label = scenario
    else:
        from marllb_env.backend import default_servers

        servers = [s.cpus for s in default_servers(num_servers)]
        n_lbs = num_agents if num_agents is not None else (1 if agent_type in SINGLE_AGENT_TYPES else 2)
        workload = dict(PAPER_POISSON)
        label = f"custom_{num_servers}x{n_lbs}"
    servers = [float(s) for s in servers]
    if agent_type in ("qmix", "i-sac", "s-sac") and n_lbs < 1:
        raise ValueError(f"{agent_type} needs at least one LB")

    own_trace = workload is not None and workload.get("kind") == "marllb_trace"
    if trace_type == "poisson" and own_trace:
        workload = dict(PAPER_POISSON)
    elif trace_type == "marllb" and not own_trace:
        name = trace or "rate_150"
        capacity = sum(s.capacity for s in as_server_specs(servers))
        workload = {"kind": "marllb_trace", "trace": name,
                    "time_scale": _trace_cpu_rate(name) / (rho * capacity)}
    elif trace_type == "marllb" and trace is not None:
        workload = {**workload, "trace": trace}
    elif trace_type == "wikibench":
        if not os.path.isfile(trace_path):
            raise ValueError(f"--trace-path {trace_path!r} does not exist")
        workload = {"kind": "wikibench", "path": os.path.abspath(trace_path)}
    if episode_steps is None:
        episode_steps = 800 if env_id is not None else 240  # the hard task's registered length; 60 s
    episode_steps = check_int("episode-steps", episode_steps, low=1)
    if env_id is not None and trace_type != "poisson":
        raise ValueError(f"scenario {scenario!r} has its own workload; --trace-type must be poisson")
    return Setup(agent_type, label, servers, n_lbs, workload, episode_steps, levels, env_id)


# ------------------------------------------------------------------------------------ baselines
def baselines(setup: Setup, oracles: bool = True) -> list[tuple[Any, dict[str, Any]]]:
    """Heuristic baselines of ``setup``'s family as ``(policy, env overrides)`` pairs.

    ``hidden_drift`` (:data:`HARD_ENV_ID`): :func:`marllb_env.benchmark.hard_baselines` (tuned SED variants)
    and :func:`~marllb_env.benchmark.hard_oracles` (SED with the true capacities).
    Multi-agent: every LB runs the same rule with capacity-proportional weights
    (:class:`marllb_env.multi_agent.StaticWeightsPolicy`): SED, LSQ, WCMP and the oracles GSQ
    (global true queue lengths) and SRT (true remaining job sizes). Single-agent (LB 0; the other
    LBs keep SED): :mod:`marllb_env.baselines` SED, LSQ, WCMP and the oracles GSQ, SRT.
    """
    if setup.family == "multi":
        from marllb_env.multi_agent import MultiLoadBalanceEnv, StaticWeightsPolicy

        rules = [("SED", "sed"), ("LSQ", "lsq"), ("WCMP", "wcmp")]
        if oracles:
            rules += [("GSQ (oracle)", "gsq"), ("SRT (oracle)", "srt")]
        out = []
        for name, mode in rules:
            env = MultiLoadBalanceEnv(**setup.env_kwargs(dispatch=mode))
            out.append((StaticWeightsPolicy(env, name=name), {"dispatch": mode}))
        return out
    if setup.hard:  # the task's tuned baselines and oracle, in the continuous action mode they were tuned in
        from marllb_env.benchmark import hard_baselines, hard_oracles

        pols = hard_baselines() + (hard_oracles() if oracles else [])
        return [(p, {"action_mode": "continuous", **p.env_kwargs}) for p in pols]
    from marllb_env import baselines as B

    pols = [B.SED(), B.LSQ(), B.WCMP()] + ([B.GSQ(), B.SRT()] if oracles else [])
    return [(p, dict(p.env_kwargs)) for p in pols]


def evaluate_setup(setup: Setup, policies: Sequence[Any], n_episodes: int, *, with_baselines: bool = True,
                   seed_base: int = EVAL_SEED_BASE) -> list:
    """Evaluate ``policies`` (and the baselines) with the shared harness on the same held-out seeds.

    Returns:
        list of :class:`lwmecps_gym.core.evaluation.EvaluationResult`, policies first.
    """
    from lwmecps_gym.core.evaluation import evaluate

    seeds = [seed_base + i for i in range(check_int("episodes", n_episodes, low=1))]
    results = [evaluate(lambda: setup.make_env(), p, seeds=seeds) for p in policies]
    if with_baselines:
        for pol, over in baselines(setup):
            results.append(evaluate(lambda over=over: setup.make_env(**over), pol, seeds=seeds))
    return results


def metrics_for(setup: Setup) -> list[str]:
    """The table's columns for ``setup``'s family."""
    if setup.family == "multi":
        return ["return", "fct_mean_s", "fct_p90_s", "jain_util"]
    return ["return", "fct_mean_s", "fct_p90_s", "jain_cpu_util"]


# -------------------------------------------------------------------------------- checkpoints
def meta_path(path: str) -> str:
    """The JSON file stored next to checkpoint ``path``."""
    return os.path.splitext(path)[0] + ".json"


def read_meta(path: str) -> dict[str, Any]:
    """The run metadata of checkpoint ``path`` (``extra`` of its JSON: ``agent_type``, ``setup``, ...).

    Raises:
        FileNotFoundError: no checkpoint or no JSON next to it.
        ValueError: the JSON was not written by ``marllb_env.train``.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"model {path!r} does not exist")
    jp = meta_path(path)
    if not os.path.exists(jp):
        raise FileNotFoundError(f"model {path!r} has no metadata file {jp!r} (written by marllb_env.train)")
    with open(jp) as fh:
        meta = json.load(fh)
    extra = meta.get("extra", {})
    if "setup" not in extra or "agent_type" not in extra:
        raise ValueError(f"{jp} was not written by marllb_env.train (no 'extra.setup')")
    return meta


class ScaledQMIXPolicy:
    """Greedy QMIX agents on ``JointEnv`` with the ``log1p`` observation transform used in training."""

    def __init__(self, learner: Any, name: str = "QMIX"):
        self.learner, self.name = learner, name

    def reset(self, seed: int | None = None) -> None:
        self.learner.reset_hidden()

    def act(self, obs: Any, info: dict[str, Any]) -> np.ndarray:
        o = np.log1p(np.asarray(obs, np.float32).reshape(self.learner.n_agents, -1))
        return self.learner.act(o).reshape(-1)


class SharedPPOPolicy:
    """One SB3 PPO policy acting for every LB of ``JointEnv`` (the joint observation is split per LB),
    with ``VecNormalize``'s observation normalisation ``clip((o - mean) / sqrt(var + eps), -c, c)``
    from statistics stored as numbers (no pickle)."""

    def __init__(self, model: Any, n_agents: int, obs_mean: Any = None, obs_var: Any = None,
                 clip_obs: float = 10.0, epsilon: float = 1e-8, name: str = "PPO (shared)"):
        self.model, self.n_agents, self.name = model, n_agents, name
        self.mean = None if obs_mean is None else np.asarray(obs_mean, np.float32)
        self.std = None if obs_var is None else np.sqrt(np.asarray(obs_var, np.float32) + epsilon)
        self.clip = clip_obs

    def reset(self, seed: int | None = None) -> None:
        pass

    def act(self, obs: Any, info: dict[str, Any]) -> np.ndarray:
        o = np.asarray(obs, np.float32).reshape(self.n_agents, -1)
        if self.mean is not None:
            o = np.clip((o - self.mean) / self.std, -self.clip, self.clip)
        a, _ = self.model.predict(o, deterministic=True)
        return np.asarray(a).reshape(-1)


def load_policy(path: str) -> tuple[Any, Setup, dict[str, Any]]:
    """Rebuild the greedy policy saved by ``marllb_env.train`` at ``path``.

    Returns:
        ``(policy, setup, meta)``; the policy follows :class:`lwmecps_gym.core.policy.Policy`.

    Raises:
        FileNotFoundError, ValueError: see :func:`read_meta`.
    """
    meta = read_meta(path)
    extra = meta["extra"]
    setup = Setup.from_json(extra["setup"])
    kind = extra["agent_type"]
    if kind in ("sac-gru", "i-sac", "s-sac"):
        from marllb_env.sac_gru import SACGRUAgents

        return SACGRUAgents.load(path), setup, meta
    if kind == "qmix":
        import torch

        from marllb_env.qmix import QMIX, QMIXConfig

        sd = torch.load(path, weights_only=True)
        learner = QMIX(**meta["dims"], config=QMIXConfig(**meta["config"]))
        learner.agent.load_state_dict(sd["agent"])
        learner.mixer.load_state_dict(sd["mixer"])
        return ScaledQMIXPolicy(learner), setup, meta
    from lwmecps_gym.core.policy import SB3Policy
    from lwmecps_gym.core.training import algorithm_class

    if kind == "ppo" and setup.family == "multi":
        model = algorithm_class("PPO").load(path, device="cpu")
        norm = meta.get("obs_norm") or {}
        return SharedPPOPolicy(model, setup.n_lbs, norm.get("mean"), norm.get("var"),
                               norm.get("clip_obs", 10.0), norm.get("epsilon", 1e-8)), setup, meta
    algo = "RecurrentPPO" if kind == "recurrent-ppo" else "PPO"
    model = algorithm_class(algo).load(path, device="cpu")
    return SB3Policy(model, name={"recurrent-ppo": "RecurrentPPO", "ppo": "PPO"}[kind]), setup, meta

