"""From drawings to sketch-rnn datasets: Quick, Draw! ndjson (simplified or raw) and SVG files.

* :func:`iter_ndjson` / :func:`read_ndjson` read Quick, Draw! records, checking every line;
  malformed lines raise a :class:`DataFileError` ``FILE:LINE: problem`` or, with
  ``errors="skip"``, are left out and recorded in a :class:`ProblemLog`.
* :func:`simplify_raw` is Google's simplification of a raw drawing (top-left aligned, scaled to
  0..255, resampled at 1 px, Ramer-Douglas-Peucker with epsilon 2, integer coordinates).
* :func:`drawing_to_stroke3` turns a drawing into int16 stroke-3 rows.
* :func:`build_splits` / :func:`convert_files` read any mix of files and directories, filter,
  split per category, and write the official layout or the packed one.

A *drawing* is Quick, Draw!'s layout: a list of strokes ``[[x0, x1, ...], [y0, y1, ...]]``; a raw
stroke may carry a third list of times, which is ignored.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import time
import warnings
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, Union

import numpy as np

from .dataset import SPLITS
from .errors import DataFileError, cannot_open, first_line
from .npz import save_npz

DRAWING_SUFFIXES = (".ndjson", ".svg")  # files of drawings to convert, as opposed to dataset files

__all__ = [
    "ConvertReport",
    "Converted",
    "Problem",
    "ProblemLog",
    "build_splits",
    "convert_files",
    "drawing_to_stroke3",
    "is_raw_drawing",
    "iter_ndjson",
    "read_ndjson",
    "simplify_raw",
]

PathLike = Union[str, "os.PathLike[str]"]
Drawing = Sequence[Sequence[Sequence[float]]]

FORMATS = ("packed", "official")
ERRORS = ("raise", "skip")
SIDE = 255.0  # simplified drawings span 0..255
RESAMPLE_STEP = 1.0
RDP_EPSILON = 2.0
_INT16 = np.iinfo(np.int16)

# reasons a line or file is skipped (the keys of ProblemLog.counts)
BAD_JSON = "bad json"
NOT_A_RECORD = "not a record"
NO_DRAWING = "no drawing"
EMPTY_DRAWING = "empty drawing"
BAD_DRAWING = "bad drawing"
LENGTH_MISMATCH = "length mismatch"
BAD_COORDINATES = "bad coordinates"
BAD_SVG = "bad svg"
# reasons a good drawing is left out (the keys of ConvertReport.filtered)
NOT_RECOGNIZED = "not recognized"
TOO_LONG = "too long"


# ---------------------------------------------------------------------------
# Problems found while reading


@dataclass(frozen=True)
class Problem:
    """One malformed input: where it is, a short reason key, and what is wrong."""

    path: str
    line: int | None
    reason: str
    detail: str

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.detail}"


class ProblemLog:
    """Malformed inputs that were skipped: every one counted by reason, the first `keep` kept whole.

    `callback`, when given, is called with each :class:`Problem` as it is found.
    """

    def __init__(self, keep: int = 1000, callback: Callable[[Problem], None] | None = None) -> None:
        self.keep = int(keep)
        self.callback = callback
        self.problems: list[Problem] = []
        self.counts: Counter[str] = Counter()

    def add(self, problem: Problem) -> None:
        """Record one problem."""
        self.counts[problem.reason] += 1
        if len(self.problems) < self.keep:
            self.problems.append(problem)
        if self.callback is not None:
            self.callback(problem)

    @property
    def total(self) -> int:
        """Number of problems recorded."""
        return sum(self.counts.values())

    def __len__(self) -> int:
        return self.total

    def summary(self, limit: int = 10) -> str:
        """Counts by reason, then the first `limit` problems, one per line ('' when there are none)."""
        if not self.total:
            return ""
        lines = [f"skipped {self.total}: " + ", ".join(f"{k} {v}" for k, v in sorted(self.counts.items()))]
        lines += [f"  {p}" for p in self.problems[:limit]]
        if self.total > limit:
            lines.append(f"  ... and {self.total - min(limit, len(self.problems))} more")
        return "\n".join(lines)


def _check_errors(errors: str) -> None:
    if errors not in ERRORS:
        raise ValueError(f"errors must be 'raise' or 'skip', not {errors!r}")


# ---------------------------------------------------------------------------
# ndjson


_NUMBER_TYPES = {int, float}


def _bad_numbers(values: list) -> bool:
    """True when a list holds anything but finite ints and floats (bools and strings included)."""
    types = set(map(type, values))
    if not types <= _NUMBER_TYPES:
        return True
    return float in types and not all(map(math.isfinite, values))


def _drawing_problem(drawing: Any) -> tuple[str, str] | None:
    """(reason, detail) when `drawing` is not a valid Quick, Draw! drawing, else None."""
    if not isinstance(drawing, list):
        return BAD_DRAWING, f"'drawing' is {type(drawing).__name__}, not a list of strokes"
    if not drawing:
        return EMPTY_DRAWING, "empty drawing (no strokes)"
    for i, stroke in enumerate(drawing):
        if not isinstance(stroke, list) or len(stroke) not in (2, 3) or not all(isinstance(c, list) for c in stroke):
            return BAD_DRAWING, f"stroke {i} is not [x, y] or [x, y, t] lists"
        xs, ys = stroke[0], stroke[1]
        if len(xs) != len(ys):
            return LENGTH_MISMATCH, f"stroke {i} has {len(xs)} x values but {len(ys)} y values"
        if len(stroke) == 3 and len(stroke[2]) != len(xs):
            return LENGTH_MISMATCH, f"stroke {i} has {len(xs)} points but {len(stroke[2])} times"
        if not xs:
            return BAD_DRAWING, f"stroke {i} has no points"
        if _bad_numbers(xs) or _bad_numbers(ys):
            return BAD_COORDINATES, f"stroke {i} has a coordinate that is not a finite number"
    return None


def iter_ndjson(path: PathLike, errors: str = "raise", problems: ProblemLog | None = None) -> Iterator[dict]:
    """The valid records of a Quick, Draw! ``.ndjson`` file, read one line at a time.

    A record is a JSON object with a ``drawing`` (plus, usually, ``word``, ``countrycode``,
    ``timestamp``, ``recognized``, ``key_id``). Blank lines are ignored. A malformed line
    (bad JSON, no or invalid ``drawing``, an empty drawing or stroke, x and y of different
    lengths) raises :class:`DataFileError` ``FILE:LINE: problem`` when ``errors="raise"``; with
    ``errors="skip"`` it is left out and added to `problems` (without a log, a warning at the
    end of the file says how many were skipped).
    """
    return (record for _, record in _numbered_records(path, errors, problems))


def _numbered_records(path: PathLike, errors: str, problems: ProblemLog | None) -> Iterator[tuple[int, dict]]:
    """(line number, record) for each valid record; see :func:`iter_ndjson`. Bad arguments and
    unreadable files raise at once, before iteration."""
    _check_errors(errors)
    name = os.fspath(path)
    try:
        fh = open(name, "rb")
    except OSError as exc:
        raise cannot_open(name, exc, "an ndjson file") from None
    return _records(fh, name, errors, problems)


def _records(fh: Any, name: str, errors: str, problems: ProblemLog | None) -> Iterator[tuple[int, dict]]:
    """The lines of an open ndjson file, checked one by one."""
    skipped: Counter[str] = Counter()
    with fh:
        for lineno, raw in _lines(fh, name):
            if not raw.strip():
                continue
            found: tuple[str, str] | None = None
            record: Any = None
            try:
                record = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                found = BAD_JSON, f"bad JSON ({first_line(exc) or type(exc).__name__})"
            if found is None:
                if not isinstance(record, dict):
                    found = NOT_A_RECORD, f"not a JSON object but {type(record).__name__}"
                elif "drawing" not in record:
                    found = NO_DRAWING, "no 'drawing' field"
                else:
                    found = _drawing_problem(record["drawing"])
            if found is None:
                yield lineno, record
                continue
            reason, detail = found
            if errors == "raise":
                raise DataFileError(f"{name}:{lineno}: {detail}")
            skipped[reason] += 1
            if problems is not None:
                problems.add(Problem(name, lineno, reason, detail))
    if skipped and problems is None:
        counts = ", ".join(f"{k} {v}" for k, v in sorted(skipped.items()))
        warnings.warn(f"{name}: skipped {sum(skipped.values())} malformed line(s) ({counts})", stacklevel=2)


def _lines(fh: Any, name: str) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) of each line, a read failure reported as a DataFileError."""
    lineno = 0
    try:
        for lineno, raw in enumerate(fh, 1):
            yield lineno, raw
    except OSError as exc:
        raise DataFileError(f"{name}:{lineno + 1}: cannot read ({exc.strerror or exc})") from None


