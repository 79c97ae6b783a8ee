"""Thread count on a shared CPU (sketchrnn.cpu): the cores other programs leave free."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import torch

from sketchrnn import cpu

BUSY = "import time\nend = time.monotonic() + 30\nwhile time.monotonic() < end:\n    pass\n"


def test_free_threads_leaves_the_cores_others_use() -> None:
    assert cpu.free_threads(2, 0.0, 2) == 2
    assert cpu.free_threads(2, 0.1, 2) == 2  # a background daemon does not cost a thread
    assert cpu.free_threads(2, 0.67, 2) == 1  # one competitor beside our two threads
    assert cpu.free_threads(2, 1.0, 2) == 1
    assert cpu.free_threads(2, 2.0, 2) == 1  # never fewer than one
    assert cpu.free_threads(8, 1.0, 4) == 4  # torch's physical-core count, one competitor on 8 CPUs
    assert cpu.free_threads(8, 6.0, 4) == 2
    assert cpu.free_threads(2, 0.0, 3) == 3  # a user's own oversubscription is theirs to choose
    assert cpu.free_threads(2, 1.0, 3) == 1


@pytest.fixture
def governed(monkeypatch):
    """A fresh governor that looks at the machine every 0.2 s, torch's count restored afterwards."""
    before = torch.get_num_threads()
    monkeypatch.delenv("SKETCHRNN_THREADS", raising=False)
    monkeypatch.setattr(cpu, "INTERVAL", 0.2)
    cpu.reset()
    yield
    cpu.reset()
    torch.set_num_threads(before)


def _poll(expected: int, seconds: float) -> int:
    """adapt() until it gives `expected` or `seconds` pass; the last count."""
    end = time.monotonic() + seconds
    while True:
        time.sleep(0.25)
        got = cpu.adapt()
        if got == expected or time.monotonic() > end:
            return got


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc (Linux)")
def test_busy_competitors_take_threads_and_give_them_back(governed) -> None:
    torch.set_num_threads(2)
    assert cpu.adapt() == 2
    competitors = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(len(os.sched_getaffinity(0)))]
    try:
        assert _poll(1, 5.0) == 1, "every CPU busy with another program: one thread"
        assert torch.get_num_threads() == 1
    finally:
        for p in competitors:
            p.kill()
            p.wait()
    assert _poll(2, 5.0) == 2, "the competitors gone: back to the ceiling"
    assert torch.get_num_threads() == 2


def test_a_users_own_thread_count_becomes_the_ceiling(governed) -> None:
    torch.set_num_threads(2)
    cpu.adapt()
    torch.set_num_threads(1)  # the user's choice, after sketchrnn started
    time.sleep(0.25)
    assert cpu.adapt() == 1
    assert torch.get_num_threads() == 1


def test_sketchrnn_threads_fixes_the_count(governed, monkeypatch) -> None:
    torch.set_num_threads(2)
    monkeypatch.setenv("SKETCHRNN_THREADS", "1")
    cpu.reset()
    assert cpu.adapt() == 1 and torch.get_num_threads() == 1
    monkeypatch.setenv("SKETCHRNN_THREADS", "0")  # leave torch's own setting alone
    torch.set_num_threads(2)
    cpu.reset()
    assert cpu.adapt() == 2


def test_a_bad_sketchrnn_threads_is_one_clear_error(governed, monkeypatch) -> None:
    monkeypatch.setenv("SKETCHRNN_THREADS", "many")
    cpu.reset()
    with pytest.raises(ValueError, match="SKETCHRNN_THREADS='many'"):
        cpu.adapt()
