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
resumes.  A file appears under its final name only once it is complete and verified.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import http.client
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..atomic import atomic_write_json
from ..cache import cache_dir
from .npz import DataFileError, load_npz

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: concurrent downloads are not serialised
    fcntl = None  # type: ignore[assignment]

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

_CHUNK = 1 << 20
_ATTEMPTS = 4  # transfers per call; an interrupted one is resumed by the next
_RETRY_DELAY = 1.0  # seconds between an interrupted transfer and its resumption
_TAIL = 1 << 20  # bytes read from the end of an ndjson file to find its last line
_USER_AGENT = "sketchrnn (python urllib)"


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


def _md5_file(path: Path, hasher: Any = None) -> Any:
    """`hasher` (a new MD5 if None) updated with the bytes of `path`."""
    hasher = hasher or hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            hasher.update(chunk)
    return hasher


def _drawing_problem(line: bytes) -> str | None:
    """What is wrong with one ndjson line, or None if it is a drawing record."""
    try:
        record = json.loads(line)
    except ValueError:
        return "is not complete JSON"
    if not isinstance(record, dict) or not isinstance(record.get("drawing"), list):
        return "is not a record with a drawing"
    return None


def _validate(path: Path, fmt: str) -> str | None:
    """Why the whole file at `path` is not a valid file of format `fmt`, or None if it is."""
    if fmt == "npz":
        try:
            load_npz(path)
        except DataFileError as exc:
            return str(exc).removeprefix(f"{path}: ")
        return None
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


def _quick_problem(path: Path, fmt: str) -> str | None:
    """A cheap look at the structure of `path`: its zip directory, or its first and last lines."""
    if fmt == "npz":
        try:
            with zipfile.ZipFile(path) as archive:
                if not any(n.endswith(".npy") for n in archive.namelist()):
                    return "the archive holds no .npy arrays"
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            return f"not a complete zip archive ({exc})"
        return None
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


def _sidecar(target: Path) -> Path:
    return target.with_name(target.name + ".json")


