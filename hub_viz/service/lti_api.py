"""``POST S api/lti/can-view``: the hub's LTI login asks whether a deep link may open.

Before it creates a user for a launch that links to a dashboard, the hub's
authenticator (:mod:`hub_viz.lti`) asks the service whether that user, with
the groups the launch gives, may see the dashboard. The caller shows the
secret ``configure()`` keeps in the state folder (``hub_viz_lti_secret``);
the answer is a yes or no about visibility and nothing else. Requests that
came through the public proxy (``X-Forwarded-For``) are not answered: the
hub calls the service directly.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterable
from typing import Any

from tornado import web

from .base import BaseHandler
from .dashboards import can_view
from .lti_picker import picker_routes

USERNAME_MAX = 255


class CanViewHandler(BaseHandler):
    def check_xsrf_cookie(self) -> None:
        return  # no cookies here: the caller authenticates with the shared secret

    def post(self) -> None:
        secret = self.settings.get("hub_viz_lti_secret") or ""
        if not secret or "X-Forwarded-For" in self.request.headers:
            raise web.HTTPError(404)
        given = self.request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {secret}".encode()):
            raise web.HTTPError(403, "Only the hub's LTI login may ask this.")
        body = self.body_json()
        username, groups, dashboard = (
            body.get(k) if isinstance(body, dict) else None
            for k in ("username", "groups", "dashboard")
        )
        owner, _, slug = dashboard.partition("/") if isinstance(dashboard, str) else ("", "", "")
        if not (
            isinstance(username, str)
            and 0 < len(username) <= USERNAME_MAX
            and isinstance(groups, list)
            and all(isinstance(g, str) for g in groups)
            and owner
            and slug
        ):
            raise web.HTTPError(
                400, "Send {username, groups: [...], dashboard: 'owner/slug', admin: false}."
            )
        user: dict[str, Any] = {
            "name": username,
            "groups": groups,
            "admin": body.get("admin") is True,
        }
        with self.ctx.store.session() as db:
            d = self.ctx.store.find(db, owner, slug)
            allowed = d is not None and can_view(d, user)
        self.write_json({"allowed": allowed})


COURSE_PREFIX, INSTRUCTORS_SUFFIX = "course-", "-instructors"
TITLE_SECONDS = 300
_titles: dict[str, tuple[float, str]] = {}


async def course_titles(hub: Any, groups: Iterable[str]) -> dict[str, str]:
    """The course title (or code) of each course group among ``groups``, for the forms
    that offer them: ``course-<40 hex>`` means nothing to a person.

    LTI launches store the course's title and code as the group's properties
    (:mod:`hub_viz.lti`); groups without them are left out. Kept five minutes.
    """
    now, titles = time.monotonic(), {}
    for group in groups:
        if not group.startswith(COURSE_PREFIX):
            continue
        course = group.removesuffix(INSTRUCTORS_SUFFIX)
        expires, title = _titles.get(course, (0.0, ""))
        if expires < now:
            try:
                props = ((await hub.group(course)) or {}).get("properties") or {}
            except Exception:  # a title is never worth failing a form for
                props = {}
            title = str(props.get("lti_context_title") or props.get("lti_context_label") or "")
            _titles[course] = (now + TITLE_SECONDS, title[:200])
        if title:
            titles[group] = f"{title} (instructors)" if group != course else title
    return titles


def lti_routes(prefix: str) -> list[tuple[str, type]]:
    return [(f"{prefix}api/lti/can-view", CanViewHandler), *picker_routes(prefix)]
