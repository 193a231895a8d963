"""Export one model branch (ground or satellite encoder) to an FP32 or FP16 ONNX file.

Models: GeoSSM / VimGeo (Vision Mamba: one SelectiveScan node per scan, two per Mamba
mixer) and LRFR (ConvNeXt + GSRA + SALAD: standard ops only, so no scan node, no local
function and no plugin). ``expected_scan_nodes`` tells which from the model itself.

How: ``torch.onnx.export(dynamo=True)`` traces ``model.encode(images, view)`` with
torch.export (dynamic batch, fixed image size); the custom translation table lowers
each ``torch.ops.cvgl.selective_scan`` call to one ``cvgl.SelectiveScan`` node
(``scan.translation``). Afterwards the ONNX model is finished with the onnx API: the
``cvgl.SelectiveScan`` local function (standard-op body, ``scan.function``) is
attached, the IR version is pinned (``versions``), exporter debug metadata holding
local source paths is dropped, and the cvgl-edge metadata is written.

FP16 (``precision="fp16"``): the same trace of a half copy of the model whose code keeps
fp32 islands (``fp16`` explains the method and lists them); the graph input stays
float32 and is cast to fp16 at the entry, the descriptor output is float32.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path

import onnx
import torch
from torch import nn

import cvgl_edge
from cvgl_edge.errors import CvglError, first_line
from cvgl_edge.export.onnx.fp16 import fp32_islands, half_model
from cvgl_edge.export.onnx.metadata import (
    INPUT_NAME,
    OUTPUT_NAME,
    export_metadata,
    state_dict_sha256,
    write_metadata,
)
from cvgl_edge.export.onnx.versions import DEFAULT_OPSET, check_opset, stamp_versions
from cvgl_edge.export.scan import contract
from cvgl_edge.export.scan.function import build_scan_function
from cvgl_edge.export.scan.translation import translation_table
from cvgl_edge.io import atomic_write
from cvgl_edge.models.mixer import BiMambaMixer
from cvgl_edge.precisions import ONNX_PRECISIONS

#: Node/value metadata kept from the exporter ("namespace" maps a node to its module).
_KEPT_NODE_METADATA = ("namespace",)
#: Batch of the example input; torch.export specialises sizes 0 and 1, so not 1.
_EXAMPLE_BATCH = 2
#: What ``export_branch`` writes itself (int8 is a QDQ pass over the fp32 file: int8.pipeline).
EXPORT_PRECISIONS = ONNX_PRECISIONS


class BranchEncoder(nn.Module):
    """``images -> model.encode(images, view)``: the one-input module torch.export traces.

    ``compute_dtype``: the dtype the float32 input is cast to first (fp16 exports).
    """

    def __init__(self, model: nn.Module, view: str, compute_dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.model = model
        self.view = view
        self.compute_dtype = compute_dtype

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.encode(images.to(self.compute_dtype), self.view)


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The exporter prints progress lines and warns about torchvision and its own
    deprecations; none of it is actionable for a user, so keep the CLI clean."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            yield
    finally:
        logger.setLevel(level)


def _trace(model: nn.Module, view: str, opset: int, compute_dtype: torch.dtype) -> onnx.ModelProto:
    h, w = model.config.input_size(view)
    example = torch.zeros(_EXAMPLE_BATCH, 3, h, w)
    batch = torch.export.Dim("batch", min=1)
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                BranchEncoder(model, view, compute_dtype).eval(),
                (example,),
                dynamo=True,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"images": {0: batch}},
                opset_version=opset,
                custom_translation_table=translation_table(),
                optimize=True,
                verbose=False,
            )
    except Exception as exc:  # noqa: BLE001 - report the exporter's failure in one line
        first = first_line(exc)
        raise CvglError(f"ONNX export of the {view} branch failed: {first}") from exc
    return program.model_proto


def _strip_debug_metadata(graph: onnx.GraphProto) -> None:
    """Drop exporter metadata (stack traces with local paths, FX node text)."""
    def keep_only(props) -> None:
        kept = [(p.key, p.value) for p in props if p.key in _KEPT_NODE_METADATA]
        del props[:]
        for key, value in kept:
            props.add(key=key, value=value)

    for node in graph.node:
        keep_only(node.metadata_props)
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                _strip_debug_metadata(attr.g)
    for value in (*graph.input, *graph.output, *graph.value_info, *graph.initializer):
        keep_only(value.metadata_props)
    keep_only(graph.metadata_props)


def expected_scan_nodes(model: nn.Module, view: str) -> int:
    """SelectiveScan nodes a branch export must hold: two per bidirectional Mamba mixer of the
    branch that encodes ``view`` (2 * depth for GeoSSM and VimGeo, 0 for LRFR)."""

    branch = model.branch(view) if hasattr(model, "branch") else model
    return 2 * sum(isinstance(m, BiMambaMixer) for m in branch.modules())


def _attach_scan_function(model: onnx.ModelProto, opset: int) -> None:
    for function in model.functions:
        if contract.is_scan_function(function):
            raise CvglError("the exporter already wrote a cvgl.SelectiveScan function")  # pragma: no cover
    model.functions.append(build_scan_function(opset))
    domains = {o.domain: o.version for o in model.opset_import}
    if domains.get(contract.DOMAIN) != contract.DOMAIN_VERSION:
        del model.opset_import[:]
        model.opset_import.extend(
            onnx.helper.make_opsetid(d, v) for d, v in domains.items() if d != contract.DOMAIN
        )
        model.opset_import.append(onnx.helper.make_opsetid(contract.DOMAIN, contract.DOMAIN_VERSION))
    if domains.get("", opset) != opset:
        raise CvglError(f"exporter wrote opset {domains['']} instead of {opset}")


def export_branch(
    model: nn.Module, view: str, opset: int = DEFAULT_OPSET, model_sha256: str | None = None,
    precision: str = "fp32",
) -> onnx.ModelProto:
    """ONNX model of ``model.encode(images, view)``: input ``images`` (N,3,H,W) float32,
    output ``descriptors`` (N, dim) float32, N dynamic; ``precision`` fp32 or fp16 (weights
    and activations fp16 inside). The model is put in eval mode on the CPU (an fp16 export
    traces a half copy and leaves ``model`` as it is)."""
    check_opset(opset)
    if precision not in EXPORT_PRECISIONS:
        raise CvglError(f"export_branch: precision {precision!r} not in {', '.join(EXPORT_PRECISIONS)}")
    view = model.canonical_view(view)
    model = model.eval().cpu()
    model_sha256 = model_sha256 or state_dict_sha256(model)
    traced, dtype = (half_model(model), torch.float16) if precision == "fp16" else (model, torch.float32)
    onnx_model = _trace(traced, view, opset, dtype)
    scans, expected = contract.count_scan_nodes(onnx_model), expected_scan_nodes(model, view)
    if expected and scans == 0:
        raise CvglError("the exported graph holds no SelectiveScan node: the scan was not lowered")
    if scans:
        _attach_scan_function(onnx_model, opset)
    _strip_debug_metadata(onnx_model.graph)
    stamp_versions(onnx_model, cvgl_edge.__version__)
    onnx_model.graph.name = f"{model.model_name}-{view}"
    onnx_model.doc_string = (
        f"{model.model_name} {view} encoder: images (N,3,H,W) normalised RGB -> "
        f"L2-normalised descriptors (N,{model.descriptor_dim}), float32 in and out, {precision} inside. "
        f"Exported by cvgl-edge."
    )
    metadata = export_metadata(model, view, opset, scans, model_sha256)
    metadata["precision"] = precision
    if precision == "fp16":
        metadata["fp32_islands"] = "; ".join(fp32_islands(model))
    write_metadata(onnx_model, metadata)
    return onnx_model


def save_onnx(model: onnx.ModelProto, path: str | Path) -> Path:
    """Write ``model`` atomically (one file, weights inside)."""
    if model.ByteSize() >= 2**31 - 1:
        raise CvglError("model exceeds the 2 GB protobuf limit; external-data export is not implemented")
    return atomic_write(path, lambda tmp: onnx.save_model(model, str(tmp)))
