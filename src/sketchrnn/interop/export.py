"""Export a model for the other sketch-rnn implementations: the one dispatcher behind ``sketchrnn export``.

Formats, by the name of the target when none is given:

- ``gen.json`` (``NAME.gen.json``): an unconditional LSTM decoder, as ``@magenta/sketch`` loads it
  (``new ms.SketchRNN(url)``) and as the original ``sketch_rnn.js`` reads it (mode 2);
- ``vae.json`` (``NAME.vae.json``): a conditional LSTM encoder and decoder, the 17 blobs that
  ``sketch_rnn.js`` reads (the current ``@magenta/sketch`` reads no VAE files);
- ``tf`` (a folder, any other name): a magenta TensorFlow checkpoint folder, written by
  ``sketchrnn.interop.tf_write.write_checkpoint(model, directory, trainer=None)`` with a run's
  optimizer state where the exported checkpoint has one.

The JSON files are written by `write_gen_json` / `write_vae_json` (int16, ``round(w · 32767 / 10)``),
but only for what the JavaScript libraries can run; anything else is refused with one line
(`ExportError`) before a byte is written:

- LayerNorm or Hyper cells (both libraries have a plain LSTM cell only);
- a conditional model to ``.gen.json`` (its decoder needs z) or an unconditional one to ``.vae.json``;
- a mixture size other than 20: both libraries fix it (``@magenta/sketch``'s ``this.NMIXTURE = 20``
  with ``tf.split(z, [3, NOUT * 6])``, which fails on any other output width; ``sketch_rnn.js``'s
  ``N_mixture = 20`` with ``z.slice([3 + NOUT * k, ...])``, which silently returns 20 wrong numbers
  per block);
- a weight beyond ±10, the int16 format's range (named: the largest one);
- a path that cannot be written (then too nothing is left: the write is atomic, `sketchrnn.atomic`).

The file's info dict is the current official one: ``mode`` (2 for gen, 0 for vae), ``version`` (6),
``name`` (the file's stem unless `info` says), ``scale_factor`` (the model's own, the one it was
trained with), ``max_seq_len``; exported from a training run, also ``r_loss`` and ``kl_loss`` (the
exported checkpoint's validation costs), ``training_size`` (training sketches) and
``training_steps`` (the checkpoint's step): `run_info`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from ..model import SketchRNN

FORMATS = ("gen.json", "vae.json", "tf")
JS_MIXTURES = (20,)  # the only num_mixture both JavaScript libraries read (see the module docstring)
JS_LIBRARIES = {"gen.json": "@magenta/sketch and sketch_rnn.js", "vae.json": "sketch_rnn.js"}


class ExportError(ValueError):
    """A model cannot be exported as asked (one line: what, and what to do instead)."""


@dataclass
class Exported:
    """What `export` wrote."""

    path: Path
    format: str
    info: dict[str, Any] = field(default_factory=dict)
    values: int = 0  # weights written
    max_error: float | None = None  # largest |w − w read back| (None: stored exactly, float32)
    max_error_at: str | None = None  # the TF variable it is in

    def summary(self) -> str:
        """One line for the command line."""
        what = f"wrote {self.path} ({self.format}, {self.values:,d} weights"
        if self.max_error is None:
            return what + ", float32 as they are)"
        return (what + f"; largest quantisation error {self.max_error:.3g}, in {self.max_error_at}; "
                f"int16 step {10 / 32767:.3g})")


def format_of(path: str | Path, format: str | None = None) -> str:
    """The export format: `format` when given (checked against the name), else from the name's suffix."""
    name = Path(path).name
    named = next((f for f in ("gen.json", "vae.json") if name.endswith("." + f)), None)
    if format is not None:
        if format not in FORMATS:
            raise ExportError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
        if named is not None and named != format:
            raise ExportError(f"{path}: the name says {named}, the format asked is {format}: "
                              f"rename the target or leave the format out")
        return format
    if named is not None:
        return named
    if name.endswith(".json"):
        raise ExportError(f"{path}: name the file NAME.gen.json (decoder only) or NAME.vae.json (with the "
                          f"encoder), or give the format (gen.json, vae.json; a folder for tf)")
    return "tf"


