"""Tests for sketchrnn.data.convert and sketchrnn.data.svg: drawings → stroke-3 datasets.

Real data: ../shared/ndjson (Quick, Draw!, CC BY 4.0 Google). Every other input is written here.
"""

from __future__ import annotations

import json
import sys
import time
import types
import warnings
from pathlib import Path

import numpy as np
import pytest

from sketchrnn.data.convert import (
    ConvertReport,
    Problem,
    ProblemLog,
    build_splits,
    convert_files,
    drawing_to_stroke3,
    is_raw_drawing,
    iter_ndjson,
    read_ndjson,
    simplify_raw,
)
from sketchrnn.data.npz import DataFileError, load_npz
from sketchrnn.data.strokes import strokes_to_lines
from sketchrnn.data.svg import read_svg

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SIMPLIFIED = SHARED / "ndjson" / "simplified"
RAW = SHARED / "ndjson" / "raw"


def _points(drawing) -> np.ndarray:
    return np.concatenate([np.column_stack([s[0], s[1]]) for s in drawing]).astype(np.float64)


def _count(drawing) -> int:
    return sum(len(s[0]) for s in drawing)


def symmetric_distance(a, b) -> float:
    """Mean over A of the distance to the nearest point of B, and vice versa, averaged (0..255 units)."""
    pa, pb = _points(a), _points(b)
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    return float((d.min(axis=1).mean() + d.min(axis=0).mean()) / 2)


def _write(path: Path, lines) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


# ---------------------------------------------------------------------------
# simplify_raw reproduces Google's simplified drawings


def test_simplify_raw_reproduces_google_simplified_drawings():
    distances, ratios, exact = [], [], 0
    ours_total = google_total = 0
    for raw_file in sorted(RAW.glob("*.ndjson")):
        google = {r["key_id"]: r["drawing"] for r in read_ndjson(SIMPLIFIED / raw_file.name)}
        for record in read_ndjson(raw_file):
            if record["key_id"] not in google:
                continue
            assert is_raw_drawing(record["drawing"])
            ours, theirs = simplify_raw(record["drawing"]), google[record["key_id"]]
            assert not is_raw_drawing(ours)
            assert len(ours) == len(theirs)  # same strokes
            distances.append(symmetric_distance(ours, theirs))
            ratios.append(_count(ours) / _count(theirs))
            ours_total += _count(ours)
            google_total += _count(theirs)
            exact += ours == theirs
    distances, ratios = np.array(distances), np.array(ratios)
    print(
        f"\nraw→simplified: {len(distances)} matched drawings, {exact} identical; "
        f"mean symmetric distance {distances.mean():.4f} (max {distances.max():.3f}); "
        f"points ours/Google total {ours_total}/{google_total} = {ours_total / google_total:.4f}, "
        f"per drawing {ratios.min():.3f}..{ratios.max():.3f} (mean {ratios.mean():.4f})"
    )
    # measured: 161 matched, 142 identical, mean 0.0158, max 0.721, total 0.9999, per drawing 0.971..1.019
    assert len(distances) == 161
    assert exact >= 135
    assert distances.mean() < 0.05
    assert distances.max() < 1.5
    assert abs(ours_total / google_total - 1) < 0.01
    assert ratios.min() > 0.95 and ratios.max() < 1.05


def test_simplify_raw_degenerate_and_range():
    # a lone point and a repeated point become two copies, as in Google's files
    assert simplify_raw([[[5.0], [7.0]]]) == [[[0, 0], [0, 0]]]
    assert simplify_raw([[[3.0, 3.0, 3.0], [1.0, 1.0, 1.0], [0, 10, 20]]]) == [[[0, 0], [0, 0]]]
    # a vertical line: x collapses to 0, y spans 0..255, the straight run keeps only its ends
    assert simplify_raw([[[10.5, 10.5, 10.5], [-4.0, 50.0, 96.0]]]) == [[[0, 0], [0, 255]]]
    # a straight stroke plus a lone dot far away
    out = simplify_raw([[[0.0, 100.0], [0.0, 50.0]], [[510.0], [510.0]]])
    assert out == [[[0, 50], [0, 25]], [[255, 255], [255, 255]]]
    with pytest.raises(ValueError, match="no points"):
        simplify_raw([])
    # the output always spans 0..255 on its larger side, in integers
    record = read_ndjson(RAW / "cat.ndjson")[0]
    pts = _points(simplify_raw(record["drawing"]))
    assert pts.min() == 0 and pts.max() == 255 and np.all(pts == np.rint(pts))


