"""The Deep Linking picker: an instructor picks dashboards for a course inside Canvas's frame.

The hub verifies the platform's ``LtiDeepLinkingRequest`` (see
:mod:`hub_viz.lti`), then asks here (``POST S api/lti/pick``, with the hub's
LTI secret, never through the proxy) for a picker: the answer is the URL of
a one-time page ``S lti/pick/<ticket>`` the frame goes to. The ticket stands
for the instructor there (the frame may have no cookies). The page lists the
dashboards the instructor may see, says which ones the course does not see
yet (picking shares those the instructor owns with the course's group), and
its form answers with an ``LtiDeepLinkingResponse`` JWT, signed with the
tool's key, auto-posted to the platform's ``deep_link_return_url``.
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy import select
from tornado import web

from ..errors import HubVizError
from ..lti_keys import sign
from .base import BaseHandler
from .dashboards import GROUPS, PRIVATE, can_view, check_course_targets, matches
from .store import Dashboard, utcnow
from .thumbnails import placeholder_svg

CLAIM = "https://purl.imsglobal.org/spec/lti/claim/"
DL_CLAIM = "https://purl.imsglobal.org/spec/lti-dl/claim/"
TICKET_SECONDS = 3600
MAX_TICKETS = 10000
FIELDS = (
    "username",
    "course_group",
    "course_title",
    "return_url",
    "issuer",
    "client_id",
    "deployment_id",
    "hub_origin",
)


@dataclass
class Pick:
    """One instructor's picker: who, for which course, where the answer goes."""

    username: str
    groups: list[str]
    course_group: str
    course_title: str
    return_url: str
    issuer: str
    client_id: str
    deployment_id: str
    hub_origin: str
    data: Any = None
    accept_multiple: bool = True
    targets: list[str] = field(default_factory=list)
    history_groups: list[str] = field(default_factory=list)  # of the courses it was copied from
    expires: float = 0.0

    @property
    def user(self) -> dict[str, Any]:
        return {"name": self.username, "groups": self.groups, "admin": False}


class Picks:
    """Open pickers by ticket, in memory (one service process), each used once."""

    def __init__(self) -> None:
        self._open: dict[str, Pick] = {}

    def add(self, pick: Pick) -> str:
        now = time.time()
        self._open = {k: p for k, p in self._open.items() if p.expires > now}
        if len(self._open) >= MAX_TICKETS:
            self._open.pop(next(iter(self._open)))
        ticket = secrets.token_urlsafe(32)
        pick.expires = now + TICKET_SECONDS
        self._open[ticket] = pick
        return ticket

    def get(self, ticket: str) -> Pick | None:
        pick = self._open.get(ticket)
        return pick if pick is not None and pick.expires > time.time() else None

    def close(self, ticket: str) -> None:
        self._open.pop(ticket, None)


def picks(handler: web.RequestHandler) -> Picks:
    return handler.application.settings.setdefault("hub_viz_lti_picks", Picks())


# -- what may be picked ------------------------------------------------------------


@dataclass
class Candidate:
    d: Dashboard
    state: str  # "shared": the course sees it; "share": picking shares it; "blocked"
    note: str = ""


def candidate(d: Dashboard, pick: Pick) -> Candidate:
    """May the instructor put ``d`` into the course, and does that share it?"""
    student = {"name": "", "groups": [pick.course_group, *pick.history_groups], "admin": False}
    if can_view(d, student):
        return Candidate(d, "shared", "The course sees it.")
    if d.owner != pick.username:
        return Candidate(
            d,
            "blocked",
            f"The course does not see it, and only its owner "
            f"({d.owner}) can share it with the course.",
        )
    if d.visibility not in (PRIVATE, GROUPS):
        return Candidate(
            d,
            "blocked",
            "It is shared with named people: to add it, change its "
            "sharing to groups on its page first.",
        )
    return Candidate(d, "share", "Picking it shares it with this course's students.")


def candidates(db: Any, pick: Pick, query: str = "") -> list[Candidate]:
    rows = db.scalars(select(Dashboard).order_by(Dashboard.title)).all()
    seen = [d for d in rows if can_view(d, pick.user) and (not query or matches(d, query))]
    mine = [d for d in seen if d.owner == pick.username]
    return [candidate(d, pick) for d in mine + [d for d in seen if d.owner != pick.username]]


