"""Retrieval losses for aligned (ground, satellite) descriptor batches."""

from cvgl_edge.losses.ddal import DDALoss, ddal_loss, ddal_weights
from cvgl_edge.losses.infonce import InfoNCELoss
from cvgl_edge.losses.registry import build_loss, list_losses
from cvgl_edge.losses.triplet import SoftTripletLoss

__all__ = [
    "DDALoss",
    "InfoNCELoss",
    "SoftTripletLoss",
    "build_loss",
    "ddal_loss",
    "ddal_weights",
    "list_losses",
]
