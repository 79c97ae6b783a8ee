"""Safe reading and writing of sketch-rnn ``.npz`` datasets.

The official sketch-rnn datasets are zip archives holding ``train.npy``,
``valid.npy`` and ``test.npy``.  Each member is a 1-D object array whose
elements are ``[n, 3]`` stroke-3 arrays (``dx, dy, pen_lifted``), pickled by
Python 2 (or, for a few files, Python 3).

``numpy.load(..., allow_pickle=True)`` would execute whatever a pickle asks
for, so this module reads the pickled members with a restricted unpickler
that can only rebuild plain numpy arrays and dtypes.  Every problem with a
data file -- missing, not a zip, truncated, a hostile or malformed pickle,
arrays that are not stroke-3 sketches -- is reported as a
:class:`DataFileError` whose one-line message starts with the file path.
"""

from __future__ import annotations

import ast
import io
import os
import pickle
import struct
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO, Callable, NoReturn, Union

import numpy as np
from numpy.lib import format as npy_format

from ..atomic import atomic_write
from .errors import DataFileError, not_a_zip, one_line, reason

__all__ = ["DataFileError", "load_npz", "save_npz"]

PathLike = Union[str, os.PathLike]


# ---------------------------------------------------------------------------
# The few numpy internals a data-file pickle legitimately refers to.


def _import_numpy_internal(module_suffix: str, name: str) -> Callable[..., Any] | None:
    """Return ``numpy._core.<suffix>.<name>`` (or the pre-2.0 ``numpy.core`` one)."""
    import importlib

    try:
        mod = importlib.import_module(f"numpy._core.{module_suffix}")
        return getattr(mod, name)
    except (ImportError, AttributeError):
        pass
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            mod = importlib.import_module(f"numpy.core.{module_suffix}")
            return getattr(mod, name)
        except (ImportError, AttributeError):
            return None


_np_reconstruct = _import_numpy_internal("multiarray", "_reconstruct")
_np_frombuffer = _import_numpy_internal("numeric", "_frombuffer")

_RECONSTRUCT_MODULES = {"numpy.core.multiarray", "numpy._core.multiarray"}
_FROMBUFFER_MODULES = {"numpy.core.numeric", "numpy._core.numeric"}
_LATIN1_NAMES = {"latin1", "latin-1"}


class _Refusal(Exception):
    """Raised inside unpickling when a pickle asks for something not allowed."""


