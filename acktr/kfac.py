"""K-FAC: a Kronecker-factored natural-gradient optimizer for any ``nn.Module`` (the core of ACKTR).

The per-layer maths (factors, im2col, scaling convention) lives in :mod:`acktr.kfac_layers`; this
module holds the optimizer: statistics collection, damped inverses, the trust region and the update.
"""

import contextlib
import functools
import logging
import math
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from acktr.distributed import World
from acktr.kfac_layers import Conv2dLayer, KFACLayer, make_layer

logger = logging.getLogger(__name__)

Schedule = Callable[[int], float]
"""A hyperparameter as a function of the number of completed ``step()`` calls."""

# Eigenvalues below this fraction of the largest are clamped in the fallback inverse: below it a
# float32 factor carries no information, and the clamp bounds the condition number at 1e6.
_EIGENVALUE_RTOL = 1e-6

# Multiply-adds of a layer's preconditioning from which oneDNN beats MKL on a CPU: measured even
# at 64x513 (2e7), 2x faster at 512x1569 (1.7e9).
_ONEDNN_MIN_MACS = 100_000_000


class _ForwardHook:
    """The forward hook KFAC puts on its layers, safe to copy along with the model.

    A copy of the model (``copy.deepcopy`` for an evaluation or self-play opponent) keeps calling
    the same optimizer, which ignores layers it does not own; a pickled one gets an inert hook; and
    the hook holds the optimizer weakly, so it does nothing once the optimizer is gone.
    """

    def __init__(self, optimizer: "KFAC") -> None:
        self._optimizer: Callable[[], KFAC | None] = weakref.ref(optimizer)

    def __call__(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        optimizer = self._optimizer()
        if optimizer is not None:
            optimizer._bind_input(module, inputs, output)

    def __deepcopy__(self, memo: dict[int, Any]) -> "_ForwardHook":
        return self

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._optimizer = lambda: None


@dataclass
class _BatchStatistics:
    """Sums of one layer's factor estimates over the backward passes of one ``fisher()`` block."""

    a: Tensor
    s: Tensor
    count: int
    examples: int  # examples in the batches, the weight of this rank's statistics across ranks


class KFAC(torch.optim.Optimizer):
    """K-FAC natural-gradient optimizer with ACKTR's trust region (Martens & Grosse 2015; Wu et al. 2017).

    ``nn.Linear`` and ``nn.Conv2d`` (any stride, padding, dilation; ``groups=1``) layers are
    preconditioned with their Kronecker-factored Fisher block ``S ⊗ A`` (see
    :mod:`acktr.kfac_layers` for the factors and their scaling). Every other trainable parameter,
    and every layer in ``exclude``, gets the first-order rule: its Fisher block is taken to be the
    identity, so its "natural" gradient is the gradient itself, which still enters the trust region
    and the momentum like the rest. A Gaussian policy's log-std is the typical case.

    Call order for one update (the ACKTR flow: one forward pass serves both losses)::

        out = model(x)
        with opt.fisher():                           # statistics only inside this block
            fisher_loss(out).backward(retain_graph=True)
        opt.zero_grad()
        loss(out).backward()
        opt.step()

    The Fisher loss must be the batch mean of the negative log-likelihood of targets *sampled from
    the model's own distribution* (the true Fisher; a policy's sampled actions, a value head's
    ``v.detach() + N(0, 1)``), never the training loss. A layer's ``A`` comes from the input of the
    very forward pass whose backward runs inside ``fisher()`` (the input is bound to that pass's
    output through a tensor hook), so other forward passes in between, with or without gradients,
    do not mix in. That also allows running the Fisher pass on a sub-batch, by a separate forward
    pass, which cuts its cost proportionally (see ``benchmarks/kfac_overhead.py``). Several
    backward passes in one block are averaged. Skipping the block on some updates is allowed: the
    factors are an exponential moving average over Fisher passes. ``stats_every=k`` makes that
    the rule: only the blocks of every k-th update (``steps % k == 0``) collect statistics, and
    :attr:`statistics_due` tells the caller when to run its Fisher pass, as the inverses are
    amortised over ``inverse_every``. ``stat_decay`` stays a decay per update: each collection
    decays the factors by ``stat_decay ** k``, so they average over the same span of updates
    (with ``k`` times fewer samples). On Pong (``benchmarks/kfac_agreement.py``, ACKTR CNN,
    updates 10-29) the natural gradient with the Fisher pass on 1/16 of the batch had a mean
    cosine of 0.999 with that of the whole batch; on 1/16 every 4th update, 0.996; decayed by
    ``stat_decay`` per collection instead, the factors lagged and the cosine fell to 0.948.

    ``conv_statistics_dtype=torch.bfloat16`` forms the im2col products ``aᵀa`` and ``gᵀg`` of the
    ``Conv2d`` layers, nearly all of the statistics' cost, in bfloat16 with float32 accumulation:
    about 4x faster than float32 on a CPU with native bfloat16 (AVX512-BF16 or AMX; elsewhere it
    may be slower, hence not the default). On the ACKTR CNN and Pong frames their relative error
    against float64 was 2-3e-3 and the most negative eigenvalue it added at most a sixth of the
    damping. ``Linear`` factors stay in the weight dtype: from a sub-batch they are rank-deficient,
    and there the rounding made them indefinite beyond the damping. On Pong the cosine above
    stayed at 0.999. The preconditioning
    ``S⁻¹ G A⁻¹`` has no such option: the gradient's components along a factor's damped null
    space cancel only in exact arithmetic, and in bfloat16 the natural gradient of that network's
    dense layer came out with a relative error of 2.1. ``inverse_dtype=torch.float32`` about
    halves the cost of the inverses (1569x1569 on one core: 60 ms against 136 ms); the damping
    bounds the condition number, and on Pong the cosine went from 0.999 to 0.994.

    Each ``step()``:

    1. ``g = grad + weight_decay * param`` (L2 regularisation, preconditioned like the loss).
    2. During the first ``cold_steps`` steps: plain momentum SGD on ``g`` clipped to a global norm of
       ``cold_grad_clip``, as the original code did while the factors warm up.
    3. Otherwise, every ``inverse_every`` steps, the damped factors are inverted; then
       ``g_nat = S⁻¹ G A⁻¹`` per layer (``g`` for the first-order parameters).
    4. Trust region: ``nu = min(1, sqrt(kl_clip / (lr² Σ g_nat·g)))``; a non-positive sum gives
       ``nu = 1`` (there is nothing to clip), a non-finite one skips the update with a warning.
    5. Momentum with the original's convention: ``buf = momentum * buf + nu * g_nat`` and
       ``param -= lr * (1 - momentum) * buf``, so a steady step is ``lr * nu * g_nat`` and its
       quadratic KL ``½ Δᵀ F Δ`` stays within ``kl_clip / 2``.

    Damping is factored Tikhonov damping (Martens & Grosse 2015, §6.3): the inverses are of
    ``A + π √damping I`` and ``S + √damping / π I`` with ``π² = (tr A / dim A) / (tr S / dim S)``.
    It damps a little more than ``A ⊗ S + damping I`` would, and it lets each factor be inverted on
    its own by a Cholesky factorisation in float64, which measured 5-7x faster than ``eigh`` on a
    2-core CPU (1569x1569: 56 ms against 309 ms; 3137x3137: 0.41 s against 2.8 s).

    Robustness: factors are symmetrised and inverted in float64 (by default); if a Cholesky
    factorisation fails (a singular factor with zero damping, say) the inverse comes from an
    eigendecomposition with eigenvalues clamped at ``1e-6`` of the largest; if that fails too, or
    is not finite, the last good inverses are kept (or, before the first success, the layer gets
    the first-order rule) and a warning is logged. Non-finite statistics are left out of the
    factors, and a non-finite gradient skips the whole update, both with a warning, so this
    optimizer never writes NaN or Inf into the parameters.

    Hyperparameters accept a float or a schedule: a callable of the number of completed ``step()``
    calls (0 for the first step; ``stat_decay`` is read when a ``fisher()`` block ends), evaluated
    at every step and written into ``param_groups[0]``. Float hyperparameters live in
    ``param_groups[0]`` as in any torch optimizer, so ``torch.optim.lr_scheduler`` works on ``lr``
    (not together with a callable ``lr``, which would overwrite it). Callables are not saved by
    ``state_dict()``; pass them again when rebuilding the optimizer.

    State per parameter (and so in ``state_dict()``): ``momentum_buffer``; on each layer's weight
    also ``kfac_a``, ``kfac_s`` (the moving-average factors) and ``kfac_a_inv``, ``kfac_s_inv`` (the
    damped inverses in use); plus the step counters under ``state_dict()["kfac"]``.

    The optimizer keeps forward hooks on the model's supported layers for as long as it lives.

    Data-parallel training (``acktr.distributed``): after ``distribute(world)`` on every rank, the
    factors are averaged across the ranks before each inversion, weighted by the ranks' numbers of
    examples, and the inversions are shared out among them; the caller averages the gradients
    before ``step()``.

    Attributes:
        steps: Number of completed ``step()`` calls (the argument of the schedules).
        last_nu: The trust-region scale ``nu`` of the last ``step()`` if it was a preconditioned
            one, else ``None`` (cold or skipped step); a learner logs it, since a ``nu`` stuck far
            below 1 means the trust region, not ``lr``, sets the step size.

    Args:
        model: The module to optimise; all its trainable parameters form the single param group.
        lr: Learning rate (the trust region's ``lr`` as well).
        momentum: Momentum factor, in ``[0, 1)``.
        stat_decay: Moving-average decay of the factors, in ``[0, 1]``; 0 keeps only the latest
            Fisher pass.
        damping: Tikhonov damping ``γ`` (factored as above), ``>= 0``.
        kl_clip: Trust-region bound on ``lr² Σ g_nat·g``, ``> 0``.
        weight_decay: L2 coefficient added to the gradient before preconditioning, ``>= 0``.
        inverse_every: Steps between refreshes of the inverses (an int or a schedule), ``>= 1``.
        stats_every: Statistics are collected on the updates with ``steps % stats_every == 0``
            only (an int or a schedule), ``>= 1``; 1 collects on every update. Each collection
            decays the factors by ``stat_decay ** stats_every``.
        cold_steps: Number of first steps taken as clipped momentum SGD; 0 preconditions the very
            first step.
        exclude: Modules, or their names in ``model.named_modules()``, whose supported layers (the
            module itself and everything inside it) get the first-order rule.
        cold_grad_clip: Global gradient-norm clip of the cold steps (0.5 in the original).
        conv_statistics_dtype: Dtype of the im2col matrix products of the ``Conv2d`` layers'
            factors (``None``: the weight dtype); the factors themselves stay in the weight dtype.
        inverse_dtype: Dtype in which the damped factors are factorised and inverted (float64 by
            default); the inverses in use are kept in the weight dtype.

    Raises:
        ValueError: If a hyperparameter is out of range, an excluded name or module is not in the
            model, or the model has no supported layer left to precondition.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        lr: float | Schedule = 0.25,
        momentum: float | Schedule = 0.9,
        stat_decay: float | Schedule = 0.99,
        damping: float | Schedule = 0.01,
        kl_clip: float | Schedule = 0.001,
        weight_decay: float | Schedule = 0.0,
        inverse_every: int | Callable[[int], int] = 10,
        stats_every: int | Callable[[int], int] = 1,
        cold_steps: int = 0,
        exclude: Iterable[nn.Module | str] = (),
        cold_grad_clip: float = 0.5,
        conv_statistics_dtype: torch.dtype | None = None,
        inverse_dtype: torch.dtype = torch.float64,
    ) -> None:
        if cold_steps < 0:
            raise ValueError(f"cold_steps must be >= 0, got {cold_steps}")
        if not cold_grad_clip > 0:
            raise ValueError(
                f"cold_grad_clip must be > 0 (math.inf disables it), got {cold_grad_clip}"
            )
        given: dict[str, Any] = {
            "lr": lr,
            "momentum": momentum,
            "stat_decay": stat_decay,
            "damping": damping,
            "kl_clip": kl_clip,
            "weight_decay": weight_decay,
            "inverse_every": inverse_every,
            "stats_every": stats_every,
        }
        self._schedules: dict[str, Callable[[int], float]] = {
            name: value for name, value in given.items() if callable(value)
        }
        defaults: dict[str, Any] = {
            name: _checked(name, value(0) if callable(value) else value)
            for name, value in given.items()
        }
        defaults["conv_statistics_dtype"] = _checked_dtype(
            "conv_statistics_dtype", conv_statistics_dtype
        )
        defaults["inverse_dtype"] = _checked_dtype("inverse_dtype", inverse_dtype, optional=False)
        super().__init__([p for p in model.parameters() if p.requires_grad], defaults)

        excluded = _excluded_modules(model, exclude)
        self._layers: list[KFACLayer] = []
        for name, module in model.named_modules():
            layer = None if module in excluded else make_layer(module, name)
            if layer is not None:
                self._layers.append(layer)
        if not self._layers:
            raise ValueError(
                "KFAC found no nn.Linear or nn.Conv2d (groups=1) layer to precondition in the model"
                " (after exclusions); use a first-order optimizer such as torch.optim.SGD instead"
            )
        self._layer_of: dict[nn.Module, KFACLayer] = {layer.module: layer for layer in self._layers}
        hook = _ForwardHook(self)
        for layer in self._layers:
            layer.module.register_forward_hook(hook)

        self.cold_steps = cold_steps
        self.cold_grad_clip = cold_grad_clip
        self.steps = 0
        self.last_nu: float | None = None
        self._last_inverse_step: int | None = None
        self._in_fisher = False
        self._collecting = False
        self._pending: dict[KFACLayer, _BatchStatistics] = {}
        self._reported_unseen: set[str] = set()
        self._world = World()

    @property
    def statistics_due(self) -> bool:
        """Whether a ``fisher()`` block now collects statistics (``steps % stats_every == 0``).

        On other updates the block ignores its backward passes, so a caller saves the most by
        skipping its Fisher pass when this is ``False``.
        """
        self._apply_schedules()
        return self.steps % self.param_groups[0]["stats_every"] == 0

    @contextlib.contextmanager
    def fisher(self) -> Iterator[None]:
        """Collect curvature statistics from the backward passes run inside this block.

        On leaving the block (without an exception) the layers' factors are updated with the
        statistics of this block. See the class docstring for what the Fisher loss must be. When
        :attr:`statistics_due` is ``False`` the block collects nothing and leaves the factors as
        they are.

        Raises:
            RuntimeError: If blocks are nested.
        """
        if self._in_fisher:
            raise RuntimeError("KFAC.fisher() blocks do not nest")
        due = self.statistics_due
        self._pending = {}
        self._in_fisher = True
        self._collecting = due
        try:
            yield
        finally:
            self._in_fisher = False
            self._collecting = False
        if due:
            self._update_factors()

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """Take one optimisation step with the gradients in ``.grad``.

        Args:
            closure: Optional callable that re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, if a closure was given.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        group = self.param_groups[0]
        self._apply_schedules()
        self.last_nu = None
        weight_decay = group["weight_decay"]
        grads = {
            p: p.grad if weight_decay == 0 else p.grad.add(p, alpha=weight_decay)
            for p in group["params"]
            if p.grad is not None
        }
        if grads and not bool(torch.stack([torch.isfinite(g).all() for g in grads.values()]).all()):
            logger.warning("kfac: non-finite gradient at step %d; update skipped", self.steps)
        elif grads and self.steps < self.cold_steps:
            self._cold_step(grads)
        elif grads:
            self._natural_step(grads)
        self.steps += 1
        return loss

    def state_dict(self) -> dict[str, Any]:
        """The optimizer state: factors, inverses, momentum, hyperparameters and step counters."""
        state = super().state_dict()
        state["kfac"] = {"steps": self.steps, "last_inverse_step": self._last_inverse_step}
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a state saved by :meth:`state_dict` so that a resumed run continues exactly.

        Raises:
            ValueError: If ``state_dict`` does not come from a ``KFAC`` optimizer.
        """
        if "kfac" not in state_dict:
            raise ValueError(
                "not a KFAC state dict (no 'kfac' entry); load the dict saved by KFAC.state_dict()"
            )
        torch_state = dict(state_dict)
        counters = torch_state.pop("kfac")
        super().load_state_dict(torch_state)
        # A state saved before an option existed resumes with the option's value given here.
        for key, value in self.defaults.items():
            self.param_groups[0].setdefault(key, value)
        self.steps = counters["steps"]
        self._last_inverse_step = counters["last_inverse_step"]

    def _bind_input(self, module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        """Forward hook: bind this call's input to its output's gradient for the factors.

        A tensor hook on the output, rather than a module backward hook, ties ``A`` to the forward
        pass that is actually backpropagated, and it still sees the pre-activation gradient when a
        later in-place op (``ReLU(inplace=True)``) overwrites the output.
        """
        layer = self._layer_of.get(module)
        if layer is None or not inputs or not (isinstance(output, Tensor) and output.requires_grad):
            return
        output.register_hook(functools.partial(self._accumulate, layer, inputs[0].detach()))

    def _accumulate(self, layer: KFACLayer, x: Tensor, grad_output: Tensor) -> None:
        """Tensor hook: add one backward pass's factor estimates, inside ``fisher()`` only."""
        if not self._collecting:
            return
        # Only the im2col products: they are nearly all of the statistics' cost, and a conv factor
        # has many rows per dimension, so bfloat16 rounding stays far below the damping. A linear
        # factor of a sub-batch is rank-deficient, and the rounding can make it indefinite.
        conv = isinstance(layer, Conv2dLayer)
        dtype = self.param_groups[0]["conv_statistics_dtype"] if conv else None
        with torch.no_grad():
            a = layer.input_covariance(x, dtype)
            s = layer.output_covariance(grad_output, dtype)
        examples = x.shape[0] if x.dim() > layer.example_dims else 1
        pending = self._pending.get(layer)
        if pending is None:
            self._pending[layer] = _BatchStatistics(a, s, 1, examples)
        else:
            pending.a += a
            pending.s += s
            pending.count += 1
            pending.examples += examples

    def _update_factors(self) -> None:
        if not self._pending:
            logger.warning(
                "kfac: fisher() block collected no statistics; run the forward pass with gradients"
                " enabled and call backward() on the Fisher loss inside the block"
            )
            return
        self._apply_schedules()
        group = self.param_groups[0]
        # Per update, not per collection: the factors keep their horizon whatever stats_every.
        decay = group["stat_decay"] ** group["stats_every"]
        shares = self._shares_across_ranks() if self._world.size > 1 else None
        for layer, stats in self._pending.items():
            a = stats.a.div_(stats.count)
            s = stats.s.div_(stats.count)
            if shares is not None:
                if layer not in shares:
                    continue
                a.mul_(shares[layer])
                s.mul_(shares[layer])
            elif not bool(torch.isfinite(a).all() and torch.isfinite(s).all()):
                logger.warning(
                    "kfac: non-finite statistics for layer %r; left out of its factors", layer.name
                )
                continue
            state = self.state[layer.weight]
            if "kfac_a" not in state:
                state["kfac_a"], state["kfac_s"] = a, s
            else:
                state["kfac_a"].mul_(decay).add_(a, alpha=1 - decay)
                state["kfac_s"].mul_(decay).add_(s, alpha=1 - decay)
        self._pending = {}

    def _apply_schedules(self) -> None:
        group = self.param_groups[0]
        for name, schedule in self._schedules.items():
            group[name] = _checked(name, schedule(self.steps))

    def _cold_step(self, grads: dict[Tensor, Tensor]) -> None:
        norm = math.sqrt(sum(float(g.double().square().sum()) for g in grads.values()))
        # torch.nn.utils.clip_grad_norm_'s convention, epsilon included.
        self._apply_update(grads, scale=min(1.0, self.cold_grad_clip / (norm + 1e-6)))

    def _natural_step(self, grads: dict[Tensor, Tensor]) -> None:
        group = self.param_groups[0]
        last = self._last_inverse_step
        if last is None or self.steps - last >= group["inverse_every"]:
            self._refresh_inverses(group["damping"])
        updates = dict(grads)  # the first-order rule, replaced below for preconditioned layers
        for layer in self._layers:
            state = self.state[layer.weight]
            if layer.weight not in grads or "kfac_a_inv" not in state:
                continue
            bias_grad = None if layer.bias is None else grads.get(layer.bias)
            matrix = layer.gradient_matrix(grads[layer.weight], bias_grad)
            weight_update, bias_update = layer.split(
                _precondition(state["kfac_s_inv"], matrix, state["kfac_a_inv"])
            )
            updates[layer.weight] = weight_update
            if layer.bias is not None and bias_update is not None and layer.bias in grads:
                updates[layer.bias] = bias_update
        vg = _inner_product(updates, grads)
        if not math.isfinite(vg):
            logger.warning(
                "kfac: non-finite natural gradient at step %d; update skipped", self.steps
            )
            return
        lr = group["lr"]
        nu = 1.0 if vg <= 0 or lr == 0 else min(1.0, math.sqrt(group["kl_clip"] / (lr * lr * vg)))
        self.last_nu = nu
        self._apply_update(updates, scale=nu)

    def _apply_update(self, updates: dict[Tensor, Tensor], scale: float) -> None:
        group = self.param_groups[0]
        lr, momentum = group["lr"], group["momentum"]
        for p, update in updates.items():
            state = self.state[p]
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p)
            buffer = state["momentum_buffer"]
            buffer.mul_(momentum).add_(update, alpha=scale)
            p.add_(buffer, alpha=-lr * (1 - momentum))

    def _warn_failed_inverse(self, layer: KFACLayer, state: dict[str, Any]) -> None:
        """Log that ``layer``'s factors could not be inverted and what is used instead."""
        logger.warning(
            "kfac: could not invert the factors of layer %r at step %d; %s",
            layer.name,
            self.steps,
            "keeping the previous inverses"
            if "kfac_a_inv" in state
            else "its gradient is used unpreconditioned until an inverse succeeds",
        )

    def _refresh_inverses(self, damping: float) -> None:
        if self._world.size > 1:
            self._refresh_inverses_across_ranks(damping)
            return
        sqrt_damping = math.sqrt(damping)
        for layer in self._layers:
            state = self.state[layer.weight]
            if "kfac_a" not in state:
                if layer.name not in self._reported_unseen:
                    self._reported_unseen.add(layer.name)
                    logger.warning(
                        "kfac: no Fisher statistics yet for layer %r; its gradient is used"
                        " unpreconditioned (does the Fisher loss reach it inside opt.fisher()?)",
                        layer.name,
                    )
                continue
            dtype = self.param_groups[0]["inverse_dtype"]
            a = _symmetric(state["kfac_a"], dtype)
            s = _symmetric(state["kfac_s"], dtype)
            pi = _damping_split(a, s)
            a_inv = _damped_inverse(a, pi * sqrt_damping, f"{layer.name}.A")
            s_inv = _damped_inverse(s, sqrt_damping / pi, f"{layer.name}.S")
            if a_inv is None or s_inv is None:
                self._warn_failed_inverse(layer, state)
                continue
            state["kfac_a_inv"] = a_inv.to(layer.weight.dtype)
            state["kfac_s_inv"] = s_inv.to(layer.weight.dtype)
        self._last_inverse_step = self.steps

    # -- Data parallelism (acktr.distributed) ---------------------------------------------------
    #
    # Every rank runs the Fisher pass on its own batch and keeps its factors as a moving average
    # of its statistics scaled by ``W * (its examples) / (all ranks' examples)``. The moving
    # average is linear, so the mean of the ranks' factors is at every step exactly the factor of
    # one process that saw all the batches; it is formed (all-reduced and written back on every
    # rank) only when the factors are about to be inverted, once per ``inverse_every`` steps
    # instead of at every Fisher pass. The inversions are then shared out: each factor is inverted
    # by one rank, chosen so that the ranks' summed cost (dim³) is balanced, and broadcast.

    def distribute(self, world: World) -> None:
        """Average the factors across ``world``'s ranks and share out the inversions.

        Every rank calls it, on an optimizer of the same model with the same state (the
        gradients are the caller's to all-reduce before ``step()``: the trust region is computed
        from them, so identical gradients give every rank the same step). Between inversions a
        rank's ``kfac_a``/``kfac_s`` are its own share; ``synchronize_factors()`` makes them the
        run's factors on every rank, as ``state_dict()`` should hold for a checkpoint.
        """
        self._world = world

    def synchronize_factors(self) -> None:
        """Replace every rank's factors by their average over the ranks (a collective).

        In one process it does nothing. In a data-parallel run every rank must call it at the
        same point (before saving a checkpoint, say).

        Raises:
            acktr.distributed.DistributedError: if the process group failed.
        """
        factors = []
        for layer in self._layers:
            state = self.state[layer.weight]
            if "kfac_a" in state:
                factors += [state["kfac_a"], state["kfac_s"]]
        self._world.all_reduce_mean_(factors)

    def _refresh_inverses_across_ranks(self, damping: float) -> None:
        """``_refresh_inverses`` of a data-parallel run: average the factors, invert this rank's
        share of them, exchange the inverses."""
        self.synchronize_factors()
        sqrt_damping = math.sqrt(damping)
        ready = []
        for layer in self._layers:
            if "kfac_a" in self.state[layer.weight]:
                ready.append(layer)
            elif layer.name not in self._reported_unseen:
                self._reported_unseen.add(layer.name)
                logger.warning(
                    "kfac: no Fisher statistics yet for layer %r; its gradient is used"
                    " unpreconditioned (does the Fisher loss reach it inside opt.fisher()?)",
                    layer.name,
                )
        owners = self._inverse_owners(ready)
        inverses: dict[tuple[KFACLayer, str], Tensor | None] = {}
        for layer in ready:
            mine = [factor for factor in "AS" if owners[layer, factor] == self._world.rank]
            if not mine:
                continue
            state = self.state[layer.weight]
            dtype = self.param_groups[0]["inverse_dtype"]
            a = _symmetric(state["kfac_a"], dtype)
            s = _symmetric(state["kfac_s"], dtype)
            pi = _damping_split(a, s)
            damped = {"A": (a, pi * sqrt_damping), "S": (s, sqrt_damping / pi)}
            for factor in mine:
                matrix, factor_damping = damped[factor]
                inverse = _damped_inverse(matrix, factor_damping, f"{layer.name}.{factor}")
                inverses[layer, factor] = (
                    None if inverse is None else inverse.to(layer.weight.dtype)
                )
        inverses = self._exchange_inverses(owners, inverses)
        for layer in ready:
            state = self.state[layer.weight]
            a_inv, s_inv = inverses[layer, "A"], inverses[layer, "S"]
            if a_inv is None or s_inv is None:
                self._warn_failed_inverse(layer, state)
                continue
            state["kfac_a_inv"], state["kfac_s_inv"] = a_inv, s_inv
        self._last_inverse_step = self.steps

    def _shares_across_ranks(self) -> dict[KFACLayer, float]:
        """This rank's weight ``W e_r / Σ e`` for each layer's statistics of this Fisher pass.

        Layers whose statistics are not finite on some rank are left out on every rank, so that
        all ranks keep the same layers (and the same collectives) in their state.
        """
        n = len(self._layers)
        counts = torch.zeros(2 * n, dtype=torch.float64, device=self._layers[0].weight.device)
        for i, layer in enumerate(self._layers):
            stats = self._pending.get(layer)
            if stats is None:
                continue
            counts[i] = stats.examples
            if stats.examples > 0:
                finite = torch.isfinite(stats.a).all() & torch.isfinite(stats.s).all()
                counts[n + i] = float(~finite)
            else:  # an empty batch on this rank: nothing to add, whatever its (NaN) statistics
                stats.a.zero_()
                stats.s.zero_()
        self._world.all_reduce_sum_([counts])
        shares: dict[KFACLayer, float] = {}
        for i, layer in enumerate(self._layers):
            stats = self._pending.get(layer)
            if stats is None:
                continue
            if counts[n + i] > 0:
                logger.warning(
                    "kfac: non-finite statistics for layer %r on %d rank(s); left out of its"
                    " factors on every rank",
                    layer.name,
                    int(counts[n + i]),
                )
            elif counts[i] > 0:
                shares[layer] = self._world.size * stats.examples / float(counts[i])
        return shares

    def _inverse_owners(self, layers: list[KFACLayer]) -> dict[tuple[KFACLayer, str], int]:
        """The rank that inverts each factor (``A``, ``S``): the largest first, each to the
        least loaded rank (costs dim³), the same on every rank."""
        tasks = []
        for order, layer in enumerate(layers):
            state = self.state[layer.weight]
            for factor, key in (("A", "kfac_a"), ("S", "kfac_s")):
                tasks.append((-(state[key].shape[0] ** 3), order, factor, layer))
        load = [0] * self._world.size
        owners: dict[tuple[KFACLayer, str], int] = {}
        for cost, _, factor, layer in sorted(tasks, key=lambda t: (t[0], t[1], t[2])):
            rank = min(range(self._world.size), key=lambda r: (load[r], r))
            owners[layer, factor] = rank
            load[rank] -= cost
        return owners

    def _exchange_inverses(
        self,
        owners: dict[tuple[KFACLayer, str], int],
        inverses: dict[tuple[KFACLayer, str], Tensor | None],
    ) -> dict[tuple[KFACLayer, str], Tensor | None]:
        """Every factor's inverse on every rank: one broadcast per rank of the inverses it owns,
        each preceded by a flag (1: inverted, 0: failed, keep the previous one)."""
        out: dict[tuple[KFACLayer, str], Tensor | None] = {}
        for src in range(self._world.size):
            tasks = [task for task, owner in owners.items() if owner == src]
            if not tasks:
                continue
            blocks = []
            for layer, factor in tasks:
                dim = self.state[layer.weight]["kfac_a" if factor == "A" else "kfac_s"].shape[0]
                blocks.append(layer.weight.new_zeros(dim, dim))
            flags = tasks[0][0].weight.new_zeros(len(tasks))
            if src == self._world.rank:
                for i, task in enumerate(tasks):
                    inverse = inverses[task]
                    if inverse is not None:
                        flags[i] = 1
                        # Copied rather than kept: LAPACK's result is column-major, and a matmul
                        # with another memory layout rounds differently, which would let the
                        # owner's parameters drift from the other ranks' by an ulp per step.
                        blocks[i].copy_(inverse)
            self._world.broadcast_([flags, *blocks], src)
            for i, task in enumerate(tasks):
                out[task] = blocks[i] if flags[i] > 0 else None
        return out


