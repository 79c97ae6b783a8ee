"""The ``sketchrnn`` command line: a thin shell over the Python API.

    sketchrnn train [--data PATH_OR_NAME ...] [--out RUN_DIR] [--preset tiny|small|paper]
                    [--hparams STR] [--steps N] [--minutes M] [--seed S] [--resume]
    sketchrnn eval RUN_DIR [--split test]
    sketchrnn sample RUN_DIR [--n N] [--temperature T] [--seed S] [--out DIR]
    sketchrnn reconstruct RUN_DIR [--split test | --file F] [--n N] [--temperatures T,...] [--out DIR]
    sketchrnn interpolate RUN_DIR [--split test | --file F] [--pair I J] [--steps K] [--out DIR]
    sketchrnn info MODEL
    sketchrnn export MODEL --out PATH [--format gen.json|vae.json|tf]
    sketchrnn data download CATEGORY... [--kind sketchrnn|full|simplified|raw] [--dir DIR] [--base-url URL]
    sketchrnn data convert INPUT... --out FILE [--format packed|official] [--errors raise|skip] ...
    sketchrnn data info FILE [--json]
    sketchrnn data show FILE [--split S] [--n 16] [--class NAME] --out grid.svg|grid.png
    sketchrnn models list [--kind gen|vae] [--set large_models|models]
    sketchrnn models download NAME... [--kind gen|vae] [--set large_models|models] [--base-url URL]

A MODEL (RUN_DIR) is a training run, a saved model directory, a model file, a magenta TF checkpoint
folder, or an official model's name (cat, cat.vae: sketchrnn.zoo, downloaded on first use; the sheep model is bundled).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Sequence

import numpy as np

from . import __version__
from .hparams import PRESETS, HParams
from .errors import TrainingError


MODEL_HELP = ("a training run, a saved model directory, a model file (.gen.json, .vae.json), a magenta TF "
              "checkpoint folder, or an official model's name: cat, cat.vae (sketchrnn models list; downloaded "
              "on first use)")
SAMPLE_TEMPERATURE = 0.5  # tidy sketches from trained models (the official ones included), as the demos draw


# ---------------------------------------------------------------------------- helpers
def _noun(n: int, word: str, plural: str | None = None) -> str:
    """`word` as it goes after the number `n` (1 sketch, 2 sketches)."""
    return word if n == 1 else plural or word + "s"


def _floats(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError(f"expected at least one number, got {text!r}")
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise argparse.ArgumentTypeError(f"expected finite numbers >= 0, got {text!r}")
    return values


def _int(low: int, high: int | None = None):
    """An argparse type: a whole number from `low` (to `high`)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f">= {low}"
            raise argparse.ArgumentTypeError(f"expected a whole number {bound}, got {value}")
        return value
    return parse


def _number(low: float | None = None, above: bool = False):
    """An argparse type: a finite number (>= `low`, or > `low` when `above`)."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or (low is not None and (value < low or (above and value == low))):
            bound = "" if low is None else f" {'>' if above else '>='} {low:g}"
            raise argparse.ArgumentTypeError(f"expected a finite number{bound}, got {text!r}")
        return value
    return parse


_seed = _int(0, 2**64 - 1)  # torch's generators take 64 bits
_count = _int(1)


def _write_sketches(out: Path, sketches: list[np.ndarray], name: str, gif: bool = False) -> list[Path]:
    """Each sketch as SVG and PNG (and GIF), plus the strokes in an .npz that sketchrnn.data reads back."""
    from .data.npz import save_npz
    from .render import save_gif, save_png, save_svg

    out.mkdir(parents=True, exist_ok=True)
    written = []
    for i, s in enumerate(sketches):
        for suffix, save in ((".svg", save_svg), (".png", save_png), (".gif", save_gif))[: 3 if gif else 2]:
            written.append(save(s, out / f"{name}_{i:03d}{suffix}"))
    save_npz(out / f"{name}.npz", {name: [s.astype(np.float32) for s in sketches]}, dtype=np.float32)
    return [*written, out / f"{name}.npz"]


def _write_grid(out: Path, grid: list[list], name: str, **labels) -> list[Path]:
    from .render import save_grid_png, save_grid_svg

    out.mkdir(parents=True, exist_ok=True)
    return [save_grid_svg(grid, out / f"{name}.svg", **labels), save_grid_png(grid, out / f"{name}.png", **labels)]


def _own_outputs(stems: str) -> re.Pattern:
    """The names a command writes: `stems` (a regex of names) with an optional _### index and our suffixes."""
    return re.compile(rf"(?:{stems})(?:_\d{{3}})?\.(?:svg|png|gif|npz)")


def _finish_outputs(out: Path, written: list[Path], own: re.Pattern, what: str) -> None:
    """Remove this command's files from an earlier call that this one did not write again; say what went where.

    Only names the command itself writes (`own`) are touched, so anything else in `out` is safe.
    """
    keep = {p.name for p in written}
    stale = sorted(p for p in out.iterdir() if p.is_file() and own.fullmatch(p.name) and p.name not in keep)
    for path in stale:
        path.unlink()
    removed = f"; removed {len(stale)} {_noun(len(stale), 'file')} an earlier call left there" if stale else ""
    print(f"wrote {what} to {out}/{removed}")


def _read_z(path: str) -> np.ndarray:
    """Latent vectors from a NumPy .npy file (one vector, or one per row)."""
    try:
        return np.load(path, allow_pickle=False)
    except ValueError:  # numpy's message (pickled data, allow_pickle=) does not fit a file of another kind
        raise ValueError(f"{path}: not a NumPy .npy array; write latent vectors with numpy.save "
                         f"(one vector of z_size numbers, or one per row)") from None


def _load(model: str, which: str = "best", scale_factor: float | None = None, read=None):
    """`sketchrnn.load`, saying so when a run has no validated (best) model yet and the latest is used.

    `scale_factor` is for a magenta TF checkpoint folder (magenta does not store it). `read`, called
    as `load` would be, replaces it for a command that reads the model its own way (export)."""
    from . import load
    from .train.checkpoint import is_run_dir, read_pointer

    path = Path(model)
    if which == "best" and path.is_dir() and is_run_dir(path):
        pointer = read_pointer(path)
        if pointer.get("last") and not pointer.get("best"):
            print(f"note: {path}: no validation has run yet, so there is no best model: "
                  f"using the latest checkpoint (step {pointer.get('last_step')})", file=sys.stderr)
    try:
        return (read or load)(path, which, scale_factor=scale_factor)
    except ValueError as exc:
        if str(exc).endswith("pass scale_factor="):  # a magenta TF folder whose data is not here
            raise ValueError(f"{str(exc)[:-len('pass scale_factor=')]}pass --scale-factor F") from None
        raise