def read_ndjson(path: PathLike, errors: str = "raise", problems: ProblemLog | None = None) -> list[dict]:
    """All valid records of a Quick, Draw! ``.ndjson`` file (see :func:`iter_ndjson` for `errors`)."""
    return list(iter_ndjson(path, errors, problems))


# ---------------------------------------------------------------------------
# Drawings


def _arrays(drawing: Drawing) -> tuple[np.ndarray, list[int]]:
    """All points of a drawing as one ``[N, 2]`` float64 array, and the number of points of each
    stroke (strokes without points left out; times dropped)."""
    strokes = [s for s in drawing if len(s) >= 2 and len(s[0])]
    points = np.empty((sum(len(s[0]) for s in strokes), 2), dtype=np.float64)
    points[:, 0] = [v for s in strokes for v in s[0]]
    points[:, 1] = [v for s in strokes for v in s[1]]
    return points, [len(s[0]) for s in strokes]


def _is_raw(drawing: Drawing, points: np.ndarray) -> bool:
    """:func:`is_raw_drawing`, given the drawing's points from :func:`_arrays`."""
    if any(len(s) > 2 for s in drawing):
        return True
    if not points.size:
        return False
    return bool(points.min() < 0 or points.max() > SIDE or np.any(points != np.floor(points)))