def run_info(run_dir: str | Path, which: str = "best") -> dict[str, Any]:
    """``r_loss``, ``kl_loss``, ``training_size`` and ``training_steps`` of a run's checkpoint `which`.

    The losses are the checkpoint's validation costs (the evaluation stored with it, else the
    validation logged at its step, else the last training step logged by then); the size is the
    run's count of training sketches, the steps the checkpoint's own.
    """
    from ..train.checkpoint import POINTER, checkpoint_dir, read_pointer, read_run, stored_costs

    run_dir = Path(run_dir)
    description = read_run(run_dir)
    directory = checkpoint_dir(run_dir, which)
    pointer = read_pointer(run_dir)
    step = next((pointer.get(f"{w}_step") for w in ("best", "last")
                 if pointer.get(w) and (run_dir / pointer[w]).resolve() == directory.resolve()), None)
    if not isinstance(step, int):
        raise ValueError(f"{run_dir / POINTER}: no step recorded for {directory.name}")
    out: dict[str, Any] = {}
    counts = description.get("counts") or {}
    if isinstance(counts.get("train"), int):
        out["training_size"] = counts["train"]
    out["training_steps"] = step
    costs = stored_costs(directory)
    if costs is None:
        costs = _logged_costs(run_dir / "metrics.jsonl", step)
    if costs is not None:
        out["r_loss"] = float(costs["r_cost"])
        out["kl_loss"] = float(costs["kl_cost"])
    return out


def _logged_costs(path: Path, step: int) -> dict | None:
    """The validation costs logged at `step`, else the last training costs logged at or before it."""
    valid = train = None
    if not path.is_file():
        return None
    for line in path.read_text().splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line torn by a crash
        if not isinstance(event, dict) or not isinstance(event.get("step"), int) or event["step"] > step:
            continue
        if not all(isinstance(event.get(k), (int, float)) for k in ("r_cost", "kl_cost")):
            continue
        if event.get("kind") == "valid" and event["step"] == step:
            valid = event
        elif event.get("kind") == "train":
            train = event
    return valid or train


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".gen.json", ".vae.json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def check_javascript(model: "SketchRNN", format: str) -> None:
    """Raise `ExportError` (one line) unless the JavaScript libraries can run `model` from a `format` file."""
    import numpy as np

    from .magenta_js import GEN_BLOBS, MAX_WEIGHT, VAE_BLOBS
    from .magenta_tf import to_tf_variables

    hps = model.hps
    target = f".{format}"
    libraries = JS_LIBRARIES[format]
    if format == "gen.json" and hps.conditional:
        raise ExportError(f"a conditional model (with an encoder) cannot go to {target}: its decoder needs z; "
                          f"export it as NAME.vae.json (sketch_rnn.js reads those)")
    if format == "vae.json" and not hps.conditional:
        raise ExportError(f"an unconditional model (decoder only) cannot go to {target}: "
                          f"export it as NAME.gen.json")
    cells = [("decoder", "dec_model", hps.dec_model)]
    if hps.conditional:
        cells.insert(0, ("encoder", "enc_model", hps.enc_model))
    for part, key, cell in cells:
        if cell != "lstm":
            raise ExportError(f"{libraries} can run LSTM cells only; this model's {part} is {key}={cell}: "
                              f"train with {key}=lstm to export to {target} (or export it as tf)")
    if hps.num_mixture not in JS_MIXTURES:
        raise ExportError(f"{libraries} can read only {JS_MIXTURES[0]} mixture components; this model has "
                          f"num_mixture={hps.num_mixture}: train with num_mixture={JS_MIXTURES[0]} "
                          f"to export to {target} (or export it as tf)")
    names = (GEN_BLOBS if format == "gen.json" else VAE_BLOBS).values()
    variables = to_tf_variables(model)
    peak, where = max((float(np.abs(variables[n]).max()), n) for n in names)
    if not np.isfinite(peak):
        raise ExportError(f"weight {where} is not finite: nothing to export")
    if peak > MAX_WEIGHT:
        value = variables[where].reshape(-1)[int(np.argmax(np.abs(variables[where])))]
        raise ExportError(f"weight {where} is {value:.6g}, beyond the ±{MAX_WEIGHT:g} that {target} files hold "
                          f"(int16 · {MAX_WEIGHT:g} / 32767): it would be clipped, so the model is not exported "
                          f"(export it as tf)")


