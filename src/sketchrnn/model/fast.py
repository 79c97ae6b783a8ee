"""A fast path for the LSTM and LayerNorm-LSTM time loops: the same maths with a hand-written backward through time.

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

from .cells import FORGET_BIAS, LN_EPSILON


class LSTMSequence(torch.autograd.Function):
    """Outputs h_1..h_T and the final (c_T, h_T) of magenta's LSTMCell over projected inputs.

    Every tensor carries a leading dimension D of independent cells run side by side (the
    encoder's two directions share one loop, D = 2; the decoder has D = 1): `xw [D, B, T, 4n]`
    (x W_xh + b, with the forget bias +1 folded in), `w_hh [D, n, 4n]`, initial `c0, h0 [D, B, n]`,
    recurrent-dropout `masks [T, D, B, n]` or None.
    """

    @staticmethod
    def forward(ctx, xw: Tensor, w_hh: Tensor, c0: Tensor, h0: Tensor, masks: Tensor | None):  # type: ignore[override]
        cells, batch, steps, width = xw.shape
        n = width // 4
        xw_t = xw.permute(2, 0, 1, 3)  # [T, D, B, 4n]
        acts = xw.new_empty(steps, cells, batch, width)  # σ(i), tanh(j), σ(f+1), σ(o)
        cs = xw.new_empty(steps + 1, cells, batch, n)
        hs = xw.new_empty(steps + 1, cells, batch, n)
        tcs = xw.new_empty(steps, cells, batch, n)  # tanh(c_t)
        cs[0], hs[0] = c0, h0
        for t in range(steps):
            a = acts[t]
            if cells == 1:
                torch.addmm(xw_t[t, 0], hs[t, 0], w_hh[0], out=a[0])
            else:  # small cells side by side: one batched multiply (see recurrence.run_cells_side_by_side)
                torch.baddbmm(xw_t[t], hs[t], w_hh, out=a)
            a[..., :n].sigmoid_()
            a[..., n : 2 * n].tanh_()
            a[..., 2 * n :].sigmoid_()
            g = a[..., n : 2 * n] if masks is None else a[..., n : 2 * n] * masks[t]
            torch.mul(cs[t], a[..., 2 * n : 3 * n], out=cs[t + 1]).addcmul_(a[..., :n], g)  # c' = c σ(f) + σ(i) g
            torch.tanh(cs[t + 1], out=tcs[t])
            torch.mul(tcs[t], a[..., 3 * n :], out=hs[t + 1])  # h' = tanh(c') σ(o)
        ctx.save_for_backward(w_hh, acts, cs, hs, tcs, masks)
        return hs[1:].permute(1, 2, 0, 3).contiguous(), cs[steps].clone(), hs[steps].clone()

    @staticmethod
    def backward(ctx, d_out: Tensor | None, d_c_last: Tensor | None, d_h_last: Tensor | None):  # type: ignore[override]
        w_hh, acts, cs, hs, tcs, masks = ctx.saved_tensors
        steps, cells, batch, width = acts.shape
        n = width // 4
        d_gates = acts.new_empty(steps, cells, batch, width)
        dh = d_h_last.clone() if d_h_last is not None else acts.new_zeros(cells, batch, n)
        dc = d_c_last.clone() if d_c_last is not None else acts.new_zeros(cells, batch, n)
        d_out_t = d_out.permute(2, 0, 1, 3) if d_out is not None else None  # [T, D, B, n]
        w_t = w_hh.transpose(1, 2)
        for t in reversed(range(steps)):
            if d_out_t is not None:
                dh = dh + d_out_t[t]
            a, tc, dg = acts[t], tcs[t], d_gates[t]
            i, g, f, o = a[..., :n], a[..., n : 2 * n], a[..., 2 * n : 3 * n], a[..., 3 * n :]
            dc = dc.addcmul(dh * o, 1 - tc * tc)  # ∂c += ∂h · σ(o) · (1 − tanh²c)
            gm = g if masks is None else g * masks[t]
            torch.mul(dc, gm, out=dg[..., :n])  # ∂σ(i)
            torch.mul(dc, i, out=dg[..., n : 2 * n])  # ∂g
            if masks is not None:
                dg[..., n : 2 * n] *= masks[t]
            torch.mul(dc, cs[t], out=dg[..., 2 * n : 3 * n])  # ∂σ(f)
            torch.mul(dh, tc, out=dg[..., 3 * n :])  # ∂σ(o)
            deriv = a * (1 - a)  # σ' = σ(1 − σ) on i, f, o
            deriv[..., n : 2 * n] = 1 - g * g  # tanh' = 1 − tanh² on j
            dg.mul_(deriv)
            dc = dc * f
            dh = torch.mm(dg[0], w_t[0])[None] if cells == 1 else torch.bmm(dg, w_t)
        # Σ_t h_{t−1}ᵀ ∂gates_t: one large multiply per cell
        d_w_hh = torch.stack([
            hs[:-1, d].reshape(steps * batch, n).t() @ d_gates[:, d].reshape(steps * batch, width)
            for d in range(cells)
        ])
        return d_gates.permute(1, 2, 0, 3), d_w_hh, dc, dh, None


def _ln_backward(d_normed: Tensor, normed: Tensor, rstd: Tensor) -> Tensor:
    """Gradient through x̂ = (x − mean)·rstd over the last dim: rstd·(∂x̂ − mean ∂x̂ − x̂·mean(∂x̂ x̂))."""
    mean_d = d_normed.mean(-1, keepdim=True)
    mean_dx = (d_normed * normed).mean(-1, keepdim=True)
    return (d_normed - mean_d - normed * mean_dx) * rstd


class LayerNormLSTMSequence(torch.autograd.Function):
    """Outputs h_1..h_T and the final (h_T, c_T) of magenta's LayerNormLSTMCell.

    Inputs: `xw [B, T, 4n]` (x W_xh), `w_hh [n, 4n]`, the gate layer norm's `gamma, beta [4n]`,
    the cell layer norm's `gamma_c, beta_c [n]`, initial `h0, c0 [B, n]`, `masks [T, B, n]` or None.
    """

    @staticmethod
    def forward(ctx, xw, w_hh, gamma, beta, gamma_c, beta_c, h0, c0, masks):  # type: ignore[override]
        batch, steps, width = xw.shape
        n = width // 4
        eps = LN_EPSILON
        xw_t = xw.transpose(0, 1)
        normed = xw.new_empty(steps, batch, width)  # per-gate-block normalised pre-activations
        rstd = xw.new_empty(steps, batch, 4, 1)
        acts = xw.new_empty(steps, batch, width)  # σ(i), tanh(j), σ(f+1), σ(o)
        cs = xw.new_empty(steps + 1, batch, n)
        hs = xw.new_empty(steps + 1, batch, n)
        c_normed = xw.new_empty(steps, batch, n)
        c_rstd = xw.new_empty(steps, batch, 1)
        tus = xw.new_empty(steps, batch, n)  # tanh(LN(c'))
        hs[0], cs[0] = h0, c0
        for t in range(steps):
            s = torch.addmm(xw_t[t], hs[t], w_hh).view(batch, 4, n)
            out, _, r = torch.native_layer_norm(s, (n,), None, None, eps)
            normed[t] = out.view(batch, width)
            rstd[t] = r
            a = torch.addcmul(beta, normed[t], gamma, out=acts[t])
            a[:, 2 * n : 3 * n] += FORGET_BIAS
            a[:, :n].sigmoid_()
            a[:, n : 2 * n].tanh_()
            a[:, 2 * n :].sigmoid_()
            g = a[:, n : 2 * n] if masks is None else a[:, n : 2 * n] * masks[t]
            torch.mul(cs[t], a[:, 2 * n : 3 * n], out=cs[t + 1]).addcmul_(a[:, :n], g)  # c' = c σ(f+1) + σ(i) g
            out_c, _, r_c = torch.native_layer_norm(cs[t + 1], (n,), None, None, eps)
            c_normed[t], c_rstd[t] = out_c, r_c
            torch.tanh(torch.addcmul(beta_c, out_c, gamma_c), out=tus[t])
            torch.mul(tus[t], a[:, 3 * n :], out=hs[t + 1])  # h' = tanh(LN(c')) σ(o)
        ctx.save_for_backward(w_hh, gamma, gamma_c, normed, rstd, acts, cs, hs, c_normed, c_rstd, tus, masks)
        return hs[1:].transpose(0, 1).contiguous(), hs[steps].clone(), cs[steps].clone()

    @staticmethod
    def backward(ctx, d_out, d_h_last, d_c_last):  # type: ignore[override]
        w_hh, gamma, gamma_c, normed, rstd, acts, cs, hs, c_normed, c_rstd, tus, masks = ctx.saved_tensors
        steps, batch, width = acts.shape
        n = width // 4
        d_s = acts.new_empty(steps, batch, width)  # gradient of the raw pre-activations = of xw
        # per-row accumulators, summed over the batch once at the end
        d_gamma = acts.new_zeros(batch, width)
        d_beta = acts.new_zeros(batch, width)
        d_gamma_c = acts.new_zeros(batch, n)
        d_beta_c = acts.new_zeros(batch, n)
        dh = d_h_last.clone() if d_h_last is not None else acts.new_zeros(batch, n)
        dc = d_c_last.clone() if d_c_last is not None else acts.new_zeros(batch, n)
        d_out_t = d_out.transpose(0, 1) if d_out is not None else None
        w_t = w_hh.t()
        da = acts.new_empty(batch, width)
        for t in reversed(range(steps)):
            if d_out_t is not None:
                dh = dh + d_out_t[t]
            a, tu = acts[t], tus[t]
            i, g, f, o = a[:, :n], a[:, n : 2 * n], a[:, 2 * n : 3 * n], a[:, 3 * n :]
            du = dh * o * (1 - tu * tu)  # through h' = tanh(u) σ(o), u = LN(c')·γc + βc
            d_gamma_c.addcmul_(du, c_normed[t])
            d_beta_c += du
            dc = dc + _ln_backward(du * gamma_c, c_normed[t], c_rstd[t])
            gm = g if masks is None else g * masks[t]
            torch.mul(dc, gm, out=da[:, :n])
            torch.mul(dc, i, out=da[:, n : 2 * n])
            if masks is not None:
                da[:, n : 2 * n] *= masks[t]
            torch.mul(dc, cs[t], out=da[:, 2 * n : 3 * n])
            torch.mul(dh, tu, out=da[:, 3 * n :])
            deriv = a * (1 - a)
            deriv[:, n : 2 * n] = 1 - g * g
            da.mul_(deriv)  # ∂ of the layer-normed gates
            d_gamma.addcmul_(da, normed[t])
            d_beta += da
            dc = dc * f
            d_normed = (da * gamma).view(batch, 4, n)
            d_s[t] = _ln_backward(d_normed, normed[t].view(batch, 4, n), rstd[t]).view(batch, width)
            dh = d_s[t] @ w_t
        d_w_hh = hs[:-1].reshape(steps * batch, n).t() @ d_s.reshape(steps * batch, width)
        return (d_s.transpose(0, 1), d_w_hh, d_gamma.sum(0), d_beta.sum(0), d_gamma_c.sum(0), d_beta_c.sum(0),
                dh, dc, None)


def layer_norm_lstm_sequence(xw, w_hh, gamma, beta, gamma_c, beta_c, h0, c0, masks):
    """(outputs [B, T, n], h_T, c_T) through `LayerNormLSTMSequence`."""
    return LayerNormLSTMSequence.apply(xw, w_hh, gamma, beta, gamma_c, beta_c, h0, c0, masks)


def lstm_sequence(xw: Tensor, w_hh: Tensor, c0: Tensor, h0: Tensor, masks: Tensor | None):
    """(outputs, c_T, h_T) through `LSTMSequence`; without the leading D dimension, one cell (D = 1)."""
    if xw.dim() == 4:
        return LSTMSequence.apply(xw, w_hh, c0, h0, masks)
    out, c, h = LSTMSequence.apply(xw[None], w_hh[None], c0[None], h0[None], None if masks is None else masks[:, None])
    return out[0], c[0], h[0]
