"""A fast path for the time loops of all three cells: the same maths with a hand-written backward through time.

Autograd records a dozen nodes per time step and multiplies out the recurrent weight gradient one
step at a time. Here the forward loop runs without recording anything and keeps what the backward
needs (the LSTM's gate activations; the layer-normed cells' normalised pre-activations and
statistics, from which the activations are recomputed); the backward loop does the per-step work with one small matrix multiply (the
gradient into h) and the recurrent weight gradient is one large multiply over all steps at the
end. The input term x_t W_x + const is formed step by step inside the loop from its factors, so
no [B, T, 4n] projection is ever stored. The element-wise rest of each step runs as one fused C++
kernel (`kernels.py`) where it can, else as the PyTorch operations written beside it (the same
maths). `recurrence.run_cell` uses this path whenever gradients are needed; the plain path
(autograd through the cells' `step`) stays as the reference and the tests hold them together.
`step` is the sampler's inference step through the same kernels.
"""

from __future__ import annotations

import threading

import torch
from torch import Tensor

from .. import cpu
from . import kernels
from .cells import FORGET_BIAS, LN_EPSILON, HyperLSTMCell, LayerNormLSTMCell, LSTMCell, RecurrentCell


class _BufferPool:
    """The time loops' large work buffers, handed from one training step's backward to the next forward.

    Memory fresh from the operating system costs a page fault and zeroing per page: measured here
    about 0.4 ms per MB, a tenth of a second per step for the default decoder's gate buffer alone,
    and the C allocator returns blocks this large to the system as soon as they are freed. Buffers
    given back at the end of a backward pass are taken again by the next forward of the same shape.
    Only CPU tensors are pooled (CUDA has its own caching allocator).
    """

    def __init__(self, per_shape: int = 4) -> None:
        self.per_shape = per_shape
        self.free: dict[tuple, list[Tensor]] = {}
        self.lock = threading.Lock()

    def take(self, like: Tensor, *shape: int) -> Tensor:
        """An uninitialised tensor of `shape` with `like`'s dtype and device."""
        if like.device.type == "cpu":
            with self.lock:
                bucket = self.free.get((shape, like.dtype))
                if bucket:
                    return bucket.pop()
        return like.new_empty(shape)

    def give(self, *tensors: Tensor) -> None:
        """Keep `tensors` for reuse; the caller holds no other reference that will be read again."""
        with self.lock:
            for t in tensors:
                if t.device.type == "cpu":
                    bucket = self.free.setdefault((tuple(t.shape), t.dtype), [])
                    if len(bucket) < self.per_shape:
                        bucket.append(t)

    def clear(self) -> None:
        """Let go of every kept buffer."""
        with self.lock:
            self.free.clear()


POOL = _BufferPool()


def release_work_buffers() -> None:
    """Free the training loop's kept work buffers (before evaluation, or when done training)."""
    POOL.clear()


def _initial(d: Tensor | None, like: Tensor) -> Tensor:
    """The gradient arriving at the last step's state `d` (a contiguous copy to accumulate into), or
    zeros like one step of `like` [T + 1, ...] when the final state was not used."""
    return d.clone(memory_format=torch.contiguous_format) if d is not None else like.new_zeros(like.shape[1:])


def _dense(t: Tensor | None) -> Tensor | None:
    """`t` in row-major order (the fused kernels read rows by a stride), or None."""
    return None if t is None else t.contiguous()


