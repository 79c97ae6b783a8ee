"""Drawing with a trained model: batched sampling, completion, reconstruction and latent interpolation.

Sampling runs many sketches in one batch; a sketch leaves the batch when it draws the
end-of-sketch state. Temperature τ is applied as the reference applies it: the mixture weights
and pen probabilities become softmax(logits / τ) and every σ is multiplied by τ (the covariance by
τ²); τ = 0 or ``greedy=True`` takes the most likely component and pen state and the component's
mean. Sketches come back as stroke-3 arrays in data units (offsets multiplied by the scale factor).

Two choices differ from the reference sampler, which always runs N_max steps and cuts at the
first end-of-sketch: the end-of-sketch state cannot be drawn at the first step (so every sketch
has a point), and the last point of every sketch lifts the pen.
"""

from __future__ import annotations

import math

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import Tensor

from . import cpu
from .data.strokes import STROKE_DIM, pad_batch
from .model.fast.backends import backend_for

if TYPE_CHECKING:  # the model calls this module for its sampling methods: no import back at run time
    from .model import SketchRNN


def seeded_generator(seed: int | None, device: torch.device) -> torch.Generator | None:
    """A generator seeded with `seed` on `device`, or None (torch's default generator) without a seed."""
    if seed is None:
        return None
    if not -(2**63) <= int(seed) < 2**64:
        raise ValueError(f"seed {seed} is out of range: a seed is a 64-bit integer (-2**63 to 2**64 - 1)")
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    return gen


def _as_z(model: SketchRNN, z, n: int, gen: torch.Generator | None, device, dtype) -> Tensor | None:
    """z as a [n, z_size] tensor: given (one vector broadcast, or one per sketch) or drawn from N(0, I)."""
    if not model.hps.conditional:
        if z is not None:
            raise ValueError("an unconditional model has no latent vector z: sample it without z")
        return None
    size = model.hps.z_size
    if z is None:
        return torch.randn(n, size, generator=gen, device=device, dtype=dtype)
    z = torch.as_tensor(np.asarray(z) if not isinstance(z, Tensor) else z, dtype=dtype, device=device)
    if z.dim() == 1:
        z = z[None].expand(n, -1)
    if z.shape != (n, size):
        raise ValueError(f"z must have shape [{size}] or [{n}, {size}], got {list(z.shape)}")
    return z


def _settings(model: SketchRNN, n: int, temperature: float, greedy: bool, seed: int | None):
    """Checked arguments shared by the samplers: (greedy, generator); the model in eval mode."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError(f"temperature must be a finite number >= 0, got {temperature}")
    model.eval()
    return greedy or temperature == 0, seeded_generator(seed, next(model.parameters()).device)


@dataclass
class Start:
    """Where drawing begins: the decoder `state` (its output is the distribution of the first point
    to draw), each sketch's constant input term (the z part of [S; z] W), and the point limit."""

    state: tuple[Tensor, ...]
    constant: Tensor
    max_len: int


def point_noise(n: int, gen: torch.Generator | None, device=None, dtype=None) -> tuple[Tensor, Tensor]:
    """The random numbers of one point for each of `n` sketches: uniforms [2, n] (component, pen)
    and standard normals [2, n] (the offset)."""
    return (torch.rand(2, n, generator=gen, device=device, dtype=dtype),
            torch.randn(2, n, generator=gen, device=device, dtype=dtype))


def draw_points(y: Tensor, num_mixture: int, temperature: float | Tensor, greedy: bool | Tensor,
                noise: tuple[Tensor, Tensor], first: bool | Tensor = False) -> tuple[Tensor, Tensor]:
    """One point per row of the decoder's raw output `y [rows, 6M+3]` (normalised units): (x, pen),
    x the stroke-5 rows (dx, dy, p1, p2, p3) of the drawn points, which are also the decoder's next
    inputs, and pen their state 0/1/2 = down/up/end.

    `temperature`, `greedy` and `first` (the sketch's first point, which cannot end the sketch)
    may be one value or one per row; τ = 0 is greedy. `noise` is `point_noise` for the rows.
    """
    a, device, dtype = len(y), y.device, y.dtype
    tau = torch.as_tensor(temperature, device=device, dtype=dtype).expand(a)
    greedy = torch.as_tensor(greedy, device=device).expand(a)  # each backend also takes τ = 0 as greedy
    first_rows = None
    if not (isinstance(first, bool) and not first):
        first_rows = torch.as_tensor(first, device=device).expand(a)
    return backend_for(y).draw_points(y, num_mixture, tau, greedy, first_rows, *noise)


