"""Our own model files: weights in safetensors, everything else in a JSON file beside them.

A saved model is a directory holding ``model.safetensors`` and ``model.json`` (format, version,
hyperparameters in magenta's dict form, scale factor). Files are written atomically: a crash
mid-save leaves the previous file intact. Nothing here unpickles anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save

from .atomic import atomic_write_bytes, atomic_write_json

from .hparams import HParams
from .model import SketchRNN

FORMAT = "sketchrnn"
VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "model.json"


def read_json(path: Path) -> Any:
    """A JSON file's content; a missing or unreadable file raises an error that names it."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


def save_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """Write tensors to a safetensors file, atomically."""
    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
    atomic_write_bytes(path, data)


def model_config(model: SketchRNN) -> dict[str, Any]:
    """The JSON description of a model (everything but the weights)."""
    config = {
        "format": FORMAT,
        "version": VERSION,
        "hparams": model.hps.to_magenta_dict(),
        "scale_factor": model.scale_factor,
    }
    if model.tanh_z_for_initial_state:  # only models imported from magenta-js files before version 6
        config["tanh_z_for_initial_state"] = True
    return config


def save_model(model: SketchRNN, directory: str | Path) -> Path:
    """Save `model` to `directory` (``model.safetensors`` + ``model.json``)."""
    directory = Path(directory)
    save_tensors(directory / WEIGHTS, model.state_dict())
    atomic_write_json(directory / CONFIG, model_config(model))
    return directory


def is_model_dir(path: Path) -> bool:
    """Whether `path` is a directory written by `save_model`."""
    return (path / WEIGHTS).is_file() and (path / CONFIG).is_file()


def load_model(directory: str | Path) -> SketchRNN:
    """Read a model saved by `save_model`; errors name the file and the problem."""
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG, directory / WEIGHTS
    for p in (config_path, weights_path):
        if not p.is_file():
            raise FileNotFoundError(f"{p}: no such file (not a saved sketchrnn model)")
    config = read_json(config_path)
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ValueError(f"{config_path}: not a sketchrnn model description")
    try:
        hps = HParams.from_dict(config["hparams"], strict=False)
        model = SketchRNN(hps, scale_factor=float(config.get("scale_factor", 1.0)))
        model.tanh_z_for_initial_state = config.get("tanh_z_for_initial_state", False) is True
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{config_path}: {exc}") from None
    try:
        state = load_file(weights_path)
    except (SafetensorError, OSError) as exc:
        raise ValueError(f"{weights_path}: not a readable safetensors file ({exc})") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise ValueError(f"{weights_path}: weights do not fit the configuration in {config_path.name}: "
                         f"{' '.join(s.strip() for s in first[:3])}") from None
    return model.eval()
