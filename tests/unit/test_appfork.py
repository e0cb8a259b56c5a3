"""Apps forked from a fork server that has their framework imported (``--preload``), with
real processes: a forked launcher starts its app from the process it prepared before
reading its start; the app runs as a new one would, without the launcher's secrets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from hub_viz.forkstart import ForkServer
from hub_viz.frameworks import Framework, FrameworkError
from hub_viz.launcher import appfork

from ..conftest import free_port, wait_until
from .test_forkstart import TOKEN, ended, fork, holds

pytestmark = pytest.mark.unit

# A module the fork server imports for apps: it marks the server's copy, so an app that
# sees the mark runs in a fork of the server; `python -m probe_app` writes what it sees.
PROBE_INIT = textwrap.dedent(
    """
    import os, tempfile
    MARK = None


    def preload():
        global MARK
        MARK = os.getpid()
        tempfile.gettempdir()  # the server's choice, kept by tempfile
    """
)
PROBE_MAIN = textwrap.dedent(
    """
    import json, os, random, sys, time
    import probe_app

    facts = {
        "mark": probe_app.MARK,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "sid": os.getsid(0),
        "cwd": os.getcwd(),
        "argv": sys.argv,
        "path0": sys.path[0],
        "name": __name__,
        "random": random.random(),
        "tempdir": __import__("tempfile").gettempdir(),
        "env": dict(os.environ),
    }
    with open(os.environ["PROBE_OUT"] + f".{os.getpid()}", "w") as f:
        json.dump(facts, f)
    time.sleep(600)
    """
)


@pytest.fixture
def probe(tmp_path, monkeypatch) -> Path:
    package = tmp_path / "lib" / "probe_app"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(PROBE_INIT)
    (package / "__main__.py").write_text(PROBE_MAIN)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "lib"))  # the fork server's
    return tmp_path / "lib"


@pytest.fixture
def server(probe):
    s = ForkServer(preload=("probe_app:preload",))
    yield s
    s._close()


def launcher_env(tmp_path: Path, probe: Path, **extra: str) -> dict[str, str]:
    framework = {
        "name": "custom",
        "display_name": "Probe",
        "command": ["{python}", "-m", "probe_app", "{port}"],
    }
    return {
        "HUB_VIZ_FRAMEWORK": json.dumps(framework),
        "PYTHONPATH": str(probe),
        "PROBE_OUT": str(tmp_path / "facts"),
        "TMPDIR": str(tmp_path),
        "JUPYTERHUB_API_TOKEN": TOKEN,  # the launcher's: never the app's
        "PATH": os.environ["PATH"],
        # what JupyterHub's env_keep passes on, as the fork server has it
        **{k: os.environ[k] for k in ("LANG", "LC_ALL") if k in os.environ},
        **extra,
    }


def app_facts(tmp_path: Path, count: int = 1) -> list[dict]:
    wait_until(
        lambda: len(list(tmp_path.glob("facts.*"))) >= count,
        timeout=60,
        what="the app to report",
        every=0.1,
    )
    facts = []
    for path in sorted(tmp_path.glob("facts.*")):
        wait_until(lambda p=path: p.read_text().endswith("}"), timeout=10, what="facts")
        facts.append(json.loads(path.read_text()))
    return facts


def with_launchers(server, tmp_path, env, check, count=1) -> list[dict]:
    """Fork ``count`` launchers of the probe app, run ``check(launchers, facts)`` once each
    app reported, then stop the launchers (all in one event loop: the server's exits are
    read there); the apps' facts."""
    (tmp_path / "work").mkdir(exist_ok=True)

    async def main():
        launchers = []
        try:
            for i in range(count):
                args = ["--entry", "app.py", "--ready-timeout", "600", "--port", str(free_port())]
                launchers.append(await fork(server, tmp_path / f"launcher{i}.txt", args, env))
            facts = await asyncio.to_thread(app_facts, tmp_path, count)
            check(launchers, facts)
            return facts
        finally:
            for launcher in launchers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(launcher.pid, signal.SIGTERM)
            for launcher in launchers:
                await ended(launcher)

    return asyncio.run(main())


