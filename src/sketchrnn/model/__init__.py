"""The sketch-rnn model: recurrent cells, the time loop, the mixture density output and the VAE."""

from .cells import CELLS, HyperLSTMCell, LayerNormLSTMCell, LSTMCell, RecurrentCell, make_cell
from .fast import release_work_buffers
from .mixture import Mixture
from .vae import Loss, SketchRNN

__all__ = [
    "CELLS",
    "HyperLSTMCell",
    "LayerNormLSTMCell",
    "LSTMCell",
    "Loss",
    "Mixture",
    "RecurrentCell",
    "SketchRNN",
    "make_cell",
    "release_work_buffers",
]