def is_raw_drawing(drawing: Drawing) -> bool:
    """True when a drawing is not in Google's simplified form: a stroke has times, or a coordinate
    is not an integer in 0..255."""
    return _is_raw(drawing, _arrays(drawing)[0])


def _resample(points: np.ndarray, step: float) -> np.ndarray:
    """Points every `step` along the polyline from its start, plus its end (two copies of a lone point)."""
    keep = np.ones(len(points), dtype=bool)
    keep[1:] = np.any(points[1:] != points[:-1], axis=1)
    points = points[keep]
    if len(points) == 1:
        return np.repeat(points, 2, axis=0)
    arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(points, axis=0).T))])
    at = np.arange(0.0, arc[-1], step)
    if at[-1] < arc[-1]:
        at = np.append(at, arc[-1])
    out = np.empty((len(at), 2), dtype=np.float64)
    out[:, 0] = np.interp(at, arc, points[:, 0])
    out[:, 1] = np.interp(at, arc, points[:, 1])
    return out


def simplify_raw(drawing: Drawing) -> list[list[list[int]]]:
    """Google's Quick, Draw! simplification of a raw drawing, with integer coordinates 0..255.

    The drawing is moved so its top-left corner is at (0, 0), scaled uniformly so its larger side
    is 255, every stroke is resampled at 1 px spacing and simplified with Ramer-Douglas-Peucker
    (epsilon 2.0, distance to the chord's line, as Google's files show), then rounded. A stroke
    of one point (or of one repeated point) becomes two copies of it, as in Google's files; a
    drawing of zero extent stays at (0, 0). Strokes without points are dropped.

    Raises:
        ValueError: the drawing has no points.
    """
    from fastrdp import rdp_index

    every, lengths = _arrays(drawing)
    if not lengths:
        raise ValueError("the drawing has no points")
    low = every.min(axis=0)
    extent = float((every.max(axis=0) - low).max())
    scale = SIDE / extent if extent > 0 else 1.0
    out: list[list[list[int]]] = []
    for points in np.split((every - low) * scale, np.cumsum(lengths)[:-1]):
        dense = np.ascontiguousarray(_resample(points, RESAMPLE_STEP))
        kept = np.clip(np.rint(dense[rdp_index(dense, RDP_EPSILON)]), 0, SIDE).astype(np.int64)
        out.append([kept[:, 0].tolist(), kept[:, 1].tolist()])
    return out


