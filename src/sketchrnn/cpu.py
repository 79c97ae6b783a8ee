"""How many CPU threads our work should use on a machine that other programs share.

PyTorch's CPU kernels and our fused kernels (`model/_kernels.cpp`) split work over OpenMP threads,
and every parallel region ends in a barrier that waits for all of its threads. On a machine where
another program is busy, one of those threads is often descheduled, and every barrier then waits
for its next time slice: a sketch is hundreds of small regions, so the whole run crawls (measured
on 2 cores with one busy competitor: `eval` 2.3x slower than with one thread; with two, training
steps 60x slower). One thread per core that is actually free avoids that and costs nothing on a
quiet machine.

`adapt()` is the one decision point: the recurrent loops and the sampler call it before their
work; at most every `INTERVAL` seconds it reads how much CPU time other processes took on the
CPUs this process may use (``/proc/stat`` minus ``/proc/self/stat``) and sets torch's thread count
to the cores left free, between 1 and the ceiling (torch's own count when first called, which
honours ``OMP_NUM_THREADS`` and a user's `torch.set_num_threads`; a later change by the user
becomes the new ceiling). ``SKETCHRNN_THREADS=N`` fixes the count instead; ``SKETCHRNN_THREADS=0``
leaves torch's setting alone. Where ``/proc`` cannot be read, nothing changes.

A count that changes mid-run changes the order of some float sums, so results are the same bit for
bit only at one thread count: fix it with ``SKETCHRNN_THREADS`` where that matters (the tests of
exact resume do).
"""

from __future__ import annotations

import math
import os
import threading
import time

import torch

INTERVAL = 0.5  # seconds between looks at the machine's load
MARGIN = 0.25  # others' use of a core below this (a background daemon) still leaves that core free
STALE = 2.0  # seconds: a reading older than this spans a time we did no recurrent work, so it is not used

_lock = threading.Lock()


def free_threads(allowed: int, others: float, ceiling: int) -> int:
    """Threads to use when `others` cores' worth of CPU time goes to other processes on the
    `allowed` CPUs we may run on: `ceiling` on a quiet machine, else the cores left free (at
    least 1, at most `ceiling`)."""
    if others < MARGIN:
        return ceiling
    return max(1, min(ceiling, math.floor(allowed - others + MARGIN)))


def _allowed_cpus() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def _busy_ticks(cpus: set[int]) -> int | None:
    """Clock ticks the CPUs in `cpus` spent busy (user, nice, system, irq, softirq, steal) since boot."""
    try:
        with open("/proc/stat") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    total = 0
    for line in lines:
        name, _, rest = line.partition(" ")
        if not name.startswith("cpu") or name == "cpu" or not name[3:].isdigit():
            continue
        if int(name[3:]) in cpus:
            v = [int(x) for x in rest.split()]
            total += v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)
    return total


def _own_ticks() -> int | None:
    """Clock ticks this process (all of its threads) has run, user and system."""
    try:
        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


class _Governor:
    def __init__(self) -> None:
        self.cpus = _allowed_cpus()
        self.ceiling = torch.get_num_threads()
        self.current = self.ceiling
        self.last_time = time.monotonic()
        self.last_busy, self.last_own = _busy_ticks(set(self.cpus)), _own_ticks()
        self.working = self.last_busy is not None and self.last_own is not None

    def adapt(self) -> int:
        now = time.monotonic()
        if now - self.last_time < INTERVAL:
            return self.current
        actual = torch.get_num_threads()
        if actual != self.current:  # the user set a count of their own: that is the new ceiling
            self.ceiling = self.current = actual
        busy, own = _busy_ticks(set(self.cpus)), _own_ticks()
        if busy is None or own is None:
            self.working = False
            return self.current
        ticks = (now - self.last_time) * os.sysconf("SC_CLK_TCK")
        others = max(0.0, (busy - self.last_busy) - (own - self.last_own)) / ticks
        stale = now - self.last_time > STALE  # e.g. our own child process ran meanwhile, while we waited
        self.last_time, self.last_busy, self.last_own = now, busy, own
        if stale:
            return self.current
        wanted = free_threads(len(self.cpus), others, self.ceiling)
        if wanted != self.current:
            torch.set_num_threads(wanted)
            self.current = wanted
        return self.current


_governor: _Governor | None = None
_fixed: int | None = None


def _setting() -> int | None:
    """SKETCHRNN_THREADS as a number (None: adapt)."""
    text = os.environ.get("SKETCHRNN_THREADS", "").strip()
    if not text or text == "auto":
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"SKETCHRNN_THREADS={text!r}: expected a number of threads, 0, or auto") from None
    if value < 0:
        raise ValueError(f"SKETCHRNN_THREADS={text!r}: expected a number of threads, 0, or auto")
    return value


def adapt() -> int:
    """torch's thread count for the next piece of work, adjusted to the cores other programs leave
    free (see the module's docstring); returns the count."""
    global _governor, _fixed
    if _fixed is not None:
        return _fixed or torch.get_num_threads()
    if _governor is None:
        with _lock:
            if _governor is None:
                setting = _setting()
                if setting is not None:
                    if setting:
                        torch.set_num_threads(setting)
                    _fixed = setting
                    return setting or torch.get_num_threads()
                _governor = _Governor()
    if not _governor.working:
        return torch.get_num_threads()
    with _lock:
        return _governor.adapt()


def reset() -> None:
    """Forget the ceiling and the readings (tests; after changing SKETCHRNN_THREADS)."""
    global _governor, _fixed
    with _lock:
        if _governor is not None and torch.get_num_threads() != _governor.ceiling:
            torch.set_num_threads(_governor.ceiling)
        _governor, _fixed = None, None
