"""The training loop: magenta's `sketch_rnn_train.train`, with exact resume and safe checkpoints.

Each step: lr and KL weight from the step count before the update, a random augmented batch,
``cost = L_R + w_KL · max(L_KL, kl_tolerance)``, element-wise gradient clipping, TF-style Adam.
Every `save_every` steps the model is evaluated on the validation split (no dropout, z sampled
with a fixed noise stream, KL weight `kl_weight_start` as the reference's eval model has it); the
best model on validation is saved and evaluated on the test split. A non-finite loss or gradient
skips the update; too many in a row stop training. Ctrl-C stops after the current step and saves.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..data import SketchData, SketchSplit, load_dataset, read_splits
from ..data.sources import names_file, resolve
from ..errors import TrainingError
from ..hparams import HParams
from ..model import SketchRNN, WorkBuffers
from . import checkpoint as ckpt
from .parallel import POSITION_DRAWS, STREAM_DRAWS, Parallel, launched, restarted
from .optim import TFAdam, clip_gradients_, kl_weight, learning_rate, load_optimizer_tensors, optimizer_tensors

EVAL_SEED_OFFSET = 7919  # the validation noise stream is seed + this, fresh for every evaluation


@dataclass
class EvalResult:
    """Average losses over a split's evaluation batches."""

    cost: float
    r_cost: float
    kl_cost: float
    r_cost_masked: float
    sketches: int

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


@torch.no_grad()
def evaluate(model: SketchRNN, split: SketchSplit, kl_weight_value: float, seed: int = 0) -> EvalResult:
    """L_R (the reference's unmasked way and the masked way), L_KL and cost averaged over a split."""
    was_training = model.training
    model.eval()
    bs = model.hps.batch_size
    drop_last = len(split) >= bs  # the reference drops the remainder; a tiny split keeps it
    gen = torch.Generator().manual_seed(seed)
    sums = np.zeros(4)
    batches = count = 0
    device = next(model.parameters()).device
    for batch in split.batches(bs, drop_last=drop_last):
        x = torch.from_numpy(batch.inputs).to(device)
        eps = torch.randn(len(batch), model.hps.z_size, generator=gen).to(device) if model.hps.conditional else None
        loss = model.compute_loss(x, batch.lengths, kl_weight_value, eps=eps)
        sums += [loss.cost.item(), loss.r_cost.item(), loss.kl_cost.item(), loss.r_cost_masked.item()]
        batches += 1
        count += len(batch)
    model.train(was_training)
    if batches == 0:
        raise ValueError("the split has no sketches to evaluate")
    cost, r, kl, r_masked = (sums / batches).tolist()
    return EvalResult(cost, r, kl, r_masked, count)


@dataclass
class Likelihood:
    """Negative log-likelihoods of a split's sketches in data units (see `SketchRNN.log_likelihood`)."""

    nll: np.ndarray  # per sketch, data units
    points: np.ndarray  # real points per sketch
    nll_normalised: np.ndarray  # per sketch, normalised units

    def summary(self) -> dict[str, float | int]:
        """The split's means: per sketch (with its standard error) and per point."""
        n = len(self.nll)
        return {"n_sketches": n, "nll_per_sketch": float(self.nll.mean()),
                "nll_per_sketch_stderr": float(self.nll.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0,
                "nll_per_point": float(self.nll.sum() / self.points.sum()),
                "nll_per_sketch_normalised": float(self.nll_normalised.mean())}


@torch.no_grad()
def split_likelihood(model: SketchRNN, split: SketchSplit, batch_size: int | None = None) -> Likelihood:
    """Every sketch's NLL under `model` (z = μ for a conditional model), in data and normalised units."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    lls, points = [], []
    for batch in split.batches(batch_size or model.hps.batch_size, drop_last=False):
        lls.append(model.log_likelihood(torch.from_numpy(batch.inputs).to(device), batch.lengths).cpu().double())
        points.append(torch.from_numpy(batch.lengths).double())
    model.train(was_training)
    if not lls:
        raise ValueError("the split has no sketches to evaluate")
    ll, n = torch.cat(lls), torch.cat(points)
    nll_normalised = -ll
    return Likelihood(-model.in_data_units(ll, n).numpy(), n.numpy(), nll_normalised.numpy())


def evaluate_run_split(model: SketchRNN, split: SketchSplit, seed: int) -> EvalResult:
    """A run's evaluation of a split: KL weight `kl_weight_start` (the reference's eval model never
    updates its own) and the run's fixed validation noise stream."""
    return evaluate(model, split, model.hps.kl_weight_start, seed + EVAL_SEED_OFFSET)