def drawing_to_stroke3(drawing: Drawing, *, keep_first: bool = False) -> np.ndarray:
    """A drawing as int16 stroke-3 rows ``(dx, dy, p)``, ``p = 1`` on the last point of each stroke.

    The first point of the drawing is the origin, as in the official sketch-rnn files (and
    magenta-js's ``linesToStroke``): row 0 is the move from the first point to the second, so a
    sketch has one row fewer than its drawing has points. (In the official aaron_sheep and kanji
    files the first row is an ordinary offset, and only the first stroke can be a single row,
    which is what dropping the first point gives.) A first stroke of a single point counts as
    two copies of it, so its row is ``(0, 0, 1)``. ``keep_first=True`` instead keeps the first
    point's absolute position as row 0, like Python sketch-rnn's ``lines_to_strokes``.
    Coordinates are rounded to integers before differencing, so positions never drift.

    Raises:
        ValueError: the drawing has no points, or an offset does not fit int16.
    """
    points, lengths = _arrays(drawing)
    return _stroke3(points, lengths, keep_first)


def _stroke3(points: np.ndarray, lengths: list[int], keep_first: bool = False) -> np.ndarray:
    """:func:`drawing_to_stroke3` of a drawing already turned into arrays by :func:`_arrays`."""
    if not lengths:
        raise ValueError("the drawing has no points")
    points = np.rint(points)
    ends = np.cumsum(lengths) - 1
    if lengths[0] == 1 and not keep_first:
        points = np.concatenate([points[:1], points])  # a lone first point counts twice
        ends = ends + 1
    pen = np.zeros(len(points), dtype=np.int16)
    pen[ends] = 1
    if keep_first:
        deltas = np.diff(points, axis=0, prepend=np.zeros((1, 2)))
    else:
        deltas, pen = np.diff(points, axis=0), pen[1:]
    if deltas.size and (deltas.min() < _INT16.min or deltas.max() > _INT16.max):
        raise ValueError(f"an offset of the drawing does not fit int16 ({deltas.min():g}..{deltas.max():g})")
    out = np.empty((len(deltas), 3), dtype=np.int16)
    out[:, 0:2] = deltas
    out[:, 2] = pen
    return out


# ---------------------------------------------------------------------------
# Conversion


@dataclass
class ConvertReport:
    """What a conversion read, skipped, filtered out and kept."""

    files: int = 0
    read: int = 0
    simplified: int = 0
    problems: ProblemLog = field(default_factory=ProblemLog)
    filtered: Counter = field(default_factory=Counter)
    kept: dict[str, dict[str, int]] = field(default_factory=lambda: {s: {} for s in SPLITS})
    class_names: list[str] = field(default_factory=list)
    out: Path | None = None
    format: str | None = None
    seconds: float = 0.0

    @property
    def skipped(self) -> Counter:
        """Malformed lines or files left out, by reason."""
        return self.problems.counts

    def total(self, split: str) -> int:
        """Number of sketches kept in `split`."""
        return sum(self.kept[split].values())

    def summary(self) -> str:
        """A few lines for people: counts read, skipped by reason, filtered, kept per split."""
        lines = [
            f"read {self.read} drawing{'s' * (self.read != 1)} from {self.files} file{'s' * (self.files != 1)} "
            f"({self.simplified} simplified here), {len(self.class_names)} class{'es' * (len(self.class_names) != 1)}"
        ]
        if self.problems.total:
            lines.append(self.problems.summary())
        if self.filtered:
            lines.append("filtered out: " + ", ".join(f"{k} {v}" for k, v in sorted(self.filtered.items())))
        lines.append("kept: " + ", ".join(f"{s} {self.total(s)}" for s in SPLITS))
        if self.out is not None:
            lines.append(f"wrote {self.out} ({self.format}) in {self.seconds:.1f} s")
        return "\n".join(lines)


@dataclass
class Converted:
    """Sketches split three ways, with the class id of each (an index into `class_names`)."""

    splits: dict[str, list[np.ndarray]]
    classes: dict[str, np.ndarray]
    class_names: list[str]
    report: ConvertReport


