"""sketchrnn: sketch-rnn (Ha & Eck, "A Neural Representation of Sketch Drawings", 2017) in PyTorch.

Importing the package does not import torch: `SketchRNN` is looked up on first use (PEP 562), so
the command line can answer ``--help`` and argument errors at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .hparams import HParams

if TYPE_CHECKING:
    from .model import SketchRNN

__version__ = "0.1.0"


def load(path: str | Path, which: str = "best", scale_factor: float | None = None) -> SketchRNN:
    """Load a model: a training run directory, a saved model directory, or a magenta-js ``.gen.json`` / ``.vae.json``.

    For a run directory, `which="best"` gives the best model on validation (the latest where no
    validation has run yet) and `which="last"` the latest checkpoint. A path that does not exist may
    be an official model's name, ``cat`` or ``cat.vae`` (`sketchrnn.zoo`: downloaded on first use).
    A folder magenta's TensorFlow trainer saved is read too; its scale factor is `scale_factor`,
    else computed from the data its model_config.json names.
    """
    from .zoo import model_path

    path = model_path(path)  # an existing path as it is; an official model's name (cat, cat.vae) → its file
    kind = _kind_of(path)
    if kind == "magenta-js":
        from .interop.magenta_js import load_magenta_js

        return load_magenta_js(path)  # decoder-only or VAE, as the file's info says
    if kind == "run":
        from .train.checkpoint import load_run_model

        return load_run_model(path, which)
    if kind == "tf":
        from .interop.tf_checkpoint import load_checkpoint

        return load_checkpoint(path, scale_factor)
    if kind == "model":
        from .store import load_model

        return load_model(path)
    expected = ("expected a training run, a saved model directory, a .gen.json / .vae.json file or a magenta "
                "checkpoint folder")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such model ({expected})")
    inside = _models_in(path) if path.is_dir() else []
    hint = f"; it holds {', '.join(map(str, inside[:3]))}{' and more' if len(inside) > 3 else ''}" if inside else ""
    raise FileNotFoundError(f"{path}: not a model ({expected}){hint}")


def _kind_of(path: Path) -> str | None:
    """Which of `load`'s readers takes `path`, by its name and layout (None: none of them)."""
    from .interop.tf_checkpoint import is_checkpoint_dir
    from .store import is_model_dir
    from .train.checkpoint import is_run_dir

    if path.is_file():
        return "magenta-js" if path.name.endswith(".json") else None
    if not path.is_dir():
        return None
    if is_run_dir(path):
        return "run"
    if is_checkpoint_dir(path):
        return "tf"
    return "model" if is_model_dir(path) else None


def _models_in(folder: Path) -> list[Path]:
    """What `load` would take among a folder's entries (none where the folder cannot be read)."""
    try:
        entries = sorted(folder.iterdir())
    except OSError:  # an unreadable folder: the message goes without the hint
        return []
    # among files, only the names that say what they hold: any .json would be tried, not offered
    return [p for p in entries if _kind_of(p) and (p.is_dir() or p.name.endswith((".gen.json", ".vae.json")))]


def pretrained(name: str, kind: str = "gen", set: str = "large_models") -> SketchRNN:
    """An official pretrained model (`sketchrnn models list`), downloaded into the cache on first use.

    `kind` is ``"gen"`` (decoder only) or ``"vae"`` (with an encoder), `set` ``"large_models"`` or
    ``"models"``; ``$SKETCHRNN_MODELS_URL`` replaces Google's address. The sheep gen model ships with
    the package. See `sketchrnn.zoo`.
    """
    import sys

    from .zoo import download_model

    return load(download_model(name, kind, set, progress=sys.stderr.isatty()))


_ROOMS = ("cache", "cpu", "data", "generate", "interop", "model", "render", "store", "train")


def __getattr__(name: str) -> Any:
    """`sketchrnn.SketchRNN`, imported (with torch) only when first asked for."""
    if name == "SketchRNN":
        from .model import SketchRNN

        globals()[name] = SketchRNN  # later look-ups find it directly
        return SketchRNN
    if name in _ROOMS:  # `sketchrnn.data.load_npz(...)` works without importing the room first
        import importlib

        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), "SketchRNN"])


__all__ = ["HParams", "SketchRNN", "load", "pretrained", "__version__"]