def test_is_raw_drawing():
    assert not is_raw_drawing([[[0, 255], [3, 4]]])
    assert is_raw_drawing([[[0, 255], [3, 4], [0, 10]]])  # times
    assert is_raw_drawing([[[0.5, 255], [3, 4]]])  # fractional
    assert is_raw_drawing([[[0, 256], [3, 4]]])  # beyond 255
    assert is_raw_drawing([[[-1, 25], [3, 4]]])


# ---------------------------------------------------------------------------
# stroke-3


def test_drawing_to_stroke3_first_point_is_the_origin():
    drawing = [[[10, 20, 25], [5, 5, 15]], [[40, 41], [0, 2]]]
    s = drawing_to_stroke3(drawing)
    assert s.dtype == np.int16 and s.shape == (4, 3)
    assert s.tolist() == [[10, 0, 0], [5, 10, 1], [15, -15, 0], [1, 2, 1]]
    # the official-file convention: replaying the rows from the first point gives the drawing back
    lines = strokes_to_lines(s)
    assert np.allclose(np.array(lines[0]) + [10, 5], [[20, 5], [25, 15]])
    # keep_first: Python sketch-rnn's lines_to_strokes convention (first row = absolute position)
    k = drawing_to_stroke3(drawing, keep_first=True)
    assert k.tolist() == [[10, 5, 0]] + s.tolist()
    assert [list(map(tuple, line)) for line in strokes_to_lines(k)] == [
        [(10, 5), (20, 5), (25, 15)],
        [(40, 0), (41, 2)],
    ]


def test_drawing_to_stroke3_edge_cases():
    # a lone first point still lifts the pen; later lone points are a move with the pen up after it
    assert drawing_to_stroke3([[[3], [4]], [[6, 7], [8, 9]]]).tolist() == [[0, 0, 1], [3, 4, 0], [1, 1, 1]]
    # floats are rounded as positions, so no error accumulates
    assert drawing_to_stroke3([[[0.4, 1.4, 2.4, 3.4], [0, 0, 0, 0]]]).tolist() == [[1, 0, 0], [1, 0, 0], [1, 0, 1]]
    # times are ignored
    assert drawing_to_stroke3([[[0, 1], [0, 1], [0, 99]]]).tolist() == [[1, 1, 1]]
    with pytest.raises(ValueError, match="no points"):
        drawing_to_stroke3([])
    with pytest.raises(ValueError, match="int16"):
        drawing_to_stroke3([[[0, 40000], [0, 0]]])


def test_stroke3_of_google_simplified_drawings_is_like_the_official_files():
    sketch = drawing_to_stroke3(read_ndjson(SIMPLIFIED / "cat.ndjson")[0]["drawing"])
    drawing = read_ndjson(SIMPLIFIED / "cat.ndjson")[0]["drawing"]
    assert len(sketch) == _count(drawing) - 1
    assert sketch[:, 2].sum() == len(drawing) and sketch[-1, 2] == 1
    assert np.abs(sketch[:, :2]).max() <= 255


# ---------------------------------------------------------------------------
# ndjson reading


GOOD = {"word": "cat", "countrycode": "US", "timestamp": "t", "recognized": True, "key_id": "1",
        "drawing": [[[0, 10, 20], [0, 5, 0]]]}


