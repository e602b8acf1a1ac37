"""K-FAC overhead: the wall time of one ACKTR update over one A2C update, same network, same batch.

An A2C update is: forward, policy/value/entropy loss, backward, grad-norm clip 0.5, RMSprop
(lr 7e-4, alpha 0.99, eps 1e-5). An ACKTR update is: forward, the same loss, the true-Fisher
backward inside ``opt.fisher()`` (policy: -log pi of actions sampled from pi; value: Gaussian with
sigma 1 around ``v.detach() + N(0, 1)``), which also computes the factor statistics, the loss
backward, and ``KFAC.step()`` (preconditioning, trust region, momentum; the damped inverses are
refreshed every ``inverse_every`` = 10 updates). Each timed block holds whole cycles of the
amortised parts (inverse refreshes, and Fisher passes when ``stats_every`` > 1). Blocks of A2C and
ACKTR updates alternate in one process, so both see the same machine load; the ratio is of the
median block times.

Two K-FAC settings are timed (more with ``--setting``):

- ``cpu``: the CPU setting of ``benchmarks/long_runs.sh``: the Fisher pass on a strided 1/16 of
  the batch through its own forward pass (the learner's ``fisher_fraction``), statistics on every
  ``STATS_EVERY``-th update only (``stats_every``), the conv layers' im2col products in bfloat16
  (``conv_statistics_dtype``), the factors inverted in float32 (``inverse_dtype``).
  ``atari_cnn_ratio`` and ``tron_net_ratio`` are this setting's.
- ``paper``: the Fisher pass on the whole batch at every update, statistics in float32, inverses
  in float64 (``atari_cnn_paper_ratio``, ``tron_net_paper_ratio``).

Networks:
- ``atari_cnn``: ACKTR's Atari CNN (conv 32 8x8/4, 64 4x4/2, 32 3x3/1, linear 512, policy 6 +
  value), uint8 4x84x84 input, batch 640 (32 envs x 20 steps); the network of the ``atari``
  preset (``acktr_cnn``).
- ``tron_net``: 6 one-hot planes of 17x17, three 3x3 convs of 64 channels (padding 1), linear 256,
  policy 4 + value, batch 320 (64 envs x 5 steps). Its linear layer reads 64*17*17 = 18496
  inputs: an 18497x18497 factor (2.7 GB in float64, about a minute per inverse here) is out of
  reach, so it is excluded from K-FAC and gets the first-order rule.

Usage::

    python benchmarks/kfac_overhead.py                 # 5 timed blocks per setting, wall clock
    python benchmarks/kfac_overhead.py --quick         # 1 timed block per setting
    python benchmarks/kfac_overhead.py --threads 1 --clock cpu   # steady on a loaded machine
    python benchmarks/kfac_overhead.py --setting 0.0625,1,float32,float64   # one more

The last line of output is one JSON object: the ratios, ``parts_ms`` (mean milliseconds per
update of each part, amortised parts included; ``of_which_inverse`` is the inverse refreshes'
share of ``step``), every setting's details, the clock, threads and the load average.
"""

import argparse
import copy
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from acktr.kfac import KFAC

INVERSE_EVERY = 10
STATS_EVERY = 4
CLOCK: Callable[[], float] = time.perf_counter

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float64": torch.float64}


@dataclass(frozen=True)
class Setting:
    """The K-FAC options that trade statistics or precision for speed."""

    fisher_fraction: float
    stats_every: int
    conv_statistics_dtype: torch.dtype
    inverse_dtype: torch.dtype

    @property
    def stride(self) -> int:
        return max(1, round(1 / self.fisher_fraction))

    @property
    def name(self) -> str:
        names = {dtype: name for name, dtype in _DTYPES.items()}
        return (
            f"fraction={self.fisher_fraction:g},stats_every={self.stats_every},"
            f"conv_stats={names[self.conv_statistics_dtype]},inverse={names[self.inverse_dtype]}"
        )


