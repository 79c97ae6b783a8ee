"""The mixture density output: split of the output layer, bivariate normals and the losses.

The output layer's 6M+3 columns are laid out as the reference lays them:
``[pen logits (3) | pi (M) | mu1 (M) | mu2 (M) | log sigma1 (M) | log sigma2 (M) | rho (M)]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

GMM_EPSILON = 1e-6  # inside the log of the mixture density, as the reference


@dataclass
class Mixture:
    """Parameters of the next-point distribution, each ``[..., M]`` (pen: ``[..., 3]``)."""

    pi: Tensor  # mixture weights Π_j (softmax)
    mu1: Tensor  # μ_x
    mu2: Tensor  # μ_y
    sigma1: Tensor  # σ_x = exp(σ̂_x)
    sigma2: Tensor  # σ_y = exp(σ̂_y)
    rho: Tensor  # ρ_xy = tanh(ρ̂_xy)
    pen: Tensor  # (q1, q2, q3) = softmax(pen logits)
    pi_logits: Tensor
    pen_logits: Tensor


def output_size(num_mixture: int) -> int:
    """Width of the output layer for M components: 6M + 3."""
    return 6 * num_mixture + 3


def split_output(y: Tensor, num_mixture: int) -> Mixture:
    """Turn raw outputs ``[..., 6M+3]`` into mixture parameters."""
    pen_logits = y[..., :3]
    pi_logits, mu1, mu2, log_s1, log_s2, rho_raw = y[..., 3:].split(num_mixture, dim=-1)
    return Mixture(
        pi=torch.softmax(pi_logits, dim=-1),
        mu1=mu1,
        mu2=mu2,
        sigma1=torch.exp(log_s1),
        sigma2=torch.exp(log_s2),
        rho=torch.tanh(rho_raw),
        pen=torch.softmax(pen_logits, dim=-1),
        pi_logits=pi_logits,
        pen_logits=pen_logits,
    )



def _pick(logits: Tensor, tau: Tensor, greedy: Tensor, u: Tensor) -> Tensor:
    """Index drawn from softmax(logits / τ) by inverting its CDF at `u` (argmax where greedy), per row."""
    probs = torch.softmax(logits / torch.where(greedy, 1.0, tau)[:, None], dim=-1)
    drawn = (probs.cumsum(-1) < u[:, None]).sum(-1).clamp(max=logits.shape[-1] - 1)
    return torch.where(greedy, logits.argmax(-1), drawn)


def draw(mix: Mixture, tau: Tensor, greedy: Tensor, first: Tensor | None, u: Tensor, e: Tensor) -> tuple[Tensor, Tensor]:
    """One point per row at temperature τ: (x, pen), x the stroke-5 rows (dx, dy, p1, p2, p3) of the
    drawn points and pen their state 0/1/2 (down/up/end).

    Per row: `tau`, `greedy` (the most likely component and pen state and the mean; set it where
    τ = 0) and `first` (no end of sketch: the sketch's first point; None: nowhere). `u` [2, rows]
    uniforms (component, pen) and `e` [2, rows] standard normals (the offset).
    """
    rows = torch.arange(len(tau), device=tau.device)
    k = _pick(mix.pi_logits, tau, greedy, u[0])  # component j ~ Π(τ) = softmax(π̂ / τ)
    pen_logits = mix.pen_logits
    if first is not None:
        pen_logits = pen_logits.masked_fill(first[:, None] & (torch.arange(3, device=tau.device) == 2), -float("inf"))
    pen = _pick(pen_logits, tau, greedy, u[1])  # pen state ~ q(τ) = softmax(q̂ / τ)
    spread = torch.where(greedy, 0.0, tau)  # σ τ; the mean itself when greedy
    mu1, mu2 = mix.mu1[rows, k], mix.mu2[rows, k]
    s1, s2, rho = mix.sigma1[rows, k] * spread, mix.sigma2[rows, k] * spread, mix.rho[rows, k]
    x = torch.zeros(len(tau), 5, device=tau.device, dtype=mu1.dtype)
    x[:, 0] = mu1 + s1 * e[0]
    x[:, 1] = mu2 + s2 * (rho * e[0] + torch.sqrt(1 - rho * rho) * e[1])  # the bivariate normal N(μ, Σ τ²)
    x[rows, 2 + pen] = 1
    return x, pen

def bivariate_normal(x1: Tensor, x2: Tensor, mix: Mixture) -> Tensor:
    """N(x1, x2 | μ, σ, ρ) for every component, in probability space (Graves 2013, eq. 24-25)."""
    n1 = x1.unsqueeze(-1) - mix.mu1
    n2 = x2.unsqueeze(-1) - mix.mu2
    s1s2 = mix.sigma1 * mix.sigma2
    # Z = (n1/σ1)² + (n2/σ2)² − 2ρ n1 n2 / (σ1 σ2)
    z = torch.square(n1 / mix.sigma1) + torch.square(n2 / mix.sigma2) - 2 * (mix.rho * (n1 * n2)) / s1s2
    neg_rho = 1 - torch.square(mix.rho)
    # N = exp(−Z / 2(1−ρ²)) / (2π σ1 σ2 √(1−ρ²))
    return torch.exp(-z / (2 * neg_rho)) / (2 * math.pi * (s1s2 * torch.sqrt(neg_rho)))


def log_bivariate_normal(x1: Tensor, x2: Tensor, mix: Mixture) -> Tensor:
    """log N(x1, x2 | μ, σ, ρ) for every component, in log space (for likelihoods, not the training loss)."""
    n1 = (x1.unsqueeze(-1) - mix.mu1) / mix.sigma1
    n2 = (x2.unsqueeze(-1) - mix.mu2) / mix.sigma2
    neg_rho = 1 - torch.square(mix.rho)
    z = n1 * n1 + n2 * n2 - 2 * mix.rho * n1 * n2
    return -z / (2 * neg_rho) - math.log(2 * math.pi) - torch.log(mix.sigma1 * mix.sigma2) - 0.5 * torch.log(neg_rho)


def offset_loss(mix: Mixture, targets: Tensor) -> Tensor:
    """L_s per step = −log(Σ_j Π_j N(Δx, Δy | μ_j, σ_j, ρ_j) + 1e-6), not yet masked: ``[...]``."""
    density = (mix.pi * bivariate_normal(targets[..., 0], targets[..., 1], mix)).sum(-1)
    return -torch.log(density + GMM_EPSILON)


def pen_loss(mix: Mixture, targets: Tensor) -> Tensor:
    """L_p per step = −Σ_k p_k log q_k (softmax cross-entropy with the stroke-5 pen bits): ``[...]``."""
    return -(targets[..., 2:5] * F.log_softmax(mix.pen_logits, dim=-1)).sum(-1)


def reconstruction_terms(mix: Mixture, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Per step (L_s·(1−p3), L_p, 1−p3): the masked offset loss, the pen loss and the real-point mask.

    The reference's L_R is the mean of L_s·(1−p3) + L_p over batch × N_max (divided by N_max, not
    by each sketch's length); masking L_p by (1−p3) as well gives the evaluation variant.
    """
    real = 1.0 - targets[..., 4]  # 1 for real points, 0 for the end token and padding
    return offset_loss(mix, targets) * real, pen_loss(mix, targets), real


def kl_divergence(mu: Tensor, presig: Tensor) -> Tensor:
    """L_KL = −½ mean(1 + σ̂ − μ² − exp(σ̂)), averaged over batch and z (not yet floored)."""
    return -0.5 * torch.mean(1 + presig - torch.square(mu) - torch.exp(presig))


def sketch_log_likelihood(mix: Mixture, targets: Tensor, lengths: Tensor) -> Tensor:
    """log p(sketch) per sketch ``[B]``: log densities of the real offsets plus log pen probabilities up to
    and including the end-of-sketch token, in normalised units and without the training epsilon."""
    steps = targets.shape[1]
    t = torch.arange(steps, device=targets.device)[None, :]
    lens = lengths.to(targets.device)[:, None]
    log_density = torch.logsumexp(
        F.log_softmax(mix.pi_logits, dim=-1) + log_bivariate_normal(targets[..., 0], targets[..., 1], mix), dim=-1
    )
    log_pen = (targets[..., 2:5] * F.log_softmax(mix.pen_logits, dim=-1)).sum(-1)
    offsets = torch.where(t < lens, log_density, torch.zeros_like(log_density)).sum(1)
    pens = torch.where(t <= lens, log_pen, torch.zeros_like(log_pen)).sum(1)
    return offsets + pens