class MetricsLog:
    """metrics.jsonl always; TensorBoard scalars too when `tensorboard` is installed."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.path = run_dir / "metrics.jsonl"
        self.enabled = enabled  # only one process of a group writes
        self.tb = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(run_dir / "tensorboard"))
        except Exception:  # tensorboard is optional
            self.tb = None

    def write(self, kind: str, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as f:
            f.write(json.dumps({"kind": kind, "step": step, **values}) + "\n")
        if self.tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self.tb.add_scalar(f"{kind}/{key}", value, step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


def resolve_device(device: str | torch.device) -> torch.device:
    """A torch device from a name; "auto" is the first GPU when there is one, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device {device!r}: this PyTorch {torch.__version__} finds no CUDA GPU "
                             "(a CPU-only build, or no GPU visible); use --device cpu or auto")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"device {device!r}: there {'is' if count == 1 else 'are'} {count} CUDA GPU"
                             f"{'' if count == 1 else 's'} (cuda:0 to cuda:{count - 1})")
    return dev


# a fixed, short bar leaves the figures room: the line fits in 100 columns up to ten million steps
BAR_FORMAT = "{percentage:3.0f}%|{bar:10}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}]{postfix}"


def _progress(total: int, initial: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, bar_format=BAR_FORMAT)


def progress_figures(cost: float, r_cost: float, kl_cost: float, sketches_per_second: float) -> str:
    """The figures after the progress bar (the schedules, lr and KL weight, are in metrics.jsonl)."""
    return f"cost {cost:.3f} r {r_cost:.3f} kl {kl_cost:.3f} {sketches_per_second:.0f} sk/s"


class _GracefulInterrupt:
    """The first Ctrl-C (SIGINT) asks the loop to stop after the current step and save; a second one quits."""

    def __init__(self) -> None:
        self.requested = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


@dataclass
class TrainSummary:
    """What a call to `train` did."""

    run_dir: Path
    step: int
    best_valid_cost: float | None
    stopped: str  # "steps", "minutes", "interrupted", or "done": the run had reached total_steps already
    train_costs: list[float]
    total_steps: int


def run_to_resume(run_dir: Path) -> dict[str, Any]:
    """The description (run.json) of the run in `run_dir`, which is to be resumed."""
    if not ckpt.is_run_dir(run_dir):
        raise FileNotFoundError(f"{run_dir}: no run to resume (run.json is missing)")
    return ckpt.read_run(run_dir)


RESUME_FIXED = ("data_set", "max_seq_len", "num_steps")  # set by the data, N_max and --steps; not compared as hparams


