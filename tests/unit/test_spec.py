"""resolve_spec(): what a user may ask for, checked against a real dashboards folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS
from hub_viz.errors import SpecError
from hub_viz.frameworks import PER_VIEWER, SHARED
from hub_viz.spec import MAX_ARGS, ResolvedSpec, resolve_spec

pytestmark = pytest.mark.unit

ALL = list(BUILTIN_FRAMEWORKS)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A dashboards folder, plus a secret file next to it (outside)."""
    root = tmp_path / "srv" / "dashboards"
    files = {
        "sales/app.py": "import dash\napp = dash.Dash(__name__)\n",
        "live/app.py": "import streamlit as st\n",
        "report.ipynb": '{"cells": []}',
        "my report.ipynb": '{"cells": []}',
        "clock/main.py": "from bokeh.io import curdoc\n",
        "plain.py": "print('no framework')\n",
        "nomain/readme.txt": "",
        "tools/serve.py": "print(1)\n",
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    outside = tmp_path / "srv" / "secret.py"
    outside.write_text("import dash\n")
    (tmp_path / "srv" / "elsewhere").mkdir()
    (tmp_path / "srv" / "elsewhere" / "app.py").write_text("import dash\n")
    (root / "escape.py").symlink_to(outside)
    (root / "escdir").symlink_to(tmp_path / "srv" / "elsewhere", target_is_directory=True)
    (root / "dangling.py").symlink_to(tmp_path / "srv" / "missing.py")
    (root / "alias.py").symlink_to(root / "sales" / "app.py")
    return root


def resolve(options: Any, root: Path, **kwargs: Any) -> ResolvedSpec:
    kwargs.setdefault("frameworks", BUILTIN_FRAMEWORKS)
    kwargs.setdefault("allowed_frameworks", ALL)
    return resolve_spec(options, root=root, **kwargs)


# -- good specs ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "framework", "entry", "folder", "mode", "args", "title"),
    [
        ({"entry": "sales/app.py"}, "dash", "app.py", "sales", SHARED, (), "app.py"),
        ({"entry": " sales/app.py "}, "dash", "app.py", "sales", SHARED, (), "app.py"),
        ({"entry": "./sales/app.py"}, "dash", "app.py", "sales", SHARED, (), "app.py"),
        ({"entry": "report.ipynb"}, "voila", "report.ipynb", "", SHARED, (), "report.ipynb"),
        (
            {"entry": "my report.ipynb", "title": "Mine"},
            "voila",
            "my report.ipynb",
            "",
            SHARED,
            (),
            "Mine",
        ),
        ({"entry": "clock"}, "bokeh", "clock", "", SHARED, (), "clock"),
        (
            {"entry": "report.ipynb", "framework": "panel"},
            "panel",
            "report.ipynb",
            "",
            SHARED,
            (),
            "report.ipynb",
        ),
        (
            {"entry": "report.ipynb", "framework": "notebook", "mode": PER_VIEWER},
            "notebook",
            "report.ipynb",
            "",
            PER_VIEWER,
            (),
            "report.ipynb",
        ),
        (
            {"entry": "report.ipynb", "mode": PER_VIEWER},
            "voila",
            "report.ipynb",
            "",
            PER_VIEWER,
            (),
            "report.ipynb",
        ),
        (
            {"entry": "live/app.py", "args": ["--region", "eu"]},
            "streamlit",
            "app.py",
            "live",
            SHARED,
            ("--region", "eu"),
            "app.py",
        ),
        ({"entry": "clock", "args": []}, "bokeh", "clock", "", SHARED, (), "clock"),
        (
            {"entry": "sales/app.py", "args": None, "title": ""},
            "dash",
            "app.py",
            "sales",
            SHARED,
            (),
            "app.py",
        ),
        ({"entry": "alias.py"}, "dash", "alias.py", "", SHARED, (), "alias.py"),
        (
            {"entry": "sales/app.py", "title": "T" * 200},
            "dash",
            "app.py",
            "sales",
            SHARED,
            (),
            "T" * 200,
        ),
    ],
)
def test_good_specs(
    root: Path,
    options: dict,
    framework: str,
    entry: str,
    folder: str,
    mode: str,
    args: tuple,
    title: str,
) -> None:
    spec = resolve(options, root)
    assert spec.framework.name == framework
    assert spec.entry == entry
    assert spec.cwd == str((root / folder).resolve() if folder else root.resolve())
    assert (Path(spec.cwd) / spec.entry).exists()
    assert spec.mode == mode
    assert spec.args == args
    assert spec.title == title


def test_explicit_framework_wins_over_detection(root: Path) -> None:
    spec = resolve({"entry": "sales/app.py", "framework": "streamlit"}, root)
    assert spec.framework is BUILTIN_FRAMEWORKS["streamlit"]


def test_custom_framework_gets_the_spec_command(root: Path) -> None:
    command = ["python", "serve.py", "--port={port}", "--prefix={prefix}"]
    spec = resolve({"entry": "tools/serve.py", "framework": "custom", "command": command}, root)
    assert spec.framework.name == "custom"
    assert spec.framework.command == tuple(command)
    assert BUILTIN_FRAMEWORKS["custom"].command == ()


