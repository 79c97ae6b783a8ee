"""The HyperLSTM's fast time loop: magenta's HyperLSTMCell over a sequence, with a hand-written backward.

One step (n main units, m hyper units, e embedding; x'_t = x_t W_x + const holds both uses of x):

    s_hyp  = x'_t[4n:] + h_{t−1} W_hyp,h + ĥ_{t−1} W_hyp,hh          the hyper cell reads [x, h]
    ĥ_t, ĉ_t = LN-LSTM(s_hyp, ĉ_{t−1})                              (the hyper cell's `LNTape`)
    z_t    = ĥ_t Z + z_0                                            twelve e-wide heads: z_w (8, biased), z_b (4)
    α_x, α_h, β = z_t,k A_k                                          per gate block k (`ab`, [12, B, n])
    s_k    = α_x,k (x W_xh)_k + α_h,k (h_{t−1} W_hh)_k + β_k + b_k
    h_t, c_t = LN-LSTM(s, c_{t−1})                                   (the main cell's `LNTape`)

The backward runs it in reverse with the chain rule written beside each line. Spent tape buffers
take the gradients that the weight multiplies after the loop need; each is renamed where it
changes meaning.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

from .backends import ElementWise, backend_for
from .layer_norm import LNTape, Norms, ln_inference_step
from .work import WorkBuffers, current, dense, give, initial, input_weight_grad, once, take


@dataclass
class HyperWeights:
    """The HyperLSTMCell's weights the loop reads (the input weights travel as the loop's `w_x`)."""

    w_hh: Tensor  # [n, 4n] the main cell's recurrent weight
    w_hyp_h: Tensor  # [n, 4m] the hyper cell's input weight for h
    w_hyp_hh: Tensor  # [m, 4m] the hyper cell's recurrent weight
    hyp_gamma: Tensor  # the hyper cell's layer norms
    hyp_beta: Tensor
    hyp_gamma_c: Tensor
    hyp_beta_c: Tensor
    zw_w: Tensor  # [8, m, e] heads z_w = ĥ W + b
    zw_b: Tensor  # [8, e]
    alpha_w: Tensor  # [8, e, n] α = z_w W
    zb_w: Tensor  # [4, m, e] heads z_b = ĥ W
    beta_w: Tensor  # [4, e, n] β = z_b W
    bias: Tensor  # [4n] b
    gamma: Tensor  # the main cell's layer norms
    beta: Tensor
    gamma_c: Tensor
    beta_c: Tensor

    @classmethod
    def of(cls, cell) -> HyperWeights:
        """The weights of a `cells.HyperLSTMCell`."""
        hyper = cell.hyper_cell
        return cls(cell.W_hh, hyper.W_xh[cell.input_size :], hyper.W_hh, hyper.ln_all_gamma, hyper.ln_all_beta,
                   hyper.ln_c_gamma, hyper.ln_c_beta, cell.zw_w, cell.zw_b, cell.alpha_w, cell.zb_w, cell.beta_w,
                   cell.bias, cell.ln_all_gamma, cell.ln_all_beta, cell.ln_c_gamma, cell.ln_c_beta)

    def tensors(self) -> tuple[Tensor, ...]:
        return tuple(getattr(self, f.name) for f in fields(self))

    @property
    def norms(self) -> Norms:
        return Norms(self.gamma, self.beta, self.gamma_c, self.beta_c)

    @property
    def hyper_norms(self) -> Norms:
        return Norms(self.hyp_gamma, self.hyp_beta, self.hyp_gamma_c, self.hyp_beta_c)

    def heads(self) -> tuple[Tensor, Tensor, Tensor]:
        """The twelve heads as one `Z [m, 12e]` with bias `z_0 [12e]`, and `A [12, e, n]` (α_x, α_h, β)."""
        m, e = self.zw_w.shape[1], self.zw_w.shape[2]
        z_w = torch.cat([self.zw_w, self.zb_w]).permute(1, 0, 2).reshape(m, 12 * e)
        z_b = torch.cat([self.zw_b.reshape(-1), self.zw_b.new_zeros(4 * e)])
        return z_w, z_b, torch.cat([self.alpha_w, self.beta_w])


@dataclass
class HyperTape:
    """What the forward keeps: both cells' tapes, h W_hh and the heads z of every step."""

    main: LNTape
    hyper: LNTape
    hw: Tensor  # [T, B, 4n]: h_{t−1} W_hh
    zs: Tensor  # [T, B, 12e]: z_t

    @classmethod
    def new(cls, work: WorkBuffers | None, like: Tensor, steps: int, batch: int, n: int, m: int, e: int) -> HyperTape:
        return cls(LNTape.new(work, like, steps, batch, n), LNTape.new(work, like, steps, batch, m),
                   take(work, like, steps, batch, 4 * n), take(work, like, steps, batch, 12 * e))

    def tensors(self) -> tuple[Tensor, ...]:
        return self.hw, self.zs, *self.main.tensors(), *self.hyper.tensors()