class _NdarrayToken:
    """Stands in for ``numpy.ndarray`` inside a pickle.

    A pickle only needs ``numpy.ndarray`` as the type argument of
    ``_reconstruct``; calling ``ndarray(...)`` directly could build an object
    array over arbitrary bytes, so the token itself cannot be instantiated.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> NoReturn:
        raise _Refusal("calls numpy.ndarray directly, which a data file never needs")


def _is_int_tuple(value: Any) -> bool:
    return isinstance(value, tuple) and all(
        isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value
    )


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that can only rebuild numpy arrays and dtypes."""

    def __init__(self, stream: BinaryIO, path: str, member: str) -> None:
        super().__init__(stream, encoding="latin1", fix_imports=True)
        self._path = path
        self._member = member

    def _refuse(self, what: str) -> NoReturn:
        raise DataFileError(
            f"{self._path}: refusing to load: the pickle in {self._member} {what}"
        )

    def find_class(self, module: str, name: str) -> Any:
        if name == "_reconstruct" and module in _RECONSTRUCT_MODULES and _np_reconstruct:
            return self._reconstruct
        if name == "_frombuffer" and module in _FROMBUFFER_MODULES and _np_frombuffer:
            return self._frombuffer
        if module == "numpy" and name == "ndarray":
            return _NdarrayToken
        if module == "numpy" and name == "dtype":
            return self._dtype
        if module == "_codecs" and name == "encode":
            return self._codecs_encode
        self._refuse(f"asks for {module}.{name}, which a data file never needs")

    # Each wrapper checks its arguments are what numpy itself writes.

    def _reconstruct(self, subtype: Any, shape: Any, dtype: Any) -> np.ndarray:
        if subtype is not _NdarrayToken:
            self._refuse("calls _reconstruct for something other than numpy.ndarray")
        if not _is_int_tuple(shape) or int(np.prod(shape)) != 0:
            self._refuse(f"calls _reconstruct with an unexpected shape {shape!r}")
        if not isinstance(dtype, (str, bytes)):
            self._refuse("calls _reconstruct with an unexpected dtype argument")
        assert _np_reconstruct is not None
        return _np_reconstruct(np.ndarray, shape, dtype)

    def _frombuffer(self, buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
        if not isinstance(buf, (bytes, bytearray, pickle.PickleBuffer)):
            self._refuse("calls _frombuffer on something other than bytes")
        if not isinstance(dtype, np.dtype) or dtype.hasobject:
            self._refuse("calls _frombuffer with an object or unexpected dtype")
        if not _is_int_tuple(shape) or order not in ("C", "F"):
            self._refuse("calls _frombuffer with an unexpected shape or order")
        assert _np_frombuffer is not None
        return _np_frombuffer(buf, dtype, shape, order)

    def _dtype(self, obj: Any, align: Any = False, copy: Any = False) -> np.dtype:
        if not isinstance(obj, str) or len(obj) > 16:
            self._refuse("builds a numpy.dtype from something other than a short type code")
        if not isinstance(align, (bool, int)) or not isinstance(copy, (bool, int)):
            self._refuse("builds a numpy.dtype with unexpected flags")
        return np.dtype(obj, bool(align), bool(copy))

    def _codecs_encode(self, *args: Any) -> bytes:
        if (
            len(args) == 2
            and isinstance(args[0], str)
            and isinstance(args[1], str)
            and args[1].lower() in _LATIN1_NAMES
        ):
            return args[0].encode("latin1")
        self._refuse("calls _codecs.encode with arguments other than (str, 'latin1')")

    def persistent_load(self, pid: Any) -> NoReturn:
        self._refuse("uses persistent ids, which a data file never needs")


# ---------------------------------------------------------------------------
# Reading


def _read_npy_header(fp: BinaryIO) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Read the ``.npy`` magic and header; return (shape, fortran_order, dtype)."""
    version = npy_format.read_magic(fp)
    if version == (1, 0):
        return npy_format.read_array_header_1_0(fp)
    if version == (2, 0):
        return npy_format.read_array_header_2_0(fp)
    if version == (3, 0):
        # Same as 2.0 except the header text is UTF-8.
        (hlen,) = struct.unpack("<I", fp.read(4))
        if hlen > 100_000:
            raise ValueError(f"npy header of {hlen} bytes is implausibly long")
        raw = fp.read(hlen)
        if len(raw) != hlen:
            raise ValueError("npy header is truncated")
        header = ast.literal_eval(raw.decode("utf8"))
        if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
            raise ValueError("npy header is not the expected dictionary")
        shape = header["shape"]
        if not _is_int_tuple(shape) or not isinstance(header["fortran_order"], bool):
            raise ValueError("npy header has a bad shape or fortran_order")
        return shape, header["fortran_order"], npy_format.descr_to_dtype(header["descr"])
    raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")


def _read_member(data: bytes, path: str, member: str) -> np.ndarray:
    """Decode one ``.npy`` member's bytes into an array, safely."""
    fp = io.BytesIO(data)
    try:
        shape, _fortran, dtype = _read_npy_header(fp)
    except Exception as exc:
        raise DataFileError(f"{path}: {member} has a bad .npy header ({reason(exc)})") from exc

    if not dtype.hasobject:
        fp.seek(0)
        try:
            return npy_format.read_array(fp, allow_pickle=False)
        except Exception as exc:
            raise DataFileError(
                f"{path}: could not read {member} ({reason(exc)})"
            ) from exc

    try:
        result = _SafeUnpickler(fp, path, member).load()
    except DataFileError:
        raise
    except _Refusal as exc:
        raise DataFileError(
            f"{path}: refusing to load: the pickle in {member} {one_line(str(exc))}"
        ) from None
    except Exception as exc:
        raise DataFileError(
            f"{path}: could not unpickle {member} ({reason(exc)})"
        ) from exc
    if not isinstance(result, np.ndarray):
        raise DataFileError(
            f"{path}: {member} unpickled to a {type(result).__name__}, not an array"
        )
    if result.shape != tuple(shape):
        raise DataFileError(
            f"{path}: {member} unpickled to shape {result.shape}, "
            f"but its header says {tuple(shape)}"
        )
    return result


def _is_numeric(dtype: np.dtype) -> bool:
    return dtype.kind in "iuf" and dtype.fields is None


def _check_sketch(value: Any, path: str, label: str) -> np.ndarray:
    """Return ``value`` if it is a numeric [n, 3] array, else raise."""
    if not isinstance(value, np.ndarray):
        raise DataFileError(
            f"{path}: {label} is a {type(value).__name__}; expected a numeric [n, 3] array"
        )
    if not _is_numeric(value.dtype):
        raise DataFileError(
            f"{path}: {label} has dtype {value.dtype.str}; expected numeric stroke-3 rows"
        )
    if value.ndim != 2 or value.shape[1] != 3 or value.shape[0] < 1:
        raise DataFileError(
            f"{path}: {label} has shape {value.shape}; expected [n, 3] stroke-3 rows"
        )
    if value.dtype.kind in "fc" and not np.isfinite(value).all():  # one NaN would make every loss NaN
        row = int(np.flatnonzero(~np.isfinite(value).all(axis=1))[0])
        raise DataFileError(f"{path}: {label} has a value that is not a finite number (row {row})")
    return value


def _to_sketches(array: np.ndarray, path: str, split: str) -> list[np.ndarray]:
    """Turn one member's array into a validated list of stroke-3 sketches."""
    if array.dtype == np.dtype(object):
        if array.ndim != 1:
            raise DataFileError(
                f"{path}: {split} is an object array of shape {array.shape}; "
                "expected a 1-D array of sketches"
            )
        return [_check_sketch(item, path, f"{split}[{i}]") for i, item in enumerate(array)]
    if not _is_numeric(array.dtype):
        raise DataFileError(
            f"{path}: {split} has dtype {array.dtype.str}; expected stroke-3 sketches"
        )
    if array.ndim == 3 and array.shape[-1] == 3:
        # Equal-length sketches stacked into one [k, n, 3] block.
        return [_check_sketch(array[i], path, f"{split}[{i}]") for i in range(array.shape[0])]
    if array.ndim == 2 and array.shape[-1] == 3:
        # A single sketch stored as a plain [n, 3] array.
        return [_check_sketch(array, path, f"{split}[0]")]
    raise DataFileError(
        f"{path}: {split} has shape {array.shape}; expected sketches of [n, 3] stroke-3 rows"
    )


def load_npz(path: PathLike) -> dict[str, list[np.ndarray]]:
    """Load a sketch-rnn ``.npz`` dataset without running code from it.

    Returns a dict mapping each split name (the member name without
    ``.npy``, e.g. ``"train"``) to a list of ``[n, 3]`` numeric stroke-3
    arrays, in file order.  A plain numeric ``[k, n, 3]`` member is read as
    ``k`` sketches and a plain ``[n, 3]`` member as one sketch.

    Raises:
        DataFileError: the file is missing, is not a readable ``.npz``,
            contains a pickle that asks for anything beyond plain numpy
            arrays, or holds arrays that are not stroke-3 sketches.
    """
    spath = os.fspath(path)
    if not os.path.exists(spath):
        raise DataFileError(f"{spath}: no such file")
    if not os.path.isfile(spath):
        raise DataFileError(f"{spath}: not a regular file")

    try:
        archive = zipfile.ZipFile(spath, "r")
    except zipfile.BadZipFile as exc:
        raise not_a_zip(spath) from exc
    except OSError as exc:
        raise DataFileError(f"{spath}: cannot open ({reason(exc)})") from exc
    except Exception as exc:
        raise DataFileError(
            f"{spath}: not a valid .npz file ({reason(exc)})"
        ) from exc

    splits: dict[str, list[np.ndarray]] = {}
    with archive:
        members = [info for info in archive.infolist() if info.filename.endswith(".npy")]
        if not members:
            raise DataFileError(f"{spath}: the archive holds no .npy arrays")
        for info in members:
            member = info.filename
            split = member[: -len(".npy")]
            if split in splits:
                raise DataFileError(f"{spath}: the archive holds {member} more than once")
            try:
                data = archive.read(info)
            except Exception as exc:
                raise DataFileError(
                    f"{spath}: could not read {member} from the archive "
                    f"(truncated or corrupt zip: {reason(exc)})"
                ) from exc
            array = _read_member(data, spath, member)
            splits[split] = _to_sketches(array, spath, split)
    return splits


# ---------------------------------------------------------------------------
# Writing


def _prepare_sketch(value: Any, dtype: np.dtype, label: str) -> np.ndarray:
    """Validate one sketch and convert it to ``dtype``."""
    arr = np.asarray(value)
    if not (_is_numeric(arr.dtype) or arr.dtype.kind == "b"):
        raise ValueError(f"{label} has dtype {arr.dtype.str}; expected numeric stroke-3 rows")
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] < 1:
        raise ValueError(f"{label} has shape {arr.shape}; expected [n, 3] stroke-3 rows")
    if dtype.kind in "iu":
        if arr.dtype.kind == "f":
            if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
                raise ValueError(f"{label} has non-integral values; cannot store as {dtype}")
        info = np.iinfo(dtype)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise ValueError(f"{label} has values outside the range of {dtype}")
    return np.ascontiguousarray(arr.astype(dtype, copy=False))


