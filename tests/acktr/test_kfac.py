"""K-FAC against dense maths, on training problems, and on degenerate input."""

import copy
import functools
import io
import logging
import math
from collections.abc import Callable
from typing import Literal

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from acktr.kfac import KFAC, _precondition

# ----------------------------------------------------------------------------- dense reference maths


def damped_factors(a: Tensor, s: Tensor, damping: float) -> tuple[Tensor, Tensor]:
    """Factored Tikhonov damping as documented in KFAC: A + π√γ I and S + √γ/π I."""
    pi = math.sqrt((a.trace() / a.shape[0]) / (s.trace() / s.shape[0]))
    eye_a = torch.eye(a.shape[0], dtype=a.dtype)
    eye_s = torch.eye(s.shape[0], dtype=s.dtype)
    return a + pi * math.sqrt(damping) * eye_a, s + math.sqrt(damping) / pi * eye_s


def dense_natural_gradient(grad: Tensor, a: Tensor, s: Tensor, damping: float) -> Tensor:
    """Solve (S_d ⊗ A_d) vec(G_nat) = vec(G) with the dense Kronecker matrix (row-major vec)."""
    a_d, s_d = damped_factors(a, s, damping)
    solution = torch.linalg.solve(torch.kron(s_d, a_d), grad.flatten())
    return solution.reshape(grad.shape)


def with_ones(rows: Tensor) -> Tensor:
    return torch.cat([rows, torch.ones(rows.shape[0], 1, dtype=rows.dtype)], dim=1)


def linear_factors(x: Tensor, grad_out: Tensor) -> tuple[Tensor, Tensor]:
    """A = mean [x,1][x,1]ᵀ; S = (1/B) Σ (B h)(B h)ᵀ for the grads h of a batch-mean loss."""
    batch = x.shape[0]
    rows = with_ones(x)
    per_example = batch * grad_out
    return rows.T @ rows / batch, per_example.T @ per_example / batch


def conv_factors(x: Tensor, grad_out: Tensor, conv: nn.Conv2d) -> tuple[Tensor, Tensor]:
    """KFC convention: A averaged over examples and positions, S summed over positions."""
    batch = x.shape[0]
    assert isinstance(conv.padding, tuple)
    patches = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
    rows = with_ones(patches.transpose(1, 2).reshape(-1, patches.shape[1]))
    a = rows.T @ rows / rows.shape[0]
    per_example = (batch * grad_out).permute(0, 2, 3, 1).reshape(-1, grad_out.shape[1])
    return a, per_example.T @ per_example / batch


def gradient_matrix(layer: nn.Linear | nn.Conv2d) -> Tensor:
    assert layer.weight.grad is not None and layer.bias is not None and layer.bias.grad is not None
    return torch.cat(
        [
            layer.weight.grad.reshape(
                layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features, -1
            ),
            layer.bias.grad[:, None],
        ],
        dim=1,
    )