CPU_SETTING = Setting(1 / 16, STATS_EVERY, torch.bfloat16, torch.float32)
PAPER_SETTING = Setting(1.0, 1, torch.float32, torch.float64)


def parse_setting(text: str) -> Setting:
    """``FRACTION,STATS_EVERY,CONV_STATS_DTYPE,INVERSE_DTYPE`` as a :class:`Setting`."""
    parts = text.split(",")
    if len(parts) != 4 or parts[2] not in _DTYPES or parts[3] not in _DTYPES:
        raise ValueError(
            "expected FRACTION,STATS_EVERY,CONV_STATS_DTYPE,INVERSE_DTYPE, dtypes among "
            + ", ".join(_DTYPES)
        )
    fraction, every = float(parts[0]), int(parts[1])
    if not (0 < fraction <= 1 and every >= 1):
        raise ValueError("FRACTION must be in (0, 1] and STATS_EVERY >= 1")
    return Setting(fraction, every, _DTYPES[parts[2]], _DTYPES[parts[3]])


class AtariCNN(nn.Module):
    """The ACKTR Atari network (last conv cut to 32 channels to keep the linear factor small)."""

    def __init__(self, n_actions: int = 6) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(4, 32, 8, stride=4)
        self.conv2 = nn.Conv2d(32, 64, 4, stride=2)
        self.conv3 = nn.Conv2d(64, 32, 3, stride=1)
        self.fc = nn.Linear(32 * 7 * 7, 512)
        self.policy = nn.Linear(512, n_actions)
        self.value = nn.Linear(512, 1)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        h = obs.float() / 255.0
        h = F.relu(self.conv1(h))
        h = F.relu(self.conv2(h))
        h = F.relu(self.conv3(h))
        h = F.relu(self.fc(h.flatten(1)))
        return self.policy(h), self.value(h).squeeze(-1)


class TronNet(nn.Module):
    """A Tron policy-value network over 6 one-hot planes of a 17x17 board."""

    def __init__(self, n_actions: int = 4) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(6, 64, 3, padding=1)
        self.conv2 = nn.Conv2d(64, 64, 3, padding=1)
        self.conv3 = nn.Conv2d(64, 64, 3, padding=1)
        self.fc = nn.Linear(64 * 17 * 17, 256)
        self.policy = nn.Linear(256, n_actions)
        self.value = nn.Linear(256, 1)

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        h = F.relu(self.conv1(obs))
        h = F.relu(self.conv2(h))
        h = F.relu(self.conv3(h))
        h = F.relu(self.fc(h.flatten(1)))
        return self.policy(h), self.value(h).squeeze(-1)


@dataclass
class Batch:
    obs: Tensor
    actions: Tensor
    returns: Tensor


@dataclass
class Case:
    name: str
    make_net: Callable[[], nn.Module]
    batch: Batch
    exclude: tuple[str, ...]


def make_cases() -> list[Case]:
    generator = torch.Generator().manual_seed(0)
    atari_obs = torch.randint(0, 256, (640, 4, 84, 84), dtype=torch.uint8, generator=generator)
    board = torch.randint(0, 6, (320, 17, 17), generator=generator)
    tron_obs = F.one_hot(board, 6).permute(0, 3, 1, 2).float().contiguous()
    return [
        Case(
            "atari_cnn",
            AtariCNN,
            Batch(
                atari_obs,
                torch.randint(0, 6, (640,), generator=generator),
                torch.randn(640, generator=generator),
            ),
            (),
        ),
        Case(
            "tron_net",
            TronNet,
            Batch(
                tron_obs,
                torch.randint(0, 4, (320,), generator=generator),
                torch.randn(320, generator=generator),
            ),
            ("fc",),
        ),
    ]


def a2c_loss(logits: Tensor, values: Tensor, batch: Batch) -> Tensor:
    log_probs = F.log_softmax(logits, dim=-1)
    log_pi_a = log_probs.gather(1, batch.actions[:, None]).squeeze(1)
    advantages = batch.returns - values.detach()
    entropy = -(log_probs.exp() * log_probs).sum(-1).mean()
    return (
        -(advantages * log_pi_a).mean()
        + 0.5 * (batch.returns - values).square().mean()
        - 0.01 * entropy
    )


