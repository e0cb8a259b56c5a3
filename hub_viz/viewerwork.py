"""Where a viewer's own copy of a per-viewer dashboard lives, on the hub's side.

Each (viewer, dashboard) pair has one work folder,
``<root>/<viewer>/<owner>/<slug>-<tag>``: the instance runs the app there and
keeps what the viewer saves across restarts. ``<tag>`` is a keyed digest
of the three names (the key stays with the hub, mode 0600): one sandbox
account may run every viewer's instance, so the folders above are
traversable but not listable (0711), and a viewer's code cannot name
another viewer's folder. The folder itself belongs to the account that
runs the instance (0700).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import pwd
import secrets
from pathlib import Path

KEY_FILE = ".key"


def escape_name(name: str) -> str:
    """A hub name as one safe path segment: letters, digits, ``_@+-`` kept, all else ``%XX``."""
    out = []
    for char in name:
        if char.isascii() and (char.isalnum() or char in "_@+-"):
            out.append(char)
        else:
            out.extend(f"%{byte:02X}" for byte in char.encode())
    return "".join(out) or "%00"


def work_key(root: Path) -> bytes:
    """The hub's key for work folder tags (made once, 0600)."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o711)
    path = root / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    key = secrets.token_bytes(32)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    return key


def work_folder(root: Path, viewer: str, owner: str, slug: str, key: bytes = b"") -> Path:
    """The work folder of ``viewer`` for dashboard ``owner/slug`` (not created)."""
    name = escape_name(slug)
    if key:
        digest = hmac.new(key, "\0".join((viewer, owner, slug)).encode(), hashlib.sha256)
        name += "-" + digest.hexdigest()[:20]
    return root / escape_name(viewer) / escape_name(owner) / name


def make_work_folder(root: Path, viewer: str, owner: str, slug: str, account: str | None) -> Path:
    """Create (or find) the work folder, owned by ``account`` (None: this process's user)."""
    folder = work_folder(root, viewer, owner, slug, work_key(root))
    for parent in (folder.parent.parent, folder.parent):
        parent.mkdir(exist_ok=True)
        os.chmod(parent, 0o711)
    folder.mkdir(mode=0o700, exist_ok=True)
    if account is not None:
        entry = pwd.getpwnam(account)
        stat = folder.stat()
        if (stat.st_uid, stat.st_gid) != (entry.pw_uid, entry.pw_gid):
            os.chown(folder, entry.pw_uid, entry.pw_gid)
    os.chmod(folder, 0o700)
    return folder
