"""Grids of sketches (the paper's figures): originals beside reconstructions, temperature sweeps, interpolations.

A layout is a sequence of rows, each a sequence of sketches; ``layout[row][col]`` is drawn centred
and scaled uniformly to fit its cell, and None (or an empty sketch) leaves the cell blank.
Optional row labels go in a column on the left, optional column labels in a header row. Each cell
that holds a sketch (an empty one too) is framed by a thin grey border unless `borders=False`, so
that a sketch of one point reads as a result and not as a stray mark.  With `given` (a grid of
completions of one prompt), every cell's first `given` points are black and the rest ``ACCENT``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from ..atomic import atomic_write
from ._common import (
    Layout, PathLike, as_given, as_labels, as_layout, as_strokes, fit_lines, fmt, lines_of, pair, positive,
)
from .raster import check_mode, default_margin, in_mode, pillow, render_png, save_image
from .svg import sketch_paths, svg_document, svg_text

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["grid_from_list", "grid_svg", "grid_png", "save_grid_svg", "save_grid_png"]

Sketches = Sequence[Sequence[Optional[np.ndarray]]]
BORDER_GREY = 200  # light enough that no one mistakes a frame for a stroke
BORDER_SVG = "#c8c8c8"


def grid_from_list(sketches: Sequence[Optional[np.ndarray]], columns: Optional[int] = None) -> Layout:
    """A flat list of sketches as rows of `columns` cells (the last row padded with None), for grid_svg/grid_png.

    Without `columns`, the grid is as square as the count allows: ceil(sqrt(n)) columns (16 → 4×4).
    """
    if columns is not None and (isinstance(columns, bool) or not isinstance(columns, (int, np.integer))
                                or columns < 1):
        raise ValueError(f"columns must be a whole number >= 1, got {columns!r}")
    if isinstance(sketches, np.ndarray) and sketches.dtype != object:
        raise ValueError("sketches: expected a list of sketches, got one numeric array")
    items = [None if s is None else as_strokes(s, f"sketches[{i}]") for i, s in enumerate(sketches)]
    if not items:
        raise ValueError("sketches: the list is empty")
    if columns is None:
        columns = math.isqrt(len(items) - 1) + 1
    rows: Layout = [items[i:i + columns] for i in range(0, len(items), columns)]
    rows[-1] += [None] * (columns - len(rows[-1]))
    return rows


def _frame(layout: Layout, labels: Any, column_labels: Any, label_width: Optional[float],
           font_size: float, measure: Any) -> tuple[Optional[list[str]], Optional[list[str]], float, float]:
    """Validated labels and the (left label column width, header height) of a grid."""
    n_rows, n_cols = len(layout), max(len(row) for row in layout)
    rows = as_labels(labels, n_rows, "labels", "row")
    cols = as_labels(column_labels, n_cols, "column_labels", "column")
    if label_width is not None:
        left = positive(label_width, "label_width", allow_zero=True)
    elif rows:
        left = max(measure(text) for text in rows) + font_size
    else:
        left = 0.0
    top = 2.0 * font_size if cols else 0.0
    return rows, cols, left, top


def grid_svg(sketches: Sketches, cell_size: Union[float, tuple[float, float]] = 100.0,
             labels: Optional[Sequence[str]] = None, column_labels: Optional[Sequence[str]] = None,
             stroke_width: float = 1.0, cell_margin: Optional[float] = None, label_width: Optional[float] = None,
             font_size: float = 12.0, borders: bool = True, given: Optional[int] = None) -> str:
    """An SVG grid: one path (id ``cell-ROW-COL``) per non-empty cell, fitted inside the cell less
    `cell_margin`, and a grey frame (``<rect class="cell-border">``) around each cell that holds a sketch.

    With `given`, each cell has the black path of its first `given` points (id ``cell-ROW-COL``,
    ``class="given"``) and the ``ACCENT`` path of the rest (id ``cell-ROW-COL-continuation``,
    ``class="continuation"``), fitted together, as in ``sketch_to_svg``.
    """
    layout = as_layout(sketches)
    given = as_given(given)
    cw, ch = pair(cell_size, "cell_size")
    stroke_width = positive(stroke_width, "stroke_width")
    font_size = positive(font_size, "font_size")
    margin = default_margin(cw, ch) if cell_margin is None else positive(cell_margin, "cell_margin", allow_zero=True)
    inset = margin + stroke_width / 2
    if cw - 2 * inset <= 0 or ch - 2 * inset <= 0:
        raise ValueError(f"cell_margin {margin:g} and stroke_width {stroke_width:g} leave no room in a {cw:g}x{ch:g} cell")
    rows, cols, left, top = _frame(layout, labels, column_labels, label_width, font_size,
                                   lambda text: 0.6 * font_size * len(text))
    n_cols = max(len(row) for row in layout)
    body: list[str] = []
    for r, row in enumerate(layout):
        for c, data in enumerate(row):
            if data is None:
                continue
            if borders:
                body.append(f'<rect class="cell-border" x="{fmt(left + c * cw + 0.5)}" y="{fmt(top + r * ch + 0.5)}" '
                            f'width="{fmt(cw - 1)}" height="{fmt(ch - 1)}" fill="none" stroke="{BORDER_SVG}" '
                            'stroke-width="1"/>')
            x0, y0 = left + c * cw + inset, top + r * ch + inset
            lines = fit_lines(lines_of(data), x0, y0, cw - 2 * inset, ch - 2 * inset)
            body.extend(sketch_paths(lines, stroke_width, given, ident=f"cell-{r}-{c}"))
    for r, text in enumerate(rows or []):
        body.append(svg_text(left - font_size / 2, top + (r + 0.5) * ch, text, font_size, "end"))
    for c, text in enumerate(cols or []):
        body.append(svg_text(left + (c + 0.5) * cw, top / 2, text, font_size, "middle"))
    return svg_document(left + n_cols * cw, top + len(layout) * ch, body)


def save_grid_svg(sketches: Sketches, path: PathLike, **kw: Any) -> Path:
    """Write ``grid_svg(sketches, **kw)`` to `path` atomically (parent directories are created)."""
    text = grid_svg(sketches, **kw)
    return atomic_write(path, lambda fh: fh.write(text.encode("utf-8")))


def _font(font_size: float) -> Any:
    """Pillow's default font at `font_size` where Pillow can scale it, else its fixed bitmap font."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=font_size)
    except (TypeError, ImportError, OSError, AttributeError):
        return ImageFont.load_default()