def _once(ctx) -> None:
    """The buffers of a forward go back to the pool after its backward, so it may run only once."""
    if getattr(ctx, "consumed", False):
        raise RuntimeError("the fast recurrent path supports one backward pass per forward (no retain_graph); "
                           "set sketchrnn.model.recurrence.FAST_PATH = False to backpropagate twice")
    ctx.consumed = True


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
        width = 4 * n
        acts = POOL.take(x, steps, cells, batch, width)  # σ(i), tanh(j), σ(f+1), σ(o)
        cs = POOL.take(x, steps + 1, cells, batch, n)
        hs = POOL.take(x, steps + 1, cells, batch, n)
        tcs = POOL.take(x, steps, cells, batch, n)  # tanh(c_t)
        cs[0], hs[0] = c0, h0
        masks, k, threads = _dense(masks), kernels.for_tensor(x), torch.get_num_threads()
        for t in range(steps):
            a = acts[t]
            if cells == 1:  # gates = x_t W_x + const + h W_hh
                torch.addmm(const[0], x[0, :, t], w_x[0], out=a[0]).addmm_(hs[t, 0], w_hh[0])
            else:  # small cells side by side: batched multiplies (see recurrence.run_cells_side_by_side)
                torch.baddbmm(const, x[:, :, t], w_x, out=a).baddbmm_(hs[t], w_hh)
            if k is not None:  # the rest of the step in one pass (the same maths as below)
                k.lstm_forward(cells * batch, n, a.data_ptr(), cs[t].data_ptr(), None if masks is None else masks[t].data_ptr(),
                               cs[t + 1].data_ptr(), tcs[t].data_ptr(), hs[t + 1].data_ptr(), threads)
                continue
            a[..., :n].sigmoid_()
            a[..., n : 2 * n].tanh_()
            a[..., 2 * n :].sigmoid_()
            g = a[..., n : 2 * n] if masks is None else a[..., n : 2 * n] * masks[t]
            torch.mul(cs[t], a[..., 2 * n : 3 * n], out=cs[t + 1]).addcmul_(a[..., :n], g)  # c' = c σ(f) + σ(i) g
            torch.tanh(cs[t + 1], out=tcs[t])
            torch.mul(tcs[t], a[..., 3 * n :], out=hs[t + 1])  # h' = tanh(c') σ(o)
        ctx.save_for_backward(x, w_x, w_hh, acts, cs, hs, tcs, masks)
        return hs[1:].permute(1, 2, 0, 3).contiguous(), cs[steps].clone(), hs[steps].clone()

    @staticmethod
    def backward(ctx, d_out: Tensor | None, d_c_last: Tensor | None, d_h_last: Tensor | None):  # type: ignore[override]
        _once(ctx)
        x, w_x, w_hh, acts, cs, hs, tcs, masks = ctx.saved_tensors
        steps, cells, batch, width = acts.shape
        n = width // 4
        dh, dc = _initial(d_h_last, hs), _initial(d_c_last, cs)
        w_t = w_hh.transpose(1, 2)
        scratch, deriv = acts.new_empty(cells, batch, width), acts.new_empty(cells, batch, width)  # per-step scratch
        one = acts.new_ones(())
        d_out, k, threads = _dense(d_out), kernels.for_tensor(acts), torch.get_num_threads()
        for t in reversed(range(steps)):
            # step t's activations are not needed again: its gate gradients take their place
            if k is not None:  # ∂ of the gates and ∂c_t in place, in one pass
                k.lstm_backward(cells * batch, n, dh.data_ptr(), None if d_out is None else d_out[:, :, t].data_ptr(),
                                steps * n, dc.data_ptr(), acts[t].data_ptr(), cs[t].data_ptr(), tcs[t].data_ptr(),
                                None if masks is None else masks[t].data_ptr(), threads)
            else:
                if d_out is not None:
                    dh = dh + d_out[:, :, t]
                a, tc, dg = acts[t], tcs[t], scratch
                i, g, f, o = a[..., :n], a[..., n : 2 * n], a[..., 2 * n : 3 * n], a[..., 3 * n :]
                dc = dc.addcmul(dh * o, torch.addcmul(one, tc, tc, value=-1))  # ∂c += ∂h · σ(o) · (1 − tanh²c)
                gm = g if masks is None else g * masks[t]
                torch.mul(dc, gm, out=dg[..., :n])  # ∂σ(i)
                torch.mul(dc, i, out=dg[..., n : 2 * n])  # ∂g
                if masks is not None:
                    dg[..., n : 2 * n] *= masks[t]
                torch.mul(dc, cs[t], out=dg[..., 2 * n : 3 * n])  # ∂σ(f)
                torch.mul(dh, tc, out=dg[..., 3 * n :])  # ∂σ(o)
                torch.addcmul(a, a, a, value=-1, out=deriv)  # σ' = σ − σ² on i, f, o
                torch.addcmul(one, g, g, value=-1, out=deriv[..., n : 2 * n])  # tanh' = 1 − tanh² on j
                dc = dc * f
                torch.mul(dg, deriv, out=a)
            dh = torch.mm(acts[t, 0], w_t[0])[None] if cells == 1 else torch.bmm(acts[t], w_t)
        d_gates = acts
        # the weight gradients: one large multiply per cell over all steps
        rows = steps * batch
        d_w_hh = torch.stack([hs[:-1, d].reshape(rows, n).t() @ d_gates[:, d].reshape(rows, width) for d in range(cells)])
        x_tm = x.transpose(1, 2)  # [D, T, B, k]
        d_w_x = torch.stack([_input_weight_grad(x_tm[d], d_gates[:, d]) for d in range(cells)])
        d_const = d_gates.sum(0)
        d_x = torch.matmul(d_gates, w_x.transpose(1, 2)[None]).permute(1, 2, 0, 3) if ctx.needs_input_grad[0] else None
        POOL.give(acts, cs, hs, tcs)
        return d_x, d_w_x, d_const, d_w_hh, dc, dh, None


def _ln_backward(d_normed: Tensor, normed: Tensor, rstd: Tensor) -> Tensor:
    """Gradient through x̂ = (x − mean)·rstd over the last dim: rstd·(∂x̂ − mean ∂x̂ − x̂·mean(∂x̂ x̂))."""
    mean_d = d_normed.mean(-1, keepdim=True)
    mean_dx = (d_normed * normed).mean(-1, keepdim=True)
    return (d_normed - mean_d - normed * mean_dx) * rstd


