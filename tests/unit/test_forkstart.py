"""The launcher fork server with real processes: forks, identities, exits, its own death."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from hub_viz.forkstart import ForkedLauncher, ForkServer, ForkServerError, identity_of

from ..conftest import free_port

pytestmark = pytest.mark.unit

TOKEN = "tok-" + "x7Qp" * 8  # stands for a start's server token
SLEEPER = {  # a framework record whose app never listens on its port
    "name": "custom",
    "display_name": "Sleeper",
    "command": ["{python}", "-c", "import time; time.sleep(600)", "{port}"],
}


async def ended(child: ForkedLauncher, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while (status := child.poll()) is None:
        assert time.monotonic() < deadline, f"launcher {child.pid} still running"
        await asyncio.sleep(0.05)
    return status


def holds(pid: int, secret: bytes) -> list[str]:
    """The writable memory areas of ``pid`` that hold ``secret`` (``/proc/<pid>/mem``)."""
    found = []
    with open(f"/proc/{pid}/mem", "rb") as mem:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            m = re.match(r"([0-9a-f]+)-([0-9a-f]+) rw", line)
            if not m:
                continue
            start, end = int(m.group(1), 16), int(m.group(2), 16)
            try:
                mem.seek(start)
                if secret in mem.read(end - start):
                    found.append(line)
            except OSError:
                continue
    return found


def gone(pid: int) -> bool:
    """Neither running nor a zombie: its exit was collected."""
    return not Path(f"/proc/{pid}").exists()


async def fork(server: ForkServer, out: Path, args: list[str], env: dict[str, str], **kw):
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return await server.start(args, env, kw.get("identity"), (0, fd, fd))
    finally:
        os.close(fd)


@pytest.fixture
def server():
    s = ForkServer()
    yield s
    s._close()


def test_a_forked_launcher_runs_its_start_and_reports_its_exit(server, tmp_path, monkeypatch):
    # the hub's own environment is not the launcher's: the start's is
    monkeypatch.setenv("HUB_VIZ_FRAMEWORK", '{"name": "dash"}')

    async def main():
        helped = await fork(server, tmp_path / "help.txt", ["--help"], {"PATH": "/usr/bin"})
        assert await ended(helped) == 0
        unset = await fork(server, tmp_path / "unset.txt", ["--entry", "app.py"], {})
        assert await ended(unset) == 1
        wrong = await fork(
            server, tmp_path / "wrong.txt", ["--entry", "app.py", "--no-such-option"], {}
        )
        assert await ended(wrong) == 2
        return helped, unset, wrong

    helped, unset, wrong = asyncio.run(main())
    assert (tmp_path / "help.txt").read_text().startswith("usage: hub-viz-launch")
    assert "HUB_VIZ_FRAMEWORK is not set" in (tmp_path / "unset.txt").read_text()
    assert "unrecognized arguments: --no-such-option" in (tmp_path / "wrong.txt").read_text()
    assert server.proc is not None
    for child in (helped, unset, wrong):
        assert child.pid != server.proc.pid and gone(child.pid)


def test_each_launcher_is_a_session_of_its_own_in_its_folder(server, tmp_path):
    args = ["--entry", "app.py", "--port", str(free_port()), "--ready-timeout", "600"]
    folder = tmp_path / "home"
    folder.mkdir()
    probe = tmp_path / "probe.txt"

    async def main():
        # a launcher whose app never listens: it waits for it until stopped
        child = await fork(
            server,
            probe,
            args,
            {"HUB_VIZ_FRAMEWORK": json.dumps(SLEEPER)},
            identity=identity_of(None, str(folder)),
        )
        await asyncio.sleep(1)
        assert child.poll() is None, probe.read_text()
        sid, cwd = os.getsid(child.pid), os.readlink(f"/proc/{child.pid}/cwd")
        shown = psutil.Process(child.pid)
        seen = ([a for a in shown.cmdline() if a], shown.environ(), shown.name())
        os.kill(child.pid, signal.SIGTERM)
        return child, sid, cwd, seen, await ended(child)

    child, sid, cwd, seen, status = asyncio.run(main())
    assert sid == child.pid, "start_new_session, as LocalProcessSpawner's Popen"
    # ps and /proc show the launcher's own command line and environment, not the server's
    argv, environ, name = seen
    assert argv == [sys.executable, "-m", "hub_viz.launcher", *args], argv
    assert environ == {"HUB_VIZ_FRAMEWORK": json.dumps(SLEEPER)}
    assert name == "hub-viz-launch"
    assert cwd == str(folder)
    assert status in (0, -signal.SIGTERM), probe.read_text()
    assert gone(child.pid)


def test_a_start_that_cannot_take_its_folder_fails_with_the_reason(server, tmp_path):
    async def main():
        with pytest.raises(ForkServerError, match="could not start: FileNotFoundError"):
            await fork(
                server, tmp_path / "x.txt", ["--help"], {}, identity=identity_of(None, "/nope")
            )
        # the server is still there for the next start
        child = await fork(server, tmp_path / "ok.txt", ["--help"], {})
        return await ended(child)

    assert asyncio.run(main()) == 0


def test_a_missing_home_only_warns_as_jupyterhub_does(server, tmp_path):
    identity = identity_of(None, "/no/such/home", must_chdir=False)

    async def main():
        return await ended(
            await fork(server, tmp_path / "out.txt", ["--help"], {}, identity=identity)
        )

    assert asyncio.run(main()) == 0
    assert "Could not enter /no/such/home" in (tmp_path / "out.txt").read_text()


def test_the_server_never_holds_a_starts_token(server, tmp_path, monkeypatch):
    monkeypatch.setenv("CONFIGPROXY_AUTH_TOKEN", "hub-secret-" + "k3" * 10)

    async def main():
        child = await fork(
            server, tmp_path / "out.txt", ["--help"], {"JUPYTERHUB_API_TOKEN": TOKEN}
        )
        await ended(child)

    asyncio.run(main())
    assert server.proc is not None
    pid = server.proc.pid
    # started without the hub's secrets in its environment
    assert b"hub-secret-" not in Path(f"/proc/{pid}/environ").read_bytes()
    # and the token it forked a launcher for is nowhere in its memory
    assert not holds(pid, TOKEN.encode())


def test_the_server_ends_with_the_hub_and_starts_again_after_dying(server, tmp_path):
    async def main():
        await server.ensure()
        first = server.proc
        assert first is not None
        first.kill()
        first.wait()
        child = await fork(server, tmp_path / "out.txt", ["--help"], {})
        assert server.proc is not first
        return await ended(child)

    assert asyncio.run(main()) == 0
    second = server.proc
    assert second is not None and second.poll() is None
    assert server.sock is not None
    server.sock.close()  # the hub's end closes (the hub exits)
    server.sock = None
    assert second.wait(timeout=30) == 0


def test_a_launcher_outlives_a_dead_server_and_its_end_is_still_seen(server, tmp_path):
    async def main():
        child = await fork(
            server,
            tmp_path / "out.txt",
            ["--entry", "app.py", "--port", str(free_port()), "--ready-timeout", "600"],
            {"HUB_VIZ_FRAMEWORK": json.dumps(SLEEPER)},
        )
        assert server.proc is not None
        server.proc.kill()  # the fork server dies; its launcher goes on
        server.proc.wait()
        await server.ensure()  # and the next start starts another
        await asyncio.sleep(0.5)
        running = child.poll()
        os.kill(child.pid, signal.SIGKILL)
        return running, await ended(child)

    running, status = asyncio.run(main())
    assert running is None
    assert status == 0  # its status went to whoever collected it, as after a hub restart


def test_a_server_that_cannot_start_fails_the_fork_and_is_not_retried_at_once(tmp_path):
    broken = ForkServer(python=str(tmp_path / "no-python"))

    async def main():
        with pytest.raises(ForkServerError, match="did not start: .*No such file"):
            await fork(broken, tmp_path / "out.txt", ["--help"], {})
        with pytest.raises(ForkServerError, match="failed to start just now"):
            await fork(broken, tmp_path / "out.txt", ["--help"], {})

    asyncio.run(main())
    broken._close()
