"""Tests for sketchrnn.render on real sketches of aaron_sheep: SVG, PNG, GIF and grids.

The SVG path is parsed back and compared with the cumulative coordinates of the strokes; raster
images are checked for size, ink, a white margin and the sketch's aspect ratio; the GIF for a
growing drawing that ends on the PNG image.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from PIL import Image

from conftest import DATA
from sketchrnn.data import get_bounds, load_npz
from sketchrnn.render.raster import gif_frames
from sketchrnn.render import (
    ACCENT,
    grid_from_list,
    grid_png,
    grid_svg,
    render_png,
    save_gif,
    save_grid_png,
    save_grid_svg,
    save_png,
    save_svg,
    sketch_to_svg,
)

SVG_NS = "{http://www.w3.org/2000/svg}"
_cache: dict = {}


def sheep(i: int) -> np.ndarray:
    """Test sketch `i` of aaron_sheep (the file is loaded once)."""
    if "test" not in _cache:
        _cache["test"] = load_npz(DATA / "aaron_sheep.npz")["test"]
    return _cache["test"][i]


def parse_path(d: str) -> list[tuple[str, float, float]]:
    """Each command of path data with the absolute position it reaches (M/m/l only, explicit commands)."""
    tokens = re.findall(r"([A-Za-z])\s*(-?[0-9.]+(?:e-?[0-9]+)?)\s*,\s*(-?[0-9.]+(?:e-?[0-9]+)?)", d)
    assert re.sub(r"[A-Za-z]\s*-?[0-9.]+(?:e-?[0-9]+)?\s*,\s*-?[0-9.]+(?:e-?[0-9]+)?", "", d).strip() == "", d
    out = []
    x = y = 0.0
    for cmd, a, b in tokens:
        assert cmd in "Mml", f"unexpected path command {cmd}"
        if cmd == "M":
            x, y = float(a), float(b)
        else:
            x, y = x + float(a), y + float(b)
        out.append((cmd, x, y))
    return out


def pen_down_connections(s: np.ndarray) -> int:
    """Points reached with the pen down: the previous point did not lift it."""
    return int(np.sum(s[:-1, 2] == 0))


def stroke_starts(s: np.ndarray) -> int:
    """Points reached with the pen up: the first point and each point after a lift."""
    return 1 + int(np.sum(s[:-1, 2] == 1))


def dark(img: Image.Image, threshold: int = 128) -> np.ndarray:
    """Boolean mask of the dark pixels of an image."""
    return np.asarray(img.convert("L")) < threshold


def ink_box(img: Image.Image) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the dark pixels, x1/y1 exclusive."""
    ys, xs = np.nonzero(dark(img))
    assert len(xs), "the image has no dark pixels"
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def extent(s: np.ndarray) -> tuple[float, float]:
    """Width and height of the bounding box of the sketch's points (the origin, never drawn, left out)."""
    xy = np.cumsum(s[:, 0:2].astype(np.float64), axis=0)
    return float(np.ptp(xy[:, 0])), float(np.ptp(xy[:, 1]))


# ------------------------------------------------------------------------------------------ SVG


@pytest.mark.parametrize("i, factor, margin", [(0, 0.2, 25.0), (1, 0.2, 25.0), (4, 1.0, 10.0), (8, 0.37, 0.0)])
def test_svg_path_reproduces_strokes(i, factor, margin):
    s = sheep(i)
    svg = sketch_to_svg(s, factor=factor, margin=margin)
    root = ET.fromstring(svg)
    assert root.tag == SVG_NS + "svg"
    min_x, max_x, min_y, max_y = get_bounds(s, factor)
    assert float(root.get("width")) == pytest.approx(max_x - min_x + 2 * margin, abs=1e-3)
    assert float(root.get("height")) == pytest.approx(max_y - min_y + 2 * margin, abs=1e-3)
    rects = root.findall(SVG_NS + "rect")
    assert len(rects) == 1 and rects[0].get("fill") == "white"
    paths = root.findall(SVG_NS + "path")
    assert len(paths) == 1
    path = paths[0]
    assert path.get("stroke") == "black" and path.get("fill") == "none"

    steps = parse_path(path.get("d"))
    cmds = [c for c, _, _ in steps]
    # starts at the origin with the pen up; then one command per point
    assert cmds[0] == "M" and len(steps) == len(s) + 1
    assert (steps[0][1], steps[0][2]) == pytest.approx((margin - min_x, margin - min_y), abs=1e-3)
    assert cmds.count("l") == pen_down_connections(s)
    assert cmds.count("m") == stroke_starts(s)
    assert cmds[1] == "m"  # the first move is a move, not a line
    # a line follows the point that kept the pen down, a move follows a lift
    expected = ["m"] + ["m" if p == 1 else "l" for p in s[:-1, 2]]
    assert cmds[1:] == expected
    absolute = np.array([(x, y) for _, x, y in steps[1:]])
    want = np.cumsum(s[:, 0:2].astype(np.float64), axis=0) / factor + [margin - min_x, margin - min_y]
    np.testing.assert_allclose(absolute, want, atol=2e-3)


