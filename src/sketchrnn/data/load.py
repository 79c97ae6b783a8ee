"""Datasets from files of any format: the dispatch above the formats.

Official `.npz` files (`npz.py`), packed files (`packed.py`) and drawings to convert (ndjson and
SVG, `convert.py`) are told apart here and nowhere else; the formats themselves know nothing of
each other. To add a data format: a reader module beside them, and a branch in `read_splits`,
`load_dataset`, `describe_dataset` and `pick_sketches`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .convert import DRAWING_SUFFIXES, build_splits
from .dataset import SPLITS, MemorySplit, SketchData, dataset_from_splits, require_splits
from .errors import DataFileError
from .npz import load_npz
from .packed import describe_packed, is_packed, load_packed_dataset, open_packed
from .sources import resolve


def is_drawing_source(path: Path) -> bool:
    """Whether `path` holds drawings to convert (.ndjson, .svg, or a directory of them), not a dataset file."""
    return path.is_dir() or path.suffix.lower() in DRAWING_SUFFIXES


def read_splits(paths: Sequence[str | Path]) -> dict[str, list[np.ndarray]]:
    """Load several files (paths, the bundled name, or official names) and concatenate each split.

    Packed files give int16 views into their memory maps, in file order. Quick, Draw! ndjson and
    SVG files (or directories of them) are converted in memory as `sketchrnn data convert` would,
    with its default 90/5/5 split per category.
    """
    merged: dict[str, list[np.ndarray]] = {name: [] for name in SPLITS}
    for path in map(resolve, paths):
        packed = open_packed(path) if is_packed(path) else None
        if packed is not None:
            data = packed.splits
        elif is_drawing_source(path):
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
    if isinstance(paths, (str, Path)):
        paths = [paths]
    resolved = [resolve(p) for p in paths]
    packed = [p for p in resolved if is_packed(p)]
    if packed:
        official = [p for p in resolved if p not in packed]
        if official:
            other = official[0]
            if other.suffix.lower() == ".npz":
                raise DataFileError(f"{other}: an official .npz cannot be mixed with packed files ({packed[0]}) in one "
                                    "--data: train on the official files alone or on packed files alone")
            raise DataFileError(f"{other}: drawings cannot be mixed with packed files ({packed[0]}) in one --data: "
                                "convert them into a packed file too (sketchrnn data convert), or pass them alone")
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
    path = resolve(path)
    if is_packed(path):
        return describe_packed(path)
    data = load_npz(path)
    name = path.stem
    n_max = max((len(s) for sketches in data.values() for s in sketches), default=0)
    splits = {}
    # train, valid, test first (as for packed files), whatever order the .npz stores them in
    for split in sorted(data, key=lambda k: (SPLITS.index(k) if k in SPLITS else len(SPLITS), k)):
        sketches = data[split]
        lengths = np.array([len(s) for s in sketches], dtype=np.int64)
        splits[split] = {
            "count": len(sketches),
            "points": int(lengths.sum()),
            "class_counts": {name: len(sketches)},
            "length_histogram": np.bincount(lengths).tolist() if len(lengths) else [],
        }
    scale = None
    if data.get("train"):
        scale = float(np.float32(MemorySplit(data["train"], n_max).normalizing_scale_factor()))
    return {"path": str(path), "format": "npz", "version": None, "classes": [name], "splits": splits,
            "max_seq_len": n_max, "scale_factor": scale}


def random_subset(total: int, n: int, seed: int) -> np.ndarray:
    """`n` distinct positions out of `total` (all of them if fewer), drawn from `seed`, in increasing order."""
    return np.sort(np.random.default_rng(seed).choice(total, size=min(n, total), replace=False))


def pick_sketches(path: str | Path, split: str = "train", n: int = 16, seed: int = 0,
                  category: str | None = None) -> list[tuple[np.ndarray, str]]:
    """`n` random sketches (stroke-3, data units) of one split of a dataset file, each with its class name.

    Reads only the chosen sketches of a packed file; `category` keeps one class.
    """
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
