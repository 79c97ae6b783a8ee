"""Writing magenta TensorFlow checkpoint folders: what ``sketch_rnn_train.load_checkpoint`` restores.

`write_checkpoint(model, directory, trainer=None)` writes, into a temporary folder renamed into
place (nothing half-written is ever left at `directory`):

- ``model_config.json``: magenta's hyperparameters in magenta's key order, booleans as
  ``true``/``false`` (as ``json.dump(hps.values())`` writes them; magenta reads 0/1 too);
- ``checkpoint``: ``model_checkpoint_path: "vector-STEP"`` (relative, as TF writes it);
- ``sketchrnn.json``: ``{"scale_factor": ...}``, the model's own scale factor, which magenta's
  files do not hold (magenta ignores the file; `load_checkpoint` prefers it to recomputing the
  factor from ``data_set``, which a model from elsewhere may not have been trained on);
- ``vector-STEP.index`` and ``vector-STEP.data-00000-of-00001``: the tensor bundle
  (`write_bundle`: for a checkpoint magenta wrote, read and written back, the same bytes).

The bundle holds every key magenta's trainer graph requires on restore (`required_keys`): every
trainable variable under magenta's name (`magenta_tf.variable_map`), Adam's m and v for each
(``vector_rnn/<name>/Adam`` and ``/Adam_1``), and under ``vector_rnn/``, ``vector_rnn_1/`` and
``vector_rnn_2/`` (the train, eval and sample models) ``Variable`` (the learning rate),
``Variable_1`` (the KL weight), ``beta1_power``, ``beta2_power`` and ``global_step``. The
training values come from `trainer` (a run's `TrainerState`): the moments, Adam's step t
(``β^(t+1)``, multiplied out in float32 as TF's Adam does) and the step count; without one, a fresh
optimizer (zero moments, β powers 0.9 and 0.999, step 0). The eval and sample models' scalars are
always fresh, as magenta saves them.
"""

from __future__ import annotations

import json
import os
import shutil
import struct
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

import numpy as np

from .tf_bundle import crc32c

SIDECAR = "sketchrnn.json"  # {"scale_factor": ...}: the model's own, which magenta's files do not hold

if TYPE_CHECKING:
    from ..model import SketchRNN
    from ..train.checkpoint import TrainerState

SCOPES = ("vector_rnn", "vector_rnn_1", "vector_rnn_2")  # magenta's train, eval and sample models
BETA1, BETA2 = 0.9, 0.999  # TF's Adam defaults, which magenta uses (as our TFAdam does)
PREFIX = "vector"  # sketch_rnn_train.save_model's checkpoint name


# ------------------------------------------------------------------------------ the bundle, written
MAGIC = 0xDB4775248B80FB57
FOOTER_SIZE = 48
BLOCK_SIZE = 256 * 1024  # TF's table option: a data block is closed once it reaches this size
RESTART_INTERVAL = 16  # keys between restart points in a data block (the index block has one per key)
DTYPE_ENUMS = {np.dtype("<f4"): 1, np.dtype("<f8"): 2, np.dtype("<i4"): 3, np.dtype("<i8"): 9}


def mask_crc(crc: int) -> int:
    """leveldb's masked CRC: rotated right by 15 bits, plus a constant."""
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def _field(number: int, wire: int, value: int | bytes) -> bytes:
    key = _varint(number << 3 | wire)
    if wire == 0:
        return key + _varint(int(value))  # type: ignore[arg-type]
    if wire == 2:
        return key + _varint(len(value)) + bytes(value)  # type: ignore[arg-type]
    return key + struct.pack("<I", value)  # wire 5, fixed32


class _Block:
    """One table block: prefix-compressed entries, a restart point every `interval` keys."""

    def __init__(self, interval: int) -> None:
        self.interval, self.buf, self.restarts, self.count, self.last = interval, bytearray(), [0], 0, b""

    def add(self, key: bytes, value: bytes) -> None:
        shared = 0
        if self.count < self.interval:
            n = min(len(key), len(self.last))
            while shared < n and key[shared] == self.last[shared]:
                shared += 1
        else:
            self.restarts.append(len(self.buf))
            self.count = 0
        self.buf += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        self.last, self.count = key, self.count + 1

    def size(self) -> int:
        return len(self.buf) + 4 * len(self.restarts) + 4

    def finish(self) -> bytes:
        return bytes(self.buf) + struct.pack(f"<{len(self.restarts) + 1}I", *self.restarts, len(self.restarts))


