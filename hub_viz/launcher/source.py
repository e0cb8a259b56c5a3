"""The dashboard's git source, fetched by the launcher into its own working folder.

The spawner checks the URL and ref and passes them on (``--git-url``,
``--git-ref``); the clone runs here, with the instance's resources, network
and sandbox, while the start-up page says "Fetching the source". The
checkout lives in a fresh folder removed when the launcher stops.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from ..errors import SpecError
from ..gitfetch import fetch_git
from ..sources import GitSource


class GitCheckout:
    """One fetch of ``--git-url`` at ``--git-ref``: where it goes and how it went."""

    def __init__(self, options: argparse.Namespace) -> None:
        self.source = GitSource(options.git_url, options.git_ref)
        self.schemes = tuple(s for s in options.git_schemes.split(",") if s)
        self.max_bytes = options.git_max_bytes
        self.timeout = options.git_timeout
        self.subdir = PurePosixPath(options.cwd)
        self.entry = options.entry
        self.workdir = Path(tempfile.mkdtemp(prefix="hub-viz-source-"))
        self.fetching = False

    @property
    def root(self) -> Path:
        return self.workdir / "checkout"

    async def fetch(self, stopping: asyncio.Event) -> str:
        """Clone, then return the app's folder; SpecError when it cannot serve the dashboard.

        Returns "" when asked to stop while fetching.
        """
        self.fetching = True
        try:
            task = asyncio.ensure_future(
                fetch_git(
                    self.source,
                    self.root,
                    schemes=self.schemes,
                    max_bytes=self.max_bytes,
                    timeout=self.timeout,
                )
            )
            stop = asyncio.ensure_future(stopping.wait())
            await asyncio.wait([task, stop], return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                return ""
            task.result()
        finally:
            self.fetching = False
        return str(self.app_folder())

    def app_folder(self) -> Path:
        """The entry's folder inside the checkout; the entry must be there, not outside."""
        root = self.root.resolve()
        if self.subdir.is_absolute() or ".." in self.subdir.parts:
            raise SpecError("The dashboard's folder must be inside its git repository.")
        folder = root.joinpath(*self.subdir.parts)
        shown = str(self.subdir / self.entry) if str(self.subdir) != "." else self.entry
        target = (folder / self.entry).resolve()
        if root not in target.parents:
            raise SpecError(f"The entry {shown!r} points outside the git repository.")
        if not target.exists():
            raise SpecError(
                f"The entry file {shown!r} does not exist in the git repository at ref "
                f"{self.source.ref!r}."
            )
        return folder

    def remove(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
