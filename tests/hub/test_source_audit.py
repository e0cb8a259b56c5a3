"""No route serves a dashboard's source to anyone but its owner, and apps hold no hub token.

Every framework example (``tests/examples.py``) is published by one author for
every hub user. A viewer who is not the owner, let in by the service's open
flow, asks the launcher for the source in every form a Jupyter, Voilà, Dash,
Bokeh, Panel or Streamlit server knows, and for the launcher's start-up log;
no answer carries a line of the source. The ``notebook`` example runs
per-viewer: its viewer owns the instance and may read the notebook (it runs
their code), so there it is another user who tries. Then the process
environments: the launcher of a shared dashboard holds its server's hub
token; the app it runs, and every process below it (Voilà's kernels), hold
no hub token, no hub_viz secret and no copy of either.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil
import pytest
import requests

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS

from ..conftest import BROWSER_UA, Hub
from ..examples import EXAMPLES

pytestmark = pytest.mark.hub

AUTHOR, VIEWER, OTHER = "sa-author", "sa-viewer", "sa-other"
# example -> a line of its source that its output never shows
MARKERS = {
    "voila-example": "range(1, 101)",
    "dash-example": "range(1, 201)",
    "bokeh-example": "range(1, 301)",
    "panel-example": "range(1, 401)",
    "streamlit-example": "range(1, 501)",
    "notebook-example": "range(1, 601)",
}
SHARED = [name for name, (spec, _) in EXAMPLES.items() if spec.get("mode") != "per-viewer"]
# Under the server's prefix; {entry} is the entry file's name (app.py, dashboard.ipynb, ...).
SOURCE_PATHS = (
    "",
    "./",
    "{entry}",
    "./{entry}",
    "{entry}/",
    "{entry}?raw=1",
    "{entry}?download=1",
    "app.py",
    "main.py",
    "%2E%2E/{entry}",
    "..%2F{entry}",
    "static/../{entry}",
    "static/{entry}",
    "files/{entry}",
    "files/",
    "tree",
    "tree/{entry}",
    "lab/tree/{entry}",
    "notebooks/{entry}",
    "edit/{entry}",
    "view/{entry}",
    "nbconvert/script/{entry}",
    "api/contents",
    "api/contents/{entry}",
    "api/contents/{entry}?content=1&format=text",
    "?voila-template=classic",
    "?voila-template=lab&voila-theme=dark",
    "voila/render/{entry}",
    "voila/files/{entry}",
    "voila/files/%2E%2E/{entry}",
    "voila/tree",
    "app",
    "app/",
    "app/{entry}",
    "app/static/{entry}",
    "app/static/../{entry}",
    "assets/{entry}",
    "assets/../{entry}",
    "_dash-component-suites/../{entry}",
    "_dash-layout?{entry}",
    "_stcore/{entry}",
    "media/{entry}",
    "component/{entry}",
    "_hub_viz/status",
    "_hub_viz/log",
    "_hub_viz/logs",
    "_hub_viz/../{entry}",
    "_hub_viz/status/../../{entry}",
    ".ipynb_checkpoints/",
    "api/kernels",
    "api/sessions",
)
STATUS_KEYS = {"state", "framework", "elapsed"}  # all a viewer learns from _hub_viz/status


def slug(example: str) -> str:
    return "sa-" + example.removesuffix("-example")


@pytest.fixture(scope="module")
def instances(hub: Hub) -> Iterator[dict[str, dict]]:
    """Every example published for every hub user and opened by VIEWER."""
    for name in (AUTHOR, VIEWER, OTHER):
        hub.ensure_user(name)
    for example, (spec, _) in EXAMPLES.items():
        r = hub.svc(
            "POST",
            "dashboards",
            AUTHOR,
            json={"slug": slug(example), "title": example, "visibility": "all", **spec},
        )
        assert r.status_code == 201, r.text
    opened = {}
    for example in EXAMPLES:
        body = hub.open_ready(AUTHOR, slug(example), VIEWER)
        owner, name = body["server"].split("/", 1)
        session = requests.Session()
        session.headers["User-Agent"] = BROWSER_UA
        assert session.get(hub.public(body["url"]), timeout=60).status_code == 200
        opened[example] = {
            "owner": owner,
            "name": name,
            "session": session,
            "base": hub.at(f"/user/{owner}/{name}/"),
        }
    yield opened
    for example in EXAMPLES:
        hub.svc("DELETE", f"dashboards/{AUTHOR}/{slug(example)}", AUTHOR)


def entry_name(example: str) -> str:
    return Path(EXAMPLES[example][0]["entry"]).name


def assert_no_source(
    session: requests.Session, base: str, example: str, headers: dict | None = None
) -> dict[str, int]:
    """Ask for every source path (as is and following redirects); the statuses seen."""
    marker, seen = MARKERS[example], {}
    for template in SOURCE_PATHS:
        path = template.format(entry=entry_name(example))
        for follow in (False, True):
            r = session.get(base + path, headers=headers, timeout=60, allow_redirects=follow)
            assert marker not in r.text, f"{path} served the source ({r.status_code})"
            assert "Traceback" not in r.text, path
            if not follow:
                seen[path] = r.status_code
    return seen


@pytest.mark.parametrize("example", SHARED)
def test_no_route_serves_a_shared_apps_source_to_a_viewer(
    hub: Hub, instances, example: str
) -> None:
    inst = instances[example]
    assert inst["owner"] == AUTHOR  # the viewer is not the owner
    session, base = inst["session"], inst["base"]
    assert session.get(base, timeout=60).status_code == 200  # the viewer does see the app
    seen = assert_no_source(session, base, example)
    framework = BUILTIN_FRAMEWORKS[EXAMPLES[example][0]["framework"]]
    jupyter_paths = ("api/contents", "api/kernels", "api/sessions", "files/")
    if framework.jupyter_api != "none":
        # a Jupyter server runs (Voilà): its routes never reach it
        for path in jupyter_paths:
            assert seen[path] == 403, (path, seen[path])
    else:
        # no Jupyter server to protect: those paths are the app's own (its page or its
        # 404, as bare), and none served the source (checked above)
        assert all(seen[path] != 403 for path in jupyter_paths), seen
    # the start-up log is the owner's: a viewer gets the state only
    assert set(session.get(base + "_hub_viz/status", timeout=30).json()) == STATUS_KEYS
    # even with a grant of their own in the header the service uses to read the log
    url = hub.open_ready(AUTHOR, slug(example), VIEWER)["url"]
    grant = parse_qs(urlsplit(url).query)["grant_token"][0]
    r = session.get(
        base + "_hub_viz/status", timeout=30, headers={"Authorization": f"HubVizGrant {grant}"}
    )
    assert set(r.json()) == STATUS_KEYS
    # and the service's logs endpoint answers the author only
    r = hub.svc("GET", f"dashboards/{AUTHOR}/{slug(example)}/logs", VIEWER)
    assert r.status_code == 403 and "Only" in r.json()["message"]
    assert MARKERS[example] not in r.text
    # while the owner does read it there
    logs = hub.svc("GET", f"dashboards/{AUTHOR}/{slug(example)}/logs", AUTHOR)
    assert logs.status_code == 200 and logs.json()["state"] == "ready", logs.text
    assert isinstance(logs.json()["log"], list)


def test_nobody_else_reads_a_per_viewer_notebook(hub: Hub, instances) -> None:
    """The notebook is the viewer's own instance; the author and other users get 403."""
    inst = instances["notebook-example"]
    assert inst["owner"] == VIEWER
    for intruder in (OTHER, AUTHOR):
        token = {"Authorization": f"token {hub.user_token(intruder)}"}
        seen = assert_no_source(requests.Session(), inst["base"], "notebook-example", token)
        # all refused by the launcher, but '..' paths the proxy resolves out of the
        # server's route: on the isolated layout no route there (the proxy's 404)
        assert {p: c for p, c in seen.items() if c != 403} == {
            p: 404 if hub.layout.isolated else 302 for p in seen if p.startswith("%2E%2E")
        }, seen
        # without a token: sent to the open page, which would open their own instance
        r = requests.get(inst["base"] + "api/contents", allow_redirects=False, timeout=30)
        assert r.status_code == 302
        assert r.headers["Location"] == hub.open_location(AUTHOR, slug("notebook-example"))


