"""Tests for sketchrnn.data.npz: safe loading and atomic saving of .npz datasets."""

from __future__ import annotations

import io
import os
import shlex
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from sketchrnn.data.npz import DataFileError, load_npz, save_npz

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
DATA = SHARED / "data"

REAL_FILES = {
    # path: ({split: count}, element dtype)
    DATA / "aaron_sheep.npz": ({"train": 7400, "valid": 300, "test": 300}, np.int16),
    DATA / "omniglot.npz": ({"train": 30000, "valid": 1000, "test": 1000}, np.int16),
    DATA / "short_kanji.npz": ({"train": 10000, "valid": 600, "test": 500}, np.int16),
    DATA / "kanji.rdp100.npz": ({"train": 10358, "valid": 600, "test": 500}, np.float64),
    SHARED / "golden" / "tf" / "aaron_sheep_subset_le60.npz": (
        {"train": 40, "valid": 8, "test": 8},
        np.int16,
    ),
}


def _require(path: Path) -> Path:
    assert path.is_file(), f"shared data file {path} is not present"
    return path


_cache: dict[Path, dict[str, list[np.ndarray]]] = {}


def _loaded(path: Path) -> dict[str, list[np.ndarray]]:
    if path not in _cache:
        _cache[path] = load_npz(_require(path))
    return _cache[path]


def _assert_one_line_error(excinfo: pytest.ExceptionInfo, path: Path) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and "\r" not in message
    assert message.startswith(str(path))
    return message


# ---------------------------------------------------------------------------
# Helpers that build hand-made .npz files.


