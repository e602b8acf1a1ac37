"""Bradley-Terry ratings with 95 % confidence intervals, reported on the Elo scale.

The model: agent ``i`` has a strength ``theta_i`` (natural-log units) and beats agent ``j`` with
probability ``sigma(theta_i - theta_j)``, ``sigma`` the logistic function. Every comparison between
two agents contributes its points ``w`` (1 a win, 1/2 a draw, 0 a loss) to the log-likelihood::

    log L(theta) = sum over comparisons of  w log sigma(theta_i - theta_j)
                                          + (1 - w) log sigma(theta_j - theta_i)

Draws count as half a win and half a loss (the usual Elo convention). A weak Gaussian prior
``theta_i ~ N(0, prior_sd^2)`` is added so that an agent that never lost (or never won) still gets a
finite rating, and so that the posterior has one maximum even when the comparison graph is not
connected; with ``prior_sd = 3`` (about 520 Elo) it moves a rating backed by a few dozen games by a
few Elo at most.

The maximum a posteriori strengths are found by Newton's method (the log-posterior is strictly
concave, so it converges in a handful of steps; a halving line search guards the first ones).
Confidence intervals come from the Laplace approximation: the covariance of ``theta`` is the
inverse of the negative Hessian of the log-posterior (the Fisher information of the comparisons
plus the prior's precision). Reported ratings are ``1500 + ELO_PER_NAT * (theta_i - mean(theta))``,
so the mean rating is 1500 and a difference of 400 means odds of 10:1; each interval is
``rating +- 1.96 sd`` of that centred contrast.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

#: Elo points per natural-log unit of strength: 400 Elo are odds of 10 to 1.
ELO_PER_NAT = 400.0 / math.log(10.0)
#: The mean rating.
ELO_MEAN = 1500.0
#: Standard deviation of the prior on each strength, in natural-log units (about 520 Elo).
PRIOR_SD = 3.0
#: The 97.5 % quantile of the standard normal: a two-sided 95 % interval.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class BradleyTerryFit:
    """The fitted strengths of ``n`` agents.

    Attributes:
        theta: (n,) maximum a posteriori strengths, natural-log units.
        cov: (n, n) their covariance (Laplace approximation: the inverse negative Hessian).
    """

    theta: NDArray[np.float64]
    cov: NDArray[np.float64]

    def _contrasts(self) -> NDArray[np.float64]:
        """(n, n): row ``i`` maps ``theta`` to ``theta_i - mean(theta)``."""
        n = self.theta.size
        return np.eye(n) - np.full((n, n), 1.0 / n)

    def elo(self) -> NDArray[np.float64]:
        """(n,) ratings on the Elo scale, their mean ``ELO_MEAN``."""
        return ELO_MEAN + ELO_PER_NAT * (self.theta - self.theta.mean())

    def elo_sd(self) -> NDArray[np.float64]:
        """(n,) standard deviations of the ratings (of each one's distance from the mean)."""
        c = self._contrasts()
        var = np.einsum("ij,jk,ik->i", c, self.cov, c)
        return ELO_PER_NAT * np.sqrt(np.maximum(var, 0.0))

    def elo_ci95(self) -> NDArray[np.float64]:
        """(n, 2) the 95 % confidence interval of each rating, low and high."""
        r, half = self.elo(), Z95 * self.elo_sd()
        return np.stack([r - half, r + half], axis=1)


def _log_posterior(
    theta: NDArray[np.float64], points: NDArray[np.float64], prior_sd: float
) -> float:
    d = theta[:, None] - theta[None, :]
    # points[i, j] log sigma(d_ij) over all ordered pairs counts each comparison once from each
    # side: i's points against j with sigma(d_ij), and j's against i (counts - points) likewise.
    log_p = -np.logaddexp(0.0, -d)
    return float(np.sum(points * log_p) - 0.5 * np.sum(theta**2) / prior_sd**2)


def fit_bradley_terry(
    points: NDArray[np.floating], counts: NDArray[np.floating], *, prior_sd: float = PRIOR_SD
) -> BradleyTerryFit:
    """Fit strengths to pairwise results.

    Args:
        points: (n, n) ``points[i, j]``: what ``i`` scored against ``j`` over all their
            comparisons (a win 1, a draw 1/2).
        counts: (n, n) symmetric, ``counts[i, j]``: the number of comparisons of ``i`` and ``j``
            (so ``points[i, j] + points[j, i] == counts[i, j]``).
        prior_sd: the prior's standard deviation on each strength (natural-log units).

    Returns:
        The MAP strengths and their covariance.

    Raises:
        ValueError: shapes that do not match, negative entries, or points that do not add up.
    """
    w = np.asarray(points, dtype=np.float64)
    n_ij = np.asarray(counts, dtype=np.float64)
    n = w.shape[0]
    if w.shape != (n, n) or n_ij.shape != (n, n):
        raise ValueError(f"points and counts must both be (n, n), got {w.shape} and {n_ij.shape}")
    if (w < 0).any() or (n_ij < 0).any():
        raise ValueError("points and counts must be >= 0")
    if not np.allclose(w + w.T, n_ij) or not np.allclose(n_ij, n_ij.T):
        raise ValueError("points[i, j] + points[j, i] must equal counts[i, j] (symmetric)")
    if not prior_sd > 0:
        raise ValueError(f"prior_sd must be > 0, got {prior_sd}")
    precision = 1.0 / prior_sd**2
    theta = np.zeros(n)
    value = _log_posterior(theta, w, prior_sd)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))
        grad = (w - n_ij * p).sum(axis=1) - precision * theta
        info = n_ij * p * (1.0 - p)
        hess = np.diag(info.sum(axis=1) + precision) - info  # the negative Hessian
        step = np.linalg.solve(hess, grad)
        t = 1.0
        while True:
            candidate = theta + t * step
            new_value = _log_posterior(candidate, w, prior_sd)
            if new_value >= value - 1e-12 or t < 1e-6:
                break
            t *= 0.5
        theta, value = candidate, new_value
        if np.max(np.abs(t * step)) < 1e-10:
            break
    p = 1.0 / (1.0 + np.exp(-(theta[:, None] - theta[None, :])))
    info = n_ij * p * (1.0 - p)
    hess = np.diag(info.sum(axis=1) + precision) - info
    cov = np.linalg.inv(hess).astype(np.float64)
    return BradleyTerryFit(theta=theta, cov=cov)
