"""Training on real data: the loss falls, resume is exact, a crash mid-save loses nothing."""

from __future__ import annotations

import json
import math
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

import sketchrnn
from conftest import DATA, GOLDEN_TF
from sketchrnn import HParams, SketchRNN
from sketchrnn.data import load_dataset
from sketchrnn.train import TrainingError, train
from sketchrnn.train.checkpoint import checkpoint_dir, read_pointer, save_checkpoint
from sketchrnn.train.loop import evaluate_run_split

SUBSET = GOLDEN_TF / "aaron_sheep_subset_le60.npz"  # 40/8/8 real sheep of at most 60 points
TINY = HParams.preset("tiny")


def metrics(run_dir, kind: str) -> list[dict]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [row for row in map(json.loads, lines) if row["kind"] == kind]


@pytest.mark.parametrize(
    "cells, steps",
    [
        ("enc_model=lstm,dec_model=lstm", 300),
        ("enc_model=layer_norm,dec_model=layer_norm", 200),
        ("conditional=0,dec_model=hyper", 200),
    ],
    ids=["lstm", "layer_norm", "hyper-unconditional"],
)
def test_validation_loss_falls_on_real_data(tmp_path, cells: str, steps: int) -> None:
    """A tiny model, a few hundred steps on real kanji: validation L_R falls well below its start.

    Kanji of at most 40 points (5191 train, 284 valid sketches) keep the test to seconds.
    """
    hps = HParams.parse(cells, base=TINY.replace(save_every=100))
    run = tmp_path / "kanji"
    kanji = [DATA / "short_kanji.npz"]
    train(run, hps, data=kanji, steps=0, seed=3, max_seq_len=40, progress=False)  # the untrained model
    data = load_dataset(kanji, max_seq_len=40, random_scale_factor=0, augment_stroke_prob=0)
    start = evaluate_run_split(sketchrnn.load(run, which="last"), data.valid, 3)
    summary = train(run, resume=True, steps=steps, progress=False)
    valid = metrics(run, "valid")
    assert [row["step"] for row in valid] == list(range(100, steps + 1, 100))
    final = valid[-1]["r_cost"]
    print(f"{cells}: valid L_R start {start.r_cost:.3f} -> "
          + ", ".join(f"{r['step']}: {r['r_cost']:.3f}" for r in valid))
    assert final < start.r_cost - 0.5 and final < valid[0]["r_cost"]
    assert summary.best_valid_cost == pytest.approx(min(row["cost"] for row in valid))
    assert len(metrics(run, "test")) >= 1  # the best model was evaluated on the test split