def _gate_activations(normed: Tensor, gamma: Tensor, beta: Tensor, n: int) -> Tensor:
    """σ(i), tanh(j), σ(f+1), σ(o) from the per-gate normalised pre-activations [B, 4n]."""
    a = torch.addcmul(beta, normed, gamma)
    a[:, 2 * n : 3 * n] += FORGET_BIAS
    a[:, :n].sigmoid_()
    a[:, n : 2 * n].tanh_()
    a[:, 2 * n :].sigmoid_()
    return a


def _ptr(t: Tensor | None) -> int | None:
    """Address of `t`'s first element for the fused kernels (None for None)."""
    return None if t is None else t.data_ptr()


class _LNCellTape:
    """What the forward loop of a LayerNorm-LSTM keeps per step, and the step itself, forwards and backwards.

    Kept: the normalised gate pre-activations and their 1/std, the cell and hidden states and the
    cell layer norm's mean and 1/std; the activations and tanh(LN(c)) are recomputed in the backward
    step (cheap element-wise work) instead of being stored. Each step runs as one fused kernel
    (`kernels.py`) where it can, else as the PyTorch operations below (the same maths).
    """

    def __init__(self, ref: Tensor, steps: int, batch: int, n: int) -> None:
        self.n = n
        self.normed = POOL.take(ref, steps, batch, 4 * n)
        self.rstd = POOL.take(ref, steps, batch, 4, 1)
        self.cs = POOL.take(ref, steps + 1, batch, n)
        self.hs = POOL.take(ref, steps + 1, batch, n)
        self.c_stats = POOL.take(ref, steps, 2, batch, 1)  # mean, 1/std of c_t
        self.kernels, self.threads = kernels.for_tensor(ref), torch.get_num_threads()

    def tensors(self) -> tuple[Tensor, ...]:
        return self.normed, self.rstd, self.cs, self.hs, self.c_stats

    @classmethod
    def of(cls, tensors: tuple[Tensor, ...]) -> "_LNCellTape":
        tape = cls.__new__(cls)
        tape.normed, tape.rstd, tape.cs, tape.hs, tape.c_stats = tensors
        tape.n = tape.cs.shape[-1]
        tape.kernels, tape.threads = kernels.for_tensor(tape.cs), torch.get_num_threads()
        return tape

    def forward(self, t: int, s: Tensor, gamma, beta, gamma_c, beta_c, mask: Tensor | None) -> Tensor:
        """Step t from raw pre-activations `s [B, 4n]`: stores c_{t+1}, h_{t+1} and returns h_{t+1}."""
        n, batch = self.n, s.shape[0]
        k = self.kernels
        if k is not None:
            k.ln_forward(batch, n, s.data_ptr(), s.stride(0), gamma.data_ptr(), beta.data_ptr(), gamma_c.data_ptr(),
                         beta_c.data_ptr(), self.cs[t].data_ptr(), _ptr(mask), LN_EPSILON, FORGET_BIAS,
                         self.normed[t].data_ptr(), self.rstd[t].data_ptr(), self.cs[t + 1].data_ptr(),
                         self.c_stats[t, 0].data_ptr(), self.c_stats[t, 1].data_ptr(), self.hs[t + 1].data_ptr(),
                         self.threads)
            return self.hs[t + 1]
        out, _, r = torch.native_layer_norm(s.view(batch, 4, n), (n,), None, None, LN_EPSILON)  # LN per gate
        normed = self.normed[t]
        normed.copy_(out.view(batch, 4 * n))
        self.rstd[t] = r
        a = _gate_activations(normed, gamma, beta, n)
        g = a[:, n : 2 * n] if mask is None else a[:, n : 2 * n] * mask  # recurrent dropout on g only
        c = torch.mul(self.cs[t], a[:, 2 * n : 3 * n], out=self.cs[t + 1]).addcmul_(a[:, :n], g)  # c' = c σ(f+1) + σ(i) g
        out_c, mean_c, r_c = torch.native_layer_norm(c, (n,), None, None, LN_EPSILON)
        self.c_stats[t, 0], self.c_stats[t, 1] = mean_c, r_c
        u = torch.tanh(torch.addcmul(beta_c, out_c, gamma_c))
        return torch.mul(u, a[:, 3 * n :], out=self.hs[t + 1])  # h' = tanh(LN(c')) σ(o)

    def accumulators(self, batch: int) -> Tensor:
        """Zeroed sums of the γ, β, γc, βc gradients [P, 10n] (P: the kernels' threads, else one per row)."""
        return self.cs.new_zeros(self.threads if self.kernels is not None else batch, 10 * self.n)

    def param_grads(self, acc: Tensor) -> tuple[Tensor, ...]:
        """(∂γ, ∂β, ∂γc, ∂βc) from the accumulators."""
        total, n = acc.sum(0), self.n
        return total[: 4 * n], total[4 * n : 8 * n], total[8 * n : 9 * n], total[9 * n :]

    def backward(self, t: int, dh: Tensor, dc: Tensor, gamma, beta, gamma_c, beta_c, mask: Tensor | None,
                 acc: Tensor, ds: Tensor, dh_extra: Tensor | None = None) -> Tensor:
        """Writes ∂ of step t's raw pre-activations into `ds [B, 4n]` and returns ∂c_t, from ∂h_{t+1}
        (`dh`, plus `dh_extra` when given) and ∂c_{t+1} (`dc`, which it may overwrite); adds the
        γ, β gradients into `acc` (see `accumulators`)."""
        n, batch = self.n, dh.shape[0]
        k = self.kernels
        if k is not None:
            k.ln_backward(batch, n, dh.data_ptr(), _ptr(dh_extra), 0 if dh_extra is None else dh_extra.stride(0),
                          dc.data_ptr(), self.normed[t].data_ptr(), self.rstd[t].data_ptr(), self.cs[t].data_ptr(),
                          self.cs[t + 1].data_ptr(), self.c_stats[t, 0].data_ptr(), self.c_stats[t, 1].data_ptr(),
                          gamma.data_ptr(), beta.data_ptr(), gamma_c.data_ptr(), beta_c.data_ptr(), _ptr(mask),
                          FORGET_BIAS, ds.data_ptr(), ds.stride(0), acc.data_ptr(), self.threads)
            return dc
        if dh_extra is not None:
            dh = dh + dh_extra
        sums = acc.view(batch, 10, n)
        normed = self.normed[t]
        a = _gate_activations(normed, gamma, beta, n)
        i, g, f, o = a[:, :n], a[:, n : 2 * n], a[:, 2 * n : 3 * n], a[:, 3 * n :]
        c_normed = (self.cs[t + 1] - self.c_stats[t, 0]) * self.c_stats[t, 1]
        u = torch.tanh(torch.addcmul(beta_c, c_normed, gamma_c))
        du = dh * o * (1 - u * u)  # through h' = tanh(u) σ(o), u = LN(c')·γc + βc
        sums[:, 8].addcmul_(du, c_normed)  # ∂γc
        sums[:, 9] += du  # ∂βc
        dc = dc + _ln_backward(du * gamma_c, c_normed, self.c_stats[t, 1])
        da = torch.empty_like(a)
        torch.mul(dc, g if mask is None else g * mask, out=da[:, :n])  # ∂σ(i)
        torch.mul(dc, i, out=da[:, n : 2 * n])  # ∂g
        if mask is not None:
            da[:, n : 2 * n] *= mask
        torch.mul(dc, self.cs[t], out=da[:, 2 * n : 3 * n])  # ∂σ(f)
        torch.mul(dh, u, out=da[:, 3 * n :])  # ∂σ(o)
        deriv = torch.addcmul(a, a, a, value=-1)  # σ' = σ − σ² on i, f, o
        torch.addcmul(g.new_ones(()), g, g, value=-1, out=deriv[:, n : 2 * n])  # tanh' = 1 − tanh² on j
        da.mul_(deriv)  # ∂ of the layer-normed gates
        sums[:, :4].view(batch, 4 * n).addcmul_(da, normed)  # ∂γ
        sums[:, 4:8].view(batch, 4 * n).add_(da)  # ∂β
        d_normed = (da * gamma).view(batch, 4, n)
        ds.copy_(_ln_backward(d_normed, normed.view(batch, 4, n), self.rstd[t]).view(batch, 4 * n))
        return dc * f


