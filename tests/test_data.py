"""Tests for the data pipeline (sketchrnn.data.dataset / strokes) on the real shared data.

What is checked is the reference behaviour of REFERENCE.md section 2: N_max over every split of
every file, the clamp and the single population-std scale factor, the golden batches drawn by
magenta itself, stroke-5 padding with the start token, point dropping, random scaling and the
batch samplers.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import DATA, GOLDEN_TF, assert_close
from sketchrnn.data import (
    augment_strokes,
    dataset_from_splits,
    get_bounds,
    lines_to_strokes,
    load_dataset,
    load_npz,
    pad_batch,
    random_scale,
    strokes_to_lines,
    to_big_strokes,
    to_normal_strokes,
)

SPLITS = ("train", "valid", "test")
SHEEP = DATA / "aaron_sheep.npz"
KANJI = DATA / "short_kanji.npz"
SUBSET = GOLDEN_TF / "aaron_sheep_subset_le60.npz"
GOLDEN_A = GOLDEN_TF / "golden_A_cond_enc-lstm_dec-lstm.npz"

_raw_cache: dict = {}
_data_cache: dict = {}


def raw(path):
    """The file's splits as loaded by load_npz (cached: the tests must not modify them)."""
    if path not in _raw_cache:
        _raw_cache[path] = load_npz(path)
    return _raw_cache[path]


def sheep_data():
    """aaron_sheep without augmentation (cached; tests only read it)."""
    if "sheep" not in _data_cache:
        _data_cache["sheep"] = load_dataset(SHEEP, random_scale_factor=0, augment_stroke_prob=0)
    return _data_cache["sheep"]


def reference_scale_factor(train_sketches) -> np.float32:
    """np.std of every clamped float32 dx, dy, collected per point (x then y) over the length-sorted split."""
    clamped = [np.array(np.maximum(np.minimum(s, 1000), -1000), dtype=np.float32) for s in train_sketches]
    order = np.argsort([len(s) for s in clamped])
    # row-major [n, 2] → x0, y0, x1, y1, ... as the reference appends them
    values = np.concatenate([clamped[i][:, 0:2].ravel() for i in order])
    assert values.dtype == np.float32
    return np.std(values)


def float64_std(train_sketches) -> float:
    flat = np.concatenate([np.clip(s[:, 0:2].astype(np.float64), -1000, 1000).ravel() for s in train_sketches])
    return float(np.sqrt(np.mean(flat**2) - np.mean(flat) ** 2))


def sorted_by_length(sketches):
    return [sketches[i] for i in np.argsort([len(s) for s in sketches])]


# ------------------------------------------------------------------------------------------------
# 1. N_max and the scale factor


def test_sheep_max_seq_len_and_scale_factor():
    splits = raw(SHEEP)
    n_max = max(len(s) for name in SPLITS for s in splits[name])
    assert n_max == 250
    data = sheep_data()
    assert data.max_seq_len == n_max
    for name in SPLITS:
        split = data.split(name)
        assert len(split) == len(splits[name])
        assert split.max_seq_len == n_max

    expected = reference_scale_factor(splits["train"])
    assert expected.dtype == np.float32
    assert data.scale_factor == float(expected)
    assert data.train.scale_factor == float(expected)
    assert_close(data.scale_factor, float64_std(splits["train"]), 1e-5, "scale factor vs float64 std")
    assert 10 < data.scale_factor < 40  # the real sheep data: ~18.5

    # every split: length-sorted float32 sketches divided by the same float32 factor
    f = np.float32(expected)
    for name in SPLITS:
        split = data.split(name)
        expected_sketches = sorted_by_length(splits[name])
        lengths = split.lengths()
        assert np.all(np.diff(lengths) >= 0), f"{name} is not sorted by length"
        for got, src in zip(split.sketches, expected_sketches):
            assert got.dtype == np.float32
            want = src.astype(np.float32)
            want[:, 0:2] /= f
            np.testing.assert_array_equal(got, want)


