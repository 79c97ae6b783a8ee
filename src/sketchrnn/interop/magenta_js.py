"""magenta-js model files: ``.gen.json`` (decoder only) and ``.vae.json`` (encoder and decoder).

A file is ``[info, dims, blobs]``: `dims` gives each weight's shape; each blob is base64 of
little-endian int16, dequantised as ``int16 · 10 / 32767`` in float32 (written back as
``round(w · 32767 / 10)``, clipped to ±32767). The info dict comes in several versions (6 with
``mode: 2`` for gen files, ``mode`` 0 or 1 for VAE files; older gen files have ``mode: "gen"`` and
extra keys); `scale_factor`, `max_seq_len`, and for VAE files `version`, are read from it.

Gen files hold output_w, output_b, W_xh, W_hh and the LSTM bias (as `@magenta/sketch` loads them).
VAE files hold 17 weights in the order of the original library (``sketch_rnn.js``, the only one
that reads them): see `VAE_BLOBS` and `load_vae_json`.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path

import numpy as np

from typing import Any, Mapping

from ..atomic import atomic_write_bytes
from ..hparams import HParams
from ..model import SketchRNN
from .magenta_tf import from_tf_variables, to_tf_variables

MAX_WEIGHT = 10.0
NAMES = ("output_w", "output_b", "W_xh", "W_hh", "bias")
# gen file blob → magenta's TF variable
GEN_BLOBS = {
    "output_w": "vector_rnn/RNN/output_w",
    "output_b": "vector_rnn/RNN/output_b",
    "W_xh": "vector_rnn/RNN/LSTMCell/W_xh",
    "W_hh": "vector_rnn/RNN/LSTMCell/W_hh",
    "bias": "vector_rnn/RNN/LSTMCell/bias",
}
# VAE file blob (sketch_rnn.js's own names, in file order) → magenta's TF variable
VAE_BLOBS = {
    "enc_fw_lstm_W_xh": "vector_rnn/ENC_RNN/fw/LSTMCell/W_xh",
    "enc_fw_lstm_W_hh": "vector_rnn/ENC_RNN/fw/LSTMCell/W_hh",
    "enc_fw_lstm_bias": "vector_rnn/ENC_RNN/fw/LSTMCell/bias",
    "enc_bw_lstm_W_xh": "vector_rnn/ENC_RNN/bw/LSTMCell/W_xh",
    "enc_bw_lstm_W_hh": "vector_rnn/ENC_RNN/bw/LSTMCell/W_hh",
    "enc_bw_lstm_bias": "vector_rnn/ENC_RNN/bw/LSTMCell/bias",
    "enc_mu_w": "vector_rnn/ENC_RNN_mu/super_linear_w",
    "enc_mu_b": "vector_rnn/ENC_RNN_mu/super_linear_b",
    "enc_sigma_w": "vector_rnn/ENC_RNN_sigma/super_linear_w",  # σ̂ (presig): sigma = exp(σ̂ / 2)
    "enc_sigma_b": "vector_rnn/ENC_RNN_sigma/super_linear_b",
    "enc_w": "vector_rnn/linear/super_linear_w",  # the initial-state layer, columns [c | h]
    "enc_b": "vector_rnn/linear/super_linear_b",
    "dec_output_w": "vector_rnn/RNN/output_w",
    "dec_output_b": "vector_rnn/RNN/output_b",
    "dec_lstm_W_xh": "vector_rnn/RNN/LSTMCell/W_xh",
    "dec_lstm_W_hh": "vector_rnn/RNN/LSTMCell/W_hh",
    "dec_lstm_bias": "vector_rnn/RNN/LSTMCell/bias",
}
VAE_MODES = (0, 1)  # sketch_rnn.js: "0 or 1 - vae, 2 - gen"
VAE_MODE_WRITTEN = 0
GEN_MODES = (2, "gen")


class ModelFileError(ValueError):
    """A model file is missing, unreadable or not the expected format (message starts with the path)."""


def _dequantize(blob: str, shape: list[int], path: Path, name: str, numjs: bool = False) -> np.ndarray:
    if not (isinstance(shape, list) and len(shape) in (1, 2)
            and all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)):
        raise ModelFileError(f"{path}: weight {name} has no valid shape (dims entry {shape!r})")
    try:
        raw = np.frombuffer(base64.b64decode(blob, validate=True), dtype="<i2")
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ModelFileError(f"{path}: weight {name} is not base64 int16 data ({exc})") from None
    if raw.size != int(np.prod(shape)):
        raise ModelFileError(f"{path}: weight {name} has {raw.size} values, dims say {shape}")
    if numjs:  # sketch_rnn.js: a float32 array, .divide(32767) then .multiply(10), each rounded to float32
        return ((raw.astype(np.float32) / np.float32(32767.0)) * np.float32(MAX_WEIGHT)).reshape(shape)
    # @magenta/sketch computes maxWeight * raw / 32767 in float64 and stores it in a Float32Array
    return (MAX_WEIGHT * raw.astype(np.float64) / 32767.0).astype(np.float32).reshape(shape)


def _read_content(path: Path) -> tuple[dict, list, list]:
    """``[info, dims, blobs]`` of a magenta-js file, checked only that far."""
    try:
        content = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: not a magenta-js model (not JSON: {exc})") from None
    if not (isinstance(content, list) and len(content) == 3 and isinstance(content[0], dict)
            and isinstance(content[1], list) and isinstance(content[2], list)):
        raise ModelFileError(f"{path}: not a magenta-js model (expected [info, dims, blobs])")
    return content[0], content[1], content[2]


def _check_info(info: dict, path: Path) -> None:
    for key in ("scale_factor", "max_seq_len"):
        value = info.get(key)
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise ModelFileError(f"{path}: info has no numeric {key!r}")


def _is_mode(mode: Any, modes: tuple) -> bool:
    return not isinstance(mode, bool) and mode in modes  # JSON true is not mode 1


def read_gen_json(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The info dict and the dequantised weights (our names) of a ``.gen.json`` file."""
    path = Path(path)
    return _gen_weights(*_read_content(path), path)


