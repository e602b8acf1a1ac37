"""Data parallelism on ``torch.distributed``: the process group, rank-aware seeds, collectives, launch.

ACKTR and A2C train data-parallel by synchronous SGD. Every rank (one process) steps its own slice
of the vector envs with its own seeds and computes the loss and the Fisher statistics of its slice;
the gradients are averaged across ranks (weighted by each rank's number of samples, so that W ranks
of B/W envs take the step one process of B envs would), the K-FAC factors are averaged before they
are inverted and the inversions are shared out (``acktr.kfac``), and every rank then applies the
same update: the parameters stay identical on all ranks without ever being sent again.

This module holds what is not learning maths:

- ``World``: one rank's view of the process group and the collectives the learners use. ``World()``
  is the single-process world, whose collectives return their input untouched, so a learner calls
  them unconditionally and a one-process run does exactly what it did before.
- ``init_world``: the process group from the environment torchrun sets (``RANK``, ``WORLD_SIZE``,
  ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``): gloo on the CPU, nccl on CUDA (one GPU per
  rank, ``cuda:LOCAL_RANK``).
- ``launch``: N ranks on this machine through torch's elastic launcher, the engine of
  ``torchrun --standalone --nproc_per_node=N``, so both launches run the same per-rank code.
- ``rank_seed``: a seed per rank, rank 0 keeping the run's seed.

Failure: every collective runs under the group's timeout (``timeout_s``). A rank that dies closes
its connections and the others fail at their next collective within milliseconds; a rank that
hangs is given up on after ``timeout_s``. Either way the surviving ranks raise ``DistributedError``
with one line that names the rank, the operation and the cause, instead of waiting forever.
"""

from __future__ import annotations

import datetime
import logging
import os
import re
import signal
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Seconds a collective waits for the other ranks before the group is given up on. Long enough for
#: a rank that writes a checkpoint or plays its share of a gauntlet while the others wait.
DEFAULT_TIMEOUT_S = 300.0

#: Exit status of a rank that stopped because the process group failed (it printed why).
EXIT_LOST_GROUP = 3

_TORCHRUN_VARIABLES = ("RANK", "WORLD_SIZE")


class DistributedError(RuntimeError):
    """The process group failed (a rank died, hung or never joined); the message is one line."""