def test_two_files_are_concatenated():
    sheep, kanji = raw(SHEEP), raw(KANJI)
    data = load_dataset([SHEEP, KANJI], random_scale_factor=0, augment_stroke_prob=0)
    n_max = max(len(s) for splits in (sheep, kanji) for name in SPLITS for s in splits[name])
    assert data.max_seq_len == n_max == 250
    for name in SPLITS:
        assert len(data.split(name)) == len(sheep[name]) + len(kanji[name])
        assert data.split(name).max_seq_len == n_max
    train = list(sheep["train"]) + list(kanji["train"])
    expected = reference_scale_factor(train)
    assert data.scale_factor == float(expected)
    assert_close(data.scale_factor, float64_std(train), 1e-5, "two-file scale factor vs float64 std")
    # not the factor of either file alone
    assert abs(data.scale_factor - sheep_data().scale_factor) > 1.0

    # the list order matters only for ties; N_max and factor do not depend on it
    swapped = load_dataset([KANJI, SHEEP], random_scale_factor=0, augment_stroke_prob=0)
    assert swapped.max_seq_len == n_max
    assert_close(swapped.scale_factor, data.scale_factor, 1e-6, "swapped file order")


def test_short_kanji_alone_has_its_own_n_max():
    kanji = raw(KANJI)
    data = load_dataset(KANJI, random_scale_factor=0, augment_stroke_prob=0)
    n_max = max(len(s) for name in SPLITS for s in kanji[name])
    assert data.max_seq_len == n_max
    assert n_max < 250
    assert data.train.random_batch(8).inputs.shape == (8, n_max + 1, 5)


def test_values_are_clamped_before_the_scale_factor():
    splits = raw(SUBSET)
    train = [s.copy() for s in splits["train"]]
    train[0] = train[0].astype(np.int32)
    train[0][1, 0] = 3000
    train[0][2, 1] = -2500
    data = dataset_from_splits({"train": train, "valid": [], "test": []}, None, 0.0, 0.0, seed=0)
    expected = reference_scale_factor(train)  # clamps to ±1000
    unclamped = np.std(np.concatenate([s[:, 0:2].reshape(-1) for s in train]).astype(np.float32))
    assert abs(float(expected) - float(unclamped)) > 1.0
    assert data.scale_factor == float(expected)
    big = [s for s in data.train.sketches if np.abs(s[:, 0:2]).max() * data.scale_factor > 999]
    assert len(big) == 1
    assert np.isclose(np.abs(big[0][:, 0:2]).max() * data.scale_factor, 1000.0, rtol=1e-6)


# ------------------------------------------------------------------------------------------------
# 2. Golden batches drawn by magenta's DataLoader


def test_golden_batches_reproduce_magenta():
    data = load_dataset(SUBSET, random_scale_factor=0, augment_stroke_prob=0, seed=1234)
    assert data.scale_factor == 22.260406494140625
    assert data.max_seq_len == 60
    golden = np.load(GOLDEN_A)
    assert float(golden["scale_factor"]) == data.scale_factor
    assert int(golden["max_seq_len"]) == data.max_seq_len
    keys = ["probe"] + [f"train/step{k}" for k in range(3)]
    for key in keys:
        batch = data.train.random_batch(4)
        np.testing.assert_array_equal(batch.lengths, golden[f"{key}/sequence_lengths"], err_msg=key)
        assert batch.inputs.shape == golden[f"{key}/input_data"].shape == (4, 61, 5)
        np.testing.assert_allclose(batch.inputs, golden[f"{key}/input_data"], rtol=0, atol=1e-7, err_msg=key)
    np.testing.assert_allclose(golden["probe/input_data_f64"], golden["probe/input_data"], atol=1e-7)


def test_golden_batches_need_the_seed():
    golden = np.load(GOLDEN_A)
    data = load_dataset(SUBSET, random_scale_factor=0, augment_stroke_prob=0, seed=4321)
    batch = data.train.random_batch(4)
    assert not np.array_equal(batch.inputs, golden["probe/input_data"])


# ------------------------------------------------------------------------------------------------
# 3. stroke formats


def test_pad_batch_start_token_points_and_padding():
    sketches = [s.astype(np.float32) for s in raw(SHEEP)["valid"][:5]]
    n_max = max(len(s) for s in sketches) + 7
    out = pad_batch(sketches, n_max)
    assert out.shape == (5, n_max + 1, 5)
    for b, s in enumerate(sketches):
        n = len(s)
        assert list(out[b, 0]) == [0, 0, 1, 0, 0]
        for t in range(n):
            dx, dy, p = s[t]
            assert list(out[b, t + 1]) == [dx, dy, 1 - p, p, 0], (b, t)
        for t in range(n + 1, n_max + 1):
            assert list(out[b, t]) == [0, 0, 0, 0, 1], (b, t)
    # pen states are one-hot on every row
    np.testing.assert_array_equal(out[:, :, 2:].sum(axis=-1), 1)


