"""The sketch-rnn model: recurrent cells, the time loop, the mixture density output and the VAE."""

from .cells import HyperLSTMCell, LayerNormLSTMCell, LSTMCell, RecurrentCell, cell_class, make_cell
from .fast import WorkBuffers
from .mixture import Mixture
from .vae import Loss, SketchRNN

__all__ = [
    "HyperLSTMCell",
    "LayerNormLSTMCell",
    "LSTMCell",
    "Loss",
    "Mixture",
    "RecurrentCell",
    "SketchRNN",
    "WorkBuffers",
    "cell_class",
    "make_cell",
]
