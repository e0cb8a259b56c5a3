"""The ``hub-viz`` command line against a real hub: publish, list, open-url, usage, unpublish."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.hub

OWNER = "cli-author"
SLUG = "cli-test-dash"


def cli(hub, *args: str, token: str | None = None, check: bool = True):
    """Run ``python -m hub_viz.cli`` with the hub URL and token in the environment."""
    env = {k: v for k, v in os.environ.items() if k not in ("JUPYTERHUB_API_TOKEN",)}
    env["JUPYTERHUB_URL"] = hub.url
    if token is not None:
        env["JUPYTERHUB_API_TOKEN"] = token
    result = subprocess.run(
        [sys.executable, "-m", "hub_viz.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    if check:
        assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result


def table_row(output: str, ref: str) -> list[str]:
    """The cells of the table row whose first column is ``ref``."""
    rows = [line.split() for line in output.splitlines() if line.split()[:1] == [ref]]
    assert len(rows) == 1, output
    return rows[0]


def test_publish_list_open_usage_unpublish(hub):
    token = hub.user_token(OWNER)
    ref = f"{OWNER}/{SLUG}"

    published = cli(
        hub,
        "publish",
        "dash/app.py",
        "--title",
        "CLI test dash",
        "--slug",
        SLUG,
        "--framework",
        "dash",
        "--visibility",
        "all",
        "--description",
        "Published by the CLI test",
        token=token,
    )
    open_url = f"{hub.service_url}open/{ref}"
    assert published.stdout.strip() == open_url
    assert ref in published.stderr

    # publishing the same slug again: the service's 409 message, status 1, no traceback
    again = cli(
        hub, "publish", "dash/app.py", "--title", "Again", "--slug", SLUG, token=token, check=False
    )
    assert again.returncode == 1
    assert "already have a dashboard named" in again.stderr
    assert "Traceback" not in again.stderr

    listed = cli(hub, "list", "--mine", token=token)
    header = listed.stdout.splitlines()[0].split()
    assert header == ["DASHBOARD", "FRAMEWORK", "MODE", "VISIBILITY", "STATUS", "TITLE"]
    assert table_row(listed.stdout, ref) == [
        ref,
        "dash",
        "shared",
        "all",
        "stopped",
        "CLI",
        "test",
        "dash",
    ]
    searched = cli(hub, "list", "--search", "published by the cli", token=token)
    assert table_row(searched.stdout, ref)[0] == ref
    # another user sees it (visibility "all") but not with --mine
    other = hub.user_token("cli-viewer")
    assert table_row(cli(hub, "list", token=other).stdout, ref)[1] == "dash"
    assert ref not in cli(hub, "list", "--mine", token=other).stdout

    assert cli(hub, "open-url", ref, token=token).stdout.strip() == open_url
    missing = cli(hub, "open-url", f"{OWNER}/no-such-dash", token=token, check=False)
    assert missing.returncode == 1
    assert f"No dashboard {OWNER}/no-such-dash" in missing.stderr

    r = hub.svc("POST", f"dashboards/{OWNER}/{SLUG}/open", OWNER)
    assert r.status_code == 200, r.text
    assert r.json()["server"] == f"{OWNER}/{SLUG}"
    model = hub.wait(OWNER, SLUG)
    assert model.get("ready"), hub.spawn_message(OWNER, SLUG)[-2000:]

    usage = cli(hub, "usage", ref, "--days", "7", token=token)
    figures, runs = usage.stdout.split("\n\n")
    lines = figures.splitlines()
    assert lines[0].split() == [
        "DASHBOARD",
        "DEPLOYMENTS",
        "INSTANCE-HOURS",
        "RUNNING",
        "MEAN-MINUTES",
    ]
    row = table_row(figures, ref)
    assert row[1] == "1"
    assert row[3].endswith("%")
    # then its runs: who started each, when it stopped and why
    assert runs.splitlines()[0].split() == ["SERVER", "STARTED", "BY", "STOPPED", "WHY"]
    assert table_row(runs, ref)[3:] == [OWNER, "running"]
    all_usage = cli(hub, "usage", token=token)
    assert table_row(all_usage.stdout, ref)[1] == "1"
    as_json = json.loads(cli(hub, "usage", ref, "--json", token=token).stdout)
    assert as_json["deployments"] == 1 and as_json["running_now"] == 1
    # usage is for the author: the viewer gets the service's 403 message
    forbidden = cli(hub, "usage", ref, token=other, check=False)
    assert forbidden.returncode == 1
    assert f"Only {OWNER} can change" in forbidden.stderr

    # a stopped run says when and why
    assert hub.svc("POST", f"dashboards/{OWNER}/{SLUG}/stop", OWNER).status_code == 200
    runs = cli(hub, "usage", ref, token=token).stdout.split("\n\n")[1]
    run = table_row(runs, ref)
    assert run[3] == OWNER and run[6:] == ["stopped", "by", "author", f"({OWNER})"], runs
    assert run[4].startswith("20") and ":" in run[5]  # the stop time, not "running"

    # unpublishing is for the author too
    refused = cli(hub, "unpublish", ref, token=other, check=False)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    cli(hub, "unpublish", ref, token=token)
    assert SLUG not in hub.api("GET", f"/users/{OWNER}").json().get("servers", {})
    assert ref not in cli(hub, "list", token=token).stdout
    gone = cli(hub, "open-url", ref, token=token, check=False)
    assert gone.returncode == 1 and "No dashboard" in gone.stderr


def test_bad_token_and_missing_token(hub):
    bad = cli(hub, "list", token="not-a-token", check=False)
    assert bad.returncode == 1
    assert "Log in to the hub first." in bad.stderr
    assert "Traceback" not in bad.stderr
    missing = cli(hub, "list", check=False)
    assert missing.returncode == 1
    assert "JUPYTERHUB_API_TOKEN" in missing.stderr


def test_the_cli_finds_the_service_on_its_own_host(isolated_hub):
    """On the isolated layout the service has a host of its own: the CLI, given only the
    hub's URL, finds it, and the links it prints are absolute and on that host."""
    hub = isolated_hub
    token = hub.user_token(OWNER)
    ref = f"{OWNER}/{SLUG}"
    published = cli(
        hub,
        "publish",
        "dash/app.py",
        "--title",
        "CLI on hosts",
        "--slug",
        SLUG,
        "--framework",
        "dash",
        token=token,
    )
    assert published.stdout.strip() == f"{hub.layout.service_url}open/{ref}"
    assert cli(hub, "open-url", ref, token=token).stdout.strip() == published.stdout.strip()
    listed = cli(hub, "list", "--mine", token=token)
    assert table_row(listed.stdout, ref)[0] == ref
    # told where the service is, it goes straight there
    direct = cli(hub, "list", "--mine", "--service-url", hub.layout.service_url, token=token)
    assert ref in direct.stdout
    cli(hub, "unpublish", ref, token=token)
