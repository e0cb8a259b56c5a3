"""Cloning a dashboard's git source where the dashboard runs, never in the hub.

:func:`fetch_git` checks the URL again, resolves its host to public
addresses only (:mod:`hub_viz.netcheck`) and clones with those addresses
pinned (``http.curloptResolve``), so a DNS answer that changes after the
check is never used. git runs without a shell and with its configuration
cut down to what a clone of a public repository needs: https only at the
protocol level (``file`` only where the operator allows it), no redirects,
no credential helpers or prompts, no hooks, no submodules, no LFS downloads,
none of the user's or system's git configuration. The clone's folder is
watched while git runs: past the size cap, or past the time limit, git and
its helpers are killed and the partial clone removed.

The launcher calls it before starting the app (``hub-viz-launch --git-url``);
``python -m hub_viz.gitfetch`` runs it on its own (a Kubernetes init container).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from .errors import SpecError
from .netcheck import Resolver
from .sources import (
    ALLOWED_SCHEMES,
    GitSource,
    check_git_host,
    check_git_ref,
    check_git_url,
    needs_pin,
)

DEFAULT_MAX_BYTES = 200 * 1000 * 1000
DEFAULT_TIMEOUT = 120.0
POLL_SECONDS = 0.25
# git variables kept from the environment: an operator's CA bundle for https.
KEEP_GIT_ENV = ("GIT_SSL_CAINFO", "GIT_SSL_CAPATH")
# http.curloptResolve, which pins the checked addresses, came with git 2.37.
PIN_NEEDS_GIT = (2, 37)


class GitTooLarge(SpecError):
    """The clone grew past the size cap."""


class GitTimeout(SpecError):
    """The clone took longer than the time limit."""


def megabytes(n: int) -> str:
    return f"{n / 1e6:g} MB"


def pin_for(url: str, addresses: Sequence[str]) -> str:
    """``host:port:addr[,addr]`` for ``http.curloptResolve``: curl connects to these only."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or 443
    shown = ",".join(f"[{a}]" if ":" in a else a for a in addresses)
    return f"{host}:{port}:{shown}"


def git_config(schemes: Sequence[str], pin: str | None) -> list[str]:
    """``-c`` options that hold for this one clone, whatever git's other configuration says."""
    settings = [
        ("protocol.allow", "never"),
        ("protocol.https.allow", "always"),
        ("http.followRedirects", "false"),
        ("credential.helper", ""),
        ("core.askPass", ""),
        ("core.hooksPath", os.devnull),
        ("submodule.recurse", "false"),
        ("transfer.bundleURI", "false"),
    ]
    if "file" in schemes:
        settings.append(("protocol.file.allow", "always"))
    if pin:
        settings.append(("http.curloptResolve", pin))
    argv: list[str] = []
    for key, value in settings:
        argv += ["-c", f"{key}={value}"]
    return argv


def git_env(base: Mapping[str, str], schemes: Sequence[str]) -> dict[str, str]:
    """git's environment: no hub credentials, no git variables but a CA bundle, no prompts."""
    env = {
        k: v
        for k, v in base.items()
        if not k.startswith(("GIT_", "JUPYTERHUB_", "JPY_", "HUB_VIZ_"))
        and k not in ("SSH_ASKPASS", "JUPYTER_TOKEN")
    }
    env.update({k: base[k] for k in KEEP_GIT_ENV if k in base})
    env.update(
        {
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_LFS_SKIP_SMUDGE": "1",
            "GIT_ALLOW_PROTOCOL": ":".join(s for s in ("https", "file") if s in schemes),
        }
    )
    return env


def clone_argv(source: GitSource, dest: Path, schemes: Sequence[str], pin: str | None) -> list[str]:
    return [
        "git",
        *git_config(schemes, pin),
        "clone",
        "--quiet",
        "--depth=1",
        "--single-branch",
        f"--branch={source.ref}",
        "--",
        source.url,
        str(dest),
    ]