def resume_conflicts(
    description: dict[str, Any],
    hps: HParams | None = None,
    data: Sequence[str | Path] | None = None,
    max_seq_len: int | None = None,
) -> dict[str, str]:
    """How settings given for resuming a run differ from those its run.json records.

    Keys "hparams", "data" and "max_seq_len" (only for what differs), each with a text naming the
    run's value and the given one; empty when everything given agrees. `data` agrees when it names
    the run's own files (by path or by name), `max_seq_len` when it is the run's N_max; the hparams
    `data_set`, `max_seq_len` and `num_steps` follow the data, N_max and `steps`, so they are not
    compared (a resumed run may be given a new total step count).
    """
    conflicts: dict[str, str] = {}
    if hps is not None:
        old = HParams.from_dict(description["hparams"]).to_dict()
        changed = [f"{k} {old[k]!r} in the run, {v!r} here" for k, v in hps.to_dict().items()
                   if k not in RESUME_FIXED and v != old[k]]
        if changed:
            more = f"; and {len(changed) - 3} more" if len(changed) > 3 else ""
            conflicts["hparams"] = "; ".join(changed[:3]) + more
    recorded = [str(p) for p in description["data"]]
    if data is not None and not (len(data) == len(recorded) and all(map(names_file, data, recorded))):
        conflicts["data"] = f"the run's data is {' '.join(recorded)}"
    if max_seq_len is not None and max_seq_len != description["max_seq_len"]:
        how = "set for it" if description.get("explicit_max_seq_len") else "its longest sketch"
        conflicts["max_seq_len"] = f"N_max {description['max_seq_len']} in the run ({how}), {max_seq_len} here"
    return conflicts


def _describe(hps: HParams, data_paths: Sequence[str], data: SketchData, seed: int, explicit_len: bool,
              batch_draws: str) -> dict:
    return {
        "batch_draws": batch_draws,
        "format": "sketchrnn-run",
        "version": 1,
        "hparams": hps.to_magenta_dict(),
        "data": [str(p) for p in data_paths],
        "max_seq_len": data.max_seq_len,
        "explicit_max_seq_len": explicit_len,
        "scale_factor": data.scale_factor,
        "seed": seed,
        "counts": {"train": len(data.train), "valid": len(data.valid), "test": len(data.test)},
    }


@dataclass
class StepFigures:
    """What one training step reports, over the global batch."""

    cost: float
    r_cost: float
    kl_cost: float
    lr: float
    kl_weight: float


@dataclass
class RunPlan:
    """What a run trains on, settled before any data is read: from the arguments for a new run, from
    run.json for a resumed one."""

    hps: HParams
    data_paths: list[str]
    seed: int
    max_seq_len: int | None  # set for the run, else the data's longest sketch
    total_steps: int
    description: dict[str, Any] | None  # the resumed run's run.json
    batch_draws: str  # STREAM_DRAWS (the reference's) or POSITION_DRAWS (any number of processes)


def plan_run(run_dir: Path, hps: HParams | None, data: Sequence[str | Path] | None, steps: int | None, seed: int,
             resume: bool, max_seq_len: int | None, launched: bool = False) -> RunPlan:
    """The `RunPlan` of a new or resumed run in `run_dir`; ValueError / FileExistsError when the settings
    do not fit the directory."""
    description = None
    if resume:
        description = run_to_resume(run_dir)
        conflicts = resume_conflicts(description, hps, data, max_seq_len)
        if conflicts:
            raise ValueError(f"{run_dir}: the settings given differ from the run's ({'; '.join(conflicts.values())}); "
                             "a resumed run keeps its own: leave them out, or start a new run in another directory")
        hps = HParams.from_dict(description["hparams"])
        data_paths = [str(p) for p in description["data"]]
        seed = int(description["seed"])
        max_seq_len = description["max_seq_len"] if description.get("explicit_max_seq_len") else None
        batch_draws = description.get("batch_draws", STREAM_DRAWS)
        if launched and batch_draws == STREAM_DRAWS:
            raise ValueError(f"{run_dir}: this run draws its batches as one process does (it was started without "
                             "torchrun); resume it with plain `sketchrnn train --resume`")
    else:
        batch_draws = POSITION_DRAWS if launched else STREAM_DRAWS
        if ckpt.is_run_dir(run_dir) and ckpt.read_pointer(run_dir):
            raise FileExistsError(f"{run_dir}: already holds a trained run; use --resume to continue it or --out for a new one")
        hps = hps or HParams()
        data_paths = [str(resolve(p)) for p in (data or hps.data_set or ["aaron_sheep"])]
    total_steps = int(steps if steps is not None else hps.num_steps)
    return RunPlan(hps, data_paths, seed, max_seq_len, total_steps, description, batch_draws)


