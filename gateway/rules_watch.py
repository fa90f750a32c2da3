"""Reload the routing rules when their file changes on disk: a mounted ConfigMap, an edited file.

Why polling once a second rather than inotify: a Kubernetes ConfigMap volume changes by swapping
a ``..data`` symlink, so the file the gateway read never changes; a new file appears behind the
same path. A watch on the file misses that, and a watch on the directory sees a burst of events
per update. One ``realpath`` and one ``stat`` of the path per second see every kind of change
(in-place write, rename over the file, symlink swap) for a few microseconds of work. What happens
on a change is exactly what SIGHUP does: validate, build, swap one reference; a bad file is
rejected and logged, and the old rules stay.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("tiergate.rules")


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What identifies one version of a file: where the symlinks lead, and that file's inode."""

    real_path: str
    device: int
    inode: int
    mtime_ns: int
    size: int


def stamp(path: Path) -> FileStamp | None:
    """The file's stamp now, or None while it is missing (e.g. between two steps of a swap)."""
    try:
        real = os.path.realpath(path)
        st = os.stat(real)
    except OSError:
        return None
    return FileStamp(real, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


async def watch_rules(
    path: Path,
    reload: Callable[[], Awaitable[None]],
    period_s: float,
    initial: FileStamp | None = None,
) -> None:
    """Call ``reload`` after each change of ``path``; run through the app's tracked spawner.

    ``initial`` is the stamp taken when the running rules were read, so a change made between
    start-up and the first poll is not missed.
    """
    seen = initial if initial is not None else stamp(path)
    while True:
        await asyncio.sleep(period_s)
        now = stamp(path)
        if now is None or now == seen:
            continue  # unchanged, or missing mid-swap: look again next tick
        seen = now
        log.info("rules file changed (%s): reloading", now.real_path)
        await reload()
