"""Bradley-Terry ratings: hand-computed fits, known strengths recovered, intervals that cover."""

from __future__ import annotations

import math

import numpy as np
import pytest

from arena.ratings import ELO_PER_NAT, Z95, fit_bradley_terry
from arena.store import GameResult
from arena.tournament import format_standings, standings
from tron.maps import get_map

TRUE_THETA = np.array([-1.0, -0.3, 0.2, 1.1])  # natural-log strengths of four agents


def _simulate(theta: np.ndarray, per_pair: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Points and counts of ``per_pair`` games between every pair, winners drawn from the model."""
    n = theta.size
    points, counts = np.zeros((n, n)), np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            p = 1.0 / (1.0 + math.exp(-(theta[i] - theta[j])))
            wins = rng.binomial(per_pair, p)
            points[i, j], points[j, i] = wins, per_pair - wins
            counts[i, j] = counts[j, i] = per_pair
    return points, counts


def test_fit__two_agents_matches_the_closed_form() -> None:
    """A scores 3 of 4 against B: the MLE difference is ln 3 (190.8 Elo), and the variance of the
    difference is 1 / (n p (1 - p)) = 4/3; each rating is half the difference from the mean."""
    points = np.array([[0.0, 3.0], [1.0, 0.0]])
    counts = np.array([[0.0, 4.0], [4.0, 0.0]])
    fit = fit_bradley_terry(points, counts, prior_sd=1e4)
    assert fit.theta[0] - fit.theta[1] == pytest.approx(math.log(3.0), abs=1e-6)
    assert fit.elo() == pytest.approx([1500 + 400 * math.log10(3) / 2, 1500 - 400 * math.log10(3) / 2])  # fmt: skip
    sd = ELO_PER_NAT * math.sqrt(4.0 / 3.0) / 2
    assert fit.elo_sd() == pytest.approx([sd, sd], rel=1e-6)
    assert fit.elo_ci95()[0] == pytest.approx([fit.elo()[0] - Z95 * sd, fit.elo()[0] + Z95 * sd])


def test_fit__draws_count_as_half_wins() -> None:
    """Two draws and a win each: even, exactly like two wins each."""
    points = np.array([[0.0, 2.0], [2.0, 0.0]])  # 1 + 2 * 0.5 each
    counts = np.array([[0.0, 4.0], [4.0, 0.0]])
    assert fit_bradley_terry(points, counts).elo() == pytest.approx([1500.0, 1500.0])


def test_fit__an_undefeated_agent_gets_a_finite_rating() -> None:
    points = np.array([[0.0, 20.0, 20.0], [0.0, 0.0, 10.0], [0.0, 10.0, 0.0]])
    counts = np.array([[0.0, 20.0, 20.0], [20.0, 0.0, 20.0], [20.0, 20.0, 0.0]])
    fit = fit_bradley_terry(points, counts)
    elo, ci = fit.elo(), fit.elo_ci95()
    assert np.isfinite(elo).all() and np.isfinite(ci).all()
    assert elo[0] > elo[1] + 400 and elo[1] == pytest.approx(elo[2])
    assert elo.mean() == pytest.approx(1500.0)


def test_fit__recovers_known_strengths() -> None:
    """400 games a pair: the order is right and every difference within 0.25 of the truth."""
    points, counts = _simulate(TRUE_THETA, 400, np.random.default_rng(1))
    fit = fit_bradley_terry(points, counts)
    assert list(np.argsort(fit.theta)) == [0, 1, 2, 3]
    estimated = fit.theta - fit.theta[0]
    assert estimated == pytest.approx(TRUE_THETA - TRUE_THETA[0], abs=0.25)


def test_fit__intervals_shrink_with_more_games() -> None:
    """Eight times the games: intervals about sqrt(8) = 2.8 times narrower."""
    rng = np.random.default_rng(2)
    few = fit_bradley_terry(*_simulate(TRUE_THETA, 50, rng))
    many = fit_bradley_terry(*_simulate(TRUE_THETA, 400, rng))
    ratio = few.elo_sd() / many.elo_sd()
    assert (ratio > 2.3).all() and (ratio < 3.4).all()


def test_fit__95_percent_intervals_cover_the_truth_about_95_percent_of_the_time() -> None:
    truth = 1500 + ELO_PER_NAT * (TRUE_THETA - TRUE_THETA.mean())
    rng = np.random.default_rng(3)
    covered = []
    for _ in range(300):
        ci = fit_bradley_terry(*_simulate(TRUE_THETA, 40, rng)).elo_ci95()
        covered += list((ci[:, 0] <= truth) & (truth <= ci[:, 1]))
    # 1200 intervals: the binomial sd of the rate is 0.6 %.
    assert 0.92 <= np.mean(covered) <= 0.98


def test_fit__refuses_inconsistent_input() -> None:
    with pytest.raises(ValueError, match="must equal counts"):
        fit_bradley_terry(np.array([[0.0, 3.0], [3.0, 0.0]]), np.array([[0.0, 4.0], [4.0, 0.0]]))
    with pytest.raises(ValueError, match=r"\(n, n\)"):
        fit_bradley_terry(np.zeros((2, 3)), np.zeros((2, 2)))


def _game(agents: tuple[str, ...], winner: int, crash_turns: tuple[int, ...]) -> GameResult:
    last = max(crash_turns)
    scores = tuple(
        (1.0 if s == winner else 0.0) if winner >= 0 else (0.5 if t == last else 0.0)
        for s, t in enumerate(crash_turns)
    )
    return GameResult(
        id=f"{agents}{crash_turns}",
        agents=agents,
        map=get_map("room16-4p") if len(agents) == 4 else get_map("room10"),
        number=0,
        seed=0,
        agent_seed=0,
        winner=winner,
        turns=last,
        scores=scores,
        crash_turns=crash_turns,
        causes=tuple(None if t < 0 else "wall" for t in crash_turns),
        reason="",
        moves=("",) * len(agents),
    )


def test_standings__free_for_all_counts_pairwise_placings() -> None:
    """One 4-player game: d survives, c went out on turn 9, a and b on turn 5 (they draw)."""
    table = {s.agent: s for s in standings([_game(("a", "b", "c", "d"), 3, (5, 5, 9, -1))])}
    assert table["d"].score == 1.0  # beat all three
    assert table["c"].score == pytest.approx(2 / 3)  # beat a and b, lost to d
    assert table["a"].score == table["b"].score == pytest.approx(0.5 / 3)  # drew each other
    assert (table["d"].wins, table["d"].draws, table["d"].losses) == (1, 0, 0)
    assert (table["a"].wins, table["a"].draws, table["a"].losses) == (0, 0, 1)
    assert [s.agent for s in standings([_game(("a", "b", "c", "d"), 3, (5, 5, 9, -1))])][:2] == ["d", "c"]  # fmt: skip


def test_standings__duels_tally_and_table() -> None:
    games = [
        _game(("x", "y"), 0, (-1, 7)),
        _game(("y", "x"), 1, (4, -1)),
        _game(("x", "y"), -1, (6, 6)),
    ]
    table = standings(games)
    assert [s.agent for s in table] == ["x", "y"]
    x = table[0]
    assert (x.games, x.wins, x.draws, x.losses) == (3, 2, 1, 0)
    assert x.score == pytest.approx(2.5 / 3)
    assert table[0].rating + table[1].rating == pytest.approx(3000.0)
    text = format_standings(table)
    lines = text.splitlines()
    assert lines[0].split() == ["rank", "agent", "rating", "95%", "CI", "games", "W-D-L", "score"]
    assert lines[2].split()[:2] == ["1", "x"]
    assert lines[2].split()[-2:] == ["2-1-0", "83.3%"]
    assert standings([]) == []
