"""The time loop: runs a cell over a sequence, with recurrent dropout.

The input projection ``x W`` is one large matrix multiply over all time steps before the loop;
each step then does only the recurrent part. Outputs at a step never depend on later inputs, so
a sketch's encoding is read at its own last step (`last_outputs`) and the padding after it is
never seen.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .cells import HyperLSTMCell, LayerNormLSTMCell, LSTMCell, RecurrentCell, State
from .fast import hyper_sequence, layer_norm_lstm_sequence, lstm_sequence

FAST_PATH = True  # use the hand-written backward where a cell has one (tests switch it off to compare)
SIDE_BY_SIDE_MAX_ELEMENTS = 32768  # batch × 4n up to which the encoder's two directions share one loop


def dropout_masks(shape: tuple[int, ...], keep_prob: float, device=None, dtype=None) -> Tensor:
    """Inverted-dropout masks: 1/keep with probability keep, else 0 (torch's default generator)."""
    keep = torch.rand(shape, device=device) < keep_prob
    return keep.to(dtype or torch.float32) / keep_prob


def run_cell(
    cell: RecurrentCell, xw: Tensor, state: State, keep_masks: Tensor | None = None, fast: bool | None = None
) -> tuple[Tensor, State]:
    """Run `cell` over projected inputs `xw [B, T, P]` (from ``cell.project_input``) from `state`.

    `keep_masks [T, B, n]` are the recurrent-dropout masks (None: no dropout). Returns the outputs
    ``[B, T, n]`` and the state after the last step. `fast` (default `FAST_PATH`) takes the
    hand-written backward for every cell when gradients are needed.
    """
    if (FAST_PATH if fast is None else fast) and torch.is_grad_enabled():
        if isinstance(cell, LSTMCell):
            c0, h0 = state
            outputs, c, h = lstm_sequence(xw, cell.W_hh, c0, h0, keep_masks)
            return outputs, (c, h)
        if isinstance(cell, LayerNormLSTMCell):
            h0, c0 = state
            outputs, h, c = layer_norm_lstm_sequence(xw, cell.W_hh, cell.ln_all_gamma, cell.ln_all_beta,
                                                     cell.ln_c_gamma, cell.ln_c_beta, h0, c0, keep_masks)
            return outputs, (h, c)
        if isinstance(cell, HyperLSTMCell):
            return hyper_sequence(cell, xw, state, keep_masks)
    outputs: list[Tensor] = []
    # unbind once: indexing xw[:, t] inside the loop would make autograd build a full-size
    # gradient buffer for every step (quadratic in the sequence length)
    for t, xw_t in enumerate(xw.unbind(1)):
        state = cell.step(xw_t, state, None if keep_masks is None else keep_masks[t])
        outputs.append(cell.output(state))
    return torch.stack(outputs, dim=1), state


def run_cells_side_by_side(
    cells: list[RecurrentCell], xws: list[Tensor], states: list[State], keep_masks: list[Tensor | None]
) -> list[Tensor]:
    """Outputs of several independent cells of the same shape over inputs of the same length.

    Small LSTM cells on the fast path share one loop, which halves the number of per-step
    operations of the bidirectional encoder; that pays where a step is dominated by per-operation
    overhead (measured: the tiny preset's encoder 30% faster) and costs where it is dominated by
    arithmetic (the default encoder, 256 units x batch 100, ran 20-30% slower stacked), so larger
    cells each run on their own.
    """
    same_lstm = all(type(c) is LSTMCell and c.W_hh.shape == cells[0].W_hh.shape for c in cells)
    small = xws[0].shape[0] * xws[0].shape[-1] <= SIDE_BY_SIDE_MAX_ELEMENTS
    if FAST_PATH and same_lstm and small and torch.is_grad_enabled():
        masks = None if keep_masks[0] is None else torch.stack(keep_masks, dim=1)  # type: ignore[arg-type]
        outputs, _, _ = lstm_sequence(torch.stack(xws), torch.stack([c.W_hh for c in cells]),
                                      torch.stack([s[0] for s in states]), torch.stack([s[1] for s in states]), masks)
        return list(outputs.unbind(0))
    return [run_cell(c, xw, s, m)[0] for c, xw, s, m in zip(cells, xws, states, keep_masks)]


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
