"""The training loop, its checkpoints and losses."""

from mtlens.models.losses import task_loss, task_losses, task_scores
from mtlens.training.trainer import NonFiniteLoss, TrainConfig, Trainer

__all__ = ["Trainer", "TrainConfig", "NonFiniteLoss", "task_loss", "task_losses", "task_scores"]
