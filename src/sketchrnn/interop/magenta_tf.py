"""magenta's TensorFlow variables ⇄ our model.

Names, shapes and layout are TF's: ``x @ W`` (``[in, out]``), LSTM gates i, j, f, o, the forget
bias not folded into the stored bias, everything under the ``vector_rnn/`` scope. The TF checkpoint
importer and exporter build on this one name-by-name mapping.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..hparams import HParams
from ..model import SketchRNN

SCOPE = "vector_rnn"


class Slot:
    """Where one TF variable lives in our model: a parameter, or block `index` of a stacked one."""

    def __init__(self, param: nn.Parameter, index: int | None = None, transposed: bool = False) -> None:
        self.param, self.index, self.transposed = param, index, transposed

    def _view(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor if self.index is None else tensor[self.index]
        return tensor.T if self.transposed else tensor

    @property
    def tf_shape(self) -> tuple[int, ...]:
        return tuple(self._view(self.param).shape)

    def get(self, gradient: bool = False) -> np.ndarray:
        tensor = self.param.grad if gradient else self.param
        if tensor is None:
            tensor = torch.zeros_like(self.param)
        return self._view(tensor.detach()).to("cpu", torch.float32).contiguous().numpy()

    def set(self, value: np.ndarray) -> None:
        with torch.no_grad():
            self._view(self.param).copy_(torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)))


def variable_map(model: SketchRNN) -> dict[str, Slot]:
    """TF variable name → where it lives in our model."""
    out: dict[str, Slot] = {}

    def cell(prefix: str, module) -> None:
        for name, (param, index) in module.tf_variables().items():
            out[f"{SCOPE}/{prefix}/{name}"] = Slot(param, index)

    def linear(prefix: str, layer: nn.Linear) -> None:
        out[f"{SCOPE}/{prefix}/super_linear_w"] = Slot(layer.weight, transposed=True)
        out[f"{SCOPE}/{prefix}/super_linear_b"] = Slot(layer.bias)

    if model.hps.conditional:
        cell("ENC_RNN/fw", model.enc_fw)
        cell("ENC_RNN/bw", model.enc_bw)
        linear("ENC_RNN_mu", model.enc_mu)
        linear("ENC_RNN_sigma", model.enc_presig)
        linear("linear", model.init_state)
    out[f"{SCOPE}/RNN/output_w"] = Slot(model.output.weight, transposed=True)
    out[f"{SCOPE}/RNN/output_b"] = Slot(model.output.bias)
    cell("RNN", model.dec_cell)
    return out


def _as_hparams(hparams: HParams | Mapping[str, Any]) -> HParams:
    return hparams if isinstance(hparams, HParams) else HParams.from_dict(hparams, strict=False)


def from_tf_variables(
    variables: Mapping[str, np.ndarray], hparams: HParams | Mapping[str, Any], scale_factor: float = 1.0
) -> SketchRNN:
    """A model whose parameters are magenta's `variables` (names without ``:0``); raises on any mismatch.

    The model comes back in eval mode (no dropout), like `sketchrnn.load`; call `.train()` to fine-tune.
    """
    hps = _as_hparams(hparams)
    model = SketchRNN(hps, scale_factor=scale_factor)
    mapping = variable_map(model)
    names = {k[:-2] if k.endswith(":0") else k: k for k in variables}
    unexpected = sorted(set(names) - set(mapping))
    if unexpected:
        raise ValueError(f"unexpected TF variable {unexpected[0]!r} for this configuration ({len(unexpected)} in all)")
    missing = sorted(set(mapping) - set(names))
    if missing:
        raise ValueError(f"missing TF variable {missing[0]!r} ({len(missing)} missing in all)")
    for name, slot in mapping.items():
        value = np.asarray(variables[names[name]], dtype=np.float32)
        if value.shape != slot.tf_shape:
            raise ValueError(f"TF variable {name!r} has shape {list(value.shape)}, expected {list(slot.tf_shape)}")
        slot.set(value)
    return model.eval()


def to_tf_variables(model: SketchRNN, gradients: bool = False) -> dict[str, np.ndarray]:
    """Our parameters (or, with `gradients`, their ``.grad``) under magenta's names, TF layout, float32."""
    return {name: slot.get(gradient=gradients) for name, slot in variable_map(model).items()}
