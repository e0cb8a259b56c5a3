"""Dashboards that bring their own environment, built from a local wheel folder.

The hub's own environment does not have ``hvtoy``: two versions of it are
written as wheels into a wheelhouse, the hub's only package source. A Voilà
notebook pinning 1.0 (its kernel must see the package) and a Dash app pinning
2.0 run at the same time, each showing its version; a second dashboard with
the same lock reuses the environment; a restarted hub reuses it too; a broken
requirement fails with the resolver's message to the author and a plain one
to viewers; a URL requirement is refused at publish time.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import threading
import time
from pathlib import Path

import nbformat
import pytest
import requests

from ..conftest import Hub, restart_hub, start_hub, stop_hub
from ..wheels import version_package
from .test_service_git import bare_repo

pytestmark = pytest.mark.hub

AUTHOR, VIEWER = "ada", "grace"
PACKAGE = "hvtoy"

DASH_APP = """
import dash
import hvtoy
from dash import html

app = dash.Dash(__name__)
server = app.server
app.layout = html.Div([html.P(f"{hvtoy.greet()} in dash", id="version")])
"""


def notebook(source: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    return nbformat.writes(nb)


def write_dashboard(root: Path, folder: str, files: dict[str, str]) -> None:
    (root / folder).mkdir(exist_ok=True)
    for name, text in files.items():
        (root / folder / name).write_text(text)


SLOW_PACKAGE, SLOW_SECONDS = "hvslow", 3
# Real wheels (bqplot and what it needs) that .ci/run downloads; tests needing them skip
# without it.
WHEELHOUSE = Path(os.environ.get("HUB_VIZ_TEST_WHEELHOUSE", "/nonexistent"))
BQPLOT_NOTEBOOK = """import bqplot
import numpy as np

print("bqplot", bqplot.__version__, "in voila")
x = np.arange(10)
scales = {"x": bqplot.LinearScale(), "y": bqplot.LinearScale()}
bqplot.Figure(marks=[bqplot.Lines(x=x, y=x ** 2, scales=scales)], title="squares")
"""


class SlowWheels(http.server.BaseHTTPRequestHandler):
    """A find-links page whose one wheel takes SLOW_SECONDS to download."""

    wheel: Path

    def do_GET(self, head: bool = False) -> None:
        if self.path.rstrip("/") == "":
            body = f'<a href="{self.wheel.name}">{self.wheel.name}</a>'.encode()
        elif self.path == "/" + self.wheel.name:
            if not head:
                time.sleep(SLOW_SECONDS)
            body = self.wheel.read_bytes()
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def env_hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    state = tmp_path_factory.mktemp("env-hub")
    wheels = state / "wheelhouse"
    version_package(wheels, PACKAGE, ("1.0", "2.0", "3.0"))
    version_package(state / "slow", SLOW_PACKAGE, ("1.0",))
    SlowWheels.wheel = next((state / "slow").glob("*.whl"))
    slow = http.server.ThreadingHTTPServer(("127.0.0.1", 0), SlowWheels)
    threading.Thread(target=slow.serve_forever, daemon=True).start()
    find_links = [str(wheels), f"http://127.0.0.1:{slow.server_port}/"]
    if WHEELHOUSE.is_dir():
        find_links.append(str(WHEELHOUSE))
    hub = start_hub(
        state,
        configure_kwargs={
            "environments": {"no_index": True, "keep_days": 7, "find_links": find_links}
        },
        # the open call answers at once: viewers follow the start's progress
        extra_config='c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}\n',
    )
    root = hub.root
    write_dashboard(
        root,
        "env-voila",
        {
            "show.ipynb": notebook("import hvtoy\nprint(hvtoy.greet() + ' in voila')"),
            "requirements.txt": f"# the notebook's own package\n{PACKAGE}==1.0\n",
        },
    )
    write_dashboard(root, "env-dash", {"app.py": DASH_APP, "requirements.txt": f"{PACKAGE}==2.0\n"})
    # the same requirement spelled differently resolves to the same lock
    write_dashboard(
        root,
        "env-dash-again",
        {"app.py": DASH_APP, "requirements.txt": f"{PACKAGE} == 2.0  # pinned\n"},
    )
    write_dashboard(
        root, "env-early", {"app.py": DASH_APP, "requirements.txt": f"{PACKAGE}==3.0\n"}
    )
    write_dashboard(
        root, "env-broken", {"app.py": DASH_APP, "requirements.txt": f"{PACKAGE}==9.9\n"}
    )
    write_dashboard(
        root,
        "env-slow",
        {
            "app.py": DASH_APP.replace("import hvtoy", "import hvslow as hvtoy"),
            "requirements.txt": f"{SLOW_PACKAGE}==1.0\n",
        },
    )
    write_dashboard(
        root,
        "env-bqplot",
        {"show.ipynb": notebook(BQPLOT_NOTEBOOK), "requirements.txt": "bqplot\n"},
    )
    write_dashboard(
        root,
        "env-url",
        {
            "app.py": DASH_APP,
            "requirements.txt": f"{PACKAGE} @ https://example.org/{PACKAGE}-2.0.whl\n",
        },
    )
    write_dashboard(
        root,
        "env-conda",
        {
            "app.py": DASH_APP,
            # a Binder repository's file: conda's spelling, a python line, pip's list
            "environment.yml": (
                "name: course\nchannels: [conda-forge]\ndependencies:\n"
                f"  - python>=3.10\n  - conda-forge::{PACKAGE}=1\n  - pip\n"
            ),
        },
    )
    holder = {"hub": hub}
    yield holder  # type: ignore[misc]
    stop_hub(holder["hub"])
    slow.shutdown()


def publish(hub: Hub, slug: str, entry: str, **extra: object) -> requests.Response:
    return hub.svc(
        "POST", "dashboards", AUTHOR, json={"title": slug, "slug": slug, "entry": entry, **extra}
    )


def page_text(hub: Hub, body: dict, path: str = "") -> str:
    """The dashboard's page (or ``path`` under it) through the one-time grant."""
    s = requests.Session()
    r = s.get(hub.public(body["url"]), timeout=60)
    assert r.status_code == 200, r.text[:500]
    if path:
        base = r.url.split("?", 1)[0]
        r = s.get(base.rstrip("/") + "/" + path, timeout=60)
        assert r.status_code == 200, r.text[:500]
    return r.text


