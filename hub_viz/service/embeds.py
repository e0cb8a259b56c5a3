"""Embed links: the origins that may frame a dashboard, as revocable signed links.

An embed link is ``S embed/<token>``; the token is a JWT (HS256) with a secret
only the service keeps, naming the grant. Revoking the grant, letting it
expire or replacing the secret file kills the link. Launchers read the live
origins of their dashboard from ``S api/embed-origins/<owner>/<slug>`` and
send them as ``Content-Security-Policy: frame-ancestors``.

A link that needs a hub login cannot use the service's login cookie inside a
course site's frame (a third-party cookie). The frame's "Log in" opens
``S embed/<token>/login`` as a top-level window, which logs in through the hub
and hands the frame a *viewer ticket*: a JWT with the same secret naming the
grant and the viewer, good for ``VIEWER_TICKET_HOURS``, sent by the frame in a
header (never a cookie, so no other site can make the browser use it).
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..errors import HubVizError, SpecError
from ..filemodes import ensure_secret_file
from .dashboards import PUBLIC
from .store import Dashboard, EmbedGrant, utcnow

ISSUER = "hub-viz-embed"
VIEWER_ISSUER = "hub-viz-embed-viewer"
VIEWER_TICKET_HEADER = "X-Hub-Viz-Viewer"
VIEWER_TICKET_HOURS = 8  # a school day: log in once per day per course site
MAX_ORIGINS = 10
EMBED_FIELDS = frozenset({"origins", "anonymous", "expires_in_days", "note"})


class EmbedRefused(HubVizError):
    status_code = 403


class EmbedLoginNeeded(HubVizError):
    status_code = 401


def load_secret(path: Path) -> bytes:
    """A secret kept in ``path`` (created once, mode 0600): the embed links' (replace the
    file to kill every link) or the login cookies' (replace it to log everyone out)."""
    return ensure_secret_file(path, lambda: secrets.token_hex(32)).read_text().strip().encode()


class EmbedTokens:
    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def encode(self, grant: EmbedGrant) -> str:
        claims: dict[str, Any] = {"iss": ISSUER, "gid": grant.id}
        if grant.expires is not None:
            claims["exp"] = int(grant.expires.replace(tzinfo=dt.timezone.utc).timestamp())
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def grant_id(self, token: str) -> int:
        """The grant a token names; EmbedRefused when it is forged, expired or malformed."""
        try:
            claims = jwt.decode(
                token,
                self.secret,
                algorithms=["HS256"],
                issuer=ISSUER,
                options={"require": ["iss", "gid"]},
            )
        except jwt.ExpiredSignatureError:
            raise EmbedRefused(
                "This embed link has expired; ask its author for a new one."
            ) from None
        except jwt.PyJWTError:
            raise EmbedRefused(
                "This embed link is not valid (it may have been replaced)."
            ) from None
        if not isinstance(claims["gid"], int):
            raise EmbedRefused("This embed link is not valid.")
        return claims["gid"]

    def viewer_ticket(self, grant_id: int, viewer: str) -> str:
        """A ticket that lets ``viewer`` open this grant's dashboard from its frame."""
        exp = utcnow().replace(tzinfo=dt.timezone.utc) + dt.timedelta(hours=VIEWER_TICKET_HOURS)
        claims = {"iss": VIEWER_ISSUER, "gid": grant_id, "sub": viewer, "exp": exp}
        return jwt.encode(claims, self.secret, algorithm="HS256")

    def ticket_viewer(self, ticket: str, grant_id: int) -> str:
        """The viewer a ticket names for ``grant_id``; EmbedLoginNeeded otherwise."""
        try:
            claims = jwt.decode(
                ticket,
                self.secret,
                algorithms=["HS256"],
                issuer=VIEWER_ISSUER,
                options={"require": ["iss", "gid", "sub", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            raise EmbedLoginNeeded("Your login to this dashboard expired: log in again.") from None
        except jwt.PyJWTError:
            raise EmbedLoginNeeded("Log in to the hub to see this dashboard.") from None
        if claims["gid"] != grant_id or not isinstance(claims["sub"], str):
            raise EmbedLoginNeeded("Log in to the hub to see this dashboard.")
        return claims["sub"]


def check_origin(value: Any) -> str:
    """``https://host[:port]`` (or http for local tests): no path, query or user."""
    if not isinstance(value, str) or len(value) > 300:
        raise SpecError("Each origin must be text such as https://canvas.example.edu.")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise SpecError(f"{value!r} is not an origin; use e.g. https://canvas.example.edu.")
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise SpecError(
            f"{value!r} is not an origin: give only scheme, host and port "
            "(e.g. https://canvas.example.edu), no path."
        )
    host = parts.hostname.lower()
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def validate_embed(data: Any, dashboard: Dashboard) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise SpecError("The request body must be a JSON object.")
    unknown = set(data) - EMBED_FIELDS
    if unknown:
        raise SpecError(f"Unknown field(s) {sorted(unknown)}; allowed: {sorted(EMBED_FIELDS)}.")
    origins = data.get("origins")
    if not isinstance(origins, list) or not origins or len(origins) > MAX_ORIGINS:
        raise SpecError(
            f"'origins' must list 1 to {MAX_ORIGINS} sites allowed to frame the "
            'dashboard, e.g. ["https://canvas.example.edu"].'
        )
    clean = sorted({check_origin(o) for o in origins})
    anonymous = data.get("anonymous", False)
    if not isinstance(anonymous, bool):
        raise SpecError("'anonymous' must be true or false.")
    if anonymous and dashboard.visibility != PUBLIC:
        raise SpecError(
            "Only a public dashboard can be embedded for anonymous viewers; "
            "make it public first or leave 'anonymous' off."
        )
    days = data.get("expires_in_days")
    expires = None
    if days is not None:
        if not isinstance(days, (int, float)) or isinstance(days, bool) or not 0 < days <= 3650:
            raise SpecError("'expires_in_days' must be a number of days from 1 to 3650.")
        expires = utcnow() + dt.timedelta(days=days)
    note = data.get("note") or ""
    if not isinstance(note, str) or len(note) > 200:
        raise SpecError("'note' must be text of at most 200 characters.")
    return {"origins": clean, "anonymous": anonymous, "expires": expires, "note": note}


def live_origins(db: Session, dashboard_id: int) -> list[str]:
    now = utcnow()
    grants = db.scalars(select(EmbedGrant).where(EmbedGrant.dashboard_id == dashboard_id)).all()
    return sorted({o for g in grants if g.live(now) for o in g.origins})


def snippet(url: str, title: str) -> str:
    safe_title = title.replace('"', "&quot;").replace("<", "&lt;")
    return (
        f'<iframe src="{url}" title="{safe_title}" width="100%" height="640" '
        'style="border:0" allow="fullscreen"></iframe>'
    )


def as_json(grant: EmbedGrant, url: str, title: str) -> dict[str, Any]:
    return {
        "id": grant.id,
        "origins": list(grant.origins),
        "anonymous": grant.anonymous,
        "note": grant.note,
        "created": grant.created.isoformat() + "Z",
        "expires": grant.expires.isoformat() + "Z" if grant.expires else None,
        "revoked": grant.revoked.isoformat() + "Z" if grant.revoked else None,
        "live": grant.live(),
        "url": url,
        "snippet": snippet(url, title),
    }