# -- what the processes hold --------------------------------------------------------------

# Credentials and hub_viz settings the launcher holds and the app must not.
APP_MAY_HOLD = {
    "dash-example": {"HUB_VIZ_DASH_ENTRY"},  # the entry file the Dash runner loads
    "notebook-example": {"JUPYTER_TOKEN"},  # JupyterLab's own random token (the app token)
}
JUPYTER_CLIENT_VARS = {"JPY_PARENT_PID", "JPY_SESSION_NAME"}  # set for kernels: not secrets
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY", "CRYPT")


def environ(pid: int) -> dict[str, str]:
    """A process's environment as /proc/<pid>/environ holds it."""
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def launcher_of(owner: str, server: str) -> psutil.Process:
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "hub_viz.launcher" not in cmdline and "hub-viz-launch" not in cmdline:
            continue
        try:
            env = environ(proc.pid)
        except OSError:
            continue
        if (env.get("JUPYTERHUB_USER"), env.get("JUPYTERHUB_SERVER_NAME")) == (owner, server):
            return proc
    raise AssertionError(f"no launcher for {owner}/{server}")


def secrets_of(hub: Hub, launcher_env: dict[str, str]) -> dict[str, str]:
    """Values no app may hold: hub tokens and hub_viz's secret files."""
    state = hub.log.parent
    values = {"server token": launcher_env["JUPYTERHUB_API_TOKEN"], "tester token": hub.token}
    for name in ("hub_viz_embed_secret", "hub_viz_lti_secret", "cookie_secret"):
        path = state / name
        if path.is_file():
            values[name] = path.read_text(errors="replace").strip()
    key = state / "hub_viz_signing_key.pem"
    if key.is_file():  # the private key's body
        values["signing key"] = "".join(key.read_text().splitlines()[1:-1])[:40]
    return {what: v for what, v in values.items() if len(v) >= 16}


