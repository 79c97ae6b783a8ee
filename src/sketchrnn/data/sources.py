"""Where data comes from: a path, the bundled aaron_sheep set, or an official Quick, Draw! file.

Official files are downloaded once into a cache directory (``$SKETCHRNN_CACHE``, else
``~/.cache/sketchrnn``; or the ``directory`` given) from the root of the Quick, Draw! dataset,
:data:`QUICKDRAW_URL`.  ``$SKETCHRNN_QUICKDRAW_URL`` (or a ``base_url`` argument) replaces that root,
for a mirror or a test server; one root serves every kind of file:

==========  ======================================  ==============================
kind        address under the root                  file in the cache directory
==========  ======================================  ==============================
sketchrnn   ``sketchrnn/{category}.npz``            ``{category}.npz``
full        ``sketchrnn/{category}.full.npz``       ``{category}.full.npz``
simplified  ``full/simplified/{category}.ndjson``   ``{category}.simplified.ndjson``
raw         ``full/raw/{category}.ndjson``          ``{category}.raw.ndjson``
==========  ======================================  ==============================

Category names may be written as officially, with spaces (``"The Eiffel Tower"``), or with
underscores (``The_Eiffel_Tower``, handier in a shell): no official category contains an underscore,
so underscores become spaces in the address (which is URL-quoted), and local file names use
underscores.

Beside each cached file ``F``, ``F.json`` records its size, MD5, address and download time, so that a
cached file is checked cheaply before use; ``F.part`` is an unfinished download, which the next call
resumes.  A file appears under its final name only once it is complete and verified.  The
downloader itself, :func:`sketchrnn.transfer.fetch`, is shared with the official models
(:mod:`sketchrnn.zoo`); this module says where the data files are and what they must hold.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import zipfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..cache import cache_dir
from ..transfer import Checks, fetch, http_failure
from .errors import DataFileError
from .npz import load_npz

__all__ = [
    "BUNDLED", "KINDS", "QUICKDRAW_URL", "bundled_path", "cache_dir", "cached_file", "category_url",
    "download", "names_file", "quickdraw_root", "resolve",
]

QUICKDRAW_URL = "https://storage.googleapis.com/quickdraw_dataset"
"""The root of the official Quick, Draw! dataset."""

BUNDLED = ("aaron_sheep",)


@dataclass(frozen=True)
class _Layout:
    """Where one kind of file lives on the server and in the cache, and what it holds."""

    remote: str  # address under the root; {} is the category, spelled with spaces
    suffix: str  # local file name = category spelled with underscores + suffix
    format: str  # "npz" or "ndjson"


_LAYOUTS: dict[str, _Layout] = {
    "sketchrnn": _Layout("sketchrnn/{}.npz", ".npz", "npz"),
    "full": _Layout("sketchrnn/{}.full.npz", ".full.npz", "npz"),
    "simplified": _Layout("full/simplified/{}.ndjson", ".simplified.ndjson", "ndjson"),
    "raw": _Layout("full/raw/{}.ndjson", ".raw.ndjson", "ndjson"),
}
KINDS: tuple[str, ...] = tuple(_LAYOUTS)
"""The kinds of official file :func:`download` can fetch."""

_TAIL = 1 << 20  # bytes read from the end of an ndjson file to find its last line


def bundled_path(name: str = "aaron_sheep") -> Path:
    """Path of a dataset shipped inside the package."""
    if name not in BUNDLED:
        raise ValueError(f"no bundled dataset {name!r}; bundled: {', '.join(BUNDLED)}")
    return Path(str(resources.files("sketchrnn") / "datasets" / f"{name}.npz"))


def quickdraw_root(base_url: str | None = None) -> str:
    """The dataset root used: `base_url`, else ``$SKETCHRNN_QUICKDRAW_URL``, else :data:`QUICKDRAW_URL`."""
    return (base_url or os.environ.get("SKETCHRNN_QUICKDRAW_URL") or QUICKDRAW_URL).rstrip("/")


def _layout(kind: str) -> _Layout:
    if not isinstance(kind, str) or kind not in _LAYOUTS:
        raise ValueError(f"unknown kind {kind!r}; one of: {', '.join(KINDS)}")
    return _LAYOUTS[kind]


def _category(name: str) -> str:
    """The official spelling of category `name` (spaces, not underscores); refuses what is not a name."""
    spelled = str(name).strip().replace("_", " ")
    if (
        not spelled
        or spelled.startswith(".")
        or any(c in spelled for c in "/\\")
        or any(ord(c) < 32 or ord(c) == 127 for c in spelled)
    ):
        raise DataFileError(f"{name!r}: not a Quick, Draw! category name")
    return spelled


def category_url(name: str, kind: str = "sketchrnn", base_url: str | None = None) -> str:
    """The address of the `kind` file of Quick, Draw! category `name`."""
    remote = _layout(kind).remote.format(urllib.parse.quote(_category(name)))
    return f"{quickdraw_root(base_url)}/{remote}"


def cached_file(name: str, kind: str = "sketchrnn", directory: str | os.PathLike[str] | None = None) -> Path:
    """Where :func:`download` keeps the `kind` file of category `name` (whether or not it is there yet)."""
    local = _category(name).replace(" ", "_") + _layout(kind).suffix
    return Path(directory if directory is not None else cache_dir()) / local


# ---------------------------------------------------------------------------
# Checking files


def _drawing_problem(line: bytes) -> str | None:
    """What is wrong with one ndjson line, or None if it is a drawing record."""
    try:
        record = json.loads(line)
    except ValueError:
        return "is not complete JSON"
    if not isinstance(record, dict) or not isinstance(record.get("drawing"), list):
        return "is not a record with a drawing"
    return None


def _validate_npz(path: Path) -> str | None:
    """Why the whole file at `path` is not a sketch-rnn .npz, or None if it is."""
    try:
        load_npz(path)
    except DataFileError as exc:
        return str(exc).removeprefix(f"{path}: ")
    return None


def _validate_ndjson(path: Path) -> str | None:
    """Why the whole file at `path` is not Quick, Draw! ndjson, or None if it is."""
    count = 0
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            problem = _drawing_problem(line)
            if problem:
                return f"line {number} {problem}"
            count += 1
    return None if count else "it holds no drawings"


def _glance_npz(path: Path) -> str | None:
    """A cheap look at the structure of an .npz: its zip directory."""
    try:
        with zipfile.ZipFile(path) as archive:
            if not any(n.endswith(".npy") for n in archive.namelist()):
                return "the archive holds no .npy arrays"
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return f"not a complete zip archive ({exc})"
    return None


def _glance_ndjson(path: Path) -> str | None:
    """A cheap look at the structure of ndjson: its first and last lines."""
    size = path.stat().st_size
    if size == 0:
        return "the file is empty"
    with open(path, "rb") as fh:
        first = fh.readline()
        fh.seek(max(0, size - _TAIL))
        tail = fh.read()
    problem = _drawing_problem(first)
    if problem:
        return f"the first line {problem}"
    lines = tail.rstrip(b"\r\n").rsplit(b"\n", 1)
    if len(lines) == 2 or size <= _TAIL:
        problem = _drawing_problem(lines[-1])
        if problem:
            return f"the last line {problem}"
    return None


_CHECKS = {
    "npz": Checks("sketch-rnn .npz", _validate_npz, _glance_npz),
    "ndjson": Checks("Quick, Draw! ndjson", _validate_ndjson, _glance_ndjson),
}


# ---------------------------------------------------------------------------
# Downloads


def _root_of(url: str, kind: str) -> str:
    """The dataset root that `url`, the address of a `kind` file, lies under."""
    return url.rsplit("/", _layout(kind).remote.count("/") + 1)[0]


def _http_error(url: str, category: str, kind: str, exc: urllib.error.HTTPError) -> DataFileError:
    """The one-line error for an HTTP error answer."""
    hint = ""
    if re.search(r"/(sketchrnn|full|simplified|raw)$", _root_of(url, kind)):
        hint = (
            f"; note: the base URL (--base-url, $SKETCHRNN_QUICKDRAW_URL) is the dataset root, e.g. "
            f"{QUICKDRAW_URL}, not one of its folders"
        )
    if exc.code in (404, 410):
        return DataFileError(
            f"{url}: no such category {category!r} of kind {kind!r} (HTTP {exc.code}); "
            f"check the spelling (spaces or underscores, e.g. 'The Eiffel Tower'){hint}"
        )
    return DataFileError(http_failure(url, exc, hint))


def download(
    name: str,
    kind: str = "sketchrnn",
    directory: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    timeout: float = 60,
    progress: bool = False,
    verify: bool = False,
) -> Path:
    """The local copy of the `kind` file of Quick, Draw! category `name`, downloaded if needed.

    `kind` is one of :data:`KINDS`; `name` is spelled with spaces or underscores; the file is kept in
    `directory` (default :func:`cache_dir`) as :func:`cached_file` says, fetched from the dataset
    root :func:`quickdraw_root` (`base_url`, ``$SKETCHRNN_QUICKDRAW_URL`` or the official one).

    A cached file is used after a cheap check against its record (size, structure); with `verify`,
    its MD5 and whole content are checked too.  One found corrupt or truncated is reported with a
    warning and downloaded again.  An interrupted download is resumed, within this call and by the
    next one.  A new file is kept only if its size matches the one announced, its MD5 the one the
    server sent (if any), and its content is a valid ``.npz`` of sketches or ndjson of drawings
    (:func:`sketchrnn.transfer.fetch` does all this).
    `timeout` is in seconds per network operation; `progress` shows a progress bar on stderr.

    Raises:
        ValueError: `kind` is not one of :data:`KINDS`.
        DataFileError: the name is not a category name, the server cannot be reached, has no such
            file, or sends one that fails the checks (a one-line message starting with the address).
    """
    layout = _layout(kind)
    category = _category(name)
    return fetch(
        category_url(name, kind, base_url), cached_file(name, kind, directory), _CHECKS[layout.format],
        error=DataFileError, http_error=lambda url, exc: _http_error(url, category, kind, exc),
        setting="--base-url / $SKETCHRNN_QUICKDRAW_URL", timeout=timeout, progress=progress, verify=verify,
    )


def _official(name: str) -> tuple[str, str]:
    """The category and kind an official file's name gives: ``cat``, ``cat.npz`` → sketchrnn; ``cat.full.npz`` → full."""
    stem = name[: -len(".npz")] if name.endswith(".npz") else name
    if stem.endswith(".full"):
        return stem[: -len(".full")], "full"
    return stem, "sketchrnn"


