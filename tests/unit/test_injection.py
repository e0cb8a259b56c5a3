"""Nothing an author types reaches a command line as an option of the framework, git or the launcher.

Entries, app arguments, git URLs and refs arrive from the publish API (or a
server's ``user_options``) and end up in argv lists: the framework's, ``git
clone``'s and the launcher's. Each attempt to smuggle an option in is either
refused with a readable 400 (:class:`SpecError`) or lands where only the app
reads it, after the framework's separator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS
from hub_viz.errors import SpecError
from hub_viz.frameworks import build_command
from hub_viz.launcher.app import parse_args
from hub_viz.service.dashboards import Policy, validate
from hub_viz.sources import check_git_ref, check_git_url
from hub_viz.spec import resolve_spec

pytestmark = pytest.mark.unit

ALL = [name for name in BUILTIN_FRAMEWORKS if name != "custom"]
FILES = {
    "report.ipynb": '{"cells": []}',
    "dash/app.py": "import dash\napp = dash.Dash(__name__)\n",
    "live/app.py": "import streamlit as st\n",
    "clock/app.py": "from bokeh.io import curdoc\n",
    "panes/app.py": "import panel as pn\n",
}
# Options that would change how a framework serves: address, port, origin checks.
OPTIONS = {
    "voila": ["--Voila.ip=0.0.0.0", "--port=1", "--VoilaConfiguration.strip_sources=False"],
    "dash": ["--bind=0.0.0.0:1", "--workers=64"],
    "notebook": ["--ServerApp.ip=0.0.0.0", "--ServerApp.token="],
    "streamlit": [
        "--server.port=1",
        "--server.address=0.0.0.0",
        "--server.enableXsrfProtection=false",
    ],
    "bokeh": ["--port=1", "--address=0.0.0.0", "--allow-websocket-origin=*"],
    "panel": ["--port=1", "--address=0.0.0.0", "--allow-websocket-origin=*"],
}
ENTRIES = {
    "voila": "report.ipynb",
    "dash": "dash/app.py",
    "notebook": "report.ipynb",
    "streamlit": "live/app.py",
    "bokeh": "clock/app.py",
    "panel": "panes/app.py",
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        path = tmp_path / "alice" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def policy(root: Path) -> Policy:
    return Policy(
        frameworks=BUILTIN_FRAMEWORKS,
        allowed_frameworks=[*ALL, "custom"],
        dashboards_root=str(root / "{username}"),
        git_schemes=("https",),
    )


def publish(root: Path, **fields: Any) -> dict[str, Any]:
    return validate({"title": "Sales", **fields}, policy(root), "alice")


def refused(call: Any, *fragments: str) -> str:
    """``call()`` raises a 400 SpecError whose message is a sentence naming ``fragments``."""
    with pytest.raises(SpecError) as e:
        call()
    message = e.value.message
    assert e.value.status_code == 400
    assert len(message.split()) >= 4 and message.rstrip().endswith("."), message
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


# -- app arguments ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["voila", "dash", "notebook"])
def test_frameworks_without_app_arguments_refuse_every_arg(root: Path, name: str) -> None:
    mode = "per-viewer" if name == "notebook" else "shared"
    for arg in OPTIONS[name]:
        refused(
            lambda arg=arg: publish(
                root, entry=ENTRIES[name], framework=name, mode=mode, args=[arg]
            ),
            "takes no 'args'",
        )


@pytest.mark.parametrize("name", ["streamlit", "bokeh", "panel"])
def test_app_arguments_come_after_the_separator(root: Path, name: str) -> None:
    """Accepted, but only the app sees them: the framework's own options are untouched."""
    fields = publish(root, entry=ENTRIES[name], framework=name, args=OPTIONS[name])
    assert fields["args"] == OPTIONS[name]
    framework = BUILTIN_FRAMEWORKS[name]
    plain = build_command(framework, entry="app.py", port=8123, prefix="/user/a/b/")
    cmd = build_command(
        framework, entry="app.py", port=8123, prefix="/user/a/b/", args=fields["args"]
    )
    head = len(plain.argv)
    assert cmd.argv[:head] == plain.argv  # every framework option as without args
    assert cmd.argv[head:] == [*framework.args_separator, *OPTIONS[name]]
    assert cmd.env == plain.env


