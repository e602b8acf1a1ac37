"""Opponent policies for the environments: the ``Policy`` protocol and a random legal-move policy.

An environment asks a policy for the moves of one seat in many games at once, exactly like an
``agents.base.Agent`` (which satisfies ``Policy`` without importing anything from here; ``tron``
never imports ``agents``). A plain function ``f(batch, seat, games) -> directions`` works too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from tron.rules import EMPTY, TronBatch


@runtime_checkable
class Policy(Protocol):
    """Picks moves for one seat of a batch of games.

    Optional hooks the environments call when present: ``reset(games)`` whenever games (re)start,
    and ``seed(seed)`` when the environment is reset with a seed (so seeded runs repeat).
    """

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.integer]:
        """``Direction`` values for player ``seat`` in each of ``games`` (running, seat alive)."""
        ...


#: A plain function used as a policy.
PolicyFn = Callable[[TronBatch, int, NDArray[np.intp]], NDArray[np.integer]]


class FunctionPolicy:
    """Wraps a function ``f(batch, seat, games) -> directions`` as a ``Policy``."""

    def __init__(self, fn: PolicyFn) -> None:
        self.fn = fn

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.integer]:
        return self.fn(batch, seat, games)

    def __repr__(self) -> str:
        return f"FunctionPolicy({getattr(self.fn, '__name__', self.fn)!r})"


def as_policy(obj: Policy | PolicyFn) -> Policy:
    """``obj`` as a ``Policy``: objects with ``act`` are used as they are, functions are wrapped.

    Raises:
        TypeError: ``obj`` has no ``act`` method and is not callable.
    """
    if isinstance(obj, Policy):
        return obj
    if callable(obj):
        return FunctionPolicy(obj)
    raise TypeError(
        f"an opponent must have an act(batch, seat, games) method or be a function "
        f"f(batch, seat, games) -> directions, got {type(obj).__name__}"
    )


#: Opponents: one policy for every opponent seat, or one per opponent (in seat order).
OpponentSpec = Policy | PolicyFn | Sequence[Policy | PolicyFn] | None


def opponent_list(opponents: OpponentSpec, n_opponents: int) -> list[Policy]:
    """One policy per opponent slot (slot ``j``: the ``j``-th seat that is not the learner's)."""
    if opponents is None:
        return [RandomPolicy()] * n_opponents
    if isinstance(opponents, Sequence):
        if len(opponents) != n_opponents:
            raise ValueError(
                f"got {len(opponents)} opponents for {n_opponents} opponent seats: pass one "
                "policy (it plays every opponent seat) or one per opponent seat"
            )
        return [as_policy(o) for o in opponents]
    return [as_policy(opponents)] * n_opponents


def unique(policies: Sequence[Policy]) -> list[Policy]:
    """The distinct policy objects (one policy may play several seats), in order."""
    return list({id(p): p for p in policies}.values())


def reset_policy(policy: Policy, games: NDArray[np.intp]) -> None:
    """Call ``policy.reset(games)`` if the policy has that hook."""
    hook = getattr(policy, "reset", None)
    if hook is not None:
        hook(games)


def seed_policy(policy: Policy, seed: int) -> None:
    """Call ``policy.seed(seed)`` if the policy has that hook."""
    hook = getattr(policy, "seed", None)
    if hook is not None:
        hook(seed)


class RandomPolicy:
    """Moves uniformly at random onto an empty neighbouring square; any direction when boxed in.

    "Legal-ish": a move onto an empty square can still crash head-on into an opponent moving onto
    the same square. This is the environments' default opponent.
    """

    name = "random"

    def __init__(self, seed: int | None = None) -> None:
        """Create the policy; ``seed`` makes its choices repeat."""
        self._rng = np.random.default_rng(seed)

    def seed(self, seed: int | None) -> None:
        """Restart the random stream."""
        self._rng = np.random.default_rng(seed)

    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        """A random move onto an empty square for ``seat`` in each of ``games``."""
        g = np.asarray(games, dtype=np.int64)
        if g.size == 1:
            return self._act_one(batch, seat, int(g[0]))
        board = batch.height * batch.width
        # (4, G) layouts: numpy's inner loops run over the games, not over the four directions.
        dest = (g * board + batch.heads[g, seat])[None, :] + batch.offsets[:, None]
        free = np.take(batch.cells, dest) == EMPTY
        keys = self._rng.random(dest.shape, dtype=np.float32)
        keys += free
        # The argmax over the four directions, pairwise: numpy's argmax along a short axis is
        # several times slower than these whole-row operations.
        k_n, k_e, k_s, k_w = keys
        e_over_n = k_e > k_n
        w_over_s = k_w > k_s
        south_half = np.maximum(k_s, k_w) > np.maximum(k_n, k_e)
        return np.where(south_half, w_over_s.view(np.int8) + np.int8(2), e_over_n.view(np.int8))

    def _act_one(self, batch: TronBatch, seat: int, game: int) -> NDArray[np.int8]:
        """``act`` for one game in plain Python (a single env's opponent), a few times faster."""
        cells = batch.cells[game].reshape(-1)
        head = int(batch.heads[game, seat])
        free = [d for d, off in enumerate(batch.offsets.tolist()) if cells[head + off] == EMPTY]
        moves = free or [0, 1, 2, 3]
        return np.array([moves[int(self._rng.random() * len(moves))]], dtype=np.int8)
