"""Who runs another author's code with the local spawner, with which home and environment.

The decision (:func:`hub_viz.sandbox.choose_account`) is checked case by case;
then :class:`~hub_viz.spawner.DashboardLocalSpawner` is driven through its
start steps (spec, account, home, environment, the process's first moments)
without a hub. Tests that switch accounts need root and the system's
``nobody`` account; the hub test ``tests/hub/test_sandbox_accounts.py``
does the same with real users end to end.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub import orm
from traitlets.config import Config

from hub_viz.launcher.procself import become
from hub_viz.sandbox import RunAs, SandboxError, choose_account
from hub_viz.signing import Signer, ensure_key_pair
from hub_viz.spawner import DashboardLocalSpawner

pytestmark = pytest.mark.unit

AUTHOR, VIEWER = "prof-smith", "student1"
APP = "import dash\napp = dash.Dash(__name__)\n"
as_root = pytest.mark.skipif(
    os.geteuid() != 0 or "nobody" not in {p.pw_name for p in pwd.getpwall()},
    reason="switching accounts needs root and the system account 'nobody'",
)


def fake_accounts(**uids: int) -> Any:
    """A ``find`` for choose_account: the named accounts exist with these uids."""
    return lambda name: SimpleNamespace(pw_uid=uids[name]) if name in uids else None


DECIDE = dict(
    run_as_hub_user=False,
    sandbox_user="hub-viz-pool",
    allow_run_as_viewer=False,
    find=fake_accounts(**{"hub-viz-pool": 990}),
)


@pytest.mark.parametrize(
    ("case", "kwargs", "expected"),
    [
        (
            "author's own instance runs as the author",
            dict(owner=AUTHOR, author=AUTHOR),
            RunAs(AUTHOR, sandboxed=False),
        ),
        (
            "another author's code runs as the sandbox account",
            dict(owner=VIEWER, author=AUTHOR),
            RunAs("hub-viz-pool", sandboxed=True),
        ),
        (
            "a warm-pool instance too",
            dict(owner="hub-viz-pool", author=AUTHOR),
            RunAs("hub-viz-pool", sandboxed=True),
        ),
        (
            "demo: the hub's own account, still sandboxed (throw-away home)",
            dict(owner=VIEWER, author=AUTHOR, run_as_hub_user=True),
            RunAs(None, sandboxed=True),
        ),
        (
            "demo: the author's own instance as today",
            dict(owner=AUTHOR, author=AUTHOR, run_as_hub_user=True),
            RunAs(None, sandboxed=False),
        ),
        (
            "opted in: as the viewer when the sandbox account is missing",
            dict(owner=VIEWER, author=AUTHOR, find=fake_accounts(), allow_run_as_viewer=True),
            RunAs(VIEWER, sandboxed=True),
        ),
        (
            "opted in, but the sandbox account exists: the sandbox",
            dict(owner=VIEWER, author=AUTHOR, allow_run_as_viewer=True),
            RunAs("hub-viz-pool", sandboxed=True),
        ),
    ],
)
def test_who_runs_the_code(case: str, kwargs: dict, expected: RunAs) -> None:
    assert choose_account(**{**DECIDE, **kwargs}) == expected, case


def test_a_missing_sandbox_account_refuses_another_authors_code() -> None:
    with pytest.raises(SandboxError) as e:
        choose_account(**{**DECIDE, "find": fake_accounts()}, owner=VIEWER, author=AUTHOR)
    assert e.value.message == (
        "This dashboard runs prof-smith's code, which this hub runs only as its sandbox "
        "account 'hub-viz-pool', and that account does not exist on this machine. An "
        "administrator must create it (useradd --system hub-viz-pool) or set "
        "DashboardLocalSpawner.sandbox_user."
    )
    # an empty setting is no account either
    with pytest.raises(SandboxError):
        choose_account(**{**DECIDE, "sandbox_user": ""}, owner=VIEWER, author=AUTHOR)


@pytest.mark.parametrize("uid", [0, os.getuid()])
def test_a_privileged_sandbox_account_is_refused(uid: int) -> None:
    with pytest.raises(
        SandboxError, match="must set DashboardLocalSpawner.sandbox_user to an unprivileged account"
    ):
        choose_account(
            **{**DECIDE, "find": fake_accounts(**{"hub-viz-pool": uid})},
            owner=VIEWER,
            author=AUTHOR,
        )


def test_the_sandbox_account_defaults_to_the_warm_pools() -> None:
    assert DashboardLocalSpawner().sandbox_user == "hub-viz-pool"
    c = Config()
    c.DashboardSettings.warm_pool_user = "dash-pool"
    assert DashboardLocalSpawner(config=c).sandbox_user == "dash-pool"
    c.DashboardLocalSpawner.sandbox_user = "dash-sandbox"
    assert DashboardLocalSpawner(config=c).sandbox_user == "dash-sandbox"
    assert DashboardLocalSpawner().allow_run_as_viewer is False


# -- the spawner, driven through its start steps ------------------------------------------


@pytest.fixture
def files() -> Iterator[Path]:
    """A dashboards folder others may read (outside pytest's private tmp folders)."""
    base = Path(tempfile.mkdtemp(prefix="hub-viz-test-"))
    base.chmod(0o755)
    (base / AUTHOR).mkdir(mode=0o755)
    (base / AUTHOR / "app.py").write_text(APP)
    (base / AUTHOR / "app.py").chmod(0o644)
    yield base
    shutil.rmtree(base)


@pytest.fixture
def config(tmp_path: Path, files: Path) -> Config:
    _, public = ensure_key_pair(tmp_path / "key.pem")
    c = Config()
    c.DashboardLocalSpawner.service_public_key = public.read_text()
    c.DashboardSettings.dashboards_root = str(files / "{username}")
    c.DashboardLocalSpawner.environment = {"VIEWER_TOKEN": lambda s: f"token-of-{s.user.name}"}
    c.DashboardLocalSpawner.sandbox_environment = {"MPLBACKEND": "Agg"}
    c.DashboardLocalSpawner.notebook_dir = "/home/{username}"
    c.DashboardLocalSpawner.viewer_work_root = str(files / "viewer-work")
    return c


_MADE: list[DashboardLocalSpawner] = []


@pytest.fixture(autouse=True)
def _remove_homes() -> Iterator[None]:
    """A test that fails half-way leaves no throw-away home behind."""
    yield
    while _MADE:
        home = _MADE.pop().sandbox_home
        if home:
            shutil.rmtree(home, ignore_errors=True)


def spawner_for(
    config: Config, tmp_path: Path, owner: str, author: str, **extra: Any
) -> DashboardLocalSpawner:
    """A spawner for ``owner``'s server running ``author``'s dashboard (a signed spec)."""
    server = "probe" if owner == author else "probe-1a2b3c4d"
    user = SimpleNamespace(name=owner, id=0, url=f"/user/{owner}/", escaped_name=owner, settings={})
    hub = SimpleNamespace(
        api_url="http://127.0.0.1:8081/hub/api",
        base_url="/hub/",
        url="http://127.0.0.1:8081/hub/",
        public_host="",
        host="",
    )
    orm_server = orm.Server(
        proto="http", ip="", port=0, base_url=f"/user/{owner}/{server}/", cookie_name="jupyterhub"
    )
    orm_spawner = SimpleNamespace(name=server, server=orm_server, state=None)
    spawner = DashboardLocalSpawner(config=config, user=user, hub=hub, orm_spawner=orm_spawner)
    spawner.api_token = "server-token"
    spec = {
        "framework": "dash",
        "entry": "app.py",
        "mode": "per-viewer",
        "title": "Probe",
        "source_owner": author,
        "dashboard": f"{author}/probe",
        **extra,
    }
    signer = Signer((tmp_path / "key.pem").read_text())
    spawner.user_options = {"hub_viz_spec": signer.sign_spec(owner, server, spec)}
    _MADE.append(spawner)
    return spawner


def before_start(spawner: DashboardLocalSpawner) -> dict[str, str]:
    """What start() does before the process exists; the process's environment."""

    async def steps() -> None:
        spawner._progress_events = []
        spawner._dashboard = await spawner.resolve_dashboard()
        spawner.prepare()
        await spawner.check_before_start()

    asyncio.run(steps())
    return spawner.get_env()


def stop(spawner: DashboardLocalSpawner) -> None:
    asyncio.run(spawner.stop())


FIRST_MOMENTS = 'id -un; pwd; echo "$HOME"'


def first_moments(spawner: DashboardLocalSpawner) -> list[str]:
    """Account, working folder and $HOME of a process started as the spawner starts one,
    the same whether it is started (``make_preexec_fn``) or forked by the fork server
    (``launcher_identity``, taken as the server's child takes it)."""
    env = spawner.get_env()
    out = subprocess.run(
        ["sh", "-c", FIRST_MOMENTS],
        env=env,
        preexec_fn=spawner.make_preexec_fn(spawner.user.name),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    started = out.stdout.split("\n")[:3]
    assert forked_moments(spawner.launcher_identity(), env) == started
    return started


def forked_moments(identity: dict | None, env: dict[str, str]) -> list[str]:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read_end)
            os.dup2(write_end, 1)
            become(identity)
            os.execve("/bin/sh", ["sh", "-c", FIRST_MOMENTS], env)
        finally:
            os._exit(127)
    os.close(write_end)
    with os.fdopen(read_end) as out:
        text = out.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, text
    return text.split("\n")[:3]


def test_demo_another_authors_code_gets_a_throw_away_home(config, tmp_path) -> None:
    config.DashboardLocalSpawner.run_as_hub_user = True
    spawner = spawner_for(config, tmp_path, VIEWER, AUTHOR)
    env = before_start(spawner)
    home = Path(spawner.sandbox_home)
    assert env["HOME"] == str(home) != os.path.expanduser("~")
    assert home.parent == Path(tempfile.gettempdir()) and home.is_dir()
    assert stat.S_IMODE(home.stat().st_mode) == 0o700 and home.stat().st_uid == os.getuid()
    assert list(home.iterdir()) == []
    # none of the viewer's per-user environment; the sandbox's instead
    assert "VIEWER_TOKEN" not in env and env["MPLBACKEND"] == "Agg"
    assert "JUPYTERHUB_ROOT_DIR" not in env  # the viewer's notebook folder
    assert env["JUPYTERHUB_USER"] == VIEWER and env["USER"] == VIEWER
    # the process starts in the throw-away home
    assert first_moments(spawner)[1:] == [str(home), str(home)]
    # a restarted hub knows the home from the server's saved state and removes it at stop
    state = spawner.get_state()
    assert state["sandbox_home"] == str(home)
    again = spawner_for(config, tmp_path, VIEWER, AUTHOR)
    again.load_state(state)
    stop(again)
    assert not home.exists() and again.get_state().get("sandbox_home") is None


def test_demo_the_authors_own_instance_is_as_before(config, tmp_path) -> None:
    config.DashboardLocalSpawner.run_as_hub_user = True
    spawner = spawner_for(config, tmp_path, AUTHOR, AUTHOR)
    env = before_start(spawner)
    assert spawner.sandbox_home == ""
    assert env["HOME"] == os.path.expanduser("~") and env["USER"] == AUTHOR
    assert env["VIEWER_TOKEN"] == f"token-of-{AUTHOR}" and "MPLBACKEND" not in env
    assert env["JUPYTERHUB_ROOT_DIR"] == f"/home/{AUTHOR}"
    assert spawner.make_preexec_fn(AUTHOR) is None


def test_the_home_is_removed_when_the_instance_stops(config, tmp_path) -> None:
    config.DashboardLocalSpawner.run_as_hub_user = True
    spawner = spawner_for(config, tmp_path, VIEWER, AUTHOR)
    before_start(spawner)
    home = Path(spawner.sandbox_home)
    assert home.is_absolute() and home.is_dir()
    (home / ".ipython" / "profile_default" / "startup").mkdir(parents=True)
    (home / ".ipython" / "profile_default" / "startup" / "00-planted.py").write_text("x = 1\n")
    stop(spawner)
    assert not home.exists() and spawner.sandbox_home == ""


def test_a_missing_sandbox_account_is_a_readable_spawn_error(config, tmp_path) -> None:
    config.DashboardLocalSpawner.sandbox_user = "hub-viz-no-such-account"
    spawner = spawner_for(config, tmp_path, VIEWER, AUTHOR)
    with pytest.raises(Exception) as e:
        before_start(spawner)
    assert e.value.jupyterhub_message == (
        "Cannot start dashboard 'probe-1a2b3c4d': This dashboard runs prof-smith's code, which "
        "this hub runs only as its sandbox account 'hub-viz-no-such-account', and that account "
        "does not exist on this machine. An administrator must create it (useradd --system "
        "hub-viz-no-such-account) or set DashboardLocalSpawner.sandbox_user."
    )
    assert spawner.sandbox_home == ""


@as_root
def test_another_authors_code_runs_as_the_sandbox_account(config, tmp_path) -> None:
    config.DashboardLocalSpawner.sandbox_user = "nobody"
    spawner = spawner_for(config, tmp_path, VIEWER, AUTHOR)
    env = before_start(spawner)
    home = Path(spawner.sandbox_home)
    nobody = pwd.getpwnam("nobody")
    assert home.stat().st_uid == nobody.pw_uid and stat.S_IMODE(home.stat().st_mode) == 0o700
    assert (env["USER"], env["HOME"], env["SHELL"]) == ("nobody", str(home), nobody.pw_shell)
    assert "VIEWER_TOKEN" not in env and env["MPLBACKEND"] == "Agg"
    assert first_moments(spawner) == ["nobody", str(home), str(home)]
    stop(spawner)
    assert not home.exists()


@as_root
def test_opted_in_the_viewer_runs_it_with_a_throw_away_home(config, tmp_path) -> None:
    config.DashboardLocalSpawner.sandbox_user = "hub-viz-no-such-account"
    config.DashboardLocalSpawner.allow_run_as_viewer = True
    viewer = "nobody"  # a system account stands in for the viewer
    spawner = spawner_for(config, tmp_path, viewer, AUTHOR)
    env = before_start(spawner)
    assert spawner._run_as == RunAs(viewer, sandboxed=True)
    assert env["HOME"] == spawner.sandbox_home != pwd.getpwnam(viewer).pw_dir
    assert "VIEWER_TOKEN" not in env
    assert first_moments(spawner)[0] == viewer
    stop(spawner)


@as_root
def test_files_the_sandbox_cannot_read_are_a_readable_spawn_error(config, tmp_path, files) -> None:
    config.DashboardLocalSpawner.sandbox_user = "nobody"
    (files / AUTHOR).chmod(0o700)
    spawner = spawner_for(config, tmp_path, VIEWER, AUTHOR)
    with pytest.raises(Exception) as e:
        before_start(spawner)
    assert e.value.jupyterhub_message == (
        "Cannot start dashboard 'probe-1a2b3c4d': this hub runs other authors' dashboards as "
        "the account 'nobody', which cannot read its files. Ask prof-smith to make the "
        "dashboard's folder readable by others (chmod o+rx on its folders, o+r on its files)."
    )
    assert spawner.sandbox_home == ""
    # the author's folder was left as it was
    assert stat.S_IMODE((files / AUTHOR).stat().st_mode) == 0o700


@as_root
def test_a_git_source_is_not_read_by_the_hub_for_the_sandbox(config, tmp_path) -> None:
    # the instance clones it itself, as the sandbox account: the hub checks no files
    config.DashboardLocalSpawner.sandbox_user = "nobody"
    config.DashboardSettings.git_schemes = ["https"]
    spawner = spawner_for(
        config,
        tmp_path,
        VIEWER,
        AUTHOR,
        git={"url": "https://git.example.org/org/repo.git", "ref": "main"},
    )
    before_start(spawner)
    assert spawner._git is not None
    assert spawner.sandbox_home and Path(spawner.sandbox_home).is_dir()
    assert Path(spawner.sandbox_home).stat().st_uid == pwd.getpwnam("nobody").pw_uid
    shutil.rmtree(spawner.sandbox_home)
