"""Data-parallel scaling: environment steps per second of ACKTR on Pong with 1 and 2 ranks.

Each measurement launches the ranks the way ``tron train --nprocs N`` does (``acktr.distributed``:
torch's elastic launcher, gloo on 127.0.0.1). The run is ACKTR's Atari preset on
``PongNoFrameskip-v4``: 32 envs x 20 steps per update in all, split evenly among the ranks, so
every rank count takes the same steps with the same hyperparameters. After one warm-up update
(allocations, the first inverses) rank 0 times ``--updates`` updates (rollout, Fisher pass, loss,
all-reduces, K-FAC step); that is one sample of env steps/s. Launches of 1 and 2 ranks alternate
``--repeats`` times, and each figure is the median. ``efficiency`` is
``steps_per_s[2] / (2 * steps_per_s[1])``: 1 is perfect scaling.

On a shared machine the wall clock says little (two ranks get no more of a saturated CPU than
one), so the ranks also report the CPU time they used (``time.process_time``, emulator threads
included) per 1000 env steps, summed over the ranks: ``cpu_efficiency`` is the one-rank figure
over the two-rank one, the efficiency two otherwise idle cores would give, waiting aside. The
two-rank launches also time the all-reduce of the gradients and of the factors over gloo.

It also reports, for the Atari network, what one update communicates (float32 bytes: the
gradient all-reduce every update; the factor all-reduce and the inverse broadcasts once per
``inverse_every`` updates) and the measured time of one refresh of the inverses done by one rank
against the largest share of it a rank does when the inversions are shared out among 2, 4 and 8
ranks.

Usage::

    python benchmarks/distributed_scaling.py                      # 2 repeats of 4 updates
    python benchmarks/distributed_scaling.py --repeats 3 --fisher-fraction 0.0625

The last line of output is one JSON object (``steps_per_s`` by rank count, ``efficiency``, ...).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from acktr.acktr import ACKTR
from acktr.distributed import World, init_world, launch
from acktr.kfac import KFAC, _damped_inverse, _symmetric_float64

ENV_ID = "PongNoFrameskip-v4"
TOTAL_ENVS = 32


def measure(ranks: int, updates: int, fisher_fraction: float, threads: int, out: str) -> int:
    """One rank of a measurement; rank 0 writes the steps/s of ``updates`` updates to ``out``."""
    torch.set_num_threads(threads)
    world = init_world("cpu")
    overrides = {"fisher_fraction": str(fisher_fraction)}
    learner = ACKTR.for_env(
        ENV_ID, seed=0, device="cpu", num_envs=TOTAL_ENVS // ranks, overrides=overrides
    )
    if world.size > 1:
        learner.distribute(world)
    batch = learner.config.n_steps * TOTAL_ENVS
    total = (updates + 1) * batch
    learner.learn(batch)  # warm-up
    start, cpu = time.perf_counter(), time.process_time()
    learner.learn(total)
    seconds = time.perf_counter() - start
    cpu_s = torch.tensor([time.process_time() - cpu], dtype=torch.float64)
    world.all_reduce_sum_([cpu_s])
    result: dict[str, Any] = {
        "steps_per_s": updates * batch / seconds,
        "cpu_s_per_1k_steps": 1000 * float(cpu_s) / (updates * batch),
    }
    if world.size > 1:
        optimizer = learner.optimizers["model"]
        assert isinstance(optimizer, KFAC)
        grads = [torch.zeros_like(p) for p in learner.model.parameters()]
        factors = [
            torch.zeros_like(optimizer.state[layer.weight][key])
            for layer in optimizer._layers
            for key in ("kfac_a", "kfac_s")
        ]
        for name, tensors in (("gradients", grads), ("factors", factors)):
            times = []
            for _ in range(5):
                begin = time.perf_counter()
                world.all_reduce_mean_(tensors)
                times.append(time.perf_counter() - begin)
            result[f"allreduce_{name}_s"] = statistics.median(times)
    if world.is_main:
        Path(out).write_text(json.dumps(result))
    world.close()
    return 0


def communication(model: torch.nn.Module, optimizer: KFAC, inverse_every: int) -> dict[str, Any]:
    """Bytes one rank sends and receives per update for the gradients, factors and inverses."""
    grads = 4 * sum(p.numel() for p in model.parameters())
    factors = 4 * sum(
        optimizer.state[layer.weight][key].numel()
        for layer in optimizer._layers
        for key in ("kfac_a", "kfac_s")
    )
    return {
        "gradient_allreduce_bytes": grads,
        "factor_allreduce_bytes_per_inversion": factors,
        "inverse_broadcast_bytes_per_inversion": factors,
        "mean_bytes_per_update": round(grads + 2 * factors / inverse_every),
        "inverse_every": inverse_every,
    }


def inversion_times(ranks: list[int]) -> tuple[dict[str, Any], dict[str, float]]:
    """Communication of the Atari network, and the seconds of one refresh of the inverses on
    one rank against the largest share a rank inverts with the inversions shared out."""
    learner = ACKTR.for_env(ENV_ID, seed=0, device="cpu", num_envs=2)
    learner.learn(learner.config.n_steps * 2)  # real factors
    optimizer = learner.optimizers["model"]
    assert isinstance(optimizer, KFAC)
    seconds: dict[tuple[Any, str], float] = {}
    for layer in optimizer._layers:
        state = optimizer.state[layer.weight]
        for factor, key in (("A", "kfac_a"), ("S", "kfac_s")):
            matrix = _symmetric_float64(state[key])
            start = time.perf_counter()
            _damped_inverse(matrix, 0.1, key)
            seconds[layer, factor] = time.perf_counter() - start
    out: dict[str, float] = {}
    for size in ranks:
        optimizer._world = World(rank=0, size=size)
        owners = optimizer._inverse_owners(optimizer._layers)
        load = [0.0] * size
        for task, rank in owners.items():
            load[rank] += seconds[task]
        out[str(size)] = round(max(load), 4)
    optimizer._world = World()
    comm = communication(learner.model, optimizer, learner.config.inverse_every)
    return comm, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2, help="launches per rank count")
    parser.add_argument("--updates", type=int, default=4, help="timed updates per launch")
    parser.add_argument(
        "--fisher-fraction", type=float, default=1.0, help="part of the batch in the Fisher pass"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per rank")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    counts = [1, 2]
    rates: dict[int, list[float]] = {n: [] for n in counts}
    cpu: dict[int, list[float]] = {n: [] for n in counts}
    allreduce: dict[str, list[float]] = {"gradients": [], "factors": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for n in counts:
                out = os.path.join(tmp, f"{n}-{repeat}.json")
                status = launch(
                    n, measure, [n, args.updates, args.fisher_fraction, args.threads, out]
                )
                if status:
                    raise SystemExit(f"the {n}-rank run failed with status {status}")
                measured = json.loads(Path(out).read_text())
                rate = measured["steps_per_s"]
                rates[n].append(rate)
                cpu[n].append(measured["cpu_s_per_1k_steps"])
                for name, times in allreduce.items():
                    if f"allreduce_{name}_s" in measured:
                        times.append(measured[f"allreduce_{name}_s"])
                print(
                    f"repeat {repeat}: {n} rank(s) {rate:7.1f} steps/s, "
                    f"{cpu[n][-1]:.2f} CPU s per 1000 steps",
                    flush=True,
                )
    medians = {n: statistics.median(r) for n, r in rates.items()}
    cpu_medians = {n: statistics.median(c) for n, c in cpu.items()}
    comm, inversion = inversion_times([1, 2, 4, 8])
    result = {
        "env": ENV_ID,
        "envs": TOTAL_ENVS,
        "steps_per_s": {str(n): round(v, 1) for n, v in medians.items()},
        "efficiency": round(medians[2] / (2 * medians[1]), 3),
        "cpu_s_per_1k_steps": {str(n): round(v, 3) for n, v in cpu_medians.items()},
        "cpu_efficiency": round(cpu_medians[1] / cpu_medians[2], 3),
        "allreduce_s_gloo_loopback": {
            name: round(statistics.median(t), 4) for name, t in allreduce.items()
        },
        "samples": {str(n): [round(v, 1) for v in r] for n, r in rates.items()},
        "fisher_fraction": args.fisher_fraction,
        "updates_per_launch": args.updates,
        "repeats": args.repeats,
        "communication": comm,
        "inversion_refresh_s_by_ranks": inversion,
        "threads_per_rank": args.threads,
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
