"""Seconds per training step for each decoder cell, against a fused nn.LSTM baseline in the same run.

Each cell runs in a process of its own with its own baseline (a step of another model before the
baseline's leaves the allocator in a state that slows the baseline, which would flatter the
ratio); within the process, baseline and cell steps are timed in turns so that the machine's speed
changing during the run affects both alike. The ratio is of medians; the range of the per-round
ratios is printed beside it. Default configuration (batch 100, encoder 256, decoder 512,
z 128, M 20) on the bundled aaron_sheep data (N_max 250), recurrent dropout on. The baseline is PyTorch's fused `nn.LSTM`
for a bidirectional encoder and the decoder, with the same mixture loss and output layer,
forward + backward, no dropout: the practical bound for these shapes.

    python benchmarks/train_step.py                       # lstm, layer_norm, hyper
    python benchmarks/train_step.py --cells lstm --repeats 5
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from sketchrnn import HParams, SketchRNN
from sketchrnn.data import load_dataset
from sketchrnn.data.sources import bundled_path
from sketchrnn.model import WorkBuffers
from sketchrnn.model.mixture import reconstruction_terms, split_output


class FusedBaseline(nn.Module):
    """Encoder + decoder + output layer of sketch-rnn's shapes built from fused nn.LSTM (no dropout)."""

    def __init__(self, hps: HParams) -> None:
        super().__init__()
        self.hps = hps
        self.encoder = nn.LSTM(5, hps.enc_rnn_size, batch_first=True, bidirectional=True)
        self.mu = nn.Linear(2 * hps.enc_rnn_size, hps.z_size)
        self.presig = nn.Linear(2 * hps.enc_rnn_size, hps.z_size)
        self.init = nn.Linear(hps.z_size, 2 * hps.dec_rnn_size)
        self.decoder = nn.LSTM(5 + hps.z_size, hps.dec_rnn_size, batch_first=True)
        self.output = nn.Linear(hps.dec_rnn_size, 6 * hps.num_mixture + 3)

    def loss(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = inputs[:, 1:]
        out, _ = self.encoder(x)
        n = self.hps.enc_rnn_size
        last = torch.cat([out[torch.arange(len(x)), lengths - 1, :n], out[:, 0, n:]], dim=1)
        mu, presig = self.mu(last), self.presig(last)
        z = mu + torch.exp(presig / 2) * torch.randn_like(mu)
        h0, c0 = torch.tanh(self.init(z)).chunk(2, dim=1)
        dec_in = torch.cat([inputs[:, :-1], z[:, None].expand(-1, x.shape[1], -1)], dim=-1)
        h, _ = self.decoder(dec_in, (h0[None].contiguous(), c0[None].contiguous()))
        offset, pen, _ = reconstruction_terms(split_output(self.output(h), self.hps.num_mixture), x)
        kl = -0.5 * torch.mean(1 + presig - mu**2 - torch.exp(presig))
        return (offset + pen).mean() + 0.5 * torch.clamp(kl, min=0.2)


def run_step(model: SketchRNN, work: WorkBuffers, batch) -> torch.Tensor:
    """The training loss of `batch`, its loops reusing `work` as a training run does (the backward
    gives the buffers back to the pool its forward took them from)."""
    with work.active():
        return model.compute_loss(batch[0], batch[1], 0.5).cost


def one_step(loss_fn, params, batch) -> float:
    """Seconds for one forward + backward (waiting for a GPU to finish)."""
    sync = torch.cuda.synchronize if batch[0].is_cuda else (lambda: None)
    sync()
    t0 = time.perf_counter()
    loss = loss_fn(batch)
    for p in params:
        p.grad = None
    loss.backward()
    sync()
    return time.perf_counter() - t0


def interleaved(contenders: dict, batches, repeats: int, warmup: int) -> dict[str, list[float]]:
    """Times of each contender's steps, taken in turns (A B C, A B C, ...) so that a change in the
    machine's speed during the run falls on all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for k in range(warmup + repeats):
        batch = batches[k % len(batches)]
        for name, (loss_fn, params) in contenders.items():
            t = one_step(loss_fn, params, batch)
            if k >= warmup:
                times[name].append(t)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", default="lstm,layer_norm,hyper")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--hparams", default="", help="overrides of the default configuration")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (the baseline is then cuDNN's nn.LSTM)")
    args = parser.parse_args()
    cells = args.cells.split(",")
    if len(cells) > 1:  # each cell against its own baseline, in a process of its own
        for k, cell in enumerate(cells):
            argv = ["--cells", cell, "--repeats", str(args.repeats), "--warmup", str(args.warmup),
                    "--threads", str(args.threads), "--hparams", args.hparams, "--device", args.device]
            out = subprocess.run([sys.executable, __file__, *argv], check=True,
                                 capture_output=True, text=True).stdout.splitlines()
            print("\n".join(out if k == 0 else out[1:]))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    base = HParams.parse(args.hparams) if args.hparams else HParams()
    data = load_dataset([bundled_path()], seed=0)
    base = base.replace(max_seq_len=data.max_seq_len)
    batches = [data.train.random_batch(base.batch_size) for _ in range(2)]
    device = torch.device(args.device)
    tensors = [(torch.from_numpy(b.inputs).to(device), torch.from_numpy(b.lengths).to(device)) for b in batches]
    print(f"aaron_sheep, N_max {data.max_seq_len}, batch {base.batch_size}, enc {base.enc_rnn_size}, "
          f"dec {base.dec_rnn_size}, z {base.z_size}, M {base.num_mixture}, torch threads {torch.get_num_threads()}, "
          f"{device}")

    baseline = FusedBaseline(base).to(device)
    contenders = {"fused nn.LSTM baseline": (lambda b: baseline.loss(*b), list(baseline.parameters()))}
    for cell in args.cells.split(","):
        model = SketchRNN(base.replace(dec_model=cell)).to(device).train()
        contenders[f"dec_model={cell} (dropout on)"] = (lambda b, m=model, w=WorkBuffers(): run_step(m, w, b),
                                                       list(model.parameters()))
    times = interleaved(contenders, tensors, args.repeats, args.warmup)
    ref_s = statistics.median(times["fused nn.LSTM baseline"])
    for name, ts in times.items():
        s = statistics.median(ts)
        ratios = sorted(t / r for t, r in zip(ts, times["fused nn.LSTM baseline"]))
        print(f"{name:>34s}: {s:7.3f} s/step  (ratio {s / ref_s:.2f}; step by step {ratios[0]:.2f}-{ratios[-1]:.2f})")
    t0 = time.perf_counter()
    for _ in range(10):
        data.train.random_batch(base.batch_size)  # augmentation (scaling, point dropping) and padding
    prep = (time.perf_counter() - t0) / 10
    print(f"data preparation per batch: {prep * 1e3:.1f} ms = {100 * prep / ref_s:.2f}% of the baseline step")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