def forbidden(name: str, value: str, example: str) -> bool:
    if name in APP_MAY_HOLD.get(example, set()) or name in JUPYTER_CLIENT_VARS:
        return False
    if name.startswith(("JUPYTERHUB_", "JPY_", "HUB_VIZ_")) or name == "JUPYTER_TOKEN":
        return True
    # any other credential-like name the hub or hub_viz put there (not the machine's own)
    return any(w in name.upper() for w in SECRET_WORDS) and os.environ.get(name) != value


@pytest.mark.parametrize("example", list(EXAMPLES))
def test_an_apps_environment_holds_no_hub_token(hub: Hub, instances, example: str) -> None:
    inst = instances[example]
    launcher = launcher_of(inst["owner"], inst["name"])
    launcher_env = environ(launcher.pid)
    below = launcher.children(recursive=True)  # the app, and Voilà's kernels under it
    assert below, "the launcher runs its app as a child"
    if example == "voila-example":
        assert len(below) >= 2, "Voilà and the viewer's kernel"
    secrets = secrets_of(hub, launcher_env)
    assert "server token" in secrets and "signing key" in secrets
    for proc in below:
        env = environ(proc.pid)
        leaked = {k for k, v in env.items() if forbidden(k, v, example)}
        assert leaked == set(), (proc.cmdline()[:3], leaked)
        for what, secret in secrets.items():
            assert not any(secret in v for v in env.values()), (proc.cmdline()[:3], what)


def test_what_the_launcher_holds(hub: Hub, instances) -> None:
    """The launcher's own credentials: its server's token and the service's public key."""
    inst = instances["dash-example"]
    env = environ(launcher_of(inst["owner"], inst["name"]).pid)
    credentials = {
        k for k in env if any(w in k.upper() for w in SECRET_WORDS) and os.environ.get(k) != env[k]
    }
    assert credentials == {"JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "HUB_VIZ_SERVICE_KEY"}, (
        credentials
    )
    assert env["JPY_API_TOKEN"] == env["JUPYTERHUB_API_TOKEN"]  # the hub's old name for it
    assert "PRIVATE KEY" not in env["HUB_VIZ_SERVICE_KEY"]  # only the public half
    assert "PUBLIC KEY" in env["HUB_VIZ_SERVICE_KEY"]


def test_the_server_token_only_reports_activity_and_admits_viewers(hub: Hub, instances) -> None:
    """What an app that reads its launcher's token from /proc could do with it: no more."""
    inst = instances["dash-example"]
    token = environ(launcher_of(inst["owner"], inst["name"]).pid)["JUPYTERHUB_API_TOKEN"]
    auth = {"Authorization": f"token {token}"}
    me = requests.get(f"{hub.url}/hub/api/user", headers=auth, timeout=30).json()
    assert me["name"] == AUTHOR
    server = f"{AUTHOR}/{inst['name']}"
    assert set(me["scopes"]) <= {
        f"access:servers!server={server}",
        f"users:activity!server={server}",
        f"users:activity!user={AUTHOR}",
        f"read:users:name!user={AUTHOR}",
        f"read:users:groups!user={AUTHOR}",
        f"read:users:activity!user={AUTHOR}",
        f"read:users!user={AUTHOR}",
    }, me["scopes"]
    # not its owner's servers, users or tokens on the hub
    for method, path in (
        ("POST", f"/users/{AUTHOR}/servers/other"),
        ("DELETE", f"/users/{AUTHOR}/servers/{inst['name']}"),
        ("GET", f"/users/{AUTHOR}/tokens"),
        ("POST", f"/users/{AUTHOR}/tokens"),
        ("GET", "/users"),
        ("POST", f"/shares/{AUTHOR}/{inst['name']}"),
    ):
        r = requests.request(method, f"{hub.url}/hub/api{path}", headers=auth, json={}, timeout=30)
        assert r.status_code in (403, 404), (method, path, r.status_code)
    # nor the service as its owner: no dashboards to list, change or unpublish
    for method, path in (
        ("GET", "dashboards"),
        ("GET", f"dashboards/{AUTHOR}/sa-dash/logs"),
        ("DELETE", f"dashboards/{AUTHOR}/sa-dash"),
    ):
        r = requests.request(method, f"{hub.service_url}api/{path}", headers=auth, timeout=30)
        assert r.status_code in (401, 403), (method, path, r.status_code)
    assert hub.svc("GET", f"dashboards/{AUTHOR}/sa-dash", AUTHOR).status_code == 200
    # nor another dashboard of the same owner
    other = instances["streamlit-example"]["base"]
    r = requests.get(other, headers=auth, timeout=30, allow_redirects=False)
    assert r.status_code == 403
