"""Stroke formats and conversions.

stroke-3: rows ``(dx, dy, p)`` with ``p = 1`` when the pen lifts after the point.
stroke-5: rows ``(dx, dy, p1, p2, p3)`` = pen down / pen up / end of sketch; padded to N_max with
``(0, 0, 0, 0, 1)``; the model's input starts with the start token ``S0 = (0, 0, 1, 0, 0)``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

STROKE_DIM = 5  # a stroke-5 row: dx, dy, p1, p2, p3
START_TOKEN = np.array([0, 0, 1, 0, 0], dtype=np.float32)
END_TOKEN = np.array([0, 0, 0, 0, 1], dtype=np.float32)


def to_big_strokes(stroke: np.ndarray, max_len: int = 250) -> np.ndarray:
    """stroke-3 → stroke-5 of `max_len` rows padded with (0,0,0,0,1); no start token."""
    stroke = np.asarray(stroke)
    n = len(stroke)
    if n > max_len:
        raise ValueError(f"sketch has {n} points, more than max_len={max_len}")
    result = np.zeros((max_len, 5), dtype=np.float32)
    result[:n, 0:2] = stroke[:, 0:2]
    result[:n, 3] = stroke[:, 2]
    result[:n, 2] = 1 - result[:n, 3]
    result[n:, 4] = 1
    return result


def to_normal_strokes(big_stroke: np.ndarray) -> np.ndarray:
    """stroke-5 → stroke-3, cut at the first end-of-sketch row (kept whole if there is none or it is row 0)."""
    big_stroke = np.asarray(big_stroke)
    ends = np.nonzero(big_stroke[:, 4] > 0)[0]
    length = int(ends[0]) if len(ends) and ends[0] > 0 else len(big_stroke)
    result = np.zeros((length, 3), dtype=big_stroke.dtype)
    result[:, 0:2] = big_stroke[:length, 0:2]
    result[:, 2] = big_stroke[:length, 3]
    return result


def pad_batch(sketches: Sequence[np.ndarray], max_len: int) -> np.ndarray:
    """stroke-3 sketches → model input ``[B, max_len + 1, 5]``: S0, the points as stroke-5, then (0,0,0,0,1) rows."""
    out = np.zeros((len(sketches), max_len + 1, 5), dtype=np.float32)
    out[:, 0, 2] = 1  # S0 = (0, 0, 1, 0, 0)
    for i, s in enumerate(sketches):
        n = len(s)
        if n > max_len:
            raise ValueError(f"sketch {i} has {n} points, more than N_max={max_len}")
        out[i, 1 : n + 1, 0:2] = s[:, 0:2]
        out[i, 1 : n + 1, 3] = s[:, 2]
        out[i, 1 : n + 1, 2] = 1 - s[:, 2]
        out[i, n + 1 :, 4] = 1
    return out


def get_bounds(data: np.ndarray, factor: float = 10.0) -> tuple[float, float, float, float]:
    """(min_x, max_x, min_y, max_y) of the pen path of a stroke-3 sketch, origin included, divided by `factor`."""
    data = np.asarray(data, dtype=np.float64)
    xs = np.concatenate([[0.0], np.cumsum(data[:, 0] / factor)])
    ys = np.concatenate([[0.0], np.cumsum(data[:, 1] / factor)])
    return float(xs.min()), float(xs.max()), float(ys.min()), float(ys.max())


def strokes_to_lines(stroke: np.ndarray) -> list[list[tuple[float, float]]]:
    """stroke-3 → polylines of absolute points (each pen-down run is one line)."""
    stroke = np.asarray(stroke, dtype=np.float64)
    x = y = 0.0
    lines: list[list[tuple[float, float]]] = []
    line: list[tuple[float, float]] = []
    for dx, dy, p in stroke:
        x += dx
        y += dy
        line.append((x, y))
        if p == 1:
            lines.append(line)
            line = []
    if line:
        lines.append(line)
    return lines


def lines_to_strokes(lines: Sequence[Sequence[Sequence[float]]]) -> np.ndarray:
    """Polylines of absolute points → stroke-3 (the first row is the offset of the first point from the origin)."""
    points = []
    for line in lines:
        for j, (x, y) in enumerate(line):
            points.append((x, y, 1.0 if j == len(line) - 1 else 0.0))
    if not points:
        return np.zeros((0, 3), dtype=np.float32)
    arr = np.array(points, dtype=np.float64)
    out = np.empty_like(arr)
    out[0, 0:2] = arr[0, 0:2]
    out[1:, 0:2] = arr[1:, 0:2] - arr[:-1, 0:2]
    out[:, 2] = arr[:, 2]
    return out


def scale_bound(stroke: np.ndarray, average_dimension: float = 10.0) -> np.ndarray:
    """A copy of `stroke` scaled so that its larger side measures `average_dimension`."""
    stroke = np.array(stroke, dtype=np.float64)
    min_x, max_x, min_y, max_y = get_bounds(stroke, 1.0)
    max_dimension = max(max_x - min_x, max_y - min_y)
    if max_dimension > 0:
        stroke[:, 0:2] /= max_dimension / average_dimension
    return stroke


def random_scale(stroke: np.ndarray, factor: float, rng: np.random.RandomState) -> np.ndarray:
    """A copy with dx scaled by U[1-f, 1+f) and dy by another draw (x drawn first, as the reference)."""
    sx = (rng.random_sample() - 0.5) * 2 * factor + 1.0
    sy = (rng.random_sample() - 0.5) * 2 * factor + 1.0
    out = np.array(stroke, copy=True)
    out[:, 0] *= sx
    out[:, 1] *= sy
    return out


def augment_strokes(stroke: np.ndarray, prob: float, rng: np.random.RandomState) -> np.ndarray:
    """Drop pen-down points with probability `prob`, adding each dropped offset to the last kept point.

    As the reference: one uniform draw per point; a point can go only if it is pen-down and at
    least the fourth point of its stroke; pen-up points (stroke ends) are never dropped, so the
    end of every stroke stays where it was.
    """
    stroke = np.asarray(stroke)
    n = len(stroke)
    u = rng.random_sample(n)
    pen_up = stroke[:, 2] == 1
    # position of each point within its stroke: 0 right after a pen-up (or at the start)
    idx = np.arange(n)
    last_up_before = np.maximum.accumulate(np.where(np.concatenate([[True], pen_up[:-1]]), idx, -1))
    pos_in_stroke = idx - last_up_before
    drop = (~pen_up) & (pos_in_stroke > 2) & (u < prob)
    keep = ~drop
    if keep.all():
        return np.array(stroke, copy=True)
    group = np.cumsum(keep) - 1  # index of the kept point each point merges into
    out = np.array(stroke[keep], copy=True)
    offsets = np.zeros((int(keep.sum()), 2), dtype=np.float64)
    np.add.at(offsets, group, stroke[:, 0:2])
    out[:, 0:2] = offsets.astype(out.dtype)
    return out
