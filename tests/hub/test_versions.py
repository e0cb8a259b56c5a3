"""Versions on a real hub: publish, update, preview, roll back; a branch followed by webhook.

Each version runs what it pinned: a copy of the author's files taken when it
was made (an edit afterwards changes nothing until the author updates), or
the commit its git ref pointed at. Viewers get the current version; the
author previews another on a server of their own and makes it current (a
running shared instance restarts on it). The push webhook refuses a missing
or wrong signature and makes a version for a right one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests

from ..conftest import Hub, start_hub, stop_hub, wait_until

pytestmark = pytest.mark.hub

AUTHOR, VIEWER, OTHER = "ver-author", "ver-viewer", "ver-other"

APP = """
import dash
from dash import html

app = dash.Dash(__name__, title="Versions {tag}")
server = app.server
app.layout = html.Div("{tag}")
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    running = start_hub(
        tmp_path_factory.mktemp("versions-hub"), configure_kwargs={"publishers": [AUTHOR]}
    )
    for name in (AUTHOR, VIEWER, OTHER):
        running.ensure_user(name)
    yield running
    stop_hub(running)


def title(hub: Hub, body: dict) -> str:
    """The page title a viewer gets through the open flow's grant URL."""
    page = requests.get(hub.public(body["url"]), timeout=60)
    assert page.status_code == 200, page.text[:300]
    found = re.search(r"<title>(.*?)</title>", page.text)
    assert found, page.text[:300]
    return found[1]


def open_as(hub: Hub, ref: str, viewer: str) -> dict:
    r = hub.svc("POST", f"dashboards/{ref}/open", viewer)
    assert r.status_code == 200, r.text
    if r.json()["status"] != "ready":
        owner, slug = ref.split("/")
        hub.wait(owner, slug)
        r = hub.svc("POST", f"dashboards/{ref}/open", viewer)
    assert r.json()["status"] == "ready", r.json()
    return r.json()


def preview(hub: Hub, ref: str, number: int) -> dict:
    path = f"dashboards/{ref}/versions/{number}/preview"
    r = hub.svc("POST", path, AUTHOR)
    assert r.status_code == 200, r.text
    if r.json()["status"] != "ready":
        owner, name = r.json()["server"].split("/")
        hub.wait(owner, name)
        r = hub.svc("POST", path, AUTHOR)
    assert r.json()["status"] == "ready", r.json()
    return r.json()


def versions(hub: Hub, ref: str) -> dict:
    r = hub.svc("GET", f"dashboards/{ref}/versions", AUTHOR)
    assert r.status_code == 200, r.text
    return r.json()