@dataclass
class TrainingRun:
    """One training run while it trains: the model and its optimizer, the data, the run directory and
    its metrics log, the trainer state (step, best validation cost, random streams) and the work
    buffers its steps reuse. `open` starts or resumes one; `step`, `validate_and_save` and
    `save_last` are the loop's verbs."""

    run_dir: Path
    hps: HParams
    seed: int
    data: SketchData
    model: SketchRNN
    optimizer: TFAdam
    state: ckpt.TrainerState
    device: torch.device
    log: MetricsLog
    started: float  # time.monotonic() when this call began
    work: WorkBuffers
    parallel: Parallel | None  # position draws, in a process group or alone; None: the reference's stream
    loss_module: nn.Module | None  # the training loss under DistributedDataParallel (with `parallel`)
    bar: Any = None

    @property
    def main(self) -> bool:
        """Whether this process writes the run's files."""
        return self.parallel is None or self.parallel.main

    @classmethod
    def open(cls, run_dir: Path, plan: RunPlan, device: torch.device, init_from: str | Path | None,
             started: float, parallel: Parallel | None) -> TrainingRun:
        """Read the data, then build a new run (writing run.json) or load the resumed one's last checkpoint."""
        hps, description = plan.hps, plan.description
        main = parallel is None or parallel.main  # this process writes the run's files
        data = load_dataset(plan.data_paths, max_seq_len=plan.max_seq_len, random_scale_factor=hps.random_scale_factor,
                            augment_stroke_prob=hps.augment_stroke_prob, seed=plan.seed)
        for name in ("train", "valid"):  # validation picks the best model: found out now, not at save_every
            if not len(data.split(name)):
                files = ", ".join(str(p) for p in plan.data_paths)
                before = len(read_splits(plan.data_paths).get(name, [])) if plan.max_seq_len is not None else 0
                why = (f" of at most {plan.max_seq_len} points (--max-seq-len; {before:,d} before that)"
                       if before else "")
                raise TrainingError(f"{files}: no {name} sketches{why}: training needs both train and valid "
                                    "sketches")
        # num_steps records the run's total, so that --resume without --steps goes on to it
        hps = hps.replace(max_seq_len=data.max_seq_len, data_set=[Path(p).name for p in plan.data_paths],
                          num_steps=plan.total_steps)
        if description is not None:
            if not math.isclose(data.scale_factor, description["scale_factor"], rel_tol=1e-6):
                raise TrainingError(f"{run_dir}: the data changed since the run started (scale factor "
                                    f"{data.scale_factor:g}, recorded {description['scale_factor']:g})")
            model, state = ckpt.load_trainer_state(run_dir)
            if description["hparams"].get("num_steps") != plan.total_steps and main:
                ckpt.write_run(run_dir, {**description, "hparams": {**description["hparams"],
                                                                    "num_steps": plan.total_steps}})
        else:
            torch.manual_seed(plan.seed)
            if init_from is not None:  # built as a fresh model is (the same random draws), then given its values
                from ..interop.tf_write import read_training_checkpoint

                model, state = read_training_checkpoint(init_from, hps, data.scale_factor)
            else:
                model = SketchRNN(hps, scale_factor=data.scale_factor)
                state = ckpt.TrainerState()
            if main:  # once the model is built: its settings are sound
                run_dir.mkdir(parents=True, exist_ok=True)
                ckpt.write_run(run_dir, _describe(hps, plan.data_paths, data, plan.seed, plan.max_seq_len is not None,
                                                  plan.batch_draws))
        model = model.to(device)
        optimizer = TFAdam(model.parameters(), lr=hps.learning_rate)
        if description is not None or init_from is not None:
            load_optimizer_tensors(optimizer, model, state.optimizer, state.optimizer_step)
            if state.torch_rng is not None:
                torch.set_rng_state(state.torch_rng)
            if state.cuda_rng is not None and device.type == "cuda":
                torch.cuda.set_rng_state(state.cuda_rng, device)
            for name, value in state.numpy_rng.items():
                data.split(name).rng.set_state(ckpt.numpy_state_from_json(value))
        return cls(run_dir, hps, plan.seed, data, model, optimizer, state, device, MetricsLog(run_dir, main), started,
                   WorkBuffers(), parallel, parallel.wrap(model) if parallel is not None else None)

    def snapshot(self) -> ckpt.TrainerState:
        """The trainer state as it is now (optimizer, random streams, time spent), for a checkpoint."""
        state = self.state
        state.optimizer, state.optimizer_step = optimizer_tensors(self.optimizer, self.model)
        state.torch_rng = torch.get_rng_state()
        state.cuda_rng = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        state.numpy_rng = {name: ckpt.numpy_state_to_json(self.data.split(name).rng.get_state())
                           for name in ("train", "valid", "test")}
        state.elapsed_seconds += time.monotonic() - self.started
        self.started = time.monotonic()
        return state

    def step(self, max_nonfinite: int) -> StepFigures | None:
        """One optimizer step and its figures (over the global batch), or None when a non-finite loss
        or gradient (on any process) skipped it."""
        hps, state, step, par = self.hps, self.state, self.state.step, self.parallel
        lr, klw = learning_rate(hps, step), kl_weight(hps, step)
        self.optimizer.zero_grad(set_to_none=True)
        params = list(self.model.parameters())
        with self.work.active():
            if par is None:  # the reference's draws: the split's stream and torch's generator
                batch = self.data.train.random_batch(hps.batch_size)
                loss = self.model.compute_loss(torch.from_numpy(batch.inputs).to(self.device), batch.lengths, klw)
            else:  # this process's share of the global batch, every draw by (seed, step, position)
                batch = self.data.train.batch_at(self.seed, step, hps.batch_size, par.share(hps.batch_size))
                loss = self.loss_module(torch.from_numpy(batch.inputs).to(self.device),
                                        torch.from_numpy(batch.lengths).to(self.device), klw,
                                        par.draws(self.seed, step, hps.batch_size), par.mean)
            # backward even for a non-finite loss: in a group every process takes part in the
            # gradients' all-reduce, and the update is skipped below all the same
            loss.cost.backward()
        grads = [p.grad for p in params if p.grad is not None]
        finite = torch.isfinite(loss.cost.detach())
        if grads:
            finite = finite & torch.stack([torch.isfinite(g).all() for g in grads]).all()
        # the step's figures and a count of non-finite processes, summed over the group in one
        # all-reduce and copied to the host once: the only copy a step makes
        stats = torch.stack([loss.cost.detach(), loss.r_cost.detach(), loss.kl_cost.detach(), (~finite).to(loss.cost.dtype)])
        if par is not None:
            stats = par.total(stats)
        world = 1 if par is None else par.world
        cost, r_cost, kl_cost, nonfinite = stats.tolist()
        if nonfinite > 0:
            state.nonfinite_streak += 1
            self.log.write("nonfinite", step, {"streak": state.nonfinite_streak})
            self.note(f"step {step}: non-finite loss or gradient; update skipped ({state.nonfinite_streak} in a row)")
            if state.nonfinite_streak >= max_nonfinite:
                saved = bool(ckpt.read_pointer(self.run_dir).get("last"))
                where = (f"The last good checkpoint in {self.run_dir} is intact" if saved else
                         f"{self.run_dir} has no checkpoint yet")
                hint = ("try a lower learning_rate or grad_clip" if step > 0 or saved else
                        "at the first step this is more likely the data (a sketch with huge offsets) "
                        "than the learning rate")
                raise TrainingError(f"{state.nonfinite_streak} non-finite losses in a row at step {step}: stopping. "
                                    f"{where}; {hint}.")
            self.optimizer.zero_grad(set_to_none=True)
            return None
        state.nonfinite_streak = 0
        clip_gradients_(params, hps.grad_clip)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.step()
        state.step += 1
        return StepFigures(cost / world, r_cost / world, kl_cost / world, lr, klw)

    def validate_and_save(self) -> None:
        """Evaluate on the validation split; a new best is saved (and evaluated on test); then the last
        checkpoint. In a group, rank 0 does this while the others wait."""
        self.work.clear()  # evaluation needs none of the training steps' kept buffers
        if not self.main:
            self.parallel.barrier()  # type: ignore[union-attr]
            return
        state, t0 = self.state, time.perf_counter()
        valid = evaluate_run_split(self.model, self.data.valid, self.seed)
        self.log.write("valid", state.step, {**valid.as_dict(), "seconds": time.perf_counter() - t0})
        text = f"step {state.step}: valid cost {valid.cost:.4f} (L_R {valid.r_cost:.4f}, L_KL {valid.kl_cost:.4f})"
        if state.best_valid_cost is None or valid.cost < state.best_valid_cost:
            state.best_valid_cost, state.best_step = valid.cost, state.step
            test = evaluate_run_split(self.model, self.data.test, self.seed) if len(self.data.test) else None
            if test is not None:
                self.log.write("test", state.step, test.as_dict())
                text += f"; new best, test cost {test.cost:.4f}"
            ckpt.save_checkpoint(self.run_dir, self.model, "best", state.step,
                                 extra={"step": state.step, "valid": valid.as_dict(),
                                        "test": test.as_dict() if test else None})
        self.note(text)
        self.save_last()

    def save_last(self) -> None:
        """The "last" checkpoint, written atomically (by rank 0; the others wait for it)."""
        if self.main:
            ckpt.save_checkpoint(self.run_dir, self.model, "last", self.state.step, self.snapshot())
        if self.parallel is not None:
            self.parallel.barrier()

    def note(self, text: str) -> None:
        """A line for the user, above the progress bar when there is one (rank 0 only)."""
        if not self.main:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, flush=True)

    def close(self) -> None:
        self.work.clear()
        self.log.close()
        if self.parallel is not None:
            self.parallel.close()


