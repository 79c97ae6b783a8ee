"""Datasets of sketches as the reference prepares them.

N_max is the longest sketch over all splits of all files (or an explicit bound that drops longer
sketches); values are clamped to ±1000; offsets are divided by one scale factor, the population
std of every training dx and dy; training batches are drawn at random and augmented; evaluation
batches are consecutive over the length-sorted split. All randomness comes from one
``numpy.random.RandomState`` per split, so a seed reproduces the reference's own draws.

`SketchSplit` is what training needs from a split; `SketchDataset` holds official files in memory,
`sketchrnn.data.packed.PackedSplit` serves packed files from disk (`load_dataset` picks by format).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .npz import DataFileError, load_npz
from .sources import resolve
from .strokes import augment_strokes, pad_batch, random_scale

SPLITS = ("train", "valid", "test")
CLAMP = 1000.0


@dataclass
class Batch:
    """A model-ready batch: stroke-5 ``inputs [B, N_max+1, 5]`` (S0 first) and true ``lengths [B]``."""

    inputs: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)


class SketchSplit:
    """What training and evaluation need from a split: seeded random batches with augmentation, and
    consecutive evaluation batches in length order.

    Subclasses say how many sketches there are (`__len__`), their lengths in the split's order
    (`lengths`), one normalised float32 sketch (`sketch`) and how random batches pick indices
    (`sample_indices`); batching, padding and augmentation are shared.
    """

    def __init__(
        self,
        max_seq_len: int,
        random_scale_factor: float = 0.0,
        augment_stroke_prob: float = 0.0,
        seed: int | None = None,
    ) -> None:
        self.max_seq_len = int(max_seq_len)
        self.scale_factor = 1.0
        self.random_scale_factor = float(random_scale_factor)
        self.augment_stroke_prob = float(augment_stroke_prob)
        self.rng = np.random.RandomState(seed)

    def __len__(self) -> int:
        raise NotImplementedError

    def lengths(self) -> np.ndarray:
        """Number of points of every sketch, in the split's order."""
        raise NotImplementedError

    def sketch(self, index: int) -> np.ndarray:
        """The normalised float32 stroke-3 sketch at `index` (not augmented; do not modify it)."""
        raise NotImplementedError

    def sample_indices(self, batch_size: int) -> np.ndarray:
        """The indices of the next random batch (draws from `rng`)."""
        raise NotImplementedError

    def _augmented(self, index: int) -> np.ndarray:
        s = random_scale(self.sketch(index), self.random_scale_factor, self.rng)
        if self.augment_stroke_prob > 0:
            s = augment_strokes(s, self.augment_stroke_prob, self.rng)
        return s

    def batch_from_indices(self, indices: Sequence[int]) -> Batch:
        """Augment the sketches at `indices` (fresh draws each call) and pad them into a batch."""
        sketches = [self._augmented(int(i)) for i in indices]
        lengths = np.array([len(s) for s in sketches], dtype=np.int64)
        return Batch(pad_batch(sketches, self.max_seq_len), lengths)

    def random_batch(self, batch_size: int) -> Batch:
        """A random batch of `batch_size` sketches (see `sample_indices`)."""
        if batch_size > len(self):
            raise ValueError(f"batch_size={batch_size} is larger than the split ({len(self)} sketches)")
        return self.batch_from_indices(self.sample_indices(batch_size))

    def num_batches(self, batch_size: int, drop_last: bool = True) -> int:
        """Number of evaluation batches of `batch_size`."""
        full, rest = divmod(len(self), batch_size)
        return full + (0 if drop_last or rest == 0 else 1)

    def get_batch(self, idx: int, batch_size: int) -> Batch:
        """The `idx`-th batch of consecutive sketches in length order."""
        start = idx * batch_size
        return self.batch_from_indices(range(start, min(start + batch_size, len(self))))

    def batches(self, batch_size: int, drop_last: bool = True) -> Iterator[Batch]:
        """All evaluation batches in length order (the reference drops the remainder)."""
        for idx in range(self.num_batches(batch_size, drop_last)):
            yield self.get_batch(idx, batch_size)


