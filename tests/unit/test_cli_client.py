"""The ``hub-viz`` API commands: argument parsing, tables, and the client against a local server.

The server is a real ``http.server`` on localhost that answers like the
service does (JSON bodies, JSON errors) plus the ways a wrong URL or a proxy
answers (HTML, redirects); the client and the CLI run unmodified against it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from hub_viz import __version__
from hub_viz.cli import (
    build_parser,
    dashboards_table,
    format_table,
    make_client,
    publish_body,
    run,
    usage_table,
)
from hub_viz.client import APIError, Client, split_ref

pytestmark = pytest.mark.unit

TOKEN = "good-token"
API = "/services/hub-viz/api/"


def dashboard(owner: str, slug: str, **extra: Any) -> dict[str, Any]:
    return {
        "owner": owner,
        "slug": slug,
        "title": extra.pop("title", slug.title()),
        "framework": "dash",
        "mode": "shared",
        "visibility": "private",
        "status": "stopped",
        "open_url": f"/services/hub-viz/open/{owner}/{slug}",
        "can_manage": True,
        **extra,
    }


RECENT = [
    {
        "server": "alice/sales",
        "started": "2026-12-05T10:00:00.123Z",
        "stopped": None,
        "started_by": "bob",
        "stopped_by": "",
        "stop_reason": "",
    },
    {
        "server": "alice/sales",
        "started": "2026-12-05T08:00:00Z",
        "stopped": "2026-12-05T08:31:05.4Z",
        "started_by": "carol",
        "stopped_by": "",
        "stop_reason": "culled idle",
    },
    {
        "server": "alice/sales",
        "started": "2026-12-04T08:00:00Z",
        "stopped": "2026-12-04T09:00:00Z",
        "started_by": "alice",
        "stopped_by": "alice",
        "stop_reason": "stopped by author",
    },
]


def usage_item(owner: str, slug: str, days: int, **figures: Any) -> dict[str, Any]:
    return {
        "owner": owner,
        "slug": slug,
        "title": slug.title(),
        "days": days,
        "deployments": 0,
        "instance_hours": 0.0,
        "running_share": 0.0,
        "mean_deployment_minutes": 0.0,
        **figures,
    }


# -- a local stand-in for the service ---------------------------------------------------------


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeService:
    url: str
    requests: list[Seen] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, *args: Any) -> None:  # keep the test output quiet
        pass

    def do_GET(self) -> None:
        self.answer()

    def do_POST(self) -> None:
        self.answer()

    def do_DELETE(self) -> None:
        self.answer()

    def send(
        self,
        status: int,
        body: Any = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        raw = (
            b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        )
        self.send_response(status)
        if body is not None:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def error(self, status: int, message: str) -> None:
        self.send(status, {"status": status, "message": message})

    def answer(self) -> None:
        parts = urlsplit(self.path)
        path = parts.path.removeprefix("/jhub")  # the hub may live under a base URL
        query = parse_qs(parts.query)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self.server.seen.append(Seen(self.command, parts.path, query, dict(self.headers), body))

        if not path.startswith(API):
            self.send(404, b"<html><body>404: Not Found</body></html>", "text/html")
            return
        route = (self.command, path[len(API) :])
        if route == ("GET", "redirect"):
            self.send(302, headers={"Location": "/hub/login?next=%2Fservices%2Fhub-viz%2F"})
            return
        if self.headers.get("Authorization") != f"token {TOKEN}":
            self.error(401, "Log in to the hub first.")
            return
        days = int(query.get("days", ["30"])[0])
        match route:
            case ("GET", "dashboards"):
                items = [
                    dashboard("alice", "sales", title="Sales by region"),
                    dashboard(
                        "bob",
                        "lab",
                        mode="per-viewer",
                        visibility="all",
                        status=None,
                        framework="notebook",
                    ),
                ]
                self.send(200, {"items": items})
            case ("GET", "dashboards/alice/sales"):
                self.send(200, dashboard("alice", "sales"))
            case ("GET", "dashboards/a%20b%40x.org/sales"):
                self.send(200, dashboard("a b@x.org", "sales"))
            case ("POST", "dashboards"):
                if body.get("slug") == "taken":
                    self.error(
                        409,
                        "You already have a dashboard named 'taken'; choose another "
                        "slug or update that one.",
                    )
                    return
                if body.get("entry") == "missing.py":
                    self.error(
                        400, "The entry file 'missing.py' does not exist in the dashboards folder."
                    )
                    return
                fields = {
                    k: body[k] for k in ("title", "framework", "mode", "visibility") if k in body
                }
                self.send(201, dashboard("alice", body.get("slug", "from-title"), **fields))
            case ("DELETE", "dashboards/alice/sales"):
                self.send(204)
            case ("DELETE", "dashboards/bob/lab"):
                self.error(403, "Only bob can change bob/lab.")
            case ("GET", "dashboards/alice/sales/usage"):
                self.send(
                    200,
                    usage_item(
                        "alice",
                        "sales",
                        days,
                        deployments=3,
                        instance_hours=12.3456,
                        running_share=0.4567,
                        mean_deployment_minutes=246.9,
                        daily=[],
                        recent=RECENT,
                    ),
                )
            case ("GET", "usage"):
                self.send(
                    200,
                    {
                        "days": days,
                        "items": [
                            usage_item(
                                "alice",
                                "sales",
                                days,
                                deployments=12,
                                instance_hours=101.5,
                                running_share=1.0,
                                mean_deployment_minutes=507.5,
                            ),
                            usage_item("alice", "x", days),
                        ],
                    },
                )
            case ("GET", "usage-empty"):
                self.send(200, {"days": days, "items": []})
            case ("GET", "boom"):
                self.send(500, b"<html>Internal error</html>", "text/html")
            case ("GET", "not-json"):
                self.send(200, b"<html>the hub's home page</html>", "text/html")
            case ("GET", "bad-gateway-json"):
                self.send(502, {"error": "no message field"})
            case _:
                self.error(404, f"No dashboard {path[len(API) :]} (or you may not see it).")


@pytest.fixture(scope="module")
def running_service() -> Iterator[FakeService]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.seen = []  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    fake = FakeService(f"http://127.0.0.1:{httpd.server_port}")
    fake.requests = httpd.seen  # type: ignore[attr-defined]
    yield fake
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def service(running_service: FakeService) -> FakeService:
    running_service.requests.clear()
    return running_service


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(autouse=True)
def no_hub_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JUPYTERHUB_URL", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)


# -- parsing ------------------------------------------------------------------------------------


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_publish_options_and_body():
    options = parse(
        "publish",
        "sales/app.py",
        "--title",
        "Sales",
        "--slug",
        "sales",
        "--framework",
        "dash",
        "--mode",
        "per-viewer",
        "--visibility",
        "users",
        "--share-user",
        "bob",
        "--share-user",
        "carol",
        "--description",
        "Numbers",
    )
    assert options.func.__name__ == "publish"
    assert (options.hub_url, options.token, options.service) == (None, None, "hub-viz")
    assert publish_body(options) == {
        "entry": "sales/app.py",
        "title": "Sales",
        "slug": "sales",
        "framework": "dash",
        "mode": "per-viewer",
        "description": "Numbers",
        "visibility": "users",
        "share_users": ["bob", "carol"],
    }


def test_publish_minimal_body_leaves_defaults_to_the_service():
    assert publish_body(parse("publish", "app.py", "--title", "T")) == {
        "entry": "app.py",
        "title": "T",
    }


@pytest.mark.parametrize(
    ("argv", "visibility", "users", "groups"),
    [
        (["--share-user", "bob"], "users", ["bob"], None),
        (["--share-group", "class", "--share-group", "staff"], "groups", None, ["class", "staff"]),
        (["--visibility", "all"], "all", None, None),
        (
            ["--visibility", "groups", "--share-user", "bob", "--share-group", "class"],
            "groups",
            ["bob"],
            ["class"],
        ),
    ],
)
def test_publish_visibility_follows_the_share_options(argv, visibility, users, groups):
    body = publish_body(parse("publish", "app.py", "--title", "T", *argv))
    assert body["visibility"] == visibility
    assert body.get("share_users") == users
    assert body.get("share_groups") == groups


def test_publish_git_source():
    body = publish_body(
        parse(
            "publish",
            "app.py",
            "--title",
            "T",
            "--framework",
            "dash",
            "--git-url",
            "https://h.org/r.git",
        )
    )
    assert body["git"] == {"url": "https://h.org/r.git", "ref": "main"}
    body = publish_body(
        parse(
            "publish",
            "app.py",
            "--title",
            "T",
            "--git-url",
            "https://h.org/r.git",
            "--git-ref",
            "v2",
        )
    )
    assert body["git"] == {"url": "https://h.org/r.git", "ref": "v2"}


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--git-ref", "v2"], "--git-ref needs --git-url."),
        (
            ["--share-user", "bob", "--share-group", "class"],
            "Give --visibility users or groups: a dashboard is shared with one kind.",
        ),
    ],
)
def test_publish_option_combinations_refused(argv, message):
    with pytest.raises(APIError) as e:
        publish_body(parse("publish", "app.py", "--title", "T", *argv))
    assert e.value.message == message


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["publish", "app.py"], "the following arguments are required: --title"),
        (["publish", "--title", "T"], "the following arguments are required: ENTRY"),
        (["publish", "app.py", "--title", "T", "--mode", "solo"], "invalid choice: 'solo'"),
        (
            ["publish", "app.py", "--title", "T", "--visibility", "friends"],
            "invalid choice: 'friends'",
        ),
        (["open-url", "sales"], "expected OWNER/SLUG"),
        (["open-url", "alice/sales/extra"], "expected OWNER/SLUG"),
        (["unpublish", "/sales"], "expected OWNER/SLUG"),
        (["unpublish", "alice/"], "expected OWNER/SLUG"),
        (["unpublish"], "the following arguments are required: OWNER/SLUG"),
        (["usage", "--days", "0"], "must be a whole number from 1 to 366"),
        (["usage", "--days", "367"], "must be a whole number from 1 to 366"),
        (["usage", "--days", "week"], "must be a whole number from 1 to 366"),
        (["list", "--everything"], "unrecognized arguments: --everything"),
        (["nothing"], "invalid choice: 'nothing'"),
        ([], "the following arguments are required: command"),
    ],
)
def test_bad_arguments_exit_with_usage(argv, error, capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(argv)
    assert e.value.code == 2
    assert error in capsys.readouterr().err


def test_dashboard_arguments_and_defaults():
    assert parse("open-url", "alice/sales").dashboard == ("alice", "sales")
    assert parse("unpublish", "a b@x.org/sales").dashboard == ("a b@x.org", "sales")
    usage = parse("usage")
    assert (usage.dashboard, usage.days, usage.json) == (None, 30, False)
    usage = parse("usage", "alice/sales", "--days", "7", "--json", "--service", "viz")
    assert (usage.dashboard, usage.days, usage.json, usage.service) == (
        ("alice", "sales"),
        7,
        True,
        "viz",
    )
    listing = parse("list", "--mine", "--search", "sales region", "--hub-url", "https://h.org")
    assert (listing.mine, listing.search, listing.hub_url) == (
        True,
        "sales region",
        "https://h.org",
    )
    assert parse("frameworks").func.__name__ == "frameworks"
    demo = parse("demo", "--port", "8001")
    assert (demo.ip, demo.port) == ("127.0.0.1", 8001)


def test_split_ref():
    assert split_ref("alice/sales") == ("alice", "sales")
    for bad in ("alice", "alice/", "/sales", "a/b/c", ""):
        with pytest.raises(ValueError, match="expected OWNER/SLUG"):
            split_ref(bad)


def test_client_settings_from_options_and_environment(monkeypatch):
    client = make_client(parse("list", "--token", "t"))
    assert client.api_url == "http://127.0.0.1:8000/services/hub-viz/api/"
    monkeypatch.setenv("JUPYTERHUB_URL", "https://hub.example.org/jhub")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "from-env")
    client = make_client(parse("list", "--service", "viz"))
    assert client.token == "from-env"
    assert client.api_url == "https://hub.example.org/jhub/services/viz/api/"
    # options win over the environment
    client = make_client(parse("list", "--hub-url", "http://h:1/", "--token", "opt"))
    assert (client.hub_url, client.token) == ("http://h:1/", "opt")


def test_missing_token_is_explained(monkeypatch):
    with pytest.raises(APIError) as e:
        make_client(parse("list"))
    assert "No hub API token" in e.value.message
    assert "--token" in e.value.message and "JUPYTERHUB_API_TOKEN" in e.value.message
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "")
    with pytest.raises(APIError, match="No hub API token"):
        make_client(parse("list"))


# -- tables ---------------------------------------------------------------------------------


def test_format_table_pads_and_aligns():
    text = format_table(
        ("NAME", "N", "NOTE"), [("a", 1, "x"), ("long-name", 1234, None)], right=(1,)
    )
    assert text.splitlines() == [
        "NAME          N  NOTE",
        "a             1  x",
        "long-name  1234",
    ]
    assert format_table(("A", "B"), []) == "A  B"


def test_dashboards_table():
    text = dashboards_table(
        [
            dashboard("alice", "sales", title="Sales by region"),
            dashboard(
                "bob",
                "lab",
                mode="per-viewer",
                visibility="all",
                status=None,
                framework="notebook",
                title="Lab",
            ),
        ]
    )
    assert text.splitlines() == [
        "DASHBOARD    FRAMEWORK  MODE        VISIBILITY  STATUS   TITLE",
        "alice/sales  dash       shared      private     stopped  Sales by region",
        "bob/lab      notebook   per-viewer  all         -        Lab",
    ]


def test_usage_table_formats_the_figures():
    text = usage_table(
        [
            usage_item(
                "alice",
                "sales",
                30,
                deployments=12,
                instance_hours=101.456,
                running_share=0.87654,
                mean_deployment_minutes=507.25,
            ),
            usage_item("alice", "a-much-longer-slug", 30),
            usage_item(
                "bob",
                "full",
                30,
                deployments=1,
                instance_hours=720,
                running_share=1,
                mean_deployment_minutes=43200,
            ),
        ]
    )
    assert text.splitlines() == [
        "DASHBOARD                 DEPLOYMENTS  INSTANCE-HOURS  RUNNING  MEAN-MINUTES",
        "alice/sales                        12          101.46    87.7%         507.2",
        "alice/a-much-longer-slug            0            0.00     0.0%           0.0",
        "bob/full                            1          720.00   100.0%       43200.0",
    ]


# -- the client against the local service ------------------------------------------------------


def test_client_sends_the_token_and_decodes_json(service):
    client = Client(service.url, TOKEN)
    items = client.dashboards(mine=True, search="sales region")
    assert [d["slug"] for d in items] == ["sales", "lab"]
    seen = service.requests[-1]
    assert (seen.method, seen.path) == ("GET", f"{API}dashboards")
    assert seen.query == {"mine": ["1"], "q": ["sales region"]}
    assert seen.headers["Authorization"] == f"token {TOKEN}"
    assert seen.headers["User-Agent"] == f"hub-viz-cli/{__version__}"
    client.dashboards()
    assert service.requests[-1].query == {}  # no empty parameters


def test_client_quotes_names_in_paths(service):
    client = Client(service.url, TOKEN)
    assert client.dashboard("a b@x.org", "sales")["owner"] == "a b@x.org"
    assert service.requests[-1].path == f"{API}dashboards/a%20b%40x.org/sales"


def test_client_posts_json_and_handles_no_content(service):
    client = Client(service.url + "/", TOKEN)
    d = client.publish({"entry": "app.py", "title": "T", "slug": "new"})
    assert d["slug"] == "new"
    seen = service.requests[-1]
    assert seen.body == {"entry": "app.py", "title": "T", "slug": "new"}
    assert seen.headers["Content-Type"] == "application/json"
    assert client.unpublish("alice", "sales") is None
    assert service.requests[-1].method == "DELETE"


def test_client_open_url_is_absolute_also_under_a_base_url(service):
    client = Client(service.url + "/jhub", TOKEN)
    d = client.dashboard("alice", "sales")
    assert service.requests[-1].path == f"/jhub{API}dashboards/alice/sales"
    # the service's own prefix already includes the base URL; it is joined to the host
    assert (
        client.open_url({"open_url": "/jhub/services/hub-viz/open/alice/sales"})
        == f"{service.url}/jhub/services/hub-viz/open/alice/sales"
    )
    assert client.open_url(d) == f"{service.url}/services/hub-viz/open/alice/sales"


@pytest.mark.parametrize(
    ("call", "status", "message"),
    [
        (
            lambda c: c.dashboard("alice", "missing"),
            404,
            "No dashboard dashboards/alice/missing (or you may not see it).",
        ),
        (lambda c: c.unpublish("bob", "lab"), 403, "Only bob can change bob/lab."),
        (
            lambda c: c.publish({"slug": "taken"}),
            409,
            "You already have a dashboard named 'taken'; choose another slug or update that one.",
        ),
        (
            lambda c: c.publish({"entry": "missing.py"}),
            400,
            "The entry file 'missing.py' does not exist in the dashboards folder.",
        ),
    ],
)
def test_client_errors_carry_the_services_message(service, call, status, message):
    with pytest.raises(APIError) as e:
        call(Client(service.url, TOKEN))
    assert (e.value.status, e.value.message) == (status, message)


def test_client_bad_token(service):
    with pytest.raises(APIError) as e:
        Client(service.url, "wrong").info()
    assert (e.value.status, e.value.message) == (401, "Log in to the hub first.")


def test_client_errors_without_a_json_message(service):
    client = Client(service.url, TOKEN)
    with pytest.raises(APIError) as e:
        client.request("GET", "boom")
    assert e.value.status == 500
    assert e.value.message == f"HTTP 500 Internal Server Error from {service.url}{API}boom"
    with pytest.raises(APIError) as e:
        client.request("GET", "bad-gateway-json")
    assert e.value.status == 502 and e.value.message.startswith("HTTP 502 Bad Gateway from ")


def test_client_wrong_service_name(service):
    with pytest.raises(APIError) as e:
        Client(service.url, TOKEN, service="nope").info()
    assert e.value.status == 404
    assert "is the service 'nope' running on this hub?" in e.value.message
    assert service.requests[-1].path == "/services/nope/api/info"


def test_client_does_not_follow_redirects(service):
    with pytest.raises(APIError) as e:
        Client(service.url, TOKEN).request("GET", "redirect")
    assert e.value.status == 302
    assert "redirected" in e.value.message and "/hub/login" in e.value.message
    # the API description (where the service is), then the call; never the login page
    assert [r.path for r in service.requests] == [f"{API}openapi.yaml", f"{API}redirect"]


def test_client_looks_for_the_service_once(service):
    client = Client(service.url, TOKEN)
    client.dashboards()
    client.dashboards()
    assert [r.path for r in service.requests].count(f"{API}openapi.yaml") == 1
    # on the path layout it stays on the hub's URL
    assert client.service_url == f"{service.url}/services/hub-viz/"
    # given the service's URL, it asks nothing first
    service.requests.clear()
    Client(service.url, TOKEN, service_url=f"{service.url}/services/hub-viz").dashboards()
    assert [r.path for r in service.requests] == [f"{API}dashboards"]


def test_client_answer_that_is_not_json(service):
    with pytest.raises(APIError) as e:
        Client(service.url, TOKEN).request("GET", "not-json")
    assert e.value.status == 200
    assert "is not JSON" in e.value.message and "--hub-url" in e.value.message


def test_client_without_a_hub(closed_port):
    with pytest.raises(APIError) as e:
        Client(f"http://127.0.0.1:{closed_port}", TOKEN).dashboards()
    assert e.value.status == 0
    assert e.value.message.startswith(f"Cannot reach the hub at http://127.0.0.1:{closed_port}/")


# -- the CLI end to end against the local service ----------------------------------------------


def cli(service: FakeService, *argv: str, token: str = TOKEN) -> int:
    command, *rest = argv
    return run([command, "--hub-url", service.url, "--token", token, *rest])


def test_cli_list(service, capsys):
    assert cli(service, "list", "--mine") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[1].split() == [
        "alice/sales",
        "dash",
        "shared",
        "private",
        "stopped",
        "Sales",
        "by",
        "region",
    ]
    assert service.requests[-1].query == {"mine": ["1"]}


def test_cli_publish_prints_the_open_url(service, capsys):
    assert cli(service, "publish", "app.py", "--title", "Sales", "--slug", "fresh") == 0
    captured = capsys.readouterr()
    assert captured.out == f"{service.url}/services/hub-viz/open/alice/fresh\n"
    assert "Published alice/fresh (dash, shared, private)." in captured.err


def test_cli_open_url_and_unpublish(service, capsys):
    assert cli(service, "open-url", "alice/sales") == 0
    assert capsys.readouterr().out == f"{service.url}/services/hub-viz/open/alice/sales\n"
    assert cli(service, "unpublish", "alice/sales") == 0
    assert capsys.readouterr().err == "Unpublished alice/sales.\n"


def test_cli_usage_table_and_json(service, capsys):
    assert cli(service, "usage", "alice/sales", "--days", "7") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["alice/sales", "3", "12.35", "45.7%", "246.9"]
    # the recent deployments: when each stopped and why
    assert lines[3:] == [
        "SERVER       STARTED              BY     STOPPED              WHY",
        "alice/sales  2026-12-05 10:00:00  bob    running",
        "alice/sales  2026-12-05 08:00:00  carol  2026-12-05 08:31:05  culled idle",
        "alice/sales  2026-12-04 08:00:00  alice  2026-12-04 09:00:00  stopped by author (alice)",
    ]
    assert service.requests[-1].query == {"days": ["7"]}
    assert cli(service, "usage") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines[1:]] == [["alice/sales", "12"], ["alice/x", "0"]]
    assert lines[1].split()[3] == "100.0%"
    assert cli(service, "usage", "--json", "--days", "3") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["days"] == 3 and len(data["items"]) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["open-url", "alice/missing"], "No dashboard dashboards/alice/missing"),
        (["unpublish", "bob/lab"], "Only bob can change bob/lab."),
        (["publish", "app.py", "--title", "T", "--slug", "taken"], "already have a dashboard"),
        (["publish", "app.py", "--title", "T", "--git-ref", "v1"], "--git-ref needs --git-url."),
        (["usage", "alice/other"], "No dashboard dashboards/alice/other/usage"),
    ],
)
def test_cli_errors_go_to_stderr_with_status_1(service, capsys, argv, message):
    assert cli(service, *argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"hub-viz {argv[0]}: ")
    assert message in captured.err
    assert "Traceback" not in captured.err


def test_cli_bad_and_missing_token(service, capsys):
    assert cli(service, "list", token="wrong") == 1
    assert capsys.readouterr().err == "hub-viz list: Log in to the hub first.\n"
    assert run(["list", "--hub-url", service.url]) == 1
    assert "No hub API token" in capsys.readouterr().err
    assert service.requests[-1].headers["Authorization"] == "token wrong"  # nothing sent since


def test_cli_main_exits_with_the_status(service, capsys):
    from hub_viz.cli import main

    with pytest.raises(SystemExit) as e:
        main(["open-url", "alice/missing", "--hub-url", service.url, "--token", TOKEN])
    assert e.value.code == 1
    with pytest.raises(SystemExit) as e:
        main(["open-url", "alice/sales", "--hub-url", service.url, "--token", TOKEN])
    assert e.value.code == 0
    capsys.readouterr()
