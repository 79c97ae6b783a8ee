"""The fused element-wise kernels: built once and cached, float32 maths as exact as PyTorch's, and
a clear fallback without a compiler. (Their agreement with the autograd path in float64, every cell,
with and without dropout, is in test_fast.py.)"""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from conftest import assert_close, max_error
from sketchrnn.model import kernels
from sketchrnn.model.cells import HyperLSTMCell, LayerNormLSTMCell, LSTMCell
from sketchrnn.model.recurrence import dropout_masks, projection, run_cell


def test_float32_activations_match_torch_over_the_whole_range() -> None:
    """σ and tanh of the LSTM kernel against torch's, from −100 to 100 and down to 1e-7 (relative)."""
    k = kernels.for_tensor(torch.zeros(1))
    assert k is not None, "the fused kernels did not build"
    values = torch.cat([torch.linspace(-100, 100, 20001), torch.logspace(-7, 1, 2000), -torch.logspace(-7, 1, 2000)])
    n = len(values)
    a = values.repeat(4)[None].clone()  # one row, gate blocks i, j, f, o
    c, c_next, tc, h = torch.zeros(1, n), torch.empty(1, n), torch.empty(1, n), torch.empty(1, n)
    k.lstm_forward(1, n, a.data_ptr(), c.data_ptr(), None, c_next.data_ptr(), tc.data_ptr(), h.data_ptr(), 1)
    sig, tanh = torch.sigmoid(values.double()), torch.tanh(values.double())
    for got, want, what in [(a[0, :n], sig, "sigmoid"), (a[0, n : 2 * n], tanh, "tanh")]:
        rel = ((got.double() - want).abs() / want.abs().clamp(min=1e-30)).max().item()
        assert rel < 4e-7, f"{what}: relative error {rel:.3g}"  # a few float32 ulps


@pytest.mark.parametrize("cell_class", [LSTMCell, LayerNormLSTMCell, HyperLSTMCell])
def test_float32_kernels_are_as_exact_as_torch_ops(monkeypatch, cell_class) -> None:
    """The fast path in float32 with the kernels and with PyTorch's element-wise operations, large
    pre-activations (saturated gates) and dropout, each against a float64 run: the kernels' largest
    error over the outputs and every gradient is of the same size as PyTorch's (measured: from about
    half of it to 1.5x, by machine and thread count: another exp and tanh, and FMA contractions)."""
    torch.manual_seed(0)
    cell = cell_class(9, 64)
    x = 3 * torch.randn(6, 40, 9)
    masks = dropout_masks((40, 6, 64), 0.8)
    results = {}
    for name, dtype, enabled in [("kernels", torch.float32, True), ("torch", torch.float32, False),
                                 ("float64", torch.float64, False)]:
        monkeypatch.setattr(kernels, "ENABLED", enabled)
        c = copy.deepcopy(cell).to(dtype)
        out, state = run_cell(c, projection(c, x.to(dtype)), c.zero_state(6), masks.to(dtype), fast=True)
        (out * torch.linspace(-1, 1, 64, dtype=dtype)).sum().backward()
        results[name] = [out.detach(), *(s.detach() for s in state), *(p.grad.clone() for p in c.parameters())]
    err = {name: max(max_error(a, b) for a, b in zip(results[name], results["float64"])) for name in ("kernels", "torch")}
    assert err["kernels"] <= max(1e-5, 2 * err["torch"]), err



@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_the_fused_draw_is_mixture_draw(dtype) -> None:
    """The sampler's fused draw against `mixture.draw` (PyTorch's operations) on the same raw outputs
    and random numbers: the same component and pen state in every row (greedy rows, τ = 0, first
    points that may not end), the same offsets to the dtype's rounding."""
    from sketchrnn.model.fast.backends import TORCH_OPS

    torch.manual_seed(0)
    rows, m = 600, 20
    y = (2 * torch.randn(rows, 6 * m + 3)).to(dtype)
    tau = (1.5 * torch.rand(rows)).to(dtype)
    tau[:40] = 0
    greedy = (torch.rand(rows) < 0.2) | (tau == 0)
    first = torch.rand(rows) < 0.5
    u, e = torch.rand(2, rows, dtype=dtype), torch.randn(2, rows, dtype=dtype)
    fused = kernels.fused_for(y, 1.0, 1e-3)
    assert fused is not None, "the fused kernels did not build"
    for barred in (first, None):
        x, pen = fused.draw_points(y, m, tau, greedy, barred, u, e)
        want_x, want_pen = TORCH_OPS.draw_points(y, m, tau, greedy, barred, u, e)
        assert torch.equal(pen, want_pen)
        assert torch.equal(x[:, 2:], want_x[:, 2:])  # the one-hot pen columns
        scale = want_x[:, :2].abs().clamp(min=1)
        assert ((x[:, :2] - want_x[:, :2]).abs() / scale).max() < (1e-12 if dtype == torch.float64 else 1e-5)
        if barred is not None:
            assert not (pen[first] == 2).any()  # a first point never ends the sketch
        free = greedy if barred is None else greedy & ~first
        assert len(set(pen.tolist())) == 3 and (pen[free] == y[free, :3].argmax(-1)).all()

