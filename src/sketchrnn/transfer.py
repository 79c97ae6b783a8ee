"""Downloads into the cache: one address to one local file, atomic, resumable and checked.

The one downloader behind the data files (:mod:`sketchrnn.data.sources`) and the official models
(:mod:`sketchrnn.zoo`); each says what a good file of its kind holds (:class:`Checks`) and how its
errors read.  :func:`fetch` then:

- uses a cached file after a cheap check against its record (size, structure; with `verify`, its
  MD5 and whole content too), and downloads again one found corrupt or truncated, with a warning;
- downloads into ``F.part`` and resumes an interrupted transfer with a range request, within the
  call and by the next one (the part is kept);
- keeps a new file only if its size matches the one announced, its MD5 the one the server sent
  (Google Cloud Storage's ``x-goog-hash``), and its content passes the checks; only then does it
  get its final name, by one rename;
- lets processes fetching one file take turns (a lock file beside it);
- reports every failure as one line that starts with the address (or the local path), an
  unreachable host as "offline?".

Beside each cached file ``F``, ``F.json`` records its size, MD5, address and download time.
Nothing here imports torch.
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .atomic import atomic_write_json

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: concurrent downloads are not serialised
    fcntl = None  # type: ignore[assignment]

__all__ = ["ATTEMPTS", "Checks", "fetch"]

CHUNK = 1 << 20
ATTEMPTS = 4  # transfers per call; an interrupted one is resumed by the next
RETRY_DELAY = 1.0  # seconds between an interrupted transfer and its resumption
USER_AGENT = "sketchrnn (python urllib)"


@dataclass(frozen=True)
class Checks:
    """What a downloaded file of one kind must be; each check returns why a file fails it, or None."""

    what: str  # the kind of file, in messages: "a valid {what}"
    validate: Callable[[Path], str | None]  # the whole content
    glance: Callable[[Path], str | None]  # a cheap look at the structure, for a cached file with a record


HttpError = Callable[[str, urllib.error.HTTPError], Exception]
"""The one-line error for an HTTP error answer to the address given (404 and others)."""


@dataclass(frozen=True)
class _Job:
    """One call of :func:`fetch`: where from, where to, and how its failures read."""

    url: str
    target: Path
    checks: Checks
    error: type[Exception]
    http_error: HttpError
    setting: str  # where the address comes from, for "not a usable address"
    timeout: float
    progress: bool

    @property
    def part(self) -> Path:
        return self.target.with_name(self.target.name + ".part")

    @property
    def host(self) -> str:
        return urllib.parse.urlsplit(self.url).netloc or self.url


def http_failure(url: str, exc: urllib.error.HTTPError, hint: str = "") -> str:
    """The plain description of an HTTP error answer: ``URL: download failed (HTTP 500 reason)``."""
    return f"{url}: download failed (HTTP {exc.code} {' '.join(str(exc.reason).split())}){hint}"


# ---------------------------------------------------------------------------
# The record beside a cached file


def _md5_file(path: Path, hasher: Any = None) -> Any:
    """`hasher` (a new MD5 if None) updated with the bytes of `path`."""
    hasher = hasher or hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            hasher.update(chunk)
    return hasher


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


def _cached_problem(target: Path, checks: Checks, url: str, verify: bool) -> str | None:
    """Why the cached `target` cannot be used, or None if it can.

    With a record: its size, and a cheap look at its structure (with `verify`: its MD5 and all of
    its content).  Without one (a file cached by hand or by an older version): all of its content,
    after which a record is written.
    """
    size = target.stat().st_size
    record = _read_record(target)
    if record is None:
        problem = checks.validate(target)
        if problem is None:
            with contextlib.suppress(OSError):  # a read-only cache still serves the file
                _write_record(target, url, size, _md5_file(target).hexdigest(), False)
        return problem
    if record.get("size") != size:
        return f"it has {size} bytes, but had {record.get('size')} when downloaded"
    problem = checks.glance(target)
    if problem or not verify:
        return problem
    if _md5_file(target).hexdigest() != record.get("md5"):
        return "its MD5 differs from the one recorded when it was downloaded"
    return checks.validate(target)


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


def _transfer(job: _Job) -> _Transfer:
    """Fetch the job's address into its part file, resuming from its current length; raise _Interrupted or _Restart."""
    url, part, host = job.url, job.part, job.host
    offset = part.stat().st_size if part.exists() else 0
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    kept = "; the partial download is kept and resumes next time" if offset else ""
    try:
        response = urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=job.timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 416 and offset:
            raise _Restart(f"the server refused to resume at byte {offset}") from None
        raise job.http_error(url, exc) from None
    except urllib.error.URLError as exc:
        raise job.error(
            f"{url}: cannot reach {host} ({_why(exc)}); offline? "
            f"fetch the file elsewhere and pass a local file instead{kept}"
        ) from None
    except (ValueError, http.client.InvalidURL) as exc:
        raise job.error(f"{url}: not a usable address ({exc}); check {job.setting}") from None
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
            desc=part.name.removesuffix(".part"), file=sys.stderr, disable=not job.progress, leave=True,
        ) as bar:
            while True:
                try:
                    chunk = response.read(CHUNK)
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
        raise job.error(f"{url}: got {size} bytes, but the server announced {total}; not kept")
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


