"""The app as a fork of a process that has its framework imported already.

A fork server started with ``--preload`` (:mod:`hub_viz.launcher.forkserver`) has
imported a framework's server (Dash: waitress, Flask, Dash) once. Each launcher it
forks first forks again, before it reads its start: that second child is *prepared*
for the launcher's app. It holds nothing of the start (forked before the request, with
the token, was read), takes the launcher's account while the launcher still can give
it, and waits. When the launcher starts its app, the prepared process gets the app's
command, environment and folder, and then either runs the command's module in
itself (``python -m <module> …`` of this Python, with the framework imported: a fork
instead of an interpreter importing it: 0.25 CPU-s of a Dash app's 0.35, 0.8 for
Panel), or executes the command as a new process would be (any other command, or an
environment whose start-up variables differ from the fork server's).

Either way the app is the launcher's child in a session of its own, as
:class:`asyncio.subprocess.Process` would make it: its output comes through a pipe,
the launcher waits for it, and it is ended with the launcher.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import logging
import os
import random
import runpy
import signal
import site
import socket
import sys
import sysconfig
import traceback
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from .procself import (
    PR_SET_DUMPABLE,
    PR_SET_PDEATHSIG,
    become,
    look_like,
    prctl,
    run_as_main,
)

MAX_MESSAGE = 1024 * 1024  # an app's command and environment (a few KiB)

# Variables read when a program or Python starts (the loader, malloc, the interpreter, the
# locale of its streams): one that differs between the app's environment and the fork
# server's makes the app a new process, since a fork keeps what the server started with
START_VARIABLES = ("PYTHON", "LD_", "MALLOC_", "GLIBC_TUNABLES", "LANG", "LC_")
# ... except these, which a fork applies itself
APPLIED_SETTINGS = ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")

# top-level modules the fork server imported for apps (set by ``preload``)
preloaded: set[str] = set()

_prepared: PreparedApp | None = None


def preload(specs: Sequence[str]) -> None:
    """Import ``module`` or call ``module:function`` (which imports what it needs) for each
    spec; a command ``python -m <module>`` of these top-level modules runs in a fork."""
    import importlib

    for spec in specs:
        module_name, _, function = spec.partition(":")
        module = importlib.import_module(module_name)
        if function:
            getattr(module, function)()
        preloaded.add(module_name.split(".")[0])


def enabled() -> bool:
    return bool(preloaded)


# -- the launcher's side ------------------------------------------------------------


class ForkedApp:
    """The prepared process once it runs the app: what :class:`AppProcess` uses of
    :class:`asyncio.subprocess.Process` (``pid``, ``stdout``, ``wait()``, ``returncode``)."""

    def __init__(self, pid: int, output: int) -> None:
        self.pid = pid
        self.returncode: int | None = None
        self.runs_here = False  # the module runs in the prepared process (no new Python)
        self.stdout = asyncio.StreamReader()
        self._output = output
        self._exited = asyncio.Event()
        self._pidfd: int | None = None

    async def watch(self) -> None:
        loop = asyncio.get_running_loop()
        protocol = asyncio.StreamReaderProtocol(self.stdout)
        await loop.connect_read_pipe(lambda: protocol, os.fdopen(self._output, "rb", 0))
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except (AttributeError, OSError):  # Linux before 5.3: look every tenth of a second
            self._poll()
        else:
            loop.add_reader(self._pidfd, self._collect)
            self._collect()

    def _poll(self) -> None:
        self._collect()
        if self.returncode is None:
            asyncio.get_running_loop().call_later(0.1, self._poll)

    def _collect(self) -> None:
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # collected elsewhere: its status is lost
            pid, status = self.pid, 255 << 8
        if pid == 0:
            return
        self.returncode = os.waitstatus_to_exitcode(status)
        if self._pidfd is not None:
            asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        self._exited.set()

    async def wait(self) -> int:
        await self._exited.wait()
        assert self.returncode is not None
        return self.returncode


class PreparedApp:
    """The launcher's handle on its prepared process (its child)."""

    def __init__(self, pid: int, control: socket.socket, output: int) -> None:
        self.pid = pid
        self.control = control
        self.output = output

    def become(self, identity: dict[str, Any] | None) -> None:
        """Send the account the app runs as (while the launcher is still the server's
        account: the prepared process takes no account from a later message)."""
        self.control.sendall(json.dumps({"identity": identity}).encode())

    async def start(self, argv: Sequence[str], env: Mapping[str, str], cwd: str) -> ForkedApp:
        """Run the app in the prepared process; OSError if its command cannot run."""
        message = json.dumps({"argv": list(argv), "env": dict(env), "cwd": cwd}).encode()
        if len(message) > MAX_MESSAGE:
            raise OSError("The app's command and environment are too large.")
        loop = asyncio.get_running_loop()
        self.control.setblocking(False)
        app = ForkedApp(self.pid, self.output)
        try:
            await loop.sock_sendall(self.control, message)
            answer = await loop.sock_recv(self.control, 65536)  # "" once it executed the command
        except OSError as e:  # it ended before it took the app (its output says why)
            os.close(self.output)
            raise OSError(f"the process prepared for the app ended ({e.strerror or e})") from e
        finally:
            self.control.close()
        await app.watch()
        if answer:
            reply = json.loads(answer)
            if "error" in reply:
                await app.wait()
                raise OSError(reply["error"])
            app.runs_here = reply.get("runs") == "here"
        return app


