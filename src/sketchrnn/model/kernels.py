"""The fused element-wise steps of the fast path and the sampler's draw (`_kernels.cpp`), compiled once per machine.

A time step of a cell is a few matrix multiplies and some forty element-wise operations; the
multiplies stay with PyTorch, and the element-wise rest of a step runs here as one or two passes
per row. The source is compiled with the system's C++ compiler (``$CXX``, else ``c++``) the first
time it is needed, into ``$SKETCHRNN_CACHE`` (default ``~/.cache/sketchrnn``), keyed by the
source, the flags and the compiler, and loaded with ctypes: no PyTorch headers, a few seconds.

Without a compiler, or with ``SKETCHRNN_KERNELS=0``, the fast path does the same maths with
PyTorch operations (slower; one warning says so). Only CPU float32/float64 tensors use the kernels.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

import torch
from torch import Tensor

from ..cache import cache_dir

SOURCE = Path(__file__).with_name("_kernels.cpp")
ENABLED = os.environ.get("SKETCHRNN_KERNELS", "1") != "0"  # tests switch it to compare both paths

_P, _I, _D = ctypes.c_void_p, ctypes.c_int64, ctypes.c_double
_SIGNATURES = {  # argument types of each entry point (pointers P, integers I, doubles D)
    "lstm_forward": "IIPPPPPPI",
    "lstm_backward": "IIPPIPPPPPI",
    "ln_forward": "IIPIPPPPPPDDPPPPPPI",
    "ln_backward": "IIPPIPPPPPPPPPPPPDPIPI",
    "hyper_gates_forward": "IIPPPIPIPI",
    "hyper_gates_backward": "IIPPPIPIPPIPIPI",
    "draw_points": "IIPIPPPPIPIPPI",
}
DRAW_ROWS_PER_THREAD = 256  # a draw is a few dozen exps per row: below this, waking a thread costs more
_SUFFIX = {torch.float32: "f32", torch.float64: "f64"}


class Kernels:
    """The entry points for one dtype, as attributes named like the C functions (arguments: ints,
    data pointers, doubles; see `_kernels.cpp` for each one's layout)."""

    def __init__(self, lib: ctypes.CDLL, suffix: str) -> None:
        for name, sig in _SIGNATURES.items():
            fn = getattr(lib, f"{name}_{suffix}")
            fn.argtypes = [{"P": _P, "I": _I, "D": _D}[c] for c in sig]
            fn.restype = None
            setattr(self, name, fn)


def _ptr(t: Tensor | None) -> int | None:
    """Address of `t`'s first element (None for None)."""
    return None if t is None else t.data_ptr()


class FusedKernels:
    """The fast loops' element-wise backend (`fast.backends.ElementWise`) on these kernels: each
    method passes its tensors' shapes, strides and addresses to the C function of the same maths
    as `fast.backends.TorchOps`' method, with rows split over torch's threads."""

    def __init__(self, k: Kernels, forget_bias: float, ln_epsilon: float) -> None:
        self.k, self.forget_bias, self.ln_epsilon = k, forget_bias, ln_epsilon

    def accumulator_rows(self, batch: int) -> int:
        return torch.get_num_threads()  # one row of sums per thread

    def lstm_step(self, a, c, mask, c_next, tanh_c, h_next) -> None:
        n = c.shape[-1]
        self.k.lstm_forward(c.numel() // n, n, a.data_ptr(), c.data_ptr(), _ptr(mask), c_next.data_ptr(),
                            tanh_c.data_ptr(), h_next.data_ptr(), torch.get_num_threads())

    def lstm_step_backward(self, dh, d_out, dc, a, c, tanh_c, mask) -> Tensor:
        n = c.shape[-1]
        self.k.lstm_backward(c.numel() // n, n, dh.data_ptr(), _ptr(d_out), 0 if d_out is None else d_out.stride(-2),
                             dc.data_ptr(), a.data_ptr(), c.data_ptr(), tanh_c.data_ptr(), _ptr(mask),
                             torch.get_num_threads())
        return dc

    def ln_step(self, tape, t, s, gamma, beta, gamma_c, beta_c, mask) -> Tensor:
        self.k.ln_forward(s.shape[0], tape.n, s.data_ptr(), s.stride(0), gamma.data_ptr(), beta.data_ptr(),
                          gamma_c.data_ptr(), beta_c.data_ptr(), tape.cs[t].data_ptr(), _ptr(mask), self.ln_epsilon,
                          self.forget_bias, tape.normed[t].data_ptr(), tape.rstd[t].data_ptr(),
                          tape.cs[t + 1].data_ptr(), tape.c_stats[t, 0].data_ptr(), tape.c_stats[t, 1].data_ptr(),
                          tape.hs[t + 1].data_ptr(), torch.get_num_threads())
        return tape.hs[t + 1]

    def ln_step_backward(self, tape, t, dh, dc, gamma, beta, gamma_c, beta_c, mask, acc, ds, dh_extra) -> Tensor:
        self.k.ln_backward(dh.shape[0], tape.n, dh.data_ptr(), _ptr(dh_extra),
                           0 if dh_extra is None else dh_extra.stride(0), dc.data_ptr(), tape.normed[t].data_ptr(),
                           tape.rstd[t].data_ptr(), tape.cs[t].data_ptr(), tape.cs[t + 1].data_ptr(),
                           tape.c_stats[t, 0].data_ptr(), tape.c_stats[t, 1].data_ptr(), gamma.data_ptr(),
                           beta.data_ptr(), gamma_c.data_ptr(), beta_c.data_ptr(), _ptr(mask), self.forget_bias,
                           ds.data_ptr(), ds.stride(0), acc.data_ptr(), torch.get_num_threads())
        return dc

    def hyper_gates(self, ab, bias, x_t, hw, s) -> None:
        self.k.hyper_gates_forward(hw.shape[0], hw.shape[1] // 4, ab.data_ptr(), bias.data_ptr(), x_t.data_ptr(),
                                   x_t.stride(0), hw.data_ptr(), hw.stride(0), s.data_ptr(), torch.get_num_threads())

    def hyper_gates_backward(self, ds, ab, x_t, hw, d_ab, d_xw, d_hw, d_bias) -> None:
        self.k.hyper_gates_backward(ds.shape[0], ds.shape[1] // 4, ds.data_ptr(), ab.data_ptr(), x_t.data_ptr(),
                                    x_t.stride(0), hw.data_ptr(), hw.stride(0), d_ab.data_ptr(), d_xw.data_ptr(),
                                    d_xw.stride(0), d_hw.data_ptr(), d_hw.stride(0), d_bias.data_ptr(),
                                    torch.get_num_threads())

    def draw_points(self, y, num_mixture, tau, greedy, first, u, e) -> tuple[Tensor, Tensor]:
        rows = y.shape[0]
        y = y if y.stride(-1) == 1 else y.contiguous()
        x = torch.empty(rows, 5, dtype=y.dtype, device=y.device)
        pen = torch.empty(rows, dtype=torch.int64, device=y.device)
        tau, greedy = tau.contiguous(), greedy.contiguous()
        first = None if first is None else first.contiguous()
        u, e = (v if v.stride(-1) == 1 else v.contiguous() for v in (u, e))
        threads = max(1, min(torch.get_num_threads(), rows // DRAW_ROWS_PER_THREAD))
        self.k.draw_points(rows, num_mixture, y.data_ptr(), y.stride(0), tau.data_ptr(), greedy.data_ptr(),
                           _ptr(first), u.data_ptr(), u.stride(0), e.data_ptr(), e.stride(0), x.data_ptr(),
                           pen.data_ptr(), threads)
        return x, pen


_lock = threading.Lock()
_library: ctypes.CDLL | None = None
_bound: dict[torch.dtype, Kernels] = {}
_failed = False


def _torch_uses_libgomp() -> bool:
    """Whether this process already has GNU OpenMP loaded as ``libgomp.so.1`` (PyTorch's Linux builds
    do): a library built with -fopenmp then shares that runtime and its threads instead of bringing
    a second one."""
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return False
    return any(line.endswith("/libgomp.so.1") for line in maps.splitlines())


def _flags() -> list[str]:
    flags = ["-O3", "-std=c++17", "-shared", "-fPIC", "-fopenmp-simd", "-fno-math-errno", "-fno-trapping-math"]
    capability = torch.backends.cpu.get_cpu_capability() if platform.machine().lower() in ("x86_64", "amd64") else ""
    if capability in ("AVX2", "AVX512"):
        flags += ["-mavx2", "-mfma"]  # what torch itself found this CPU to have
    if capability == "AVX512":
        # AVX-512's instructions on 256-bit vectors (an LSTM step of 144 rows: 241 µs against AVX2's
        # 375): 512-bit ones are faster still (135 µs) but sum in another order, enough to move two
        # float32 checks against TF (tests/parity) past their bounds
        flags += ["-mavx512f", "-mavx512dq", "-mavx512bw", "-mavx512vl", "-mprefer-vector-width=256"]
    if _torch_uses_libgomp():
        flags.append("-fopenmp")  # rows split over PyTorch's own OpenMP threads (else one thread)
    return flags


def build(compiler: str | None = None) -> Path:
    """Compile `_kernels.cpp` (once; later calls find it in the cache) and return the library's path."""
    compiler = compiler or os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if not compiler:
        raise RuntimeError("no C++ compiler found (install g++ or clang, or set CXX)")
    flags = _flags()
    key = hashlib.sha256(SOURCE.read_bytes() + repr((flags, compiler, platform.machine())).encode()).hexdigest()[:16]
    target = cache_dir() / f"kernels-{key}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".kernels-", suffix=".so")
    os.close(fd)
    try:
        done = subprocess.run([compiler, *flags, str(SOURCE), "-o", tmp], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{compiler} failed on {SOURCE.name}:\n{done.stderr.strip()[-2000:]}")
        os.replace(tmp, target)  # atomic: a concurrent build or reader sees the whole library or none
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target


def _load() -> ctypes.CDLL | None:
    global _library, _failed
    with _lock:
        if _library is None and not _failed:
            try:
                _library = ctypes.CDLL(str(build()))
            except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
                _failed = True
                warnings.warn(f"sketchrnn: the fused kernels are not available, training and sampling run on PyTorch's "
                              f"element-wise operations (slower): {exc}", RuntimeWarning, stacklevel=3)
    return _library


def for_tensor(x: Tensor) -> Kernels | None:
    """The kernels for `x`'s dtype when `x` can use them (CPU, float32/float64, enabled, built), else None."""
    if not ENABLED or x.device.type != "cpu" or x.dtype not in _SUFFIX:
        return None
    kernels = _bound.get(x.dtype)
    if kernels is None:
        lib = _load()
        if lib is None:
            return None
        kernels = _bound.setdefault(x.dtype, Kernels(lib, _SUFFIX[x.dtype]))
    return kernels


_fused: dict[torch.dtype, FusedKernels] = {}


def fused_for(x: Tensor, forget_bias: float, ln_epsilon: float) -> FusedKernels | None:
    """The fast loops' backend on the kernels for tensors like `x`, where `for_tensor` gives kernels
    (the cells' forget bias and layer-norm ε are passed to the kernels that need them)."""
    k = for_tensor(x)
    if k is None:
        return None
    fused = _fused.get(x.dtype)
    if fused is None or fused.k is not k or (fused.forget_bias, fused.ln_epsilon) != (forget_bias, ln_epsilon):
        fused = _fused[x.dtype] = FusedKernels(k, forget_bias, ln_epsilon)
    return fused
