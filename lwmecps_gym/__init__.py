"""lwmecps_gym: MEC service placement and per-site replica scaling environments.

Importing the package registers (idempotently, string entry points):

| id | upstream alias(es) | env | ``max_episode_steps`` |
|---|---|---|---|
| ``lwmecps_gym/Placement-v0`` | ``lwmecps-v0`` | :class:`~lwmecps_gym.envs.placement.LWMECPSEnv` (placement, raw units) | 120 |
| ``lwmecps_gym/PlacementNormalized-v0`` | ``lwmecps-v2``, ``lwmecps-v1`` | :class:`~lwmecps_gym.envs.placement.LWMECPSEnv2` (placement, observations normalised to [0, 1]) | 120 |
| ``lwmecps_gym/Scaling-v0`` | ``lwmecps-v3`` | :class:`~lwmecps_gym.envs.scaling.LWMECPSEnv3` (per-site replica scaling) | 240 |

The two placement envs differ only in the observation's units (raw vs normalised); ``lwmecps-v1``
was upstream's 2024 name of ``lwmecps-v2``. The upstream ids stay registered for upstream's
users (Gymnasium then logs that ``lwmecps-v0`` is "out of date", since ``v3`` exists under the
same name). With the default 30 s control period, 120 steps are one simulated hour and 240 two.
Shared machinery for all three families lives in :mod:`lwmecps_gym.core`.
"""

from lwmecps_gym.core.registration import register_once

__version__ = "0.1.0"

_PLACEMENT = "lwmecps_gym.envs.placement:LWMECPSEnv"
_PLACEMENT_NORMALIZED = "lwmecps_gym.envs.placement:LWMECPSEnv2"
_SCALING = "lwmecps_gym.envs.scaling:LWMECPSEnv3"

#: id -> (entry point, episode length in control periods); upstream's ids are aliases of the namespaced ones.
IDS = {
    "lwmecps_gym/Placement-v0": (_PLACEMENT, 120),
    "lwmecps_gym/PlacementNormalized-v0": (_PLACEMENT_NORMALIZED, 120),
    "lwmecps_gym/Scaling-v0": (_SCALING, 240),
    "lwmecps_gym/ScalingHard-v0": ("lwmecps_gym.scenarios.hard:make_scaling_hard", 240),  # issue 8: hard scenario
    "lwmecps-v0": (_PLACEMENT, 120),
    "lwmecps-v1": (_PLACEMENT_NORMALIZED, 120),
    "lwmecps-v2": (_PLACEMENT_NORMALIZED, 120),
    "lwmecps-v3": (_SCALING, 240),
}
#: upstream id -> the namespaced id registering the same env.
UPSTREAM_ALIASES = {
    "lwmecps-v0": "lwmecps_gym/Placement-v0",
    "lwmecps-v1": "lwmecps_gym/PlacementNormalized-v0",
    "lwmecps-v2": "lwmecps_gym/PlacementNormalized-v0",
    "lwmecps-v3": "lwmecps_gym/Scaling-v0",
}
#: Episode lengths (control periods) registered for each id.
MAX_EPISODE_STEPS = {env_id: steps for env_id, (_, steps) in IDS.items()}

#: ids with a native batched vector env (``gymnasium.make_vec(id, n, vectorization_mode="vector_entry_point")``)
VECTOR_ENTRY_POINTS = {
    "lwmecps_gym/Scaling-v0": "lwmecps_gym.envs.vector:ScalingVectorEnv",
    "lwmecps-v3": "lwmecps_gym.envs.vector:ScalingVectorEnv",
}

for _id, (_entry, _steps) in IDS.items():
    register_once(_id, _entry, max_episode_steps=_steps, vector_entry_point=VECTOR_ENTRY_POINTS.get(_id))