def _bad_file(tmp_path: Path) -> Path:
    return _write(tmp_path / "mixed.ndjson", [
        GOOD,                                                       # 1
        '{"word": "cat", "drawing": [[[0, 1], [0, 1]]',             # 2 bad json
        "",                                                         # 3 blank: ignored
        {**GOOD, "drawing": [[[0, 1, 2], [0, 1]]]},                 # 4 x/y lengths differ
        {"word": "cat"},                                            # 5 no drawing
        {**GOOD, "drawing": []},                                    # 6 empty drawing
        {**GOOD, "drawing": [[[0, 1], [0, 1]], [[], []]]},          # 7 empty stroke
        {**GOOD, "drawing": [[[0, "1"], [0, 1]]]},                  # 8 a string
        "[1, 2, 3]",                                                # 9 not an object
        {**GOOD, "drawing": [[[0.5, 1.5], [0, 1], [0, 10, 20]]]},   # 10 times of another length
        {**GOOD, "drawing": "nope"},                                # 11 not a list
        {**GOOD, "key_id": "2"},                                    # 12
    ])


def test_read_ndjson_raises_file_and_line(tmp_path):
    path = _bad_file(tmp_path)
    with pytest.raises(DataFileError) as info:
        read_ndjson(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: bad JSON") and "\n" not in message
    for lineno, record in [(4, {**GOOD, "drawing": [[[0, 1, 2], [0, 1]]]}), (5, {"word": "x"})]:
        lines = [GOOD] * (lineno - 1) + [record]
        with pytest.raises(DataFileError, match=rf"^.*bad\.ndjson:{lineno}: "):
            read_ndjson(_write(tmp_path / "bad.ndjson", lines))


def test_read_ndjson_skip_records_every_problem(tmp_path):
    path = _bad_file(tmp_path)
    log = ProblemLog()
    records = read_ndjson(path, errors="skip", problems=log)
    assert [r["key_id"] for r in records] == ["1", "2"]
    assert [p.line for p in log.problems] == [2, 4, 5, 6, 7, 8, 9, 10, 11]
    assert dict(log.counts) == {
        "bad json": 1, "length mismatch": 2, "no drawing": 1, "empty drawing": 1,
        "bad drawing": 2, "bad coordinates": 1, "not a record": 1,
    }
    assert log.total == len(log) == 9
    assert str(log.problems[1]) == f"{path}:4: stroke 0 has 3 x values but 2 y values"
    summary = log.summary(limit=2)
    assert summary.splitlines()[0].startswith("skipped 9: bad coordinates 1, bad drawing 2, bad json 1")
    assert "and 7 more" in summary
    # a callback sees problems as they come; `keep` bounds what is stored, not what is counted
    seen: list[Problem] = []
    small = ProblemLog(keep=3, callback=seen.append)
    assert len(list(iter_ndjson(path, errors="skip", problems=small))) == 2
    assert len(small.problems) == 3 and small.total == 9 and len(seen) == 9
    # without a log, nothing is dropped silently
    with pytest.warns(UserWarning, match=r"skipped 9 malformed line\(s\)"):
        read_ndjson(path, errors="skip")


def test_read_ndjson_file_errors(tmp_path):
    with pytest.raises(DataFileError, match=r"nope\.ndjson: no such file"):
        read_ndjson(tmp_path / "nope.ndjson")
    with pytest.raises(DataFileError, match="is a directory"):
        read_ndjson(tmp_path)
    with pytest.raises(ValueError, match="errors must be"):
        read_ndjson(tmp_path / "x.ndjson", errors="ignore")
    binary = tmp_path / "binary.ndjson"
    binary.write_bytes(b"\xff\xfe\x00garbage\n")
    with pytest.raises(DataFileError, match=r"binary\.ndjson:1: bad JSON"):
        read_ndjson(binary)


def test_real_files_read_cleanly():
    records = read_ndjson(SIMPLIFIED / "cat.ndjson")
    assert len(records) == 25
    assert set(records[0]) == {"word", "countrycode", "timestamp", "recognized", "key_id", "drawing"}
    assert not any(is_raw_drawing(r["drawing"]) for r in records)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(read_ndjson(RAW / "cat.ndjson", errors="skip")) == 25


# ---------------------------------------------------------------------------
# SVG

SVG_ALL = """<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" width="100mm" height="50mm" viewBox="0 0 400 200">
  <title>every shape</title>
  <g transform="translate(10,20)">
    <path d="M0 0 L10 0 C20 0 20 10 30 10 A5 5 0 0 1 40 10 Q50 0 60 10 Z m100 100 l5 5 h5 v5"/>
    <polyline points="0,0 10,10 20,0"/>
    <polygon points="0,0 10,10 20,0" transform="scale(2)"/>
    <line x1="1" y1="2" x2="3" y2="4"/>
    <rect x="5" y="5" width="10" height="20"/>
    <circle cx="50" cy="50" r="10"/>
    <ellipse cx="50" cy="50" rx="10" ry="5" transform="rotate(90 50 50)"/>
    <text x="0" y="0">ignored</text>
  </g>
  <path d="M0 0 L5 5" style="display:none"/>
  <defs><path id="p" d="M0 0 L1 1"/></defs>
  <use href="#p" x="300"/>
</svg>
"""


def _svg(tmp_path: Path, text: str, name: str = "d.svg") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_read_svg_every_shape_with_transforms(tmp_path):
    strokes = read_svg(_svg(tmp_path, SVG_ALL))
    pts = [np.column_stack(s) for s in strokes]
    assert len(pts) == 9  # path (2 subpaths), polyline, polygon, line, rect, circle, ellipse, use
    path0, path1, polyline, polygon, line, rect, circle, ellipse, use = pts
    # user units of the viewBox, every transform applied
    assert path0[0].tolist() == [10, 20] and path0[1].tolist() == [20, 20]
    assert path0[-1].tolist() == [10, 20]  # Z closes back to the start
    assert len(path0) > 10  # the cubic, the arc and the quadratic are flattened
    assert np.allclose(path1, [[110, 120], [115, 125], [120, 125], [120, 130]])  # relative m, l, h, v
    assert np.allclose(polyline, [[10, 20], [20, 30], [30, 20]])
    assert np.allclose(polygon, [[10, 20], [30, 40], [50, 20], [10, 20]])
    assert np.allclose(line, [[11, 22], [13, 24]])
    assert np.allclose(rect.min(0), [15, 25]) and np.allclose(rect.max(0), [25, 45]) and len(rect) == 5
    r = np.hypot(*(circle - [60, 70]).T)
    assert len(circle) > 16 and np.allclose(r, 10, atol=0.05)
    # the rotated ellipse is tall: x spans 5 either side, y spans 10
    assert np.allclose(ellipse.min(0), [55, 60], atol=0.05) and np.allclose(ellipse.max(0), [65, 80], atol=0.05)
    assert np.allclose(use, [[300, 0], [301, 1]])


def test_read_svg_tolerance_controls_flattening(tmp_path):
    path = _svg(tmp_path, '<svg xmlns="http://www.w3.org/2000/svg"><circle cx="0" cy="0" r="100"/></svg>')
    coarse, fine = (np.column_stack(read_svg(path, tolerance=t)[0]) for t in (0.01, 0.0005))
    assert len(fine) > 2 * len(coarse)
    for pts, tol in ((coarse, 0.01), (fine, 0.0005)):
        mids = (pts[1:] + pts[:-1]) / 2
        assert 100 - np.hypot(*mids.T).min() <= 200 * tol * 1.5  # sagitta within the tolerance


@pytest.mark.parametrize(
    "text, message",
    [
        ('<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0 L1 1"', "malformed XML"),
        ("", "malformed XML"),
        ("<html><body/></html>", "not an SVG document"),
        ('<svg xmlns="http://www.w3.org/2000/svg"><text>hi</text></svg>', "no drawable paths"),
        ('<svg xmlns="http://www.w3.org/2000/svg"><path d="M 5 5"/></svg>', "no drawable paths"),
        ('<svg xmlns="http://www.w3.org/2000/svg"><path d="M0 0 L 10 10 Lx 5"/></svg>', "malformed SVG content"),
    ],
)
def test_read_svg_errors_name_the_file(tmp_path, text, message):
    path = _svg(tmp_path, text)
    with pytest.raises(DataFileError) as info:
        read_svg(path)
    assert str(info.value).startswith(f"{path}: {message}") and "\n" not in str(info.value)


def test_read_svg_missing_file(tmp_path):
    with pytest.raises(DataFileError, match=r"nope\.svg: no such file"):
        read_svg(tmp_path / "nope.svg")


# ---------------------------------------------------------------------------
# Conversion


def test_all_344_categories_into_one_official_file(tmp_path):
    out = tmp_path / "quickdraw344.npz"
    started = time.perf_counter()
    report = convert_files(SIMPLIFIED, out, format="official", seed=0)
    seconds = time.perf_counter() - started
    print(f"\n344 categories: {report.read} drawings → {out.stat().st_size / 1e6:.2f} MB in {seconds:.2f} s\n"
          + report.summary())
    assert isinstance(report, ConvertReport)
    assert report.files == 344 and report.read == 344 * 25 and len(report.class_names) == 344
    assert report.simplified == 0 and report.problems.total == 0 and not report.filtered
    # 5% of 25 rounds to 1 per category
    assert set(report.kept["valid"].values()) == {1} and set(report.kept["test"].values()) == {1}
    assert set(report.kept["train"].values()) == {23}
    data = load_npz(out)
    assert {k: len(v) for k, v in data.items()} == {"train": 344 * 23, "valid": 344, "test": 344}
    assert all(s.dtype == np.int16 and s.shape[1] == 3 and s[-1, 2] == 1 for s in data["train"])
    assert seconds < 25


def test_splits_are_deterministic_per_seed_and_category(tmp_path):
    files = [SIMPLIFIED / "cat.ndjson", SIMPLIFIED / "dog.ndjson"]
    a = build_splits(files, seed=3, valid=5, test=0.2)
    b = build_splits(files, seed=3, valid=5, test=0.2)
    c = build_splits(files, seed=4, valid=5, test=0.2)
    assert a.class_names == ["cat", "dog"]
    assert a.report.kept == {"train": {"cat": 15, "dog": 15}, "valid": {"cat": 5, "dog": 5}, "test": {"cat": 5, "dog": 5}}
    assert a.classes["valid"].tolist() == [0] * 5 + [1] * 5
    for split in ("train", "valid", "test"):
        assert all(np.array_equal(x, y) for x, y in zip(a.splits[split], b.splits[split]))
    assert not all(np.array_equal(x, y) for x, y in zip(a.splits["valid"], c.splits["valid"]))
    # a category's split does not depend on which other categories come along
    alone = build_splits(files[:1], seed=3, valid=5, test=0.2)
    assert all(np.array_equal(x, y) for x, y in zip(alone.splits["valid"], a.splits["valid"][:5]))
    # counts larger than a category are capped; every sketch lands somewhere exactly once
    big = build_splits(files[:1], valid=20, test=20)
    assert big.report.kept == {"train": {"cat": 0}, "valid": {"cat": 20}, "test": {"cat": 5}}
    for bad in (1.0, -1, "5%", True):
        with pytest.raises(ValueError, match="valid"):
            build_splits(files, valid=bad)


def test_mixed_inputs_filters_and_report(tmp_path):
    (tmp_path / "svgs" / "boxes").mkdir(parents=True)
    _svg(tmp_path, '<svg xmlns="http://www.w3.org/2000/svg"><rect width="30" height="10"/></svg>', "svgs/boxes/a.svg")
    _svg(tmp_path, '<svg xmlns="http://www.w3.org/2000/svg"><circle r="5"/></svg>', "svgs/boxes/b.svg")
    _svg(tmp_path, "<svg", "svgs/boxes/broken.svg")
    mixed = _bad_file(tmp_path)
    inputs = [RAW / "pig.ndjson", SIMPLIFIED / "pig.ndjson", mixed, tmp_path / "svgs"]

    with pytest.raises(DataFileError, match=r"mixed\.ndjson:2: bad JSON"):
        build_splits(inputs)

    log = ProblemLog()
    result = build_splits(inputs, errors="skip", problems=log, recognized_only=True, max_len=60, valid=0, test=0)
    report = result.report
    assert report.problems is log and report.skipped["bad svg"] == 1 and log.total == 10
    assert report.files == 6 and report.read == 19 + 25 + 2 + 2
    raw_pigs = read_ndjson(RAW / "pig.ndjson")
    n_raw_recognized = sum(r["recognized"] for r in raw_pigs)
    assert report.simplified == n_raw_recognized + 2  # recognized raw pigs and the SVGs
    n_unrecognized = sum(not r["recognized"] for f in (RAW, SIMPLIFIED) for r in read_ndjson(f / "pig.ndjson"))
    assert 0 < n_unrecognized == report.filtered["not recognized"]
    assert report.filtered["too long"] > 0
    assert all(len(s) <= 60 for s in result.splits["train"])
    assert result.class_names == ["boxes", "cat", "pig"]
    assert report.kept["train"]["boxes"] == 2 and report.kept["train"]["cat"] == 2
    assert "skipped 10" in report.summary() and "not recognized" in report.summary()
    # SVGs are normalised like raw drawings: the 30x10 rectangle becomes 255 wide
    box = result.splits["train"][0]
    xy = np.cumsum(box[:, :2], axis=0)
    assert xy[:, 0].max() - min(0, xy[:, 0].min()) == 255
    # svg_category="stem" names classes after the files
    stems = build_splits(tmp_path / "svgs", errors="skip", svg_category="stem", valid=0, test=0)
    assert stems.class_names == ["a", "b"]
    # simplify=False keeps coordinates as they are (rounded): raw pig drawings stay big
    as_is = build_splits([RAW / "pig.ndjson"], simplify=False, valid=0, test=0)
    assert as_is.report.simplified == 0
    assert max(np.abs(s[:, :2]).max() for s in as_is.splits["train"]) > 255


def test_convert_files_arguments_and_inputs(tmp_path):
    with pytest.raises(ValueError, match="format"):
        convert_files(SIMPLIFIED / "cat.ndjson", tmp_path / "x.npz", format="npz")
    with pytest.raises(DataFileError, match=r"nope\.ndjson: no such file"):
        convert_files(tmp_path / "nope.ndjson", tmp_path / "x.npz", format="official")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(DataFileError, match=r"notes\.txt: unsupported input"):
        convert_files(tmp_path / "notes.txt", tmp_path / "x.npz", format="official")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataFileError, match="holds no .ndjson or .svg"):
        convert_files(tmp_path / "empty", tmp_path / "x.npz", format="official")
    with pytest.raises(ValueError, match="no sketch left"):
        convert_files(SIMPLIFIED / "cat.ndjson", tmp_path / "x.npz", format="official", max_len=1)
    assert not (tmp_path / "x.npz").exists()


