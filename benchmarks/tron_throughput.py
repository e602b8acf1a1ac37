"""Training throughput of every arm of the Tron experiment here, and the cost of one evaluation.

Each arm of ``arena.experiment`` (ACKTR, A2C, A3C and DQN against the fixed pool, ACKTR in the
self-play league) is built exactly as the experiment builds it and trains from scratch; after
``--warmup`` steps (DQN: 11k, past its 10k steps of replay warm-up) the next ``--steps`` are
timed: env steps per
second of wall time and CPU milliseconds per 1000 env steps (the training process and, for A3C,
its two worker processes). Then the shipped agent (``models/acktr_tron.pt``, a fair stand-in for a
trained network: weak networks lose faster, so their games are cheaper) plays one evaluation point
of the experiment: 14 games against each of minimax levels 1-4 and the four scripted bots.

The experiment's budget comes from these figures (README: "The seed's experiment").

Usage::

    python benchmarks/tron_throughput.py                 # 3-6 minutes here
    python benchmarks/tron_throughput.py --steps 5000 --arms acktr,dqn

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from arena.experiment import (
    ExperimentConfig,
    RunSpec,
    build_trainer,
    cpu_seconds,
    mean_score,
)


def time_arm(arm: str, warmup: int, steps: int, out: Path) -> dict[str, float]:
    """Steps/s and CPU ms per 1000 steps of ``arm`` between ``warmup`` and ``warmup + steps``."""
    config = ExperimentConfig(arms=(arm,), steps=warmup + steps, eval_every=warmup + steps)
    trainer = build_trainer(RunSpec(arm, 0, str(out)), config, resume=False)
    marks: list[tuple[int, float, float]] = []

    def callback(learner: Any, metrics: Any) -> None:
        if not marks and learner.num_timesteps >= warmup:
            marks.append(
                (learner.num_timesteps, time.perf_counter(), cpu_seconds(trainer.worker_pids()))
            )

    trainer.learner.learn(warmup + steps, callback=callback)
    end = (trainer.learner.num_timesteps, time.perf_counter(), cpu_seconds())
    (s0, t0, c0), (s1, t1, c1) = marks[0], end
    return {
        "steps_per_s": round((s1 - s0) / (t1 - t0), 1),
        "cpu_ms_per_1k_steps": round(1000 * (c1 - c0) / (s1 - s0) * 1000, 0),
        "timed_steps": s1 - s0,
    }


def time_evaluation() -> dict[str, float]:
    """CPU and wall seconds of one evaluation point with the shipped agent, and its scores."""
    from agents.registry import make_agent
    from arena.match import play_match
    from tron.maps import load_map

    config = ExperimentConfig()
    maps = [load_map(m) for m in config.maps]
    agent = make_agent("acktr")
    wall, cpu = time.perf_counter(), time.process_time()
    results = {}
    for spec in config.opponents:
        match = play_match(agent, spec, maps, config.games, seed=0)
        results[spec] = {"wins": match.wins[0], "draws": match.draws, "losses": match.wins[1]}
    return {
        "eval_point_cpu_s": round(time.process_time() - cpu, 1),
        "eval_point_wall_s": round(time.perf_counter() - wall, 1),
        "shipped_ladder_score": round(mean_score(results, config.ladder), 3),
        "shipped_scripted_score": round(mean_score(results, config.scripted), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arms", default=",".join(ExperimentConfig().arms))
    parser.add_argument("--warmup", type=int, default=2_000, help="untimed steps first")
    parser.add_argument("--steps", type=int, default=10_000, help="timed steps per arm")
    args = parser.parse_args()
    torch.set_num_threads(1)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for arm in [a.strip() for a in args.arms.split(",") if a.strip()]:
            # DQN updates only once its replay buffer holds learning_starts (10k) transitions.
            warmup = max(args.warmup, 11_000) if arm == "dqn" else args.warmup
            result[arm] = time_arm(arm, warmup, args.steps, Path(tmp))
            print(f"{arm:15s} {result[arm]}", flush=True)
    result.update(time_evaluation())
    result.update(
        {
            "threads": 1,
            "cpus": os.cpu_count(),
            "load_average_1m": round(os.getloadavg()[0], 2),
            "machine": platform.processor() or platform.machine(),
        }
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
