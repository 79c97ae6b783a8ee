"""sketchrnn on a shared CPU: each workload quiet, then beside one and two CPU-bound competitors.

Workloads (each timed in a fresh process of its own, after a warm-up):
  train   a default-configuration training step (batch 100, enc 256, dec 512, z 128, M 20,
          dec_model=lstm, recurrent dropout on) on the bundled aaron_sheep, median of a few steps
  eval    `sketchrnn eval` of a small run (the tiny preset, trained here for a few steps) on the
          test split: losses and per-sketch log-likelihood of its 300 sketches
  sample  100 sketches in one batch at τ = 0.5 from the official sheep model

A competitor is a Python busy loop (one thread each), started and stopped by this script (each
also ends itself after ten minutes). Figures are ratios to the quiet run of the same workload in
this run; a fair share of 2 cores is 1.5x with one competitor and 2x with two (our process runs
one thread per free core). `--fixed-threads` runs the same with thread adaptation off
(``SKETCHRNN_THREADS=0``: torch's default count throughout), which is how sketchrnn ran before.

    python benchmarks/contention.py
    python benchmarks/contention.py --workloads eval,sample --fixed-threads
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHEEP = Path(__file__).resolve().parents[2] / "shared" / "models" / "magenta-js" / "sheep.gen.json"
COMPETITOR = "import time\nend = time.monotonic() + 600\nwhile time.monotonic() < end:\n    pass\n"


def work_train(repeats: int) -> list[float]:
    import torch

    from sketchrnn import HParams, SketchRNN
    from sketchrnn.data import load_dataset
    from sketchrnn.data.sources import bundled_path

    torch.manual_seed(0)
    data = load_dataset([bundled_path()], seed=0)
    hps = HParams().replace(max_seq_len=data.max_seq_len)
    model = SketchRNN(hps, scale_factor=data.scale_factor).train()
    batch = data.train.random_batch(hps.batch_size)
    x, lengths = torch.from_numpy(batch.inputs), torch.from_numpy(batch.lengths)
    times = []
    for k in range(repeats + 1):  # the first step builds buffers (and kernels): not timed
        t0 = time.perf_counter()
        loss = model.compute_loss(x, lengths, 0.5).cost
        for p in model.parameters():
            p.grad = None
        loss.backward()
        if k:
            times.append(time.perf_counter() - t0)
    return times


def work_eval(repeats: int, run_dir: str) -> list[float]:
    import contextlib
    import io

    from sketchrnn.cli import main

    times = []
    for k in range(repeats + 1):
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            main(["eval", run_dir, "--split", "test"])
        if k:
            times.append(time.perf_counter() - t0)
    return times


def work_sample(repeats: int) -> list[float]:
    import sketchrnn

    model = sketchrnn.load(SHEEP)
    times = []
    for k in range(repeats + 1):
        t0 = time.perf_counter()
        model.sample(100, temperature=0.5, seed=k)
        if k:
            times.append(time.perf_counter() - t0)
    return times


def worker(name: str, repeats: int, run_dir: str) -> None:
    """Runs in the timed child process: prints the times as JSON."""
    times = {"train": lambda: work_train(repeats), "eval": lambda: work_eval(repeats, run_dir),
             "sample": lambda: work_sample(repeats)}[name]()
    import torch

    print(json.dumps({"times": times, "threads_after": torch.get_num_threads()}))


def timed(name: str, repeats: int, run_dir: str, env: dict) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", name, "--repeats", str(repeats), "--run", run_dir],
                         check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def small_run(directory: str, env: dict) -> str:
    """A tiny-preset run trained for a few steps: what `eval` reads."""
    run = os.path.join(directory, "run")
    subprocess.run([sys.executable, "-m", "sketchrnn.cli", "train", "--preset", "tiny", "--steps", "20",
                    "--out", run, "--quiet"], check=True, capture_output=True, env=env)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default="train,eval,sample")
    parser.add_argument("--competitors", default="0,1,2", help="numbers of competing processes")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions per workload and condition")
    parser.add_argument("--fixed-threads", action="store_true", help="thread adaptation off (SKETCHRNN_THREADS=0)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--run", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.repeats, args.run)
        return
    env = dict(os.environ)
    if args.fixed_threads:
        env["SKETCHRNN_THREADS"] = "0"
    counts = [int(c) for c in args.competitors.split(",")]
    workloads = args.workloads.split(",")
    print(f"{os.cpu_count()} CPUs; thread adaptation {'off' if args.fixed_threads else 'on'}; "
          f"median of {args.repeats} timed runs per workload and condition")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = small_run(tmp, env) if "eval" in workloads else ""
        results: dict[str, dict[int, float]] = {w: {} for w in workloads}
        for n in counts:
            procs = [subprocess.Popen([sys.executable, "-c", COMPETITOR]) for _ in range(n)]
            try:
                time.sleep(0.5 if n else 0)
                for w in workloads:
                    r = timed(w, args.repeats, run_dir, env)
                    results[w][n] = statistics.median(r["times"])
                    print(f"  {w:>6s}, {n} competitor{'s' if n != 1 else ''}: "
                          f"{results[w][n]:7.3f} s (runs {', '.join(f'{t:.2f}' for t in r['times'])}; "
                          f"torch threads at the end {r['threads_after']})", flush=True)
            finally:
                for p in procs:
                    p.kill()
                    p.wait()
    print("ratios to quiet (target on 2 cores: at most 2.0 with one competitor, 3.0 with two):")
    for w in workloads:
        quiet = results[w].get(0)
        if quiet:
            print(f"  {w:>6s}: quiet {quiet:.3f} s; " +
                  ", ".join(f"{n} competitor{'s' if n != 1 else ''} {results[w][n] / quiet:.2f}x"
                            for n in counts if n))


if __name__ == "__main__":
    main()