def test_svg_stroke_width_and_file(tmp_path):
    s = sheep(2)
    target = tmp_path / "new" / "dir" / "sheep.svg"
    written = save_svg(s, target, stroke_width=2.5)
    assert written == target and target.is_file()
    text = target.read_text(encoding="utf-8")
    assert text == sketch_to_svg(s, stroke_width=2.5)
    assert ET.fromstring(text).find(SVG_NS + "path").get("stroke-width") == "2.5"
    save_svg(sheep(3), target)  # overwrite in place
    assert target.read_text(encoding="utf-8") == sketch_to_svg(sheep(3))
    assert sorted(p.name for p in target.parent.iterdir()) == ["sheep.svg"]  # no temporary file left


def test_svg_empty_sketch():
    root = ET.fromstring(sketch_to_svg(np.zeros((0, 3))))
    assert float(root.get("width")) == 50 and float(root.get("height")) == 50
    assert root.findall(SVG_NS + "path") == []
    assert len(root.findall(SVG_NS + "rect")) == 1


def _cells(root, left, top, cw, ch):
    """{(row, col): absolute points of the path} from a grid SVG, with each path checked inside its cell."""
    out = {}
    for path in root.findall(SVG_NS + "path"):
        r, c = map(int, path.get("id").split("-")[1:])
        pts = np.array([(x, y) for _, x, y in parse_path(path.get("d"))])
        x0, y0 = left + c * cw, top + r * ch
        assert pts[:, 0].min() >= x0 and pts[:, 0].max() <= x0 + cw, (r, c)
        assert pts[:, 1].min() >= y0 and pts[:, 1].max() <= y0 + ch, (r, c)
        out[(r, c)] = pts
    return out


def test_grid_svg_originals_beside_reconstructions():
    layout = [[sheep(0), sheep(1)], [sheep(2), None], [sheep(3), sheep(4)]]
    svg = grid_svg(layout, cell_size=(120, 80), cell_margin=5)
    root = ET.fromstring(svg)
    assert float(root.get("width")) == 240 and float(root.get("height")) == 240
    cells = _cells(root, 0, 0, 120, 80)
    assert sorted(cells) == [(0, 0), (0, 1), (1, 0), (2, 0), (2, 1)]
    for (r, c), pts in cells.items():
        s = layout[r][c]
        # the path is the sketch's points, scaled uniformly and centred in the cell
        want = np.cumsum(s[:, 0:2].astype(np.float64), axis=0)
        ex, ey = extent(s)
        scale = min((120 - 11) / ex, (80 - 11) / ey)
        centre = (want.min(0) + want.max(0)) / 2
        want = (want - centre) * scale + [c * 120 + 60, r * 80 + 40]
        np.testing.assert_allclose(pts, want, atol=2e-3)
        # fits: touches the cell's inner box (margin + half the stroke) on the limiting side
        span = np.ptp(pts, axis=0)
        assert max(span[0] / 109, span[1] / 69) == pytest.approx(1, abs=1e-4)