def params_of(model: nn.Module) -> list[Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ------------------------------------------------------------------------------------ dense maths


class GaussianPolicy(nn.Module):
    """A Linear mean and a free log-std: the log-std gets KFAC's first-order rule."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.mean = nn.Linear(n_in, n_out)
        self.log_std = nn.Parameter(torch.full((n_out,), -0.3))

    def forward(self, x: Tensor) -> torch.distributions.Normal:
        return torch.distributions.Normal(self.mean(x), self.log_std.exp())


def test_linear_step_equals_dense_kronecker_maths() -> None:
    torch.manual_seed(0)
    lr, momentum, decay, damping, kl_clip = 0.25, 0.9, 0.5, 1e-3, 1e-3
    model = GaussianPolicy(4, 3).double()
    opt = KFAC(
        model,
        lr=lr,
        momentum=momentum,
        stat_decay=decay,
        damping=damping,
        kl_clip=kl_clip,
        inverse_every=1,
    )
    a_ema = s_ema = buf_w = buf_s = None
    nus = []
    for _ in range(2):  # the second update checks the moving average and the momentum convention
        x = torch.randn(8, 4, dtype=torch.float64)
        target = torch.randn(8, 3, dtype=torch.float64)
        before = [p.detach().clone() for p in (model.mean.weight, model.mean.bias, model.log_std)]
        # The ACKTR flow: one forward pass; the statistics come from its Fisher backward.
        pre = model.mean(x)
        dist = torch.distributions.Normal(pre, model.log_std.exp())
        fisher_loss = -dist.log_prob(dist.sample()).sum(-1).mean()
        (grad_pre,) = torch.autograd.grad(fisher_loss, pre, retain_graph=True)
        with opt.fisher():
            fisher_loss.backward(retain_graph=True)
        opt.zero_grad()
        (-dist.log_prob(target).sum(-1).mean()).backward()
        g_mat = gradient_matrix(model.mean)
        assert model.log_std.grad is not None
        g_std = model.log_std.grad.clone()
        opt.step()

        a, s = linear_factors(x, grad_pre)
        a_ema = a if a_ema is None else decay * a_ema + (1 - decay) * a
        s_ema = s if s_ema is None else decay * s_ema + (1 - decay) * s
        nat = dense_natural_gradient(g_mat, a_ema, s_ema, damping)
        vg = float((nat * g_mat).sum() + (g_std * g_std).sum())  # log-std: first-order rule
        nu = min(1.0, math.sqrt(kl_clip / (lr**2 * vg)))
        nus.append(nu)
        assert opt.last_nu == pytest.approx(nu, rel=1e-9)
        buf_w = nu * nat if buf_w is None else momentum * buf_w + nu * nat
        buf_s = nu * g_std if buf_s is None else momentum * buf_s + nu * g_std
        step = -lr * (1 - momentum)
        expected = [
            before[0] + step * buf_w[:, :-1],
            before[1] + step * buf_w[:, -1],
            before[2] + step * buf_s,
        ]
        actual = [model.mean.weight, model.mean.bias, model.log_std]
        for got, want in zip(actual, expected, strict=True):
            torch.testing.assert_close(got.detach(), want, rtol=1e-10, atol=1e-12)
    assert min(nus) < 1.0  # the trust region was active, so the comparison covered it


def test_conv2d_step_equals_dense_kronecker_maths() -> None:
    torch.manual_seed(1)
    lr, damping, kl_clip = 0.25, 1e-3, 1e-3
    conv = nn.Conv2d(2, 3, kernel_size=3, stride=2, padding=1).double()
    opt = KFAC(conv, lr=lr, momentum=0.0, damping=damping, kl_clip=kl_clip)
    x = torch.randn(5, 2, 7, 7, dtype=torch.float64)
    target = torch.randn(5, 3, 4, 4, dtype=torch.float64)
    before = params_of(conv)
    out = conv(x)
    # Unit-variance Gaussian output: the Fisher loss of a value head (target v + N(0, 1)).
    fisher_loss = (
        0.5 * (out - (out.detach() + torch.randn_like(out))).square().sum((1, 2, 3)).mean()
    )
    (grad_out,) = torch.autograd.grad(fisher_loss, out, retain_graph=True)
    with opt.fisher():
        fisher_loss.backward(retain_graph=True)
    opt.zero_grad()
    (0.5 * (out - target).square().sum((1, 2, 3)).mean()).backward()
    g_mat = gradient_matrix(conv)
    opt.step()

    a, s = conv_factors(x, grad_out, conv)
    nat = dense_natural_gradient(g_mat, a, s, damping)
    nu = min(1.0, math.sqrt(kl_clip / (lr**2 * float((nat * g_mat).sum()))))
    update = -lr * nu * nat
    torch.testing.assert_close(
        conv.weight.detach(), before[0] + update[:, :-1].reshape(3, 2, 3, 3), rtol=1e-10, atol=1e-12
    )
    assert conv.bias is not None
    torch.testing.assert_close(
        conv.bias.detach(), before[1] + update[:, -1], rtol=1e-10, atol=1e-12
    )


# ----------------------------------------------------------------------------- factors themselves


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "padding_mode"),
    [
        (1, 0, 1, "zeros"),
        (2, 1, 1, "zeros"),
        (1, 2, 2, "zeros"),
        ((2, 1), (1, 0), (1, 2), "zeros"),
        (3, 1, 2, "reflect"),
        (1, "same", 2, "zeros"),
    ],
)
def test_conv_factors_equal_explicit_patches(
    stride: int | tuple[int, int],
    padding: int | str | tuple[int, int],
    dilation: int | tuple[int, int],
    padding_mode: Literal["zeros", "reflect"],
) -> None:
    torch.manual_seed(2)
    conv = nn.Conv2d(
        3,
        4,
        kernel_size=(3, 2),
        stride=stride,
        padding=padding,
        dilation=dilation,
        padding_mode=padding_mode,
    ).double()
    opt = KFAC(conv, stat_decay=0.0)
    x = torch.randn(2, 3, 9, 8, dtype=torch.float64)
    out = conv(x)
    fisher_loss = (
        0.5 * (out - (out.detach() + torch.randn_like(out))).square().sum((1, 2, 3)).mean()
    )
    (grad_out,) = torch.autograd.grad(fisher_loss, out, retain_graph=True)
    with opt.fisher():
        fisher_loss.backward()

    # Explicit patches: pad like the layer, then index every kernel tap of every output position.
    (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
    pad_w_left, pad_w_right, pad_h_top, pad_h_bottom = conv._reversed_padding_repeated_twice
    mode = "constant" if padding_mode == "zeros" else padding_mode
    padded = F.pad(x, (pad_w_left, pad_w_right, pad_h_top, pad_h_bottom), mode=mode)
    rows = []
    for b in range(x.shape[0]):
        for i in range(out.shape[2]):
            for j in range(out.shape[3]):
                taps = [
                    padded[b, c, i * sh + p * dh, j * sw + q * dw]
                    for c in range(3)
                    for p in range(kh)
                    for q in range(kw)
                ]
                rows.append(torch.stack([*taps, torch.ones((), dtype=torch.float64)]))
    patches = torch.stack(rows)
    expected_a = patches.T @ patches / len(rows)
    per_example = x.shape[0] * grad_out.permute(0, 2, 3, 1).reshape(-1, 4)
    expected_s = per_example.T @ per_example / x.shape[0]
    state = opt.state[conv.weight]
    torch.testing.assert_close(state["kfac_a"], expected_a, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(state["kfac_s"], expected_s, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["linear", "conv_one_position"])
def test_batch_of_one_reproduces_the_per_example_fisher_block(kind: str) -> None:
    torch.manual_seed(3)
    layer: nn.Linear | nn.Conv2d
    if kind == "linear":
        layer = nn.Linear(5, 4).double()
        x = torch.randn(1, 5, dtype=torch.float64)
    else:  # the kernel covers the whole input, so the spatial sum has a single term
        layer = nn.Conv2d(2, 4, kernel_size=3).double()
        x = torch.randn(1, 2, 3, 3, dtype=torch.float64)
    opt = KFAC(layer, stat_decay=0.0)
    logits = layer(x).reshape(1, 4)
    sampled = torch.distributions.Categorical(logits=logits.detach()).sample()
    fisher_loss = F.cross_entropy(logits, sampled)
    assert layer.bias is not None
    grad_w, grad_b = torch.autograd.grad(fisher_loss, [layer.weight, layer.bias], retain_graph=True)
    with opt.fisher():
        fisher_loss.backward()
    per_example = torch.cat([grad_w.reshape(4, -1), grad_b[:, None]], dim=1).flatten()
    exact_block = torch.outer(per_example, per_example)
    state = opt.state[layer.weight]
    torch.testing.assert_close(
        torch.kron(state["kfac_s"], state["kfac_a"]), exact_block, rtol=1e-12, atol=1e-14
    )


# ------------------------------------------------------------------------------------ trust region


def test_trust_region_scale_by_hand_and_the_kl_bound() -> None:
    torch.manual_seed(4)
    lr, damping = 0.25, 1e-2
    x = torch.randn(4, 3, dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 0])
    for kl_clip in (1e-4, 10.0):  # clipped, then not clipped
        layer = nn.Linear(3, 2).double()
        layer.load_state_dict(
            {
                "weight": torch.tensor([[0.3, -0.2, 0.1], [0.0, 0.4, -0.5]]),
                "bias": torch.tensor([0.1, -0.1]),
            }
        )
        opt = KFAC(layer, lr=lr, momentum=0.0, damping=damping, kl_clip=kl_clip)
        # The Fisher pass runs on its own forward pass with 512 sampled labels per example, so that
        # S is close to the exact expectation and the true KL can be compared with the bound.
        many = x.repeat(512, 1)
        fisher_logits = layer(many)
        sampled = torch.distributions.Categorical(logits=fisher_logits.detach()).sample()
        (grad_pre,) = torch.autograd.grad(
            F.cross_entropy(fisher_logits, sampled), fisher_logits, retain_graph=True
        )
        with opt.fisher():
            F.cross_entropy(fisher_logits, sampled).backward()
        opt.zero_grad()
        logits = layer(x)
        F.cross_entropy(logits, labels).backward()
        g = gradient_matrix(layer)
        before = torch.cat([layer.weight.detach(), layer.bias.detach()[:, None]], dim=1)
        opt.step()
        after = torch.cat([layer.weight.detach(), layer.bias.detach()[:, None]], dim=1)

        a, s = linear_factors(many, grad_pre)
        nat = dense_natural_gradient(g, a, s, damping)
        vg = float((nat * g).sum())
        nu = min(1.0, math.sqrt(kl_clip / (lr * lr * vg)))
        assert (nu < 1.0) == (kl_clip < 1.0)
        assert opt.last_nu == pytest.approx(nu, rel=1e-9)
        delta = after - before
        torch.testing.assert_close(delta, -lr * nu * nat, rtol=1e-10, atol=1e-13)
        a_d, s_d = damped_factors(a, s, damping)
        quadratic_kl = 0.5 * float(delta.flatten() @ torch.kron(s_d, a_d) @ delta.flatten())
        assert quadratic_kl <= kl_clip / 2 * (1 + 1e-9)
        if nu < 1.0:
            with torch.no_grad():
                true_kl = F.kl_div(
                    F.log_softmax(layer(x), -1),
                    F.log_softmax(logits.detach(), -1),
                    log_target=True,
                    reduction="batchmean",
                )
            assert 0 < float(true_kl) <= kl_clip


# ----------------------------------------------------------------------------------------- training


def train(
    model: nn.Module,
    make_opt: Callable[[nn.Module], torch.optim.Optimizer],
    x: Tensor,
    y: Tensor,
    steps: int,
) -> float:
    """Minibatch training on fixed data; K-FAC gets its true-Fisher pass on each minibatch."""
    opt = make_opt(model)
    order = torch.Generator().manual_seed(0)
    for _ in range(steps):
        idx = torch.randint(0, x.shape[0], (128,), generator=order)
        logits = model(x[idx])
        if isinstance(opt, KFAC):
            sampled = torch.distributions.Categorical(logits=logits.detach()).sample()
            with opt.fisher():
                F.cross_entropy(logits, sampled).backward(retain_graph=True)
        opt.zero_grad()
        F.cross_entropy(logits, y[idx]).backward()
        opt.step()
    with torch.no_grad():
        return float(F.cross_entropy(model(x), y))


def sgd_with_momentum(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)


def teacher_labels(teacher: nn.Module, x: Tensor) -> Tensor:
    with torch.no_grad():
        return teacher(x).argmax(-1)


def mlp() -> nn.Module:
    return nn.Sequential(
        nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 4)
    )


def cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8 * 4 * 4, 4),
    )


@pytest.mark.parametrize(
    ("make_model", "input_shape"), [(mlp, (10,)), (cnn, (1, 8, 8))], ids=["mlp", "cnn"]
)
def test_trains_faster_than_sgd_with_momentum_at_its_best_lr(
    make_model: Callable[[], nn.Module], input_shape: tuple[int, ...]
) -> None:
    torch.manual_seed(5)
    x = torch.randn(1024, *input_shape)
    y = teacher_labels(make_model(), x)
    init = make_model().state_dict()
    steps = 60

    def fresh() -> nn.Module:
        model = make_model()
        model.load_state_dict(init)
        return model

    kfac_loss = train(
        fresh(),
        lambda m: KFAC(m, lr=0.25, kl_clip=0.01, stat_decay=0.95, inverse_every=5),
        x,
        y,
        steps,
    )
    sgd_losses = {
        lr: train(
            fresh(),
            functools.partial(sgd_with_momentum, lr=lr),
            x,
            y,
            steps,
        )
        for lr in (0.01, 0.03, 0.1, 0.3, 1.0)
    }
    best_lr, best_sgd = min(sgd_losses.items(), key=lambda item: item[1])
    assert kfac_loss < best_sgd, (
        f"K-FAC {kfac_loss:.4f} vs SGD {best_sgd:.4f} at lr {best_lr} ({sgd_losses})"
    )


# ---------------------------------------------------------------------------- schedules and state


def run_updates(
    model: nn.Module,
    opt: KFAC,
    updates: range,
    before_update: Callable[[int], None] = lambda t: None,
) -> None:
    """Deterministic ACKTR-style updates: the data and the sampled targets depend only on t."""
    for t in updates:
        before_update(t)
        data = torch.Generator().manual_seed(100 + t)
        x = torch.randn(16, 6, generator=data)
        target = torch.randn(16, 2, generator=data)
        out = model(x)
        noise = torch.randn(out.shape, generator=data)
        with opt.fisher():
            (0.5 * (out - (out.detach() + noise)).square().sum(-1).mean()).backward(
                retain_graph=True
            )
        opt.zero_grad()
        (0.5 * (out - target).square().sum(-1).mean()).backward()
        opt.step()


def small_net() -> nn.Module:
    torch.manual_seed(6)
    return nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 2))


def test_schedules_change_what_step_uses() -> None:
    first = {
        "lr": 0.2,
        "momentum": 0.5,
        "stat_decay": 0.9,
        "damping": 0.03,
        "kl_clip": 0.01,
        "weight_decay": 0.0,
        "inverse_every": 3,
        "stats_every": 1,
    }
    later = {
        "lr": 0.05,
        "momentum": 0.8,
        "stat_decay": 0.5,
        "damping": 0.003,
        "kl_clip": 0.002,
        "weight_decay": 0.01,
        "inverse_every": 1,
        "stats_every": 2,
    }

    def schedule(name: str) -> Callable[[int], float]:
        return lambda step: first[name] if step < 2 else later[name]

    scheduled = small_net()
    opt = KFAC(scheduled, **{name: schedule(name) for name in first})  # type: ignore[arg-type]
    run_updates(scheduled, opt, range(5))
    assert {name: opt.param_groups[0][name] for name in later} == later

    # The same values set by hand in param_groups, the torch way, give the same parameters...
    by_hand = small_net()
    opt_by_hand = KFAC(by_hand, **first)  # type: ignore[arg-type]

    def set_values(t: int) -> None:
        opt_by_hand.param_groups[0].update(first if t < 2 else later)

    run_updates(by_hand, opt_by_hand, range(5), set_values)
    for got, want in zip(scheduled.parameters(), by_hand.parameters(), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-7)
    # ...and constants do not: the schedule really reached step().
    constant = small_net()
    run_updates(constant, KFAC(constant, **first), range(5))  # type: ignore[arg-type]
    assert not torch.allclose(next(constant.parameters()), next(scheduled.parameters()))


def test_last_nu__none_on_cold_steps_then_the_scale_of_each_preconditioned_step() -> None:
    net = small_net()
    opt = KFAC(net, cold_steps=1, kl_clip=1e-6)  # a tight trust region: every step is clipped
    assert opt.last_nu is None
    run_updates(net, opt, range(1))
    assert opt.last_nu is None
    run_updates(net, opt, range(1, 2))
    assert opt.last_nu is not None and 0 < opt.last_nu < 1
    opt.param_groups[0]["kl_clip"] = 1e6
    run_updates(net, opt, range(2, 3))
    assert opt.last_nu == 1.0


def test_state_dict_round_trip_resumes_exactly() -> None:
    settings = {
        "inverse_every": 3,
        "stats_every": 2,
        "cold_steps": 2,
        "stat_decay": 0.9,
        "kl_clip": 0.01,
    }
    straight = small_net()
    run_updates(straight, KFAC(straight, **settings), range(7))  # type: ignore[arg-type]

    interrupted = small_net()
    opt = KFAC(interrupted, **settings)  # type: ignore[arg-type]
    run_updates(interrupted, opt, range(4))
    saved = io.BytesIO()
    torch.save({"model": interrupted.state_dict(), "opt": opt.state_dict()}, saved)
    saved.seek(0)
    checkpoint = torch.load(saved)
    resumed = small_net()
    resumed.load_state_dict(checkpoint["model"])
    resumed_opt = KFAC(resumed, **settings)  # type: ignore[arg-type]
    resumed_opt.load_state_dict(checkpoint["opt"])
    run_updates(resumed, resumed_opt, range(4, 7))
    for got, want in zip(resumed.parameters(), straight.parameters(), strict=True):
        assert torch.equal(got, want)


def test_state_dict_saved_before_an_option_existed_resumes_with_the_given_value() -> None:
    model = small_net()
    opt = KFAC(model)
    run_updates(model, opt, range(2))
    old = opt.state_dict()
    for key in ("stats_every", "conv_statistics_dtype", "inverse_dtype"):
        del old["param_groups"][0][key]
    resumed = KFAC(model, stats_every=3, conv_statistics_dtype=torch.bfloat16)
    resumed.load_state_dict(old)
    assert resumed.param_groups[0]["stats_every"] == 3
    assert resumed.param_groups[0]["conv_statistics_dtype"] == torch.bfloat16
    run_updates(model, resumed, range(2, 4))
    assert resumed.steps == 4


# ------------------------------------------------------------------------------------ speed options


def test_stats_every_keeps_exactly_the_factors_of_the_sampled_updates() -> None:
    # Every update runs a Fisher pass; with stats_every=3 only those of steps 0, 3 and 6 count.
    # A of the first layer is that of its input x and S of the last layer that of the sampled
    # output noise, both by hand: S = B * sum((noise / B)(noise / B)^T) = noise^T noise / B.
    # The decay is per update, so each collection decays the factors by 0.5 ** 3.
    model = small_net()
    opt = KFAC(model, stats_every=3, stat_decay=0.5)
    due = []
    expected_a: Tensor | None = None
    expected_s: Tensor | None = None

    def record(t: int) -> None:
        nonlocal expected_a, expected_s
        due.append(opt.statistics_due)
        if t % 3 == 0:
            data = torch.Generator().manual_seed(100 + t)  # as run_updates draws them
            x = torch.randn(16, 6, generator=data)
            torch.randn(16, 2, generator=data)
            noise = torch.randn(16, 2, generator=data)
            a, s = with_ones(x).T @ with_ones(x) / 16, noise.T @ noise / 16
            expected_a = a if expected_a is None else 0.125 * expected_a + 0.875 * a
            expected_s = s if expected_s is None else 0.125 * expected_s + 0.875 * s

    run_updates(model, opt, range(8), record)
    assert due == [True, False, False, True, False, False, True, False]
    first, _, last = model.children()
    assert isinstance(first, nn.Linear) and isinstance(last, nn.Linear)
    torch.testing.assert_close(opt.state[first.weight]["kfac_a"], expected_a)
    torch.testing.assert_close(opt.state[last.weight]["kfac_s"], expected_s)


def test_skipping_the_fisher_pass_when_not_due_changes_nothing() -> None:
    always, skipping = small_net(), small_net()
    opt_always, opt_skipping = KFAC(always, stats_every=2), KFAC(skipping, stats_every=2)
    run_updates(always, opt_always, range(6))
    for t in range(6):
        data = torch.Generator().manual_seed(100 + t)
        x, target = torch.randn(16, 6, generator=data), torch.randn(16, 2, generator=data)
        out = skipping(x)
        noise = torch.randn(out.shape, generator=data)
        if opt_skipping.statistics_due:
            with opt_skipping.fisher():
                (0.5 * (out - (out.detach() + noise)).square().sum(-1).mean()).backward(
                    retain_graph=True
                )
        opt_skipping.zero_grad()
        (0.5 * (out - target).square().sum(-1).mean()).backward()
        opt_skipping.step()
    for got, want in zip(skipping.parameters(), always.parameters(), strict=True):
        assert torch.equal(got, want)


def test_bfloat16_conv_statistics_are_close_to_float64_and_stay_float32() -> None:
    torch.manual_seed(9)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(72, 4))
    x = torch.randn(32, 3, 7, 7)
    noise = torch.randn(32, 4, dtype=torch.float64)

    def factors(net: nn.Sequential, dtype: torch.dtype | None) -> list[Tensor]:
        opt = KFAC(net, stat_decay=0.0, conv_statistics_dtype=dtype)
        out = net(x.to(next(net.parameters()).dtype))
        with opt.fisher():
            (0.5 * (out - (out.detach() + noise.to(out.dtype))).square().sum(-1).mean()).backward()
        return [
            opt.state[layer.weight][k]
            for layer in net
            if isinstance(layer, nn.Conv2d | nn.Linear)
            for k in ("kfac_a", "kfac_s")
        ]

    reference = factors(copy.deepcopy(model).double(), None)
    low = factors(model, torch.bfloat16)
    relative = []
    for got, want in zip(low, reference, strict=True):
        assert got.dtype == torch.float32
        relative.append(float((got.double() - want).norm() / want.norm()))
    # The conv factors carry bfloat16 rounding (2^-9); the linear ones float32's (2^-24).
    conv_a, conv_s, linear_a, linear_s = relative
    assert 1e-5 < conv_a < 1e-2 and 1e-5 < conv_s < 1e-2
    assert linear_a < 1e-6 and linear_s < 1e-6


def test_float32_inverses_match_float64_ones() -> None:
    precise, fast = small_net(), small_net()
    opt_precise, opt_fast = KFAC(precise), KFAC(fast, inverse_dtype=torch.float32)
    # One update: the same factors, inverted at step 0 in the two dtypes.
    run_updates(precise, opt_precise, range(1))
    run_updates(fast, opt_fast, range(1))
    for mine, theirs in zip(opt_fast._layers, opt_precise._layers, strict=True):
        for key in ("kfac_a_inv", "kfac_s_inv"):
            got, want = opt_fast.state[mine.weight][key], opt_precise.state[theirs.weight][key]
            assert got.dtype == want.dtype == torch.float32
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("rows", "cols"), [(512, 1569), (6, 65)])
def test_float32_preconditioning_equals_the_plain_products(rows: int, cols: int) -> None:
    # Large float32 layers take the oneDNN route on a CPU; small ones and float64 the plain one.
    torch.manual_seed(10)
    s_inv, a_inv = torch.randn(rows, rows), torch.randn(cols, cols)
    s_inv, a_inv = s_inv + s_inv.T, a_inv + a_inv.T
    matrix = torch.randn(rows, cols)
    want = s_inv.double() @ matrix.double() @ a_inv.double()
    got = _precondition(s_inv, matrix, a_inv)
    assert got.dtype == torch.float32 and got.shape == (rows, cols)
    torch.testing.assert_close(got.double(), want, rtol=1e-4, atol=1e-4 * float(want.abs().max()))
    exact = _precondition(s_inv.double(), matrix.double(), a_inv.double())
    assert torch.equal(exact, s_inv.double() @ matrix.double() @ a_inv.double())


def test_bad_statistics_dtype_is_refused() -> None:
    with pytest.raises(ValueError, match="conv_statistics_dtype must be None or a floating-point"):
        KFAC(small_net(), conv_statistics_dtype=torch.int8)
    with pytest.raises(ValueError, match="stats_every must be an integer >= 1"):
        KFAC(small_net(), stats_every=0)
    with pytest.raises(ValueError, match="inverse_dtype must be a floating-point dtype"):
        KFAC(small_net(), inverse_dtype=None)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- degenerate input


def fisher_and_loss_grads(model: nn.Module, opt: KFAC, x: Tensor, loss_scale: float = 1.0) -> None:
    out = model(x)
    with opt.fisher():
        (0.5 * (out - (out.detach() + torch.randn_like(out))).square().sum(-1).mean()).backward(
            retain_graph=True
        )
    opt.zero_grad()
    (loss_scale * 0.5 * (out - 1.0).square().sum(-1).mean()).backward()


def all_finite(model: nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def test_all_zero_activations_leave_parameters_finite() -> None:
    torch.manual_seed(7)
    layer = nn.Linear(5, 3)
    weight = layer.weight.detach().clone()
    opt = KFAC(layer)
    for _ in range(3):
        fisher_and_loss_grads(layer, opt, torch.zeros(8, 5))
        opt.step()
    assert all_finite(layer)
    assert torch.equal(layer.weight, weight)  # zero inputs carry no gradient for the weight


@pytest.mark.parametrize("bias", [True, False], ids=["eigen_fallback", "keeps_last_good_inverse"])
def test_singular_factor_warns_and_stays_finite(
    bias: bool, caplog: pytest.LogCaptureFixture
) -> None:
    torch.manual_seed(8)
    layer = nn.Linear(5, 3, bias=bias)
    opt = KFAC(layer, damping=0.0, stat_decay=0.0, inverse_every=1)
    fisher_and_loss_grads(layer, opt, torch.randn(8, 5))
    opt.step()  # a good inverse first
    caplog.set_level(logging.WARNING, logger="acktr.kfac")
    # Zero activations, zero damping, no averaging: A is singular, diag(0, ..., 0, 1) with a bias
    # (the clamped eigendecomposition inverts it) and exactly zero without (nothing can).
    fisher_and_loss_grads(layer, opt, torch.zeros(8, 5))
    opt.step()
    assert all_finite(layer)
    assert any(record.levelno == logging.WARNING for record in caplog.records)


def test_huge_gradients_are_tamed_by_the_trust_region() -> None:
    steps = []
    for scale in (1.0, 1e30):
        torch.manual_seed(9)
        layer = nn.Linear(5, 3)
        before = params_of(layer)
        opt = KFAC(layer, momentum=0.0)
        fisher_and_loss_grads(layer, opt, torch.randn(8, 5), loss_scale=scale)
        opt.step()
        assert all_finite(layer)
        steps.append([p.detach() - b for p, b in zip(layer.parameters(), before, strict=True)])
    # The clipped step does not depend on the gradient's scale: nu * g_nat is scale-free.
    for huge, normal in zip(steps[1], steps[0], strict=True):
        torch.testing.assert_close(huge, normal, rtol=1e-4, atol=1e-7)


def test_inf_in_gradient_or_statistics_warns_and_keeps_parameters(
    caplog: pytest.LogCaptureFixture,
) -> None:
    torch.manual_seed(10)
    layer = nn.Linear(5, 3)
    opt = KFAC(layer)
    fisher_and_loss_grads(layer, opt, torch.randn(8, 5))
    opt.step()
    caplog.set_level(logging.WARNING, logger="acktr.kfac")

    before = params_of(layer)
    fisher_and_loss_grads(layer, opt, torch.randn(8, 5))
    assert layer.weight.grad is not None
    layer.weight.grad[0, 0] = math.inf
    opt.step()
    assert opt.last_nu is None  # a skipped step reports no trust-region scale
    assert [record for record in caplog.records if "non-finite gradient" in record.message]
    for p, b in zip(layer.parameters(), before, strict=True):
        assert torch.equal(p, b)

    factor = opt.state[layer.weight]["kfac_a"].clone()
    x = torch.randn(8, 5)
    x[3, 1] = math.inf
    out = layer(x)
    with opt.fisher():
        (0.5 * (out - (out.detach() + torch.randn_like(out))).square().sum(-1).mean()).backward()
    assert [record for record in caplog.records if "non-finite statistics" in record.message]
    assert torch.equal(opt.state[layer.weight]["kfac_a"], factor)

    fisher_and_loss_grads(layer, opt, torch.randn(8, 5))
    opt.step()  # and it carries on
    assert all_finite(layer)
    assert not torch.equal(layer.weight, before[0])
