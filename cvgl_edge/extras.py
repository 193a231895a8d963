"""Which optional installs ("extras") a feature needs, and the one line that says so.

Why: ``pip install cvgl-edge`` is the deployment install (exported encoders, the tile index,
the localisation loop, MAVLink) and has no PyTorch; training, export, verification against a
checkpoint and the demo need ``pip install "cvgl-edge[train]"`` (PyTorch and the packages only
they use). Every place that meets one of them missing says so in the same words.
"""

from __future__ import annotations

import importlib.util

#: The install line that brings PyTorch and the other training-only packages.
TRAIN_INSTALL = 'pip install "cvgl-edge[train]"'
#: Import names of the packages only the ``train`` extra installs -> how a message names them.
TRAIN_MODULES = {"torch": "PyTorch", "onnx": "onnx", "onnxscript": "onnxscript", "polygraphy": "polygraphy",
                 "scipy": "SciPy", "safetensors": "safetensors"}


def needs(what: str, package: str = "PyTorch") -> str:
    """``'<what> needs PyTorch: pip install "cvgl-edge[train]"'`` (the text of a CvglError)."""
    return f"{what} needs {package}: {TRAIN_INSTALL}"


def torch_installed() -> bool:
    """Whether PyTorch is installed (found, not imported)."""
    try:
        return importlib.util.find_spec("torch") is not None
    except (ImportError, ValueError):
        return False


def is_missing_torch(exc: BaseException) -> bool:
    """True for the ImportError of an absent PyTorch (``torch`` or one of its submodules)."""
    return isinstance(exc, ImportError) and (getattr(exc, "name", None) or "").split(".")[0] == "torch"


def missing_train_package(exc: BaseException) -> str | None:
    """What to name in the message when ``exc`` is the ImportError of a ``train``-extra package:
    "PyTorch" whenever PyTorch is absent (the deployment install), else that package; None for
    any other exception."""
    if not isinstance(exc, ImportError):
        return None
    top = (getattr(exc, "name", None) or "").split(".")[0]
    if top not in TRAIN_MODULES:
        return None
    return "PyTorch" if top == "torch" or not torch_installed() else TRAIN_MODULES[top]
