"""Raster pictures of one sketch with Pillow: PNG images and a GIF that draws the sketch stroke by stroke.

Lines are drawn black on white at 4x the output size and averaged down (box filter), so edges are
antialiased.  Every pen-down connection is a segment with round ends, so a drawing made of the
first k points is always contained in the drawing of the first k + 1 points.  With `given` (a
completion), the points after the first `given` are drawn in ``ACCENT`` and the image is RGB; the
same shapes are drawn, so its non-white pixels are exactly those of the one-colour image.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Union

import numpy as np

from ..atomic import atomic_write
from ._common import ACCENT_RGB, PathLike, as_given, as_strokes, fit_lines, lines_of, pair, positive, split_lines, whole

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["render_png", "save_png", "save_gif"]

SUPERSAMPLE = 4
Size = Union[int, tuple[int, int]]


def pillow() -> Any:
    """The Pillow modules (imported on first use so that the SVG renderers work without Pillow)."""
    try:
        from PIL import Image, ImageDraw
    except ImportError as exc:  # pragma: no cover - Pillow is a declared dependency
        raise ImportError("sketchrnn.render needs Pillow for raster output: pip install pillow") from exc
    return Image, ImageDraw


def default_margin(width: int, height: int) -> float:
    """The margin used when none is given: 6% of the shorter side, at least 1 px."""
    return float(max(1, round(0.06 * min(width, height))))


class _Canvas:
    """A white supersampled canvas on which segments and dots are drawn in output pixel units: grayscale,
    or RGB when `coloured` (black, and ACCENT for the continuation)."""

    def __init__(self, width: int, height: int, stroke_width: float, coloured: bool = False) -> None:
        Image, ImageDraw = pillow()
        self.size = (width, height)
        big = (width * SUPERSAMPLE, height * SUPERSAMPLE)
        self.big = Image.new("RGB", big, (255, 255, 255)) if coloured else Image.new("L", big, 255)
        self.inks: tuple[Any, Any] = ((0, 0, 0), ACCENT_RGB) if coloured else (0, 0)
        self.draw = ImageDraw.Draw(self.big)
        self.width = max(1, round(stroke_width * SUPERSAMPLE))
        self.radius = self.width / 2

    def dot(self, p: np.ndarray, ink: Any) -> None:
        """A round dot of the stroke width at `p`."""
        x, y = p * SUPERSAMPLE
        r = self.radius
        self.draw.ellipse([x - r, y - r, x + r, y + r], fill=ink)

    def segment(self, a: np.ndarray, b: np.ndarray, ink: Any) -> None:
        """A line of the stroke width from `a` to `b` with round ends."""
        self.draw.line([tuple(a * SUPERSAMPLE), tuple(b * SUPERSAMPLE)], fill=ink, width=self.width)
        self.dot(a, ink)
        self.dot(b, ink)

    def point(self, line: np.ndarray, j: int, accent: bool = False) -> None:
        """Draw point `j` of a polyline: the connection from the previous point, or a dot at a stroke's start."""
        ink = self.inks[accent]
        if j == 0:
            self.dot(line[0], ink)
        else:
            self.segment(line[j - 1], line[j], ink)

    def image(self) -> "PILImage.Image":
        """The canvas at output size (box-averaged), mode ``L`` or ``RGB``."""
        return self.big.reduce(SUPERSAMPLE)


def _order(lines: list[np.ndarray], given: Optional[int]) -> list[tuple[np.ndarray, int, bool]]:
    """(polyline, point index, accent) for each ``_Canvas.point`` call in drawing order: the given part, then
    the continuation (whose first polyline starts at the last given point when the pen was down there)."""
    head, tail = split_lines(lines, given)
    return [(line, j, accent) for part, accent in ((head, False), (tail, True))
            for line in part for j in range(len(line))]


def _prepare(strokes: Any, size: Any, stroke_width: Any, margin: Any) -> tuple[int, int, float, list[np.ndarray]]:
    """Validated (width, height, stroke width, polylines fitted into the image in pixel units)."""
    data = as_strokes(strokes)
    width, height = pair(size, "size", integer=True)
    stroke_width = positive(stroke_width, "stroke_width")
    margin = default_margin(width, height) if margin is None else positive(margin, "margin", allow_zero=True)
    inset = margin + stroke_width / 2
    box_w, box_h = width - 2 * inset, height - 2 * inset
    if box_w <= 0 or box_h <= 0:
        raise ValueError(f"margin {margin:g} and stroke_width {stroke_width:g} leave no room in a {width}x{height} image")
    return width, height, stroke_width, fit_lines(lines_of(data), inset, inset, box_w, box_h)