def response_claims(pick: Pick, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``LtiDeepLinkingResponse`` claims (LTI Deep Linking 2.0, section 4.2)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": pick.client_id,
        "aud": pick.issuer,
        "iat": now,
        "exp": now + 600,
        "nonce": uuid.uuid4().hex,
        CLAIM + "deployment_id": pick.deployment_id,
        CLAIM + "message_type": "LtiDeepLinkingResponse",
        CLAIM + "version": "1.3.0",
        DL_CLAIM + "content_items": items,
    }
    if pick.data is not None:
        claims[DL_CLAIM + "data"] = pick.data
    return claims


def content_item(d: Dashboard, open_url: str, new_window: bool) -> dict[str, Any]:
    """A link that opens ``d``: its custom claim names it, its URL is its open page."""
    item: dict[str, Any] = {
        "type": "ltiResourceLink",
        "title": d.title,
        "url": open_url,
        "custom": {"dashboard": f"{d.owner}/{d.slug}"},
    }
    if d.description:
        item["text"] = d.description[:500]
    if new_window:
        item["window"] = {"targetName": "_blank"}
    return item


# -- handlers ----------------------------------------------------------------------


class CreatePickHandler(BaseHandler):
    """``POST S api/lti/pick``: the hub opens a picker for a verified instructor."""

    def check_xsrf_cookie(self) -> None:
        return  # no cookies: the caller shows the shared secret

    def post(self) -> None:
        secret = self.settings.get("hub_viz_lti_secret") or ""
        if not secret or "X-Forwarded-For" in self.request.headers:
            raise web.HTTPError(404)
        given = self.request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {secret}".encode()):
            raise web.HTTPError(403, "Only the hub's LTI login may ask this.")
        if not self.settings.get("hub_viz_lti_key_file"):
            raise web.HTTPError(
                503, "The tool has no signing key (lti_key_file); the operator must set it up."
            )
        body = self.body_json()
        if (
            not isinstance(body, dict)
            or not all(
                isinstance(body.get(k), str) and body.get(k) for k in FIELDS if k != "course_title"
            )
            or not isinstance(body.get("groups"), list)
        ):
            raise web.HTTPError(400, f"Send {{{', '.join(FIELDS)}, groups: [...]}}.")
        targets = body.get("targets")
        texts: dict[str, Any] = {k: body.get(k) or "" for k in FIELDS}  # strings (above)
        pick = Pick(
            **texts,
            groups=[g for g in body["groups"] if isinstance(g, str)],
            history_groups=[g for g in body.get("history_groups") or [] if isinstance(g, str)]
            if isinstance(body.get("history_groups"), list)
            else [],
            data=body.get("data"),
            accept_multiple=body.get("accept_multiple") is not False,
            targets=[t for t in targets if isinstance(t, str)] if isinstance(targets, list) else [],
        )
        ticket = picks(self).add(pick)
        self.write_json({"url": f"{self.ctx.public_prefix}lti/pick/{ticket}"})


