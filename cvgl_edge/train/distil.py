"""Distillation: train a small student against a frozen, trained teacher (``cvgl-edge distil``).

Why a Trainer subclass: the student's run is an ordinary training run (same data, schedule,
checkpoints, resume, DDP); only the loss differs. The teacher sees the very same (augmented)
images, in eval mode and without gradients; :class:`~cvgl_edge.losses.distillation.DistillationLoss`
adds the relational and alignment terms to the student's task loss. The student's checkpoint is
a normal cvgl-edge checkpoint (eval / export / bench read it as any other); its ``train_config``
carries ``distil`` = {teacher, teacher_sha256, temperature, relational_weight, align_weight}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from cvgl_edge.errors import CvglError
from cvgl_edge.io import file_sha256
from cvgl_edge.losses import build_loss
from cvgl_edge.losses.distillation import DistillationLoss
from cvgl_edge.models.checkpoint import model_from_payload, read_checkpoint
from cvgl_edge.models.query_view import for_dataset
from cvgl_edge.train.config import TrainConfig
from cvgl_edge.train.distributed import gather_with_grad
from cvgl_edge.train.loop import Trainer, TrainResult

DISTIL_DEFAULTS = {"temperature": 0.1, "relational_weight": 1.0, "align_weight": 1.0}


def distil_settings(teacher: str | Path, **weights: float) -> dict[str, Any]:
    """The ``TrainConfig.distil`` record (the sha256 is added when the run starts)."""
    unknown = sorted(set(weights) - set(DISTIL_DEFAULTS))
    if unknown:
        raise CvglError(f"unknown distillation setting(s): {', '.join(unknown)}")
    return {"teacher": str(teacher), **DISTIL_DEFAULTS, **weights}


def teacher_query_view(payload: dict[str, Any]) -> str | None:
    """The query view the teacher was trained for ("ground" / "drone"); None when the file does not say."""
    trained = payload.get("train_config") or {}
    if trained.get("query_view"):
        return str(trained["query_view"])
    data = str(trained.get("data") or "")
    if data.startswith("synthetic-drone"):
        return "drone"
    return "ground" if data.split(":", 1)[0] in ("synthetic", "cvusa", "cvact") else None


def _sizes_text(sizes: dict[str, tuple[int, int]], views: list[str]) -> str:
    return " / ".join(f"{view} {'x'.join(map(str, sizes[view]))}" if view in sizes else f"no {view} view"
                      for view in views)


class DistilTrainer(Trainer):
    """A :class:`Trainer` whose loss adds the teacher's knowledge; ``cfg.distil`` names the teacher."""

    def __init__(self, cfg: TrainConfig, resume: str | bool = False):
        if not cfg.distil or not cfg.distil.get("teacher"):
            raise CvglError("distillation needs a teacher checkpoint (--teacher)")
        path = Path(cfg.distil["teacher"])
        self.teacher_path = path
        self.teacher_payload = read_checkpoint(path)
        self.teacher = model_from_payload(self.teacher_payload, str(path))
        self.teacher_query_view = teacher_query_view(self.teacher_payload)
        cfg.distil = {**DISTIL_DEFAULTS, **cfg.distil, "teacher_sha256": file_sha256(path)}
        super().__init__(cfg, resume=resume)
        self._check_query_view()
        self.teacher.to(self.device).eval().requires_grad_(False)
        self.teacher_pair_model: nn.Module = for_dataset(self.teacher, self.train_set)

    # ----------------------------------------------------------------- checks
    def _check_query_view(self) -> None:
        """The teacher must have been trained for the data's query view (ground panoramas vs drone frames)."""
        if self.teacher_query_view is not None and self.teacher_query_view != self.query_view:
            raise CvglError(
                f"teacher {self.teacher_path} was trained on {self.teacher_query_view} queries but --data "
                f"{self.cfg.data} has {self.query_view} queries: distil on the teacher's kind of data"
            )

    def _check_sizes(self) -> None:
        """The teacher must take the student's images: same views at the same sizes (checked before
        any data is built; the views are the teacher's query view's branch and the satellite's)."""
        path = self.teacher_path
        canonical = getattr(self.model, "canonical_view", lambda view: view)
        views = list(dict.fromkeys([canonical(self.teacher_query_view or "ground"), "satellite"]))
        teacher_sizes = {v: tuple(s) for v, s in getattr(self.teacher, "input_sizes", {}).items()}
        student_sizes = {v: tuple(s) for v, s in self.model.input_sizes.items()}
        if any(teacher_sizes.get(view) != student_sizes.get(view) for view in views):
            raise CvglError(
                f"teacher {path} takes {_sizes_text(teacher_sizes, views)} images but student "
                f"{self.cfg.model} takes {_sizes_text(student_sizes, views)}: give the student the "
                f"teacher's sizes (" + " ".join(f"--set '{v}_size={tuple(teacher_sizes[v])}'" for v in views
                                               if v in teacher_sizes) + ")"
            )
        trained = self.teacher_payload.get("train_config") or {}
        if "polar" in trained and bool(trained["polar"]) != self.cfg.polar:
            raise CvglError(
                f"teacher {path} was trained with polar={bool(trained['polar'])}, this run has "
                f"polar={self.cfg.polar}: pass --{'polar' if trained['polar'] else 'no-polar'}"
            )

    def _read_resume(self, path: Path) -> dict[str, Any]:
        state = super()._read_resume(path)
        saved = (state.get("train_config") or {}).get("distil") or {}
        for key in ("teacher_sha256", *DISTIL_DEFAULTS):
            if key in saved and saved[key] != self.cfg.distil.get(key):
                raise CvglError(f"cannot resume: {path} was distilled with {key}={saved[key]!r}, "
                                f"this run asks for {self.cfg.distil.get(key)!r}")
        return state

    # ----------------------------------------------------------------- loss
    def _build_loss(self) -> nn.Module:
        self._check_sizes()
        task = build_loss(self.cfg.loss, **self.cfg.loss_params)
        settings = self.cfg.distil or {}
        return DistillationLoss(
            task, student_dim=self.model.descriptor_dim, teacher_dim=self.teacher.descriptor_dim,
            temperature=float(settings["temperature"]), relational_weight=float(settings["relational_weight"]),
            align_weight=float(settings["align_weight"]),
        )

    def _loss(self, ground: torch.Tensor, satellite: torch.Tensor) -> torch.Tensor:
        with torch.autocast(
            device_type=self.device.type, dtype=self.amp_dtype or torch.float32, enabled=self.amp_dtype is not None
        ):
            student_ground, student_satellite = self.train_model(ground, satellite)
            with torch.no_grad():
                teacher_ground, teacher_satellite = self.teacher_pair_model(ground, satellite)
        parts = [gather_with_grad(t.float(), self.ctx)
                 for t in (student_ground, student_satellite, teacher_ground, teacher_satellite)]
        return self.loss_fn(*parts)

    def _log_extras(self) -> dict[str, Any]:
        return dict(getattr(self.loss_fn, "last_terms", {}))


def distil(cfg: TrainConfig, resume: str | bool = False) -> tuple[DistilTrainer, TrainResult]:
    """Build a DistilTrainer and run it; the trainer is returned for the final report."""
    trainer = DistilTrainer(cfg, resume=resume)
    return trainer, trainer.run()
