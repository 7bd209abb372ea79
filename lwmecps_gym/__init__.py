"""lwmecps_gym: MEC service placement and per-site replica scaling environments.

Importing the package registers the ids ``lwmecps-v0`` .. ``lwmecps-v3``
(idempotently). Shared machinery for all three families lives in
:mod:`lwmecps_gym.core`.
"""

__version__ = "0.1.0"
