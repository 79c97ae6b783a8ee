"""Reading packed files: memory maps of the members, positioned chunk reads, the split served to training."""

from __future__ import annotations

import io
import math
import os
import threading
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from typing import Any, Union

import numpy as np
from numpy.lib import format as npy_format

from ..dataset import CLAMP, SPLITS, SketchData, SketchSplit, require_splits, shared_scale_splits
from ..errors import DataFileError, not_a_zip, reason
from .format import CHUNK_POINTS, COPY_BYTES, FORMAT_NAME, FORMAT_VERSION, INT16, LOCAL_HEADER, class_dtype

PathLike = Union[str, "os.PathLike[str]"]

_CHUNK_SKETCHES = 1 << 19  # sketches per chunk in whole-split passes


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
    head = np.empty(LOCAL_HEADER.size, dtype=np.uint8)
    reader.read_into(head, info.header_offset)
    fields = LOCAL_HEADER.unpack(head.tobytes())
    if fields[0] != b"PK\x03\x04":
        raise DataFileError(f"{path}: {name} has a bad zip local header (corrupt file)")
    start = info.header_offset + LOCAL_HEADER.size + fields[9] + fields[10]
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
        raise DataFileError(f"{path}: {name} has a bad .npy header ({reason(exc)})") from None
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
        raise DataFileError(f"{path}: cannot read {name} ({reason(exc)})") from None


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
            # sub-ranges of whole sketches holding about CHUNK_POINTS points each
            marks = np.arange(offs[0], offs[-1], CHUNK_POINTS)
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
            head = np.empty(LOCAL_HEADER.size, dtype=np.uint8)
            self._reader.read_into(head, info.header_offset)
            fields = LOCAL_HEADER.unpack(head.tobytes())
            start = info.header_offset + LOCAL_HEADER.size + fields[9] + fields[10]
            crc = 0
            buf = np.empty(COPY_BYTES, dtype=np.uint8)
            for pos in range(0, info.file_size, COPY_BYTES):
                part = buf[: min(COPY_BYTES, info.file_size - pos)]
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
            raise not_a_zip(spath) from exc
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
    scale factor and (if configured) augments them exactly as `MemorySplit` does.

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
        position_class = np.empty(len(order) if groups else 0, dtype=class_dtype(len(self.class_names)))
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

    def sample_indices(self, batch_size: int, rng: np.random.RandomState | None = None) -> np.ndarray:
        """Random indices: class-balanced with replacement, or uniform without repeats (see the class)."""
        n, rng = len(self), (self.rng if rng is None else rng)
        if self.balance_classes:
            if self._group is None:
                self._build_index(groups=True)
            assert self._group is not None
            counts = self.class_counts()
            cls = self._nonempty[rng.randint(0, len(self._nonempty), size=batch_size)]
            within = rng.randint(0, counts[cls])
            return self._group[self._class_starts[cls] + within].astype(np.int64)
        if batch_size * 8 >= n:
            return rng.permutation(n)[:batch_size]
        chosen = rng.randint(0, n, size=batch_size)
        while True:  # redraw repeats; every ordered set of distinct indices stays equally likely
            _, first = np.unique(chosen, return_index=True)
            if len(first) == batch_size:
                return chosen
            repeat = np.ones(batch_size, dtype=bool)
            repeat[first] = False
            chosen[repeat] = rng.randint(0, n, size=int(repeat.sum()))


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