def ended_or_zombie(pid: int) -> bool:
    return not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_the_app_runs_as_a_fork_with_its_framework_imported(server, probe, tmp_path):
    env = launcher_env(tmp_path, probe)

    def check(launchers, facts):
        assert server.proc is not None
        for launcher, seen in zip(launchers, sorted(facts, key=lambda f: f["ppid"]), strict=False):
            app = psutil.Process(seen["pid"])
            assert seen["mark"] == server.proc.pid  # the server's import, not a new one
            assert seen["ppid"] in {lch.pid for lch in launchers}  # the launcher's child
            assert seen["sid"] == seen["pid"]  # a session of its own
            assert seen["name"] == "__main__"
            assert seen["argv"] == [str(probe / "probe_app" / "__main__.py"), seen["argv"][1]]
            assert seen["cwd"] == seen["path0"]  # `-m` puts its folder first
            # what ps and /proc show: the app's command line and environment
            shown = [a for a in app.cmdline() if a]  # (the rest of the room: NULs)
            assert shown == [sys.executable, "-m", "probe_app", seen["argv"][1]]
            assert app.environ() == seen["env"]
            assert "JUPYTERHUB_API_TOKEN" not in seen["env"]
            assert seen["env"]["PROBE_OUT"] == env["PROBE_OUT"]
            assert seen["tempdir"] == env["TMPDIR"]  # the app's, not the server's
            # nothing of the launcher's start in the app's memory: the token is not there
            assert not holds(seen["pid"], TOKEN.encode())
            if os.geteuid() == 0:  # the launcher is not dumpable: its memory is root's to read
                assert holds(launcher.pid, TOKEN.encode())  # (the search finds what is there)
        assert facts[0]["random"] != facts[1]["random"]  # each its own random sequence
        logs = "".join((tmp_path / f"launcher{i}.txt").read_text() for i in range(2))
        assert logs.count("The app runs as a fork with its framework imported") == 2

    facts = with_launchers(server, tmp_path, env, check, count=2)
    for seen in facts:  # stopped with their launchers
        assert ended_or_zombie(seen["pid"])


def test_an_app_whose_python_settings_differ_is_a_new_process(server, probe, tmp_path):
    # PYTHONPATH is not the server's: a fork would have the server's search path
    other = tmp_path / "other"
    other.mkdir()
    env = launcher_env(tmp_path, probe, PYTHONPATH=f"{other}{os.pathsep}{probe}")

    def check(launchers, facts):
        (seen,) = facts
        assert seen["mark"] is None  # a new interpreter imported the module itself
        assert seen["ppid"] == launchers[0].pid and seen["sid"] == seen["pid"]
        assert str(other) in seen["env"]["PYTHONPATH"]
        assert "runs as a fork" not in (tmp_path / "launcher0.txt").read_text()

    with_launchers(server, tmp_path, env, check)


def test_the_app_ends_with_its_launcher(server, probe, tmp_path):
    def check(launchers, facts):
        os.kill(launchers[0].pid, signal.SIGKILL)  # no clean-up: the kernel's signal alone
        wait_until(
            lambda: ended_or_zombie(facts[0]["pid"]),
            timeout=10,
            what="the app to end with its launcher",
            every=0.1,
        )

    with_launchers(server, tmp_path, launcher_env(tmp_path, probe), check)


def test_an_app_that_cannot_start_fails_with_the_reason(server, probe, tmp_path):
    framework = {
        "name": "custom",
        "display_name": "Nothing",
        "command": ["/no/such/program", "{port}"],
    }
    env = {**launcher_env(tmp_path, probe), "HUB_VIZ_FRAMEWORK": json.dumps(framework)}
    args = ["--entry", "app.py", "--port", str(free_port()), "--failure-linger", "0"]

    async def main():
        return await ended(await fork(server, tmp_path / "launcher.txt", args, env))

    assert asyncio.run(main()) == 1
    log = (tmp_path / "launcher.txt").read_text()
    assert "The app could not be started: /no/such/program: No such file or directory" in log


def test_a_launcher_without_an_app_leaves_no_prepared_process(server, tmp_path):
    async def main():
        child = await fork(server, tmp_path / "help.txt", ["--help"], {})
        return child, await ended(child)

    child, status = asyncio.run(main())
    assert status == 0
    assert server.proc is not None
    time.sleep(0.5)
    # the prepared process saw its launcher end and ended too (its parent collected it or
    # it was reparented and collected): nothing is left of the server's but the server
    left = [p for p in psutil.Process(server.proc.pid).children(recursive=True)]
    assert left == []