@dataclass(frozen=True)
class World:
    """One rank's view of a data-parallel run; ``World()`` is the single-process world.

    The collectives are those of the default process group. In the single-process world they
    return at once and leave their arguments untouched.

    Attributes:
        rank: This process's rank, ``0 <= rank < size``.
        size: Number of ranks.
        local_rank: Rank on this machine (the GPU index under nccl).
        device: Where this rank's tensors live (small collective buffers are made there).
        backend: ``gloo`` or ``nccl`` (empty in the single-process world).
        timeout_s: Timeout of every collective, in seconds.
    """

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    backend: str = ""
    timeout_s: float = DEFAULT_TIMEOUT_S

    @property
    def is_main(self) -> bool:
        """Rank 0: the rank that logs, shows progress and writes checkpoints."""
        return self.rank == 0

    def all_reduce_mean_(self, tensors: Sequence[Tensor], weight: float | None = None) -> None:
        """Replace each tensor by its average over the ranks, in place (one collective per dtype).

        With ``weight`` the average is weighted: ``Σ_r w_r t_r / Σ_r w_r``, each rank passing its
        own ``w_r`` (its number of samples, say). A rank of weight 0 contributes nothing, even
        non-finite values; if every weight is 0 the tensors become 0.

        Raises:
            DistributedError: if the process group failed.
        """
        if self.size == 1 or not tensors:
            return
        for group in _by_dtype(tensors):
            parts = [t.detach().reshape(-1) for t in group]
            flat = torch.cat(parts) if weight is None else _weighted(parts, weight)
            self._run("all_reduce", dist.all_reduce, flat)
            if weight is None:
                flat.div_(self.size)
            else:
                total = float(flat[-1])
                flat = flat[:-1].div_(total) if total > 0 else flat[:-1].zero_()
            _unflatten_into(flat, group)

    def all_reduce_sum_(self, tensors: Sequence[Tensor]) -> None:
        """Replace each tensor by its sum over the ranks, in place (one collective per dtype).

        Raises:
            DistributedError: if the process group failed.
        """
        if self.size == 1 or not tensors:
            return
        for group in _by_dtype(tensors):
            flat = torch.cat([t.detach().reshape(-1) for t in group])
            self._run("all_reduce", dist.all_reduce, flat)
            _unflatten_into(flat, group)

    def broadcast_(self, tensors: Sequence[Tensor], src: int = 0) -> None:
        """Overwrite each tensor with rank ``src``'s, in place (one collective per dtype).

        Raises:
            DistributedError: if the process group failed.
        """
        if self.size == 1 or not tensors:
            return
        for group in _by_dtype(tensors):
            flat = torch.cat([t.detach().reshape(-1) for t in group])
            self._run("broadcast", dist.broadcast, flat, src)
            if self.rank != src:
                _unflatten_into(flat, group)

    def all_gather(self, tensor: Tensor) -> list[Tensor]:
        """Every rank's ``tensor`` (same shape and dtype on all ranks), in rank order.

        Raises:
            DistributedError: if the process group failed.
        """
        if self.size == 1:
            return [tensor]
        out = [torch.empty_like(tensor) for _ in range(self.size)]
        self._run("all_gather", dist.all_gather, out, tensor.contiguous())
        return out

    def all_gather_object(self, obj: T) -> list[T]:
        """Every rank's picklable ``obj``, in rank order.

        Raises:
            DistributedError: if the process group failed.
        """
        if self.size == 1:
            return [obj]
        out: list[Any] = [None] * self.size
        self._run("all_gather_object", dist.all_gather_object, out, obj)
        return out

    def broadcast_object(self, obj: T, src: int = 0) -> T:
        """Rank ``src``'s picklable ``obj`` (the others pass anything, ``None`` say).

        Raises:
            DistributedError: if the process group failed.
        """
        if self.size == 1:
            return obj
        box: list[Any] = [obj if self.rank == src else None]
        self._run("broadcast_object_list", dist.broadcast_object_list, box, src)
        return box[0]

    def close(self) -> None:
        """Leave the process group (every rank, at the end of a run)."""
        if self.size > 1 and dist.is_initialized():
            dist.destroy_process_group()

    def _run(self, op: str, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except RuntimeError as e:  # gloo's and nccl's errors (DistBackendError included)
            raise DistributedError(
                f"rank {self.rank} of {self.size}: {op} failed ({_cause(e)}); another rank died "
                f"or did not respond within {self.timeout_s:g} s (see its output)"
            ) from None


def leave_lost_group(message: str) -> NoReturn:
    """Print ``message`` (one line) and end this rank at once with ``EXIT_LOST_GROUP``.

    Call it after a ``DistributedError``, once files are closed. A group whose peer died cannot be
    torn down cleanly: gloo's teardown, in ``destroy_process_group`` or at interpreter exit, can
    abort the process ("terminate called without an active exception", SIGABRT), so the rank
    leaves without it.
    """
    print(message, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(EXIT_LOST_GROUP)


def launched_by_torchrun() -> bool:
    """Whether this process is a rank started by torchrun (or ``launch``): ``RANK`` and
    ``WORLD_SIZE`` are set."""
    return all(name in os.environ for name in _TORCHRUN_VARIABLES)


def init_world(device: str = "auto", timeout_s: float = DEFAULT_TIMEOUT_S) -> World:
    """Join the process group described by torchrun's environment variables.

    Outside torchrun (no ``RANK``/``WORLD_SIZE``), and for a world of one rank, no group is made
    and the single-process ``World`` comes back (on the requested device).

    Args:
        device: ``auto`` (CUDA if available), ``cpu`` or ``cuda``; on CUDA each rank takes GPU
            ``LOCAL_RANK`` and the backend is nccl, on the CPU it is gloo.
        timeout_s: timeout of the rendezvous and of every collective, in seconds.

    Raises:
        DistributedError: incomplete torchrun variables, a missing GPU, or a group that could not
            be joined within ``timeout_s``.
    """
    if not timeout_s > 0:
        raise DistributedError(f"the process-group timeout must be > 0 s, got {timeout_s}")
    env = os.environ
    rank = int(env.get("RANK", "0"))
    size = int(env.get("WORLD_SIZE", "1"))
    local_rank = int(env.get("LOCAL_RANK", "0"))
    use_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise DistributedError(
                f"rank {rank} has LOCAL_RANK {local_rank} but this machine has "
                f"{torch.cuda.device_count()} CUDA GPUs: start at most one rank per GPU"
            )
        where = torch.device("cuda", local_rank)
        torch.cuda.set_device(where)
    else:
        where = torch.device("cpu")
    if size == 1:
        return World(device=where, timeout_s=timeout_s)
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if name not in env]
    if missing:
        raise DistributedError(
            f"RANK and WORLD_SIZE are set but {' and '.join(missing)} not: start the ranks with "
            "torchrun (or tron train --nprocs N)"
        )
    backend = "nccl" if where.type == "cuda" else "gloo"
    try:
        dist.init_process_group(
            backend,
            rank=rank,
            world_size=size,
            timeout=datetime.timedelta(seconds=timeout_s),
        )
    except (RuntimeError, ValueError) as e:
        raise DistributedError(
            f"rank {rank} of {size} could not join the process group at "
            f"{env['MASTER_ADDR']}:{env['MASTER_PORT']} within {timeout_s:g} s ({_cause(e)})"
        ) from None
    return World(rank, size, local_rank, where, backend, timeout_s)


def rank_seed(seed: int, rank: int, num_timesteps: int = 0) -> int:
    """The seed of rank ``rank``'s random streams in a run seeded ``seed``.

    Rank 0 of a fresh run keeps ``seed``, so a one-rank run is the plain run; other ranks (and
    every rank of a resumed run, keyed by the step count it resumes at) get independent seeds.
    """
    if rank == 0 and num_timesteps == 0:
        return seed
    state = np.random.SeedSequence([seed, rank, num_timesteps]).generate_state(1)
    return int(state[0] & 0x7FFF_FFFF)


def interrupt_once() -> None:
    """Make the first SIGINT raise ``KeyboardInterrupt`` and ignore the ones after it.

    A rank gets SIGINT twice on Ctrl-C: from the terminal, and from its launcher (torchrun, or
    ``launch``) passing the signal on; the second would interrupt the rank's clean exit.
    """

    def handler(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)


class LaunchError(RuntimeError):
    """A rank of a ``launch`` failed; the message is one line naming it."""


def launch(nprocs: int, entrypoint: Callable[..., int], args: Sequence[Any] = ()) -> int:
    """Run ``entrypoint(*args)`` as ``nprocs`` ranks on this machine, like ``torchrun --standalone``.

    Torch's elastic launcher starts the ranks (spawned processes) with torchrun's environment on a
    free port of 127.0.0.1, so ``init_world`` in the entrypoint joins the group exactly as under
    torchrun. If a rank fails, the launcher stops the others; Ctrl-C stops them all; a rank whose
    launcher dies gets SIGINT (``PR_SET_PDEATHSIG``), so no rank is left orphaned.

    Args:
        nprocs: number of ranks, at least 1.
        entrypoint: a picklable function (module level) returning an exit status; a rank that
            returns non-zero exits with that status, which stops the others.
        args: its picklable arguments.

    Returns:
        0 when every rank returned 0; otherwise the status of a rank that exited with
        ``EXIT_LOST_GROUP``, 2 or 130, statuses by which ranks say they printed why.

    Raises:
        LaunchError: a rank crashed, was killed or exited with another status (one line).
        KeyboardInterrupt: the launcher was interrupted (SIGINT, SIGTERM, SIGHUP); the ranks
            have been stopped.
    """
    from torch.distributed.elastic.multiprocessing.api import DefaultLogsSpecs, SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nprocs < 1:
        raise ValueError(f"nprocs must be at least 1, got {nprocs}")
    # The launcher's directory for per-rank error files, removed afterwards (by default it leaves
    # an empty torchelastic_* directory in /tmp behind every launch).
    logs = tempfile.TemporaryDirectory(prefix="tron-launch-")
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nprocs,
        run_id=str(uuid.uuid4()),
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",
        max_restarts=0,
        monitor_interval=0.1,
        start_method="spawn",
        logs_specs=DefaultLogsSpecs(log_dir=logs.name),
    )
    # The launcher logs every step and each failure with a traceback of its own (on loggers
    # with levels of their own); the ranks say what went wrong, and a LaunchError says which rank
    # it was. This process does nothing else meanwhile, so logging is switched off here.
    disabled = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    try:
        elastic_launch(config, _exit_with_status)(entrypoint, *args)
    except ChildFailedError as e:
        return _reported_status(e.failures)
    except SignalException as e:
        raise KeyboardInterrupt(f"launcher stopped by {e.sigval.name}") from None
    finally:
        logging.disable(disabled)
        logs.cleanup()
    return 0