def test_grid_svg_temperature_sweep_labels():
    temps = ["0.1", "0.5", "1.0"]
    layout = [[sheep(3 * t + k) for k in range(3)] for t in range(3)]
    root = ET.fromstring(grid_svg(layout, cell_size=64, labels=[f"τ={t}" for t in temps],
                                  column_labels=["a", "b", "c"], label_width=50, font_size=10))
    texts = root.findall(SVG_NS + "text")
    assert [t.text for t in texts] == ["τ=0.1", "τ=0.5", "τ=1.0", "a", "b", "c"]
    assert float(root.get("width")) == 50 + 3 * 64 and float(root.get("height")) == 20 + 3 * 64
    # row labels sit in the label column, level with their row
    for r, t in enumerate(texts[:3]):
        assert float(t.get("x")) <= 50 and 20 + r * 64 <= float(t.get("y")) <= 20 + (r + 1) * 64
    assert len(_cells(root, 50, 20, 64, 64)) == 9


def test_grid_from_list_interpolation_rows(tmp_path):
    sketches = [sheep(i) for i in range(5)]
    layout = grid_from_list(sketches, 3)
    assert [len(row) for row in layout] == [3, 3] and layout[1][2] is None
    root = ET.fromstring(grid_svg(layout, cell_size=50))
    assert len(_cells(root, 0, 0, 50, 50)) == 5
    target = save_grid_svg(layout, tmp_path / "g" / "grid.svg", cell_size=50)
    assert target.read_text(encoding="utf-8") == grid_svg(layout, cell_size=50)


@pytest.mark.parametrize("n, shape", [(1, (1, 1)), (2, (1, 2)), (5, (2, 3)), (9, (3, 3)), (16, (4, 4)), (17, (4, 5))])
def test_grid_from_list_is_square_without_columns(n, shape):
    layout = grid_from_list([sheep(i % 5) for i in range(n)])
    assert (len(layout), len(layout[0])) == shape and sum(c is not None for row in layout for c in row) == n


def test_grid_svg_bad_layouts():
    with pytest.raises(ValueError, match="rows of sketches|row"):
        grid_svg([sheep(0), sheep(1)])  # a flat list is not rows
    with pytest.raises(ValueError, match="labels"):
        grid_svg([[sheep(0)], [sheep(1)]], labels=["only one"])
    with pytest.raises(ValueError, match="no cells"):
        grid_svg([])
    with pytest.raises(ValueError, match=r"sketches\[0\]\[1\]"):
        grid_svg([[sheep(0), np.zeros((4, 2))]])
    with pytest.raises(ValueError, match="columns"):
        grid_from_list([sheep(0)], 0)


# ------------------------------------------------------------------------------------------ PNG


@pytest.mark.parametrize("i", [0, 1, 3, 8])
def test_png_fits_with_margin_and_aspect(i):
    s = sheep(i)
    img = render_png(s, size=200, stroke_width=2, margin=20)
    assert img.size == (200, 200)
    a = np.asarray(img)
    assert dark(img).sum() > 200
    border = 19
    assert (a[:border] == 255).all() and (a[-border:] == 255).all()
    assert (a[:, :border] == 255).all() and (a[:, -border:] == 255).all()
    x0, y0, x1, y1 = ink_box(img)
    ex, ey = extent(s)
    # ink = scaled points + the stroke width; the limiting side spans the box inside the margin
    assert max(x1 - x0, y1 - y0) == pytest.approx(160, abs=2)
    assert (x1 - x0 - 2) / (y1 - y0 - 2) == pytest.approx(ex / ey, rel=0.04)
    # centred
    assert (x0 + x1) / 2 == pytest.approx(100, abs=1.5) and (y0 + y1) / 2 == pytest.approx(100, abs=1.5)


def test_png_non_square_rgb_and_file(tmp_path):
    s = sheep(5)
    img = render_png(s, size=(300, 120), margin=10, mode="RGB")
    assert img.size == (300, 120) and img.mode == "RGB"
    x0, y0, x1, y1 = ink_box(img)
    ex, ey = extent(s)
    assert (x1 - x0 - 2) / (y1 - y0 - 2) == pytest.approx(ex / ey, rel=0.05)
    assert x0 >= 9 and y0 >= 9 and x1 <= 291 and y1 <= 111
    target = save_png(s, tmp_path / "a" / "b.png", size=(300, 120), margin=10)
    with Image.open(target) as back:
        assert back.format == "PNG" and back.size == (300, 120)
        np.testing.assert_array_equal(np.asarray(back.convert("L")), np.asarray(render_png(s, (300, 120), margin=10)))
    assert [p.name for p in target.parent.iterdir()] == ["b.png"]


