"""Every encoder/decoder cell combination trains, checkpoints, resumes, samples and reconstructs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sketchrnn
from conftest import GOLDEN_TF
from sketchrnn import HParams
from sketchrnn.hparams import CELLS
from sketchrnn.model.cells import cell_class
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
    assert isinstance(model.dec_cell, cell_class(hps.dec_model))
    sketches = model.sample(3, temperature=0.5, seed=1)
    assert all(len(s) >= 1 and s[-1, 2] == 1 for s in sketches)
    if hps.conditional:
        again = model.reconstruct(sketches[:2], temperature=0.1, seed=1)
        assert len(again) == 2
        assert isinstance(model.enc_fw, cell_class(hps.enc_model))


@pytest.mark.parametrize("name", list(CELLS))
def test_recurrent_dropout_masks_only_the_candidate(name: str) -> None:
    """With every candidate dropped, the cell state can only decay: c' = c·σ(f+1)."""
    torch.manual_seed(0)
    cell = cell_class(name)(5, 16)
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
    c, h = cell_class("lstm")(5, 8).split_state(packed)
    assert c[0, 0] == 0 and h[0, 0] == 8
    h, c = cell_class("layer_norm")(5, 8).split_state(packed)
    assert h[0, 0] == 0 and c[0, 0] == 8
    hyper = cell_class("hyper")(5, 8)
    assert hyper.state_size == 2 * (8 + 256)
    parts = hyper.split_state(torch.arange(hyper.state_size, dtype=torch.float32)[None])
    assert [p.shape[1] for p in parts] == [8, 256, 8, 256] and parts[2][0, 0] == 8 + 256
    assert np.array_equal(hyper.pack_state(parts).numpy(), torch.arange(hyper.state_size)[None].numpy())


class CoupledGateLSTMCell(cell_class("lstm")):
    """A new cell as a user would write one: magenta's LSTM with the forget gate coupled to the
    input gate (f = 1 − i), defined by its `step` alone."""

    def step(self, xw, state, keep_mask):
        c, h = state
        i, j, _, o = torch.addmm(xw, h, self.W_hh).chunk(4, dim=1)
        g = torch.tanh(j) if keep_mask is None else torch.tanh(j) * keep_mask
        c = c * (1 - torch.sigmoid(i)) + torch.sigmoid(i) * g
        return c, torch.tanh(c) * torch.sigmoid(o)


@pytest.mark.usefixtures("fixed_threads")  # its runs are compared bit for bit
def test_a_new_cell_with_only_a_step_trains_resumes_and_samples_through_its_own_step(tmp_path, monkeypatch) -> None:
    """Registered in the table of cells and nowhere else, a subclass of the LSTM that changes only
    `step` runs its own maths everywhere (the plain loop in training, its step in sampling), never
    the LSTM's fast loop; a resumed run equals one that never stopped."""
    from sketchrnn.model.fast import lstm as fast_lstm

    monkeypatch.setitem(CELLS, "coupled", CoupledGateLSTMCell)
    calls = {"step": 0}
    original = CoupledGateLSTMCell.step

    def counted(self, xw, state, keep_mask):
        calls["step"] += 1
        return original(self, xw, state, keep_mask)

    monkeypatch.setattr(CoupledGateLSTMCell, "step", counted)

    def refuse(*args):
        raise AssertionError("the LSTM's fast loop ran a cell with a step of its own")

    monkeypatch.setattr(fast_lstm.LSTMSequence, "apply", refuse)
    monkeypatch.setattr(fast_lstm, "lstm_inference_step", refuse)
    hps = HParams.parse("enc_model=coupled,dec_model=coupled", base=HParams.preset("tiny").replace(
        save_every=3, batch_size=8, use_recurrent_dropout=True))
    whole = train(tmp_path / "whole", hps, data=[SUBSET], steps=6, seed=3, progress=False)
    assert calls["step"] > 0
    train(tmp_path / "halves", hps, data=[SUBSET], steps=3, seed=3, progress=False)
    rest = train(tmp_path / "halves", resume=True, steps=6, progress=False)
    assert rest.train_costs == whole.train_costs[3:]
    model = sketchrnn.load(tmp_path / "halves", which="last")
    assert type(model.dec_cell) is CoupledGateLSTMCell and type(model.enc_fw) is CoupledGateLSTMCell
    expected = sketchrnn.load(tmp_path / "whole", which="last").state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())
    calls["step"] = 0
    sketches = model.sample(3, temperature=0.5, seed=1)
    assert calls["step"] > 0 and all(s[-1, 2] == 1 for s in sketches)
