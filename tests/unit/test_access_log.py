"""The service's access log lines and request summaries carry no secrets."""

from __future__ import annotations

import logging

import pytest
from tornado.httputil import HTTPHeaders, HTTPServerRequest
from tornado.web import Application, HTTPError, RequestHandler

from hub_viz.service.accesslog import log_request, scrub_uri
from hub_viz.service.base import ServiceResponses

pytestmark = pytest.mark.unit

P = "/services/hub-viz/"


@pytest.mark.parametrize(
    ("uri", "logged"),
    [
        (
            P + "api/dashboards/a/b/progress?_xsrf=2|a1b2|c3d4|1700000000",
            P + "api/dashboards/a/b/progress?_xsrf=[secret]",
        ),
        (
            P + "oauth_callback?code=Zx9abc&state=eyJ1dWlkIjo",
            P + "oauth_callback?code=[secret]&state=[secret]",
        ),
        (
            P + "api/dashboards?q=sales&mine=1&token=abc",
            P + "api/dashboards?q=sales&mine=1&token=[secret]",
        ),
        (P + "static/open.js?v=0123abcd", P + "static/open.js?v=0123abcd"),
        (P + "api/dashboards/a/b/usage?days=7", P + "api/dashboards/a/b/usage?days=7"),
        (P + "x?bare-token-value&grant_token=eyJ", P + "x?[secret]&grant_token=[secret]"),
        (P + "embed/eyJhbGciOi.eyJpc3Mi.c2lnbmF0dXJl", P + "embed/[secret]"),
        (
            P + "embed/eyJhbGciOi.eyJpc3Mi.c2lnbmF0dXJl/progress?_xsrf=1",
            P + "embed/[secret]/progress?_xsrf=[secret]",
        ),
        (P + "open/alice/sales", P + "open/alice/sales"),
    ],
)
def test_secrets_in_uris_are_scrubbed(uri: str, logged: str) -> None:
    assert scrub_uri(uri) == logged


def make_handler(uri: str, cls: type[RequestHandler]) -> RequestHandler:
    app = Application()
    request = HTTPServerRequest(
        method="GET", uri=uri, headers=HTTPHeaders(), connection=_Connection()
    )
    request.remote_ip = "192.0.2.7"
    return cls(app, request)


class _Connection:
    def set_close_callback(self, callback: object) -> None:
        pass


class Plain(RequestHandler):
    pass


class Service(ServiceResponses, RequestHandler):
    pass


URI = P + "api/dashboards/a/b/progress?_xsrf=2|SECRETXSRF|c3d4&code=SECRETCODE"


def test_the_access_log_line_has_no_secret(caplog: pytest.LogCaptureFixture) -> None:
    handler = make_handler(URI, Plain)  # whatever the handler (static files too)
    handler.set_status(200)
    with caplog.at_level(logging.INFO, logger="tornado.access"):
        log_request(handler)
    line = caplog.records[-1].getMessage()
    assert line.startswith(
        f"200 GET {P}api/dashboards/a/b/progress?_xsrf=[secret]&code=[secret] (192.0.2.7) "
    ), line
    assert "SECRET" not in caplog.text


def test_refusals_and_crashes_are_logged_without_secrets(caplog: pytest.LogCaptureFixture) -> None:
    handler = make_handler(URI, Service)
    with caplog.at_level(logging.INFO):
        for error in (HTTPError(403, "'_xsrf' argument missing from GET"), RuntimeError("boom")):
            try:
                raise error
            except Exception as e:
                handler.log_exception(type(e), e, e.__traceback__)
    assert "403 GET " + P + "api/dashboards/a/b/progress?_xsrf=[secret]" in caplog.text
    assert "Uncaught exception GET " in caplog.text and "boom" in caplog.text
    assert "SECRET" not in caplog.text


def test_tornados_own_summaries_would_carry_the_secrets(caplog: pytest.LogCaptureFixture) -> None:
    handler = make_handler(URI, Plain)
    with caplog.at_level(logging.INFO):
        try:
            raise RuntimeError("boom")
        except RuntimeError as e:
            handler.log_exception(type(e), e, e.__traceback__)
    assert "SECRETXSRF" in caplog.text  # what ServiceResponses prevents


@pytest.mark.parametrize(
    ("path", "status", "level"),
    [
        (P + "api/embed-origins/alice/sales", 200, logging.DEBUG),  # every launcher, every 10 s
        (P + "api/viewer-access", 200, logging.DEBUG),
        (P + "api/dashboards/alice/sales/ping", 204, logging.DEBUG),  # every viewer, every 30 s
        (P + "embed/eyJhbGciOi.eyJpc3Mi.c2lnbmF0dXJl/ping", 204, logging.DEBUG),
        (P + "api/dashboards/alice/sales/ping", 429, logging.WARNING),  # refusals stay visible
        (P + "api/viewer-access", 403, logging.WARNING),
        (P + "api/dashboards/alice/sales/open", 200, logging.INFO),  # what people do stays info
        (P + "api/dashboards/alice/ping", 200, logging.INFO),  # a dashboard slugged "ping"
    ],
)
def test_routine_polls_are_logged_at_debug_level(caplog, path, status, level) -> None:
    handler = make_handler(path, Plain)
    handler.set_status(status)
    with caplog.at_level(logging.DEBUG, logger="tornado.access"):
        log_request(handler)
    assert caplog.records[-1].levelno == level