def test_pad_batch_full_length_sketch_has_no_end_row_and_too_long_raises():
    s = raw(SHEEP)["valid"][0].astype(np.float32)
    out = pad_batch([s], len(s))
    assert out.shape == (1, len(s) + 1, 5)
    assert out[0, :, 4].sum() == 0
    with pytest.raises(ValueError):
        pad_batch([s], len(s) - 1)


def test_big_strokes_round_trip():
    for s in raw(SHEEP)["test"][:20]:
        big = to_big_strokes(s, 250)
        n = len(s)
        assert big.shape == (250, 5)
        np.testing.assert_array_equal(big[:n, 0:2], s[:, 0:2])
        np.testing.assert_array_equal(big[:n, 2], 1 - s[:, 2])
        np.testing.assert_array_equal(big[:n, 3], s[:, 2])
        np.testing.assert_array_equal(big[:n, 4], 0)
        np.testing.assert_array_equal(big[n:], np.tile([0, 0, 0, 0, 1], (250 - n, 1)))
        back = to_normal_strokes(big)
        assert back.shape == s.shape
        np.testing.assert_array_equal(back, s)
    with pytest.raises(ValueError):
        to_big_strokes(raw(SHEEP)["test"][0], max_len=3)


def test_to_normal_strokes_keeps_everything_without_end_row():
    s = raw(SHEEP)["test"][3]
    big = to_big_strokes(s, len(s))  # exactly full: no (0,0,0,0,1) row
    np.testing.assert_array_equal(to_normal_strokes(big), s)
    # the reference's oddity: an end row at index 0 also keeps the whole array
    big0 = to_big_strokes(s, len(s) + 3)
    big0[0, 4] = 1
    assert len(to_normal_strokes(big0)) == len(s) + 3
    # an end row in the middle cuts there
    big1 = to_big_strokes(s, len(s))
    big1[10, 4] = 1
    np.testing.assert_array_equal(to_normal_strokes(big1), s[:10])


def test_lines_round_trip_on_a_real_sketch():
    s = raw(SHEEP)["train"][17]
    assert s[-1, 2] == 1
    lines = strokes_to_lines(s)
    assert len(lines) == int(s[:, 2].sum())
    points = np.array([pt for line in lines for pt in line])
    np.testing.assert_allclose(points, np.cumsum(s[:, 0:2].astype(np.float64), axis=0))
    pen_up_rows = np.nonzero(s[:, 2] == 1)[0]
    np.testing.assert_array_equal(np.cumsum([len(line) for line in lines]) - 1, pen_up_rows)
    back = lines_to_strokes(lines)
    assert back.shape == s.shape
    np.testing.assert_allclose(back, s.astype(np.float64), atol=1e-9)


def test_get_bounds_hand_computed():
    s = np.array([[10, 0, 0], [0, 20, 0], [-30, -5, 1], [5, 5, 0]], dtype=np.int16)
    # x: 0, 1, 1, -2, -1.5 ; y: 0, 0, 2, 1.5, 2  (in units of factor 10)
    assert get_bounds(s) == pytest.approx((-2.0, 1.0, 0.0, 2.0))
    assert get_bounds(s, factor=1) == pytest.approx((-20.0, 10.0, 0.0, 20.0))
    # the origin is always inside the bounds
    pos = np.array([[3, 4, 0], [2, 1, 1]], dtype=np.float32)
    assert get_bounds(pos, 1) == pytest.approx((0.0, 5.0, 0.0, 5.0))


# ------------------------------------------------------------------------------------------------
# 4. point dropping


def reference_augment(strokes, prob, rng):
    """Literal transcription of the reference loop (REFERENCE.md 2.5)."""
    result = []
    prev_stroke = [0, 0, 1]
    count = 0
    stroke = [0, 0, 1]
    for i in range(len(strokes)):
        candidate = [strokes[i][0], strokes[i][1], strokes[i][2]]
        if candidate[2] == 1 or prev_stroke[2] == 1:
            count = 0
        else:
            count += 1
        urnd = rng.rand()
        if candidate[2] == 0 and prev_stroke[2] == 0 and count > 2 and urnd < prob:
            stroke[0] += candidate[0]
            stroke[1] += candidate[1]
        else:
            stroke = candidate
            prev_stroke = stroke
            result.append(stroke)
    return np.array(result)


