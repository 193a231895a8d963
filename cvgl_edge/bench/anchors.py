"""Published efficiency figures of the seed papers, printed beside our measured rows.

Taken verbatim from the papers in ../shared/seeds/ (nothing re-derived); ``None`` where a
paper gives no figure. Read them with their hardware and protocol in mind:

- GeoSSM (Tao et al., AI 2026, 7, 118), Section 4.6, Table 4 "Analysis of computational
  complexity and comparison of parameters": CVUSA, *four* NVIDIA GeForce RTX 4090 GPUs,
  ground 128x512, satellite 256x256, batch size 32. Columns: Params (M), Test FLOPs (G),
  Inference Time (ms). The paper does not say how FLOPs are counted (per image or per
  ground+satellite pair, MACs or 2x MACs) nor whether the time is per image or per batch;
  its text calls GeoDTR's 420.64 ms "the inference time for a single image". TransGeo,
  GeoDTR and L2LTR rows are that table's (GeoSSM's measurements of those methods).
- LRFR ("Learning Robust Feature Representation for Cross-View Image Geo-Localization",
  Gan et al., seed 002), Section III-A: "extract time per query is measured using
  NVIDIA RTX 3060 Laptop"; Table IV (University-1652 ablation, GSRA+SALAD = the full model)
  gives 26.5 ms, Table II (CVUSA/CVACT) 26.1 ms. Table II lists 13.1 under "Params MB"; the
  unit is ambiguous (MB or M), so it is kept as a note, not as params_m.

R@1 beside each row: GeoSSM paper Table 1 (CVUSA; the paper marks some rows with a dagger for a
polar transform, lost in our text copy) for the four Table 4 methods; LRFR Table IV
(University-1652 drone->satellite, the 26.5 ms row).
"""

from __future__ import annotations

from typing import Any, TypedDict


class Anchor(TypedDict):
    method: str
    params_m: float | None
    gflops: float | None
    ms_per_query: float | None
    hardware: str
    source: str
    note: str
    r1: float | None  # Recall@1 (%) from the same paper, on r1_protocol
    r1_protocol: str


_GEOSSM_T4 = ("GeoSSM paper (Tao et al., AI 2026, 7, 118), Section 4.6, Table 4; CVUSA, "
              "ground 128x512 / satellite 256x256, batch 32")
_GEOSSM_HW = "4x NVIDIA GeForce RTX 4090"
_CVUSA = "CVUSA R@1, GeoSSM paper Table 1"

ANCHORS: list[Anchor] = [
    Anchor(method="GeoSSM (Vision Mamba)", params_m=35.24, gflops=11.0, ms_per_query=114.0,
           hardware=_GEOSSM_HW, source=_GEOSSM_T4,
           note="FLOP convention and time unit (image or batch) not stated in the paper",
           r1=96.02, r1_protocol=_CVUSA),
    Anchor(method="TransGeo (pure Transformer)", params_m=44.43, gflops=11.32, ms_per_query=99.0,
           hardware=_GEOSSM_HW, source=_GEOSSM_T4, note="measured by the GeoSSM authors",
           r1=94.08, r1_protocol=_CVUSA),
    Anchor(method="GeoDTR (ResNet + Transformer)", params_m=48.51, gflops=39.9, ms_per_query=420.64,
           hardware=_GEOSSM_HW, source=_GEOSSM_T4,
           note="measured by the GeoSSM authors; text: 'inference time for a single image'",
           r1=95.43, r1_protocol=_CVUSA),
    Anchor(method="L2LTR (ResNet + ViT)", params_m=76.35, gflops=18.7, ms_per_query=156.0,
           hardware=_GEOSSM_HW, source=_GEOSSM_T4, note="measured by the GeoSSM authors",
           r1=94.05, r1_protocol=_CVUSA),
    Anchor(method="LRFR (ConvNeXt-T + GSRA + SALAD)", params_m=None, gflops=None, ms_per_query=26.5,
           hardware="NVIDIA RTX 3060 Laptop GPU",
           source="LRFR paper (Gan et al., seed 002), Section III-A and Table IV (University-1652, "
                  "GSRA+SALAD)",
           note="extract time per query; Table II (CVUSA/CVACT) gives 26.1 ms and 13.1 'Params MB'",
           r1=94.13, r1_protocol="University-1652 drone->satellite R@1, LRFR Table IV"),
]


def anchor_rows() -> list[dict[str, Any]]:
    """The anchors as plain dicts, labelled as published figures (for tables and JSON)."""
    return [{**anchor, "kind": "published"} for anchor in ANCHORS]