def train(
    run_dir: str | Path,
    hps: HParams | None = None,
    data: Sequence[str | Path] | None = None,
    steps: int | None = None,
    minutes: float | None = None,
    seed: int = 0,
    resume: bool = False,
    max_seq_len: int | None = None,
    progress: bool = True,
    log_every: int = 20,
    max_nonfinite: int = 20,
    device: str | torch.device = "cpu",
    init_from: str | Path | None = None,
) -> TrainSummary:
    """Train (or, with `resume`, continue) a run in `run_dir` until step `steps` or `minutes` pass.

    `steps` is the run's total step count, as magenta's num_steps: a resumed run stops at that
    step, not that many steps later, and one already there returns at once (stopped "done"). With
    `resume`, `hps`, `data` and `max_seq_len` may be given only as the run has them (ValueError
    otherwise, see `resume_conflicts`). Without `max_seq_len`, N_max is the data's longest sketch.
    `device` is where the model trains ("cpu", "cuda", "cuda:1", or "auto" for a GPU when there is one).
    `init_from` is a magenta TF checkpoint folder to go on from (a new run): its weights, Adam state
    and step count, which the run's first checkpoint holds; `hps` must have its architecture.
    """
    run_dir = Path(run_dir)
    device = resolve_device(device)  # a device that is not there: refused before the run is touched
    # one training per run: rank 0 of a group holds it for all (the others write nothing); a resume
    # of a run that is not there is refused by plan_run, without a folder made for it first
    holds = (not launched() or os.environ.get("RANK") == "0") and not (resume and not run_dir.is_dir())
    with ckpt.writing(run_dir) if holds else contextlib.nullcontext():
        return _train(run_dir, hps, data, steps, minutes, seed, resume, max_seq_len, progress, log_every,
                      max_nonfinite, device, init_from)