def environment(hub: Hub, slug: str) -> dict:
    r = hub.svc("GET", f"dashboards/{AUTHOR}/{slug}/logs", AUTHOR)
    assert r.status_code == 200, r.text
    env = r.json().get("environment")
    assert env, r.json()
    return env


def env_record(hub: Hub, key: str) -> dict:
    return json.loads(
        (hub.root.parent / "environments" / "envs" / key / "hub-viz-env.json").read_text()
    )


def test_two_versions_side_by_side_then_shared_and_reused(env_hub: dict) -> None:
    hub: Hub = env_hub["hub"]
    with pytest.raises(ImportError):
        __import__(PACKAGE)  # not in the hub's environment
    for slug, entry in (
        ("env-voila", "env-voila/show.ipynb"),
        ("env-dash", "env-dash/app.py"),
        ("env-dash-again", "env-dash-again/app.py"),
    ):
        r = publish(hub, slug, entry)
        assert r.status_code == 201, r.text

    voila = hub.open_ready(AUTHOR, "env-voila", AUTHOR)
    dash = hub.open_ready(AUTHOR, "env-dash", AUTHOR)
    # both run at once, each in its own environment
    assert f"hello from {PACKAGE} 1.0 in voila" in page_text(hub, voila)
    layout = page_text(hub, dash, "_dash-layout")
    assert f"hello from {PACKAGE} 2.0 in dash" in layout
    assert hub.api("GET", f"/users/{AUTHOR}").json()["servers"]["env-voila"]["ready"]

    # built once: when it was published, or by its first start if that came first
    first = environment(hub, "env-dash")
    assert first["state"] == "ready"
    assert sum(line.startswith("Building environment") for line in first["log"]) == 1
    assert any(f"+ {PACKAGE}==2.0" in line for line in first["log"]), first["log"]
    built = env_record(hub, first["env"])
    # the version keeps the lock it was built from and its environment
    [version] = hub.svc("GET", f"dashboards/{AUTHOR}/env-dash/versions", AUTHOR).json()["items"]
    assert version["environment"]["env"] == first["env"]
    assert (
        hub.root.parent / "environments" / "locks" / f"{version['environment']['lock']}.txt"
    ).is_file()

    # a second dashboard with the same lock: no build, the same environment
    again = hub.open_ready(AUTHOR, "env-dash-again", AUTHOR)
    assert f"hello from {PACKAGE} 2.0 in dash" in page_text(hub, again, "_dash-layout")
    second = environment(hub, "env-dash-again")
    assert second["env"] == first["env"] and second["built_now"] is False
    assert second["log"][-1] == f"Using environment {first['env']} (built before)."
    assert env_record(hub, first["env"]) == built

    # a restarted hub (its instances stopped with it) starts in the same environment
    env_hub["hub"] = hub = restart_hub(hub)
    servers = hub.api("GET", f"/users/{AUTHOR}").json()["servers"]
    assert not servers.get("env-dash", {}).get("ready"), servers  # it starts anew
    dash = hub.open_ready(AUTHOR, "env-dash", AUTHOR)
    assert f"hello from {PACKAGE} 2.0 in dash" in page_text(hub, dash, "_dash-layout")
    after = environment(hub, "env-dash")
    assert after["env"] == first["env"] and after["built_now"] is False
    assert env_record(hub, first["env"]) == built


