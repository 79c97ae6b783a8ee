"""Tests for sketchrnn.generate: sampling, reconstruction and interpolation on real models.

Two real models: the official unconditional sheep model of magenta-js (`sheep.gen.json`) and a
small conditional model trained here for 40 steps on 40 real sheep. The bounds on lengths and
offset spreads below were measured on the sheep model (32 sketches, seeds 0-2) and carry a wide
margin.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import sketchrnn
from conftest import GOLDEN_TF, MODELS_JS
from sketchrnn import HParams
from sketchrnn.data import load_npz
from sketchrnn.generate import encode, lerp, slerp
from sketchrnn.train import train

SUBSET = GOLDEN_TF / "aaron_sheep_subset_le60.npz"
SHEEP = MODELS_JS / "sheep.gen.json"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def sheep():
    return sketchrnn.load(SHEEP)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small conditional model: 40 steps of the tiny preset on real sheep."""
    run = tmp_path_factory.mktemp("generate") / "run"
    train(run, HParams.preset("tiny").replace(save_every=20), data=[SUBSET], steps=40, seed=0, progress=False)
    return sketchrnn.load(run)


@pytest.fixture(scope="module")
def test_sketches():
    return [np.asarray(s, dtype=np.float64) for s in load_npz(SUBSET)["test"]]


@pytest.fixture(scope="module")
def sheep_samples(sheep):
    """32 sketches at τ = 0.1 and at τ = 1.0 from the official sheep model."""
    return {tau: sheep.sample(32, temperature=tau, seed=0) for tau in (0.1, 1.0)}


def assert_valid_sketches(sketches, max_len: int) -> None:
    assert isinstance(sketches, list) and sketches
    for i, s in enumerate(sketches):
        assert isinstance(s, np.ndarray), f"sketch {i} is a {type(s)}"
        assert s.dtype.kind == "f", f"sketch {i}: dtype {s.dtype}"
        assert s.ndim == 2 and s.shape[1] == 3, f"sketch {i}: shape {s.shape}"
        assert 1 <= len(s) <= max_len, f"sketch {i}: {len(s)} rows, N_max {max_len}"
        assert np.all(np.isfinite(s)), f"sketch {i} is not finite"
        assert set(np.unique(s[:, 2]).tolist()) <= {0.0, 1.0}, f"sketch {i}: pen values {np.unique(s[:, 2])}"
        assert s[-1, 2] == 1, f"sketch {i} does not lift the pen at its end"


def assert_same_sketches(a, b) -> None:
    assert len(a) == len(b)
    for i, (x, y) in enumerate(zip(a, b)):
        assert x.shape == y.shape, f"sketch {i}: {x.shape} != {y.shape}"
        assert np.array_equal(x, y), f"sketch {i} differs"


# ---------------------------------------------------------------------------- what samples are
def test_samples_are_valid_stroke3_in_data_units(sheep, sheep_samples):
    max_len = sheep.hps.max_seq_len
    for tau, sketches in sheep_samples.items():
        assert len(sketches) == 32
        assert_valid_sketches(sketches, max_len)
    lengths = [len(s) for s in sheep_samples[1.0]]
    assert len(set(lengths)) > 5, f"every sketch has the same length: {lengths}"
    assert min(lengths) < max_len, "no sketch ended on its own"
    # data units: offsets are the model's normalised offsets times the scale factor (63.1 for sheep);
    # measured std / scale factor at τ = 1: 0.80 - 0.88
    offsets = np.concatenate([s[:, :2] for s in sheep_samples[1.0]])
    ratio = offsets.std() / sheep.scale_factor
    assert 0.5 < ratio < 1.5, f"offset std is {ratio:.3f} × the scale factor"


def test_conditional_samples_are_valid(trained):
    sketches = trained.sample(8, temperature=1.0, seed=0)
    assert len(sketches) == 8
    assert_valid_sketches(sketches, trained.hps.max_seq_len)
    assert trained.hps.max_seq_len == 60


def test_temperature_changes_length_and_spread(sheep_samples):
    # measured (3 seeds): mean length 139-140 at τ = 0.1 and 101-107 at τ = 1.0;
    # offset std 41-42 and 50-55 data units
    cold, hot = sheep_samples[0.1], sheep_samples[1.0]
    cold_len, hot_len = np.mean([len(s) for s in cold]), np.mean([len(s) for s in hot])
    assert cold_len > hot_len + 15, f"mean length {cold_len:.1f} at τ=0.1, {hot_len:.1f} at τ=1"
    cold_std = np.concatenate([s[:, :2] for s in cold]).std()
    hot_std = np.concatenate([s[:, :2] for s in hot]).std()
    assert hot_std > 1.08 * cold_std, f"offset std {cold_std:.2f} at τ=0.1, {hot_std:.2f} at τ=1"


