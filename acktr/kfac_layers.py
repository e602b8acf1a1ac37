"""Per-layer K-FAC maths: how a layer's inputs and output gradients become the factors A and S.

Conventions shared by the optimizer and the tests:

- A layer's gradient is handled as a matrix ``G`` of shape ``[out, d]`` with ``d = in_features`` for
  a ``Linear`` and ``d = in_channels * kh * kw`` for a ``Conv2d`` (the order of ``F.unfold`` and of
  ``weight.reshape(out, -1)``); a trainable bias is one more column, the homogeneous coordinate of
  the input, so no module surgery is needed.
- The Fisher block of the row-major flattening of ``G`` is approximated by ``S ⊗ A``, which makes
  the natural gradient ``S⁻¹ G A⁻¹``.
- ``A = E[a aᵀ]`` is averaged over examples *and* positions (the output pixels of a conv, any extra
  leading dimensions of a ``Linear``). ``S = E_examples[Σ_positions g gᵀ]`` is summed over positions
  and averaged over examples, where ``g`` is the gradient of the *per-example* loss with respect to
  the layer's pre-activation output. This is the KFC convention (Grosse & Martens, 2016): with one
  position it is the plain K-FAC block, with many it is the block under spatial homogeneity and
  spatially uncorrelated derivatives.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class KFACLayer:
    """One layer whose Fisher block is Kronecker-factored.

    Subclasses say how a layer turns its input into rows ``a`` (one per position) and its output
    gradient into rows ``g``; the covariances and the gradient-matrix bookkeeping are shared.

    Attributes:
        example_dims: Dimensions of one unbatched example's output (an unbatched call is a batch of 1).

    Args:
        module: The layer.
        name: Its name in the model, used in log messages.
    """

    example_dims: int

    def __init__(self, module: nn.Linear | nn.Conv2d, name: str) -> None:
        self.module = module
        self.name = name
        self.weight = module.weight
        bias = module.bias
        # A frozen bias is a constant shift: it has no gradient, so no homogeneous coordinate either.
        self.bias: Tensor | None = bias if bias is not None and bias.requires_grad else None

    def input_rows(self, x: Tensor) -> Tensor:
        """The layer input as a ``[positions, d]`` matrix (batch and positions flattened)."""
        raise NotImplementedError

    def output_rows(self, grad_output: Tensor) -> Tensor:
        """The gradient w.r.t. the layer output as a ``[positions, out]`` matrix."""
        raise NotImplementedError

    def input_covariance(self, x: Tensor) -> Tensor:
        """``A`` of one batch: ``E[a aᵀ]`` over examples and positions, homogeneous coordinate last."""
        rows = self.input_rows(x.to(self.weight.dtype))
        n, d = rows.shape
        if self.bias is None:
            return (rows.T @ rows).div_(n)
        # Assembled block-wise rather than by appending a column of ones: that would copy the whole
        # (often very large) patch matrix once more.
        cov = rows.new_empty(d + 1, d + 1)
        cov[:d, :d] = rows.T @ rows
        column_sum = rows.sum(dim=0)
        cov[:d, d] = column_sum
        cov[d, :d] = column_sum
        cov[d, d] = n
        return cov.div_(n)

    def output_covariance(self, grad_output: Tensor) -> Tensor:
        """``S`` of one batch from the gradient of a batch-mean loss w.r.t. the layer output.

        The loss being a mean over the batch, each row is ``1/B`` times the per-example gradient,
        so ``S = (1/B) Σ (B g)(B g)ᵀ = B Σ g gᵀ`` (sum over examples and positions).
        """
        batch = grad_output.shape[0] if grad_output.dim() > self.example_dims else 1
        rows = self.output_rows(grad_output.to(self.weight.dtype))
        return (rows.T @ rows).mul_(batch)

    def gradient_matrix(self, weight_grad: Tensor, bias_grad: Tensor | None) -> Tensor:
        """``G = [dW | db]`` of shape ``[out, d (+1)]``."""
        matrix = weight_grad.reshape(weight_grad.shape[0], -1)
        if self.bias is None:
            return matrix
        if bias_grad is None:
            bias_grad = torch.zeros_like(self.bias)
        return torch.cat([matrix, bias_grad.unsqueeze(1)], dim=1)

    def split(self, matrix: Tensor) -> tuple[Tensor, Tensor | None]:
        """Inverse of :meth:`gradient_matrix`: weight-shaped and bias-shaped tensors."""
        if self.bias is None:
            return matrix.reshape(self.weight.shape), None
        return matrix[:, :-1].reshape(self.weight.shape), matrix[:, -1].contiguous()


class LinearLayer(KFACLayer):
    """``nn.Linear``: every leading dimension of the input but the first is a position."""

    module: nn.Linear
    example_dims = 1

    def input_rows(self, x: Tensor) -> Tensor:
        return x.reshape(-1, x.shape[-1])

    def output_rows(self, grad_output: Tensor) -> Tensor:
        return grad_output.reshape(-1, grad_output.shape[-1])


class Conv2dLayer(KFACLayer):
    """``nn.Conv2d`` with ``groups=1``: rows of ``A`` are im2col patches (``F.unfold``)."""

    module: nn.Conv2d
    example_dims = 3

    def input_rows(self, x: Tensor) -> Tensor:
        conv = self.module
        if x.dim() == 3:
            x = x.unsqueeze(0)
        padding = conv.padding
        if isinstance(padding, str) or conv.padding_mode != "zeros":
            # "same" padding and non-zero padding modes: pad exactly as Conv2d.forward does.
            mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
            x = F.pad(x, conv._reversed_padding_repeated_twice, mode=mode)
            padding = (0, 0)
        patches = F.unfold(
            x,
            kernel_size=conv.kernel_size,
            dilation=conv.dilation,
            padding=padding,
            stride=conv.stride,
        )  # [B, C*kh*kw, positions]
        return patches.transpose(1, 2).reshape(-1, patches.shape[1])

    def output_rows(self, grad_output: Tensor) -> Tensor:
        channels = grad_output.shape[-3]
        return grad_output.transpose(-3, -1).reshape(-1, channels)


def make_layer(module: nn.Module, name: str) -> KFACLayer | None:
    """The K-FAC helper for a supported, trainable layer, or ``None`` if it gets the first-order rule."""
    if isinstance(module, nn.Linear) and module.weight.requires_grad:
        return LinearLayer(module, name)
    if isinstance(module, nn.Conv2d) and module.groups == 1 and module.weight.requires_grad:
        return Conv2dLayer(module, name)
    return None
