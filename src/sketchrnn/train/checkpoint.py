"""Run directories and checkpoints that survive a crash at any moment.

A run directory holds::

    run.json            what the run is: hyperparameters, data, N_max, scale factor, seed
    checkpoint.json     which checkpoints are current: {"last": ..., "best": ...}
    checkpoints/<name>/ model.safetensors + model.json (+ trainer.safetensors + trainer.json for "last")
    metrics.jsonl       one JSON object per logged event
    .lock               held by the training that writes the run (its process id inside)

A checkpoint is written into a fresh temporary directory, renamed into place, and only then
made current by atomically replacing ``checkpoint.json``; superseded directories are removed
after that. A crash mid-save therefore leaves ``checkpoint.json`` naming the previous, complete
checkpoint. Weights and optimizer moments are safetensors; everything else is JSON.
"""

from __future__ import annotations

import os
import shutil
import uuid
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from safetensors.torch import load_file

from ..errors import TrainingError
from ..model import SketchRNN
from ..atomic import atomic_write_json
from ..store import is_model_dir, load_model, read_json, save_model, save_tensors

RUN = "run.json"
LOCK = ".lock"
POINTER = "checkpoint.json"
CHECKPOINTS = "checkpoints"
TRAINER_TENSORS = "trainer.safetensors"
TRAINER_STATE = "trainer.json"
EVALUATION = "eval.json"  # beside a checkpoint: the validation costs it was chosen by


@dataclass
class TrainerState:
    """Everything besides the weights that an exact resume needs."""

    step: int = 0
    best_valid_cost: float | None = None
    best_step: int | None = None
    nonfinite_streak: int = 0
    elapsed_seconds: float = 0.0
    optimizer: dict[str, torch.Tensor] = field(default_factory=dict)  # tensors by name
    optimizer_step: int = 0
    torch_rng: torch.Tensor | None = None
    cuda_rng: torch.Tensor | None = None
    numpy_rng: dict[str, Any] = field(default_factory=dict)  # split name → RandomState state as JSON