def _separator(start: bytes, limit: bytes) -> bytes:
    """leveldb's bytewise FindShortestSeparator: a short key k, start <= k < limit."""
    n, i = min(len(start), len(limit)), 0
    while i < n and start[i] == limit[i]:
        i += 1
    if i < n and start[i] < 0xFF and start[i] + 1 < limit[i]:
        return start[:i] + bytes([start[i] + 1])
    return start


def _successor(key: bytes) -> bytes:
    """leveldb's bytewise FindShortSuccessor: a short key k >= key."""
    for i, byte in enumerate(key):
        if byte != 0xFF:
            return key[:i] + bytes([byte + 1])
    return key


def table_bytes(entries: Iterable[tuple[bytes, bytes]]) -> bytes:
    """A leveldb-format table of `entries` (keys strictly increasing), laid out as TF's table builder does."""
    out = bytearray()

    def write_block(content: bytes) -> bytes:
        handle = _varint(len(out)) + _varint(len(content))
        out.extend(content + b"\x00" + struct.pack("<I", mask_crc(crc32c(content + b"\x00"))))  # uncompressed
        return handle

    index, block, pending, last = _Block(1), _Block(RESTART_INTERVAL), None, b""
    for key, value in entries:
        if pending is not None:
            index.add(_separator(last, key), pending)
            pending = None
        block.add(key, value)
        last = key
        if block.size() >= BLOCK_SIZE:
            pending, block = write_block(block.finish()), _Block(RESTART_INTERVAL)
    if block.buf:
        pending = write_block(block.finish())
    if pending is not None:
        index.add(_successor(last), pending)
    metaindex = write_block(_Block(RESTART_INTERVAL).finish())  # empty: no filters
    handles = metaindex + write_block(index.finish())
    return bytes(out) + handles.ljust(FOOTER_SIZE - 8, b"\x00") + struct.pack("<Q", MAGIC)


HEADER = _field(1, 0, 1) + _field(3, 2, _field(1, 0, 1))  # BundleHeaderProto: 1 shard, little-endian, version 1


def bundle_bytes(tensors: Mapping[str, np.ndarray]) -> tuple[bytes, bytes]:
    """The index and the data file of a one-shard bundle of `tensors`, in key order as TF writes them."""
    entries, data = [(b"", HEADER)], bytearray()
    for name in sorted(tensors, key=str.encode):
        array = np.asarray(tensors[name])
        dtype = array.dtype.newbyteorder("<")
        if dtype not in DTYPE_ENUMS:
            raise ValueError(f"tensor {name!r}: cannot write dtype {array.dtype} to a tensor bundle")
        raw = np.ascontiguousarray(array, dtype=dtype).tobytes()
        shape = b"".join(_field(2, 2, _field(1, 0, d) if d else b"") for d in array.shape)
        entry = _field(1, 0, DTYPE_ENUMS[dtype]) + _field(2, 2, shape)
        if data:
            entry += _field(4, 0, len(data))  # offset (proto3 leaves zeros out)
        if raw:
            entry += _field(5, 0, len(raw))
        entries.append((name.encode(), entry + _field(6, 5, mask_crc(crc32c(raw)))))
        data += raw
    return table_bytes(entries), bytes(data)


def write_bundle(prefix: str | Path, tensors: Mapping[str, np.ndarray]) -> list[Path]:
    """Write ``PREFIX.index`` and ``PREFIX.data-00000-of-00001`` (in place: write into a fresh folder)."""
    index, data = bundle_bytes(tensors)
    paths = [Path(f"{prefix}.data-00000-of-00001"), Path(f"{prefix}.index")]
    for path, content in zip(paths, (data, index)):
        with open(path, "wb") as f:
            f.write(content)
            f.flush()
            os.fsync(f.fileno())
    return paths


# ------------------------------------------------------------------------------ magenta's variables
def slot_names(name: str) -> tuple[str, str]:
    """The names of Adam's m and v for the trainable variable `name` (``vector_rnn/…``)."""
    return f"vector_rnn/{name}/Adam", f"vector_rnn/{name}/Adam_1"


