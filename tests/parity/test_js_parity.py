"""Parity with the official JavaScript library (@magenta/sketch 0.2.0) on official models.

Each recorded drawing was fed step by step through an official ``.gen.json`` model; we import the
same file and compare the distribution after every step (and the LSTM state at the recorded
checkpoints).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache

import numpy as np
import pytest
import torch

import sketchrnn
from conftest import GOLDEN_JS, MODELS_JS, assert_close

TOL = 1e-5
INDEX = json.loads((GOLDEN_JS / "index.json").read_text())
FILES = [entry["file"] for entry in INDEX]


@lru_cache(maxsize=None)
def model(name: str) -> sketchrnn.SketchRNN:
    return sketchrnn.load(MODELS_JS / f"{name}.gen.json")


def js_pdf(mix, t: int, temperature: float) -> dict[str, np.ndarray]:
    """The JS library's getPDF transform of our raw outputs (tau_d = 0.5 + 0.5·T on pi and pen, σ·√T)."""
    tau_d = 0.5 + 0.5 * temperature
    return {
        "pi": torch.softmax(mix.pi_logits[0, t] / tau_d, -1).numpy(),
        "muX": mix.mu1[0, t].numpy(),
        "muY": mix.mu2[0, t].numpy(),
        "sigmaX": (mix.sigma1[0, t] * math.sqrt(temperature)).numpy(),
        "sigmaY": (mix.sigma2[0, t] * math.sqrt(temperature)).numpy(),
        "corr": mix.rho[0, t].numpy(),
        "pen": torch.softmax(mix.pen_logits[0, t] / tau_d, -1).numpy(),
    }


def test_twenty_recorded_drawings() -> None:
    assert len(FILES) == 20


@pytest.mark.parametrize("file", FILES)
def test_per_step_pdfs_match_js(file: str) -> None:
    rec = json.loads((GOLDEN_JS / file).read_text())
    m = model(rec["model"])
    assert m.scale_factor == pytest.approx(rec["info"]["scale_factor"])
    x = torch.tensor(rec["input_normalized"], dtype=torch.float32)[None]
    with torch.no_grad():
        mix = m.mixture(x)
        h, _ = m.decoder_hidden(x)
    assert len(rec["steps"]) == x.shape[1]
    for k, step in enumerate(rec["steps"]):
        for temperature, key in ((1.0, "pdf_t1"), (0.5, "pdf_t05")):
            if key not in step:
                continue
            ours = js_pdf(mix, k, temperature)
            for field, expected in step[key].items():
                assert_close(ours[field], expected, TOL, f"{file} step {k} {key} {field}")
        if "h" in step:
            assert_close(h[0, k], step["h"], TOL, f"{file} step {k} h")
            # c is not an output; rerun the prefix to read the cell state after step k
            with torch.no_grad():
                _, state = m.decoder_hidden(x[:, : k + 1])
            assert_close(state[0][0], step["c"], TOL, f"{file} step {k} c")


@pytest.mark.parametrize("file", [f for f in FILES if f.startswith("sheep")])
def test_log_likelihood_matches_recorded_total(file: str) -> None:
    """Our per-sketch log-likelihood equals the total computed from the library's pdfs.

    The recorded total sums ~130 float64 log terms computed from float32 pdfs; a density with a
    small σ turns a 1e-6 difference in σ into ~1e-4 in its log, so the totals agree to 0.02
    (we measured at most 0.009), while the pdfs themselves match to 1e-5 above.
    """
    rec = json.loads((GOLDEN_JS / file).read_text())
    m = model("sheep")
    x = torch.tensor(rec["input_normalized"], dtype=torch.float32)[None]
    expected = rec["loglik_OUR_ARITHMETIC"]
    n_points = expected["n_offset_terms"]
    with torch.no_grad():
        ll = m.log_likelihood(x, [n_points])
    assert ll.shape == (1,)
    assert ll.item() == pytest.approx(expected["total"], abs=0.02)


def test_all_official_models_import() -> None:
    names = sorted(p.name[: -len(".gen.json")] for p in MODELS_JS.glob("*.gen.json"))
    assert len(names) == 10
    for name in names:
        m = model(name)
        assert not m.hps.conditional and m.hps.dec_rnn_size == 512 and m.hps.num_mixture == 20
        assert m.hps.max_seq_len > 0 and m.scale_factor > 1


def test_older_info_versions_are_accepted(tmp_path) -> None:
    """Old files say mode "gen" and carry extra keys such as r_loss: only the weights and two keys matter."""
    info, dims, blobs = json.loads((MODELS_JS / "sheep.gen.json").read_text())
    old = {"mode": "gen", "version": 3, "name": "sheep", "r_loss": -1.23, "kl_loss": 0.0,
           "max_seq_len": info["max_seq_len"], "scale_factor": info["scale_factor"], "unknown": [1, 2]}
    path = tmp_path / "sheep_old.gen.json"
    path.write_text(json.dumps([old, dims, blobs]))
    a, b = sketchrnn.load(path), model("sheep")
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)


@pytest.mark.parametrize(
    "content, message",
    [
        ("not json at all", "not JSON"),
        ('{"a": 1}', "expected [info, dims, blobs]"),
        ('[{"scale_factor": 1.0, "max_seq_len": 10}, [[2, 2]], ["AAAA"]]', "expected 5 weight shapes"),
    ],
)
def test_bad_model_files_give_one_line_errors(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "bad.gen.json"
    path.write_text(content)
    with pytest.raises(ValueError) as err:
        sketchrnn.load(path)
    text = str(err.value)
    assert str(path) in text and message in text and "\n" not in text


def test_truncated_weights_are_reported(tmp_path) -> None:
    info, dims, blobs = json.loads((MODELS_JS / "bird.gen.json").read_text())
    blobs[3] = blobs[3][:400]
    path = tmp_path / "bird.gen.json"
    path.write_text(json.dumps([info, dims, blobs]))
    with pytest.raises(ValueError, match="W_hh"):
        sketchrnn.load(path)
