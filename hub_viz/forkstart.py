"""The hub's side of the launcher fork server (:mod:`hub_viz.launcher.forkserver`).

:class:`ForkServer` starts the server (one per hub process, on the first start that
uses it) and asks it for a fork per start; :class:`ForkedLauncher` is what the
local spawner keeps where ``LocalProcessSpawner`` keeps its ``Popen``: ``pid``,
``poll()`` with the exit status the server reports, and a context manager.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import shlex
import socket
import subprocess
import sys
import time
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner
from jupyterhub.utils import random_port
from traitlets import Bool, Instance, Union

from .errors import HubVizError

log = logging.getLogger("hub_viz.forkstart")

READY_TIMEOUT = 30.0  # seconds for the server to import the launcher's modules
FORK_TIMEOUT = 30.0  # seconds for a child to take its start and answer
RETRY_AFTER = 60.0  # seconds before starting again a server that failed to start
# what the server itself runs with: where Python finds its modules, never the hub's secrets
SERVER_ENV_KEEP = ("PATH", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "LANG", "LC_ALL")
# bytes of the server's command line and environment each child overwrites with its own
# (a launcher's are about 1 and 5 KiB), so that ps and /proc show the launcher's
ROOM = {"argv": 8 * 1024, "env": 32 * 1024}


class ForkServerError(HubVizError):
    """The fork server could not start a launcher (the spawner then starts it itself)."""


def identity_of(
    account: str | None, chdir: str | None, *, must_chdir: bool = True
) -> dict[str, Any] | None:
    """What a child becomes: ``account``'s uid, gid and groups (None: the hub's own), then
    ``chdir`` (as JupyterHub's ``set_user_setuid``, which looks them up before the fork and
    only tries the home folder: ``must_chdir`` False)."""
    identity: dict[str, Any] = {"must_chdir": must_chdir}
    if account is not None:
        entry = pwd.getpwnam(account)
        identity.update(
            uid=entry.pw_uid,
            gid=entry.pw_gid,
            groups=os.getgrouplist(account, entry.pw_gid),
        )
    if chdir:
        identity["chdir"] = chdir
    return identity if len(identity) > 1 else None


def has_ended(pid: int) -> bool:
    """Has a process that is not our child ended (gone, or a zombie nobody collects)?"""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except FileNotFoundError:
        return True
    except (OSError, IndexError):  # no /proc: is it there at all?
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False
    return state in (b"Z", b"X")


class ForkedLauncher:
    """A launcher forked by the server: the part of ``Popen`` the spawner uses."""

    def __init__(self, pid: int, server: ForkServer) -> None:
        self.pid = pid
        self.server = server
        self.generation = server.generation  # which run of the server forked it
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self.server.exit_status(self.pid, self.generation)
        return self.returncode

    def __enter__(self) -> ForkedLauncher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.forget(self.pid)


class ForkServer:
    """One fork server for this hub process, started on first use, again if it dies."""

    def __init__(self, python: str = sys.executable, preload: tuple[str, ...] = ()) -> None:
        self.python = python
        self.preload = preload  # what it imports for apps (Framework.preload)
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.exits: dict[int, int] = {}
        self.generation = 0  # one more each time the server starts
        self.failed_at: float | None = None  # when it last failed to start
        self._starting: asyncio.Lock | None = None

    @property
    def running(self) -> bool:
        return self.sock is not None and self.proc is not None and self.proc.poll() is None

    async def ensure(self) -> socket.socket:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if not self.running:
                if self.failed_at is not None and time.monotonic() - self.failed_at < RETRY_AFTER:
                    raise ForkServerError("The launcher fork server failed to start just now.")
                try:
                    await self._start()
                except ForkServerError:
                    self.failed_at = time.monotonic()
                    raise
                self.failed_at = None
            assert self.sock is not None
            return self.sock

    async def _start(self) -> None:
        self._close()
        self.generation += 1
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = self._popen(theirs.fileno())
        except OSError as e:
            ours.close()
            raise ForkServerError(f"The launcher fork server did not start: {e}") from None
        finally:
            theirs.close()
        ours.setblocking(False)
        loop = asyncio.get_running_loop()
        try:
            ready = await asyncio.wait_for(loop.sock_recv(ours, 64), READY_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as e:
            ours.close()
            raise ForkServerError(f"The launcher fork server did not start: {e}") from None
        if ready != b"ready":
            ours.close()
            raise ForkServerError("The launcher fork server did not start (see the hub's log).")
        self.sock = ours
        loop.add_reader(ours, self._read_exits)
        log.info(
            "Launcher fork server running (pid %s)%s",
            self.proc.pid,
            f", with {', '.join(self.preload)} for apps" if self.preload else "",
        )

    def _popen(self, fd: int) -> subprocess.Popen:
        env = {k: os.environ[k] for k in SERVER_ENV_KEEP if k in os.environ}
        # room each child overwrites with its own command line and environment
        env["HUB_VIZ_FORK_ROOM"] = "." * ROOM["env"]
        room = "--room=" + "." * ROOM["argv"]
        preload = [f"--preload={spec}" for spec in self.preload]
        return subprocess.Popen(
            [self.python, "-m", "hub_viz.launcher.forkserver", "--fd", str(fd), room, *preload],
            pass_fds=[fd],
            env=env,
            cwd="/",
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    def _read_exits(self) -> None:
        assert self.sock is not None
        while True:
            try:
                message = self.sock.recv(64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                message = b""
            if not message:  # the server is gone: its children were reparented
                log.warning("The launcher fork server exited; the next start starts it again")
                self._close()
                return
            match message.decode(errors="replace").split():
                case ["exit", pid, code] if pid.isdigit() and code.lstrip("-").isdigit():
                    self.exits[int(pid)] = int(code)
                case _:
                    log.warning("Unexpected message from the launcher fork server: %r", message)

    def _close(self) -> None:
        if self.sock is not None:
            try:
                asyncio.get_running_loop().remove_reader(self.sock)
            except RuntimeError:
                pass
            self.sock.close()
            self.sock = None
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()

    def exit_status(self, pid: int, generation: int) -> int | None:
        """The exit status of a child of the server's run ``generation`` once it ended (0 if
        it ended after that run of the server: init collected it)."""
        if pid in self.exits:
            return self.exits[pid]
        if generation == self.generation and self.running:
            return None
        return 0 if has_ended(pid) else None

    def forget(self, pid: int) -> None:
        self.exits.pop(pid, None)

    async def start(
        self,
        args: list[str],
        env: dict[str, str],
        identity: dict[str, Any] | None,
        stdio: tuple[int, int, int] = (0, 1, 2),
    ) -> ForkedLauncher:
        """Fork a launcher with these options, environment and identity (its command line
        reads as ``python -m hub_viz.launcher`` with these options)."""
        server = await self.ensure()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            socket.send_fds(server, [b"fork"], [theirs.fileno()])
        except OSError as e:
            ours.close()
            raise ForkServerError(f"The launcher fork server did not take the start: {e}") from e
        finally:
            theirs.close()
        with ours:
            command = [self.python, "-m", "hub_viz.launcher", *args]
            request = json.dumps(
                {"args": args, "command": command, "env": env, "identity": identity}
            ).encode()
            socket.send_fds(ours, [request], list(stdio))
            ours.setblocking(False)
            loop = asyncio.get_running_loop()
            try:
                answer = await asyncio.wait_for(loop.sock_recv(ours, 65536), FORK_TIMEOUT)
            except asyncio.TimeoutError:
                raise ForkServerError("A forked launcher did not answer.") from None
        if not answer:
            raise ForkServerError("A forked launcher ended before it answered.")
        reply = json.loads(answer)
        if "error" in reply:
            self.forget(reply["pid"])
            raise ForkServerError(f"A forked launcher could not start: {reply['error']}")
        return ForkedLauncher(int(reply["pid"]), self)


_servers: dict[tuple[str, ...], ForkServer] = {}


def fork_server(preload: tuple[str, ...] = ()) -> ForkServer:
    """This hub process's fork server that has imported ``preload`` for apps (one per
    distinct ``preload``: a framework's imports stay out of other frameworks' launchers)."""
    if preload not in _servers:
        _servers[preload] = ForkServer(preload=preload)
    return _servers[preload]


# the launcher command a fork can stand for: this Python running hub_viz's launcher
FORKABLE_COMMAND = [sys.executable, "-m", "hub_viz.launcher"]


class ForkingLocalProcessSpawner(LocalProcessSpawner):
    """``LocalProcessSpawner`` whose ``start`` forks the launcher from the fork server."""

    launcher_fork_server = Bool(
        True,
        config=True,
        help="""Start each launcher as a fork of one process that has imported the
        launcher already (``hub_viz.launcher.forkserver``, one per hub process, started
        with the first dashboard) instead of a new Python: about 0.1 CPU-s less per start,
        which a class opening a per-viewer dashboard pays once per student, and the
        launcher's modules shared in memory between instances. Each launcher is still a
        session of its own, runs as the account it would run as, and shows its own command
        line and environment in ``ps`` and ``/proc``; Python's start-up settings
        (``PYTHON*`` variables) are the fork server's, which has the hub's ``PATH`` and
        ``PYTHONPATH`` and none of its other variables. Used only with the default
        launcher command, no ``shell_cmd`` and no ``popen_kwargs``; if the fork server
        cannot start a launcher, the spawner starts it as a new process.""",
    )

    proc = Union(
        [Instance(subprocess.Popen), Instance(ForkedLauncher)],
        allow_none=True,
        help="The launcher's process: started by the spawner (Popen) or forked (ForkedLauncher).",
    )

    def launcher_identity(self) -> dict[str, Any] | None:
        """Who a forked launcher runs as: what ``make_preexec_fn`` would make it."""
        return identity_of(self.user.name, pwd.getpwnam(self.user.name).pw_dir, must_chdir=False)

    preload_apps = Bool(
        True,
        config=True,
        help="""With ``launcher_fork_server``: start a framework's app as a fork of a process
        that has imported the framework's server already (the framework's ``preload``;
        Dash: waitress, Flask and Dash; Voilà's, Bokeh's, Panel's and Streamlit's servers)
        instead of a new Python importing them: 0.25 to 1.2 CPU-s less per app, which a class
        opening a per-viewer dashboard pays once per student. The app is still the
        launcher's child, in a session of its own, as the account it would run as, with
        its own command line and environment in ``ps`` and ``/proc``; it shares with the
        fork server the imported code, Python's hash seed and the address layout (see
        SECURITY.md). Used for ``python -m <module>`` commands of the hub's own Python
        whose start-up variables (``PYTHON*``, ``LD_*``, ``LANG``, ``LC_*``) match the
        server's; any other app command runs as a new process.""",
    )

    def launcher_preload(self) -> tuple[str, ...]:
        """What the fork server of this start imports for apps (none here)."""
        return ()

    def forks(self) -> bool:
        return (
            self.launcher_fork_server
            and not self.shell_cmd
            and not self.popen_kwargs
            and list(self.cmd) == FORKABLE_COMMAND
        )

    async def start(self) -> Any:
        if not self.forks():
            return await super().start()
        port: int = self.port or random_port()  # type: ignore[has-type]  # as LocalProcessSpawner
        self.port = port
        env = self.get_env()
        args = self.get_args()
        self.log.info("Forking launcher: %s", " ".join(shlex.quote(a) for a in args))
        try:
            preload = self.launcher_preload() if self.preload_apps else ()
            server = fork_server(preload)
            self.proc = await server.start(args, env, self.launcher_identity())
        except (ForkServerError, OSError) as e:
            self.log.warning("%s Starting the launcher as a new process instead.", e)
            return await super().start()
        self.pid = self.proc.pid
        self.log.info("Forked launcher pid %s for %s", self.pid, self._log_name)
        return (self.ip or "127.0.0.1", port)