def test_nan_propagates() -> None:
    """A NaN pre-activation gives NaN outputs (the training loop detects non-finite losses)."""
    cell = LayerNormLSTMCell(3, 16)
    x = torch.randn(2, 5, 3)
    x[0, 2, 1] = float("nan")
    out, _ = run_cell(cell, projection(cell, x), cell.zero_state(2), None, fast=True)
    assert torch.isnan(out[0, 2:]).all() and torch.isfinite(out[1]).all() and torch.isfinite(out[0, :2]).all()


def test_build_is_cached_per_source_and_flags(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SKETCHRNN_CACHE", str(tmp_path))
    first = kernels.build()
    assert first.parent == tmp_path and first.exists()
    stamp = first.stat().st_mtime_ns
    assert kernels.build() == first and first.stat().st_mtime_ns == stamp  # found, not rebuilt
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary files left


def test_without_a_compiler_the_fast_path_falls_back(monkeypatch, tmp_path) -> None:
    """No compiler: one warning naming the cause, and training still runs on PyTorch's operations."""
    monkeypatch.setenv("SKETCHRNN_CACHE", str(tmp_path))
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-compiler"))
    monkeypatch.setattr(kernels, "_library", None)
    monkeypatch.setattr(kernels, "_failed", False)
    monkeypatch.setattr(kernels, "_bound", {})
    with pytest.warns(RuntimeWarning, match="fused kernels are not available.*no-such-compiler"):
        assert kernels.for_tensor(torch.zeros(1)) is None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once, not at every step
        cell = LSTMCell(3, 8)
        out, _ = run_cell(cell, projection(cell, torch.randn(2, 4, 3)), cell.zero_state(2), None, fast=True)
        out.sum().backward()
    assert cell.W_hh.grad is not None and torch.isfinite(cell.W_hh.grad).all()


def test_compiler_errors_are_reported(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("SKETCHRNN_CACHE", str(tmp_path))
    fake = tmp_path / "cc"
    fake.write_text("#!/bin/sh\necho 'error: something is wrong' >&2\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(RuntimeError, match=r"cc failed on _kernels.cpp:\nerror: something is wrong"):
        kernels.build(str(fake))
    assert list(tmp_path.glob("*.so")) == []


@pytest.mark.parametrize("cell_class", [LSTMCell, LayerNormLSTMCell, HyperLSTMCell])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inference_step_matches_the_cell(cell_class, dtype) -> None:
    """The sampler's step (`inference_step`, the kernels' or PyTorch's fast step) against the cell's
    own step, 20 steps from a random state."""
    torch.manual_seed(0)
    cell = cell_class(5, 32).to(dtype)
    with torch.no_grad():
        for p in cell.parameters():
            p.add_(0.1 * torch.randn_like(p))
    state = state_ref = cell.split_state(torch.randn(7, cell.state_size, dtype=dtype))
    with torch.inference_mode():
        for t in range(20):
            xw = 2 * torch.randn(7, cell.input_weight().shape[1], dtype=dtype)
            state, state_ref = cell.inference_step(xw, state), cell.step(xw, state_ref, None)
    for got, want in zip(state, state_ref):
        assert_close(got, want, 1e-5 if dtype == torch.float32 else 1e-12)


@pytest.mark.parametrize("cell_class", [LSTMCell, LayerNormLSTMCell, HyperLSTMCell])
def test_rows_split_over_threads_give_the_same_numbers(cell_class) -> None:
    """The kernels split their rows over PyTorch's threads (per-thread sums for ∂γ, ∂β, ∂b): 1 and 3
    threads agree in float64."""
    torch.manual_seed(0)
    cell = cell_class(5, 16).double()
    x = torch.randn(7, 12, 5, dtype=torch.float64)
    masks = dropout_masks((12, 7, 16), 0.8, dtype=torch.float64)
    before, results = torch.get_num_threads(), []
    try:
        for threads in (1, 3):
            torch.set_num_threads(threads)
            cell.zero_grad()
            out, _ = run_cell(cell, projection(cell, x), cell.zero_state(7, dtype=torch.float64), masks, fast=True)
            (out * torch.linspace(-1, 1, 16, dtype=torch.float64)).sum().backward()
            results.append([out.detach(), *(p.grad.clone() for p in cell.parameters())])
    finally:
        torch.set_num_threads(before)
    for a, b in zip(*results):
        assert_close(a, b, 1e-12)