def _checked(name: str, value: float) -> Any:
    """``value`` if it is in range for hyperparameter ``name``, else a ``ValueError`` that says so."""
    if name in ("inverse_every", "stats_every"):
        if int(value) != value or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        return int(value)
    value = float(value)
    ranges = {
        "lr": (0.0, math.inf, ">= 0"),
        "momentum": (0.0, 1.0 - 1e-12, "in [0, 1)"),
        "stat_decay": (0.0, 1.0, "in [0, 1]"),
        "damping": (0.0, math.inf, ">= 0"),
        "kl_clip": (1e-300, math.inf, "> 0"),
        "weight_decay": (0.0, math.inf, ">= 0"),
    }
    low, high, text = ranges[name]
    if not low <= value <= high:
        raise ValueError(f"{name} must be {text}, got {value!r}")
    return value


def _checked_dtype(name: str, dtype: Any, optional: bool = True) -> Any:
    """``dtype`` if it is a floating-point dtype (or ``None`` when ``optional``), else a
    ``ValueError`` that says so."""
    if optional and dtype is None:
        return None
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        allowed = "None or a floating-point torch.dtype" if optional else "a floating-point dtype"
        raise ValueError(f"{name} must be {allowed} such as torch.float32, got {dtype!r}")
    return dtype


