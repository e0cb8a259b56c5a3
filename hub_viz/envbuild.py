"""The build pod's program: ``python -m hub_viz.envbuild`` (see :mod:`hub_viz.kubeenv`),
also what the service runs at publish time on one machine (:mod:`hub_viz.service.prebuild`).

Finds the dashboard's requirement file in its fetched source (or, with
``--git-url``, fetches the repository's commit to read it: :mod:`hub_viz.gitreqs`), builds (or
reuses) its environment in the shared volume at ``--root`` with the same
builder as on one machine, and writes the result for ``--key`` atomically
(``sources/<key>.json``: ready with the environment's key, or failed with the
resolver's message). Exit status 0 when ready, 1 when the build failed.

Builds of one lock in several pods (or processes) at once queue on file locks
in the shared root (:class:`~hub_viz.environments.LockingBuilder`). uv's cache is pruned here after a
build (``max_cache_bytes``); old environments are not collected here: only the
hub knows which ones running pods use.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from .environments import LockingBuilder, write_json
from .errors import HubVizError
from .gitfetch import DEFAULT_MAX_BYTES, DEFAULT_TIMEOUT
from .gitreqs import git_requirements
from .kubeenv import BUILD_SETTINGS, sources_path
from .requirements import find_requirements, requirement_folders
from .sources import GitSource


class SharedVolumeBuilder(LockingBuilder):
    """The builder of a build pod (or of the service at publish time)."""

    async def maybe_collect(self, force: bool = False) -> None:
        """Only uv's cache here: a build pod cannot see which environments other pods
        run in (the hub collects those, :meth:`DashboardKubeSpawner.collect_environments`)."""
        if force:
            await asyncio.get_running_loop().run_in_executor(None, self.prune_cache)


async def build(args: argparse.Namespace) -> int:
    settings = {k: v for k, v in json.loads(args.settings).items() if k in BUILD_SETTINGS}
    builder = SharedVolumeBuilder(root=args.root, **settings)
    result_path = sources_path(args.root, args.key)
    builder._dir("sources")

    def result(**fields: Any) -> None:
        write_json(result_path, {"dashboard": args.dashboard, **fields})

    try:
        if args.git_url:  # the service at publish time, on one machine: fetched here
            reqs = await git_requirements(
                GitSource(args.git_url, args.git_ref),
                args.cwd,
                args.entry,
                schemes=tuple(s for s in args.git_schemes.split(",") if s),
                max_bytes=DEFAULT_MAX_BYTES,
                timeout=DEFAULT_TIMEOUT,
                allow_urls=builder.allow_requirement_urls,
                cache=Path(args.root) / "git-sources",
            )
        else:
            reqs = find_requirements(
                requirement_folders(Path(args.cwd), args.entry),
                allow_urls=builder.allow_requirement_urls,
                within=Path(args.source_root),
            )
    except (HubVizError, OSError) as e:
        message = e.message if isinstance(e, HubVizError) else f"Cannot read the requirements: {e}"
        result(state="failed", message=message)
        print(message, file=sys.stderr)
        return 1
    if reqs is None:
        result(state="ready", env="")
        print("No requirement file: the dashboard runs in its image's environment.")
        return 0
    try:
        prepared = await builder.prepare(reqs, dashboard=args.dashboard, version=args.version)
    except HubVizError as e:
        result(state="failed", message=e.message)
        print(e.message, file=sys.stderr)
        return 1
    result(state="ready", env=prepared.key, built_now=prepared.built_now)
    print(f"Environment {prepared.key} ready ({'built' if prepared.built_now else 'reused'}).")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hub_viz.envbuild", description=__doc__)
    parser.add_argument("--root", required=True, help="the shared volume's mount")
    parser.add_argument("--source-root", default="", help="where the source is mounted")
    parser.add_argument(
        "--cwd", required=True, help="the dashboard's working folder (in the repository, for git)"
    )
    parser.add_argument("--git-url", default="", help="fetch the source from this repository")
    parser.add_argument("--git-ref", default="", help="at this commit")
    parser.add_argument("--git-schemes", default="https", help="URL schemes allowed, a,b")
    parser.add_argument("--entry", required=True, help="its entry, relative to --cwd")
    parser.add_argument("--dashboard", required=True, help="owner/slug, for the author's log")
    parser.add_argument(
        "--version", type=int, default=None, help="the dashboard's version this is for"
    )
    parser.add_argument("--key", required=True, help="the source key (hub_viz.kubeenv)")
    parser.add_argument("--settings", default="{}", help="EnvironmentBuilder settings, JSON")
    return asyncio.run(build(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
