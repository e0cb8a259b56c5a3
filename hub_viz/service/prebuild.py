"""A dashboard's environment built when it is published, before anyone opens it.

Where the service can read the dashboard's files (a hub on one machine, a
source in the owner's folder), publishing or updating a dashboard that
declares requirements starts ``python -m hub_viz.envbuild`` in the background:
the same builder, root and settings as the hub's starts, so the author reads
the build's log (or the resolver's message) on the manage page at once, and the
first viewer's start finds the environment built. Builds of one lock queue on
file locks in the root, whoever started them (:class:`~hub_viz.environments.
LockingBuilder`). A git source is fetched at its version's commit to read its
requirement file (:mod:`hub_viz.gitreqs`). Kubernetes hubs build at the first start.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import sys
from pathlib import Path, PurePosixPath

from ..errors import HubVizError
from ..gitfetch import is_commit
from ..requirements import find_requirements, requirement_folders
from ..spec import resolve_spec
from .dashboards import Policy

log = logging.getLogger(__name__)
_RUNNING: set[asyncio.Task] = set()


def build_command(policy: Policy, d: object) -> list[str] | None:
    """The build's command for dashboard ``d``, or None (nothing to build here)."""
    env = policy.environments
    if not env.get("enabled", True) or not env.get("root"):
        return None
    if getattr(d, "source_type", "") == "git":
        return git_build_command(policy, d)
    if not policy.check_files:
        return None
    root = Path(policy.dashboards_root.format(username=d.owner))  # type: ignore[attr-defined]
    try:
        spec = resolve_spec(
            {"framework": d.framework, "entry": d.entry, "mode": d.mode},  # type: ignore[attr-defined]
            root=root,
            frameworks=policy.frameworks,
            allowed_frameworks=policy.allowed_frameworks,
            check_files=True,
        )
        reqs = find_requirements(
            requirement_folders(Path(spec.cwd), spec.entry),
            allow_urls=bool(env.get("allow_requirement_urls")),
            within=root,
        )
    except (HubVizError, OSError):  # the hub says why when it starts
        return None
    if reqs is None:
        return None
    ref = f"{d.owner}/{d.slug}"  # type: ignore[attr-defined]
    key = hashlib.sha256(f"publish\0{ref}\0{spec.cwd}\0{spec.entry}".encode()).hexdigest()[:40]
    return envbuild_command(
        policy, d, key, f"--source-root={root}", f"--cwd={spec.cwd}", f"--entry={spec.entry}"
    )


def envbuild_command(policy: Policy, d: object, key: str, *source: str) -> list[str]:
    """``python -m hub_viz.envbuild`` for ``d``, its ``source`` options, result ``key``."""
    env = policy.environments
    return [
        sys.executable,
        "-m",
        "hub_viz.envbuild",
        f"--root={env['root']}",
        *source,
        f"--dashboard={d.owner}/{d.slug}",  # type: ignore[attr-defined]
        f"--key={key}",
        f"--settings={json.dumps(env.get('builder') or {})}",
        *version_args(d),
    ]


def version_args(d: object) -> list[str]:
    """``--version`` of the build: the dashboard's version it is for (kept on it)."""
    number = getattr(d, "current_version", None)
    return [f"--version={number}"] if isinstance(number, int) else []


def git_build_command(policy: Policy, d: object) -> list[str] | None:
    """The build's command for a git dashboard whose version pins a commit: the build
    fetches that commit to read its requirement file (and keeps the answer for the
    hub's starts, :mod:`hub_viz.gitreqs`)."""
    commit = getattr(d, "commit", "") or ""
    if not policy.environments.get("local") or not is_commit(commit):
        return None
    entry = PurePosixPath(d.entry)  # type: ignore[attr-defined]
    ref = f"{d.owner}/{d.slug}"  # type: ignore[attr-defined]
    key = hashlib.sha256(f"publish-git\0{ref}\0{d.source}\0{commit}\0{entry}".encode())  # type: ignore[attr-defined]
    return envbuild_command(
        policy,
        d,
        key.hexdigest()[:40],
        f"--git-url={d.source}",  # type: ignore[attr-defined]
        f"--git-ref={commit}",
        f"--git-schemes={','.join(policy.git_schemes)}",
        f"--cwd={entry.parent}",
        f"--entry={entry.name}",
    )


async def start_build(policy: Policy, d: object) -> bool:
    """Start building ``d``'s environment in the background; True if a build started."""
    command = build_command(policy, d)
    if command is None:
        return False
    proc = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )
    task = asyncio.ensure_future(proc.wait())  # reaped when it ends
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    log.info("Building the environment of %s/%s (process %d)", d.owner, d.slug, proc.pid)  # type: ignore[attr-defined]
    return True
