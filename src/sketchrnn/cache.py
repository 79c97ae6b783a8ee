"""The project's cache directory: downloaded datasets and compiled kernels."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$SKETCHRNN_CACHE``, else ``~/.cache/sketchrnn``."""
    return Path(os.environ.get("SKETCHRNN_CACHE") or Path.home() / ".cache" / "sketchrnn")