def test_packed_format_calls_save_packed(tmp_path, monkeypatch):
    calls = []
    fake = types.ModuleType("sketchrnn.data.packed")
    fake.save_packed = lambda path, splits, classes, class_names: calls.append((path, splits, classes, class_names))
    monkeypatch.setitem(sys.modules, "sketchrnn.data.packed", fake)
    out = tmp_path / "two.packed"
    report = convert_files([SIMPLIFIED / "cat.ndjson", SIMPLIFIED / "dog.ndjson"], out)
    assert report.format == "packed" and report.out == out
    (path, splits, classes, class_names), = calls
    assert path == out and class_names == ["cat", "dog"]
    assert {k: len(v) for k, v in splits.items()} == {"train": 46, "valid": 2, "test": 2}
    assert {k: v.tolist() for k, v in classes.items() if k != "train"} == {"valid": [0, 1], "test": [0, 1]}
    assert classes["train"].tolist() == [0] * 23 + [1] * 23


def test_packed_format_for_real(tmp_path):
    packed = pytest.importorskip("sketchrnn.data.packed")
    files = [SIMPLIFIED / "cat.ndjson", SIMPLIFIED / "dog.ndjson"]
    out = tmp_path / "two.npz"
    convert_files(files, out)
    expected = build_splits(files)
    with packed.open_packed(out) as opened:
        assert list(opened.class_names) == ["cat", "dog"]
        for split in ("train", "valid", "test"):
            arrays = opened[split]
            assert len(arrays) == len(expected.splits[split])
            assert [arrays.read_class(i) for i in range(len(arrays))] == expected.classes[split].tolist()
            assert all(np.array_equal(arrays[i], s) for i, s in enumerate(expected.splits[split]))
