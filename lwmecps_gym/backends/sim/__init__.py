"""The simulated edge cluster (default backend of the MEC envs).

See :class:`SimBackend` for the model; :mod:`lwmecps_gym.core.queueing` has the closed forms it
uses and :mod:`.workload` the per-episode demand and mobility. One implementation, in Python.
"""

from lwmecps_gym.backends.sim.cluster import SimBackend, SimConfig

__all__ = ["SimBackend", "SimConfig"]
