"""How good a trained model is, against a known limit: a teacher–student benchmark.

    python benchmarks/quality.py [--teacher sheep] [--k 20000] [--preset tiny] [--hparams ...]
                                 [--minutes 4 | --steps N] [--eval-every 250] [--work runs/quality]

The teacher is an official model (default: the sheep, `../shared/models/magenta-js/`), an
unconditional sketch-rnn, so its density of a sketch is exact. It draws K sketches at τ = 1 with a
fixed seed, written once as a packed file (offsets rounded to integers, as Quick, Draw! data are)
and split 90/5/5. A student (unconditional, `--preset`/`--hparams`) trains on the train split.
On the test samples, no student can do better on average than the teacher's own negative
log-likelihood (the entropy of its distribution, up to the rounding): the student's NLL minus the
teacher's, per sketch and in data units (so the two scale factors do not matter), estimates the
KL divergence from teacher to student. Prints the teacher's NLL (the limit), the student's and the
gap with its standard error (paired over the test sketches), after every `--eval-every` steps for
the student's best checkpoint on validation, and writes the curve as a PNG.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

import sketchrnn
from sketchrnn import HParams
from sketchrnn.data import MemorySplit, read_splits
from sketchrnn.data.packed import save_packed
from sketchrnn.train import train
from sketchrnn.train.loop import split_likelihood

SHARED_MODELS = Path(__file__).resolve().parents[2] / "shared" / "models" / "magenta-js"


def teacher_samples(teacher: sketchrnn.SketchRNN, k: int, seed: int, path: Path) -> Path:
    """K sketches at τ = 1 as a packed file of train/valid/test (90/5/5), written once."""
    if path.exists():
        return path
    sketches: list[np.ndarray] = []
    t0 = time.perf_counter()
    for start in range(0, k, 1000):
        sketches += teacher.sample(min(1000, k - start), temperature=1.0, seed=seed + start)
    drawn = [np.concatenate([np.round(s[:, :2]), s[:, 2:]], axis=1).astype(np.int16) for s in sketches]
    n_valid = n_test = k // 20
    splits = {"train": drawn[: k - n_valid - n_test], "valid": drawn[k - n_valid - n_test : k - n_test],
              "test": drawn[k - n_test :]}
    save_packed(path, splits, {name: np.zeros(len(v), dtype=np.int64) for name, v in splits.items()}, ["teacher"])
    print(f"teacher drew {k} sketches in {time.perf_counter() - t0:.0f} s -> {path}")
    return path


def nll(model: sketchrnn.SketchRNN, sketches: list[np.ndarray]) -> np.ndarray:
    """Per-sketch NLL in data units."""
    n_max = max(len(s) for s in sketches)
    return split_likelihood(model, MemorySplit(sketches, n_max, model.scale_factor), 200).nll


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="sheep", help="an official gen model's name or file (default sheep)")
    parser.add_argument("--k", type=int, default=20000, help="teacher samples (default 20000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--hparams", default="", help="the student's settings on top of the preset")
    parser.add_argument("--minutes", type=float, default=4.0, help="the student's training budget")
    parser.add_argument("--steps", type=int, help="a budget in steps instead of minutes")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between points of the curve")
    parser.add_argument("--work", default="runs/quality", help="folder for the samples and the student's run")
    parser.add_argument("--name", default=None, help="the student run's name (default: from the settings)")
    args = parser.parse_args()

    teacher_file = Path(args.teacher)
    if not teacher_file.exists():
        teacher_file = SHARED_MODELS / f"{args.teacher}.gen.json"
    teacher = sketchrnn.load(teacher_file if teacher_file.exists() else args.teacher)
    if teacher.hps.conditional:
        raise SystemExit(f"{args.teacher}: the teacher must be unconditional (a .gen.json) for an exact density")
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    data = teacher_samples(teacher, args.k, args.seed, work / f"{teacher_file.stem}-k{args.k}-s{args.seed}.npz")
    test = read_splits([data])["test"]
    limit = nll(teacher, test)
    print(f"teacher {teacher_file.name}: NLL {limit.mean():.2f} ± {limit.std(ddof=1) / math.sqrt(len(limit)):.2f} "
          f"nats per sketch on {len(test)} test samples (the limit)")

    hps = HParams.parse(args.hparams, base=HParams.preset(args.preset)).replace(
        conditional=False, save_every=args.eval_every)
    name = args.name or f"student-{args.preset}-{hps.dec_model}" + (f"-{args.hparams}" if args.hparams else "")
    run = work / name.replace("/", "_").replace(",", "_").replace("=", "")
    curve = []
    t0 = time.perf_counter()
    step, resume = 0, False
    while True:
        target = step + args.eval_every
        if args.steps is not None and target > args.steps:
            break
        left = None if args.steps is not None else args.minutes - (time.perf_counter() - t0) / 60
        if left is not None and left <= 0:
            break
        summary = train(run, None if resume else hps, data=None if resume else [data], steps=target,
                        minutes=left, seed=args.seed, resume=resume, progress=False)
        resume, step = True, summary.step
        if summary.stopped == "minutes" and step % args.eval_every:
            break  # out of time between two validations: the curve ends at the last one
        student = sketchrnn.load(run, which="best")
        gap = nll(student, test) - limit
        curve.append({"step": step, "minutes": (time.perf_counter() - t0) / 60, "student": float((limit + gap).mean()),
                      "gap": float(gap.mean()), "gap_stderr": float(gap.std(ddof=1) / math.sqrt(len(gap)))})
        c = curve[-1]
        print(f"step {step:6d} ({c['minutes']:.1f} min): student NLL {c['student']:.2f}, gap {c['gap']:.2f} "
              f"± {c['gap_stderr']:.2f} nats per sketch", flush=True)
    if not curve:
        raise SystemExit("the budget ended before the first evaluation: raise --minutes or lower --eval-every")
    last = curve[-1]
    print(f"after {last['step']} steps ({last['minutes']:.1f} min, {hps.dec_model} {hps.dec_rnn_size}): teacher "
          f"{limit.mean():.2f}, student {last['student']:.2f}, gap {last['gap']:.2f} ± {last['gap_stderr']:.2f} "
          f"nats per sketch (first point of the curve: gap {curve[0]['gap']:.2f} at step {curve[0]['step']})")
    (run / "quality.json").write_text(json.dumps({"teacher_nll": float(limit.mean()), "curve": curve}, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no matplotlib: the curve is in quality.json only (pip install 'sketchrnn[plot]')")
        return
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    steps = [c["step"] for c in curve]
    ax.errorbar(steps, [c["gap"] for c in curve], yerr=[c["gap_stderr"] for c in curve], marker="o", markersize=3,
                label=f"student {hps.dec_model} {hps.dec_rnn_size} − teacher")
    ax.axhline(0, color="black", linewidth=0.8, label="the limit (teacher's own NLL)")
    ax.set_xlabel("training step")
    ax.set_ylabel("NLL gap, nats per sketch")
    ax.set_title(f"student on {args.k} samples of {teacher_file.stem}")
    ax.legend()
    out = run / "quality.png"
    fig.savefig(out, dpi=100)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
