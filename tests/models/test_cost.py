"""Params / FLOPs / bytes of one branch, checked against hand counts on the tiny GeoSSM."""

import math

import pytest
import torch

from cvgl_edge.models.cost import FLOP_CONVENTION, model_cost, params_total
from cvgl_edge.errors import CvglError
from cvgl_edge.models import build_model
from tests.support.tiny import TINY


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("geossm-nano", **TINY)


@pytest.fixture(scope="module")
def ground(model):
    return model_cost(model, "ground")


def _shapes(model, view):
    c = model.config
    d, di, n = c.embed_dim, c.expand * c.embed_dim, c.d_state
    r = math.ceil(d / 16)
    tokens = c.num_patches(view) + int(c.cls_token)
    return c, d, di, n, r, tokens


def test_params_are_the_branch_parameters(model, ground):
    assert ground["params"] == sum(p.numel() for p in model.branch("ground").parameters())
    assert params_total(model) == sum(p.numel() for p in model.parameters())
    assert ground["weight_bytes"]["fp32"] == 4 * ground["params"]
    assert ground["weight_bytes"]["fp16"] == 2 * ground["params"]
    q = ground["params_quantizable"]
    assert 0 < q < ground["params"]
    assert ground["weight_bytes"]["int8"] == q + 2 * (ground["params"] - q)


def test_flops_match_a_hand_count_at_two_flops_per_mac(model, ground):
    c, d, di, n, r, tokens = _shapes(model, "ground")
    # per layer: in_proj, 2x x_proj, 2x dt_proj (no bias: the bias goes to the scan), out_proj
    macs_mm = c.depth * tokens * (d * 2 * di + 2 * di * (r + 2 * n) + 2 * r * di + di * d)
    patches = c.num_patches("ground")
    macs_conv = patches * d * 3 * c.patch_size**2 + c.depth * 2 * tokens * di * c.d_conv
    scan = 9 * tokens * di * n * 2 * c.depth  # 9*B*L*Dc*N, two directions per layer
    assert ground["flops_by_op"]["aten.mm"] == 2 * macs_mm
    assert ground["flops_by_op"]["aten.convolution"] == 2 * macs_conv
    assert ground["flops_by_op"]["cvgl.selective_scan"] == ground["scan_flops"] == scan
    assert ground["flops"] == 2 * macs_mm + 2 * macs_conv + scan
    assert "2 FLOPs per" in FLOP_CONVENTION and "9*B*L*Dc*N" in FLOP_CONVENTION


def test_scan_bytes_match_its_tensors(model, ground):
    c, d, di, n, r, tokens = _shapes(model, "ground")
    # read u, delta, z (Dc x L), B, C (N x L), A = -exp(A_log) (Dc x N, an activation); write out.
    # D and delta_bias are parameters (weight reads, counted in weight_bytes instead).
    per_scan = 4 * (3 * di * tokens + 2 * n * tokens + di * n + di * tokens)
    assert ground["activation_bytes_by_op"]["cvgl.selective_scan"] == per_scan * 2 * c.depth


def test_precision_scaling_and_fused_bound(ground):
    act, fused = ground["activation_bytes"], ground["activation_bytes_fused"]
    assert act["fp16"] == act["fp32"] // 2 and act["int8"] == act["fp16"]
    assert 0 < fused["fp32"] < act["fp32"]
    for p in ("fp32", "fp16", "int8"):
        assert ground["bytes_per_query"][p] == ground["weight_bytes"][p] + fused[p]
        assert ground["bytes_per_query_unfused"][p] == ground["weight_bytes"][p] + act[p]


def test_batch_normalises_to_per_query(model, ground):
    two = model_cost(model, "ground", batch=2)
    assert two["flops"] == ground["flops"] and two["params"] == ground["params"]
    # activations scale with the batch, up to per-batch work (-exp(A_log)) and the copies eager
    # matmul makes for batched non-contiguous inputs: per query within a few percent
    for key in ("activation_bytes", "activation_bytes_fused"):
        assert two[key]["fp32"] == pytest.approx(ground[key]["fp32"], rel=0.05)
    assert two["bytes_per_query"]["fp32"] == pytest.approx(
        ground["weight_bytes"]["fp32"] / 2 + two["activation_bytes_fused"]["fp32"], abs=2)


def test_views_and_shared_weights():
    torch.manual_seed(0)
    shared = build_model("geossm-nano", **TINY, share_weights=True)
    sat = model_cost(shared, "satellite")
    backbone = sum(p.numel() for p in shared.backbone.parameters())
    # the satellite view reads its own position embedding, not the trunk's
    assert sat["params"] == backbone - shared.backbone.pos_embed.numel() + shared.satellite_pos_embed.numel()
    assert model_cost(shared, "drone")["params"] == sat["params"]
    assert params_total(shared) == backbone + shared.satellite_pos_embed.numel()


def test_bad_arguments(model):
    with pytest.raises(CvglError, match="unknown view"):
        model_cost(model, "street")
    with pytest.raises(CvglError, match="batch"):
        model_cost(model, "ground", batch=0)


def test_every_scan_is_listed_with_its_shape(model, ground):
    # two directions per layer, each (batch 1, d_inner, tokens, d_state): what the scan model times
    c, d, di, n, r, tokens = _shapes(model, "ground")
    assert ground["scans"] == [{"batch": 1, "dim": di, "seqlen": tokens, "dstate": n, "calls": 2 * c.depth}]
