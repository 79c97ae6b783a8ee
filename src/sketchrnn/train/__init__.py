"""Training: TF-style Adam and schedules, the loop, evaluation, and crash-safe checkpoints."""

from .checkpoint import checkpoint_dir, is_run_dir, load_run_model
from .loop import EvalResult, TrainingError, TrainSummary, evaluate, train
from .optim import TFAdam, clip_gradients_, kl_weight, learning_rate

__all__ = [
    "EvalResult", "TFAdam", "TrainSummary", "TrainingError", "checkpoint_dir", "clip_gradients_", "evaluate",
    "is_run_dir", "kl_weight", "learning_rate", "load_run_model", "train",
]