def test_publish_update_preview_and_roll_back_a_dashboard_from_files(hub: Hub) -> None:
    folder = hub.root / "ver-files"
    folder.mkdir()
    app = folder / "app.py"
    app.write_text(APP.format(tag="v1"))
    ref = f"{AUTHOR}/ver-files"
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "slug": "ver-files",
            "title": "Versions",
            "entry": "ver-files/app.py",
            "framework": "dash",
            "visibility": "all",
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["version"] == 1
    try:
        assert title(hub, open_as(hub, ref, VIEWER)) == "Versions v1"

        # The author edits the file: version 1 is a copy taken at publish, so even a
        # fresh start of the instance still runs v1.
        app.write_text(APP.format(tag="v2"))
        assert hub.svc("POST", f"dashboards/{ref}/stop", AUTHOR).json()["stopped"] == 1
        assert title(hub, open_as(hub, ref, VIEWER)) == "Versions v1"

        # The update makes version 2, not current yet: the viewers' instance stays on v1.
        r = hub.svc(
            "PATCH",
            f"dashboards/{ref}",
            AUTHOR,
            json={"new_version": True, "make_current": False},
        )
        assert r.status_code == 200, r.text
        assert (r.json()["new_version"], r.json()["version"], r.json()["redeployed"]) == (
            2,
            1,
            False,
        )
        assert title(hub, open_as(hub, ref, VIEWER)) == "Versions v1"

        # The author previews version 2 on a server of their own; nobody else may.
        shown = preview(hub, ref, 2)
        preview_server = shown["server"].split("/")[1]
        assert shown["server"].startswith(f"{AUTHOR}/ver-files-v2-")
        assert title(hub, shown) == "Versions v2"
        for who in (VIEWER, OTHER):
            r = hub.svc("POST", f"dashboards/{ref}/versions/2/preview", who)
            assert r.status_code == 403, r.text
            assert "Only ver-author" in r.json()["message"]
            r = hub.svc("POST", f"dashboards/{ref}/versions/1/current", who)
            assert r.status_code == 403, r.text
            assert hub.svc("GET", f"dashboards/{ref}/versions", who).status_code == 403
        # the preview is not shared on the hub: the viewer's hub token cannot reach it
        r = requests.get(
            hub.server_url(AUTHOR, preview_server),
            headers={"Authorization": f"token {hub.user_token(VIEWER)}"},
            allow_redirects=False,
            timeout=30,
        )
        assert r.status_code != 200 and "Versions v2" not in r.text, r.status_code
        r = hub.svc("POST", f"dashboards/{ref}/versions/9/current", AUTHOR)
        assert r.status_code == 404 and "has no version 9" in r.json()["message"]
        r = hub.svc("POST", f"dashboards/{ref}/versions/two/current", AUTHOR)
        assert r.status_code == 404 and "numbered 1, 2, 3" in r.json()["message"]

        # Make it current: the running shared instance restarts on version 2.
        r = hub.svc("POST", f"dashboards/{ref}/versions/2/current", AUTHOR)
        assert r.status_code == 200, r.text
        assert r.json() == {"current": 2, "previous": 1, "redeployed": True}
        assert title(hub, open_as(hub, ref, VIEWER)) == "Versions v2"

        # Roll back in one call: version 1 again, from its copy.
        r = hub.svc("POST", f"dashboards/{ref}/versions/1/current", AUTHOR)
        assert r.status_code == 200 and r.json()["redeployed"] is True, r.text
        assert title(hub, open_as(hub, ref, VIEWER)) == "Versions v1"

        listed = versions(hub, ref)
        assert listed["current"] == 1
        by_number = {v["number"]: v for v in listed["items"]}
        assert [v["number"] for v in listed["items"]] == [2, 1]
        assert by_number[1]["current"] and not by_number[2]["current"]
        assert by_number[1]["snapshot"] != by_number[2]["snapshot"]
        # usage per version: opens counted for the version they got, previews apart
        assert by_number[1]["usage"]["opens"] >= 4
        assert by_number[2]["usage"]["opens"] >= 1
        assert by_number[2]["usage"]["previews"] == 1
        assert by_number[1]["usage"]["previews"] == 0
        assert by_number[1]["usage"]["runs"] >= 3

        # An update with nothing changed makes no version.
        r = hub.svc("PATCH", f"dashboards/{ref}", AUTHOR, json={"new_version": True})
        assert r.status_code == 200 and r.json()["new_version"] == 3, r.text
        # (the files are v2 now, unlike version 1: a new version 3, current)
        r = hub.svc("PATCH", f"dashboards/{ref}", AUTHOR, json={"new_version": True})
        assert r.status_code == 200 and r.json()["new_version"] is None, r.text
    finally:
        assert hub.svc("DELETE", f"dashboards/{ref}", AUTHOR).status_code == 204
    assert not [
        name
        for name in hub.api("GET", f"/users/{AUTHOR}").json()["servers"]
        if name.startswith("ver-files")
    ]


