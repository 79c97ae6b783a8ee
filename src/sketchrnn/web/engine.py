"""One decoder batch per model, shared by every request: continuous batching for the web server.

Each request (a `Job`: n sketches to sample or to complete) is started on its own (`start_sampling`
/ `prepare_completion`: prior draws, checks; the completions that join together are primed on
their given points in one batch, `start_completions`) and then joins the model's running
batch at the next step. Every step runs one decoder step for all the rows in the batch; each job
then draws its own rows' points with its own generator and temperature, so a seeded request
gives the same sketches whoever else is drawing. A row leaves the batch when its sketch ends, a
job when all its rows have ended, its time is up or its client went away.

All the model work of a server runs on one thread (`Compute`), batch steps of every model in
turn and the few other calls (encoding a drawing): PyTorch releases the GIL inside its kernels,
so the asyncio side only submits work and reads its events. One thread, not one per model,
because GNU OpenMP (torch's CPU threads) lets a team spin between parallel regions only while
the threads of all teams fit on the cores; a second team makes every region sleep and wake
(measured on 2 cores: a softmax of [144, 20] 10 µs on one team, 100 µs with two). For the same
reason `sketchrnn serve` keeps its main thread at one torch thread.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch

from .. import generate
from ..model import SketchRNN


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
    slots: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # sketch i's row of the point store
    drawing: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # sketches still drawing
    limit: int = 0
    step: int = 0

    def cancel(self) -> None:
        """Stop drawing for this job at the next step (its client went away)."""
        self.cancelled = True


class Compute:
    """The thread that runs the model work of a server: every model's batch steps, in turn, and
    other calls (`call`). `threads` is the torch thread count it uses (None: torch's own)."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads
        self.lock = threading.Condition()
        self.workers: list[ModelWorker] = []
        self.calls: list[tuple[Callable[[], Any], Callable[[Any, BaseException | None], None]]] = []
        self.thread: threading.Thread | None = None
        self.closed = False

    def call(self, fn: Callable[[], Any], on_done: Callable[[Any, BaseException | None], None]) -> None:
        """Run `fn()` on the compute thread (in inference mode) and hand its result or its error to `on_done`."""
        with self.lock:
            if self.closed:
                raise Busy("the server is shutting down")
            self.calls.append((fn, on_done))
            self._wake()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.lock.notify()
        if self.thread is not None:
            self.thread.join(timeout=5)

    def _wake(self) -> None:
        """Start the thread on first use, or tell it there is work (the lock is held)."""
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="sketchrnn-compute", daemon=True)
            self.thread.start()
        self.lock.notify()

    def _run(self) -> None:
        if self.threads:
            torch.set_num_threads(self.threads)  # this thread's OpenMP team; the caller's may be smaller
        while True:
            with self.lock:
                while True:
                    if self.closed:
                        return
                    now = time.monotonic()
                    calls, self.calls = self.calls, []
                    ready = [w for w in self.workers if w.jobs or (w.waiting and now >= w.ready_at)]
                    if calls or ready:
                        break
                    gathering = [w.ready_at for w in self.workers if w.waiting]
                    self.lock.wait(timeout=max(0.0, min(gathering) - now) if gathering else None)
            with torch.inference_mode():
                for fn, on_done in calls:
                    try:
                        result, error = fn(), None
                    except Exception as exc:  # handed to the caller, who answers the request
                        result, error = None, exc
                    on_done(result, error)
                for worker in ready:
                    worker.step()


