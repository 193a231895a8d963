"""Which file holds which branch: backend from a suffix, branch files in an export folder.

Why: ``cvgl-edge export`` writes ``OUT/<model>-<branch>[.<precision>].onnx`` (and ``.engine``
next to it), fp32 without a precision part. ``eval`` / ``verify`` / ``bench`` accept the
folder or any one of its files and need the matching file of each branch.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from cvgl_edge.errors import CvglError
from cvgl_edge.precisions import ARTIFACT_PRECISIONS
from cvgl_edge.runtime.backends import BACKENDS, artifact_backends, backend_for_suffix, check_backend
from cvgl_edge.views import VIEWS


def artifact_suffixes() -> dict[str, str]:
    """Backend -> suffix of the files it runs (backends of exported files only)."""
    return {b.name: b.suffix for b in artifact_backends()}


def _name_pattern() -> re.Pattern[str]:
    """``<model>-<view>[.<precision>].<ext>`` for every artifact backend's suffix."""
    exts = "|".join(re.escape(suffix[1:]) for suffix in artifact_suffixes().values())
    return re.compile(rf"^(?P<model>.+)-(?P<view>{'|'.join(VIEWS)})(?:\.(?P<precision>{'|'.join(ARTIFACT_PRECISIONS)}))?"
                      rf"\.(?P<ext>{exts})$")


@dataclass(frozen=True)
class ArtifactName:
    """The parts of ``<model>-<view>[.<precision>].<ext>``."""

    model: str
    view: str
    precision: str
    ext: str
    tagged: bool = False  # the name spells the precision out (``.fp32.`` is optional)

    def file_name(self, view: str | None = None) -> str:
        part = f".{self.precision}" if self.tagged or self.precision != "fp32" else ""
        return f"{self.model}-{view or self.view}{part}.{self.ext}"


def parse_artifact_name(path: str | Path) -> ArtifactName | None:
    match = _name_pattern().match(Path(path).name)
    if match is None:
        return None
    return ArtifactName(match["model"], match["view"], match["precision"] or "fp32", match["ext"],
                        tagged=match["precision"] is not None)


def backend_for(source: str | Path, backend: str | None = None) -> str:
    """The backend for ``source``: ``backend`` if given (checked against the suffix), else from the suffix."""
    path = Path(source)
    implied_backend = backend_for_suffix(path.suffix)
    implied = implied_backend.name if implied_backend else None
    if backend is None:
        if path.is_dir():
            return "onnxruntime"
        if implied is None:
            suffixes = ", ".join(b.suffix for b in BACKENDS.values())
            raise CvglError(f"cannot tell the backend of {path.name} from its suffix ({suffixes}); pass --backend")
        return implied
    backend = check_backend(backend)
    if path.is_dir() and backend != "torch":
        return backend
    if implied != backend:
        raise CvglError(f"{BACKENDS[backend].needs} (got {path.name})")
    return backend


def check_precision(precision: str | None) -> str | None:
    if precision is not None and precision not in ARTIFACT_PRECISIONS:
        raise CvglError(f"unknown --precision {precision!r}; choose {', '.join(ARTIFACT_PRECISIONS)}")
    return precision


def branch_files(source: str | Path, backend: str, precision: str | None = None) -> dict[str, Path]:
    """{view: file} for both branches of one exported model.

    ``source`` is an export folder (``precision`` picks among its files, default fp32) or one
    of the files (its name gives model and precision; the other branch is the same name with
    the other view).
    """
    source = Path(source)
    check_precision(precision)
    suffix = artifact_suffixes().get(backend)
    if suffix is None:
        raise CvglError(f"{BACKENDS[backend].needs} (got {source.name})")
    if not source.exists():
        raise CvglError(f"not found: {source}")
    if source.is_file():
        name = parse_artifact_name(source)
        if name is None or f".{name.ext}" != suffix:
            raise CvglError(f"{source.name} is not named <model>-<ground|satellite>[.<precision>]{suffix} "
                            "as cvgl-edge export writes it; pass the export folder")
        if precision is not None and precision != name.precision:
            raise CvglError(f"{source.name} is {name.precision} but --precision {precision} was asked for")
        files = {view: source.with_name(name.file_name(view)) for view in VIEWS}
    else:
        files = _from_folder(source, suffix, precision or "fp32")
    for view, path in files.items():
        if not path.is_file():
            raise CvglError(f"no {view} branch {path.name} in {path.parent}: export both branches "
                            "(cvgl-edge export --branch both)")
    return files


def _from_folder(folder: Path, suffix: str, precision: str) -> dict[str, Path]:
    names = [n for n in map(parse_artifact_name, sorted(folder.iterdir()))
             if n is not None and f".{n.ext}" == suffix and n.precision == precision]
    models = sorted({n.model for n in names})
    if not models:
        others = sorted({n.precision for n in map(parse_artifact_name, folder.iterdir())
                         if n is not None and f".{n.ext}" == suffix})
        hint = f" (it has {', '.join(others)}: pass --precision)" if others else ""
        raise CvglError(f"no {precision} {suffix} files in {folder}{hint}")
    if len(models) > 1:
        raise CvglError(f"{folder} holds several models ({', '.join(models)}); pass one of their files")
    tagged = {n.tagged for n in names if n.model == models[0]}
    probe = ArtifactName(models[0], "ground", precision, suffix[1:], tagged=tagged == {True})
    return {view: folder / probe.file_name(view) for view in VIEWS}