def folder_size(path: Path) -> int:
    """Bytes of every file under ``path`` (files vanishing while git works are skipped)."""
    total = 0
    stack = [str(path)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        else:
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def _kill_group(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


async def run_capped(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    watch: Path,
    max_bytes: int,
    timeout: float,
    poll: float = POLL_SECONDS,
) -> tuple[int, str]:
    """Run ``argv`` while ``watch`` stays under ``max_bytes`` and time under ``timeout``.

    Returns the exit code and the output's last lines. Past either limit the
    process group is killed (git's helpers too) and GitTooLarge or
    GitTimeout raised; the caller removes the folder.
    """
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=dict(env),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    output = asyncio.ensure_future(proc.communicate())
    deadline = time.monotonic() + timeout
    try:
        while True:
            wait = max(0.0, min(poll, deadline - time.monotonic()))
            done, _ = await asyncio.wait({output}, timeout=wait)
            size = folder_size(watch)
            if size > max_bytes:
                raise GitTooLarge(
                    f"The git repository is larger than the {megabytes(max_bytes)} this hub "
                    "allows for a dashboard's source.",
                    log_message=f"clone stopped at {size} bytes (cap {max_bytes})",
                )
            if done:
                out, _ = output.result()
                lines = out.decode("utf-8", "replace").strip().splitlines()
                return proc.returncode or 0, "\n".join(lines[-5:])
            if time.monotonic() >= deadline:
                raise GitTimeout(f"Fetching the git source took longer than {timeout:g} s.")
    finally:
        if proc.returncode is None:
            _kill_group(proc)
            with contextlib.suppress(Exception):
                await proc.wait()
        output.cancel()


async def git_version() -> tuple[int, int]:
    """(major, minor) of the git that clones; (0, 0) when it cannot say."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        "version",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    out, _ = await proc.communicate()
    match = re.search(rb"(\d+)\.(\d+)", out)
    return (int(match[1]), int(match[2])) if match else (0, 0)


def failure(source: GitSource, detail: str) -> SpecError:
    """What the author reads when git failed, with git's own words in the log only."""
    message = f"Could not fetch ref {source.ref!r} from the git repository."
    if any(f"error: {code}" in detail for code in ("301", "302", "303", "307", "308")):
        message += (
            " The server answered with a redirect, which is not followed: use the "
            "repository's final https URL."
        )
    return SpecError(message, log_message=f"git clone {source.url} {source.ref} failed: {detail}")


async def clone(
    source: GitSource,
    dest: Path,
    *,
    schemes: Sequence[str],
    pin: str | None,
    max_bytes: int,
    timeout: float,
) -> None:
    """Clone ``source`` (depth 1) into the new folder ``dest``; nothing is left on failure."""
    if pin and await git_version() < PIN_NEEDS_GIT:
        # an older git ignores http.curloptResolve and would look the name up again
        raise SpecError(
            "git on this server is too old to fetch git sources safely (it needs 2.37 or "
            "later); ask the hub's operator to update it."
        )
    argv = clone_argv(source, dest, schemes, pin)
    try:
        code, detail = await run_capped(
            argv,
            env=git_env(os.environ, schemes),
            watch=dest,
            max_bytes=max_bytes,
            timeout=timeout,
        )
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    if code != 0:
        shutil.rmtree(dest, ignore_errors=True)
        raise failure(source, detail.splitlines()[-1] if detail else f"exit code {code}")


SHA = re.compile(r"^[0-9a-f]{40}$")


def is_commit(ref: str) -> bool:
    """A full commit SHA (what a version pins), not a branch or tag name."""
    return bool(SHA.fullmatch(ref))


def commit_argvs(
    source: GitSource, dest: Path, schemes: Sequence[str], pin: str | None
) -> list[list[str]]:
    """The git commands that check out one commit (depth 1) into ``dest``."""
    config = git_config(schemes, pin)
    return [
        ["git", "init", "--quiet", str(dest)],
        [
            "git",
            "-C",
            str(dest),
            *config,
            "fetch",
            "--quiet",
            "--depth=1",
            "--no-tags",
            "--",
            source.url,
            source.ref,
        ],
        [
            "git",
            "-C",
            str(dest),
            "-c",
            f"core.hooksPath={os.devnull}",
            "checkout",
            "--quiet",
            "FETCH_HEAD",
        ],
    ]


async def clone_commit(
    source: GitSource,
    dest: Path,
    *,
    schemes: Sequence[str],
    pin: str | None,
    max_bytes: int,
    timeout: float,
) -> None:
    """Check out commit ``source.ref`` into the new folder ``dest``; nothing left on failure."""
    deadline = time.monotonic() + timeout
    try:
        for argv in commit_argvs(source, dest, schemes, pin):
            code, detail = await run_capped(
                argv,
                env=git_env(os.environ, schemes),
                watch=dest,
                max_bytes=max_bytes,
                timeout=max(0.0, deadline - time.monotonic()),
            )
            if code != 0:
                raise failure(source, detail.splitlines()[-1] if detail else f"exit code {code}")
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


async def resolve_commit(
    source: GitSource,
    *,
    schemes: Sequence[str] = ALLOWED_SCHEMES,
    timeout: float = 30.0,
    resolver: Resolver | None = None,
) -> str:
    """The commit SHA that branch or tag ``source.ref`` points at now (``git ls-remote``,
    with the clone's protections: checked public host pinned, no redirects, no
    credentials); SpecError when it cannot say."""
    url = check_git_url(source.url, tuple(schemes))
    ref = check_git_ref(source.ref)
    if is_commit(ref):
        return ref
    addresses = await check_git_host(url, resolver, timeout=timeout)
    pin = pin_for(url, addresses) if needs_pin(url) else None
    if pin and await git_version() < PIN_NEEDS_GIT:
        raise SpecError(
            "git on this server is too old to reach git sources safely (it needs 2.37 or "
            "later); ask the hub's operator to update it."
        )
    argv = [
        "git",
        *git_config(schemes, pin),
        "ls-remote",
        "--",
        url,
        f"refs/heads/{ref}",
        f"refs/tags/{ref}",
        f"refs/tags/{ref}^{{}}",
    ]
    with tempfile.TemporaryDirectory(prefix="hub-viz-ls-remote-") as watch:
        code, detail = await run_capped(
            argv,
            env=git_env(os.environ, schemes),
            watch=Path(watch),
            max_bytes=1,
            timeout=timeout,
        )
    if code != 0:
        raise failure(GitSource(url, ref), detail.splitlines()[-1] if detail else str(code))
    found: dict[str, str] = {}
    for line in detail.splitlines():
        sha, _, name = line.partition("\t")
        if SHA.fullmatch(sha.strip()):
            found[name.strip()] = sha.strip()
    for name in (f"refs/heads/{ref}", f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}"):
        if name in found:
            return found[name]
    raise SpecError(
        f"The git repository has no branch or tag {ref!r}.",
        log_message=f"git ls-remote {url} {ref}: no such ref",
    )


async def fetch_git(
    source: GitSource,
    dest: Path,
    *,
    schemes: Sequence[str] = ALLOWED_SCHEMES,
    max_bytes: int = DEFAULT_MAX_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
    resolver: Resolver | None = None,
) -> None:
    """Check ``source``, resolve its host to public addresses, and clone it pinned to them."""
    url = check_git_url(source.url, tuple(schemes))
    source = GitSource(url, check_git_ref(source.ref))
    started = time.monotonic()
    addresses = await check_git_host(url, resolver, timeout=timeout)
    pin = pin_for(url, addresses) if needs_pin(url) else None
    left = max(0.0, timeout - (time.monotonic() - started))
    if is_commit(source.ref):  # a version's pinned commit: fetched by its SHA
        if pin and await git_version() < PIN_NEEDS_GIT:
            raise SpecError(
                "git on this server is too old to fetch git sources safely (it needs 2.37 "
                "or later); ask the hub's operator to update it."
            )
        await clone_commit(
            source, dest, schemes=schemes, pin=pin, max_bytes=max_bytes, timeout=left
        )
        return
    await clone(source, dest, schemes=schemes, pin=pin, max_bytes=max_bytes, timeout=left)


def main(argv: list[str] | None = None) -> None:
    """``python -m hub_viz.gitfetch URL REF DEST``: one checked clone (an init container)."""
    parser = argparse.ArgumentParser(prog="python -m hub_viz.gitfetch", description=__doc__)
    parser.add_argument("url")
    parser.add_argument("ref")
    parser.add_argument("dest", help="A folder that does not exist yet, or is empty.")
    parser.add_argument("--schemes", default="https", help="Allowed URL schemes, comma separated.")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    options = parser.parse_args(argv)
    try:
        asyncio.run(
            fetch_git(
                GitSource(options.url, options.ref),
                Path(options.dest),
                schemes=tuple(s for s in options.schemes.split(",") if s),
                max_bytes=options.max_bytes,
                timeout=options.timeout,
            )
        )
    except SpecError as e:
        print(e.message, file=sys.stderr)
        print(e.log_message, file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
