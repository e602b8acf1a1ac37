"""The Agent interface: everything that picks moves (bots, search, networks, programs, humans).

An agent plays one seat in many games of a ``TronBatch`` at once. Batched acting lets a network pick
moves for thousands of games in one forward pass; ``reset`` lets an agent that keeps per-game state
(a search tree, an external process, a human's key buffer) drop it when a game restarts. One agent
object serves one batch at a time; game indices are indices into that batch.

An agent that cannot produce a move for a game (an external program that crashed, timed out or
broke the protocol) answers ``FORFEIT`` for it; the caller removes that player through
``TronBatch.step(forfeit=...)`` and may ask ``forfeit_reason`` why.
"""

from __future__ import annotations

import abc

import numpy as np
from numpy.typing import NDArray

from tron.rules import TronBatch

#: The move an agent returns for a game it gives up (never a ``Direction``).
FORFEIT = -1


class Agent(abc.ABC):
    """Picks moves for one seat of a batch of Tron games.

    Call order: ``reset(games)`` whenever games (re)start (the env and the arena do this, also at
    the very start), then ``act`` once per turn for the games still running, and ``close`` at the
    end (it releases processes and windows; a closed agent may not act again).
    """

    #: A short display name (tables, the window's scoreboard, ratings).
    name: str = "agent"

    @abc.abstractmethod
    def act(self, batch: TronBatch, seat: int, games: NDArray[np.intp]) -> NDArray[np.int8]:
        """Choose a move for player ``seat`` in each of ``games``.

        Args:
            batch: the games being played (read it, never step it).
            seat: the player this agent plays (0..P-1).
            games: indices of running games in which ``seat`` is alive.

        Returns:
            ``int8`` array of ``Direction`` values, one per entry of ``games``, or ``FORFEIT``
            for a game the agent gives up.
        """

    def reset(self, games: NDArray[np.intp]) -> None:  # noqa: B027 - stateless agents need nothing
        """Games ``games`` of the batch have just (re)started; forget anything kept about them."""

    def forfeit_reason(self, game: int) -> str:
        """Why the agent answered ``FORFEIT`` in game ``game`` (one line, for match records)."""
        return "forfeited"

    def close(self) -> None:  # noqa: B027 - only agents holding resources override it
        """Release processes, files and windows held by the agent."""
