"""The time loop: runs a cell over a sequence, with recurrent dropout.

Which loop runs is the cell's business (`RecurrentCell.sequence`); this module decides only
between the cell's own loop and the plain reference loop, and never looks at a cell's type. The
input term ``x W`` (`Projection`) is one large matrix multiply over all time steps on the plain
path and is formed step by step from its factors on the fast path. Outputs at a step never
depend on later inputs, so a sketch's encoding is read at its own last step (`last_outputs`) and
the padding after it is never seen.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from .. import cpu
from .cells import Projection, RecurrentCell, State, plain_sequence

FAST_PATH = True  # run the cells' own (fast) loops where gradients are needed (tests switch it off to compare)


class RowDraws:
    """Random draws of a training step, each row's a function of (seed, step, its position in the
    global batch): a generator per row, so that a row draws the same numbers whichever process
    handles it and whatever rows share its batch (see `sketchrnn.train.parallel`)."""

    def __init__(self, seed: int, step: int, positions: Sequence[int]) -> None:
        states = (np.random.SeedSequence([seed, step, p]).generate_state(1, np.uint64)[0] for p in positions)
        self.generators = [torch.Generator().manual_seed(int(s) & (2**63 - 1)) for s in states]

    def rand(self, shape: tuple[int, ...], batch_dim: int, device=None) -> Tensor:
        """Uniform [0, 1) draws of `shape`, row k of dimension `batch_dim` from row k's generator."""
        return self._rows(torch.rand, shape, batch_dim, device)

    def randn(self, shape: tuple[int, ...], batch_dim: int, device=None, dtype=None) -> Tensor:
        """Standard normal draws of `shape`, as `rand`."""
        return self._rows(torch.randn, shape, batch_dim, device, dtype=dtype)

    def _rows(self, draw, shape: tuple[int, ...], batch_dim: int, device, **kwargs) -> Tensor:
        row = shape[:batch_dim] + shape[batch_dim + 1 :]
        return torch.stack([draw(row, generator=g, **kwargs) for g in self.generators], dim=batch_dim).to(device)


def dropout_masks(shape: tuple[int, ...], keep_prob: float, device=None, dtype=None, draws: RowDraws | None = None,
                  batch_dim: int = 0) -> Tensor:
    """Inverted-dropout masks: 1/keep with probability keep, else 0 (torch's default generator, or
    `draws` with the batch along `batch_dim`)."""
    if draws is not None:
        mask = draws.rand(shape, batch_dim, device).lt_(keep_prob)
    else:
        mask = torch.rand(shape, device=device).lt_(keep_prob)  # in place: one buffer, not four
    return mask.to(dtype or torch.float32).div_(keep_prob)


def projection(cell: RecurrentCell, x: Tensor) -> Projection:
    """`cell`'s input term for inputs `x [B, T, input_size]`: x W_xh + the cell's offset."""
    return Projection(x, cell.input_weight(), cell.input_offset())


def run_cell(
    cell: RecurrentCell, inputs: Projection, state: State, keep_masks: Tensor | None = None, fast: bool | None = None
) -> tuple[Tensor, State]:
    """Run `cell` over the input terms `inputs` (see `Projection`) from `state`.

    `keep_masks [T, B, n]` are the recurrent-dropout masks (None: no dropout). Returns the outputs
    ``[B, T, n]`` and the state after the last step. When gradients are needed and `fast` (default
    `FAST_PATH`) is on, the cell's own loop runs (`cell.sequence`: the fast loop with its
    hand-written backward, where the cell has one); otherwise the plain loop of `cell.step`.
    """
    cpu.adapt()  # threads for the cores other programs leave free
    if (FAST_PATH if fast is None else fast) and torch.is_grad_enabled():
        return cell.sequence(inputs, state, keep_masks)
    return plain_sequence(cell, inputs, state, keep_masks)


def run_cells_side_by_side(
    cells: list[RecurrentCell], inputs: list[Projection], states: list[State], keep_masks: list[Tensor | None]
) -> list[Tensor]:
    """Outputs of several independent cells of the same kind over inputs of the same length (the
    encoder's two directions): the cells' class may run them in one loop (`RecurrentCell.sequences`)."""
    cpu.adapt()
    if FAST_PATH and torch.is_grad_enabled():
        return type(cells[0]).sequences(cells, inputs, states, keep_masks)
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
