"""The requirement file of a dashboard from git, read by the hub to build its environment.

On one machine the hub builds each dashboard's environment before the
instance starts (:mod:`hub_viz.environments`); for a git source it needs the
requirement file at the commit the instance will run. :func:`git_requirements`
fetches that commit with :func:`hub_viz.gitfetch.fetch_git` (the instance's
protections: public hosts only, pinned, no hooks, no submodules, a size cap
and a time limit) into a private temporary folder, reads the requirement file
as it would beside a local entry, and removes the checkout. Nothing in the
repository runs: git checks it out and the hub reads one text file.

A version pins a commit SHA, which never changes what it names: the answer
for ``(url, commit, folder, entry)`` is kept in ``cache`` (hub-only), so a
restart or a second instance reads one small file rather than fetching again.
A branch or tag (a hub without versions) is fetched at every start.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from .errors import SpecError
from .gitfetch import fetch_git, is_commit
from .requirements import Requirements, RequirementsError, find_requirements, requirement_folders
from .sources import GitSource


def folders_in(root: Path, folder: str, entry: str) -> list[Path]:
    """Where the requirement file may be in a checkout at ``root``: the entry's own folder
    (a folder app), then the folder the entry is in; never outside the checkout."""
    sub = PurePosixPath(folder)
    if sub.is_absolute() or ".." in sub.parts:
        raise SpecError("The dashboard's folder must be inside its git repository.")
    return requirement_folders(root.joinpath(*sub.parts), entry)


def cache_key(source: GitSource, folder: str, entry: str, allow_urls: bool) -> str:
    parts = (source.url, source.ref, folder, entry, "urls" if allow_urls else "")
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:40]


def _read_cache(path: Path) -> Requirements | None | SpecError:
    data = json.loads(path.read_text())
    if "error" in data:
        return RequirementsError(data["error"])
    if data.get("none"):
        return None
    return Requirements(source=data["source"], lines=tuple(data["lines"]))


def _write_cache(path: Path, found: Requirements | None | SpecError) -> None:
    if isinstance(found, SpecError):
        data: dict = {"error": found.message}
    elif found is None:
        data = {"none": True}
    else:
        data = {"source": found.source, "lines": list(found.lines)}
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


async def git_requirements(
    source: GitSource,
    folder: str,
    entry: str,
    *,
    schemes: Sequence[str],
    max_bytes: int,
    timeout: float,
    allow_urls: bool = False,
    cache: Path | None = None,
) -> Requirements | None:
    """The checked requirements of ``entry`` (in ``folder`` of the repository) at
    ``source``; None without a requirement file. SpecError (with a message for the
    author) when the source cannot be fetched or its requirement file is refused."""
    cached = None
    if cache is not None and is_commit(source.ref):
        cached = cache / f"{cache_key(source, folder, entry, allow_urls)}.json"
        if cached.is_file():
            kept = _read_cache(cached)
            if isinstance(kept, SpecError):
                raise kept
            return kept
    work = Path(tempfile.mkdtemp(prefix="hub-viz-reqs-"))  # 0700: the hub's alone
    try:
        checkout = work / "checkout"
        await fetch_git(source, checkout, schemes=schemes, max_bytes=max_bytes, timeout=timeout)
        loop = asyncio.get_running_loop()
        try:
            found: Requirements | None | SpecError = await loop.run_in_executor(
                None,
                lambda: find_requirements(
                    folders_in(checkout, folder, entry), allow_urls=allow_urls, within=checkout
                ),
            )
        except RequirementsError as e:
            found = e
        except OSError as e:
            found = RequirementsError(
                f"Cannot read the requirement file in the repository: {e.strerror or e}"
            )
    finally:
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: shutil.rmtree(work, ignore_errors=True)
        )
    if cached is not None:
        _write_cache(cached, found)
    if isinstance(found, SpecError):
        raise found
    return found
