"""Verification at export: each artifact ``cvgl-edge export`` writes is run through
``cvgl_edge.export.verify.verify`` against its checkpoint, and the record is written
next to it as ``<artifact>.verify.json``.

Why at export: the export's own parity check uses a few synthetic images; verify embeds
real val pairs and measures what a user loses (R@1 drop, descriptor cosine) with the
thresholds of the artifact's precision. Doing it at the moment of writing means no
unverified file is handed on by accident; ``--no-verify`` skips it.

Every record carries ``status``: "passed", "failed" or "not run". Engines are "not run"
where verify cannot run them (it raises CvglError: no GPU / no TensorRT runtime here);
the reason is recorded and the export goes on. An ONNX file verify cannot run at all is
a user error (CvglError), since ONNX Runtime on the CPU is always available.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cvgl_edge.errors import CvglError
from cvgl_edge.io import atomic_write_json
from cvgl_edge.progress import console

SUFFIX = ".verify.json"
#: Pairs of the val split embedded per artifact unless the user says otherwise.
DEFAULT_PAIRS = 200


@dataclass
class VerifySettings:
    """What the export passes on to verify (CLI: --eval-data, --verify-pairs, --max-r1-drop)."""

    checkpoint: Path
    data: str | None = None
    pairs: int = DEFAULT_PAIRS
    max_r1_drop: float | None = None
    trusted: bool = False


def unverified_path(final: Path) -> Path:
    """``m-ground.fp16.onnx`` -> ``m-ground.fp16.unverified.onnx``: where an export waits for its
    verification. Why: a kill during the minutes of verification must never leave an unverified
    file under the name eval and localize pick up; it is renamed only once its verification is
    final (:func:`promote`), and the next export of that name overwrites a leftover."""
    final = Path(final)
    return final.with_name(f"{final.stem}.unverified{final.suffix}")


def promote(staged: Path, final: Path) -> None:
    """Move a verified (or, with --no-verify, deliberately unverified) artifact to its final name."""
    os.replace(staged, final)


def report_path(artifact: Path) -> Path:
    """``<artifact>.verify.json`` (e.g. ``geossm-small-ground.fp16.onnx.verify.json``)."""
    return Path(str(artifact) + SUFFIX)


def _run(artifact: Path, settings: VerifySettings) -> dict[str, Any]:
    from cvgl_edge.export.verify import verify

    with console.status(f"verifying [bold]{artifact.name}[/bold] against {settings.checkpoint.name} "
                        f"({settings.pairs} val pairs)"):
        return verify(artifact, settings.checkpoint, data=settings.data, split="val", pairs=settings.pairs,
                      max_r1_drop=settings.max_r1_drop, trusted=settings.trusted)


def verify_artifact(artifact: Path, settings: VerifySettings, engine: bool = False,
                    final: Path | None = None) -> dict[str, Any]:
    """Verify one artifact, write its ``.verify.json``, print one summary line; returns the record.

    ``engine``: a CvglError from verify (cannot run engines here) is recorded as "not run".
    ``final``: the name the artifact gets once verified (it runs from :func:`unverified_path`);
    the record, its file and the line name that one.
    """
    from cvgl_edge.export.verify import summary_line

    artifact = Path(artifact)
    named = Path(final) if final is not None else artifact
    try:
        record = {**_run(artifact, settings), "artifact": str(named)}
    except CvglError as exc:
        if not engine:
            raise CvglError(f"wrote {named} but could not verify it: {exc}") from exc
        record = {"status": "not run", "reason": str(exc), "artifact": str(named),
                  "checkpoint": str(settings.checkpoint), "passed": None}
        line = f"NOT RUN: verification of {named.name}: {exc}"
    else:
        record = {"status": "passed" if record["passed"] else "failed", **record}
        line = summary_line(record)
    atomic_write_json(record, report_path(named))
    print(f"{line} [{report_path(named).name}]", flush=True)  # stdout, like `cvgl-edge verify`
    return record


def summary(record: dict[str, Any], artifact: Path) -> dict[str, Any]:
    """The few figures the export report keeps (the full record is in the .verify.json)."""
    out: dict[str, Any] = {"status": record["status"], "report": str(report_path(artifact))}
    if record["status"] == "not run":
        out["reason"] = record["reason"]
        return out
    out.update(pairs=record["pairs"], data=record["data"], cosine_min=record["descriptors"]["cosine_min"],
               r1_drop=record["recall"]["drop"]["R@1"], thresholds=record["thresholds"],
               failures=record["failures"])
    return out


def skipped(reason: str) -> dict[str, Any]:
    """The export report's entry when verification was not asked for."""
    return {"status": "skipped", "reason": reason}
