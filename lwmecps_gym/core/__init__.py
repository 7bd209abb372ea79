"""Shared core of the three environment families.

Rooms:

* :mod:`.backend`    -- backend protocol style and the error types backends raise.
* :mod:`.seeding`    -- independent RNG streams (workload vs. system) from one seed.
* :mod:`.validation` -- argument checks that raise errors naming the parameter.
* :mod:`.policy`     -- the policy interface ``act(obs, info) -> action``.
* :mod:`.evaluation` -- the one evaluation harness and its summary table.
* :mod:`.plotting`   -- comparison plots of evaluation results as Figures (needs ``matplotlib``).
* :mod:`.optional`   -- lazy imports of optional dependencies that name the extra to install.
* :mod:`.registration` -- idempotent Gymnasium registration.
* :mod:`.retry`      -- retry-with-backoff for real backends (needs ``tenacity``).

Nothing here imports an env family, torch, SB3, kubernetes or Prometheus.
"""

from lwmecps_gym.core.backend import BackendError, PermanentBackendError, TransientBackendError
from lwmecps_gym.core.evaluation import EvaluationResult, compare_table, evaluate
from lwmecps_gym.core.policy import FunctionPolicy, Policy, RandomPolicy, SB3Policy, as_policy
from lwmecps_gym.core.seeding import RngStreams, make_streams

__all__ = [
    "BackendError",
    "PermanentBackendError",
    "TransientBackendError",
    "EvaluationResult",
    "compare_table",
    "evaluate",
    "FunctionPolicy",
    "Policy",
    "RandomPolicy",
    "SB3Policy",
    "as_policy",
    "RngStreams",
    "make_streams",
]