def test_png_empty_sketch_is_blank():
    img = render_png(np.zeros((0, 3)), size=64)
    assert img.size == (64, 64) and (np.asarray(img) == 255).all()


def test_grid_png_cells(tmp_path):
    layout = [[sheep(0), None, sheep(1)], [None, sheep(2)]]
    img = grid_png(layout, cell_size=96, labels=["originals", "samples"], label_width=70, borders=False)
    assert img.size == (70 + 3 * 96, 2 * 96)
    mask = dark(img)
    for r in range(2):
        for c in range(3):
            cell = mask[r * 96:(r + 1) * 96, 70 + c * 96:70 + (c + 1) * 96]
            filled = c < len(layout[r]) and layout[r][c] is not None
            assert cell.any() == filled, (r, c)
            if filled:  # the cell is render_png of its sketch
                want = np.asarray(render_png(layout[r][c], size=96))
                np.testing.assert_array_equal(np.asarray(img)[r * 96:(r + 1) * 96, 70 + c * 96:70 + (c + 1) * 96], want)
    assert mask[:, :70].any()  # the labels are drawn
    target = save_grid_png(layout, tmp_path / "grid.png", cell_size=96)
    with Image.open(target) as back:
        assert back.size == (3 * 96, 2 * 96)


def test_grid_cells_that_hold_a_sketch_are_framed():
    """A one-point sketch in a grid reads as a result: every cell with a sketch has a light grey
    frame; blank cells (None, an empty sketch) have none, and the frame is never mistaken for ink."""
    dot = np.array([[0.0, 0.0, 1.0]])
    layout = [[sheep(0), dot], [np.zeros((0, 3)), None]]
    img = np.asarray(grid_png(layout, cell_size=64))
    for r, c in [(0, 0), (0, 1)]:
        cell = img[r * 64:(r + 1) * 64, c * 64:(c + 1) * 64]
        edges = [cell[0, 5:-5], cell[-1, 5:-5], cell[5:-5, 0], cell[5:-5, -1]]
        assert all((e == 200).all() for e in edges), (r, c)
    assert (img[64:] == 255).all()  # the blank cells stay white
    assert dark(Image.fromarray(img[:64, 64:])).sum() < 30  # the one-point sketch: a dot inside its frame
    root = ET.fromstring(grid_svg(layout, cell_size=50))
    frames = [e for e in root.iter(SVG_NS + "rect") if e.get("class") == "cell-border"]
    assert sorted((float(f.get("x")), float(f.get("y"))) for f in frames) == [(0.5, 0.5), (50.5, 0.5)]
    assert not [e for e in ET.fromstring(grid_svg(layout, cell_size=50, borders=False)).iter(SVG_NS + "rect")
                if e.get("class") == "cell-border"]


# ----------------------------------------------------------------- two colours: given + continuation
# A completion's picture: the first `given` points black, the rest in ACCENT. The sketches picked
# have k where the pen is down at point k - 1 (the joining segment is the continuation's) and k
# where it was lifted (the continuation starts a stroke of its own).

ACCENT_RGB = tuple(int(ACCENT[i:i + 2], 16) for i in (1, 3, 5))


def _pen_down_before(s: np.ndarray, k: int) -> bool:
    """Whether point k is reached with the pen down (point k - 1 did not lift it)."""
    return 0 < k < len(s) and s[k - 1, 2] == 0


def _given_cases():
    """(sketch index, k) with both kinds of cut, the ends and beyond."""
    s = sheep(0)
    lifts = np.nonzero(s[:-1, 2] == 1)[0]
    lifted = int(lifts[1]) + 1  # point k starts a new stroke
    down = int(lifts[1]) - 3  # inside a stroke
    assert not _pen_down_before(s, lifted) and _pen_down_before(s, down)
    return [(0, lifted), (0, down), (0, 1), (0, 0), (0, len(s)), (0, len(s) + 5), (8, 40), (3, 17)]


