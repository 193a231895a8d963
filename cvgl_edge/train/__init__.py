"""Training: config, optimisers (AdamW, SAM/ASAM), schedule, resumable loop, DDP."""

from cvgl_edge.train.config import TrainConfig

__all__ = ["TrainConfig"]
