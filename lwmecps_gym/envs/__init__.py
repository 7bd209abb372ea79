"""The MEC envs: ``lwmecps-v0``/``v2`` (placement, :mod:`.placement`) and ``lwmecps-v3`` (scaling, :mod:`.scaling`)."""
