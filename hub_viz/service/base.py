"""What every service handler shares: who is asking, JSON errors, finding dashboards."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from jupyterhub.services.auth import (
    HubOAuthCallbackHandler,
    HubOAuthenticated,
    UserNotAllowed,
)
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from tornado import web
from tornado.log import app_log

from ..bots import is_bot  # noqa: F401 (handlers import it from here)
from ..errors import HubVizError
from .accesslog import request_summary, scrub_uri
from .context import ServiceContext
from .dashboards import NotFound, as_json, can_manage, can_view, matches, visible
from .store import Dashboard, store_failure

log = logging.getLogger("hub_viz.service")

MAX_BODY = 256 * 1024  # JSON bodies the API reads (413 above)
MAX_READ = 1024 * 1024  # bodies the server reads at all (connection closed above)
MAX_DEPTH = 32  # arrays and objects inside one another in a JSON body (400 above)


if TYPE_CHECKING:  # a mixin for request handlers; at run time a plain class, so that the
    # handlers' own bases (HubOAuthenticated before RequestHandler) keep their order
    _Handler = web.RequestHandler
else:
    _Handler = object


class ServiceResponses(_Handler):
    """What every response of the service has, whatever its handler (pages, API, static
    files, the OAuth callback, robots.txt): headers that forbid framing and sniffing,
    and log lines without secrets."""

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")
        self.set_header("X-Robots-Tag", "noindex, nofollow")
        # The embed page (embed_handlers.py) is the one response meant to be framed.
        self.set_header("Content-Security-Policy", "frame-ancestors 'none'")

    def _request_summary(self) -> str:
        return request_summary(self)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, web.HTTPError):
            super().log_exception(typ, value, tb)  # a warning with the summary above
            return
        # Tornado adds repr(request), with the URI as sent: not here.
        app_log.error("Uncaught exception %s", self._request_summary(), exc_info=(typ, value, tb))


class StaticFiles(ServiceResponses, web.StaticFileHandler):
    """The service's static files (and /robots.txt), never framed."""


class OAuthCallback(ServiceResponses, HubOAuthCallbackHandler):
    """The hub's OAuth redirect back to the service (its code and state stay out of logs)."""


