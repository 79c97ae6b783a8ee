"""Fast time loops for the cells: the same maths as their `step`, with a hand-written backward through time.

Autograd records a dozen nodes per time step and multiplies out the recurrent weight gradient one
step at a time. Here the forward loop runs without recording anything and keeps what the backward
needs on a tape (a small dataclass per cell); the backward loop does the per-step work with one
small matrix multiply (the gradient into h), and the recurrent weight gradient is one large
multiply over all steps at the end. The input term x_t W_x + const is formed step by step inside
the loop from its factors, so no [B, T, 4n] projection is ever stored.

- `lstm.py`, `layer_norm.py`, `hyper.py`: one cell's loop each (an autograd Function, its tape and
  an inference step for the sampler). The cells in `cells.py` call them from `sequence`,
  `sequences` and `inference_step`.
- `backends.py`: the element-wise rest of a step, as fused C++ kernels or PyTorch operations,
  chosen once per tensor kind (`backend_for`).
- `work.py`: the work-buffer pool, owned by whatever runs the steps, and the loops' bookkeeping.

This package imports nothing from the cells: the cells import it.
"""

from .backends import FORGET_BIAS, LN_EPSILON, backend_for
from .hyper import HyperWeights, hyper_inference_step, hyper_sequence
from .layer_norm import Norms, layer_norm_lstm_sequence, ln_inference_step
from .lstm import lstm_inference_step, lstm_sequence
from .work import WorkBuffers, input_weight_grad

__all__ = [
    "FORGET_BIAS",
    "HyperWeights",
    "LN_EPSILON",
    "Norms",
    "WorkBuffers",
    "backend_for",
    "hyper_inference_step",
    "hyper_sequence",
    "input_weight_grad",
    "layer_norm_lstm_sequence",
    "ln_inference_step",
    "lstm_inference_step",
    "lstm_sequence",
]
