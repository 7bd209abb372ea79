"""The simulated edge cluster (default backend of the MEC envs).

See :class:`SimBackend` for the model; :mod:`lwmecps_gym.core.queueing` has the closed forms it
uses, :mod:`.workload` the per-episode demand and mobility, and :mod:`.batched` the scaling
layout's per-window model, written once over a batch of clusters (numba-compiled): the single
env's backend runs it for one cluster, the native vector env (:mod:`lwmecps_gym.envs.vector`) for many.
"""

from lwmecps_gym.backends.sim.cluster import SimBackend, SimConfig

__all__ = ["SimBackend", "SimConfig"]
