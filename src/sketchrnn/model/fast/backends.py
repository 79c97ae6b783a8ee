"""The element-wise work of the fast loops' steps and of the sampler's draw, behind one interface,
chosen once per tensor kind.

A time step is a few matrix multiplies (PyTorch's) and some forty element-wise operations. These
run either as one fused C++ pass per row (`kernels.FusedKernels`, CPU float32/float64) or as the
PyTorch operations written here (`TorchOps`: any device, the reference the kernels are held to);
`backend_for` is the one place that chooses. A CUDA backend would be a third class with the same
methods. Every step method works in place on the buffers it is given, as the tapes lay them out;
the draw returns the points it drew.
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from .. import kernels
from ..mixture import draw, split_output

FORGET_BIAS = 1.0
LN_EPSILON = 1e-3


class ElementWise(Protocol):
    """What a backend does; see `TorchOps` for each method's maths."""

    def accumulator_rows(self, batch: int) -> int: ...
    def lstm_step(self, a: Tensor, c: Tensor, mask: Tensor | None, c_next: Tensor, tanh_c: Tensor,
                  h_next: Tensor) -> None: ...
    def lstm_step_backward(self, dh: Tensor, d_out: Tensor | None, dc: Tensor, a: Tensor, c: Tensor, tanh_c: Tensor,
                           mask: Tensor | None) -> Tensor: ...
    def ln_step(self, tape, t: int, s: Tensor, gamma: Tensor, beta: Tensor, gamma_c: Tensor, beta_c: Tensor,
                mask: Tensor | None) -> Tensor: ...
    def ln_step_backward(self, tape, t: int, dh: Tensor, dc: Tensor, gamma: Tensor, beta: Tensor, gamma_c: Tensor,
                         beta_c: Tensor, mask: Tensor | None, acc: Tensor, ds: Tensor,
                         dh_extra: Tensor | None) -> Tensor: ...
    def hyper_gates(self, ab: Tensor, bias: Tensor, x_t: Tensor, hw: Tensor, s: Tensor) -> None: ...
    def hyper_gates_backward(self, ds: Tensor, ab: Tensor, x_t: Tensor, hw: Tensor, d_ab: Tensor, d_xw: Tensor,
                             d_hw: Tensor, d_bias: Tensor) -> None: ...
    def draw_points(self, y: Tensor, num_mixture: int, tau: Tensor, greedy: Tensor, first: Tensor | None,
                    u: Tensor, e: Tensor) -> tuple[Tensor, Tensor]: ...


def backend_for(x: Tensor) -> ElementWise:
    """The backend for tensors like `x`: the fused kernels where they apply (see `kernels.for_tensor`),
    else PyTorch's operations."""
    fused = kernels.fused_for(x, FORGET_BIAS, LN_EPSILON)
    return fused if fused is not None else TORCH_OPS


def ln_backward(d_normed: Tensor, normed: Tensor, rstd: Tensor) -> Tensor:
    """Gradient through x̂ = (x − mean)·rstd over the last dim: rstd·(∂x̂ − mean ∂x̂ − x̂·mean(∂x̂ x̂))."""
    mean_d = d_normed.mean(-1, keepdim=True)
    mean_dx = (d_normed * normed).mean(-1, keepdim=True)
    return (d_normed - mean_d - normed * mean_dx) * rstd


def gate_activations(normed: Tensor, gamma: Tensor, beta: Tensor, n: int) -> Tensor:
    """σ(i), tanh(j), σ(f+1), σ(o) from the per-gate normalised pre-activations [B, 4n]."""
    a = torch.addcmul(beta, normed, gamma)
    a[:, 2 * n : 3 * n] += FORGET_BIAS
    a[:, :n].sigmoid_()
    a[:, n : 2 * n].tanh_()
    a[:, 2 * n :].sigmoid_()
    return a


def gate_blocks(t: Tensor, n: int) -> Tensor:
    """[B, 4n] → a view [4, B, n] of its gate blocks."""
    return t.view(t.shape[0], 4, n).transpose(0, 1)


