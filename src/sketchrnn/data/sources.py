"""Where data comes from: a path, the bundled aaron_sheep set, or an official dataset name.

Official Quick, Draw! categories (``cat``, ``flying_saucer``, ...) are downloaded once from the
sketch-rnn bucket into a cache directory (``$SKETCHRNN_CACHE`` or ``~/.cache/sketchrnn``); the
base address can be changed with ``$SKETCHRNN_QUICKDRAW_URL`` (tests point it at a local server).
"""

from __future__ import annotations

import os
import tempfile
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

from .npz import DataFileError, load_npz

QUICKDRAW_URL = "https://storage.googleapis.com/quickdraw_dataset/sketchrnn"
BUNDLED = ("aaron_sheep",)


def bundled_path(name: str = "aaron_sheep") -> Path:
    """Path of a dataset shipped inside the package."""
    if name not in BUNDLED:
        raise ValueError(f"no bundled dataset {name!r}; bundled: {', '.join(BUNDLED)}")
    return Path(str(resources.files("sketchrnn") / "datasets" / f"{name}.npz"))


def cache_dir() -> Path:
    """The directory downloaded datasets are kept in."""
    return Path(os.environ.get("SKETCHRNN_CACHE") or Path.home() / ".cache" / "sketchrnn")


def download(name: str, directory: Path | None = None, base_url: str | None = None, timeout: float = 60) -> Path:
    """Fetch the official sketch-rnn file of Quick, Draw! category `name` (cached; checked before use)."""
    directory = Path(directory or cache_dir())
    target = directory / f"{name}.npz"
    if target.exists():
        return target
    base = (base_url or os.environ.get("SKETCHRNN_QUICKDRAW_URL") or QUICKDRAW_URL).rstrip("/")
    url = f"{base}/{urllib.request.quote(name)}.npz"
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(1 << 20):
                out.write(chunk)
        try:
            load_npz(tmp)  # refuse to cache a truncated or malformed file
        except DataFileError as exc:
            reason = str(exc).split(": ", 1)[-1]
            raise DataFileError(f"{url}: the downloaded file is not a valid sketch-rnn .npz ({reason}); not kept")
        os.replace(tmp, target)
    except urllib.error.HTTPError as exc:
        raise DataFileError(f"{url}: download failed (HTTP {exc.code}); is {name!r} a Quick, Draw! category?") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DataFileError(f"{url}: cannot download ({reason}); offline? pass a local .npz path instead") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def resolve(spec: str | Path) -> Path:
    """A data argument → a local file: an existing path, a bundled name, or a downloaded category."""
    path = Path(spec)
    if path.exists():
        return path
    name = str(spec)
    stem = name[:-4] if name.endswith(".npz") else name
    if stem in BUNDLED:
        return bundled_path(stem)
    if os.sep in name or "/" in name:
        raise DataFileError(f"{name}: no such file")
    try:
        return download(stem)
    except DataFileError as exc:
        raise DataFileError(f"{name}: no such file or bundled dataset, and as an official dataset: {exc}") from None
