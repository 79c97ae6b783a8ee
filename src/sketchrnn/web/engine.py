"""One decoder batch per model, shared by every request: continuous batching for the web server.

Each request (a `Job`: n sketches to sample or to complete) is started on its own (`start_sampling`
/ `start_completion`: prior draws, priming on the given points) and then joins the model's running
batch at the next step. Every step runs one decoder step for all the rows in the batch; each job
then draws its own rows' points with its own generator and temperature, so a seeded request
gives the same sketches whoever else is drawing. A row leaves the batch when its sketch ends, a
job when all its rows have ended, its time is up or its client went away.

The worker is one thread per model (PyTorch releases the GIL inside its kernels); the asyncio
side only submits jobs and reads their events.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .. import generate
from ..model import SketchRNN
from ..model.mixture import split_output


class Busy(RuntimeError):
    """The model's queue is full: try again later."""


@dataclass
class Job:
    """One request's sketches: what to draw, and where its points go."""

    kind: str  # "sample" or "complete"
    n: int
    temperature: float
    greedy: bool = False
    seed: int | None = None
    strokes: Any = None  # complete: the partial sketch (data units)
    z: Any = None
    max_len: int | None = None
    deadline: float = float("inf")  # time.monotonic() after which the job stops
    on_step: Callable[[int, list[tuple[int, float, float, int]]], None] | None = None  # (step, [(i, dx, dy, p)])
    on_done: Callable[[list[np.ndarray] | None, str | None], None] | None = None  # (sketches, error)
    cancelled: bool = False
    # filled by the worker
    gen: torch.Generator | None = None
    points: list[list[tuple[float, float, int]]] = field(default_factory=list)
    drawing: list[int] = field(default_factory=list)  # indices of the rows still drawing
    limit: int = 0
    step: int = 0

    def cancel(self) -> None:
        """Stop drawing for this job at the next step (its client went away)."""
        self.cancelled = True


