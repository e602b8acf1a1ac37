"""Tron (light cycles): Google AI Challenge 2010 rules, a batched numpy engine, maps, environments.

Importing ``tron`` registers the gymnasium environment ``Tron-v0`` (``tron.env.TronEnv``; its
vector entry point is ``tron.env.TronVectorEnv``), so ``gymnasium.make("Tron-v0")`` and
``gymnasium.make_vec("Tron-v0", num_envs=8, vectorization_mode="vector_entry_point")`` work. The
environment modules themselves load on first use.
"""

import gymnasium

from tron.maps import Map
from tron.rules import Cause, Direction, TronBatch

if "Tron-v0" not in gymnasium.registry:
    gymnasium.register(
        id="Tron-v0",
        entry_point="tron.env:TronEnv",
        vector_entry_point="tron.env:TronVectorEnv",
    )

__all__ = ["Cause", "Direction", "Map", "TronBatch"]