def fisher_loss(logits: Tensor, values: Tensor) -> Tensor:
    """True-Fisher loss: the model's own sampled actions and a Gaussian value target."""
    sampled = torch.distributions.Categorical(logits=logits.detach()).sample()
    policy_nll = F.cross_entropy(logits, sampled)
    value_nll = 0.5 * (values - (values.detach() + torch.randn_like(values))).square().mean()
    return policy_nll + value_nll


class Timer:
    """Laps of the parts of one update, on the benchmark's clock."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = {}
        self._last = CLOCK()

    def lap(self, part: str) -> None:
        now = CLOCK()
        self.parts[part] = now - self._last
        self._last = now


def a2c_update(net: nn.Module, opt: torch.optim.Optimizer, batch: Batch) -> dict[str, float]:
    timer = Timer()
    logits, values = net(batch.obs)
    loss = a2c_loss(logits, values, batch)
    timer.lap("forward")
    opt.zero_grad()
    loss.backward()
    timer.lap("backward")
    nn.utils.clip_grad_norm_(net.parameters(), 0.5)
    opt.step()
    timer.lap("step")
    return timer.parts


def acktr_update(net: nn.Module, opt: KFAC, batch: Batch, setting: Setting) -> dict[str, float]:
    timer = Timer()
    logits, values = net(batch.obs)
    loss = a2c_loss(logits, values, batch)
    timer.lap("forward")
    stride = setting.stride
    if opt.statistics_due:
        with opt.fisher():
            if stride == 1:
                fisher_loss(logits, values).backward(retain_graph=True)
            else:
                fisher_loss(*net(batch.obs[::stride])).backward()
    timer.lap("fisher_pass")
    opt.zero_grad()
    loss.backward()
    timer.lap("backward")
    opt.step()
    timer.lap("step")
    return timer.parts


def run_block(
    update: Callable[[], dict[str, float]], updates: int
) -> tuple[float, list[dict[str, float]]]:
    start = CLOCK()
    parts = [update() for _ in range(updates)]
    return (CLOCK() - start) / updates, parts


def mean_parts(parts: list[dict[str, float]]) -> dict[str, float]:
    """Mean milliseconds per update of each part: Fisher passes and inverses amortised."""
    return {name: round(1000 * statistics.fmean(p[name] for p in parts), 2) for name in parts[0]}


def measure(case: Case, setting: Setting, blocks: int) -> dict[str, Any]:
    torch.manual_seed(1)
    initial = case.make_net()
    a2c_net, acktr_net = copy.deepcopy(initial), copy.deepcopy(initial)
    rmsprop = torch.optim.RMSprop(a2c_net.parameters(), lr=7e-4, alpha=0.99, eps=1e-5)
    kfac = KFAC(
        acktr_net,
        inverse_every=INVERSE_EVERY,
        stats_every=setting.stats_every,
        conv_statistics_dtype=setting.conv_statistics_dtype,
        inverse_dtype=setting.inverse_dtype,
        exclude=case.exclude,
    )
    # A block holds whole cycles of both amortised parts: after the warm-up update (allocator,
    # caches, first inverse at step 0) each block has the same number of Fisher passes and of
    # inverse refreshes.
    per_block = math.lcm(INVERSE_EVERY, setting.stats_every)
    a2c_update(a2c_net, rmsprop, case.batch)
    acktr_update(acktr_net, kfac, case.batch, setting)
    a2c_times: list[float] = []
    acktr_times: list[float] = []
    a2c_parts: list[dict[str, float]] = []
    acktr_parts: list[dict[str, float]] = []
    for _ in range(blocks):
        a2c_time, a2c_block = run_block(lambda: a2c_update(a2c_net, rmsprop, case.batch), per_block)
        acktr_time, acktr_block = run_block(
            lambda: acktr_update(acktr_net, kfac, case.batch, setting), per_block
        )
        a2c_times.append(a2c_time)
        acktr_times.append(acktr_time)
        a2c_parts += a2c_block
        acktr_parts += acktr_block
    # Updates 1, 2, ... were timed; the inverses were refreshed at steps 10, 20, ...
    refresh = [(i + 1) % INVERSE_EVERY == 0 for i in range(len(acktr_parts))]
    refresh_step = statistics.median(
        p["step"] for p, r in zip(acktr_parts, refresh, strict=True) if r
    )
    plain_step = statistics.median(
        p["step"] for p, r in zip(acktr_parts, refresh, strict=True) if not r
    )
    breakdown = mean_parts(acktr_parts)
    breakdown["of_which_inverse"] = round(1000 * (refresh_step - plain_step) / INVERSE_EVERY, 2)
    a2c_ms, acktr_ms = 1000 * statistics.median(a2c_times), 1000 * statistics.median(acktr_times)
    return {
        "ratio": round(acktr_ms / a2c_ms, 3),
        "a2c_ms": round(a2c_ms, 1),
        "acktr_ms": round(acktr_ms, 1),
        "a2c_parts_ms": mean_parts(a2c_parts),
        "acktr_parts_ms": breakdown,
        "fisher_rows": case.batch.obs[:: setting.stride].shape[0],
    }


def cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = cpuinfo.read_text().splitlines()
        cores = sum(1 for line in lines if line.startswith("processor"))
        for line in lines:
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({cores} cores)"
    return platform.processor() or platform.machine()


def main() -> None:
    global CLOCK
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 timed block per setting")
    parser.add_argument(
        "--threads", type=int, default=2, help="torch intra-op threads (default 2: all cores here)"
    )
    parser.add_argument("--blocks", type=int, help="timed blocks per setting (default 5)")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time (default), or the process's CPU time: with --threads 1 it counts the work"
        " done and not the waiting, which keeps the ratio steady on a loaded machine",
    )
    parser.add_argument(
        "--case",
        choices=("atari_cnn", "tron_net"),
        action="append",
        help="time only this network (repeatable; the JSON then lacks the other's ratios)",
    )
    parser.add_argument(
        "--setting",
        action="append",
        metavar="FRACTION,STATS_EVERY,CONV_STATS_DTYPE,INVERSE_DTYPE",
        help="also time this setting (repeatable), e.g. 0.0625,1,float32,float64",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    blocks = args.blocks or (1 if args.quick else 5)
    settings = {"cpu": CPU_SETTING, "paper": PAPER_SETTING}
    for text in args.setting or []:
        try:
            extra = parse_setting(text)
        except ValueError as e:
            parser.error(f"--setting {text!r}: {e}")
        settings[extra.name] = extra

    load_before = os.getloadavg()
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for case in make_cases():
        if args.case and case.name not in args.case:
            continue
        results[case.name] = {}
        for label, setting in settings.items():
            result = measure(case, setting, blocks)
            results[case.name][label] = result
            print(
                f"{case.name:10s} {setting.name:66s} ACKTR {result['acktr_ms']:8.1f} ms"
                f"  A2C {result['a2c_ms']:7.1f} ms  ratio {result['ratio']:.3f}"
                f"  parts {result['acktr_parts_ms']}",
                flush=True,
            )
    summary = {
        **{
            f"{case}_{key}": by_setting[label]["ratio"]
            for case, by_setting in results.items()
            for key, label in (("ratio", "cpu"), ("paper_ratio", "paper"))
        },
        "ratio_setting": f"cpu: {CPU_SETTING.name}",
        "paper_setting": PAPER_SETTING.name,
        "parts_ms": {
            case: {
                "a2c": next(iter(by_setting.values()))["a2c_parts_ms"],
                **{name: r["acktr_parts_ms"] for name, r in by_setting.items()},
            }
            for case, by_setting in results.items()
        },
        "by_setting": results,
        "clock": args.clock,
        "threads": args.threads,
        "blocks": blocks,
        "load_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "machine": f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
