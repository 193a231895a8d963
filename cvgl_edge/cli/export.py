"""``cvgl-edge export`` and ``cvgl-edge verify``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cvgl_edge.cli.common import DATA_HELP, artifact_backends_help, write_json
from cvgl_edge.io import check_output_folder, check_outputs
from cvgl_edge.progress import console

# torch-side modules (the optional `train` extra) are imported inside the commands: the
# deployment install has no PyTorch, and `cvgl-edge --help` stays fast


def export_command(
    checkpoint: Path = typer.Argument(..., help="Checkpoint written by `cvgl-edge train` (last.pt or best.pt)."),
    branch: str = typer.Option("both", help="Encoder to export: ground, satellite or both."),
    format_: str = typer.Option("onnx", "--format", help="Output format: onnx, or engine (the ONNX file, then a TensorRT engine built with tensorrt or tensorrt-rtx)."),
    precision: str = typer.Option("fp32", help="Numeric precision: fp32, fp16 (strongly typed FP16 graph, norms/scan/pooling in FP32) or int8 (QDQ, calibrated)."),
    out: Path = typer.Option(Path("exports"), help="Folder for <model>-<branch>[.fp16|.int8].onnx, its .report.json and .verify.json."),
    opset: int = typer.Option(18, help="ONNX opset of the standard-op graph (18-21)."),
    check_images: int = typer.Option(4, min=1, help="Synthetic images for the onnxruntime-vs-PyTorch check."),
    calibration: Path = typer.Option(None, help="INT8: calibration recipe JSON (default: the built-in synthetic-default, see calibration/)."),
    verify: bool = typer.Option(True, "--verify/--no-verify", help="Verify every written file against the checkpoint (as `cvgl-edge verify`) and write <file>.verify.json; a file that fails is removed."),
    verify_pairs: int = typer.Option(200, min=1, help="Verification: val pairs embedded per file."),
    eval_data: Optional[str] = typer.Option(None, help="Verification: dataset whose val split is used (default: the data the checkpoint was trained on). " + DATA_HELP),
    max_r1_drop: Optional[float] = typer.Option(None, help="Verification: largest allowed R@1 drop in points (default per precision: fp16 0.5, int8 2.0; fp32 is held to cosine >= 0.9999)."),
    eval_pairs: Optional[int] = typer.Option(None, hidden=True, help="Old name of --verify-pairs (0: --no-verify)."),
    plugin_lib: Path = typer.Option(None, help="Engine: cvgl_trt_plugins library serving SelectiveScan (default: the one `cvgl-edge plugin build` made for this TensorRT and GPU, else the standard-op scan; not with TensorRT-RTX)."),
    use_plugin: bool = typer.Option(True, "--plugin/--no-plugin", help="Engine: --no-plugin builds the scan from standard ops (a TensorRT loop) even when a plugin was built."),
    max_batch: int = typer.Option(8, help="Engine: largest batch of the optimisation profile."),
    opt_batch: int = typer.Option(1, help="Engine: batch the profile is tuned for."),
    workspace_mb: int = typer.Option(1024, help="Engine: builder workspace memory pool limit (MiB)."),
    int8_mode: str = typer.Option("explicit", help="Engine, INT8: explicit (from the QDQ file) or implicit (TensorRT 10.x calibrates the FP32 file)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the export reports (with the verification outcome) to this JSON file."),
) -> None:
    """Export encoder branches to ONNX or TensorRT engines.

    ONNX with one SelectiveScan node per scan, checked against PyTorch, then verified."""
    from cvgl_edge.export.pipeline import ExportRequest, run_export

    check_output_folder(out, "--out")
    check_outputs({"--json": json_out}, {"CHECKPOINT": checkpoint, "--calibration": calibration,
                                         "--plugin-lib": plugin_lib})
    request = ExportRequest(checkpoint=checkpoint, out=out, branch=branch, format=format_,
                            precision=precision, opset=opset, check_images=check_images,
                            calibration=calibration, verify=verify, verify_pairs=verify_pairs,
                            eval_data=eval_data, eval_pairs=eval_pairs, max_r1_drop=max_r1_drop,
                            plugin_lib=plugin_lib, use_plugin=use_plugin, max_batch=max_batch, opt_batch=opt_batch,
                            workspace_mb=workspace_mb, int8_mode=int8_mode)
    reports = run_export(request)
    write_json({"reports": reports}, json_out)


def verify_command(
    artifact: Path = typer.Argument(..., help="Exported file: <model>-<branch>[.int8].onnx, or a TensorRT .engine with its .engine.json sidecar (runs on a GPU)."),
    against: Path = typer.Option(..., "--against", help="The checkpoint the artifact was exported from."),
    backend: Optional[str] = typer.Option(None, help=f"{artifact_backends_help()}. Default: from the suffix."),
    data: Optional[str] = typer.Option(None, help=DATA_HELP + " Default: the data the checkpoint was trained on."),
    split: str = typer.Option("val", help="Split whose pairs are embedded: val, or test where the dataset has one."),
    pairs: int = typer.Option(200, min=1, help="Pairs of the split to use (the first N)."),
    min_cosine: Optional[float] = typer.Option(None, help="Override the minimum descriptor cosine (fp32 0.9999, int8 0.98)."),
    max_r1_drop: Optional[float] = typer.Option(None, help="Override the largest allowed R@1 drop in points (int8 2.0, fp16 0.5)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the verification record to this JSON file."),
) -> None:
    """Check an exported file against its PyTorch checkpoint.

    Runs both on the same pairs; exit 1 past the thresholds."""
    from cvgl_edge.export.verify import summary_line, verify, verify_table

    check_outputs({"--json": json_out}, {"ARTIFACT": artifact, "--against": against})
    with console.status(f"verifying {artifact.name} against {against.name}"):
        record = verify(artifact, against, data=data, split=split, pairs=pairs,
                        min_cosine=min_cosine, max_r1_drop=max_r1_drop, backend=backend)
    console.print(verify_table(record))
    write_json(record, json_out)
    print(summary_line(record))
    if not record["passed"]:
        raise typer.Exit(1)