# ---------------------------------------------------------------------------- randomness
def test_seed_makes_samples_repeatable(sheep):
    a = sheep.sample(4, temperature=1.0, seed=5)
    b = sheep.sample(4, temperature=1.0, seed=5)
    c = sheep.sample(4, temperature=1.0, seed=6)
    assert_same_sketches(a, b)
    assert any(x.shape != y.shape or not np.array_equal(x, y) for x, y in zip(a, c)), "seeds 5 and 6 agree"


def test_greedy_and_zero_temperature_are_deterministic(sheep, trained):
    zero = sheep.sample(2, temperature=0.0, seed=1)
    greedy = sheep.sample(2, greedy=True, seed=2)
    greedy_hot = sheep.sample(2, temperature=1.0, greedy=True, seed=3)
    assert_same_sketches(zero, greedy)
    assert_same_sketches(zero, greedy_hot)
    assert_same_sketches([zero[0]], [zero[1]])  # unconditional and greedy: one sketch only
    assert_valid_sketches(zero, sheep.hps.max_seq_len)

    z = np.random.default_rng(3).standard_normal((3, trained.hps.z_size))
    assert_same_sketches(trained.sample(3, temperature=0.0, z=z, seed=1), trained.sample(3, greedy=True, z=z, seed=2))


def test_negative_temperature_and_empty_batch_are_refused(sheep):
    with pytest.raises(ValueError, match="temperature"):
        sheep.sample(1, temperature=-0.5)
    with pytest.raises(ValueError, match="n must be"):
        sheep.sample(0)


def test_finished_sketches_leave_the_batch_without_disturbing_the_others(trained):
    z = np.random.default_rng(0).standard_normal((8, trained.hps.z_size)).astype(np.float32)
    batch = trained.sample(8, greedy=True, z=z)
    alone = [trained.sample(1, greedy=True, z=z[i])[0] for i in range(8)]
    lengths = [len(s) for s in batch]
    assert len(set(lengths)) >= 2 and min(lengths) < trained.hps.max_seq_len, \
        f"no sketch left the batch early: {lengths}"
    for i, (x, y) in enumerate(zip(batch, alone)):
        assert x.shape == y.shape, f"sketch {i}: {len(x)} rows in the batch, {len(y)} alone"
        assert np.array_equal(x[:, 2], y[:, 2]), f"sketch {i}: pen states differ"
        # a batch of 8 and a batch of 1 take different float32 matrix kernels: rounding only
        # (measured 7e-6 data units, scale factor 22)
        np.testing.assert_allclose(x[:, :2], y[:, :2], rtol=0, atol=1e-4 * trained.scale_factor,
                                   err_msg=f"sketch {i}")


# ---------------------------------------------------------------------------- latent vectors
def test_sample_takes_one_z_or_one_per_sketch(trained):
    size = trained.hps.z_size
    z1 = np.random.default_rng(1).standard_normal(size)
    same = trained.sample(3, greedy=True, z=z1)
    assert_same_sketches(same[:1], same[1:2])
    assert_same_sketches(same[:1], same[2:])

    zs = np.random.default_rng(2).standard_normal((4, size))
    from_numpy = trained.sample(4, temperature=0.5, z=zs, seed=0)
    from_torch = trained.sample(4, temperature=0.5, z=torch.from_numpy(zs).float(), seed=0)
    assert_valid_sketches(from_numpy, trained.hps.max_seq_len)
    assert_same_sketches(from_numpy, from_torch)

    for bad in (np.zeros(size + 1), np.zeros((5, size)), np.zeros((4, size - 1)), np.zeros((2, 2, size))):
        with pytest.raises(ValueError, match="z must have shape"):
            trained.sample(4, z=bad)


def test_encode_gives_mean_or_drawn_latents(trained, test_sketches):
    size = trained.hps.z_size
    mu = encode(trained, test_sketches[:3])
    assert tuple(mu.shape) == (3, size) and torch.isfinite(mu).all()
    # padding to the longest sketch of a batch does not change a sketch's μ
    for i in range(3):
        alone = encode(trained, [test_sketches[i]])[0]
        np.testing.assert_allclose(alone.numpy(), mu[i].numpy(), rtol=0, atol=1e-5)
    drawn = encode(trained, test_sketches[:3], use_mean=False, seed=0)
    again = encode(trained, test_sketches[:3], use_mean=False, seed=0)
    assert torch.equal(drawn, again)
    assert not torch.allclose(drawn, mu)
    with pytest.raises(ValueError, match=r"\[n, 3\]"):
        encode(trained, [np.zeros((4, 2))])
    with pytest.raises(ValueError, match="no sketches"):
        encode(trained, [])


