"""Private files: mode 0600 whatever the process's umask, and made so again if they are not."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("hub_viz")

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def make_private(path: Path, logger: logging.Logger = log) -> None:
    """Create ``path`` empty with mode 0600 if missing; take group and others' access
    away from it (and from its SQLite side files) if they have any."""
    path = Path(path)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError:
        return  # no such folder or no right to write there: whoever opens it says so
    for p in (path, *(path.with_name(path.name + s) for s in SQLITE_SIDE_FILES)):
        try:
            mode = stat.S_IMODE(p.stat().st_mode)
        except FileNotFoundError:
            continue
        if not mode & 0o077:
            continue
        try:
            os.chmod(p, mode & 0o700)
        except PermissionError:
            logger.warning(
                "%s is readable by others (mode %o) and not ours to change: "
                "make it private (chmod 600), it holds private data",
                p,
                mode,
            )
        else:
            logger.warning(
                "Made %s private (mode %o, was %o): it holds private data", p, mode & 0o700, mode
            )


def ensure_secret_file(path: Path, make: Callable[[], str]) -> Path:
    """``path`` holding a secret: written once with ``make()`` (mode 0600, never over an
    existing file); one copied in with a looser mode is made private again."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(make())
    make_private(path)
    return path
