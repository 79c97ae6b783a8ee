"""magenta-js ``.vae.json`` models: our reader and writer against the original library, ``sketch_rnn.js``.

The files are written here from conditional LSTM models of ours (num_mixture = 20, which the
library assumes; random weights from a seed, quantised as the format does) and then read twice:
by `sketchrnn.load`, and by ``../shared/js/sketch_rnn.js`` under Node (pixel factor 1, through
``tests/js/vae_reference.js``). Both encode real drawings (the aaron_sheep test split) with
``encode_to_mu_sigma``, and both drive the decoder from one fixed z, as the library's
``get_init_state_from_latent_vector``, ``update`` and ``get_pdf`` do, from the start token
(0, 0, 1, 0, 0) through the drawing's points.

Measured here (max error: absolute below 1, relative above; 3 drawings each):

- small model (enc 32, dec 64, z 16), whole drawings (74–99 points): ours against the library
  7e-8 (μ, σ), 2e-7 (initial h, c), 3.4e-7 (pdfs; absolute 6.1e-7).
- large model (enc 256, dec 512, z 128), the first 50 points: 1.4e-7 (μ, σ), 3.5e-7 (initial
  h, c), 7.0e-7 (pdfs; absolute 1.2e-6). The library's own drift against a float64 computation of the same file (our
  model in float64) is 2e-15: it keeps the weights in float32 arrays, but numjs's
  ``concatenate`` returns a plain (float64) JavaScript array, so each LSTM step [x, h] W and
  everything after it is computed in float64. What drift there is is ours (float32): 7.0e-7
  against float64. (The relative error of the smallest pdf entries, 1e-6 and below, reaches
  1e-3 either way.)

The library's ``tanh`` is ``(e^2x − 1)/(e^2x + 1)``, NaN above about 350; real drawings divided by
the data's own scale factor keep every argument far below that.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch

import sketchrnn
from conftest import DATA, ROOT, SHARED, max_error
from sketchrnn import HParams, SketchRNN
from sketchrnn.data import load_npz
from sketchrnn.interop import (
    ModelFileError,
    read_vae_json,
    to_tf_variables,
    write_gen_json,
    write_vae_json,
)
from sketchrnn.interop.magenta_js import VAE_BLOBS

TOL = 1e-5
FLOAT64_TOL = 1e-9  # the library against our float64 model: both compute in float64 (see above)
SCRIPT = ROOT / "tests" / "js" / "vae_reference.js"
LIB = SHARED / "js"
HALF_STEP = 10.0 / 32767 / 2


@lru_cache(maxsize=None)
def sheep() -> dict[str, list[np.ndarray]]:
    return load_npz(DATA / "aaron_sheep.npz")


@lru_cache(maxsize=None)
def scale_factor() -> float:
    """The std of aaron_sheep's training offsets (after the ±1000 clamp): the drawings' own units."""
    train = sheep()["train"]
    return float(np.std(np.concatenate([np.clip(s[:, :2], -1000, 1000).reshape(-1) for s in train]).astype(np.float32)))


def make_model(enc: int, dec: int, z: int, seed: int) -> SketchRNN:
    """A conditional LSTM model with random weights; μ, σ̂, the initial-state layer and the LSTM biases
    are drawn larger than magenta's initialisation (N(0, 0.001²), zeros) so that they count."""
    torch.manual_seed(seed)
    hps = HParams(enc_rnn_size=enc, dec_rnn_size=dec, z_size=z, num_mixture=20, max_seq_len=250)
    model = SketchRNN(hps, scale_factor=scale_factor())
    with torch.no_grad():
        for layer in (model.enc_mu, model.enc_presig, model.init_state):
            layer.weight.normal_(0.0, layer.in_features ** -0.5)
            layer.bias.normal_(0.0, 0.1)
        for cell in (model.enc_fw, model.enc_bw, model.dec_cell):
            cell.bias.normal_(0.0, 0.1)
    return model.eval()


def stroke5(sketch: np.ndarray) -> np.ndarray:
    """stroke-3 rows (data units) as the library's stroke-5 rows, no end-of-sketch row."""
    s = np.asarray(sketch, dtype=np.float64)
    return np.stack([s[:, 0], s[:, 1], 1 - s[:, 2], s[:, 2], np.zeros(len(s))], axis=1)


def node() -> str:
    exe = shutil.which("node")
    if exe is None:
        pytest.fail("node is not installed: the VAE parity tests run sketch_rnn.js under Node "
                    "(apt-get install nodejs; .ci/run installs it where it is missing)")
    return exe