def fetch(
    url: str,
    target: Path,
    checks: Checks,
    *,
    error: type[Exception],
    http_error: HttpError | None = None,
    setting: str = "the address",
    timeout: float = 60,
    progress: bool = False,
    verify: bool = False,
) -> Path:
    """`target`, the checked local copy of `url`, downloaded if it is missing or found damaged.

    `checks` say what the file must hold; failures are raised as `error` (one line, starting with
    the address or path), an HTTP error answer as `http_error` makes it (by default "download
    failed (HTTP ...)"); `setting` names where the address comes from (an option, a variable).
    `timeout` is in seconds per network operation; `progress` shows a progress bar on stderr;
    `verify` re-hashes and fully checks a cached file.
    """
    job = _Job(url, Path(target), checks, error, http_error or (lambda u, exc: error(http_failure(u, exc))),
               setting, timeout, progress)
    target = job.target

    def state() -> tuple[int, int, int] | None:
        with contextlib.suppress(OSError):
            st = target.stat()
            return st.st_ino, st.st_size, st.st_mtime_ns
        return None

    def cached() -> bool:
        if not target.is_file():
            return False
        problem = _cached_problem(target, checks, url, verify)
        if problem is None:
            return True
        warnings.warn(
            f"{target}: the cached file is corrupt or truncated ({problem}); downloading it again", stacklevel=4
        )
        return False

    if cached():
        return target
    before = state()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _locked(target.with_name(f".{target.name}.lock")):
            if state() != before and cached():
                return target  # another process fetched it while this one waited
            _fetch_and_keep(job)
    except OSError as exc:  # network errors are `error`s by now: this is the local disk
        raise error(
            f"{exc.filename or target.parent}: cannot write the download ({exc.strerror or exc}); "
            "choose another directory ($SKETCHRNN_CACHE or the directory argument)"
        ) from None
    return target


def _fetch_and_keep(job: _Job) -> None:
    """Download into the part file, check it, and give it its final name with its record."""
    part, target = job.part, job.target
    transfer = _fetch(job)
    if transfer.server_md5 is not None and transfer.server_md5 != transfer.md5:
        part.unlink()
        raise job.error(
            f"{job.url}: MD5 mismatch: the file received hashes to {transfer.md5}, the server "
            f"announced {transfer.server_md5}; the download is corrupt and was not kept"
        )
    problem = job.checks.validate(part)
    if problem:
        part.unlink()
        raise job.error(f"{job.url}: the downloaded file is not a valid {job.checks.what} ({problem}); not kept")
    with contextlib.suppress(FileNotFoundError):
        _sidecar(target).unlink()
    os.replace(part, target)
    _write_record(target, job.url, transfer.size, transfer.md5, transfer.server_md5 is not None)


def _fetch(job: _Job) -> _Transfer:
    """Transfer into the part file, resuming after interruptions, up to ATTEMPTS transfers."""
    part = job.part
    reason = ""
    for attempt in range(ATTEMPTS):
        try:
            return _transfer(job)
        except _Restart as exc:
            reason = str(exc)
            part.unlink(missing_ok=True)
        except _Interrupted as exc:
            reason = str(exc)
            if attempt + 1 < ATTEMPTS:
                time.sleep(RETRY_DELAY)
    kept = part.stat().st_size if part.exists() else 0
    after = f"the {kept} bytes received are kept in {part} and the next try resumes from there" if kept else "try again"
    raise job.error(f"{job.url}: download interrupted {ATTEMPTS} times, last: {reason}; {after}")
