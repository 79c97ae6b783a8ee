"""The fast recurrent path computes what the plain (autograd) path computes: values and gradients."""

from __future__ import annotations

import pytest
import torch

from conftest import GOLDEN_TF, assert_close
from sketchrnn import HParams, SketchRNN
from sketchrnn.data import load_dataset
from sketchrnn.model import kernels, recurrence
from sketchrnn.model.cells import HyperLSTMCell, LayerNormLSTMCell, LSTMCell
from sketchrnn.model.fast import WorkBuffers, input_weight_grad
from sketchrnn.model.recurrence import Projection, dropout_masks, projection, run_cell


def _small_cell(cell_class):
    if cell_class is HyperLSTMCell:
        return HyperLSTMCell(7, 16, hyper_num_units=12, hyper_embedding_size=4)
    return cell_class(7, 16)


@pytest.fixture(params=["kernels", "torch ops"])
def element_wise(request, monkeypatch) -> str:
    """Runs a test with the fused kernels (which must then be built) and with PyTorch's operations."""
    monkeypatch.setattr(kernels, "ENABLED", request.param == "kernels")
    if request.param == "kernels":
        assert kernels.for_tensor(torch.zeros(1)) is not None, "the fused kernels did not build"
    return request.param


@pytest.mark.parametrize("cell_class", [LSTMCell, LayerNormLSTMCell, HyperLSTMCell])
@pytest.mark.parametrize("with_masks", [False, True])
def test_sequence_matches_the_plain_loop(cell_class, with_masks: bool, element_wise: str) -> None:
    """Every output and gradient, in float64 to 1e-9: the same maths, not merely close.

    (In float32 this small, perturbed cell's two paths differ by up to 4e-5 and the plain path is
    the farther of the two from a float64 run; the whole-model test below holds float32 to 1e-5.)
    """
    torch.manual_seed(0)
    cell = _small_cell(cell_class).double()
    with torch.no_grad():  # move γ = 1, β = 0 and the zero hyper heads off their initial values so all gradients are tested
        for name, p in cell.named_parameters():
            if "W_" not in name:
                p.add_(0.1 * torch.randn_like(p))
    x = torch.randn(5, 30, 7, dtype=torch.float64, requires_grad=True)
    width = cell.input_weight().shape[1]
    per_sketch = torch.randn(5, width, dtype=torch.float64, requires_grad=True)  # as the decoder's z W_z
    state0 = [s.detach().requires_grad_() for s in cell.split_state(torch.randn(5, cell.state_size, dtype=torch.float64))]
    masks = dropout_masks((30, 5, 16), 0.7, dtype=torch.float64) if with_masks else None
    weights = torch.randn(5, 30, 16, dtype=torch.float64)  # a loss that reads every output and the final state
    results = []
    for fast in (False, True):
        cell.zero_grad()
        for s in (*state0, x, per_sketch):
            s.grad = None
        offset = cell.input_offset()
        inputs = Projection(x, cell.input_weight(), per_sketch if offset is None else per_sketch + offset)
        out, state = run_cell(cell, inputs, tuple(state0), masks, fast=fast)
        loss = (out * weights).sum() + sum((s * (0.3 + 0.2 * k)).sum() for k, s in enumerate(state))
        loss.backward()
        grads = {name: p.grad.clone() for name, p in cell.named_parameters()}
        results.append({"outputs": out.detach(), **{f"final {k}": s.detach() for k, s in enumerate(state)},
                        **{f"d state0 {k}": s.grad.clone() for k, s in enumerate(state0)},
                        "d x": x.grad.clone(), "d per-sketch constant": per_sketch.grad.clone(), **grads})
    plain, fast = results
    assert set(plain) == set(fast)
    for name in plain:
        assert_close(fast[name], plain[name], 1e-9, name)


@pytest.mark.parametrize("cells", ["enc_model=lstm,dec_model=lstm", "enc_model=layer_norm,dec_model=layer_norm",
                                   "enc_model=hyper,dec_model=hyper"])
def test_whole_model_fast_equals_plain_with_dropout(monkeypatch, cells: str, element_wise: str) -> None:
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
        # float32 sums over 8 sketches × 60 steps in another order (and split over threads): the
        # bias gradients, the longest sums, differ by up to about 1e-5 on 2 threads; a wrong term
        # in a backward differs by orders of magnitude more
        assert_close(fast[name], plain[name], 3e-5, name)


@pytest.mark.parametrize("cell_class", [LSTMCell, LayerNormLSTMCell, HyperLSTMCell])
def test_work_buffers_are_reused_and_backward_runs_once(cell_class) -> None:
    """The second step reuses the first one's buffers (no fresh pages) and computes the same numbers."""
    torch.manual_seed(0)
    cell = _small_cell(cell_class)
    x = torch.randn(5, 30, 7)
    masks = dropout_masks((30, 5, 16), 0.7)
    work = WorkBuffers()
    results, reused = [], []
    for _ in range(2):
        cell.zero_grad()
        with work.active():
            before = {id(t) for bucket in work.free.values() for t in bucket}
            out, _ = run_cell(cell, projection(cell, x), cell.zero_state(5), masks, fast=True)
            after = {id(t) for bucket in work.free.values() for t in bucket}
            reused.append(len(before - after))  # buffers the forward took from the pool
            out.sum().backward()
        results.append([p.grad.clone() for p in cell.parameters()])
    assert reused[0] == 0 and reused[1] > 0
    assert all(torch.equal(a, b) for a, b in zip(*results))
    out, _ = run_cell(cell, projection(cell, x), cell.zero_state(5), masks, fast=True)
    out.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="one backward pass per forward"):
        out.sum().backward()


def test_no_buffers_are_kept_without_a_current_pool() -> None:
    """Outside `WorkBuffers.active` the loops allocate afresh and keep nothing (no module-level pool)."""
    cell = LSTMCell(7, 16)
    work = WorkBuffers()
    out, _ = run_cell(cell, projection(cell, torch.randn(3, 9, 7)), cell.zero_state(3), None, fast=True)
    out.sum().backward()
    assert work.free == {}
    with work.active():
        out, _ = run_cell(cell, projection(cell, torch.randn(3, 9, 7)), cell.zero_state(3), None, fast=True)
    out.sum().backward()  # the backward gives back to the pool its forward took from, wherever it runs
    assert sum(len(b) for b in work.free.values()) == 4


@pytest.mark.parametrize("k", [5, 40])
def test_input_weight_gradient_both_ways(k: int) -> None:
    """Σ_t x_tᵀ d_t: the batched per-step form (small k) and the single multiply (large k)."""
    x, d = torch.randn(30, 8, k, dtype=torch.float64), torch.randn(30, 8, 12, dtype=torch.float64)
    expected = torch.einsum("tbk,tbp->kp", x, d)
    assert_close(input_weight_grad(x.transpose(0, 1).contiguous().transpose(0, 1), d), expected, 1e-12)