def in_mode(img: "PILImage.Image", mode: Optional[str]) -> "PILImage.Image":
    """`img` (mode L, or RGB when drawn with a given part) in the requested mode (None: as drawn)."""
    return img if mode is None or img.mode == mode else img.convert(mode)


def check_mode(mode: Optional[str]) -> Optional[str]:
    """`mode` if it is None, L or RGB, else ValueError."""
    if mode not in (None, "L", "RGB"):
        raise ValueError(f"mode must be 'L' (grayscale) or 'RGB', got {mode!r}")
    return mode


def render_png(strokes: Any, size: Size = 256, stroke_width: float = 2.0, margin: Optional[float] = None,
               mode: Optional[str] = None, given: Optional[int] = None) -> "PILImage.Image":
    """The sketch black on white, scaled uniformly and centred so that the ink stays `margin` px inside the image.

    With `given` (a completion), the first `given` points are drawn black and the rest in ``ACCENT``
    (the segment joining the parts, pen down at the last given point, is the continuation's); the
    image is then RGB.  `mode` None means L, or RGB with `given`; 'L' with `given` is the
    two-colour image in grayscale (ACCENT reads as grey 91).
    """
    check_mode(mode)
    given = as_given(given)
    width, height, stroke_width, lines = _prepare(strokes, size, stroke_width, margin)
    canvas = _Canvas(width, height, stroke_width, coloured=given is not None)
    for line, j, accent in _order(lines, given):
        canvas.point(line, j, accent)
    return in_mode(canvas.image(), mode)


def save_png(strokes: Any, path: PathLike, size: Size = 256, stroke_width: float = 2.0,
             margin: Optional[float] = None, mode: Optional[str] = None, given: Optional[int] = None) -> Path:
    """Write ``render_png(...)`` to `path` as PNG, atomically (parent directories are created)."""
    img = render_png(strokes, size=size, stroke_width=stroke_width, margin=margin, mode=mode, given=given)
    return save_image(img, path, "PNG")


def save_image(img: "PILImage.Image", path: PathLike, fmt: str = "PNG", **params: Any) -> Path:
    """Write a Pillow image to `path` in format `fmt`, atomically (parent directories are created)."""
    return atomic_write(path, lambda fh: img.save(fh, format=fmt, **params))


def gif_frames(strokes: Any, size: Size = 256, stroke_width: float = 2.0, margin: Optional[float] = None,
               points_per_frame: Optional[int] = None, max_frames: int = 100,
               given: Optional[int] = None) -> list["PILImage.Image"]:
    """The frames of the drawing animation (mode L; RGB with `given`, as in ``render_png``); frames that would
    add nothing visible are left out."""
    max_frames = whole(max_frames, "max_frames")
    step = 1 if points_per_frame is None else whole(points_per_frame, "points_per_frame")
    given = as_given(given)
    width, height, stroke_width, lines = _prepare(strokes, size, stroke_width, margin)
    canvas = _Canvas(width, height, stroke_width, coloured=given is not None)
    order = _order(lines, given)
    step = max(step, math.ceil(len(order) / max_frames))
    frames = [canvas.image()] if not order else []
    last = None
    for start in range(0, len(order), step):
        for line, j, accent in order[start:start + step]:
            canvas.point(line, j, accent)
        frame = canvas.image()
        data = frame.tobytes()
        if data != last:
            frames.append(frame)
            last = data
    return frames


def save_gif(strokes: Any, path: PathLike, size: Size = 256, frame_ms: int = 40,
             points_per_frame: Optional[int] = None, hold_ms: int = 1000, stroke_width: float = 2.0,
             margin: Optional[float] = None, max_frames: int = 100, given: Optional[int] = None) -> Path:
    """Write an animated GIF (looping) that draws the sketch point by point; the finished drawing is held `hold_ms`.

    Each frame adds `points_per_frame` points in drawing order (by default, and at least, enough to
    keep within `max_frames` frames); frames that add nothing visible (pen-up moves) are skipped.
    GIF stores durations in hundredths of a second.  The last frame equals ``render_png``'s image (with
    `given`, the two-colour one, in GIF's palette of 256 colours per frame).
    """
    frame_ms = whole(frame_ms, "frame_ms")
    hold_ms = whole(hold_ms, "hold_ms")
    frames = gif_frames(strokes, size=size, stroke_width=stroke_width, margin=margin,
                        points_per_frame=points_per_frame, max_frames=max_frames, given=given)
    durations = [frame_ms] * (len(frames) - 1) + [hold_ms]
    return save_image(frames[0], path, "GIF", save_all=True, append_images=frames[1:], duration=durations,
                      loop=0, optimize=False)