def _run_sketches(model_path: str, split: str, file: str | None) -> list[np.ndarray]:
    """Sketches (stroke-3, data units) from a .npz, .ndjson or .svg file, or from a training run's data."""
    from .data.load import read_splits
    from .data.npz import load_npz
    from .data.packed import is_packed
    from .train.checkpoint import is_run_dir, read_run

    if file and Path(file).suffix.lower() in (".ndjson", ".svg"):  # drawings: every one of them
        from .data import drawing_to_stroke3

        return [drawing_to_stroke3(d) for d in _drawings(Path(file))]
    if file:
        data = read_splits([file]) if is_packed(file) else load_npz(file)  # a dataset file or written sketches
        if split not in data:
            split = next(iter(data))
        return data[split]
    path = Path(model_path)
    if not is_run_dir(path):
        raise ValueError(f"{path}: not a training run, so it has no data: pass --file with sketches")
    run = read_run(path)
    sketches = read_splits(run["data"])[split]
    return [s for s in sketches if len(s) <= run["max_seq_len"]]


def _pick(sketches: list[np.ndarray], n: int, seed: int) -> list[np.ndarray]:
    from .data.load import random_subset

    return [np.asarray(sketches[i], dtype=np.float64) for i in random_subset(len(sketches), n, seed)]


# ---------------------------------------------------------------------------- commands
def _sets(overrides: str, name: str) -> bool:
    """Whether magenta-style `overrides` ("a=1,b=[x,y]") set the hyperparameter `name`."""
    return re.search(rf"(?:^|,)\s*{name}\s*=", overrides) is not None


def _refuse_changes(args: argparse.Namespace, run_dir: Path, description: dict, hps, data, max_seq_len) -> None:
    """Raise ValueError naming each option given on --resume that differs from what the run records."""
    from .train.loop import resume_conflicts

    conflicts = resume_conflicts(description, hps, data, max_seq_len)
    if args.seed is not None and args.seed != description["seed"]:
        conflicts["seed"] = f"seed {description['seed']} in the run, {args.seed} here"
    if not conflicts:
        return
    model_flags = [f for f, given in (("--preset", args.preset), ("--hparams", args.hparams)) if given]
    flags = {"hparams": model_flags,
             "data": ["--data"] if args.data else ["--hparams"],
             "max_seq_len": ["--max-seq-len"] if args.max_seq_len else ["--hparams"],
             "seed": ["--seed"]}
    parts = [f"{'/'.join(flags[key])} differs from the run ({detail})" for key, detail in conflicts.items()]
    drop = sorted({f for key in conflicts for f in flags[key]})
    raise ValueError(f"{run_dir}: {'; '.join(parts)}; --resume continues a run with its own settings: "
                     f"drop {' and '.join(drop)}, or start a new run with another --out")


