"""Optimisers: AdamW, and SAM / ASAM (sharpness-aware) wrapped around AdamW.

The GeoSSM paper trains with ASAM (Kwon et al., 2021): the weights are pushed to
the worst point of an adaptive neighbourhood, w + rho * T^2 g / ||T g|| with
T = |w| + eta, the gradient is taken there, and the base optimiser steps from the
original weights. SAM is the same with T = 1. Each step costs two forward/backward
passes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

OPTIMIZERS = ("adamw", "asam", "sam")


def parameter_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict]:
    """Decay matrices and convs; leave biases, norms, embeddings and SSM A/D alone."""
    decay, no_decay = [], []
    no_decay_names = {"pos_embed", "cls_token", "A_log", "A_b_log", "logit_scale"}
    seen: set[int] = set()
    for module in modules:
        for name, param in module.named_parameters():
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            if param.ndim <= 1 or name.rsplit(".", 1)[-1] in no_decay_names:
                no_decay.append(param)
            else:
                decay.append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


class SharpnessAware:
    """Two-pass sharpness-aware step around a base optimiser (SAM or adaptive ASAM)."""

    def __init__(self, base: torch.optim.Optimizer, rho: float, adaptive: bool, eta: float = 0.01):
        if rho <= 0:
            raise ValueError("rho must be positive")
        self.base = base
        self.rho = rho
        self.adaptive = adaptive
        self.eta = eta
        self._perturbations: dict[torch.Tensor, torch.Tensor] = {}

    @property
    def param_groups(self) -> list[dict]:
        return self.base.param_groups

    def _scale(self, param: torch.Tensor) -> torch.Tensor:
        return param.detach().abs() + self.eta if self.adaptive else torch.ones_like(param)

    @torch.no_grad()
    def perturb(self) -> None:
        """Move to w + e(w) using the gradients currently stored in .grad."""
        params = [p for g in self.base.param_groups for p in g["params"] if p.grad is not None]
        scaled = [self._scale(p) * p.grad for p in params]
        norm = torch.norm(torch.stack([s.norm(2) for s in scaled]), 2) if scaled else None
        if norm is None or not torch.isfinite(norm) or norm == 0:
            return
        for param, s in zip(params, scaled):
            e = self.rho * self._scale(param) * s / norm
            param.add_(e)
            self._perturbations[param] = e

    @torch.no_grad()
    def restore(self) -> None:
        """Undo ``perturb`` so the base optimiser steps from the original weights."""
        for param, e in self._perturbations.items():
            param.sub_(e)
        self._perturbations.clear()

    def step(self) -> None:
        self.base.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.base.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return self.base.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.base.load_state_dict(state)


def build_optimizer(
    name: str,
    modules: Iterable[nn.Module],
    lr: float,
    weight_decay: float,
    rho: float = 0.5,
) -> torch.optim.Optimizer | SharpnessAware:
    """AdamW, or AdamW inside SAM/ASAM. rho defaults to the ASAM paper's 0.5 (SAM: use ~0.05)."""
    groups = parameter_groups(modules, weight_decay)
    base = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999))
    if name == "adamw":
        return base
    if name in ("asam", "sam"):
        return SharpnessAware(base, rho=rho, adaptive=name == "asam")
    raise ValueError(f"unknown optimizer {name!r}; choose from {', '.join(OPTIMIZERS)}")


def closure_step(
    optimizer: torch.optim.Optimizer | SharpnessAware,
    compute_loss: Callable[[], torch.Tensor],
    clip_norm: float | None,
    parameters: list[torch.Tensor],
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[torch.Tensor, float]:
    """One optimiser step; returns (first-pass loss, grad norm before clipping).

    A non-finite loss skips the update so the caller can stop without damage.
    ``scaler`` (fp16 AMP) is only supported with plain AdamW.
    """
    sharpness_aware = isinstance(optimizer, SharpnessAware)
    if scaler is not None and sharpness_aware:
        raise ValueError("fp16 gradient scaling is not supported with SAM/ASAM; use bf16")
    optimizer.zero_grad(set_to_none=True)
    loss = compute_loss()
    if not torch.isfinite(loss):
        return loss.detach(), float("nan")
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    if sharpness_aware:
        optimizer.perturb()
        optimizer.zero_grad(set_to_none=True)
        compute_loss().backward()
        optimizer.restore()
    grad_norm = _clip(parameters, clip_norm)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    return loss.detach(), grad_norm


def _clip(parameters: list[torch.Tensor], clip_norm: float | None) -> float:
    with_grad = [p for p in parameters if p.grad is not None]
    if not with_grad:
        return 0.0
    max_norm = clip_norm if clip_norm and clip_norm > 0 else float("inf")
    return float(torch.nn.utils.clip_grad_norm_(with_grad, max_norm))
