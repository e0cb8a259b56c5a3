"""Snapshots: the read-only copy of an author's files that one version of a dashboard runs.

A dashboard published from the author's own files (not git) would otherwise
run whatever those files are when an instance starts: an edit in the author's
home would change the current version behind the viewers' backs, and an
older version could never be run again. So each publish or update copies the
entry's folder (regular files and folders only: no symlinks, no
``.ipynb_checkpoints``, ``__pycache__`` or ``.git``) into the hub's state,
under ``<snapshots_root>/<owner key>/<slug>/<digest>/``. The digest covers
every file's path, content and permissions, so an unchanged folder is one
snapshot however many versions use it.

The copy keeps the author's read permissions and, where the service runs as
root, the files' owner and group (a file only its author could read stays
so), and drops every write permission: no one but the files' owner can
change a snapshot once taken (the author could, as they could their files;
it changes only their own dashboard). The folders above the snapshots can be
passed through but not listed.

The service takes snapshots (:func:`take_snapshot`); the spawner runs an
instance of a version from its snapshot (:func:`snapshot_path`), with the
signed spec naming the digest, so no author can point an instance at another
author's copy.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import stat
from pathlib import Path

from .errors import SpecError

SKIPPED = frozenset({".ipynb_checkpoints", "__pycache__", ".git", ".hub-viz-copied"})
DIGEST = re.compile(r"^[0-9a-f]{64}$")
SLUG = re.compile(r"^[a-z][a-z0-9-]{0,29}$")


class SnapshotError(SpecError):
    """The author's folder cannot be copied (too large, unreadable)."""


def owner_key(owner: str) -> str:
    """A folder name for any hub user name (names may hold any character but '/')."""
    return hashlib.sha256(owner.encode()).hexdigest()[:32]


def snapshot_path(root: str | Path, owner: str, slug: str, digest: str) -> Path:
    """The folder of snapshot ``digest`` of ``owner/slug``; SpecError for a malformed name."""
    if not DIGEST.fullmatch(digest or "") or not SLUG.fullmatch(slug or ""):
        raise SpecError("The dashboard's snapshot name is not valid.")
    return Path(root) / owner_key(owner) / slug / digest


def _mb(n: int) -> str:
    return f"{n / 1_000_000:g} MB"


def _copy(src: Path, dst: Path, digest: hashlib._Hash, max_bytes: int, rel: str = "") -> int:
    """Copy ``src`` into the new folder ``dst``; bytes copied. Feeds ``digest`` in a
    fixed order so that the same files give the same digest."""
    total = 0
    dst.mkdir(mode=0o700)
    with os.scandir(src) as scan:
        entries = sorted(scan, key=lambda e: e.name)
    for item in entries:
        if item.name in SKIPPED or item.is_symlink():
            continue
        info = item.stat(follow_symlinks=False)
        path = f"{rel}/{item.name}" if rel else item.name
        if stat.S_ISDIR(info.st_mode):
            digest.update(b"d\0" + path.encode("utf-8", "surrogateescape") + b"\0" + _access(info))
            total += _copy(Path(item.path), dst / item.name, digest, max_bytes - total, path)
            _own(dst / item.name, info)
            os.chmod(dst / item.name, (info.st_mode & 0o555) | 0o500)
        elif stat.S_ISREG(info.st_mode):
            total += info.st_size
            if total > max_bytes:
                raise SnapshotError(
                    f"The dashboard's folder holds more than the {_mb(max_bytes)} this hub "
                    "keeps per version: put the dashboard in a folder of its own (the "
                    "entry's folder is what is kept)."
                )
            target = dst / item.name
            content = hashlib.sha256()
            with open(item.path, "rb") as fin, open(target, "xb") as fout:
                for chunk in iter(lambda: fin.read(1 << 20), b""):
                    content.update(chunk)
                    fout.write(chunk)
            digest.update(b"f\0" + path.encode("utf-8", "surrogateescape") + b"\0" + _access(info))
            digest.update(content.digest())
            _own(target, info)
            os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))  # caching validators
            os.chmod(target, (info.st_mode & 0o555) | 0o400)
    return total