def cmd_train(args: argparse.Namespace) -> int:
    from .train import train
    from .train.loop import run_to_resume

    if args.resume and not args.out:
        raise ValueError("--resume needs --out RUN_DIR, the run to continue")
    if args.init_from and (args.resume or args.preset):
        raise ValueError(f"--init-from starts a new run with {args.init_from}'s own architecture: "
                         f"leave out {'--resume' if args.resume else '--preset'}")
    description = run_to_resume(Path(args.out)) if args.resume else None
    hps = None  # on --resume without --preset or --hparams: the run's own
    if args.init_from:  # the checkpoint's settings, with --hparams on top
        base = HParams.from_json(Path(args.init_from) / "model_config.json")
        hps = HParams.parse(args.hparams, base=base) if args.hparams else base
    elif description is None or args.preset or args.hparams:
        base = HParams.preset(args.preset or "paper")
        if description is not None and not args.preset:  # --hparams alone: changes to the run's own settings
            base = HParams.from_dict(description["hparams"])
        hps = HParams.parse(args.hparams, base=base) if args.hparams else base
    explicit_len = hps.max_seq_len if args.hparams and _sets(args.hparams, "max_seq_len") else args.max_seq_len
    data = args.data or None
    if data is None and description is not None and args.hparams and _sets(args.hparams, "data_set"):
        data = hps.data_set  # what a new run would train on, so compared with the run's data
    out = Path(args.out or Path("runs") / Path(str((data or hps.data_set)[0])).stem)
    if description is not None:
        _refuse_changes(args, out, description, hps, data, explicit_len)
    steps = args.steps
    if steps is None and args.hparams and _sets(args.hparams, "num_steps"):
        steps = hps.num_steps  # the same as --steps, also on --resume
    summary = train(out, hps, data=data, steps=steps, minutes=args.minutes,
                    seed=args.seed if args.seed is not None else 0, resume=args.resume, max_seq_len=explicit_len,
                    progress=not args.quiet, device=args.device, init_from=args.init_from,
                    log_every=args.log_every)
    if os.environ.get("RANK", "0") != "0":
        return 0  # under torchrun, rank 0 reports
    if summary.stopped == "done":
        print(f"{summary.run_dir}: already at step {summary.step} of {summary.total_steps}, nothing to do "
              f"(pass --steps N above {summary.step} to train further)")
        return 0
    best = f", best valid cost {summary.best_valid_cost:.4f}" if summary.best_valid_cost is not None else ""
    print(f"{summary.run_dir}: stopped at step {summary.step} ({summary.stopped}){best}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .data import MemorySplit, load_dataset
    from .data.load import read_splits
    from .train.checkpoint import is_run_dir, read_run
    from .train.loop import evaluate, evaluate_run_split, split_likelihood

    path = Path(args.run_dir)
    model = _load(args.run_dir, args.which, args.scale_factor)  # a run: its own scale factor
    if args.data:  # any model on any file: the file's sketches in the model's own normalisation
        sketches = read_splits([args.data])[args.split]
        longest = max((len(s) for s in sketches), default=0)
        split = MemorySplit(sketches, max(longest, model.hps.max_seq_len), model.scale_factor)
        result = evaluate(model, split, model.hps.kl_weight_start, seed=0)
        source = args.data
    elif path.is_dir() and is_run_dir(path):
        run = read_run(path)
        data = load_dataset(run["data"], max_seq_len=run["max_seq_len"], random_scale_factor=0,
                            augment_stroke_prob=0, seed=run["seed"])
        if not math.isclose(data.scale_factor, run["scale_factor"], rel_tol=1e-6):  # as --resume checks
            raise ValueError(f"{path}: its data changed since the run started (scale factor {data.scale_factor:g}, "
                             f"recorded {run['scale_factor']:g}): pass --data FILE to evaluate on a file")
        split = data.split(args.split)
        result = evaluate_run_split(model, split, run["seed"])
        source = " ".join(str(p) for p in run["data"])
    else:
        raise ValueError(f"{args.run_dir}: not a training run, so it has no data of its own: pass --data FILE")
    likelihood = split_likelihood(model, split)
    lls = (-likelihood.nll_normalised).tolist()
    report = {"model": str(args.run_dir), "data": source, "split": args.split, **result.as_dict(),
              "mean_log_likelihood": float(np.mean(lls)), **likelihood.summary(), "scale_factor": model.scale_factor}
    if args.json:
        print(json.dumps(report))
    else:
        n = report["n_sketches"]
        over = (f"{result.sketches} sketches" if result.sketches == n else  # magenta's costs leave out a last part batch
                f"{result.sketches} of {n} sketches (whole batches of {model.hps.batch_size})")
        print(f"{args.split}: L_R {result.r_cost:.4f} (pen loss masked: {result.r_cost_masked:.4f}), "
              f"L_KL {result.kl_cost:.4f}, cost {result.cost:.4f} over {over}; "
              f"mean log-likelihood per sketch {report['mean_log_likelihood']:.2f}")
        print(f"NLL in data units: {report['nll_per_sketch']:.2f} ± {report['nll_per_sketch_stderr']:.2f} per sketch, "
              f"{report['nll_per_point']:.4f} per point (scale factor {model.scale_factor:g})")
    if args.per_sketch:
        from .atomic import atomic_write_json

        atomic_write_json(Path(args.per_sketch), {**report, "log_likelihood": lls,
                                                  "nll_data_units": likelihood.nll.tolist()})
        # with --json, stdout is the one JSON object: where the file went goes to stderr
        print(f"wrote each sketch's log-likelihood to {args.per_sketch}", file=sys.stderr if args.json else sys.stdout)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    from .render import grid_from_list

    model = _load(args.run_dir, args.which, args.scale_factor)
    z = _read_z(args.z) if args.z else None
    if args.n is None:  # a file of k vectors asks for k sketches
        args.n = len(z) if z is not None and z.ndim == 2 else 16
    sketches = model.sample(args.n, temperature=args.temperature, z=z, greedy=args.greedy, seed=args.seed)
    out = Path(args.out)
    written = _write_sketches(out, sketches, "sample", gif=args.gif)
    grid = grid_from_list(sketches, args.columns)
    written += _write_grid(out, grid, "grid")
    what = (f"{len(sketches)} {_noun(len(sketches), 'sketch', 'sketches')} (sample_*.svg, sample_*.png{', sample_*.gif' if args.gif else ''}, "
            f"grid.svg, grid.png, sample.npz)")
    if args.sweep:
        # one row per temperature; column k uses the same latent vector (and seed) in every row
        columns = len(grid[0])
        if model.hps.conditional and z is None:
            z = np.random.default_rng(args.seed).standard_normal((columns, model.hps.z_size))
        rows = [model.sample(columns, temperature=t, z=z[:columns] if z is not None and z.ndim == 2 else z,
                             seed=args.seed) for t in args.sweep]
        written += _write_grid(out, rows, "sweep", labels=[f"T={t:g}" for t in args.sweep])
        what += f" and a temperature sweep at τ = {', '.join(f'{t:g}' for t in args.sweep)} (sweep.svg, sweep.png)"
    _finish_outputs(out, written, _own_outputs("sample|grid|sweep"), what)
    return 0


def _drawings(file: Path) -> list:
    """The drawings of an .svg (one) or .ndjson file (each line), simplified as `data convert` does."""
    from .data import is_raw_drawing, read_ndjson, read_svg, simplify_raw

    if file.suffix.lower() == ".svg":
        return [simplify_raw(read_svg(file))]
    drawings = [d["drawing"] for d in read_ndjson(file)]
    return [simplify_raw(d) if is_raw_drawing(d) else d for d in drawings]


def _read_partial_sketch(path: str, index: int, split: str | None = None) -> np.ndarray:
    """Sketch number `index` of a file, stroke-3: a dataset .npz (its `split`: test by default, or
    the file's only split), an .ndjson drawing, an .svg, or JSON rows."""
    from .data import DataFileError, drawing_to_stroke3
    from .data.load import read_splits
    from .data.npz import load_npz
    from .data.packed import is_packed

    file = Path(path)
    suffix, name = file.suffix.lower(), None
    if not file.is_file():
        raise FileNotFoundError(f"{path}: {'not a regular file' if file.exists() else 'no such file'}")
    if split is not None and suffix != ".npz":
        raise ValueError(f"{path}: --split applies to a dataset .npz only")
    if suffix == ".json":
        try:
            rows = json.loads(file.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataFileError(f"{path}: not JSON ({exc})") from None
        if index:
            raise ValueError(f"{path}: a JSON file holds one sketch; --index does not apply")
        return rows  # complete() checks the rows and says what is wrong
    if suffix in (".svg", ".ndjson"):
        drawings = _drawings(file)
    elif suffix == ".npz":
        data = {k: v for k, v in (read_splits([file]) if is_packed(file) else load_npz(file)).items() if len(v)}
        drawings = None
        if not data:
            raise ValueError(f"{path}: the file holds no sketches")
        if split is not None:
            name = split
        else:  # sketches a model has not trained on, unless the file has one split only
            name = next(iter(data)) if len(data) == 1 else "test"
        if name not in data:
            held = ", ".join(f"{k} ({len(v)} sketches)" for k, v in data.items())
            raise ValueError(f"{path}: no {name!r} split to take a sketch from; it holds {held} (--split NAME)")
        sketches = data[name]
    else:
        raise ValueError(f"{path}: expected a .npz, .ndjson, .svg or .json (stroke-3 rows) file")
    count = len(drawings) if drawings is not None else len(sketches)
    if not 0 <= index < count:
        where = f"its {name!r} split" if drawings is None else "the file"
        raise ValueError(f"{path}: --index {index} is out of range: {where} holds {count} sketches")
    if drawings is not None:
        return drawing_to_stroke3(drawings[index]).astype(np.float64)
    return np.asarray(sketches[index], dtype=np.float64)


def cmd_complete(args: argparse.Namespace) -> int:
    from .data.npz import save_npz
    from .render import grid_from_list, save_png, save_svg

    model = _load(args.model, args.which, args.scale_factor)
    given = _read_partial_sketch(args.strokes, args.index, args.split)
    if args.first is not None:
        if args.first > len(given):
            print(f"{args.strokes}: the sketch has {len(given)} points, fewer than --first {args.first}: "
                  "all of them are given", file=sys.stderr)
        given = given[: args.first]
    if args.scale != 1:
        given = np.asarray(given, dtype=np.float64) * [args.scale, args.scale, 1]
    z = None if args.z == "prior" or not model.hps.conditional else args.z
    if args.z == "encode" and not model.hps.conditional:
        raise ValueError(f"{args.model}: an unconditional model has no encoder: drop --z encode")
    try:
        continuations = model.complete(given, n=args.n, temperature=args.temperature, z=z, seed=args.seed,
                                       greedy=args.greedy)
    except ValueError as exc:
        raise ValueError(f"{args.strokes}: {exc}") from None
    given = np.asarray(given, dtype=np.float64).reshape(-1, 3)
    finished = [np.concatenate([given, c]) for c in continuations]
    k = len(given)
    out = Path(args.out)
    written = []
    for i, sketch in enumerate(finished):
        written += [save_svg(sketch, out / f"complete_{i:03d}.svg", given=k),
                    save_png(sketch, out / f"complete_{i:03d}.png", given=k)]
    written += _write_grid(out, grid_from_list(finished), "grid", given=k)
    splits = {"given": [given.astype(np.float32)]} if k else {}  # no points given: plain sampling
    splits.update(continuation=[c.astype(np.float32) for c in continuations],
                  complete=[s.astype(np.float32) for s in finished])
    save_npz(out / "complete.npz", splits, dtype=np.float32)
    written.append(out / "complete.npz")
    what = (f"{len(finished)} {_noun(len(finished), 'completion')} of {k} given points (complete_*.svg/.png, grid.svg/.png, complete.npz "
            f"with splits {', '.join(splits)})")
    _finish_outputs(out, written, _own_outputs("complete|grid"), what)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from .train.plot import plot_runs

    out = plot_runs(args.run_dirs, args.out, args.names)
    print(f"wrote the learning curves of {len(args.run_dirs)} {_noun(len(args.run_dirs), 'run')} to {out}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .web import create_app
    except ImportError as exc:
        raise ValueError(f"sketchrnn serve needs the web extra ({exc.name} is missing): "
                         "pip install 'sketchrnn[web]'") from None
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: anyone who can reach this machine can use the models "
              "(the default, 127.0.0.1, is this machine only)", file=sys.stderr)
    # first: a port in use is an error before any model loads or any URL is shown
    sockets = _listen(args.host, args.port)
    try:
        import torch

        # The model work runs on the app's one model thread, with torch's threads; this thread keeps one,
        # so that it never starts an OpenMP team of its own (see sketchrnn.web.engine)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        app = create_app(args.models or None, device=args.device, threads=threads)
        names = ", ".join(app.state.served)
        print(f"serving {names} at http://{args.host}:{args.port}/ (API docs at /docs; Ctrl-C stops)")
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=sockets)
    except KeyboardInterrupt:  # uvicorn has shut down cleanly and passes the Ctrl-C on: the way to stop, not an error
        pass
    finally:
        for sock in sockets:
            sock.close()
    return 0


def _listen(host: str, port: int) -> list:
    """Listening sockets on every address of `host` ("" or "0.0.0.0"/"::": all interfaces), as asyncio
    would bind them; OSError naming the address when one cannot be had."""
    import socket

    sockets: list[socket.socket] = []
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, address in dict.fromkeys(infos):  # once per address
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)  # its IPv4 twin has a socket of its own
            sock.bind(address)
            sock.listen(2048)
            sock.set_inheritable(True)
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sockets


