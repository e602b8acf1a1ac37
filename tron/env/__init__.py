"""Tron environments over the batched engine.

- ``TronEnv``: a gymnasium ``Env``, one learner against opponent policies (``Tron-v0``).
- ``TronParallelEnv``: every player an agent, PettingZoo's parallel API (duck-typed; pettingzoo
  itself is optional).
- ``TronVectorEnv``: a gymnasium ``VectorEnv`` over one ``TronBatch``, learner-vs-opponents or
  all players (self-play), with autoreset, per-env seeding and map rotation.

Opponents are ``Policy`` objects (``act(batch, seat, games)``, as ``agents`` implement it) or
plain functions; ``RandomPolicy`` is the default.
"""

from tron.env.parallel import TronParallelEnv
from tron.env.policy import FunctionPolicy, Policy, PolicyFn, RandomPolicy, as_policy
from tron.env.single import TronEnv
from tron.env.vector import TronVectorEnv

__all__ = [
    "FunctionPolicy",
    "Policy",
    "PolicyFn",
    "RandomPolicy",
    "TronEnv",
    "TronParallelEnv",
    "TronVectorEnv",
    "as_policy",
]
