"""tron experiment: same opponents for every arm, a tiny experiment end to end, resume, statistics."""

from __future__ import annotations

import csv
import json
import math
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import arena.experiment as experiment
from acktr.training import read_checkpoint, read_progress
from agents.neural import TronNet
from arena.cli import main
from arena.experiment import (
    CSV_COLUMNS,
    ExperimentConfig,
    PoolEnvFactory,
    RunSpec,
    build_trainer,
    check_config,
    ci_over_games,
    ci_over_seeds,
    evaluate_run,
    frozen_points,
    mean_score,
    pool_league,
    report,
    run_experiment,
    run_finished,
    t975,
    train_run,
)
from arena.selfplay import League, LeagueConfig

TINY = ExperimentConfig(
    arms=("acktr", "dqn"),
    seeds=1,
    steps=1_500,
    eval_every=750,
    maps=("room10",),
    ladder=("minimax:level=1",),
    scripted=("greedy",),
    games=2,
)


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # As the experiment's runs: on a busy 2-core machine two threads made training 15x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_statistics__t_quantiles_and_intervals_by_hand() -> None:
    assert t975(2) == 4.303
    assert t975(30) == 2.042
    assert t975(40) == pytest.approx(2.0211, abs=1e-3)  # exact: 2.02108
    assert t975(120) == pytest.approx(1.9799, abs=1e-3)
    # Per-seed scores 0.1, 0.2, 0.3: sd 0.1, so 4.303 * 0.1 / sqrt(3).
    assert ci_over_seeds([0.1, 0.2, 0.3]) == pytest.approx(0.248434, abs=1e-6)
    assert math.isnan(ci_over_seeds([0.4]))
    # A win and a draw: mean 0.75, sample variance 2 * 0.25^2 / 1, so 1.96 * sqrt(0.125 / 2).
    assert ci_over_games(1, 1, 0) == pytest.approx(0.489991, abs=1e-6)
    assert ci_over_games(0, 0, 10) == 0.0
    results = {"a": {"wins": 1, "draws": 2, "losses": 1}, "b": {"wins": 0, "draws": 0, "losses": 3}}
    assert mean_score(results, ["a"]) == 0.5
    assert mean_score(results, ["a", "b"]) == 0.25


def test_pool__uniform_over_fixed_members_whatever_the_scores() -> None:
    league = League(pool_league(), seed=3)
    fixed = [m.name for m in league.members]
    league.add_snapshot("snapshot@0", TronNet().state_dict())
    league.add_snapshot("snapshot@1", TronNet().state_dict())
    assert fixed == list(LeagueConfig().fixed)
    league.members[0].score = 1.0  # beaten every time: PFSP would all but drop it
    league.members[5].score = 0.0
    counts = Counter(m.name for m in league.sample(16_000))
    assert set(counts) == set(fixed)
    for name in fixed:
        assert counts[name] / 16_000 == pytest.approx(1 / 8, abs=0.012)


def test_pool__every_arm_trains_against_the_same_opponents(tmp_path: Path) -> None:
    config = ExperimentConfig(maps=("room10",), steps=1000, eval_every=500)
    pools = {}
    for arm in ("acktr", "a2c", "dqn"):
        trainer = build_trainer(RunSpec(arm, 0, str(tmp_path)), config, resume=False)
        league = trainer.league
        pools[arm] = (
            [m.name for m in league.members],
            league.config.p_latest,
            league.config.p_older,
        )
        trainer.learner.env.close()
    env = PoolEnvFactory(config.maps, 8, seed=0)(1)
    pools["a3c"] = ([m.name for m in env.league.members], 0.0, 0.0)
    assert env.league.config == pool_league()
    env.close()
    assert all(p == (list(LeagueConfig().fixed), 0.0, 0.0) for p in pools.values()), pools


