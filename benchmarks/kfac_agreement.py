"""How far the CPU K-FAC setting's natural gradient is from the paper setting's, on Pong.

ACKTR trains on ``PongNoFrameskip-v4`` with its Atari preset and the Fisher pass on 1/16 of the
batch (the trajectory). Beside it, three K-FAC optimizers on the same network only collect
statistics, each with its own Fisher pass, and precondition the same loss gradient at every
update:

- ``paper``: the Fisher pass on the whole batch at every update (float32 statistics, float64
  inverses): the reference;
- ``sub16``: on a strided 1/16 of the batch at every update (the previous CPU setting);
- ``cpu``: on 1/16 of the batch at every 4th update, conv statistics in bfloat16, float32 inverses
  (the CPU setting of ``benchmarks/kfac_overhead.py``);
- ``sub16_every4``, ``sub16_bf16``, ``sub16_f32inv``: ``sub16`` with one of those changes each;
- ``sub16_every4_slow``: ``sub16_every4`` with the factors decayed by 0.99 per collection rather
  than per update (a 4x longer horizon).

For each, the cosine between its natural gradient and the reference's (all preconditioned layers,
and the dense layer alone), averaged over the updates after the first inverse refresh; the plain
gradient's cosine with the reference is the baseline of no curvature at all. It measures the
statistical cost of the cheaper factors, not learning: that needs the long runs.

Usage::

    python benchmarks/kfac_agreement.py --updates 60

The last line of output is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from acktr.acktr import ACKTR
from acktr.kfac import KFAC, _precondition
from acktr.policies import action_distribution


@dataclass(frozen=True)
class Shadow:
    stride: int
    stats_every: int
    conv_dtype: torch.dtype | None
    inverse_dtype: torch.dtype
    stat_decay: float = 0.99


SHADOWS = {
    "paper": Shadow(1, 1, None, torch.float64),
    "sub16": Shadow(16, 1, None, torch.float64),
    "cpu": Shadow(16, 4, torch.bfloat16, torch.float32),
    # One change of the CPU setting at a time, to tell which one costs what.
    "sub16_every4": Shadow(16, 4, None, torch.float64),
    "sub16_bf16": Shadow(16, 1, torch.bfloat16, torch.float64),
    "sub16_f32inv": Shadow(16, 1, None, torch.float32),
    # Every 4th update with a decay of 0.99 per collection instead of per update.
    "sub16_every4_slow": Shadow(16, 4, None, torch.float64, stat_decay=0.99**0.25),
}
INVERSE_EVERY = 10
DENSE = "torso.net.7"


def gradients(opt: KFAC, natural: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The (preconditioned) gradient of every K-FAC layer, flattened, and that of the dense one."""
    parts, dense = [], torch.empty(0)
    for layer in opt._layers:
        assert layer.weight.grad is not None and layer.bias is not None
        matrix = layer.gradient_matrix(layer.weight.grad, layer.bias.grad)
        if natural:
            state = opt.state[layer.weight]
            matrix = _precondition(state["kfac_s_inv"], matrix, state["kfac_a_inv"])
        parts.append(matrix.flatten())
        if layer.name == DENSE:
            dense = parts[-1]
    return torch.cat(parts), dense


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=60, help="updates of 640 steps")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    learner = ACKTR.for_env("PongNoFrameskip-v4", seed=0, overrides={"fisher_fraction": "0.0625"})
    model = learner.model
    assert learner.env is not None
    learner._obs, _ = learner.env.reset(seed=0)  # what learn() does before its first rollout
    learner._prev_done = np.zeros(learner.env.num_envs, dtype=bool)
    shadows = {
        name: KFAC(
            model,
            stats_every=spec.stats_every,
            stat_decay=spec.stat_decay,
            conv_statistics_dtype=spec.conv_dtype,
            inverse_dtype=spec.inverse_dtype,
        )
        for name, spec in SHADOWS.items()
    }
    compared = (*(name for name in SHADOWS if name != "paper"), "grad")
    cosines: dict[str, list[float]] = {
        f"{name}{part}": [] for name in compared for part in ("", "_dense")
    }
    for t in range(args.updates):
        learner._lr_now = learner.config.lr * (1 - t / args.updates)
        batch = learner._rollout()
        mask = batch.valid
        obs, actions = batch.obs[mask], batch.actions[mask]
        advantages, returns = batch.advantages[mask], batch.returns[mask]
        for name, opt in shadows.items():
            opt.steps = t
            if opt.statistics_due:
                params, values = model(obs[:: SHADOWS[name].stride])
                dist = action_distribution(params, learner.action_space)
                noise = (values + torch.randn_like(values)).detach()
                with opt.fisher():
                    (
                        -dist.log_prob(dist.sample()).mean() + 0.5 * (values - noise).pow(2).mean()
                    ).backward()
            if t % INVERSE_EVERY == 0:
                opt._refresh_inverses(opt.param_groups[0]["damping"])
        model.zero_grad()
        params, values = model(obs)
        dist = action_distribution(params, learner.action_space)
        loss = (
            -(advantages * dist.log_prob(actions)).mean()
            + learner.config.vf_coef * 0.5 * (returns - values).pow(2).mean()
            - 0.01 * dist.entropy().mean()
        )
        loss.backward()
        with torch.no_grad():
            reference, reference_dense = gradients(shadows["paper"], natural=True)
            vectors = {n: gradients(shadows[n], natural=True) for n in compared if n != "grad"}
            vectors["grad"] = gradients(shadows["paper"], natural=False)
            if t >= INVERSE_EVERY:
                for name, (whole, dense_part) in vectors.items():
                    cosines[name].append(float(F.cosine_similarity(whole, reference, dim=0)))
                    cosines[f"{name}_dense"].append(
                        float(F.cosine_similarity(dense_part, reference_dense, dim=0))
                    )
        model.zero_grad()
        learner._update(batch)
        latest = " ".join(f"{k} {v[-1]:.3f}" for k, v in cosines.items() if v)
        print(f"update {t}: {latest}", flush=True)
    summary = {
        "mean_cosine_to_paper": {k: round(statistics.fmean(v), 4) for k, v in cosines.items()},
        "updates": args.updates,
        "compared_updates": len(cosines["cpu"]),
        "load": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
