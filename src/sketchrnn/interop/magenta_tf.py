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


def variable_map(model: SketchRNN) -> dict[str, tuple[nn.Parameter, bool]]:
    """TF variable name → (our parameter, whether TF stores it transposed relative to ours)."""
    out: dict[str, tuple[nn.Parameter, bool]] = {}

    def cell(prefix: str, module) -> None:
        for name, param in module.tf_variables().items():
            out[f"{SCOPE}/{prefix}/{name}"] = (param, False)

    def linear(prefix: str, layer: nn.Linear) -> None:
        out[f"{SCOPE}/{prefix}/super_linear_w"] = (layer.weight, True)
        out[f"{SCOPE}/{prefix}/super_linear_b"] = (layer.bias, False)

    if model.hps.conditional:
        cell("ENC_RNN/fw", model.enc_fw)
        cell("ENC_RNN/bw", model.enc_bw)
        linear("ENC_RNN_mu", model.enc_mu)
        linear("ENC_RNN_sigma", model.enc_presig)
        linear("linear", model.init_state)
    out[f"{SCOPE}/RNN/output_w"] = (model.output.weight, True)
    out[f"{SCOPE}/RNN/output_b"] = (model.output.bias, False)
    cell("RNN", model.dec_cell)
    return out


def _as_hparams(hparams: HParams | Mapping[str, Any]) -> HParams:
    return hparams if isinstance(hparams, HParams) else HParams.from_dict(hparams, strict=False)


def from_tf_variables(
    variables: Mapping[str, np.ndarray], hparams: HParams | Mapping[str, Any], scale_factor: float = 1.0
) -> SketchRNN:
    """A model whose parameters are magenta's `variables` (names without ``:0``); raises on any mismatch."""
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
    with torch.no_grad():
        for name, (param, transposed) in mapping.items():
            value = np.asarray(variables[names[name]], dtype=np.float32)
            expected = tuple(param.T.shape if transposed else param.shape)
            if value.shape != expected:
                raise ValueError(f"TF variable {name!r} has shape {list(value.shape)}, expected {list(expected)}")
            tensor = torch.from_numpy(value.copy())
            param.copy_(tensor.T if transposed else tensor)
    return model


def to_tf_variables(model: SketchRNN, gradients: bool = False) -> dict[str, np.ndarray]:
    """Our parameters (or, with `gradients`, their ``.grad``) under magenta's names, TF layout, float32."""
    out = {}
    for name, (param, transposed) in variable_map(model).items():
        tensor = param.grad if gradients else param
        if tensor is None:
            tensor = torch.zeros_like(param)
        tensor = tensor.detach().to("cpu", torch.float32)
        out[name] = (tensor.T if transposed else tensor).contiguous().numpy()
    return out
