"""The packed dataset format: millions of sketches in one memory-mapped file.

A packed file is an uncompressed (``ZIP_STORED``) ``.npz`` archive, so plain
``np.load(path, allow_pickle=False)`` reads it, and each member's data sits at a fixed offset in
the file, where it is memory-mapped directly. Members:

``format.npy``         0-d unicode ``"sketchrnn-packed"`` (the marker)
``version.npy``        0-d int64 format version (1)
``class_names.npy``    ``[C]`` fixed-width unicode class names
``<split>.points.npy``  ``[P, 3]`` int16: every point ``(dx, dy, p)`` of the split, sketch after sketch
``<split>.offsets.npy`` ``[n + 1]`` int64: sketch ``i`` is ``points[offsets[i]:offsets[i + 1]]``
``<split>.classes.npy`` ``[n]`` int16 (int32 above 32767 classes): class id of every sketch

Members' data start on 64-byte boundaries (padding in the zip extra field). Opening maps the
arrays (``open_packed(path)["train"].points`` etc.) and reads a few hundred bytes. Whole-split
passes (lengths, scale factor, checks) read chunks, and training batches read their own sketches,
with positioned reads (``preadv``) rather than through the map, so the process's resident memory
stays at index arrays plus a chunk however large the file is.
"""

from __future__ import annotations

import io
import math
import os
import shutil
import struct
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Union

import numpy as np
from numpy.lib import format as npy_format

from ..atomic import atomic_write
from .dataset import CLAMP, SPLITS, SketchData, SketchSplit, require_splits, shared_scale_splits
from .npz import DataFileError, _describe_unreadable, _reason

__all__ = [
    "FORMAT_NAME", "FORMAT_VERSION", "PackedArrays", "PackedFile", "PackedSplit", "PackedWriter",
    "describe_packed", "is_packed", "load_packed_dataset", "open_packed", "save_packed",
]

PathLike = Union[str, "os.PathLike[str]"]

FORMAT_NAME = "sketchrnn-packed"
FORMAT_VERSION = 1
INT16 = np.iinfo(np.int16)

_CHUNK_SKETCHES = 1 << 19  # sketches per chunk in whole-split passes
_CHUNK_POINTS = 1 << 20  # points per chunk in point scans
_COPY_BYTES = 1 << 24  # bytes per copy while assembling the archive
_ALIGN = 64
_PAD_ID = 0xD935  # zip extra-field id used for alignment padding (as Android's zipalign)
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")
_ZIP64_EXTRA = 20  # the local zip64 extra field zipfile writes with force_zip64


# ------------------------------------------------------------------------------------------------
# Writing


def _check_split_name(name: Any) -> str:
    if not isinstance(name, str) or not name or any(c in name for c in "./\\\x00"):
        raise ValueError(f"split name {name!r} must be a non-empty name without '.', '/' or '\\\\'")
    return name


def _check_class_names(class_names: Sequence[str]) -> list[str]:
    names = list(class_names)
    if not names:
        raise ValueError("a packed file needs at least one class name")
    for name in names:
        if not isinstance(name, str) or not name or "\x00" in name:
            raise ValueError(f"class name {name!r} must be a non-empty string without NUL")
    if len(set(names)) != len(names):
        dup = next(n for n in names if names.count(n) > 1)
        raise ValueError(f"class name {dup!r} appears more than once")
    return names


def _class_dtype(num_classes: int) -> np.dtype:
    return np.dtype("<i2") if num_classes <= INT16.max + 1 else np.dtype("<i4")


def _to_int16_points(points: Any, label: str) -> np.ndarray:
    """Validate concatenated stroke-3 points and convert them to int16."""
    arr = np.asarray(points)
    if arr.dtype.kind not in "iufb" or arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{label}: points have dtype {arr.dtype.str} and shape {arr.shape}; expected numeric [P, 3]")
    if arr.size == 0:
        return np.zeros((0, 3), dtype="<i2")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.array_equal(arr, np.round(arr)):
            raise ValueError(f"{label}: non-integral or non-finite values; a packed file stores integers")
    lo, hi = arr[:, 0:2].min(), arr[:, 0:2].max()
    if lo < INT16.min or hi > INT16.max:
        raise ValueError(f"{label}: dx/dy values in [{lo}, {hi}] do not fit int16; clamp them to ±1000 first")
    pen = arr[:, 2]
    if not np.all((pen == 0) | (pen == 1)):
        raise ValueError(f"{label}: pen values other than 0 and 1")
    return np.ascontiguousarray(arr, dtype="<i2")


class _SplitParts:
    """The temporary files of one split while it is being written."""

    def __init__(self, directory: Path, name: str) -> None:
        self.points_path = directory / f"{name}.points"
        self.ends_path = directory / f"{name}.ends"
        self.classes_path = directory / f"{name}.classes"
        self.points = open(self.points_path, "wb")
        self.ends = open(self.ends_path, "wb")
        self.classes = open(self.classes_path, "wb")
        self.num_points = 0
        self.num_sketches = 0

    def close(self) -> None:
        for fh in (self.points, self.ends, self.classes):
            fh.close()


