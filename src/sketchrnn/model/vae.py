"""SketchRNN: the sequence-to-sequence VAE of Ha & Eck (2017).

Encoder: a bidirectional RNN over the sketch (true lengths); its two final outputs give μ and σ̂,
and ``z = μ + exp(σ̂/2) · ε``. Decoder: an RNN whose initial state is ``tanh(W_z z + b_z)`` and whose
input at step i is ``[S_{i-1}; z]``; its outputs go through one linear layer to a mixture of M
bivariate normals and three pen-state logits. Unconditional mode keeps only the decoder.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..data.strokes import STROKE_DIM
from ..hparams import HParams
from .cells import State, glorot_uniform_, make_cell
from .mixture import (
    Mixture,
    kl_divergence,
    output_size,
    reconstruction_terms,
    sketch_log_likelihood,
    split_output,
)
from .recurrence import Projection, RowDraws, dropout_masks, last_outputs, projection, reverse_padded, run_cell, run_cells_side_by_side


@dataclass
class Loss:
    """The training objective and its parts (scalar tensors; ``cost = r_cost + kl_weight · kl_cost``)."""

    cost: Tensor
    r_cost: Tensor
    kl_cost: Tensor  # floored at kl_tolerance
    kl_raw: Tensor  # before the floor
    terms: Tensor  # per step L_s·(1−p3) + L_p (L_p masked too when asked), [B, N_max]
    r_cost_masked: Tensor  # L_R with the pen loss masked after each sketch's end (for evaluation)
    mu: Tensor | None = None
    presig: Tensor | None = None
    z: Tensor | None = None


def as_lengths(lengths: Tensor | Sequence[int] | np.ndarray, device=None) -> Tensor:
    """Lengths of any integer type or container → a 1-D int64 tensor."""
    out = torch.as_tensor(np.asarray(lengths) if not isinstance(lengths, Tensor) else lengths)
    if out.dtype.is_floating_point or out.dtype == torch.bool or out.dim() != 1:
        raise ValueError(f"lengths must be a 1-D sequence of integers, got {tuple(out.shape)} {out.dtype}")
    return out.to(device=device, dtype=torch.int64)


def _gaussian_linear(in_features: int, out_features: int) -> nn.Linear:
    """A linear layer with W ~ N(0, 0.001²) and b = 0 (magenta's super_linear for μ, σ̂ and the initial state)."""
    layer = nn.Linear(in_features, out_features)
    with torch.no_grad():
        layer.weight.normal_(0.0, 0.001)
        layer.bias.zero_()
    return layer


class SketchRNN(nn.Module):
    """The sketch-rnn model. Inputs are stroke-5 batches already divided by `scale_factor`."""

    # magenta-js files older than version 6 pass z through tanh before the initial-state layer (only
    # there: the decoder's input keeps z itself); set by their loader, False for every model of ours
    tanh_z_for_initial_state: bool = False

    def __init__(self, hps: HParams | None = None, scale_factor: float = 1.0) -> None:
        super().__init__()
        self.hps = hps = hps if hps is not None else HParams()
        self.scale_factor = float(scale_factor)
        if hps.conditional:
            self.enc_fw = make_cell(hps.enc_model, STROKE_DIM, hps.enc_rnn_size)
            self.enc_bw = make_cell(hps.enc_model, STROKE_DIM, hps.enc_rnn_size)
            self.enc_mu = _gaussian_linear(2 * hps.enc_rnn_size, hps.z_size)
            self.enc_presig = _gaussian_linear(2 * hps.enc_rnn_size, hps.z_size)
        dec_input = STROKE_DIM + (hps.z_size if hps.conditional else 0)
        self.dec_cell = make_cell(hps.dec_model, dec_input, hps.dec_rnn_size)
        if hps.conditional:
            self.init_state = _gaussian_linear(hps.z_size, self.dec_cell.state_size)
        self.output = nn.Linear(hps.dec_rnn_size, output_size(hps.num_mixture))
        with torch.no_grad():  # glorot-uniform for W and, as TF's default does for a 1-D variable, for b
            self.output.weight.copy_(glorot_uniform_(torch.empty(hps.dec_rnn_size, output_size(hps.num_mixture))).T)
            glorot_uniform_(self.output.bias)

    # ------------------------------------------------------------------ encoder
    def _recurrent_masks(self, steps: int, batch: int, units: int, ref: Tensor,
                         draws: RowDraws | None = None) -> Tensor | None:
        if not (self.training and self.hps.use_recurrent_dropout and self.hps.recurrent_dropout_prob < 1.0):
            return None
        return dropout_masks((steps, batch, units), self.hps.recurrent_dropout_prob, ref.device, ref.dtype, draws, 1)

    def encoder_last_h(self, inputs: Tensor, lengths: Tensor | Sequence[int], draws: RowDraws | None = None) -> Tensor:
        """[h_fw(length−1), h_bw(0)] of the bidirectional encoder over rows 1..length of `inputs`."""
        if not self.hps.conditional:
            raise ValueError("an unconditional model has no encoder")
        lengths = as_lengths(lengths, inputs.device)
        x = inputs[:, 1:]
        batch, steps, _ = x.shape
        cells = [self.enc_fw, self.enc_bw]
        seqs = [x, reverse_padded(x, lengths)]  # backward direction: each sketch's own points, reversed
        states = [cell.zero_state(batch, x.device, x.dtype) for cell in cells]
        masks = [self._recurrent_masks(steps, batch, cell.num_units, x, draws) for cell in cells]
        hs = run_cells_side_by_side(cells, [projection(c, s) for c, s in zip(cells, seqs)], states, masks)
        outs = [last_outputs(h, lengths) for h in hs]
        return torch.cat(outs, dim=1)

    def encode(self, inputs: Tensor, lengths: Tensor | Sequence[int],
               draws: RowDraws | None = None) -> tuple[Tensor, Tensor]:
        """(μ, σ̂) for a stroke-5 batch ``[B, N_max+1, 5]`` (S0 first); the encoder reads rows 1..length.
        `draws` gives the training dropout's random numbers (default: torch's generator)."""
        last_h = self.encoder_last_h(inputs, lengths, draws)
        return self.enc_mu(last_h), self.enc_presig(last_h)

    @staticmethod
    def reparameterize(mu: Tensor, presig: Tensor, eps: Tensor | None = None) -> Tensor:
        """z = μ + exp(σ̂/2) · ε, with ε ~ N(0, I) from torch's default generator unless given."""
        if eps is None:
            eps = torch.randn_like(mu)
        return mu + torch.exp(presig / 2) * eps

    # ------------------------------------------------------------------ decoder
    def initial_state(self, z: Tensor | None, batch_size: int, device=None, dtype=None) -> State:
        """Decoder state before the first step: tanh(W_z z + b_z), or zeros when unconditional."""
        if self.hps.conditional:
            if self.tanh_z_for_initial_state:
                z = torch.tanh(z)
            return self.dec_cell.split_state(torch.tanh(self.init_state(z)))
        return self.dec_cell.zero_state(batch_size, device, dtype)

    def _check_z(self, z: Tensor | None, batch: int) -> Tensor | None:
        if not self.hps.conditional:
            return None
        if z is None:
            raise ValueError("this model is conditional: pass z (e.g. from encode() or a prior draw)")
        if z.dim() != 2 or z.shape != (batch, self.hps.z_size):
            raise ValueError(f"z must have shape [{batch}, {self.hps.z_size}], got {list(z.shape)}")
        return z

    def decoder_input_constant(self, z: Tensor | None, batch: int, device=None, dtype=None) -> Tensor:
        """The per-sketch constant of the decoder's projected input, ``[B, P]``: z W_z plus the cell's offset.

        The decoder input is [S_{i−1}; z], so [S; z] W = S W_S + (z W_z + offset): the second term is
        computed once per sketch, not once per step.
        """
        cell = self.dec_cell
        w = cell.input_weight()
        constant = torch.zeros(w.shape[1], device=device, dtype=dtype)
        offset = cell.input_offset()
        if offset is not None:
            constant = constant + offset
        if z is not None:
            return z @ w[STROKE_DIM:] + constant
        return constant.expand(batch, -1)

    def _decoder_projection(self, x: Tensor, z: Tensor | None, draws: RowDraws | None = None) -> Projection:
        """The decoder's input term [S_{i−1}; z] W per step: S W_S + (z W_z + offset), the z part once per sketch."""
        cell = self.dec_cell
        if self.training and self.hps.use_input_dropout and self.hps.input_dropout_prob < 1.0:
            full = x if z is None else torch.cat([x, z[:, None, :].expand(-1, x.shape[1], -1)], dim=-1)
            return projection(cell, full * dropout_masks(full.shape, self.hps.input_dropout_prob, x.device, x.dtype,
                                                         draws))
        constant = self.decoder_input_constant(z, x.shape[0], x.device, x.dtype)
        return Projection(x, cell.input_weight()[:STROKE_DIM], constant)

    def decoder_hidden(self, x: Tensor, z: Tensor | None = None, state: State | None = None,
                       draws: RowDraws | None = None) -> tuple[Tensor, State]:
        """Decoder outputs h ``[B, T, dec_rnn_size]`` for inputs `x [B, T, 5]` and the final decoder state."""
        batch, steps, _ = x.shape
        z = self._check_z(z, batch)
        if state is None:
            state = self.initial_state(z, batch, x.device, x.dtype)
        masks = self._recurrent_masks(steps, batch, self.dec_cell.num_units, x, draws)
        h, state = run_cell(self.dec_cell, self._decoder_projection(x, z, draws), state, masks)
        if self.training and self.hps.use_output_dropout and self.hps.output_dropout_prob < 1.0:
            h = h * dropout_masks(h.shape, self.hps.output_dropout_prob, h.device, h.dtype, draws)
        return h, state

    def decode(self, x: Tensor, z: Tensor | None = None, state: State | None = None,
               draws: RowDraws | None = None) -> tuple[Tensor, State]:
        """Raw outputs ``[B, T, 6M+3]`` for decoder inputs `x [B, T, 5]` and the final decoder state."""
        h, state = self.decoder_hidden(x, z, state, draws)
        return self.output(h), state

    def mixture(self, inputs: Tensor, z: Tensor | None = None) -> Mixture:
        """Teacher-forced distributions for a stroke-5 batch ``[B, T, 5]`` starting with S0.

        Row t is the distribution of ``inputs[:, t+1]`` (the last row predicts past the end).
        """
        y, _ = self.decode(inputs, z)
        return split_output(y, self.hps.num_mixture)

    # ------------------------------------------------------------------ loss
    def compute_loss(
        self,
        inputs: Tensor,
        lengths: Tensor | Sequence[int],
        kl_weight: float | Tensor,
        eps: Tensor | None = None,
        mask_pen: bool = False,
        draws: RowDraws | None = None,
        global_mean: Callable[[Tensor], Tensor] | None = None,
    ) -> Loss:
        """cost = L_R + w_KL · max(L_KL, kl_tolerance) for a batch ``[B, N_max+1, 5]`` with true lengths.

        `mask_pen=False` is the reference's training and validation loss (pen loss over all N_max
        steps); `mask_pen=True` also masks the pen loss after the end of each sketch. `draws` gives
        the training step's random numbers row by row (default: torch's generator). When the batch
        is a share of a global batch, `global_mean` averages a statistic over all shares: the max
        with kl_tolerance is then decided on the global L_KL, as one process would decide it.
        """
        lengths = as_lengths(lengths, inputs.device)
        targets = inputs[:, 1:]
        mu = presig = z = None
        if self.hps.conditional:
            mu, presig = self.encode(inputs, lengths, draws)
            if eps is None and draws is not None:
                eps = draws.randn(tuple(mu.shape), 0, mu.device, mu.dtype)
            z = self.reparameterize(mu, presig, eps)
            kl_raw = kl_divergence(mu, presig)
            if global_mean is None:
                kl_cost = torch.clamp(kl_raw, min=self.hps.kl_tolerance)  # max(L_KL, tolerance)
            else:  # this share's L_KL where the global one passes the tolerance, else the tolerance
                kl_all = global_mean(kl_raw.detach())
                kl_cost = torch.where(kl_all >= self.hps.kl_tolerance, kl_raw, kl_raw.new_tensor(self.hps.kl_tolerance))
        else:
            kl_raw = kl_cost = inputs.new_zeros(())
        y, _ = self.decode(inputs[:, :-1], z, draws=draws)
        offset, pen, real = reconstruction_terms(split_output(y, self.hps.num_mixture), targets)
        masked_terms = offset + pen * real
        terms = masked_terms if mask_pen else offset + pen
        r_cost = terms.mean()
        cost = r_cost + kl_weight * kl_cost
        return Loss(cost, r_cost, kl_cost, kl_raw, terms, masked_terms.mean().detach(), mu, presig, z)

    def log_likelihood(
        self, inputs: Tensor, lengths: Tensor | Sequence[int], z: Tensor | None = None, data_units: bool = False
    ) -> Tensor:
        """log p(sketch | z) per sketch ``[B]`` (z = μ of the encoder when not given).

        In normalised units by default; with `data_units`, the density of the offsets in the data
        file's own units: dividing offsets by the scale factor s maps data to normalised units, so
        log p_data = log p_normalised − 2 log s per real point. Two models with different scale
        factors are compared on the same data this way."""
        lengths = as_lengths(lengths, inputs.device)
        if self.hps.conditional and z is None:
            z, _ = self.encode(inputs, lengths)
        y, _ = self.decode(inputs[:, :-1], z)
        ll = sketch_log_likelihood(split_output(y, self.hps.num_mixture), inputs[:, 1:], lengths)
        return self.in_data_units(ll, lengths) if data_units else ll

    def in_data_units(self, log_likelihood: Tensor, lengths: Tensor) -> Tensor:
        """Normalised-unit log-likelihoods of sketches of `lengths` real points in data units."""
        return log_likelihood - 2.0 * math.log(self.scale_factor) * lengths.to(log_likelihood.dtype)  # Jacobian of x / s

    # ------------------------------------------------------------------ drawing (see sketchrnn.generate)
    def sample(self, n: int = 1, temperature: float = 1.0, z=None, greedy: bool = False,
               seed: int | None = None, max_len: int | None = None) -> list[np.ndarray]:
        """`n` stroke-3 sketches in data units, from the prior, from `z`, or unconditionally."""
        from ..generate import sample

        return sample(self, n, temperature=temperature, z=z, greedy=greedy, seed=seed, max_len=max_len)

    def complete(self, strokes, n: int = 9, temperature: float = 0.5, z=None, seed: int | None = None,
                 greedy: bool = False, max_len: int | None = None) -> list[np.ndarray]:
        """`n` continuations (stroke-3, data units) of a partial stroke-3 sketch, drawn in one batch."""
        from ..generate import complete

        return complete(self, strokes, n=n, temperature=temperature, z=z, seed=seed, greedy=greedy, max_len=max_len)

    def reconstruct(self, sketches, temperature: float = 0.1, greedy: bool = False, use_mean: bool = True,
                    seed: int | None = None) -> list[np.ndarray]:
        """Encode stroke-3 sketches (data units) and draw them back at `temperature`."""
        from ..generate import reconstruct

        return reconstruct(self, sketches, temperature=temperature, greedy=greedy, use_mean=use_mean, seed=seed)

    def interpolate(self, a, b, steps: int = 10, method: str = "slerp", temperature: float = 0.1,
                    greedy: bool = False, use_mean: bool = True, seed: int | None = None) -> list[np.ndarray]:
        """Sketches decoded along the latent path from `a` to `b` (sketches or z vectors)."""
        from ..generate import interpolate

        return interpolate(self, a, b, steps=steps, method=method, temperature=temperature, greedy=greedy,
                           use_mean=use_mean, seed=seed)

    def parameter_table(self) -> list[tuple[str, int]]:
        """Trainable parameter counts per part, as the paper's tables list them."""
        parts = [("encoder forward", "enc_fw"), ("encoder backward", "enc_bw"), ("mu", "enc_mu"),
                 ("presig", "enc_presig"), ("initial state", "init_state"), ("decoder", "dec_cell"),
                 ("output", "output")]
        rows = []
        for label, attr in parts:
            module = getattr(self, attr, None)
            if module is not None:
                rows.append((label, sum(p.numel() for p in module.parameters() if p.requires_grad)))
        return rows