def required_keys(model: "SketchRNN") -> list[str]:
    """Every key magenta's trainer graph (train, eval and sample models) requires on restore, sorted."""
    from .magenta_tf import variable_map

    keys = []
    for name in variable_map(model):
        keys += [name, *slot_names(name)]
    keys += [f"{scope}/{v}" for scope in SCOPES
             for v in ("Variable", "Variable_1", "beta1_power", "beta2_power", "global_step")]
    return sorted(keys, key=str.encode)


def beta_power(beta: float, t: int) -> np.float32:
    """TF's Adam ``beta_power`` after `t` updates: β^(t+1), multiplied out in float32 as TF does."""
    b = np.float32(beta)
    power = b
    for _ in range(t):
        nxt = np.float32(power * b)
        if nxt == power:  # a fixed point (zero or the smallest subnormal): it stays there
            break
        power = nxt
    return power


def adam_step(beta1_power: float, global_step: int) -> int:
    """Adam's step t from a checkpoint's ``beta1_power`` (β₁^(t+1)); the global step once it has underflowed."""
    value = float(beta1_power)
    if not 1e-30 < value <= BETA1:
        return int(global_step)
    return max(0, int(round(np.log(value) / np.log(BETA1))) - 1)


def _parameter_names(model: "SketchRNN") -> dict[int, str]:
    return {id(p): name for name, p in model.named_parameters()}


def optimizer_variables(model: "SketchRNN", trainer: "TrainerState | None") -> dict[str, np.ndarray]:
    """Adam's m and v of every trainable variable under magenta's slot names (zeros without `trainer`)."""
    import torch

    from .magenta_tf import variable_map

    names = _parameter_names(model)
    state = trainer.optimizer if trainer is not None else {}
    out: dict[str, np.ndarray] = {}
    for name, slot in variable_map(model).items():
        for key, kind in zip(slot_names(name), ("m", "v")):
            tensor = state.get(f"adam.{kind}.{names[id(slot.param)]}")
            tensor = torch.zeros_like(slot.param) if tensor is None else tensor
            out[key] = slot._view(tensor.detach()).to("cpu", torch.float32).contiguous().numpy().copy()
    return out