def _on_disk(spec: str | Path) -> Path | None:
    """The file a data argument names when no download is involved: an existing path or a bundled dataset."""
    path = Path(spec)
    if path.exists():
        return path
    category, kind = _official(str(spec))
    return bundled_path(category) if category in BUNDLED and kind == "sketchrnn" else None


def resolve(spec: str | Path) -> Path:
    """A data argument → a local file: an existing path, a bundled name, or a downloaded category.

    A bare name (``cat``, ``The_Eiffel_Tower``) is the category's sketch-rnn file, downloaded once.
    A name with a suffix or a folder is a file name: ``cat.npz`` (``cat.full.npz``, the "full" file)
    is taken from the download cache when it was fetched before; anything else that does not exist
    is reported missing, so that a mistyped file name never starts a download.
    """
    found = _on_disk(spec)
    if found is not None:
        return found
    name = str(spec)
    if os.sep in name or "/" in name:
        raise DataFileError(f"{name}: no such file")
    category, kind = _official(name)
    if Path(name).suffix:
        if name.endswith(".npz") and cached_file(category, kind).is_file():
            return download(category, kind)  # checks the cached copy; no transfer when it is sound
        hint = ""
        if name.endswith(".npz"):
            hint = (f" (for the Quick, Draw! category, give its name alone: {category})" if kind == "sketchrnn" else
                    f" (`sketchrnn data download {category} --kind full` fetches the category's full file)")
        raise DataFileError(f"{name}: no such file{hint}")
    try:
        return download(category, kind)
    except DataFileError as exc:
        raise DataFileError(f"{name}: no such file or bundled dataset, and as an official dataset: {exc}") from None


def names_file(spec: str | Path, path: str | Path) -> bool:
    """Whether data argument `spec` names the local file `path` (as `resolve` finds it), downloading nothing."""
    found = _on_disk(spec)
    if found is None:
        try:
            found = cached_file(*_official(str(spec)))
        except DataFileError:  # not a category name either
            return False
    target = Path(path)
    if found.exists() and target.exists():
        return os.path.samefile(found, target)
    return found.resolve() == target.resolve()
