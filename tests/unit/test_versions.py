"""Snapshots of an author's files, webhook signatures, and versions' pure helpers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
from pathlib import Path

import pytest

from hub_viz.errors import SpecError
from hub_viz.service.versions import pop_options, preview_name
from hub_viz.service.webhooks import HookKeys, pushed_branch
from hub_viz.snapshots import SnapshotError, snapshot_path, take_snapshot


def tree(folder: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return folder


def test_a_snapshot_is_a_read_only_copy_named_by_its_content(tmp_path: Path) -> None:
    src = tree(tmp_path / "src", {"app.py": "print(1)", "data/a.csv": "x", ".git/HEAD": "r"})
    (src / "link").symlink_to("/etc/passwd")
    (src / "secret.txt").write_text("mine")
    (src / "secret.txt").chmod(0o600)
    root = tmp_path / "snaps"
    digest = take_snapshot(src, root, "ana", "sales", 10_000)
    copy = snapshot_path(root, "ana", "sales", digest)
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*")) == [
        "app.py",
        "data",
        "data/a.csv",
        "secret.txt",
    ]
    assert (copy / "app.py").read_text() == "print(1)"
    # nothing in it is writable; what only its author could read stays so
    assert all(not p.stat().st_mode & 0o222 for p in [copy, *copy.rglob("*")])
    assert (copy / "secret.txt").stat().st_mode & 0o777 == 0o400
    if os.geteuid() == 0:  # a root service keeps the files' owner: the author reads them
        assert (copy / "secret.txt").stat().st_uid == (src / "secret.txt").stat().st_uid
    # others may pass through the folders above but not list them
    assert (root / copy.relative_to(root).parts[0]).stat().st_mode & 0o777 == 0o711
    # the same files: the same snapshot; a changed file: another one
    assert take_snapshot(src, root, "ana", "sales", 10_000) == digest
    (src / "app.py").write_text("print(2)")
    other = take_snapshot(src, root, "ana", "sales", 10_000)
    assert other != digest and (copy / "app.py").read_text() == "print(1)"
    assert not [p for p in copy.parent.iterdir() if p.name.startswith(".tmp")]
    # who may read a file is part of what is kept: a changed permission, another copy
    (src / "app.py").chmod(0o600)
    private = take_snapshot(src, root, "ana", "sales", 10_000)
    assert private != other
    kept = snapshot_path(root, "ana", "sales", private) / "app.py"
    assert kept.stat().st_mode & 0o777 == 0o400


@pytest.mark.skipif(os.geteuid() != 0, reason="only root gives files away")
def test_a_root_service_keeps_the_authors_ownership(tmp_path: Path) -> None:
    src = tree(tmp_path / "src", {"app.py": "x", "sub/data.csv": "y"})
    for path in (src / "app.py", src / "sub", src / "sub" / "data.csv"):
        os.chown(path, 65534, 65534)
    (src / "app.py").chmod(0o600)
    copy = snapshot_path(
        tmp_path / "snaps", "ana", "own", take_snapshot(src, tmp_path / "snaps", "ana", "own", 100)
    )
    for rel in ("app.py", "sub", "sub/data.csv"):
        assert ((copy / rel).stat().st_uid, (copy / rel).stat().st_gid) == (65534, 65534)
    assert (copy / "app.py").stat().st_mode & 0o777 == 0o400


def test_a_folder_past_the_cap_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    src = tree(tmp_path / "src", {"app.py": "x" * 600, "b.bin": "y" * 600})
    with pytest.raises(SnapshotError, match="put the dashboard in a folder of its own"):
        take_snapshot(src, tmp_path / "snaps", "ana", "big", 1000)
    assert list((tmp_path / "snaps").rglob("*.py")) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file")
def test_an_unreadable_file_is_named_in_the_refusal(tmp_path: Path) -> None:
    src = tree(tmp_path / "src", {"app.py": "x", "locked.py": "y"})
    (src / "locked.py").chmod(0)
    with pytest.raises(SnapshotError, match="'locked.py'"):
        take_snapshot(src, tmp_path / "snaps", "ana", "lock", 1000)


@pytest.mark.parametrize("digest", ["../x", "a" * 63, "A" * 64, ""])
def test_snapshot_names_are_checked(tmp_path: Path, digest: str) -> None:
    with pytest.raises(SpecError):
        snapshot_path(tmp_path, "ana", "sales", digest)
    with pytest.raises(SpecError):
        snapshot_path(tmp_path, "ana", "../x", "a" * 64)


def test_webhook_signatures_github_and_gitlab() -> None:
    keys = HookKeys(b"k" * 32)
    hook = keys.new_id()
    secret = keys.secret(hook)
    assert secret == keys.secret(hook) and secret != keys.secret(keys.new_id())
    assert HookKeys(b"j" * 32).secret(hook) != secret  # a new key: every secret changes
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    good = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert keys.verify(hook, body, {"X-Hub-Signature-256": good})
    assert not keys.verify(hook, body + b" ", {"X-Hub-Signature-256": good})
    assert not keys.verify(hook, body, {"X-Hub-Signature-256": good.replace("sha256", "sha1")})
    assert not keys.verify(hook, body, {"X-Hub-Signature-256": "sha256=00"})
    assert keys.verify(hook, body, {"X-Gitlab-Token": secret})
    assert not keys.verify(hook, body, {"X-Gitlab-Token": secret[:-1]})
    assert not keys.verify(hook, body, {})


def test_pushed_branch_reads_github_and_gitlab_pushes() -> None:
    body = json.dumps({"ref": "refs/heads/lecture-1"}).encode()
    assert pushed_branch({"X-GitHub-Event": "push"}, body) == ("push", "lecture-1")
    assert pushed_branch({"X-Gitlab-Event": "Push Hook"}, body) == ("push", "lecture-1")
    assert pushed_branch({"X-GitHub-Event": "ping"}, b"{}") == ("ping", "")
    assert pushed_branch({"X-GitHub-Event": "issues"}, body) is None
    assert pushed_branch({"X-GitHub-Event": "push"}, b"not json") is None
    tag = json.dumps({"ref": "refs/tags/v1"}).encode()
    assert pushed_branch({"X-GitHub-Event": "push"}, tag) == ("push", "")


def test_preview_server_names_are_hub_server_names() -> None:
    from jupyterhub.slugs import is_valid_safe_slug

    names = [
        preview_name("ana", "sales", 3),
        preview_name("ana", "a" * 30, 9_999_999),
        preview_name("ana", "a-b-c-d-e-f-g-h", 12),
    ]
    assert all(is_valid_safe_slug(n) for n in names), names
    assert names[0].startswith("sales-v3-")
    assert preview_name("bo", "sales", 3) != names[0] != preview_name("ana", "sales", 4)


def test_version_options_are_booleans() -> None:
    data = {"title": "x", "make_current": False}
    assert pop_options(data) == {"make_current": False} and data == {"title": "x"}
    with pytest.raises(SpecError, match="'new_version' must be true or false"):
        pop_options({"new_version": "yes"})


class _Deployer:
    """What the follower asks of the deployer: a lock, and restarts (recorded)."""

    def __init__(self) -> None:
        from hub_viz.service.locks import Locks

        self.locks = Locks()
        self.redeployed: list[int | None] = []

    def changing(self, dashboard_id: int):
        return self.locks.dashboard(dashboard_id).exclusive()

    async def stop(self, d, **kwargs) -> int:
        return 0

    async def redeploy(self, d, **kwargs) -> bool:
        self.redeployed.append(d.current_version)
        return True


def _git(*args: str, cwd: Path) -> str:
    import subprocess

    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


async def test_the_periodic_check_makes_a_version_per_new_commit(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from hub_viz.service.store import Dashboard, Store
    from hub_viz.service.versions import Sources, add_version, make_current, run_fields
    from hub_viz.service.versions_api import Follower

    work = tmp_path / "work"
    work.mkdir()
    (work / "app.py").write_text("1")
    _git("init", "-q", "-b", "main", cwd=work)
    _git("add", ".", cwd=work)
    _git("commit", "-qm", "1", cwd=work)
    _git("clone", "-q", "--bare", str(work), str(tmp_path / "r.git"), cwd=tmp_path)
    _git("remote", "add", "origin", str(tmp_path / "r.git"), cwd=work)
    first = _git("rev-parse", "HEAD", cwd=work)

    store = Store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    sources = Sources(git_schemes=("file",))
    fields = {
        "slug": "lab",
        "title": "Lab",
        "framework": "dash",
        "entry": "app.py",
        "source_type": "git",
        "source": f"file://{tmp_path / 'r.git'}",
        "git_ref": "main",
    }
    with store.session() as db:
        d = Dashboard(owner="ana", follow_branch=True, **fields)
        db.add(d)
        db.flush()
        pins = await sources.pin("ana", "lab", run_fields(d))
        make_current(d, add_version(db, d, run_fields(d), pins, by="ana", origin="publish"))
        db.commit()
        dashboard_id = d.id
    assert pins["commit"] == first
    deployer = _Deployer()
    envs = tmp_path / "envs"
    policy = SimpleNamespace(
        environments={"root": str(envs), "local": True}, git_schemes=("https", "file")
    )
    follower = Follower(
        SimpleNamespace(store=store, sources=sources, deployer=deployer, policy=policy)
    )

    assert await follower.check(dashboard_id) is None  # nothing new on the branch
    (work / "app.py").write_text("2")
    _git("commit", "-qam", "2", cwd=work)
    _git("push", "-q", "origin", "main", cwd=work)
    assert await follower.check(dashboard_id) == 2
    assert await follower.check(dashboard_id) is None  # one version per commit
    # the new version's environment is prepared in the background at once (its commit
    # fetched to read its requirement file: none here)
    for _ in range(600):
        if list((envs / "sources").glob("*.json")):
            break
        await asyncio.sleep(0.1)
    [result] = [json.loads(p.read_text()) for p in (envs / "sources").glob("*.json")]
    assert result == {"dashboard": "ana/lab", "state": "ready", "env": ""}
    with store.session() as db:
        d = db.get(Dashboard, dashboard_id)
        assert (d.current_version, d.commit) == (1, first)  # not current: not asked for
        d.auto_current = True
        db.commit()
    assert deployer.redeployed == []
    (work / "app.py").write_text("3")
    _git("commit", "-qam", "3", cwd=work)
    _git("push", "-q", "origin", "main", cwd=work)
    assert await follower.check(dashboard_id) == 3
    with store.session() as db:
        d = db.get(Dashboard, dashboard_id)
        assert (d.current_version, d.commit) == (3, _git("rev-parse", "HEAD", cwd=work))
    assert deployer.redeployed == [3]
    store.close()