def grid_png(sketches: Sketches, cell_size: Union[int, tuple[int, int]] = 128, stroke_width: float = 2.0,
             cell_margin: Optional[float] = None, labels: Optional[Sequence[str]] = None,
             column_labels: Optional[Sequence[str]] = None, label_width: Optional[int] = None,
             font_size: float = 12.0, mode: Optional[str] = None, borders: bool = True,
             given: Optional[int] = None) -> "PILImage.Image":
    """A raster grid (white background); each non-empty cell is ``render_png`` of its sketch at the cell
    size, framed by a one-pixel grey border unless `borders` is False.

    With `given`, every cell is drawn with that `given` (its first `given` points black, the rest
    ``ACCENT``) and the grid is RGB; `mode` None means L, or RGB with `given`, as in ``render_png``.
    """
    Image, ImageDraw = pillow()
    check_mode(mode)
    layout = as_layout(sketches)
    given = as_given(given)
    cw, ch = pair(cell_size, "cell_size", integer=True)
    font_size = positive(font_size, "font_size")
    font = _font(font_size)
    scratch = ImageDraw.Draw(Image.new("L", (1, 1), 255))
    rows, cols, left, top = _frame(layout, labels, column_labels, label_width, font_size,
                                   lambda text: scratch.textlength(text, font=font))
    left, top = int(round(left)), int(round(top))
    n_cols = max(len(row) for row in layout)
    full = (left + n_cols * cw, top + len(layout) * ch)
    img = Image.new("L", full, 255) if given is None else Image.new("RGB", full, (255, 255, 255))
    border, text_ink = (BORDER_GREY, 0) if given is None else ((BORDER_GREY,) * 3, (0, 0, 0))
    for r, row in enumerate(layout):
        for c, data in enumerate(row):
            if data is not None:
                cell = render_png(data, size=(cw, ch), stroke_width=stroke_width, margin=cell_margin, given=given)
                img.paste(cell, (left + c * cw, top + r * ch))
    draw = ImageDraw.Draw(img)
    if borders:
        for r, row in enumerate(layout):
            for c, data in enumerate(row):
                if data is not None:
                    x0, y0 = left + c * cw, top + r * ch
                    draw.rectangle([x0, y0, x0 + cw - 1, y0 + ch - 1], outline=border)

    def put(text: str, x: float, y: float, anchor_right: bool) -> None:
        """Draw `text` centred vertically on y, ending at x (row labels) or centred on x (column labels)."""
        x0, y0, x1, y1 = draw.textbbox((0, 0), text, font=font)
        tx = x - (x1 - x0) if anchor_right else x - (x1 - x0) / 2
        draw.text((tx - x0, y - (y1 + y0) / 2), text, fill=text_ink, font=font)

    for r, text in enumerate(rows or []):
        put(text, left - font_size / 2, top + (r + 0.5) * ch, True)
    for c, text in enumerate(cols or []):
        put(text, left + (c + 0.5) * cw, top / 2, False)
    return in_mode(img, mode)


def save_grid_png(sketches: Sketches, path: PathLike, **kw: Any) -> Path:
    """Write ``grid_png(sketches, **kw)`` to `path` as PNG, atomically (parent directories are created)."""
    return save_image(grid_png(sketches, **kw), path, "PNG")
