"""Which system account runs a dashboard on one machine, and with which home.

An instance runs its *author's* code. When the server belongs to someone
else (a per-viewer instance started for a viewer, a warm-pool instance),
running it as the server's owner would hand the author that person's
account: their files, and a home where ``~/.ipython/profile_default/startup``
runs in every kernel they start later. Such instances run as a sandbox
account with a throw-away home (a fresh private folder, removed when the
instance stops) and none of the owner's environment.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jupyterhub.spawner import set_user_setuid

from .errors import HubVizError

HOME_PREFIX = "hub-viz-home-"


class SandboxError(HubVizError):
    """Another author's code cannot run here as configured."""


@dataclass(frozen=True)
class RunAs:
    """Who runs an instance: ``account`` (None: the hub's own) and whether it is sandboxed.

    ``sandboxed`` means another author's code: a throw-away home and no
    per-user environment, whatever the account.
    """

    account: str | None
    sandboxed: bool


def lookup(account: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(account)
    except KeyError:
        return None


def choose_account(
    *,
    owner: str,
    author: str,
    run_as_hub_user: bool,
    sandbox_user: str,
    allow_run_as_viewer: bool,
    find: Callable[[str], Any] = lookup,
) -> RunAs:
    """The account for ``author``'s code in a server of ``owner``; raises :class:`SandboxError`."""
    if author == owner:
        return RunAs(None if run_as_hub_user else owner, sandboxed=False)
    if run_as_hub_user:
        return RunAs(None, sandboxed=True)
    entry = find(sandbox_user) if sandbox_user else None
    if entry is not None:
        if entry.pw_uid == 0 or entry.pw_uid == os.getuid():
            raise SandboxError(
                "This hub's sandbox account for other authors' dashboards is privileged; "
                "an administrator must set DashboardLocalSpawner.sandbox_user to an "
                "unprivileged account.",
                log_message=f"sandbox_user {sandbox_user!r} has uid {entry.pw_uid}",
            )
        return RunAs(sandbox_user, sandboxed=True)
    if allow_run_as_viewer:
        return RunAs(owner, sandboxed=True)
    raise SandboxError(
        f"This dashboard runs {author}'s code, which this hub runs only as its sandbox "
        f"account {sandbox_user!r}, and that account does not exist on this machine. "
        f"An administrator must create it (useradd --system {sandbox_user}) or set "
        "DashboardLocalSpawner.sandbox_user.",
        log_message=f"sandbox_user {sandbox_user!r} does not exist and allow_run_as_viewer is off",
    )


def make_home(account: str | None) -> Path:
    """A fresh private folder (0700) owned by ``account`` (None: the hub's own user)."""
    home = Path(tempfile.mkdtemp(prefix=HOME_PREFIX))
    if account is not None:
        entry = pwd.getpwnam(account)
        os.chown(home, entry.pw_uid, entry.pw_gid)
    return home


def remove_home(path: str) -> None:
    """Remove a throw-away home made by :func:`make_home` (never anything else)."""
    home = Path(path)
    if home.name.startswith(HOME_PREFIX) and home.parent == Path(tempfile.gettempdir()):
        shutil.rmtree(home, ignore_errors=True)


def preexec_fn(account: str | None, home: str) -> Callable[[], None]:
    """Run as ``account`` (None: stay the hub's user), starting in ``home``."""
    drop = set_user_setuid(account, chdir=False) if account is not None else None

    def preexec() -> None:
        if drop is not None:
            drop()
        os.chdir(home)

    return preexec


def sandbox_env(env: dict[str, str], run: RunAs, home: str) -> dict[str, str]:
    """USER, HOME and SHELL of a sandboxed instance: its account's, and the throw-away home."""
    env["HOME"] = home
    if run.account is not None:
        env["USER"] = run.account
        env.pop("SHELL", None)
        shell = pwd.getpwnam(run.account).pw_shell
        if shell:
            env["SHELL"] = shell
    return env


async def can_read(account: str, folder: str, entry: str) -> bool:
    """Can ``account`` enter ``folder`` and read ``entry`` in it? Asked as that account."""
    proc = await asyncio.create_subprocess_exec(
        "test",
        "-x",
        folder,
        "-a",
        "-r",
        os.path.join(folder, entry),
        preexec_fn=set_user_setuid(account, chdir=False),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin"},
    )
    return await proc.wait() == 0


async def can_write(account: str, folder: str) -> bool:
    """Can ``account`` enter and write ``folder``? Asked as that account."""
    proc = await asyncio.create_subprocess_exec(
        "test",
        "-x",
        folder,
        "-a",
        "-w",
        folder,
        preexec_fn=set_user_setuid(account, chdir=False),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        env={"PATH": "/usr/bin:/bin"},
    )
    return await proc.wait() == 0