@pytest.mark.usefixtures("fixed_threads")
def test_resume_is_exact(tmp_path) -> None:
    """N steps, stop, resume to 2N gives the same losses and weights as 2N steps in one go.

    Recurrent dropout, augmentation (random scaling and point dropping), z noise and validation
    in between are all on, so every random stream must be restored.
    """
    hps = TINY.replace(save_every=10)
    assert hps.use_recurrent_dropout and hps.random_scale_factor > 0 and hps.augment_stroke_prob > 0
    whole = train(tmp_path / "whole", hps, data=[SUBSET], steps=36, seed=5, progress=False)
    first = train(tmp_path / "split", hps, data=[SUBSET], steps=18, seed=5, progress=False)
    second = train(tmp_path / "split", resume=True, steps=36, progress=False)
    assert first.step == 18 and second.step == 36  # --steps is the run's total, not "N more"
    assert first.train_costs + second.train_costs == whole.train_costs
    a, b = sketchrnn.load(tmp_path / "whole", which="last"), sketchrnn.load(tmp_path / "split", which="last")
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), name
    assert [r["cost"] for r in metrics(tmp_path / "whole", "valid")] == [
        r["cost"] for r in metrics(tmp_path / "split", "valid")]


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    import sketchrnn.store as store
    import sketchrnn.train.checkpoint as checkpoint
    from sketchrnn import HParams
    from sketchrnn.train import train

    original = store.save_tensors

    def dying(path, tensors):
        # the second "last" checkpoint: write part of its weights, then die the hard way
        if Path(path).parent.name.startswith(".tmp-last-00000020"):
            with open(path, "wb") as f:
                f.write(b"partial weights")
            os.kill(os.getpid(), signal.SIGKILL)
        return original(path, tensors)

    store.save_tensors = dying
    checkpoint.save_tensors = dying
    train(sys.argv[1], HParams.preset("tiny").replace(save_every=10), data=[sys.argv[2]], steps=30, seed=7,
          progress=False)
    """
)


@pytest.mark.usefixtures("fixed_threads")
def test_sigkill_while_saving_leaves_the_last_good_checkpoint(tmp_path) -> None:
    run = tmp_path / "killed"
    proc = subprocess.run([sys.executable, "-c", KILLER, str(run), str(SUBSET)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert any(p.name.startswith(".tmp-last-00000020") for p in (run / "checkpoints").iterdir())  # died mid-save
    pointer = read_pointer(run)
    assert pointer["last"].endswith("last-00000010")
    sketchrnn.load(run, which="last")  # the last good checkpoint loads
    resumed = train(run, resume=True, steps=30, progress=False)
    reference = train(tmp_path / "clean", TINY.replace(save_every=10), data=[SUBSET], steps=30, seed=7,
                      progress=False)
    assert resumed.train_costs == reference.train_costs[10:]  # picks up exactly at step 10
    assert not any(p.name.startswith(".tmp-") for p in (run / "checkpoints").iterdir())


def test_nonfinite_losses_skip_the_update(tmp_path, monkeypatch) -> None:
    calls = {"n": 0}
    original = SketchRNN.compute_loss

    def sometimes_nan(self, *args, **kwargs):
        loss = original(self, *args, **kwargs)
        calls["n"] += 1
        if self.training and calls["n"] in (3, 4, 7):
            loss.cost = loss.cost * float("nan")
        return loss

    monkeypatch.setattr(SketchRNN, "compute_loss", sometimes_nan)
    run = tmp_path / "nan"
    summary = train(run, TINY.replace(save_every=10), data=[SUBSET], steps=10, seed=1, progress=False)
    assert summary.step == 10 and all(math.isfinite(c) for c in summary.train_costs)
    assert [row["streak"] for row in metrics(run, "nonfinite")] == [1, 2, 1]
    model = sketchrnn.load(run, which="last")
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_too_many_nonfinite_losses_stop_training(tmp_path, monkeypatch) -> None:
    run = tmp_path / "diverged"
    train(run, TINY.replace(save_every=5), data=[SUBSET], steps=5, seed=1, progress=False)
    original = SketchRNN.compute_loss

    def always_nan(self, *args, **kwargs):
        loss = original(self, *args, **kwargs)
        loss.cost = loss.cost * float("inf")
        return loss

    monkeypatch.setattr(SketchRNN, "compute_loss", always_nan)
    with pytest.raises(TrainingError, match="non-finite losses in a row .* checkpoint in .* is intact; try a lower"):
        train(run, resume=True, steps=10, progress=False, max_nonfinite=4)
    assert read_pointer(run)["last"].endswith("last-00000005")
    sketchrnn.load(run, which="last")
    # from the first step on, with nothing saved: it says so, and points at the data first
    with pytest.raises(TrainingError, match="has no checkpoint yet; at the first step this is more likely the data"):
        train(tmp_path / "fresh", TINY, data=[SUBSET], steps=10, progress=False, max_nonfinite=3)


def test_nonfinite_weights_never_reach_a_checkpoint(tmp_path) -> None:
    model = SketchRNN(TINY)
    with torch.no_grad():
        model.output.bias[0] = float("nan")
    with pytest.raises(RuntimeError, match="not finite"):
        save_checkpoint(tmp_path, model, "last", 1)
    assert not read_pointer(tmp_path)


def test_minutes_bound_and_best_versus_last(tmp_path) -> None:
    run = tmp_path / "timed"
    summary = train(run, TINY.replace(save_every=5), data=[SUBSET], steps=1000, minutes=0.05, seed=2, progress=False)
    assert summary.stopped == "minutes" and 0 < summary.step < 1000
    best, last = checkpoint_dir(run, "best"), checkpoint_dir(run, "last")
    assert read_pointer(run)["last_step"] == summary.step
    loaded = sketchrnn.load(run)
    expected = sketchrnn.load(best)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), expected.state_dict().values()))
    assert last.name.startswith("last-")


def test_a_second_run_in_the_same_directory_is_refused(tmp_path) -> None:
    run = tmp_path / "once"
    train(run, TINY, data=[SUBSET], steps=2, seed=0, progress=False)
    with pytest.raises(FileExistsError, match="--resume"):
        train(run, TINY, data=[SUBSET], steps=2, seed=0, progress=False)


def test_ctrl_c_stops_after_the_step_and_saves(tmp_path) -> None:
    """SIGINT during training: the run stops cleanly, saves the step it reached, and resumes from it."""
    run = tmp_path / "interrupted"
    script = textwrap.dedent(
        """
        import sys
        from sketchrnn import HParams
        from sketchrnn.train import train
        s = train(sys.argv[1], HParams.preset("tiny").replace(save_every=1000), data=[sys.argv[2]], steps=100000,
                  seed=4, progress=False)
        print("STOPPED", s.stopped, s.step, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(run), str(SUBSET)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    start = time.monotonic()
    while not (run / "metrics.jsonl").exists() or len(metrics(run, "train")) < 2:  # steps 1 and 20 logged
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() - start < 120, "training never reached step 20"
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    _, stopped, step = out.split()[-3:]
    assert stopped == "interrupted" and int(step) >= 20
    assert read_pointer(run)["last_step"] == int(step)
    resumed = train(run, resume=True, steps=int(step) + 2, progress=False)
    assert resumed.step == int(step) + 2


@pytest.mark.parametrize("step, total, elapsed", [(1, 300, 0.4), (29545, 10_000_000, 591.0), (99, 100, 7200.0)])
def test_progress_line_fits_a_100_column_terminal(step, total, elapsed) -> None:
    from tqdm import tqdm

    from sketchrnn.train.loop import BAR_FORMAT, progress_figures

    figures = progress_figures(-1.2345, -1.5678, 0.8765, 17634.0)
    line = tqdm.format_meter(step, total, elapsed, ncols=100, bar_format=BAR_FORMAT, postfix=figures, unit="step")
    assert len(line) <= 100 and line.endswith("17634 sk/s"), line  # nothing cut off
    assert re.search(r"\|[█▏▎▍▌▋▊▉ ]{10}\|", line), line  # the bar keeps its width


def test_a_second_training_of_the_same_run_is_refused(tmp_path):
    """Two trainings into one folder would interleave their files: the second is refused before it
    writes, and a holder killed outright (SIGKILL) leaves the run free."""
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys, time
            from pathlib import Path
            from sketchrnn.train.checkpoint import writing
            with writing(Path(sys.argv[1])):
                print("held", flush=True)
                time.sleep(120)
        """), str(run)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(TrainingError, match=rf"another training is writing this run \(process {holder.pid}\)"):
            train(run, TINY, data=[SUBSET], steps=2, progress=False)
        assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing of the second one
    finally:
        holder.kill()
        holder.wait()
    summary = train(run, TINY, data=[SUBSET], steps=2, progress=False)
    assert summary.step == 2 and (run / "run.json").is_file()


def test_a_refused_start_leaves_no_folder(tmp_path):
    with pytest.raises(ValueError, match="missing.npz"):
        train(tmp_path / "never", TINY, data=[tmp_path / "missing.npz"], steps=2, progress=False)
    assert not (tmp_path / "never").exists()


def test_data_without_validation_sketches_is_refused_before_training(tmp_path):
    """Validation picks the best model: no valid sketch (here none short enough) is refused at once,
    not at the first save_every, when the steps so far would be lost."""
    import numpy as np

    from sketchrnn.data import save_npz

    rng = np.random.default_rng(0)

    def sketches(n, length):
        out = rng.integers(-20, 20, size=(n, length, 3)).astype(np.int16)
        out[:, :, 2] = 0
        out[:, -1, 2] = 1
        return list(out)

    path = tmp_path / "short_train.npz"
    save_npz(path, {"train": sketches(40, 8), "valid": sketches(8, 30), "test": sketches(8, 8)})
    with pytest.raises(TrainingError, match=r"short_train.npz: no valid sketches of at most 12 points \(--max-seq-len; 8 before that\)"):
        train(tmp_path / "run", TINY, data=[path], steps=5, max_seq_len=12, progress=False)
    assert not (tmp_path / "run").exists()


def test_a_filesystem_without_locks_warns_and_trains(tmp_path, monkeypatch):
    """Some cluster mounts have no flock (ENOSYS): training goes on, unguarded, and says so."""
    import errno
    import fcntl

    def no_flock(*args):
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(fcntl, "flock", no_flock)
    with pytest.warns(UserWarning, match="this filesystem cannot lock files"):
        summary = train(tmp_path / "run", TINY, data=[SUBSET], steps=2, progress=False)
    assert summary.step == 2
