"""Atomic writes: a file or folder is staged beside its final path, flushed to disk, then renamed
into place, so readers (and a process killed midway) see the old version or the new one, never
half of one. Staging lives in the same folder, hence on the same filesystem, where a rename is
atomic. Plain Python, no Django: the engine, the trainers and the services all write through it.
"""
from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_file(path: str | Path) -> Iterator[Path]:
    """Yield a staging path (same folder, same suffix) to write; on a clean exit it replaces
    ``path``; on an error it is removed and ``path`` is left as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.stem}.{uuid.uuid4().hex}.partial{path.suffix}")
    try:
        yield staging
        fsync(staging)
        os.replace(staging, path)
        fsync(path.parent)
    finally:
        staging.unlink(missing_ok=True)


@contextmanager
def staged_folder(path: str | Path, *, keep: Callable[[Path], bool] | None = None) -> Iterator[Path]:
    """Yield an empty staging folder to fill; on a clean exit it replaces the folder ``path``
    (an older one is moved aside, then deleted). ``keep(path)`` true for a folder already there
    (another process finished the same build first) discards the staged one instead."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.parent / f".{path.name}.building-{uuid.uuid4().hex}"
    staging.mkdir()
    try:
        yield staging
        for file in staging.rglob("*"):
            if file.is_file():
                fsync(file)
        if path.exists():
            if keep is not None and keep(path):
                return
            old = path.parent / f".{path.name}.old-{uuid.uuid4().hex}"
            path.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        try:
            staging.rename(path)
        except OSError:  # a concurrent writer put its folder there between our check and rename
            if keep is not None and path.exists() and keep(path):
                return
            raise
        fsync(path.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk: a rename is atomic only for what
    already reached it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
