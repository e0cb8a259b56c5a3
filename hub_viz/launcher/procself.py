"""This process as the kernel sees it: its account, its ``prctl`` settings, and how it
shows in ``/proc`` (shared by the launcher, its fork server and a forked app)."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NAME = 1, 4, 15


def prctl(option: int, arg: int | bytes) -> None:
    """Linux's ``prctl(option, arg)`` for this process; nothing where there is no
    ``libc.so.6`` (not Linux)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(option, arg, 0, 0, 0)


def hide_from_the_app() -> None:
    """Make the launcher's process non-dumpable (Linux): its ``/proc`` files (``environ``
    with the server's token, ``mem``) then belong to root, so the app, which runs as the
    same account, can neither read them nor ptrace the launcher. The app's own exec makes
    the app dumpable again (its debuggers and profilers work as bare); an app forked from
    a prepared process sets it back itself (:mod:`hub_viz.launcher.appfork`)."""
    prctl(PR_SET_DUMPABLE, 0)


def become(identity: dict[str, Any] | None) -> None:
    """Take the start's account (as JupyterHub's ``set_user_setuid`` does) and folder."""
    if not identity:
        return
    if "uid" in identity:
        os.setgid(identity["gid"])
        try:
            os.setgroups(identity["groups"])
        except OSError:
            os.setgroups([])  # no group of the server's user at least
        os.setuid(identity["uid"])
    if identity.get("chdir"):
        try:
            os.chdir(identity["chdir"])
        except OSError as e:
            if identity.get("must_chdir", True):
                raise
            print(f"Could not enter {identity['chdir']}: {e.strerror}", file=sys.stderr)


def proc_areas() -> tuple[tuple[int, int], tuple[int, int]]:
    """Where this process's command line and environment lie, as ``/proc/self/stat`` says
    (``arg_start``, ``arg_end``, ``env_start``, ``env_end``: fields 48 to 51)."""
    with open("/proc/self/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    arg_start, arg_end, env_start, env_end = (int(v) for v in fields[45:49])
    return (arg_start, arg_end), (env_start, env_end)


def rewrite(area: tuple[int, int], items: list[str]) -> None:
    """Write NUL-separated ``items`` over ``area`` (the server's own, no longer used),
    leaving out those beyond its room and NULs after the last."""
    import ctypes

    start, end = area
    data = b""
    for item in items:
        encoded = item.encode(errors="surrogateescape") + b"\0"
        if len(data) + len(encoded) > end - start:
            break
        data += encoded
    ctypes.memmove(start, data, len(data))
    ctypes.memset(start + len(data), 0, end - start - len(data))


def look_like(argv: list[str], env: dict[str, str], name: str) -> None:
    """Make ``/proc/<pid>/cmdline`` and ``environ`` (what ``ps``, ``top`` and operators'
    tools read) ``argv`` and ``env``, as if this process had been started with them: the
    hub starts the server with room for them (``hub_viz.forkstart.ROOM``). Its name
    (``comm``) becomes ``name``."""
    prctl(PR_SET_NAME, name.encode(errors="replace")[:15])
    with contextlib.suppress(OSError, ValueError):
        args_area, env_area = proc_areas()
        rewrite(args_area, argv)
        rewrite(env_area, [f"{k}={v}" for k, v in env.items()])


def run_as_main(main: Callable[[], object], at_exit: Callable[[], object]) -> NoReturn:
    """Run ``main`` as an interpreter runs its main module in a forked child, and end this
    process with the exit status the interpreter would give: ``SystemExit``'s code (a
    message printed: 1), 1 after an uncaught exception (its traceback printed); then
    ``at_exit`` and the flushed standard streams. Never unwinds into the forking code."""
    code = 0
    try:
        main()
    except SystemExit as e:
        if isinstance(e.code, str):
            print(e.code, file=sys.stderr)
            code = 1
        else:
            code = e.code or 0
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            at_exit()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    os._exit(code)
