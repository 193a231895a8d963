"""Where ``cvgl-edge plugin build`` keeps plugin libraries, and which one an engine build takes.

Why a cache keyed by TensorRT version and GPU architecture: the plugin is compiled against one
TensorRT's headers and for chosen architectures, and a Jetson user should not have to pass its
path to every ``cvgl-edge export --format engine``. Layout (``$CVGL_EDGE_CACHE``, else
``$XDG_CACHE_HOME/cvgl-edge``, else ``~/.cache/cvgl-edge``):

    plugins/trt<major.minor>-sm<arch>[_<arch>...]/libcvgl_trt_plugins.so
                                                 /build.json   (a ``PluginBuild``)

A build records the hash of the native sources it was compiled from; a build from other
sources is not used silently (``find_plugin`` says to rebuild).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from cvgl_edge.errors import CvglError
from cvgl_edge.export.plugin.toolchain import NATIVE_SOURCES, architecture, major_minor

LIBRARY_NAME = "libcvgl_trt_plugins.so"
MANIFEST_NAME = "build.json"
#: The files a plugin library is compiled from (relative to export/).
SOURCE_FILES = ("CMakeLists.txt", "csrc/selective_scan.cuh", "csrc/selective_scan_kernel.cu",
                "plugin/selective_scan_plugin.h", "plugin/selective_scan_plugin.cpp")


@dataclass(frozen=True)
class PluginBuild:
    """One cached plugin library: what it was compiled against and for (``build.json``)."""

    library: str
    tensorrt_version: str
    tensorrt_include: str
    architectures: tuple[int, ...]
    cuda_version: str
    sources_sha256: str
    cvgl_edge_version: str
    built_at: str

    @property
    def tensorrt_major_minor(self) -> str:
        return major_minor(self.tensorrt_version)

    def to_json(self) -> dict:
        return {**asdict(self), "architectures": list(self.architectures)}


def cache_root() -> Path:
    if os.environ.get("CVGL_EDGE_CACHE"):
        return Path(os.environ["CVGL_EDGE_CACHE"])
    base = Path(os.environ["XDG_CACHE_HOME"]) if os.environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "cvgl-edge"


def plugins_dir() -> Path:
    return cache_root() / "plugins"


def build_folder(tensorrt_version: str, architectures: tuple[int, ...]) -> Path:
    return plugins_dir() / f"trt{major_minor(tensorrt_version)}-sm{'_'.join(str(a) for a in sorted(architectures))}"


def sources_sha256(sources: Path = NATIVE_SOURCES) -> str:
    digest = hashlib.sha256()
    for name in SOURCE_FILES:
        digest.update(name.encode() + b"\0" + (sources / name).read_bytes())
    return digest.hexdigest()


def read_build(folder: Path) -> PluginBuild | None:
    """The build in ``folder``, or None when it has no readable manifest or no library."""
    try:
        data = json.loads((folder / MANIFEST_NAME).read_text())
        build = PluginBuild(**{**data, "architectures": tuple(data["architectures"])})
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return build if Path(build.library).is_file() else None


def list_builds() -> list[PluginBuild]:
    folders = sorted(plugins_dir().glob("trt*-sm*")) if plugins_dir().is_dir() else []
    return [b for b in (read_build(f) for f in folders) if b is not None]


def find_plugin(tensorrt_version: str, compute_capability: str | None) -> PluginBuild | None:
    """The cached build for this TensorRT (major.minor) that covers the GPU's architecture
    (any, when the GPU is not known); None when there is none. CvglError when the only match
    was compiled from other native sources than this checkout's (a stale build)."""
    matches = [b for b in list_builds() if b.tensorrt_major_minor == major_minor(tensorrt_version)]
    if compute_capability:
        arch = architecture(compute_capability)
        matches = [b for b in matches if arch in b.architectures]
    if not matches:
        return None
    current = sources_sha256()
    fresh = [b for b in matches if b.sources_sha256 == current]
    if not fresh:
        raise CvglError(f"the cached plugin {matches[0].library} was built from other cvgl-edge sources: run "
                        "`cvgl-edge plugin build` again, or pass --no-plugin (standard-op scan) or --plugin-lib")
    return max(fresh, key=lambda b: b.built_at)
