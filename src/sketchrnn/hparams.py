"""Hyperparameters: one dataclass with magenta's names and defaults.

`HParams.parse` reads magenta's override syntax (``"dec_model=lstm,z_size=64,data_set=[a.npz,b.npz]"``);
`HParams.from_dict` / `to_magenta_dict` read and write the dicts of magenta's ``model_config.json``
(booleans stored as 0/1).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

# The one table of cells: each enc_model / dec_model name and the class that implements it, as
# "module:Class" (imported when a model is built, so that reading settings needs no torch) or as
# the class itself. A new cell is a subclass of `sketchrnn.model.cells.RecurrentCell` and a line here
# (or, from outside the package, ``CELLS["name"] = MyCell``).
CELLS: dict[str, str | type] = {
    "lstm": "sketchrnn.model.cells:LSTMCell",
    "layer_norm": "sketchrnn.model.cells:LayerNormLSTMCell",
    "hyper": "sketchrnn.model.cells:HyperLSTMCell",
}

# Model sizes for `sketchrnn train --preset`: overrides on top of magenta's defaults.
PRESETS: dict[str, dict[str, object]] = {
    # seconds per hundred steps on two cores: for tests and first tries (2000 steps in about two minutes
    # draw woolly sheep bodies; a bigger model in the same two minutes drew fewer complete ones)
    "tiny": dict(enc_rnn_size=32, dec_rnn_size=64, z_size=16, num_mixture=5, batch_size=32, save_every=250),
    # a useful model in an afternoon on a laptop
    "small": dict(enc_rnn_size=128, dec_rnn_size=256, z_size=64, num_mixture=10, batch_size=64, save_every=250),
    # the reference defaults (the paper's and magenta's)
    "paper": dict(),
}


# the settings that shape the network (the rest are about data and training)
ARCHITECTURE = ("conditional", "dec_model", "dec_rnn_size", "num_mixture", "max_seq_len",
                "enc_model", "enc_rnn_size", "z_size")


@dataclass
class HParams:
    """Every setting of a sketch-rnn model and its training, as magenta's `get_default_hparams`."""

    data_set: list[str] = field(default_factory=lambda: ["aaron_sheep.npz"])
    num_steps: int = 10_000_000
    save_every: int = 500
    max_seq_len: int = 250  # N_max; replaced by the data's longest sketch when a dataset is loaded
    dec_rnn_size: int = 512
    dec_model: str = "lstm"  # a name in CELLS
    enc_rnn_size: int = 256
    enc_model: str = "lstm"  # a name in CELLS
    z_size: int = 128
    kl_weight: float = 0.5
    kl_weight_start: float = 0.01
    kl_tolerance: float = 0.2
    batch_size: int = 100
    grad_clip: float = 1.0
    num_mixture: int = 20
    learning_rate: float = 0.001
    decay_rate: float = 0.9999
    kl_decay_rate: float = 0.99995
    min_learning_rate: float = 0.00001
    use_recurrent_dropout: bool = True
    recurrent_dropout_prob: float = 0.90  # keep probability
    use_input_dropout: bool = False
    input_dropout_prob: float = 0.90  # keep probability
    use_output_dropout: bool = False
    output_dropout_prob: float = 0.90  # keep probability
    random_scale_factor: float = 0.15
    augment_stroke_prob: float = 0.10
    conditional: bool = True
    is_training: bool = True

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise ValueError naming the first setting whose value makes no sense."""
        for name in ("enc_model", "dec_model"):
            if getattr(self, name) not in CELLS:
                raise ValueError(
                    f"hparams: {name}={getattr(self, name)!r} is not a cell; choose one of {', '.join(CELLS)}"
                )
        for name in ("dec_rnn_size", "enc_rnn_size", "z_size", "batch_size", "num_mixture", "max_seq_len", "save_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"hparams: {name}={getattr(self, name)} must be at least 1")
        for name in ("recurrent_dropout_prob", "input_dropout_prob", "output_dropout_prob"):
            p = getattr(self, name)
            if not 0.0 < p <= 1.0:
                raise ValueError(f"hparams: {name}={p} is a keep probability and must lie in (0, 1]")
        if not 0.0 < self.learning_rate < math.inf:
            raise ValueError(f"hparams: learning_rate={self.learning_rate} must be a finite number > 0")
        if not self.grad_clip > 0.0:  # inf: no clipping
            raise ValueError(f"hparams: grad_clip={self.grad_clip} must be > 0 (inf: no clipping)")
        for name in ("min_learning_rate", "kl_weight", "kl_weight_start", "kl_tolerance"):
            if not 0.0 <= getattr(self, name) < math.inf:
                raise ValueError(f"hparams: {name}={getattr(self, name)} must be a finite number >= 0")
        for name in ("decay_rate", "kl_decay_rate"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"hparams: {name}={getattr(self, name)} is a decay per step and must lie in (0, 1]")
        if not 0.0 <= self.augment_stroke_prob < 1.0:
            raise ValueError(f"hparams: augment_stroke_prob={self.augment_stroke_prob} must lie in [0, 1)")
        if not 0.0 <= self.random_scale_factor < 1.0:
            raise ValueError(f"hparams: random_scale_factor={self.random_scale_factor} must lie in [0, 1)")

    # ------------------------------------------------------------------ override syntax
    @classmethod
    def preset(cls, name: str) -> "HParams":
        """The settings of preset `name` (tiny, small or paper)."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
        return cls(**PRESETS[name])  # type: ignore[arg-type]

    @classmethod
    def parse(cls, text: str, base: "HParams | None" = None) -> "HParams":
        """Apply magenta-style overrides ``"k=v,k2=v2,data_set=[a.npz,b.npz]"`` on top of `base`."""
        values = dataclasses.asdict(base if base is not None else cls())
        given: set[str] = set()
        for item in _split_overrides(text):
            if "=" not in item:
                raise ValueError(f"hparams: {item!r} is not of the form name=value")
            key, raw = (s.strip() for s in item.split("=", 1))
            if key in given:  # as magenta's HParams.parse: which one was meant is not ours to guess
                raise ValueError(f"hparams: {key} is set twice")
            given.add(key)
            values[key] = _convert(key, raw)
        return cls(**values)

    def replace(self, **changes: Any) -> "HParams":
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)

    # ------------------------------------------------------------------ model_config.json
    @classmethod
    def from_dict(cls, values: Mapping[str, Any], strict: bool = True) -> "HParams":
        """Read magenta's ``model_config.json`` dict (booleans may be 0/1); unknown keys raise when `strict`."""
        known = _field_types()
        out: dict[str, Any] = {}
        for key, value in values.items():
            if key not in known:
                if strict:
                    raise ValueError(f"hparams: unknown setting {key!r}")
                continue
            out[key] = _coerce(key, value)
        return cls(**out)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict with Python types (booleans as bool)."""
        return dataclasses.asdict(self)

    def to_magenta_dict(self) -> dict[str, Any]:
        """Dict as magenta's ``model_config.json`` stores it (booleans as 0/1)."""
        return {k: int(v) if isinstance(v, bool) else v for k, v in self.to_dict().items()}

    @classmethod
    def from_json(cls, path: str | Path) -> "HParams":
        """Read a ``model_config.json`` file."""
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path}: cannot read hyperparameters: {exc}") from exc
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a JSON object of hyperparameters, found {type(values).__name__}")
        try:
            return cls.from_dict(values)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc


