"""Another author's code never runs as its viewer: two real system users and a probe app.

An author publishes a per-viewer Dash app that, when it starts, tries what
an author's code should not be able to do to its viewer: write into the
viewer's home, plant ``~/.ipython/profile_default/startup/00-planted.py``
there (it would run in every kernel the viewer starts later), read a
private file of theirs, and use the viewer's per-user environment (here a
``Spawner.environment`` entry standing in for an ``auth_state_hook``'s
token). Its page reports what happened, and the test also looks at the
viewer's home on disk.

The hub runs with real system users (``run_as_hub_user=False``): the
author, the viewer and a sandbox account are created with ``useradd`` for
the module and removed after. Needs root, and a Python those users can
run (the project's venv outside a private folder such as ``/root``).
"""

from __future__ import annotations

import html
import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from hub_viz.frameworks import PER_VIEWER
from hub_viz.layout import Layout
from hub_viz.service.dashboards import server_for

from ..conftest import (
    ISOLATED_DOMAIN,
    PASSWORD,
    Hub,
    free_port,
    need_localhost_names,
    run_hub,
    stop_hub,
)

pytestmark = pytest.mark.hub

SUFFIX = secrets.token_hex(3)
AUTHOR, VIEWER, SANDBOX = f"hvzt-author-{SUFFIX}", f"hvzt-viewer-{SUFFIX}", f"hvzt-sbx-{SUFFIX}"
SECRET = "the viewer's private note"

PROBE = '''
"""Tries what an author's code should not do to its viewer; the page shows what happened."""
import json
import os
import pwd
from pathlib import Path

import dash
from dash import html

VIEWER_HOME = Path({viewer_home!r})


def attempt(action):
    try:
        return action() or "done"
    except OSError as e:
        return "refused: " + e.strerror


def plant_startup(home):
    startup = home / ".ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-planted.py").write_text("print('planted by the author')\\n")


REPORT = {{
    "account": pwd.getpwuid(os.getuid()).pw_name,
    "HOME": os.environ.get("HOME", ""),
    "USER": os.environ.get("USER", ""),
    "credential": os.environ.get("VIEWER_CREDENTIAL", ""),
    "sandboxed": os.environ.get("SANDBOXED", ""),
    "write viewer home": attempt(lambda: (VIEWER_HOME / "planted.txt").write_text("x") and None),
    "plant viewer startup": attempt(lambda: plant_startup(VIEWER_HOME)),
    "read viewer file": attempt(lambda: (VIEWER_HOME / "private.txt").read_text()),
    "plant own startup": attempt(lambda: plant_startup(Path.home())),
    # the launcher (the app's parent, the same account) holds the server's hub token
    "read launcher environ": attempt(lambda: Path(f"/proc/{{os.getppid()}}/environ").read_bytes() and None),
    "read launcher memory": attempt(lambda: open(f"/proc/{{os.getppid()}}/mem", "rb").close()),
}}
app = dash.Dash(__name__)
app.layout = html.Pre(json.dumps(REPORT), id="report")
'''

CONFIG = """
from hub_viz.config import configure

configure(
    c,
    dashboards_root={users!r} + "/{{username}}",
    run_as_hub_user=False,
    allowed_frameworks=["dash"],
    state_dir={state!r},
    proxy_url="http://127.0.0.1:{port}",
    service_port={service_port},
    cull_idle=False,
    subdomain_host="http://{domain}:{port}",  # the default, isolated layout
)
c.DashboardLocalSpawner.sandbox_user = {sandbox!r}
# viewers' work folders where the accounts can reach them (the state folder is private)
c.DashboardLocalSpawner.viewer_work_root = {users!r} + "/viewer-work"
# and the versions' copies of the authors' files, which the sandbox account runs
c.DashboardSettings.snapshots_root = {users!r} + "/snapshots"
c.DashboardLocalSpawner.environment = {{
    "VIEWER_CREDENTIAL": lambda spawner: "credential-of-" + spawner.user.name,
}}
c.DashboardLocalSpawner.sandbox_environment = {{"SANDBOXED": "yes"}}
c.DashboardLocalSpawner.app_ready_timeout = 60
c.JupyterHub.cleanup_servers = True
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = {state!r} + "/proxy.pid"
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = {password!r}
c.Authenticator.allow_all = True
c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{state}/cookie_secret"
c.JupyterHub.services.append({{"name": "tester", "api_token": {token!r}}})
c.JupyterHub.load_roles.append(
    {{"name": "tester", "scopes": ["admin:users", "admin:servers", "tokens"],
      "services": ["tester"]}}
)
"""