def _read_record(target: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(_sidecar(target).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _write_record(target: Path, url: str, size: int, md5: str, server_md5: bool) -> None:
    atomic_write_json(
        _sidecar(target),
        {
            "url": url,
            "size": size,
            "md5": md5,
            "md5_from_server": server_md5,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        },
    )


def _cached_problem(target: Path, fmt: str, url: str, verify: bool) -> str | None:
    """Why the cached `target` cannot be used, or None if it can.

    With a record: its size, and a cheap look at its structure (with `verify`: its MD5 and all of
    its content).  Without one (a file cached by hand or by an older version): all of its content,
    after which a record is written.
    """
    size = target.stat().st_size
    record = _read_record(target)
    if record is None:
        problem = _validate(target, fmt)
        if problem is None:
            with contextlib.suppress(OSError):  # a read-only cache still serves the file
                _write_record(target, url, size, _md5_file(target).hexdigest(), False)
        return problem
    if record.get("size") != size:
        return f"it has {size} bytes, but had {record.get('size')} when downloaded"
    problem = _quick_problem(target, fmt)
    if problem or not verify:
        return problem
    if _md5_file(target).hexdigest() != record.get("md5"):
        return "its MD5 differs from the one recorded when it was downloaded"
    return _validate(target, fmt)


# ---------------------------------------------------------------------------
# Transfers


def _why(exc: BaseException) -> str:
    """A short one-line reason for a network error."""
    reason = getattr(exc, "reason", None) or exc
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return " ".join(str(text).split())


def _server_md5(headers: Any, status: int) -> str | None:
    """The MD5 (hex) of the whole file announced by the server, if any.

    Google Cloud Storage sends ``x-goog-hash: crc32c=...,md5=<base64>`` (possibly as two headers),
    for the whole object even in a partial response; ``Content-MD5`` covers only the body sent.
    """
    stored = (headers.get("x-goog-stored-content-encoding") or "identity").lower()
    if stored != "identity" and not headers.get("content-encoding"):
        return None  # decompressed on the fly: the hashes are of the compressed object
    values = [item for value in headers.get_all("x-goog-hash") or [] for item in value.split(",")]
    if status == 200 and headers.get("content-md5"):
        values.append("md5=" + headers["content-md5"])
    for item in values:
        key, _, encoded = item.strip().partition("=")
        if key.lower() == "md5":
            try:
                digest = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                return None
            return digest.hex() if len(digest) == 16 else None
    return None


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    """(first byte, total or None) from a ``Content-Range: bytes A-B/T`` header."""
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value or "")
    if not match:
        return None
    return int(match[1]), None if match[3] == "*" else int(match[3])


def _content_length(headers: Any) -> int | None:
    try:
        return int(headers.get("content-length"))
    except (TypeError, ValueError):
        return None


@dataclass
class _Transfer:
    """What one complete transfer produced."""

    size: int
    md5: str
    server_md5: str | None
    total: int | None


class _Interrupted(Exception):
    """A transfer stopped before the end; the partial file is kept."""


class _Restart(Exception):
    """The partial file cannot be resumed; start from the beginning."""


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
    return DataFileError(f"{url}: download failed (HTTP {exc.code} {' '.join(str(exc.reason).split())}){hint}")


def _transfer(url: str, part: Path, timeout: float, progress: bool, category: str, kind: str) -> _Transfer:
    """Fetch `url` into `part`, resuming from its current length; raise _Interrupted or _Restart."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": _USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    host = urllib.parse.urlsplit(url).netloc or url
    kept = "; the partial download is kept and resumes next time" if offset else ""
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            raise _Restart(f"the server refused to resume at byte {offset}") from None
        raise _http_error(url, category, kind, exc) from None
    except urllib.error.URLError as exc:
        raise DataFileError(
            f"{url}: cannot reach {host} ({_why(exc)}); offline? "
            f"fetch the file elsewhere and pass a local file instead{kept}"
        ) from None
    except (ValueError, http.client.InvalidURL) as exc:
        raise DataFileError(
            f"{url}: not a usable address ({exc}); check --base-url / $SKETCHRNN_QUICKDRAW_URL"
        ) from None
    except (OSError, http.client.HTTPException) as exc:  # the request went out; no answer came back
        raise _Interrupted(f"no answer from {host} ({_why(exc)})") from None

    with response:
        status = response.status
        headers = response.headers
        if status == 206:
            span = _content_range(headers.get("content-range"))
            if span is None or span[0] != offset:
                raise _Restart(f"the server answered a resume at byte {offset} with {headers.get('content-range')!r}")
            length = _content_length(headers)
            total = span[1] if span[1] is not None else (offset + length if length is not None else None)
            # the whole file is hashed: the part kept, then what follows
            hasher = _md5_file(part) if offset else hashlib.md5(usedforsecurity=False)
            mode = "ab"
        else:  # 200, also when the server ignored the range: start again from the first byte
            offset, total = 0, _content_length(headers)
            hasher = hashlib.md5(usedforsecurity=False)
            mode = "wb"
        server_md5 = _server_md5(headers, status)
        interrupted = None
        with open(part, mode) as out, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name.removesuffix(".part"), file=sys.stderr, disable=not progress, leave=True,
        ) as bar:
            while True:
                try:
                    chunk = response.read(_CHUNK)
                except (OSError, http.client.HTTPException) as exc:
                    interrupted = _why(exc) or type(exc).__name__
                    break
                if not chunk:
                    break
                out.write(chunk)
                hasher.update(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())

    size = part.stat().st_size
    if interrupted or (total is not None and size < total):
        of = f" of {total}" if total is not None else ""
        raise _Interrupted(f"the connection to {host} broke after {size}{of} bytes ({interrupted or 'closed early'})")
    if total is not None and size != total:
        part.unlink()
        raise DataFileError(f"{url}: got {size} bytes, but the server announced {total}; not kept")
    return _Transfer(size, hasher.hexdigest(), server_md5, total)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock named `path`, so that processes fetching one file take turns."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            with contextlib.suppress(FileNotFoundError):
                if os.stat(path).st_ino == os.fstat(fd).st_ino:
                    break  # still the live lock file, not one its last holder removed
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        os.close(fd)


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
    server sent (if any), and its content is a valid ``.npz`` of sketches or ndjson of drawings.
    `timeout` is in seconds per network operation; `progress` shows a progress bar on stderr.

    Raises:
        ValueError: `kind` is not one of :data:`KINDS`.
        DataFileError: the name is not a category name, the server cannot be reached, has no such
            file, or sends one that fails the checks (a one-line message starting with the address).
    """
    layout = _layout(kind)
    category = _category(name)
    url = category_url(name, kind, base_url)
    target = cached_file(name, kind, directory)

    def state() -> tuple[int, int, int] | None:
        with contextlib.suppress(OSError):
            st = target.stat()
            return st.st_ino, st.st_size, st.st_mtime_ns
        return None

    def cached() -> bool:
        if not target.is_file():
            return False
        problem = _cached_problem(target, layout.format, url, verify)
        if problem is None:
            return True
        warnings.warn(
            f"{target}: the cached file is corrupt or truncated ({problem}); downloading it again", stacklevel=3
        )
        return False

    if cached():
        return target
    before = state()
    part = target.with_name(target.name + ".part")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target.with_name(f".{target.name}.lock")):
            if state() != before and cached():
                return target  # another process fetched it while this one waited
            _fetch_and_keep(url, part, target, layout.format, timeout, progress, category, kind)
    except OSError as exc:  # network errors are DataFileErrors by now: this is the local disk
        raise DataFileError(
            f"{exc.filename or target.parent}: cannot write the download ({exc.strerror or exc}); "
            "choose another directory ($SKETCHRNN_CACHE or the directory argument)"
        ) from None
    return target


