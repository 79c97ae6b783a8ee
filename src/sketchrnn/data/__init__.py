"""Sketch data: stroke formats, Quick, Draw! ndjson and SVG conversion, official and packed dataset files."""

from .convert import (
    ConvertReport,
    Converted,
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
from .dataset import Batch, MemorySplit, SketchData, SketchDataset, SketchSplit, dataset_from_splits
from .load import describe_dataset, load_dataset, pick_sketches, read_splits
from .errors import DataFileError
from .npz import load_npz, save_npz
from .packed import (
    PackedArrays,
    PackedFile,
    PackedSplit,
    PackedWriter,
    describe_packed,
    is_packed,
    load_packed_dataset,
    open_packed,
    save_packed,
)
from .sources import download
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
from .svg import read_svg

__all__ = [
    "Batch", "ConvertReport", "MemorySplit", "Converted", "DataFileError", "END_TOKEN", "PackedArrays", "PackedFile", "PackedSplit",
    "PackedWriter", "Problem", "ProblemLog", "START_TOKEN", "SketchData", "SketchDataset", "SketchSplit",
    "augment_strokes", "build_splits", "convert_files", "dataset_from_splits", "describe_dataset", "describe_packed",
    "download", "drawing_to_stroke3", "get_bounds", "is_packed", "is_raw_drawing", "iter_ndjson", "lines_to_strokes",
    "load_dataset", "load_npz", "load_packed_dataset", "open_packed", "pad_batch", "pick_sketches", "random_scale",
    "read_ndjson", "read_splits", "read_svg", "save_npz", "save_packed", "scale_bound", "simplify_raw",
    "strokes_to_lines", "to_big_strokes", "to_normal_strokes",
]