def _split_paths(root, ident_prefix=None):
    """(given path, continuation path) elements of an SVG (None where absent), checked for colour and class."""
    given = cont = None
    for path in root.iter(SVG_NS + "path"):
        if ident_prefix is not None and not (path.get("id") or "").startswith(ident_prefix):
            continue
        assert path.get("fill") == "none"
        if path.get("class") == "continuation":
            assert cont is None and path.get("stroke") == ACCENT
            cont = path
        else:
            assert given is None and path.get("class") == "given" and path.get("stroke") == "black"
            given = path
    return given, cont


@pytest.mark.parametrize("i, k", _given_cases())
def test_svg_given_and_continuation_line_up_with_the_one_colour_path(i, k):
    s = sheep(i)
    full = parse_path(ET.fromstring(sketch_to_svg(s)).find(SVG_NS + "path").get("d"))
    # full[0] is the move to the origin, full[j + 1] reaches point j
    given, cont = _split_paths(ET.fromstring(sketch_to_svg(s, given=k)))
    n_given = min(k, len(s))
    if n_given == 0:
        assert given is None
    else:  # the given part is the one-colour path's first k points, command for command
        g = parse_path(given.get("d"))
        assert [c for c, _, _ in g] == [c for c, _, _ in full[:n_given + 1]]
        np.testing.assert_allclose([p[1:] for p in g], [p[1:] for p in full[:n_given + 1]], atol=2e-3)
    if k >= len(s):
        assert cont is None
        return
    c = parse_path(cont.get("d"))
    joined = _pen_down_before(s, k)
    first = k - 1 if joined else k  # the continuation's path starts here (a move)
    assert c[0][0] == "M" and len(c) == len(s) - first
    # then the one-colour path's commands and positions for points first+1 ..: a line to point k
    # when the pen was down (the joining segment), else point k is the move itself
    assert [cmd for cmd, _, _ in c[1:]] == [cmd for cmd, _, _ in full[first + 2:]]
    if joined:
        assert c[1][0] == "l"
    np.testing.assert_allclose([p[1:] for p in c], [p[1:] for p in full[first + 1:]], atol=2e-3)


def _two_strokes() -> np.ndarray:
    """A hand-made sketch: point 0, a stroke right to point 2 and down to point 3 (pen lifted), then a
    stroke from point 4 below: points 0..3 = (0,0) (40,0) (80,0) (80,40); 4..5 = (0,80) (80,80)."""
    return np.array([[0, 0, 0], [40, 0, 0], [40, 0, 0], [0, 40, 1], [-80, 40, 0], [80, 0, 1]], dtype=float)


def test_the_joining_segment_belongs_to_the_continuation_only_when_the_pen_is_down():
    s = _two_strokes()
    # k = 2: the pen is down from point 1 to point 2, so the continuation starts at point 1 with that segment
    given, cont = _split_paths(ET.fromstring(sketch_to_svg(s, factor=1, margin=0, given=2)))
    assert [(cmd, x, y) for cmd, x, y in parse_path(given.get("d"))] == [("M", 0, 0), ("m", 0, 0), ("l", 40, 0)]
    assert parse_path(cont.get("d")) == [("M", 40, 0), ("l", 80, 0), ("l", 80, 40), ("m", 0, 80), ("l", 80, 80)]
    # k = 4: point 3 lifted the pen, so the given part ends at point 3 and the continuation is a new stroke
    given, cont = _split_paths(ET.fromstring(sketch_to_svg(s, factor=1, margin=0, given=4)))
    assert parse_path(given.get("d"))[-1] == ("l", 80, 40)
    assert parse_path(cont.get("d")) == [("M", 0, 80), ("l", 80, 80)]
    # the same in pixels (size 100, margin 9 + half the stroke 1: point (x, y) lands on pixel (10 + x, 10 + y))
    for k in (2, 4):
        img = np.asarray(render_png(s, size=100, stroke_width=2, margin=9, given=k)).astype(int)
        assert tuple(img[10, 30]) == (0, 0, 0)  # inside the segment 0 → 1 (given)
        assert tuple(img[90, 50]) == ACCENT_RGB  # the last stroke (continuation)
        # the segment 1 → 2 joins the parts when k = 2 (the continuation's), and is given when k = 4
        assert tuple(img[10, 70]) == (ACCENT_RGB if k == 2 else (0, 0, 0))
        assert tuple(img[30, 90]) == (ACCENT_RGB if k == 2 else (0, 0, 0))  # 2 → 3
        assert (img[60:80, 40:60] == 255).all()  # nothing joins point 3 (90, 50) to point 4 (10, 90)


