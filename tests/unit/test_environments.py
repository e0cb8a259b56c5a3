"""Requirement files authors may declare, and environments built, shared and collected."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub_viz.environments import (
    COMPLETE,
    LAST_USED,
    BuildError,
    EnvironmentBuilder,
    build_log,
    redact,
)
from hub_viz.errors import SpecError
from hub_viz.requirements import check_requirements, find_requirements, pyproject_requirements

from ..wheels import version_package

pytestmark = pytest.mark.unit


def check(text: str, **kwargs: bool) -> tuple[str, ...]:
    return check_requirements(text, source="requirements.txt", **kwargs).lines


def test_names_versions_markers_and_comments_are_accepted() -> None:
    text = "# data\npandas < 2  # old API\n\nnumpy>=1.26 ; python_version >= '3.10'\nrich\\\n[jupyter]\n"
    assert check(text) == ("pandas<2", 'numpy>=1.26; python_version >= "3.10"', "rich[jupyter]")


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("pkg @ https://example.org/pkg-1.0.whl", "installs from a URL"),
        ("--index-url https://evil.example.org/simple", "'--index-url' is not allowed"),
        ("-i https://evil.example.org/simple", "'-i' is not allowed"),
        ("--extra-index-url=https://evil.example.org/simple", "'--extra-index-url' is not allowed"),
        ("-f /tmp/wheels", "'-f' is not allowed"),
        ("-e ./mypkg", "'-e' is not allowed"),
        ("./mypkg", "is not a package requirement"),
        ("/etc/passwd", "is not a package requirement"),
        ("https://example.org/pkg.whl", "is not a package requirement"),
        ("-r /etc/shadow", "reads another file"),
        ("--constraint other.txt", "reads another file"),
    ],
)
def test_package_sources_and_other_files_are_refused(line: str, says: str) -> None:
    with pytest.raises(SpecError) as e:
        check(f"numpy\n{line}\n")
    assert e.value.status_code == 400
    assert e.value.message.startswith("Line 2 of requirements.txt: ") and says in e.value.message


def test_the_operator_may_allow_urls_but_never_other_files() -> None:
    assert check("pkg @ https://example.org/pkg-1.0.whl", allow_urls=True) == (
        "pkg @ https://example.org/pkg-1.0.whl",
    )
    assert check("--index-url https://mirror/simple", allow_urls=True)
    with pytest.raises(SpecError, match="reads another file"):
        check("-r base.txt", allow_urls=True)


def test_pyproject_dependencies_and_file_precedence(tmp_path: Path) -> None:
    assert find_requirements([tmp_path]) is None
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["rich>=13"]\n')
    found = find_requirements([tmp_path])
    assert found is not None and found.source == "pyproject.toml" and found.lines == ("rich>=13",)
    assert pyproject_requirements("[tool.other]\nx = 1\n") is None
    with pytest.raises(SpecError, match="not valid TOML"):
        pyproject_requirements("[project\n")
    (tmp_path / "requirements.txt").write_text("numpy\n")
    assert find_requirements([tmp_path]).lines == ("numpy",)  # requirements.txt first
    (tmp_path / "requirements.txt").write_text("x" * 70_000)
    with pytest.raises(SpecError, match="larger than 64 KB"):
        find_requirements([tmp_path])


BINDER_ENV = """\
name: course
channels: [conda-forge]
dependencies:
  - python>=3.10
  - conda-forge::pandas=1.5
  - numpy>=1.24,<2
  - scipy 1.10.*
  - matplotlib=3.7.1=py311h1234
  - pip
  - pip:
      - bqplot==0.12.43  # what conda-forge lacks
