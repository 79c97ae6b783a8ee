"""`python -m sketchrnn ...`: the same as the `sketchrnn` console script (and what `torchrun -m` starts)."""

import sys

from .cli import main

sys.exit(main())
