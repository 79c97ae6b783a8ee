#!/usr/bin/env bash
# The GPU checks, for a machine with at least one CUDA GPU (at most about 8 minutes):
#   1. a default-configuration training step of each decoder cell against cuDNN's nn.LSTM of the same shapes
#   2. batched sampling of 1000 sketches from the official sheep model
#   3. a short training run with --device cuda (the whole training path on the GPU)
#   4. sketchrnn serve with --device cuda: 1 and 16 concurrent clients (benchmarks/serve.py)
#   5. with two GPUs or more: a 2-GPU DDP step (NCCL) against one GPU at the same global batch
# Run from the repository root after `pip install torch==<a CUDA build> && pip install -e .`:
#   bash benchmarks/gpu.sh
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
import torch
assert torch.cuda.is_available(), "no CUDA GPU visible to torch"
print(torch.__version__, torch.version.cuda, [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())])
PY
timeout 150 python benchmarks/train_step.py --device cuda --repeats 3
timeout 60 python benchmarks/sample.py --device cuda --n 1000 --single 5
out=$(mktemp -d)
timeout 60 python -m sketchrnn train --device cuda --preset small --steps 100 --hparams save_every=100 --out "$out/run" --quiet
rm -rf "$out"
timeout 90 python benchmarks/serve.py --device cuda --clients 1,16 --requests 100
if [ "$(python -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
    timeout 90 python benchmarks/ddp.py --device cuda --procs 2 --steps 5
else
    echo "one GPU: no DDP step"
fi
