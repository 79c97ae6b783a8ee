"""Real magenta TF checkpoints (../shared/golden/tf/checkpoints) read with our own tensor-bundle reader."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from conftest import GOLDEN_TF, assert_close
from sketchrnn.interop import from_tf_variables
from sketchrnn.interop.tf_bundle import BundleError, crc32c, read_bundle

CHECKPOINTS = GOLDEN_TF / "checkpoints"


def test_crc32c_check_value() -> None:
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value of CRC-32C


@pytest.mark.parametrize("name", ["cond_lstm", "uncond_layer_norm"])
def test_real_checkpoints_give_magentas_own_outputs(name: str) -> None:
    folder = CHECKPOINTS / name
    tensors = read_bundle(folder / "vector-5")
    assert int(tensors["vector_rnn/global_step"]) == 5
    assert float(tensors["vector_rnn/beta1_power"]) == pytest.approx(0.9 ** 6)
    for other in ("vector_rnn_1", "vector_rnn_2"):
        assert int(tensors[f"{other}/global_step"]) == 0
    config = json.loads((folder / "model_config.json").read_text())
    ref = np.load(CHECKPOINTS / f"{name}.reference.npz")
    trainable = {k: v for k, v in tensors.items()
                 if k.startswith("vector_rnn/") and not k.startswith("vector_rnn/vector_rnn/")
                 and k.split("/")[-1] not in ("Variable", "Variable_1", "beta1_power", "beta2_power", "global_step")}
    model = from_tf_variables(trainable, config, scale_factor=float(ref["scale_factor"])).eval()
    x = torch.from_numpy(ref["input_data"]).float()
    lengths = torch.from_numpy(ref["sequence_lengths"])
    with torch.no_grad():
        z = None
        if model.hps.conditional:
            mu, presig = model.encode(x, lengths)
            assert_close(mu, ref["mean"], 1e-5, "mean")
            assert_close(presig, ref["presig"], 1e-5, "presig")
            z = mu
        mix = model.mixture(x[:, :-1], z)
        flat = lambda t: t.reshape(-1, t.shape[-1]).numpy()  # noqa: E731  (batch-major rows, as magenta's)
        assert_close(flat(torch.softmax(mix.pi_logits, -1)), ref["pi"], 1e-5, "pi")
        for ours, theirs in ((mix.mu1, "mu1"), (mix.mu2, "mu2"), (mix.sigma1, "sigma1"), (mix.sigma2, "sigma2"),
                             (mix.rho, "corr")):
            assert_close(flat(ours), ref[theirs], 1e-5, theirs)
        assert_close(flat(torch.softmax(mix.pen_logits, -1)), ref["pen"], 1e-5, "pen")
        eps = torch.zeros(len(x), model.hps.z_size) if model.hps.conditional else None
        loss = model.compute_loss(x, lengths, 0.0, eps=eps)
    assert loss.r_cost.item() == pytest.approx(float(ref["r_cost"]), abs=1e-5)


def test_truncated_and_corrupt_bundles_are_one_line_errors(tmp_path) -> None:
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copy(CHECKPOINTS / "cond_lstm" / f"vector-5{suffix}", tmp_path / f"v{suffix}")
    data = tmp_path / "v.data-00000-of-00001"
    raw = bytearray(data.read_bytes())
    raw[1000] ^= 0xFF
    data.write_bytes(bytes(raw))
    with pytest.raises(BundleError, match=r"v\.data-00000-of-00001: tensor .*checksum mismatch"):
        read_bundle(tmp_path / "v")
    data.write_bytes(bytes(raw[:100]))
    with pytest.raises(BundleError, match="run past the end of the data file"):
        read_bundle(tmp_path / "v")
    index = tmp_path / "v.index"
    index.write_bytes(index.read_bytes()[:-10])
    with pytest.raises(BundleError, match=r"v\.index: not a tensor bundle index") as err:
        read_bundle(tmp_path / "v")
    assert "\n" not in str(err.value)
    with pytest.raises(BundleError, match="No such file"):
        read_bundle(tmp_path / "missing")


@pytest.mark.parametrize("name", ["cond_lstm", "uncond_layer_norm"])
def test_sketchrnn_load_reads_a_magenta_checkpoint_folder(name: str, tmp_path) -> None:
    import sketchrnn

    ref = np.load(CHECKPOINTS / f"{name}.reference.npz")
    with_data = tmp_path / "with_data" / name  # the data its config names, in the folder above it
    shutil.copytree(CHECKPOINTS / name, with_data)
    shutil.copy(GOLDEN_TF / "aaron_sheep_subset_le60.npz", with_data.parent)
    found = sketchrnn.load(with_data)  # the scale factor from the data its config names
    assert found.scale_factor == pytest.approx(float(ref["scale_factor"]), rel=1e-6)
    given = sketchrnn.load(CHECKPOINTS / name, scale_factor=2.5)
    assert given.scale_factor == 2.5
    for a, b in zip(found.parameters(), given.parameters()):
        assert torch.equal(a, b)
    # a pointer file written on another machine: its absolute path falls back to the file name here
    moved = tmp_path / name
    shutil.copytree(CHECKPOINTS / name, moved)
    (moved / "checkpoint").write_text('model_checkpoint_path: "/home/someone/runs/x/vector-5"\n')
    again = sketchrnn.load(moved, scale_factor=2.5)
    for a, b in zip(again.parameters(), given.parameters()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="pass scale_factor="):
        sketchrnn.load(moved)  # its data is not beside it any more


def bitwise_crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli, reflected polynomial 0x82F63B78) one bit at a time: the definition."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_crc32c_of_long_inputs_equals_the_bit_by_bit_value() -> None:
    assert bitwise_crc32c(b"123456789") == 0xE3069283  # the standard check value
    rng = np.random.default_rng(0)
    for n in (4095, 4096, 4097, 100_000, (1 << 20) + 13):  # the chunked path, both chunk lengths, odd tails
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert crc32c(data) == bitwise_crc32c(data)
