"""Pictures of sketches: SVG (written as text), PNG and animated GIF (Pillow), and grids for figures.

A sketch is a stroke-3 array ``[n, 3]`` of ``(dx, dy, p)`` rows; ``p = 1`` lifts the pen after the
point.  The pen starts at the origin, lifted; y grows downwards.  Lines are black on white.  For a
sketch completion, every renderer takes ``given=k``: the first k points (the user's) are drawn
black and the rest (the model's continuation) in ``ACCENT``; PNG output is then RGB.
"""

from ._common import ACCENT
from .grid import grid_from_list, grid_png, grid_svg, save_grid_png, save_grid_svg
from .raster import render_png, save_gif, save_png
from .svg import save_svg, sketch_to_svg

__all__ = [
    "ACCENT", "grid_from_list", "grid_png", "grid_svg", "render_png", "save_gif", "save_grid_png", "save_grid_svg",
    "save_png", "save_svg", "sketch_to_svg",
]