def test_a_viewers_own_instance_moves_to_the_current_version_when_they_open_it_again(
    hub: Hub,
) -> None:
    """Per-viewer: the instance a viewer has keeps its version until the author makes
    another current; their next open then restarts it on that one."""
    folder = hub.root / "ver-own"
    folder.mkdir()
    app = folder / "app.py"
    app.write_text(APP.format(tag="own-v1"))
    ref = f"{AUTHOR}/ver-own"
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "slug": "ver-own",
            "title": "Own",
            "entry": "ver-own/app.py",
            "framework": "dash",
            "visibility": "all",
            "mode": "per-viewer",
        },
    )
    assert r.status_code == 201, r.text
    try:
        first = open_as(hub, ref, VIEWER)
        assert title(hub, first) == "Versions own-v1"
        owner, name = first["server"].split("/")
        assert owner == VIEWER

        def server() -> dict:
            return hub.api("GET", f"/users/{VIEWER}").json()["servers"][name]

        started = server()["started"]

        # a new version the author has not made current: the viewer's instance stays
        app.write_text(APP.format(tag="own-v2"))
        r = hub.svc(
            "PATCH", f"dashboards/{ref}", AUTHOR, json={"new_version": True, "make_current": False}
        )
        assert r.status_code == 200 and r.json()["new_version"] == 2, r.text
        assert title(hub, open_as(hub, ref, VIEWER)) == "Versions own-v1"
        assert server()["started"] == started

        # made current: nothing stops under the viewer, their next open restarts it on v2
        r = hub.svc("POST", f"dashboards/{ref}/versions/2/current", AUTHOR)
        assert r.status_code == 200 and r.json()["redeployed"] is False, r.text
        assert server()["ready"] and server()["started"] == started
        assert title(hub, open_as(hub, ref, VIEWER)) == "Versions own-v2"
        assert server()["started"] != started
        # another viewer starts on the current version at once
        assert title(hub, open_as(hub, ref, OTHER)) == "Versions own-v2"
        usage = {v["number"]: v["usage"] for v in versions(hub, ref)["items"]}
        assert usage[1]["runs"] == 1 and usage[2]["runs"] == 2, usage
        # every message the service logged on the way was well formed (tornado's
        # formatter writes "Bad message" for one that is not, logging "Logging error")
        logged = hub.log.read_text(errors="replace")
        assert "Bad message (" not in logged and "--- Logging error ---" not in logged
    finally:
        assert hub.svc("DELETE", f"dashboards/{ref}", AUTHOR).status_code == 204


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def signed(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_a_followed_branch_gets_versions_from_signed_pushes_only(hub: Hub, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "app.py").write_text(APP.format(tag="g1"))
    git("init", "-q", "-b", "main", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "-qm", "g1", cwd=work)
    first = git("rev-parse", "HEAD", cwd=work)
    bare = tmp_path / "repo.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    git("remote", "add", "origin", str(bare), cwd=work)
    url = f"file://{bare}"
    ref = f"{AUTHOR}/ver-git"

    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "slug": "ver-git",
            "title": "Versions from git",
            "entry": "app.py",
            "framework": "dash",
            "git": {"url": url, "ref": "main"},
            "visibility": "all",
            "follow_branch": True,
        },
    )
    assert r.status_code == 201, r.text
    assert (r.json()["commit"], r.json()["follow_branch"], r.json()["auto_current"]) == (
        first,
        True,
        False,
    )
    try:
        assert title(hub, open_as(hub, ref, VIEWER)) == "Versions g1"

        # A branch that does not exist is refused when the update asks for it.
        r = hub.svc("PATCH", f"dashboards/{ref}", AUTHOR, json={"git": {"url": url, "ref": "nope"}})
        assert r.status_code == 400, r.text
        assert "no branch or tag 'nope'" in r.json()["message"]

        r = hub.svc("POST", f"dashboards/{ref}/webhook", AUTHOR)
        assert r.status_code == 201, r.text
        hook_url, secret = hub.public(r.json()["url"]), r.json()["secret"]
        assert secret not in hub.svc("GET", f"dashboards/{ref}", AUTHOR).text
        assert secret not in json.dumps(versions(hub, ref))
        assert hub.svc("POST", f"dashboards/{ref}/webhook", VIEWER).status_code == 403

        (work / "app.py").write_text(APP.format(tag="g2"))
        git("commit", "-qam", "g2", cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        second = git("rev-parse", "HEAD", cwd=work)
        body = json.dumps({"ref": "refs/heads/main", "after": second}).encode()
        push = {"X-GitHub-Event": "push", "Content-Type": "application/json"}

        # Refused: no signature, a wrong one, a signature made with another secret, a
        # GitLab token that is not the secret, and an id no dashboard has; all alike.
        refusals = [
            requests.post(hook_url, data=body, headers=push, timeout=30),
            requests.post(
                hook_url,
                data=body,
                headers={**push, "X-Hub-Signature-256": "sha256=" + "0" * 64},
                timeout=30,
            ),
            requests.post(
                hook_url,
                data=body,
                headers={**push, "X-Hub-Signature-256": signed("not-the-secret", body)},
                timeout=30,
            ),
            requests.post(
                hook_url,
                data=body,
                headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret + "x"},
                timeout=30,
            ),
            requests.post(
                hook_url.rsplit("/", 1)[0] + "/" + "A" * 32,
                data=body,
                headers={**push, "X-Hub-Signature-256": signed(secret, body)},
                timeout=30,
            ),
        ]
        for refused in refusals:
            assert refused.status_code == 401, refused.text
            assert "signature is missing or does not match" in refused.json()["message"]
            assert "ver-git" not in refused.text and AUTHOR not in refused.text
        assert [v["number"] for v in versions(hub, ref)["items"]] == [1]

        # A signed push makes version 2 of the new commit; not current (not asked for).
        r = requests.post(
            hook_url,
            data=body,
            headers={**push, "X-Hub-Signature-256": signed(secret, body)},
            timeout=30,
        )
        assert r.status_code == 201, r.text
        assert r.json()["version"] == 2
        listed = versions(hub, ref)
        assert listed["current"] == 1
        assert [v["git"]["commit"] for v in listed["items"]] == [second, first]
        assert title(hub, open_as(hub, ref, VIEWER)) == "Versions g1"
        # GitLab's form of the same push: nothing new on the branch, no version
        r = requests.post(
            hook_url,
            data=body,
            headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret},
            timeout=30,
        )
        assert r.status_code == 200 and r.json()["version"] is None, r.text

        # The author makes it current: the shared instance restarts on the new commit.
        r = hub.svc("POST", f"dashboards/{ref}/versions/2/current", AUTHOR)
        assert r.status_code == 200 and r.json()["redeployed"] is True, r.text
        assert title(hub, open_as(hub, ref, VIEWER)) == "Versions g2"

        # With auto_current, the next signed push becomes current on its own.
        r = hub.svc("PATCH", f"dashboards/{ref}", AUTHOR, json={"auto_current": True})
        assert r.status_code == 200 and r.json()["auto_current"] is True, r.text
        (work / "app.py").write_text(APP.format(tag="g3"))
        git("commit", "-qam", "g3", cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        r = requests.post(
            hook_url,
            data=body,
            headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": secret},
            timeout=30,
        )
        assert r.status_code == 201 and r.json()["version"] == 3, r.text
        wait_until(lambda: versions(hub, ref)["current"] == 3, what="version 3 current")
        assert title(hub, open_as(hub, ref, VIEWER)) == "Versions g3"

        # A new webhook secret replaces the old one.
        fresh = hub.svc("POST", f"dashboards/{ref}/webhook", AUTHOR).json()
        r = requests.post(
            hook_url,
            data=body,
            headers={**push, "X-Hub-Signature-256": signed(secret, body)},
            timeout=30,
        )
        assert r.status_code == 401
        assert fresh["secret"] != secret
    finally:
        assert hub.svc("DELETE", f"dashboards/{ref}", AUTHOR).status_code == 204


def test_the_command_line_lists_makes_previews_and_rolls_back(hub: Hub) -> None:
    from .test_cli import cli

    folder = hub.root / "ver-cli"
    folder.mkdir()
    (folder / "app.py").write_text(APP.format(tag="c1"))
    ref = f"{AUTHOR}/ver-cli"
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={"slug": "ver-cli", "entry": "ver-cli/app.py", "framework": "dash", "title": "C"},
    )
    assert r.status_code == 201, r.text
    token = hub.user_token(AUTHOR)
    try:
        (folder / "app.py").write_text(APP.format(tag="c2"))
        made = cli(hub, "versions", ref, "--new", "--not-current", token=token)
        assert made.stdout.strip() == f"Version 2 of {ref} (not current yet)."
        listed = cli(hub, "versions", ref, token=token).stdout.splitlines()
        assert listed[0].split() == [
            "VERSION",
            "ORIGIN",
            "CREATED",
            "SOURCE",
            "ENTRY",
            "OPENS",
            "RUNS",
        ]
        assert [line.split()[:3] for line in listed[1:]] == [
            ["2", "update", listed[1].split()[2]],
            ["1", "*", "publish"],
        ]
        shown = cli(hub, "versions", ref, "--preview", "2", token=token).stdout.strip()
        assert title(hub, {"url": shown}) == "Versions c2"
        current = cli(hub, "versions", ref, "--make-current", "2", token=token)
        assert f"Version 2 of {ref} is current." in current.stderr
        missing = cli(hub, "versions", ref, "--make-current", "7", token=token, check=False)
        assert missing.returncode == 1 and "has no version 7" in missing.stderr
        assert "Traceback" not in missing.stderr
        other = cli(
            hub, "versions", ref, "--make-current", "1", token=hub.user_token(OTHER), check=False
        )
        assert other.returncode == 1 and f"No dashboard {ref}" in other.stderr
        assert cli(hub, "versions", ref, "--json", token=token).stdout.count('"number"') == 2
    finally:
        assert hub.svc("DELETE", f"dashboards/{ref}", AUTHOR).status_code == 204