def _encoder_model(args: argparse.Namespace, command: str):
    """The MODEL of a command that encodes sketches: refused first when it has no encoder."""
    model = _load(args.run_dir, args.which, args.scale_factor)
    if not model.hps.conditional:
        raise ValueError(f"{args.run_dir}: an unconditional model has no encoder: {command} needs a "
                         "conditional (VAE) model")
    return model


def cmd_reconstruct(args: argparse.Namespace) -> int:
    model = _encoder_model(args, "reconstruct")
    originals = _pick(_run_sketches(args.run_dir, args.split, args.file), args.n, args.seed)
    columns = [originals]
    for t in args.temperatures:
        columns.append(model.reconstruct(originals, temperature=t, use_mean=not args.sample_z, seed=args.seed))
    grid = [list(row) for row in zip(*columns)]
    out = Path(args.out)
    written = _write_grid(out, grid, "reconstruct",
                          column_labels=["original"] + [f"T={t:g}" for t in args.temperatures])
    for k, t in enumerate(args.temperatures):
        written += _write_sketches(out, columns[k + 1], f"reconstruct_t{t:g}")
    written += _write_sketches(out, originals, "original")
    what = (f"{len(originals)} originals and their reconstructions at τ = "
            f"{', '.join(f'{t:g}' for t in args.temperatures)} (reconstruct.svg/.png, original_*, reconstruct_t<τ>_*)")
    _finish_outputs(out, written, _own_outputs(r"reconstruct|reconstruct_t[-+.e\d]+|original"), what)
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    model = _encoder_model(args, "interpolate")
    sketches = _run_sketches(args.run_dir, args.split, args.file)
    if args.pair:
        i, j = args.pair
        if not (0 <= i < len(sketches) and 0 <= j < len(sketches)):
            raise ValueError(f"--pair {i} {j}: the split has {len(sketches)} sketches")
        a, b = (np.asarray(sketches[k], dtype=np.float64) for k in (i, j))
    else:
        a, b = _pick(sketches, 2, args.seed)
    row = model.interpolate(a, b, steps=args.steps, method=args.method, temperature=args.temperature,
                            use_mean=not args.sample_z, seed=args.seed)
    out = Path(args.out)
    written = _write_grid(out, [[a] + row + [b]], "interpolate")
    written += _write_sketches(out, row, "interpolate")
    what = f"a {args.method} interpolation of {args.steps} steps (interpolate.svg/.png with both ends, interpolate_*)"
    _finish_outputs(out, written, _own_outputs("interpolate"), what)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .hparams import ARCHITECTURE
    from .zoo import model_path

    path = model_path(args.model)
    model = _load(str(path), "best", args.scale_factor)
    print(f"model: {args.model}" + (f" ({path})" if str(path) != args.model else ""))
    print(f"scale factor: {model.scale_factor:g}")
    settings = model.hps.to_dict()
    shown = [k for k in ARCHITECTURE if model.hps.conditional or not k.startswith(("enc_", "z_"))]
    print("architecture:")
    for key in shown:
        print(f"  {key} = {settings[key]}")
    if path.is_file():  # a magenta-js file (gen or vae) records its own facts, not our training settings
        facts = json.loads(path.read_text())[0]  # [info, dims, blobs], read and checked by load() above
        print("file info:")
        for key, value in facts.items():
            print(f"  {key} = {value}")
    else:
        print("training settings:")
        for key, value in settings.items():
            if key not in shown and key not in ARCHITECTURE:
                print(f"  {key} = {value}")
        _print_run_progress(path)
    print("parameters:")
    total = 0
    for name, count in model.parameter_table():
        print(f"  {name:>18s} {count:>12,d}")
        total += count
    print(f"  {'total':>18s} {total:>12,d}")
    return 0