def take_prepared() -> PreparedApp | None:
    """The prepared process of this launcher, once (None where there is none)."""
    global _prepared
    prepared, _prepared = _prepared, None
    return prepared


def prepare() -> PreparedApp:
    """Fork the prepared process (in a forked launcher, before it reads its start)."""
    global _prepared
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    out_r, out_w = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        code = 127
        try:
            ours.close()
            os.close(out_r)
            prepared_main(theirs, out_w, parent)
        except BaseException:
            with contextlib.suppress(Exception):
                traceback.print_exc()
        finally:
            os._exit(code)
    theirs.close()
    os.close(out_w)
    _prepared = PreparedApp(pid, ours, out_r)
    return _prepared


# -- the prepared process -----------------------------------------------------------


def receive(control: socket.socket) -> dict[str, Any] | None:
    data = control.recv(MAX_MESSAGE)
    return json.loads(data) if data else None


def prepared_main(control: socket.socket, output: int, parent: int) -> NoReturn:
    """Wait for the account, then the app; run it here or execute its command."""
    os.setsid()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    for target in (1, 2):
        os.dup2(output, target)
    keep = sorted({0, 1, 2, control.fileno()})
    for low, high in zip(keep, [*keep[1:], os.sysconf("SC_OPEN_MAX")], strict=True):
        os.closerange(low + 1, high)  # nothing of the launcher's (its start socket)

    message = receive(control)
    if message is None:
        os._exit(0)  # the launcher ended without an app
    identity = dict(message["identity"] or {})
    identity.pop("chdir", None)
    become(identity)
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)  # after the account: a change of it clears this
    if os.getppid() != parent:
        os._exit(0)

    start = receive(control)
    if start is None:
        os._exit(0)
    argv, env, cwd = start["argv"], start["env"], start["cwd"]
    try:
        os.chdir(cwd)
    except OSError as e:
        control.sendall(json.dumps({"error": f"{cwd}: {e.strerror}"}).encode())
        os._exit(127)
    if not runs_here(argv, env):
        for ignored in (signal.SIGPIPE, signal.SIGXFSZ):  # as Popen's restore_signals
            signal.signal(ignored, signal.SIG_DFL)
        try:
            os.execvpe(argv[0], argv, env)
        except OSError as e:
            control.sendall(json.dumps({"error": f"{argv[0]}: {e.strerror}"}).encode())
            os._exit(127)
    control.sendall(json.dumps({"runs": "here"}).encode())
    control.close()
    prctl(PR_SET_DUMPABLE, 1)  # as an executed app: its own /proc, debuggers (no secret here)
    run_module(argv, env, cwd)


def user_site(env: Mapping[str, str]) -> str:
    """The user site-packages folder a new Python with ``env`` would add (if it exists)."""
    base = env.get("PYTHONUSERBASE") or os.path.join(env.get("HOME", "~"), ".local")
    return sysconfig.get_path("purelib", f"{os.name}_user", vars={"userbase": base})


def runs_here(argv: Sequence[str], env: Mapping[str, str]) -> bool:
    """Is ``argv`` ``python -m <module>`` of this Python and a preloaded module, with the
    start-up variables the fork server had (but those a fork applies)?"""
    if len(argv) < 3 or argv[0] != sys.executable or argv[1] != "-m":
        return False
    if argv[2].split(".")[0] not in preloaded:
        return False
    names = {k for k in (*env, *os.environ) if k.startswith(START_VARIABLES)}
    if any(env.get(k) != os.environ.get(k) for k in names - set(APPLIED_SETTINGS)):
        return False
    if site.ENABLE_USER_SITE and (
        os.path.isdir(user_site(env)) or (site.USER_SITE or "") in sys.path
    ):
        return False  # a user site-packages folder a new Python would see, or this one's
    return True


def run_module(argv: Sequence[str], env: Mapping[str, str], cwd: str) -> NoReturn:
    """``python -m <module> args…`` in this process, as a new interpreter would run it."""
    os.environ.clear()
    os.environ.update(env)
    if env.get("PYTHONUNBUFFERED"):
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(write_through=True)  # type: ignore[union-attr]
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    look_like(list(argv), dict(env), os.path.basename(argv[0]))
    if "tempfile" in sys.modules:  # found again from the app's TMPDIR, if the server chose
        import tempfile

        tempfile.tempdir = None
    random.seed()  # (Python does this at a fork too) not the server's sequence
    if "numpy.random" in sys.modules:  # a preloaded numpy: its global generator as well
        with contextlib.suppress(Exception):
            sys.modules["numpy.random"].seed()
    logging.root.handlers.clear()
    logging.root.setLevel(logging.WARNING)
    sys.path[0] = os.getcwd()  # `-m` puts the working folder first
    sys.argv[:] = [argv[2], *argv[3:]]  # in place: a module may hold the list (waitress)
    run_as_main(
        lambda: runpy.run_module(argv[2], run_name="__main__", alter_sys=True),
        atexit._run_exitfuncs,
    )
