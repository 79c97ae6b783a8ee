"""The ``sketchrnn`` command line."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import __version__


def cmd_info(args: argparse.Namespace) -> int:
    """Print a model's configuration and parameter counts."""
    from . import load

    model = load(args.model)
    print(f"model: {args.model}")
    print(f"scale factor: {model.scale_factor:g}")
    for key, value in model.hps.to_dict().items():
        print(f"  {key} = {value}")
    total = 0
    for name, count in model.parameter_table():
        print(f"  {name:>18s} {count:>12,d}")
        total += count
    print(f"  {'total':>18s} {total:>12,d}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sketchrnn", description="sketch-rnn in PyTorch: train, sample, draw.")
    parser.add_argument("--version", action="version", version=f"sketchrnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("info", help="show a model's settings and parameter counts")
    p.add_argument("model", help="a sketchrnn model directory or a magenta-js .gen.json file")
    p.set_defaults(func=cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as exc:  # bad input: one clear line, no traceback
        print(f"sketchrnn: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