def _print_run_progress(path: Path) -> None:
    """For a training run: its steps, and the best checkpoint's step and validation costs."""
    from .train.checkpoint import is_run_dir, read_pointer, stored_costs

    if not is_run_dir(path):
        return
    pointer = read_pointer(path)
    print(f"training: {pointer.get('last_step', 0)} steps (latest checkpoint)")
    if not pointer.get("best"):
        print("  no validation yet (the first comes at save_every)")
        return
    valid = stored_costs(path / pointer["best"])
    costs = (f": validation cost {valid['cost']:.4f} (reconstruction {valid['r_cost']:.4f}, KL {valid['kl_cost']:.4f})"
             if valid else "")
    print(f"  best model: step {pointer.get('best_step')}{costs}")


def cmd_export(args: argparse.Namespace) -> int:
    from .interop.export import export, format_of

    fmt = format_of(args.out, args.format)  # a wrong name is refused before the model is read
    # from the path, not a loaded model: a run's figures, a run's or magenta folder's optimizer state come along
    exported = _load(args.model, args.which, args.scale_factor,
                     read=lambda path, which, scale_factor: export(path, args.out, fmt, which=which,
                                                                   scale_factor=scale_factor))
    print(exported.summary())
    return 0


# ---------------------------------------------------------------------------- data commands
def cmd_data_download(args: argparse.Namespace) -> int:
    from .data.sources import download

    for name in args.categories:
        path = download(name, args.kind, directory=args.dir, base_url=args.base_url, progress=not args.quiet,
                        verify=args.verify)
        print(path)
    return 0


def cmd_data_convert(args: argparse.Namespace) -> int:
    from .data.convert import ProblemLog, convert_files

    problems = ProblemLog()
    simplify = {"auto": None, "always": True, "never": False}[args.simplify]
    report = convert_files(args.inputs, args.out, format=args.format, seed=args.seed, valid=args.valid,
                           test=args.test, recognized_only=args.recognized_only, max_len=args.max_len,
                           errors=args.errors, simplify=simplify, svg_category=args.svg_category, problems=problems)
    print(report.summary())
    empty = [name for name in report.class_names if not report.kept["train"].get(name)]
    if empty:
        print(f"warning: no training sketches left for {', '.join(empty[:10])}{' ...' if len(empty) > 10 else ''}: "
              "--valid and --test took them all", file=sys.stderr)
    for split, flag, fraction in (("valid", "--valid", args.valid), ("test", "--test", args.test)):
        if fraction and not sum(report.kept[split].values()):  # asked for, got none: too few sketches per class
            print(f"warning: the {split} split is empty: {flag} {fraction:g} of each class rounds down to no "
                  f"sketches{'; training needs validation sketches' if split == 'valid' else ''} (give a count, "
                  f"{flag} 1)", file=sys.stderr)
    return 0


