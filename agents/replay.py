"""Experience replay for DQN over a vector env: each frame stored once, n-step targets at sampling.

A frame-stacked observation (Atari: 4 frames of 84x84) shares 3 of its 4 frames with the previous
one, and a transition's next observation is the following step's observation. Storing both stacks
per transition (the naive layout) keeps every frame 8 times. This buffer stores each step's newest
frame once, in a timeline per sub-environment, and rebuilds stacks and next observations from
indices when it samples:

==========================  ===============================  ===============================
1M Atari transitions        naive (obs + next_obs stacks)     this buffer (one frame a step)
==========================  ===============================  ===============================
frames                      2 x 4 x 84 x 84 B = 56.4 GB       84 x 84 B = 7.06 GB
actions, rewards, flags     13 MB                             16 MB
==========================  ===============================  ===============================

``ReplayBuffer.nbytes`` gives the exact figure for a configuration. The arrays are made by
``np.zeros``, so the operating system commits memory page by page as the buffer fills.

Timeline. Row ``t`` of sub-environment ``e`` holds what ``add`` was given for one step: the frame
of the observation acted on, the action, the reward and the episode flags of that step. Under
gymnasium's NEXT_STEP autoreset the step after an episode ends only resets the env; its row holds
the episode's *final* observation (needed to bootstrap a truncated episode) and is marked invalid,
so it is never sampled as a transition. The row after it holds the first observation of the next
episode.

Frame stacks. With ``frame_stack = k > 1`` the observation is ``(k, *frame_shape)`` and only its
last frame is stored; the stack of row ``t`` is rows ``t-k+1 .. t``, where rows of an earlier
episode are replaced by padding, so no frame of the previous episode leaks into a stack:

- ``padding="zero"``: all-zero frames, what ale-py's ``AtariVectorEnv`` shows at a reset;
- ``padding="first"``: copies of the episode's first frame, what gymnasium's
  ``FrameStackObservation`` (``padding_type="reset"``) shows.

``add`` checks every episode's first observation against the chosen padding and fails loudly if the
env pads its stacks otherwise, so stored and rebuilt stacks agree exactly.

n-step targets. A sample at row ``t`` carries ``G = sum_{j<m} gamma^j r_{t+j}`` and the discount
``gamma^m`` applied to the bootstrap value of the observation at row ``t+m``, where ``m = n`` or
fewer when the episode ends first (``m = j+1`` for an end at step ``t+j``). A terminated episode
does not bootstrap (discount 0); a truncated one bootstraps from its final observation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

Padding = Literal["zero", "first"]


@dataclass(frozen=True)
class ReplaySample:
    """A minibatch of n-step transitions. B is the batch size."""

    obs: NDArray[Any]  # (B, *obs_shape) observations acted on
    actions: NDArray[np.int64]  # (B,)
    returns: NDArray[np.float32]  # (B,) discounted reward sums G over m <= n steps
    discounts: NDArray[np.float32]  # (B,) gamma^m, 0 where the episode terminated
    next_obs: NDArray[Any]  # (B, *obs_shape) observations m steps later (bootstrap)
    rows: NDArray[np.int64]  # (B,) timeline row t of each sample (absolute, not wrapped)
    envs: NDArray[np.int64]  # (B,) sub-environment of each sample


class ReplayBuffer:
    """A circular buffer of ``capacity`` transitions from a vector env of ``num_envs`` envs.

    Args:
        capacity: transitions held in all (``capacity // num_envs`` rows per sub-environment).
        num_envs: sub-environments of the vector env; ``add`` takes one step of all of them.
        obs_shape: shape of one observation.
        obs_dtype: dtype of observations (``uint8`` frames are stored as such).
        frame_stack: ``k``: observations are stacks of ``k`` frames along their first axis and only
            the newest frame is stored; 1 stores whole observations.
        n_step: ``n`` of the n-step targets.
        gamma: discount of the n-step targets.
        padding: how stacks are padded before an episode's first frame (see the module docstring).
        rng: random generator for sampling (the learner's, so that its state is checkpointed).

    Raises:
        ValueError: a capacity too small for the stacks and n-step windows, or an observation shape
            that does not start with ``frame_stack``.
    """

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype[Any] | type,
        *,
        frame_stack: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
        padding: Padding = "zero",
        rng: np.random.Generator | None = None,
    ) -> None:
        if frame_stack < 1 or n_step < 1:
            raise ValueError(f"frame_stack and n_step must be >= 1, got {frame_stack}, {n_step}")
        if frame_stack > 1 and (len(obs_shape) < 2 or obs_shape[0] != frame_stack):
            raise ValueError(
                f"observations of shape {obs_shape} are not stacks of {frame_stack} frames along "
                "their first axis; set frame_stack=1 to store whole observations"
            )
        rows = capacity // num_envs
        if rows < frame_stack + n_step + 1:
            raise ValueError(
                f"capacity {capacity} gives {rows} rows per env for {num_envs} envs; need at least "
                f"frame_stack + n_step + 1 = {frame_stack + n_step + 1}"
            )
        if padding not in ("zero", "first"):
            raise ValueError(f"padding must be 'zero' or 'first', got {padding!r}")
        self.rows = rows
        self.num_envs = num_envs
        self.obs_shape = tuple(obs_shape)
        self.frame_stack = frame_stack
        self.n_step = n_step
        self.gamma = gamma
        self.padding: Padding = padding
        self.rng = rng if rng is not None else np.random.default_rng()
        frame_shape = self.obs_shape[1:] if frame_stack > 1 else self.obs_shape
        self.frames = np.zeros((rows, num_envs, *frame_shape), dtype=obs_dtype)
        self.actions = np.zeros((rows, num_envs), dtype=np.int64)
        self.rewards = np.zeros((rows, num_envs), dtype=np.float32)
        self.terminated = np.zeros((rows, num_envs), dtype=bool)
        self.truncated = np.zeros((rows, num_envs), dtype=bool)
        # valid: the row is a real transition (not the reset step after an episode end).
        self.valid = np.zeros((rows, num_envs), dtype=bool)
        # first: the row's observation is the first of an episode (stacks stop here).
        self.first = np.zeros((rows, num_envs), dtype=bool)
        self.steps_added = 0  # rows written per env, ever (the absolute row of the next add)
        self._prev_done = np.zeros(num_envs, dtype=bool)
        self._prev_valid = np.zeros(num_envs, dtype=bool)

    @property
    def capacity(self) -> int:
        """Transitions the buffer holds when full."""
        return self.rows * self.num_envs

    def __len__(self) -> int:
        """Transitions stored (valid or not)."""
        return min(self.steps_added, self.rows) * self.num_envs

    @property
    def nbytes(self) -> int:
        """Bytes of all arrays once the buffer is full."""
        arrays = (
            self.frames,
            self.actions,
            self.rewards,
            self.terminated,
            self.truncated,
            self.valid,
            self.first,
        )
        return sum(a.nbytes for a in arrays)

    def add(
        self,
        obs: NDArray[Any],
        actions: NDArray[Any],
        rewards: NDArray[Any],
        terminated: NDArray[np.bool_],
        truncated: NDArray[np.bool_],
    ) -> None:
        """Store one step of every sub-environment.

        Call it after each ``env.step`` with the observations the actions were taken at and what
        the step returned (the next observations arrive as the next call's ``obs``). The first call
        starts an episode in every env; later episode starts are read from the flags (NEXT_STEP
        autoreset: the step after an end is a reset step).

        Raises:
            ValueError: an episode's first observation that is not padded as ``padding`` says.
        """
        row = self.steps_added % self.rows
        if self.steps_added == 0:
            valid = np.ones(self.num_envs, dtype=bool)
            first = np.ones(self.num_envs, dtype=bool)
        else:
            # After an end the env resets; the row after that reset step starts the next episode.
            valid = ~self._prev_done
            first = ~self._prev_valid
        if self.frame_stack > 1:
            if first.any():
                self._check_padding(obs[first])
            self.frames[row] = obs[:, -1]
        else:
            self.frames[row] = obs
        self.actions[row] = actions
        self.rewards[row] = rewards
        self.terminated[row] = terminated
        self.truncated[row] = truncated
        self.valid[row] = valid
        self.first[row] = first
        self._prev_done = np.logical_or(terminated, truncated) & valid
        self._prev_valid = valid
        self.steps_added += 1

    def _check_padding(self, stacks: NDArray[Any]) -> None:
        head = stacks[:, :-1]
        expected = np.zeros_like(head) if self.padding == "zero" else stacks[:, -1:]
        if not np.array_equal(head, np.broadcast_to(expected, head.shape)):
            other = "first" if self.padding == "zero" else "zero"
            raise ValueError(
                f"an episode's first observation is not padded with {self.padding!r} frames: build "
                f"the buffer with padding={other!r} if the env pads that way, or frame_stack=1 if "
                "observations are not frame stacks"
            )

    def sampleable_rows(self) -> tuple[int, int]:
        """The absolute rows ``[lo, hi]`` a sample may start at (``lo > hi`` when none).

        The newest ``n_step`` rows wait for their n-step window, and after the buffer wraps the
        oldest ``frame_stack - 1`` rows have lost the frames their stacks need.
        """
        hi = self.steps_added - 1 - self.n_step
        lo = max(0, self.steps_added - self.rows) + self.frame_stack - 1
        if self.steps_added <= self.rows:
            lo = 0
        return lo, hi

    def can_sample(self) -> bool:
        """Whether at least one valid transition can be sampled."""
        lo, hi = self.sampleable_rows()
        # Invalid rows (reset steps) are never adjacent: each is followed by an episode's first.
        return lo < hi or (lo == hi and bool(self.valid[lo % self.rows].any()))

    def sample(self, batch_size: int) -> ReplaySample:
        """A minibatch of valid transitions drawn uniformly with replacement.

        Raises:
            ValueError: nothing to sample yet (see ``can_sample``).
        """
        if not self.can_sample():
            raise ValueError("the replay buffer holds no complete transition yet")
        lo, hi = self.sampleable_rows()
        rows = np.empty(0, dtype=np.int64)
        envs = np.empty(0, dtype=np.int64)
        while rows.size < batch_size:
            # Rejection sampling: reset steps are rare (one per episode), so a round or two do.
            need = 2 * (batch_size - rows.size) + 8
            t = self.rng.integers(lo, hi + 1, size=need)
            e = self.rng.integers(0, self.num_envs, size=need)
            keep = self.valid[t % self.rows, e]
            rows = np.concatenate([rows, t[keep]])
            envs = np.concatenate([envs, e[keep]])
        return self.transitions(rows[:batch_size], envs[:batch_size])

    def transitions(self, rows: NDArray[np.int64], envs: NDArray[np.int64]) -> ReplaySample:
        """The n-step transitions starting at absolute ``rows`` of sub-environments ``envs``.

        The rows must be valid and sampleable (``sample`` draws only such rows).
        """
        rows = np.asarray(rows, dtype=np.int64)
        envs = np.asarray(envs, dtype=np.int64)
        returns = np.zeros(rows.shape, dtype=np.float64)
        alive = np.ones(rows.shape, dtype=bool)
        terminal = np.zeros(rows.shape, dtype=bool)
        steps = np.zeros(rows.shape, dtype=np.int64)
        for j in range(self.n_step):
            r = (rows + j) % self.rows
            returns += np.where(alive, self.gamma**j * self.rewards[r, envs], 0.0)
            steps += alive
            terminal |= alive & self.terminated[r, envs]
            alive &= ~(self.terminated[r, envs] | self.truncated[r, envs])
        discounts = np.where(terminal, 0.0, self.gamma ** steps.astype(np.float64))
        return ReplaySample(
            obs=self.observations(rows, envs),
            actions=self.actions[rows % self.rows, envs],
            returns=returns.astype(np.float32),
            discounts=discounts.astype(np.float32),
            next_obs=self.observations(rows + steps, envs),
            rows=rows,
            envs=envs,
        )

    def observations(self, rows: NDArray[np.int64], envs: NDArray[np.int64]) -> NDArray[Any]:
        """The observations at absolute ``rows`` of ``envs``, stacks rebuilt and padded."""
        newest = self.frames[rows % self.rows, envs]
        k = self.frame_stack
        if k == 1:
            return newest
        out = np.empty((rows.size, k, *newest.shape[1:]), dtype=self.frames.dtype)
        out[:, k - 1] = newest
        same = np.ones(rows.size, dtype=bool)  # frame t-d is of the same episode as frame t
        for d in range(1, k):
            same &= ~self.first[(rows - d + 1) % self.rows, envs]
            out[:, k - 1 - d] = self.frames[(rows - d) % self.rows, envs]
            cut = np.flatnonzero(~same)
            if cut.size:
                # Before the episode's first frame: padding, never the previous episode.
                if self.padding == "zero":
                    out[cut, k - 1 - d] = 0
                else:
                    out[cut, k - 1 - d] = out[cut, k - d]
        return out