def test_detection_only_among_allowed(root: Path) -> None:
    allowed = ["voila", "panel", "bokeh"]
    assert resolve({"entry": "clock"}, root, allowed_frameworks=allowed).framework.name == "bokeh"
    with pytest.raises(SpecError, match="Cannot tell which framework"):
        resolve({"entry": "sales/app.py"}, root, allowed_frameworks=allowed)


def test_allowed_names_not_in_frameworks_are_ignored(root: Path) -> None:
    with pytest.raises(SpecError) as e:
        resolve({"entry": "x.py"}, root, allowed_frameworks=["dash", "nope"], check_files=False)
    assert e.value.message == "The spec needs 'framework'; one of: dash."


def test_check_files_false_does_not_look_at_files(root: Path) -> None:
    spec = resolve({"entry": "not/here/app.py", "framework": "dash"}, root, check_files=False)
    assert spec.framework.name == "dash"
    assert spec.entry == "app.py"
    assert spec.cwd == str(root.resolve() / "not" / "here")


def test_root_is_resolved(root: Path, tmp_path: Path) -> None:
    link = tmp_path / "link-to-root"
    link.symlink_to(root, target_is_directory=True)
    spec = resolve({"entry": "sales/app.py"}, link)
    assert spec.cwd == str(root.resolve() / "sales")


@pytest.mark.parametrize("entry", ["sales/app.py", "report.ipynb", "clock", "alias.py"])
def test_cwd_is_inside_root(root: Path, entry: str) -> None:
    spec = resolve({"entry": entry}, root)
    cwd = Path(spec.cwd)
    assert cwd == root.resolve() or root.resolve() in cwd.parents
    assert spec.entry and "/" not in spec.entry


@pytest.mark.parametrize("check_files", [True, False])
@pytest.mark.parametrize("entry", [".", "./", " . "])
def test_entry_dot_does_not_escape_root(root: Path, entry: str, check_files: bool) -> None:
    """The dashboards folder itself is no entry (its parent would be the app's cwd)."""
    with pytest.raises(
        SpecError, match="'entry' must name a file or folder inside the dashboards folder"
    ):
        resolve({"entry": entry, "framework": "bokeh"}, root, check_files=check_files)


# -- bad specs ----------------------------------------------------------------