def save_npz(
    path: PathLike,
    splits: Mapping[str, Sequence[np.ndarray]],
    compressed: bool = True,
    dtype: Any = np.int16,
) -> None:
    """Write ``splits`` as a sketch-rnn ``.npz`` in the official layout.

    Each split becomes ``<name>.npy``, a 1-D object array of ``[n, 3]``
    arrays of ``dtype`` (int16 by default).  The file appears atomically:
    either the complete new file is at ``path`` or the old one is untouched.
    The result can be read back with :func:`load_npz`.

    Raises:
        ValueError: a split name is unusable, or a sketch is not ``[n, 3]``
            numeric data that fits ``dtype``.
    """
    target = np.dtype(dtype)
    if not _is_numeric(target):
        raise ValueError(f"dtype must be a numeric type, not {target}")

    arrays: dict[str, np.ndarray] = {}
    for name, sketches in splits.items():
        if not isinstance(name, str) or not name or "/" in name or "\\" in name:
            raise ValueError(f"split name {name!r} is not a plain non-empty name")
        column = np.empty(len(sketches), dtype=object)
        for i, sketch in enumerate(sketches):
            column[i] = _prepare_sketch(sketch, target, f"{name}[{i}]")
        arrays[name] = column

    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED

    def write(fh) -> None:
        with zipfile.ZipFile(fh, "w", compression=method, allowZip64=True) as archive:
            for name, column in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    npy_format.write_array(member, column, allow_pickle=True)

    atomic_write(path, write)
