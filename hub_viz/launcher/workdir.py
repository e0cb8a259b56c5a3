"""A per-viewer instance's own copy of the dashboard's folder.

A per-viewer instance never runs in its author's folder: JupyterLab saves
there, and apps may write next to themselves. The launcher copies the
entry's folder into the instance's work folder on its first start and runs
the app there: ``--work-dir`` (kept by the spawner across restarts, so what
the viewer saved is there next time) or ``--work-scratch`` (a fresh folder
removed on exit: a warm-pool instance, whose viewer is not known yet).

The copy takes regular files and folders only (no symlinks, no
``.ipynb_checkpoints``, ``__pycache__`` or ``.git``) and stops with a
readable error past ``--work-max-bytes``. A later start of the same version
copies nothing again, except the entry itself when the viewer deleted it. A
start of another version (the author made it current) brings the author's
changes in and leaves the viewer's alone, as nbgitpuller does: files the
viewer has not touched are updated, added or removed; files the viewer
edited, made or deleted stay as they are (the marker file remembers what was
given, by digest).
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


def source_files(source: Path) -> dict[str, os.stat_result]:
    """The regular files under ``source`` a copy takes (relative POSIX paths), sorted."""
    found: dict[str, os.stat_result] = {}

    def walk(src: Path, rel: str) -> None:
        with os.scandir(src) as entries:
            for item in sorted(entries, key=lambda e: e.name):
                if item.name in SKIPPED or item.is_symlink():
                    continue
                info = item.stat(follow_symlinks=False)
                name = f"{rel}{item.name}"
                if stat.S_ISDIR(info.st_mode):
                    try:
                        walk(Path(item.path), name + "/")
                    except PermissionError:  # the author's private folder: not for viewers
                        log.info("Not copied (not readable here): %s", item.path)
                elif stat.S_ISREG(info.st_mode):
                    found[name] = info

    walk(source, "")
    return found


def too_large(source: Path, max_bytes: int) -> WorkCopyError:
    return WorkCopyError(
        f"The dashboard's folder holds more than {_mb(max_bytes)}; "
        "each viewer of a per-viewer dashboard gets a copy of it. Move "
        "the dashboard into a folder of its own with only what it needs.",
        log_message=f"{source} is larger than {max_bytes} bytes",
    )


def digest(path: Path) -> str:
    import hashlib  # here, as shutil (see copyfile)

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def copy_in(src: Path, dst: Path) -> str | None:
    """Copy one file (its folders made private); its digest, None if not readable here."""
    dst.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        copyfile(src, dst)
    except PermissionError:  # the author's private file: not for viewers
        log.info("Not copied (not readable here): %s", src)
        return None
    return digest(dst)


def copy_tree(source: Path, target: Path, max_bytes: int) -> tuple[int, dict[str, str]]:
    """Copy ``source``'s files and folders into ``target``; the bytes copied and the
    digest of each file copied."""
    files = source_files(source)
    total = sum(info.st_size for info in files.values())
    if total > max_bytes:
        raise too_large(source, max_bytes)
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    copied: dict[str, str] = {}
    for rel in files:
        found = copy_in(source / rel, target / rel)
        if found is not None:
            copied[rel] = found
    return total, copied


def read_marker(marker: Path) -> dict:
    """What the work folder was filled from: ``source`` and the ``files`` given (a marker
    of an older launcher says neither)."""
    import json

    try:
        data = json.loads(marker.read_text())
    except (OSError, ValueError):
        return {"source": None, "files": {}}
    return data if isinstance(data, dict) else {"source": None, "files": {}}


def write_marker(marker: Path, source_id: str, files: dict[str, str]) -> None:
    import json

    marker.write_text(json.dumps({"source": source_id, "files": files}))


def update_copy(source: Path, target: Path, given: dict[str, str], max_bytes: int) -> dict:
    """Bring a new version of the author's files into a viewer's work folder.

    A file the viewer has not changed since it was ``given`` (same digest) is
    replaced by the new version's, or removed if the new version has none; a
    file the author adds is copied in; a file the viewer changed, added or
    deleted stays as the viewer left it. Returns the new ``files`` to remember
    and what was done (for the log).
    """
    files = source_files(source)
    if sum(info.st_size for info in files.values()) > max_bytes:
        raise too_large(source, max_bytes)
    kept: dict[str, str] = {}
    done = {"updated": 0, "added": 0, "removed": 0, "kept": 0}
    for rel in files:
        new = source / rel
        mine = target / rel
        if rel in given:
            if not mine.is_file() or mine.is_symlink():  # deleted (or replaced) by the viewer
                kept[rel] = given[rel]
                continue
            if digest(mine) != given[rel]:  # the viewer's own edit wins
                kept[rel] = given[rel]
                done["kept"] += 1
                continue
            found = copy_in(new, mine)
            done["updated"] += found is not None and found != given[rel]
        elif os.path.lexists(mine):  # the viewer made a file of that name: theirs
            done["kept"] += 1
            continue
        else:
            found = copy_in(new, mine)
            done["added"] += found is not None
        if found is not None:
            kept[rel] = found
    for rel, old in given.items():
        if rel in files:
            continue
        mine = target / rel
        if mine.is_file() and not mine.is_symlink() and digest(mine) == old:
            mine.unlink()
            done["removed"] += 1
    if done["updated"] or done["removed"]:
        drop_bytecode(target)
    return {"files": kept, "done": done}


def drop_bytecode(target: Path) -> None:
    """Remove the app's ``__pycache__`` folders: Python trusts a cached module whose
    source has the same size and modification second, which a file replaced soon
    after the first copy can have (the app would run the old version)."""
    import shutil

    for cache in [p for p in target.rglob("__pycache__") if p.is_dir() and not p.is_symlink()]:
        shutil.rmtree(cache, ignore_errors=True)


def prepare(
    source: str, target: str, entry: str, max_bytes: int, source_id: str | None = None
) -> str:
    """Fill ``target`` from ``source`` on first use; the folder to run the app in.

    ``source_id`` names what ``source`` holds (a version's copy, a git commit):
    when it differs from the one the folder was filled from, the author's
    changes are brought in without touching the viewer's (:func:`update_copy`).
    """
    src, dst = Path(source), Path(target)
    source_id = source_id or source
    dst.mkdir(mode=0o700, parents=True, exist_ok=True)
    marker = dst / MARKER
    if not marker.exists():
        size, files = copy_tree(src, dst, max_bytes)
        write_marker(marker, source_id, files)
        log.info("Copied the dashboard's folder (%d bytes) into the work folder %s", size, dst)
        return str(dst)
    before = read_marker(marker)
    if before.get("source") != source_id:
        given = before.get("files")
        # the marker lies in the viewer's folder, where the app may write: names that
        # leave the folder are not followed
        given = {
            rel: sha
            for rel, sha in (given.items() if isinstance(given, dict) else ())
            if isinstance(rel, str)
            and isinstance(sha, str)
            and not rel.startswith("/")
            and ".." not in rel.split("/")
        }
        result = update_copy(src, dst, given, max_bytes)
        write_marker(marker, source_id, result["files"])
        log.info(
            "Brought a new version of the dashboard's files into the work folder %s: %s",
            dst,
            ", ".join(f"{n} {what}" for what, n in result["done"].items()),
        )
    if not (dst / entry).exists() and (src / entry).exists():
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
            prepare,
            app.cwd,
            options.work_dir,
            options.entry,
            options.work_max_bytes,
            source_identity(options, app.cwd),
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


def source_identity(options: argparse.Namespace, cwd: str) -> str:
    """What the app's folder holds: the git commit fetched, else the folder (a version's
    copy of the author's files has a path of its own)."""
    git_url = getattr(options, "git_url", "")
    if git_url:
        return f"git {git_url} {getattr(options, 'git_ref', '')} {getattr(options, 'cwd', '')}"
    return cwd


def clean_up(options: argparse.Namespace) -> None:
    """Remove a ``--work-scratch`` folder (a ``--work-dir`` stays: it is the viewer's)."""
    if options.work_scratch and options.work_dir:
        remove_scratch(options.work_dir)
