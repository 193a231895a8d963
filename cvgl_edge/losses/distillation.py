"""Distillation loss: the student's task loss plus what a frozen teacher knows about the batch.

Two terms on top of the task loss (DDAL, InfoNCE, ...), each with an exposed weight:

- relational: the student's in-batch similarity *distribution* is matched to the teacher's.
  For the (B, B) cosine matrices S (student) and T (teacher) of ground rows vs satellite
  columns, each row becomes a distribution softmax(S_i / tau) (likewise for T) and the loss is
  KL(teacher || student), averaged over rows; the same over columns (satellite->ground), and
  the two directions averaged. It transfers which wrong references the teacher finds close,
  not only which one is right, and needs no shared descriptor space, so it works for any
  student width. tau (``temperature``) sets how much of the ranking beyond the top counts:
  cosines live in [-1, 1], so tau ~ 0.1 turns a 0.3 cosine gap into a factor e^3.
  No tau^2 factor (Hinton's): the gradient grows as 1/tau, which the weight can absorb.
- alignment: 1 - cos(P s, t) per descriptor, both views, where P is a learned linear map
  student_dim -> teacher_dim when the dimensions differ (the identity when they match). Cosine
  on L2-normalised vectors is MSE/2 on them, so there is nothing to choose between the two; the
  projected vector is re-normalised so only directions are compared. P lives in this module, so
  the optimiser (built over [model, loss]) trains it and checkpoints keep it in ``loss_state``.

Inputs are the usual aligned L2-normalised batches: row i of ground matches row i of satellite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from cvgl_edge.errors import CvglError
from cvgl_edge.losses._checks import similarity_matrix


def relational_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean over rows of KL(softmax(teacher / tau) || softmax(student / tau)) for two (B, B) similarity matrices."""
    target = F.log_softmax(teacher.detach().float() / temperature, dim=1)
    log_q = F.log_softmax(student.float() / temperature, dim=1)
    return F.kl_div(log_q, target, log_target=True, reduction="batchmean")


def relational_loss(
    student_ground: torch.Tensor, student_satellite: torch.Tensor,
    teacher_ground: torch.Tensor, teacher_satellite: torch.Tensor, temperature: float,
) -> torch.Tensor:
    """``relational_kl`` over rows (ground->satellite) and columns (satellite->ground), averaged."""
    s = similarity_matrix(student_ground, student_satellite)
    t = similarity_matrix(teacher_ground, teacher_satellite)
    return 0.5 * (relational_kl(s, t, temperature) + relational_kl(s.t(), t.t(), temperature))


class DistillationLoss(nn.Module):
    """task(sg, ss) + relational_weight * relational + align_weight * alignment.

    ``last_terms`` holds the three unweighted terms of the latest call (for the step log).
    """

    def __init__(
        self,
        task: nn.Module,
        student_dim: int,
        teacher_dim: int,
        temperature: float = 0.1,
        relational_weight: float = 1.0,
        align_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if temperature <= 0:
            raise CvglError(f"--temperature must be positive, got {temperature}")
        if relational_weight < 0 or align_weight < 0:
            raise CvglError("--relational-weight and --align-weight must be >= 0")
        self.task = task
        self.temperature = float(temperature)
        self.relational_weight = float(relational_weight)
        self.align_weight = float(align_weight)
        self.student_dim, self.teacher_dim = int(student_dim), int(teacher_dim)
        # a projection only where the spaces differ in size; equal sizes are aligned directly
        self.projection = (
            nn.Linear(self.student_dim, self.teacher_dim, bias=False) if self.student_dim != self.teacher_dim else None
        )
        self.last_terms: dict[str, float] = {}

    def align(self, student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        """Mean of 1 - cos(P s, t) over the batch."""
        projected = student.float() if self.projection is None else self.projection(student.float())
        return (1.0 - F.cosine_similarity(projected, teacher.detach().float(), dim=1)).mean()

    def forward(
        self,
        student_ground: torch.Tensor,
        student_satellite: torch.Tensor,
        teacher_ground: torch.Tensor,
        teacher_satellite: torch.Tensor,
    ) -> torch.Tensor:
        task = self.task(student_ground, student_satellite)
        relational = relational_loss(student_ground, student_satellite, teacher_ground, teacher_satellite,
                                     self.temperature)
        alignment = 0.5 * (self.align(student_ground, teacher_ground)
                           + self.align(student_satellite, teacher_satellite))
        self.last_terms = {"task": float(task.detach()), "relational": float(relational.detach()),
                           "align": float(alignment.detach())}
        return task + self.relational_weight * relational + self.align_weight * alignment

    def extra_repr(self) -> str:
        return (f"temperature={self.temperature}, relational_weight={self.relational_weight}, "
                f"align_weight={self.align_weight}, student_dim={self.student_dim}, teacher_dim={self.teacher_dim}")
