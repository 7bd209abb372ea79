"""marllb_env: MARLLB-style L4 load balancing environments (single- and multi-agent).

* :class:`LoadBalanceEnv` (``gymnasium.make("marllb_env/LoadBalance-v0")``): one LB's
  per-server SED weights every 250 ms on a flow-level simulator (default) or the
  MARLLB shared-memory data plane.
* :func:`parallel_env`: the multi-agent PettingZoo env (imports pettingzoo lazily).
* :mod:`marllb_env.sim` (flow simulator), :mod:`.reservoir`, :mod:`.traces`,
  :mod:`.rewards`, :mod:`.scenarios`, :mod:`.baselines`, :mod:`.backend`.

Registered ids: ``marllb_env/LoadBalance-v0`` (default scenario, 4 servers),
``marllb_env/LoadBalancePaper-v0`` (paper's moderate scale seen by one of 2 LBs),
``marllb_env/LoadBalanceTrace-v0`` (MARLLB trace rate_150 replay).
"""

from typing import Any

from gymnasium.envs.registration import WrapperSpec

from lwmecps_gym.core.registration import register_once
from marllb_env.backend import LBBackend, LBMeasurement, SimBackend
from marllb_env.env import MAX_EPISODE_STEPS, EpisodeMetricsInfo, LoadBalanceEnv, WeightCodec
from marllb_env.sim import FlowSimulator, ServerSpec

#: every id: TimeLimit(MAX_EPISODE_STEPS), then the episode's FCT summary in the last info
_EPISODE = {
    "max_episode_steps": MAX_EPISODE_STEPS,
    "additional_wrappers": (WrapperSpec("EpisodeMetricsInfo", "marllb_env.env:EpisodeMetricsInfo", {}),),
}
register_once("marllb_env/LoadBalance-v0", "marllb_env.env:LoadBalanceEnv", **_EPISODE)
register_once(
    "marllb_env/LoadBalancePaper-v0", "marllb_env.env:LoadBalanceEnv", kwargs={"scenario": "paper_moderate"}, **_EPISODE
)
register_once(
    "marllb_env/LoadBalanceTrace-v0", "marllb_env.env:LoadBalanceEnv", kwargs={"scenario": "trace_rate_150"}, **_EPISODE
)
register_once("marllb_env/LoadBalanceHard-v0", "marllb_env.drift:HiddenCapacityEnv", kwargs={"action_mode": "continuous"}, **{**_EPISODE, "max_episode_steps": 800})


def parallel_env(**kwargs: Any):
    """The multi-agent PettingZoo ``ParallelEnv`` (see ``marllb_env.multi_agent``); imports pettingzoo."""
    from marllb_env import multi_agent  # lazy: pettingzoo stays out of `import marllb_env`

    return multi_agent.parallel_env(**kwargs)


__all__ = [
    "FlowSimulator",
    "LBBackend",
    "LBMeasurement",
    "EpisodeMetricsInfo",
    "LoadBalanceEnv",
    "MAX_EPISODE_STEPS",
    "ServerSpec",
    "SimBackend",
    "WeightCodec",
    "parallel_env",
]