class PackedWriter:
    """Streams sketches into a packed file; the file appears atomically at `path` on `close`.

    Data goes to temporary files next to `path` as it is appended (memory stays at one chunk);
    `close` assembles the archive. Splits in `splits` exist even if nothing is appended to them;
    appending to another name adds that split.
    """

    def __init__(self, path: PathLike, class_names: Sequence[str], splits: Sequence[str] = SPLITS) -> None:
        self.path = Path(path)
        self.class_names = _check_class_names(class_names)
        self._class_dtype = _class_dtype(len(self.class_names))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmpdir = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".parts"))
        self._splits: dict[str, _SplitParts] = {}
        self._closed = False
        try:
            for name in splits:
                self._split(name)
        except BaseException:
            self.abort()
            raise

    def _split(self, name: str) -> _SplitParts:
        parts = self._splits.get(name)
        if parts is None:
            _check_split_name(name)
            parts = self._splits[name] = _SplitParts(self._tmpdir, f"split{len(self._splits)}")
        return parts

    def counts(self) -> dict[str, int]:
        """Sketches appended so far, per split."""
        return {name: parts.num_sketches for name, parts in self._splits.items()}

    def append(self, split: str, points: Any, lengths: Any, classes: int | Any) -> None:
        """Append a chunk of sketches: `points [P, 3]` concatenated, `lengths [n]` points each, class ids."""
        if self._closed:
            raise ValueError(f"{self.path}: the writer is closed")
        lengths = np.asarray(lengths)
        if lengths.ndim != 1 or (lengths.size and lengths.dtype.kind not in "iu"):
            raise ValueError(f"{split}: lengths must be a 1-D integer array")
        lengths = lengths.astype(np.int64)
        n = len(lengths)
        if n and lengths.min() < 1:
            raise ValueError(f"{split}: sketch {int(np.argmin(lengths))} of the chunk has no points")
        pts = _to_int16_points(points, split)
        if int(lengths.sum()) != len(pts):
            raise ValueError(f"{split}: lengths add up to {int(lengths.sum())} points, but {len(pts)} were given")
        cls = np.asarray(classes)
        if cls.ndim == 0:
            cls = np.full(n, cls)
        if cls.shape != (n,) or (n and cls.dtype.kind not in "iu"):
            raise ValueError(f"{split}: classes must be one integer or {n} integers, one per sketch")
        if n and (cls.min() < 0 or cls.max() >= len(self.class_names)):
            raise ValueError(f"{split}: class ids must be in [0, {len(self.class_names)}), "
                             f"got {cls.min()}..{cls.max()}")
        parts = self._split(split)
        ends = parts.num_points + np.cumsum(lengths)
        parts.points.write(pts.tobytes())
        parts.ends.write(ends.astype("<i8").tobytes())
        parts.classes.write(cls.astype(self._class_dtype).tobytes())
        parts.num_points += len(pts)
        parts.num_sketches += n

    def append_sketches(self, split: str, sketches: Iterable[Any], classes: int | Sequence[int] | np.ndarray) -> None:
        """Append stroke-3 sketches (each ``[n, 3]``) with one class id or one per sketch."""
        per_sketch = np.ndim(classes) > 0
        class_list = np.asarray(classes) if per_sketch else None
        batch: list[np.ndarray] = []
        batch_classes: list[int] = []
        size = 0
        count = 0
        for i, sketch in enumerate(sketches):
            arr = np.asarray(sketch)
            if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 1:
                raise ValueError(f"{split}[{i}]: shape {arr.shape}; expected [n, 3] stroke-3 rows")
            batch.append(arr)
            if class_list is not None:
                if i >= len(class_list):
                    raise ValueError(f"{split}: fewer class ids ({len(class_list)}) than sketches")
                batch_classes.append(class_list[i])
            size += len(arr)
            count = i + 1
            if size >= _CHUNK_POINTS:
                self._append_list(split, batch, batch_classes if per_sketch else classes, count - len(batch))
                batch, batch_classes, size = [], [], 0
        if batch:
            self._append_list(split, batch, batch_classes if per_sketch else classes, count - len(batch))
        if class_list is not None and len(class_list) != count:
            raise ValueError(f"{split}: {len(class_list)} class ids for {count} sketches")

    def _append_list(self, split: str, sketches: list[np.ndarray], classes: Any, first: int) -> None:
        lengths = np.array([len(s) for s in sketches], dtype=np.int64)
        try:
            self.append(split, np.concatenate(sketches), lengths, np.asarray(classes))
        except ValueError as exc:
            # name the first offending sketch
            for k, s in enumerate(sketches):
                try:
                    _to_int16_points(s, f"{split}[{first + k}]")
                except ValueError as one:
                    raise ValueError(str(one)) from None
            raise exc

    def close(self) -> Path:
        """Write the archive atomically and remove the temporary files; returns the path."""
        if self._closed:
            return self.path
        try:
            for parts in self._splits.values():
                parts.close()
            atomic_write(self.path, self._write_archive)
        finally:
            self.abort()
        return self.path

    def abort(self) -> None:
        """Drop everything appended; `path` is left as it was."""
        self._closed = True
        for parts in self._splits.values():
            parts.close()
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> PackedWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _write_archive(self, fh: IO[bytes]) -> None:
        width = max(len(n) for n in self.class_names)
        with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            _write_array(zf, fh, "format.npy", np.array(FORMAT_NAME))
            _write_array(zf, fh, "version.npy", np.array(FORMAT_VERSION, dtype="<i8"))
            _write_array(zf, fh, "class_names.npy", np.array(self.class_names, dtype=f"<U{width}"))
            for name, parts in self._splits.items():
                _write_member(zf, fh, f"{name}.points.npy", np.dtype("<i2"), (parts.num_points, 3),
                              [_file_chunks(parts.points_path)])
                _write_member(zf, fh, f"{name}.offsets.npy", np.dtype("<i8"), (parts.num_sketches + 1,),
                              [[np.zeros(1, dtype="<i8").tobytes()], _file_chunks(parts.ends_path)])
                _write_member(zf, fh, f"{name}.classes.npy", self._class_dtype, (parts.num_sketches,),
                              [_file_chunks(parts.classes_path)])


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(_COPY_BYTES):
            yield chunk