class LayerNormLSTMSequence(torch.autograd.Function):
    """Outputs h_1..h_T and the final (h_T, c_T) of magenta's LayerNormLSTMCell.

    Inputs: the input term's factors `x [B, T, k]`, `w_x [k, 4n]`, `const [B, 4n]` (step t's input
    term is x_t W_x + const), `w_hh [n, 4n]`, the gate layer norm's `gamma, beta [4n]`, the cell
    layer norm's `gamma_c, beta_c [n]`, initial `h0, c0 [B, n]`, `masks [T, B, n]` or None.
    """

    @staticmethod
    def forward(ctx, x, w_x, const, w_hh, gamma, beta, gamma_c, beta_c, h0, c0, masks):  # type: ignore[override]
        batch, steps, _ = x.shape
        n = w_hh.shape[0]
        tape = _LNCellTape(x, steps, batch, n)
        tape.hs[0], tape.cs[0] = h0, c0
        masks = _dense(masks)
        for t in range(steps):
            s = torch.addmm(const, x[:, t], w_x).addmm_(tape.hs[t], w_hh)  # x W_x + const + h W_hh
            tape.forward(t, s, gamma, beta, gamma_c, beta_c, None if masks is None else masks[t])
        ctx.save_for_backward(x, w_x, w_hh, gamma, beta, gamma_c, beta_c, masks, *tape.tensors())
        return tape.hs[1:].transpose(0, 1).contiguous(), tape.hs[steps].clone(), tape.cs[steps].clone()

    @staticmethod
    def backward(ctx, d_out, d_h_last, d_c_last):  # type: ignore[override]
        _once(ctx)
        x, w_x, w_hh, gamma, beta, gamma_c, beta_c, masks, *kept = ctx.saved_tensors
        tape = _LNCellTape.of(tuple(kept))
        steps, batch, width = tape.normed.shape
        n = width // 4
        d_s = POOL.take(x, steps, batch, width)  # ∂ of the raw pre-activations, every step
        acc = tape.accumulators(batch)
        dh, dc = _initial(d_h_last, tape.hs), _initial(d_c_last, tape.cs)
        d_out = _dense(d_out)
        w_t = w_hh.t()
        for t in reversed(range(steps)):
            dc = tape.backward(t, dh, dc, gamma, beta, gamma_c, beta_c, None if masks is None else masks[t], acc,
                               d_s[t], None if d_out is None else d_out[:, t])
            dh = d_s[t] @ w_t
        # the weight gradients Σ_t h_{t−1}ᵀ ∂s_t and Σ_t x_tᵀ ∂s_t: one large multiply each
        rows = steps * batch
        d_s2 = d_s.view(rows, width)
        d_w_hh = tape.hs[:-1].reshape(rows, n).t() @ d_s2
        d_w_x = _input_weight_grad(x.transpose(0, 1), d_s)
        d_x = (d_s @ w_x.t()).transpose(0, 1) if ctx.needs_input_grad[0] else None
        d_const = d_s.sum(0)
        POOL.give(d_s, *tape.tensors())
        return (d_x, d_w_x, d_const, d_w_hh, *tape.param_grads(acc), dh, dc, None)


