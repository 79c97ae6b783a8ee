"""How good a model is: likelihood in data units, `eval --data`, and learning-curve plots."""

from __future__ import annotations

import builtins
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import sketchrnn
from conftest import DATA, GOLDEN_TF
from sketchrnn.cli import main
from sketchrnn.data import MemorySplit, load_npz
from sketchrnn.train import train
from sketchrnn.train.loop import split_likelihood

SHEEP_MODEL = DATA.parent / "models" / "magenta-js" / "sheep.gen.json"
SHEEP_DATA = DATA / "aaron_sheep.npz"
SUBSET = GOLDEN_TF / "aaron_sheep_subset_le60.npz"


def test_data_unit_nll_is_the_normalised_nll_plus_the_jacobian_term() -> None:
    """On real data: NLL_data = NLL_normalised + 2 n log s; and rescaling the data by c with the
    model's scale factor by c leaves the normalised NLL as it was and moves the data-unit NLL by
    exactly 2 n log c."""
    model = sketchrnn.load(SHEEP_MODEL)
    sketches = load_npz(SHEEP_DATA)["test"][:40]
    n_max = max(len(s) for s in sketches)
    base = split_likelihood(model, MemorySplit(sketches, n_max, model.scale_factor))
    s = model.scale_factor
    np.testing.assert_allclose(base.nll, base.nll_normalised + 2 * base.points * math.log(s), rtol=1e-12)
    c = 3.0
    scaled = [np.concatenate([x[:, :2] * c, x[:, 2:]], axis=1) for x in sketches]
    model.scale_factor = s * c
    again = split_likelihood(model, MemorySplit(scaled, n_max, model.scale_factor))
    # the same normalised inputs up to float32 rounding of (c x) / (c s) against x / s, which the
    # recurrence carries to a few 1e-5 of a sketch's NLL
    np.testing.assert_allclose(again.nll_normalised, base.nll_normalised, atol=0.05)
    np.testing.assert_allclose(again.nll - base.nll - 2 * base.points * math.log(c), 0, atol=0.05)
    assert np.all(np.abs(again.nll - base.nll) > 2 * base.points * math.log(c) - 0.05)
    # the model's own method says the same
    x = torch.from_numpy(MemorySplit(scaled, n_max, model.scale_factor).get_batch(0, 5).inputs)
    lengths = torch.tensor([len(v) for v in MemorySplit(scaled, n_max, model.scale_factor).sketches[:5]])
    with torch.no_grad():
        data = model.log_likelihood(x, lengths, data_units=True)
        normalised = model.log_likelihood(x, lengths)
    torch.testing.assert_close(data, normalised - 2 * lengths * math.log(s * c), rtol=1e-6, atol=1e-4)


def test_eval_of_an_official_model_on_a_bundled_dataset(capsys) -> None:
    assert main(["eval", str(SHEEP_MODEL), "--data", str(SHEEP_DATA), "--split", "test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n_sketches"] == len(load_npz(SHEEP_DATA)["test"]) == 300
    for key in ("nll_per_sketch", "nll_per_point", "nll_per_sketch_stderr", "r_cost", "cost"):
        assert isinstance(report[key], float) and math.isfinite(report[key]), key
    # the model's normalised NLL is −mean log-likelihood; in data units it adds 2 log s per point
    points = sum(len(s) for s in load_npz(SHEEP_DATA)["test"])
    shift = 2 * math.log(report["scale_factor"]) * points / 300
    assert report["nll_per_sketch"] == pytest.approx(-report["mean_log_likelihood"] + shift, rel=1e-9)
    assert report["nll_per_point"] == pytest.approx(report["nll_per_sketch"] * 300 / points, rel=1e-9)
    assert 0 < report["nll_per_point"] < 20  # a real model on its own kind of data


def test_eval_of_a_model_without_data_of_its_own_asks_for_data(capsys) -> None:
    assert main(["eval", str(SHEEP_MODEL)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--data FILE" in err


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("plot")
    hps = sketchrnn.HParams.preset("tiny").replace(save_every=10, batch_size=8)
    runs = []
    for name, cell in (("lstm", "lstm"), ("layer-norm", "layer_norm")):
        train(base / name, hps.replace(dec_model=cell), data=[SUBSET], steps=30, seed=0, progress=False, log_every=1)
        runs.append(base / name)
    return runs


def test_plot_writes_a_png_of_the_curves(two_runs, tmp_path, capsys) -> None:
    out = tmp_path / "curves.png"
    assert main(["plot", *map(str, two_runs), "--out", str(out)]) == 0
    assert "wrote the learning curves of 2 runs" in capsys.readouterr().out
    with Image.open(out) as img:
        pixels = np.asarray(img.convert("RGB")).astype(int)
    assert pixels.shape[1] > pixels.shape[0] > 200
    # the two runs' colours (matplotlib's first two, blue #1f77b4 and orange #ff7f0e) both drawn
    for rgb in ((31, 119, 180), (255, 127, 14)):
        near = (np.abs(pixels - np.array(rgb)).sum(-1) < 60).sum()
        assert near > 200, f"too few pixels of {rgb}: {near}"


def test_plot_wants_one_name_per_run(two_runs, tmp_path, capsys) -> None:
    for names in (["a"], ["a", "b", "c"]):
        assert main(["plot", *map(str, two_runs), "--names", *names, "--out", str(tmp_path / "c.png")]) == 2
        assert f"{len(names)} name" in capsys.readouterr().err
    assert not (tmp_path / "c.png").exists()


def test_plot_without_matplotlib_is_one_line(two_runs, tmp_path, monkeypatch, capsys) -> None:
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    assert main(["plot", str(two_runs[0]), "--out", str(tmp_path / "c.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "pip install 'sketchrnn[plot]'" in err
    assert not (tmp_path / "c.png").exists()