def _write_array(zf: zipfile.ZipFile, fh: IO[bytes], name: str, array: np.ndarray) -> None:
    _write_member(zf, fh, name, array.dtype, array.shape, [[array.tobytes()]])


def _write_member(zf: zipfile.ZipFile, fh: IO[bytes], name: str, dtype: np.dtype, shape: tuple[int, ...],
                  sources: Sequence[Iterable[bytes]]) -> None:
    """One stored ``.npy`` member whose data starts on a 64-byte boundary of the file."""
    header = io.BytesIO()
    npy_format.write_array_header_1_0(header, {"descr": npy_format.dtype_to_descr(dtype),
                                               "fortran_order": False, "shape": tuple(shape)})
    head = header.getvalue()
    size = len(head) + math.prod(shape) * dtype.itemsize
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    info.file_size = size
    start = fh.tell() + _LOCAL_HEADER.size + len(name.encode()) + _ZIP64_EXTRA + len(head)
    pad = -start % _ALIGN
    if 0 < pad < 4:
        pad += _ALIGN
    if pad:
        info.extra = struct.pack("<HH", _PAD_ID, pad - 4) + bytes(pad - 4)
    written = 0
    with zf.open(info, "w", force_zip64=True) as out:
        out.write(head)
        for source in sources:
            for chunk in source:
                out.write(chunk)
                written += len(chunk)
    if written + len(head) != size:
        raise RuntimeError(f"{name}: wrote {written + len(head)} bytes, expected {size}")


def save_packed(
    path: PathLike,
    splits: Mapping[str, Sequence[np.ndarray]],
    classes: Mapping[str, Any],
    class_names: Sequence[str],
) -> Path:
    """Write in-memory stroke-3 sketches as a packed file (atomically).

    `classes[split]` holds one class id (index into `class_names`) per sketch of `splits[split]`.
    Values must be integers that fit int16 (clamp to ±1000 first) and pen values 0 or 1.
    """
    missing = [name for name in splits if name not in classes]
    if missing:
        raise ValueError(f"no class ids for split(s) {', '.join(missing)}")
    with PackedWriter(path, class_names, splits=list(splits)) as writer:
        for name, sketches in splits.items():
            ids = np.asarray(classes[name])
            if ids.ndim > 0 and len(ids) != len(sketches):
                raise ValueError(f"{name}: {len(ids)} class ids for {len(sketches)} sketches")
            writer.append_sketches(name, sketches, ids)
    return Path(path)


# ------------------------------------------------------------------------------------------------
# Reading