def _fetch_and_keep(
    url: str, part: Path, target: Path, fmt: str, timeout: float, progress: bool, category: str, kind: str
) -> None:
    """Download `url` into `part`, check it, and give it its final name `target` with its record."""
    transfer = _fetch(url, part, timeout, progress, category, kind)
    if transfer.server_md5 is not None and transfer.server_md5 != transfer.md5:
        part.unlink()
        raise DataFileError(
            f"{url}: MD5 mismatch: the file received hashes to {transfer.md5}, the server "
            f"announced {transfer.server_md5}; the download is corrupt and was not kept"
        )
    problem = _validate(part, fmt)
    if problem:
        part.unlink()
        what = "sketch-rnn .npz" if fmt == "npz" else "Quick, Draw! ndjson"
        raise DataFileError(f"{url}: the downloaded file is not a valid {what} ({problem}); not kept")
    with contextlib.suppress(FileNotFoundError):
        _sidecar(target).unlink()
    os.replace(part, target)
    _write_record(target, url, transfer.size, transfer.md5, transfer.server_md5 is not None)


def _fetch(url: str, part: Path, timeout: float, progress: bool, category: str, kind: str) -> _Transfer:
    """Transfer `url` into `part`, resuming after interruptions, up to _ATTEMPTS transfers."""
    reason = ""
    for attempt in range(_ATTEMPTS):
        try:
            return _transfer(url, part, timeout, progress, category, kind)
        except _Restart as exc:
            reason = str(exc)
            part.unlink(missing_ok=True)
        except _Interrupted as exc:
            reason = str(exc)
            if attempt + 1 < _ATTEMPTS:
                time.sleep(_RETRY_DELAY)
    kept = part.stat().st_size if part.exists() else 0
    after = f"the {kept} bytes received are kept in {part} and the next try resumes from there" if kept else "try again"
    raise DataFileError(f"{url}: download interrupted {_ATTEMPTS} times, last: {reason}; {after}")


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
