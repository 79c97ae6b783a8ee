"""Helpers shared by the renderers: input checks, point fitting, path data, the given/continuation split."""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any, Optional, Union

import numpy as np

from ..data.strokes import strokes_to_lines

PathLike = Union[str, "os.PathLike[str]"]
Layout = list[list[Optional[np.ndarray]]]

# The colour of a completion's continuation (the points after the first `given`): tab:red, contrast
# 5:1 on white, and in greyscale (L = 91) a mid grey that stays apart from the black given strokes.
ACCENT = "#d62728"
ACCENT_RGB = (0xD6, 0x27, 0x28)

_SHAPE_HINT = "expected a numeric [n, 3] stroke-3 array of (dx, dy, p) rows"


def as_strokes(strokes: Any, what: str = "strokes") -> np.ndarray:
    """Validated float64 copy of a stroke-3 sketch with the pen column as 0/1 (p >= 0.5 lifts the pen)."""
    if strokes is None or isinstance(strokes, (str, bytes)):
        raise ValueError(f"{what}: {_SHAPE_HINT}, got {type(strokes).__name__}")
    if hasattr(strokes, "detach") and hasattr(strokes, "cpu"):  # a torch tensor, wherever it lives
        strokes = strokes.detach().cpu().numpy()
    try:
        arr = np.asarray(strokes)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: {_SHAPE_HINT}, got a ragged or non-numeric {type(strokes).__name__}") from None
    if arr.ndim == 1 and arr.size == 0:
        arr = arr.reshape(0, 3)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{what}: {_SHAPE_HINT}, got dtype {arr.dtype}")
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{what}: {_SHAPE_HINT}, got shape {tuple(arr.shape)}")
    out = arr.astype(np.float64)
    if not np.isfinite(out).all():
        raise ValueError(f"{what}: contains NaN or infinite values")
    out[:, 2] = out[:, 2] >= 0.5
    return out


def lines_of(data: np.ndarray) -> list[np.ndarray]:
    """Pen-down polylines of a validated sketch as ``[k, 2]`` arrays of absolute points (stroke units)."""
    return [np.asarray(line, dtype=np.float64).reshape(-1, 2) for line in strokes_to_lines(data)]