def _excluded_modules(model: nn.Module, exclude: Iterable[nn.Module | str]) -> set[nn.Module]:
    """Every module inside the excluded ones (so excluding a head excludes its layers)."""
    by_name = dict(model.named_modules())
    members = set(by_name.values())
    excluded: set[nn.Module] = set()
    for item in exclude:
        module = by_name.get(item) if isinstance(item, str) else item
        if module is None or module not in members:
            raise ValueError(
                f"cannot exclude {item!r}: not a module of the model; pass a submodule or one of"
                f" the names in model.named_modules(): {sorted(by_name)}"
            )
        excluded.update(module.modules())
    return excluded


def _symmetric(factor: Tensor, dtype: torch.dtype) -> Tensor:
    factor = factor.to(dtype)
    return (factor + factor.T).mul_(0.5)


def _precondition(s_inv: Tensor, matrix: Tensor, a_inv: Tensor) -> Tensor:
    """``S⁻¹ G A⁻¹`` for symmetric inverses.

    On a CPU in float32, for a large layer, the two products go through oneDNN (``F.linear`` on
    ``to_mkldnn()`` tensors) rather than ``@``: the same float32 arithmetic (relative difference
    7e-7), measured 2x faster on this AMD EPYC, where MKL's float32 GEMM does not use AVX-512 (the
    ACKTR CNN's dense layer, 512x1569, on one core: 17.8 ms against 35.4 ms, most of ``step()``).
    Below ``_ONEDNN_MIN_MACS`` the conversions cost more than they save.
    """
    rows, cols = matrix.shape
    if not (
        matrix.device.type == "cpu"
        and matrix.dtype == torch.float32
        and rows * cols * (rows + cols) >= _ONEDNN_MIN_MACS
        and torch.backends.mkldnn.is_available()
    ):
        return s_inv @ matrix @ a_inv
    # F.linear(x, w) is x wᵀ, and the inverses are symmetric: first G A⁻¹, then (G A⁻¹)ᵀ S⁻¹.
    right = F.linear(matrix.to_mkldnn(), a_inv.to_mkldnn()).to_dense()
    return F.linear(right.T.contiguous().to_mkldnn(), s_inv.to_mkldnn()).to_dense().T