def _read_back(model: "SketchRNN", path: Path, format: str) -> tuple[dict, float, str, int]:
    """The file's info, the largest |our weight − the file's, as its reader dequantises it|, its TF
    variable, and the count of weights."""
    import numpy as np

    from .magenta_js import GEN_BLOBS, VAE_BLOBS, read_gen_json, read_vae_json
    from .magenta_tf import to_tf_variables

    blobs = GEN_BLOBS if format == "gen.json" else VAE_BLOBS
    written, stored = (read_gen_json if format == "gen.json" else read_vae_json)(path)
    variables = to_tf_variables(model)
    errors = [(float(np.abs(stored[b].astype(np.float64) - variables[tf]).max()), tf) for b, tf in blobs.items()]
    worst, where = max(errors)
    return written, worst, where, sum(int(stored[b].size) for b in blobs)


def export(model: "SketchRNN | str | Path", path: str | Path, format: str | None = None,
           info: Mapping[str, Any] | None = None, which: str = "best",
           scale_factor: float | None = None) -> Exported:
    """Write `model` for another implementation: a ``.gen.json``, a ``.vae.json``, or a magenta TF folder.

    `model` is a `SketchRNN`, or anything `sketchrnn.load` takes (a run, a saved model, a model
    file, an official name; `which` picks a run's checkpoint, `scale_factor` is a magenta folder's, as
    for `sketchrnn.load`); from a run the file's info gets the run's losses, size and steps
    (`run_info`), and a tf export of a run or a magenta folder keeps its optimizer state and step. `format` is ``"gen.json"``, ``"vae.json"`` or
    ``"tf"``, from the name of `path` when None. `info` adds to or replaces entries of the info
    dict, except ``mode``, ``version``, ``scale_factor`` and ``max_seq_len``, which are the model's.
    Raises `ExportError` (a ValueError, one line) for what the target cannot hold; nothing is then
    written. Returns what was written, with the largest quantisation error.
    """
    path = Path(path)
    format = format_of(path, format)
    extra: dict[str, Any] = {}
    source: Path | None = None
    if not hasattr(model, "hps"):
        from .. import load
        from ..train.checkpoint import is_run_dir
        from ..zoo import model_path

        source = model_path(model)
        if source.is_dir() and is_run_dir(source):
            extra = run_info(source, which)
        model = load(source, which, scale_factor)
    if format == "tf":
        return _export_tf(model, path, _trainer_of(source, which, model) if source is not None else None)
    check_javascript(model, format)
    from .magenta_js import write_gen_json, write_vae_json

    merged = {"name": _stem(path), **extra, **(info or {})}
    writer = write_gen_json if format == "gen.json" else write_vae_json
    if path.is_dir():
        raise ExportError(f"{path}: is a folder; a {format} export is one file: give a file name")
    try:
        writer(model, path, info=merged)
    except OSError as exc:
        raise ExportError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    written, worst, where, count = _read_back(model, path, format)
    return Exported(path, format, written, count, worst, where)


def _trainer_of(source: Path, which: str, model: "SketchRNN"):
    """The optimizer state and step that go with `model`, read from `source`: a run's checkpoint
    `which` where it has one (the latest does), a magenta folder's own; else None."""
    from ..train.checkpoint import is_run_dir, load_trainer_state, read_pointer
    from .tf_checkpoint import is_checkpoint_dir

    if is_checkpoint_dir(source):  # its weights are `model` already: only the optimizer's tensors are new
        from .tf_bundle import read_bundle
        from .tf_write import bundle_prefix, trainer_state

        try:
            return trainer_state(model, read_bundle(bundle_prefix(source)))
        except ValueError as exc:
            raise ValueError(f"{source}: {exc}") from None
    if not (source.is_dir() and is_run_dir(source)):
        return None
    pointer = read_pointer(source)
    if which == "best" and pointer.get("best") and pointer.get("best_step") != pointer.get("last_step"):
        return None  # a best checkpoint older than the latest: its optimizer state is gone
    return load_trainer_state(source)[1]  # the latest checkpoint's (the best one's, when they share a step)


def _export_tf(model: "SketchRNN", path: Path, trainer) -> Exported:
    from . import tf_write
    if path.exists() and not path.is_dir():
        raise ExportError(f"{path}: is a file; a tf export is a folder")
    try:
        written = tf_write.write_checkpoint(model, path, trainer=trainer)
    except OSError as exc:
        raise ExportError(f"{path}: cannot write there ({exc.strerror or exc})") from None
    count = sum(int(p.numel()) for p in model.parameters())
    return Exported(Path(written) if written is not None else path, "tf", {}, count)
