"""faas_gym: FaaS autoscaling environments (OpenFaaS on Kubernetes), simulated or real.

Importing the package registers (idempotently):

* ``FaaSTrainGym-v1`` -- the upstream FaaSTrainGym name and shape: replica deltas -5..+5,
  1-10 replicas, 30 s intervals, 10 steps per episode.
* ``faas_gym/Autoscaling-v0`` -- the clean default: deltas {-1, 0, +1}, 1-16 replicas, 15 s
  intervals (the HPA sync period), 240 steps (1 h) of an Azure-derived OrcBench workload.
* ``faas_gym/AutoscalingDay-v0`` -- 24 h of an OrcBench workload shaped by a diurnal cycle,
  60 s intervals, 1440 steps.
* ``faas_gym/AutoscalingBursty-v0`` -- the hard scenario of the benchmark (``faas_gym.benchmark``):
  on/off bursts of OrcBench model 16 (Azure functions idle for minutes, then bursts that last a
  few intervals), 15 s cold starts, deltas {-4, -1, 0, +1, +4}, 240 steps of 15 s; runs the exact
  request-level simulator (``model="des"``).

All three use the simulator by default (``backend="sim"``); ``backend="openfaas"`` acts on a
real function. ``import faas_gym`` does not import kubernetes, prometheus_api_client, torch
or stable_baselines3.
"""

from lwmecps_gym.core.registration import register_once

__version__ = "0.1.0"

ENTRY_POINT = "faas_gym.env:FaasAutoscalingEnv"
#: The native batched vector env (fluid model): ``gymnasium.make_vec(id, N, vectorization_mode="vector_entry_point")``.
VECTOR_ENTRY_POINT = "faas_gym.vector:FaasVectorEnv"

#: The day scenario's workload: OrcBench model 0 at 16 requests/s at the 14:00 peak, thinned by a
#: diurnal profile of amplitude 0.6 (mean 10 requests/s, trough 4 requests/s).
DAY_WORKLOAD = {
    "kind": "diurnal_modulation",
    "base": {"kind": "orcbench", "model": 0, "mean_rps": 16.0},
    "amplitude": 0.6,
}

#: The bursty scenario: OrcBench model 16 (93 Azure functions; inter-arrival SCV 464) rescaled to a
#: mean of 8 requests/s keeps the model's on/off shape at the 15 s interval: 41 % of intervals empty,
#: bursts of up to ~3x the mean that persist (lag-1 autocorrelation of interval counts 0.58); its own
#: execution times (clipped at 5 s); 15 s cold starts (Knative's measured 10-15 s). The exact
#: request-level model: the fluid model misses the bursts' within-interval clumping (docs/faas_gym.md).
BURSTY_SIM = {
    "workload": {"kind": "orcbench", "model": 16, "mean_rps": 8.0},
    "service_time": {"kind": "orcbench", "model": 16, "max_s": 5.0},
    "cold_start_s": 15.0,
    "model": "des",
}

register_once(
    "FaaSTrainGym-v1",
    ENTRY_POINT,
    max_episode_steps=10,
    kwargs={"deltas": list(range(-5, 6)), "min_replicas": 1, "max_replicas": 10, "interval_s": 30.0},
    vector_entry_point=VECTOR_ENTRY_POINT,
)
register_once(
    "faas_gym/Autoscaling-v0", ENTRY_POINT, max_episode_steps=240, kwargs={}, vector_entry_point=VECTOR_ENTRY_POINT
)
register_once(
    "faas_gym/AutoscalingDay-v0",
    ENTRY_POINT,
    max_episode_steps=1440,
    vector_entry_point=VECTOR_ENTRY_POINT,
    kwargs={"interval_s": 60.0, "sim_config": {"workload": DAY_WORKLOAD}},
)

register_once(
    "faas_gym/AutoscalingBursty-v0",
    ENTRY_POINT,
    max_episode_steps=240,
    kwargs={"sim_config": BURSTY_SIM, "deltas": [-4, -1, 0, 1, 4]},
)

_LAZY = {
    "FaasAutoscalingEnv": "faas_gym.env",
    "SimBackend": "faas_gym.backends.sim",
    "SimConfig": "faas_gym.backends.sim",
    "FaasBackend": "faas_gym.backends.base",
    "FaasMeasurement": "faas_gym.backends.base",
    "FaasVectorEnv": "faas_gym.vector",
}


def __getattr__(name: str):
    """``faas_gym.FaasAutoscalingEnv`` etc. without importing them at package import."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'faas_gym' has no attribute {name!r}")


__all__ = ["FaasAutoscalingEnv", "FaasVectorEnv", "SimBackend", "SimConfig", "FaasBackend", "FaasMeasurement", "DAY_WORKLOAD", "BURSTY_SIM"]
