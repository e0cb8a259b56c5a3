"""The hub reads a git dashboard's requirement file at its commit: real git, file:// remotes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from hub_viz.errors import SpecError
from hub_viz.gitreqs import git_requirements
from hub_viz.requirements import RequirementsError
from hub_viz.sources import GitSource

from .test_gitfetch import FILE, make_remote

pytestmark = pytest.mark.unit


def head(bare: Path, ref: str = "main") -> str:
    return subprocess.run(
        ["git", "--git-dir", str(bare), "rev-parse", ref],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


async def read(
    bare: Path, ref: str, folder: str, entry: str, cache: Path | None, **kw: object
) -> object:
    return await git_requirements(
        GitSource(f"file://{bare}", ref),
        folder,
        entry,
        schemes=FILE,
        max_bytes=10_000_000,
        timeout=60,
        cache=cache,
        **kw,  # type: ignore[arg-type]
    )


def checkouts_left() -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob("hub-viz-reqs-*"))


async def test_the_requirement_file_beside_the_entry_at_a_commit_is_read_and_kept(
    tmp_path: Path,
) -> None:
    bare = make_remote(
        tmp_path,
        "course",
        {
            "app.py": b"",
            "lecture/app.py": b"import hvtoy\n",
            "lecture/requirements.txt": b"# pinned for the course\nhvtoy == 2.0\n",
            "requirements.txt": b"pandas\n",  # the repository's: not this entry's folder
        },
    )
    commit = head(bare)
    cache = tmp_path / "cache"
    reqs = await read(bare, commit, "lecture", "app.py", cache)
    assert reqs is not None
    assert (reqs.source, reqs.lines) == ("requirements.txt", ("hvtoy==2.0",))  # type: ignore[attr-defined]
    # nothing of the checkout is left behind; the answer is kept for the commit
    assert not checkouts_left()
    assert len(list(cache.glob("*.json"))) == 1
    assert oct(cache.stat().st_mode & 0o777) == "0o700"
    # a restart needs no fetch: the repository may even be gone
    shutil.rmtree(bare)
    assert await read(bare, commit, "lecture", "app.py", cache) == reqs


async def test_no_requirement_file_and_a_refused_one_are_kept_per_commit(tmp_path: Path) -> None:
    bare = make_remote(
        tmp_path,
        "plain",
        {
            "app.py": b"print(1)\n",
            "urls/app.py": b"",
            "urls/requirements.txt": b"x @ https://e/x.whl\n",
        },
    )
    commit = head(bare)
    cache = tmp_path / "cache"
    assert await read(bare, commit, ".", "app.py", cache) is None
    with pytest.raises(RequirementsError, match="Line 1 of requirements.txt"):
        await read(bare, commit, "urls", "app.py", cache)
    shutil.rmtree(bare)
    assert await read(bare, commit, ".", "app.py", cache) is None
    with pytest.raises(RequirementsError, match="Line 1 of requirements.txt"):
        await read(bare, commit, "urls", "app.py", cache)
    # allowed URLs are another answer, not the kept refusal
    with pytest.raises(SpecError):  # the repository is gone: fetched, not read from the cache
        await read(bare, commit, "urls", "app.py", cache, allow_urls=True)


async def test_a_branch_is_fetched_each_time_and_never_kept(tmp_path: Path) -> None:
    bare = make_remote(tmp_path, "branchy", {"app.py": b"", "requirements.txt": b"hvtoy\n"})
    cache = tmp_path / "cache"
    reqs = await read(bare, "main", ".", "app.py", cache)
    assert reqs is not None and reqs.lines == ("hvtoy",)  # type: ignore[attr-defined]
    assert not cache.exists()


async def test_a_folder_outside_the_repository_and_a_bad_source_are_refused(
    tmp_path: Path,
) -> None:
    bare = make_remote(tmp_path, "out", {"app.py": b""})
    with pytest.raises(SpecError, match="inside its git repository"):
        await read(bare, head(bare), "../..", "app.py", None)
    with pytest.raises(SpecError):
        await read(tmp_path / "missing.git", "0" * 40, ".", "app.py", None)


def test_the_publish_build_fetches_a_pinned_git_source(tmp_path: Path) -> None:
    """``python -m hub_viz.envbuild --git-url``, what the service starts at publish time:
    a refused requirement file ends in a failed result with the reason."""
    bare = make_remote(tmp_path, "pub", {"app.py": b"", "requirements.txt": b"x @ https://e/x\n"})
    root = tmp_path / "envs"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "hub_viz.envbuild",
            f"--root={root}",
            f"--git-url=file://{bare}",
            f"--git-ref={head(bare)}",
            "--git-schemes=https,file",
            "--cwd=.",
            "--entry=app.py",
            "--dashboard=ada/pub",
            "--key=k1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Line 1 of requirements.txt" in r.stderr
    result = (root / "sources" / "k1.json").read_text()
    assert '"failed"' in result and "Line 1 of requirements.txt" in result
    assert list((root / "git-sources").glob("*.json"))  # kept for the hub's first start