class HyperLSTMSequence(torch.autograd.Function):
    """Outputs h_1..h_T and the final state (h, h_hyper, c, c_hyper) of magenta's HyperLSTMCell.

    Inputs: the input term's factors `x [B, T, k]`, `w_x [k, 4n + 4m]`, `const [B, 4n + 4m]` (step
    t's x W_xh and the x part of the hyper cell's input are x_t W_x + const, formed inside the loop),
    the cell's weights (see `hyper_sequence`) and the initial state. Per step the forward does four
    matrix multiplies, h W_hh, h W_hyper,h, h_hyper W_hyper,hh and h_hyper' [zw | zb], and one
    batched one for the twelve α, β blocks; the backward does the same transposed, and the large
    weight gradients are one multiply each over all steps. Spent buffers of the backward hold the
    gradients those multiplies need (∂(h W_hh) over h W_hh, ∂s_hyper over the hyper cell's tape).
    """

    @staticmethod
    def forward(ctx, x, w_x, const, w_hh, w_hyp_h, w_hyp_hh, g_hyp, b_hyp, gc_hyp, bc_hyp, zw_w, zw_b, alpha_w, zb_w,  # type: ignore[override]
                beta_w, bias, gamma, beta, gamma_c, beta_c, h0, hh0, c0, ch0, masks):
        batch, steps, _ = x.shape
        n, m, e = w_hh.shape[0], w_hyp_hh.shape[0], zw_w.shape[2]
        z_w, z_b, ab_w = _hyper_heads(zw_w, zw_b, zb_w, alpha_w, beta_w)
        main, hyper = _LNCellTape(x, steps, batch, n), _LNCellTape(x, steps, batch, m)
        main.hs[0], main.cs[0], hyper.hs[0], hyper.cs[0] = h0, c0, hh0, ch0
        hw = POOL.take(x, steps, batch, 4 * n)  # h W_hh per step; the backward overwrites it with its ∂
        zs = POOL.take(x, steps, batch, 12 * e)  # z_w (8 blocks) and z_b (4 blocks) per step; later their ∂
        masks = _dense(masks)
        # per-step scratch, allocated once: a fresh multi-MB result every step costs more than its multiply here
        ab, x_t, s = x.new_empty(12, batch, n), x.new_empty(batch, 4 * n + 4 * m), x.new_empty(batch, 4 * n)
        s_hyp = x.new_empty(batch, 4 * m)
        for t in range(steps):
            torch.addmm(const, x[:, t], w_x, out=x_t)
            p = torch.mm(main.hs[t], w_hh, out=hw[t])
            # the hyper cell reads [x, h]: s = x W_x + h W_h + h_hyper W_hh
            torch.addmm(x_t[:, 4 * n :], main.hs[t], w_hyp_h, out=s_hyp).addmm_(hyper.hs[t], w_hyp_hh)
            h_hyp = hyper.forward(t, s_hyp, g_hyp, b_hyp, gc_hyp, bc_hyp, None)
            z = torch.addmm(z_b, h_hyp, z_w, out=zs[t])  # z_w = h_hyper W + b, z_b = h_hyper W
            torch.bmm(z.view(batch, 12, e).transpose(0, 1), ab_w, out=ab)  # α [8, B, n], β [4, B, n]
            _hyper_gates(main.kernels, ab, bias, x_t, p, s, main.threads)
            main.forward(t, s, gamma, beta, gamma_c, beta_c, None if masks is None else masks[t])
        ctx.save_for_backward(x, w_x, const, w_hh, w_hyp_h, w_hyp_hh, z_w, ab_w, g_hyp, b_hyp, gc_hyp, bc_hyp, gamma, beta, gamma_c,
                              beta_c, masks, hw, zs, *main.tensors(), *hyper.tensors())
        hs = main.hs
        return (hs[1:].transpose(0, 1).contiguous(), hs[steps].clone(), hyper.hs[steps].clone(),
                main.cs[steps].clone(), hyper.cs[steps].clone())

    @staticmethod
    def backward(ctx, d_out, d_h_last, d_hh_last, d_c_last, d_ch_last):  # type: ignore[override]
        _once(ctx)
        (x, w_x, const, w_hh, w_hyp_h, w_hyp_hh, z_w, ab_w, g_hyp, b_hyp, gc_hyp, bc_hyp, gamma, beta, gamma_c, beta_c, masks,
         hw, zs, *kept) = ctx.saved_tensors
        main, hyper = _LNCellTape.of(tuple(kept[:5])), _LNCellTape.of(tuple(kept[5:]))
        batch, steps, _ = x.shape
        n, m, e = main.n, hyper.n, zs.shape[2] // 12
        dh, dc = _initial(d_h_last, main.hs), _initial(d_c_last, main.cs)
        dhh, dch = _initial(d_hh_last, hyper.hs), _initial(d_ch_last, hyper.cs)
        acc, acc_hyp = main.accumulators(batch), hyper.accumulators(batch)
        d_bias = x.new_zeros(batch if main.kernels is None else main.threads, 4 * n)  # sums of ∂b
        d_ab_w = torch.zeros_like(ab_w)
        d_hw = x.new_empty(batch, 4 * n + 4 * m)  # this step's ∂(h W_hh) and ∂s_hyper: one multiply gives ∂h
        w_cat_t = torch.cat([w_hh, w_hyp_h], dim=1).t()
        w_hyp_hh_t, z_w_t, ab_w_t = w_hyp_hh.t(), z_w.t(), ab_w.transpose(1, 2)
        ab, d_ab, d_z = x.new_empty(12, batch, n), x.new_empty(12, batch, n), x.new_empty(12, batch, e)  # scratch
        x_t, ds = x.new_empty(batch, 4 * n + 4 * m), x.new_empty(batch, 4 * n)
        d_out = _dense(d_out)
        for t in reversed(range(steps)):
            dc = main.backward(t, dh, dc, gamma, beta, gamma_c, beta_c, None if masks is None else masks[t], acc, ds,
                               None if d_out is None else d_out[:, t])
            z_blocks = zs[t].view(batch, 12, e).transpose(0, 1)
            torch.bmm(z_blocks[:8], ab_w[:8], out=ab[:8])  # α recomputed from the kept z (β is not needed)
            torch.addmm(const, x[:, t], w_x, out=x_t)  # the input term again
            # spent buffers take the gradients the weight multiplies need: h W_hh_t its own ∂, the
            # main cell's tape at t ∂(x W_xh), the hyper cell's tape at t ∂s_hyper
            d_xw = main.normed[t]
            _hyper_gates_backward(main.kernels, ds, ab, x_t, hw[t], d_ab, d_xw, d_hw, d_bias, main.threads)
            d_ab_w.baddbmm_(z_blocks.transpose(1, 2), d_ab)
            torch.bmm(d_ab, ab_w_t, out=d_z)  # [12, B, e]
            zs[t].view(batch, 12, e).copy_(d_z.transpose(0, 1))
            dhh = torch.addmm(dhh, zs[t], z_w_t)
            d_s_hyp = d_hw[:, 4 * n :]
            dch = hyper.backward(t, dhh, dch, g_hyp, b_hyp, gc_hyp, bc_hyp, None, acc_hyp, d_s_hyp)
            hyper.normed[t] = d_s_hyp
            dh = d_hw @ w_cat_t
            dhh = d_s_hyp @ w_hyp_hh_t
        rows = steps * batch
        h_prev = main.hs[:-1].reshape(rows, n)
        d_xw_parts = (main.normed, hyper.normed)  # ∂(x_t W_x + const), its 4n and 4m columns, every step
        d_w_x = torch.cat([_input_weight_grad(x.transpose(0, 1), d) for d in d_xw_parts], dim=1)
        d_const = torch.cat([d.sum(0) for d in d_xw_parts], dim=1)
        d_x = None
        if ctx.needs_input_grad[0]:
            d_x = (main.normed @ w_x[:, : 4 * n].t()).add_(hyper.normed @ w_x[:, 4 * n :].t()).transpose(0, 1)
        d_s_hyp_all = hyper.normed.view(rows, 4 * m)
        d_w_hh = h_prev.t() @ hw.view(rows, 4 * n)  # Σ_t h_{t−1}ᵀ ∂(h W_hh)_t
        d_w_hyp_h = h_prev.t() @ d_s_hyp_all
        d_w_hyp_hh = hyper.hs[:-1].reshape(rows, m).t() @ d_s_hyp_all
        d_z_w = hyper.hs[1:].reshape(rows, m).t() @ zs.reshape(rows, 12 * e)  # [m, 12e]
        d_z_w = d_z_w.view(m, 12, e).transpose(0, 1)
        d_zw_b = zs[..., : 8 * e].reshape(rows, 8, e).sum(0)
        POOL.give(hw, zs, *main.tensors(), *hyper.tensors())
        return (d_x, d_w_x, d_const, d_w_hh, d_w_hyp_h, d_w_hyp_hh, *hyper.param_grads(acc_hyp),
                d_z_w[:8], d_zw_b, d_ab_w[:8], d_z_w[8:], d_ab_w[8:], d_bias.sum(0), *main.param_grads(acc),
                dh, dhh, dc, dch, None)


