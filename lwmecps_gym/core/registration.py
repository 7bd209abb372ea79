"""Idempotent Gymnasium registration.

Gymnasium 1.x has no plugin entry points: packages register at import. Vector
env workers re-import the package, so registering must be a no-op the second
time (re-registering would log "Overriding environment ...").
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym


def register_once(env_id: str, entry_point: str, **kwargs: Any) -> None:
    """Register ``env_id`` with a string ``entry_point`` unless it is already registered."""
    if env_id in gym.registry:
        return
    gym.register(id=env_id, entry_point=entry_point, **kwargs)
