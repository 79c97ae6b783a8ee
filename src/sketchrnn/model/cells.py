"""Recurrent cells of sketch-rnn: LSTM, LayerNorm-LSTM and HyperLSTM, one time step each.

Weights are kept in TensorFlow's layout (``x @ W``, gate blocks in the order i, j, f, o, the forget
bias +1 added at run time), so magenta's variables map onto ours one to one. Recurrent dropout is
"without memory loss" (Semeniuta et al., 2016): an inverted-dropout mask multiplies the candidate
``g = tanh(j)`` only, never the cell or hidden state.

Every cell splits its work in two so the time loop can be fast:
``input_weight()`` (and ``input_offset()``) give the input term x W + b, which the loop forms
outside the recurrence (`Projection`); ``step(xw_t, state, mask)`` does the rest of one step, the
reference maths. Each cell owns its time loop: ``sequence`` runs it over a whole sequence (the base
class runs ``step`` at every step under autograd; the three cells here run their fast loop from
`fast/`), ``inference_step`` is the sampler's step. A subclass that changes ``step``, ``output``
or ``cell_update`` gets the plain loop, so it always runs its own maths. State is a tuple inside
the loop and a flat tensor outside it, packed as the reference packs it (``pack_state`` /
``split_state``).

To add a cell: a subclass of `RecurrentCell` with ``step``, ``output`` and ``tf_variables``, and a
name in the table of cells, `hparams.CELLS`; for speed, a fast loop in `fast/` called from its ``sequence``.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..hparams import CELLS
from .fast import (FORGET_BIAS, LN_EPSILON, HyperWeights, Norms, hyper_inference_step, hyper_sequence,
                   layer_norm_lstm_sequence, ln_inference_step, lstm_inference_step, lstm_sequence)

HYPER_NUM_UNITS = 256
HYPER_EMBEDDING_SIZE = 32

State = tuple[Tensor, ...]
Slot = tuple[nn.Parameter, "int | None"]  # a parameter, or block k of a stacked parameter


def glorot_uniform_(w: Tensor) -> Tensor:
    """TF's default initializer for a variable of shape [fan_in, fan_out] (1-D: fan_in = fan_out = len)."""
    fan_in, fan_out = (w.shape[0], w.shape[0]) if w.dim() == 1 else (w.shape[0], w.shape[1])
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return w.uniform_(-limit, limit)


def lstm_orthogonal_(w: Tensor) -> Tensor:
    """An orthogonal matrix for each of the four gate blocks of W_hh [n, 4n] (magenta's lstm_ortho_initializer)."""
    n = w.shape[1] // 4
    with torch.no_grad():
        for k in range(4):
            nn.init.orthogonal_(w[:, k * n : (k + 1) * n])
    return w