class ModelWorker:
    """The batch of one model: jobs join it between steps, rows leave it when their sketch ends.
    Its steps run on `compute` (its own when not given); a job that arrives at an idle batch waits
    `window` seconds for others to start with it."""

    def __init__(self, model: SketchRNN, max_jobs: int = 64, window: float = 0.005,
                 compute: Compute | None = None) -> None:
        self.model = model.eval()
        self.max_jobs = max_jobs
        self.window = window
        self.own_compute = compute is None
        self.compute = compute or Compute()
        self.lock = self.compute.lock
        self.waiting: list[Job] = []
        self.ready_at = 0.0  # when the waiting jobs start (the gathering window's end)
        self.jobs: list[Job] = []  # in the batch, in row order
        self.state: tuple[torch.Tensor, ...] | None = None
        self.constant: torch.Tensor | None = None
        self.x: torch.Tensor | None = None  # next inputs of the rows in the batch
        self.slots = np.zeros(0, dtype=np.int64)  # each row's slot in the point store
        self.settings: tuple[torch.Tensor, torch.Tensor] | None = None  # per-row temperature, greedy
        self.store = np.zeros((0, model.hps.max_seq_len, 3))  # [slot, point, (dx, dy, p)] normalised
        self.lengths = np.zeros(0, dtype=np.int64)  # points in each slot
        self.free: list[int] = []
        self.steps_run = 0  # decoder steps of the whole batch, for tests and benchmarks
        with self.lock:
            self.compute.workers.append(self)

    # ------------------------------------------------------------------ submitting
    def submit(self, job: Job) -> None:
        """Queue a job; Busy when `max_jobs` are waiting or drawing already."""
        with self.lock:
            if self.compute.closed:
                raise Busy("the server is shutting down")
            # a job that has just finished is still in the batch until the end of its step: not counted
            held = len(self.waiting) + sum(1 for job in self.jobs if len(job.drawing))
            if held >= self.max_jobs:
                raise Busy(f"{held} requests are being served for this model")
            if not self.waiting and not self.jobs:
                self.ready_at = time.monotonic() + self.window  # gather the requests that arrive together
            self.waiting.append(job)
            self.compute._wake()

    def close(self) -> None:
        """Stop the worker's own compute thread (a shared one is closed by its owner)."""
        if self.own_compute:
            self.compute.close()

    # ------------------------------------------------------------------ one step (compute thread)
    def step(self) -> None:
        """Start the waiting jobs, then draw one point for every row in the batch."""
        with self.lock:
            joining, self.waiting = self.waiting, []
        if self.jobs and self.x is not None:
            self.state = generate.decoder_step(self.model, self.state, self.constant, self.x)
        for job, start in self._start(joining):
            self.slots = np.concatenate([self.slots, job.slots])
            self.settings = None
            self.state = start.state if self.state is None else tuple(
                torch.cat([a, b]) for a, b in zip(self.state, start.state))
            self.constant = start.constant if self.constant is None else torch.cat([self.constant, start.constant])
            with self.lock:
                self.jobs.append(job)
        if self.jobs:
            self.state, self.constant, self.x = self._draw(self.state, self.constant)
            self.steps_run += 1
        if not self.jobs:
            self.state = self.constant = self.x = None
            self.slots = self.slots[:0]

    def _start(self, jobs: list[Job]) -> list[tuple[Job, generate.Start]]:
        """The joining jobs' first decoder states (the completions primed together in one batch);
        a job whose request fails is told so and left out."""
        device = next(self.model.parameters()).device
        ready: list[tuple[Job, generate.Start | generate.Partial]] = []
        for job in jobs:
            try:
                job.gen = generate.seeded_generator(job.seed, device)
                if job.kind == "complete":
                    ready.append((job, generate.prepare_completion(self.model, job.strokes, job.n, job.z, job.gen,
                                                                   job.max_len)))
                else:
                    ready.append((job, generate.start_sampling(self.model, job.n, job.z, job.gen, job.max_len)))
            except (ValueError, RuntimeError) as exc:
                _finish(job, None, str(exc))
        partials = [p for _, p in ready if isinstance(p, generate.Partial)]
        try:
            primed = iter(generate.start_completions(self.model, partials) if partials else [])
        except (ValueError, RuntimeError) as exc:
            for job, p in ready:
                if isinstance(p, generate.Partial):
                    _finish(job, None, str(exc))
            ready, primed = [(job, p) for job, p in ready if not isinstance(p, generate.Partial)], iter([])
        started = [(job, next(primed) if isinstance(p, generate.Partial) else p) for job, p in ready]
        for job, start in started:
            job.slots = self._reserve(job.n, start.max_len)  # where sketch i's points go: store[slots[i]]
            job.drawing = np.arange(job.n)
            job.limit = start.max_len
        return started

    def _reserve(self, n: int, length: int) -> np.ndarray:
        """`n` free slots of the point store, each room for `length` points (the store grows, once,
        to the largest batch it has held: memory does not grow with the requests served)."""
        if len(self.free) < n or self.store.shape[1] < length:
            rows = max(len(self.store) * 2, len(self.store) + n - len(self.free), 64)
            grown = np.zeros((rows, max(self.store.shape[1], length), 3))
            grown[:len(self.store), :self.store.shape[1]] = self.store
            self.free.extend(range(len(self.store), rows))
            self.store, self.lengths = grown, np.concatenate([self.lengths, np.zeros(rows - len(self.lengths), np.int64)])
        slots, self.free = np.array(self.free[:n], dtype=np.int64), self.free[n:]
        self.lengths[slots] = 0
        return slots

    def _release(self, job: Job, done: bool) -> None:
        """The job leaves: its sketches (data units) to its client when `done`, its slots freed."""
        if done:
            _finish(job, [generate.to_data_units(self.model, self.store[s, :self.lengths[s]]) for s in job.slots], None)
        self.free.extend(job.slots.tolist())
        job.slots = job.slots[:0]

    def _draw(self, state, constant):
        """One point for every row in the batch (one vectorised draw; each job's random numbers come
        from its own generator); rows whose sketch ended leave, and so do jobs stopped early."""
        model, now, jobs = self.model, time.monotonic(), self.jobs
        sizes = [len(job.drawing) for job in jobs]
        stopped = [job.cancelled or now > job.deadline for job in jobs]  # their rows stay until this step's end
        device, dtype = constant.device, constant.dtype
        noise = [generate.point_noise(k, job.gen, device, dtype) for job, k in zip(jobs, sizes)]
        if self.settings is None:  # per-row temperature and greedy flag, until the rows change
            self.settings = (torch.tensor(np.repeat([job.temperature for job in jobs], sizes), device=device, dtype=dtype),
                             torch.tensor(np.repeat([job.greedy for job in jobs], sizes), device=device))
        first = [job.step == 0 for job in jobs]
        x, pen = generate.draw_points(
            model.output(model.dec_cell.output(state)), model.hps.num_mixture, *self.settings,
            (torch.cat([u for u, _ in noise], 1), torch.cat([e for _, e in noise], 1)),
            first=torch.tensor(np.repeat(first, sizes), device=device) if any(first) else False)
        drawn = torch.cat([x[:, 0:2], pen[:, None].to(x.dtype)], 1).cpu().numpy()  # [rows, 3]: dx, dy, pen state
        # every row's point into its sketch's slot at once; a row that draws the end adds no point
        alive = drawn[:, 2] != 2
        slots = self.slots[alive]
        at = self.lengths[slots]
        self.store[slots, at, 0:2] = drawn[alive, 0:2]
        self.store[slots, at, 2] = drawn[alive, 2] == 1
        self.lengths[slots] += 1
        starts = [0, *itertools.accumulate(sizes[:-1])]
        left = np.add.reduceat(alive, starts).tolist()  # rows of each job still drawing
        still, scale = [], model.scale_factor
        for job, rows, start, n_left, stop in zip(jobs, sizes, starts, left, stopped):
            mine = alive[start:start + rows]
            if stop:
                mine[:] = False
                _finish(job, None, "cancelled" if job.cancelled else "time limit reached")
                self._release(job, done=False)
                continue
            job.step += 1
            if job.on_step is not None and n_left:
                points = drawn[start:start + rows][mine]
                job.on_step(job.step - 1, [(i, x * scale, y * scale, int(p == 1))
                                           for i, (x, y, p) in zip(job.drawing[mine].tolist(), points.tolist())])
            if job.step >= job.limit:
                mine[:] = False
                n_left = 0
            if n_left < rows:
                job.drawing = job.drawing[mine]
            if n_left:
                still.append(job)
            else:
                self._release(job, done=True)
        with self.lock:
            self.jobs = still
        if not still:
            return None, None, None
        if alive.all():  # no row left the batch (most steps)
            return state, constant, x
        self.settings = None
        self.slots = self.slots[alive]
        index = torch.as_tensor(np.flatnonzero(alive), device=device)
        return tuple(s[index] for s in state), constant[index], x[index]


def _finish(job: Job, sketches: list[np.ndarray] | None, error: str | None) -> None:
    job.drawing = job.drawing[:0]
    if job.on_done is not None:
        job.on_done(sketches, error)


def asyncio_callbacks(job: Job, loop: asyncio.AbstractEventLoop, stream: bool) -> asyncio.Queue:
    """Wire a job's events into an asyncio queue of ("step", t, points) and ("done", sketches, error)."""
    queue: asyncio.Queue = asyncio.Queue()
    if stream:
        job.on_step = lambda t, points: loop.call_soon_threadsafe(queue.put_nowait, ("step", t, points))
    job.on_done = lambda sketches, error: loop.call_soon_threadsafe(queue.put_nowait, ("done", sketches, error))
    return queue