def _input_weight_grad(x: Tensor, d: Tensor) -> Tensor:
    """Σ_t x_tᵀ d_t, the gradient of an input weight W_x, from `x [T, B, k]` and `d [T, B, P]`.

    With k as small as a stroke's 5, one [k, T·B] × [T·B, P] multiply runs at a tenth of the
    machine's speed (measured 52 ms for the default decoder); a batch of per-step multiplies
    summed over the steps takes half that. Larger k take the single multiply.
    """
    if x.shape[-1] <= 16:
        return torch.bmm(x.transpose(1, 2), d).sum(0)
    rows = x.shape[0] * x.shape[1]
    return x.reshape(rows, -1).t() @ d.reshape(rows, -1)


def _blocks(t: Tensor, n: int) -> Tensor:
    """[B, 4n] → a view [4, B, n] of its gate blocks."""
    return t.view(t.shape[0], 4, n).transpose(0, 1)


def _hyper_gates(k: kernels.Kernels | None, ab: Tensor, bias: Tensor, x_t: Tensor, hw: Tensor, s: Tensor,
                 threads: int) -> None:
    """The main cell's raw pre-activations into `s [B, 4n]`: per gate block k,
    s_k = α_x,k (x W_xh)_k + α_h,k (h W_hh)_k + β_k + b_k, from `ab [12, B, n]` (α_x, α_h, β),
    `x_t [B, ≥4n]` (x W_xh in its first 4n columns) and `hw [B, 4n]`."""
    batch, n = hw.shape[0], hw.shape[1] // 4
    if k is not None:
        k.hyper_gates_forward(batch, n, ab.data_ptr(), bias.data_ptr(), x_t.data_ptr(), x_t.stride(0), hw.data_ptr(),
                              hw.stride(0), s.data_ptr(), threads)
        return
    gates = torch.addcmul(ab[8:] + bias.view(4, 1, n), ab[:4], _blocks(x_t[:, : 4 * n], n))
    _blocks(s, n).copy_(gates.addcmul_(ab[4:8], _blocks(hw, n)))