def layer_norm(x: Tensor, gamma: Tensor, beta: Tensor, groups: int = 1) -> Tensor:
    """(x − mean) / √(var + 1e-3) · γ + β, normalising each of `groups` equal blocks of the last dim.

    The variance is the biased one and ε sits inside the square root, as in the reference; torch's
    fused kernel computes exactly that.
    """
    if groups == 1:
        return F.layer_norm(x, (x.shape[-1],), gamma, beta, eps=LN_EPSILON)
    shape = x.shape
    blocks = x.reshape(*shape[:-1], groups, shape[-1] // groups)
    normed = F.layer_norm(blocks, (blocks.shape[-1],), eps=LN_EPSILON).reshape(shape)
    return torch.addcmul(beta, normed, gamma)


@dataclass
class Projection:
    """The per-step input term ``x_t W + constant`` of a time loop, kept as its factors.

    `x [B, T, k]`, `weight [k, P]`, `constant [P]` or `[B, P]` (or None). The fast loops form the
    term step by step; `full()` is the whole ``[B, T, P]`` tensor for the plain loop.
    """

    x: Tensor
    weight: Tensor
    constant: Tensor | None = None

    def full(self) -> Tensor:
        """x W + constant for every step: ``[B, T, P]``."""
        xw = self.x @ self.weight
        if self.constant is None:
            return xw
        return xw + (self.constant[:, None, :] if self.constant.dim() == 2 else self.constant)

    def constant_rows(self) -> Tensor:
        """The constant as one row per sequence, ``[B, P]`` (a broadcast view where it is shared)."""
        batch, width = self.x.shape[0], self.weight.shape[1]
        if self.constant is None:
            return self.x.new_zeros(width).expand(batch, width)
        return self.constant.expand(batch, width)


def plain_sequence(cell: RecurrentCell, inputs: Projection, state: State,
                   keep_masks: Tensor | None = None) -> tuple[Tensor, State]:
    """The reference loop: `cell.step` at every step, autograd through each (outputs ``[B, T, n]``, final state)."""
    outputs: list[Tensor] = []
    # unbind once: indexing xw[:, t] inside the loop would make autograd build a full-size
    # gradient buffer for every step (quadratic in the sequence length)
    for t, xw_t in enumerate(inputs.full().unbind(1)):
        state = cell.step(xw_t, state, None if keep_masks is None else keep_masks[t])
        outputs.append(cell.output(state))
    return torch.stack(outputs, dim=1), state


def computes_as(cell: RecurrentCell, cls: type) -> bool:
    """Whether `cell` does `cls`'s maths (its class keeps `cls`'s step, output and cell update), so
    `cls`'s fast loop may run it."""
    return all(getattr(type(cell), name, None) is getattr(cls, name, None) for name in ("step", "output", "cell_update"))


class RecurrentCell(nn.Module):
    """What every cell provides to the time loop, and the weights all of the reference's cells share:
    W_xh [input, 4n] (glorot-uniform) and W_hh [n, 4n] (an orthogonal block per gate)."""

    def __init__(self, input_size: int, num_units: int) -> None:
        super().__init__()
        self.input_size, self.num_units = input_size, num_units
        self.W_xh = nn.Parameter(glorot_uniform_(torch.empty(input_size, 4 * num_units)))
        self.W_hh = nn.Parameter(lstm_orthogonal_(torch.empty(num_units, 4 * num_units)))

    @property
    def state_size(self) -> int:
        """Width of the packed state that the initial-state layer produces (h and c by default)."""
        return 2 * self.num_units

    def input_weight(self) -> Tensor:
        """Matrix [input_size, P] applied to the input at every step (see `Projection`)."""
        return self.W_xh

    def input_offset(self) -> Tensor | None:
        """Constant [P] added to the projected input at every step (None: nothing to add)."""
        return None

    def step(self, xw: Tensor, state: State, keep_mask: Tensor | None) -> State:
        """One time step from the projected input `xw` [B, P]; `keep_mask` scales the candidate (or None)."""
        raise NotImplementedError

    def output(self, state: State) -> Tensor:
        """The h the cell emits for `state`."""
        raise NotImplementedError

    def sequence(self, inputs: Projection, state: State, keep_masks: Tensor | None = None) -> tuple[Tensor, State]:
        """Outputs ``[B, T, n]`` over the input terms `inputs` from `state`, and the final state,
        differentiable; `keep_masks [T, B, n]` are the recurrent-dropout masks. The base class runs
        the plain loop; a cell with a fast loop overrides this."""
        return plain_sequence(self, inputs, state, keep_masks)

    @classmethod
    def sequences(cls, cells: list[RecurrentCell], inputs: list[Projection], states: list[State],
                  keep_masks: list[Tensor | None]) -> list[Tensor]:
        """Outputs of several independent cells over inputs of the same length (each on its own by default)."""
        return [c.sequence(p, s, m)[0] for c, p, s, m in zip(cells, inputs, states, keep_masks)]

    def inference_step(self, xw: Tensor, state: State) -> State:
        """One step without dropout, for the sampler (the reference `step` by default)."""
        return self.step(xw, state, None)

    def split_state(self, packed: Tensor) -> State:
        """Flat packed state (reference order) → the tuple the loop carries (two halves by default)."""
        return tuple(packed.split(self.num_units, dim=1))

    def pack_state(self, state: State) -> Tensor:
        """Tuple state → the flat packed state in the reference order."""
        return torch.cat(state, dim=1)

    def zero_state(self, batch_size: int, device=None, dtype=None) -> State:
        """All-zero state for `batch_size` sketches."""
        return self.split_state(torch.zeros(batch_size, self.state_size, device=device, dtype=dtype))

    def tf_variables(self) -> dict[str, Slot]:
        """Our parameters under magenta's variable names (relative to the cell's scope), in TF layout."""
        raise NotImplementedError


def _candidate(j: Tensor, keep_mask: Tensor | None) -> Tensor:
    g = torch.tanh(j)
    return g if keep_mask is None else g * keep_mask  # recurrent dropout on g only


class LSTMCell(RecurrentCell):
    """magenta's LSTMCell: state packed [c, h]."""

    scope = "LSTMCell"

    def __init__(self, input_size: int, num_units: int) -> None:
        super().__init__(input_size, num_units)
        self.bias = nn.Parameter(torch.zeros(4 * num_units))

    def input_offset(self) -> Tensor:
        # the gate bias and the forget bias +1, added once to the hoisted x W_xh
        n = self.num_units
        forget = torch.zeros_like(self.bias)
        forget[2 * n : 3 * n] = FORGET_BIAS
        return self.bias + forget

    def step(self, xw: Tensor, state: State, keep_mask: Tensor | None) -> State:
        c, h = state
        gates = torch.addmm(xw, h, self.W_hh)  # [i j f+1 o] = x W_xh + h W_hh + b (+1 on f, in xw)
        i, j, f, o = gates.chunk(4, dim=1)
        g = _candidate(j, keep_mask)
        c = c * torch.sigmoid(f) + torch.sigmoid(i) * g  # c' = c σ(f+1) + σ(i) g
        h = torch.tanh(c) * torch.sigmoid(o)  # h' = tanh(c') σ(o)
        return c, h

    def output(self, state: State) -> Tensor:
        return state[1]

    # batch × 4n up to which cells side by side share one loop (see `sequences`)
    SIDE_BY_SIDE_MAX_ELEMENTS = 32768

    def sequence(self, inputs: Projection, state: State, keep_masks: Tensor | None = None) -> tuple[Tensor, State]:
        if not computes_as(self, LSTMCell):
            return plain_sequence(self, inputs, state, keep_masks)
        c0, h0 = state
        masks = None if keep_masks is None else keep_masks[:, None]
        outputs, c, h = lstm_sequence(inputs.x[None], inputs.weight[None], inputs.constant_rows()[None],
                                      self.W_hh[None], c0[None], h0[None], masks)
        return outputs[0], (c[0], h[0])

    @classmethod
    def sequences(cls, cells: list[RecurrentCell], inputs: list[Projection], states: list[State],
                  keep_masks: list[Tensor | None]) -> list[Tensor]:
        """Small LSTM cells share one loop, which halves the number of per-step operations of the
        bidirectional encoder; that pays where a step is dominated by per-operation overhead
        (measured: the tiny preset's encoder 30% faster) and costs where it is dominated by
        arithmetic (the default encoder, 256 units x batch 100, ran 20-30% slower stacked), so
        larger cells each run on their own."""
        same = all(computes_as(c, LSTMCell) and c.W_hh.shape == cells[0].W_hh.shape for c in cells)
        if not same or inputs[0].x.shape[0] * cells[0].W_hh.shape[1] > LSTMCell.SIDE_BY_SIDE_MAX_ELEMENTS:
            return super().sequences(cells, inputs, states, keep_masks)
        masks = None if keep_masks[0] is None else torch.stack(keep_masks, dim=1)  # type: ignore[arg-type]
        outputs, _, _ = lstm_sequence(torch.stack([p.x for p in inputs]), torch.stack([p.weight for p in inputs]),
                                      torch.stack([p.constant_rows() for p in inputs]),
                                      torch.stack([c.W_hh for c in cells]), torch.stack([s[0] for s in states]),
                                      torch.stack([s[1] for s in states]), masks)
        return list(outputs.unbind(0))

    def inference_step(self, xw: Tensor, state: State) -> State:
        if torch.is_grad_enabled() or not computes_as(self, LSTMCell):
            return self.step(xw, state, None)
        return lstm_inference_step(xw, *state, self.W_hh)

    def tf_variables(self) -> dict[str, Slot]:
        s = self.scope
        return {f"{s}/W_xh": (self.W_xh, None), f"{s}/W_hh": (self.W_hh, None), f"{s}/bias": (self.bias, None)}


class LayerNormLSTMCell(RecurrentCell):
    """magenta's LayerNormLSTMCell: per-gate layer norm, no gate bias, LN on c for the output; state [h, c]."""

    scope = "LayerNormLSTMCell"

    def __init__(self, input_size: int, num_units: int) -> None:
        super().__init__(input_size, num_units)
        self.ln_all_gamma = nn.Parameter(torch.ones(4 * num_units))
        self.ln_all_beta = nn.Parameter(torch.zeros(4 * num_units))
        self.ln_c_gamma = nn.Parameter(torch.ones(num_units))
        self.ln_c_beta = nn.Parameter(torch.zeros(num_units))

    def cell_update(self, gates: Tensor, c: Tensor, keep_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """From raw gate pre-activations [B, 4n] and c to (h', c'), with the layer norms."""
        gates = layer_norm(gates, self.ln_all_gamma, self.ln_all_beta, groups=4)  # LN per gate block
        i, j, f, o = gates.chunk(4, dim=1)
        g = _candidate(j, keep_mask)
        c = c * torch.sigmoid(f + FORGET_BIAS) + torch.sigmoid(i) * g  # c' = c σ(f+1) + σ(i) g
        h = torch.tanh(layer_norm(c, self.ln_c_gamma, self.ln_c_beta)) * torch.sigmoid(o)  # h' = tanh(LN(c')) σ(o)
        return h, c

    def step(self, xw: Tensor, state: State, keep_mask: Tensor | None) -> State:
        h, c = state
        return self.cell_update(torch.addmm(xw, h, self.W_hh), c, keep_mask)

    def output(self, state: State) -> Tensor:
        return state[0]

    def norms(self) -> Norms:
        """The layer norms' gains and biases, as the fast loop takes them."""
        return Norms(self.ln_all_gamma, self.ln_all_beta, self.ln_c_gamma, self.ln_c_beta)

    def sequence(self, inputs: Projection, state: State, keep_masks: Tensor | None = None) -> tuple[Tensor, State]:
        if not computes_as(self, LayerNormLSTMCell):
            return plain_sequence(self, inputs, state, keep_masks)
        h0, c0 = state
        outputs, h, c = layer_norm_lstm_sequence(inputs.x, inputs.weight, inputs.constant_rows(), self.W_hh,
                                                 self.norms(), h0, c0, keep_masks)
        return outputs, (h, c)

    def inference_step(self, xw: Tensor, state: State) -> State:
        if torch.is_grad_enabled() or not computes_as(self, LayerNormLSTMCell):
            return self.step(xw, state, None)
        h, c = (s.contiguous() for s in state)
        return ln_inference_step(torch.addmm(xw, h, self.W_hh), c, self.norms())

    def tf_variables(self) -> dict[str, Slot]:
        s = self.scope
        return {
            f"{s}/W_xh": (self.W_xh, None),
            f"{s}/W_hh": (self.W_hh, None),
            f"{s}/ln_all/ln_gamma": (self.ln_all_gamma, None),
            f"{s}/ln_all/ln_beta": (self.ln_all_beta, None),
            f"{s}/ln_c/ln_gamma": (self.ln_c_gamma, None),
            f"{s}/ln_c/ln_beta": (self.ln_c_beta, None),
        }


class HyperLSTMCell(RecurrentCell):
    """magenta's HyperLSTMCell: a 256-unit LayerNorm-LSTM hyper network rescales the main LSTM's gates.

    State packed [h, h_hyper, c, c_hyper]; the hyper cell reads [x, h] and has no recurrent dropout.
    The eight weight-scaling blocks (hyper_ix … hyper_oh) and four bias blocks (hyper_ih … hyper_oh)
    of the reference are stored stacked, block k of each stack being one of the reference's
    variables, so one batched multiply serves all of them at every step.
    """

    scope = "HyperLSTMCell"
    gate_names = ("i", "j", "f", "o")

    def __init__(
        self,
        input_size: int,
        num_units: int,
        hyper_num_units: int = HYPER_NUM_UNITS,
        hyper_embedding_size: int = HYPER_EMBEDDING_SIZE,
    ) -> None:
        super().__init__(input_size, num_units)
        self.hyper_num_units = m = hyper_num_units
        e = hyper_embedding_size
        self.bias = nn.Parameter(torch.zeros(4 * num_units))
        self.hyper_cell = LayerNormLSTMCell(input_size + num_units, hyper_num_units)
        # blocks 0-3 scale x W_xh's gates i, j, f, o; blocks 4-7 scale h W_hh's
        self.zw_w = nn.Parameter(torch.zeros(8, m, e))  # z_w = h_hyper W + 1
        self.zw_b = nn.Parameter(torch.ones(8, e))
        self.alpha_w = nn.Parameter(torch.full((8, e, num_units), 0.1 / e))  # α = z_w W (0.1 at init)
        self.zb_w = nn.Parameter(torch.randn(4, m, e) * 0.01)  # z_b = h_hyper W, for h W_hh's gates
        self.beta_w = nn.Parameter(torch.zeros(4, e, num_units))  # β = z_b W
        self.ln_all_gamma = nn.Parameter(torch.ones(4 * num_units))
        self.ln_all_beta = nn.Parameter(torch.zeros(4 * num_units))
        self.ln_c_gamma = nn.Parameter(torch.ones(num_units))
        self.ln_c_beta = nn.Parameter(torch.zeros(num_units))

    @property
    def state_size(self) -> int:
        return 2 * (self.num_units + self.hyper_num_units)

    def input_weight(self) -> Tensor:
        # one matrix for both uses of x: the main cell's x W_xh and the hyper cell's x part
        return torch.cat([self.W_xh, self.hyper_cell.W_xh[: self.input_size]], dim=1)

    def step(self, xw: Tensor, state: State, keep_mask: Tensor | None) -> State:
        h, h_hyper, c, c_hyper = state
        n, batch = self.num_units, h.shape[0]
        xh, x_hyper = xw[:, : 4 * n], xw[:, 4 * n :]
        # the hyper cell reads [x, h]
        hyper_in = torch.addmm(x_hyper, h, self.hyper_cell.W_xh[self.input_size :])
        h_hyper, c_hyper = self.hyper_cell.step(hyper_in, (h_hyper, c_hyper), None)
        z_w = torch.baddbmm(self.zw_b[:, None, :], h_hyper.expand(8, -1, -1), self.zw_w)  # [8, B, e]
        alpha = torch.bmm(z_w, self.alpha_w)  # [8, B, n]
        beta = torch.bmm(torch.matmul(h_hyper, self.zb_w), self.beta_w)  # [4, B, n]
        blocks = lambda t: t.view(batch, 4, n).transpose(0, 1)  # noqa: E731  [B, 4n] → [4, B, n]
        # gate_k = α_kx·(x W_xh)_k + (α_kh·(h W_hh)_k + β_kh) + b_k
        gates = alpha[:4] * blocks(xh) + (alpha[4:] * blocks(h @ self.W_hh) + beta) + self.bias.view(4, 1, n)
        gates = layer_norm(gates.transpose(0, 1).reshape(batch, 4 * n), self.ln_all_gamma, self.ln_all_beta, groups=4)
        i, j, f, o = gates.chunk(4, dim=1)
        g = _candidate(j, keep_mask)
        c = c * torch.sigmoid(f + FORGET_BIAS) + torch.sigmoid(i) * g
        h = torch.tanh(layer_norm(c, self.ln_c_gamma, self.ln_c_beta)) * torch.sigmoid(o)
        return h, h_hyper, c, c_hyper

    def output(self, state: State) -> Tensor:
        return state[0]

    def fast_loop_applies(self) -> bool:
        """Whether the fast loop computes this cell: its class and its hyper cell's keep the reference maths."""
        return computes_as(self, HyperLSTMCell) and computes_as(self.hyper_cell, LayerNormLSTMCell)

    def sequence(self, inputs: Projection, state: State, keep_masks: Tensor | None = None) -> tuple[Tensor, State]:
        if not self.fast_loop_applies():
            return plain_sequence(self, inputs, state, keep_masks)
        return hyper_sequence(inputs.x, inputs.weight, inputs.constant_rows(), HyperWeights.of(self), state, keep_masks)

    def inference_step(self, xw: Tensor, state: State) -> State:
        if torch.is_grad_enabled() or not self.fast_loop_applies():
            return self.step(xw, state, None)
        return hyper_inference_step(xw, state, HyperWeights.of(self))

    def split_state(self, packed: Tensor) -> State:
        n, m = self.num_units, self.hyper_num_units
        h, h_hyper, c, c_hyper = packed.split([n, m, n, m], dim=1)
        return h, h_hyper, c, c_hyper

    def tf_variables(self) -> dict[str, Slot]:
        s = self.scope
        out: dict[str, Slot] = {f"{s}/W_xh": (self.W_xh, None), f"{s}/W_hh": (self.W_hh, None),
                                f"{s}/bias": (self.bias, None)}
        out.update({f"{s}/{k}": v for k, v in self.hyper_cell.tf_variables().items()})
        for k, name in enumerate(self.gate_names):
            for block, kind in ((k, "x"), (k + 4, "h")):
                scope = f"{s}/hyper_{name}{kind}"
                out[f"{scope}/zw/super_linear_w"] = (self.zw_w, block)
                out[f"{scope}/zw/super_linear_b"] = (self.zw_b, block)
                out[f"{scope}/alpha/super_linear_w"] = (self.alpha_w, block)
            out[f"{s}/hyper_{name}h/zb/super_linear_w"] = (self.zb_w, k)
            out[f"{s}/hyper_{name}h/beta/super_linear_w"] = (self.beta_w, k)
        out.update(
            {
                f"{s}/ln_all/ln_gamma": (self.ln_all_gamma, None),
                f"{s}/ln_all/ln_beta": (self.ln_all_beta, None),
                f"{s}/ln_c/ln_gamma": (self.ln_c_gamma, None),
                f"{s}/ln_c/ln_beta": (self.ln_c_beta, None),
            }
        )
        return out


def cell_class(name: str) -> type[RecurrentCell]:
    """The class of the cell called `name` in the table of cells (`hparams.CELLS`)."""
    if name not in CELLS:
        raise ValueError(f"unknown cell {name!r}; choose one of {', '.join(CELLS)}")
    entry = CELLS[name]
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = getattr(importlib.import_module(module), attr)
    return entry


def make_cell(name: str, input_size: int, num_units: int) -> RecurrentCell:
    """A new cell of the class called `name` in `hparams.CELLS`."""
    return cell_class(name)(input_size, num_units)
