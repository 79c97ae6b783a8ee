"""The time loop: runs a cell over a sequence, with recurrent dropout and optional true lengths.

The input projection ``x W`` is one large matrix multiply over all time steps before the loop;
each step then does only the recurrent part. With `lengths`, a sketch's state stops changing
after its last real point, so the final state is the state at step ``length - 1``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .cells import RecurrentCell, State


def dropout_masks(shape: tuple[int, ...], keep_prob: float, device=None, dtype=None) -> Tensor:
    """Inverted-dropout masks: 1/keep with probability keep, else 0 (torch's default generator)."""
    keep = torch.rand(shape, device=device) < keep_prob
    return keep.to(dtype or torch.float32) / keep_prob


def run_cell(
    cell: RecurrentCell,
    xw: Tensor,
    state: State,
    keep_masks: Tensor | None = None,
    lengths: Tensor | None = None,
) -> tuple[Tensor, State]:
    """Run `cell` over projected inputs `xw [B, T, P]` from `state`.

    `keep_masks [T, B, n]` are the recurrent-dropout masks (None: no dropout). Returns the outputs
    ``[B, T, n]`` and the final state (per sketch, the state after its last real step when
    `lengths` is given).
    """
    steps = xw.shape[1]
    outputs = []
    active = None
    if lengths is not None:
        t_index = torch.arange(steps, device=xw.device)
        active = (t_index[:, None] < lengths.to(xw.device)[None, :]).unsqueeze(-1)  # [T, B, 1]
    for t in range(steps):
        new_state = cell.step(xw[:, t], state, None if keep_masks is None else keep_masks[t])
        if active is not None:
            new_state = tuple(torch.where(active[t], new, old) for new, old in zip(new_state, state))
        state = new_state
        outputs.append(cell.output(state))
    return torch.stack(outputs, dim=1), state


def reverse_padded(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence's first `length` rows, leaving the padding after them in place."""
    steps = x.shape[1]
    t = torch.arange(steps, device=x.device)[None, :]
    lens = lengths.to(x.device)[:, None]
    index = torch.where(t < lens, lens - 1 - t, t)  # [B, T]
    return torch.gather(x, 1, index[:, :, None].expand(-1, -1, x.shape[2]))