def test_broken_requirement_resolver_message_to_author_plain_to_viewer(env_hub: dict) -> None:
    hub: Hub = env_hub["hub"]
    hub.ensure_user(VIEWER)
    r = publish(hub, "env-broken", "env-broken/app.py", visibility="users", share_users=[VIEWER])
    assert r.status_code == 201, r.text
    r = hub.svc("POST", f"dashboards/{AUTHOR}/env-broken/open", VIEWER)
    if r.status_code == 200:  # still resolving when the hub answered: follow the progress
        events = progress(hub, "env-broken", VIEWER)
        assert events[-1].get("failed"), events
        viewer_text = " ".join(e.get("message", "") for e in events)
        last = events[-1]["message"]
    else:  # it failed before the hub answered the start
        assert r.status_code == 502, r.text
        viewer_text = last = r.json()["message"]
    assert "No solution found" not in viewer_text and "9.9" not in viewer_text
    assert "could not start" in last, last

    # the author opening it reads the resolver's message too
    r = hub.svc("POST", f"dashboards/{AUTHOR}/env-broken/open", AUTHOR)
    assert r.status_code == 200, r.text
    events = progress(hub, "env-broken", AUTHOR)
    assert events[-1].get("failed") and "No solution found" in events[-1]["message"], events

    build = environment(hub, "env-broken")
    assert build["state"] == "failed"
    # uv's own explanation, with the version that does not exist
    assert "No solution found" in build["message"] and f"{PACKAGE}==9.9" in build["message"]
    logs = hub.svc("GET", f"dashboards/{AUTHOR}/env-broken/logs", AUTHOR).json()
    assert logs["state"] == "failed" and "No solution found" in logs["message"]
    # the viewer cannot read the author's log
    assert hub.svc("GET", f"dashboards/{AUTHOR}/env-broken/logs", VIEWER).status_code in (403, 404)


def progress(hub: Hub, slug: str, user: str) -> list[dict]:
    r = hub.svc("GET", f"dashboards/{AUTHOR}/{slug}/progress", user, stream=True)
    assert r.status_code == 200, r.text
    return [
        json.loads(line[5:])
        for line in r.iter_lines(decode_unicode=True)
        if line and line.startswith("data:")
    ]


def test_url_requirement_is_refused_at_publish(env_hub: dict) -> None:
    hub: Hub = env_hub["hub"]
    r = publish(hub, "env-url", "env-url/app.py")
    assert r.status_code == 400, r.text
    message = r.json()["message"]
    assert "Line 1 of requirements.txt" in message and "URL" in message, message
    assert hub.svc("GET", f"dashboards/{AUTHOR}/env-url", AUTHOR).status_code == 404


def test_viewers_see_the_environment_being_prepared(env_hub: dict) -> None:
    hub: Hub = env_hub["hub"]
    hub.ensure_user(VIEWER)
    r = publish(hub, "env-slow", "env-slow/app.py", visibility="users", share_users=[VIEWER])
    assert r.status_code == 201, r.text
    r = hub.svc("POST", f"dashboards/{AUTHOR}/env-slow/open", VIEWER)
    assert r.status_code == 200 and r.json()["status"] != "ready", r.text
    events = progress(hub, "env-slow", VIEWER)
    assert events[-1].get("ready"), events
    messages = [e.get("message") for e in events]
    assert "Preparing this dashboard's environment…" in messages, messages
    body = hub.open_ready(AUTHOR, "env-slow", VIEWER)
    assert f"hello from {SLOW_PACKAGE} 1.0 in dash" in page_text(hub, body, "_dash-layout")
    # built once (at publish time, or by this start if it came first)
    build = environment(hub, "env-slow")
    assert any(f"+ {SLOW_PACKAGE}==1.0" in line for line in build["log"]), build
    assert sum(line.startswith("Building environment") for line in build["log"]) == 1, build


