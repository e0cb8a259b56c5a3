"""Fixtures: a real JupyterHub with configurable-http-proxy and real dashboard apps.

The hub runs as a subprocess from a generated config; a service token with
only the scopes the tests need drives its REST API; users log in through the
login form like a person would. When a test fails, the tail of the hub's log
(which includes every launcher's and app's output) is attached to the report.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

import pytest
import requests

from hub_viz.layout import Layout

from .tls import make_wildcard_cert

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"
PASSWORD = "test-password-" + secrets.token_hex(4)
SERVICE = "/services/hub-viz/"
# The isolated layout's hub host in tests and the demo: every *.localhost is loopback,
# and hub.localhost is a site of its own, so its subdomains are same-site as in production.
ISOLATED_DOMAIN = "hub.localhost"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0"

_LOGS: list[Path] = []


def wait_until(
    check: Callable[[], Any], timeout: float = 60, what: str = "", every: float = 0.25
) -> Any:
    """Poll ``check`` until it returns something true (returned), else fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"gave up after {timeout:g} s waiting for {what or check}")


def need_localhost_names() -> None:
    """The isolated layout's hosts (``*.hub.localhost``) must resolve to loopback here."""
    try:
        socket.getaddrinfo(f"a.{ISOLATED_DOMAIN}", 80)
    except OSError:
        reason = (
            f"*.{ISOLATED_DOMAIN} does not resolve: install nss-myhostname "
            "(apt-get install libnss-myhostname), which .ci/run does"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def alive(pid: int) -> bool:
    """Is ``pid`` running (neither gone nor a zombie)?"""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proxy_path() -> str:
    """PATH with configurable-http-proxy first: the project's ``node_modules``, else one on
    PATH, else installed into ``node_modules`` with npm now (as ``hub-viz demo`` does)."""
    from hub_viz.demo import ensure_proxy

    return f"{ensure_proxy(REPO)}{os.pathsep}{os.environ.get('PATH', '')}"


@dataclass
class Hub:
    """A running hub: its public URL, a tester token and helpers."""

    url: str
    token: str
    log: Path
    root: Path
    proc: subprocess.Popen
    sessions: dict[str, requests.Session] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    layout: Layout = field(default_factory=Layout)

    @property
    def service_url(self) -> str:
        """The service's public prefix (on its own host on the isolated layout)."""
        return self.layout.service_url if self.layout.isolated else f"{self.url}{SERVICE}"

    def open_location(self, owner: str, slug: str) -> str:
        """Where a launcher sends a visitor without a grant: the dashboard's open page, a
        path on the hub's host, or on the isolated layout the service's absolute URL."""
        prefix = self.layout.service_url if self.layout.isolated else SERVICE
        return f"{prefix}open/{owner}/{slug}"

    def at(self, path: str) -> str:
        """A hub path as a browser reaches it: ``/user/<owner>/<server>/...`` on the
        server's own host on the isolated layout, anything else on the hub's."""
        parts = path.split("/", 4)
        if len(parts) >= 4 and parts[1] == "user" and parts[3] and self.layout.isolated:
            owner, server = unquote(parts[2]), unquote(parts[3].split("?", 1)[0])
            rest = parts[4] if len(parts) > 4 else parts[3][len(server) :]
            return self.server_url(owner, server) + rest
        return self.url + path

    def public(self, url: str) -> str:
        """A URL the service or the hub gave (a path, or absolute) as one to fetch."""
        return urljoin(self.url + "/", url)

    def server_url(self, owner: str, name: str) -> str:
        """A server's public URL (on its owner's host on the isolated layout)."""
        path = self.layout.server_path(owner, name)
        return self.layout.server_url(owner, name) if self.layout.isolated else self.url + path

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"token {self.token}"}
        return requests.request(
            method, f"{self.url}/hub/api{path}", headers=headers, timeout=60, **kwargs
        )

    def ensure_user(self, name: str) -> None:
        r = self.api("POST", f"/users/{name}")
        assert r.status_code in (201, 409), r.text

    def login(self, name: str) -> requests.Session:
        """A browser-like session logged in through the hub's login form."""
        if name in self.sessions:
            return self.sessions[name]
        s = requests.Session()
        s.get(f"{self.url}/hub/login", timeout=30)
        r = s.post(
            f"{self.url}/hub/login",
            data={"username": name, "password": PASSWORD, "_xsrf": s.cookies.get("_xsrf")},
            timeout=30,
        )
        assert r.status_code == 200 and "/hub/home" in r.url, (r.status_code, r.url)
        self.sessions[name] = s
        return s

    def fresh_login(self, name: str) -> requests.Session:
        """A new browser-like session (desktop User-Agent) logged in through the login form."""
        s = requests.Session()
        s.headers["User-Agent"] = BROWSER_UA
        s.get(f"{self.url}/hub/login", timeout=30)
        r = s.post(
            f"{self.url}/hub/login",
            timeout=30,
            data={"username": name, "password": PASSWORD, "_xsrf": s.cookies.get("_xsrf")},
        )
        assert r.status_code == 200 and "/hub/home" in r.url, (r.status_code, r.url)
        return s

    def open_ready(self, owner: str, slug: str, viewer: str | None) -> dict:
        """The service's open answer once the server runs (its URL carries a grant)."""
        body: dict = {}
        for _ in range(3):
            r = self.svc("POST", f"dashboards/{owner}/{slug}/open", viewer)
            assert r.status_code == 200, r.text
            body = r.json()
            if body["status"] == "ready":
                return body
            self.wait(*body["server"].split("/", 1))
        raise AssertionError(f"{owner}/{slug} did not open for {viewer}: {body}")

    def start(self, user: str, server: str, spec: dict | None = None) -> requests.Response:
        self.ensure_user(user)
        return self.api("POST", f"/users/{user}/servers/{server}", json=spec or {})

    def wait(self, user: str, server: str, timeout: float = 120) -> dict:
        """Wait until the server is ready or its spawn ended; return its model (or {})."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.api("GET", f"/users/{user}").json()
            server_model = model.get("servers", {}).get(server)
            if server_model is None:
                return {}
            if server_model["ready"]:
                return server_model
            time.sleep(0.25)
        raise AssertionError(f"{user}/{server} did not become ready in {timeout} s")

    def stop(self, user: str, server: str) -> None:
        r = self.api("DELETE", f"/users/{user}/servers/{server}", json={"remove": True})
        assert r.status_code in (202, 204, 404), r.text
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if server not in self.api("GET", f"/users/{user}").json().get("servers", {}):
                return
            time.sleep(0.25)

    def user_token(self, name: str) -> str:
        """An API token of ``name`` (with the user's own scopes)."""
        if name not in self.tokens:
            self.ensure_user(name)
            r = self.api("POST", f"/users/{name}/tokens", json={"note": "tests"})
            assert r.status_code == 201, r.text
            self.tokens[name] = r.json()["token"]
        return self.tokens[name]

    def svc(self, method: str, path: str, user: str | None, **kwargs: Any) -> requests.Response:
        """Call the hub_viz service API as ``user`` (token auth), or anonymously."""
        headers = {"User-Agent": BROWSER_UA, **kwargs.pop("headers", {})}
        if user:
            headers["Authorization"] = f"token {self.user_token(user)}"
        return requests.request(
            method,
            f"{self.service_url}api/{path}",
            headers=headers,
            timeout=120,
            allow_redirects=False,
            **kwargs,
        )

    @contextlib.contextmanager
    def published(
        self, author: str, slug: str, spec: dict, *, viewers: tuple = (), **fields: Any
    ) -> Iterator[dict]:
        """``spec`` published by ``author`` as ``slug`` (with ``fields``: title, visibility,
        …), the author and ``viewers`` made first; unpublished afterwards."""
        for name in (author, *viewers):
            self.ensure_user(name)
        r = self.svc("POST", "dashboards", author, json={"slug": slug, **spec, **fields})
        assert r.status_code == 201, r.text
        try:
            yield r.json()
        finally:
            self.svc("DELETE", f"dashboards/{author}/{slug}", author)

    def spawn_message(self, user: str, server: str) -> str:
        """The text the owner sees on the hub's spawn-pending page."""
        return (
            self.login(user).get(f"{self.url}/hub/spawn-pending/{user}/{server}", timeout=30).text
        )


# Every test hub offers one profile and caps what one instance may use.
RESOURCES = {
    "profiles": {"small": {"display_name": "Small", "cpu_limit": 1, "mem_limit": "1G"}},
    "resource_ceiling": {"cpu": 2, "memory": "4G"},
}

# Test hubs serve dashboards on the hub's own origin (path-based): these authors may
# publish beyond 'private' (configure(publishers=...)); every other user publishes
# 'private' only (tests/hub/test_publishers.py shows the limit).
PUBLISHERS = [
    "api-owner",
    "api.pat+viz@example.org",
    "embed-author",
    "ph-owner",
    "prof-browser",
    "am-author",
    "teacher",
    "idle-owner",
    "kf-author",
    "lti-teacher",
    "pages-author",
    "fault-owner",
    "sa-author",
    "smoke-author",
    "git-author",
    "cli-author",
    "restart-owner",
    "fuzz-author",
    "k8s-prof",
    "bench-author",
    "ada",
    "grace",
    "lr-author",
    "harden-author",
]

HUB_CONFIG = """
from hub_viz.config import configure

configure(
    c,
    dashboards_root={root!r},
    run_as_hub_user=True,
    allowed_frameworks=["voila", "dash", "bokeh", "panel", "streamlit", "notebook", "gradio",
                        "shiny", "marimo", "solara", "nicegui", "custom"],
    dashboards={{
        "preset-dash": {{"title": "Sales (preset)", "framework": "dash", "entry": "dash/app.py"}},
    }},
    state_dir={state_str!r},
    proxy_url="http://127.0.0.1:{port}",
    service_port={service_port},
    git_schemes=["https", "file"],
    publish={publish!r},
    **{configure_kwargs!r},
)
c.DashboardLocalSpawner.app_ready_timeout = {ready_timeout}
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = {pid_file!r}
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {password!r}
c.Authenticator.allow_all = True
c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{state}/cookie_secret"
c.JupyterHub.services.append({{"name": "tester", "api_token": {token!r}}})
c.JupyterHub.load_roles.append(
    {{"name": "tester", "scopes": ["admin:users", "admin:servers", "admin:groups", "tokens", "read:shares"], "services": ["tester"]}}
)
c.JupyterHub.log_level = "DEBUG" if {debug} else "INFO"
"""

CRASHING_APP = """
import dash

raise RuntimeError("the data file sales.csv is missing")
app = dash.Dash(__name__)
"""

SLOW_START_APP = """
import http.server
import sys
import time

port, prefix = int(sys.argv[1]), sys.argv[2]
print("warming up the model", flush=True)
time.sleep(4)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"custom app answer {6 * 7} at {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""

SLOW_APP = """
import time

time.sleep(3600)
"""


def make_dashboards_root(path: Path) -> Path:
    """The examples plus apps that fail on purpose (kept when the hub restarts)."""
    if path.exists():
        return path
    shutil.copytree(EXAMPLES, path)
    (path / "broken").mkdir()
    (path / "broken" / "crash.py").write_text(CRASHING_APP)
    (path / "broken" / "slow.py").write_text(SLOW_APP)
    (path / "custom").mkdir()
    (path / "custom" / "slow_start.py").write_text(SLOW_START_APP)
    return path


def start_hub(
    state: Path,
    *,
    ready_timeout: float = 60,
    extra_config: str = "",
    publish: list[dict[str, Any]] | None = None,
    port: int | None = None,
    token: str | None = None,
    configure_kwargs: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    cleanup_servers: bool | None = True,
    isolated: bool = False,
    https: bool = False,
) -> Hub:
    """A hub from the generated config; ``configure_kwargs`` go to ``configure()`` as well,
    ``env`` to the hub's environment (e.g. ``KUBECONFIG``). ``cleanup_servers`` is
    ``JupyterHub.cleanup_servers``: True (a test hub stops its servers when it stops) or
    None (what ``configure()`` sets). ``isolated`` runs it on the isolated layout, at
    ``http://hub.localhost:<port>`` (the service and each user on hosts of their own);
    with ``https`` too, on ``https://`` with a wildcard certificate of a throw-away CA
    (``state/tls/ca.pem``: the caller makes ``requests`` trust it, e.g. with
    ``REQUESTS_CA_BUNDLE``, before the hub starts)."""
    root = make_dashboards_root(state / "dashboards")
    port = port or free_port()
    if isolated:
        need_localhost_names()
        scheme = "https" if https else "http"
        configure_kwargs = {
            "subdomain_host": f"{scheme}://{ISOLATED_DOMAIN}:{port}",
            **(configure_kwargs or {}),
        }
    if https:
        tls = make_wildcard_cert(state / "tls", ISOLATED_DOMAIN)
        extra_config += (
            f"c.JupyterHub.ssl_cert = {str(tls['cert'])!r}\n"
            f"c.JupyterHub.ssl_key = {str(tls['key'])!r}\n"
        )
    token = token or secrets.token_hex(16)
    config = state / "jupyterhub_config.py"
    config.write_text(
        textwrap.dedent(
            HUB_CONFIG.format(
                root=str(root),
                port=port,
                hub_port=free_port(),
                proxy_api_port=free_port(),
                pid_file=str(state / "proxy.pid"),
                password=PASSWORD,
                state=state,
                state_str=str(state),
                token=token,
                ready_timeout=ready_timeout,
                service_port=free_port(),
                publish=publish or [],
                # activity reaches the hub within 2 s unless the test says otherwise
                configure_kwargs={
                    **RESOURCES,
                    "publishers": PUBLISHERS,
                    "activity_interval": 2,
                    **(configure_kwargs or {}),
                },
                debug=bool(os.environ.get("HUB_VIZ_TEST_DEBUG")),
            )
        )
        + (
            f"c.JupyterHub.cleanup_servers = {cleanup_servers!r}\n"
            if cleanup_servers is not None
            else ""
        )
        + extra_config
    )
    subdomain_host = (configure_kwargs or {}).get("subdomain_host", "")
    return run_hub(
        config, port=port, token=token, root=root, env=env or {}, layout=Layout(subdomain_host)
    )


def run_hub(
    config: Path,
    *,
    port: int,
    token: str,
    root: Path,
    env: dict[str, str],
    append_log: bool = False,
    layout: Layout | None = None,
    log: Path | None = None,
) -> Hub:
    """Start JupyterHub from ``config`` (in its folder) and wait for it and the service;
    its output goes to ``log`` (default: ``hub.log`` beside the config)."""
    state = config.parent
    log = log or state / "hub.log"
    full_env = dict(os.environ, PATH=proxy_path(), **env)
    with open(log, "ab" if append_log else "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=state,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=full_env,
        )
    if log not in _LOGS:
        _LOGS.append(log)
    layout = layout or Layout()
    url = layout.hub_origin or f"http://127.0.0.1:{port}"
    service = layout.service_url if layout.isolated else f"{url}{SERVICE}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("jupyterhub exited:\n" + log.read_text()[-4000:])
        try:
            hub_up = requests.get(f"{url}/hub/api/", timeout=2).status_code == 200
            if hub_up and requests.get(f"{service}api/openapi.yaml", timeout=2).ok:
                break
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    else:
        proc.terminate()
        raise RuntimeError("jupyterhub did not start:\n" + log.read_text()[-4000:])
    return Hub(url=url, token=token, log=log, root=root, proc=proc, env=env, layout=layout)


def stop_hub(hub: Hub) -> None:
    hub.proc.terminate()
    try:
        hub.proc.wait(60)
    except subprocess.TimeoutExpired:
        hub.proc.kill()


@contextlib.contextmanager
def running_test_hub(
    state: Path,
    *,
    service: dict[str, Any] | None = None,
    extra_config: str = "",
    **configure_kwargs: Any,
) -> Iterator[Hub]:
    """A module's own hub on the isolated layout with the test profiles (:data:`RESOURCES`),
    ``configure_kwargs`` and the service's settings ``service`` on top; stopped on exit."""
    kwargs = {**RESOURCES, **configure_kwargs}
    if service:
        kwargs["extra_service_config"] = service
    hub = start_hub(state, isolated=True, configure_kwargs=kwargs, extra_config=extra_config)
    try:
        yield hub
    finally:
        stop_hub(hub)


def restart_hub(hub: Hub) -> Hub:
    """Stop ``hub`` and start it again from the same config: same ports, token and state."""
    stop_hub(hub)
    port = int(hub.url.rsplit(":", 1)[1])
    again = run_hub(
        hub.log.parent / "jupyterhub_config.py",
        port=port,
        token=hub.token,
        root=hub.root,
        env=hub.env,
        append_log=True,
        layout=hub.layout,
    )
    again.sessions, again.tokens = hub.sessions, hub.tokens
    return again


@pytest.fixture(scope="session")
def isolated_hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    """A hub on the isolated layout (``hub.localhost``), the default: the service and
    every dashboard on hosts of their own."""
    running = start_hub(tmp_path_factory.mktemp("isolated-hub"), isolated=True)
    yield running
    stop_hub(running)


@pytest.fixture(scope="session")
def path_hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    """A hub on the path-based layout: everything on the hub's origin (127.0.0.1)."""
    running = start_hub(tmp_path_factory.mktemp("hub"))
    yield running
    stop_hub(running)


def both_layouts() -> Any:
    """A module's ``hub`` fixture that runs its tests on both layouts: every dashboard
    on a host of its own, and everything on the hub's origin. In a test module:
    ``hub = both_layouts()``."""

    @pytest.fixture(scope="module", params=["isolated", "path-based"])
    def hub(request: pytest.FixtureRequest) -> Hub:
        return request.getfixturevalue(
            "isolated_hub" if request.param == "isolated" else "path_hub"
        )

    return hub


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL (what a browser sends as ``Origin``)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture(scope="session")
def hub(isolated_hub: Hub) -> Hub:
    """The test hub: the default, isolated layout."""
    return isolated_hub


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.failed and _LOGS:
        for log in _LOGS[-2:]:
            if log.exists():
                report.sections.append((f"hub log {log}", log.read_text(errors="replace")[-6000:]))
