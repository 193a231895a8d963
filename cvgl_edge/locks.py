"""One writer at a time: ``hold_output`` refuses a second run at once, ``exclusive_lock`` waits.

Why refuse for outputs (instead of waiting like :func:`exclusive_lock`): two ``localize`` runs
on one ``--out`` would interleave their fixes, and a second ``index build`` would mix its chunks
with the first's; the user meant one of them, and a run that sits silently behind an hour-long
build looks hung. The refusal names the output, the lock file and the holder's pid.

The lock is an ``fcntl.flock`` on ``OUT.lock``: the kernel drops it when its holder dies, so a
killed run never blocks the next. The holder removes the file when it is done; a waiter that
opened the old file before the removal notices (the path no longer names the file it locked)
and tries again, so two runs can never both hold it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cvgl_edge.errors import CvglError


def lock_path(out: str | Path) -> Path:
    """The lock file guarding ``out``: ``OUT.lock`` beside it."""
    out = Path(out)
    return out.with_name(out.name + ".lock")


def _same_file(handle: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(handle)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _holder(path: Path) -> str:
    try:
        text = path.read_text().strip()
    except OSError:
        return ""
    return f", pid {text}" if text.isdigit() else ""


@contextmanager
def hold_output(out: str | Path, what: str) -> Iterator[Path]:
    """Hold ``OUT.lock`` while the block runs; refuse in one line if another run holds it.

    ``what`` names the kind of run in the refusal ("localize run", "index build").
    Yields the lock file's path.
    """
    path = lock_path(out)
    created = _make_parents(path.parent)
    try:
        fd = _acquire(path, out, what)
    except BaseException:
        _remove_empty(created)
        raise
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield path
    finally:
        try:
            path.unlink()
        except OSError:
            pass
        os.close(fd)  # releases the lock
        _remove_empty(created)


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and missing parents; returns those created (deepest last)."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()][::-1]
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CvglError(f"cannot create {folder}: {exc.strerror}") from exc
    return missing


def _remove_empty(created: list[Path]) -> None:
    """Remove the folders the lock created if the run left them empty (a refused run writes nothing)."""
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            return


def _acquire(path: Path, out: str | Path, what: str) -> int:
    """An open descriptor of ``path`` holding its exclusive lock, or CvglError at once."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise CvglError(f"cannot create lock file {path}: {exc.strerror}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise CvglError(f"another {what} is writing {out} (lock {path} held{_holder(path)}): wait for it, "
                            "or choose another --out") from None
        if _same_file(fd, path):
            return fd
        os.close(fd)  # removed by its last holder between our open and our lock: take the new one


@contextmanager
def exclusive_lock(path: str | Path) -> Iterator[None]:
    """Hold an advisory lock on ``path`` (created if absent) while the block runs, waiting for
    any other holder first: short jobs that write one artifact (a plugin build) take turns
    instead of mixing. The kernel drops the lock when its holder dies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