"""


def test_an_environment_yml_is_read_for_what_pip_installs(tmp_path: Path) -> None:
    (tmp_path / "environment.yml").write_text(BINDER_ENV)
    found = find_requirements([tmp_path])
    assert found is not None and found.source == "environment.yml"
    assert found.lines == (
        "pandas==1.5.*",  # conda's "=1.5" is 1.5.*
        "numpy<2,>=1.24",
        "scipy==1.10.*",
        "matplotlib==3.7.1.*",  # the build string is conda's
        "bqplot==0.12.43",
    )
    # a pyproject.toml (and a requirements.txt) beside it come first
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["rich"]\n')
    assert find_requirements([tmp_path]).source == "pyproject.toml"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("dependencies: [python=2.7]", "asks for python==2.7.*; this hub runs Python"),
        ("dependencies: [pandas=1.5, '??']", "Dependency 2 of environment.yml"),
        ("dependencies: {pandas: 1}", "'dependencies' in environment.yml must be a list"),
        ("dependencies: [", "environment.yml is not valid YAML"),
        ("dependencies:\n  - pip:\n      - '-r more.txt'", "'-r' reads another file"),
        ("dependencies:\n  - pip:\n      - 'x @ https://e/x.whl'", "installs from a URL"),
        # aliases nest lists deep: never turned into text
        (
            "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: &c [*b, *b, *b, *b, *b, *b, *b, *b]\ndependencies:\n  - pip: [*c, *c]",
            "each 'pip:' entry must be a line of text",
        ),
    ],
)
def test_an_environment_yml_the_hub_cannot_follow_is_refused_with_the_reason(
    tmp_path: Path, text: str, says: str
) -> None:
    (tmp_path / "environment.yml").write_text(text)
    with pytest.raises(SpecError, match=re.escape(says)):
        find_requirements([tmp_path])


def test_a_linked_requirement_file_is_refused_unread(tmp_path: Path) -> None:
    secret = tmp_path / "hub-only.txt"
    secret.write_text("hub-secret-token-value\n")
    folder = tmp_path / "dash"
    folder.mkdir()
    (folder / "requirements.txt").symlink_to(secret)
    with pytest.raises(SpecError) as e:
        find_requirements([folder])
    assert "is a link" in e.value.message and "hub-secret" not in e.value.message
    # a folder swapped for a link after the spec was checked: the real place counts
    (folder / "requirements.txt").unlink()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "requirements.txt").write_text("hub-secret-token-value\n")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "dash").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(SpecError, match="not inside the dashboards folder"):
        find_requirements([tmp_path / "root" / "dash"], within=tmp_path / "root")
    assert find_requirements([folder], within=tmp_path) is None
    os.mkfifo(folder / "requirements.txt")  # never blocks the hub
    with pytest.raises(SpecError, match="must be a plain file"):
        find_requirements([folder])


def test_credentials_in_urls_never_reach_a_log() -> None:
    assert (
        redact("GET https://bob:s3cret@mirror.example.org/simple/x")
        == "GET https://***@mirror.example.org/simple/x"
    )


@pytest.fixture
def builder(tmp_path: Path) -> EnvironmentBuilder:
    version_package(tmp_path / "wheels", "hvtoy", ("1.0", "2.0"))
    return EnvironmentBuilder(
        root=str(tmp_path / "envs"), no_index=True, find_links=[str(tmp_path / "wheels")]
    )


def run(coro):
    return asyncio.run(coro)


def reqs(text: str):
    return check_requirements(text, source="requirements.txt")


def test_one_build_per_lock_concurrent_starts_wait_for_it(builder: EnvironmentBuilder) -> None:
    wanted = reqs("hvtoy==1.0")

    async def both():
        return await asyncio.gather(
            builder.prepare(wanted, dashboard="a/x"), builder.prepare(wanted, dashboard="b/y")
        )

    first, second = run(both())
    assert first.key == second.key
    assert sorted([first.built_now, second.built_now]) == [False, True]
    out = subprocess.run(
        [first.python, "-c", "import hvtoy, hub_viz; print(hvtoy.greet())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "hello from hvtoy 1.0"
    waited = ("a", "x") if not first.built_now else ("b", "y")  # the one that queued
    log = build_log(builder.root, *waited)
    assert log["state"] == "ready" and log["built_now"] is False
    assert sum(line.startswith("Building environment") for line in log["log"]) == 1
    # the lock is kept: later starts neither resolve nor build (nor grow the log)
    for _ in range(3):
        assert run(builder.prepare(reqs("hvtoy == 1.0"), dashboard="b/y")).built_now is False
    again = build_log(builder.root, "b", "y")["log"]
    assert again[-1].startswith("Using environment") and again[:-1] == log["log"][:-1]
    assert sum(line.startswith("Using environment") for line in again) == 1


def test_requirements_resolving_to_one_lock_share_one_build(builder: EnvironmentBuilder) -> None:
    async def both():
        return await asyncio.gather(
            builder.prepare(reqs("hvtoy==2.0")), builder.prepare(reqs("hvtoy>=1.5"))
        )

    first, second = run(both())
    assert first.key == second.key and sorted([first.built_now, second.built_now]) == [False, True]
    subprocess.run(
        [first.python, "-c", "import hvtoy; assert hvtoy.__version__ == '2.0'"], check=True
    )


def test_author_pins_win_over_the_hubs_packages(
    builder: EnvironmentBuilder, tmp_path: Path
) -> None:
    # 'packaging' is in the hub's environment; the dashboard pins a fake one of its own
    version_package(tmp_path / "wheels", "packaging", ("0.1",))
    env = run(builder.prepare(reqs("packaging==0.1\nhvtoy==2.0")))
    out = subprocess.run(
        [env.python, "-c", "import packaging; print(packaging.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "0.1"


def test_failures_time_and_disk_limits(builder: EnvironmentBuilder) -> None:
    with pytest.raises(BuildError) as e:
        run(builder.prepare(reqs("hvtoy==9.9"), dashboard="a/broken"))
    assert "No solution found" in e.value.message and "hvtoy==9.9" in e.value.message
    assert build_log(builder.root, "a", "broken")["state"] == "failed"

    builder.max_env_bytes = 1000
    with pytest.raises(BuildError, match="more than the 0 MB this hub allows"):
        run(builder.prepare(reqs("hvtoy==2.0")))
    assert not any((Path(builder.root) / "envs").iterdir())  # removed

    builder.max_env_bytes = 10**9
    builder.build_timeout = 0.001
    with pytest.raises(BuildError, match="longer than 0.001 seconds"):
        run(builder.prepare(reqs("hvtoy==1.0")))


def test_unused_environments_are_collected_used_ones_kept(builder: EnvironmentBuilder) -> None:
    old = run(builder.prepare(reqs("hvtoy==1.0")))
    new = run(builder.prepare(reqs("hvtoy==2.0")))
    envs = Path(builder.root) / "envs"
    long_ago = time.time() - 8 * 86400
    os.utime(envs / old.key / LAST_USED, (long_ago, long_ago))
    assert builder.collect_garbage() == [old.key]
    assert (envs / new.key / COMPLETE).is_file() and not (envs / old.key).exists()

    # an environment a process runs in stays, however old
    os.utime(envs / new.key / LAST_USED, (long_ago, long_ago))
    proc = subprocess.Popen(
        [new.python, "-c", "print('up', flush=True); import time; time.sleep(30)"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline() == "up\n"  # running in it (not still forking)
        assert builder.collect_garbage() == []
    finally:
        proc.kill()
        proc.wait()
    assert builder.collect_garbage() == [new.key]
    # and a start after that builds it again
    assert run(builder.prepare(reqs("hvtoy==2.0"))).built_now is True


def test_packages_the_hub_has_at_the_locked_version_come_from_the_layer(
    builder: EnvironmentBuilder, tmp_path: Path
) -> None:
    from importlib.metadata import version

    # the wheel folder offers the hub's own version of 'packaging' beside hvtoy
    hub_version = version("packaging")
    version_package(tmp_path / "wheels", "packaging", (hub_version,))
    env = run(builder.prepare(reqs(f"packaging=={hub_version}\nhvtoy==2.0")))
    folder = Path(builder.root) / "envs" / env.key
    assert (folder / "hub-viz-install.txt").read_text() == "hvtoy==2.0\n"
    site = next(folder.glob("lib/python*/site-packages"))
    assert not list(site.glob("packaging*"))  # not installed again
    out = subprocess.run(
        [env.python, "-c", "import packaging; print(packaging.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == hub_version


def test_environments_in_use_elsewhere_are_kept(builder: EnvironmentBuilder) -> None:
    """Where processes run on other machines (pods), the caller says which are in use."""
    env = run(builder.prepare(reqs("hvtoy==1.0")))
    stamp = Path(builder.root) / "envs" / env.key / LAST_USED
    long_ago = time.time() - 8 * 86400
    os.utime(stamp, (long_ago, long_ago))
    assert builder.collect_garbage(in_use={env.key}) == []
    assert builder.collect_garbage(in_use=set()) == [env.key]


def test_uvs_cache_is_kept_within_its_bound(builder: EnvironmentBuilder) -> None:
    from hub_viz.environments import tree_bytes

    env = run(builder.prepare(reqs("hvtoy==2.0")))
    cache = Path(builder.root) / "cache"
    size = tree_bytes(cache)
    assert size > 0
    builder.max_cache_bytes = size + 10**6
    assert builder.prune_cache() == ""  # within the bound: untouched
    assert tree_bytes(cache) == size
    builder.max_cache_bytes = 1
    assert builder.prune_cache() in ("pruned", "emptied")
    assert tree_bytes(cache) < size
    # the environment keeps its files, and a new build fills the cache again
    subprocess.run(
        [env.python, "-c", "import hvtoy; assert hvtoy.__version__ == '2.0'"], check=True
    )
    builder.max_cache_bytes = 0
    assert run(builder.prepare(reqs("hvtoy==1.0"))).built_now is True
    assert builder.prune_cache() == ""  # 0: never


@pytest.fixture
def other_account() -> Iterator[str]:
    """A system account that is not the hub's (a sandbox account runs dashboards)."""
    if os.geteuid() != 0 or not shutil.which("useradd"):
        pytest.skip("creating a system user needs root and useradd")
    name = f"hvsbx{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--system", "--no-create-home", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["userdel", name], check=False)