def _gen_weights(info: dict, dims: list, blobs: list, path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    if not (isinstance(dims, list) and isinstance(blobs, list) and len(dims) == len(blobs) == len(NAMES)):
        raise ModelFileError(
            f"{path}: expected {len(NAMES)} weight shapes and blobs (a decoder-only LSTM model), "
            f"found {len(dims) if isinstance(dims, list) else '?'}"
        )
    weights = {name: _dequantize(blob, shape, path, name) for name, shape, blob in zip(NAMES, dims, blobs)}
    _check_info(info, path)
    return info, weights


def load_gen_json(path: str | Path) -> SketchRNN:
    """An unconditional LSTM SketchRNN with the weights of a magenta-js ``.gen.json`` model."""
    path = Path(path)
    return _gen_model(*read_gen_json(path), path)


def _gen_model(info: dict, w: dict[str, np.ndarray], path: Path) -> SketchRNN:
    out_w, w_xh = w["output_w"], w["W_xh"]
    units = w["W_hh"].shape[0]
    if out_w.ndim != 2 or out_w.shape[0] != units or (out_w.shape[1] - 3) % 6 or w_xh.shape != (5, 4 * units):
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


# ---------------------------------------------------------------------------------------- VAE files
def read_vae_json(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """The info dict and the dequantised weights (`VAE_BLOBS` names) of a ``.vae.json`` file."""
    path = Path(path)
    return _vae_weights(*_read_content(path), path)


def _vae_weights(info: dict, dims: list, blobs: list, path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    if not (len(dims) == len(blobs) == len(VAE_BLOBS)):
        raise ModelFileError(
            f"{path}: expected {len(VAE_BLOBS)} weight shapes and blobs (a VAE model), "
            f"found {len(dims)} shapes and {len(blobs)} blobs"
        )
    if not _is_mode(info.get("mode"), VAE_MODES):
        raise ModelFileError(f"{path}: info mode {info.get('mode')!r} is not a VAE model's (0 or 1)")
    _check_info(info, path)
    version = info.get("version")
    if version is not None and (not isinstance(version, (int, float)) or isinstance(version, bool)):
        raise ModelFileError(f"{path}: info version {version!r} is not a number")
    weights = {name: _dequantize(blob, shape, path, name, numjs=True)
               for name, shape, blob in zip(VAE_BLOBS, dims, blobs)}
    return info, weights


def _vae_shapes(w: dict[str, np.ndarray], path: Path) -> tuple[int, int, int, int]:
    """(enc_rnn_size, dec_rnn_size, z_size, num_mixture) from the file's shapes, each shape checked."""
    for name in ("enc_fw_lstm_W_hh", "dec_lstm_W_hh", "enc_w", "dec_output_w"):
        if w[name].ndim != 2:
            raise ModelFileError(f"{path}: weight {name} must be 2-D, has shape {list(w[name].shape)}")
    enc, dec, z = w["enc_fw_lstm_W_hh"].shape[0], w["dec_lstm_W_hh"].shape[0], w["enc_w"].shape[0]
    out = w["dec_output_w"].shape[1]
    if out <= 3 or (out - 3) % 6:
        raise ModelFileError(f"{path}: weight dec_output_w has {out} columns, not 6·M + 3")
    expected = {
        "enc_fw_lstm_W_xh": (5, 4 * enc), "enc_fw_lstm_W_hh": (enc, 4 * enc), "enc_fw_lstm_bias": (4 * enc,),
        "enc_bw_lstm_W_xh": (5, 4 * enc), "enc_bw_lstm_W_hh": (enc, 4 * enc), "enc_bw_lstm_bias": (4 * enc,),
        "enc_mu_w": (2 * enc, z), "enc_mu_b": (z,), "enc_sigma_w": (2 * enc, z), "enc_sigma_b": (z,),
        "enc_w": (z, 2 * dec), "enc_b": (2 * dec,),
        "dec_output_w": (dec, out), "dec_output_b": (out,),
        "dec_lstm_W_xh": (5 + z, 4 * dec), "dec_lstm_W_hh": (dec, 4 * dec), "dec_lstm_bias": (4 * dec,),
    }
    for name, shape in expected.items():
        if w[name].shape != shape:
            raise ModelFileError(f"{path}: weight {name} has shape {list(w[name].shape)}, expected "
                                 f"{list(shape)} (encoder {enc}, decoder {dec}, z {z} units)")
    return enc, dec, z, (out - 3) // 6


def load_vae_json(path: str | Path) -> SketchRNN:
    """A conditional LSTM SketchRNN (encoder and decoder) with the weights of a magenta-js ``.vae.json`` model.

    The reference is the original library, ``sketch_rnn.js`` (the current `@magenta/sketch` reads
    no VAE files); where it and magenta's TF code could differ, we follow it and the file:

    - Blobs, in order: the encoder's forward LSTM (W_xh, W_hh, bias) and backward LSTM, μ (w, b),
      σ̂ (w, b; the library calls it sigma and takes ``sqrt(exp(σ̂))``), the initial-state layer
      (w, b), the decoder's output layer (w, b) and LSTM. They map onto magenta's TF variables
      (`VAE_BLOBS`) and so onto our model through `from_tf_variables`. M is read from the output
      layer's width (the library assumes M = 20).
    - Initial state: ``tanh(z W + b)`` split as ``[c | h]``, c first, as magenta's LSTMCell packs it.
    - ``info.version < 6``: z passes through tanh before the initial-state layer, as the library's
      ``get_init_state_from_latent_vector`` does (its ``update`` and magenta's TF code feed the
      decoder z itself, and so do we; the library's own ``decode`` skips the tanh altogether). The
      model remembers this as `SketchRNN.tanh_z_for_initial_state`. Files of version 6 (or none)
      are exactly magenta's TF model.
    - Scale: our `scale_factor` is ``info.scale_factor``, strokes in the file's data units; this is
      the library with ``set_pixel_factor(1)`` (its default pixel factor 2 halves the scale factor,
      for drawing on retina canvases).
    - The first decoder input is our start token (0, 0, 1, 0, 0), magenta's TF sampler's; the
      library's own ``decode`` (and its ``zero_input``) feeds (0, 0, 0, 0, 0) instead. We keep the
      reference's start token, on which the model was trained.
    - Weights dequantise as the library reads them: a float32 array divided by 32767, then
      multiplied by 10, each step rounded to float32.

    `encode`, `reconstruct` and `interpolate` then work as on a model of ours.
    """
    path = Path(path)
    return _vae_model(*read_vae_json(path), path)


def _vae_model(info: dict, w: dict[str, np.ndarray], path: Path) -> SketchRNN:
    enc, dec, z, m = _vae_shapes(w, path)
    try:
        hps = HParams(
            conditional=True,
            enc_model="lstm",
            dec_model="lstm",
            enc_rnn_size=enc,
            dec_rnn_size=dec,
            z_size=z,
            num_mixture=m,
            max_seq_len=int(info["max_seq_len"]),
            use_recurrent_dropout=False,
            is_training=False,
        )
        model = from_tf_variables({VAE_BLOBS[k]: v for k, v in w.items()}, hps,
                                  scale_factor=float(info["scale_factor"]))
    except ValueError as exc:
        raise ModelFileError(f"{path}: {exc}") from None
    version = info.get("version")
    model.tanh_z_for_initial_state = version is not None and version < 6
    return model.eval()


def load_magenta_js(path: str | Path) -> SketchRNN:
    """A magenta-js model file, decoder-only or VAE as its info's `mode` says (as ``sketch_rnn.js`` decides).

    Mode 2 or ``"gen"``: `load_gen_json`; mode 0 or 1: `load_vae_json`; any other mode is read as a
    VAE file when it has 17 blobs (and then refused for its mode), else as a gen file.
    """
    path = Path(path)
    info, dims, blobs = _read_content(path)
    mode = info.get("mode")
    if _is_mode(mode, VAE_MODES) or (not _is_mode(mode, GEN_MODES) and len(dims) == len(VAE_BLOBS)):
        return _vae_model(*_vae_weights(info, dims, blobs, path), path)
    return _gen_model(*_gen_weights(info, dims, blobs, path), path)


# ---------------------------------------------------------------------------------------- writers
def quantize(weight: np.ndarray) -> str:
    """base64 of little-endian int16 ``round(w · 32767 / 10)``, clipped to ±32767 (the files' format)."""
    q = np.clip(np.round(np.asarray(weight, dtype=np.float64) * (32767.0 / MAX_WEIGHT)), -32767, 32767)
    return base64.b64encode(q.astype("<i2").tobytes()).decode("ascii")


def _write(path: str | Path, info: dict, weights: list[np.ndarray]) -> Path:
    content = [info, [list(w.shape) for w in weights], [quantize(w) for w in weights]]
    return atomic_write_bytes(Path(path), json.dumps(content, separators=(",", ":")).encode("utf-8"))


def _file_info(model: SketchRNN, info: Mapping[str, Any] | None, mode: int | str, version: int) -> dict:
    extra = dict(info or {})
    out = {"mode": mode, "version": version, "max_seq_len": int(model.hps.max_seq_len),
           "name": extra.pop("name", "sketchrnn"), "scale_factor": float(model.scale_factor)}  # the official order
    for key in ("mode", "version", "max_seq_len", "scale_factor"):
        extra.pop(key, None)
    return {**out, **extra}


def _lstm_only(model: SketchRNN, conditional: bool, what: str) -> None:
    hps = model.hps
    cells = [hps.dec_model] + ([hps.enc_model] if conditional else [])
    if bool(hps.conditional) != conditional or any(c != "lstm" for c in cells):
        kind = "a conditional model with LSTM encoder and decoder" if conditional \
            else "an unconditional model with an LSTM decoder"
        raise ValueError(f"{what} needs {kind}; this one is conditional={int(hps.conditional)}, "
                         f"enc_model={hps.enc_model}, dec_model={hps.dec_model}")


def write_vae_json(model: SketchRNN, path: str | Path, info: Mapping[str, Any] | None = None) -> Path:
    """Write a conditional LSTM model as a magenta-js ``.vae.json`` file, int16-quantised; returns the path.

    `info` adds entries to the file's info dict (``name``, ``r_loss``, ...); `mode` (0),
    `version` (6, or 5 for a model with `tanh_z_for_initial_state`), `max_seq_len` and
    `scale_factor` always come from the model. Weights beyond ±10 are clipped, as in the official
    files. ``sketch_rnn.js`` reads only files with ``num_mixture = 20``.
    """
    _lstm_only(model, True, "write_vae_json")
    variables = to_tf_variables(model)
    version = 5 if model.tanh_z_for_initial_state else 6
    return _write(path, _file_info(model, info, VAE_MODE_WRITTEN, version),
                  [variables[tf] for tf in VAE_BLOBS.values()])


def write_gen_json(model: SketchRNN, path: str | Path, info: Mapping[str, Any] | None = None) -> Path:
    """Write an unconditional LSTM model as a magenta-js ``.gen.json`` file (mode 2, version 6), as `write_vae_json`."""
    _lstm_only(model, False, "write_gen_json")
    variables = to_tf_variables(model)
    return _write(path, _file_info(model, info, 2, 6), [variables[tf] for tf in GEN_BLOBS.values()])