def _inner_product(updates: dict[Tensor, Tensor], grads: dict[Tensor, Tensor]) -> float:
    """``Σ g_nat·g`` in the gradients' dtype, again in float64 where that overflows.

    Float64 throughout would be safe for huge but finite gradients too, but its copies cost more
    than the rest of ``step()`` for a large first-order layer (the Tron network's 4.7M-parameter
    dense layer: 37 ms against 2 ms on one core).
    """
    terms = [torch.dot(updates[p].flatten(), g.flatten()).double() for p, g in grads.items()]
    value = float(torch.stack(terms).sum())
    if math.isfinite(value):
        return value
    terms = [
        torch.dot(updates[p].double().flatten(), g.double().flatten()) for p, g in grads.items()
    ]
    return float(torch.stack(terms).sum())


def _damping_split(a: Tensor, s: Tensor) -> float:
    """``π`` of factored Tikhonov damping: balances the damping by the factors' mean eigenvalues."""
    mean_a = float(a.trace()) / a.shape[0]
    mean_s = float(s.trace()) / s.shape[0]
    if mean_a > 0 and mean_s > 0 and math.isfinite(mean_a / mean_s):
        return math.sqrt(mean_a / mean_s)
    return 1.0


def _damped_inverse(factor: Tensor, damping: float, name: str) -> Tensor | None:
    """``(factor + damping I)⁻¹``, or ``None`` if no finite inverse could be formed."""
    damped = factor.clone()
    damped.diagonal().add_(damping)
    cholesky, info = torch.linalg.cholesky_ex(damped)
    if int(info) == 0:
        inverse = torch.cholesky_inverse(cholesky)
        if bool(torch.isfinite(inverse).all()):
            return inverse
    logger.warning(
        "kfac: factor %s is not positive definite after damping %.3g; inverting it through a"
        " clamped eigendecomposition",
        name,
        damping,
    )
    try:
        eigenvalues, eigenvectors = torch.linalg.eigh(damped)
    except torch.linalg.LinAlgError:
        return None
    largest = float(eigenvalues.max())
    if not (math.isfinite(largest) and largest > 0):
        return None
    eigenvalues = eigenvalues.clamp(min=largest * _EIGENVALUE_RTOL)
    inverse = (eigenvectors / eigenvalues) @ eigenvectors.T
    return inverse if bool(torch.isfinite(inverse).all()) else None
