"""Models: the Vision Mamba backbone, GeoSSM dual encoder, readouts, registry, checkpoints."""

from cvgl_edge.models import presets as _presets  # noqa: F401  (fills the registry)
from cvgl_edge.models.checkpoint import checkpoint_payload, load_checkpoint, save_checkpoint
from cvgl_edge.models.geossm import GeoSSM, GeoSSMConfig
from cvgl_edge.models.registry import build_model, list_models, model_config, register_model
from cvgl_edge.models.vim import VisionMamba
from cvgl_edge.models.vim_weights import load_vim_weights

__all__ = [
    "GeoSSM",
    "GeoSSMConfig",
    "VisionMamba",
    "build_model",
    "checkpoint_payload",
    "list_models",
    "load_checkpoint",
    "load_vim_weights",
    "model_config",
    "register_model",
    "save_checkpoint",
]
