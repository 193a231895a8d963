"""Retrieval losses for aligned (ground, satellite) descriptor batches."""

from cvgl_edge.losses.combined import CombinedLoss
from cvgl_edge.losses.ddal import DDALoss, ddal_loss, ddal_weights
from cvgl_edge.losses.dice import DiceLoss
from cvgl_edge.losses.infonce import InfoNCELoss
from cvgl_edge.losses.kl import KLLoss
from cvgl_edge.losses.registry import build_loss, list_losses
from cvgl_edge.losses.triplet import SemiHardTripletLoss, SoftTripletLoss

__all__ = [
    "CombinedLoss",
    "DDALoss",
    "DiceLoss",
    "KLLoss",
    "SemiHardTripletLoss",
    "InfoNCELoss",
    "SoftTripletLoss",
    "build_loss",
    "ddal_loss",
    "ddal_weights",
    "list_losses",
]
