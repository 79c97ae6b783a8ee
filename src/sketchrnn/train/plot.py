"""Learning curves of training runs from their metrics.jsonl, drawn with matplotlib (``sketchrnn[plot]``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from ..atomic import atomic_write

# (panel title, metrics key, kinds drawn): train as a line, valid as dots joined
PANELS = (
    ("L_R (reconstruction)", "r_cost", ("train", "valid")),
    ("L_KL", "kl_cost", ("train", "valid")),
    ("cost", "cost", ("train", "valid")),
    ("learning rate", "lr", ("train",)),
    ("KL weight", "kl_weight", ("train",)),
)


def read_metrics(run_dir: Path) -> list[dict]:
    """The records of a run's metrics.jsonl; ValueError naming the file when it is missing or unreadable."""
    path = Path(run_dir) / "metrics.jsonl"
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the run's metrics ({exc.strerror or exc})") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
    return records


def series(records: list[dict], kind: str, key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of `key` in the records of `kind` (the last record of a step that was logged twice)."""
    by_step = {r["step"]: r[key] for r in records if r.get("kind") == kind and isinstance(r.get(key), (int, float))}
    steps = sorted(by_step)
    return steps, [by_step[s] for s in steps]


def plot_runs(run_dirs: Sequence[str | Path], out: str | Path, names: Sequence[str] | None = None) -> Path:
    """One PNG of every run's learning curves overlaid, a panel per quantity, each run named in the legend."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ValueError("sketchrnn plot needs matplotlib: pip install 'sketchrnn[plot]'") from None
    if names and len(names) != len(run_dirs):  # zip would drop the runs (or names) left over
        raise ValueError(f"{len(names)} name{'s' if len(names) != 1 else ''} for {len(run_dirs)} "
                         f"run{'s' if len(run_dirs) != 1 else ''}: give one name per run, or none")
    runs = [(Path(d), read_metrics(Path(d))) for d in run_dirs]
    names = list(names) if names else [d.name or str(d) for d, _ in runs]
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4 * len(PANELS), 3.6), constrained_layout=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, ((run_dir, records), name) in enumerate(zip(runs, names)):
        color = colors[k % len(colors)]
        if not any(r.get("kind") == "train" for r in records):
            raise ValueError(f"{run_dir / 'metrics.jsonl'}: no training steps logged yet")
        for ax, (title, key, kinds) in zip(axes, PANELS):
            for kind in kinds:
                steps, values = series(records, kind, key)
                if kind == "train":
                    ax.plot(steps, values, color=color, linewidth=1.2, label=f"{name} train")
                elif steps:
                    ax.plot(steps, values, color=color, linestyle="--", marker="o", markersize=3,
                            label=f"{name} valid")
            ax.set_title(title)
            ax.set_xlabel("step")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    out = Path(out)
    atomic_write(out, lambda fh: fig.savefig(fh, format="png", dpi=100))
    plt.close(fig)
    return out
