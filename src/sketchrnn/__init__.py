"""sketchrnn: sketch-rnn (Ha & Eck, "A Neural Representation of Sketch Drawings", 2017) in PyTorch."""

from __future__ import annotations

from pathlib import Path

from .hparams import HParams
from .model import SketchRNN

__version__ = "0.1.0"


def load(path: str | Path) -> SketchRNN:
    """Load a model: a directory written by sketchrnn, or a magenta-js ``.gen.json`` file."""
    from .interop.magenta_js import load_gen_json
    from .store import load_model

    path = Path(path)
    if path.name.endswith(".json") and path.is_file():
        return load_gen_json(path)
    if path.is_dir():
        return load_model(path)
    raise FileNotFoundError(f"{path}: no such model (expected a sketchrnn model directory or a .gen.json file)")


__all__ = ["HParams", "SketchRNN", "load", "__version__"]