class PickPage(BaseHandler):
    """``S lti/pick/<ticket>``: the picker (GET) and its answer to the platform (POST)."""

    json_errors = False

    def check_xsrf_cookie(self) -> None:
        return  # the unguessable one-time ticket in the URL is the form's token

    def prepare(self) -> None:
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "no-referrer")  # the ticket stays here

    def _pick(self, ticket: str) -> Pick:
        pick = picks(self).get(ticket)
        if pick is None:
            raise web.HTTPError(
                404,
                "This picker was used already or has expired. Close it and "
                "choose the tool again in your course.",
            )
        origin = urlsplit(pick.return_url)
        self.set_header(
            "Content-Security-Policy", f"frame-ancestors {origin.scheme}://{origin.netloc}"
        )
        return pick

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        self.set_header("Content-Security-Policy", "frame-ancestors *")  # show it in the frame
        super().write_error(status_code, **kwargs)

    def _render(
        self, ticket: str, pick: Pick, query: str, error: str = "", status: int = 200
    ) -> None:
        with self.ctx.store.session() as db:
            items = candidates(db, pick, query)
        self.set_status(status)
        self.render(
            "lti_pick.html",
            pick=pick,
            items=items,
            query=query,
            error=error,
            action=f"{self.ctx.prefix}lti/pick/{ticket}",
            hub_base=self.ctx.hub_base_url,
            prefix=self.ctx.prefix,
        )

    def get(self, ticket: str) -> None:
        pick = self._pick(ticket)
        self._render(ticket, pick, self.get_query_argument("q", "").strip()[:200])

    async def post(self, ticket: str) -> None:
        pick = self._pick(ticket)
        chosen = list(dict.fromkeys(self.get_body_arguments("dashboard")))
        if not chosen:
            return self._render(ticket, pick, "", "Pick at least one dashboard.", 400)
        if len(chosen) > 1 and not pick.accept_multiple:
            return self._render(
                ticket,
                pick,
                "",
                "This place in the course takes one link: pick one dashboard.",
                400,
            )
        with self.ctx.store.session() as db:
            found = {f"{c.d.owner}/{c.d.slug}": c for c in candidates(db, pick)}
            picked = [found[ref] for ref in chosen if ref in found]
            if len(picked) < len(chosen) or any(c.state == "blocked" for c in picked):
                return self._render(
                    ticket,
                    pick,
                    "",
                    "One of the picked dashboards cannot be added to this course; see its note.",
                    400,
                )
            to_share = [c.d for c in picked if c.state == "share"]
            try:
                for d in to_share:
                    check_course_targets([pick.course_group], pick.user)
                    self.ctx.policy.publishers.check(pick.user, GROUPS)
                    kept = list(d.share_groups or []) if d.visibility == GROUPS else []
                    d.share_groups = [*kept, pick.course_group]
                    d.visibility = GROUPS
                    d.updated = utcnow()
            except HubVizError as e:
                db.rollback()
                return self._render(ticket, pick, "", e.message, e.status_code)
            db.commit()
            dashboards = [c.d for c in picked]
        for d in to_share:
            await self.ctx.deployer.sync_shares(d)
        picks(self).close(ticket)
        prefix = self.ctx.public_prefix
        base = prefix if urlsplit(prefix).netloc else pick.hub_origin + prefix
        new_window = self.get_body_argument("new_window", "") == "1" and (
            not pick.targets or "window" in pick.targets
        )
        items = [
            content_item(d, f"{base}open/{quote(d.owner, safe='')}/{d.slug}", new_window)
            for d in dashboards
        ]
        jwt = sign(response_claims(pick, items), self.settings["hub_viz_lti_key_file"])
        self.render(
            "lti_return.html",
            return_url=pick.return_url,
            jwt=jwt,
            titles=[d.title for d in dashboards],
            shared=[d.title for d in to_share],
            course=pick.course_title,
            hub_base=self.ctx.hub_base_url,
        )


class PickThumbnail(BaseHandler):
    """``S lti/pick/<ticket>/thumb/<owner>/<slug>``: a card image for the picker's user."""

    def get(self, ticket: str, owner: str, slug: str) -> None:
        pick = picks(self).get(ticket)
        with self.ctx.store.session() as db:
            d = self.ctx.store.find(db, owner, slug)
            if pick is None or d is None or not can_view(d, pick.user):
                raise web.HTTPError(404)
        self.set_header("Cache-Control", "private, max-age=60")
        if d.thumbnail:
            self.set_header("Content-Type", "image/png")
            self.finish(d.thumbnail)
            return
        self.set_header("Content-Type", "image/svg+xml")
        self.finish(placeholder_svg(d.framework, self.ctx.policy.frameworks))


def picker_routes(prefix: str) -> list[tuple[str, type]]:
    return [
        (f"{prefix}api/lti/pick", CreatePickHandler),
        (prefix + r"lti/pick/([A-Za-z0-9_-]{20,64})", PickPage),
        (prefix + r"lti/pick/([A-Za-z0-9_-]{20,64})/thumb/([^/]+)/([a-z0-9-]+)", PickThumbnail),
    ]