class _Reader:
    """A file handle shared by a packed file's members, for positioned chunk reads."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fh = open(path, "rb")
        self.size = os.fstat(self.fh.fileno()).st_size
        self._lock = threading.Lock()

    def read_into(self, buf: np.ndarray, offset: int) -> None:
        view = memoryview(buf).cast("B")
        got = 0
        while got < len(view):
            if hasattr(os, "preadv"):
                n = os.preadv(self.fh.fileno(), [view[got:]], offset + got)
            else:  # pragma: no cover - platforms without preadv
                with self._lock:
                    self.fh.seek(offset + got)
                    n = self.fh.readinto(view[got:])
            if not n:
                raise DataFileError(f"{self.path}: unexpected end of file (truncated?)")
            got += n

    def close(self) -> None:
        self.fh.close()

    def __del__(self) -> None:
        fh = getattr(self, "fh", None)
        if fh is not None:
            fh.close()


class _Member:
    """One memory-mapped ``.npy`` member of a packed file."""

    def __init__(self, reader: _Reader, name: str, offset: int, dtype: np.dtype, shape: tuple[int, ...]) -> None:
        self.reader = reader
        self.name = name
        self.offset = offset
        self.dtype = dtype
        self.shape = shape
        count = math.prod(shape)
        if count:
            self.array: np.ndarray = np.memmap(reader.fh, dtype=dtype, mode="r", offset=offset, shape=shape)
        else:
            self.array = np.zeros(shape, dtype=dtype)

    def read(self, start: int, stop: int) -> np.ndarray:
        """Rows ``[start, stop)`` as a fresh array, read without mapping them."""
        stop = min(stop, self.shape[0])
        out = np.empty((max(stop - start, 0),) + self.shape[1:], dtype=self.dtype)
        if out.size:
            row = math.prod(self.shape[1:]) * self.dtype.itemsize
            self.reader.read_into(out, self.offset + start * row)
        return out


def _map_member(reader: _Reader, info: zipfile.ZipInfo) -> _Member:
    """Locate a stored member's ``.npy`` data in the file and map it."""
    path, name = reader.path, info.filename
    if info.compress_type != zipfile.ZIP_STORED:
        raise DataFileError(f"{path}: {name} is compressed; a packed file must be stored uncompressed (ZIP_STORED)")
    if info.flag_bits & 0x1:
        raise DataFileError(f"{path}: {name} is encrypted")
    head = np.empty(_LOCAL_HEADER.size, dtype=np.uint8)
    reader.read_into(head, info.header_offset)
    fields = _LOCAL_HEADER.unpack(head.tobytes())
    if fields[0] != b"PK\x03\x04":
        raise DataFileError(f"{path}: {name} has a bad zip local header (corrupt file)")
    start = info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10]
    end = start + info.file_size
    if end > reader.size:
        raise DataFileError(f"{path}: {name} runs past the end of the file (truncated)")
    try:
        reader.fh.seek(start)
        version = npy_format.read_magic(reader.fh)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(reader.fh)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(reader.fh)
        else:
            raise ValueError(f"unsupported .npy version {version}")
        data = reader.fh.tell()
    except Exception as exc:
        raise DataFileError(f"{path}: {name} has a bad .npy header ({_reason(exc)})") from None
    if dtype.hasobject or (fortran and len(shape) > 1):
        raise DataFileError(f"{path}: {name} holds {'objects' if dtype.hasobject else 'a Fortran-order array'}")
    if data + math.prod(shape) * dtype.itemsize != end:
        raise DataFileError(f"{path}: {name}'s size does not match its .npy header (corrupt file)")
    return _Member(reader, name, data, dtype, tuple(shape))


def _read_small(zf: zipfile.ZipFile, path: str, name: str) -> np.ndarray:
    info = zf.getinfo(name)
    if info.file_size > 1 << 24:
        raise DataFileError(f"{path}: {name} is implausibly large ({info.file_size} bytes)")
    try:
        return npy_format.read_array(io.BytesIO(zf.read(info)), allow_pickle=False)
    except Exception as exc:
        raise DataFileError(f"{path}: cannot read {name} ({_reason(exc)})") from None


def is_packed(path: PathLike) -> bool:
    """Whether `path` is a readable zip archive carrying the packed-format marker."""
    try:
        with zipfile.ZipFile(os.fspath(path)) as zf:
            info = zf.getinfo("format.npy")
            if info.file_size > 4096:
                return False
            marker = npy_format.read_array(io.BytesIO(zf.read(info)), allow_pickle=False)
            return marker.dtype.kind == "U" and marker.shape == () and str(marker) == FORMAT_NAME
    except Exception:
        return False