class BaseHandler(ServiceResponses, HubOAuthenticated, web.RequestHandler):
    """Common base: the service context, the current user, errors as JSON or pages."""

    json_errors = True
    _hub_auth_user_cache: dict[str, Any] | None  # set once resolved (absent before)

    @property
    def ctx(self) -> ServiceContext:
        """The service's shared state (the application's ``hub_viz`` setting)."""
        return self.settings["hub_viz"]

    async def current(self) -> dict[str, Any] | None:
        """The logged-in hub user (None when anonymous), resolved without blocking."""
        if hasattr(self, "_hub_auth_user_cache"):
            return self._hub_auth_user_cache
        model = await self.hub_auth.get_user(self, sync=False)
        if model and model.get("kind", "user") == "user":
            try:
                model = self.check_hub_user(model)
            except UserNotAllowed:
                model = None
        elif model:
            model = None  # services use the hub API, not this one
        self._hub_auth_user_cache = model
        return model

    def check_xsrf_cookie(self) -> None:
        # Tornado calls this before the user is known: skip then (as jupyter_server
        # does). hub_auth.get_user checks it for cookie logins; tokens need no check.
        if not hasattr(self, "_cached_hub_user"):
            return
        super().check_xsrf_cookie()

    async def require_user(self) -> dict[str, Any]:
        user = await self.current()
        if user is None:
            raise web.HTTPError(401, "Log in to the hub first.")
        return user

    def body_json(self) -> Any:
        if len(self.request.body) > MAX_BODY:
            raise web.HTTPError(413, f"The request body is larger than {MAX_BODY // 1024} KB.")
        if not self.request.body:
            return {}
        too_deep = web.HTTPError(
            400,
            "The request body is nested too deeply: at most %d levels of arrays and objects.",
            MAX_DEPTH,
        )
        try:
            data = json.loads(self.request.body)
        except ValueError:
            raise web.HTTPError(400, "The request body is not valid JSON.") from None
        except RecursionError:  # Python's parser gives up about 1,000 levels down
            raise too_deep from None
        if nested_deeper(data, MAX_DEPTH):
            raise too_deep
        return data

    def find_visible(
        self, db: Session, owner: str, slug: str, user: dict[str, Any] | None
    ) -> Dashboard:
        """The dashboard if ``user`` may see it; 404 otherwise (existence is not leaked)."""
        d = self.ctx.store.find(db, owner, slug)
        if d is None or not can_view(d, user):
            raise NotFound(f"No dashboard {owner}/{slug} (or you may not see it).")
        return d

    def find_managed(
        self, db: Session, owner: str, slug: str, user: dict[str, Any] | None
    ) -> Dashboard:
        d = self.find_visible(db, owner, slug, user)
        if not can_manage(d, user):
            raise web.HTTPError(403, f"Only {d.owner} can change {owner}/{slug}.")
        return d

    async def visible_items(
        self, user: dict[str, Any], query: str = "", mine: bool = False
    ) -> list[dict[str, Any]]:
        """The API's objects for every dashboard ``user`` may see, with its status."""
        with self.ctx.store.session() as db:
            rows = visible(db.scalars(select(Dashboard).order_by(Dashboard.title)).all(), user)
        if mine:
            rows = [d for d in rows if d.owner == user["name"]]
        if query:
            rows = [d for d in rows if matches(d, query)]
        statuses = await self.ctx.statuses(rows, user["name"])
        return [
            as_json(
                d, prefix=self.ctx.public_prefix, manage=can_manage(d, user), status=statuses[d.id]
            )
            for d in rows
        ]

    def write_json(self, data: Any, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(data))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, SQLAlchemyError):  # the operator reads what to do
            log.error(
                "%s %s failed: %s",
                self.request.method,
                scrub_uri(self.request.path),
                store_failure(value, self.ctx.store.url).log_message,
            )
            return
        if isinstance(value, HubVizError):
            log.info(
                "%s %s: %s", self.request.method, scrub_uri(self.request.path), value.log_message
            )
            return
        super().log_exception(typ, value, tb)

    def allowed_methods(self) -> list[str]:
        """The methods this handler implements (a 405 names them in ``Allow``)."""
        return [
            m
            for m in self.SUPPORTED_METHODS
            if getattr(type(self), m.lower()) is not getattr(web.RequestHandler, m.lower())
        ]

    def _error_message(self, status_code: int, exc: BaseException | None) -> str:
        if isinstance(exc, SQLAlchemyError):
            return store_failure(exc).message
        if isinstance(exc, HubVizError):
            return exc.message
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
            for start, sentence in _TORNADO_MESSAGES:
                if message.startswith(start):
                    return sentence
            return message
        if status_code >= 500:
            return "Something went wrong in the dashboard service; the operator can see why."
        return _plain_message(status_code, self.request.method or "", self._reason)

    def send_error(self, status_code: int = 500, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, SQLAlchemyError):  # a full disk (507) or a database away (503)
            status_code = store_failure(exc).status_code
        elif isinstance(exc, HubVizError):
            status_code = exc.status_code
        super().send_error(status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = self._error_message(status_code, exc)
        if status_code == 405 and self.allowed_methods():
            self.set_header("Allow", ", ".join(self.allowed_methods()))
        if self.json_errors:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps({"status": status_code, "message": message}))
            return
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.render(
            "error.html",
            status_code=status_code,
            message=message,
            user=None,
            hub_base=self.ctx.hub_base_url,
        )


def nested_deeper(value: Any, limit: int) -> bool:
    """Are arrays and objects nested more than ``limit`` levels in ``value``? (No recursion.)"""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = list(item.values())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


# Tornado's own refusals (it reads every body and path before a handler runs), as sentences.
_XSRF = (
    "A request made with the hub's login cookie needs the X-XSRFToken header; "
    "scripts use a hub API token instead."
)
_TORNADO_MESSAGES = (
    (
        "Invalid body:",
        "The request body does not match its Content-Type; "
        "send JSON with 'Content-Type: application/json'.",
    ),
    ("Invalid unicode in", "The address or its query is not valid UTF-8 text."),
    ("'_xsrf' argument", _XSRF),
    ("XSRF cookie does not match", _XSRF),
)


def _plain_message(status_code: int, method: str, reason: str) -> str:
    """A sentence for errors raised without one (Tornado's own 404 and 405, bare HTTPErrors)."""
    if status_code == 404:
        return "Nothing is here; check the address against the API description (api/openapi.yaml)."
    if status_code == 405:
        return f"This address does not accept {method} requests; see api/openapi.yaml."
    return f"The dashboard service refused the request ({status_code} {reason})."


class NotFoundHandler(BaseHandler):
    """Every address under ``api/`` that no route serves: a JSON 404, whatever the method."""

    def check_xsrf_cookie(self) -> None:
        return  # nothing happens here

    def prepare(self) -> None:
        raise web.HTTPError(404)


class NotFoundPage(NotFoundHandler):
    """Every other address no route serves: the service's 404 page, not Tornado's."""

    json_errors = False

    def prepare(self) -> None:
        raise web.HTTPError(
            404, "Nothing is here; check the address, or find the dashboard in the gallery."
        )
