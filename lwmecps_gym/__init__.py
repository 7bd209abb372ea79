"""lwmecps_gym: MEC service placement and per-site replica scaling environments.

Importing the package registers (idempotently, string entry points):

| id | env | ``max_episode_steps`` |
|---|---|---|
| ``lwmecps-v0`` | :class:`~lwmecps_gym.envs.placement.LWMECPSEnv` (placement, raw units) | 120 |
| ``lwmecps-v1`` | alias of ``lwmecps-v2`` (upstream's 2024 name) | 120 |
| ``lwmecps-v2`` | :class:`~lwmecps_gym.envs.placement.LWMECPSEnv2` (placement, normalised) | 120 |
| ``lwmecps-v3`` | :class:`~lwmecps_gym.envs.scaling.LWMECPSEnv3` (per-site replica scaling) | 240 |

With the default 30 s control window, 120 steps are one simulated hour and 240 two.
Shared machinery for all three families lives in :mod:`lwmecps_gym.core`.
"""

from lwmecps_gym.core.registration import register_once

__version__ = "0.1.0"

#: Episode lengths (control windows) registered for each id.
MAX_EPISODE_STEPS = {"lwmecps-v0": 120, "lwmecps-v1": 120, "lwmecps-v2": 120, "lwmecps-v3": 240}

register_once("lwmecps-v0", "lwmecps_gym.envs.placement:LWMECPSEnv", max_episode_steps=MAX_EPISODE_STEPS["lwmecps-v0"])
register_once("lwmecps-v1", "lwmecps_gym.envs.placement:LWMECPSEnv2", max_episode_steps=MAX_EPISODE_STEPS["lwmecps-v1"])
register_once("lwmecps-v2", "lwmecps_gym.envs.placement:LWMECPSEnv2", max_episode_steps=MAX_EPISODE_STEPS["lwmecps-v2"])
register_once("lwmecps-v3", "lwmecps_gym.envs.scaling:LWMECPSEnv3", max_episode_steps=MAX_EPISODE_STEPS["lwmecps-v3"])
register_once("lwmecps_gym/ScalingHard-v0", "lwmecps_gym.scenarios.hard:make_scaling_hard", max_episode_steps=240)