class PackedArrays:
    """One split of one packed file: memory-mapped points, offsets and class ids, in file order."""

    def __init__(self, path: str, name: str, class_names: tuple[str, ...],
                 points: _Member, offsets: _Member, classes: _Member) -> None:
        self.path = path
        self.name = name
        self.class_names = class_names
        self._points, self._offsets, self._classes = points, offsets, classes
        self.points: np.ndarray = points.array
        self.offsets: np.ndarray = offsets.array
        self.classes: np.ndarray = classes.array
        self._hist: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def num_points(self) -> int:
        return len(self.points)

    def raw(self, index: int) -> np.ndarray:
        """Sketch `index` as stored: an int16 ``[n, 3]`` view into the map."""
        index = self._check_index(index)
        return self.points[int(self.offsets[index]) : int(self.offsets[index + 1])]

    def read(self, index: int) -> np.ndarray:
        """Sketch `index` as a fresh int16 ``[n, 3]`` array, read without touching the map."""
        index = self._check_index(index)
        start, stop = self._offsets.read(index, index + 2)
        if not 0 <= start < stop <= self.num_points:
            raise self._error(f"offsets of sketch {index} are out of order")
        return self._points.read(int(start), int(stop))

    def read_class(self, index: int) -> int:
        """Class id of sketch `index` (into this file's `class_names`), read without touching the map."""
        index = self._check_index(index)
        return int(self._classes.read(index, index + 1)[0])

    def _check_index(self, index: int) -> int:
        if not -len(self) <= index < len(self):
            raise IndexError(f"{self.name}: sketch {index} out of range ({len(self)} sketches)")
        return index % len(self)

    def __getitem__(self, index: int) -> np.ndarray:
        return self.raw(index)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.raw(i)

    def _error(self, what: str) -> DataFileError:
        return DataFileError(f"{self.path}: {self.name} {what} (corrupt file)")

    def length_chunks(self) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
        """``(start, offsets [k + 1], lengths [k], class ids [k])`` per chunk of sketches, in file order, checked."""
        n = len(self)
        for a in range(0, n, _CHUNK_SKETCHES):
            b = min(n, a + _CHUNK_SKETCHES)
            offs = self._offsets.read(a, b + 1)
            if a == 0 and offs[0] != 0:
                raise self._error("offsets do not start at 0")
            lengths = np.diff(offs)
            if lengths.min() < 1:
                raise self._error(f"offsets are not increasing at sketch {a + int(np.argmin(lengths))}")
            if b == n and offs[-1] != self.num_points:
                raise self._error(f"offsets end at {int(offs[-1])}, not at the {self.num_points} points")
            cls = self._classes.read(a, b)
            if cls.min() < 0 or cls.max() >= len(self.class_names):
                raise self._error(f"has class ids outside [0, {len(self.class_names)})")
            yield a, offs, lengths, cls

    def histogram(self) -> np.ndarray:
        """Sketch counts ``[C, N+1]`` by class and number of points (one checked pass; cached)."""
        if self._hist is None:
            C = len(self.class_names)
            hist = np.zeros((C, 1), dtype=np.int64)
            for _, _, lengths, cls in self.length_chunks():
                width = max(hist.shape[1], int(lengths.max()) + 1)
                if width > hist.shape[1]:
                    hist = np.pad(hist, ((0, 0), (0, width - hist.shape[1])))
                key = cls.astype(np.int64) * width + lengths
                hist += np.bincount(key, minlength=C * width).reshape(C, width)
            if len(self) == 0 and self.num_points != 0:
                raise self._error("has points but no sketches")
            self._hist = hist
        return self._hist

    def max_length(self) -> int:
        """Points in the longest sketch (0 for an empty split)."""
        hist = self.histogram().sum(axis=0)
        nonzero = np.flatnonzero(hist)
        return int(nonzero[-1]) if len(nonzero) else 0

    def point_sums(self, max_len: int | None = None) -> tuple[int, int, int]:
        """``(count, sum, sum of squares)`` of the ±1000-clamped dx and dy of sketches of at most `max_len` points.

        Exact integer arithmetic, so the result does not depend on chunking. Also checks pen values.
        """
        count = total = squares = 0
        for _, offs, lengths, _ in self.length_chunks():
            keep = None if max_len is None or lengths.max() <= max_len else lengths <= max_len
            # sub-ranges of whole sketches holding about _CHUNK_POINTS points each
            marks = np.arange(offs[0], offs[-1], _CHUNK_POINTS)
            bounds = np.unique(np.concatenate([np.searchsorted(offs, marks, side="right") - 1, [len(lengths)]]))
            for s0, s1 in zip(bounds[:-1], bounds[1:]):
                pts = self._points.read(int(offs[s0]), int(offs[s1]))
                pen = pts[:, 2]
                if pen.min() < 0 or pen.max() > 1:
                    raise self._error("has pen values other than 0 and 1")
                if keep is not None:
                    pts = pts[np.repeat(keep[s0:s1], lengths[s0:s1])]
                xy = np.clip(pts[:, 0:2].astype(np.float64), -CLAMP, CLAMP).ravel()
                count += len(xy)
                # integer-valued float64 sums below 2**53 are exact, whatever the summation order
                total += int(xy.sum())
                squares += int(xy @ xy)
        return count, total, squares


