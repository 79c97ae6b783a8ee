"""Datasets of sketches as the reference prepares them.

N_max is the longest sketch over all splits of all files (or an explicit bound that drops longer
sketches); values are clamped to ±1000; offsets are divided by one scale factor, the population
std of every training dx and dy; training batches are drawn at random and augmented; evaluation
batches are consecutive over the length-sorted split. All randomness comes from one
``numpy.random.RandomState`` per split, so a seed reproduces the reference's own draws.

`SketchSplit` is what training needs from a split; `MemorySplit` holds a split in memory (official
files, converted drawings), `sketchrnn.data.packed.PackedSplit` serves packed files from disk;
`SketchData` is a dataset, its three splits. Which one a file gives is decided in `load.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .errors import DataFileError
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

    def sample_indices(self, batch_size: int, rng: np.random.RandomState | None = None) -> np.ndarray:
        """The indices of the next random batch (draws from `rng`, by default the split's own)."""
        raise NotImplementedError

    def augmented(self, index: int, rng: np.random.RandomState | None = None) -> np.ndarray:
        """The sketch at `index`, randomly scaled and with points dropped (draws from `rng`, by default the split's)."""
        rng = self.rng if rng is None else rng
        s = random_scale(self.sketch(index), self.random_scale_factor, rng)
        if self.augment_stroke_prob > 0:
            s = augment_strokes(s, self.augment_stroke_prob, rng)
        return s

    def batch_from_indices(self, indices: Sequence[int],
                           rngs: Sequence[np.random.RandomState] | None = None) -> Batch:
        """Augment the sketches at `indices` (fresh draws each call: from the split's generator, or
        sketch k's from `rngs[k]`) and pad them into a batch."""
        sketches = [self.augmented(int(i), None if rngs is None else rngs[k]) for k, i in enumerate(indices)]
        lengths = np.array([len(s) for s in sketches], dtype=np.int64)
        return Batch(pad_batch(sketches, self.max_seq_len), lengths)

    def check_batch_size(self, batch_size: int) -> None:
        """ValueError when a random batch of `batch_size` cannot be drawn from this split."""
        if batch_size > len(self):
            raise ValueError(f"batch_size={batch_size} is larger than the split ({len(self)} sketches)")

    def random_batch(self, batch_size: int) -> Batch:
        """A random batch of `batch_size` sketches (see `sample_indices`)."""
        self.check_batch_size(batch_size)
        return self.batch_from_indices(self.sample_indices(batch_size))

    def batch_at(self, seed: int, step: int, batch_size: int, positions: Sequence[int]) -> Batch:
        """Positions `positions` of step `step`'s random batch of `batch_size`, where which sketches
        form the batch and how each is augmented are functions of (seed, step, position) alone:
        processes that each take a share of the positions together make the batch one process would
        (see `sketchrnn.train.parallel`). Reads only the chosen sketches."""
        self.check_batch_size(batch_size)
        indices = self.sample_indices(batch_size, np.random.RandomState([seed, step]))
        return self.batch_from_indices([indices[p] for p in positions],
                                       [np.random.RandomState([seed, step, p + 1]) for p in positions])

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


class MemorySplit(SketchSplit):
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

    def sample_indices(self, batch_size: int, rng: np.random.RandomState | None = None) -> np.ndarray:
        """Random indices without repeats, as the reference draws them (a permutation of the split)."""
        return (self.rng if rng is None else rng).permutation(len(self))[:batch_size]


SketchDataset = MemorySplit  # the name of earlier releases, kept for code that uses it


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

    def make(name: str, scale: float, split_seed: int | None) -> MemorySplit:
        augment = (random_scale_factor, augment_stroke_prob) if name == "train" else (0.0, 0.0)
        return MemorySplit(raw.get(name, []), max_seq_len, scale, *augment, split_seed)

    return shared_scale_splits(make, max_seq_len, seed)