def _pixel_segments(s: np.ndarray, size: int, inset: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per point, the shape it adds in render_png's pixel coordinates: (previous point, point) when the pen
    was down, else (point, point), a dot."""
    xy = np.cumsum(s[:, 0:2].astype(np.float64), axis=0)
    lo, hi = xy.min(0), xy.max(0)
    scale = min((size - 2 * inset) / e for e in hi - lo if e > 0)
    pts = (xy - (lo + hi) / 2) * scale + size / 2
    return [(pts[j - 1] if _pen_down_before(s, j) else pts[j], pts[j]) for j in range(len(s))]


def _distance(size: int, segments) -> np.ndarray:
    """[size, size] distance of each pixel's centre to the nearest of the segments."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    best = np.full((size, size), np.inf)
    for a, b in segments:
        ab = b - a
        t = 0.0 if not ab.any() else np.clip(((xx - a[0]) * ab[0] + (yy - a[1]) * ab[1]) / (ab @ ab), 0, 1)
        best = np.minimum(best, np.hypot(xx - a[0] - t * ab[0], yy - a[1] - t * ab[1]))
    return best


@pytest.mark.parametrize("i, k", _given_cases())
def test_png_given_in_black_and_the_continuation_in_the_accent(i, k):
    """Exactly the same pixels carry ink as in the one-colour image (tolerance 0): both draw the same
    shapes on the 4x canvas, whose pixels are ink or white, and a pixel is non-white as soon as one of
    its 16 subpixels is ink, whatever its colour (one ACCENT subpixel alone makes G 241).  Accent pixels
    lie only within the stroke (radius 1) + 1.5 px of the continuation's segments; the ink farther
    than 3.5 px from them is grey (R = G = B) and matches the one-colour image."""
    s, size = sheep(i), 160
    one = np.asarray(render_png(s, size=size, stroke_width=2, margin=12))
    img = render_png(s, size=size, stroke_width=2, margin=12, given=k)
    assert img.mode == "RGB" and img.size == (size, size)
    rgb = np.asarray(img).astype(int)
    np.testing.assert_array_equal((rgb < 255).any(axis=2), one < 255)
    accent = rgb[..., 0] > rgb[..., 1] + 8
    grey = (rgb[..., 0] == rgb[..., 1]) & (rgb[..., 1] == rgb[..., 2])
    assert (accent | grey).all()
    segments = _pixel_segments(s, size, 12 + 1)
    if k >= len(s):  # all given: the one-colour image in RGB
        assert not accent.any()
        np.testing.assert_array_equal(rgb[..., 0], one)
        return
    near = _distance(size, segments[k:])
    assert accent.sum() > 20 and (near[accent] <= 2.5).all()
    far = near > 3.5
    assert grey[far].all()
    np.testing.assert_array_equal(rgb[..., 0][far], one[far])
    if k > 1:  # the given part is drawn, black where it is far from the continuation (k = 1: the one given
        # point is inside the round end of the continuation's first segment, which is drawn over it)
        given_ink = far & (_distance(size, segments[:k]) <= 0.5)
        assert given_ink.sum() > 20 and (rgb[given_ink] < 128).all()
        assert (rgb[given_ink] == 0).all(axis=1).mean() > 0.8
    # the solid accent colour is reached inside the continuation's strokes
    assert (rgb[accent] == ACCENT_RGB).all(axis=1).sum() > 10
    # mode 'L' gives the two-colour picture in grayscale
    np.testing.assert_array_equal(np.asarray(render_png(s, size=size, stroke_width=2, margin=12, given=k, mode="L")),
                                  np.asarray(img.convert("L")))


def test_png_and_svg_files_with_given(tmp_path):
    s = sheep(1)
    target = save_png(s, tmp_path / "c.png", size=96, given=20)
    with Image.open(target) as back:
        assert back.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(back), np.asarray(render_png(s, size=96, given=20)))
    assert save_svg(s, tmp_path / "c.svg", given=20).read_text(encoding="utf-8") == sketch_to_svg(s, given=20)