def _hyper_gates_backward(k: kernels.Kernels | None, ds: Tensor, ab: Tensor, x_t: Tensor, hw: Tensor, d_ab: Tensor,
                          d_xw: Tensor, d_hw: Tensor, d_bias: Tensor, threads: int) -> None:
    """From ∂s `ds [B, 4n]`: ∂α_x, ∂α_h, ∂β into `d_ab [12, B, n]`, ∂(x W_xh) into `d_xw[:, :4n]`,
    ∂(h W_hh) into `d_hw[:, :4n]` and over `hw`; ∂b added into the sums `d_bias`."""
    batch, n = ds.shape[0], ds.shape[1] // 4
    if k is not None:
        k.hyper_gates_backward(batch, n, ds.data_ptr(), ab.data_ptr(), x_t.data_ptr(), x_t.stride(0), hw.data_ptr(),
                               hw.stride(0), d_ab.data_ptr(), d_xw.data_ptr(), d_xw.stride(0), d_hw.data_ptr(),
                               d_hw.stride(0), d_bias.data_ptr(), threads)
        return
    d_bias += ds
    d_gates = _blocks(ds, n)
    torch.mul(d_gates, _blocks(x_t[:, : 4 * n], n), out=d_ab[:4])  # ∂α_x
    torch.mul(d_gates, _blocks(hw, n), out=d_ab[4:8])  # ∂α_h
    d_ab[8:] = d_gates  # ∂β
    torch.mul(d_gates, ab[:4], out=_blocks(d_xw[:, : 4 * n], n))  # ∂(x W_xh)
    torch.mul(d_gates, ab[4:8], out=_blocks(d_hw[:, : 4 * n], n))  # ∂(h W_hh)
    hw.copy_(d_hw[:, : 4 * n])