HUB_RECORDS = ("hub-viz-env.json", COMPLETE, LAST_USED)  # the hub's own, written after


def build_with_private_umask(root: Path):
    """An environment built by a hub whose files nobody else may read by default."""
    version_package(root / "wheels", "hvtoy", ("1.0",))
    builder = EnvironmentBuilder(
        root=str(root / "envs"), no_index=True, find_links=[str(root / "wheels")]
    )
    old = os.umask(0o077)
    try:
        return run(builder.prepare(reqs("hvtoy==1.0")))
    finally:
        os.umask(old)


def test_environments_are_readable_by_all_and_writable_by_the_hub_alone(tmp_path: Path) -> None:
    env = build_with_private_umask(tmp_path)
    folder = Path(env.python).parent.parent
    checked = 0
    for path in [folder.parent.parent, folder.parent, folder, *folder.rglob("*")]:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            continue
        checked += 1
        assert not info.st_mode & 0o022, path  # nobody else writes
        if path.is_dir():
            assert info.st_mode & 0o011 == 0o011, path  # everyone enters
        if path.is_relative_to(folder) and path.name not in HUB_RECORDS:
            assert info.st_mode & 0o044 == 0o044, path  # everyone reads
    assert checked > 10
    assert os.stat(Path(env.python).parent / "python").st_mode & 0o011 == 0o011
    # the build logs stay the hub's
    assert not os.stat(tmp_path / "envs" / "builds").st_mode & 0o077


def test_sandbox_accounts_run_the_environment_but_cannot_change_it(other_account: str) -> None:
    probe = subprocess.run(["runuser", "-u", other_account, "--", sys.executable, "-c", "pass"])
    if probe.returncode != 0:
        pytest.skip(f"other accounts cannot run this Python ({sys.executable})")
    root = Path(tempfile.mkdtemp(prefix="hv-envs-"))  # not below a private folder
    os.chmod(root, 0o755)
    try:
        env = build_with_private_umask(root)
        site_packages = next(Path(env.python).parent.parent.glob("lib/python*/site-packages"))
        probe = (
            "import hvtoy, hub_viz; print(hvtoy.greet())\n"
            "try:\n"
            f"    open({str(site_packages / 'planted.pth')!r}, 'w')\n"
            "except PermissionError:\n"
            "    print('read-only')\n"
        )
        out = subprocess.run(
            ["runuser", "-u", other_account, "--", env.python, "-c", probe],
            capture_output=True,
            text=True,
            cwd="/",
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.split("\n")[:2] == ["hello from hvtoy 1.0", "read-only"], out.stdout
        assert not (site_packages / "planted.pth").exists()
    finally:
        shutil.rmtree(root, ignore_errors=True)
