"""Dashboard sources from git: the form of the URL and the ref.

A source is an https URL (other schemes only where the operator allows
them) and a ref (branch or tag). These checks are about form only; which
hosts may be reached is :mod:`hub_viz.netcheck`'s, and the clone itself,
where the dashboard runs, :mod:`hub_viz.gitfetch`'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, urlsplit

from .errors import SpecError
from .netcheck import HostNotFound, Resolver, parse_literal, public_addresses

ALLOWED_SCHEMES = ("https",)
_REF = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./-]{0,199}$")
# a name (never '-' first, no '.' last) or a bracketed IPv6 address, then an optional port
_HOST = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$")


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
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed '[' of an IPv6 address
        raise SpecError(
            "The git URL needs a host name, e.g. https://github.com/org/repo.git."
        ) from None
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
    if not parts.netloc or not _HOST.fullmatch(parts.netloc) or not _port_ok(parts):
        raise SpecError("The git URL needs a host name, e.g. https://github.com/org/repo.git.")
    if not parts.path or parts.path == "/" or ".." in parts.path.split("/"):
        raise SpecError("The git URL needs a repository path, e.g. /org/repo.git.")
    return url


def _port_ok(parts: SplitResult) -> bool:
    try:
        return parts.port is None or 0 < parts.port
    except ValueError:  # above 65535
        return False


def check_git_ref(ref: Any) -> str:
    if not isinstance(ref, str) or not _REF.fullmatch(ref) or ".." in ref or ref.endswith("/"):
        raise SpecError(
            "The git ref must be a branch or tag name (letters, digits, '.', '_', '/', '-'; "
            "not starting with '-')."
        )
    return ref


async def check_git_host(
    url: str,
    resolver: Resolver | None = None,
    *,
    unresolved_ok: bool = False,
    timeout: float | None = None,
) -> list[str]:
    """The public addresses an https git URL's host stands for; SpecError for any other.

    A ``file://`` URL (where the operator allows it) has no host: ``[]``. With
    ``unresolved_ok`` (publishing), a name that does not resolve now passes:
    the instance checks again when it fetches.
    """
    parts = urlsplit(url)
    if parts.scheme != "https":
        return []
    kwargs = {} if timeout is None else {"timeout": timeout}
    try:
        return await public_addresses(parts.hostname or "", parts.port or 443, resolver, **kwargs)
    except HostNotFound:
        if unresolved_ok:
            return []
        raise


def needs_pin(url: str) -> bool:
    """An https URL whose host is a name: curl would resolve it again, so pin it."""
    parts = urlsplit(url)
    return parts.scheme == "https" and parse_literal(parts.hostname or "") is None
