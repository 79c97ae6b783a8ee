"""The LSTM's fast time loop: magenta's LSTMCell over a whole sequence, with a hand-written backward.

The forward keeps the gate activations (the `LSTMTape`); the backward turns each step's
activations into the gradients of its gate pre-activations in place, and the weight gradients are
one multiply per cell over all steps at the end.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .backends import backend_for
from .work import WorkBuffers, current, dense, give, initial, input_weight_grad, once, take


@dataclass
class LSTMTape:
    """What the forward keeps for the backward, every tensor with a leading step dimension T (or T + 1)
    and D cells side by side. The backward overwrites `acts[t]` with ∂ of step t's gate pre-activations."""

    acts: Tensor  # [T, D, B, 4n]: σ(i), tanh(j), σ(f+1), σ(o)
    cs: Tensor  # [T + 1, D, B, n]: c_0 … c_T
    hs: Tensor  # [T + 1, D, B, n]: h_0 … h_T
    tanh_cs: Tensor  # [T, D, B, n]: tanh(c_1) … tanh(c_T)

    @classmethod
    def new(cls, work: WorkBuffers | None, like: Tensor, steps: int, cells: int, batch: int, n: int) -> LSTMTape:
        return cls(take(work, like, steps, cells, batch, 4 * n), take(work, like, steps + 1, cells, batch, n),
                   take(work, like, steps + 1, cells, batch, n), take(work, like, steps, cells, batch, n))

    def tensors(self) -> tuple[Tensor, ...]:
        return self.acts, self.cs, self.hs, self.tanh_cs


class LSTMSequence(torch.autograd.Function):
    """Outputs h_1..h_T and the final (c_T, h_T) of magenta's LSTMCell.

    Every tensor carries a leading dimension D of independent cells run side by side (the
    encoder's two directions share one loop, D = 2; the decoder has D = 1). The input term of step
    t is ``x_t W_x + const`` (formed inside the loop, never stored for all steps): `x [D, B, T, k]`,
    `w_x [D, k, 4n]`, `const [D, B, 4n]` (bias with the forget bias +1 folded in, and for the
    decoder z W_z). `w_hh [D, n, 4n]`, initial `c0, h0 [D, B, n]`, recurrent-dropout
    `masks [T, D, B, n]` or None.
    """

    @staticmethod
    def forward(ctx, x: Tensor, w_x: Tensor, const: Tensor, w_hh: Tensor, c0: Tensor, h0: Tensor,  # type: ignore[override]
                masks: Tensor | None):
        cells, batch, steps, _ = x.shape
        n = w_hh.shape[1]
        ops, work = backend_for(x), current()
        tape = LSTMTape.new(work, x, steps, cells, batch, n)
        tape.cs[0], tape.hs[0] = c0, h0
        masks = dense(masks)
        for t in range(steps):
            a = tape.acts[t]
            if cells == 1:  # gates = x_t W_x + const + h W_hh
                torch.addmm(const[0], x[0, :, t], w_x[0], out=a[0]).addmm_(tape.hs[t, 0], w_hh[0])
            else:  # small cells side by side: batched multiplies (see LSTMCell.sequences)
                torch.baddbmm(const, x[:, :, t], w_x, out=a).baddbmm_(tape.hs[t], w_hh)
            ops.lstm_step(a, tape.cs[t], None if masks is None else masks[t], tape.cs[t + 1], tape.tanh_cs[t],
                          tape.hs[t + 1])
        ctx.save_for_backward(x, w_x, w_hh, masks)
        ctx.tape, ctx.ops, ctx.work = tape, ops, work
        return tape.hs[1:].permute(1, 2, 0, 3).contiguous(), tape.cs[steps].clone(), tape.hs[steps].clone()

    @staticmethod
    def backward(ctx, d_out: Tensor | None, d_c_last: Tensor | None, d_h_last: Tensor | None):  # type: ignore[override]
        once(ctx)
        x, w_x, w_hh, masks = ctx.saved_tensors
        tape, ops = ctx.tape, ctx.ops
        steps, cells, batch, width = tape.acts.shape
        n = width // 4
        dh, dc = initial(d_h_last, tape.hs), initial(d_c_last, tape.cs)  # ∂h_T, ∂c_T
        w_t = w_hh.transpose(1, 2)
        d_out = dense(d_out)
        for t in reversed(range(steps)):
            # step t's activations are not needed again: ∂ of its gate pre-activations take their place
            dc = ops.lstm_step_backward(dh, None if d_out is None else d_out[:, :, t], dc, tape.acts[t], tape.cs[t],
                                        tape.tanh_cs[t], None if masks is None else masks[t])
            d_gates_t = tape.acts[t]
            dh = torch.mm(d_gates_t[0], w_t[0])[None] if cells == 1 else torch.bmm(d_gates_t, w_t)  # ∂h_{t−1} = ∂a_t W_hhᵀ
        d_gates = tape.acts  # now ∂ of every step's gate pre-activations
        # the weight gradients: one large multiply per cell over all steps
        rows = steps * batch
        d_w_hh = torch.stack([tape.hs[:-1, d].reshape(rows, n).t() @ d_gates[:, d].reshape(rows, width)
                              for d in range(cells)])  # Σ_t h_{t−1}ᵀ ∂a_t
        x_tm = x.transpose(1, 2)  # [D, T, B, k]
        d_w_x = torch.stack([input_weight_grad(x_tm[d], d_gates[:, d]) for d in range(cells)])
        d_const = d_gates.sum(0)
        d_x = torch.matmul(d_gates, w_x.transpose(1, 2)[None]).permute(1, 2, 0, 3) if ctx.needs_input_grad[0] else None
        give(ctx.work, *tape.tensors())
        return d_x, d_w_x, d_const, d_w_hh, dc, dh, None


def lstm_sequence(x: Tensor, w_x: Tensor, const: Tensor, w_hh: Tensor, c0: Tensor, h0: Tensor, masks: Tensor | None):
    """(outputs [D, B, T, n], c_T, h_T) through `LSTMSequence` (see there for the shapes)."""
    return LSTMSequence.apply(x, w_x, const, w_hh, c0, h0, masks)


def lstm_inference_step(xw: Tensor, c: Tensor, h: Tensor, w_hh: Tensor) -> tuple[Tensor, Tensor]:
    """(c', h') of one step without dropout or gradients, from `xw` = x W_xh + b (+1 on f)."""
    c, h = c.contiguous(), h.contiguous()
    gates = torch.addmm(xw, h, w_hh)  # x W_xh + b + h W_hh
    c2, tanh_c, h2 = torch.empty_like(c), torch.empty_like(c), torch.empty_like(h)
    backend_for(xw).lstm_step(gates, c, None, c2, tanh_c, h2)
    return c2, h2
