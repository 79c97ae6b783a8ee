"""Strokes from SVG files.

Every drawable shape -- ``<path>`` (all commands, curves and arcs included), ``<polyline>``,
``<polygon>``, ``<line>``, ``<rect>``, ``<circle>``, ``<ellipse>``, and shapes reached through
``<use>`` -- becomes one stroke per subpath, with every transform applied. Parsing, transforms
and curve geometry come from ``svgelements``; curves are flattened to polylines here. Text,
images and anything hidden with ``display: none`` are ignored.
"""

from __future__ import annotations

import os
from typing import Any, Union
from xml.etree.ElementTree import ParseError

import numpy as np

from .errors import DataFileError, cannot_open, first_line

__all__ = ["read_svg"]

PathLike = Union[str, "os.PathLike[str]"]

DEFAULT_TOLERANCE = 1e-3
_MAX_PIECES = 4096  # most pieces one curve segment is cut into


def read_svg(path: PathLike, *, tolerance: float = DEFAULT_TOLERANCE) -> list[list[list[float]]]:
    """The strokes of an SVG file as a Quick, Draw!-style drawing ``[[xs, ys], ...]`` of absolute points.

    Coordinates are in the root ``<svg>``'s user units (its viewBox, when it has one) after every
    transform. Curves and arcs are flattened so that the polyline strays from the curve by at
    most about `tolerance` times the drawing's larger side (0.001 ≈ a quarter of a pixel once the
    drawing is scaled to 0..255). Each subpath is one stroke; ``Z`` draws back to its start.

    Raises:
        DataFileError: the file is missing or unreadable, is not well-formed XML, is not an SVG,
            holds malformed shape data, or has nothing drawable.
    """
    import svgelements as se

    if not tolerance > 0:
        raise ValueError(f"tolerance must be positive, not {tolerance!r}")
    name = os.fspath(path)
    try:
        doc = se.SVG.parse(name, reify=True, on_error="raise")
    except OSError as exc:
        raise cannot_open(name, exc, "an SVG file") from None
    except ParseError as exc:
        raise DataFileError(f"{name}: malformed XML ({exc})") from None
    except Exception as exc:  # the library's own errors on bad attribute or path data
        detail = first_line(exc) or "a shape's data, such as a path's d attribute, could not be parsed"
        raise DataFileError(f"{name}: malformed SVG content ({detail})") from None
    if not isinstance(doc, se.SVG):
        raise DataFileError(f"{name}: not an SVG document (the root element is not <svg>)")

    try:
        strokes = _strokes(doc, tolerance)
    except Exception as exc:  # geometry the library cannot handle
        raise DataFileError(f"{name}: malformed SVG content ({first_line(exc) or type(exc).__name__})") from None
    if strokes is None:
        raise DataFileError(f"{name}: no drawable paths (path, polyline, polygon, line, rect, circle or ellipse)")
    if not strokes:
        raise DataFileError(f"{name}: no drawable paths (every shape is empty)")

    # svgelements maps the viewBox onto the viewport; undo that to stay in user units
    to_user = _inverse_viewbox(doc)
    drawing = []
    for s in strokes:
        if to_user is not None:
            s = s @ to_user[:, :2].T + to_user[:, 2]
        drawing.append([s[:, 0].tolist(), s[:, 1].tolist()])
    return drawing


def _strokes(doc: Any, tolerance: float) -> list[np.ndarray] | None:
    """Every subpath of every shape, flattened (None when there is no shape at all)."""
    import svgelements as se

    paths = [abs(se.Path(e)) for e in doc.elements() if isinstance(e, se.Shape)]
    boxes = [b for b in (p.bbox() for p in paths) if b is not None]
    if not boxes:
        return None
    box = np.array(boxes, dtype=np.float64)
    extent = max(box[:, 2].max() - box[:, 0].min(), box[:, 3].max() - box[:, 1].min())
    tol = tolerance * extent if extent > 0 else 1.0
    strokes: list[np.ndarray] = []
    for p in paths:
        strokes.extend(_path_strokes(p, tol))
    return strokes


def _inverse_viewbox(doc: Any) -> np.ndarray | None:
    """The 2x3 affine map from viewport coordinates back to the root's user units (None: identity)."""
    import svgelements as se

    text = getattr(doc, "viewbox_transform", None)
    if not text:
        return None
    m = se.Matrix(text)
    forward = np.array([[m.a, m.c, m.e], [m.b, m.d, m.f], [0.0, 0.0, 1.0]])
    if abs(np.linalg.det(forward)) < 1e-300:
        return None
    return np.linalg.inv(forward)[:2]


def _path_strokes(path: Any, tol: float) -> list[np.ndarray]:
    """One ``[k, 2]`` array per subpath of a reified svgelements Path (lone moves dropped)."""
    import svgelements as se

    strokes: list[np.ndarray] = []
    current: list[np.ndarray] = []
    drawn = False

    def finish() -> None:
        if current and drawn:
            pts = np.concatenate(current)
            keep = np.ones(len(pts), dtype=bool)
            keep[1:] = np.any(pts[1:] != pts[:-1], axis=1)
            strokes.append(pts[keep])

    for seg in path:
        if isinstance(seg, se.Move):
            finish()
            current, drawn = [], False
            if seg.end is not None:
                current.append(np.array([[seg.end.x, seg.end.y]], dtype=np.float64))
            continue
        if seg.end is None:
            continue
        if not current:  # a drawing command with no move before it starts at its own start
            start = seg.start if seg.start is not None else seg.end
            current.append(np.array([[start.x, start.y]], dtype=np.float64))
        end = np.array([[seg.end.x, seg.end.y]], dtype=np.float64)
        if isinstance(seg, se.Arc) and (seg.rx == 0 or seg.ry == 0):
            current.append(end)  # a zero-radius arc is a straight line (SVG spec)
        elif isinstance(seg, (se.CubicBezier, se.QuadraticBezier, se.Arc)):
            current.append(_flatten(seg, tol))
        else:  # Line, Close
            current.append(end)
        drawn = True
    finish()
    return [s for s in strokes if np.all(np.isfinite(s))]


def _flatten(seg: Any, tol: float) -> np.ndarray:
    """Points along a curve segment (its start excluded), doubling the pieces until each midpoint is within `tol`."""
    n = 4
    while True:
        t = np.linspace(0.0, 1.0, n + 1)
        pts = np.asarray(seg.npoint(t), dtype=np.float64)
        mid = np.asarray(seg.npoint((t[:-1] + t[1:]) / 2), dtype=np.float64)
        err = np.hypot(*(mid - (pts[:-1] + pts[1:]) / 2).T).max()
        if err <= tol or n >= _MAX_PIECES:
            return pts[1:]
        n *= 2