def hyper_gates(ops: ElementWise, z: Tensor, head_w: Tensor, bias: Tensor, x_t: Tensor, hw: Tensor, ab: Tensor,
                s: Tensor) -> None:
    """The main cell's raw pre-activations `s` from the heads `z [B, 12e]`: α, β into `ab`, then s."""
    batch = z.shape[0]
    torch.bmm(z.view(batch, 12, -1).transpose(0, 1), head_w, out=ab)  # α_x, α_h, β = z_k A_k
    ops.hyper_gates(ab, bias, x_t, hw, s)  # s_k = α_x,k (x W_xh)_k + α_h,k (h W_hh)_k + β_k + b_k


class HyperLSTMSequence(torch.autograd.Function):
    """Outputs h_1..h_T and the final state (h, h_hyper, c, c_hyper) of magenta's HyperLSTMCell.

    Inputs: the input term's factors `x [B, T, k]`, `w_x [k, 4n + 4m]`, `const [B, 4n + 4m]` (step
    t's x W_xh and the x part of the hyper cell's input are x_t W_x + const, formed inside the loop),
    the initial state, `masks [T, B, n]` or None, and the `HyperWeights` tensors. Per step the
    forward does four matrix multiplies, h W_hh, h W_hyp,h, ĥ W_hyp,hh and ĥ Z, and one batched one
    for the twelve α, β blocks; the backward does the same transposed, and the large weight
    gradients are one multiply each over all steps.
    """

    @staticmethod
    def forward(ctx, x, w_x, const, h0, hh0, c0, ch0, masks, *weight_tensors):  # type: ignore[override]
        w, ops, work = HyperWeights(*weight_tensors), backend_for(x), current()
        batch, steps, _ = x.shape
        n, m, e = w.w_hh.shape[0], w.w_hyp_hh.shape[0], w.zw_w.shape[2]
        z_w, z_b, head_w = w.heads()
        tape = HyperTape.new(work, x, steps, batch, n, m, e)
        main, hyper = tape.main, tape.hyper
        main.hs[0], main.cs[0], hyper.hs[0], hyper.cs[0] = h0, c0, hh0, ch0
        masks = dense(masks)
        norms, hyper_norms = w.norms, w.hyper_norms
        # per-step scratch, allocated once: a fresh multi-MB result every step costs more than its multiply here
        ab, x_t, s = x.new_empty(12, batch, n), x.new_empty(batch, 4 * n + 4 * m), x.new_empty(batch, 4 * n)
        s_hyp = x.new_empty(batch, 4 * m)
        for t in range(steps):
            torch.addmm(const, x[:, t], w_x, out=x_t)  # x'_t
            hw = torch.mm(main.hs[t], w.w_hh, out=tape.hw[t])  # h_{t−1} W_hh
            torch.addmm(x_t[:, 4 * n :], main.hs[t], w.w_hyp_h, out=s_hyp).addmm_(hyper.hs[t], w.w_hyp_hh)  # s_hyp
            h_hyp = hyper.step(ops, t, s_hyp, hyper_norms, None)  # ĥ_t (no dropout in the hyper cell)
            z = torch.addmm(z_b, h_hyp, z_w, out=tape.zs[t])  # z_t = ĥ_t Z + z_0
            hyper_gates(ops, z, head_w, w.bias, x_t, hw, ab, s)
            main.step(ops, t, s, norms, None if masks is None else masks[t])  # h_t, c_t
        ctx.save_for_backward(x, w_x, const, masks, *weight_tensors)
        ctx.tape, ctx.ops, ctx.work = tape, ops, work
        return (main.hs[1:].transpose(0, 1).contiguous(), main.hs[steps].clone(), hyper.hs[steps].clone(),
                main.cs[steps].clone(), hyper.cs[steps].clone())

    @staticmethod
    def backward(ctx, d_out, d_h_last, d_hh_last, d_c_last, d_ch_last):  # type: ignore[override]
        once(ctx)
        x, w_x, const, masks, *weight_tensors = ctx.saved_tensors
        w, tape, ops = HyperWeights(*weight_tensors), ctx.tape, ctx.ops
        main, hyper = tape.main, tape.hyper
        norms, hyper_norms = w.norms, w.hyper_norms
        z_w, _, head_w = w.heads()
        batch, steps, _ = x.shape
        n, m, e = main.n, hyper.n, tape.zs.shape[2] // 12
        dh, dc = initial(d_h_last, main.hs), initial(d_c_last, main.cs)  # ∂h_T, ∂c_T
        dhh, dch = initial(d_hh_last, hyper.hs), initial(d_ch_last, hyper.cs)  # ∂ĥ_T, ∂ĉ_T
        acc, acc_hyp = main.accumulators(ops, batch), hyper.accumulators(ops, batch)
        d_bias = x.new_zeros(ops.accumulator_rows(batch), 4 * n)  # sums of ∂b
        d_head_w = torch.zeros_like(head_w)
        d_h_parts = x.new_empty(batch, 4 * n + 4 * m)  # [∂(h W_hh) | ∂s_hyp] of a step: one multiply gives ∂h
        w_h_t = torch.cat([w.w_hh, w.w_hyp_h], dim=1).t()  # [W_hh | W_hyp,h]ᵀ
        w_hyp_hh_t, z_w_t, head_w_t = w.w_hyp_hh.t(), z_w.t(), head_w.transpose(1, 2)
        ab, d_ab, d_z = x.new_empty(12, batch, n), x.new_empty(12, batch, n), x.new_empty(12, batch, e)  # scratch
        x_t, ds = x.new_empty(batch, 4 * n + 4 * m), x.new_empty(batch, 4 * n)
        d_out = dense(d_out)
        for t in reversed(range(steps)):
            # ∂s from ∂h_t (+ the output's gradient) and ∂c_t; returns ∂c_{t−1}
            dc = main.step_backward(ops, t, dh, dc, norms, None if masks is None else masks[t], acc, ds,
                                    None if d_out is None else d_out[:, t])
            z_blocks = tape.zs[t].view(batch, 12, e).transpose(0, 1)
            torch.bmm(z_blocks[:8], head_w[:8], out=ab[:8])  # α recomputed from the kept z (β is not needed)
            torch.addmm(const, x[:, t], w_x, out=x_t)  # x'_t again
            # main.normed[t] is spent: it takes ∂(x W_xh)_t = ∂s α_x; hw[t] takes ∂(h W_hh)_t = ∂s α_h
            d_xw = main.normed[t]
            # ∂α_x = ∂s (x W_xh), ∂α_h = ∂s (h W_hh), ∂β = ∂s, ∂b += ∂s
            ops.hyper_gates_backward(ds, ab, x_t, tape.hw[t], d_ab, d_xw, d_h_parts, d_bias)
            d_head_w.baddbmm_(z_blocks.transpose(1, 2), d_ab)  # ∂A_k += z_kᵀ ∂(α, β)_k
            torch.bmm(d_ab, head_w_t, out=d_z)  # ∂z_k = ∂(α, β)_k A_kᵀ
            tape.zs[t].view(batch, 12, e).copy_(d_z.transpose(0, 1))  # zs[t] is spent: it takes ∂z_t
            dhh = torch.addmm(dhh, tape.zs[t], z_w_t)  # ∂ĥ_t += ∂z_t Zᵀ
            d_s_hyp = d_h_parts[:, 4 * n :]
            dch = hyper.step_backward(ops, t, dhh, dch, hyper_norms, None, acc_hyp, d_s_hyp)  # ∂s_hyp, ∂ĉ_{t−1}
            hyper.normed[t] = d_s_hyp  # the hyper tape's normed[t] is spent: it takes ∂s_hyp
            dh = d_h_parts @ w_h_t  # ∂h_{t−1} = ∂(h W_hh) W_hhᵀ + ∂s_hyp W_hyp,hᵀ
            dhh = d_s_hyp @ w_hyp_hh_t  # ∂ĥ_{t−1} = ∂s_hyp W_hyp,hhᵀ
        d_xw_main = main.normed  # now ∂(x_t W_xh), every step
        d_s_hyp_all = hyper.normed  # now ∂s_hyp, every step (and ∂ of x'_t's last 4m columns)
        d_hw = tape.hw  # now ∂(h_{t−1} W_hh), every step
        d_zs = tape.zs  # now ∂z_t, every step
        rows = steps * batch
        h_prev = main.hs[:-1].reshape(rows, n)
        # x'_t = x_t W_x + const: Σ_t x_tᵀ ∂x'_t and Σ_t ∂x'_t, its 4n and 4m columns
        d_w_x = torch.cat([input_weight_grad(x.transpose(0, 1), d) for d in (d_xw_main, d_s_hyp_all)], dim=1)
        d_const = torch.cat([d.sum(0) for d in (d_xw_main, d_s_hyp_all)], dim=1)
        d_x = None
        if ctx.needs_input_grad[0]:
            d_x = (d_xw_main @ w_x[:, : 4 * n].t()).add_(d_s_hyp_all @ w_x[:, 4 * n :].t()).transpose(0, 1)
        d_s_hyp_rows = d_s_hyp_all.view(rows, 4 * m)
        d_z_w = hyper.hs[1:].reshape(rows, m).t() @ d_zs.reshape(rows, 12 * e)  # ∂Z = Σ_t ĥ_tᵀ ∂z_t, [m, 12e]
        d_z_w = d_z_w.view(m, 12, e).transpose(0, 1)
        main_norms, hyper_norms_d = main.norm_grads(acc), hyper.norm_grads(acc_hyp)
        grads = HyperWeights(
            w_hh=h_prev.t() @ d_hw.view(rows, 4 * n),  # Σ_t h_{t−1}ᵀ ∂(h W_hh)_t
            w_hyp_h=h_prev.t() @ d_s_hyp_rows,  # Σ_t h_{t−1}ᵀ ∂s_hyp,t
            w_hyp_hh=hyper.hs[:-1].reshape(rows, m).t() @ d_s_hyp_rows,  # Σ_t ĥ_{t−1}ᵀ ∂s_hyp,t
            hyp_gamma=hyper_norms_d.gamma, hyp_beta=hyper_norms_d.beta, hyp_gamma_c=hyper_norms_d.gamma_c,
            hyp_beta_c=hyper_norms_d.beta_c,
            zw_w=d_z_w[:8], zw_b=d_zs[..., : 8 * e].reshape(rows, 8, e).sum(0), alpha_w=d_head_w[:8],
            zb_w=d_z_w[8:], beta_w=d_head_w[8:], bias=d_bias.sum(0),
            gamma=main_norms.gamma, beta=main_norms.beta, gamma_c=main_norms.gamma_c, beta_c=main_norms.beta_c)
        give(ctx.work, *tape.tensors())
        return (d_x, d_w_x, d_const, dh, dhh, dc, dch, None, *grads.tensors())


