"""Which weights a model holds, as one hash: ``state_dict_sha256``.

Why in models: the exporter writes it into every exported file (``model_sha256``), and the
PyTorch runtime, verification and bench compare against it; all of them sit above models.
"""

from __future__ import annotations

import hashlib

import torch
from torch import nn


def state_dict_sha256(model: nn.Module) -> str:
    """sha256 over the state dict (sorted keys; name, dtype, shape and raw bytes of each).

    Identifies the weights, not the file they came from: the same model saved with or
    without optimizer state hashes the same.
    """
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{key}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy())
    return digest.hexdigest()
