"""Optimisation as the reference does it: TF-style Adam, element-wise clipping, the two schedules."""

from __future__ import annotations

import math
from typing import Iterable

import torch
from torch import Tensor

from ..hparams import HParams


def learning_rate(hps: HParams, step: int) -> float:
    """lr at `step` (the step count before the update): (lr₀ − lr_min)·decay^step + lr_min."""
    return (hps.learning_rate - hps.min_learning_rate) * hps.decay_rate**step + hps.min_learning_rate


def kl_weight(hps: HParams, step: int) -> float:
    """KL weight at `step`: w_KL − (w_KL − w_start)·kl_decay^step, rising from w_start to w_KL."""
    return hps.kl_weight - (hps.kl_weight - hps.kl_weight_start) * hps.kl_decay_rate**step


def clip_gradients_(params: Iterable[Tensor], limit: float) -> None:
    """Clip every gradient element to [−limit, limit] (the reference clips by value, not by norm)."""
    grads = [p.grad for p in params if p.grad is not None]
    if grads:
        torch._foreach_clamp_min_(grads, -limit)
        torch._foreach_clamp_max_(grads, limit)


class TFAdam(torch.optim.Optimizer):
    """Adam with TensorFlow's epsilon convention (ε added to √v before bias correction).

    TF: ``lr_t = lr·√(1−β₂ᵗ)/(1−β₁ᵗ)``, ``θ −= lr_t · m / (√v + ε)``. PyTorch's Adam adds ε to
    √v̂ instead, which drifts from the reference by up to 1e-3 in three steps on small gradients.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):  # type: ignore[override]
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            beta1, beta2 = group["betas"]
            for p in params:
                if not self.state[p]:
                    self.state[p]["step"] = 0
                    self.state[p]["exp_avg"] = torch.zeros_like(p)
                    self.state[p]["exp_avg_sq"] = torch.zeros_like(p)
            t = self.state[params[0]]["step"] + 1
            for p in params:
                self.state[p]["step"] = t
            m = [self.state[p]["exp_avg"] for p in params]
            v = [self.state[p]["exp_avg_sq"] for p in params]
            grads = [p.grad for p in params]
            torch._foreach_lerp_(m, grads, 1 - beta1)  # m ← β₁m + (1−β₁)g
            torch._foreach_mul_(v, beta2)
            torch._foreach_addcmul_(v, grads, grads, 1 - beta2)  # v ← β₂v + (1−β₂)g²
            lr_t = group["lr"] * math.sqrt(1 - beta2**t) / (1 - beta1**t)
            denom = torch._foreach_sqrt(v)
            torch._foreach_add_(denom, group["eps"])
            torch._foreach_addcdiv_(params, m, denom, -lr_t)  # θ ← θ − lr_t·m/(√v + ε)
        return None


def optimizer_tensors(optimizer: TFAdam, model: torch.nn.Module) -> tuple[dict[str, Tensor], int]:
    """Adam's moments by parameter name (for a safetensors file) and its step count."""
    out: dict[str, Tensor] = {}
    step = 0
    for name, p in model.named_parameters():
        state = optimizer.state.get(p)
        if state:
            out[f"adam.m.{name}"] = state["exp_avg"]
            out[f"adam.v.{name}"] = state["exp_avg_sq"]
            step = int(state["step"])
    return out, step


def load_optimizer_tensors(optimizer: TFAdam, model: torch.nn.Module, tensors: dict[str, Tensor], step: int) -> None:
    """Restore what `optimizer_tensors` saved."""
    for name, p in model.named_parameters():
        m, v = tensors.get(f"adam.m.{name}"), tensors.get(f"adam.v.{name}")
        if m is None or v is None:
            if step:
                raise ValueError(f"the optimizer state has no moments for parameter {name}")
            continue
        if m.shape != p.shape or v.shape != p.shape:
            raise ValueError(f"the optimizer state for {name} has shape {list(m.shape)}, expected {list(p.shape)}")
        optimizer.state[p] = {"step": step, "exp_avg": m.to(p.device, p.dtype).clone(),
                              "exp_avg_sq": v.to(p.device, p.dtype).clone()}
