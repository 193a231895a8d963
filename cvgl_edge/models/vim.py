"""Vision Mamba (Vim) backbone: patch embedding, optional middle cls token, Mamba layers.

State-dict keys match the official hustvl/Vim checkpoints (minus ``head.*``: retrieval
needs tokens, not ImageNet logits), so ``vim_weights.load_vim_weights`` can load them.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from cvgl_edge.errors import CvglError
from cvgl_edge.models.drop_path import DropPath
from cvgl_edge.models.mixer import BiMambaMixer
from cvgl_edge.models.norm import RMSNorm


class PatchEmbed(nn.Module):
    """Non-overlapping patches -> tokens: (B, 3, H, W) -> (B, H/p * W/p, D)."""

    def __init__(self, patch_size: int, embed_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)


class VimBlock(nn.Module):
    """Pre-norm residual layer: residual += h; h = mixer(norm(residual)). Residual in fp32."""

    def __init__(self, dim: int, n_layers: int, drop_path: float = 0.0, d_state: int = 16,
                 d_conv: int = 4, expand: int = 2, backward_dt_bias: str = "zero") -> None:
        super().__init__()
        self.norm = RMSNorm(dim, eps=1e-5)
        self.mixer = BiMambaMixer(dim, d_state=d_state, d_conv=d_conv, expand=expand,
                                  n_layers=n_layers, backward_dt_bias=backward_dt_bias)
        # Vim applies stochastic depth to the previous layer's output as it enters the residual.
        self.drop_path = DropPath(drop_path)

    def forward(
        self, h: torch.Tensor, residual: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        residual = h if residual is None else residual + self.drop_path(h)
        residual = residual.float()
        # the fp32 residual goes into the norm as is; the norm hands the mixer its own dtype
        h = self.mixer(self.norm(residual, out_dtype=self.mixer.in_proj.weight.dtype))
        return h, residual


class VisionMamba(nn.Module):
    """Vim encoder returning final-normed tokens, split into (patch tokens, cls token)."""

    def __init__(
        self,
        img_size: tuple[int, int],
        patch_size: int = 16,
        embed_dim: int = 384,
        depth: int = 24,
        cls_token: bool = True,
        drop_path: float = 0.0,
        d_state: int = 16,
        d_conv: int = 4,
        expand: int = 2,
        backward_dt_bias: str = "zero",
    ) -> None:
        super().__init__()
        h, w = img_size
        if h % patch_size or w % patch_size:
            raise CvglError(f"image size {h}x{w} is not a multiple of the patch size {patch_size}")
        self.img_size = (h, w)
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.grid = (h // patch_size, w // patch_size)
        self.num_patches = self.grid[0] * self.grid[1]
        self.has_cls_token = cls_token

        self.patch_embed = PatchEmbed(patch_size, embed_dim)
        if cls_token:
            self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.num_patches + int(cls_token), embed_dim))
        rates = torch.linspace(0, drop_path, depth).tolist()
        # layer i drops the output of layer i-1 (layer 0 has nothing to drop); norm_f uses the max
        entry_rates = ([0.0] + rates)[:depth]
        self.layers = nn.ModuleList(
            VimBlock(embed_dim, depth, p, d_state=d_state, d_conv=d_conv, expand=expand,
                     backward_dt_bias=backward_dt_bias)
            for p in entry_rates
        )
        self.drop_path = DropPath(drop_path)
        self.norm_f = RMSNorm(embed_dim, eps=1e-5)
        self._init_weights()

    @torch.no_grad()
    def _init_weights(self) -> None:
        """Vim's init: lecun-normal patch conv, trunc-normal(.02) cls/pos, zero Linear biases."""
        w = self.patch_embed.proj.weight
        fan_in = w[0].numel()
        # a normal truncated at +-2 std has std ~0.8796x; divide so the result has var 1/fan_in
        std = math.sqrt(1.0 / fan_in) / 0.87962566103423978
        nn.init.trunc_normal_(w, std=std, a=-2 * std, b=2 * std)
        nn.init.zeros_(self.patch_embed.proj.bias)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.has_cls_token:
            nn.init.trunc_normal_(self.cls_token, std=0.02)

    @staticmethod
    def cls_index(num_patches: int) -> int:
        """Position of the middle cls token in a sequence of ``num_patches`` patches."""
        return num_patches // 2

    def forward(
        self, images: torch.Tensor, pos_embed: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """images (B,3,H,W) -> (patch tokens (B,N,D), cls token (B,D) or None).

        ``pos_embed`` overrides the module's own, so one trunk can serve views with
        different grids (shared-weight dual encoders keep one pos_embed per view).
        """
        x = self.patch_embed(images)
        batch, n, _ = x.shape
        pos = self.pos_embed if pos_embed is None else pos_embed
        if pos.shape[1] != n + int(self.has_cls_token):
            raise CvglError(
                f"image of {images.shape[-2]}x{images.shape[-1]} gives {n} patches, but the "
                f"position embedding has {pos.shape[1]} rows"
            )
        mid = self.cls_index(n)
        if self.has_cls_token:
            cls = self.cls_token.expand(batch, -1, -1).to(x.dtype)
            x = torch.cat([x[:, :mid], cls, x[:, mid:]], dim=1)
        x = x + pos.to(x.dtype)

        h, residual = x, None
        for layer in self.layers:
            h, residual = layer(h, residual)
        residual = h if residual is None else residual + self.drop_path(h)
        # tokens stay fp32 from here on: the readouts pool and L2-normalise in fp32
        tokens = self.norm_f(residual, out_dtype=torch.float32)

        if not self.has_cls_token:
            return tokens, None
        patches = torch.cat([tokens[:, :mid], tokens[:, mid + 1:]], dim=1)
        return patches, tokens[:, mid]
