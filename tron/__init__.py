"""Tron (light cycles): Google AI Challenge 2010 rules, a batched numpy engine, maps, environments."""

from tron.maps import Map
from tron.rules import Cause, Direction, TronBatch

__all__ = ["Cause", "Direction", "Map", "TronBatch"]
