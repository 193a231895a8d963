"""Global Spatial Relation Attention (GSRA), LRFR's attention over a CNN feature map (seed 002, II-A).

The C channels are split into ``groups`` sub-features of C/g channels; every group is treated
as its own sample (reshaped into the batch), so one small set of weights serves all groups
(the paper's "group convolution": almost no parameters or FLOPs). Per group x (C/g, h, w):

1. Position gates (coordinate attention): z_h = mean over width (eq. 1), z_w = mean over
   height (eq. 2); concatenated along the spatial axis, one shared 1x1 conv mixes them, the
   result is split back and squashed: a_h = sigmoid(.) (C/g, h, 1), a_w = sigmoid(.) (C/g, 1, w).
2. Relation gate: theta(x), phi(x) = ReLU(BN(1x1 conv(x))) (eqs. 3); R = theta^T phi is the
   (hw x hw) relation matrix. Position i is described by its outgoing and incoming relations
   [R(i, :), R(:, i)] (eq. 4), a 2hw-channel map; a 1x1 conv + sigmoid gives a_s (1, h, w).
3. Output x * a_h * a_w * a_s; the groups are put back together along the channels.

Choices the paper leaves open (documented in docs/models.md): R is divided by the embedding
width (a mean instead of a sum, so its scale does not grow with C/g), and the embedding
width of theta/phi is C/g. Because the relation conv reads 2hw channels, a GSRA module is
built for one feature-map size.
"""

from __future__ import annotations

import torch
from torch import nn

from cvgl_edge.errors import CvglError


class GSRA(nn.Module):
    """(B, C, h, w) -> (B, C, h, w): channel groups gated by row/column and relation attention."""

    def __init__(self, channels: int, grid: tuple[int, int], groups: int = 8) -> None:
        super().__init__()
        if groups < 1 or channels % groups:
            raise CvglError(f"gsra_groups={groups} must divide the {channels} backbone channels")
        self.channels, self.groups, self.grid = channels, groups, (int(grid[0]), int(grid[1]))
        c = channels // groups
        hw = self.grid[0] * self.grid[1]
        self.coord = nn.Conv2d(c, c, kernel_size=1)
        self.theta = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.phi = nn.Sequential(nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU())
        self.relation = nn.Conv2d(2 * hw, 1, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, ch, h, w = x.shape
        if ch != self.channels or (h, w) != self.grid:
            raise CvglError(f"GSRA built for {self.channels}x{self.grid[0]}x{self.grid[1]} features, "
                            f"got {ch}x{h}x{w}")
        g = x.reshape(b * self.groups, ch // self.groups, h, w)
        # position gates: row means (h, 1) and column means (w, 1) through one shared 1x1 conv
        z_h = g.mean(dim=3, keepdim=True)  # (bg, c, h, 1)
        z_w = g.mean(dim=2, keepdim=True).transpose(2, 3)  # (bg, c, w, 1)
        mixed = self.coord(torch.cat([z_h, z_w], dim=2))
        a_h, a_w = torch.split(mixed, [h, w], dim=2)
        gate = torch.sigmoid(a_h) * torch.sigmoid(a_w.transpose(2, 3))  # (bg, c, h, w)
        # relation gate: R (bg, hw, hw); position i described by [R(i, :), R(:, i)]
        theta = self.theta(g).flatten(2)  # (bg, c, hw)
        phi = self.phi(g).flatten(2)
        rel = torch.bmm(theta.transpose(1, 2), phi) / theta.shape[1]
        both = torch.cat([rel.transpose(1, 2), rel], dim=1)  # channel j of pos i: R(i, j) then R(j, i)
        a_s = torch.sigmoid(self.relation(both.reshape(b * self.groups, 2 * h * w, h, w)))  # (bg, 1, h, w)
        return (g * gate * a_s).reshape(b, ch, h, w)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, groups={self.groups}, grid={self.grid}"
