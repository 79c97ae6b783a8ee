"""Data-parallel training on PyTorch's distributed engine, launched by torchrun.

Each process computes the gradient of its share of the global batch; DistributedDataParallel
averages the gradients (gloo on CPUs, NCCL on GPUs), and every process then takes the same
optimizer step. So that 1, 2 or N processes train the same model, every random draw of a step is
a function of (seed, step, position in the global batch) and not of the process: which sketches
form the batch and their augmentation (`SketchSplit.batch_at`), the encoder noise and the dropout
masks (`model.recurrence.RowDraws`). The one non-linear batch statistic, max(L_KL, kl_tolerance),
is decided on the global L_KL (`SketchRNN.compute_loss(global_mean=...)`). Only rank 0 writes
files; the others wait at a barrier while it validates and saves.

Runs that use these draws say so in run.json (``"batch_draws": "position"``) and keep them when
resumed, on any number of processes; a run started by plain `sketchrnn train` keeps the
reference's stream of draws (one process only).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..model import SketchRNN
from ..model.recurrence import RowDraws

POSITION_DRAWS = "position"  # run.json "batch_draws": per (seed, step, position)
STREAM_DRAWS = "stream"  # the reference's: one stream of draws per split and torch's generator


def launched() -> bool:
    """Whether this process was started by torchrun (or another launcher that sets WORLD_SIZE)."""
    return "WORLD_SIZE" in os.environ and "RANK" in os.environ


def restarted() -> bool:
    """Whether torchrun restarted this process group after a failure (`--max-restarts`)."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")) > 0


@dataclass
class Parallel:
    """This process's place in the group: rank, number of processes, and the device it trains on."""

    rank: int
    world: int
    device: torch.device
    group: bool  # whether a process group is running (False: one process on its own)

    @classmethod
    def start(cls, device: torch.device) -> Parallel:
        """Join the process group torchrun set up (gloo on the CPU, NCCL with one GPU per local rank)."""
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            # the rendezvous store outlives a restart: a fresh prefix per attempt keeps a restarted
            # group from reading the addresses its failed predecessor left there
            timeout = datetime.timedelta(minutes=30)
            store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world, is_master=False,
                                  timeout=timeout)
            attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timeout, rank=rank,
                                    world_size=world, store=dist.PrefixStore(f"sketchrnn/attempt-{attempt}", store))
        return cls(rank, world, device, True)

    @classmethod
    def alone(cls, device: torch.device) -> Parallel:
        """One process training a run with position draws, without a process group."""
        return cls(0, 1, device, False)

    @property
    def shared(self) -> bool:
        """Whether other processes take part (a group of more than one)."""
        return self.group and self.world > 1

    @property
    def main(self) -> bool:
        """Whether this process writes the run's files (rank 0)."""
        return self.rank == 0

    def share(self, batch_size: int) -> range:
        """This process's positions in a global batch of `batch_size`."""
        if batch_size % self.world:
            raise ValueError(f"batch_size={batch_size} is the global batch and must divide evenly among "
                             f"{self.world} processes")
        n = batch_size // self.world
        return range(self.rank * n, (self.rank + 1) * n)

    def draws(self, seed: int, step: int, batch_size: int) -> RowDraws:
        """The random draws of this process's rows of step `step`."""
        return RowDraws(seed, step, self.share(batch_size))

    def mean(self, t: Tensor) -> Tensor:
        """The mean of `t` over all processes (each holds the mean over its equal share)."""
        return self.total(t) / self.world if self.shared else t

    def total(self, t: Tensor) -> Tensor:
        """The sum of `t` over all processes (the step's figures, and how many had a non-finite loss or
        gradient: one NaN skips the step everywhere)."""
        if not self.shared:
            return t
        t = t.clone()
        dist.all_reduce(t)
        return t

    def agree(self, *flags: bool) -> tuple[bool, ...]:
        """Rank 0's values of `flags` on every process (whether to stop now, so that all stop together)."""
        if not self.shared:
            return flags
        values = torch.tensor([float(f) for f in flags], device=self.device)
        dist.broadcast(values, src=0)
        return tuple(bool(v) for v in values.tolist())

    def barrier(self) -> None:
        if self.shared:
            dist.barrier()

    def wrap(self, model: SketchRNN) -> nn.Module:
        """The module whose forward is the training loss, under DistributedDataParallel in a group."""
        loss = TrainingLoss(model)
        if not self.group:
            return loss
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(loss, device_ids=ids)

    def close(self) -> None:
        if self.group and dist.is_initialized():
            dist.barrier()  # nobody leaves while another still talks to it
            dist.destroy_process_group()


class TrainingLoss(nn.Module):
    """`SketchRNN.compute_loss` as a module's forward, for DistributedDataParallel to hook."""

    def __init__(self, model: SketchRNN) -> None:
        super().__init__()
        self.model = model

    def forward(self, inputs: Tensor, lengths: Tensor, kl_weight: float, draws: RowDraws,  # type: ignore[override]
                global_mean: Any) -> Any:
        return self.model.compute_loss(inputs, lengths, kl_weight, draws=draws, global_mean=global_mean)
