"""Tests for the ``sketchrnn`` command line, end to end on real data and real models.

Every command's ``--help`` runs through the installed console script; the commands themselves run
in-process through ``sketchrnn.cli.main`` (same code, no interpreter start-up per call) on a small
run trained here on 40 real sheep and on the official magenta-js sheep model. The pictures they
write are opened and checked, not just listed.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import sketchrnn
from conftest import GOLDEN_TF, MODELS_JS, ROOT
from sketchrnn.cli import main
from sketchrnn.data import load_npz
from sketchrnn.train import is_run_dir

SUBSET = GOLDEN_TF / "aaron_sheep_subset_le60.npz"
SHEEP = MODELS_JS / "sheep.gen.json"
COMMANDS = ("train", "eval", "plot", "sample", "complete", "serve", "reconstruct", "interpolate", "info", "export",
            "data download", "data convert", "data info", "data show", "models list", "models download")
SVG_NS = "{http://www.w3.org/2000/svg}"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A run trained by the CLI: tiny preset, 40 steps, validation every 20."""
    out = tmp_path_factory.mktemp("cli") / "run"
    rc = main(["train", "--data", str(SUBSET), "--preset", "tiny", "--hparams", "save_every=20",
               "--steps", "40", "--out", str(out), "--quiet"])
    assert rc == 0
    return out


# ---------------------------------------------------------------------------- file checks
def check_svg(path: Path) -> None:
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG_NS}svg", f"{path.name}: root is {root.tag}"
    paths = root.findall(f".//{SVG_NS}path")
    assert paths, f"{path.name} has no <path>"
    assert any(p.get("d", "").strip() for p in paths), f"{path.name}: every path is empty"


def check_png(path: Path) -> None:
    with Image.open(path) as img:
        assert img.format == "PNG", f"{path.name} is {img.format}"
        assert img.width > 0 and img.height > 0
        gray = np.asarray(img.convert("L"))
    assert gray.min() < 128, f"{path.name} has no dark pixels"
    assert gray.max() > 200, f"{path.name} has no white background"


def check_gif(path: Path, sketch: np.ndarray) -> None:
    with Image.open(path) as img:
        assert img.format == "GIF"
        assert img.width > 0 and img.height > 0
        frames = img.n_frames
    # the animation adds points one (or a few) at a time; a one-point sketch is a single dot
    assert frames > 1 if len(sketch) > 1 else frames >= 1, f"{path.name}: {frames} frames for {len(sketch)} points"


def check_sketch_files(out: Path, name: str, count: int, gif: bool = False) -> list[np.ndarray]:
    """`name`_###.svg/.png (and .gif) for `count` sketches and `name`.npz holding them; returns the sketches."""
    data = load_npz(out / f"{name}.npz")
    assert list(data) == [name]
    sketches = data[name]
    assert len(sketches) == count
    for s in sketches:
        assert s.ndim == 2 and s.shape[1] == 3 and len(s) >= 1
        assert np.all(np.isfinite(s))
    assert sorted(p.name for p in out.glob(f"{name}_[0-9][0-9][0-9].svg")) == [f"{name}_{i:03d}.svg" for i in range(count)]
    for i, s in enumerate(sketches):
        check_svg(out / f"{name}_{i:03d}.svg")
        check_png(out / f"{name}_{i:03d}.png")
        if gif:
            check_gif(out / f"{name}_{i:03d}.gif", s)
        else:
            assert not (out / f"{name}_{i:03d}.gif").exists()
    return sketches


def readme_flags() -> dict[str, set[str]]:
    """The flags each command lists in the README's command-line table."""
    flags: dict[str, set[str]] = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"\|\s*`sketchrnn ((?:data |models )?\w+)(.*?)`\s*\|", line)
        if m:
            flags[m.group(1)] = set(re.findall(r"--[a-z][a-z-]*", m.group(2)))
    return flags


def console_script() -> str:
    """The installed ``sketchrnn`` script of the Python running the tests (else the one on PATH)."""
    beside = Path(sys.executable).parent / "sketchrnn"
    found = str(beside) if beside.is_file() else shutil.which("sketchrnn")
    assert found, "the sketchrnn console script is not installed"
    return found