def run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def users() -> Iterator[Path]:
    """The author, the viewer (homes under a fresh folder) and the sandbox account."""
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("creating system users needs root and useradd")
    base = Path(tempfile.mkdtemp(prefix="hub-viz-users-"))
    base.chmod(0o755)
    made: list[str] = []
    try:
        for name in (AUTHOR, VIEWER):
            run(
                "useradd",
                "--create-home",
                "--home-dir",
                str(base / name),
                "--shell",
                "/bin/sh",
                "--user-group",
                name,
            )
            made.append(name)
            (base / name).chmod(0o755)  # others may look, as on many hubs; only the owner writes
        run(
            "useradd",
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "--user-group",
            SANDBOX,
        )
        made.append(SANDBOX)
        try:
            check = subprocess.run(
                [sys.executable, "-c", "import hub_viz.launcher, dash, waitress"],
                user=AUTHOR,
                env={"PATH": "/usr/bin:/bin", "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
                cwd="/",
                capture_output=True,
                text=True,
                timeout=60,
            )
            problem = check.stderr.strip().splitlines()[-1:] if check.returncode else None
        except OSError as e:
            problem = [str(e)]
        if problem is not None:
            pytest.skip(
                f"other system users cannot run this Python ({sys.executable}): "
                f"{problem[0] if problem else 'it failed'}; run the tests from a "
                "Python outside a private folder such as /root"
            )
        private = base / VIEWER / "private.txt"
        private.write_text(SECRET)
        private.chmod(0o600)
        shutil.chown(private, VIEWER, VIEWER)
        probe = base / AUTHOR / "probe"
        probe.mkdir(mode=0o755)
        (probe / "app.py").write_text(PROBE.format(viewer_home=str(base / VIEWER)))
        (probe / "app.py").chmod(0o644)
        locked = base / AUTHOR / "locked"  # the author's files nobody else may read
        locked.mkdir(mode=0o700)
        (locked / "app.py").write_text(PROBE.format(viewer_home=str(base / VIEWER)))
        for path in (probe, probe / "app.py", locked, locked / "app.py"):
            shutil.chown(path, AUTHOR, AUTHOR)
        yield base
    finally:
        for name in made:
            subprocess.run(["userdel", name], capture_output=True, timeout=60)
            subprocess.run(["groupdel", name], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module", params=[False, True], ids=["started", "forked"])
def hub(
    users: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Hub]:
    """A hub whose users are the system users above; its own state folder stays private.
    Its launchers are new processes, then forks of the fork server (``launcher_fork_server``),
    which takes each start's account itself."""
    need_localhost_names()
    state = tmp_path_factory.mktemp("sandbox-hub")
    port, token = free_port(), secrets.token_hex(16)
    config = state / "jupyterhub_config.py"
    config.write_text(
        textwrap.dedent(
            CONFIG.format(
                users=str(users),
                state=str(state),
                port=port,
                service_port=free_port(),
                hub_port=free_port(),
                proxy_api_port=free_port(),
                sandbox=SANDBOX,
                author=AUTHOR,
                password=PASSWORD,
                token=token,
                domain=ISOLATED_DOMAIN,
            )
        )
        + f"c.DashboardLocalSpawner.launcher_fork_server = {request.param!r}\n"
    )
    running = run_hub(
        config,
        port=port,
        token=token,
        root=users,
        env={},
        layout=Layout(f"http://{ISOLATED_DOMAIN}:{port}"),
    )
    yield running
    stop_hub(running)


def probe_report(hub: Hub, viewer: str) -> tuple[dict, str]:
    """The probe's report as ``viewer`` sees it in their instance, and that server's name."""
    body = hub.open_ready(AUTHOR, "probe", viewer)
    owner, server = body["server"].split("/", 1)
    assert owner == viewer
    session = hub.fresh_login(viewer)
    assert session.get(hub.public(body["url"]), timeout=60).status_code == 200
    layout = session.get(hub.server_url(viewer, server) + "_dash-layout", timeout=60)
    assert layout.status_code == 200, layout.text
    return json.loads(layout.json()["props"]["children"]), server


@pytest.fixture(scope="module")
def published(hub: Hub) -> Hub:
    for slug, entry in (("probe", "probe/app.py"), ("locked", "locked/app.py")):
        r = hub.svc(
            "POST",
            "dashboards",
            AUTHOR,
            json={
                "slug": slug,
                "title": slug,
                "framework": "dash",
                "entry": entry,
                "mode": "per-viewer",
                "visibility": "all",
            },
        )
        assert r.status_code == 201, r.text
    return hub


def test_another_authors_code_cannot_touch_the_viewers_home(published: Hub, users: Path) -> None:
    hub = published
    report, server = probe_report(hub, VIEWER)
    seen = json.dumps(report)
    # the viewer's home: nothing written, nothing planted, nothing read
    assert report["write viewer home"] == "refused: Permission denied", seen
    assert report["plant viewer startup"] == "refused: Permission denied", seen
    assert report["read viewer file"] == "refused: Permission denied", seen
    # as the sandbox account, in a throw-away home
    home = report["HOME"]
    assert report["account"] == SANDBOX and report["USER"] == SANDBOX, seen
    assert home.startswith(tempfile.gettempdir() + "/hub-viz-home-"), seen
    viewer_home = users / VIEWER
    assert not (viewer_home / "planted.txt").exists()
    assert not (viewer_home / ".ipython").exists()
    # its own startup files land in the throw-away home, and go with it
    assert report["plant own startup"] == "done"
    planted = Path(home) / ".ipython" / "profile_default" / "startup" / "00-planted.py"
    assert planted.is_file() and planted.stat().st_uid == pwd.getpwnam(SANDBOX).pw_uid
    # none of the viewer's per-user environment, the sandbox's instead
    assert report["credential"] == "" and report["sandboxed"] == "yes"
    # nor the launcher's server token, though the launcher runs as the same account
    assert report["read launcher environ"] == "refused: Permission denied", seen
    assert report["read launcher memory"] == "refused: Permission denied", seen
    hub.stop(VIEWER, server)
    assert not Path(home).exists()


def test_the_authors_own_instance_runs_as_the_author(published: Hub, users: Path) -> None:
    report, server = probe_report(published, AUTHOR)
    assert report["account"] == AUTHOR and report["USER"] == AUTHOR, report
    assert report["HOME"] == str(users / AUTHOR)
    assert report["credential"] == f"credential-of-{AUTHOR}" and report["sandboxed"] == ""
    assert report["read launcher environ"] == "refused: Permission denied", report
    # the author is not the viewer either
    assert report["write viewer home"] == "refused: Permission denied"
    assert report["read viewer file"] == "refused: Permission denied"
    published.stop(AUTHOR, server)


def test_files_the_sandbox_cannot_read_fail_the_start_readably(published: Hub, users) -> None:
    hub = published
    r = hub.svc("POST", f"dashboards/{AUTHOR}/locked/open", VIEWER)
    assert r.status_code == 502 and "could not start" in r.json()["message"], r.text
    _, server = server_for(
        SimpleNamespace(mode=PER_VIEWER, ref=f"{AUTHOR}/locked", slug="locked"), VIEWER
    )
    assert hub.wait(VIEWER, server) == {}, "the failed server must not stay"
    page = html.unescape(hub.spawn_message(VIEWER, server))
    assert (
        f"this hub runs other authors' dashboards as the account {SANDBOX!r}, which "
        f"cannot read its files. Ask {AUTHOR} to make the dashboard's folder readable by "
        "others"
    ) in page
    assert str(users) not in page, "server paths must not leak"
    assert oct((users / AUTHOR / "locked").stat().st_mode & 0o777) == "0o700"