def _access(info: os.stat_result) -> bytes:
    """Who may read or run it (and, for a root service, whose it is): part of the digest,
    so that a changed permission makes another snapshot."""
    owner = f":{info.st_uid}:{info.st_gid}" if os.geteuid() == 0 else ""
    return f"{info.st_mode & 0o555:o}{owner}".encode()


def _own(path: Path, info: os.stat_result) -> None:
    """A service running as root gives the copy its original's owner and group, so that
    an instance running as the author reads what the author could (a file only its
    author could read stays so); otherwise the service's account owns it."""
    if os.geteuid() == 0:
        os.chown(path, info.st_uid, info.st_gid, follow_symlinks=False)


def _remove(path: Path) -> None:
    """Remove a read-only tree (its folders first made writable again)."""
    for folder, dirs, _files in os.walk(path):
        for name in dirs:
            with contextlib.suppress(OSError):
                os.chmod(os.path.join(folder, name), 0o700)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700)
    shutil.rmtree(path, ignore_errors=True)


def _private_dir(path: Path) -> None:
    """A folder others may pass through but not list."""
    path.mkdir(mode=0o711, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path, 0o711)


def take_snapshot(folder: Path, root: str | Path, owner: str, slug: str, max_bytes: int) -> str:
    """Copy ``folder`` as a snapshot of ``owner/slug``; its digest (the same files: the
    same digest and folder, copied once)."""
    base = Path(root)
    _private_dir(base)
    _private_dir(base / owner_key(owner))
    parent = base / owner_key(owner) / slug
    _private_dir(parent)
    tmp = parent / f".tmp-{secrets.token_hex(8)}"
    digest = hashlib.sha256(b"hub-viz-snapshot-1\0")
    try:
        try:
            top = os.stat(folder)  # the folder's own access holds for its copy too
            digest.update(b"r\0" + _access(top))
            _copy(folder, tmp, digest, max_bytes)
        except PermissionError as e:
            shown = Path(e.filename).name if e.filename else "a file"
            raise SnapshotError(
                f"The hub cannot read {shown!r} in the dashboard's folder to keep this "
                "version; make the folder readable by others (chmod -R o+rX).",
                log_message=f"snapshot of {folder}: {e}",
            ) from None
        except FileNotFoundError:
            raise SnapshotError(
                "The dashboard's folder changed while it was copied; try again."
            ) from None
        name = digest.hexdigest()
        target = parent / name
        _own(tmp, top)
        os.chmod(tmp, (top.st_mode & 0o555) | 0o500)
        if target.exists():
            _remove(tmp)
            with contextlib.suppress(OSError):  # in use again: not old for collect_snapshots
                os.utime(target)
        else:
            try:
                os.rename(tmp, target)
            except OSError:  # the same snapshot was taken meanwhile
                _remove(tmp)
        return name
    except BaseException:
        if tmp.exists():
            _remove(tmp)
        raise


def collect_snapshots(
    root: str | Path, referenced: set[tuple[str, str, str]], *, min_age: float = 3600.0
) -> list[Path]:
    """Remove the snapshots no version names any more (the dashboard was unpublished, an
    update failed after its copy was taken) and copies left half-made, once they are
    ``min_age`` seconds old (a version being made names its copy within seconds);
    ``referenced`` holds ``(owner, slug, digest)`` of every version. The removed paths."""
    import time

    base = Path(root)
    keep = {(owner_key(owner), slug, digest) for owner, slug, digest in referenced}
    cutoff = time.time() - min_age
    removed: list[Path] = []
    if not base.is_dir():
        return removed
    for owner_dir in sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink()):
        for slug_dir in sorted(p for p in owner_dir.iterdir() if p.is_dir() and not p.is_symlink()):
            untouched = slug_dir.stat().st_mtime < cutoff  # before this look removed anything
            for item in sorted(slug_dir.iterdir()):
                if (owner_dir.name, slug_dir.name, item.name) in keep:
                    continue
                if not (DIGEST.fullmatch(item.name) or item.name.startswith(".tmp-")):
                    continue  # not ours
                with contextlib.suppress(OSError):
                    if item.lstat().st_mtime < cutoff:
                        _remove(item)
                        removed.append(item)
            with contextlib.suppress(OSError):
                if untouched and not any(slug_dir.iterdir()):
                    slug_dir.rmdir()
    return removed
