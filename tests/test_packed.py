"""The packed dataset format (sketchrnn.data.packed): round trip, refusals, training splits read
from the file (same batches and augmentation as MemorySplit, class balance), corrupt files, and
5 million sketches served with bounded resident memory."""

from __future__ import annotations

import gc
import re
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import DATA
from sketchrnn import HParams, SketchRNN
from sketchrnn.data import MemorySplit, dataset_from_splits, describe_dataset, load_dataset, read_splits
from sketchrnn.data.npz import DataFileError, load_npz
from sketchrnn.data.packed import (
    FORMAT_NAME,
    PackedWriter,
    is_packed,
    open_packed,
    save_packed,
)

SPLITS = ("train", "valid", "test")
SHEEP = DATA / "aaron_sheep.npz"


def make_sketch(rng: np.random.Generator, n: int, spread: int = 60) -> np.ndarray:
    s = np.zeros((n, 3), dtype=np.int16)
    s[:, 0:2] = rng.integers(-spread, spread + 1, size=(n, 2))
    s[:, 2] = rng.random(n) < 0.25
    s[-1, 2] = 1
    return s


def small_splits(seed: int = 0, unique_eval_lengths: bool = False):
    """Three splits of a few hundred sketches in three classes (int16, float and int32 inputs)."""
    rng = np.random.default_rng(seed)
    splits = {"train": [make_sketch(rng, int(rng.integers(2, 40))) for _ in range(300)]}
    for k, name in enumerate(("valid", "test")):
        lengths = np.arange(3, 60) + k if unique_eval_lengths else rng.integers(2, 40, size=57)
        splits[name] = [make_sketch(rng, int(n)) for n in rng.permutation(lengths)]
    classes = {name: rng.integers(0, 3, size=len(v)) for name, v in splits.items()}
    return splits, classes


def rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


# ------------------------------------------------------------------------------------------------
# 1. the format


