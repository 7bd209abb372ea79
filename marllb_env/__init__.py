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

from lwmecps_gym.core.registration import register_once
from marllb_env.backend import LBBackend, LBMeasurement, SimBackend
from marllb_env.env import LoadBalanceEnv, WeightCodec
from marllb_env.sim import FlowSimulator, ServerSpec

register_once("marllb_env/LoadBalance-v0", "marllb_env.env:LoadBalanceEnv")
register_once("marllb_env/LoadBalancePaper-v0", "marllb_env.env:LoadBalanceEnv", kwargs={"scenario": "paper_moderate"})
register_once(
    "marllb_env/LoadBalanceTrace-v0", "marllb_env.env:LoadBalanceEnv", kwargs={"scenario": "trace_rate_150"}
)


def parallel_env(**kwargs: Any):
    """The multi-agent PettingZoo ``ParallelEnv`` (see ``marllb_env.multi_agent``); imports pettingzoo."""
    from marllb_env import multi_agent  # lazy: pettingzoo stays out of `import marllb_env`

    return multi_agent.parallel_env(**kwargs)


__all__ = [
    "FlowSimulator",
    "LBBackend",
    "LBMeasurement",
    "LoadBalanceEnv",
    "ServerSpec",
    "SimBackend",
    "WeightCodec",
    "parallel_env",
]
