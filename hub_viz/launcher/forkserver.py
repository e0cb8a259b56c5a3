"""A fork server for local launchers: ``python -m hub_viz.launcher.forkserver --fd N``.

The local spawner starts one per hub process (:mod:`hub_viz.forkstart`). It has
imported the launcher's modules once; each start is a fork of it instead of a
new interpreter importing them again, which a class opening a per-viewer
dashboard pays thirty times at once (about 0.1 CPU-s each), and the instances
share those modules' memory.

Protocol on the inherited socket ``N`` (``SOCK_SEQPACKET``, from the hub):

* hub → server: ``fork`` with one file descriptor, a socket for that start alone;
* server → hub: ``exit <pid> <status>`` when a child ends (``status`` as
  :attr:`subprocess.Popen.returncode`: negative for a signal).

The server forks at once and reads nothing else: the child reads what the start is
(arguments, environment, account, stdio) from its own socket, answers with its pid,
becomes that account and runs the launcher. So the server never holds a start's token
and no later child inherits one. It has no threads (a fork copies only the caller's),
and it exits when the hub's end closes.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import selectors
import signal
import socket
import sys
import threading
from typing import Any, NoReturn

from . import appfork
from .procself import become, hide_from_the_app, look_like, run_as_main

# a start's request: arguments and environment (a few KiB)
MAX_REQUEST = 1024 * 1024

STDIO = 3  # file descriptors a request passes: the child's stdin, stdout and stderr


def take_stdio(fds: list[int]) -> None:
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        if fd > 2:
            os.close(fd)


def run_child(conn: socket.socket) -> NoReturn:
    """The forked child: read its start, answer with its pid, run the launcher."""
    request: dict[str, Any] = {}
    # the app's process, forked before the start (and its token) is read
    prepared = appfork.prepare() if appfork.enabled() else None
    try:
        data, fds, _flags, _addr = socket.recv_fds(conn, MAX_REQUEST, STDIO)
        request = json.loads(data)
        if len(fds) != STDIO:
            raise ValueError(f"expected {STDIO} file descriptors, got {len(fds)}")
        os.setsid()  # as Popen's start_new_session: the hub's signals are not ours
        take_stdio(fds)
        if prepared is not None:
            prepared.become(request.get("identity"))
        become(request.get("identity"))
        os.environ.clear()
        os.environ.update(request["env"])
        random.seed()  # not the server's sequence
        hide_from_the_app()  # before its environment, with the token, shows in /proc
        look_like(request.get("command") or request["args"], request["env"], "hub-viz-launch")
        conn.sendall(json.dumps({"pid": os.getpid()}).encode())
    except Exception as e:
        message = f"{type(e).__name__}: {e}"
        try:
            conn.sendall(json.dumps({"pid": os.getpid(), "error": message}).encode())
        finally:
            os._exit(1)
    finally:
        conn.close()
    sys.argv = ["hub-viz-launch", *request["args"]]
    from .__main__ import main

    run_as_main(main, logging.shutdown)


class Server:
    """The fork server's loop: forks on request, reports exits."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        self.selector = selectors.DefaultSelector()

    def serve(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the hub's Ctrl-C: the hub stops us
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(self.wake_w)
        self.selector.register(self.sock, selectors.EVENT_READ)
        self.selector.register(self.wake_r, selectors.EVENT_READ)
        while True:
            for key, _ in self.selector.select():
                if key.fileobj is self.sock and not self.read_request():
                    return  # the hub is gone; running launchers go on without us
                if key.fileobj == self.wake_r:
                    while True:
                        try:
                            if not os.read(self.wake_r, 512):
                                break
                        except BlockingIOError:
                            break
            self.reap()

    def read_request(self) -> bool:
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, 64, 1)
        except InterruptedError:
            return True
        if not data:
            return False
        if data == b"fork" and len(fds) == 1:
            self.fork(fds[0])
        else:
            for fd in fds:
                os.close(fd)
        return True

    def fork(self, fd: int) -> None:
        pid = os.fork()
        if pid == 0:
            signal.set_wakeup_fd(-1)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            self.selector.close()
            for own in (self.wake_r, self.wake_w):
                os.close(own)
            self.sock.close()
            run_child(socket.socket(fileno=fd))
        os.close(fd)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            code = os.waitstatus_to_exitcode(status)
            try:
                self.sock.send(f"exit {pid} {code}".encode())
            except OSError:
                pass


def preload() -> None:
    """Import what every launcher imports (and its first grant's signature check)."""
    sys.modules.setdefault("curses", None)  # type: ignore[arg-type]  # as __main__.main
    import nacl.exceptions
    import nacl.signing  # noqa: F401

    from . import app  # noqa: F401


def main() -> None:
    parser = argparse.ArgumentParser(prog="hub_viz.launcher.forkserver")
    parser.add_argument("--fd", type=int, required=True, help="the hub's socket")
    parser.add_argument("--room", default="", help="room for each child's command line")
    parser.add_argument(
        "--preload",
        action="append",
        default=[],
        metavar="MODULE[:FUNCTION]",
        help="import (or call) this for apps too; each launcher then forks its app from a "
        "process prepared before its start is read (hub_viz.launcher.appfork)",
    )
    options = parser.parse_args()
    sock = socket.socket(fileno=options.fd)
    preload()
    appfork.preload(options.preload)
    if threading.active_count() > 1:  # a fork copies only the calling thread: not safe
        sys.exit("hub_viz.launcher.forkserver: an import started a thread; not forking")
    sock.send(b"ready")
    Server(sock).serve()


if __name__ == "__main__":
    main()