def decoder_step(model: SketchRNN, state, constant: Tensor, x: Tensor):
    """The decoder state after reading inputs `x` (stroke-5 rows), one row per sketch."""
    w_stroke = model.dec_cell.input_weight()[:STROKE_DIM]
    cpu.adapt()  # threads for the cores other programs leave free
    return model.dec_cell.inference_step(torch.addmm(constant, x, w_stroke), state)


def _draw_sketches(model: SketchRNN, start: Start, temperature: float, greedy: bool,
                   gen: torch.Generator | None) -> list[np.ndarray]:
    """Sketches drawn point by point from `start` until each draws the end of sketch or reaches its
    limit; stroke-3, data units."""
    state, constant, max_len = start.state, start.constant, start.max_len
    n, device, dtype = len(constant), constant.device, constant.dtype
    out = torch.zeros(max_len, n, 3, device=device, dtype=dtype)
    lengths = torch.full((n,), max_len, dtype=torch.long)
    active = torch.arange(n, device=device)
    for t in range(max_len):
        y = model.output(model.dec_cell.output(state))
        x, pen = draw_points(y, model.hps.num_mixture, temperature, greedy, point_noise(len(active), gen, device, dtype),
                             first=t == 0)
        out[t, active, 0:2] = x[:, 0:2]
        out[t, active, 2] = x[:, 3]  # p2: the pen lifts after the point
        done = pen == 2
        if bool(done.any()):  # finished sketches leave the batch
            lengths[active[done].cpu()] = t
            keep = ~done
            active, x, constant = active[keep], x[keep], constant[keep]
            state = tuple(s[keep] for s in state)
        if len(active) == 0 or t == max_len - 1:
            break
        state = decoder_step(model, state, constant, x)
    strokes = out.permute(1, 0, 2).cpu().numpy().astype(np.float64)
    return [to_data_units(model, strokes[i, : int(lengths[i])]) for i in range(n)]


def to_data_units(model: SketchRNN, strokes: np.ndarray) -> np.ndarray:
    """Drawn stroke-3 rows (normalised) in data units, the pen lifted after the last point."""
    s = np.array(strokes, dtype=np.float64)
    s[:, 0:2] *= model.scale_factor
    if len(s):
        s[-1, 2] = 1  # every sketch ends with the pen up
    return s


def start_sampling(model: SketchRNN, n: int, z=None, gen: torch.Generator | None = None,
                   max_len: int | None = None) -> Start:
    """The start of `n` new sketches: z from the prior (one draw each) unless given; the decoder has read S0."""
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
    z = _as_z(model, z, n, gen, device, dtype)
    constant = model.decoder_input_constant(z, n, device, dtype)
    x = torch.zeros(n, STROKE_DIM, device=device, dtype=dtype)
    x[:, 2] = 1  # S0 = (0, 0, 1, 0, 0)
    state = decoder_step(model, model.initial_state(z, n, device, dtype), constant, x)
    return Start(state, constant, int(max_len or model.hps.max_seq_len))


@dataclass
class Partial:
    """A checked request to continue a partial sketch: its points (stroke-3, data units), the number
    of alternatives, each alternative's z (None: unconditional) and the point limit."""

    strokes: np.ndarray
    n: int
    z: Tensor | None
    max_len: int