def test_tiny_experiment__end_to_end_then_resume_skips_finished_runs(tmp_path: Path) -> None:
    out = tmp_path / "exp"
    assert run_experiment(TINY, out, jobs=2) == []
    points = report(TINY, out)
    assert sorted((p.arm, p.step) for p in points) == [
        (arm, step) for arm in ("acktr", "dqn") for step in (0, 750, 1500)
    ]
    with open(out / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
        assert tuple(rows[0]) == (*CSV_COLUMNS, "minimax:level=1", "greedy")
    assert len(rows) == 6
    for row in rows:
        assert row["algo"] == row["arm"] and row["opponents"] == "pool" and row["seed"] == "0"
        assert int(row["env_steps"]) >= int(row["step"])
        w, d, lost = (int(row[f"ladder_{k}"]) for k in ("wins", "draws", "losses"))
        assert w + d + lost == 2
        assert float(row["ladder_score"]) == (w + d / 2) / 2 == float(row["minimax:level=1"])
        if row["step"] == "0":
            assert float(row["wall_s"]) == float(row["cpu_s"]) == 0.0
        else:
            assert float(row["wall_s"]) > 0 and float(row["cpu_s"]) > 0
    table = (out / "results.md").read_text()
    assert "| acktr | fixed pool | 1 | 1,500 |" in table
    assert "| dqn | fixed pool | 1 | 1,500 |" in table
    assert "95 % CI over seeds" in table and "95 % CI over games" in table
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert read_checkpoint(out / "runs" / "acktr-s0").num_timesteps >= 1500

    before = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()}
    assert run_experiment(TINY, out, jobs=2) == []
    after = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()}
    assert after == before  # nothing retrained or re-scored


def test_train_run__resumes_after_an_interruption_between_freeze_and_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ExperimentConfig(
        arms=("a2c",), seeds=1, steps=1_200, eval_every=400, maps=("room10",),
        ladder=("greedy",), scripted=(), games=2,
    )  # fmt: skip
    spec = RunSpec("a2c", 0, str(tmp_path))
    freeze = experiment._freeze

    def freeze_then_die(run_dir: Path, step: int, *args: Any) -> None:
        freeze(run_dir, step, *args)
        if step == 800:
            raise KeyboardInterrupt  # killed after freezing 800, before its checkpoint

    monkeypatch.setattr(experiment, "_freeze", freeze_then_die)
    with pytest.raises(KeyboardInterrupt):
        train_run(spec, config)
    at = read_checkpoint(spec.dir).num_timesteps
    first = frozen_points(spec.dir)
    assert sorted(first) == [0, 400, 800] and first[400]["env_steps"] == at == 400
    assert first[800]["env_steps"] == 800

    monkeypatch.setattr(experiment, "_freeze", freeze)
    train_run(spec, config)
    points = frozen_points(spec.dir)
    assert sorted(points) == [0, 400, 800, 1200]
    assert points[400] == first[400]  # kept: the checkpoint came after it
    walls = [points[s]["wall_s"] for s in (0, 400, 800, 1200)]
    cpus = [points[s]["cpu_s"] for s in (0, 400, 800, 1200)]
    assert walls == sorted(walls) and cpus == sorted(cpus) and walls[0] == 0.0
    assert read_checkpoint(spec.dir).num_timesteps == points[1200]["env_steps"] >= 1200
    steps = [int(r["step"]) for r in read_progress(spec.dir / "progress.csv")[0]]
    assert steps == sorted(set(steps))  # rows after the checkpoint dropped, none twice

    assert not run_finished(spec, config)
    evaluate_run(spec, config)
    assert run_finished(spec, config)
    scored = json.loads((spec.dir / "evals" / "step-000001200.json").read_text())
    assert (
        scored["results"]["greedy"]["wins"]
        + scored["results"]["greedy"]["losses"]
        + scored["results"]["greedy"]["draws"]
        == 2
    )


def test_check_config__same_settings_to_resume_more_seeds_allowed(tmp_path: Path) -> None:
    assert check_config(TINY, tmp_path) == TINY
    with pytest.raises(ValueError, match="steps=1500; pass the same settings"):
        check_config(ExperimentConfig(**{**TINY.__dict__, "steps": 3000}), tmp_path)
    grown = check_config(
        ExperimentConfig(**{**TINY.__dict__, "seeds": 3, "arms": ("a2c",)}), tmp_path
    )
    assert grown.seeds == 3 and grown.arms == ("acktr", "dqn", "a2c")
    assert json.loads((tmp_path / "experiment.json").read_text())["seeds"] == 3


def test_cli__bad_settings_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["experiment", "--arms", "acktr,ppo", "--out", str(tmp_path)]) == 2
    assert (
        "unknown arm(s) ppo; arms: acktr, a2c, a3c, dqn, acktr-selfplay" in capsys.readouterr().err
    )
    assert main(["experiment", "--maps", "arena21-4p", "--out", str(tmp_path)]) == 2
    assert "not a 2-player map" in capsys.readouterr().err
    assert main(["experiment", "--ladder", "minimax:level=9", "--out", str(tmp_path)]) == 2
    assert "level" in capsys.readouterr().err
    assert main(["experiment", "--report", "--out", str(tmp_path / "none")]) == 2
    assert "no experiment in" in capsys.readouterr().err