@pytest.mark.parametrize("name", ["streamlit", "bokeh", "panel"])
def test_a_bare_separator_is_refused(root: Path, name: str) -> None:
    """A second '--' ends Bokeh's and Panel's --args: the app would die with a usage error."""
    for args in (["--"], ["x", "--", "--port=1"]):
        refused(
            lambda args=args: publish(root, entry=ENTRIES[name], framework=name, args=args), "'--'"
        )
    assert publish(root, entry=ENTRIES[name], framework=name, args=["--x", "-", "---"])


def test_a_spawn_spec_is_checked_the_same_way(root: Path) -> None:
    """What the hub's API hands the spawner goes through resolve_spec's identical check."""
    home = root / "alice"
    kwargs = {"root": home, "frameworks": BUILTIN_FRAMEWORKS, "allowed_frameworks": ALL}
    refused(
        lambda: resolve_spec({"entry": "report.ipynb", "args": ["--Voila.ip=0.0.0.0"]}, **kwargs),
        "takes no 'args'",
    )
    refused(lambda: resolve_spec({"entry": "clock/app.py", "args": ["--"]}, **kwargs), "'--'")


def test_the_launcher_keeps_app_arguments_as_values() -> None:
    """The spawner passes each app argument as --arg=<value>: never a launcher option."""
    options = parse_args(
        [
            "--entry=app.py",
            "--cwd=/srv/d",
            "--port=9000",
            "--arg=--entry=/etc/passwd",
            "--arg=--port=1",
            "--arg=--cwd=/",
        ]
    )
    assert (options.entry, options.cwd, options.port) == ("app.py", "/srv/d", 9000)
    assert options.args == ["--entry=/etc/passwd", "--port=1", "--cwd=/"]


def test_custom_commands_are_not_for_the_publish_api(root: Path) -> None:
    """Even where the operator enabled 'custom', authors cannot send a command line."""
    refused(
        lambda: publish(
            root, entry="dash/app.py", framework="custom", command=["sh", "-c", "id", "{port}"]
        ),
        "Unknown field(s) ['command']",
    )


# -- entries ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "entry",
    [
        "-rf.py",
        "--help",
        " --help",
        "--Voila.ip=0.0.0.0.ipynb",
        "dash/-x.py",
        "dash/--server.port=1.py",
        "-/app.py",
        ".hidden/app.py",
        "../bob/app.py",
        "/etc/passwd",
        "dash\\app.py",
        "dash/app.py\x00",
    ],
)
def test_entries_that_look_like_options_or_leave_the_folder_are_refused(
    root: Path, entry: str
) -> None:
    message = refused(lambda: publish(root, entry=entry, framework="dash"), "'entry'")
    assert str(root) not in message


# -- git sources --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("-uhttps://h.org/x", "must start with https://"),
        ("--upload-pack=touch", "must start with https://"),
        ("--upload-pack=touch /tmp/x", "may not contain spaces"),
        ("ext::sh -c touch% /tmp/pwned", "may not contain spaces"),
        ("ext::sh", "must start with https://"),
        ("fd::17", "must start with https://"),
        ("https::h.org/org/repo.git", "needs a host name"),
        ("https://-oProxyCommand=id/repo.git", "needs a host name"),
        ("https://-evil.example/repo.git", "needs a host name"),
        ("https://.evil.example/repo.git", "needs a host name"),
        ("ssh://-oProxyCommand=id/repo.git", "must start with https://"),
    ],
)
def test_git_urls_that_are_options_or_helpers_are_refused(
    root: Path, url: str, fragment: str
) -> None:
    refused(lambda: check_git_url(url), fragment)
    refused(lambda: publish(root, entry="app.py", framework="dash", git={"url": url}), fragment)


@pytest.mark.parametrize("ref", ["-b", "--upload-pack=touch", "--depth=1000000", "-"])
def test_git_refs_that_are_options_are_refused(root: Path, ref: str) -> None:
    refused(lambda: check_git_ref(ref), "not starting with '-'")
    refused(
        lambda: publish(
            root, entry="app.py", framework="dash", git={"url": "https://h.org/r.git", "ref": ref}
        ),
        "git ref",
    )
