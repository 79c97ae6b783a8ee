"""Shared test helpers: where the real data lives and how numbers are compared."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DATA = SHARED / "data"
GOLDEN_TF = SHARED / "golden" / "tf"
GOLDEN_JS = SHARED / "golden" / "js"
MODELS_JS = SHARED / "models" / "magenta-js"

if not SHARED.is_dir():  # the suite runs on real data; without it, fail loudly rather than skip
    raise pytest.UsageError(f"{SHARED} is missing: the tests need ../shared beside the repository")


def max_error(actual, expected) -> float:
    """Largest element-wise error, absolute where |expected| < 1 and relative above (NaN counts as infinite)."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    assert a.shape == b.shape, f"shape {a.shape} != expected {b.shape}"
    if a.size == 0:
        return 0.0
    err = np.abs(a - b) / np.maximum(1.0, np.abs(b))
    if not np.all(np.isfinite(a)) or not np.all(np.isfinite(err)):
        return float("inf")
    return float(err.max())


def assert_close(actual, expected, tol: float, what: str = "") -> None:
    """Every element within `tol` (absolute or relative); NaN or inf fails."""
    err = max_error(actual, expected)
    assert err <= tol, f"{what}: max error {err:.3g} > {tol:g}"


@pytest.fixture(scope="module")
def one_thread():
    """Small models run fastest on one thread, and then never fight other work for the cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fixed_threads(monkeypatch):
    """Bit-for-bit comparisons of training runs need one thread count throughout: the governor
    (sketchrnn.cpu), which follows the machine's load, is held at torch's count."""
    from sketchrnn import cpu

    cpu.reset()  # torch back at the governor's ceiling
    monkeypatch.setenv("SKETCHRNN_THREADS", str(torch.get_num_threads()))
    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))  # a child process starts at it too
    cpu.adapt()  # the fixed count applies from the test's first operation, not from its first recurrent loop
    yield
    monkeypatch.delenv("SKETCHRNN_THREADS")
    cpu.reset()
