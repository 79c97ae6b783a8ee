"""Every encoder/decoder cell combination trains, checkpoints, resumes, samples and reconstructs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sketchrnn
from conftest import GOLDEN_TF
from sketchrnn import HParams
from sketchrnn.model.cells import CELLS
from sketchrnn.model.recurrence import projection
from sketchrnn.train import train

SUBSET = GOLDEN_TF / "aaron_sheep_subset_le60.npz"
COMBINATIONS = [f"conditional=1,enc_model={e},dec_model={d}" for e in CELLS for d in CELLS] + [
    f"conditional=0,dec_model={d}" for d in CELLS
]


@pytest.mark.parametrize("cells", COMBINATIONS)
def test_every_cell_combination_works_end_to_end(tmp_path, cells: str) -> None:
    hps = HParams.parse(cells, base=HParams.preset("tiny").replace(save_every=2, batch_size=8))
    run = tmp_path / "run"
    train(run, hps, data=[SUBSET], steps=2, seed=0, progress=False)
    train(run, resume=True, steps=3, progress=False)
    model = sketchrnn.load(run, which="last")
    assert model.hps.enc_model == hps.enc_model and model.hps.dec_model == hps.dec_model
    assert isinstance(model.dec_cell, CELLS[hps.dec_model])
    sketches = model.sample(3, temperature=0.5, seed=1)
    assert all(len(s) >= 1 and s[-1, 2] == 1 for s in sketches)
    if hps.conditional:
        again = model.reconstruct(sketches[:2], temperature=0.1, seed=1)
        assert len(again) == 2
        assert isinstance(model.enc_fw, CELLS[hps.enc_model])


@pytest.mark.parametrize("name", list(CELLS))
def test_recurrent_dropout_masks_only_the_candidate(name: str) -> None:
    """With every candidate dropped, the cell state can only decay: c' = c·σ(f+1)."""
    torch.manual_seed(0)
    cell = CELLS[name](5, 16)
    state = cell.split_state(torch.randn(3, cell.state_size))
    xw = projection(cell, torch.randn(3, 5)).full()
    zero_mask = torch.zeros(3, 16)
    new = cell.step(xw, state, zero_mask)
    c_index = {"lstm": 0, "layer_norm": 1, "hyper": 2}[name]
    c_old, c_new = state[c_index], new[c_index]
    ratio = c_new / c_old
    assert ((ratio > 0) & (ratio < 1)).all()  # only the forget gate acted on c
    kept = cell.step(xw, state, torch.ones(3, 16))
    plain = cell.step(xw, state, None)
    assert all(torch.equal(a, b) for a, b in zip(kept, plain))


def test_state_packing_follows_the_reference() -> None:
    """lstm packs [c, h], layer_norm [h, c], hyper [h, h_hyper, c, c_hyper]."""
    packed = torch.arange(2 * 8, dtype=torch.float32)[None]
    c, h = CELLS["lstm"](5, 8).split_state(packed)
    assert c[0, 0] == 0 and h[0, 0] == 8
    h, c = CELLS["layer_norm"](5, 8).split_state(packed)
    assert h[0, 0] == 0 and c[0, 0] == 8
    hyper = CELLS["hyper"](5, 8)
    assert hyper.state_size == 2 * (8 + 256)
    parts = hyper.split_state(torch.arange(hyper.state_size, dtype=torch.float32)[None])
    assert [p.shape[1] for p in parts] == [8, 256, 8, 256] and parts[2][0, 0] == 8 + 256
    assert np.array_equal(hyper.pack_state(parts).numpy(), torch.arange(hyper.state_size)[None].numpy())
