"""The time loop: runs a cell over a sequence, with recurrent dropout.

The input term ``x W`` (`Projection`) is one large matrix multiply over all time steps on the
plain path and is formed step by step from its factors on the fast path. Outputs at a step never
depend on later inputs, so a sketch's encoding is read at its own last step (`last_outputs`) and
the padding after it is never seen.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .. import cpu
from .cells import HyperLSTMCell, LayerNormLSTMCell, LSTMCell, RecurrentCell, State
from .fast import hyper_sequence, layer_norm_lstm_sequence, lstm_sequence

FAST_PATH = True  # use the hand-written backward where a cell has one (tests switch it off to compare)
SIDE_BY_SIDE_MAX_ELEMENTS = 32768  # batch × 4n up to which the encoder's two directions share one loop


def dropout_masks(shape: tuple[int, ...], keep_prob: float, device=None, dtype=None) -> Tensor:
    """Inverted-dropout masks: 1/keep with probability keep, else 0 (torch's default generator)."""
    mask = torch.rand(shape, device=device).lt_(keep_prob)  # in place: one buffer, not four
    return mask.to(dtype or torch.float32).div_(keep_prob)


@dataclass
class Projection:
    """The per-step input term ``x_t W + constant`` of a time loop, kept as its factors.

    `x [B, T, k]`, `weight [k, P]`, `constant [P]` or `[B, P]` (or None). The fast path forms the
    term step by step inside the loop; `full()` is the whole ``[B, T, P]`` tensor for the plain path.
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


def projection(cell: RecurrentCell, x: Tensor) -> Projection:
    """`cell`'s input term for inputs `x [B, T, input_size]`: x W_xh + the cell's offset."""
    return Projection(x, cell.input_weight(), cell.input_offset())


def run_cell(
    cell: RecurrentCell, inputs: Projection, state: State, keep_masks: Tensor | None = None, fast: bool | None = None
) -> tuple[Tensor, State]:
    """Run `cell` over the input terms `inputs` (see `Projection`) from `state`.

    `keep_masks [T, B, n]` are the recurrent-dropout masks (None: no dropout). Returns the outputs
    ``[B, T, n]`` and the state after the last step. `fast` (default `FAST_PATH`) takes the
    hand-written backward through time (`fast.py`) when gradients are needed.
    """
    cpu.adapt()  # threads for the cores other programs leave free
    if (FAST_PATH if fast is None else fast) and torch.is_grad_enabled():
        x, w, const = inputs.x, inputs.weight, inputs.constant_rows()
        if isinstance(cell, LSTMCell):
            c0, h0 = state
            masks = None if keep_masks is None else keep_masks[:, None]
            outputs, c, h = lstm_sequence(x[None], w[None], const[None], cell.W_hh[None], c0[None], h0[None], masks)
            return outputs[0], (c[0], h[0])
        if isinstance(cell, LayerNormLSTMCell):
            h0, c0 = state
            outputs, h, c = layer_norm_lstm_sequence(x, w, const, cell.W_hh, cell.ln_all_gamma, cell.ln_all_beta,
                                                     cell.ln_c_gamma, cell.ln_c_beta, h0, c0, keep_masks)
            return outputs, (h, c)
        if isinstance(cell, HyperLSTMCell):
            return hyper_sequence(cell, x, w, const, state, keep_masks)
    outputs: list[Tensor] = []
    # unbind once: indexing xw[:, t] inside the loop would make autograd build a full-size
    # gradient buffer for every step (quadratic in the sequence length)
    for t, xw_t in enumerate(inputs.full().unbind(1)):
        state = cell.step(xw_t, state, None if keep_masks is None else keep_masks[t])
        outputs.append(cell.output(state))
    return torch.stack(outputs, dim=1), state


def run_cells_side_by_side(
    cells: list[RecurrentCell], inputs: list[Projection], states: list[State], keep_masks: list[Tensor | None]
) -> list[Tensor]:
    """Outputs of several independent cells of the same shape over inputs of the same length.

    Small LSTM cells on the fast path share one loop, which halves the number of per-step
    operations of the bidirectional encoder; that pays where a step is dominated by per-operation
    overhead (measured: the tiny preset's encoder 30% faster) and costs where it is dominated by
    arithmetic (the default encoder, 256 units x batch 100, ran 20-30% slower stacked), so larger
    cells each run on their own.
    """
    cpu.adapt()
    same_lstm = all(type(c) is LSTMCell and c.W_hh.shape == cells[0].W_hh.shape for c in cells)
    small = inputs[0].x.shape[0] * cells[0].W_hh.shape[1] <= SIDE_BY_SIDE_MAX_ELEMENTS
    if FAST_PATH and same_lstm and small and torch.is_grad_enabled():
        masks = None if keep_masks[0] is None else torch.stack(keep_masks, dim=1)  # type: ignore[arg-type]
        outputs, _, _ = lstm_sequence(torch.stack([p.x for p in inputs]), torch.stack([p.weight for p in inputs]),
                                      torch.stack([p.constant_rows() for p in inputs]),
                                      torch.stack([c.W_hh for c in cells]), torch.stack([s[0] for s in states]),
                                      torch.stack([s[1] for s in states]), masks)
        return list(outputs.unbind(0))
    return [run_cell(c, p, s, m)[0] for c, p, s, m in zip(cells, inputs, states, keep_masks)]


def last_outputs(outputs: Tensor, lengths: Tensor) -> Tensor:
    """Each sequence's output at its last real step ``length − 1``: ``[B, n]`` from ``[B, T, n]``."""
    index = (lengths.to(outputs.device) - 1).clamp(min=0)
    return outputs[torch.arange(outputs.shape[0], device=outputs.device), index]


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence's first `length` rows, leaving the padding after them in place."""
    steps = x.shape[1]
    t = torch.arange(steps, device=x.device)[None, :]
    lens = lengths.to(x.device)[:, None]
    index = torch.where(t < lens, lens - 1 - t, t)  # [B, T]
    return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[2]))
