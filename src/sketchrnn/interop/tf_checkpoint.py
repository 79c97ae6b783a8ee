"""magenta's TensorFlow checkpoint folders (`sketch_rnn_train.save_model`): read into a SketchRNN.

A folder holds `model_config.json` (magenta's hyperparameters; booleans as 0/1 or true/false),
`checkpoint` (the pointer file, whose path may be absolute from another machine: we fall back to
its file name in the folder) and the tensor bundle it names (`tf_bundle`). Besides the trainable
variables the bundle holds Adam's slots, β powers, the step and the eval and sample models'
scalars; only the trainable variables make the model.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..model import SketchRNN
from .magenta_tf import from_tf_variables
from .tf_bundle import BundleError, read_bundle
from .tf_write import SIDECAR

__all__ = ["checkpoint_prefix", "is_checkpoint_dir", "load_checkpoint", "read_checkpoint", "trainable_variables",
           "write_checkpoint"]

CONFIG, POINTER = "model_config.json", "checkpoint"
SCALARS = ("Variable", "Variable_1", "beta1_power", "beta2_power", "global_step")


def is_checkpoint_dir(path: str | Path) -> bool:
    """Whether `path` is a folder magenta's trainer saved (model_config.json and checkpoint)."""
    path = Path(path)
    return path.is_dir() and (path / CONFIG).is_file() and (path / POINTER).is_file()


def checkpoint_prefix(folder: str | Path) -> Path:
    """The bundle prefix the `checkpoint` file names (its file name in `folder` when the path is foreign)."""
    folder = Path(folder)
    text = (folder / POINTER).read_text(errors="replace")
    match = re.search(r'^model_checkpoint_path:\s*"(.*)"\s*$', text, re.M)
    if not match:
        raise BundleError(f"{folder / POINTER}: no model_checkpoint_path line")
    named = Path(match.group(1))
    for candidate in (named if named.is_absolute() else folder / named, folder / named.name):
        if candidate.with_name(candidate.name + ".index").is_file():
            return candidate
    raise BundleError(f"{folder / POINTER}: names {match.group(1)!r}, which is not in {folder}")


def read_checkpoint(folder: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(model_config.json as a dict, every tensor of the bundle by name)."""
    folder = Path(folder)
    try:
        config = json.loads((folder / CONFIG).read_text())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{folder / CONFIG}: {exc}") from None
    if not isinstance(config, dict):
        raise BundleError(f"{folder / CONFIG}: expected a JSON object of hyperparameters")
    return config, read_bundle(checkpoint_prefix(folder))


def trainable_variables(tensors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's own variables: those of the training model, less Adam's slots and the scalars."""
    return {k: v for k, v in tensors.items() if k.startswith("vector_rnn/")
            and not k.startswith("vector_rnn/vector_rnn/") and k.split("/")[-1] not in SCALARS}


def stored_scale_factor(folder: Path) -> float | None:
    """The scale factor sketchrnn wrote beside a checkpoint it exported (None: there is none)."""
    path = folder / SIDECAR
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())["scale_factor"]
        if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 < value < float("inf")):
            raise ValueError(f"scale_factor {value!r} is not a positive number")
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path}: expected {{\"scale_factor\": a positive number}} ({exc})") from None
    return float(value)


def load_checkpoint(folder: str | Path, scale_factor: float | None = None) -> SketchRNN:
    """The model of a magenta checkpoint folder. magenta's config does not store the scale factor:
    it is `scale_factor`, else the one sketchrnn stored beside a folder it exported (`SIDECAR`),
    else computed from the config's `data_set` (found beside the folder, or bundled, cached or
    downloaded)."""
    folder = Path(folder)
    config, tensors = read_checkpoint(folder)
    if scale_factor is None:
        scale_factor = stored_scale_factor(folder)
    if scale_factor is None:
        from ..data import load_dataset

        data = config.get("data_set")
        names = data if isinstance(data, list) else [data] if data else []
        # magenta reads its data_set from a data_dir: beside the folder first, then as sketchrnn finds data
        names = [next((str(d / n) for d in (folder, folder.parent) if (d / n).is_file()), n) for n in names]
        try:
            scale_factor = load_dataset(names).scale_factor if names else None
        except (ValueError, OSError) as exc:
            raise ValueError(f"{folder}: the scale factor is not stored in magenta checkpoints and its data "
                             f"({', '.join(map(str, names))}) could not be read ({exc}): pass scale_factor=") from None
        if scale_factor is None:
            raise ValueError(f"{folder}: {CONFIG} names no data_set to compute the scale factor from: pass scale_factor=")
    try:
        model = from_tf_variables(trainable_variables(tensors), config, scale_factor=float(scale_factor))
    except ValueError as exc:
        raise ValueError(f"{folder}: {exc}") from None
    return model.eval()


from .tf_write import write_checkpoint  # noqa: E402  (the writer, beside the reader)