def _hyper_heads(zw_w: Tensor, zw_b: Tensor, zb_w: Tensor, alpha_w: Tensor, beta_w: Tensor):
    """The twelve hyper heads as one [m, 12e] matrix (+ [12e] bias) and one stack of [12, e, n]."""
    m, e = zw_w.shape[1], zw_w.shape[2]
    z_w = torch.cat([zw_w, zb_w]).permute(1, 0, 2).reshape(m, 12 * e)
    z_b = torch.cat([zw_b.reshape(-1), zw_b.new_zeros(4 * e)])
    return z_w, z_b, torch.cat([alpha_w, beta_w])


def hyper_sequence(cell, x: Tensor, w_x: Tensor, const: Tensor, state, masks: Tensor | None):
    """(outputs [B, T, n], (h, h_hyper, c, c_hyper)) of a `HyperLSTMCell` through `HyperLSTMSequence`."""
    hyper, k = cell.hyper_cell, cell.input_size
    h0, hh0, c0, ch0 = state
    out, h, hh, c, ch = HyperLSTMSequence.apply(
        x, w_x, const, cell.W_hh, hyper.W_xh[k:], hyper.W_hh, hyper.ln_all_gamma, hyper.ln_all_beta, hyper.ln_c_gamma,
        hyper.ln_c_beta, cell.zw_w, cell.zw_b, cell.alpha_w, cell.zb_w, cell.beta_w, cell.bias,
        cell.ln_all_gamma, cell.ln_all_beta, cell.ln_c_gamma, cell.ln_c_beta, h0, hh0, c0, ch0, masks)
    return out, (h, hh, c, ch)


def layer_norm_lstm_sequence(x, w_x, const, w_hh, gamma, beta, gamma_c, beta_c, h0, c0, masks):
    """(outputs [B, T, n], h_T, c_T) through `LayerNormLSTMSequence`."""
    return LayerNormLSTMSequence.apply(x, w_x, const, w_hh, gamma, beta, gamma_c, beta_c, h0, c0, masks)


def lstm_sequence(x: Tensor, w_x: Tensor, const: Tensor, w_hh: Tensor, c0: Tensor, h0: Tensor, masks: Tensor | None):
    """(outputs [D, B, T, n], c_T, h_T) through `LSTMSequence` (see there for the shapes)."""
    return LSTMSequence.apply(x, w_x, const, w_hh, c0, h0, masks)


def step(cell: RecurrentCell, xw: Tensor, state: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
    """One inference step of `cell` (no dropout, no gradients) with the fused kernels where they
    apply, else `cell.step`: the same maths, for the sampler's loop."""
    cpu.adapt()  # threads for the cores other programs leave free
    k = kernels.for_tensor(xw)
    if k is None or torch.is_grad_enabled():
        return cell.step(xw, state, None)
    batch, n = xw.shape[0], cell.num_units
    if type(cell) is LSTMCell:
        c, h = (s.contiguous() for s in state)
        gates = torch.addmm(xw, h, cell.W_hh)  # x W_xh + b (+1 on f, in xw) + h W_hh
        c2, tc, h2 = torch.empty_like(c), torch.empty_like(c), torch.empty_like(h)
        k.lstm_forward(batch, n, gates.data_ptr(), c.data_ptr(), None, c2.data_ptr(), tc.data_ptr(), h2.data_ptr(),
                       torch.get_num_threads())
        return c2, h2
    if type(cell) is LayerNormLSTMCell:
        h, c = (s.contiguous() for s in state)
        return _ln_step(torch.addmm(xw, h, cell.W_hh), c, cell)
    if type(cell) is HyperLSTMCell:
        h, hh, c, ch = (s.contiguous() for s in state)
        hyper, kx = cell.hyper_cell, cell.input_size
        s_hyp = torch.addmm(xw[:, 4 * n :], h, hyper.W_xh[kx:]).addmm_(hh, hyper.W_hh)  # the hyper cell reads [x, h]
        hh2, ch2 = _ln_step(s_hyp, ch, hyper)
        z_w, z_b, ab_w = _hyper_heads(cell.zw_w, cell.zw_b, cell.zb_w, cell.alpha_w, cell.beta_w)
        z = torch.addmm(z_b, hh2, z_w)
        ab = torch.bmm(z.view(batch, 12, -1).transpose(0, 1), ab_w)  # α [8, B, n], β [4, B, n]
        s = torch.empty(batch, 4 * n, dtype=xw.dtype)
        _hyper_gates(k, ab, cell.bias, xw, h @ cell.W_hh, s, torch.get_num_threads())
        h2, c2 = _ln_step(s, c, cell)
        return h2, hh2, c2, ch2
    return cell.step(xw, state, None)


def _ln_step(s: Tensor, c: Tensor, cell) -> tuple[Tensor, Tensor]:
    """(h', c') of a LayerNorm-LSTM step from its raw pre-activations `s [B, 4n]`: the tape's step
    over a tape one step long (inference)."""
    tape = _LNCellTape(s, 1, *c.shape)
    tape.cs[0] = c
    h = tape.forward(0, s, cell.ln_all_gamma, cell.ln_all_beta, cell.ln_c_gamma, cell.ln_c_beta, None)
    return h, tape.cs[1]
