"""Recurrent cells of sketch-rnn: LSTM, LayerNorm-LSTM and HyperLSTM, one time step each.

Weights are kept in TensorFlow's layout (``x @ W``, gate blocks in the order i, j, f, o, the forget
bias +1 added at run time), so magenta's variables map onto ours one to one. Recurrent dropout is
"without memory loss" (Semeniuta et al., 2016): an inverted-dropout mask multiplies the candidate
``g = tanh(j)`` only, never the cell or hidden state.

Every cell splits its work in two so the time loop can be fast:
``input_weight()`` is the matrix applied to the input, which the loop multiplies once for all time
steps; ``step(xw_t, state, mask)`` does the rest of one step. State is a tuple inside the loop and a
flat tensor outside it, packed as the reference packs it (``pack_state`` / ``split_state``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

FORGET_BIAS = 1.0
LN_EPSILON = 1e-3
HYPER_NUM_UNITS = 256
HYPER_EMBEDDING_SIZE = 32

State = tuple[Tensor, ...]


def glorot_uniform_(w: Tensor) -> Tensor:
    """TF's default initializer for a variable of shape [fan_in, fan_out] (1-D: fan_in = fan_out = len)."""
    fan_in, fan_out = (w.shape[0], w.shape[0]) if w.dim() == 1 else (w.shape[0], w.shape[1])
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    with torch.no_grad():
        return w.uniform_(-limit, limit)


def lstm_orthogonal_(w: Tensor) -> Tensor:
    """An orthogonal matrix for each of the four gate blocks of W_hh [n, 4n] (magenta's lstm_ortho_initializer)."""
    n = w.shape[1] // 4
    with torch.no_grad():
        for k in range(4):
            nn.init.orthogonal_(w[:, k * n : (k + 1) * n])
    return w