def _object_npy(pickle_bytes: bytes, length: int = 1) -> bytes:
    """A .npy member with a valid object-dtype header followed by ``pickle_bytes``."""
    fp = io.BytesIO()
    npy_format.write_array_header_1_0(
        fp, {"descr": "|O", "fortran_order": False, "shape": (length,)}
    )
    return fp.getvalue() + pickle_bytes


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _binunicode(text: str) -> bytes:
    raw = text.encode("utf8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def _call_pickle(module: str, name: str, *args: str) -> bytes:
    """Protocol-2 pickle bytes for ``module.name(*args)`` (string arguments)."""
    body = b"\x80\x02" + f"c{module}\n{name}\n".encode()
    body += b"(" + b"".join(_binunicode(a) for a in args) + b"t"
    return body + b"R."


def _system_npz(tmp_path: Path, module: str, marker: Path) -> Path:
    command = f"touch {shlex.quote(str(marker))}"
    payload = _call_pickle(module, "system", command)
    return _write_zip(tmp_path / f"evil_{module}.npz", {"train.npy": _object_npy(payload)})


# ---------------------------------------------------------------------------
# Real datasets


@pytest.mark.parametrize("path", list(REAL_FILES), ids=lambda p: p.name)
def test_real_files_load_with_expected_counts_dtypes_and_shapes(path: Path) -> None:
    counts, dtype = REAL_FILES[path]
    splits = _loaded(path)
    assert {k: len(v) for k, v in splits.items()} == counts
    for sketches in splits.values():
        for sketch in sketches:
            assert isinstance(sketch, np.ndarray)
            assert sketch.dtype == dtype
            assert sketch.ndim == 2 and sketch.shape[1] == 3 and sketch.shape[0] >= 1


@pytest.mark.parametrize("name", ["aaron_sheep.npz", "kanji.rdp100.npz"])
def test_real_files_match_numpy_unsafe_load(name: str) -> None:
    path = DATA / name
    ours = _loaded(path)
    with np.load(_require(path), encoding="latin1", allow_pickle=True) as reference:
        assert sorted(reference.files) == sorted(ours)
        for split in reference.files:
            expected = reference[split]
            assert len(expected) == len(ours[split])
            for mine, theirs in zip(ours[split], expected):
                assert mine.dtype == theirs.dtype
                assert mine.shape == theirs.shape
                np.testing.assert_array_equal(mine, theirs)


# ---------------------------------------------------------------------------
# Hostile pickles


@pytest.mark.parametrize("module", ["os", "posix"])
def test_pickle_calling_system_is_refused_and_not_run(tmp_path: Path, module: str) -> None:
    marker = tmp_path / "pwned"
    path = _system_npz(tmp_path, module, marker)
    with pytest.raises(DataFileError) as excinfo:
        load_npz(path)
    message = _assert_one_line_error(excinfo, path)
    assert "refusing to load" in message
    assert f"{module}.system" in message
    assert "train.npy" in message
    assert not marker.exists()


def test_crafted_system_pickle_really_is_hostile(tmp_path: Path) -> None:
    """Control: the same file *does* run its command under an unsafe np.load."""
    marker = tmp_path / "ran"
    path = _system_npz(tmp_path, "os", marker)
    with np.load(path, allow_pickle=True) as unsafe:
        try:
            unsafe["train"]
        except Exception:
            pass  # os.system returns an int, which np.load may reject afterwards
    assert marker.exists()


def test_codecs_encode_with_other_encoding_is_refused(tmp_path: Path) -> None:
    payload = _call_pickle("_codecs", "encode", "abc", "utf-16")
    path = _write_zip(tmp_path / "codecs.npz", {"train.npy": _object_npy(payload)})
    with pytest.raises(DataFileError) as excinfo:
        load_npz(path)
    message = _assert_one_line_error(excinfo, path)
    assert "_codecs.encode" in message


def test_other_codecs_function_is_refused(tmp_path: Path) -> None:
    payload = _call_pickle("_codecs", "decode", "abc", "latin1")
    path = _write_zip(tmp_path / "codecs2.npz", {"train.npy": _object_npy(payload)})
    with pytest.raises(DataFileError) as excinfo:
        load_npz(path)
    message = _assert_one_line_error(excinfo, path)
    assert "_codecs.decode" in message


def test_calling_ndarray_directly_is_refused(tmp_path: Path) -> None:
    # ndarray(shape, dtype, buffer) could forge object pointers from raw bytes.
    payload = (
        b"\x80\x02cnumpy\nndarray\n(K\x01\x85"
        + _binunicode("O")
        + b"C\x08AAAAAAAAtR."
    )
    path = _write_zip(tmp_path / "ndarray.npz", {"train.npy": _object_npy(payload)})
    with pytest.raises(DataFileError) as excinfo:
        load_npz(path)
    message = _assert_one_line_error(excinfo, path)
    assert "refusing to load" in message and "numpy.ndarray" in message


# ---------------------------------------------------------------------------
# Broken or wrong files


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.npz"
    with pytest.raises(DataFileError) as excinfo:
        load_npz(path)
    assert "no such file" in _assert_one_line_error(excinfo, path)


def test_truncated_npz(tmp_path: Path) -> None:
    data = _require(DATA / "aaron_sheep.npz").read_bytes()
    path = tmp_path / "truncated.npz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataFileError) as excinfo:
        load_npz(path)
    _assert_one_line_error(excinfo, path)


def test_not_a_zip(tmp_path: Path) -> None:
    path = tmp_path / "cat.npz"
    path.write_text('{"word": "cat", "drawing": "oops"}\n{"word": "dog"}\n')
    with pytest.raises(DataFileError) as excinfo:
        load_npz(path)
    assert "not a valid .npz" in _assert_one_line_error(excinfo, path)


def test_corrupt_member_crc(tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    with zipfile.ZipFile(good, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("train.npy", _object_npy(b"\x80\x02]q\x00." + b"x" * 64))
    data = bytearray(good.read_bytes())
    spot = data.index(b"x" * 64) + 10
    data[spot] ^= 0xFF
    path = tmp_path / "crc.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataFileError) as excinfo:
        load_npz(path)
    assert "train.npy" in _assert_one_line_error(excinfo, path)


def test_garbage_after_object_header(tmp_path: Path) -> None:
    path = _write_zip(tmp_path / "garbage.npz", {"train.npy": _object_npy(b"\x80\x02junk")})
    with pytest.raises(DataFileError) as excinfo:
        load_npz(path)
    _assert_one_line_error(excinfo, path)


def test_wrong_shaped_strokes(tmp_path: Path) -> None:
    column = np.empty(2, dtype=object)
    column[0] = np.zeros((5, 3), np.int16)
    column[1] = np.zeros((4, 2), np.int16)
    path = tmp_path / "shape.npz"
    np.savez(path, train=column)
    with pytest.raises(DataFileError) as excinfo:
        load_npz(path)
    message = _assert_one_line_error(excinfo, path)
    assert "train[1]" in message and "(4, 2)" in message


def test_string_array_at_top_level(tmp_path: Path) -> None:
    path = tmp_path / "strings.npz"
    np.savez(path, train=np.array(["cat", "dog"]))
    with pytest.raises(DataFileError) as excinfo:
        load_npz(path)
    assert "train" in _assert_one_line_error(excinfo, path)


def test_string_arrays_inside_object_array(tmp_path: Path) -> None:
    column = np.empty(1, dtype=object)
    column[0] = np.array([["a", "b", "c"]])
    path = tmp_path / "strings2.npz"
    np.savez(path, train=column)
    with pytest.raises(DataFileError) as excinfo:
        load_npz(path)
    assert "train[0]" in _assert_one_line_error(excinfo, path)


def test_stacked_numeric_array_is_read_as_sketches(tmp_path: Path) -> None:
    block = np.arange(2 * 4 * 3, dtype=np.int16).reshape(2, 4, 3)
    path = tmp_path / "block.npz"
    np.savez(path, train=block)
    splits = load_npz(path)
    assert len(splits["train"]) == 2
    np.testing.assert_array_equal(splits["train"][1], block[1])


# ---------------------------------------------------------------------------
# Saving


def _sample_splits() -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    splits: dict[str, list[np.ndarray]] = {}
    for name, count in (("train", 5), ("valid", 2), ("test", 3)):
        sketches = []
        for _ in range(count):
            n = int(rng.integers(1, 20))
            xy = rng.integers(-300, 300, size=(n, 2))
            pen = rng.integers(0, 2, size=(n, 1))
            sketches.append(np.concatenate([xy, pen], axis=1))
        splits[name] = sketches
    return splits


def test_save_load_round_trip(tmp_path: Path) -> None:
    splits = _sample_splits()
    path = tmp_path / "out.npz"
    save_npz(path, splits)
    loaded = load_npz(path)
    assert list(loaded) == list(splits)
    for name, sketches in splits.items():
        assert len(loaded[name]) == len(sketches)
        for got, want in zip(loaded[name], sketches):
            assert got.dtype == np.int16
            np.testing.assert_array_equal(got, want)
    # numpy's own reader sees the official layout: 1-D object arrays of [n, 3].
    with np.load(path, allow_pickle=True) as reference:
        assert reference["train"].dtype == object
        assert reference["train"].shape == (5,)


def test_save_round_trip_uncompressed_float(tmp_path: Path) -> None:
    splits = {"train": [np.array([[0.5, -1.25, 0.0], [2.0, 3.0, 1.0]])]}
    path = tmp_path / "float.npz"
    save_npz(path, splits, compressed=False, dtype=np.float32)
    loaded = load_npz(path)
    assert loaded["train"][0].dtype == np.float32
    np.testing.assert_array_equal(loaded["train"][0], splits["train"][0])


def test_save_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "atomic.npz"
    save_npz(path, _sample_splits())
    assert sorted(os.listdir(tmp_path)) == ["atomic.npz"]
    before = path.read_bytes()

    # A failing save (non-integral values for int16) leaves the old file intact.
    with pytest.raises(ValueError):
        save_npz(path, {"train": [np.array([[0.5, 0.0, 0.0]])]})
    assert sorted(os.listdir(tmp_path)) == ["atomic.npz"]
    assert path.read_bytes() == before

    # Overwriting replaces the file completely.
    save_npz(path, {"train": [np.array([[1, 2, 0]])]})
    assert sorted(os.listdir(tmp_path)) == ["atomic.npz"]
    assert [len(v) for v in load_npz(path).values()] == [1]


def test_save_rejects_out_of_range_and_bad_shapes(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        save_npz(tmp_path / "a.npz", {"train": [np.array([[40000, 0, 0]])]})
    with pytest.raises(ValueError):
        save_npz(tmp_path / "b.npz", {"train": [np.zeros((3, 2))]})
    assert os.listdir(tmp_path) == []


def test_a_value_that_is_not_finite_is_refused_by_name(tmp_path: Path) -> None:
    """An official-layout file of float sketches with one NaN: every loss would be NaN."""
    good = np.zeros((4, 3))
    bad = good.copy()
    bad[2, 1] = np.nan
    path = tmp_path / "nan.npz"
    save_npz(path, {"train": [good, good, bad], "valid": [good], "test": [good]}, dtype=np.float64)
    with pytest.raises(DataFileError, match=r"nan.npz: train\[2\] has a value that is not a finite number \(row 2\)"):
        load_npz(path)
