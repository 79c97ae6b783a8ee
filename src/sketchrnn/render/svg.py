"""SVG pictures of one sketch, written by hand as text (the reference notebook's ``draw_strokes``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import numpy as np

from ..data.strokes import get_bounds
from ..atomic import atomic_write
from ._common import PathLike, as_strokes, fmt, lines_of, path_data, positive

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


def svg_path(d: str, stroke_width: float, ident: str | None = None) -> str:
    """One black, unfilled ``<path>`` element with round caps and joins."""
    id_attr = f" id={quoteattr(ident)}" if ident else ""
    return (f'<path{id_attr} d="{d}" fill="none" stroke="black" stroke-width="{fmt(stroke_width)}" '
            'stroke-linecap="round" stroke-linejoin="round"/>')


def svg_text(x: float, y: float, text: str, font_size: float, anchor: str) -> str:
    """One ``<text>`` element centred vertically on `y`."""
    return (f'<text x="{fmt(x)}" y="{fmt(y)}" font-family="sans-serif" font-size="{fmt(font_size)}" '
            f'text-anchor="{anchor}" dominant-baseline="middle" fill="black">{escape(text)}</text>')


def sketch_to_svg(strokes: Any, factor: float = 0.2, stroke_width: float = 1.0, margin: float = 25.0) -> str:
    """One sketch as an SVG document: white background, one path from the origin (pen up), coordinates dx/factor."""
    data = as_strokes(strokes)
    factor = positive(factor, "factor")
    stroke_width = positive(stroke_width, "stroke_width")
    margin = positive(margin, "margin", allow_zero=True)
    min_x, max_x, min_y, max_y = get_bounds(data, factor)
    origin = np.array([margin - min_x, margin - min_y])
    lines = [line / factor + origin for line in lines_of(data)]
    body = [svg_path(path_data(lines, start=origin), stroke_width)] if lines else []
    return svg_document(max_x - min_x + 2 * margin, max_y - min_y + 2 * margin, body)


def save_svg(strokes: Any, path: PathLike, **kw: Any) -> Path:
    """Write ``sketch_to_svg(strokes, **kw)`` to `path` atomically (parent directories are created)."""
    text = sketch_to_svg(strokes, **kw)
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))