BAD_SPECS = [
    # (id, options, resolve_spec kwargs, message fragment)
    ("not a dict", ["sales/app.py"], {}, "must be a JSON object"),
    ("string spec", "sales/app.py", {}, "must be a JSON object"),
    ("none spec", None, {}, "must be a JSON object"),
    (
        "unknown key",
        {"entry": "sales/app.py", "port": 80},
        {},
        "Unknown spec field(s) ['port']; allowed: ['args', 'command'",
    ),
    ("missing entry", {"framework": "dash"}, {}, "The spec needs 'entry'"),
    ("empty entry", {"entry": "  "}, {}, "The spec needs 'entry'"),
    ("entry not a string", {"entry": ["app.py"]}, {}, "The spec needs 'entry'"),
    ("absolute path", {"entry": "/etc/passwd"}, {}, "not absolute"),
    ("absolute inside root", {"entry": "/sales/app.py"}, {}, "not absolute"),
    ("dotdot", {"entry": "../secret.py"}, {}, "'..' is not allowed"),
    ("dotdot inside", {"entry": "sales/../../secret.py"}, {}, "'..' is not allowed"),
    (
        "dotdot no files",
        {"entry": "../secret.py", "framework": "dash"},
        {"check_files": False},
        "'..' is not allowed",
    ),
    ("dash segment", {"entry": "-rf.py"}, {}, "segment '-rf.py' is not allowed"),
    ("dash option", {"entry": "--help"}, {}, "not starting with '-' or '.'"),
    ("dot segment", {"entry": ".hidden/app.py"}, {}, "segment '.hidden' is not allowed"),
    ("dotfile", {"entry": "sales/.env"}, {}, "segment '.env' is not allowed"),
    ("odd chars", {"entry": "sales/app;rm.py"}, {}, "segment 'app;rm.py' is not allowed"),
    ("long segment", {"entry": "a" * 129 + ".py"}, {}, "is not allowed"),
    ("NUL", {"entry": "sales/app.py\x00.txt"}, {}, "characters that are not allowed"),
    ("backslash", {"entry": "sales\\app.py"}, {}, "characters that are not allowed"),
    (
        "missing file",
        {"entry": "sales/nope.py"},
        {},
        "The entry file 'sales/nope.py' does not exist",
    ),
    ("symlink outside", {"entry": "escape.py"}, {}, "'escape.py' points outside"),
    ("symlinked dir outside", {"entry": "escdir/app.py"}, {}, "'escdir/app.py' points outside"),
    ("dangling symlink outside", {"entry": "dangling.py"}, {}, "points outside"),
    (
        "unknown framework",
        {"entry": "sales/app.py", "framework": "flask"},
        {},
        "Unknown framework 'flask'; allowed: voila, dash",
    ),
    (
        "framework not a string",
        {"entry": "sales/app.py", "framework": ["dash"]},
        {},
        "Unknown framework ['dash']",
    ),
    (
        "framework not allowed",
        {"entry": "sales/app.py", "framework": "dash"},
        {"allowed_frameworks": ["voila", "bokeh"]},
        "The 'dash' framework is not enabled on this hub; allowed: voila, bokeh.",
    ),
    ("undetectable", {"entry": "plain.py"}, {}, "Cannot tell which framework serves 'plain.py'"),
    ("folder without main", {"entry": "nomain"}, {}, "not a directory app"),
    (
        "notebook shared",
        {"entry": "report.ipynb", "framework": "notebook"},
        {},
        "allowed only in mode(s): per-viewer",
    ),
    (
        "notebook explicit shared",
        {"entry": "report.ipynb", "framework": "notebook", "mode": "shared"},
        {},
        "runs viewer code",
    ),
    (
        "bad mode",
        {"entry": "sales/app.py", "mode": "public"},
        {},
        "Unknown mode 'public'; allowed: shared, per-viewer.",
    ),
    ("mode not a string", {"entry": "sales/app.py", "mode": 1}, {}, "Unknown mode 1"),
    (
        "args not a list",
        {"entry": "live/app.py", "args": "--x 1"},
        {},
        "'args' must be a list of strings.",
    ),
    (
        "args not strings",
        {"entry": "live/app.py", "args": ["--n", 5]},
        {},
        "'args' must be a list of strings.",
    ),
    (
        "too many args",
        {"entry": "live/app.py", "args": ["x"] * (MAX_ARGS + 1)},
        {},
        f"'args' has {MAX_ARGS + 1} items; at most {MAX_ARGS}",
    ),
    ("arg too long", {"entry": "live/app.py", "args": ["x" * 1001]}, {}, "under 1000"),
    ("arg with NUL", {"entry": "live/app.py", "args": ["a\x00b"]}, {}, "no NUL"),
    (
        "args for voila",
        {"entry": "report.ipynb", "args": ["--x"]},
        {},
        "The Voilà framework takes no 'args'.",
    ),
    (
        "args for dash",
        {"entry": "sales/app.py", "args": ["--x"]},
        {},
        "The Dash framework takes no 'args'.",
    ),
    (
        "command for dash",
        {"entry": "sales/app.py", "command": ["python", "--port={port}"]},
        {},
        "'command' is only for the 'custom' framework.",
    ),
    (
        "command for detected",
        {"entry": "report.ipynb", "command": ["x", "{port}"]},
        {},
        "only for the 'custom' framework",
    ),
    (
        "custom without command",
        {"entry": "tools/serve.py", "framework": "custom"},
        {},
        "The 'custom' framework needs 'command' in the spec.",
    ),
    (
        "custom command string",
        {"entry": "tools/serve.py", "framework": "custom", "command": "python serve.py {port}"},
        {},
        "'command' must be a list of strings.",
    ),
    (
        "custom command empty",
        {"entry": "tools/serve.py", "framework": "custom", "command": []},
        {},
        "non-empty strings",
    ),
    (
        "custom command non-str",
        {"entry": "tools/serve.py", "framework": "custom", "command": ["python", 1]},
        {},
        "non-empty strings",
    ),
    (
        "custom without port",
        {"entry": "tools/serve.py", "framework": "custom", "command": ["python", "serve.py"]},
        {},
        "must contain {port}",
    ),
    (
        "title too long",
        {"entry": "sales/app.py", "title": "T" * 201},
        {},
        "'title' must be a string of at most 200 characters.",
    ),
    (
        "title not a string",
        {"entry": "sales/app.py", "title": ["T"]},
        {},
        "'title' must be a string",
    ),
    (
        "no framework without files",
        {"entry": "sales/app.py"},
        {"check_files": False},
        "The spec needs 'framework'; one of: voila, dash",
    ),
    pytest.param(
        "newline in segment",
        {"entry": "sales\n/app.py", "framework": "dash"},
        {"check_files": False},
        "is not allowed",
        id="newline in segment",
    ),
]


@pytest.mark.parametrize(
    ("case", "options", "kwargs", "fragment"),
    [pytest.param(*row, id=row[0]) if type(row) is tuple else row for row in BAD_SPECS],
)
def test_bad_specs(
    root: Path, tmp_path: Path, case: str, options: Any, kwargs: dict, fragment: str
) -> None:
    with pytest.raises(SpecError) as e:
        resolve(options, root, **kwargs)
    error = e.value
    assert fragment in error.message, (case, error.message)
    assert error.status_code == 400
    # No server path leaks: neither the root nor anything above it appears.
    for text in (error.message, str(error)):
        assert str(root) not in text
        assert str(root.resolve()) not in text
        assert str(tmp_path) not in text
        assert "/srv/" not in text


def test_error_messages_do_not_name_symlink_targets(root: Path) -> None:
    with pytest.raises(SpecError) as e:
        resolve({"entry": "escape.py"}, root)
    assert "secret" not in e.value.message
    assert "elsewhere" not in e.value.message