class SketchDataset(SketchSplit):
    """One split held in memory: normalised float32 stroke-3 sketches sorted by length."""

    def __init__(
        self,
        sketches: Sequence[np.ndarray],
        max_seq_len: int,
        scale_factor: float = 1.0,
        random_scale_factor: float = 0.0,
        augment_stroke_prob: float = 0.0,
        seed: int | None = None,
    ) -> None:
        super().__init__(max_seq_len, random_scale_factor, augment_stroke_prob, seed)
        kept = [_clean(s) for s in sketches if len(s) <= max_seq_len]
        # the reference sorts by length with numpy's default (unstable) argsort; we do the same
        order = np.argsort([len(s) for s in kept])
        self.sketches: list[np.ndarray] = [kept[i] for i in order]
        if scale_factor != 1.0:
            self.normalize(scale_factor)

    def __len__(self) -> int:
        return len(self.sketches)

    def lengths(self) -> np.ndarray:
        """Number of points of every sketch, in the split's order."""
        return np.array([len(s) for s in self.sketches], dtype=np.int64)

    def sketch(self, index: int) -> np.ndarray:
        """The normalised float32 stroke-3 sketch at `index` (the stored array itself)."""
        return self.sketches[index]

    def normalizing_scale_factor(self) -> float:
        """Population std of every dx and dy (float32, interleaved per point as the reference collects them)."""
        data = np.concatenate([s[:, 0:2].reshape(-1) for s in self.sketches]) if self.sketches else np.zeros(1)
        return float(np.std(data.astype(np.float32)))

    def normalize(self, scale_factor: float) -> None:
        """Divide every dx, dy by `scale_factor` (in float32, in place)."""
        f = np.float32(scale_factor)
        for s in self.sketches:
            s[:, 0:2] /= f
        self.scale_factor = float(f)

    def sample_indices(self, batch_size: int) -> np.ndarray:
        """Random indices without repeats, as the reference draws them (a permutation of the split)."""
        return self.rng.permutation(len(self))[:batch_size]