def hyper_sequence(x: Tensor, w_x: Tensor, const: Tensor, weights: HyperWeights, state: tuple[Tensor, ...],
                   masks: Tensor | None) -> tuple[Tensor, tuple[Tensor, ...]]:
    """(outputs [B, T, n], (h, h_hyper, c, c_hyper)) through `HyperLSTMSequence`."""
    h0, hh0, c0, ch0 = state
    out, h, hh, c, ch = HyperLSTMSequence.apply(x, w_x, const, h0, hh0, c0, ch0, masks, *weights.tensors())
    return out, (h, hh, c, ch)


def hyper_inference_step(xw: Tensor, state: tuple[Tensor, ...], w: HyperWeights) -> tuple[Tensor, ...]:
    """(h', ĥ', c', ĉ') of one step without dropout or gradients, from `xw` = x'_t."""
    h, hh, c, ch = (s.contiguous() for s in state)
    batch, n = h.shape
    s_hyp = torch.addmm(xw[:, 4 * n :], h, w.w_hyp_h).addmm_(hh, w.w_hyp_hh)  # the hyper cell reads [x, h]
    hh2, ch2 = ln_inference_step(s_hyp, ch, w.hyper_norms)
    z_w, z_b, head_w = w.heads()
    ab, s = xw.new_empty(12, batch, n), xw.new_empty(batch, 4 * n)
    hyper_gates(backend_for(xw), torch.addmm(z_b, hh2, z_w), head_w, w.bias, xw, h @ w.w_hh, ab, s)
    h2, c2 = ln_inference_step(s, c, w.norms)
    return h2, hh2, c2, ch2
