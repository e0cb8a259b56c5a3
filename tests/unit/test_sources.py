"""Git sources: which URLs and refs pass, and fetch_git against a real local repository."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hub_viz import sources
from hub_viz.errors import SpecError
from hub_viz.sources import GitSource, check_git_ref, check_git_url, checkout_dir, fetch_git

pytestmark = pytest.mark.unit

# -- URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/org/repo.git",
        "https://github.com/org/repo",
        "https://gitlab.example.org:8443/group/sub/repo.git",
        "https://10.0.0.5/repo.git",
        "https://h.org/a/b/c/d",
    ],
)
def test_check_git_url_accepts(url):
    assert check_git_url(url) == url


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "must be a string"),
        ("", "must be a string"),
        (42, "must be a string"),
        ("https://h.org/" + "r" * 500, "must be a string"),
        ("https://h.org/my repo.git", "may not contain spaces"),
        ("https://h.org/repo.git\n", "may not contain spaces"),
        ("https://h.org/re\x00po.git", "control characters"),
        ("http://github.com/org/repo.git", "must start with https://"),
        ("git@github.com:org/repo.git", "must start with https://"),
        ("ssh://git@github.com/org/repo.git", "must start with https://"),
        ("file:///srv/repo.git", "must start with https://"),
        ("ext::sh -c touch% /tmp/pwned", "may not contain spaces"),
        ("ext::sh", "must start with https://"),
        ("--upload-pack=touch /tmp/x", "may not contain spaces"),
        ("-uhttps://h.org/x", "must start with https://"),
        ("/srv/repo.git", "must start with https://"),
        ("https://user:secret@github.com/org/repo.git", "user name or password"),
        ("https://token@github.com/org/repo.git", "user name or password"),
        ("https:///org/repo.git", "needs a host name"),
        ("https://h_o.org/repo.git", "needs a host name"),
        ("https://h.org:99999999/repo.git", "needs a host name"),
        ("https://h.org", "needs a repository path"),
        ("https://h.org/", "needs a repository path"),
        ("https://h.org/org/../../etc", "needs a repository path"),
    ],
)
def test_check_git_url_refuses(url, message):
    with pytest.raises(SpecError) as e:
        check_git_url(url)
    assert message in e.value.message


def test_check_git_url_schemes():
    url = "file:///srv/git/repo.git"
    assert check_git_url(url, ("file",)) == url
    assert check_git_url("https://h.org/r.git", ("https", "file")) == "https://h.org/r.git"
    with pytest.raises(SpecError, match="must start with file://"):
        check_git_url("https://h.org/r.git", ("file",))
    with pytest.raises(SpecError, match=r"must start with https:// or file://"):
        check_git_url("ssh://h.org/r.git", ("https", "file"))
    for bad in ("file://server/srv/repo.git", "file://localhost/srv/repo.git", "file:repo.git"):
        with pytest.raises(SpecError, match="absolute path"):
            check_git_url(bad, ("file",))


# -- refs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref", ["main", "v1.2.3", "release/2024-q1", "feature_x", "_private", "0abc", "a" * 200]
)
def test_check_git_ref_accepts(ref):
    assert check_git_ref(ref) == ref


@pytest.mark.parametrize(
    "ref",
    [
        None, "", 7, "-b", "--upload-pack=x", ".hidden", "/main", "main/", "a..b", "a b",
        "main;rm", "a~1", "HEAD^", "a:b", "refs@{1}", "a" * 201, "main\n",
    ],
)
def test_check_git_ref_refuses(ref):
    with pytest.raises(SpecError, match="must be a branch or tag name"):
        check_git_ref(ref)


def test_git_source_from_spec():
    assert GitSource.from_spec({"url": "https://h.org/r.git"}) == GitSource("https://h.org/r.git")
    assert GitSource.from_spec({"url": "file:///r", "ref": "v1"}, ("file",)) == \
        GitSource("file:///r", "v1")
    for bad in ("https://h.org/r.git", None, ["https://h.org/r.git"]):
        with pytest.raises(SpecError, match="'git' must be an object"):
            GitSource.from_spec(bad)


def test_checkout_dir_per_url_ref_and_server(tmp_path):
    a = GitSource("https://h.org/r.git", "main")
    dirs = {
        checkout_dir(tmp_path, a, "alice/sales"),
        checkout_dir(tmp_path, a, "bob/sales-1234abcd"),
        checkout_dir(tmp_path, GitSource(a.url, "dev"), "alice/sales"),
        checkout_dir(tmp_path, GitSource("https://h.org/other.git"), "alice/sales"),
    }
    assert len(dirs) == 4
    assert all(d.parent == tmp_path for d in dirs)
    assert checkout_dir(tmp_path, a, "alice/sales") == checkout_dir(tmp_path, a, "alice/sales")


# -- fetch_git against a real repository ------------------------------------------------------

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Tester", "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "Tester", "GIT_COMMITTER_EMAIL": "t@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={**os.environ, **GIT_ENV})


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    """A bare repository with branch main (app.py v1), tag v2 and branch dev."""
    work = tmp_path / "work"
    work.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    (work / "app.py").write_text("VERSION = 1\n")
    (work / "data").mkdir()
    (work / "data" / "sales.csv").write_text("region,total\nnorth,3\n")
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "v1", cwd=work)
    git("checkout", "--quiet", "-b", "dev", cwd=work)
    (work / "app.py").write_text("VERSION = 'dev'\n")
    git("commit", "--quiet", "-am", "dev", cwd=work)
    git("tag", "v2", cwd=work)
    bare = tmp_path / "remote.git"
    git("clone", "--quiet", "--bare", str(work), str(bare), cwd=tmp_path)
    return bare


async def test_fetch_git_clones_a_branch(tmp_path, remote):
    url = check_git_url(f"file://{remote}", schemes=("file",))
    cache = tmp_path / "cache"
    dest = await fetch_git(GitSource(url, "main"), cache, "alice/sales")
    assert dest == checkout_dir(cache, GitSource(url, "main"), "alice/sales")
    assert (dest / "app.py").read_text() == "VERSION = 1\n"
    assert (dest / "data" / "sales.csv").read_text().startswith("region,total")
    assert (dest / ".git").is_dir()
    assert [p.name for p in cache.iterdir()] == [dest.name]  # no temporary folder left


async def test_fetch_git_clones_a_tag_and_refreshes(tmp_path, remote):
    url = f"file://{remote}"
    cache = tmp_path / "cache"
    dest = await fetch_git(GitSource(url, "v2"), cache, "alice/sales")
    assert (dest / "app.py").read_text() == "VERSION = 'dev'\n"
    (dest / "stale.txt").write_text("left by an old run")
    again = await fetch_git(GitSource(url, "v2"), cache, "alice/sales")
    assert again == dest
    assert not (dest / "stale.txt").exists(), "each fetch is a fresh checkout"
    other = await fetch_git(GitSource(url, "main"), cache, "alice/sales")
    assert other != dest and (other / "app.py").read_text() == "VERSION = 1\n"


async def test_fetch_git_unknown_ref_fails_with_a_spec_error(tmp_path, remote):
    cache = tmp_path / "cache"
    with pytest.raises(SpecError) as e:
        await fetch_git(GitSource(f"file://{remote}", "no-such-branch"), cache, "alice/sales")
    assert e.value.message == "Could not fetch ref 'no-such-branch' from the git repository."
    assert str(remote) not in e.value.message, "no server paths in what users read"
    assert "failed" in e.value.log_message and "no-such-branch" in e.value.log_message
    assert list(cache.iterdir()) == []  # the failed clone left nothing


async def test_fetch_git_missing_repository_fails_with_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="Could not fetch ref 'main'"):
        await fetch_git(GitSource(f"file://{tmp_path}/nothing.git", "main"), tmp_path / "c", "a/b")


async def test_fetch_git_out_of_time_leaves_no_partial_checkout(tmp_path, remote, monkeypatch):
    # A limit of 0 s expires before git can finish, whatever the machine's speed.
    monkeypatch.setattr(sources, "GIT_TIMEOUT", 0)
    cache = tmp_path / "cache"
    with pytest.raises(SpecError, match="took longer than 0 s"):
        await fetch_git(GitSource(f"file://{remote}", "main"), cache, "alice/sales")
    assert list(cache.iterdir()) == []
