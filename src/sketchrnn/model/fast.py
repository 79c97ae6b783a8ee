"""A fast path for the LSTM time loop: the same maths with a hand-written backward through time.

Autograd records a dozen nodes per time step and multiplies out the recurrent weight gradient one
step at a time. Here the forward loop runs without recording anything and keeps the gate
activations; the backward loop does the per-step work with one small matrix multiply (the
gradient into h) and the recurrent weight gradient is one large multiply over all steps at the
end. `recurrence.run_cell` uses it whenever gradients are needed for an `LSTMCell`; the plain
path (autograd through `LSTMCell.step`) stays as the reference and the tests hold the two to 1e-5.
"""

from __future__ import annotations

import torch
from torch import Tensor


class LSTMSequence(torch.autograd.Function):
    """Outputs h_1..h_T and the final (c_T, h_T) of magenta's LSTMCell over projected inputs.

    Inputs: `xw [B, T, 4n]` (x W_xh + b, with the forget bias +1 folded in), `w_hh [n, 4n]`,
    initial `c0, h0 [B, n]`, and recurrent-dropout `masks [T, B, n]` (or None).
    """

    @staticmethod
    def forward(ctx, xw: Tensor, w_hh: Tensor, c0: Tensor, h0: Tensor, masks: Tensor | None):  # type: ignore[override]
        batch, steps, width = xw.shape
        n = width // 4
        xw_t = xw.transpose(0, 1)
        acts = xw.new_empty(steps, batch, width)  # σ(i), tanh(j), σ(f+1), σ(o)
        cs = xw.new_empty(steps + 1, batch, n)
        hs = xw.new_empty(steps + 1, batch, n)
        tcs = xw.new_empty(steps, batch, n)  # tanh(c_t)
        cs[0], hs[0] = c0, h0
        for t in range(steps):
            a = acts[t]
            torch.addmm(xw_t[t], hs[t], w_hh, out=a)
            a[:, :n].sigmoid_()
            a[:, n : 2 * n].tanh_()
            a[:, 2 * n :].sigmoid_()
            g = a[:, n : 2 * n] if masks is None else a[:, n : 2 * n] * masks[t]
            torch.mul(cs[t], a[:, 2 * n : 3 * n], out=cs[t + 1]).addcmul_(a[:, :n], g)  # c' = c σ(f) + σ(i) g
            torch.tanh(cs[t + 1], out=tcs[t])
            torch.mul(tcs[t], a[:, 3 * n :], out=hs[t + 1])  # h' = tanh(c') σ(o)
        ctx.save_for_backward(w_hh, acts, cs, hs, tcs, masks)
        return hs[1:].transpose(0, 1).contiguous(), cs[steps].clone(), hs[steps].clone()

    @staticmethod
    def backward(ctx, d_out: Tensor | None, d_c_last: Tensor | None, d_h_last: Tensor | None):  # type: ignore[override]
        w_hh, acts, cs, hs, tcs, masks = ctx.saved_tensors
        steps, batch, width = acts.shape
        n = width // 4
        d_gates = acts.new_empty(steps, batch, width)
        dh = d_h_last.clone() if d_h_last is not None else acts.new_zeros(batch, n)
        dc = d_c_last.clone() if d_c_last is not None else acts.new_zeros(batch, n)
        d_out_t = d_out.transpose(0, 1) if d_out is not None else None
        w_t = w_hh.t()
        for t in reversed(range(steps)):
            if d_out_t is not None:
                dh = dh + d_out_t[t]
            a, tc, dg = acts[t], tcs[t], d_gates[t]
            i, g, f, o = a[:, :n], a[:, n : 2 * n], a[:, 2 * n : 3 * n], a[:, 3 * n :]
            dc = dc.addcmul(dh * o, 1 - tc * tc)  # ∂c += ∂h · σ(o) · (1 − tanh²c)
            gm = g if masks is None else g * masks[t]
            torch.mul(dc, gm, out=dg[:, :n])  # ∂σ(i)
            torch.mul(dc, i, out=dg[:, n : 2 * n])  # ∂g
            if masks is not None:
                dg[:, n : 2 * n] *= masks[t]
            torch.mul(dc, cs[t], out=dg[:, 2 * n : 3 * n])  # ∂σ(f)
            torch.mul(dh, tc, out=dg[:, 3 * n :])  # ∂σ(o)
            deriv = a * (1 - a)  # σ' = σ(1 − σ) on i, f, o
            deriv[:, n : 2 * n] = 1 - g * g  # tanh' = 1 − tanh² on j
            dg.mul_(deriv)
            dc = dc * f
            dh = dg @ w_t
        flat = d_gates.reshape(steps * batch, width)
        d_w_hh = hs[:-1].reshape(steps * batch, n).t() @ flat  # Σ_t h_{t−1}ᵀ ∂gates_t in one multiply
        return d_gates.transpose(0, 1), d_w_hh, dc, dh, None


def lstm_sequence(xw: Tensor, w_hh: Tensor, c0: Tensor, h0: Tensor, masks: Tensor | None):
    """(outputs [B, T, n], c_T, h_T) through `LSTMSequence`."""
    return LSTMSequence.apply(xw, w_hh, c0, h0, masks)