def _split_fraction(text: str) -> float | int:
    """A split size: a fraction below 1 (0.05) or a count per category (500)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction or a count, got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"expected a fraction below 1 or a count >= 1, got {text!r}")
    return int(value) if value >= 1 and value == int(value) else value


def _histogram_lines(histogram: list[int], bins: int = 10, width: int = 40) -> list[str]:
    """A text histogram of sketch lengths in `bins` equal ranges."""
    counts = np.asarray(histogram, dtype=np.int64)
    if counts.sum() == 0:
        return ["    (no sketches)"]
    top = int(np.flatnonzero(counts).max()) + 1
    edges = np.unique(np.linspace(0, top, bins + 1).round().astype(int))
    sums = [int(counts[a:b].sum()) for a, b in zip(edges[:-1], edges[1:])]
    peak = max(sums)
    return [f"    {a:>5d}-{b - 1:<5d} {k:>10,d} {'#' * max(1 if k else 0, round(width * k / peak))}"
            for a, b, k in zip(edges[:-1], edges[1:], sums)]


def cmd_data_info(args: argparse.Namespace) -> int:
    from .data.load import describe_dataset

    info = describe_dataset(args.file)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    classes = info["classes"]
    print(f"{info['path']}: {info['format']} file, {len(classes)} {_noun(len(classes), 'class', 'classes')}")
    scale = info["scale_factor"]
    print(f"N_max {info['max_seq_len']}, scale factor {scale:.6g}" if scale is not None else
          f"N_max {info['max_seq_len']}, no training split")
    names = list(info["splits"])
    print(f"  {'class':<28s}" + "".join(f"{n:>10s}" for n in names))
    shown = classes if args.all_classes or len(classes) <= 40 else classes[:40]
    for c in shown:
        print(f"  {c[:28]:<28s}" + "".join(f"{info['splits'][n]['class_counts'].get(c, 0):>10,d}" for n in names))
    if len(shown) < len(classes):
        print(f"  ... {len(classes) - len(shown)} more classes (--all-classes lists them)")
    print(f"  {'total':<28s}" + "".join(f"{info['splits'][n]['count']:>10,d}" for n in names))
    for n in names:
        hist = info["splits"][n]["length_histogram"]
        count = info['splits'][n]['count']
        print(f"{n}: {count:,d} {_noun(count, 'sketch', 'sketches')}, {info['splits'][n]['points']:,d} points; lengths:")
        print("\n".join(_histogram_lines(hist)))
    return 0


def cmd_data_show(args: argparse.Namespace) -> int:
    from .data.load import pick_sketches
    from .render import grid_from_list, save_grid_png, save_grid_svg

    picked = pick_sketches(args.file, args.split, args.n, args.seed, args.category)
    if not picked:
        raise ValueError(f"{args.file}: no sketch to show in split {args.split!r}")
    sketches = [np.asarray(s, dtype=np.float64) for s, _ in picked]
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"{out}: the picture is written as .svg or .png, not {out.suffix or 'a file with no suffix'}")
    save = save_grid_png if out.suffix.lower() == ".png" else save_grid_svg
    save(grid_from_list(sketches, args.columns), out)
    print(f"wrote {len(picked)} {_noun(len(picked), 'sketch', 'sketches')} of {args.file} ({args.split}) to {out}, row by row:")
    for i in range(0, len(picked), args.columns):
        print("  " + ", ".join(name for _, name in picked[i : i + args.columns]))
    return 0


# ---------------------------------------------------------------------------- the official models
def cmd_models_list(args: argparse.Namespace) -> int:
    from .zoo import NAMES, bundled_model, cached_model, kinds_of

    kinds = [args.kind] if args.kind else ["gen", "vae"]

    def where(name: str, kind: str) -> str:
        if kind not in kinds_of(name):
            return ""
        if bundled_model(name, kind, args.set):
            return "bundled"
        return "cached" if cached_model(name, kind, args.set).is_file() else "-"

    names = [n for n in NAMES if any(k in kinds_of(n) for k in kinds)]
    print(f"{'name':<20s} " + " ".join(f"{k:<8s}" for k in kinds).rstrip())
    for name in names:
        print(f"{name:<20s} " + " ".join(f"{where(name, k):<8s}" for k in kinds).rstrip())
    counts = ", ".join(f"{sum(k in kinds_of(n) for n in NAMES)} {k}" for k in kinds)
    print(f"{len(names)} official models in {args.set} ({counts}); bundled: in the package; cached: in "
          f"{cached_model(names[0], kinds[0], args.set).parent}; -: downloaded on first use")
    print("a MODEL argument takes a name as cat (gen) or cat.vae (large_models); "
          "sketchrnn.pretrained(name, kind, set) takes any")
    return 0


def cmd_models_download(args: argparse.Namespace) -> int:
    from .zoo import download_model, model_url, parse_name

    wanted = []
    for spec in args.names:  # every name checked before anything is fetched
        name, kind = (parse_name(spec) if "." in spec else None) or (spec, args.kind)
        model_url(name, kind, args.set, args.base_url)
        wanted.append((name, kind))
    for name, kind in wanted:
        print(download_model(name, kind, args.set, base_url=args.base_url, progress=not args.quiet,
                             verify=args.verify))
    return 0


# ---------------------------------------------------------------------------- parser
def _preset_steps() -> str:
    """Each preset's num_steps, for the help of `train --steps`."""
    steps = {name: HParams.preset(name).num_steps for name in PRESETS}
    if len(set(steps.values())) == 1:
        return f"{next(iter(steps.values())):,d} for every preset"
    return ", ".join(f"{name} {n:,d}" for name, n in steps.items())


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN_DIR", help=MODEL_HELP)
    p.add_argument("--which", choices=["best", "last"], default="best",
                   help="for a run: the best model on validation (default) or the latest checkpoint")
    _scale_arg(p)


def _scale_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale-factor", type=_number(0, above=True), metavar="F",
                   help="for a magenta TF checkpoint folder: its data's scale factor (default: computed "
                        "from the data its model_config.json names)")


def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", default="test", choices=["train", "valid", "test"], help="split of the run's data")
    p.add_argument("--file", help="take sketches from this .npz, .ndjson or .svg file instead of the run's data")
    p.add_argument("--sample-z", action="store_true", help="encode to μ + σ·ε instead of the mean μ")
    p.add_argument("--seed", type=_seed, default=0, help="seed for picking sketches and drawing")



