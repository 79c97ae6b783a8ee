"""Data-parallel training steps: 1 process against N processes at the same global batch, and the
all-reduce's share of a step.

    python benchmarks/ddp.py [--procs 2] [--steps 4] [--hparams ...]

Runs `torchrun --nproc-per-node P` of this script for P = 1 and P = --procs (each process with
cores/P torch threads), each timing forward + backward (+ DDP's gradient all-reduce) on its share
of the same global batches, drawn as `sketchrnn train` draws them under torchrun. Then, in the
N-process group, the all-reduce of the whole gradient alone (every parameter, float32), timed
apart from the step: on a machine this size it is the part of a step that more processes add.
Prints seconds per step for both and the ratio, and the all-reduce's share of the N-process step.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time


def worker(args: argparse.Namespace) -> None:
    import torch
    import torch.distributed as dist

    from sketchrnn import HParams, SketchRNN
    from sketchrnn.data import load_dataset
    from sketchrnn.data.sources import bundled_path
    from sketchrnn.model import WorkBuffers
    from sketchrnn.train.parallel import Parallel

    par = Parallel.start(torch.device(args.device))
    device = par.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    if device.type == "cpu":
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // par.world))
    data = load_dataset([bundled_path()], seed=0)
    hps = (HParams.parse(args.hparams) if args.hparams else HParams()).replace(max_seq_len=data.max_seq_len)
    torch.manual_seed(0)
    model = SketchRNN(hps).to(device).train()
    module, work = par.wrap(model), WorkBuffers()
    times = []
    for step in range(args.warmup + args.steps):
        batch = data.train.batch_at(0, step, hps.batch_size, par.share(hps.batch_size))
        sync()
        par.barrier()
        t0 = time.perf_counter()
        with work.active():
            loss = module(torch.from_numpy(batch.inputs).to(device), torch.from_numpy(batch.lengths).to(device), 0.5,
                          par.draws(0, step, hps.batch_size), par.mean)
            for p in model.parameters():
                p.grad = None
            loss.cost.backward()
        sync()
        par.barrier()
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
    flat = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    reduce_times = []
    if par.world > 1:
        for _ in range(args.warmup + 10):
            sync()
            par.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(flat)
            sync()
            reduce_times.append(time.perf_counter() - t0)
        reduce_times = reduce_times[args.warmup:]
    if par.main:
        print(json.dumps({"world": par.world, "threads": torch.get_num_threads(), "step": statistics.median(times),
                          "all_reduce": statistics.median(reduce_times) if reduce_times else 0.0,
                          "parameters": flat.numel(), "batch_size": hps.batch_size}))
    par.close()


def launch(procs: int, args: argparse.Namespace) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(procs),
           "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", __file__, "--worker",
           "--steps", str(args.steps), "--warmup", str(args.warmup), "--hparams", args.hparams, "--device", args.device]
    env = {**os.environ, "GLOO_SOCKET_IFNAME": "lo", "OMP_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // procs))}
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--hparams", default="", help="overrides of the default (paper) configuration")
    parser.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL, one GPU per process)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    one, many = launch(1, args), launch(args.procs, args)
    megabytes = many["parameters"] * 4 / 1e6
    print(f"global batch {one['batch_size']}, {one['parameters']:,d} parameters ({megabytes:.1f} MB of float32 "
          f"gradients), {os.cpu_count()} cores")
    print(f"1 process  x {one['threads']} threads: {one['step']:.3f} s/step ({args.device})")
    print(f"{many['world']} processes x {many['threads']} threads: {many['step']:.3f} s/step "
          f"(ratio {many['step'] / one['step']:.2f} to one process)")
    print(f"all-reduce of the whole gradient alone: {many['all_reduce'] * 1e3:.1f} ms = "
          f"{100 * many['all_reduce'] / many['step']:.1f}% of the {many['world']}-process step")


if __name__ == "__main__":
    main()