def layer_norm(x: Tensor, gamma: Tensor, beta: Tensor, groups: int = 1) -> Tensor:
    """(x - mean) / sqrt(var + 1e-3) * gamma + beta, normalising each of `groups` equal blocks of the last dim."""
    shape = x.shape
    x = x.reshape(*shape[:-1], groups, shape[-1] // groups)
    mean = x.mean(-1, keepdim=True)
    centred = x - mean
    var = (centred * centred).mean(-1, keepdim=True)
    x = centred * torch.rsqrt(var + LN_EPSILON)
    return x.reshape(shape) * gamma + beta


class RecurrentCell(nn.Module):
    """What every cell provides to the time loop."""

    input_size: int
    num_units: int

    @property
    def state_size(self) -> int:
        """Width of the packed state that the initial-state layer produces."""
        raise NotImplementedError

    def input_weight(self) -> Tensor:
        """Matrix [input_size, P] applied to the input at every step (hoisted out of the loop)."""
        raise NotImplementedError

    def input_offset(self) -> Tensor | None:
        """Constant [P] added to the projected input before the loop (None: nothing to add)."""
        return None

    def project_input(self, x: Tensor) -> Tensor:
        """x W + offset: the per-step input term for inputs `x [..., input_size]`."""
        xw = x @ self.input_weight()
        offset = self.input_offset()
        return xw if offset is None else xw + offset

    def step(self, xw: Tensor, state: State, keep_mask: Tensor | None) -> State:
        """One time step from the projected input `xw` [B, P]; `keep_mask` scales the candidate (or None)."""
        raise NotImplementedError

    def output(self, state: State) -> Tensor:
        """The h the cell emits for `state`."""
        raise NotImplementedError

    def split_state(self, packed: Tensor) -> State:
        """Flat packed state (reference order) → the tuple the loop carries."""
        raise NotImplementedError

    def pack_state(self, state: State) -> Tensor:
        """Tuple state → the flat packed state in the reference order."""
        raise NotImplementedError

    def zero_state(self, batch_size: int, device=None, dtype=None) -> State:
        """All-zero state for `batch_size` sketches."""
        return self.split_state(torch.zeros(batch_size, self.state_size, device=device, dtype=dtype))

    def tf_variables(self) -> dict[str, nn.Parameter]:
        """Our parameters under magenta's variable names, relative to the cell's scope."""
        raise NotImplementedError


def _candidate(j: Tensor, keep_mask: Tensor | None) -> Tensor:
    g = torch.tanh(j)
    return g if keep_mask is None else g * keep_mask  # recurrent dropout on g only


class LSTMCell(RecurrentCell):
    """magenta's LSTMCell: state packed [c, h]."""

    scope = "LSTMCell"

    def __init__(self, input_size: int, num_units: int) -> None:
        super().__init__()
        self.input_size, self.num_units = input_size, num_units
        self.W_xh = nn.Parameter(glorot_uniform_(torch.empty(input_size, 4 * num_units)))
        self.W_hh = nn.Parameter(lstm_orthogonal_(torch.empty(num_units, 4 * num_units)))
        self.bias = nn.Parameter(torch.zeros(4 * num_units))

    @property
    def state_size(self) -> int:
        return 2 * self.num_units

    def input_weight(self) -> Tensor:
        return self.W_xh

    def input_offset(self) -> Tensor:
        # the gate bias and the forget bias +1, added once to the hoisted x W_xh
        n = self.num_units
        forget = torch.zeros_like(self.bias)
        forget[2 * n : 3 * n] = FORGET_BIAS
        return self.bias + forget

    def step(self, xw: Tensor, state: State, keep_mask: Tensor | None) -> State:
        c, h = state
        gates = torch.addmm(xw, h, self.W_hh)  # [i j f+1 o] = x W_xh + h W_hh + b (+1 on f, in xw)
        i, j, f, o = gates.chunk(4, dim=1)
        g = _candidate(j, keep_mask)
        c = c * torch.sigmoid(f) + torch.sigmoid(i) * g  # c' = c σ(f+1) + σ(i) g
        h = torch.tanh(c) * torch.sigmoid(o)  # h' = tanh(c') σ(o)
        return c, h

    def output(self, state: State) -> Tensor:
        return state[1]

    def split_state(self, packed: Tensor) -> State:
        c, h = packed.split(self.num_units, dim=1)
        return c, h

    def pack_state(self, state: State) -> Tensor:
        return torch.cat(state, dim=1)

    def tf_variables(self) -> dict[str, nn.Parameter]:
        return {f"{self.scope}/W_xh": self.W_xh, f"{self.scope}/W_hh": self.W_hh, f"{self.scope}/bias": self.bias}


class LayerNormLSTMCell(RecurrentCell):
    """magenta's LayerNormLSTMCell: per-gate layer norm, no gate bias, LN on c for the output; state [h, c]."""

    scope = "LayerNormLSTMCell"

    def __init__(self, input_size: int, num_units: int) -> None:
        super().__init__()
        self.input_size, self.num_units = input_size, num_units
        self.W_xh = nn.Parameter(glorot_uniform_(torch.empty(input_size, 4 * num_units)))
        self.W_hh = nn.Parameter(lstm_orthogonal_(torch.empty(num_units, 4 * num_units)))
        self.ln_all_gamma = nn.Parameter(torch.ones(4 * num_units))
        self.ln_all_beta = nn.Parameter(torch.zeros(4 * num_units))
        self.ln_c_gamma = nn.Parameter(torch.ones(num_units))
        self.ln_c_beta = nn.Parameter(torch.zeros(num_units))

    @property
    def state_size(self) -> int:
        return 2 * self.num_units

    def input_weight(self) -> Tensor:
        return self.W_xh

    def cell_update(self, gates: Tensor, c: Tensor, keep_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """From raw gate pre-activations [B, 4n] and c to (h', c'), with the layer norms."""
        gates = layer_norm(gates, self.ln_all_gamma, self.ln_all_beta, groups=4)  # LN per gate block
        i, j, f, o = gates.chunk(4, dim=1)
        g = _candidate(j, keep_mask)
        c = c * torch.sigmoid(f + FORGET_BIAS) + torch.sigmoid(i) * g  # c' = c σ(f+1) + σ(i) g
        h = torch.tanh(layer_norm(c, self.ln_c_gamma, self.ln_c_beta)) * torch.sigmoid(o)  # h' = tanh(LN(c')) σ(o)
        return h, c

    def step(self, xw: Tensor, state: State, keep_mask: Tensor | None) -> State:
        h, c = state
        return self.cell_update(torch.addmm(xw, h, self.W_hh), c, keep_mask)

    def output(self, state: State) -> Tensor:
        return state[0]

    def split_state(self, packed: Tensor) -> State:
        h, c = packed.split(self.num_units, dim=1)
        return h, c

    def pack_state(self, state: State) -> Tensor:
        return torch.cat(state, dim=1)

    def tf_variables(self) -> dict[str, nn.Parameter]:
        s = self.scope
        return {
            f"{s}/W_xh": self.W_xh,
            f"{s}/W_hh": self.W_hh,
            f"{s}/ln_all/ln_gamma": self.ln_all_gamma,
            f"{s}/ln_all/ln_beta": self.ln_all_beta,
            f"{s}/ln_c/ln_gamma": self.ln_c_gamma,
            f"{s}/ln_c/ln_beta": self.ln_c_beta,
        }


class HyperNorm(nn.Module):
    """Scales one gate block by alpha(z_w) and, for the recurrent blocks, adds beta(z_b) (Ha et al., HyperNetworks)."""

    def __init__(self, hyper_units: int, embedding: int, num_units: int, use_bias: bool) -> None:
        super().__init__()
        self.zw_w = nn.Parameter(torch.zeros(hyper_units, embedding))  # z_w = h_hyper W + 1
        self.zw_b = nn.Parameter(torch.ones(embedding))
        self.alpha_w = nn.Parameter(torch.full((embedding, num_units), 0.1 / embedding))  # alpha = z_w W (0.1 at init)
        self.use_bias = use_bias
        if use_bias:
            self.zb_w = nn.Parameter(torch.randn(hyper_units, embedding) * 0.01)  # z_b = h_hyper W
            self.beta_w = nn.Parameter(torch.zeros(embedding, num_units))  # beta = z_b W

    def forward(self, hyper_h: Tensor, layer: Tensor) -> Tensor:
        alpha = torch.addmm(self.zw_b, hyper_h, self.zw_w) @ self.alpha_w
        out = alpha * layer
        if self.use_bias:
            out = out + (hyper_h @ self.zb_w) @ self.beta_w
        return out

    def tf_variables(self, scope: str) -> dict[str, nn.Parameter]:
        out = {
            f"{scope}/zw/super_linear_w": self.zw_w,
            f"{scope}/zw/super_linear_b": self.zw_b,
            f"{scope}/alpha/super_linear_w": self.alpha_w,
        }
        if self.use_bias:
            out[f"{scope}/zb/super_linear_w"] = self.zb_w
            out[f"{scope}/beta/super_linear_w"] = self.beta_w
        return out


class HyperLSTMCell(RecurrentCell):
    """magenta's HyperLSTMCell: a 256-unit LayerNorm-LSTM hyper network rescales the main LSTM's gates.

    State packed [h, h_hyper, c, c_hyper]; the hyper cell reads [x, h] and has no recurrent dropout.
    """

    scope = "HyperLSTMCell"
    gate_names = ("i", "j", "f", "o")

    def __init__(
        self,
        input_size: int,
        num_units: int,
        hyper_num_units: int = HYPER_NUM_UNITS,
        hyper_embedding_size: int = HYPER_EMBEDDING_SIZE,
    ) -> None:
        super().__init__()
        self.input_size, self.num_units = input_size, num_units
        self.hyper_num_units = hyper_num_units
        self.W_xh = nn.Parameter(glorot_uniform_(torch.empty(input_size, 4 * num_units)))
        self.W_hh = nn.Parameter(lstm_orthogonal_(torch.empty(num_units, 4 * num_units)))
        self.bias = nn.Parameter(torch.zeros(4 * num_units))
        self.hyper_cell = LayerNormLSTMCell(input_size + num_units, hyper_num_units)
        args = (hyper_num_units, hyper_embedding_size, num_units)
        self.norm_x = nn.ModuleList(HyperNorm(*args, use_bias=False) for _ in self.gate_names)
        self.norm_h = nn.ModuleList(HyperNorm(*args, use_bias=True) for _ in self.gate_names)
        self.ln_all_gamma = nn.Parameter(torch.ones(4 * num_units))
        self.ln_all_beta = nn.Parameter(torch.zeros(4 * num_units))
        self.ln_c_gamma = nn.Parameter(torch.ones(num_units))
        self.ln_c_beta = nn.Parameter(torch.zeros(num_units))

    @property
    def state_size(self) -> int:
        return 2 * (self.num_units + self.hyper_num_units)

    def input_weight(self) -> Tensor:
        # one matrix for both uses of x: the main cell's x W_xh and the hyper cell's x part
        return torch.cat([self.W_xh, self.hyper_cell.W_xh[: self.input_size]], dim=1)

    def step(self, xw: Tensor, state: State, keep_mask: Tensor | None) -> State:
        h, h_hyper, c, c_hyper = state
        n = self.num_units
        xh, x_hyper = xw[:, : 4 * n], xw[:, 4 * n :]
        # the hyper cell reads [x, h]
        hyper_in = torch.addmm(x_hyper, h, self.hyper_cell.W_xh[self.input_size :])
        h_hyper, c_hyper = self.hyper_cell.step(hyper_in, (h_hyper, c_hyper), None)
        hh = h @ self.W_hh
        parts = []
        for k, (nx, nh) in enumerate(zip(self.norm_x, self.norm_h)):
            block = slice(k * n, (k + 1) * n)
            # gate_k = alpha_kx(x W_xh)_k + alpha_kh(h W_hh)_k + beta_kh + b_k
            parts.append(nx(h_hyper, xh[:, block]) + nh(h_hyper, hh[:, block]) + self.bias[block])
        gates = layer_norm(torch.cat(parts, dim=1), self.ln_all_gamma, self.ln_all_beta, groups=4)
        i, j, f, o = gates.chunk(4, dim=1)
        g = _candidate(j, keep_mask)
        c = c * torch.sigmoid(f + FORGET_BIAS) + torch.sigmoid(i) * g
        h = torch.tanh(layer_norm(c, self.ln_c_gamma, self.ln_c_beta)) * torch.sigmoid(o)
        return h, h_hyper, c, c_hyper

    def output(self, state: State) -> Tensor:
        return state[0]

    def split_state(self, packed: Tensor) -> State:
        n, m = self.num_units, self.hyper_num_units
        h, h_hyper, c, c_hyper = packed.split([n, m, n, m], dim=1)
        return h, h_hyper, c, c_hyper

    def pack_state(self, state: State) -> Tensor:
        return torch.cat(state, dim=1)

    def tf_variables(self) -> dict[str, nn.Parameter]:
        s = self.scope
        out: dict[str, nn.Parameter] = {f"{s}/W_xh": self.W_xh, f"{s}/W_hh": self.W_hh, f"{s}/bias": self.bias}
        out.update({f"{s}/{k}": v for k, v in self.hyper_cell.tf_variables().items()})
        for name, nx in zip(self.gate_names, self.norm_x):
            out.update(nx.tf_variables(f"{s}/hyper_{name}x"))
        for name, nh in zip(self.gate_names, self.norm_h):
            out.update(nh.tf_variables(f"{s}/hyper_{name}h"))
        out.update(
            {
                f"{s}/ln_all/ln_gamma": self.ln_all_gamma,
                f"{s}/ln_all/ln_beta": self.ln_all_beta,
                f"{s}/ln_c/ln_gamma": self.ln_c_gamma,
                f"{s}/ln_c/ln_beta": self.ln_c_beta,
            }
        )
        return out


CELLS: dict[str, type[RecurrentCell]] = {
    "lstm": LSTMCell,
    "layer_norm": LayerNormLSTMCell,
    "hyper": HyperLSTMCell,
}


def make_cell(name: str, input_size: int, num_units: int) -> RecurrentCell:
    """The cell called `name` (lstm, layer_norm or hyper)."""
    if name not in CELLS:
        raise ValueError(f"unknown cell {name!r}; choose one of {', '.join(CELLS)}")
    return CELLS[name](input_size, num_units)
