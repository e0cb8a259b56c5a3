"""The app's port on 127.0.0.1: reserved for the launcher's life, and checked to be the app's.

A port found free by binding to port 0 and closing again is free for anyone
until the app binds it, seconds later once its imports are done. Meanwhile
the next process on the machine that asks for a free port (another launcher
for its app, JupyterHub for its next server) can be given the same one; the
launcher would then take the other app's answer for its own app's readiness
and send its viewers to that app.

So the launcher keeps the port bound (``SO_REUSEADDR``, never listening) for
as long as it runs: the kernel hands it to no one asking for a free port, and
the app, whose server binds with ``SO_REUSEADDR`` as every common one does
(tornado, waitress, uvicorn, libuv, Go), can still listen on it. Before the
app counts as ready the launcher also checks that what listens on the port
belongs to the app's process group (Linux's ``/proc``), so another program
listening there, by chance or on purpose, is never taken for the app.
"""

from __future__ import annotations

import os
import socket

HOST = "127.0.0.1"
LISTEN = "0A"  # a socket's state in /proc/net/tcp


class AppPort:
    """A port on 127.0.0.1 held for the app: ``number`` is what the app is told to use."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((HOST, 0))  # bound, not listening: connections are refused
        self.number: int = self.socket.getsockname()[1]

    def close(self) -> None:
        self.socket.close()

    def listened_by_group(self, pgid: int) -> bool | None:
        """Every socket listening on the port belongs to a process of group ``pgid``;
        None where that cannot be told (no ``/proc``)."""
        listening = listening_sockets(self.number)
        held = group_sockets(pgid)
        if listening is None or held is None:
            return None
        return bool(listening) and listening <= held


def listening_sockets(port: int) -> set[int] | None:
    """The inodes of the sockets listening on ``port`` (any address, IPv4 and IPv6)."""
    found: set[int] = set()
    read_any = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        read_any = True
        for line in lines:
            fields = line.split()
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if (
                len(fields) > 9
                and fields[3] == LISTEN
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                found.add(int(fields[9]))
    return found if read_any else None


def group_sockets(pgid: int) -> set[int] | None:
    """The inodes of the sockets the processes of group ``pgid`` hold; None when one
    of them cannot be looked into (the app runs as the launcher's account, so only an
    app that made itself non-dumpable)."""
    inodes: set[int] = set()
    for pid in group_members(pgid):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except PermissionError:
            return None
        except OSError:  # it ended meanwhile
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def group_members(pgid: int) -> list[int]:
    """The pids of process group ``pgid``."""
    members = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 2 and int(fields[2]) == pgid:
            members.append(int(name))
    return members
