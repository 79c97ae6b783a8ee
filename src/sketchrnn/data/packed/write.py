"""Writing packed files: streamed into temporary parts, assembled with aligned members, renamed into place."""

from __future__ import annotations

import io
import math
import os
import shutil
import struct
import tempfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Union

import numpy as np
from numpy.lib import format as npy_format

from ...atomic import atomic_write
from ..dataset import SPLITS
from .format import CHUNK_POINTS, COPY_BYTES, FORMAT_NAME, FORMAT_VERSION, INT16, LOCAL_HEADER, class_dtype

PathLike = Union[str, "os.PathLike[str]"]

ALIGN = 64
PAD_ID = 0xD935  # zip extra-field id used for alignment padding (as Android's zipalign)
ZIP64_EXTRA = 20  # the local zip64 extra field zipfile writes with force_zip64


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
        self._class_dtype = class_dtype(len(self.class_names))
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
            if size >= CHUNK_POINTS:
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
        while chunk := fh.read(COPY_BYTES):
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
    start = fh.tell() + LOCAL_HEADER.size + len(name.encode()) + ZIP64_EXTRA + len(head)
    pad = -start % ALIGN
    if 0 < pad < 4:
        pad += ALIGN
    if pad:
        info.extra = struct.pack("<HH", PAD_ID, pad - 4) + bytes(pad - 4)
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