# ---------------------------------------------------------------------------- help
def test_every_command_has_help_through_the_console_script():
    flags = readme_flags()
    assert set(flags) == set(COMMANDS), f"README table lists {sorted(flags)}"
    script = console_script()
    procs = {cmd: subprocess.Popen([script, *cmd.split(), "--help"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for cmd in COMMANDS}
    for cmd, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, f"sketchrnn {cmd} --help: exit {proc.returncode}\n{err}"
        assert out.startswith(f"usage: sketchrnn {cmd}"), out[:200]
        missing = {f for f in flags[cmd] if f not in out}
        assert not missing, f"sketchrnn {cmd} --help does not mention {sorted(missing)}"


@pytest.mark.parametrize("argv, rc", [(["--help"], 0), (["train", "--steps", "many"], 2), (["sample"], 2)])
def test_help_and_argument_errors_answer_at_once(argv, rc):
    """Measured about 0.2 s on two cores: torch is not imported before the arguments are read."""
    import time

    start = time.monotonic()
    proc = subprocess.run([console_script(), *argv], capture_output=True, text=True, timeout=60)
    took = time.monotonic() - start
    assert proc.returncode == rc, proc.stderr
    assert took < 2.0, f"sketchrnn {' '.join(argv)} took {took:.2f} s"
    probe = "import sys, sketchrnn, sketchrnn.cli; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout.strip() == "False"


def test_top_level_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in COMMANDS:
        assert cmd.split()[0] in out
    with pytest.raises(SystemExit) as exc:
        main(["sample"])  # RUN_DIR missing: argparse's usage error
    assert exc.value.code == 2
    assert "RUN_DIR" in capsys.readouterr().err


# ---------------------------------------------------------------------------- train and eval
def test_train_writes_a_run(run):
    assert is_run_dir(run)
    pointer = json.loads((run / "checkpoint.json").read_text())
    assert pointer["last_step"] == 40 and pointer["best_step"] in (20, 40)
    assert (run / pointer["last"]).is_dir() and (run / pointer["best"]).is_dir()
    described = json.loads((run / "run.json").read_text())
    assert described["hparams"]["save_every"] == 20 and described["hparams"]["z_size"] == 16  # tiny + override
    assert described["counts"] == {"train": 40, "valid": 8, "test": 8}


def test_resume_continues_to_the_total_step_count(run, tmp_path, capsys):
    resumed = tmp_path / "run"
    shutil.copytree(run, resumed)
    capsys.readouterr()
    assert main(["train", "--out", str(resumed), "--resume", "--steps", "60", "--quiet"]) == 0
    assert "stopped at step 60" in capsys.readouterr().out
    pointer = json.loads((resumed / "checkpoint.json").read_text())
    assert pointer["last_step"] == 60
    assert (resumed / pointer["last"]).is_dir()
    events = [json.loads(line) for line in (resumed / "metrics.jsonl").read_text().splitlines()]
    train_steps = [e["step"] for e in events if e["kind"] == "train"]
    assert max(train_steps) == 60 and train_steps.count(60) == 1
    assert [e["step"] for e in events if e["kind"] == "valid"] == [20, 40, 60]
    assert sketchrnn.load(resumed, which="last") is not None
    assert main(["train", "--out", str(resumed), "--resume", "--quiet"]) == 0  # the new total is the run's now
    assert "already at step 60 of 60, nothing to do" in capsys.readouterr().out


def test_eval_writes_per_sketch_log_likelihoods(run, tmp_path, capsys):
    per_sketch = tmp_path / "f.json"
    assert main(["eval", str(run), "--split", "test", "--per-sketch", str(per_sketch)]) == 0
    assert capsys.readouterr().out.startswith("test: L_R")
    report = json.loads(per_sketch.read_text())
    assert report["split"] == "test" and report["sketches"] == 8
    for key in ("cost", "r_cost", "kl_cost", "r_cost_masked", "mean_log_likelihood"):
        assert isinstance(report[key], float) and math.isfinite(report[key]), key
    lls = report["log_likelihood"]
    assert len(lls) == 8 and all(math.isfinite(v) for v in lls)
    assert report["mean_log_likelihood"] == pytest.approx(float(np.mean(lls)))



def test_eval_says_when_its_costs_leave_out_a_part_batch(run, capsys):
    """magenta's costs are over whole batches (300 test sheep, batches of 32: 288); the likelihoods over all."""
    assert main(["eval", str(run), "--data", "aaron_sheep", "--split", "test"]) == 0
    assert "over 288 of 300 sketches (whole batches of 32);" in capsys.readouterr().out
    assert main(["eval", str(run), "--data", "aaron_sheep", "--split", "test", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["sketches"], report["n_sketches"]) == (288, 300)


def test_eval_refuses_a_run_whose_data_changed(run, tmp_path, capsys):
    import shutil

    from sketchrnn.data import load_npz, save_npz

    copy, data = tmp_path / "run", tmp_path / "sheep.npz"
    shutil.copytree(run, copy)
    save_npz(data, {k: [s * [2, 2, 1] for s in v] for k, v in load_npz(SUBSET).items()})  # offsets doubled
    description = json.loads((copy / "run.json").read_text())
    description["data"] = [str(data)]
    (copy / "run.json").write_text(json.dumps(description))
    assert main(["eval", str(copy)]) == 2
    assert "its data changed since the run started" in capsys.readouterr().err

# ---------------------------------------------------------------------------- drawing
def test_sample_draws_one_sketch_per_vector_of_z(run, tmp_path, capsys):
    z = tmp_path / "z.npy"
    np.save(z, np.random.default_rng(0).standard_normal((3, 16)))
    assert main(["sample", str(run), "--z", str(z), "--out", str(tmp_path / "s")]) == 0
    assert "wrote 3 sketches" in capsys.readouterr().out


def test_encoding_commands_refuse_a_model_without_an_encoder_first(tmp_path, capsys):
    for command in ("reconstruct", "interpolate"):
        assert main([command, "sheep", "--out", str(tmp_path / command)]) == 2
        err = capsys.readouterr().err
        assert f"an unconditional model has no encoder: {command} needs a conditional (VAE) model" in err, err


def test_sample_from_a_run_with_gifs(run, tmp_path, capsys):
    out = tmp_path / "D"
    assert main(["sample", str(run), "--n", "6", "--seed", "1", "--gif", "--out", str(out)]) == 0
    assert "wrote 6 sketches" in capsys.readouterr().out
    sketches = check_sketch_files(out, "sample", 6, gif=True)
    check_svg(out / "grid.svg")
    check_png(out / "grid.png")
    again = tmp_path / "D_again"
    assert main(["sample", str(run), "--n", "6", "--seed", "1", "--out", str(again)]) == 0
    for a, b in zip(sketches, load_npz(again / "sample.npz")["sample"]):
        assert np.array_equal(a, b)  # --seed repeats


def test_a_smaller_call_leaves_no_stale_outputs_of_its_own(run, tmp_path, capsys):
    out = tmp_path / "again"
    assert main(["sample", str(run), "--n", "6", "--gif", "--sweep", "0.2,1", "--out", str(out)]) == 0
    (out / "notes.txt").write_text("mine")  # not ours: never touched
    capsys.readouterr()
    assert main(["sample", str(run), "--n", "2", "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert len(line.splitlines()) == 1 and "wrote 2 sketches" in line and str(out) in line, line
    assert "removed 16 files an earlier call left there" in line, line  # 4 × (svg, png, gif), 2 gifs, sweep pair
    assert sorted(p.name for p in out.iterdir()) == [
        "grid.png", "grid.svg", "notes.txt", "sample.npz",
        "sample_000.png", "sample_000.svg", "sample_001.png", "sample_001.svg"]
    assert len(load_npz(out / "sample.npz")["sample"]) == 2
    recon = tmp_path / "recon"
    assert main(["reconstruct", str(run), "--n", "2", "--temperatures", "0.3,1", "--out", str(recon)]) == 0
    assert main(["reconstruct", str(run), "--n", "2", "--temperatures", "0.5", "--out", str(recon)]) == 0
    assert not list(recon.glob("reconstruct_t0.3*")) and not list(recon.glob("reconstruct_t1*"))
    assert len(list(recon.glob("reconstruct_t0.5_*.svg"))) == 2


def test_default_output_folders_are_named_for_the_command(run, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["reconstruct", str(run), "--n", "2", "--temperatures", "0.5"]) == 0
    assert main(["interpolate", str(run), "--steps", "3"]) == 0
    assert main(["sample", str(run), "--n", "2"]) == 0
    out = capsys.readouterr().out
    for folder in ("reconstructions", "interpolations", "samples"):
        assert (tmp_path / folder).is_dir() and f"to {folder}/" in out, out
    gitignore = (ROOT / ".gitignore").read_text().split()
    assert {"/samples/", "/reconstructions/", "/interpolations/", "runs/"} <= set(gitignore)


def test_best_model_asked_before_any_validation_says_it_uses_the_latest(tmp_path, capsys):
    run = tmp_path / "young"
    assert main(["train", "--data", str(SUBSET), "--preset", "tiny", "--steps", "3", "--out", str(run),
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--n", "2", "--out", str(tmp_path / "s")]) == 0
    err = capsys.readouterr().err.strip()
    assert err == (f"note: {run}: no validation has run yet, so there is no best model: "
                   "using the latest checkpoint (step 3)")
    assert main(["sample", str(run), "--which", "last", "--n", "2", "--out", str(tmp_path / "s")]) == 0
    assert capsys.readouterr().err == ""


def test_sample_from_an_official_model(tmp_path):
    out = tmp_path / "D2"
    assert main(["sample", str(SHEEP), "--n", "4", "--temperature", "0.5", "--out", str(out)]) == 0
    sketches = check_sketch_files(out, "sample", 4)
    assert all(len(s) > 10 for s in sketches)  # real sheep, not dots
    check_svg(out / "grid.svg")
    check_png(out / "grid.png")
    # an unconditional model takes no z: refused with a clear line
    np.save(tmp_path / "z.npy", np.zeros(128, dtype=np.float32))
    assert main(["sample", str(SHEEP), "--z", str(tmp_path / "z.npy"), "--out", str(tmp_path / "D2z")]) == 2


def test_temperature_sweep(run, tmp_path):
    """One row per temperature, the same z down each column (the paper's sweep figure)."""
    import xml.etree.ElementTree as ET

    out = tmp_path / "sweep"
    assert main(["sample", str(run), "--n", "2", "--seed", "3", "--sweep", "0.1,0.5,1", "--columns", "3",
                 "--out", str(out)]) == 0
    root = ET.parse(out / "sweep.svg").getroot()
    paths = [p for p in root.iter(f"{SVG_NS}path") if p.get("d")]
    labels = [t.text for t in root.iter(f"{SVG_NS}text")]
    assert len(paths) == 9 and labels == ["T=0.1", "T=0.5", "T=1"]
    check_png(out / "sweep.png")


def test_sample_with_given_latent_vectors(run, tmp_path):
    z = np.random.default_rng(0).standard_normal((3, 16)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    out = tmp_path / "Dz"
    assert main(["sample", str(run), "--z", str(tmp_path / "z.npy"), "--n", "3", "--greedy", "--out", str(out)]) == 0
    written = load_npz(out / "sample.npz")["sample"]
    expected = sketchrnn.load(run).sample(3, z=z, greedy=True)
    assert [s.shape for s in written] == [s.shape for s in expected]
    for a, b in zip(written, expected):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-4)  # stored as float32


def test_reconstruct_takes_drawings_from_an_ndjson_file(run, tmp_path, capsys):
    from sketchrnn.data import drawing_to_stroke3, read_ndjson

    drawings = [drawing_to_stroke3(d["drawing"]).astype(np.float32) for d in read_ndjson(NDJSON_SHEEP)]
    out = tmp_path / "nd"
    assert main(["reconstruct", str(run), "--file", str(NDJSON_SHEEP), "--n", "2", "--temperatures", "0.5",
                 "--out", str(out)]) == 0
    for s in check_sketch_files(out, "original", 2):  # real drawings of the file, simplified as convert does
        assert any(d.shape == s.shape and np.array_equal(d, s) for d in drawings)


def test_reconstruct_writes_originals_and_reconstructions(run, tmp_path, capsys):
    out = tmp_path / "D3"
    assert main(["reconstruct", str(run), "--n", "3", "--temperatures", "0.1,1", "--out", str(out)]) == 0
    assert "3 originals" in capsys.readouterr().out
    originals = check_sketch_files(out, "original", 3)
    test_split = [np.asarray(s, dtype=np.float32) for s in load_npz(SUBSET)["test"]]
    for s in originals:  # the originals are real test sketches
        assert any(t.shape == s.shape and np.array_equal(t, s) for t in test_split)
    for name in ("reconstruct_t0.1", "reconstruct_t1"):
        check_sketch_files(out, name, 3)
    check_svg(out / "reconstruct.svg")
    check_png(out / "reconstruct.png")
    grid_text = (out / "reconstruct.svg").read_text()
    for label in ("original", "T=0.1", "T=1"):
        assert label in grid_text
    with Image.open(out / "reconstruct.png") as grid:  # 3 rows of 3 cells, and a row of labels
        assert grid.width < grid.height < 1.5 * grid.width


def test_interpolate_writes_a_row(run, tmp_path, capsys):
    out = tmp_path / "D4"
    assert main(["interpolate", str(run), "--steps", "5", "--out", str(out)]) == 0
    assert "5 steps" in capsys.readouterr().out
    check_sketch_files(out, "interpolate", 5)
    check_svg(out / "interpolate.svg")
    check_png(out / "interpolate.png")
    with Image.open(out / "interpolate.png") as row:
        assert row.width > 5 * row.height  # one row: the two ends and 5 steps between
    out = tmp_path / "D4b"
    assert main(["interpolate", str(run), "--pair", "0", "1", "--steps", "3", "--method", "lerp",
                 "--out", str(out)]) == 0
    check_sketch_files(out, "interpolate", 3)


def test_info_of_an_official_model_and_a_run(run, capsys):
    assert main(["info", str(SHEEP)]) == 0
    out = capsys.readouterr().out
    assert "1,123,963" in out and "decoder" in out and "conditional = False" in out
    # only what the file says: no training defaults (data_set, num_steps, ...) leak through
    assert "name = sheep" in out and "dec_rnn_size = 512" in out
    assert "data_set" not in out and "num_steps" not in out and "z_size" not in out, out
    assert main(["info", str(run)]) == 0
    out = capsys.readouterr().out
    total = sum(p.numel() for p in sketchrnn.load(run).parameters())
    assert re.search(rf"total\s+{total:,d}\b", out), out
    assert "encoder forward" in out
    pointer = json.loads((run / "checkpoint.json").read_text())
    valid = json.loads((run / pointer["best"] / "eval.json").read_text())["valid"]
    assert f"training: {pointer['last_step']} steps" in out, out
    assert f"best model: step {pointer['best_step']}: validation cost {valid['cost']:.4f}" in out, out


@pytest.mark.parametrize("content", ['{"valid": {"cost": null}}', "[1]", "not json"])
def test_info_of_a_run_whose_evaluation_is_damaged(run, tmp_path, capsys, content):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    pointer = json.loads((copy / "checkpoint.json").read_text())
    (copy / pointer["best"] / "eval.json").write_text(content)
    assert main(["info", str(copy)]) == 0
    out = capsys.readouterr().out
    assert f"best model: step {pointer['best_step']}\n" in out and "parameters:" in out, out


# ---------------------------------------------------------------------------- errors: exit 2, one line
def test_missing_data_file(tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["train", "--data", "nope/missing.npz", "--preset", "tiny", "--steps", "1", "--out", str(out),
                 "--quiet"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "nope/missing.npz" in lines[0], captured.err
    assert not out.exists()


@pytest.mark.parametrize("content", [b'{"word": "cat", "drawing": [[1, 2], "oops"]}\n', b"PK\x03\x04truncated"])
def test_malformed_data_file_is_one_line(tmp_path, capsys, content):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(content)
    assert main(["train", "--data", str(junk), "--preset", "tiny", "--steps", "1", "--out", str(tmp_path / "r"),
                 "--quiet"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(junk) in lines[0] and "Traceback" not in lines[0]


def test_eval_of_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path) in err


def test_train_refuses_to_overwrite_a_trained_run(run, capsys):
    before = (run / "checkpoint.json").read_text()
    assert main(["train", "--data", str(SUBSET), "--preset", "tiny", "--steps", "40", "--out", str(run),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--resume" in err
    assert (run / "checkpoint.json").read_text() == before


@pytest.mark.parametrize("given, named", [
    (["--hparams", "z_size=8"], "--hparams"),
    (["--preset", "small"], "--preset"),
    (["--data", str(SHEEP)], "--data"),
    (["--max-seq-len", "30"], "--max-seq-len"),
    (["--seed", "3"], "--seed"),
])
def test_resume_refuses_settings_that_differ_from_the_run(run, capsys, given, named):
    before = (run / "checkpoint.json").read_text()
    assert main(["train", "--out", str(run), "--resume", *given, "--steps", "60", "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(run) in err and f"{named} differs from the run" in err, err
    assert (run / "checkpoint.json").read_text() == before  # nothing trained


def test_resume_accepts_the_runs_own_settings(run, tmp_path, capsys):
    """--preset, --hparams, --data (by path) and --seed as the run has them: it simply goes on."""
    resumed = tmp_path / "run"
    shutil.copytree(run, resumed)
    capsys.readouterr()
    assert main(["train", "--out", str(resumed), "--resume", "--preset", "tiny", "--hparams", "save_every=20",
                 "--data", str(SUBSET), "--seed", "0", "--steps", "41", "--quiet"]) == 0
    assert "stopped at step 41" in capsys.readouterr().out


def test_resuming_a_finished_run_has_nothing_to_do(run, capsys):
    import time

    before = (run / "checkpoint.json").read_text()
    start = time.monotonic()
    assert main(["train", "--out", str(run), "--resume", "--quiet"]) == 0
    took = time.monotonic() - start
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and "nothing to do" in out and "step 40" in out, out
    assert took < 2.0, f"a finished run took {took:.1f} s to say so"
    assert (run / "checkpoint.json").read_text() == before


def test_latent_vectors_in_a_file_that_is_not_npy(run, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("0.1 0.2 0.3\n")
    assert main(["sample", str(run), "--z", str(notes), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(notes) in err and "not a NumPy .npy array" in err, err
    assert "allow_pickle" not in err
    assert not (tmp_path / "s").exists()


def test_a_mistyped_data_file_is_reported_missing(tmp_path, capsys):
    assert main(["train", "--data", "mysheep.npz", "--preset", "tiny", "--out", str(tmp_path / "r"),
                 "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sketchrnn: error: mysheep.npz: no such file") and len(err.splitlines()) == 1, err
    assert "download" not in err


def test_bad_hparams_value(tmp_path, capsys):
    out = tmp_path / "bad"
    assert main(["train", "--data", str(SUBSET), "--preset", "tiny", "--hparams", "z_size=abc", "--steps", "1",
                 "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "z_size" in err
    assert not out.exists()


# ---------------------------------------------------------------------------- complete
NDJSON_SHEEP = ROOT.parent / "shared" / "ndjson" / "simplified" / "sheep.ndjson"


def test_complete_writes_a_grid_each_alternative_and_the_strokes(tmp_path, capsys):
    out = tmp_path / "done"
    assert main(["complete", str(SHEEP), "--strokes", str(NDJSON_SHEEP), "--index", "2", "--first", "35",
                 "--scale", "3", "--seed", "1", "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("wrote 9 completions of 35 given points") and str(out) in line, line
    saved = load_npz(out / "complete.npz")
    (given,) = saved["given"]
    assert len(given) == 35 and len(saved["continuation"]) == 9 == len(saved["complete"])
    for c, whole in zip(saved["continuation"], saved["complete"]):
        assert np.array_equal(np.concatenate([given, c]), whole)
    for i in range(9):
        check_svg(out / f"complete_{i:03d}.svg")
        with Image.open(out / f"complete_{i:03d}.png") as img:
            assert img.mode == "RGB"
            pixels = np.asarray(img)
        red = (pixels[..., 0] > 150) & (pixels[..., 1] < 100)
        dark = pixels.max(axis=-1) < 60
        assert red.any() and dark.any()  # the continuation in the accent colour, the given strokes in black
    root = ET.parse(out / "grid.svg").getroot()
    assert len([p for p in root.iter(f"{SVG_NS}path") if p.get("class") == "continuation"]) == 9
    # repeatable, and the same as the Python API on the same input
    api = sketchrnn.load(SHEEP).complete(given.astype(np.float64), n=9, temperature=0.5, seed=1)
    for a, b in zip(saved["continuation"], api):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-3)  # stored as float32


@pytest.mark.parametrize("suffix", [".json", ".npz", ".svg"])
def test_complete_reads_every_kind_of_strokes_file(tmp_path, suffix, capsys):
    sheep = load_npz(SUBSET)["test"][0][:12]
    path = tmp_path / f"part{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(sheep.tolist()))
    elif suffix == ".npz":
        from sketchrnn.data import save_npz

        save_npz(path, {"train": [sheep]})
    else:
        from sketchrnn.render import save_svg

        save_svg(sheep, path)
    assert main(["complete", str(SHEEP), "--strokes", str(path), "--n", "2", "--out", str(tmp_path / "o")]) == 0
    assert len(load_npz(tmp_path / "o" / "complete.npz")["continuation"]) == 2


@pytest.mark.parametrize("content, message", [
    ("[[1, 2]]", "shape [1, 2]"),
    ("[[1, 2, 0], [NaN, 1, 1]]", "row 1 is not finite"),
    ("not json", "not JSON"),
])
def test_complete_refuses_bad_strokes_in_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    assert main(["complete", str(SHEEP), "--strokes", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and message in err, err
    assert not (tmp_path / "o").exists()


def test_complete_takes_a_dataset_sketch_from_the_test_split_unless_told(tmp_path, capsys):
    from sketchrnn.data import save_npz

    splits = {name: [s[:10] for s in sketches[:3]] for name, sketches in load_npz(SUBSET).items()}
    path = tmp_path / "three.npz"
    save_npz(path, {"valid": splits["valid"], "train": splits["train"], "test": splits["test"]})  # valid first
    for split, expected in [(None, splits["test"][1]), ("train", splits["train"][1])]:
        out = tmp_path / f"o_{split}"
        extra = ["--split", split] if split else []
        assert main(["complete", str(SHEEP), "--strokes", str(path), "--index", "1", *extra, "--n", "1",
                     "--out", str(out)]) == 0
        (given,) = load_npz(out / "complete.npz")["given"]
        np.testing.assert_allclose(given, expected, atol=1e-3)
    capsys.readouterr()
    assert main(["complete", str(SHEEP), "--strokes", str(path), "--split", "tset", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "no 'tset' split" in err and "test (3 sketches)" in err
    assert main(["complete", str(SHEEP), "--strokes", str(path), "--index", "3", "--out", str(tmp_path / "x")]) == 2
    assert "its 'test' split holds 3 sketches" in capsys.readouterr().err
    assert main(["complete", str(SHEEP), "--strokes", str(NDJSON_SHEEP), "--split", "test",
                 "--out", str(tmp_path / "x")]) == 2
    assert "--split applies to a dataset .npz only" in capsys.readouterr().err
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps(splits["test"][0].tolist()))
    assert main(["complete", str(SHEEP), "--strokes", str(rows), "--split", "test", "--out", str(tmp_path / "x")]) == 2
    assert "--split applies to a dataset .npz only" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    # more points asked for than the sketch has: all of them are given, and the user is told
    assert main(["complete", str(SHEEP), "--strokes", str(path), "--first", "50", "--n", "1",
                 "--out", str(tmp_path / "all")]) == 0
    assert "the sketch has 10 points, fewer than --first 50" in capsys.readouterr().err
    (given,) = load_npz(tmp_path / "all" / "complete.npz")["given"]
    assert len(given) == 10


def test_complete_of_a_sketch_too_long_for_the_model(tmp_path, capsys):
    path = tmp_path / "long.json"
    path.write_text(json.dumps([[1.0, 0.0, 0]] * 200))
    assert main(["complete", str(SHEEP), "--strokes", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "200 points" in err and "at most 156" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["sample", "m", "--n", "0"], "argument --n: expected a whole number >= 1, got 0"),
    (["sample", "m", "--temperature", "nan"], "argument --temperature: expected a finite number >= 0"),
    (["sample", "m", "--seed", str(2**70)], "argument --seed: expected a whole number from 0 to"),
    (["train", "--steps", "-5"], "argument --steps: expected a whole number >= 1, got -5"),
    (["train", "--minutes", "-1"], "argument --minutes: expected a finite number > 0"),
    (["train", "--log-every", "0"], "argument --log-every: expected a whole number >= 1, got 0"),
    (["serve", "--port", "99999"], "argument --port: expected a whole number from 1 to 65535, got 99999"),
    (["complete", "m", "--strokes", "s.json", "--first", "-3"], "argument --first: expected a whole number >= 0"),
    (["train", "--seed", str(2**32)], "argument --seed: expected a whole number from 0 to 4294967293"),
    (["data", "convert", "x.ndjson", "--out", "x.npz", "--valid", "inf"], "argument --valid: expected a fraction"),
    (["reconstruct", "m", "--temperatures", ",,"], "argument --temperatures: expected at least one number"),
])
def test_flag_values_that_make_no_sense_are_refused_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_settings_and_devices_that_cannot_work_are_one_line_errors(tmp_path, capsys):
    assert main(["train", "--preset", "tiny", "--hparams", "learning_rate=-1", "--out", str(tmp_path / "r")]) == 2
    assert "hparams: learning_rate=-1.0 must be a finite number > 0" in capsys.readouterr().err
    import torch

    if not torch.cuda.is_available():
        assert main(["train", "--preset", "tiny", "--device", "cuda", "--out", str(tmp_path / "g")]) == 2
        err = capsys.readouterr().err.strip()
        assert "finds no CUDA GPU" in err and len(err.splitlines()) == 1, err
    assert main(["complete", str(SHEEP), "--strokes", str(tmp_path), "--out", str(tmp_path / "c")]) == 2
    assert capsys.readouterr().err.strip().endswith(f"{tmp_path}: not a regular file")


def test_asking_for_more_memory_than_there_is_is_a_one_line_error(tmp_path, capsys):
    assert main(["sample", str(SHEEP), "--n", str(10**12), "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sketchrnn: error: not enough memory") and len(err.splitlines()) == 1, err


def test_complete_with_no_points_given_is_plain_sampling(tmp_path, capsys):
    from sketchrnn.data.npz import load_npz

    assert main(["complete", str(SHEEP), "--strokes", str(NDJSON_SHEEP), "--first", "0", "--n", "2", "--seed", "1",
                 "--out", str(tmp_path / "c")]) == 0
    assert "2 completions of 0 given points" in capsys.readouterr().out
    written = load_npz(tmp_path / "c" / "complete.npz")
    assert set(written) == {"continuation", "complete"} and len(written["complete"]) == 2


def test_serve_on_a_port_in_use_says_so_before_any_url(capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", str(SHEEP), "--port", str(port)]) == 2
    captured = capsys.readouterr()
    assert "serving" not in captured.out
    assert captured.err.strip() == f"sketchrnn: error: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_serve_stops_cleanly_on_ctrl_c_and_listens_on_every_address_of_its_host(tmp_path):
    import signal
    import socket

    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "sketchrnn", "serve", str(SHEEP), "--host", "localhost",
                               "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "serving sheep" in server.stdout.readline()
        for info in socket.getaddrinfo("localhost", port, type=socket.SOCK_STREAM):  # 127.0.0.1, and ::1 if any
            with socket.socket(info[0], info[1]) as client:
                client.connect(info[4])
        server.send_signal(signal.SIGINT)
        _, err = server.communicate(timeout=30)
    finally:
        server.kill()
    assert server.returncode == 0 and "Traceback" not in err and "interrupted" not in err, err