def numpy_state_to_json(state: tuple) -> dict[str, Any]:
    """A RandomState's `get_state()` as plain JSON."""
    kind, keys, pos, has_gauss, cached = state
    return {"kind": kind, "keys": [int(k) for k in keys], "pos": int(pos), "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached)}


def numpy_state_from_json(value: dict[str, Any]) -> tuple:
    """Inverse of `numpy_state_to_json`."""
    return (value["kind"], np.array(value["keys"], dtype=np.uint32), value["pos"], value["has_gauss"],
            value["cached_gaussian"])


@contextmanager
def writing(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir` for one training: a second training of the same run is refused at once
    (TrainingError), before it reads or writes anything. The lock is the operating system's, so it
    goes with the process however that ends (a crash, SIGKILL, a torchrun restart). Where the
    filesystem has no locks (some cluster mounts) it warns and trains unguarded, as before."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / LOCK, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held: refused, and nothing of the holder's is touched
            handle.seek(0)
            holder = handle.read().strip()
            raise TrainingError(f"{run_dir}: another training is writing this run"
                                f"{f' (process {holder})' if holder.isdigit() else ''}: wait for it to end, "
                                "or train into another --out") from None
        except OSError as exc:  # ENOSYS, EOPNOTSUPP, ENOLCK: a filesystem without flock
            warnings.warn(f"{run_dir}: this filesystem cannot lock files ({exc.strerror}): nothing stops a second "
                          "training into this run", stacklevel=3)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        except BaseException:
            # this process holds the run: a start refused before it wrote anything leaves no folder
            if created and [p.name for p in run_dir.iterdir()] == [LOCK]:
                shutil.rmtree(run_dir, ignore_errors=True)
            raise
        finally:
            if run_dir.exists():
                handle.truncate(0)  # no process named once it has ended; the lock ends with the file


def read_run(run_dir: Path) -> dict[str, Any]:
    """The run description (run.json)."""
    return read_json(Path(run_dir) / RUN)


def write_run(run_dir: Path, description: dict[str, Any]) -> None:
    """Write run.json atomically."""
    atomic_write_json(Path(run_dir) / RUN, description)


def read_pointer(run_dir: Path) -> dict[str, Any]:
    """checkpoint.json, or {} when the run has no checkpoint yet."""
    path = Path(run_dir) / POINTER
    if not path.exists():
        return {}
    value = read_json(path)
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return value


def is_run_dir(path: Path) -> bool:
    """Whether `path` is a training run directory."""
    return (Path(path) / RUN).is_file()


def checkpoint_dir(run_dir: Path, which: str = "best") -> Path:
    """The directory of the best checkpoint (the latest when no validation has run yet) or of the latest."""
    if which not in ("best", "last"):
        raise ValueError(f"which must be 'best' or 'last', got {which!r}")
    run_dir = Path(run_dir)
    pointer = read_pointer(run_dir)
    name = pointer.get(which) or pointer.get("last")
    if not name:
        raise FileNotFoundError(f"{run_dir}: the run has no checkpoint yet")
    path = run_dir / name
    if not is_model_dir(path):
        raise FileNotFoundError(f"{path}: checkpoint named in {run_dir / POINTER} is missing or incomplete")
    return path


def load_run_model(run_dir: Path, which: str = "best") -> SketchRNN:
    """The model of a run's best (or, with which="last", latest) checkpoint."""
    return load_model(checkpoint_dir(run_dir, which))


def _fresh_dir(run_dir: Path, name: str) -> tuple[Path, Path]:
    base = run_dir / CHECKPOINTS
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".tmp-{name}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    final = base / name
    if final.exists():  # the same step saved again (e.g. after a resume): use a new name
        final = base / f"{name}-{uuid.uuid4().hex[:6]}"
    return tmp, final


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_finite(model: SketchRNN) -> None:
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            raise RuntimeError(f"refusing to save a checkpoint: parameter {name} is not finite")


def save_checkpoint(
    run_dir: Path,
    model: SketchRNN,
    which: str,
    step: int,
    trainer: TrainerState | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a complete checkpoint, then make it the run's current `which` ("last" or "best")."""
    run_dir = Path(run_dir)
    _check_finite(model)
    tmp, final = _fresh_dir(run_dir, f"{which}-{step:08d}")
    save_model(model, tmp)
    if trainer is not None:
        tensors = dict(trainer.optimizer)
        if trainer.torch_rng is not None:
            tensors["rng.torch"] = trainer.torch_rng
        if trainer.cuda_rng is not None:
            tensors["rng.cuda"] = trainer.cuda_rng
        save_tensors(tmp / TRAINER_TENSORS, tensors)
        atomic_write_json(tmp / TRAINER_STATE, {
            "step": trainer.step,
            "best_valid_cost": trainer.best_valid_cost,
            "best_step": trainer.best_step,
            "nonfinite_streak": trainer.nonfinite_streak,
            "elapsed_seconds": trainer.elapsed_seconds,
            "optimizer_step": trainer.optimizer_step,
            "numpy_rng": trainer.numpy_rng,
        })
    if extra is not None:
        atomic_write_json(tmp / EVALUATION, extra)
    _fsync_dir(tmp)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    pointer = read_pointer(run_dir)
    old = pointer.get(which)
    pointer[which] = f"{CHECKPOINTS}/{final.name}"
    pointer[f"{which}_step"] = step
    atomic_write_json(run_dir / POINTER, pointer)  # the moment the new checkpoint becomes current
    _cleanup(run_dir, keep={pointer.get("last"), pointer.get("best")}, old=old)
    return final


def _cleanup(run_dir: Path, keep: set, old: str | None) -> None:
    """Remove the superseded checkpoint and any temporary directory a crash left behind."""
    base = run_dir / CHECKPOINTS
    if old and old not in keep and (run_dir / old).exists():
        shutil.rmtree(run_dir / old, ignore_errors=True)
    for entry in base.iterdir():
        if entry.name.startswith(".tmp-"):
            shutil.rmtree(entry, ignore_errors=True)


def stored_costs(directory: Path) -> dict[str, float] | None:
    """The validation costs saved with a checkpoint (cost, r_cost, kl_cost), None where there are none.

    They are extra: a checkpoint whose eval.json is missing, unreadable or odd is still a model."""
    try:
        valid = read_json(Path(directory) / EVALUATION).get("valid")
    except (OSError, ValueError, AttributeError):
        return None
    keys = ("cost", "r_cost", "kl_cost")
    if not (isinstance(valid, dict) and all(isinstance(valid.get(k), (int, float))
                                            and not isinstance(valid.get(k), bool) for k in keys)):
        return None
    return {k: float(valid[k]) for k in keys}


def read_trainer_info(run_dir: Path) -> dict[str, Any]:
    """The latest checkpoint's trainer.json (step, best validation cost, ...), read without any tensor."""
    state_path = checkpoint_dir(run_dir, "last") / TRAINER_STATE
    if not state_path.is_file():
        raise FileNotFoundError(f"{state_path}: no trainer state: cannot resume from this checkpoint")
    info = read_json(state_path)
    if not isinstance(info, dict) or not isinstance(info.get("step"), int):
        raise ValueError(f"{state_path}: not a trainer state (expected a JSON object with a step count)")
    return info


def load_trainer_state(run_dir: Path) -> tuple[SketchRNN, TrainerState]:
    """The latest checkpoint's model and trainer state, for resuming."""
    path = checkpoint_dir(run_dir, "last")
    info = read_trainer_info(run_dir)
    model = load_model(path)
    try:
        tensors = load_file(path / TRAINER_TENSORS)
    except Exception as exc:  # safetensors raises its own error type
        raise ValueError(f"{path / TRAINER_TENSORS}: not a readable safetensors file ({exc})") from None
    torch_rng = tensors.pop("rng.torch", None)
    cuda_rng = tensors.pop("rng.cuda", None)
    state = TrainerState(
        step=int(info["step"]),
        best_valid_cost=info.get("best_valid_cost"),
        best_step=info.get("best_step"),
        nonfinite_streak=int(info.get("nonfinite_streak", 0)),
        elapsed_seconds=float(info.get("elapsed_seconds", 0.0)),
        optimizer=tensors,
        optimizer_step=int(info.get("optimizer_step", 0)),
        torch_rng=torch_rng,
        cuda_rng=cuda_rng,
        numpy_rng=info.get("numpy_rng", {}),
    )
    return model, state