def some_sketches(n=300):
    return sheep_data().train.sketches[::25][:n]


def kept_indices(stroke, prob, seed):
    """Which points survive, read from a run on a marker sketch (dx = 1) with the same draws."""
    marker = np.array(stroke, dtype=np.float64, copy=True)
    marker[:, 0] = 1.0
    out = augment_strokes(marker, prob, np.random.RandomState(seed))
    sizes = np.rint(out[:, 0]).astype(int)
    assert sizes.sum() == len(stroke)
    return np.concatenate([[0], np.cumsum(sizes)[:-1]])


def position_in_stroke(stroke):
    pos = np.zeros(len(stroke), dtype=int)
    count = 0
    for i in range(len(stroke)):
        pos[i] = count
        count = 0 if stroke[i, 2] == 1 else count + 1
    return pos


def test_augment_preserves_end_points_and_pen_ups():
    sketches = some_sketches()
    total_dropped = 0
    for k, s in enumerate(sketches):
        before = s.copy()
        out = augment_strokes(s, 0.5, np.random.RandomState(1000 + k))
        np.testing.assert_array_equal(s, before)  # input untouched
        assert out.shape[1] == 3
        total_dropped += len(s) - len(out)
        # (a) the absolute end point
        np.testing.assert_allclose(out[:, 0:2].sum(axis=0), s[:, 0:2].sum(axis=0), atol=1e-4)
        # (b) every pen-up point is kept, at the same absolute position
        assert int(out[:, 2].sum()) == int(s[:, 2].sum())
        abs_in = np.cumsum(s[:, 0:2].astype(np.float64), axis=0)[s[:, 2] == 1]
        abs_out = np.cumsum(out[:, 0:2].astype(np.float64), axis=0)[out[:, 2] == 1]
        np.testing.assert_allclose(abs_out, abs_in, atol=1e-4)
        # every kept point lands on an original absolute position (the last of its group)
        abs_all = np.cumsum(s[:, 0:2].astype(np.float64), axis=0)
        kept = kept_indices(s, 0.5, 1000 + k)
        group_ends = np.concatenate([kept[1:] - 1, [len(s) - 1]])
        np.testing.assert_allclose(np.cumsum(out[:, 0:2].astype(np.float64), axis=0), abs_all[group_ends], atol=1e-4)
        np.testing.assert_array_equal(out[:, 2], s[kept, 2])
    # with prob 0.5 many points go (sheep strokes are long)
    assert total_dropped > 0.2 * sum(len(s) for s in sketches)


def test_augment_never_drops_the_first_three_points_of_a_stroke():
    checked_droppable = 0
    for k, s in enumerate(some_sketches()):
        kept = kept_indices(s, 0.5, 2000 + k)
        dropped = np.setdiff1d(np.arange(len(s)), kept)
        pos = position_in_stroke(s)
        assert np.all(np.isin(np.nonzero(pos < 3)[0], kept)), f"sketch {k}: one of the first three points dropped"
        assert np.all(np.isin(np.nonzero(s[:, 2] == 1)[0], kept))
        assert np.all(pos[dropped] >= 3) and np.all(s[dropped, 2] == 0)
        checked_droppable += len(dropped)
    assert checked_droppable > 0


def test_augment_with_prob_one_keeps_exactly_three_points_and_the_pen_up():
    s = sheep_data().train.sketches[1234]
    out = augment_strokes(s, 1.0, np.random.RandomState(5))
    ends = np.nonzero(s[:, 2] == 1)[0]
    starts = np.concatenate([[0], ends[:-1] + 1])
    expected = []
    for a, e in zip(starts, ends):
        length = e - a + 1
        if length <= 4:
            expected.extend(s[a : e + 1].astype(np.float64).tolist())
        else:
            merged = s[a + 2 : e, 0:2].astype(np.float64).sum(axis=0)
            expected.extend(s[a : a + 2].astype(np.float64).tolist())
            expected.append([merged[0], merged[1], 0.0])
            expected.append(s[e].astype(np.float64).tolist())
    np.testing.assert_allclose(out, np.array(expected), atol=1e-4)


