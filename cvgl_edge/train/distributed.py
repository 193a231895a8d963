"""Multi-GPU through torchrun: process-group set-up and small collective helpers.

torchrun sets RANK, LOCAL_RANK and WORLD_SIZE; without them everything runs as a
single process and these helpers are no-ops.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: torch.device) -> DistContext:
    """Join the torchrun process group when launched by torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    return DistContext(rank=rank, local_rank=local_rank, world_size=world_size)


class _GatherBatch(torch.autograd.Function):
    """All-gather along dim 0; the backward keeps this rank's slice of the gradient.

    Every rank computes the same global loss from the gathered batch, so the slice is
    the exact gradient for the local rows. DDP then averages parameter gradients over
    ranks, so the slice is multiplied by the world size to give the full gradient.
    """

    @staticmethod
    def forward(ctx, tensor: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
        parts = [torch.empty_like(tensor) for _ in range(world_size)]
        dist.all_gather(parts, tensor.contiguous())
        ctx.rank, ctx.world_size, ctx.rows = rank, world_size, tensor.shape[0]
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        start = ctx.rank * ctx.rows
        return grad[start : start + ctx.rows] * ctx.world_size, None, None


def gather_with_grad(tensor: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """Concatenate a per-rank batch across ranks (equal batch sizes), differentiably.

    Gives every rank the full global batch of negatives for the contrastive loss.
    """
    if not ctx.enabled:
        return tensor
    return _GatherBatch.apply(tensor, ctx.rank, ctx.world_size)


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.destroy_process_group()
