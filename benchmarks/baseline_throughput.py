"""Training throughput of the DQN and A3C baselines on this machine, and the replay buffer's cost.

Measured (env steps counted over all sub-environments, wall clock, medians of repeats):

- ``dqn_pong_steps_per_s``: DQN with its Atari preset (Nature CNN, batch 32, one gradient step per
  4 env steps) on ``ALE/Pong-v5``, one env, after the replay warm-up;
- ``a3c_pong_steps_per_s``: A3C with its Atari preset network (the small CNN of Mnih et al. 2013),
  ``--workers`` processes (default 2: one per core here), one env each;
- ``a3c``: per case (Pong; CartPole's classic preset with 1 and with 2 workers) steps/s, the
  workers' CPU microseconds per env step (what the scaling costs, readable on a shared machine
  where wall-clock rates depend on other jobs) and ``stale_fraction``, the share of pushes that
  found the global network changed since the worker's pull;
- ``dqn_cartpole_steps_per_s``: DQN's classic preset while learning (0.5 gradient steps per step);
  DQN figures also come as CPU microseconds per env step;
- ``replay_sample_us``: one Atari minibatch of 32 (stacks and next stacks rebuilt from single
  frames, 1-step targets), and the bytes stored per Atari transition against the naive layout.

Usage::

    python benchmarks/baseline_throughput.py           # ~1-2 minutes
    python benchmarks/baseline_throughput.py --quick   # one repeat, shorter runs

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import resource
import statistics
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acktr.envs import make_vec_env
from agents import a3c, dqn
from agents.replay import ReplayBuffer


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = cpuinfo.read_text().splitlines()
        cores = sum(1 for line in lines if line.startswith("processor"))
        for line in lines:
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({cores} cores)"
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """The 1-minute load average (the machine is shared: read timings against it)."""
    path = Path("/proc/loadavg")
    return float(path.read_text().split()[0]) if path.exists() else None


def dqn_rate(env_id: str, config: dqn.DQNConfig, warmup: int, timed: int) -> tuple[float, float]:
    """Env steps/s and CPU microseconds per env step of DQN training, timed after ``warmup``
    steps (buffer filled, updates on)."""
    learner = dqn.DQN(make_vec_env(env_id, 1), config, seed=0, device="cpu")
    learner.learn(warmup)
    start, cpu = time.perf_counter(), time.process_time()
    learner.learn(warmup + timed)
    return timed / (time.perf_counter() - start), 1e6 * (time.process_time() - cpu) / timed


def a3c_rate(env_id: str, config: a3c.A3CConfig, steps: int) -> tuple[float, float, float]:
    """Env steps/s (median of ``learn``'s reports, the first with process start-up dropped),
    worker CPU microseconds per env step, and the stale fraction of pushes."""
    learner = a3c.A3C(a3c.MakeVecEnv(env_id, config.envs_per_worker), config, seed=0)
    rates: list[float] = []

    def record(lrn: Any, metrics: Mapping[str, float]) -> None:
        rates.append(metrics["charts/steps_per_s"])

    cpu_before = children_cpu()
    learner.learn(steps, callback=record)
    cpu_us = 1e6 * (children_cpu() - cpu_before) / learner.num_timesteps
    stats = learner.worker_stats
    stale = sum(s["stale"] for s in stats) / max(1, sum(s["updates"] for s in stats))
    return statistics.median(rates[1:] or rates), cpu_us, stale


def children_cpu() -> float:
    """CPU seconds of this process's finished (joined) children: the A3C workers."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def replay_sample_us(batches: int) -> float:
    """Microseconds per Atari minibatch of 32 from a 50k-transition buffer."""
    buffer = ReplayBuffer(50_000, 1, (4, 84, 84), np.uint8, frame_stack=4, n_step=1)
    obs = np.zeros((1, 4, 84, 84), dtype=np.uint8)
    frames = np.random.default_rng(0).integers(0, 256, size=(64, 84, 84), dtype=np.uint8)
    step = 0  # step within the episode: 1000-step episodes, then the NEXT_STEP reset step
    for _ in range(50_000):
        for j, k in enumerate(range(step - 3, step + 1)):
            obs[0, j] = frames[k % 64] if k >= 0 else 0
        ended = np.array([step == 999])
        buffer.add(obs, np.zeros(1), np.zeros(1), ended, np.zeros(1, bool))
        step = 0 if step == 1000 else step + 1
    buffer.sample(32)
    start = time.perf_counter()
    for _ in range(batches):
        buffer.sample(32)
    return 1e6 * (time.perf_counter() - start) / batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, shorter runs")
    parser.add_argument("--workers", type=int, default=2, help="A3C workers on Pong (default 2)")
    args = parser.parse_args()
    repeats = 1 if args.quick else 3
    scale = 1 if args.quick else 2
    torch.set_num_threads(1)

    atari = dataclasses.replace(
        dqn.PRESETS["atari"].config, buffer_size=20_000, learning_starts=1_000, log_every=10**9
    )
    runs = [dqn_rate("ALE/Pong-v5", atari, 1_000, 1_000 * scale) for _ in range(repeats)]
    dqn_pong = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    print(f"dqn  pong      {dqn_pong[0]:8.0f} steps/s  {dqn_pong[1]:6.0f} cpu us/step", flush=True)

    classic = dataclasses.replace(dqn.PRESETS["classic"].config, log_every=10**9)
    runs = [dqn_rate("CartPole-v1", classic, 2_000, 5_000 * scale) for _ in range(repeats)]
    dqn_cartpole = statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)
    print(
        f"dqn  cartpole  {dqn_cartpole[0]:8.0f} steps/s  {dqn_cartpole[1]:6.0f} cpu us/step",
        flush=True,
    )

    a3c_results: dict[str, dict[str, float]] = {}
    cases = [
        ("pong", "ALE/Pong-v5", "atari", args.workers, 3_000 * scale),
        ("cartpole_1_worker", "CartPole-v1", "classic", 1, 10_000 * scale),
        ("cartpole_2_workers", "CartPole-v1", "classic", 2, 10_000 * scale),
    ]
    for name, env_id, suite, workers, steps in cases:
        config = dataclasses.replace(
            a3c.PRESETS[suite].config, num_workers=workers, log_every=steps // 5
        )
        a3c_runs = [a3c_rate(env_id, config, steps) for _ in range(repeats)]
        result = {
            "steps_per_s": statistics.median(r[0] for r in a3c_runs),
            "cpu_us_per_step": statistics.median(r[1] for r in a3c_runs),
            "stale_fraction": statistics.median(r[2] for r in a3c_runs),
            "workers": workers,
        }
        a3c_results[name] = {k: round(v, 3) for k, v in result.items()}
        print(
            f"a3c  {name:18s} {result['steps_per_s']:8.0f} steps/s  "
            f"{result['cpu_us_per_step']:6.0f} cpu us/step  stale {result['stale_fraction']:.2f}",
            flush=True,
        )

    sample_us = statistics.median(replay_sample_us(500) for _ in range(repeats))
    per_transition = ReplayBuffer(1_000, 1, (4, 84, 84), np.uint8, frame_stack=4).nbytes / 1_000
    print(f"replay sample  {sample_us:8.0f} us per Atari batch of 32", flush=True)

    summary = {
        "dqn_pong_steps_per_s": round(dqn_pong[0], 1),
        "dqn_pong_cpu_us_per_step": round(dqn_pong[1], 1),
        "a3c_pong_steps_per_s": a3c_results["pong"]["steps_per_s"],
        "dqn_cartpole_steps_per_s": round(dqn_cartpole[0], 1),
        "dqn_cartpole_cpu_us_per_step": round(dqn_cartpole[1], 1),
        "a3c": a3c_results,
        "replay_sample_us": round(sample_us, 1),
        "replay_bytes_per_atari_transition": per_transition,
        "naive_bytes_per_atari_transition": 2 * 4 * 84 * 84 + 13,
        "repeats": repeats,
        "machine": f"{cpu_name()}, torch {torch.__version__}",
        "load_average": load_average(),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