class ModelWorker:
    """The batch of one model: jobs join it between steps, rows leave it when their sketch ends."""

    def __init__(self, model: SketchRNN, max_jobs: int = 64, window: float = 0.005) -> None:
        self.model = model.eval()
        self.max_jobs = max_jobs
        self.window = window
        self.lock = threading.Condition()
        self.waiting: list[Job] = []
        self.jobs: list[Job] = []  # in the batch, in row order
        self.thread: threading.Thread | None = None
        self.closed = False
        self.steps_run = 0  # decoder steps of the whole batch, for tests and benchmarks

    # ------------------------------------------------------------------ submitting
    def submit(self, job: Job) -> None:
        """Queue a job; Busy when `max_jobs` are waiting or drawing already."""
        with self.lock:
            if self.closed:
                raise Busy("the server is shutting down")
            if len(self.waiting) + len(self.jobs) >= self.max_jobs:
                raise Busy(f"{len(self.waiting) + len(self.jobs)} requests are being served for this model")
            self.waiting.append(job)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="sketchrnn-batch", daemon=True)
                self.thread.start()
            self.lock.notify()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.lock.notify()
        if self.thread is not None:
            self.thread.join(timeout=5)

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        state: tuple[torch.Tensor, ...] | None = None
        constant: torch.Tensor | None = None
        x: torch.Tensor | None = None  # next inputs of the rows in the batch
        while True:
            with self.lock:
                while not self.waiting and not self.jobs and not self.closed:
                    self.lock.wait()
                if self.closed:
                    return
                idle = not self.jobs
            if idle and self.window:
                time.sleep(self.window)  # gather the requests that arrive together into one batch
            with self.lock:
                joining, self.waiting = self.waiting, []
            with torch.inference_mode():
                if state is not None and x is not None and self.jobs:
                    state = generate.decoder_step(self.model, state, constant, x)
                for job in joining:
                    start = self._start(job)
                    if start is None:
                        continue
                    state = start.state if state is None else tuple(torch.cat([a, b]) for a, b in zip(state, start.state))
                    constant = start.constant if constant is None else torch.cat([constant, start.constant])
                    with self.lock:
                        self.jobs.append(job)
                if not self.jobs:
                    state = constant = x = None
                    continue
                state, constant, x = self._draw(state, constant)
                self.steps_run += 1
                if not self.jobs:
                    state = constant = x = None

    def _start(self, job: Job):
        """The job's first decoder state, or None when it fails (reported to the job)."""
        try:
            job.gen = generate.seeded_generator(job.seed, next(self.model.parameters()).device)
            if job.kind == "complete":
                start = generate.start_completion(self.model, job.strokes, job.n, job.z, job.gen, job.max_len)
            else:
                start = generate.start_sampling(self.model, job.n, job.z, job.gen, job.max_len)
        except (ValueError, RuntimeError) as exc:
            _finish(job, None, str(exc))
            return None
        job.points = [[] for _ in range(job.n)]
        job.drawing = list(range(job.n))
        job.limit = start.max_len
        return start

    def _draw(self, state, constant):
        """One point for every row in the batch (one vectorised draw; each job's random numbers come
        from its own generator); rows whose sketch ended leave, and so do jobs stopped early."""
        model, now = self.model, time.monotonic()
        sizes = [len(job.drawing) for job in self.jobs]
        for job in self.jobs:  # their rows are still in the batch until this step's end
            if job.cancelled or now > job.deadline:
                _finish(job, None, "cancelled" if job.cancelled else "time limit reached")
        device, dtype = constant.device, constant.dtype
        noise = [generate.point_noise(k, job.gen, device, dtype) for job, k in zip(self.jobs, sizes)]
        per_row = lambda values: torch.tensor(np.repeat(values, sizes), device=device)  # noqa: E731
        mix = split_output(model.output(model.dec_cell.output(state)), model.hps.num_mixture)
        dx, dy, pen = generate.draw_points(
            mix, per_row([job.temperature for job in self.jobs]).to(dtype), per_row([job.greedy for job in self.jobs]),
            (torch.cat([u for u, _ in noise], 1), torch.cat([e for _, e in noise], 1)),
            first=per_row([job.step == 0 for job in self.jobs]))
        xs, ys, pens = dx.tolist(), dy.tolist(), pen.tolist()
        keep_rows, still, row, scale = [], [], 0, model.scale_factor
        for job, rows in zip(self.jobs, sizes):
            if job.cancelled or now > job.deadline:
                row += rows
                continue
            new_points, alive = [], []
            for r in range(rows):
                i, p = job.drawing[r], pens[row + r]
                if p == 2:
                    continue
                job.points[i].append((xs[row + r], ys[row + r], int(p == 1)))
                new_points.append((i, xs[row + r] * scale, ys[row + r] * scale, int(p == 1)))
                alive.append(r)
            job.step += 1
            if job.on_step is not None and new_points:
                job.on_step(job.step - 1, new_points)
            if job.step >= job.limit:
                alive = []
            job.drawing = [job.drawing[r] for r in alive]
            if job.drawing:
                keep_rows.extend(row + r for r in alive)
                still.append(job)
            else:
                _finish(job, [generate.to_data_units(model, np.asarray(p, dtype=np.float64).reshape(-1, 3))
                              for p in job.points], None)
            row += rows
        with self.lock:
            self.jobs = still
        if not still:
            return None, None, None
        index = torch.tensor(keep_rows, device=device)
        x = generate.point_inputs(dx[index], dy[index], pen[index])
        return tuple(s[index] for s in state), constant[index], x


def _finish(job: Job, sketches: list[np.ndarray] | None, error: str | None) -> None:
    job.drawing = []
    if job.on_done is not None:
        job.on_done(sketches, error)


def asyncio_callbacks(job: Job, loop: asyncio.AbstractEventLoop, stream: bool) -> asyncio.Queue:
    """Wire a job's events into an asyncio queue of ("step", t, points) and ("done", sketches, error)."""
    queue: asyncio.Queue = asyncio.Queue()
    if stream:
        job.on_step = lambda t, points: loop.call_soon_threadsafe(queue.put_nowait, ("step", t, points))
    job.on_done = lambda sketches, error: loop.call_soon_threadsafe(queue.put_nowait, ("done", sketches, error))
    return queue