@torch.inference_mode()
def prepare_completion(model: SketchRNN, strokes, n: int, z=None, gen: torch.Generator | None = None,
                       max_len: int | None = None) -> Partial:
    """Check a completion request and settle its z (drawn from the prior with `gen` where asked;
    see `complete`); ValueError names what is wrong."""
    s = _partial_sketch(model, strokes)
    if isinstance(z, str) and z not in ("prior", "encode"):
        raise ValueError(f"z must be a vector, 'prior' or 'encode', got {z!r}")
    if isinstance(z, str) and z == "encode":
        if not model.hps.conditional:
            raise ValueError("an unconditional model has no encoder: complete it without z='encode'")
        if len(s) == 0:
            raise ValueError("z='encode' needs a partial sketch to encode; it is empty")
        z = encode(model, [s])[0]
    elif isinstance(z, str):  # "prior"
        z = None
    param = next(model.parameters())
    z = _as_z(model, z, n, gen, param.device, param.dtype)
    return Partial(s, n, z, int(max_len or model.hps.max_seq_len - len(s)))


@torch.inference_mode()
def start_completions(model: SketchRNN, partials: Sequence[Partial]) -> list[Start]:
    """The start of each request's continuations: the decoder has read S0 and every given point.
    All the requests are primed in one batch (`prime_many`), each once where its alternatives
    share one z."""
    starts: list[Start | None] = [None] * len(partials)
    sketches: list[np.ndarray] = []
    zs: list[Tensor] = []
    primed: list[tuple[int, int]] = []  # (request, rows primed for it)
    for i, p in enumerate(partials):
        if len(p.strokes) == 0:  # nothing to read: plain sampling
            starts[i] = start_sampling(model, p.n, p.z, None, p.max_len)
            continue
        rows = 1 if p.z is None or bool((p.z == p.z[:1]).all()) else p.n
        sketches += [p.strokes] * rows
        if p.z is not None:
            zs.append(p.z[:rows])
        primed.append((i, rows))
    if primed:
        state = prime_many(model, sketches, torch.cat(zs) if zs else None)
        first = 0
        for i, rows in primed:
            p = partials[i]
            part = tuple(s[first:first + rows] for s in state)
            first += rows
            if rows < p.n:  # one shared state for every alternative
                part = tuple(s.expand(p.n, -1) for s in part)
            constant = model.decoder_input_constant(p.z, p.n, state[0].device, state[0].dtype)
            starts[i] = Start(tuple(s.contiguous() for s in part), constant, p.max_len)
    return starts  # type: ignore[return-value]


def start_completion(model: SketchRNN, strokes, n: int, z=None, gen: torch.Generator | None = None,
                     max_len: int | None = None) -> Start:
    """The start of `n` continuations of a partial sketch: the decoder has read S0 and every given
    point (see `complete` for `z` and the limits)."""
    return start_completions(model, [prepare_completion(model, strokes, n, z, gen, max_len)])[0]


@torch.inference_mode()
def sample(
    model: SketchRNN,
    n: int = 1,
    temperature: float = 1.0,
    z=None,
    greedy: bool = False,
    seed: int | None = None,
    max_len: int | None = None,
) -> list[np.ndarray]:
    """`n` sketches (stroke-3, data units), from the prior, from `z`, or unconditionally."""
    greedy, gen = _settings(model, n, temperature, greedy, seed)
    return _draw_sketches(model, start_sampling(model, n, z, gen, max_len), temperature, greedy, gen)


