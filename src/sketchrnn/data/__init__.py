"""Sketch data: stroke formats, the safe loader of official ``.npz`` files, and datasets."""

from .dataset import Batch, SketchData, SketchDataset, dataset_from_splits, load_dataset, read_splits
from .npz import DataFileError, load_npz, save_npz
from .strokes import (
    END_TOKEN,
    START_TOKEN,
    augment_strokes,
    get_bounds,
    lines_to_strokes,
    pad_batch,
    random_scale,
    scale_bound,
    strokes_to_lines,
    to_big_strokes,
    to_normal_strokes,
)

__all__ = [
    "Batch", "DataFileError", "END_TOKEN", "START_TOKEN", "SketchData", "SketchDataset", "augment_strokes",
    "dataset_from_splits", "get_bounds", "lines_to_strokes", "load_dataset", "load_npz", "pad_batch",
    "random_scale", "read_splits", "save_npz", "scale_bound", "strokes_to_lines", "to_big_strokes",
    "to_normal_strokes",
]
