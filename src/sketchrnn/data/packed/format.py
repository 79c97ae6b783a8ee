"""The packed file format's constants, shared by its writer (`write.py`) and its reader (`read.py`)."""

from __future__ import annotations

import struct

import numpy as np

FORMAT_NAME = "sketchrnn-packed"
FORMAT_VERSION = 1
INT16 = np.iinfo(np.int16)
CHUNK_POINTS = 1 << 20  # points per chunk in point scans
COPY_BYTES = 1 << 24  # bytes per copy while assembling or checking the archive
LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # a zip local file header


def class_dtype(num_classes: int) -> np.dtype:
    """The dtype of the class ids: int16, or int32 above 32767 classes."""
    return np.dtype("<i2") if num_classes <= INT16.max + 1 else np.dtype("<i4")