def test_grid_svg_given_applies_to_every_cell():
    k = 15
    layout = [[sheep(0), sheep(1)], [None, sheep(2)]]
    plain = ET.fromstring(grid_svg(layout, cell_size=90, cell_margin=4))
    root = ET.fromstring(grid_svg(layout, cell_size=90, cell_margin=4, given=k))
    assert len(root.findall(SVG_NS + "path")) == 6
    for r, c in [(0, 0), (0, 1), (1, 1)]:
        s = layout[r][c]
        want = parse_path(plain.find(f"{SVG_NS}path[@id='cell-{r}-{c}']").get("d"))
        given, cont = _split_paths(root, f"cell-{r}-{c}")
        assert given.get("id") == f"cell-{r}-{c}" and cont.get("id") == f"cell-{r}-{c}-continuation"
        g, t = parse_path(given.get("d")), parse_path(cont.get("d"))
        # fitted together: the given points then the continuation's (less the joining point) are the cell's
        joined = _pen_down_before(s, k)
        pts = [p[1:] for p in g] + [p[1:] for p in t[1 if joined else 0:]]
        assert len(pts) == len(s) == len(want)
        np.testing.assert_allclose(pts, [p[1:] for p in want], atol=2e-3)
        assert [cmd for cmd, _, _ in g] == [cmd for cmd, _, _ in want[:k]]


def test_grid_png_given_applies_to_every_cell(tmp_path):
    k = 15
    layout = [[sheep(0), None], [sheep(1), sheep(2)]]
    kw = dict(cell_size=80, labels=["a", "b"], label_width=20)
    one = np.asarray(grid_png(layout, **kw))
    img = grid_png(layout, given=k, **kw)
    assert img.mode == "RGB" and img.size == (20 + 2 * 80, 2 * 80)
    rgb = np.asarray(img)
    np.testing.assert_array_equal((rgb < 255).any(axis=2), one < 255)  # ink, frames and labels alike
    for r, c in [(0, 0), (1, 0), (1, 1)]:
        cell = rgb[r * 80:(r + 1) * 80, 20 + c * 80:20 + (c + 1) * 80]
        want = np.asarray(render_png(layout[r][c], size=80, given=k))
        np.testing.assert_array_equal(cell[1:-1, 1:-1], want[1:-1, 1:-1])  # inside the frame
        assert (cell[0, 5:-5] == 200).all()  # the grey frame stays grey
    assert (rgb[:80, 100:] == 255).all()  # the empty cell
    target = save_grid_png(layout, tmp_path / "g.png", given=k, **kw)
    with Image.open(target) as back:
        assert back.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(back), rgb)
    assert save_grid_svg(layout, tmp_path / "g.svg", given=k).read_text(encoding="utf-8") == grid_svg(layout, given=k)


@pytest.mark.parametrize("bad", [-1, 2.0, 1.5, "3", True, [3], np.float64(2)])
def test_bad_given_is_named(bad, tmp_path):
    s, layout = sheep(0), [[sheep(0)]]
    calls = [
        lambda: sketch_to_svg(s, given=bad), lambda: render_png(s, given=bad),
        lambda: grid_svg(layout, given=bad), lambda: grid_png(layout, given=bad),
        lambda: save_svg(s, tmp_path / "x.svg", given=bad), lambda: save_png(s, tmp_path / "x.png", given=bad),
        lambda: save_grid_svg(layout, tmp_path / "g.svg", given=bad),
        lambda: save_grid_png(layout, tmp_path / "g.png", given=bad),
        lambda: save_gif(s, tmp_path / "x.gif", given=bad),
    ]
    for call in calls:
        with pytest.raises(ValueError, match="given must be a whole number >= 0"):
            call()
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------ GIF


