"""The packed dataset format: millions of sketches in one memory-mapped file.

A packed file is an uncompressed (``ZIP_STORED``) ``.npz`` archive, so plain
``np.load(path, allow_pickle=False)`` reads it, and each member's data sits at a fixed offset in
the file, where it is memory-mapped directly. Members:

``format.npy``         0-d unicode ``"sketchrnn-packed"`` (the marker)
``version.npy``        0-d int64 format version (1)
``class_names.npy``    ``[C]`` fixed-width unicode class names
``<split>.points.npy``  ``[P, 3]`` int16: every point ``(dx, dy, p)`` of the split, sketch after sketch
``<split>.offsets.npy`` ``[n + 1]`` int64: sketch ``i`` is ``points[offsets[i]:offsets[i + 1]]``
``<split>.classes.npy`` ``[n]`` int16 (int32 above 32767 classes): class id of every sketch

Members' data start on 64-byte boundaries (padding in the zip extra field). Opening maps the
arrays (``open_packed(path)["train"].points`` etc.) and reads a few hundred bytes. Whole-split
passes (lengths, scale factor, checks) read chunks, and training batches read their own sketches,
with positioned reads (``preadv``) rather than through the map, so the process's resident memory
stays at index arrays plus a chunk however large the file is.

`format.py` holds the constants, `write.py` the writer, `read.py` the reader and the split that
training reads.
"""

from .format import FORMAT_NAME, FORMAT_VERSION
from .read import PackedArrays, PackedFile, PackedSplit, describe_packed, is_packed, load_packed_dataset, open_packed
from .write import PackedWriter, save_packed

__all__ = [
    "FORMAT_NAME", "FORMAT_VERSION", "PackedArrays", "PackedFile", "PackedSplit", "PackedWriter",
    "describe_packed", "is_packed", "load_packed_dataset", "open_packed", "save_packed",
]