def split_lines(lines: list[np.ndarray], given: Optional[int]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """`lines` (a sketch's pen-down polylines, in order) split into those of the first `given` points and the rest.

    The lines' points are the sketch's points in order, so a line's points have consecutive
    indices. A point's connecting segment belongs to the later point: where a line is cut (the pen
    stayed down from point given - 1 to point given), the continuation's first line starts at the
    last given point, so the joining segment is the continuation's; a line that starts at point
    `given` goes to the continuation whole.  None, or `given` >= the number of points: all given.
    """
    if given is None:
        return lines, []
    head: list[np.ndarray] = []
    tail: list[np.ndarray] = []
    start = 0  # index of the line's first point
    for line in lines:
        cut = given - start
        if cut >= len(line):
            head.append(line)
        elif cut <= 0:
            tail.append(line)
        else:
            head.append(line[:cut])
            tail.append(line[cut - 1:])
        start += len(line)
    return head, tail


def fit_lines(lines: list[np.ndarray], x0: float, y0: float, width: float, height: float) -> list[np.ndarray]:
    """The polylines scaled uniformly and centred so that their points' bounding box fits the box."""
    if not lines:
        return []
    pts = np.concatenate(lines)
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    extent = hi - lo
    scales = [size / ext for size, ext in zip((width, height), extent) if ext > 0]
    scale = min(scales) if scales else 1.0
    centre = (lo + hi) / 2
    target = np.array([x0 + width / 2, y0 + height / 2])
    return [(line - centre) * scale + target for line in lines]


def fmt(value: float) -> str:
    """A number for SVG text: at most 3 decimals, no trailing zeros, no negative zero."""
    s = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def fmt_pt(pt: Sequence[float]) -> str:
    """``x,y`` for SVG path data."""
    return f"{fmt(pt[0])},{fmt(pt[1])}"


def path_data(lines: list[np.ndarray], start: Optional[Sequence[float]] = None) -> str:
    """SVG path data: ``M`` to `start` (or the first point), ``m`` to each polyline's first point, ``l`` along it.

    Relative steps are differences of coordinates rounded to 3 decimals, so the absolute positions
    reached while reading the path back do not drift.
    """
    parts: list[str] = []
    prev: Optional[np.ndarray] = None
    if start is not None:
        prev = np.round(np.asarray(start, dtype=np.float64), 3)
        parts.append("M" + fmt_pt(prev))
    for line in lines:
        for j, pt in enumerate(np.round(line, 3)):
            if prev is None:
                parts.append("M" + fmt_pt(pt))
            else:
                parts.append(("m" if j == 0 else "l") + fmt_pt(pt - prev))
            prev = pt
    return " ".join(parts)


def positive(value: Any, what: str, allow_zero: bool = False) -> float:
    """`value` as a finite float > 0 (or >= 0), else ValueError."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{what} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return v


def whole(value: Any, what: str, minimum: int = 1) -> int:
    """`value` as an int >= `minimum` (an integer type, not a bool or a float), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{what} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def as_given(given: Any) -> Optional[int]:
    """The `given` argument of the renderers: None, or the number (>= 0) of leading points drawn in black."""
    return None if given is None else whole(given, "given", minimum=0)


def pair(value: Any, what: str, integer: bool = False) -> tuple[float, float]:
    """A size given as one number or a (width, height) pair, each > 0 (and whole when `integer`)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{what} must be a number or a (width, height) pair, got {value!r}")
        w, h = (positive(v, what) for v in value)
    else:
        w = h = positive(value, what)
    if integer:
        if w != int(w) or h != int(h):
            raise ValueError(f"{what} must be whole pixels, got {value!r}")
        return int(w), int(h)
    return w, h


def as_layout(sketches: Any, what: str = "sketches") -> Layout:
    """Validated rows of sketches (None or an empty sketch = an empty cell); ragged rows allowed."""
    if isinstance(sketches, np.ndarray) and sketches.dtype != object:
        raise ValueError(f"{what}: expected rows of sketches (a list of lists), got one numeric array; "
                         "use grid_from_list for a flat list")
    if sketches is None or isinstance(sketches, (str, bytes)):
        raise ValueError(f"{what}: expected rows of sketches (a list of lists), got {type(sketches).__name__}")
    try:
        rows_in = list(sketches)
    except TypeError:
        raise ValueError(f"{what}: expected rows of sketches (a list of lists), "
                         f"got {type(sketches).__name__}") from None
    layout: Layout = []
    for r, row in enumerate(rows_in):
        if (isinstance(row, np.ndarray) and row.dtype != object) or row is None or isinstance(row, (str, bytes)):
            raise ValueError(f"{what}[{r}]: expected a row (a list) of sketches or None, got "
                             f"{'a numeric array' if isinstance(row, np.ndarray) else type(row).__name__}; "
                             "use grid_from_list for a flat list")
        try:
            cells_in = list(row)
        except TypeError:
            raise ValueError(f"{what}[{r}]: expected a row (a list) of sketches, got {type(row).__name__}") from None
        cells: list[Optional[np.ndarray]] = []
        for c, sketch in enumerate(cells_in):
            if sketch is None:
                cells.append(None)
                continue
            arr = as_strokes(sketch, f"{what}[{r}][{c}]")
            cells.append(arr if len(arr) else None)
        layout.append(cells)
    if not layout or max(len(row) for row in layout) == 0:
        raise ValueError(f"{what}: the grid has no cells")
    return layout


def as_labels(labels: Any, count: int, what: str, noun: str) -> Optional[list[str]]:
    """`labels` as `count` strings, or None."""
    if labels is None:
        return None
    if isinstance(labels, (str, bytes)):
        raise ValueError(f"{what}: expected a sequence of {count} strings, got one string")
    out = ["" if label is None else str(label) for label in labels]
    if len(out) != count:
        raise ValueError(f"{what}: expected {count} labels (one per {noun}), got {len(out)}")
    return out