def test_augment_with_prob_zero_changes_nothing():
    for s in some_sketches(50):
        out = augment_strokes(s, 0.0, np.random.RandomState(3))
        np.testing.assert_array_equal(out, s)


def test_augment_matches_the_reference_loop():
    for k, s in enumerate(some_sketches()):
        for prob in (0.1, 0.5, 0.9):
            seed = 7 * k + int(prob * 10)
            want = reference_augment(s, prob, np.random.RandomState(seed))
            got = augment_strokes(s, prob, np.random.RandomState(seed))
            assert got.shape == want.shape, (k, prob)
            np.testing.assert_array_equal(got[:, 2], want[:, 2])
            np.testing.assert_allclose(got[:, 0:2], want[:, 0:2], rtol=0, atol=1e-5)
            assert got.dtype == s.dtype


def test_augment_consumes_one_draw_per_point():
    s = some_sketches(1)[0]
    rng = np.random.RandomState(11)
    augment_strokes(s, 0.3, rng)
    ref = np.random.RandomState(11)
    ref.random_sample(len(s))
    assert rng.random_sample() == ref.random_sample()


# ------------------------------------------------------------------------------------------------
# 5. random scaling, samplers, seeds


def test_random_scale_draws_x_then_y():
    s = sheep_data().train.sketches[42]
    before = s.copy()
    for seed in range(20):
        u = np.random.RandomState(seed).random_sample(2)
        sx, sy = (u - 0.5) * 2 * 0.15 + 1.0
        out = random_scale(s, 0.15, np.random.RandomState(seed))
        np.testing.assert_array_equal(s, before)
        np.testing.assert_allclose(out[:, 0], s[:, 0].astype(np.float64) * sx, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(out[:, 1], s[:, 1].astype(np.float64) * sy, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(out[:, 2], s[:, 2])
    rng = np.random.RandomState(0)
    factors = []
    i = int(np.argmax(np.abs(s[:, 0]) > 0.5))
    j = int(np.argmax(np.abs(s[:, 1]) > 0.5))
    for _ in range(500):
        out = random_scale(s, 0.15, rng)
        factors.append((out[i, 0] / s[i, 0], out[j, 1] / s[j, 1]))
    factors = np.array(factors)
    assert factors.min() >= 0.85 - 1e-6 and factors.max() < 1.15 + 1e-6
    assert factors.min() < 0.87 and factors.max() > 1.13
    assert not np.allclose(factors[:, 0], factors[:, 1])
    # factor 0 still draws twice, and scales by exactly 1
    rng0 = np.random.RandomState(9)
    np.testing.assert_array_equal(random_scale(s, 0.0, rng0), s)
    ref = np.random.RandomState(9)
    ref.random_sample(2)
    assert rng0.random_sample() == ref.random_sample()


def test_augmentation_only_on_train():
    data = load_dataset(SHEEP, random_scale_factor=0.15, augment_stroke_prob=0.1, seed=3)
    plain = sheep_data()
    assert data.scale_factor == plain.scale_factor
    assert data.train.random_scale_factor == 0.15 and data.train.augment_stroke_prob == 0.1
    # train: the same sketches come out scaled and thinned
    batch = data.train.get_batch(10, 32)
    src = data.train.sketches[320:352]
    assert np.all(batch.lengths <= [len(s) for s in src])
    assert batch.lengths.sum() < sum(len(s) for s in src)
    assert not np.allclose(batch.inputs, pad_batch(src, data.max_seq_len))
    for b, s in enumerate(src):
        rows = batch.inputs[b, 1 : batch.lengths[b] + 1]
        assert rows[:, 3].sum() == s[:, 2].sum()
    # valid / test: exactly the normalised sketches, every time
    for name in ("valid", "test"):
        split = data.split(name)
        for idx in range(3):
            b = split.get_batch(idx, 50)
            want = split.sketches[idx * 50 : idx * 50 + 50]
            np.testing.assert_array_equal(b.inputs, pad_batch(want, data.max_seq_len))
            np.testing.assert_array_equal(b.lengths, [len(s) for s in want])
        by_content = {s.tobytes() for s in split.sketches}
        rb = split.random_batch(20)
        for row, n in zip(rb.inputs, rb.lengths):
            s = np.stack([row[1 : n + 1, 0], row[1 : n + 1, 1], row[1 : n + 1, 3]], axis=1).astype(np.float32)
            assert s.tobytes() in by_content
        np.testing.assert_array_equal(
            [len(s) for s in split.sketches], [len(s) for s in plain.split(name).sketches]
        )


def test_eval_batches_are_consecutive_in_length_order():
    data = sheep_data()
    valid = data.valid
    assert len(valid) == 300
    batches = list(valid.batches(64))
    assert len(batches) == 4 == valid.num_batches(64)  # 300 = 4*64 + 44: the remainder is dropped
    lengths = np.concatenate([b.lengths for b in batches])
    assert len(lengths) == 256
    np.testing.assert_array_equal(lengths, np.sort([len(s) for s in raw(SHEEP)["valid"]])[:256])
    for i, b in enumerate(batches):
        assert b.inputs.shape == (64, 251, 5)
        np.testing.assert_array_equal(b.inputs, pad_batch(valid.sketches[i * 64 : (i + 1) * 64], 250))
    # iterating twice gives the same batches (no randomness in eval)
    again = list(valid.batches(64))
    for a, b in zip(batches, again):
        np.testing.assert_array_equal(a.inputs, b.inputs)
    assert len(list(valid.batches(300))) == 1
    assert len(list(valid.batches(301))) == 0


def test_random_batch_has_no_repeats_and_raises_when_too_big():
    data = load_dataset(SUBSET, random_scale_factor=0, augment_stroke_prob=0, seed=0)
    train = data.train
    contents = [s.tobytes() for s in train.sketches]
    assert len(set(contents)) == len(contents) == 40

    def rows_of(batch):
        out = []
        for row, n in zip(batch.inputs, batch.lengths):
            s = np.stack([row[1 : n + 1, 0], row[1 : n + 1, 1], row[1 : n + 1, 3]], axis=1).astype(np.float32)
            out.append(s.tobytes())
        return out

    whole = rows_of(train.random_batch(40))
    assert sorted(whole) == sorted(contents)  # a permutation of the whole split
    seen_orders = set()
    for _ in range(30):
        rows = rows_of(train.random_batch(10))
        assert len(set(rows)) == 10
        assert set(rows) <= set(contents)
        seen_orders.add(tuple(rows))
    assert len(seen_orders) == 30  # independent draws, not a fixed order
    with pytest.raises(ValueError):
        train.random_batch(41)


def test_same_seed_same_batches_other_seed_different():
    def draw(seed):
        data = load_dataset(SUBSET, random_scale_factor=0.15, augment_stroke_prob=0.1, seed=seed)
        return [data.train.random_batch(8) for _ in range(3)]

    a, b, c = draw(5), draw(5), draw(6)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.inputs, y.inputs)
        np.testing.assert_array_equal(x.lengths, y.lengths)
    assert any(not np.array_equal(x.inputs, z.inputs) for x, z in zip(a, c))


# ------------------------------------------------------------------------------------------------
# 6. explicit max_seq_len


def test_explicit_max_seq_len_drops_longer_sketches():
    splits = raw(SHEEP)
    data = load_dataset(SHEEP, max_seq_len=100, random_scale_factor=0, augment_stroke_prob=0, seed=1)
    assert data.max_seq_len == 100
    for name in SPLITS:
        split = data.split(name)
        expected = sum(1 for s in splits[name] if len(s) <= 100)
        assert 0 < expected < len(splits[name])
        assert len(split) == expected
        assert split.lengths().max() <= 100
    kept_train = [s for s in splits["train"] if len(s) <= 100]
    assert data.scale_factor == float(reference_scale_factor(kept_train))
    batch = data.train.random_batch(16)
    assert batch.inputs.shape == (16, 101, 5)
    assert np.all(batch.lengths <= 100)
    last = data.valid.get_batch(data.valid.num_batches(16) - 1, 16)
    assert last.inputs.shape == (16, 101, 5)
    for row, n in zip(last.inputs, last.lengths):
        np.testing.assert_array_equal(row[n + 1 :], np.tile([0, 0, 0, 0, 1], (100 - n, 1)))
    # longer than an explicit bound is an error for pad_batch, not silently cut
    with pytest.raises(ValueError):
        pad_batch([s.astype(np.float32) for s in splits["train"] if len(s) > 100][:1], 100)
