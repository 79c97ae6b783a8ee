"""Work buffers of the fast time loops, and the bookkeeping every loop shares.

Buffers are handed from one training step's backward to the next forward.

Memory fresh from the operating system costs a page fault and zeroing per page: measured here
about 0.4 ms per MB, a tenth of a second per step for the default decoder's gate buffer alone,
and the C allocator returns blocks this large to the system as soon as they are freed. Whoever
runs the steps owns a `WorkBuffers` and makes it current around them (``with work.active():``,
as the training run does); buffers given back at the end of a backward pass are taken again by
the next forward of the same shape. With none current, the loops allocate afresh. Only CPU
tensors are kept (CUDA has its own caching allocator).
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

import torch
from torch import Tensor


class WorkBuffers:
    """Kept work buffers, at most `per_shape` of each shape and dtype."""

    def __init__(self, per_shape: int = 4) -> None:
        self.per_shape = per_shape
        self.free: dict[tuple, list[Tensor]] = {}
        self.lock = threading.Lock()

    def take(self, like: Tensor, *shape: int) -> Tensor:
        """An uninitialised tensor of `shape` with `like`'s dtype and device."""
        if like.device.type == "cpu":
            with self.lock:
                bucket = self.free.get((shape, like.dtype))
                if bucket:
                    return bucket.pop()
        return like.new_empty(shape)

    def give(self, *tensors: Tensor) -> None:
        """Keep `tensors` for reuse; the caller holds no other reference that will be read again."""
        with self.lock:
            for t in tensors:
                if t.device.type == "cpu":
                    bucket = self.free.setdefault((tuple(t.shape), t.dtype), [])
                    if len(bucket) < self.per_shape:
                        bucket.append(t)

    def clear(self) -> None:
        """Let go of every kept buffer."""
        with self.lock:
            self.free.clear()

    @contextmanager
    def active(self) -> Iterator[WorkBuffers]:
        """Make these the buffers the fast loops use, for the duration of the block."""
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)


_current: ContextVar[WorkBuffers | None] = ContextVar("sketchrnn_work_buffers", default=None)


def current() -> WorkBuffers | None:
    """The work buffers made current by `WorkBuffers.active` (None: allocate afresh)."""
    return _current.get()


def take(work: WorkBuffers | None, like: Tensor, *shape: int) -> Tensor:
    """A buffer of `shape` from `work`, or a fresh one."""
    return work.take(like, *shape) if work is not None else like.new_empty(shape)


def give(work: WorkBuffers | None, *tensors: Tensor) -> None:
    """Hand `tensors` back to `work` (nothing to do without one)."""
    if work is not None:
        work.give(*tensors)


def initial(d: Tensor | None, like: Tensor) -> Tensor:
    """The gradient arriving at the last step's state `d` (a contiguous copy to accumulate into), or
    zeros like one step of `like` [T + 1, ...] when the final state was not used."""
    return d.clone(memory_format=torch.contiguous_format) if d is not None else like.new_zeros(like.shape[1:])


def dense(t: Tensor | None) -> Tensor | None:
    """`t` in row-major order (the fused kernels read rows by a stride), or None."""
    return None if t is None else t.contiguous()


def once(ctx) -> None:
    """The buffers of a forward go back to the pool after its backward, so it may run only once."""
    if getattr(ctx, "consumed", False):
        raise RuntimeError("the fast recurrent path supports one backward pass per forward (no retain_graph); "
                           "set sketchrnn.model.recurrence.FAST_PATH = False to backpropagate twice")
    ctx.consumed = True


def input_weight_grad(x: Tensor, d: Tensor) -> Tensor:
    """Σ_t x_tᵀ d_t, the gradient of an input weight W_x, from `x [T, B, k]` and `d [T, B, P]`.

    With k as small as a stroke's 5, one [k, T·B] × [T·B, P] multiply runs at a tenth of the
    machine's speed (measured 52 ms for the default decoder); a batch of per-step multiplies
    summed over the steps takes half that. Larger k take the single multiply.
    """
    if x.shape[-1] <= 16:
        return torch.bmm(x.transpose(1, 2), d).sum(0)
    rows = x.shape[0] * x.shape[1]
    return x.reshape(rows, -1).t() @ d.reshape(rows, -1)