class PackedFile:
    """An open packed file: class names and memory-mapped splits (``packed["train"]``)."""

    def __init__(self, path: str, version: int, class_names: tuple[str, ...],
                 splits: dict[str, PackedArrays], reader: _Reader, infos: list[zipfile.ZipInfo]) -> None:
        self.path = path
        self.version = version
        self.class_names = class_names
        self.splits = splits
        self._reader = reader
        self._infos = infos

    def __getitem__(self, split: str) -> PackedArrays:
        return self.splits[split]

    def __contains__(self, split: object) -> bool:
        return split in self.splits

    def verify(self) -> None:
        """Read the whole file: check every member's CRC, every split's offsets, class ids and pen values."""
        for info in self._infos:
            head = np.empty(_LOCAL_HEADER.size, dtype=np.uint8)
            self._reader.read_into(head, info.header_offset)
            fields = _LOCAL_HEADER.unpack(head.tobytes())
            start = info.header_offset + _LOCAL_HEADER.size + fields[9] + fields[10]
            crc = 0
            buf = np.empty(_COPY_BYTES, dtype=np.uint8)
            for pos in range(0, info.file_size, _COPY_BYTES):
                part = buf[: min(_COPY_BYTES, info.file_size - pos)]
                self._reader.read_into(part, start + pos)
                crc = zlib.crc32(part, crc)
            if crc != info.CRC:
                raise DataFileError(f"{self.path}: {info.filename} fails its CRC check (corrupt file)")
        for split in self.splits.values():
            split.point_sums()

    def close(self) -> None:
        """Close the file handle (maps stay valid while arrays use them)."""
        self._reader.close()

    def __enter__(self) -> PackedFile:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_packed(path: PathLike, verify: bool = False) -> PackedFile:
    """Open a packed file: reads its directory and headers and maps the arrays (instant at any size).

    With `verify`, also reads everything once to check CRCs and contents (see `PackedFile.verify`).
    """
    spath = os.fspath(path)
    if not os.path.exists(spath):
        raise DataFileError(f"{spath}: no such file")
    if not os.path.isfile(spath):
        raise DataFileError(f"{spath}: not a regular file")
    reader = _Reader(spath)
    try:
        try:
            zf = zipfile.ZipFile(reader.fh)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
            raise DataFileError(_describe_unreadable(spath)) from exc
        with zf:
            infos = {info.filename: info for info in zf.infolist()}
            if "format.npy" not in infos:
                raise DataFileError(f"{spath}: not a packed sketch file (no format.npy marker)")
            marker = _read_small(zf, spath, "format.npy")
            if marker.dtype.kind != "U" or marker.shape != () or str(marker) != FORMAT_NAME:
                raise DataFileError(f"{spath}: format.npy is not the {FORMAT_NAME!r} marker")
            if "version.npy" not in infos:
                raise DataFileError(f"{spath}: has no version.npy")
            version = _read_small(zf, spath, "version.npy")
            if version.dtype.kind not in "iu" or version.shape != ():
                raise DataFileError(f"{spath}: version.npy is not an integer")
            if int(version) != FORMAT_VERSION:
                raise DataFileError(f"{spath}: packed format version {int(version)}; "
                                    f"this sketchrnn reads version {FORMAT_VERSION}")
            if "class_names.npy" not in infos:
                raise DataFileError(f"{spath}: has no class_names.npy")
            names = _read_small(zf, spath, "class_names.npy")
            if names.dtype.kind != "U" or names.ndim != 1 or len(names) == 0:
                raise DataFileError(f"{spath}: class_names.npy is not a non-empty 1-D unicode array")
            class_names = tuple(str(n) for n in names)
            split_names = [n[: -len(".offsets.npy")] for n in infos if n.endswith(".offsets.npy")]
            if not split_names:
                raise DataFileError(f"{spath}: holds no splits")
            splits: dict[str, PackedArrays] = {}
            for name in split_names:
                members = {}
                for kind in ("points", "offsets", "classes"):
                    member = f"{name}.{kind}.npy"
                    if member not in infos:
                        raise DataFileError(f"{spath}: split {name!r} has no {member}")
                    members[kind] = _map_member(reader, infos[member])
                splits[name] = _check_split(spath, name, class_names, **members)
        packed = PackedFile(spath, int(version), class_names, splits, reader, list(infos.values()))
        if verify:
            packed.verify()
        return packed
    except BaseException:
        reader.close()
        raise


def _check_split(path: str, name: str, class_names: tuple[str, ...],
                 points: _Member, offsets: _Member, classes: _Member) -> PackedArrays:
    def bad(what: str) -> DataFileError:
        return DataFileError(f"{path}: {name} {what}")

    if points.dtype.kind != "i" or points.dtype.itemsize != 2 or len(points.shape) != 2 or points.shape[1] != 3:
        raise bad(f"points are {points.dtype.str} {points.shape}; expected int16 [P, 3]")
    if offsets.dtype.kind != "i" or offsets.dtype.itemsize != 8 or len(offsets.shape) != 1 or offsets.shape[0] < 1:
        raise bad(f"offsets are {offsets.dtype.str} {offsets.shape}; expected int64 [n + 1]")
    if classes.dtype.kind != "i" or classes.dtype.itemsize not in (2, 4) or classes.shape != (offsets.shape[0] - 1,):
        raise bad(f"classes are {classes.dtype.str} {classes.shape}; expected int16/int32 [{offsets.shape[0] - 1}]")
    first, last = offsets.read(0, 1)[0], offsets.read(offsets.shape[0] - 1, offsets.shape[0])[0]
    if first != 0 or last != points.shape[0]:
        raise bad(f"offsets run from {first} to {last}, not 0 to {points.shape[0]} (corrupt file)")
    return PackedArrays(path, name, class_names, points, offsets, classes)


# ------------------------------------------------------------------------------------------------
# Training from packed files


def _std_from_sums(count: int, total: int, squares: int) -> float:
    """Population standard deviation of `count` values from their exact sum and sum of squares (0 if none)."""
    if count == 0:
        return 0.0
    return math.sqrt(max(count * squares - total * total, 0)) / count


