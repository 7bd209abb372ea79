"""Flow-level discrete-event simulator of load balancers in front of processor-sharing servers.

Public API (stable; the multi-agent env and the shared-memory data plane build on it):

* :class:`FlowSimulator` -- ``reset(seed | workload_rng/system_rng)`` (``seed`` through
  :func:`lwmecps_gym.core.seeding.streams_from_seed`), ``set_weights(lb, w)``,
  ``set_dispatch(mode, lb)``, ``set_capacity(server, cpus, speed, at)``, ``set_active(server, flag, at)``,
  ``run_until(t)`` / ``advance(dt)``, ``features(lb) -> (n_servers, 11)``, ``features_all()``,
  ``n_flow_on(lb)``, ``reservoir(lb, server, kind)``, ``active_mask()``, ``ground_truth()``,
  ``busy_core_seconds()``, ``flows_in_system()``, ``counters()``, ``flow_records()``, ``workload_exhausted``,
  ``snapshot(lb) -> LBSnapshot`` (everything one LB's backend reports, one cheap pass).
* :class:`ServerSpec`, :class:`FlowRecords`, :class:`LBSnapshot`, :data:`FEATURE_NAMES`, :data:`GROUND_TRUTH_NAMES`.
* :data:`DISPATCH_MODES`, :data:`ORACLE_MODES` (see :mod:`marllb_env.sim.dispatch`).
"""

from marllb_env.sim.dispatch import DISPATCH_MODES, ORACLE_MODES, WEIGHTED_MODES, build_alias, maglev_table
from marllb_env.sim.simulator import (
    COMPLETED,
    FEATURE_NAMES,
    GROUND_TRUTH_NAMES,
    IN_PROGRESS,
    REJECTED,
    FlowRecords,
    FlowSimulator,
    LBSnapshot,
    ServerSpec,
    as_server_specs,
)

__all__ = [
    "COMPLETED",
    "DISPATCH_MODES",
    "FEATURE_NAMES",
    "GROUND_TRUTH_NAMES",
    "IN_PROGRESS",
    "ORACLE_MODES",
    "REJECTED",
    "WEIGHTED_MODES",
    "FlowRecords",
    "FlowSimulator",
    "LBSnapshot",
    "ServerSpec",
    "as_server_specs",
    "build_alias",
    "maglev_table",
]
