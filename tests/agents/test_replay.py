"""Replay buffer: stacks rebuilt from single frames, episode boundaries, n-step targets."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from agents.replay import Padding, ReplayBuffer

K = 4  # frames per stack
FRAME = (2, 3)  # a tiny "screen"


class StackingEnv:
    """Scripted frame-stacked observations: every frame is filled with a unique value.

    Episodes of env ``e`` have the lengths in ``lengths[e]`` (cycled); an episode ends by
    termination unless its length is negative (truncation). Observations are stacks of the last
    ``K`` frames, padded at an episode's start as ``padding`` says, and the NEXT_STEP autoreset
    protocol is followed: the step after an end is a reset step that returns the new episode's
    first observation with reward 0.
    """

    def __init__(self, lengths: list[list[int]], padding: str = "zero") -> None:
        self.lengths = lengths
        self.padding = padding
        self.n = len(lengths)
        self.episode = [0] * self.n
        self.t = [0] * self.n
        self.pending = [False] * self.n
        self.counter = 0
        self.stacks: list[deque[np.ndarray]] = [deque(maxlen=K) for _ in range(self.n)]
        for e in range(self.n):
            self._start(e)

    def _frame(self) -> np.ndarray:
        self.counter += 1
        return np.full(FRAME, self.counter, dtype=np.uint8)

    def _start(self, e: int) -> None:
        first = self._frame()
        pad = np.zeros(FRAME, np.uint8) if self.padding == "zero" else first
        self.stacks[e].extend([pad] * (K - 1) + [first])
        self.t[e] = 0

    def obs(self) -> np.ndarray:
        return np.stack([np.stack(list(s)) for s in self.stacks])

    def step(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """rewards, terminated, truncated of this step; observations move on."""
        rewards = np.zeros(self.n, np.float32)
        term = np.zeros(self.n, bool)
        trunc = np.zeros(self.n, bool)
        for e in range(self.n):
            if self.pending[e]:
                self.pending[e] = False
                self.episode[e] += 1
                self._start(e)
                continue
            spec = self.lengths[e][self.episode[e] % len(self.lengths[e])]
            self.t[e] += 1
            rewards[e] = 10 * e + self.t[e]
            self.stacks[e].append(self._frame())
            if self.t[e] == abs(spec):
                term[e], trunc[e] = spec > 0, spec < 0
                self.pending[e] = True
        return rewards, term, trunc


def fill(
    buffer: ReplayBuffer, env: StackingEnv, steps: int
) -> tuple[dict[tuple[int, int], np.ndarray], np.ndarray]:
    """Run ``env`` for ``steps`` steps into ``buffer``; the observation each (row, env) saw, and
    which rows are reset steps."""
    seen: dict[tuple[int, int], np.ndarray] = {}
    reset_rows = np.zeros((steps, env.n), bool)
    prev_done = np.zeros(env.n, bool)
    for t in range(steps):
        obs = env.obs()
        for e in range(env.n):
            seen[(t, e)] = obs[e]
        reset_rows[t] = prev_done
        rewards, term, trunc = env.step()
        buffer.add(obs, np.full(env.n, t % 3), rewards, term, trunc)
        prev_done = term | trunc
    return seen, reset_rows


@pytest.mark.parametrize("padding", ["zero", "first"])
def test_stacks__rebuilt_exactly_across_episode_boundaries(padding: Padding) -> None:
    # Episodes of 2, 5 and 1 steps (truncated ones included) are shorter than the stack, so
    # frames of the previous episode are inside the naive window at every start.
    env = StackingEnv([[2, 5, -1], [3, -2, 6]], padding=padding)
    buffer = ReplayBuffer(1000, 2, (K, *FRAME), np.uint8, frame_stack=K, padding=padding)
    seen, reset_rows = fill(buffer, env, 40)
    lo, hi = buffer.sampleable_rows()
    assert (lo, hi) == (0, 38)
    for e in range(2):
        rows = np.array([t for t in range(lo, hi + 1) if not reset_rows[t, e]])
        sample = buffer.transitions(rows, np.full(rows.size, e))
        for i, t in enumerate(rows):
            np.testing.assert_array_equal(sample.obs[i], seen[(t, e)])
            # n = 1: the next observation is the next row's, the final one after an end.
            np.testing.assert_array_equal(sample.next_obs[i], seen[(t + 1, e)])


def test_stacks__first_episode_padding_exact() -> None:
    env = StackingEnv([[2]])
    buffer = ReplayBuffer(100, 1, (K, *FRAME), np.uint8, frame_stack=K)
    fill(buffer, env, 6)
    obs = buffer.observations(np.arange(6), np.zeros(6, np.int64))
    values = obs[:, :, 0, 0].tolist()
    # Frames 1, 2, 3 make episode one (its final frame 3 sits in the reset step's row 2);
    # episode two starts at frame 4 with zero padding, never frames 1-3.
    assert values == [
        [0, 0, 0, 1],
        [0, 0, 1, 2],
        [0, 1, 2, 3],
        [0, 0, 0, 4],
        [0, 0, 4, 5],
        [0, 4, 5, 6],
    ]


def test_sample__never_returns_reset_steps_and_matches_env_after_wrapping() -> None:
    env = StackingEnv([[3, 1, 4], [2, -2]])
    buffer = ReplayBuffer(
        2 * 25, 2, (K, *FRAME), np.uint8, frame_stack=K, n_step=1, rng=np.random.default_rng(0)
    )
    seen, reset_rows = fill(buffer, env, 100)
    assert len(buffer) == 50
    # 100 rows written into 25: the oldest 3 rows have lost frames their stacks need.
    assert buffer.sampleable_rows() == (75 + K - 1, 98)
    sample = buffer.sample(512)
    assert sample.rows.min() >= 78 and sample.rows.max() <= 98
    assert not reset_rows[sample.rows, sample.envs].any()
    for i in range(512):
        t, e = int(sample.rows[i]), int(sample.envs[i])
        np.testing.assert_array_equal(sample.obs[i], seen[(t, e)])
        np.testing.assert_array_equal(sample.next_obs[i], seen[(t + 1, e)])
        assert sample.actions[i] == t % 3


def test_add__refuses_an_env_padded_otherwise() -> None:
    env = StackingEnv([[3]], padding="first")
    buffer = ReplayBuffer(100, 1, (K, *FRAME), np.uint8, frame_stack=K, padding="zero")
    with pytest.raises(ValueError, match="padding='first'"):
        buffer.add(env.obs(), np.zeros(1), np.zeros(1), np.zeros(1, bool), np.zeros(1, bool))


def scripted(n_step: int, gamma: float, end: str) -> ReplayBuffer:
    """One env, rewards 1, 2, 3, 4 with the episode ending (``end``) at the 4th step (row 3); row 4
    is the reset step holding the final observation, rows 5.. the next episode (rewards 6, 7...)."""
    buffer = ReplayBuffer(100, 1, (1,), np.float32, n_step=n_step, gamma=gamma)
    for t in range(9):
        ended = t == 3
        buffer.add(
            np.array([[float(t)]]),
            np.array([t]),
            np.array([0.0 if t == 4 else t + 1.0]),
            np.array([ended and end == "terminated"]),
            np.array([ended and end == "truncated"]),
        )
    return buffer


def test_n_step__hand_computed_terminated() -> None:
    buffer = scripted(n_step=3, gamma=0.5, end="terminated")
    s = buffer.transitions(np.arange(4), np.zeros(4, np.int64))
    # row 0: 1 + .5*2 + .25*3 = 2.75, bootstrap from row 3 with .5^3
    # row 1: 2 + .5*3 + .25*4 = 4.5, terminated at row 3 (its third step): no bootstrap
    # row 2: 3 + .5*4 = 5, terminated at row 3: no bootstrap
    # row 3: 4, terminated: no bootstrap
    np.testing.assert_allclose(s.returns, [2.75, 4.5, 5.0, 4.0])
    np.testing.assert_allclose(s.discounts, [0.125, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(s.next_obs[:, 0], [3.0, 4.0, 4.0, 4.0])


def test_n_step__hand_computed_truncated_bootstraps_from_final_obs() -> None:
    buffer = scripted(n_step=3, gamma=0.5, end="truncated")
    s = buffer.transitions(np.array([0, 1, 2, 3, 5]), np.zeros(5, np.int64))
    np.testing.assert_allclose(s.returns, [2.75, 4.5, 5.0, 4.0, 6 + 0.5 * 7 + 0.25 * 8])
    # Truncation cuts the sum but bootstraps from the final observation (row 4).
    np.testing.assert_allclose(s.discounts, [0.125, 0.125, 0.25, 0.5, 0.125])
    np.testing.assert_array_equal(s.next_obs[:, 0], [3.0, 4.0, 4.0, 4.0, 8.0])


def test_n_step__one_step_is_the_plain_target() -> None:
    buffer = scripted(n_step=1, gamma=0.9, end="terminated")
    s = buffer.transitions(np.array([0, 3, 5]), np.zeros(3, np.int64))
    np.testing.assert_allclose(s.returns, [1.0, 4.0, 6.0])
    np.testing.assert_allclose(s.discounts, [0.9, 0.0, 0.9])
    np.testing.assert_array_equal(s.next_obs[:, 0], [1.0, 4.0, 6.0])


def test_sample__waits_for_complete_windows() -> None:
    buffer = ReplayBuffer(100, 1, (1,), np.float32, n_step=3)
    for _ in range(3):
        assert not buffer.can_sample()
        buffer.add(np.zeros((1, 1)), np.zeros(1), np.zeros(1), np.zeros(1, bool), np.zeros(1, bool))
    assert not buffer.can_sample()
    with pytest.raises(ValueError, match="no complete transition"):
        buffer.sample(1)
    buffer.add(np.zeros((1, 1)), np.zeros(1), np.zeros(1), np.zeros(1, bool), np.zeros(1, bool))
    assert buffer.can_sample() and buffer.sample(4).rows.tolist() == [0, 0, 0, 0]


def test_memory__one_frame_per_transition() -> None:
    # The Atari layout: 4x84x84 uint8 observations cost one 84x84 frame plus 16 bytes of
    # action/reward/flags per transition, so 1M transitions take 7.07 GB (naive: 56 GB).
    buffer = ReplayBuffer(10_000, 1, (4, 84, 84), np.uint8, frame_stack=4)
    assert buffer.frames.shape == (10_000, 1, 84, 84)
    assert buffer.nbytes == 10_000 * (84 * 84 + 8 + 4 + 4)
    assert buffer.nbytes * 100 < 7.1e9


def test_constructor__clear_errors() -> None:
    with pytest.raises(ValueError, match="not stacks of 4 frames"):
        ReplayBuffer(100, 1, (3, 84, 84), np.uint8, frame_stack=4)
    with pytest.raises(ValueError, match="rows per env"):
        ReplayBuffer(8, 4, (4,), np.float32, n_step=3)