def _exit_with_status(entrypoint: Callable[..., int], *args: Any) -> None:
    """A rank of ``launch``: a non-zero status becomes the process's exit status."""
    status = entrypoint(*args)
    if status:
        raise SystemExit(status)


#: Statuses of ranks that printed their own one-line reason before exiting.
_SELF_REPORTED = (2, EXIT_LOST_GROUP, 130)


def _reported_status(failures: dict[int, Any]) -> int:
    """The exit status of a failed launch, or a ``LaunchError`` for a rank that said nothing."""
    # A killed or crashed rank is the cause; ranks that lost it, or that the launcher stopped
    # (SIGTERM) after it, are consequences.
    ordered = sorted(failures.items(), key=lambda item: item[1].timestamp)
    stopped = -int(signal.SIGTERM)
    for rank, failure in ordered:
        if failure.exitcode not in (*_SELF_REPORTED, stopped):
            raise LaunchError(_describe_exit(rank, failure.pid, failure.exitcode))
    for _, failure in ordered:
        if failure.exitcode in _SELF_REPORTED:
            return int(failure.exitcode)
    rank, failure = ordered[0]
    raise LaunchError(_describe_exit(rank, failure.pid, failure.exitcode))


def _describe_exit(rank: int, pid: int, exitcode: int) -> str:
    if exitcode < 0:
        how = f"was killed by {signal.Signals(-exitcode).name}"
    else:
        how = f"exited with status {exitcode}"
    return f"rank {rank} (pid {pid}) {how}; the other ranks were stopped"


def _by_dtype(tensors: Sequence[Tensor]) -> list[list[Tensor]]:
    groups: dict[torch.dtype, list[Tensor]] = {}
    for t in tensors:
        groups.setdefault(t.dtype, []).append(t)
    return list(groups.values())


def _weighted(parts: list[Tensor], weight: float) -> Tensor:
    """``[w t_1, ..., w t_k, w]`` flattened, with ``w = 0`` giving zeros whatever the values."""
    flat = torch.cat([*parts, parts[0].new_ones(1)])
    return flat.zero_() if weight == 0 else flat.mul_(weight)


def _unflatten_into(flat: Tensor, tensors: Sequence[Tensor]) -> None:
    offset = 0
    with torch.no_grad():
        for t in tensors:
            n = t.numel()
            t.copy_(flat[offset : offset + n].view_as(t))
            offset += n


def _cause(error: BaseException) -> str:
    """The gist of a backend error: its first sentence, without the source-file prefix."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    text = re.sub(r"^\[[^\]]*\]\s*", "", text)
    return text.split(". ")[0].rstrip(".")