class TorchOps:
    """The steps' element-wise work as PyTorch operations."""

    def accumulator_rows(self, batch: int) -> int:
        """Rows of the sums of parameter gradients a backward adds into: one per sketch."""
        return batch

    def lstm_step(self, a, c, mask, c_next, tanh_c, h_next) -> None:
        """LSTM step from gate pre-activations `a [..., 4n]` (i, j, f+1, o), in place: `a` becomes
        σ(i), tanh(j), σ(f+1), σ(o); c' = c σ(f+1) + σ(i) g (g = tanh(j), times the dropout mask),
        tanh(c') into `tanh_c`, h' = tanh(c') σ(o) into `h_next`."""
        n = c.shape[-1]
        a[..., :n].sigmoid_()
        a[..., n : 2 * n].tanh_()
        a[..., 2 * n :].sigmoid_()
        g = a[..., n : 2 * n] if mask is None else a[..., n : 2 * n] * mask
        torch.mul(c, a[..., 2 * n : 3 * n], out=c_next).addcmul_(a[..., :n], g)  # c' = c σ(f) + σ(i) g
        torch.tanh(c_next, out=tanh_c)
        torch.mul(tanh_c, a[..., 3 * n :], out=h_next)  # h' = tanh(c') σ(o)

    def lstm_step_backward(self, dh, d_out, dc, a, c, tanh_c, mask) -> Tensor:
        """From ∂h' (`dh`, plus `d_out` when given) and ∂c' (`dc`): `a` (the step's activations)
        becomes ∂ of the gate pre-activations; returns ∂c."""
        n = c.shape[-1]
        if d_out is not None:
            dh = dh + d_out
        dg, deriv, one = torch.empty_like(a), torch.empty_like(a), a.new_ones(())
        i, g, f, o = a[..., :n], a[..., n : 2 * n], a[..., 2 * n : 3 * n], a[..., 3 * n :]
        dc = dc.addcmul(dh * o, torch.addcmul(one, tanh_c, tanh_c, value=-1))  # ∂c' += ∂h' σ(o) (1 − tanh²c')
        gm = g if mask is None else g * mask
        torch.mul(dc, gm, out=dg[..., :n])  # ∂σ(i) = ∂c' g
        torch.mul(dc, i, out=dg[..., n : 2 * n])  # ∂g = ∂c' σ(i)
        if mask is not None:
            dg[..., n : 2 * n] *= mask
        torch.mul(dc, c, out=dg[..., 2 * n : 3 * n])  # ∂σ(f) = ∂c' c
        torch.mul(dh, tanh_c, out=dg[..., 3 * n :])  # ∂σ(o) = ∂h' tanh(c')
        torch.addcmul(a, a, a, value=-1, out=deriv)  # σ' = σ − σ² on i, f, o
        torch.addcmul(one, g, g, value=-1, out=deriv[..., n : 2 * n])  # tanh' = 1 − tanh² on j
        dc = dc * f  # ∂c = ∂c' σ(f+1)
        torch.mul(dg, deriv, out=a)
        return dc

    def ln_step(self, tape, t, s, gamma, beta, gamma_c, beta_c, mask) -> Tensor:
        """LayerNorm-LSTM step t from raw pre-activations `s [B, 4n]` into `tape` (see `LNTape`):
        ŝ = LN(s) per gate, c' = c σ(ŝ_f γ + β + 1) + σ(ŝ_i γ + β) g, h' = tanh(LN(c') γc + βc) σ(ŝ_o γ + β)."""
        n, batch = tape.n, s.shape[0]
        out, _, r = torch.native_layer_norm(s.view(batch, 4, n), (n,), None, None, LN_EPSILON)  # LN per gate
        normed = tape.normed[t]
        normed.copy_(out.view(batch, 4 * n))
        tape.rstd[t] = r
        a = gate_activations(normed, gamma, beta, n)
        g = a[:, n : 2 * n] if mask is None else a[:, n : 2 * n] * mask  # recurrent dropout on g only
        c = torch.mul(tape.cs[t], a[:, 2 * n : 3 * n], out=tape.cs[t + 1]).addcmul_(a[:, :n], g)  # c' = c σ(f+1) + σ(i) g
        out_c, mean_c, r_c = torch.native_layer_norm(c, (n,), None, None, LN_EPSILON)
        tape.c_stats[t, 0], tape.c_stats[t, 1] = mean_c, r_c
        u = torch.tanh(torch.addcmul(beta_c, out_c, gamma_c))
        return torch.mul(u, a[:, 3 * n :], out=tape.hs[t + 1])  # h' = tanh(LN(c')) σ(o)

    def ln_step_backward(self, tape, t, dh, dc, gamma, beta, gamma_c, beta_c, mask, acc, ds, dh_extra) -> Tensor:
        """Backward of `ln_step`: ∂s into `ds`, returns ∂c; the γ, β, γc, βc gradients added into `acc`."""
        n, batch = tape.n, dh.shape[0]
        if dh_extra is not None:
            dh = dh + dh_extra
        sums = acc.view(batch, 10, n)
        normed = tape.normed[t]
        a = gate_activations(normed, gamma, beta, n)
        i, g, f, o = a[:, :n], a[:, n : 2 * n], a[:, 2 * n : 3 * n], a[:, 3 * n :]
        c_normed = (tape.cs[t + 1] - tape.c_stats[t, 0]) * tape.c_stats[t, 1]
        u = torch.tanh(torch.addcmul(beta_c, c_normed, gamma_c))
        du = dh * o * (1 - u * u)  # through h' = tanh(u) σ(o), u = LN(c')·γc + βc
        sums[:, 8].addcmul_(du, c_normed)  # ∂γc
        sums[:, 9] += du  # ∂βc
        dc = dc + ln_backward(du * gamma_c, c_normed, tape.c_stats[t, 1])
        da = torch.empty_like(a)
        torch.mul(dc, g if mask is None else g * mask, out=da[:, :n])  # ∂σ(i)
        torch.mul(dc, i, out=da[:, n : 2 * n])  # ∂g
        if mask is not None:
            da[:, n : 2 * n] *= mask
        torch.mul(dc, tape.cs[t], out=da[:, 2 * n : 3 * n])  # ∂σ(f)
        torch.mul(dh, u, out=da[:, 3 * n :])  # ∂σ(o)
        deriv = torch.addcmul(a, a, a, value=-1)  # σ' = σ − σ² on i, f, o
        torch.addcmul(g.new_ones(()), g, g, value=-1, out=deriv[:, n : 2 * n])  # tanh' = 1 − tanh² on j
        da.mul_(deriv)  # ∂ of the layer-normed gates
        sums[:, :4].view(batch, 4 * n).addcmul_(da, normed)  # ∂γ
        sums[:, 4:8].view(batch, 4 * n).add_(da)  # ∂β
        d_normed = (da * gamma).view(batch, 4, n)
        ds.copy_(ln_backward(d_normed, normed.view(batch, 4, n), tape.rstd[t]).view(batch, 4 * n))
        return dc * f

    def hyper_gates(self, ab, bias, x_t, hw, s) -> None:
        """The main cell's raw pre-activations into `s [B, 4n]`: per gate block k,
        s_k = α_x,k (x W_xh)_k + α_h,k (h W_hh)_k + β_k + b_k, from `ab [12, B, n]` (α_x, α_h, β),
        `x_t [B, ≥4n]` (x W_xh in its first 4n columns) and `hw [B, 4n]`."""
        n = hw.shape[1] // 4
        gates = torch.addcmul(ab[8:] + bias.view(4, 1, n), ab[:4], gate_blocks(x_t[:, : 4 * n], n))
        gate_blocks(s, n).copy_(gates.addcmul_(ab[4:8], gate_blocks(hw, n)))

    def hyper_gates_backward(self, ds, ab, x_t, hw, d_ab, d_xw, d_hw, d_bias) -> None:
        """From ∂s `ds [B, 4n]`: ∂α_x, ∂α_h, ∂β into `d_ab [12, B, n]`, ∂(x W_xh) into `d_xw[:, :4n]`,
        ∂(h W_hh) into `d_hw[:, :4n]` and over `hw`; ∂b added into the sums `d_bias`."""
        n = ds.shape[1] // 4
        d_bias += ds  # ∂b_k = ∂s_k
        d_gates = gate_blocks(ds, n)
        torch.mul(d_gates, gate_blocks(x_t[:, : 4 * n], n), out=d_ab[:4])  # ∂α_x = ∂s (x W_xh)
        torch.mul(d_gates, gate_blocks(hw, n), out=d_ab[4:8])  # ∂α_h = ∂s (h W_hh)
        d_ab[8:] = d_gates  # ∂β = ∂s
        torch.mul(d_gates, ab[:4], out=gate_blocks(d_xw[:, : 4 * n], n))  # ∂(x W_xh) = ∂s α_x
        torch.mul(d_gates, ab[4:8], out=gate_blocks(d_hw[:, : 4 * n], n))  # ∂(h W_hh) = ∂s α_h
        hw.copy_(d_hw[:, : 4 * n])

    def draw_points(self, y, num_mixture, tau, greedy, first, u, e) -> tuple[Tensor, Tensor]:
        """One point per row of the raw decoder output `y [rows, 6M+3]`: (x, pen) as `mixture.draw`
        gives them (its arguments, per row; τ = 0 is greedy)."""
        return draw(split_output(y, num_mixture), tau, greedy | (tau == 0), first, u, e)


TORCH_OPS = TorchOps()