def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sketchrnn", description="sketch-rnn in PyTorch: train, sample, draw.")
    parser.add_argument("--version", action="version", version=f"sketchrnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("train", help="train a model (or --resume one)", description="Train sketch-rnn.")
    p.add_argument("--data", nargs="+", metavar="PATH_OR_NAME",
                   help="dataset files (official or packed .npz), ndjson/SVG drawings, or official category "
                        "names (default: the bundled aaron_sheep)")
    p.add_argument("--out", metavar="RUN_DIR", help="run directory (default: runs/<first dataset>)")
    p.add_argument("--preset", choices=list(PRESETS),
                   help="model size (default paper; on --resume, only the run's own is accepted)")
    p.add_argument("--hparams", default="", help='magenta-style overrides, e.g. "dec_model=hyper,conditional=0"')
    p.add_argument("--steps", type=_count,
                   help=f"total step count of the run (default: the preset's num_steps, {_preset_steps()}; "
                        "on --resume, the run's)")
    p.add_argument("--minutes", type=_number(0, above=True), help="stop this invocation after this many minutes")
    p.add_argument("--seed", type=_int(0, 2**32 - 3),  # the batches' numpy generators take seed, seed + 1, seed + 2
                   help="seed of the initial weights, dropout and batches (default 0; on --resume, the run's)")
    p.add_argument("--max-seq-len", type=_count, help="drop sketches longer than this (default: keep all)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.add_argument("--init-from", metavar="DIR",
                   help="a new run that goes on training a magenta TF checkpoint folder: its settings (with "
                        "--hparams on top), weights, Adam state and step count")
    p.add_argument("--device", default="cpu", help='where to train: cpu (default), cuda, cuda:N, or auto '
                                                  '(under torchrun, cuda is one GPU per local rank)')
    p.add_argument("--log-every", type=_count, default=20, metavar="N",
                   help="write the training losses to metrics.jsonl every N steps (default 20)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="losses and log-likelihood on a split",
                       description="Evaluate a model (a run, an official model, a magenta checkpoint) on a split of "
                                   "its run's data or of any dataset file: losses, and the negative log-likelihood "
                                   "in the file's own units, per sketch and per point.")
    _model_args(p)
    p.add_argument("--data", metavar="FILE", help="a dataset file (official or packed .npz, ndjson/SVG) to evaluate "
                                                  "on (default: a run's own data)")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--json", action="store_true", help="print one JSON object (nll_per_sketch, nll_per_point, "
                                                       "n_sketches, the losses, ...)")
    p.add_argument("--per-sketch", metavar="FILE.json", help="also write each sketch's log-likelihood")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("plot", help="learning curves of runs (pip install 'sketchrnn[plot]')",
                       description="Learning curves from runs' metrics.jsonl: train and validation L_R, L_KL and "
                                   "cost, learning rate and KL weight; several runs overlaid with their names.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    p.add_argument("--out", default="curves.png", help="the PNG to write (default curves.png)")
    p.add_argument("--names", nargs="+", metavar="NAME", help="legend names of the runs (default: their directories)")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("sample", help="draw new sketches", description="Sample sketches in one batch.")
    _model_args(p)
    p.add_argument("--n", type=_count, default=None, help="number of sketches (default 16, or one per row of --z)")
    p.add_argument("--temperature", type=_number(0), default=SAMPLE_TEMPERATURE,
                   help=f"τ; 0 means greedy (default {SAMPLE_TEMPERATURE:g})")
    p.add_argument("--greedy", action="store_true", help="most likely component, pen state and offsets")
    p.add_argument("--z", metavar="FILE.npy", help="latent vector(s) to decode instead of prior draws")
    p.add_argument("--seed", type=_seed, help="seed for repeatable output")
    p.add_argument("--columns", type=_count, help="columns of the grid picture (default: as square as the count allows)")
    p.add_argument("--gif", action="store_true", help="also write an animated GIF per sketch")
    p.add_argument("--sweep", type=_floats, metavar="T1,T2,...",
                   help="also draw a temperature sweep: one row per τ, the same z down each column")
    p.add_argument("--out", default="samples", help="output directory (default: samples)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("complete", help="finish a partial sketch: N alternatives in one batch",
                       description="Prime the model on the given strokes and draw N continuations.")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--which", choices=["best", "last"], default="best",
                   help="for a run: the best model on validation (default) or the latest checkpoint")
    p.add_argument("--strokes", required=True, metavar="FILE",
                   help="the partial sketch: a dataset .npz, an .ndjson drawing, an .svg, or a JSON list of "
                        "stroke-3 rows [[dx, dy, p], ...] in the model's data units")
    p.add_argument("--index", type=_int(0), default=0, help="which sketch of the .npz or .ndjson file (default 0)")
    p.add_argument("--split", metavar="NAME",
                   help="which split of a dataset .npz --index counts in (default: test, or the file's only split)")
    p.add_argument("--first", type=_int(0), metavar="K", help="keep only the sketch's first K points (a start to finish)")
    p.add_argument("--scale", type=_number(), default=1.0,
                   help="multiply the given offsets first (like the demos' pixel factor; default 1)")
    p.add_argument("--n", type=_count, default=9, help="number of alternatives (default 9)")
    p.add_argument("--temperature", type=_number(0), default=SAMPLE_TEMPERATURE,
                   help=f"τ; 0 means greedy (default {SAMPLE_TEMPERATURE:g})")
    p.add_argument("--greedy", action="store_true", help="most likely component, pen state and offsets")
    p.add_argument("--z", choices=["prior", "encode"], default="prior",
                   help="conditional models: one prior draw per alternative (default), or the partial "
                        "sketch's own z (encode)")
    p.add_argument("--seed", type=_seed, help="seed for repeatable output")
    p.add_argument("--out", default="completions", help="output directory (default: completions)")
    _scale_arg(p)
    p.set_defaults(func=cmd_complete)

    p = sub.add_parser("serve", help="a web page where the model finishes your drawing",
                       description="Serve the models in a local web app (pip install 'sketchrnn[web]').")
    p.add_argument("models", nargs="*", metavar="MODEL",
                   help="models to serve (default: the bundled official model and every cached one); " + MODEL_HELP)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=_int(1, 65535), default=8000, help="port (default 8000)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, or auto")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("reconstruct", help="encode sketches and draw them back",
                       description="Originals beside their reconstructions.")
    _model_args(p)
    _source_args(p)
    p.add_argument("--n", type=_count, default=8, help="number of sketches (default 8)")
    p.add_argument("--temperatures", type=_floats, default=[0.1, 0.5, 1.0], help="comma-separated τ values")
    p.add_argument("--out", default="reconstructions", help="output directory (default: reconstructions)")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("interpolate", help="decode along the latent path between two sketches",
                       description="Interpolate between two sketches' latent vectors.")
    _model_args(p)
    _source_args(p)
    p.add_argument("--pair", type=_int(0), nargs=2, metavar=("I", "J"), help="indices of the two sketches")
    p.add_argument("--steps", type=_int(2), default=10)
    p.add_argument("--method", choices=["slerp", "lerp"], default="slerp")
    p.add_argument("--temperature", type=_number(0), default=0.1, help="τ of each decoded sketch (default 0.1)")
    p.add_argument("--out", default="interpolations", help="output directory (default: interpolations)")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("info", help="a model's settings and parameter counts")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    _scale_arg(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("export", help="write a model for magenta-js (.gen.json, .vae.json) or magenta (TF)",
                       description="Export a model: a .gen.json (decoder only) for @magenta/sketch, a .vae.json "
                                   "(with the encoder) for sketch_rnn.js, or a magenta TensorFlow checkpoint folder.")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("--which", choices=["best", "last"], default="best",
                   help="for a run: the best model on validation (default) or the latest checkpoint")
    p.add_argument("--out", required=True, metavar="PATH",
                   help="NAME.gen.json, NAME.vae.json, or a folder (tf)")
    p.add_argument("--format", choices=["gen.json", "vae.json", "tf"],
                   help="gen.json (unconditional LSTM), vae.json (conditional LSTM) or tf (any model; "
                        "default: from the name of --out)")
    _scale_arg(p)
    p.set_defaults(func=cmd_export)

    data = sub.add_parser("data", help="Quick, Draw! data: download, convert, info, show",
                          description="Get, convert and inspect sketch datasets.")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="DATA_COMMAND")
    p = dsub.add_parser("download", help="fetch official Quick, Draw! files into the cache",
                        description="Download Quick, Draw! categories (resumes, checks size, MD5 and content).")
    p.add_argument("categories", nargs="+", metavar="CATEGORY", help='e.g. cat "The Eiffel Tower" flying_saucer')
    p.add_argument("--kind", default="sketchrnn", choices=["sketchrnn", "full", "simplified", "raw"],
                   help="sketchrnn .npz (default), full .npz, simplified or raw ndjson")
    p.add_argument("--dir", help="where to keep the files (default: $SKETCHRNN_CACHE or ~/.cache/sketchrnn)")
    p.add_argument("--base-url", help="dataset root instead of Google's (also $SKETCHRNN_QUICKDRAW_URL)")
    p.add_argument("--verify", action="store_true", help="re-hash and fully check files already in the cache")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_data_download)

    p = dsub.add_parser("convert", help="ndjson (raw or simplified) and SVG files to a dataset file",
                        description="Convert drawings to stroke-3 train/valid/test splits, one class per category.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help=".ndjson or .svg files, or directories of them")
    p.add_argument("--out", required=True, metavar="FILE", help="the dataset file to write (.npz)")
    p.add_argument("--format", default="packed", choices=["packed", "official"],
                   help="packed (multi-class, memory-mapped; default) or official (magenta's layout)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the split draw")
    p.add_argument("--valid", type=_split_fraction, default=0.05, help="validation share or count per category")
    p.add_argument("--test", type=_split_fraction, default=0.05, help="test share or count per category")
    p.add_argument("--recognized-only", action="store_true", help="keep only drawings the game recognised")
    p.add_argument("--max-len", type=_count, help="drop sketches with more stroke-3 points than this")
    p.add_argument("--errors", default="raise", choices=["raise", "skip"],
                   help="stop at the first malformed drawing (default) or skip and count them")
    p.add_argument("--simplify", default="auto", choices=["auto", "always", "never"],
                   help="Google's simplification (RDP ε=2): raw ndjson and SVG only (auto), all, none")
    p.add_argument("--svg-category", default="parent", choices=["parent", "stem"],
                   help="an SVG's class: its folder's name (default) or its file name")
    p.set_defaults(func=cmd_data_convert)

    p = dsub.add_parser("info", help="counts per split and class, lengths, N_max, scale factor",
                        description="Describe a dataset file (official or packed).")
    p.add_argument("file", metavar="FILE", help="a dataset file or an official name")
    p.add_argument("--json", action="store_true", help="print everything as JSON")
    p.add_argument("--all-classes", action="store_true", help="list every class, not the first 40")
    p.set_defaults(func=cmd_data_info)

    p = dsub.add_parser("show", help="a grid picture of random sketches from a dataset file",
                        description="Draw random sketches of a dataset file, labelled with their class.")
    p.add_argument("file", metavar="FILE", help="a dataset file, an official name, or ndjson/SVG drawings")
    p.add_argument("--split", default="train", choices=["train", "valid", "test"])
    p.add_argument("--n", type=_count, default=16, help="number of sketches (default 16)")
    p.add_argument("--class", dest="category", metavar="NAME", help="only sketches of this class")
    p.add_argument("--columns", type=_count, default=4)
    p.add_argument("--seed", type=_seed, default=0)
    p.add_argument("--out", default="grid.svg", help="picture to write, .svg or .png (default grid.svg)")
    p.set_defaults(func=cmd_data_show)

    models = sub.add_parser("models", help="the official pretrained models: list, download",
                            description="The official pretrained sketch-rnn models (magenta-js files), by name.")
    msub = models.add_subparsers(dest="models_command", required=True, metavar="MODELS_COMMAND")
    sets = ["large_models", "models"]
    p = msub.add_parser("list", help="the official model names, and which are on this machine",
                        description="List the 114 official models (gen: decoder only; vae: with an encoder).")
    p.add_argument("--kind", choices=["gen", "vae"], help="only models of this kind (default: both columns)")
    p.add_argument("--set", default="large_models", choices=sets, help="the published set (default large_models)")
    p.set_defaults(func=cmd_models_list)
    p = msub.add_parser("download", help="fetch official models into the cache",
                        description="Download official models (resumes, checks size, MD5 and content).")
    p.add_argument("names", nargs="+", metavar="NAME",
                   help="official model names, e.g. cat catpig; a name with its kind (cat.vae) keeps that kind")
    p.add_argument("--kind", default="gen", choices=["gen", "vae"], help="gen (decoder only; default) or vae")
    p.add_argument("--set", default="large_models", choices=sets, help="the published set (default large_models)")
    p.add_argument("--base-url", help="the root above the sets instead of Google's (also $SKETCHRNN_MODELS_URL)")
    p.add_argument("--verify", action="store_true", help="re-hash and fully check models already in the cache")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_models_download)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("sketchrnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`| head`): nothing left to say to it
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes at exit
        return 141
    except (ValueError, OSError, TrainingError) as exc:  # bad input or a stopped run: one clear line
        print(f"sketchrnn: error: {exc}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as exc:
        if not _out_of_memory(exc):
            raise
        asked = re.search(r"you tried to allocate (\d+) bytes", str(exc))
        size = f" ({int(asked[1]) / 2**30:,.1f} GiB at once)" if asked else ""
        print(f"sketchrnn: error: not enough memory{size}: ask for fewer sketches or a smaller batch", file=sys.stderr)
        return 2


def _out_of_memory(exc: BaseException) -> bool:
    """Whether `exc` is an allocation failure (Python's, or torch's on the CPU or a GPU)."""
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or "can't allocate memory" in str(exc))


if __name__ == "__main__":
    sys.exit(main())