@dataclass
class SketchData:
    """The three splits of one or several files, normalised by one shared scale factor."""

    train: SketchSplit
    valid: SketchSplit
    test: SketchSplit
    max_seq_len: int
    scale_factor: float

    def split(self, name: str) -> SketchSplit:
        """The split called `name` (train, valid or test)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return getattr(self, name)


def _clean(sketch: np.ndarray) -> np.ndarray:
    """Clamp to ±1000 and convert to float32 (a copy)."""
    return np.clip(np.asarray(sketch), -CLAMP, CLAMP).astype(np.float32)


def require_splits(path: str | Path, found) -> None:
    """Refuse file `path` unless the splits `found` (names, or a mapping by name) include train, valid and test."""
    missing = [name for name in SPLITS if name not in found]
    if missing:
        raise DataFileError(f"{path}: has no {', '.join(missing)} split (found: {', '.join(sorted(found)) or 'nothing'})")


def shared_scale_splits(make: Callable[[str, float, int | None], SketchSplit], max_seq_len: int,
                        seed: int | None) -> SketchData:
    """Train, valid and test from `make(split name, scale factor, seed)`, as the reference builds them:
    the training split normalised by its own population std of dx and dy, the other two by the same
    factor; seeds `seed`, `seed`+1, `seed`+2 (or None)."""
    seeds = [None if seed is None else seed + k for k in range(3)]
    train = make("train", 1.0, seeds[0])
    if len(train) == 0:
        raise ValueError(f"no training sketch has at most max_seq_len={max_seq_len} points")
    scale = float(np.float32(train.normalizing_scale_factor()))
    train.normalize(scale)
    return SketchData(train, make("valid", scale, seeds[1]), make("test", scale, seeds[2]), int(max_seq_len), scale)


DRAWING_SUFFIXES = (".ndjson", ".svg")  # files of drawings to convert, as opposed to dataset files


def is_drawing_source(path: Path) -> bool:
    """Whether `path` holds drawings to convert (.ndjson, .svg, or a directory of them), not a dataset file."""
    return path.is_dir() or path.suffix.lower() in DRAWING_SUFFIXES


def read_splits(paths: Sequence[str | Path]) -> dict[str, list[np.ndarray]]:
    """Load several files (paths, the bundled name, or official names) and concatenate each split.

    Packed files give int16 views into their memory maps, in file order. Quick, Draw! ndjson and
    SVG files (or directories of them) are converted in memory as `sketchrnn data convert` would,
    with its default 90/5/5 split per category.
    """
    from .packed import is_packed, open_packed

    merged: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for path in map(resolve, paths):
        packed = open_packed(path) if is_packed(path) else None
        if packed is not None:
            data = packed.splits
        elif is_drawing_source(path):
            from .convert import build_splits

            data = build_splits([path]).splits  # ndjson or SVG: converted in memory, default splits
        else:
            data = load_npz(path)
        require_splits(path, data)
        for name in SPLITS:
            merged[name].extend(data[name])
        if packed is not None:
            packed.close()  # the views keep their maps
    return merged


def load_dataset(
    paths: str | Path | Sequence[str | Path],
    max_seq_len: int | None = None,
    random_scale_factor: float = 0.15,
    augment_stroke_prob: float = 0.10,
    seed: int | None = None,
    balance_classes: bool | None = None,
) -> SketchData:
    """Build train/valid/test from files as the reference does; `max_seq_len` drops longer sketches.

    `paths` are .npz files, "aaron_sheep" (bundled) or official Quick, Draw! names (downloaded once),
    or packed files (all of them packed: the two kinds do not mix). Packed files are read from
    memory maps (`sketchrnn.data.packed.PackedSplit`); official ones are loaded into memory.

    Without `max_seq_len`, N_max is the longest sketch over all splits of all files. Augmentation
    applies to the training split only. `seed` seeds the three splits' generators (seed, seed+1, seed+2).
    `balance_classes` (packed files only) draws training batches class-balanced; by default it is on
    when the training split has more than one class.
    """
    from .packed import is_packed, load_packed_dataset

    if isinstance(paths, (str, Path)):
        paths = [paths]
    resolved = [resolve(p) for p in paths]
    packed = [p for p in resolved if is_packed(p)]
    if packed:
        official = [p for p in resolved if p not in packed]
        if official:
            raise DataFileError(f"{official[0]}: an official .npz cannot be mixed with packed files "
                                f"({packed[0]}); convert it to the packed format too")
        return load_packed_dataset(packed, max_seq_len, random_scale_factor, augment_stroke_prob, seed, balance_classes)
    if balance_classes:
        raise ValueError("balance_classes needs packed files (official .npz files carry no class ids)")
    raw = read_splits(resolved)
    return dataset_from_splits(raw, max_seq_len, random_scale_factor, augment_stroke_prob, seed)


def describe_dataset(path: str | Path) -> dict:
    """What `data info` shows about one file, packed or official.

    Keys: path, format ("sketchrnn-packed" or "npz"), version, classes, splits (per split: count,
    points, class_counts, length_histogram indexed by number of points), max_seq_len (N_max over
    all splits) and scale_factor (what `load_dataset` of this file alone would use; None without
    training sketches).
    """
    from .packed import describe_packed, is_packed

    path = resolve(path)
    if is_packed(path):
        return describe_packed(path)
    data = load_npz(path)
    name = path.stem
    n_max = max((len(s) for sketches in data.values() for s in sketches), default=0)
    splits = {}
    for split, sketches in data.items():
        lengths = np.array([len(s) for s in sketches], dtype=np.int64)
        splits[split] = {
            "count": len(sketches),
            "points": int(lengths.sum()),
            "class_counts": {name: len(sketches)},
            "length_histogram": np.bincount(lengths).tolist() if len(lengths) else [],
        }
    scale = None
    if data.get("train"):
        scale = float(np.float32(SketchDataset(data["train"], n_max).normalizing_scale_factor()))
    return {"path": str(path), "format": "npz", "version": None, "classes": [name], "splits": splits,
            "max_seq_len": n_max, "scale_factor": scale}


def dataset_from_splits(
    raw: dict[str, list[np.ndarray]],
    max_seq_len: int | None = None,
    random_scale_factor: float = 0.15,
    augment_stroke_prob: float = 0.10,
    seed: int | None = None,
) -> SketchData:
    """Build train/valid/test from stroke-3 sketches already in memory (see `load_dataset`)."""
    if not raw.get("train"):
        raise ValueError("the training split is empty")
    if max_seq_len is None:
        max_seq_len = max(len(s) for name in SPLITS for s in raw.get(name, []))

    def make(name: str, scale: float, split_seed: int | None) -> SketchDataset:
        augment = (random_scale_factor, augment_stroke_prob) if name == "train" else (0.0, 0.0)
        return SketchDataset(raw.get(name, []), max_seq_len, scale, *augment, split_seed)

    return shared_scale_splits(make, max_seq_len, seed)


def random_subset(total: int, n: int, seed: int) -> np.ndarray:
    """`n` distinct positions out of `total` (all of them if fewer), drawn from `seed`, in increasing order."""
    return np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))


def pick_sketches(path: str | Path, split: str = "train", n: int = 16, seed: int = 0,
                  category: str | None = None) -> list[tuple[np.ndarray, str]]:
    """`n` random sketches (stroke-3, data units) of one split of a dataset file, each with its class name.

    Reads only the chosen sketches of a packed file; `category` keeps one class.
    """
    from .packed import is_packed, open_packed

    path = resolve(path)
    if is_packed(path):
        with open_packed(path) as packed:
            if split not in packed:
                raise DataFileError(f"{path}: has no {split!r} split")
            arrays, names = packed[split], packed.class_names
            classes = np.asarray(arrays.classes)
            candidates = np.arange(len(arrays))
            if category is not None:
                if category not in names:
                    raise ValueError(f"{path}: no class {category!r} (classes: {', '.join(names[:20])}"
                                     f"{', ...' if len(names) > 20 else ''})")
                candidates = np.flatnonzero(classes == names.index(category))
            chosen = candidates[random_subset(len(candidates), n, seed)]
            return [(arrays.read(int(i)), names[int(classes[i])]) for i in chosen]
    sketches = read_splits([path])[split] if is_drawing_source(path) else load_npz(path).get(split)
    if sketches is None:
        raise DataFileError(f"{path}: has no {split!r} split")
    name = path.stem
    if category is not None and category != name:
        raise ValueError(f"{path}: an official file holds one class ({name!r}), not {category!r}")
    return [(np.asarray(sketches[i]), name) for i in random_subset(len(sketches), n, seed)]
