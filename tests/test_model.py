"""The model's shape, API contracts and saving, on real data where data is needed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sketchrnn
from conftest import DATA
from sketchrnn import HParams, SketchRNN
from sketchrnn.data import load_dataset
from sketchrnn.store import save_model

TINY = HParams(enc_rnn_size=16, dec_rnn_size=32, z_size=8, num_mixture=3, batch_size=4)


@pytest.fixture(scope="module")
def sheep():
    return load_dataset(DATA / "aaron_sheep.npz", max_seq_len=250, seed=0)


def test_default_parameter_count_is_the_papers() -> None:
    model = SketchRNN(HParams())
    table = model.parameter_table()
    print("\n".join(f"{name:>18s} {count:>10,d}" for name, count in table))
    assert dict(table) == {
        "encoder forward": 268_288,
        "encoder backward": 268_288,
        "mu": 65_664,
        "presig": 65_664,
        "initial state": 132_096,
        "decoder": 1_323_008,
        "output": 63_099,
    }
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == 2_186_107


def test_initialisation_follows_the_reference() -> None:
    torch.manual_seed(0)
    model = SketchRNN(HParams())
    w_hh = model.dec_cell.W_hh.detach()
    n = model.hps.dec_rnn_size
    for k in range(4):  # each gate block of W_hh is orthogonal
        block = w_hh[:, k * n : (k + 1) * n]
        assert torch.allclose(block.T @ block, torch.eye(n), atol=1e-4)
    assert torch.count_nonzero(model.dec_cell.bias) == 0
    limit = (6 / (133 + 2048)) ** 0.5  # glorot-uniform W_xh [133, 2048]
    assert model.dec_cell.W_xh.abs().max() <= limit and model.dec_cell.W_xh.abs().max() > 0.9 * limit
    assert model.output.bias.abs().max() <= (3 / 123) ** 0.5 and model.output.bias.abs().max() > 0.1
    assert model.enc_mu.weight.std().item() == pytest.approx(0.001, rel=0.05)
    assert torch.count_nonzero(model.init_state.bias) == 0


def test_mixture_shapes_and_row_meaning(sheep) -> None:
    torch.manual_seed(0)
    model = SketchRNN(TINY.replace(max_seq_len=sheep.max_seq_len)).eval()
    batch = sheep.valid.get_batch(0, 4)
    x = torch.from_numpy(batch.inputs)
    z = torch.randn(4, TINY.z_size)
    mix = model.mixture(x, z)
    assert mix.pi.shape == (4, x.shape[1], 3) and mix.pen.shape == (4, x.shape[1], 3)
    assert torch.allclose(mix.pi.sum(-1), torch.ones(4, x.shape[1]))
    assert (mix.sigma1 > 0).all() and (mix.rho.abs() < 1).all()
    # row t depends only on inputs up to t: changing row t+1 leaves rows 0..t unchanged
    x2 = x.clone()
    x2[:, 10] += 1.0
    mix2 = model.mixture(x2, z)
    assert torch.equal(mix.mu1[:, :10], mix2.mu1[:, :10]) and not torch.equal(mix.mu1[:, 10], mix2.mu1[:, 10])


def test_conditional_model_requires_z() -> None:
    model = SketchRNN(TINY)
    x = torch.zeros(2, 5, 5)
    with pytest.raises(ValueError, match="conditional"):
        model.mixture(x)
    unconditional = SketchRNN(TINY.replace(conditional=False))
    a = unconditional.mixture(x)
    b = unconditional.mixture(x, torch.ones(2, 8))
    assert torch.equal(a.pi, b.pi)  # z is ignored


@pytest.mark.parametrize("kind", [list, np.int16, np.int32, np.int64, torch.int32, torch.int64])
def test_lengths_of_any_integer_type(sheep, kind) -> None:
    torch.manual_seed(0)
    model = SketchRNN(TINY.replace(max_seq_len=sheep.max_seq_len)).eval()
    batch = sheep.valid.get_batch(1, 4)
    x = torch.from_numpy(batch.inputs)
    if kind is list:
        lengths = [int(v) for v in batch.lengths]
    elif isinstance(kind, torch.dtype):
        lengths = torch.tensor(batch.lengths, dtype=kind)
    else:
        lengths = batch.lengths.astype(kind)
    mu, presig = model.encode(x, lengths)
    ref_mu, _ = model.encode(x, torch.from_numpy(batch.lengths))
    assert torch.equal(mu, ref_mu) and presig.shape == (4, TINY.z_size)
    with pytest.raises(ValueError, match="integers"):
        model.encode(x, batch.lengths.astype(np.float32))


def test_encoder_ignores_padding(sheep) -> None:
    torch.manual_seed(0)
    model = SketchRNN(TINY.replace(max_seq_len=sheep.max_seq_len)).eval()
    batch = sheep.valid.get_batch(0, 4)
    x = torch.from_numpy(batch.inputs)
    noisy = x.clone()
    for i, n in enumerate(batch.lengths):
        noisy[i, n + 1 :] = torch.randn_like(noisy[i, n + 1 :])
    assert torch.allclose(model.encode(x, batch.lengths)[0], model.encode(noisy, batch.lengths)[0])


def test_pen_mask_is_an_argument_not_a_mode(sheep) -> None:
    torch.manual_seed(0)
    hps = TINY.replace(max_seq_len=sheep.max_seq_len, use_recurrent_dropout=False)
    model = SketchRNN(hps)
    batch = sheep.valid.get_batch(0, 4)
    x = torch.from_numpy(batch.inputs)
    eps = torch.randn(4, hps.z_size)
    train_mode = model.train().compute_loss(x, batch.lengths, 0.5, eps=eps)
    eval_mode = model.eval().compute_loss(x, batch.lengths, 0.5, eps=eps)
    masked = model.compute_loss(x, batch.lengths, 0.5, eps=eps, mask_pen=True)
    assert torch.equal(train_mode.cost, eval_mode.cost)  # no dropout: train()/eval() change nothing
    assert masked.r_cost < eval_mode.r_cost  # the padding's pen terms are gone
    # masked terms are zero after each sketch's end
    for i, n in enumerate(batch.lengths):
        assert torch.count_nonzero(masked.terms[i, n + 1 :]) == 0
    assert torch.equal(masked.kl_cost, eval_mode.kl_cost)


def test_recurrent_dropout_only_in_training(sheep) -> None:
    torch.manual_seed(0)
    model = SketchRNN(TINY.replace(max_seq_len=sheep.max_seq_len))
    batch = sheep.valid.get_batch(0, 4)
    x = torch.from_numpy(batch.inputs)
    eps = torch.zeros(4, TINY.z_size)
    model.eval()
    a = model.compute_loss(x, batch.lengths, 0.5, eps=eps).cost
    b = model.compute_loss(x, batch.lengths, 0.5, eps=eps).cost
    model.train()
    c = model.compute_loss(x, batch.lengths, 0.5, eps=eps).cost
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_kl_floor_and_cost(sheep) -> None:
    torch.manual_seed(0)
    model = SketchRNN(TINY.replace(max_seq_len=sheep.max_seq_len)).eval()
    batch = sheep.valid.get_batch(0, 4)
    # with ε = 0, σ̂ reaches the cost only through the KL term
    loss = model.compute_loss(torch.from_numpy(batch.inputs), batch.lengths, 0.25, eps=torch.zeros(4, TINY.z_size))
    assert loss.kl_raw < TINY.kl_tolerance and loss.kl_cost.item() == pytest.approx(TINY.kl_tolerance)
    assert loss.cost.item() == pytest.approx(loss.r_cost.item() + 0.25 * TINY.kl_tolerance)
    loss.cost.backward()
    assert torch.count_nonzero(model.enc_presig.bias.grad) == 0  # KL below its floor has no gradient


def test_log_likelihood_per_sketch(sheep) -> None:
    torch.manual_seed(0)
    model = SketchRNN(TINY.replace(max_seq_len=sheep.max_seq_len)).eval()
    batch = sheep.valid.get_batch(0, 4)
    x = torch.from_numpy(batch.inputs)
    ll = model.log_likelihood(x, batch.lengths)
    assert ll.shape == (4,) and torch.isfinite(ll).all()
    one = model.log_likelihood(x[1:2], batch.lengths[1:2])
    assert one.item() == pytest.approx(ll[1].item(), rel=1e-5)


def test_save_and_load_round_trip(tmp_path, sheep) -> None:
    torch.manual_seed(0)
    model = SketchRNN(TINY.replace(dec_model="hyper", max_seq_len=sheep.max_seq_len), scale_factor=sheep.scale_factor)
    save_model(model, tmp_path / "m")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["model.json", "model.safetensors"]
    loaded = sketchrnn.load(tmp_path / "m")
    assert loaded.hps == model.hps and loaded.scale_factor == pytest.approx(sheep.scale_factor)
    for (ka, va), (kb, vb) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


def test_bad_saved_models_give_clear_errors(tmp_path) -> None:
    model = SketchRNN(TINY)
    directory = save_model(model, tmp_path / "m")
    (directory / "model.safetensors").write_bytes(b"not safetensors at all")
    with pytest.raises(ValueError) as err:
        sketchrnn.load(directory)
    assert "model.safetensors" in str(err.value) and "\n" not in str(err.value)
    save_model(model, directory)
    (directory / "model.json").write_text('{"format": "sketchrnn", "hparams": {"z_size": "big"}}')
    with pytest.raises(ValueError, match="z_size"):
        sketchrnn.load(directory)
    with pytest.raises(FileNotFoundError, match="no such model"):
        sketchrnn.load(tmp_path / "nowhere")
    # a folder that exists but holds models is not one: the message names what it holds
    with pytest.raises(FileNotFoundError, match=r"not a model \(expected .*\); it holds .*m$"):
        sketchrnn.load(tmp_path)
    (tmp_path / "cat.gen.json").write_text("[]")
    with pytest.raises(FileNotFoundError, match=r"; it holds .*cat\.gen\.json, .*m$"):
        sketchrnn.load(tmp_path)
    (tmp_path / "notes.npz").write_bytes(b"PK")
    with pytest.raises(FileNotFoundError, match=r"notes.npz: not a model \(expected [^;]*\)$"):
        sketchrnn.load(tmp_path / "notes.npz")
