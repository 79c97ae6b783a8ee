"""The fast recurrent path computes what the plain (autograd) path computes: values and gradients."""

from __future__ import annotations

import pytest
import torch

from conftest import GOLDEN_TF, assert_close
from sketchrnn import HParams, SketchRNN
from sketchrnn.data import load_dataset
from sketchrnn.model import recurrence
from sketchrnn.model.cells import LayerNormLSTMCell, LSTMCell
from sketchrnn.model.recurrence import dropout_masks, run_cell


@pytest.mark.parametrize("cell_class", [LSTMCell, LayerNormLSTMCell])
@pytest.mark.parametrize("with_masks", [False, True])
def test_sequence_matches_the_plain_loop(cell_class, with_masks: bool) -> None:
    torch.manual_seed(0)
    cell = cell_class(7, 16)
    with torch.no_grad():  # move the layer norms' γ, β off their initial 1, 0 so their gradients are tested
        for name, p in cell.named_parameters():
            if name.startswith("ln_"):
                p.add_(0.3 * torch.randn_like(p))
    x = torch.randn(5, 30, 7)
    state0 = (torch.randn(5, 16, requires_grad=True), torch.randn(5, 16, requires_grad=True))
    masks = dropout_masks((30, 5, 16), 0.7) if with_masks else None
    weights = torch.randn(5, 30, 16)  # a loss that reads every output and the final state
    results = []
    for fast in (False, True):
        cell.zero_grad()
        for s in state0:
            s.grad = None
        xw = cell.project_input(x)
        out, (s1, s2) = run_cell(cell, xw, state0, masks, fast=fast)
        loss = (out * weights).sum() + (s1 * 0.3).sum() + (s2 * 0.7).sum()
        loss.backward()
        grads = {name: p.grad.clone() for name, p in cell.named_parameters()}
        results.append({"outputs": out.detach(), "final 1": s1.detach(), "final 2": s2.detach(),
                        "d state0 1": state0[0].grad.clone(), "d state0 2": state0[1].grad.clone(), **grads})
    plain, fast = results
    assert set(plain) == set(fast)
    for name in plain:
        assert_close(fast[name], plain[name], 1e-5, name)


@pytest.mark.parametrize("cells", ["enc_model=lstm,dec_model=lstm", "enc_model=layer_norm,dec_model=layer_norm"])
def test_whole_model_fast_equals_plain_with_dropout(monkeypatch, cells: str) -> None:
    """Training loss and every gradient of a conditional model, recurrent dropout on, same masks."""
    data = load_dataset(GOLDEN_TF / "aaron_sheep_subset_le60.npz", seed=0)
    hps = HParams.parse(cells, base=HParams.preset("tiny")).replace(max_seq_len=data.max_seq_len)
    batch = data.train.random_batch(8)
    x = torch.from_numpy(batch.inputs)
    torch.manual_seed(1)
    model = SketchRNN(hps).train()
    grads = []
    for fast in (False, True):
        monkeypatch.setattr(recurrence, "FAST_PATH", fast)
        torch.manual_seed(2)  # same ε and the same dropout masks on both paths
        model.zero_grad()
        loss = model.compute_loss(x, batch.lengths, 0.5)
        loss.cost.backward()
        grads.append((loss.cost.item(), {k: p.grad.clone() for k, p in model.named_parameters()}))
    (plain_cost, plain), (fast_cost, fast) = grads
    assert fast_cost == pytest.approx(plain_cost, rel=1e-6)
    for name in plain:
        assert_close(fast[name], plain[name], 1e-5, name)
