"""Exceptions the command line reports as one line, kept free of heavy imports.

`sketchrnn.cli` catches these before it has imported torch (and often without ever importing it),
so they live here rather than beside the code that raises them.
"""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot go on (message says why and what is safe on disk)."""
