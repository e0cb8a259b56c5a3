"""The clone where the dashboard runs: real git against real repositories.

Over file:// (allowed here as the tests' hubs allow it) and over HTTPS from
a local ``git http-backend`` (tests/gitserver.py) for what only https shows:
redirects and pinned addresses.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hub_viz import gitfetch
from hub_viz.errors import SpecError
from hub_viz.gitfetch import (
    GitTimeout,
    GitTooLarge,
    clone,
    fetch_git,
    git_config,
    git_env,
    git_version,
    pin_for,
    run_capped,
)
from hub_viz.sources import GitSource

from ..gitserver import https_git_server

pytestmark = pytest.mark.unit

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Tester",
    "GIT_AUTHOR_EMAIL": "t@example.org",
    "GIT_COMMITTER_NAME": "Tester",
    "GIT_COMMITTER_EMAIL": "t@example.org",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
FILE = ("https", "file")
MB = 1000 * 1000


def git(*args: str, cwd: Path) -> None:
    subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, env={**os.environ, **GIT_ENV}
    )


def make_remote(tmp_path: Path, name: str, files: dict[str, bytes]) -> Path:
    """A bare repository ``name`` with ``files`` on branch main, dev and tag v2 after it."""
    work = tmp_path / f"{name}-work"
    work.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=work)
    for rel, data in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_bytes(data)
    git("add", ".", cwd=work)
    git("commit", "--quiet", "-m", "v1", cwd=work)
    git("checkout", "--quiet", "-b", "dev", cwd=work)
    (work / "app.py").write_text("VERSION = 'dev'\n")
    git("commit", "--quiet", "-am", "dev", cwd=work)
    git("tag", "v2", cwd=work)
    bare = tmp_path / "srv" / f"{name}.git"
    git("clone", "--quiet", "--bare", str(work), str(bare), cwd=tmp_path)
    return bare


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    return make_remote(
        tmp_path,
        "repo",
        {
            "app.py": b"VERSION = 1\n",
            "data/sales.csv": b"region,total\nnorth,3\n",
        },
    )


@pytest.fixture
def big_remote(tmp_path: Path) -> Path:
    """A repository holding a 3 MB blob that does not compress."""
    return make_remote(
        tmp_path, "big", {"app.py": b"VERSION = 1\n", "blob.bin": os.urandom(3 * MB)}
    )


# -- what git is told -----------------------------------------------------------------------


def config_of(argv: list[str]) -> dict[str, str]:
    pairs = [argv[i + 1] for i, a in enumerate(argv) if a == "-c"]
    return dict(p.split("=", 1) for p in pairs)


def test_git_config_allows_https_only_no_redirects_no_helpers_no_hooks():
    config = config_of(git_config(("https",), None))
    assert config["protocol.allow"] == "never"
    assert config["protocol.https.allow"] == "always"
    assert "protocol.file.allow" not in config
    assert config["http.followRedirects"] == "false"
    assert config["credential.helper"] == "" and config["core.askPass"] == ""
    assert config["core.hooksPath"] == os.devnull
    assert config["submodule.recurse"] == "false"
    assert "http.curloptResolve" not in config
    with_file = config_of(git_config(FILE, "h.org:443:1.2.3.4"))
    assert with_file["protocol.file.allow"] == "always"
    assert with_file["http.curloptResolve"] == "h.org:443:1.2.3.4"


def test_git_env_has_no_hub_credentials_prompts_or_user_git_settings():
    base = {
        "PATH": "/usr/bin",
        "HOME": "/home/x",
        "HTTPS_PROXY": "http://proxy:3128",
        "JUPYTERHUB_API_TOKEN": "secret",
        "JPY_API_TOKEN": "secret",
        "JUPYTER_TOKEN": "secret",
        "HUB_VIZ_SERVICE_KEY": "k",
        "GIT_ASKPASS": "/bin/steal",
        "SSH_ASKPASS": "/bin/steal",
        "GIT_SSL_NO_VERIFY": "1",
        "GIT_PROXY_COMMAND": "x",
        "GIT_ALLOW_PROTOCOL": "ext",
        "GIT_SSL_CAINFO": "/etc/ca.pem",
        "GIT_TEMPLATE_DIR": "/tmp/t",
    }
    env = git_env(base, ("https",))
    assert env["PATH"] == "/usr/bin" and env["HTTPS_PROXY"] == "http://proxy:3128"
    for gone in (
        "JUPYTERHUB_API_TOKEN",
        "JPY_API_TOKEN",
        "JUPYTER_TOKEN",
        "HUB_VIZ_SERVICE_KEY",
        "GIT_ASKPASS",
        "SSH_ASKPASS",
        "GIT_SSL_NO_VERIFY",
        "GIT_PROXY_COMMAND",
        "GIT_TEMPLATE_DIR",
    ):
        assert gone not in env
    assert env["GIT_SSL_CAINFO"] == "/etc/ca.pem"  # the operator's CA bundle stays
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == os.devnull
    assert env["GIT_LFS_SKIP_SMUDGE"] == "1"
    assert env["GIT_ALLOW_PROTOCOL"] == "https"
    assert git_env(base, FILE)["GIT_ALLOW_PROTOCOL"] == "https:file"


def test_pin_names_the_host_as_curl_looks_it_up():
    assert pin_for("https://GitHub.com/o/r.git", ["140.82.121.4"]) == "github.com:443:140.82.121.4"
    assert (
        pin_for("https://h.org:8443/r", ["93.184.216.34", "2606:4700::1"])
        == "h.org:8443:93.184.216.34,[2606:4700::1]"
    )


# -- clones over file:// ----------------------------------------------------------------------


async def test_clone_of_a_branch_and_a_tag(tmp_path, remote):
    url = f"file://{remote}"
    await fetch_git(GitSource(url, "main"), tmp_path / "main", schemes=FILE)
    assert (tmp_path / "main" / "app.py").read_text() == "VERSION = 1\n"
    assert (tmp_path / "main" / "data" / "sales.csv").read_text().startswith("region,total")
    await fetch_git(GitSource(url, "v2"), tmp_path / "v2", schemes=FILE)
    assert (tmp_path / "v2" / "app.py").read_text() == "VERSION = 'dev'\n"


async def test_unknown_ref_fails_with_a_sentence_and_leaves_nothing(tmp_path, remote):
    dest = tmp_path / "checkout"
    with pytest.raises(SpecError) as e:
        await fetch_git(GitSource(f"file://{remote}", "no-such-branch"), dest, schemes=FILE)
    assert e.value.message == "Could not fetch ref 'no-such-branch' from the git repository."
    assert str(remote) not in e.value.message, "no server paths in what users read"
    assert "failed" in e.value.log_message and "no-such-branch" in e.value.log_message
    assert not dest.exists()


async def test_missing_repository_fails_with_a_sentence(tmp_path):
    with pytest.raises(SpecError, match="Could not fetch ref 'main'"):
        await fetch_git(GitSource(f"file://{tmp_path}/nothing.git"), tmp_path / "c", schemes=FILE)


async def test_file_urls_are_refused_at_the_protocol_level_unless_allowed(tmp_path, remote):
    # Past the URL check (as a redirect or a rewritten URL would be): git itself refuses.
    with pytest.raises(SpecError) as e:
        await clone(
            GitSource(f"file://{remote}"),
            tmp_path / "c",
            schemes=("https",),
            pin=None,
            max_bytes=10 * MB,
            timeout=60,
        )
    assert "transport 'file' not allowed" in e.value.log_message
    assert not (tmp_path / "c").exists()
    with pytest.raises(SpecError, match="must start with https://"):
        await fetch_git(GitSource(f"file://{remote}"), tmp_path / "c")


async def test_out_of_time_leaves_no_partial_checkout(tmp_path, remote):
    # A limit of 0 s expires before git can finish, whatever the machine's speed.
    dest = tmp_path / "checkout"
    with pytest.raises(GitTimeout, match="took longer than 0 s"):
        await fetch_git(GitSource(f"file://{remote}"), dest, schemes=FILE, timeout=0)
    assert not dest.exists()


async def test_hooks_from_a_template_never_run(tmp_path, remote, monkeypatch):
    template = tmp_path / "template"
    (template / "hooks").mkdir(parents=True)
    marker = tmp_path / "hook-ran"
    hook = template / "hooks" / "post-checkout"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    monkeypatch.setenv("GIT_TEMPLATE_DIR", str(template))
    await fetch_git(GitSource(f"file://{remote}"), tmp_path / "c", schemes=FILE)
    assert (tmp_path / "c" / "app.py").exists()
    assert not marker.exists()


# -- the size cap ------------------------------------------------------------------------------


async def test_a_repository_over_the_cap_is_refused_and_removed(tmp_path, big_remote):
    dest = tmp_path / "checkout"
    with pytest.raises(GitTooLarge) as e:
        await fetch_git(GitSource(f"file://{big_remote}"), dest, schemes=FILE, max_bytes=1 * MB)
    assert e.value.message == (
        "The git repository is larger than the 1 MB this hub allows for a dashboard's source."
    )
    assert not dest.exists()
    # under a cap it fits in, the same repository is fetched
    await fetch_git(GitSource(f"file://{big_remote}"), dest, schemes=FILE, max_bytes=20 * MB)
    assert (dest / "blob.bin").stat().st_size == 3 * MB


async def test_the_cap_stops_a_process_that_keeps_writing(tmp_path):
    # A writer that goes past the cap (20 MB, bounded so that a broken watcher cannot
    # fill the disk), then waits a minute and leaves a mark: only a kill while it runs
    # stops it before the mark.
    watch = tmp_path / "clone"
    watch.mkdir()
    pid_file, mark = tmp_path / "pid", tmp_path / "ended-by-itself"
    writer = (
        "import os, time\n"
        f"open({str(pid_file)!r}, 'w').write(str(os.getpid()))\n"
        f"f = open({str(watch / 'pack')!r}, 'wb')\n"
        "for _ in range(320):\n    f.write(b'x' * 65536); f.flush()\n"
        f"time.sleep(60); open({str(mark)!r}, 'w').close()\n"
    )
    with pytest.raises(GitTooLarge):
        await run_capped(
            [sys.executable, "-c", writer],
            env=os.environ,
            watch=watch,
            max_bytes=2 * MB,
            timeout=300,
        )
    assert not mark.exists(), "the writer was stopped, not left to finish"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


# -- over HTTPS: redirects and pinned addresses ---------------------------------------------


@pytest.fixture
def served(tmp_path, remote, monkeypatch):
    """The remote served over HTTPS on 127.0.0.2, its certificate trusted by git."""
    with https_git_server(remote.parent, tmp_path / "certs", "127.0.0.2") as server:
        monkeypatch.setenv("GIT_SSL_CAINFO", str(server.cert))
        yield server


async def test_the_clone_goes_to_the_pinned_address_not_to_what_dns_says(tmp_path, served):
    # a.localhost resolves to loopback 127.0.0.1 here, where nothing serves this port;
    # the pin sends git to 127.0.0.2, the address that was checked.
    url = f"https://a.localhost:{served.port}/repo.git"
    await clone(
        GitSource(url),
        tmp_path / "c",
        schemes=("https",),
        pin=f"a.localhost:{served.port}:127.0.0.2",
        max_bytes=10 * MB,
        timeout=60,
    )
    assert (tmp_path / "c" / "app.py").read_text() == "VERSION = 1\n"
    assert "/repo.git/info/refs" in served.paths


async def test_a_git_too_old_to_pin_is_not_used(tmp_path, served, monkeypatch):
    async def old_git():
        return (2, 30)

    monkeypatch.setattr(gitfetch, "git_version", old_git)
    with pytest.raises(SpecError, match="git on this server is too old"):
        await clone(
            GitSource(f"https://a.localhost:{served.port}/repo.git"),
            tmp_path / "c",
            schemes=("https",),
            pin=f"a.localhost:{served.port}:127.0.0.2",
            max_bytes=10 * MB,
            timeout=60,
        )
    assert served.paths == []
    assert await git_version() >= (2, 37), "this machine's git pins"


async def test_a_redirect_is_not_followed(tmp_path, served):
    url = f"https://a.localhost:{served.port}/moved/repo.git"
    with pytest.raises(SpecError) as e:
        await clone(
            GitSource(url),
            tmp_path / "c",
            schemes=("https",),
            pin=f"a.localhost:{served.port}:127.0.0.2",
            max_bytes=10 * MB,
            timeout=60,
        )
    assert "redirect, which is not followed" in e.value.message
    assert served.paths == ["/moved/repo.git/info/refs"], "the redirect's target was never asked"
    assert not (tmp_path / "c").exists()


# -- fetch_git: check, then clone pinned to what was checked ---------------------------------


@pytest.fixture
def clones(monkeypatch):
    """Record the clones fetch_git asks for instead of running them."""
    seen: list[dict] = []

    async def fake_clone(source, dest, **kwargs):
        seen.append({"url": source.url, "ref": source.ref, **kwargs})

    monkeypatch.setattr(gitfetch, "clone", fake_clone)
    return seen


async def test_fetch_git_pins_the_addresses_it_checked(tmp_path, clones):
    async def resolver(host, port):
        assert (host, port) == ("git.example.org", 8443)
        return ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"]

    await fetch_git(
        GitSource("https://git.example.org:8443/o/r.git", "v1"), tmp_path / "c", resolver=resolver
    )
    (call,) = clones
    assert call["pin"] == "git.example.org:8443:93.184.216.34,[2606:2800:220:1:248:1893:25c8:1946]"
    assert call["ref"] == "v1" and call["schemes"] == ("https",)


async def test_fetch_git_literal_public_address_needs_no_pin(tmp_path, clones):
    await fetch_git(GitSource("https://140.82.121.4/o/r.git"), tmp_path / "c")
    assert clones[0]["pin"] is None


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/r.git",
        "https://0x7f000001/r.git",
        "https://2130706433/r.git",
        "https://0177.0.0.1/r.git",
        "https://127.1/r.git",
        "https://[::1]/r.git",
        "https://[::ffff:127.0.0.1]/r.git",
        "https://169.254.169.254/latest/meta-data",
        "https://[fd00:ec2::254]/r.git",
        "https://10.0.0.5:8443/r.git",
        "https://100.64.0.1/r.git",
        "https://localhost/r.git",
        "https://a.localhost/r.git",
        "https://LOCALHOST/r.git",
        "https://0.0.0.0/r.git",
        "https://224.0.0.1/r.git",
    ],
)
async def test_fetch_git_refuses_non_public_hosts_before_git_runs(tmp_path, clones, url):
    with pytest.raises(SpecError, match="git sources must come from a public host"):
        await fetch_git(GitSource(url), tmp_path / "c")
    assert clones == []


async def test_fetch_git_stops_at_a_host_that_cannot_be_found(tmp_path, clones):
    async def nothing(host, port):
        raise OSError("Name or service not known")

    with pytest.raises(SpecError, match="could not be found"):
        await fetch_git(
            GitSource("https://nowhere.example.org/r.git"), tmp_path / "c", resolver=nothing
        )
    assert clones == []


async def test_a_stopped_fetch_kills_what_it_started(tmp_path):
    """Cancelling the fetch (the launcher asked to stop) leaves no process behind."""
    pid_file, mark = tmp_path / "pid", tmp_path / "ended-by-itself"
    sleeper = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); "
        f"time.sleep(60); open({str(mark)!r}, 'w').close()"
    )
    task = asyncio.ensure_future(
        run_capped(
            [sys.executable, "-c", sleeper],
            env=os.environ,
            watch=tmp_path,
            max_bytes=MB,
            timeout=300,
        )
    )
    for _ in range(600):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not mark.exists(), "the process was killed, not waited for"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


# -- python -m hub_viz.gitfetch (the Kubernetes init container) ------------------------------


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hub_viz.gitfetch", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_command_line_fetches_into_an_empty_folder(tmp_path, remote):
    dest = tmp_path / "mount"
    dest.mkdir()  # an emptyDir is there before the init container runs
    done = run_cli("--schemes=https,file", "--", f"file://{remote}", "v2", str(dest))
    assert done.returncode == 0, done.stderr
    assert (dest / "app.py").read_text() == "VERSION = 'dev'\n"


@pytest.mark.parametrize(
    ("url", "sentence"),
    [
        ("https://[::1]/r.git", "is a loopback address"),
        ("https://a.localhost/r.git", "resolves to"),
        ("ssh://h.org/r.git", "must start with https://"),
    ],
)
def test_the_command_line_refuses_with_the_same_sentences(tmp_path, url, sentence):
    done = run_cli("--", url, "main", str(tmp_path / "mount"))
    assert done.returncode == 1
    assert sentence in done.stderr.splitlines()[0]