def test_round_trip_and_plain_np_load(tmp_path):
    splits, classes = small_splits()
    splits["train"][0] = splits["train"][0].astype(np.float64)  # integral floats are fine
    splits["train"][1] = splits["train"][1].astype(np.int32)
    splits["train"][2][0, 0:2] = [3000, -32768]  # beyond ±1000 but int16: stored as is
    path = tmp_path / "three.npz"
    save_packed(path, splits, classes, ["cat", "dog", "flying saucer"])
    assert is_packed(path)
    assert not is_packed(SHEEP) and not is_packed(tmp_path / "missing.npz")

    packed = open_packed(path, verify=True)
    assert packed.class_names == ("cat", "dog", "flying saucer") and packed.version == 1
    for name in SPLITS:
        split = packed[name]
        assert len(split) == len(splits[name])
        np.testing.assert_array_equal(split.classes, classes[name])
        for i, want in enumerate(splits[name]):
            for got in (split[i], split.read(i)):
                assert got.dtype == np.int16
                np.testing.assert_array_equal(got, want)
        assert isinstance(split.points, np.memmap) and split.points.shape == (split.num_points, 3)

    # a plain, pickle-free np.load reads everything back
    with np.load(path, allow_pickle=False) as z:
        assert str(z["format"]) == FORMAT_NAME and int(z["version"]) == 1
        assert z["class_names"].dtype.kind == "U" and list(z["class_names"]) == list(packed.class_names)
        for name in SPLITS:
            points, offsets = z[f"{name}.points"], z[f"{name}.offsets"]
            assert points.dtype == np.int16 and offsets.dtype == np.int64
            got = [points[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
            assert all(np.array_equal(a, b) for a, b in zip(got, splits[name]))
            np.testing.assert_array_equal(z[f"{name}.classes"], classes[name])

    # stored, not compressed; every member's data is 64-byte aligned in the file
    with zipfile.ZipFile(path) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    for split in packed.splits.values():
        for member in (split._points, split._offsets, split._classes):
            assert member.offset % 64 == 0

    # read_splits (used by the CLI) gives the same sketches
    raw = read_splits([path])
    assert all(np.array_equal(a, b) for a, b in zip(raw["valid"], splits["valid"]))


def test_writer_streams_chunks_and_refuses_bad_data(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "w.npz"
    sketches = [make_sketch(rng, int(n)) for n in rng.integers(1, 9, size=50)]
    with PackedWriter(path, ["a", "b"]) as w:
        w.append("train", np.concatenate(sketches[:20]), [len(s) for s in sketches[:20]], 1)
        w.append_sketches("train", sketches[20:], np.arange(30) % 2)
        w.append_sketches("extra", sketches[:3], 0)  # a split outside train/valid/test
        assert w.counts() == {"train": 50, "valid": 0, "test": 0, "extra": 3}
    packed = open_packed(path)
    assert len(packed["train"]) == 50 and len(packed["valid"]) == 0 and len(packed["extra"]) == 3
    assert all(np.array_equal(packed["train"][i], s) for i, s in enumerate(sketches))
    np.testing.assert_array_equal(packed["train"].classes, [1] * 20 + [i % 2 for i in range(30)])
    before = path.read_bytes()

    good = [make_sketch(rng, 4)]
    too_big = make_sketch(rng, 4).astype(np.int32)
    too_big[2, 1] = 40000
    fractional = make_sketch(rng, 4).astype(np.float32)
    fractional[1, 0] = 0.5
    pen = make_sketch(rng, 4)
    pen[0, 2] = 2
    cases = [
        ({"train": good + [too_big]}, {"train": [0, 0]}, ["a"], "train[1]: dx/dy values in"),
        ({"train": [fractional]}, {"train": [0]}, ["a"], "non-integral"),
        ({"train": [pen]}, {"train": [0]}, ["a"], "pen values"),
        ({"train": good}, {"train": [2]}, ["a", "b"], "class ids must be in [0, 2)"),
        ({"train": [np.zeros((3, 2))]}, {"train": [0]}, ["a"], "expected [n, 3]"),
        ({"train": [np.zeros((0, 3))]}, {"train": [0]}, ["a"], "expected [n, 3]"),
        ({"train": good}, {"train": [0]}, ["a", "a"], "more than once"),
        ({"train": good}, {}, ["a"], "no class ids"),
        ({"train/x": good}, {"train/x": [0]}, ["a"], "split name"),
    ]
    for splits, classes, names, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            save_packed(path, splits, classes, names)
    assert "clamp them to ±1000" in _message(lambda: save_packed(path, {"train": [too_big]}, {"train": [0]}, ["a"]))
    # the file is untouched and no temporary file or directory is left behind
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


def _message(call) -> str:
    with pytest.raises(ValueError) as info:
        call()
    return str(info.value)


# ------------------------------------------------------------------------------------------------
# 2. training splits read from the file


def test_packed_splits_match_sketch_dataset(tmp_path):
    splits, classes = small_splits(2, unique_eval_lengths=True)
    splits["valid"][5] = splits["valid"][5].copy()
    splits["valid"][5][1, 0] = 3000  # clamped to 1000 when read
    path = tmp_path / "p.npz"
    save_packed(path, splits, classes, ["a", "b", "c"])
    packed = load_dataset(path, random_scale_factor=0.15, augment_stroke_prob=0.3, seed=7)
    ref = dataset_from_splits(splits, None, 0.15, 0.3, seed=7)

    assert packed.max_seq_len == ref.max_seq_len
    # float64 exact sums vs the reference's float32 np.std: equal up to float32 rounding
    assert packed.scale_factor == pytest.approx(ref.scale_factor, rel=2e-7)
    assert packed.scale_factor == float(np.float32(packed.scale_factor))
    for name in SPLITS:
        p, r = packed.split(name), ref.split(name)
        assert len(p) == len(r) and p.max_seq_len == r.max_seq_len
        np.testing.assert_array_equal(p.lengths(), r.lengths())
        assert p.scale_factor == packed.scale_factor
    assert packed.train.balance_classes and not packed.valid.balance_classes

    # eval batches: consecutive in length order, exactly MemorySplit's sketches at the same factor
    f = packed.scale_factor
    valid_ref = MemorySplit(splits["valid"], packed.max_seq_len, f)
    assert [b.inputs.shape for b in packed.valid.batches(16)] == [(16, packed.max_seq_len + 1, 5)] * 3
    assert packed.valid.num_batches(16, drop_last=False) == 4
    for got, want in zip(packed.valid.batches(16, drop_last=False), valid_ref.batches(16, drop_last=False)):
        np.testing.assert_array_equal(got.inputs, want.inputs)
        np.testing.assert_array_equal(got.lengths, want.lengths)
    largest = max(np.abs(packed.valid.sketch(i)[:, 0:2]).max() for i in range(len(packed.valid)))
    assert largest * f == pytest.approx(1000)  # the 3000 was clamped

    # training augmentation: the same draws from the same generator state give the same batch
    train_ref = MemorySplit(splits["train"], packed.max_seq_len, f, 0.15, 0.3, seed=99)
    packed.train.rng = np.random.RandomState(99)
    idx = [0, 5, 17, 299, 150]
    # map packed positions to the reference's (ties in length are ordered differently)
    ref_idx = []
    for i in idx:
        want = packed.train.sketch(i)
        ref_idx.append(next(j for j, s in enumerate(train_ref.sketches) if np.array_equal(s, want)))
    got = packed.train.batch_from_indices(idx)
    want = train_ref.batch_from_indices(ref_idx)
    np.testing.assert_array_equal(got.inputs, want.inputs)
    np.testing.assert_array_equal(got.lengths, want.lengths)
    assert packed.train.rng.random_sample() == train_ref.rng.random_sample()

    # an explicit max_seq_len drops longer sketches (indices only) and the factor follows
    short = load_dataset(path, max_seq_len=20, seed=0)
    short_ref = dataset_from_splits(splits, 20, seed=0)
    for name in SPLITS:
        assert len(short.split(name)) == len(short_ref.split(name)) == sum(len(s) <= 20 for s in splits[name])
    assert short.scale_factor == pytest.approx(short_ref.scale_factor, rel=2e-7)
    assert short.train.random_batch(32).inputs.shape == (32, 21, 5)

    # the same seed gives the same random batches; unbalanced draws have no repeats
    again = load_dataset(path, random_scale_factor=0.15, augment_stroke_prob=0.3, seed=7, balance_classes=False)
    twice = load_dataset(path, random_scale_factor=0.15, augment_stroke_prob=0.3, seed=7, balance_classes=False)
    for _ in range(3):
        a, b = again.train.random_batch(20), twice.train.random_batch(20)
        np.testing.assert_array_equal(a.inputs, b.inputs)
    idx = again.train.sample_indices(30)
    assert len(set(idx.tolist())) == 30


def test_class_balanced_batches(tmp_path):
    rng = np.random.default_rng(3)
    # class "rare": 10 sketches of 3 points; class "common": 1000 sketches of 7 points
    train = [make_sketch(rng, 3) for _ in range(10)] + [make_sketch(rng, 7) for _ in range(1000)]
    ids = np.array([0] * 10 + [1] * 1000)
    perm = rng.permutation(len(train))
    splits = {"train": [train[i] for i in perm], "valid": train[:5], "test": train[-5:]}
    classes = {"train": ids[perm], "valid": [0] * 5, "test": [1] * 5}
    path = tmp_path / "two.npz"
    save_packed(path, splits, classes, ["rare", "common"])

    data = load_dataset(path, random_scale_factor=0, augment_stroke_prob=0, seed=0)
    assert data.train.balance_classes
    np.testing.assert_array_equal(data.train.class_counts(), [10, 1000])
    lengths = np.concatenate([data.train.random_batch(100).lengths for _ in range(100)])
    assert set(lengths.tolist()) == {3, 7}
    rare = np.mean(lengths == 3)
    assert 0.47 < rare < 0.53, rare  # 10 000 draws: std 0.005
    idx = np.concatenate([data.train.sample_indices(100) for _ in range(20)])
    assert set(data.train.classes_of(idx[:200]).tolist()) == {0, 1}
    np.testing.assert_array_equal(data.train.classes_of(idx[:200]) == 0, data.train.lengths()[idx[:200]] == 3)
    assert len(set(idx[data.train.lengths()[idx] == 3].tolist())) == 10  # every rare sketch comes up

    off = load_dataset(path, random_scale_factor=0, augment_stroke_prob=0, seed=0, balance_classes=False)
    lengths = np.concatenate([off.train.random_batch(100).lengths for _ in range(100)])
    assert np.mean(lengths == 3) < 0.03  # ~1 %
    # turning it on afterwards builds the class groups on demand
    off.train.balance_classes = True
    assert 0.4 < np.mean(off.train.random_batch(400).lengths == 3) < 0.6

    # one class: uniform by default
    single = tmp_path / "one.npz"
    save_packed(single, splits, {k: np.zeros(len(v), int) for k, v in splits.items()}, ["only"])
    assert not load_dataset(single, seed=0).train.balance_classes

    # several packed files: splits concatenated, classes merged by name
    other = tmp_path / "other.npz"
    save_packed(other, {k: v[:4] for k, v in splits.items()}, {k: [0, 1, 0, 1] for k in splits},
                ["common", "new"])
    both = load_dataset([path, other], seed=0)
    assert both.train.class_names == ["rare", "common", "new"]
    np.testing.assert_array_equal(both.train.class_counts(), [10, 1002, 2])
    assert len(both.valid) == 5 + 4
    assert both.train.random_batch(64).inputs.shape == (64, both.max_seq_len + 1, 5)


# ------------------------------------------------------------------------------------------------
# 3. loading, the model, corrupt files and data info


def test_load_dataset_feeds_the_model(tmp_path):
    splits, classes = small_splits(4)
    path = tmp_path / "m.npz"
    save_packed(path, splits, classes, ["a", "b", "c"])
    data = load_dataset(path, seed=0)
    n_max = max(len(s) for name in SPLITS for s in splits[name])
    assert data.max_seq_len == n_max
    batch = data.train.random_batch(8)
    assert batch.inputs.shape == (8, n_max + 1, 5) and batch.inputs.dtype == np.float32
    assert len(batch) == 8 and np.all(batch.lengths <= n_max)
    np.testing.assert_array_equal(batch.inputs[:, :, 2:].sum(-1), 1)
    hps = HParams(enc_rnn_size=16, dec_rnn_size=32, z_size=8, num_mixture=3, batch_size=8, max_seq_len=n_max)
    torch.manual_seed(0)
    model = SketchRNN(hps, scale_factor=data.scale_factor)
    loss = model.compute_loss(torch.from_numpy(batch.inputs), batch.lengths, 0.5)
    loss.cost.backward()
    assert torch.isfinite(loss.cost)
    # the training loop saves and restores each split's generator
    state = data.train.rng.get_state()
    a = data.train.random_batch(4)
    data.train.rng.set_state(state)
    np.testing.assert_array_equal(data.train.random_batch(4).inputs, a.inputs)

    with pytest.raises(DataFileError, match="an official .npz cannot be mixed .* on the official files alone"):
        load_dataset([path, SHEEP])
    drawings = Path(__file__).resolve().parents[1].parent / "shared" / "ndjson" / "simplified" / "bee.ndjson"
    with pytest.raises(DataFileError, match=r"bee.ndjson: drawings cannot be mixed .*\(sketchrnn data convert\)"):
        load_dataset([path, drawings])
    with pytest.raises(ValueError, match="packed files"):
        load_dataset(SHEEP, balance_classes=True)


def _one_line_error(call, *fragments: str) -> str:
    with pytest.raises(DataFileError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_corrupt_packed_files_give_clear_errors(tmp_path):
    splits, classes = small_splits(5)
    path = tmp_path / "good.npz"
    save_packed(path, splits, classes, ["a", "b", "c"])
    data = path.read_bytes()

    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    _one_line_error(lambda: load_dataset(truncated), str(truncated), "truncated or corrupt")
    _one_line_error(lambda: open_packed(truncated), str(truncated), "truncated or corrupt")

    # a flipped offset inside the train offsets: found when the split is built
    packed = open_packed(path)
    offset_pos = packed["train"]._offsets.offset + 8 * 10
    bad = bytearray(data)
    bad[offset_pos : offset_pos + 8] = struct.pack("<q", 10**9)
    broken = tmp_path / "offsets.npz"
    broken.write_bytes(bytes(bad))
    _one_line_error(lambda: load_dataset(broken), str(broken), "train offsets", "corrupt")
    _one_line_error(lambda: open_packed(broken, verify=True), str(broken), "CRC")

    # a class id out of range
    bad = bytearray(data)
    pos = packed["valid"]._classes.offset
    bad[pos : pos + 2] = struct.pack("<h", 7)
    wrong_class = tmp_path / "classes.npz"
    wrong_class.write_bytes(bytes(bad))
    _one_line_error(lambda: load_dataset(wrong_class), str(wrong_class), "class ids outside")

    # a pen value that is neither 0 nor 1 (found by the training scan)
    bad = bytearray(data)
    pos = packed["train"]._points.offset + 4
    bad[pos : pos + 2] = struct.pack("<h", 5)
    pen = tmp_path / "pen.npz"
    pen.write_bytes(bytes(bad))
    _one_line_error(lambda: load_dataset(pen), str(pen), "pen values")

    # the same members compressed: np.load reads it, but it cannot be mapped
    deflated = tmp_path / "deflated.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    assert is_packed(deflated)
    _one_line_error(lambda: load_dataset(deflated), str(deflated), "compressed")

    # a newer format version, and a file without the marker
    newer = tmp_path / "newer.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(newer, "w") as dst:
        for info in src.infolist():
            payload = src.read(info)
            if info.filename == "version.npy":
                import io

                buf = io.BytesIO()
                np.save(buf, np.array(2, dtype="<i8"))
                payload = buf.getvalue()
            dst.writestr(info.filename, payload)
    _one_line_error(lambda: load_dataset(newer), str(newer), "version 2")
    _one_line_error(lambda: open_packed(SHEEP), str(SHEEP), "not a packed")
    _one_line_error(lambda: open_packed(tmp_path / "nope.npz"), "nope.npz", "no such file")


def test_describe_dataset_packed_and_official(tmp_path):
    splits, classes = small_splits(6)
    path = tmp_path / "d.npz"
    save_packed(path, splits, classes, ["a", "b", "c"])
    info = describe_dataset(path)
    assert info["format"] == FORMAT_NAME and info["classes"] == ["a", "b", "c"]
    data = load_dataset(path)
    assert info["max_seq_len"] == data.max_seq_len and info["scale_factor"] == data.scale_factor
    for name in SPLITS:
        split = info["splits"][name]
        assert split["count"] == len(splits[name])
        assert split["points"] == sum(len(s) for s in splits[name])
        assert split["class_counts"] == {c: int(np.sum(np.asarray(classes[name]) == k)) for k, c in enumerate("abc")}
        assert split["length_histogram"] == np.bincount([len(s) for s in splits[name]]).tolist()

    official = describe_dataset(SHEEP)
    sheep = load_npz(SHEEP)
    assert official["format"] == "npz" and official["classes"] == ["aaron_sheep"]
    assert official["max_seq_len"] == 250
    assert official["scale_factor"] == load_dataset(SHEEP).scale_factor
    for name in SPLITS:
        assert official["splits"][name]["class_counts"] == {"aaron_sheep": len(sheep[name])}
        assert sum(official["splits"][name]["length_histogram"]) == len(sheep[name])


# ------------------------------------------------------------------------------------------------
# 4. scale: 5 million sketches with bounded memory


def test_five_million_sketches_with_bounded_memory(tmp_path):
    path = tmp_path / "big.npz"
    sizes = {"train": 4_500_000, "valid": 250_000, "test": 250_000}
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    with PackedWriter(path, [f"class{k}" for k in range(8)]) as writer:
        for name, n in sizes.items():
            for start in range(0, n, 500_000):
                k = min(500_000, n - start)
                lengths = rng.integers(2, 5, size=k)  # 2-4 points
                points = np.empty((int(lengths.sum()), 3), dtype=np.int16)
                points[:, 0:2] = rng.integers(-40, 41, size=(len(points), 2))
                points[:, 2] = 0
                points[np.cumsum(lengths) - 1, 2] = 1
                writer.append(name, points, lengths, rng.integers(0, 8, size=k))
    del points, lengths
    write_s = time.perf_counter() - t0
    size_mb = path.stat().st_size / 1e6
    assert 100 < size_mb < 160

    gc.collect()
    before = rss_bytes()
    t1 = time.perf_counter()
    packed = open_packed(path)
    open_s = time.perf_counter() - t1
    assert len(packed["train"]) == 4_500_000
    data = load_dataset(path, seed=0)
    load_s = time.perf_counter() - t1
    assert data.max_seq_len == 4 and len(data.train) == 4_500_000 and len(data.valid) == 250_000
    assert data.train.balance_classes
    assert data.scale_factor == pytest.approx(np.sqrt((81**2 - 1) / 12), rel=2e-3)  # std of U{-40..40}
    batches = [data.train.random_batch(100) for _ in range(20)]
    batches += [data.train.get_batch(i, 100) for i in (0, 20_000, 44_999)]
    batches += [data.valid.get_batch(i, 100) for i in (0, 2_499)]
    for batch in batches:
        assert batch.inputs.shape == (100, 5, 5)
    assert batches[-3].lengths.tolist() == [4] * 100 and batches[-5].lengths.tolist() == [2] * 100
    grown = (rss_bytes() - before) / 1e6
    print(f"\n5M sketches: file {size_mb:.0f} MB, write {write_s:.1f} s, open {open_s * 1e3:.1f} ms, "
          f"load_dataset {load_s:.1f} s, resident memory +{grown:.0f} MB")
    assert open_s < 0.5
    assert grown < 100, f"resident memory grew by {grown:.0f} MB"