def _partial_sketch(model: SketchRNN, strokes) -> np.ndarray:
    """The user's partial sketch as a checked float64 [k, 3] stroke-3 array (k may be 0)."""
    try:
        s = np.asarray(strokes if strokes is not None else np.zeros((0, 3)), dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("strokes: expected a [k, 3] stroke-3 array of (dx, dy, p) rows, got a ragged or "
                         f"non-numeric {type(strokes).__name__}") from None
    if s.size == 0:
        return np.zeros((0, 3))
    if s.ndim != 2 or s.shape[1] != 3:
        raise ValueError(f"strokes: expected a [k, 3] stroke-3 array of (dx, dy, p) rows, got shape {list(s.shape)}")
    if not np.isfinite(s).all():
        raise ValueError(f"strokes: row {int(np.flatnonzero(~np.isfinite(s).all(axis=1))[0])} is not finite")
    if not np.isin(s[:, 2], (0, 1)).all():
        raise ValueError(f"strokes: the pen column must be 0 (pen down) or 1 (lifted after the point), "
                         f"got {s[~np.isin(s[:, 2], (0, 1)), 2][0]:g}")
    if len(s) >= model.hps.max_seq_len:
        raise ValueError(f"strokes: the partial sketch has {len(s)} points, but this model draws sketches of at most "
                         f"{model.hps.max_seq_len} (its max_seq_len): give fewer points")
    return s


@torch.inference_mode()
def prime(model: SketchRNN, strokes, z: Tensor | None = None):
    """The decoder state after reading S0 and every point of a stroke-3 sketch (data units) for each
    row of `z` (or once, unconditionally): its output is the distribution of the next point.

    This is magenta-js's `updateStrokes` in one batch: one decoder step per given point.
    """
    s = _partial_sketch(model, strokes)
    return prime_many(model, [s] * (1 if z is None else len(z)), z)


@torch.inference_mode()
def prime_many(model: SketchRNN, sketches: Sequence[np.ndarray], z: Tensor | None = None):
    """`prime` for several checked partial sketches at once, row i reading ``sketches[i]`` (with
    ``z[i]``): the batch runs to the shortest sketch's end, leaves that row's state, and goes on
    with the others, so each row's steps are the ones it would take alone."""
    param = next(model.parameters())
    device, dtype = param.device, param.dtype
    lengths = np.array([len(s) for s in sketches])
    x = torch.zeros(len(sketches), int(lengths.max()) + 1, STROKE_DIM, device=device, dtype=dtype)
    x[:, 0, 2] = 1  # S0
    for i, s in enumerate(sketches):
        given = torch.as_tensor(s, device=device, dtype=dtype)
        x[i, 1:len(s) + 1, 0:2] = given[:, 0:2] / model.scale_factor
        x[i, 1:len(s) + 1, 2] = 1 - given[:, 2]  # p1: the pen stays down after the point
        x[i, 1:len(s) + 1, 3] = given[:, 2]  # p2: the pen lifts
    state, out, rows, read = None, None, np.arange(len(sketches)), 0
    for end in np.unique(lengths):  # S0 and points 1..end read
        index = torch.as_tensor(rows, device=device)
        _, state = model.decoder_hidden(x[index, read:end + 1], None if z is None else z[index], state)
        if out is None:
            out = tuple(torch.empty(len(sketches), *s.shape[1:], device=device, dtype=s.dtype) for s in state)
        done = lengths[rows] == end
        for o, s in zip(out, state):
            o[torch.as_tensor(rows[done], device=device)] = s[torch.as_tensor(done, device=device)]
        keep = torch.as_tensor(~done, device=device)
        rows, read = rows[~done], end + 1
        state = tuple(s[keep] for s in state)
    return out


@torch.inference_mode()
def complete(
    model: SketchRNN,
    strokes,
    n: int = 9,
    temperature: float = 0.5,
    z=None,
    seed: int | None = None,
    greedy: bool = False,
    max_len: int | None = None,
) -> list[np.ndarray]:
    """`n` continuations of a partial sketch (stroke-3, data units), drawn in one batch.

    The decoder reads the start token and every given point (`prime`), then each alternative is
    drawn as `sample` draws. The continuations do not repeat the given points:
    ``np.concatenate([strokes, c])`` is a finished sketch. A given sketch whose last point keeps
    the pen down is continued from that point (the first new offset is drawn as part of the same
    stroke); one whose last point lifts the pen is continued with a new stroke. An empty sketch
    is plain sampling. A continuation has at least one point and at most `max_len` (default: the
    model's max_seq_len less the given points); a sketch of max_seq_len points or more is refused.

    `z` (conditional models): ``None`` or ``"prior"`` draws one z per alternative from N(0, I);
    ``"encode"`` uses the partial sketch's mean z (`encode`), the demos' "auto-encode"; or a vector
    ``[z_size]`` (or one per alternative, ``[n, z_size]``). An unconditional model takes no z.
    """
    greedy, gen = _settings(model, n, temperature, greedy, seed)
    return _draw_sketches(model, start_completion(model, strokes, n, z, gen, max_len), temperature, greedy, gen)


def _normalized_batch(model: SketchRNN, sketches: Sequence[np.ndarray]) -> tuple[Tensor, Tensor]:
    """stroke-3 sketches in data units → a padded, normalised model batch and its lengths."""
    if len(sketches) == 0:
        raise ValueError("no sketches given")
    normalized = []
    for i, s in enumerate(sketches):
        s = np.asarray(s, dtype=np.float32)
        if s.ndim != 2 or s.shape[1] != 3 or len(s) == 0:
            raise ValueError(f"sketch {i} must be a non-empty [n, 3] stroke-3 array, got shape {s.shape}")
        s = s.copy()
        s[:, 0:2] /= np.float32(model.scale_factor)
        normalized.append(s)
    longest = max(len(s) for s in normalized)
    param = next(model.parameters())
    inputs = torch.from_numpy(pad_batch(normalized, longest)).to(param.device, param.dtype)
    return inputs, torch.tensor([len(s) for s in normalized])


@torch.inference_mode()
def encode(model: SketchRNN, sketches: Sequence[np.ndarray], use_mean: bool = True, seed: int | None = None) -> Tensor:
    """Latent vectors ``[B, z_size]`` of stroke-3 sketches in data units: μ, or μ + σ·ε when not `use_mean`."""
    if not model.hps.conditional:
        raise ValueError("an unconditional model has no encoder: it cannot encode sketches")
    model.eval()
    inputs, lengths = _normalized_batch(model, sketches)
    mu, presig = model.encode(inputs, lengths)
    if use_mean:
        return mu
    eps = torch.randn(mu.shape, generator=seeded_generator(seed, mu.device), device=mu.device, dtype=mu.dtype)
    return model.reparameterize(mu, presig, eps)


def reconstruct(
    model: SketchRNN,
    sketches: Sequence[np.ndarray],
    temperature: float = 0.1,
    greedy: bool = False,
    use_mean: bool = True,
    seed: int | None = None,
) -> list[np.ndarray]:
    """Encode each sketch and draw it back from its z at `temperature`."""
    z = encode(model, sketches, use_mean=use_mean, seed=seed)
    return sample(model, len(sketches), temperature=temperature, z=z, greedy=greedy, seed=seed)


def lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Linear interpolation (1 − t)·a + t·b."""
    return (1 - t) * a + t * b


def slerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation along the great circle between a and b (linear when they are parallel)."""
    norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
    if norm_a == 0 or norm_b == 0:  # no direction to rotate from or to
        return lerp(a, b, t)
    cos = np.dot(a / norm_a, b / norm_b)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if np.sin(omega) < 1e-8:  # the reference divides by sin ω here and returns NaN
        return lerp(a, b, t)
    return np.sin((1 - t) * omega) / np.sin(omega) * a + np.sin(t * omega) / np.sin(omega) * b


def interpolate(
    model: SketchRNN,
    a,
    b,
    steps: int = 10,
    method: str = "slerp",
    temperature: float = 0.1,
    greedy: bool = False,
    use_mean: bool = True,
    seed: int | None = None,
) -> list[np.ndarray]:
    """Sketches decoded along the path from a's latent vector to b's (each a stroke-3 sketch or a z)."""
    if not model.hps.conditional:
        raise ValueError("an unconditional model has no latent space: it cannot interpolate")
    if method not in ("slerp", "lerp"):
        raise ValueError(f"method must be 'slerp' or 'lerp', got {method!r}")
    if steps < 2:
        raise ValueError(f"steps must be at least 2, got {steps}")
    ends = []
    for v in (a, b):
        v = np.asarray(v, dtype=np.float64)
        if v.ndim == 1:
            if len(v) != model.hps.z_size:
                raise ValueError(f"a latent vector must have {model.hps.z_size} values, got {len(v)}")
            ends.append(v)
        else:
            ends.append(encode(model, [v], use_mean=use_mean, seed=seed)[0].double().cpu().numpy())
    fn = slerp if method == "slerp" else lerp
    zs = np.stack([fn(ends[0], ends[1], t) for t in np.linspace(0.0, 1.0, steps)])
    return sample(model, steps, temperature=temperature, z=zs, greedy=greedy, seed=seed)
