"""tron train / eval / plot / suite: runs, resume after kill -9, clear errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from acktr.training import read_checkpoint, read_progress
from arena.cli import main

QUICK = ["--no-progress", "--no-tensorboard"]


@pytest.fixture(autouse=True)
def restore_threads() -> Iterator[None]:
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def train(out: Path, steps: int, *extra: str) -> int:
    argv = ["train", "acktr", "--env", "CartPole-v1", "--steps", str(steps), "--out", str(out)]
    return main([*argv, "--checkpoint-every", "640", *QUICK, *extra])


def steps_logged(out: Path) -> list[int]:
    rows, _ = read_progress(out / "progress.csv")
    return [int(r["step"]) for r in rows]


def test_train_resume_eval_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert train(out, 1280, "--set", "n_steps=8", "--envs", "4") == 0
    assert read_checkpoint(out).num_timesteps == 1280
    assert "preset classic" in capsys.readouterr().err

    assert train(out, 2560) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err

    assert train(out, 2560, "--resume") == 0
    assert read_checkpoint(out).num_timesteps == 2560
    assert steps_logged(out) == list(range(32, 2561, 32))
    assert json.loads((out / "run.json").read_text())["n_steps"] == 8
    capsys.readouterr()

    argv = ["eval", str(out), "--env", "CartPole-v1", "--episodes", "3", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["episodes"] == 3 and len(result["returns"]) == 3
    assert result["algo"] == "acktr" and result["num_timesteps"] == 2560
    assert result["mean_return"] == pytest.approx(sum(result["returns"]) / 3)
    assert result["std_return"] >= 0

    png = tmp_path / "curves.png"
    assert main(["plot", str(out), "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "ppo", "--env", "CartPole-v1", "--steps", "10"], "unknown learner 'ppo'"),
        (["train", "acktr", "--env", "Nope-v9", "--steps", "10"], "unknown environment"),
        (["train", "acktr", "--env", "CartPole-v1", "--steps", "10", "--set", "lr"], "KEY=VALUE"),
        (
            ["train", "acktr", "--env", "CartPole-v1", "--steps", "10", "--set", "lr=x"],
            "bad value 'x' for lr",
        ),
        (["eval", "missing.pt", "--env", "CartPole-v1"], "no checkpoint at missing.pt"),
        (["plot", "nowhere"], "no progress.csv"),
    ],
)
def test_bad_input_gets_one_line_and_status_2(
    argv: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*argv, *(QUICK if argv[0] == "train" else [])]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_corrupted_checkpoint_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "checkpoint.pt"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    assert main(["eval", str(bad), "--env", "CartPole-v1"]) == 2
    assert "corrupted or truncated" in capsys.readouterr().err


def test_kill_9_loses_at_most_one_checkpoint_interval(tmp_path: Path) -> None:
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "arena", "train", "acktr", "--env", "CartPole-v1"]
    cmd += ["--steps", "10000000", "--out", str(out), "--checkpoint-every", "2560", *QUICK]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (out / "checkpoint.pt").exists():
            time.sleep(0.05)
        time.sleep(0.5)  # let it write a few more rows past the checkpoint
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    saved = read_checkpoint(out).num_timesteps
    assert saved >= 2560 and saved % 2560 == 0
    logged = steps_logged(out)
    assert logged[-1] - saved < 2560 + 256  # at most one interval (+ one update) was lost

    assert train(out, saved + 512, "--resume") == 0
    assert read_checkpoint(out).num_timesteps == saved + 512
    assert steps_logged(out) == list(range(256, saved + 513, 256))


def test_suite_runs_tabulates_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["suite", "mujoco", "--games", "InvertedPendulum", "--algos", "acktr,a2c"]
    argv += ["--steps", "1000", "--out", str(tmp_path), "--no-progress", "--set", "n_steps=250"]
    assert main(argv) == 0
    table = (tmp_path / "results.md").read_text()
    assert "| InvertedPendulum | acktr | 1,000 | 1 |" in table
    assert table.splitlines()[2].endswith("| 1000 |")  # the paper's figure beside ours
    assert (tmp_path / "curves" / "InvertedPendulum-v5.png").exists()
    assert (tmp_path / "results.csv").read_text().startswith("game,algo,steps,seeds,mean_return")
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().err.count("done (1000 steps)") == 2


def test_suite_final_return_and_last_10_episodes_by_hand(tmp_path: Path) -> None:
    from arena.commands.suite import final_return, last_episodes_return

    log = tmp_path / "progress.csv"
    rows = [
        "step,charts/episodic_return,charts/episodes",
        "100,1000,50",  # before the last 10% of the steps
        "910,10,4",
        "940,,",  # an update in which no episode ended
        "960,20,5",
        "980,40,3",
        "1000,30,2",
    ]
    log.write_text("\n".join(rows) + "\n")
    # last 10% (steps >= 900): (4*10 + 5*20 + 3*40 + 2*30) / 14
    assert final_return(log) == (1000, pytest.approx(320 / 14))
    # the last updates with >= 10 episodes together: 2 + 3 + 5 = 10
    assert last_episodes_return(log) == pytest.approx((2 * 30 + 3 * 40 + 5 * 20) / 10)
    assert last_episodes_return(log, episodes=11) == pytest.approx(320 / 14)


def test_plot_labels__run_directories_and_csv_files(tmp_path: Path) -> None:
    from arena.commands.plot import find_runs, run_label

    for name in ("long/acktr-s0", "long/a2c-s0"):
        (tmp_path / name).mkdir(parents=True)
        (tmp_path / name / "progress.csv").write_text("step,x\n1,2\n")
    (tmp_path / "dqn-s0.csv").write_text("step,x\n1,2\n")
    runs = find_runs([tmp_path / "long", tmp_path / "dqn-s0.csv"])
    assert [run_label(r, tmp_path / "long") for r in runs[:2]] == ["a2c-s0", "acktr-s0"]
    assert run_label(runs[2], tmp_path) == "dqn-s0"  # a CSV file is named by itself
    single = tmp_path / "long" / "acktr-s0" / "progress.csv"
    assert run_label(single, single.parent.resolve()) == "acktr-s0"