def test_reconstruct_returns_one_sketch_per_input(trained, test_sketches):
    originals = test_sketches[:3]
    out = trained.reconstruct(originals, temperature=0.1, seed=0)
    assert len(out) == 3
    assert_valid_sketches(out, trained.hps.max_seq_len)
    assert_same_sketches(out, trained.reconstruct(originals, temperature=0.1, seed=0))
    # greedy reconstruction is decoding the mean latent vector greedily
    greedy = trained.reconstruct(originals, greedy=True)
    assert_same_sketches(greedy, trained.sample(3, greedy=True, z=encode(trained, originals)))
    sampled_z = trained.reconstruct(originals, temperature=0.5, use_mean=False, seed=4)
    assert len(sampled_z) == 3
    assert_valid_sketches(sampled_z, trained.hps.max_seq_len)


def test_interpolate_between_sketches_and_latent_vectors(trained, test_sketches):
    a, b = test_sketches[0], test_sketches[1]
    row = trained.interpolate(a, b, steps=5)
    assert len(row) == 5
    assert_valid_sketches(row, trained.hps.max_seq_len)

    za = encode(trained, [a])[0].double().numpy()
    zb = encode(trained, [b])[0].double().numpy()
    from_sketches = trained.interpolate(a, b, steps=4, method="slerp", greedy=True)
    from_vectors = trained.interpolate(za, zb, steps=4, method="slerp", greedy=True)
    assert_same_sketches(from_sketches, from_vectors)
    mixed = trained.interpolate(a, zb, steps=4, method="slerp", greedy=True)
    assert_same_sketches(from_sketches, mixed)

    # the row decodes exactly the latent path: its ends are the two vectors
    path = np.stack([lerp(za, zb, t) for t in np.linspace(0, 1, 6)])
    assert_same_sketches(trained.interpolate(za, zb, steps=6, method="lerp", greedy=True),
                         trained.sample(6, greedy=True, z=path))
    assert np.array_equal(path[0], za) and np.array_equal(path[-1], zb)

    with pytest.raises(ValueError, match="steps"):
        trained.interpolate(za, zb, steps=1)
    with pytest.raises(ValueError, match="method"):
        trained.interpolate(za, zb, steps=3, method="cubic")
    with pytest.raises(ValueError, match="latent vector"):
        trained.interpolate(za[:-1], zb, steps=3)


def test_unconditional_model_cannot_encode(sheep, test_sketches):
    a, b = test_sketches[0], test_sketches[1]
    with pytest.raises(ValueError, match="unconditional"):
        sheep.reconstruct([a])
    with pytest.raises(ValueError, match="unconditional"):
        sheep.interpolate(a, b, steps=3)
    with pytest.raises(ValueError, match="unconditional"):
        encode(sheep, [a])
    # latent vectors mean nothing to it either: refused, not silently ignored
    z = np.ones(sheep.hps.z_size)
    with pytest.raises(ValueError, match="unconditional"):
        sheep.interpolate(z, z + 1, steps=3)
    with pytest.raises(ValueError, match="unconditional"):
        sheep.sample(2, z=z)


# ---------------------------------------------------------------------------- lerp and slerp
def test_slerp_ends_norm_and_degenerate_pairs():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(16), rng.standard_normal(16)
    np.testing.assert_allclose(slerp(a, b, 0.0), a, rtol=0, atol=1e-12)
    np.testing.assert_allclose(slerp(a, b, 1.0), b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(lerp(a, b, 0.5), (a + b) / 2, rtol=0, atol=1e-12)

    b_equal = b / np.linalg.norm(b) * np.linalg.norm(a)
    for t in np.linspace(0, 1, 11):
        assert np.linalg.norm(slerp(a, b_equal, t)) == pytest.approx(np.linalg.norm(a), rel=1e-9)
    # orthogonal unit vectors: the midpoint is their sum over √2
    e1, e2 = np.eye(16)[0], np.eye(16)[1]
    np.testing.assert_allclose(slerp(e1, e2, 0.5), (e1 + e2) / np.sqrt(2), rtol=0, atol=1e-12)

    for t in (0.0, 0.3, 1.0):
        same = slerp(a, a.copy(), t)
        assert np.all(np.isfinite(same)), f"slerp of identical vectors at t={t} is not finite"
        np.testing.assert_allclose(same, a, rtol=0, atol=1e-9)
        opposite = slerp(a, -a, t)
        assert np.all(np.isfinite(opposite))
        # from or to the prior's mean, z = 0: no direction, so the straight line
        zero = np.zeros(16)
        np.testing.assert_allclose(slerp(zero, a, t), t * a, rtol=0, atol=1e-12)
        np.testing.assert_allclose(slerp(a, zero, t), (1 - t) * a, rtol=0, atol=1e-12)
