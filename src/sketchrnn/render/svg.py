"""SVG pictures of one sketch, written by hand as text (the reference notebook's ``draw_strokes``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from ..data.strokes import get_bounds
from ..atomic import atomic_write
from ._common import ACCENT, PathLike, as_given, as_strokes, fmt, lines_of, path_data, positive, split_lines

__all__ = ["sketch_to_svg", "save_svg"]


def svg_document(width: float, height: float, body: list[str]) -> str:
    """A standalone SVG document of the given size with a white background and `body` elements."""
    w, h = fmt(width), fmt(height)
    return "\n".join([
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{w}" height="{h}" viewBox="0 0 {w} {h}">',
        f'  <rect x="0" y="0" width="{w}" height="{h}" fill="white"/>',
        *("  " + element for element in body),
        "</svg>",
        "",
    ])


def svg_path(d: str, stroke_width: float, ident: str | None = None, colour: str = "black",
             cls: str | None = None) -> str:
    """One unfilled ``<path>`` element (black unless `colour`) with round caps and joins."""
    id_attr = f" id={quoteattr(ident)}" if ident else ""
    class_attr = f" class={quoteattr(cls)}" if cls else ""
    return (f'<path{id_attr}{class_attr} d="{d}" fill="none" stroke="{colour}" stroke-width="{fmt(stroke_width)}" '
            'stroke-linecap="round" stroke-linejoin="round"/>')


def sketch_paths(lines: list[np.ndarray], stroke_width: float, given: int | None, start: np.ndarray | None = None,
                 ident: str | None = None) -> list[str]:
    """The ``<path>`` elements of a sketch's polylines (already placed): one black path (id `ident`), or with
    `given` a black ``class="given"`` path of the first `given` points (id `ident`) and an ACCENT
    ``class="continuation"`` path of the rest (id `ident` + ``-continuation``); empty parts are left out.
    The given part's path starts with a move to `start`."""
    head, tail = split_lines(lines, given)
    cls = None if given is None else "given"
    out = [svg_path(path_data(head, start=start), stroke_width, ident, cls=cls)] if head else []
    if tail:
        out.append(svg_path(path_data(tail), stroke_width, ident and f"{ident}-continuation", colour=ACCENT,
                            cls="continuation"))
    return out


def svg_text(x: float, y: float, text: str, font_size: float, anchor: str) -> str:
    """One ``<text>`` element centred vertically on `y`."""
    return (f'<text x="{fmt(x)}" y="{fmt(y)}" font-family="sans-serif" font-size="{fmt(font_size)}" '
            f'text-anchor="{anchor}" dominant-baseline="middle" fill="black">{escape(text)}</text>')


def sketch_to_svg(strokes: Any, factor: float = 0.2, stroke_width: float = 1.0, margin: float = 25.0,
                  given: int | None = None) -> str:
    """One sketch as an SVG document: white background, one black path from the origin (pen up), coordinates dx/factor.

    With `given` (a completion: the first `given` points are the user's, the rest the model's),
    the first `given` points are one black path (``class="given"``, from the origin) and the rest a
    second path in ``ACCENT`` (``class="continuation"``) in the same coordinates; the segment that
    joins the two parts (pen down at the last given point) belongs to the continuation.  `given`
    >= the sketch's length draws it all black.
    """
    data = as_strokes(strokes)
    given = as_given(given)
    factor = positive(factor, "factor")
    stroke_width = positive(stroke_width, "stroke_width")
    margin = positive(margin, "margin", allow_zero=True)
    min_x, max_x, min_y, max_y = get_bounds(data, factor)
    origin = np.array([margin - min_x, margin - min_y])
    lines = [line / factor + origin for line in lines_of(data)]
    return svg_document(max_x - min_x + 2 * margin, max_y - min_y + 2 * margin,
                        sketch_paths(lines, stroke_width, given, start=origin))


def save_svg(strokes: Any, path: PathLike, **kw: Any) -> Path:
    """Write ``sketch_to_svg(strokes, **kw)`` to `path` atomically (parent directories are created)."""
    text = sketch_to_svg(strokes, **kw)
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