@pytest.mark.parametrize(
    ("argv", "env", "runs"),
    [
        ([sys.executable, "-m", "json.tool"], {}, True),
        ([sys.executable, "-m", "json"], {"PYTHONUNBUFFERED": "1"}, True),  # applied
        (["/usr/bin/python3", "-m", "json"], {}, False),  # another Python
        ([sys.executable, "-c", "import json"], {}, False),  # not a module
        ([sys.executable, "-m", "email"], {}, False),  # not preloaded
        ([sys.executable, "-m", "json"], {"PYTHONHASHSEED": "0"}, False),  # not honoured
        ([sys.executable, "-m", "json"], {"LD_PRELOAD": "/x.so"}, False),  # read at exec
        ([sys.executable, "-m", "json"], {"LC_ALL": "C"}, False),  # the streams' encoding
        ([sys.executable, "-X", "dev", "-m", "json"], {}, False),
    ],
)
def test_which_commands_run_in_a_fork(monkeypatch, argv, env, runs):
    monkeypatch.setattr(appfork, "preloaded", {"json"})
    for name in [k for k in os.environ if k.startswith(appfork.START_VARIABLES)]:
        monkeypatch.delenv(name)
    monkeypatch.setattr(appfork.site, "ENABLE_USER_SITE", False)
    assert appfork.runs_here(argv, {"PATH": "/usr/bin", **env}) is runs


def test_a_user_site_folder_makes_a_new_process(monkeypatch, tmp_path):
    monkeypatch.setattr(appfork, "preloaded", {"json"})
    monkeypatch.setattr(appfork.site, "ENABLE_USER_SITE", True)
    monkeypatch.setattr(appfork.site, "USER_SITE", str(tmp_path / "nowhere"))
    argv = [sys.executable, "-m", "json"]
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k.startswith(appfork.START_VARIABLES)}
    assert appfork.runs_here(argv, {**env, "HOME": str(home)})
    Path(appfork.user_site({"HOME": str(home)})).mkdir(parents=True)
    assert not appfork.runs_here(argv, {**env, "HOME": str(home)})


def test_a_preload_item_must_name_a_module():
    Framework(name="custom", display_name="X", command=("x",), preload=("a.b", "a:f"))
    with pytest.raises(FrameworkError, match="preload item 'a; rm -rf /'"):
        Framework(name="custom", display_name="X", command=("x",), preload=("a; rm -rf /",))


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "no-pidfd"])
def test_a_forked_app_reports_its_output_and_exit_status(monkeypatch, pidfd):
    if not pidfd:  # Linux before 5.3

        def no_pidfd(pid: int) -> int:
            raise OSError(38, "Function not implemented")

        monkeypatch.setattr(os, "pidfd_open", no_pidfd)
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # stands for an app: a line of output, then exit code 3
        os.write(out_w, b"serving\n")
        time.sleep(0.3)
        os._exit(3)
    os.close(out_w)

    async def main():
        app = appfork.ForkedApp(pid, out_r)
        await app.watch()
        line = await app.stdout.readline()
        return line, await asyncio.wait_for(app.wait(), 30), app.returncode

    line, status, returncode = asyncio.run(main())
    assert line == b"serving\n"
    assert status == returncode == 3
    assert not psutil.pid_exists(pid)  # collected


def test_a_prepared_process_that_ended_fails_the_start_with_a_reason():
    prepared = appfork.prepare()
    assert appfork.take_prepared() is prepared and appfork.take_prepared() is None
    os.kill(prepared.pid, signal.SIGKILL)
    os.waitpid(prepared.pid, 0)

    async def main():
        return await prepared.start([sys.executable, "-m", "json"], {}, "/")

    with pytest.raises(OSError, match="the process prepared for the app ended"):
        asyncio.run(main())


def test_a_prepared_process_executes_another_command(tmp_path):
    prepared = appfork.prepare()
    appfork.take_prepared()
    prepared.become(None)  # the test's own account
    script = "import os, sys; print(os.getcwd(), os.environ['ONLY'], sys.argv[1:], flush=True)"

    async def main():
        app = await prepared.start(
            [sys.executable, "-c", script, "x"], {"ONLY": "this", "PATH": "/usr/bin"}, str(tmp_path)
        )
        return app.runs_here, await app.stdout.read(), await asyncio.wait_for(app.wait(), 30)

    runs_here, output, status = asyncio.run(main())
    assert not runs_here  # `-c`, not a preloaded module: executed as a new program
    assert output.decode().split() == [str(tmp_path), "this", "['x']"]
    assert status == 0
