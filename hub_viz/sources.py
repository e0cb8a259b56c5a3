"""Dashboard sources fetched from git: checked before use, fetched without a shell.

A source is an https URL (other schemes only where the operator allows
them) and a ref (branch or tag). :func:`fetch_git` clones it shallowly into
a cache folder named after the URL and ref, and reuses that checkout.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .errors import SpecError

ALLOWED_SCHEMES = ("https",)
_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}$")
_HOST = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*(:[0-9]{1,5})?$")  # never '-' first
GIT_TIMEOUT = 120


@dataclass(frozen=True)
class GitSource:
    url: str
    ref: str = "main"

    @classmethod
    def from_spec(cls, data: Any, schemes: tuple[str, ...] | None = None) -> GitSource:
        if not isinstance(data, dict):
            raise SpecError("'git' must be an object with 'url' and 'ref'.")
        return cls(check_git_url(data.get("url"), schemes), check_git_ref(data.get("ref", "main")))


def check_git_url(url: Any, schemes: tuple[str, ...] | None = None) -> str:
    """A clone URL: allowed scheme, a plain host, no credentials, no option-like start."""
    schemes = tuple(schemes or ALLOWED_SCHEMES)
    if not isinstance(url, str) or not url or len(url) > 500:
        raise SpecError("The git URL must be a string such as https://github.com/org/repo.git.")
    if any(ch.isspace() for ch in url) or "\x00" in url:
        raise SpecError("The git URL may not contain spaces or control characters.")
    parts = urlsplit(url)
    if parts.scheme not in schemes:
        raise SpecError(
            f"The git URL must start with {' or '.join(s + '://' for s in schemes)}; "
            f"got {url[:60]!r}."
        )
    if parts.scheme == "file":
        if parts.netloc or not parts.path.startswith("/"):
            raise SpecError("A file:// git URL must be an absolute path (file:///srv/repo.git).")
        return url
    if parts.username or parts.password or "@" in parts.netloc:
        raise SpecError("The git URL may not contain a user name or password.")
    if not parts.netloc or not _HOST.fullmatch(parts.netloc):
        raise SpecError("The git URL needs a host name, e.g. https://github.com/org/repo.git.")
    if not parts.path or parts.path == "/" or ".." in parts.path.split("/"):
        raise SpecError("The git URL needs a repository path, e.g. /org/repo.git.")
    return url


def check_git_ref(ref: Any) -> str:
    if not isinstance(ref, str) or not _REF.fullmatch(ref) or ".." in ref or ref.endswith("/"):
        raise SpecError(
            "The git ref must be a branch or tag name (letters, digits, '.', '_', '/', '-'; "
            "not starting with '-')."
        )
    return ref


def checkout_dir(cache: Path, source: GitSource, server: str) -> Path:
    """One checkout per server, so a restart never pulls files from under another app."""
    digest = hashlib.sha256(f"{source.url}\n{source.ref}\n{server}".encode()).hexdigest()[:24]
    return cache / digest


async def fetch_git(source: GitSource, cache: Path, server: str) -> Path:
    """Clone ``source`` (depth 1) fresh for ``server`` (``owner/name``) into the cache."""
    dest = checkout_dir(cache, source, server)
    os.makedirs(cache, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.{secrets.token_hex(4)}.tmp")
    argv = [
        "git", "clone", "--quiet", "--depth=1", f"--branch={source.ref}", "--", source.url, str(tmp)
    ]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, env=env
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), GIT_TIMEOUT)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        raise SpecError(f"Fetching the git source took longer than {GIT_TIMEOUT} s.") from None
    if proc.returncode != 0:
        shutil.rmtree(tmp, ignore_errors=True)
        detail = out.decode(errors="replace").strip().splitlines()[-1:] or [""]
        raise SpecError(
            f"Could not fetch ref {source.ref!r} from the git repository.",
            log_message=f"git clone {source.url} {source.ref} failed: {detail[0]}",
        )
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(tmp, dest)
    return dest
