"""The dashboard app as a child process of the launcher.

Starts the app from an argv list (never a shell), keeps the tail of its
output for the owner's start-up page, waits until its readiness path
answers (asking over HTTP only once its port accepts connections: a refused
connect costs a fraction of an HTTP client's attempt, and a class starting
together waits seconds), and reports when it exits. The app runs in its own process group
so that stopping it also stops what it started (Voilà's kernels).

simpervisor was considered: it restarts a process that exits with an error,
which would hide a crashing dashboard from its owner and from the hub, so
the few lines needed here use asyncio directly.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from .appfork import ForkedApp, take_prepared
from .ports import AppPort
from .procself import PR_SET_PDEATHSIG, prctl

log = logging.getLogger("hub_viz.launcher")


class AppState(str, enum.Enum):
    """Lifecycle of the app behind the launcher."""

    STARTING = "starting"
    READY = "ready"
    FAILED = "failed"
    EXITED = "exited"


def _die_with_parent() -> None:
    """Ask Linux to SIGTERM the app if the launcher dies without cleaning up."""
    prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class AppProcess:
    """One app process: start, readiness, output tail, exit."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: str,
        ready_url: str,
        ready_headers: Mapping[str, str] | None = None,
        port: AppPort | None = None,
        log_lines: int = 200,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.ready_url = ready_url
        self.ready_headers = dict(ready_headers or {})
        self.port = port  # held for the app; what listens there must be the app
        self.tail: collections.deque[str] = collections.deque(maxlen=log_lines)
        self.state = AppState.STARTING
        self.message = ""
        self.started_at = time.monotonic()
        self.ready_at: float | None = None
        self.returncode: int | None = None
        self.proc: asyncio.subprocess.Process | ForkedApp | None = None
        self.exited = asyncio.Event()

    @property
    def elapsed(self) -> float:
        """Seconds since start (until ready, once it is)."""
        end = self.ready_at if self.ready_at is not None else time.monotonic()
        return end - self.started_at

    async def start(self) -> None:
        """Start the app; its output goes to the tail and the launcher's stderr."""
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        self.started_at = time.monotonic()
        prepared = take_prepared()  # a forked launcher's process prepared for the app
        try:
            if prepared is not None:
                self.proc = await prepared.start(self.argv, self.env, self.cwd)
                if self.proc.runs_here:
                    log.info("The app runs as a fork with its framework imported already")
            else:
                self.proc = await asyncio.create_subprocess_exec(
                    *self.argv,
                    cwd=self.cwd,
                    env=self.env,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=preexec,
                )
        except OSError as e:
            self.fail(f"The app could not be started: {e.strerror or e}.")
            self.exited.set()
            return
        asyncio.ensure_future(self._pump_output())
        asyncio.ensure_future(self._watch_exit())

    async def _pump_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while True:
            line = await self.proc.stdout.readline()
            if not line:
                break
            text = line.decode("utf-8", "replace").rstrip()
            self.tail.append(text)
            print(f"[app] {text}", file=sys.stderr, flush=True)

    async def _watch_exit(self) -> None:
        assert self.proc is not None
        self.returncode = await self.proc.wait()
        if self.state is AppState.STARTING:
            self.fail(f"The app exited with code {self.returncode} before it was ready.")
        elif self.state is AppState.READY:
            self.state = AppState.EXITED
            self.message = f"The app exited with code {self.returncode}."
        self.exited.set()

    def fail(self, message: str) -> None:
        """Mark the app failed to start, with a reason its owner reads."""
        self.state = AppState.FAILED
        self.message = message

    def listened_by_app(self) -> bool:
        """What listens on the app's port is the app's (its process group); True where
        that cannot be told."""
        if self.port is None or self.proc is None:
            return True
        verdict = self.port.listened_by_group(self.proc.pid)  # its own session and group
        if verdict is False:
            log.warning("Port %d listens, but not in the app's processes", self.port.number)
        return verdict is not False

    async def listening(self) -> bool:
        """The readiness URL's port accepts a connection (closed at once, nothing sent)."""
        url = urlsplit(self.ready_url)
        with socket.socket(socket.AF_INET) as sock:
            sock.setblocking(False)
            try:
                await asyncio.wait_for(
                    asyncio.get_running_loop().sock_connect(sock, (url.hostname, url.port)), 1.0
                )
            except (OSError, asyncio.TimeoutError):
                return False
        return True

    async def wait_ready(self, timeout: float) -> bool:
        """Poll the readiness URL until it answers below 500, the app exits, or time runs out."""
        client = AsyncHTTPClient()
        deadline = time.monotonic() + timeout
        delay = 0.05
        listening = False
        while self.state is AppState.STARTING:
            if time.monotonic() > deadline:
                self.fail(f"The app did not answer within {timeout:g} seconds.")
                await self.stop()
                return False
            if not listening:
                listening = await self.listening()
                if listening and not self.listened_by_app():
                    self.fail(
                        "Another program is listening on the app's port, so the app "
                        "cannot serve there."
                    )
                    await self.stop()
                    return False
            if not listening:
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 0.2)
                continue
            request = HTTPRequest(
                self.ready_url,
                headers=self.ready_headers,
                # an app that accepts but never answers must not outlast the timeout
                request_timeout=max(0.1, min(5.0, deadline - time.monotonic())),
                follow_redirects=False,
            )
            try:
                response = await client.fetch(request, raise_error=False)
                code = response.code
            except (OSError, HTTPClientError):  # refused, or accepted but never answered
                code = 599
            if code < 500 and self.state is AppState.STARTING:
                self.state = AppState.READY
                self.ready_at = time.monotonic()
                return True
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.2)
        return self.state is AppState.READY

    async def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the app's process group, then SIGKILL after ``grace`` seconds."""
        if self.proc is None or self.proc.returncode is not None:
            return
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                await asyncio.wait_for(self.proc.wait(), wait)
                return
            except asyncio.TimeoutError:
                log.warning("App process %s ignored signal %s", self.proc.pid, sig.name)
