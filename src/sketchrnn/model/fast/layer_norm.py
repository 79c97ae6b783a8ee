"""The LayerNorm-LSTM's fast time loop: magenta's LayerNormLSTMCell over a sequence, with a hand-written backward.

The forward keeps the normalised gate pre-activations and the layer norms' statistics (the
`LNTape`); the activations and tanh(LN(c)) are recomputed in the backward step (cheap element-wise
work) instead of being stored. The HyperLSTM runs two of these tapes, its main cell's and its
hyper cell's.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from .backends import ElementWise, backend_for
from .work import WorkBuffers, current, dense, give, initial, input_weight_grad, once, take


@dataclass
class Norms:
    """The layer norms' gains and biases: over the four gate blocks (`gamma, beta [4n]`) and over c
    (`gamma_c, beta_c [n]`)."""

    gamma: Tensor
    beta: Tensor
    gamma_c: Tensor
    beta_c: Tensor

    def tensors(self) -> tuple[Tensor, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))


@dataclass
class LNTape:
    """What the forward loop of a LayerNorm-LSTM keeps per step, and the step itself, forwards and backwards."""

    n: int
    normed: Tensor  # [T, B, 4n]: LN(s_t) per gate block, before γ and β
    rstd: Tensor  # [T, B, 4, 1]: 1/std of each gate block
    cs: Tensor  # [T + 1, B, n]: c_0 … c_T
    hs: Tensor  # [T + 1, B, n]: h_0 … h_T
    c_stats: Tensor  # [T, 2, B, 1]: mean and 1/std of c_{t+1}

    @classmethod
    def new(cls, work: WorkBuffers | None, like: Tensor, steps: int, batch: int, n: int) -> LNTape:
        return cls(n, take(work, like, steps, batch, 4 * n), take(work, like, steps, batch, 4, 1),
                   take(work, like, steps + 1, batch, n), take(work, like, steps + 1, batch, n),
                   take(work, like, steps, 2, batch, 1))

    def tensors(self) -> tuple[Tensor, ...]:
        return self.normed, self.rstd, self.cs, self.hs, self.c_stats

    def step(self, ops: ElementWise, t: int, s: Tensor, norms: Norms, mask: Tensor | None) -> Tensor:
        """Step t from raw pre-activations `s [B, 4n]`: stores c_{t+1}, h_{t+1} and returns h_{t+1}."""
        return ops.ln_step(self, t, s, *norms.tensors(), mask)

    def step_backward(self, ops: ElementWise, t: int, dh: Tensor, dc: Tensor, norms: Norms, mask: Tensor | None,
                      acc: Tensor, ds: Tensor, dh_extra: Tensor | None = None) -> Tensor:
        """Writes ∂ of step t's raw pre-activations into `ds [B, 4n]` and returns ∂c_t, from ∂h_{t+1}
        (`dh`, plus `dh_extra` when given) and ∂c_{t+1} (`dc`, which it may overwrite); adds the
        γ, β gradients into `acc` (see `accumulators`)."""
        return ops.ln_step_backward(self, t, dh, dc, *norms.tensors(), mask, acc, ds, dh_extra)

    def accumulators(self, ops: ElementWise, batch: int) -> Tensor:
        """Zeroed sums of the γ, β, γc, βc gradients [P, 10n] (P rows, as the backend adds into them)."""
        return self.cs.new_zeros(ops.accumulator_rows(batch), 10 * self.n)

    def norm_grads(self, acc: Tensor) -> Norms:
        """(∂γ, ∂β, ∂γc, ∂βc) from the accumulators."""
        total, n = acc.sum(0), self.n
        return Norms(total[: 4 * n], total[4 * n : 8 * n], total[8 * n : 9 * n], total[9 * n :])


class LayerNormLSTMSequence(torch.autograd.Function):
    """Outputs h_1..h_T and the final (h_T, c_T) of magenta's LayerNormLSTMCell.

    Inputs: the input term's factors `x [B, T, k]`, `w_x [k, 4n]`, `const [B, 4n]` (step t's input
    term is x_t W_x + const), `w_hh [n, 4n]`, initial `h0, c0 [B, n]`, `masks [T, B, n]` or None,
    and the layer norms' `Norms` tensors.
    """

    @staticmethod
    def forward(ctx, x, w_x, const, w_hh, h0, c0, masks, *norm_tensors):  # type: ignore[override]
        batch, steps, _ = x.shape
        n = w_hh.shape[0]
        norms, ops, work = Norms(*norm_tensors), backend_for(x), current()
        tape = LNTape.new(work, x, steps, batch, n)
        tape.hs[0], tape.cs[0] = h0, c0
        masks = dense(masks)
        for t in range(steps):
            s = torch.addmm(const, x[:, t], w_x).addmm_(tape.hs[t], w_hh)  # s_t = x_t W_x + const + h_{t−1} W_hh
            tape.step(ops, t, s, norms, None if masks is None else masks[t])
        ctx.save_for_backward(x, w_x, w_hh, masks, *norm_tensors)
        ctx.tape, ctx.ops, ctx.work = tape, ops, work
        return tape.hs[1:].transpose(0, 1).contiguous(), tape.hs[steps].clone(), tape.cs[steps].clone()

    @staticmethod
    def backward(ctx, d_out, d_h_last, d_c_last):  # type: ignore[override]
        once(ctx)
        x, w_x, w_hh, masks, *norm_tensors = ctx.saved_tensors
        norms, tape, ops = Norms(*norm_tensors), ctx.tape, ctx.ops
        steps, batch, width = tape.normed.shape
        n = width // 4
        d_s = take(ctx.work, x, steps, batch, width)  # ∂ of the raw pre-activations, every step
        acc = tape.accumulators(ops, batch)
        dh, dc = initial(d_h_last, tape.hs), initial(d_c_last, tape.cs)
        d_out = dense(d_out)
        w_t = w_hh.t()
        for t in reversed(range(steps)):
            dc = tape.step_backward(ops, t, dh, dc, norms, None if masks is None else masks[t], acc, d_s[t],
                                    None if d_out is None else d_out[:, t])
            dh = d_s[t] @ w_t  # ∂h_{t−1} = ∂s_t W_hhᵀ
        # the weight gradients Σ_t h_{t−1}ᵀ ∂s_t and Σ_t x_tᵀ ∂s_t: one large multiply each
        rows = steps * batch
        d_w_hh = tape.hs[:-1].reshape(rows, n).t() @ d_s.view(rows, width)
        d_w_x = input_weight_grad(x.transpose(0, 1), d_s)
        d_x = (d_s @ w_x.t()).transpose(0, 1) if ctx.needs_input_grad[0] else None
        d_const = d_s.sum(0)
        give(ctx.work, d_s, *tape.tensors())
        return (d_x, d_w_x, d_const, d_w_hh, dh, dc, None, *tape.norm_grads(acc).tensors())


def layer_norm_lstm_sequence(x: Tensor, w_x: Tensor, const: Tensor, w_hh: Tensor, norms: Norms, h0: Tensor,
                             c0: Tensor, masks: Tensor | None):
    """(outputs [B, T, n], h_T, c_T) through `LayerNormLSTMSequence`."""
    return LayerNormLSTMSequence.apply(x, w_x, const, w_hh, h0, c0, masks, *norms.tensors())


def ln_inference_step(s: Tensor, c: Tensor, norms: Norms) -> tuple[Tensor, Tensor]:
    """(h', c') of a LayerNorm-LSTM step from its raw pre-activations `s [B, 4n]`: the tape's step
    over a tape one step long (inference)."""
    tape = LNTape.new(None, s, 1, *c.shape)
    tape.cs[0] = c
    h = tape.step(backend_for(s), 0, s, norms, None)
    return h, tape.cs[1]
