"""Data-parallel training with real processes: torchrun, gloo over 127.0.0.1, the same numbers on 1 and 2 processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import sketchrnn
from conftest import GOLDEN_TF

SUBSET = GOLDEN_TF / "aaron_sheep_subset_le60.npz"
# recurrent dropout (keep 0.9) and augmentation (random scale 0.15, point dropping 0.10) are the tiny preset's
HPARAMS = "batch_size=8,save_every=10,use_recurrent_dropout=1,augment_stroke_prob=0.1,random_scale_factor=0.15"
TRAIN = ["--preset", "tiny", "--data", str(SUBSET), "--hparams", HPARAMS, "--seed", "3", "--log-every", "1",
         "--quiet"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment() -> dict[str, str]:
    # one thread per process on two cores; gloo on the loopback interface only
    return {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}


def torchrun(nproc: int, run: Path, steps: int, max_restarts: int = 0) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(nproc),
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{free_port()}",
           "--max-restarts", str(max_restarts), "--monitor-interval", "0.2",
           "-m", "sketchrnn", "train", *TRAIN, "--out", str(run), "--steps", str(steps)]
    return subprocess.Popen(cmd, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen, timeout: float = 240) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out[-3000:]
    return out


def train_costs(run: Path) -> dict[int, float]:
    """The training cost of every step (the last record of a step that was run twice)."""
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["cost"] for r in records if r["kind"] == "train"}


def final_weights(run: Path) -> dict[str, torch.Tensor]:
    return sketchrnn.load(run, which="last").state_dict()


def assert_same_run(a: Path, b: Path) -> None:
    costs_a, costs_b = train_costs(a), train_costs(b)
    assert sorted(costs_a) == sorted(costs_b) == list(range(1, 31))
    for step in costs_a:
        assert costs_b[step] == pytest.approx(costs_a[step], abs=1e-5, rel=1e-5), step
    wa, wb = final_weights(a), final_weights(b)
    for name in wa:
        torch.testing.assert_close(wb[name], wa[name], atol=1e-5, rtol=1e-5, msg=name)


def files(run: Path) -> list[str]:
    return sorted(str(p.relative_to(run)) for p in run.rglob("*"))


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ddp") / "two"
    finish(torchrun(2, run, 30))
    return run


def test_one_and_two_processes_train_the_same_model(tmp_path, two_process_run) -> None:
    """Every step's loss and the final weights agree to 1e-5; rank 1 wrote nothing (the same files,
    each metrics line once)."""
    one = tmp_path / "one"
    finish(torchrun(1, one, 30))
    assert_same_run(one, two_process_run)
    assert files(one) == files(two_process_run)
    lines = (two_process_run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == len((one / "metrics.jsonl").read_text().splitlines())
    assert json.loads((two_process_run / "run.json").read_text())["batch_draws"] == "position"


def test_a_two_process_run_resumed_on_one_process_equals_the_uninterrupted_run(tmp_path, two_process_run) -> None:
    run = tmp_path / "stopped"
    finish(torchrun(2, run, 15))
    resumed = subprocess.run([sys.executable, "-m", "sketchrnn", "train", "--resume", "--out", str(run),
                              "--steps", "30", "--quiet", "--log-every", "1"],
                             env=environment(), capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same_run(run, two_process_run)


def worker_of_rank(agent: int, rank: int) -> int | None:
    """The pid of torchrun's worker process of `rank`, a child of the agent process `agent`."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            env = (proc / "environ").read_bytes().split(b"\0") if ppid == agent else []
        except (OSError, IndexError, ValueError):
            continue
        if f"RANK={rank}".encode() in env:
            return int(proc.name)
    return None


def test_a_killed_worker_is_restarted_and_the_run_finishes_with_the_same_weights(tmp_path, two_process_run) -> None:
    """SIGKILL rank 1 once the step-10 checkpoint is on disk: torchrun (--max-restarts 1) restarts the
    group, which resumes from that checkpoint by itself and ends where the uninterrupted run ended."""
    run = tmp_path / "killed"
    proc = torchrun(2, run, 30, max_restarts=1)
    deadline = time.monotonic() + 180
    while not (run / "checkpoints" / "last-00000010").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.005)
    victim = worker_of_rank(proc.pid, 1)
    assert victim is not None, "no worker of rank 1 under torchrun"
    os.kill(victim, signal.SIGKILL)
    out = finish(proc)  # exit status 0: the restarted group finished the run
    assert "exitcode: -9" in out, "torchrun saw no worker killed\n" + out[-3000:]
    assert_same_run(run, two_process_run)
