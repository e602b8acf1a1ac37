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

    def input_covariance(self, x: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """``A`` of one batch: ``E[a aᵀ]`` over examples and positions, homogeneous coordinate last.

        Args:
            x: The layer input.
            dtype: Dtype of the matrix product (default: the weight's). ``torch.bfloat16`` runs
                about 4x faster on a CPU with native bfloat16 (AVX512-BF16, AMX); the products
                still accumulate in float32 and the result is in the weight's dtype.
        """
        rows = self.input_rows(x.to(dtype or self.weight.dtype))
        n, d = rows.shape
        gram = (rows.T @ rows).to(self.weight.dtype)
        if self.bias is None:
            return gram.div_(n)
        # Assembled block-wise rather than by appending a column of ones: that would copy the whole
        # (often very large) patch matrix once more.
        cov = gram.new_empty(d + 1, d + 1)
        cov[:d, :d] = gram
        column_sum = rows.sum(dim=0, dtype=self.weight.dtype)
        cov[:d, d] = column_sum
        cov[d, :d] = column_sum
        cov[d, d] = n
        return cov.div_(n)

    def output_covariance(self, grad_output: Tensor, dtype: torch.dtype | None = None) -> Tensor:
        """``S`` of one batch from the gradient of a batch-mean loss w.r.t. the layer output.

        The loss being a mean over the batch, each row is ``1/B`` times the per-example gradient,
        so ``S = (1/B) Σ (B g)(B g)ᵀ = B Σ g gᵀ`` (sum over examples and positions).

        Args:
            grad_output: The gradient w.r.t. the layer output.
            dtype: Dtype of the matrix product, as in :meth:`input_covariance`.
        """
        batch = grad_output.shape[0] if grad_output.dim() > self.example_dims else 1
        rows = self.output_rows(grad_output.to(dtype or self.weight.dtype))
        return (rows.T @ rows).to(self.weight.dtype).mul_(batch)

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
        padding = conv._reversed_padding_repeated_twice  # what Conv2d.forward pads with
        if any(padding):
            mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
            x = F.pad(x, padding, mode=mode)
        x = x.contiguous()
        batch, channels, height, width = x.shape
        (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
        out_h = (height - dh * (kh - 1) - 1) // sh + 1
        out_w = (width - dw * (kw - 1) - 1) // sw + 1
        # The patches as a strided view [B, out_h, out_w, C, kh, kw], copied once into rows in
        # F.unfold's column order: measured 10x faster here than F.unfold followed by the
        # transpose its [B, C*kh*kw, positions] layout needs.
        sb, sc, sy, sx = x.stride()
        patches = x.as_strided(
            (batch, out_h, out_w, channels, kh, kw), (sb, sy * sh, sx * sw, sc, sy * dh, sx * dw)
        )
        return patches.reshape(batch * out_h * out_w, channels * kh * kw)

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