def _frames(path):
    with Image.open(path) as im:
        frames, durations = [], []
        for k in range(im.n_frames):
            im.seek(k)
            frames.append(np.asarray(im.convert("L")).copy())
            durations.append(im.info["duration"])
    return frames, durations


def test_gif_draws_progressively(tmp_path):
    s = sheep(8)  # 136 points: several per frame to stay within 100 frames
    target = save_gif(s, tmp_path / "anim" / "sheep.gif", size=128, frame_ms=50, hold_ms=1500)
    with Image.open(target) as im:
        assert im.format == "GIF" and im.size == (128, 128) and 1 < im.n_frames <= 100
        assert im.info.get("loop") == 0
    frames, durations = _frames(target)
    counts = [int((f < 128).sum()) for f in frames]
    assert counts[0] > 0 and all(a <= b for a, b in zip(counts, counts[1:]))
    assert counts[-1] > counts[0]
    final = np.asarray(render_png(s, size=128))
    assert np.abs(frames[-1].astype(int) - final).max() <= 1
    assert durations[:-1] == [50] * (len(frames) - 1) and durations[-1] == 1500


def test_gif_points_per_frame(tmp_path):
    s = sheep(4)  # 44 points, one stroke
    target = save_gif(s, tmp_path / "a.gif", size=64, points_per_frame=4, frame_ms=20, hold_ms=500)
    frames, durations = _frames(target)
    assert 1 < len(frames) <= math.ceil(len(s) / 4)
    assert durations[-1] == 500 and set(durations[:-1]) == {20}
    frames2, _ = _frames(save_gif(s, tmp_path / "b.gif", size=64, points_per_frame=1, max_frames=10))
    assert 1 < len(frames2) <= 10


def test_gif_with_given_draws_the_continuation_last(tmp_path):
    s, k = sheep(4), 20  # 44 points, one stroke
    frames = gif_frames(s, size=64, given=k)
    final = np.asarray(render_png(s, size=64, given=k))
    assert all(f.mode == "RGB" for f in frames)
    np.testing.assert_array_equal(np.asarray(frames[-1]), final)
    reddish = [bool((np.asarray(f).astype(int)[..., 0] > np.asarray(f).astype(int)[..., 1] + 8).any()) for f in frames]
    assert reddish[-1] and not reddish[0] and reddish == sorted(reddish)  # black first, then the accent
    target = save_gif(s, tmp_path / "c.gif", size=64, given=k)
    with Image.open(target) as im:
        im.seek(im.n_frames - 1)
        back = np.asarray(im.convert("RGB")).astype(int)
    assert np.abs(back - final).max() <= 24  # GIF's palette: 256 colours per frame


# ------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", [
    None, "sheep", np.zeros((5, 2)), np.zeros((2, 5, 3)), [[0, 1, 0], [2, 3]], np.array([[0, 1, 0]], dtype=object),
    np.array([[1.0, np.nan, 0.0]]), np.ones((3, 3), dtype=bool),
], ids=["none", "str", "n2", "3d", "ragged", "object", "nan", "bool"])
def test_bad_input_errors(bad, tmp_path):
    for fn in (sketch_to_svg, render_png):
        with pytest.raises(ValueError) as err:
            fn(bad)
        assert "\n" not in str(err.value) and "strokes" in str(err.value)
    with pytest.raises(ValueError):
        save_gif(bad, tmp_path / "x.gif")
    with pytest.raises(ValueError):
        save_png(bad, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []


def test_bad_parameters():
    s = sheep(0)
    with pytest.raises(ValueError, match="factor"):
        sketch_to_svg(s, factor=0)
    with pytest.raises(ValueError, match="room"):
        render_png(s, size=20, margin=10)
    with pytest.raises(ValueError, match="size"):
        render_png(s, size=(10, 0))
    with pytest.raises(ValueError, match="mode"):
        render_png(s, mode="CMYK")
