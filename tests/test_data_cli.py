"""`sketchrnn data download / convert / info / show` end to end, and training on what they produce."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import sketchrnn
from conftest import SHARED
from httpserver import FileServer
from sketchrnn.cli import main
from sketchrnn.data import describe_dataset, load_dataset, open_packed
from sketchrnn.hparams import HParams
from sketchrnn.train import train
from sketchrnn.train.loop import evaluate_run_split

SIMPLIFIED = SHARED / "ndjson" / "simplified"
SVG_NS = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def quickdraw(tmp_path_factory):
    """All 344 categories of the shared simplified ndjson, converted into one packed file by the CLI."""
    out = tmp_path_factory.mktemp("qd") / "quickdraw.npz"
    assert main(["data", "convert", str(SIMPLIFIED), "--out", str(out), "--seed", "1"]) == 0
    return out


def test_all_categories_convert_into_one_packed_file(quickdraw, capsys):
    info = describe_dataset(quickdraw)
    assert info["format"] == "sketchrnn-packed"
    assert len(info["classes"]) == 344 == len(list(SIMPLIFIED.glob("*.ndjson")))
    counts = {s: info["splits"][s]["count"] for s in ("train", "valid", "test")}
    assert counts == {"train": 344 * 23, "valid": 344, "test": 344}  # 25 per category, 5% + 5% of them held out
    assert all(info["splits"]["valid"]["class_counts"][c] == 1 for c in info["classes"])
    with np.load(quickdraw, allow_pickle=False) as plain:  # no pickle needed to read it
        assert plain["train.offsets"][-1] == plain["train.points"].shape[0]

    assert main(["data", "info", str(quickdraw)]) == 0
    out = capsys.readouterr().out
    assert "344 classes" in out and f"N_max {info['max_seq_len']}" in out
    assert f"scale factor {info['scale_factor']:.6g}" in out
    assert "The Eiffel Tower" in out and "... 304 more classes" in out
    assert "7,912" in out  # the training total
    assert main(["data", "info", str(quickdraw), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["splits"]["test"]["count"] == 344


def test_a_tiny_model_trains_on_all_categories(quickdraw, tmp_path):
    """Class-balanced batches over 344 classes; validation L_R falls below the untrained model's."""
    hps = HParams.preset("tiny").replace(save_every=60)
    run = tmp_path / "run"
    train(run, hps, data=[quickdraw], steps=0, seed=0, max_seq_len=100, progress=False)
    data = load_dataset([quickdraw], max_seq_len=100, random_scale_factor=0, augment_stroke_prob=0)
    assert data.train.balance_classes  # more than one class: balanced by default
    start = evaluate_run_split(sketchrnn.load(run, which="last"), data.valid, 0)
    train(run, resume=True, steps=120, progress=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    valid = [r["r_cost"] for r in rows if r["kind"] == "valid"]
    print(f"344 classes, tiny model: valid L_R {start.r_cost:.3f} -> {valid}")
    assert len(valid) == 2 and all(math.isfinite(v) for v in valid)
    assert valid[-1] < start.r_cost - 0.3


def test_show_draws_a_grid_of_a_packed_file(quickdraw, tmp_path, capsys):
    out = tmp_path / "grid.svg"
    assert main(["data", "show", str(quickdraw), "--n", "16", "--out", str(out), "--seed", "2"]) == 0
    paths = [e for e in ET.parse(out).getroot().iter(f"{SVG_NS}path") if e.get("id", "").startswith("cell-")]
    assert len(paths) == 16 and all(len(p.get("d")) > 20 for p in paths)
    listed = capsys.readouterr().out.splitlines()[1:]
    assert len(listed) == 4 and all(len(row.split(", ")) == 4 for row in listed)  # the class of every cell
    png = tmp_path / "cats.png"
    assert main(["data", "show", str(quickdraw), "--class", "cat", "--split", "valid", "--out", str(png)]) == 0
    assert png.stat().st_size > 0 and capsys.readouterr().out.splitlines()[1].strip() == "cat"
    assert main(["data", "show", str(quickdraw), "--class", "unicorn cat", "--out", str(png)]) == 2
    assert "no class 'unicorn cat'" in capsys.readouterr().err


def test_official_format_and_training_from_ndjson_directly(tmp_path, capsys):
    out = tmp_path / "cats.npz"
    source = SIMPLIFIED / "cat.ndjson"
    assert main(["data", "convert", str(source), "--out", str(out), "--format", "official", "--valid", "2",
                 "--test", "3"]) == 0
    assert "kept: train 20, valid 2, test 3" in capsys.readouterr().out
    assert describe_dataset(out)["format"] == "npz"
    # training reads the ndjson itself just as well (converted in memory, 90/5/5 per category)
    data = load_dataset([source])
    assert (len(data.train), len(data.valid), len(data.test)) == (23, 1, 1)


def test_malformed_lines_are_reported_with_file_and_line(tmp_path, capsys):
    good = (SIMPLIFIED / "cat.ndjson").read_text().splitlines()
    bad = tmp_path / "mixed.ndjson"
    bad.write_text("\n".join([good[0], "{not json", good[1], json.dumps({"word": "cat", "drawing": []}), good[2]]) + "\n")
    out = tmp_path / "mixed.npz"
    assert main(["data", "convert", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:2:" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert main(["data", "convert", str(bad), "--out", str(out), "--errors", "skip", "--valid", "0",
                 "--test", "0"]) == 0
    text = capsys.readouterr().out
    assert "skipped 2" in text and f"{bad}:2:" in text and f"{bad}:4:" in text
    assert "kept: train 3, valid 0, test 0" in text
    with open_packed(out) as packed:
        assert len(packed["train"]) == 3


def test_download_through_the_cli_against_a_local_server(tmp_path, capsys):
    files = {"/full/simplified/cat.ndjson": SIMPLIFIED / "cat.ndjson",
             "/sketchrnn/flying saucer.npz": SHARED / "data" / "aaron_sheep.npz"}  # any official-layout file
    with FileServer(files) as server:
        args = ["--dir", str(tmp_path), "--base-url", server.url, "--quiet"]
        assert main(["data", "download", "cat", "--kind", "simplified", *args]) == 0
        assert main(["data", "download", "flying_saucer", *args]) == 0  # underscores stand for spaces
    printed = [line for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert [p.split("/")[-1] for p in printed] == ["cat.simplified.ndjson", "flying_saucer.npz"]
    assert (tmp_path / "cat.simplified.ndjson").read_bytes() == (SIMPLIFIED / "cat.ndjson").read_bytes()
    assert main(["data", "info", str(tmp_path / "flying_saucer.npz")]) == 0
    assert "7,400" in capsys.readouterr().out
    # nothing listens on the port of a stopped server: the offline message, one line
    assert main(["data", "download", "dog", "--kind", "raw", "--dir", str(tmp_path), "--base-url", server.url,
                 "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach" in err and "offline" in err and len(err.strip().splitlines()) == 1


def test_convert_refuses_shares_that_leave_nothing_to_train_on_and_warns_on_counts(tmp_path, capsys):
    sheep = str(SIMPLIFIED / "sheep.ndjson")
    assert main(["data", "convert", sheep, "--out", str(tmp_path / "a.npz"), "--valid", "0.6", "--test", "0.6"]) == 2
    assert "add up to 1.2: nothing would be left to train on" in capsys.readouterr().err
    assert main(["data", "convert", sheep, "--out", str(tmp_path / "b.npz"), "--valid", "100000"]) == 0
    assert "warning: no training sketches left for sheep" in capsys.readouterr().err
    # 25 sheep: a fraction of 0.01 is no sketch at all, and the warning says how to ask for one
    assert main(["data", "convert", sheep, "--out", str(tmp_path / "c.npz"), "--valid", "0.01", "--test", "0.1"]) == 0
    err = capsys.readouterr().err
    assert "warning: the valid split is empty: --valid 0.01 of each class rounds down to no sketches" in err, err
    assert "test split is empty" not in err
    assert main(["data", "show", str(tmp_path / "b.npz"), "--split", "valid", "--out", str(tmp_path / "x.jpg")]) == 2
    assert "written as .svg or .png, not .jpg" in capsys.readouterr().err and not (tmp_path / "x.jpg").exists()


def test_output_into_a_closed_pipe_ends_quietly():
    import subprocess
    import sys

    lister = subprocess.Popen([sys.executable, "-m", "sketchrnn", "models", "list"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    lister.stdout.close()  # like `| head` that has read what it wanted
    err = lister.stderr.read().decode()
    assert lister.wait(timeout=60) == 141 and err == "", err


def test_info_lists_the_splits_of_an_npz_as_train_valid_test():
    from sketchrnn.data import describe_dataset

    assert list(describe_dataset(SHARED / "data" / "aaron_sheep.npz")["splits"]) == ["train", "valid", "test"]
