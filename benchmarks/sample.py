"""Sketches per second: batched sampling against our own one-sketch-at-a-time sampler, same run.

By default the official magenta-js sheep model (LSTM 512, M 20; ../shared/models/magenta-js),
so sketches have realistic lengths; `--model` takes any model sketchrnn.load reads.

    python benchmarks/sample.py                   # 1000 sketches at τ = 0.5 vs 20 one at a time
    python benchmarks/sample.py --n 200 --single 10

It ends with completion (`SketchRNN.complete`, 9 alternatives) against sampling 9 sketches of the
same length.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

import sketchrnn

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "shared" / "models" / "magenta-js" / "sheep.gen.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--n", type=int, default=1000, help="sketches in the batched run")
    parser.add_argument("--single", type=int, default=20, help="sketches drawn one at a time for the baseline")
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    model = sketchrnn.load(args.model).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    print(f"{args.model}: dec {model.hps.dec_model} {model.hps.dec_rnn_size}, M {model.hps.num_mixture}, "
          f"N_max {model.hps.max_seq_len}, torch threads {torch.get_num_threads()}")

    t0 = time.perf_counter()
    singles = [model.sample(1, temperature=args.temperature, seed=i)[0] for i in range(args.single)]
    single_s = time.perf_counter() - t0
    single_rate = args.single / single_s

    t0 = time.perf_counter()
    batch = model.sample(args.n, temperature=args.temperature, seed=0)
    batch_s = time.perf_counter() - t0
    batch_rate = args.n / batch_s
    steps = max(len(s) for s in batch) + 1

    # the decoder step's matrix multiply alone, at the full batch
    h = torch.randn(args.n, model.hps.dec_rnn_size, device=device)
    w = model.dec_cell.W_hh.detach()
    reps = 20
    sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.addmm(torch.zeros(args.n, w.shape[1], device=device), h, w)
    sync()
    matmul_s = (time.perf_counter() - t0) / reps
    per_step = batch_s / steps

    mean_len = sum(len(s) for s in batch) / len(batch)
    print(f"one at a time: {args.single} sketches in {single_s:.2f} s = {single_rate:.1f} sketches/s "
          f"(mean length {sum(len(s) for s in singles) / len(singles):.0f})")
    print(f"batched:       {args.n} sketches in {batch_s:.2f} s = {batch_rate:.1f} sketches/s "
          f"(mean length {mean_len:.0f}, {steps} steps)")
    print(f"speed-up: {batch_rate / single_rate:.1f}x (target >= 50x)")
    print(f"mean batched step {per_step * 1e3:.2f} ms vs its matrix multiply at full batch {matmul_s * 1e3:.2f} ms: "
          f"ratio {per_step / matmul_s:.2f} (target <= 2)")
    # the bound: every step costing no more than its h W_hh multiply, each sketch leaving the batch
    # when it ends (the multiply scales with the sketches still drawing)
    sketch_steps = sum(len(s) + 1 for s in batch)
    floor_s = matmul_s * sketch_steps / args.n
    print(f"matrix-multiply bound for the batch: {floor_s:.2f} s = {args.n / floor_s:.0f} sketches/s, "
          f"a speed-up of at most {args.n / floor_s / single_rate:.0f}x over the one-at-a-time sampler on this machine")

    completion_line(model, args.temperature)


def completion_line(model: sketchrnn.SketchRNN, temperature: float, given: int = 30, drawn: int = 30,
                    repeats: int = 5) -> None:
    """Completion of 9 (priming on `given` points, then `drawn` new ones) against sampling 9 of
    `given + drawn` points: both capped so that every sketch runs the same number of steps."""
    sketch = model.sample(1, temperature=temperature, seed=11, max_len=given)[0]
    if len(sketch) < given:
        print(f"completion: skipped (no sketch of {given} points drawn to prime on)")
        return
    complete_s, sample_s = [], []
    for r in range(repeats):  # interleaved, so that a busy moment costs both alike
        t0 = time.perf_counter()
        ends = model.complete(sketch, n=9, temperature=temperature, seed=r, max_len=drawn)
        complete_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        whole = model.sample(9, temperature=temperature, seed=r, max_len=given + drawn)
        sample_s.append(time.perf_counter() - t0)
    full = sum(len(c) == drawn for c in ends), sum(len(s) == given + drawn for s in whole)
    c, s_ = min(complete_s), min(sample_s)
    print(f"completion of 9 ({given} given + {drawn} drawn points): {c * 1e3:.0f} ms vs sampling 9 of "
          f"{given + drawn} points {s_ * 1e3:.0f} ms: ratio {c / s_:.2f} (target <= 1.5; best of {repeats}; "
          f"{full[0]}/9 and {full[1]}/9 ran to the cap)")


if __name__ == "__main__":
    main()