def _train(run_dir: Path, hps: HParams | None, data: Sequence[str | Path] | None, steps: int | None,
           minutes: float | None, seed: int, resume: bool, max_seq_len: int | None, progress: bool,
           log_every: int, max_nonfinite: int, device: str | torch.device,
           init_from: str | Path | None) -> TrainSummary:
    """`train`, while this process holds the run."""
    start_time = time.monotonic()
    parallel = Parallel.start(device) if launched() else None  # under torchrun: one of a process group
    if parallel is not None:
        device = parallel.device
        if restarted() and ckpt.is_run_dir(run_dir) and ckpt.read_pointer(run_dir):
            resume = True  # torchrun restarted the group after a failure: go on from the last checkpoint
    plan = plan_run(run_dir, hps, data, steps, seed, resume, max_seq_len, launched=parallel is not None)
    if parallel is not None:
        parallel.barrier()  # every process has read the run directory before rank 0 writes to it
    elif plan.batch_draws == POSITION_DRAWS:
        parallel = Parallel.alone(device)  # a run of position draws resumed as one process
    total_steps = plan.total_steps
    if resume:  # a finished run answers at once, before any data is read
        reached = ckpt.read_trainer_info(run_dir)
        if reached["step"] >= total_steps:
            return TrainSummary(run_dir, reached["step"], reached.get("best_valid_cost"), "done", [], total_steps)
    run = TrainingRun.open(run_dir, plan, device, init_from, start_time, parallel)
    state, batch_size = run.state, run.hps.batch_size
    run.bar = bar = _progress(total_steps, state.step, progress and run.main)
    run.model.train()
    train_costs: list[float] = []
    last_saved = state.step if resume else -1
    stopped = "steps"
    if init_from is not None and not resume:  # the run's first checkpoint: the imported model and optimizer
        run.save_last()
        last_saved = state.step
    first_step = state.step
    if bar is not None and state.step < total_steps:
        run.note(f"{run_dir}: steps {state.step} to {total_steps} on {len(run.data.train):,d} sketches "
                 "(the first one also sets up kernels and buffers)")
    interrupt = _GracefulInterrupt()
    try:
        while state.step < total_steps:
            out_of_time = minutes is not None and time.monotonic() - start_time >= minutes * 60
            if parallel is not None:  # every process stops at the same step, as rank 0's clock and Ctrl-C say
                out_of_time, interrupt.requested = parallel.agree(out_of_time, interrupt.requested)
            if out_of_time:
                stopped = "minutes"
                break
            if interrupt.requested:
                stopped = "interrupted"
                run.note(f"interrupted at step {state.step}: saving a checkpoint (Ctrl-C again to quit at once)")
                break
            t0 = time.perf_counter()
            figures = run.step(max_nonfinite)
            if figures is None:
                continue
            train_costs.append(figures.cost)
            seconds = time.perf_counter() - t0
            if bar is not None:
                if state.step == first_step + 1:
                    bar.unpause()  # the first step's set-up would make the first time estimate far too long
                bar.set_postfix_str(progress_figures(figures.cost, figures.r_cost, figures.kl_cost,
                                                     batch_size / seconds), refresh=False)
                bar.update(1)
            if state.step % log_every == 0 or state.step == 1:
                run.log.write("train", state.step, {"cost": figures.cost, "r_cost": figures.r_cost,
                                                    "kl_cost": figures.kl_cost, "lr": figures.lr,
                                                    "kl_weight": figures.kl_weight,
                                                    "sketches_per_second": batch_size / seconds,
                                                    "seconds_per_step": seconds})
            if state.step % run.hps.save_every == 0:
                run.validate_and_save()
                last_saved = state.step
                if bar is not None:
                    bar.unpause()  # nor should validation count as training time in the estimate
    finally:
        interrupt.restore()
        if bar is not None:
            bar.close()
    if state.step != last_saved:
        run.save_last()
    run.close()
    return TrainSummary(run_dir, state.step, state.best_valid_cost, stopped, train_costs, total_steps)
