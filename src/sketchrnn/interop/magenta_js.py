"""magenta-js ``.gen.json`` models (decoder-only sketch-rnn, as `@magenta/sketch` loads them).

A file is ``[info, dims, blobs]``: `dims` gives the shapes of output_w, output_b, W_xh, W_hh and
the LSTM bias; each blob is base64 of little-endian int16, dequantised as ``int16 · 10 / 32767``
in float32. The info dict comes in several versions (6 with ``mode: 2``, older ones with
``mode: "gen"`` and extra keys); only `scale_factor` and `max_seq_len` are read from it.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

import numpy as np

from ..hparams import HParams
from ..model import SketchRNN
from .magenta_tf import from_tf_variables

MAX_WEIGHT = 10.0
NAMES = ("output_w", "output_b", "W_xh", "W_hh", "bias")


class ModelFileError(ValueError):
    """A model file is missing, unreadable or not the expected format (message starts with the path)."""


def _dequantize(blob: str, shape: list[int], path: Path, name: str) -> np.ndarray:
    try:
        raw = np.frombuffer(base64.b64decode(blob, validate=True), dtype="<i2")
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: weight {name} is not base64 int16 data ({exc})") from None
    if raw.size != int(np.prod(shape)):
        raise ModelFileError(f"{path}: weight {name} has {raw.size} values, dims say {shape}")
    # JS computes maxWeight * raw / 32767 in float64 and stores it in a Float32Array
    return (MAX_WEIGHT * raw.astype(np.float64) / 32767.0).astype(np.float32).reshape(shape)


def read_gen_json(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The info dict and the dequantised weights (our names) of a ``.gen.json`` file."""
    path = Path(path)
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: not a magenta-js model (not JSON: {exc})") from None
    if not (isinstance(content, list) and len(content) == 3 and isinstance(content[0], dict)):
        raise ModelFileError(f"{path}: not a magenta-js model (expected [info, dims, blobs])")
    info, dims, blobs = content
    if not (isinstance(dims, list) and isinstance(blobs, list) and len(dims) == len(blobs) == len(NAMES)):
        raise ModelFileError(
            f"{path}: expected {len(NAMES)} weight shapes and blobs (a decoder-only LSTM model), "
            f"found {len(dims) if isinstance(dims, list) else '?'}"
        )
    weights = {name: _dequantize(blob, list(shape), path, name) for name, shape, blob in zip(NAMES, dims, blobs)}
    for key in ("scale_factor", "max_seq_len"):
        if not isinstance(info.get(key), (int, float)):
            raise ModelFileError(f"{path}: info has no numeric {key!r}")
    return info, weights


def load_gen_json(path: str | Path) -> SketchRNN:
    """An unconditional LSTM SketchRNN with the weights of a magenta-js ``.gen.json`` model."""
    path = Path(path)
    info, w = read_gen_json(path)
    out_w, w_xh = w["output_w"], w["W_xh"]
    units = w["W_hh"].shape[0]
    if out_w.shape[0] != units or (out_w.shape[1] - 3) % 6 or w_xh.shape != (5, 4 * units):
        raise ModelFileError(f"{path}: inconsistent weight shapes {[list(v.shape) for v in w.values()]}")
    hps = HParams(
        conditional=False,
        dec_model="lstm",
        dec_rnn_size=units,
        num_mixture=(out_w.shape[1] - 3) // 6,
        max_seq_len=int(info["max_seq_len"]),
        use_recurrent_dropout=False,
        is_training=False,
    )
    prefix = "vector_rnn/RNN"
    variables = {
        f"{prefix}/output_w": out_w,
        f"{prefix}/output_b": w["output_b"],
        f"{prefix}/LSTMCell/W_xh": w_xh,
        f"{prefix}/LSTMCell/W_hh": w["W_hh"],
        f"{prefix}/LSTMCell/bias": w["bias"],
    }
    try:
        model = from_tf_variables(variables, hps, scale_factor=float(info["scale_factor"]))
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    return model.eval()
