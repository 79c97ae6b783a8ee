"""Datasets of sketches as the reference prepares them.

N_max is the longest sketch over all splits of all files (or an explicit bound that drops longer
sketches); values are clamped to ±1000; offsets are divided by one scale factor, the population
std of every training dx and dy; training batches are drawn at random and augmented; evaluation
batches are consecutive over the length-sorted split. All randomness comes from one
``numpy.random.RandomState`` per split, so a seed reproduces the reference's own draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

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


class SketchDataset:
    """One split: normalised float32 stroke-3 sketches sorted by length, with batching and augmentation."""

    def __init__(
        self,
        sketches: Sequence[np.ndarray],
        max_seq_len: int,
        scale_factor: float = 1.0,
        random_scale_factor: float = 0.0,
        augment_stroke_prob: float = 0.0,
        seed: int | None = None,
    ) -> None:
        kept = [_clean(s) for s in sketches if len(s) <= max_seq_len]
        # the reference sorts by length with numpy's default (unstable) argsort; we do the same
        order = np.argsort([len(s) for s in kept])
        self.sketches: list[np.ndarray] = [kept[i] for i in order]
        self.max_seq_len = int(max_seq_len)
        self.scale_factor = 1.0
        self.random_scale_factor = float(random_scale_factor)
        self.augment_stroke_prob = float(augment_stroke_prob)
        self.rng = np.random.RandomState(seed)
        if scale_factor != 1.0:
            self.normalize(scale_factor)

    def __len__(self) -> int:
        return len(self.sketches)

    def lengths(self) -> np.ndarray:
        """Number of points of every sketch, in the split's order."""
        return np.array([len(s) for s in self.sketches], dtype=np.int64)

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

    def _augmented(self, index: int) -> np.ndarray:
        s = random_scale(self.sketches[index], self.random_scale_factor, self.rng)
        if self.augment_stroke_prob > 0:
            s = augment_strokes(s, self.augment_stroke_prob, self.rng)
        return s

    def batch_from_indices(self, indices: Sequence[int]) -> Batch:
        """Augment the sketches at `indices` (fresh draws each call) and pad them into a batch."""
        sketches = [self._augmented(int(i)) for i in indices]
        lengths = np.array([len(s) for s in sketches], dtype=np.int64)
        return Batch(pad_batch(sketches, self.max_seq_len), lengths)

    def random_batch(self, batch_size: int) -> Batch:
        """A random batch, sampled without replacement inside the batch (the reference's `random_batch`)."""
        if batch_size > len(self):
            raise ValueError(f"batch_size={batch_size} is larger than the split ({len(self)} sketches)")
        indices = self.rng.permutation(len(self))[:batch_size]
        return self.batch_from_indices(indices)

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


@dataclass
class SketchData:
    """The three splits of one or several files, normalised by one shared scale factor."""

    train: SketchDataset
    valid: SketchDataset
    test: SketchDataset
    max_seq_len: int
    scale_factor: float

    def split(self, name: str) -> SketchDataset:
        """The split called `name` (train, valid or test)."""
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        return getattr(self, name)


def _clean(sketch: np.ndarray) -> np.ndarray:
    """Clamp to ±1000 and convert to float32 (a copy)."""
    return np.clip(np.asarray(sketch), -CLAMP, CLAMP).astype(np.float32)


def read_splits(paths: Sequence[str | Path]) -> dict[str, list[np.ndarray]]:
    """Load several official files (paths, the bundled name, or official names) and concatenate each split."""
    merged: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for path in map(resolve, paths):
        data = load_npz(path)
        missing = [name for name in SPLITS if name not in data]
        if missing:
            raise DataFileError(f"{path}: has no {', '.join(missing)} split (found: {', '.join(sorted(data)) or 'nothing'})")
        for name in SPLITS:
            merged[name].extend(data[name])
    return merged


def load_dataset(
    paths: str | Path | Sequence[str | Path],
    max_seq_len: int | None = None,
    random_scale_factor: float = 0.15,
    augment_stroke_prob: float = 0.10,
    seed: int | None = None,
) -> SketchData:
    """Build train/valid/test from files as the reference does; `max_seq_len` drops longer sketches.

    `paths` are .npz files, "aaron_sheep" (bundled) or official Quick, Draw! names (downloaded once).

    Without `max_seq_len`, N_max is the longest sketch over all splits of all files. Augmentation
    applies to the training split only. `seed` seeds the three splits' generators (seed, seed+1, seed+2).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    raw = read_splits(paths)
    return dataset_from_splits(raw, max_seq_len, random_scale_factor, augment_stroke_prob, seed)


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
    seeds = [None if seed is None else seed + k for k in range(3)]
    train = SketchDataset(raw["train"], max_seq_len, 1.0, random_scale_factor, augment_stroke_prob, seeds[0])
    if len(train) == 0:
        raise ValueError(f"no training sketch has at most max_seq_len={max_seq_len} points")
    scale = train.normalizing_scale_factor()
    train.normalize(scale)
    valid = SketchDataset(raw.get("valid", []), max_seq_len, scale, 0.0, 0.0, seeds[1])
    test = SketchDataset(raw.get("test", []), max_seq_len, scale, 0.0, 0.0, seeds[2])
    return SketchData(train, valid, test, int(max_seq_len), float(np.float32(scale)))