@functools.lru_cache(maxsize=None)
def _field_types() -> dict[str, Any]:
    hints = typing.get_type_hints(HParams)
    return {f.name: hints[f.name] for f in fields(HParams)}


def _split_overrides(text: str) -> list[str]:
    """Split on commas that are not inside brackets."""
    items, depth, current = [], 0, []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        if ch == "," and depth == 0:
            items.append("".join(current))
            current = []
        else:
            current.append(ch)
    items.append("".join(current))
    return [s.strip() for s in items if s.strip()]


def _convert(key: str, raw: str) -> Any:
    """Turn the text of one override into the setting's type."""
    types = _field_types()
    if key not in types:
        close = difflib.get_close_matches(key, types, n=1)
        hint = f"did you mean {close[0]}? " if close else ""
        raise ValueError(f"hparams: unknown setting {key!r} ({hint}known: {', '.join(types)})")
    kind = types[key]
    if kind == list[str]:
        body = raw.strip()
        if body.startswith("[") and body.endswith("]"):
            body = body[1:-1]
        return [s.strip().strip("'\"") for s in body.split(",") if s.strip()]
    if kind is bool:
        low = raw.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ValueError(f"hparams: {key}={raw!r} is not a boolean (use true/false or 1/0)")
    try:
        if kind is int:
            number = float(raw)
            if number != int(number):
                raise ValueError
            return int(number)
        if kind is float:
            return float(raw)
    except ValueError:
        raise ValueError(f"hparams: {key}={raw!r} is not a valid {kind.__name__}") from None
    return raw


def _coerce(key: str, value: Any) -> Any:
    """Check one value read from a dict against the setting's type."""
    kind = _field_types()[key]
    if kind == list[str]:
        if isinstance(value, str):
            return [value]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
    elif kind is bool:
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
    elif kind is int:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value == int(value):
            return int(value)
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif kind is str:
        if isinstance(value, str):
            return value
    raise ValueError(f"hparams: {key}={value!r} is not a valid {getattr(kind, '__name__', kind)}")