def run_library(model_path: Path, z: np.ndarray, drawings: list[np.ndarray], tmp: Path) -> dict:
    request = {"model": str(model_path), "pixel_factor": 1, "z": [float(v) for v in z],
               "drawings": [d.tolist() for d in drawings]}
    (tmp / "request.json").write_text(json.dumps(request))
    proc = subprocess.run([node(), str(SCRIPT), str(LIB), str(tmp / "request.json"), str(tmp / "out.json")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"sketch_rnn.js failed:\n{proc.stderr[-3000:]}"
    return json.loads((tmp / "out.json").read_text())


def ours(model: SketchRNN, z: np.ndarray, rows: np.ndarray, dtype: torch.dtype) -> dict[str, np.ndarray]:
    """μ, σ, the initial state and the per-step pdfs (the library's layout) of one drawing."""
    x = np.concatenate([[[0.0, 0.0, 1.0, 0.0, 0.0]], rows])
    x[1:, :2] /= model.scale_factor
    x_t = torch.tensor(x, dtype=dtype)[None]
    z_t = torch.tensor(np.asarray(z)[None], dtype=dtype)
    with torch.no_grad():
        mu, presig = model.encode(x_t, [len(rows)])
        c, h = model.initial_state(z_t, 1)
        mix = model.mixture(x_t, z_t)
    parts = (mix.pi, mix.mu1, mix.mu2, mix.sigma1, mix.sigma2, mix.rho, mix.pen)
    return {"mu": mu[0].numpy(), "sigma": torch.exp(presig[0] / 2).numpy(), "h": h[0].numpy(),
            "c": c[0].numpy(), "pdfs": torch.cat([p[0] for p in parts], dim=-1).numpy()}


def library(result: dict) -> dict[str, np.ndarray]:
    return {"mu": np.array(result["mu"]), "sigma": np.array(result["sigma"]),
            "h": np.array(result["init"]["h"]), "c": np.array(result["init"]["c"]),
            "pdfs": np.array([np.concatenate(step) for step in result["pdfs"]])}


def compare(enc: int, dec: int, z_size: int, seed: int, n_points: int | None, tmp: Path,
            version5: bool = False) -> dict[str, dict[str, float]]:
    """Write a model, run both readers, return the max errors per quantity (ours32, ours64 vs library)."""
    model = make_model(enc, dec, z_size, seed)
    model.tanh_z_for_initial_state = version5
    path = write_vae_json(model, tmp / "model.vae.json", info={"name": "test"})
    z = np.random.RandomState(seed).randn(z_size)
    drawings = [stroke5(s[:n_points]) for s in sheep()["test"][:3]]
    js = run_library(path, z, drawings, tmp)
    assert js["version"] == (5 if version5 else 6)
    loaded = sketchrnn.load(path)
    assert loaded.tanh_z_for_initial_state == version5
    assert js["scale_factor"] == loaded.scale_factor == pytest.approx(scale_factor())
    wide = sketchrnn.load(path).double()
    errors: dict[str, dict[str, float]] = {"ours": {}, "float64": {}, "ours_vs_float64": {}}
    for rows, result in zip(drawings, js["drawings"]):
        ref = library(result)
        assert np.all(np.isfinite(ref["pdfs"]))
        a, b = ours(loaded, z, rows, torch.float32), ours(wide, z, rows, torch.float64)
        assert ref["pdfs"].shape == a["pdfs"].shape == (len(rows) + 1, 123)
        for key in ref:
            for name, err in (("ours", max_error(a[key], ref[key])), ("float64", max_error(b[key], ref[key])),
                              ("ours_vs_float64", max_error(a[key], b[key]))):
                errors[name][key] = max(errors[name].get(key, 0.0), err)
    return errors


def test_small_vae_model_matches_sketch_rnn_js(tmp_path: Path, one_thread) -> None:
    errors = compare(32, 64, 16, seed=1, n_points=None, tmp=tmp_path)
    for key, err in errors["ours"].items():
        assert err <= TOL, f"{key}: ours against sketch_rnn.js {err:.3g} > {TOL:g} ({errors})"
    for key, err in errors["float64"].items():
        assert err <= FLOAT64_TOL, f"{key}: our float64 model against sketch_rnn.js {err:.3g} ({errors})"


def test_large_vae_model_within_float32_drift_of_sketch_rnn_js(tmp_path: Path, one_thread) -> None:
    # the paper's sizes (enc 256, dec 512, z 128, M 20) over 50 points
    errors = compare(256, 512, 128, seed=2, n_points=50, tmp=tmp_path)
    for key in errors["ours"]:
        drift = errors["float64"][key] + errors["ours_vs_float64"][key]  # both sides' own distance from float64
        assert errors["float64"][key] <= FLOAT64_TOL, f"{key}: sketch_rnn.js against float64 ({errors})"
        assert errors["ours_vs_float64"][key] <= TOL, f"{key}: our float32 against float64 ({errors})"
        assert errors["ours"][key] <= max(drift * 1.01, FLOAT64_TOL), f"{key}: beyond the float32 drift ({errors})"
        assert errors["ours"][key] <= TOL, f"{key}: ours against sketch_rnn.js ({errors})"


def test_version_5_file_passes_z_through_tanh_first(tmp_path: Path, one_thread) -> None:
    errors = compare(32, 64, 16, seed=3, n_points=30, tmp=tmp_path, version5=True)
    for key, err in errors["ours"].items():
        assert err <= TOL, f"{key}: {err:.3g} ({errors})"
    # and the rule matters: without it the initial state is another one
    model = sketchrnn.load(tmp_path / "model.vae.json")
    z = torch.tensor(np.random.RandomState(3).randn(1, 16) * 2, dtype=torch.float32)
    with torch.no_grad():
        c5, _ = model.initial_state(z, 1)
        model.tanh_z_for_initial_state = False
        c6, _ = model.initial_state(z, 1)
    assert float((c5 - c6).abs().max()) > 1e-3


# ------------------------------------------------------------------ the format, without Node
def test_round_trip_is_the_quantisation(tmp_path: Path) -> None:
    model = make_model(32, 64, 16, seed=4)
    with torch.no_grad():
        model.output.bias[0] = 12.5  # beyond ±10: clipped, as in the official files
        model.output.bias[1] = -40.0
    path = write_vae_json(model, tmp_path / "m.vae.json", info={"name": "round", "mode": 2, "r_loss": -1.0})
    content = json.loads(path.read_text())
    info, dims, blobs = content
    assert info["mode"] == 0 and info["version"] == 6 and info["name"] == "round" and info["r_loss"] == -1.0
    assert info["max_seq_len"] == 250 and info["scale_factor"] == model.scale_factor
    assert len(dims) == len(blobs) == 17
    info2, weights = read_vae_json(path)
    theirs, back = to_tf_variables(model), to_tf_variables(sketchrnn.load(path))
    assert list(weights) == list(VAE_BLOBS)
    for blob, tf_name in VAE_BLOBS.items():
        expected = np.clip(theirs[tf_name], -10, 10)
        assert list(weights[blob].shape) == list(expected.shape)
        assert np.abs(back[tf_name] - expected).max() <= HALF_STEP * 1.001, tf_name
        raw = np.frombuffer(base64.b64decode(blobs[list(VAE_BLOBS).index(blob)]), dtype="<i2")
        exact = theirs[tf_name].reshape(-1).astype(np.float64) * 32767 / 10  # not float32: ties would round apart
        assert np.array_equal(raw, np.clip(np.round(exact), -32767, 32767)), tf_name
    assert back["vector_rnn/RNN/output_b"][0] == pytest.approx(10.0) and back["vector_rnn/RNN/output_b"][1] == -10.0


def test_gen_writer_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(5)
    model = SketchRNN(HParams(conditional=False, dec_rnn_size=32, num_mixture=3, max_seq_len=40), scale_factor=7.5)
    path = write_gen_json(model, tmp_path / "m.gen.json")
    loaded = sketchrnn.load(path)
    assert not loaded.hps.conditional and loaded.hps.num_mixture == 3 and loaded.scale_factor == 7.5
    a, b = to_tf_variables(model), to_tf_variables(loaded)
    assert set(a) == set(b) and max(float(np.abs(a[k] - b[k]).max()) for k in a) <= HALF_STEP * 1.001
    with pytest.raises(ValueError, match="write_vae_json needs a conditional model"):
        write_vae_json(model, tmp_path / "x.vae.json")
    with pytest.raises(ValueError, match="write_gen_json needs an unconditional model"):
        write_gen_json(make_model(8, 16, 4, seed=0), tmp_path / "x.gen.json")
    hyper = SketchRNN(HParams(dec_model="layer_norm", enc_rnn_size=8, dec_rnn_size=16, z_size=4, num_mixture=2))
    with pytest.raises(ValueError, match="dec_model=layer_norm"):
        write_vae_json(hyper, tmp_path / "x.vae.json")


def test_encode_reconstruct_interpolate_on_a_loaded_model(tmp_path: Path) -> None:
    from sketchrnn.generate import encode

    model = make_model(32, 64, 16, seed=6)
    loaded = sketchrnn.load(write_vae_json(model, tmp_path / "m.vae.json"))
    assert loaded.hps.conditional and loaded.hps.z_size == 16 and loaded.hps.enc_rnn_size == 32
    sketches = [np.asarray(s, dtype=np.float32) for s in sheep()["test"][:2]]
    z = encode(loaded, sketches)
    rows = stroke5(sketches[0])
    expected = ours(loaded, np.zeros(16), rows, torch.float32)["mu"]
    assert np.abs(z[0].numpy() - expected).max() <= 1e-6
    again = loaded.reconstruct(sketches, temperature=0.1, seed=1)
    assert len(again) == 2 and all(s.ndim == 2 and s.shape[1] == 3 and len(s) >= 1 for s in again)
    assert all(np.array_equal(a, b) for a, b in zip(again, loaded.reconstruct(sketches, temperature=0.1, seed=1)))
    row = loaded.interpolate(sketches[0], sketches[1], steps=4, seed=1)
    assert len(row) == 4 and all(s.shape[1] == 3 for s in row)


def test_saved_copy_keeps_the_version_rule(tmp_path: Path) -> None:
    from sketchrnn.store import load_model, save_model

    model = make_model(8, 16, 4, seed=7)
    model.tanh_z_for_initial_state = True
    path = write_vae_json(model, tmp_path / "old.vae.json")
    assert json.loads(path.read_text())[0]["version"] == 5
    loaded = sketchrnn.load(path)
    assert loaded.tanh_z_for_initial_state
    assert load_model(save_model(loaded, tmp_path / "saved")).tanh_z_for_initial_state
    assert not load_model(save_model(make_model(8, 16, 4, seed=7), tmp_path / "plain")).tanh_z_for_initial_state


# ------------------------------------------------------------------ malformed files
def _good_file(tmp_path: Path) -> list:
    path = write_vae_json(make_model(8, 16, 4, seed=8), tmp_path / "good.vae.json")
    return json.loads(path.read_text())


def _broken(tmp_path: Path, change) -> Path:
    content = _good_file(tmp_path)
    change(content)
    path = tmp_path / "broken.vae.json"
    path.write_text(json.dumps(content))
    return path


def _set(d, key, value) -> None:
    d[key] = value


def _zeros(n: int) -> str:
    return base64.b64encode(np.zeros(n, dtype="<i2").tobytes()).decode("ascii")


BROKEN = {
    "16 blobs": (lambda c: (c[1].pop(), c[2].pop()), r"expected 17 weight shapes and blobs \(a VAE model\), found 16"),
    "shapes and blobs disagree": (lambda c: c[2].pop(), "found 17 shapes and 16 blobs"),
    "mode 3": (lambda c: _set(c[0], "mode", 3), r"info mode 3 is not a VAE model's \(0 or 1\)"),
    "mode true": (lambda c: _set(c[0], "mode", True), "info mode True is not a VAE model's"),
    "mode vae": (lambda c: _set(c[0], "mode", "vae"), "info mode 'vae' is not a VAE model's"),
    "mode 2": (lambda c: _set(c[0], "mode", 2), r"expected 5 weight shapes and blobs \(a decoder-only LSTM model\), found 17"),
    "transposed mu": (lambda c: _set(c[1], 6, c[1][6][::-1]), r"weight enc_mu_w has shape \[4, 16\], expected \[16, 4\]"),
    "dims say more": (lambda c: _set(c[1], 7, [5]), "weight enc_mu_b has 4 values, dims say"),
    "3-d dims": (lambda c: _set(c[1], 7, [2, 2, 1]), "weight enc_mu_b has no valid shape"),
    "output width": (lambda c: (_set(c[1], 12, [16, 4]), _set(c[2], 12, _zeros(64)), _set(c[1], 13, [4]),
                                _set(c[2], 13, _zeros(4))),
                     "weight dec_output_w has 4 columns, not 6·M"),
    "decoder input": (lambda c: _set(c[1], 14, [4 * 16, 9]), r"weight dec_lstm_W_xh has shape \[64, 9\], expected \[9, 64\]"),
    "not base64": (lambda c: _set(c[2], 0, "@@@"), "weight enc_fw_lstm_W_xh is not base64 int16 data"),
    "no scale factor": (lambda c: c[0].pop("scale_factor"), "info has no numeric 'scale_factor'"),
    "version text": (lambda c: _set(c[0], "version", "6"), "info version '6' is not a number"),
    "not three parts": (lambda c: c.pop(), r"not a magenta-js model \(expected \[info, dims, blobs\]\)"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_malformed_file_is_a_one_line_error_naming_it(tmp_path: Path, case: str) -> None:
    change, message = BROKEN[case]
    path = _broken(tmp_path, change)
    with pytest.raises(ModelFileError, match=message) as info:
        sketchrnn.load(path)
    text = str(info.value)
    assert text.startswith(f"{path}: ") and "\n" not in text


def test_not_json_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "x.vae.json"
    path.write_text("[{}, [], ")
    with pytest.raises(ModelFileError, match="not JSON") as info:
        sketchrnn.load(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    with pytest.raises(ModelFileError, match="no such file"):
        read_vae_json(tmp_path / "missing.vae.json")
