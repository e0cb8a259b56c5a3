"""``GET S api/entries``: the caller's files that could be a dashboard's entry.

The publish form offers them (a list to pick from, typing stays possible), so
an author does not have to remember ``dash/app.py`` letter for letter. Only on
hubs where the service sees authors' files (``check_files``: local spawners);
elsewhere the list is empty and says why. The walk stays inside the caller's
own folder (no symlinks followed), skips hidden and build folders, and stops
at ``MAX_ENTRIES`` files or ``MAX_SEEN`` looked at.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import FrameworkError
from ..frameworks import detect
from .base import BaseHandler

MAX_ENTRIES = 200
MAX_SEEN = 5000
MAX_DEPTH = 4
MAX_BYTES = 2 * 1024 * 1024  # bigger files are data, not an app's entry
SKIP_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "venv", "env"})


def list_entries(root: Path, frameworks: Any, allowed: list[str]) -> list[dict[str, str]]:
    """Files (and Bokeh/Panel app folders) below ``root`` a framework would serve,
    as ``{"path", "framework"}`` sorted by path."""
    if not root.is_dir():
        return []
    suffixes = {s for f in frameworks.values() for s in f.suffixes}
    found: list[dict[str, str]] = []
    seen = 0
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        depth = len(here.relative_to(root).parts)
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in SKIP_DIRS
            and not d.endswith(".egg-info")
            and depth < MAX_DEPTH
        )
        candidates = [
            here / f
            for f in sorted(files)
            if not f.startswith(".") and Path(f).suffix.lower() in suffixes
        ]
        if depth and "main.py" in files:
            candidates.insert(0, here)  # a directory app
        for path in candidates:
            seen += 1
            if seen > MAX_SEEN or len(found) >= MAX_ENTRIES:
                return sorted(found, key=lambda e: e["path"])
            if path.is_symlink() or (path.is_file() and path.stat().st_size > MAX_BYTES):
                continue
            try:
                name = detect(path, frameworks)
            except (FrameworkError, OSError, UnicodeError, SyntaxError, ValueError):
                continue
            if name in allowed:
                found.append({"path": path.relative_to(root).as_posix(), "framework": name})
    return sorted(found, key=lambda e: e["path"])


class EntriesHandler(BaseHandler):
    async def get(self) -> None:
        user = await self.require_user()
        policy = self.ctx.policy
        if not policy.check_files:
            self.write_json(
                {
                    "entries": [],
                    "reason": "This hub's service does not see "
                    "authors' files: type the entry's path.",
                }
            )
            return
        root = Path(policy.dashboards_root.format(username=user["name"]))
        entries = list_entries(root, policy.frameworks, list(policy.allowed_frameworks))
        self.write_json({"entries": entries, "truncated": len(entries) >= MAX_ENTRIES})