def need_wheelhouse() -> None:
    """Skip without the wheelhouse of real wheels; in CI (which downloads it) fail."""
    if WHEELHOUSE.is_dir() and list(WHEELHOUSE.glob("bqplot-*.whl")):
        return
    reason = "no wheelhouse with bqplot: set HUB_VIZ_TEST_WHEELHOUSE (.ci/run downloads one)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def test_a_voila_notebook_with_bqplot_from_a_wheelhouse(env_hub: dict) -> None:
    need_wheelhouse()
    hub: Hub = env_hub["hub"]
    with pytest.raises(ImportError):
        __import__("bqplot")  # not in the hub's environment
    wheel = next(WHEELHOUSE.glob("bqplot-*.whl")).name
    version = wheel.split("-")[1]
    r = publish(hub, "env-bqplot", "env-bqplot/show.ipynb")
    assert r.status_code == 201, r.text
    body = hub.open_ready(AUTHOR, "env-bqplot", AUTHOR)
    page = page_text(hub, body)
    assert f"bqplot {version} in voila" in page  # the kernel imported the environment's
    assert "application/vnd.jupyter.widget-view+json" in page  # the figure is a widget
    # and Voilà offers the widget's front-end, found in the environment's Jupyter data
    assert re.search(r'"name":\s*"bqplot"', page), page[:2000]
    build = environment(hub, "env-bqplot")
    assert any(f"+ bqplot=={version}" in line for line in build["log"]), build["log"]


def test_publishing_builds_the_environment_before_anyone_opens_it(env_hub: dict) -> None:
    hub: Hub = env_hub["hub"]
    r = publish(hub, "env-early", "env-early/app.py")
    assert r.status_code == 201, r.text
    # the author reads the build on the manage page while nobody has opened it
    deadline = time.monotonic() + 120
    while True:
        logs = hub.svc("GET", f"dashboards/{AUTHOR}/env-early/logs", AUTHOR).json()
        build = logs.get("environment")
        if build and build["state"] in ("ready", "failed"):
            break
        assert time.monotonic() < deadline, logs
        time.sleep(0.5)
    assert build["state"] == "ready" and build["built_now"] is True, build
    assert any(line.startswith("Building environment") for line in build["log"]), build["log"]
    assert logs["status"] == "stopped"
    assert "env-early" not in hub.api("GET", f"/users/{AUTHOR}").json()["servers"]
    # the first open finds it built
    body = hub.open_ready(AUTHOR, "env-early", AUTHOR)
    assert f"hello from {PACKAGE} 3.0 in dash" in page_text(hub, body, "_dash-layout")
    after = environment(hub, "env-early")
    assert after["env"] == build["env"] and after["built_now"] is False, after


def test_a_dashboard_from_git_runs_in_its_own_environment(env_hub: dict, tmp_path: Path) -> None:
    """The hub reads the requirement file at the version's commit (never running the
    repository's code), builds before the instance starts, and keeps the answer."""
    hub: Hub = env_hub["hub"]
    url = bare_repo(
        tmp_path,
        "env-git",
        {"app.py": DASH_APP.encode(), "requirements.txt": f"{PACKAGE}==1.0\n".encode()},
    )
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "title": "From git",
            "slug": "env-git",
            "entry": "app.py",
            "framework": "dash",
            "git": {"url": url, "ref": "lecture-1"},
        },
    )
    assert r.status_code == 201, r.text
    body = hub.open_ready(AUTHOR, "env-git", AUTHOR)
    assert f"hello from {PACKAGE} 1.0 in dash" in page_text(hub, body, "_dash-layout")
    build = environment(hub, "env-git")
    assert build["state"] == "ready", build
    assert any(f"+ {PACKAGE}==1.0" in line for line in build["log"]), build
    kept = list((hub.root.parent / "environments" / "git-sources").glob("*.json"))
    assert len(kept) == 1, kept
    [version] = hub.svc("GET", f"dashboards/{AUTHOR}/env-git/versions", AUTHOR).json()["items"]
    assert version["environment"]["env"] == build["env"]

    # a new start of the same commit: the kept answer, the same environment
    hub.stop(AUTHOR, "env-git")
    body = hub.open_ready(AUTHOR, "env-git", AUTHOR)
    assert f"hello from {PACKAGE} 1.0 in dash" in page_text(hub, body, "_dash-layout")
    again = environment(hub, "env-git")
    assert again["env"] == build["env"] and again["built_now"] is False


def test_a_binder_style_environment_yml_is_built_without_conda(env_hub: dict) -> None:
    hub: Hub = env_hub["hub"]
    r = publish(hub, "env-conda", "env-conda/app.py")
    assert r.status_code == 201, r.text
    body = hub.open_ready(AUTHOR, "env-conda", AUTHOR)
    assert f"hello from {PACKAGE} 1.0 in dash" in page_text(hub, body, "_dash-layout")
    build = environment(hub, "env-conda")
    assert build["state"] == "ready" and build["source"] == "environment.yml", build
