"""Atomic file writes (a crash or Ctrl-C never leaves a half-written artifact), locks and file hashes."""

from __future__ import annotations

import errno
import glob
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cvgl_edge.errors import CvglError

#: Trees no output may go to (writing there either fails deep inside a library or does harm).
SYSTEM_TREES = (Path("/proc"), Path("/sys"), Path("/dev"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete the temp files that earlier writes of ``path`` left when their process was killed between
    writing and renaming (``.NAME.PID.XXXX.tmp`` of a PID no longer running). Returns what was removed."""
    path = Path(path)
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:].split(".", 1)[0]
        if pid.isdigit() and _pid_alive(int(pid)):
            continue  # a writer at work (or this process)
        try:
            shutil.rmtree(tmp) if tmp.is_dir() and not tmp.is_symlink() else tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed


@contextmanager
def scratch_folder(parent: str | Path, label: str) -> Iterator[Path]:
    """A private work folder ``PARENT/.LABEL.PID.XXXX.tmp/``, removed on exit. Why beside the output
    and not in the system temp dir: a kill -9 cannot clean up, and the next run finds what a dead
    process left there (same rule as :func:`remove_stale_temps`) instead of leaking it in /tmp."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(parent / label)
    folder = Path(tempfile.mkdtemp(prefix=f".{label}.{os.getpid()}.", suffix=".tmp", dir=parent))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _out_of_space(exc: BaseException) -> bool:
    """A full disk or quota, whichever way it surfaces: OSError ENOSPC/EDQUOT, or torch.save's
    "unexpected pos" / "file write failed" (its zip writer hides the errno)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    text = str(exc)
    return "unexpected pos" in text or "file write failed" in text


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temp file beside ``path``, fsync it, then rename over ``path``.

    The temp file's name carries the writer's PID, so the next write of ``path`` removes what a
    killed writer left (:func:`remove_stale_temps`) instead of letting hidden files pile up.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        tmp.chmod(0o666 & ~_current_umask())  # mkstemp makes 0600; artifacts get the usual mode
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        if not _out_of_space(exc):
            raise
        free = shutil.disk_usage(path.parent).free / 1e6
        raise CvglError(f"could not write {path}: no space left on the device ({free:.0f} MB free); "
                        f"{'the previous file is kept' if path.exists() else 'nothing was written'}") from exc
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def _current_umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def atomic_torch_save(obj: Any, path: str | Path) -> Path:
    """torch.save through ``atomic_write`` (PyTorch is imported here: the deployment install has none)."""
    import torch

    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def atomic_write_json(obj: Any, path: str | Path) -> Path:
    """Pretty JSON through ``atomic_write``."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2) + "\n"))


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks: identifies a map, a teacher or an ONNX file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist yet
        return a.resolve() == b.resolve()


def check_output_file(path: str | Path, option: str) -> None:
    """One line before any work when ``path`` cannot be written: a folder, a system tree, a parent
    that is a file, or no write permission (found only after hours of work otherwise)."""
    path = Path(path)
    if path.is_dir():
        raise CvglError(f"{option} {path} is a folder: give a file name")
    resolved = path.resolve()
    for tree in SYSTEM_TREES:
        if resolved == tree or tree in resolved.parents:
            raise CvglError(f"{option} {path}: will not write under {tree}")
    parent = resolved.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise CvglError(f"{option} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise CvglError(f"{option} {path}: not writable (permission denied)")


def check_output_folder(path: str | Path, option: str) -> None:
    """One line before any work when ``path`` cannot be (or become) an output folder: under a
    system tree, a file in its place or above it, or a first existing ancestor not writable."""
    path = Path(path)
    resolved = path.resolve()
    for tree in SYSTEM_TREES:
        if resolved == tree or tree in resolved.parents:
            raise CvglError(f"{option} {path}: will not write under {tree}")
    for part in (resolved, *resolved.parents):
        if part.exists():
            if not part.is_dir():
                where = "" if part == resolved else f" ({part} is a file)"
                raise CvglError(f"{option} {path} is not a folder{where}: give a folder")
            if not os.access(part, os.W_OK | os.X_OK):
                raise CvglError(f"{option} {path}: {part} is not writable (permission denied)")
            return


def check_outputs(outputs: dict[str, str | Path | None], inputs: dict[str, str | Path | None]) -> None:
    """Before any work: every output file can be written and none is one of the command's inputs.

    ``outputs`` / ``inputs`` map option names to paths (None: not given; "-": stdout). Why one
    shared check: a mistyped ``--out`` equal to ``--map`` replaced a user's GeoTIFF with an index.
    """
    given_outputs = {k: Path(v) for k, v in outputs.items() if v is not None and str(v) != "-"}
    given_inputs = {k: Path(v) for k, v in inputs.items() if v is not None}
    for option, path in given_outputs.items():
        check_output_file(path, option)
        for source, input_path in given_inputs.items():
            if _same_file(path, input_path):
                raise CvglError(f"{option} {path} is also {source}: refusing to write over an input")
    names = list(given_outputs.items())
    for i, (option, path) in enumerate(names):
        for other, other_path in names[i + 1:]:
            if _same_file(path, other_path):
                raise CvglError(f"{option} and {other} are the same file {path}")
