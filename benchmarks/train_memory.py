"""Peak resident memory of a training process, default configuration, for each decoder cell.

Each cell trains in its own process (`sketchrnn train` on the bundled aaron_sheep, batch 100,
N_max 250, recurrent dropout on) for a few steps with validation and the final test evaluation
included, and the process's own peak resident set size is read from the operating system when
it exits. The baseline in the same run is a process that only imports torch and sketchrnn and
loads the data, so the figure above it is what training adds.

    python benchmarks/train_memory.py                 # lstm, layer_norm, hyper
    python benchmarks/train_memory.py --cells hyper --steps 6
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

BASELINE = "import torch, sketchrnn; from sketchrnn.data import load_dataset; load_dataset('aaron_sheep')"


def peak_mb(command: list[str]) -> float:
    """Run `command` and return its peak resident memory in MB (its own, not its children's)."""
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode() if proc.stderr else ""
    if status != 0:
        raise SystemExit(f"{' '.join(command)} failed ({status}):\n{err[-2000:]}")
    return usage.ru_maxrss / 1024  # kB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", default="lstm,layer_norm,hyper")
    parser.add_argument("--steps", type=int, default=4, help="training steps (validation every 2)")
    parser.add_argument("--limit-mb", type=float, default=2048, help="the target to compare with")
    args = parser.parse_args()
    base = peak_mb([sys.executable, "-c", BASELINE])
    print(f"{'torch + sketchrnn + data only':>32s}: {base:7.0f} MB")
    with tempfile.TemporaryDirectory() as tmp:
        for cell in args.cells.split(","):
            run = os.path.join(tmp, cell)
            mb = peak_mb([sys.executable, "-m", "sketchrnn.cli", "train", "--out", run, "--steps", str(args.steps),
                          "--hparams", f"dec_model={cell},save_every=2", "--quiet"])
            verdict = "within" if mb <= args.limit_mb else "OVER"
            print(f"{'training, dec_model=' + cell:>32s}: {mb:7.0f} MB  ({verdict} {args.limit_mb:.0f} MB; "
                  f"{mb - base:.0f} MB above the baseline)")


if __name__ == "__main__":
    main()
