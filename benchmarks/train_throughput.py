"""Training throughput: environment steps per second of ACKTR and A2C on Pong, side by side.

Each learner trains on ``PongNoFrameskip-v4`` with its Atari preset (ACKTR: 32 envs x 20 steps,
the 32-64-32-512 CNN, K-FAC; A2C: 16 envs x 5 steps, the Nature CNN, RMSprop), so a timed step
includes the emulator (ale-py's C++ vector env), acting, and the update. ACKTR is timed twice: with
the paper's Fisher pass on the whole batch, and with it on 1/16 of the batch (``fisher_fraction``,
the setting the CPU long runs use). After a warm-up update, blocks of updates of the variants
alternate so that all see the same machine load; each figure is the median over blocks.

Usage::

    python benchmarks/train_throughput.py             # 3 blocks of ~1280 steps per variant
    python benchmarks/train_throughput.py --blocks 5 --threads 2

The last line of output is one JSON object (``acktr_steps_per_s``, ``a2c_steps_per_s``, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import torch

from acktr.acktr import A2C, ACKTR, ActorCriticLearner

ENV_ID = "PongNoFrameskip-v4"
BLOCK_STEPS = 1280  # 2 ACKTR updates (32 x 20), 16 A2C updates (16 x 5)


def build(variant: str) -> ActorCriticLearner:
    if variant == "a2c":
        return A2C.for_env(ENV_ID, seed=0)
    overrides = {"fisher_fraction": "0.0625"} if variant == "acktr_fisher_1_16" else {}
    return ACKTR.for_env(ENV_ID, seed=0, overrides=overrides)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=3, help="timed blocks per variant")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    variants = ["acktr", "acktr_fisher_1_16", "a2c"]
    learners = {v: build(v) for v in variants}
    for learner in learners.values():
        batch = learner.config.n_steps * learner.env.num_envs  # type: ignore[union-attr]
        learner.learn(batch)  # warm-up: first update, allocations, the first inverses
    rates: dict[str, list[float]] = {v: [] for v in variants}
    for block in range(args.blocks):
        for v in variants:
            learner = learners[v]
            start_steps, start = learner.num_timesteps, time.perf_counter()
            learner.learn(start_steps + BLOCK_STEPS)
            rate = (learner.num_timesteps - start_steps) / (time.perf_counter() - start)
            rates[v].append(rate)
            print(f"block {block}: {v:18s} {rate:7.1f} steps/s", flush=True)
    medians = {v: statistics.median(r) for v, r in rates.items()}
    result = {
        "env": ENV_ID,
        "acktr_steps_per_s": round(medians["acktr"], 1),
        "a2c_steps_per_s": round(medians["a2c"], 1),
        "acktr_fisher_1_16_steps_per_s": round(medians["acktr_fisher_1_16"], 1),
        "a2c_over_acktr": round(medians["a2c"] / medians["acktr"], 2),
        "a2c_over_acktr_fisher_1_16": round(medians["a2c"] / medians["acktr_fisher_1_16"], 2),
        "blocks": args.blocks,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