@pytest.fixture(scope="module")
def checking_hub(tmp_path_factory: pytest.TempPathFactory) -> Hub:
    """A hub whose service checks followed branches every 2 s (no webhook needed)."""
    running = start_hub(
        tmp_path_factory.mktemp("checking-hub"),
        configure_kwargs={"publishers": [AUTHOR], "extra_service_config": {"follow_interval": 2}},
    )
    running.ensure_user(AUTHOR)
    running.ensure_user(VIEWER)
    yield running
    stop_hub(running)


def test_the_periodic_check_makes_a_current_version_of_a_new_commit(
    checking_hub: Hub, tmp_path: Path
) -> None:
    """No webhook: the service's branch check finds the pushed commit, makes a version,
    makes it current (the author chose so), and the running instance serves it."""
    hub = checking_hub
    work = tmp_path / "work"
    work.mkdir()
    (work / "app.py").write_text(APP.format(tag="c1"))
    git("init", "-q", "-b", "main", cwd=work)
    git("add", ".", cwd=work)
    git("commit", "-qm", "c1", cwd=work)
    bare = tmp_path / "repo.git"
    git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)
    git("remote", "add", "origin", str(bare), cwd=work)
    ref = f"{AUTHOR}/ver-check"
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "slug": "ver-check",
            "title": "Checked",
            "entry": "app.py",
            "framework": "dash",
            "git": {"url": f"file://{bare}", "ref": "main"},
            "visibility": "all",
            "follow_branch": True,
            "auto_current": True,
        },
    )
    assert r.status_code == 201, r.text
    try:
        assert title(hub, open_as(hub, ref, VIEWER)) == "Versions c1"
        (work / "app.py").write_text(APP.format(tag="c2"))
        git("commit", "-qam", "c2", cwd=work)
        git("push", "-q", "origin", "main", cwd=work)
        second = git("rev-parse", "HEAD", cwd=work)
        wait_until(
            lambda: versions(hub, ref)["current"] == 2, timeout=60, what="the check's version"
        )
        listed = versions(hub, ref)
        [newest] = [v for v in listed["items"] if v["number"] == 2]
        assert newest["origin"] == "check" and newest["git"]["commit"] == second
        # the running shared instance restarted on it
        wait_until(
            lambda: title(hub, open_as(hub, ref, VIEWER)) == "Versions c2",
            timeout=60,
            what="the instance to run the new commit",
        )
        # nothing new on the branch: two more checks make no version
        time.sleep(5)
        assert [v["number"] for v in versions(hub, ref)["items"]] == [2, 1]
    finally:
        assert hub.svc("DELETE", f"dashboards/{ref}", AUTHOR).status_code == 204