def _scatter_stable(out: np.ndarray, cursor: np.ndarray, keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Counting-sort step: put `values` at ``cursor[key] + rank`` (stable within a key), advance
    `cursor`; returns where each value went."""
    dest = np.empty(len(keys), dtype=np.int64)
    if len(keys):
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        rank = np.arange(len(keys)) - np.searchsorted(sorted_keys, sorted_keys, side="left")
        dest[order] = cursor[sorted_keys] + rank
        out[dest] = values
        cursor += np.bincount(keys, minlength=len(cursor))
    return dest


class PackedSplit(SketchSplit):
    """A training/evaluation split served from one or more packed files, sketch by sketch.

    Index ``i`` is the i-th sketch in a stable length order over the parts concatenated in order;
    sketches longer than `max_seq_len` are left out. Memory is index arrays only: 4 bytes a kept
    sketch (8 above 2**31 sketches), twice that with class-balanced batches. Each batch reads just
    its sketches from the file (positioned reads, not page faults on the map: on recent kernels a
    fault maps a whole large page-cache folio, about 1 MB), clamps them to ±1000, divides by the
    scale factor and (if configured) augments them exactly as `SketchDataset` does.

    With `balance_classes` (default: when more than one class has sketches) random batches draw a
    class uniformly, then a sketch of it (with replacement); otherwise they are uniform over
    sketches, without repeats inside a batch.
    """

    def __init__(
        self,
        parts: Sequence[PackedArrays],
        max_seq_len: int,
        scale_factor: float = 1.0,
        random_scale_factor: float = 0.0,
        augment_stroke_prob: float = 0.0,
        seed: int | None = None,
        balance_classes: bool | None = None,
        class_names: Sequence[str] | None = None,
    ) -> None:
        super().__init__(max_seq_len, random_scale_factor, augment_stroke_prob, seed)
        self.parts = list(parts)
        if class_names is None:
            class_names = list(dict.fromkeys(n for part in self.parts for n in part.class_names))
        self.class_names: list[str] = list(class_names)
        lookup = {n: i for i, n in enumerate(self.class_names)}
        missing = [n for part in self.parts for n in part.class_names if n not in lookup]
        if missing:
            raise ValueError(f"class {missing[0]!r} of a part is not in class_names")
        self._class_maps = [np.array([lookup[n] for n in part.class_names], dtype=np.int64) for part in self.parts]
        self._starts = np.concatenate([[0], np.cumsum([len(p) for p in self.parts])]).astype(np.int64)
        total = int(self._starts[-1])
        self._index_dtype = np.dtype(np.int32) if total < 2**31 else np.dtype(np.int64)
        self._hist = self._kept_histogram()
        counts = self.class_counts()
        self._nonempty = np.flatnonzero(counts)
        self._class_starts = np.cumsum(counts) - counts
        if balance_classes is None:
            balance_classes = len(self._nonempty) > 1
        self.balance_classes = bool(balance_classes)
        self._group: np.ndarray | None = None
        self._build_index(groups=self.balance_classes)
        if scale_factor != 1.0:
            self.normalize(scale_factor)

    # -- construction

    def _kept_histogram(self) -> np.ndarray:
        """Kept sketches ``[C_global, max_seq_len + 1]`` by class and length."""
        out = np.zeros((len(self.class_names), self.max_seq_len + 1), dtype=np.int64)
        for part, cmap in zip(self.parts, self._class_maps):
            hist = part.histogram()[:, : self.max_seq_len + 1]
            np.add.at(out, (cmap[:, None], np.arange(hist.shape[1])[None, :]), hist)
        return out

    def _build_index(self, groups: bool) -> None:
        """One chunked pass: the length order (a stable counting sort) and, with `groups`, the
        split's indices grouped by class (for balanced batches)."""
        by_length = self._hist.sum(axis=0)
        order = np.empty(int(by_length.sum()), dtype=self._index_dtype)
        cursor = np.cumsum(by_length) - by_length
        key_dtype = np.int16 if self.max_seq_len <= INT16.max else np.int32
        class_dtype = _class_dtype(len(self.class_names))
        position_class = np.empty(len(order) if groups else 0, dtype=class_dtype)
        for part, cmap, start in zip(self.parts, self._class_maps, self._starts):
            for a, _, lengths, cls in part.length_chunks():
                keep = lengths <= self.max_seq_len
                ids = np.flatnonzero(keep) + (int(start) + a)
                dest = _scatter_stable(order, cursor, lengths[keep].astype(key_dtype), ids.astype(self._index_dtype))
                if groups:
                    position_class[dest] = cmap[cls[keep]]
        if not np.array_equal(cursor, np.cumsum(by_length)):
            raise DataFileError(f"{self.parts[0].path}: changed while it was being read")
        self._order = order
        if groups:
            group = np.empty(len(order), dtype=self._index_dtype)
            cursor = self._class_starts.copy()
            for a in range(0, len(order), _CHUNK_SKETCHES):
                b = min(len(order), a + _CHUNK_SKETCHES)
                _scatter_stable(group, cursor, position_class[a:b], np.arange(a, b, dtype=self._index_dtype))
            self._group = group

    def _locate(self, index: int) -> tuple[int, int]:
        """(part number, sketch number in that part) of the split's sketch `index`."""
        gid = int(self._order[index])
        k = 0 if len(self.parts) == 1 else int(np.searchsorted(self._starts, gid, side="right")) - 1
        return k, gid - int(self._starts[k])

    # -- the split's contents

    def __len__(self) -> int:
        return len(self._order)

    def lengths(self) -> np.ndarray:
        """Number of points of every sketch, in the split's (length) order."""
        by_length = self._hist.sum(axis=0)
        return np.repeat(np.arange(len(by_length), dtype=np.int64), by_length)

    def length_histogram(self) -> np.ndarray:
        """Number of kept sketches with 0, 1, ... max_seq_len points."""
        return self._hist.sum(axis=0)

    def class_counts(self) -> np.ndarray:
        """Number of kept sketches of every class (in `class_names` order)."""
        return self._hist.sum(axis=1)

    def classes_of(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Class ids (into `class_names`) of the sketches at `indices` (one small read each)."""
        out = []
        for i in np.asarray(indices, dtype=np.int64).reshape(-1):
            k, local = self._locate(int(i))
            out.append(self._class_maps[k][self.parts[k].read_class(local)])
        return np.array(out, dtype=np.int64)

    def raw(self, index: int) -> np.ndarray:
        """Sketch `index` as stored (int16), read from the file: a batch costs only its own bytes."""
        k, local = self._locate(index)
        return self.parts[k].read(local)

    def sketch(self, index: int) -> np.ndarray:
        """Sketch `index` as float32, clamped to ±1000 and divided by the scale factor (a fresh array)."""
        s = self.raw(index).astype(np.float32)
        np.clip(s, -CLAMP, CLAMP, out=s)
        if self.scale_factor != 1.0:
            s[:, 0:2] /= np.float32(self.scale_factor)
        return s

    def normalizing_scale_factor(self) -> float:
        """Population std of every clamped dx and dy of the kept sketches (exact sums, float64 result)."""
        count = total = squares = 0
        for part in self.parts:
            c, t, q = part.point_sums(self.max_seq_len)
            count, total, squares = count + c, total + t, squares + q
        return _std_from_sums(count, total, squares)

    def normalize(self, scale_factor: float) -> None:
        """Divide dx, dy by `scale_factor` (in float32) whenever a sketch is read."""
        self.scale_factor = float(np.float32(scale_factor))

    # -- sampling

    def sample_indices(self, batch_size: int) -> np.ndarray:
        """Random indices: class-balanced with replacement, or uniform without repeats (see the class)."""
        n = len(self)
        if self.balance_classes:
            if self._group is None:
                self._build_index(groups=True)
            assert self._group is not None
            counts = self.class_counts()
            cls = self._nonempty[self.rng.randint(0, len(self._nonempty), size=batch_size)]
            within = self.rng.randint(0, counts[cls])
            return self._group[self._class_starts[cls] + within].astype(np.int64)
        if batch_size * 8 >= n:
            return self.rng.permutation(n)[:batch_size]
        chosen = self.rng.randint(0, n, size=batch_size)
        while True:  # redraw repeats; every ordered set of distinct indices stays equally likely
            _, first = np.unique(chosen, return_index=True)
            if len(first) == batch_size:
                return chosen
            repeat = np.ones(batch_size, dtype=bool)
            repeat[first] = False
            chosen[repeat] = self.rng.randint(0, n, size=int(repeat.sum()))


def load_packed_dataset(
    paths: Sequence[PathLike],
    max_seq_len: int | None = None,
    random_scale_factor: float = 0.15,
    augment_stroke_prob: float = 0.10,
    seed: int | None = None,
    balance_classes: bool | None = None,
) -> SketchData:
    """Train/valid/test from packed files (see `load_dataset`); classes are merged by name.

    `balance_classes` applies to the training split (default: when it has more than one class).
    """
    files = [open_packed(p) for p in paths]
    for f in files:
        require_splits(f.path, f.splits)
    class_names = list(dict.fromkeys(n for f in files for n in f.class_names))
    if max_seq_len is None:
        max_seq_len = max(f[name].max_length() for f in files for name in SPLITS)
    n_max = int(max_seq_len)

    def make(name: str, scale: float, split_seed: int | None) -> PackedSplit:
        train = name == "train"
        augment = (random_scale_factor, augment_stroke_prob) if train else (0.0, 0.0)
        return PackedSplit([f[name] for f in files], n_max, scale, *augment, split_seed,
                           balance_classes if train else False, class_names)

    return shared_scale_splits(make, n_max, seed)


def describe_packed(path: PathLike) -> dict[str, Any]:
    """Counts per split and class, length histograms, N_max and the training scale factor of a packed file."""
    packed = open_packed(path)
    with packed:
        n_max = max((s.max_length() for s in packed.splits.values()), default=0)
        splits: dict[str, Any] = {}
        for name, part in packed.splits.items():
            hist = part.histogram()
            by_length = hist.sum(axis=0)
            splits[name] = {
                "count": len(part),
                "points": part.num_points,
                "class_counts": {c: int(k) for c, k in zip(packed.class_names, hist.sum(axis=1))},
                "length_histogram": [int(k) for k in by_length[: part.max_length() + 1]],
            }
        scale = None
        if "train" in packed and len(packed["train"]):
            scale = float(np.float32(_std_from_sums(*packed["train"].point_sums())))
        return {
            "path": packed.path,
            "format": FORMAT_NAME,
            "version": packed.version,
            "classes": list(packed.class_names),
            "splits": splits,
            "max_seq_len": n_max,
            "scale_factor": scale,
        }
