"""A per-viewer instance's own copy of the dashboard's folder.

A per-viewer instance never runs in its author's folder: JupyterLab saves
there, and apps may write next to themselves. The launcher copies the
entry's folder into the instance's work folder on its first start and runs
the app there: ``--work-dir`` (kept by the spawner across restarts, so what
the viewer saved is there next time) or ``--work-scratch`` (a fresh folder
removed on exit: a warm-pool instance, whose viewer is not known yet).

The copy takes regular files and folders only (no symlinks, no
``.ipynb_checkpoints``, ``__pycache__`` or ``.git``) and stops with a
readable error past ``--work-max-bytes``. A later start copies nothing
again, except the entry itself when the viewer deleted it.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import stat
from pathlib import Path

from ..errors import HubVizError
from .process import AppProcess

log = logging.getLogger("hub_viz.launcher")

MARKER = ".hub-viz-copied"
SKIPPED = frozenset({".ipynb_checkpoints", "__pycache__", ".git", MARKER})


class WorkCopyError(HubVizError):
    """The dashboard's folder cannot be copied for this viewer."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--work-dir",
        default="",
        help="Run the app in this folder, filled with a copy of --cwd on first start "
        "(a per-viewer instance: the viewer's own files, kept across restarts).",
    )
    parser.add_argument(
        "--work-scratch",
        action="store_true",
        help="Run the app in a fresh copy of --cwd, removed on exit.",
    )
    parser.add_argument(
        "--work-max-bytes",
        type=int,
        default=200_000_000,
        help="The most the copied folder may hold, in bytes.",
    )


def _mb(n: int) -> str:
    return f"{n / 1_000_000:g} MB" if n >= 1_000_000 else f"{n} bytes"


def copy_tree(source: Path, target: Path, max_bytes: int) -> int:
    """Copy ``source``'s files and folders into ``target``; the bytes copied."""
    total = 0

    def walk(src: Path, dst: Path) -> None:
        nonlocal total
        dst.mkdir(mode=0o700, exist_ok=True)
        with os.scandir(src) as entries:
            for item in sorted(entries, key=lambda e: e.name):
                if item.name in SKIPPED or item.is_symlink():
                    continue
                info = item.stat(follow_symlinks=False)
                try:
                    if stat.S_ISDIR(info.st_mode):
                        walk(Path(item.path), dst / item.name)
                    elif stat.S_ISREG(info.st_mode):
                        total += info.st_size
                        if total > max_bytes:
                            raise WorkCopyError(
                                f"The dashboard's folder holds more than {_mb(max_bytes)}; "
                                "each viewer of a per-viewer dashboard gets a copy of it. Move "
                                "the dashboard into a folder of its own with only what it needs.",
                                log_message=f"{source} is larger than {max_bytes} bytes",
                            )
                        copyfile(item.path, dst / item.name)
                except PermissionError:  # the author's private file: not for viewers
                    log.info("Not copied (not readable here): %s", item.path)

    walk(source, target)
    return total


def prepare(source: str, target: str, entry: str, max_bytes: int) -> str:
    """Fill ``target`` from ``source`` on first use; the folder to run the app in."""
    src, dst = Path(source), Path(target)
    dst.mkdir(mode=0o700, parents=True, exist_ok=True)
    marker = dst / MARKER
    if not marker.exists():
        size = copy_tree(src, dst, max_bytes)
        marker.write_text(f"copied from the dashboard's folder ({size} bytes)\n")
        log.info("Copied the dashboard's folder (%d bytes) into the work folder %s", size, dst)
    elif not (dst / entry).exists() and (src / entry).exists():
        # the viewer deleted the entry: bring the author's back, nothing else
        if (src / entry).is_dir():
            copy_tree(src / entry, dst / entry, max_bytes)
        else:
            copyfile(src / entry, dst / entry)
        log.info("Copied the entry %s into the work folder again", entry)
    return str(dst)


def copyfile(src: str | Path, dst: str | Path) -> None:
    """``shutil.copyfile``, imported when a work folder is filled: ``shutil`` (and the
    compression libraries it loads) would cost every instance memory."""
    import shutil

    shutil.copyfile(src, dst)


def scratch_folder() -> str:
    """A fresh private folder for ``--work-scratch``."""
    import tempfile  # here, as shutil (see copyfile)

    return tempfile.mkdtemp(prefix="hub-viz-work-")


def remove_scratch(path: str) -> None:
    if Path(path).name.startswith("hub-viz-work-"):
        import shutil

        shutil.rmtree(path, ignore_errors=True)


async def use_work_folder(options: argparse.Namespace, app: AppProcess) -> bool:
    """Point ``app`` at its work folder, copying first; False (the app marked failed) if not."""
    if not (options.work_dir or options.work_scratch):
        return True
    if not options.work_dir:
        options.work_dir = scratch_folder()
    try:
        app.cwd = await asyncio.to_thread(
            prepare, app.cwd, options.work_dir, options.entry, options.work_max_bytes
        )
    except HubVizError as e:
        log.error("Copying the dashboard's folder failed: %s", e.log_message)
        app.fail(e.message)
        return False
    except OSError as e:
        log.error("Copying the dashboard's folder into %s failed: %s", options.work_dir, e)
        app.fail(
            "The dashboard's files could not be copied into your own work folder "
            f"({e.strerror or e})."
        )
        return False
    return True


def clean_up(options: argparse.Namespace) -> None:
    """Remove a ``--work-scratch`` folder (a ``--work-dir`` stays: it is the viewer's)."""
    if options.work_scratch and options.work_dir:
        remove_scratch(options.work_dir)