def optimizer_state(model: "SketchRNN", tensors: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Our TFAdam's tensors (``adam.m.<param>``, ``adam.v.<param>``) from a checkpoint's Adam slots."""
    import torch

    from .magenta_tf import variable_map

    names = _parameter_names(model)
    out: dict[str, Any] = {}
    for name, slot in variable_map(model).items():
        for key, kind in zip(slot_names(name), ("m", "v")):
            if key not in tensors:
                raise ValueError(f"the checkpoint has no Adam slot {key!r}")
            target = out.setdefault(f"adam.{kind}.{names[id(slot.param)]}", torch.zeros_like(slot.param.detach()))
            value = np.asarray(tensors[key], dtype=np.float32)
            if value.shape != slot.tf_shape:
                raise ValueError(f"Adam slot {key!r} has shape {list(value.shape)}, expected {list(slot.tf_shape)}")
            slot._view(target).copy_(torch.from_numpy(value.copy()))
    return out


def magenta_config(model: "SketchRNN") -> dict[str, Any]:
    """``model_config.json`` as magenta's trainer writes it: magenta's keys and order, JSON booleans."""
    return model.hps.to_dict()  # our fields are magenta's, in get_default_hparams' order


def checkpoint_tensors(model: "SketchRNN", trainer: "TrainerState | None" = None) -> dict[str, np.ndarray]:
    """Every tensor of the bundle (see the module docstring)."""
    from .magenta_tf import to_tf_variables

    hps = model.hps
    out: dict[str, np.ndarray] = dict(to_tf_variables(model))
    out.update(optimizer_variables(model, trainer))
    t = int(trainer.optimizer_step) if trainer is not None else 0
    step = int(trainer.step) if trainer is not None else 0
    for scope in SCOPES:
        train = scope == "vector_rnn"
        out[f"{scope}/Variable"] = np.float32(hps.learning_rate)  # fed at every step; the stored value is the initial one
        out[f"{scope}/Variable_1"] = np.float32(hps.kl_weight_start)
        out[f"{scope}/beta1_power"] = beta_power(BETA1, t if train else 0)
        out[f"{scope}/beta2_power"] = beta_power(BETA2, t if train else 0)
        out[f"{scope}/global_step"] = np.int32(step if train else 0)
    return {k: np.asarray(v) for k, v in out.items()}


def write_checkpoint(model: "SketchRNN", directory: str | Path, trainer: "TrainerState | None" = None) -> Path:
    """Write `model` (and `trainer`'s optimizer state and step) as a magenta checkpoint folder; returns it.

    Atomic: everything goes into a temporary folder beside `directory`, renamed into place. An
    existing `directory` is replaced only when empty or a checkpoint folder itself (it has a
    ``checkpoint`` or ``model_config.json``); anything else raises FileExistsError.
    """
    import torch

    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            raise ValueError(f"parameter {name} is not finite: refusing to write a checkpoint")
    directory = Path(directory)
    if directory.exists():
        if not directory.is_dir():
            raise FileExistsError(f"{directory}: is a file; a TF checkpoint is a folder")
        if any(directory.iterdir()) and not ((directory / "checkpoint").exists() or
                                             (directory / "model_config.json").exists()):
            raise FileExistsError(f"{directory}: a folder that is not a checkpoint and not empty; "
                                  f"give a new or empty folder")
    tensors = checkpoint_tensors(model, trainer)
    step = int(tensors["vector_rnn/global_step"])
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = directory.parent / f".{directory.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        name = f"{PREFIX}-{step}"
        write_bundle(tmp / name, tensors)
        for file, text in (("model_config.json", json.dumps(magenta_config(model), indent=True)),
                           (SIDECAR, json.dumps({"scale_factor": float(model.scale_factor)})),
                           ("checkpoint", f'model_checkpoint_path: "{name}"\nall_model_checkpoint_paths: "{name}"\n')):
            with open(tmp / file, "w") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
        if directory.exists():
            old = directory.parent / f".{directory.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(directory, old)
            os.replace(tmp, directory)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


# ------------------------------------------------------------------------------ training on from one
TRAINING_SCALARS = ("Variable", "Variable_1", "beta1_power", "beta2_power", "global_step")


def bundle_prefix(directory: str | Path) -> Path:
    """The bundle the folder's ``checkpoint`` file names; a path from another machine falls back to its name here."""
    import re

    directory = Path(directory)
    pointer = directory / "checkpoint"
    try:
        text = pointer.read_text(errors="replace")
    except OSError as exc:
        raise ValueError(f"{pointer}: cannot read ({exc.strerror or exc}): not a magenta checkpoint folder") from None
    match = re.search(r'^\s*model_checkpoint_path:\s*"(.*)"\s*$', text, re.M)
    if not match:
        raise ValueError(f"{pointer}: no model_checkpoint_path line")
    named = match.group(1)
    for candidate in (Path(named) if Path(named).is_absolute() else directory / named,
                      directory / re.split(r"[\\/]", named)[-1]):
        if Path(f"{candidate}.index").is_file():
            return candidate
    raise ValueError(f"{pointer}: names {named!r}, which is not in {directory}")


def read_training_checkpoint(directory: str | Path, hps, scale_factor: float = 1.0,
                             ) -> tuple["SketchRNN", "TrainerState"]:
    """A magenta checkpoint folder as our model (with `hps`) and trainer state: weights, Adam's moments
    and step, the step count (what ``sketchrnn train --init-from`` starts from)."""
    from .magenta_tf import from_tf_variables
    from .tf_bundle import read_bundle

    tensors = read_bundle(bundle_prefix(directory))
    trainable = {k: v for k, v in tensors.items() if k.startswith("vector_rnn/")
                 and not k.startswith("vector_rnn/vector_rnn/") and k.split("/")[-1] not in TRAINING_SCALARS}
    try:
        model = from_tf_variables(trainable, hps, scale_factor=scale_factor)
        return model, trainer_state(model, tensors)
    except ValueError as exc:
        raise ValueError(f"{directory}: {exc}") from None


def trainer_state(model: "SketchRNN", tensors: Mapping[str, np.ndarray]) -> "TrainerState":
    """The step count and Adam's moments and step of a checkpoint's tensors, for `model`."""
    from ..train.checkpoint import TrainerState

    step = int(tensors.get("vector_rnn/global_step", 0))
    power = tensors.get("vector_rnn/beta1_power")
    t = adam_step(power, step) if power is not None else 0
    return TrainerState(step=step, optimizer=optimizer_state(model, tensors) if t else {}, optimizer_step=t)