def _expand(inputs: PathLike | Sequence[PathLike]) -> list[Path]:
    """Files to read: the inputs in order, directories replaced by their .ndjson and .svg files (sorted)."""
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]
    files: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in DRAWING_SUFFIXES)
            if not found:
                raise DataFileError(f"{p}: directory holds no .ndjson or .svg files")
            files.extend(found)
        elif not p.exists():
            raise DataFileError(f"{p}: no such file")
        elif p.suffix.lower() not in DRAWING_SUFFIXES:
            raise DataFileError(f"{p}: unsupported input (expected .ndjson or .svg)")
        else:
            files.append(p)
    if not files:
        raise ValueError("no input files given")
    return files


def _split_sizes(n: int, valid: float | int, test: float | int) -> tuple[int, int]:
    def size(value: float | int, limit: int) -> int:
        k = int(math.floor(n * value + 0.5)) if isinstance(value, float) else int(value)
        return min(k, limit)

    n_valid = size(valid, n)
    return n_valid, size(test, n - n_valid)


def _check_split_arg(name: str, value: Any) -> float | int:
    """`value` as a fraction (float in [0, 1)) or a count (int >= 0)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"{name}={value!r}: a count cannot be negative")
        return int(value)
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        if not 0.0 <= value < 1.0:
            raise ValueError(f"{name}={value!r}: a fraction must be in [0, 1); pass an int for a count")
        return float(value)
    raise ValueError(f"{name} must be a fraction (float in [0, 1)) or a count (int), not {value!r}")


def build_splits(
    inputs: PathLike | Sequence[PathLike],
    *,
    seed: int = 0,
    valid: float | int = 0.05,
    test: float | int = 0.05,
    recognized_only: bool = False,
    max_len: int | None = None,
    errors: str = "raise",
    simplify: bool | None = None,
    svg_category: str = "parent",
    problems: ProblemLog | None = None,
) -> Converted:
    """Read .ndjson and .svg files (directories: every such file below them) into split stroke-3 sketches.

    Category: an ndjson record's ``word`` (the file's stem when it has none); an SVG file's parent
    directory name (``svg_category="parent"``, e.g. ``cats/01.svg`` → ``cats``) or its stem
    (``"stem"``). Class ids index the sorted category names.

    `simplify`: None simplifies raw drawings only (times, fractional or out-of-0..255 coordinates;
    see :func:`is_raw_drawing`) and every SVG; True simplifies everything; False nothing (the
    coordinates are only rounded). `recognized_only` drops ndjson records whose ``recognized`` is
    not true (SVG drawings have no such flag and are kept). `max_len` drops sketches of more than
    `max_len` stroke-3 rows.

    Splits, per category: `valid` and `test` are fractions (float in [0, 1), rounded half up) or
    counts (int); the rest is train. Which sketches go where depends only on `seed`, the category
    name and the order of its sketches in the inputs. Each split lists categories in class-id
    order, and a category's sketches in input order.

    `errors="skip"` leaves malformed lines and SVG files out, recording each in `problems` (a
    fresh :class:`ProblemLog` when None; it is ``report.problems``).
    """
    _check_errors(errors)
    valid = _check_split_arg("valid", valid)
    test = _check_split_arg("test", test)
    if isinstance(valid, float) and isinstance(test, float) and valid + test >= 1:
        raise ValueError(f"valid={valid:g} and test={test:g} add up to {valid + test:g}: nothing would be left to train on")
    if svg_category not in ("parent", "stem"):
        raise ValueError(f"svg_category must be 'parent' or 'stem', not {svg_category!r}")
    if max_len is not None and max_len < 1:
        raise ValueError(f"max_len must be at least 1, not {max_len!r}")
    from .svg import read_svg

    started = time.perf_counter()
    report = ConvertReport(problems=problems if problems is not None else ProblemLog())
    files = _expand(inputs)
    report.files = len(files)
    by_class: dict[str, list[np.ndarray]] = {}

    def add(category: str, drawing: Drawing, raw: bool | None, where: str) -> None:
        arrays = _arrays(drawing) if raw is not True else None
        if raw is None:
            raw = _is_raw(drawing, arrays[0])
        if raw:
            arrays = _arrays(simplify_raw(drawing))
            report.simplified += 1
        points, lengths = arrays
        try:
            sketch = _stroke3(points, lengths)
        except ValueError as exc:
            raise DataFileError(f"{where}: {exc}") from None
        if max_len is not None and len(sketch) > max_len:
            report.filtered[TOO_LONG] += 1
            return
        by_class.setdefault(category, []).append(sketch)

    for path in files:
        if path.suffix.lower() == ".svg":
            try:
                drawing = read_svg(path)
            except DataFileError as exc:
                if errors == "raise":
                    raise
                message = str(exc)
                detail = message[len(f"{path}: "):] if message.startswith(f"{path}: ") else message
                report.problems.add(Problem(str(path), None, BAD_SVG, detail))
                continue
            report.read += 1
            category = path.resolve().parent.name if svg_category == "parent" else path.stem
            add(category or path.stem, drawing, simplify is not False, str(path))
            continue
        for lineno, record in _numbered_records(path, errors, report.problems):
            report.read += 1
            if recognized_only and record.get("recognized") is not True:
                report.filtered[NOT_RECOGNIZED] += 1
                continue
            word = record.get("word")
            category = word if isinstance(word, str) and word else path.stem
            drawing = record["drawing"]
            add(category, drawing, simplify, f"{path}:{lineno}")

    class_names = sorted(by_class)
    splits: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    ids: dict[str, list[int]] = {s: [] for s in SPLITS}
    for cid, name in enumerate(class_names):
        sketches = by_class[name]
        n_valid, n_test = _split_sizes(len(sketches), valid, test)
        rng = np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8"))])
        order = rng.permutation(len(sketches))
        chosen = {
            "valid": np.sort(order[:n_valid]),
            "test": np.sort(order[n_valid : n_valid + n_test]),
            "train": np.sort(order[n_valid + n_test :]),
        }
        for split in SPLITS:
            splits[split].extend(sketches[i] for i in chosen[split])
            ids[split].extend([cid] * len(chosen[split]))
            report.kept[split][name] = len(chosen[split])
    report.class_names = class_names
    report.seconds = time.perf_counter() - started
    classes = {s: np.asarray(ids[s], dtype=np.int32) for s in SPLITS}
    return Converted(splits, classes, class_names, report)


def convert_files(
    inputs: PathLike | Sequence[PathLike],
    out: PathLike,
    *,
    format: str = "packed",
    seed: int = 0,
    valid: float | int = 0.05,
    test: float | int = 0.05,
    recognized_only: bool = False,
    max_len: int | None = None,
    errors: str = "raise",
    simplify: bool | None = None,
    svg_category: str = "parent",
    problems: ProblemLog | None = None,
) -> ConvertReport:
    """Convert drawings (see :func:`build_splits`) into one dataset file at `out`, atomically.

    ``format="official"`` writes magenta's layout (train/valid/test object arrays of int16
    stroke-3; the class of each sketch is not stored). ``format="packed"`` writes the project's
    packed multi-class file through ``sketchrnn.data.packed.save_packed``.

    Raises:
        DataFileError: an input is missing, unsupported or (with ``errors="raise"``) malformed.
        ValueError: a bad argument, or no sketch is left to write.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be 'packed' or 'official', not {format!r}")
    started = time.perf_counter()
    result = build_splits(
        inputs, seed=seed, valid=valid, test=test, recognized_only=recognized_only, max_len=max_len,
        errors=errors, simplify=simplify, svg_category=svg_category, problems=problems,
    )
    report = result.report
    if not any(result.splits[s] for s in SPLITS):
        raise ValueError(f"no sketch left to write to {out}: read {report.read}, skipped "
                         f"{report.problems.total}, filtered out {sum(report.filtered.values())}")
    if format == "official":
        save_npz(out, result.splits)
    else:
        try:
            from .packed import save_packed
        except ImportError as exc:
            raise ValueError(f"format='packed' is not available ({exc}); use format='official'") from None
        save_packed(out, result.splits, result.classes, result.class_names)
    report.out = Path(out)
    report.format = format
    report.seconds = time.perf_counter() - started
    return report
