"""Frameworks as data: detection, command building, placeholders, merging."""

from __future__ import annotations

import dataclasses
import os
import re
import warnings
from pathlib import Path

import pytest

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS
from hub_viz.errors import FrameworkError
from hub_viz.frameworks import (
    JUPYTER_DIR,
    PER_VIEWER,
    Framework,
    build_command,
    detect,
    imported_modules,
    merge_frameworks,
    with_command,
)

pytestmark = pytest.mark.unit

PORT = 48123
PREFIX = "/user/alice/sales/"
PYTHON = "/opt/py/bin/python3"


def write(path: Path, text: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- detect -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "source", "expected"),
    [
        ("report.ipynb", '{"cells": []}', "voila"),
        ("REPORT.IPYNB", '{"cells": []}', "voila"),
        # An .ipynb is Voilà even when it imports panel (voila has the lower priority).
        ("panel_nb.ipynb", '{"cells": [{"source": "import panel"}]}', "voila"),
        ("app.py", "import dash\napp = dash.Dash(__name__)\n", "dash"),
        ("app.py", "from dash import Dash, html\n", "dash"),
        ("app.py", "from dash.dependencies import Input\n", "dash"),
        ("app.py", "import streamlit as st\nst.write('hi')\n", "streamlit"),
        ("app.py", "import pandas as pd\nimport streamlit as st\n", "streamlit"),
        ("app.py", "import panel as pn\npn.panel('x').servable()\n", "panel"),
        ("app.py", "from bokeh.plotting import figure, curdoc\n", "bokeh"),
        # Panel imports bokeh itself; a file importing both is a Panel app.
        ("app.py", "import bokeh\nimport panel as pn\n", "panel"),
        ("app.py", "from bokeh.models import Div\nfrom panel import Row\n", "panel"),
        ("app.py", "    import dash  # indented, e.g. inside a function\n", "dash"),
        ("app.py", "import gradio as gr\ndemo = gr.Interface(str, 'text', 'text')\n", "gradio"),
        ("app.py", "from gradio import Blocks\n", "gradio"),
        ("app.py", "from shiny import App, ui\n", "shiny"),
        ("nb.py", "import marimo\napp = marimo.App()\n", "marimo"),
        ("app.py", "from nicegui import ui\nui.label('hi')\nui.run()\n", "nicegui"),
        ("app.py", "import nicegui\nimport plotly\n", "nicegui"),
        ("app.py", "import solara\n@solara.component\ndef Page():\n    pass\n", "solara"),
        (
            "app.py",
            "import ipywidgets\nimport solara\nfrom bokeh.plotting import figure\n",
            "solara",
        ),
        # A marimo notebook that plots with bokeh or imports dash is still a marimo app.
        (
            "nb.py",
            "import marimo\n@app.cell\ndef _():\n    import dash\n    import bokeh\n",
            "marimo",
        ),
        ("app.py", "from shiny.express import input, render, ui\n", "shiny"),
        (
            "app.py",
            "import shiny\nimport plotly.express as px\nfrom bokeh import models\n",
            "shiny",
        ),
        # Gradio apps often plot with bokeh or pull in pandas; gradio serves them.
        ("app.py", "import gradio as gr\nfrom bokeh.plotting import figure\n", "gradio"),
    ],
)
def test_detect_file(tmp_path: Path, filename: str, source: str, expected: str) -> None:
    assert detect(write(tmp_path / filename, source), BUILTIN_FRAMEWORKS) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from bokeh.io import curdoc\n", "bokeh"),
        ("import panel as pn\n", "panel"),
        ("import bokeh\nimport panel\n", "panel"),
    ],
)
def test_detect_directory_app(tmp_path: Path, source: str, expected: str) -> None:
    write(tmp_path / "myapp" / "main.py", source)
    assert detect(tmp_path / "myapp", BUILTIN_FRAMEWORKS) == expected


@pytest.mark.parametrize(
    ("layout", "entry", "fragment"),
    [
        ({"data.csv": "a,b\n"}, "data.csv", "Cannot tell which framework serves 'data.csv'"),
        ({"plain.py": "import os\nprint(1)\n"}, "plain.py", "Cannot tell which framework"),
        ({"empty.py": ""}, "empty.py", "Name one of:"),
        # 'import dashboard' is not 'import dash'.
        ({"x.py": "import dashboard\n"}, "x.py", "Cannot tell which framework"),
        ({"folder/readme.txt": "hi"}, "folder", "has no main.py"),
        ({"folder/main.py": "import dash\n"}, "folder", "imports neither bokeh nor panel"),
    ],
)
def test_detect_errors(tmp_path: Path, layout: dict, entry: str, fragment: str) -> None:
    for name, text in layout.items():
        write(tmp_path / name, text)
    with pytest.raises(FrameworkError) as e:
        detect(tmp_path / entry, BUILTIN_FRAMEWORKS)
    assert fragment in e.value.message
    assert str(tmp_path) not in e.value.message


def test_detect_only_considers_given_frameworks(tmp_path: Path) -> None:
    entry = write(tmp_path / "app.py", "import bokeh\nimport panel\n")
    only_bokeh = {"bokeh": BUILTIN_FRAMEWORKS["bokeh"]}
    assert detect(entry, only_bokeh) == "bokeh"
    with pytest.raises(FrameworkError, match="Name one of: voila"):
        detect(entry, {"voila": BUILTIN_FRAMEWORKS["voila"]})


def test_detect_error_lists_detectable_frameworks_by_priority(tmp_path: Path) -> None:
    with pytest.raises(FrameworkError) as e:
        detect(write(tmp_path / "x.txt", ""), BUILTIN_FRAMEWORKS)
    assert e.value.message.endswith(
        "Name one of: voila, marimo, dash, streamlit, gradio, shiny, solara, nicegui, panel, bokeh."
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import dash\n", {"dash"}),
        ("from dash import html\nimport numpy as np\n", {"dash", "numpy"}),
        ("import dash.html\n", {"dash"}),
        ("x = 1\n", set()),
        ("from . import sibling\n", set()),
        ("import os, dash\n", {"os", "dash"}),
        ("def broken(:\nimport streamlit\n", {"streamlit"}),
    ],
)
def test_imported_modules(source: str, expected: set[str]) -> None:
    assert imported_modules(source) == expected


# -- build_command ------------------------------------------------------------

# framework -> (entry, argv items that must appear, env that must be set)
EXPECTED_COMMANDS = {
    "voila": (
        "report.ipynb",
        [
            "-m",
            "hub_viz.runners.voila",
            "report.ipynb",
            f"--port={PORT}",
            "--Voila.ip=127.0.0.1",
            f"--Voila.base_url={PREFIX}",
            "--no-browser",
            "--Voila.port_retries=0",
            "--VoilaConfiguration.template=hub-viz",
        ],
        {"JUPYTER_PATH": str(JUPYTER_DIR)},
    ),
    "dash": (
        "app.py",
        [
            "-m",
            "waitress",
            f"--listen=127.0.0.1:{PORT}",
            "--trusted-proxy=127.0.0.1",
            "--call",
            "hub_viz.runners.dash:create_app",
        ],
        {"DASH_URL_BASE_PATHNAME": PREFIX, "HUB_VIZ_DASH_ENTRY": "app.py"},
    ),
    "streamlit": (
        "app.py",
        [
            "-m",
            "streamlit",
            "run",
            "app.py",
            f"--server.port={PORT}",
            "--server.address=127.0.0.1",
            f"--server.baseUrlPath={PREFIX}",
            "--server.headless=true",
        ],
        {"FORWARDED_ALLOW_IPS": "127.0.0.1"},
    ),
    "panel": (
        "app.py",
        [
            "-m",
            "panel",
            "serve",
            "app.py",
            f"--port={PORT}",
            "--address=127.0.0.1",
            f"--prefix={PREFIX}",
            "--use-xheaders",
            "--allow-websocket-origin=*",
        ],
        {},
    ),
    "bokeh": (
        "app.py",
        [
            "-m",
            "bokeh",
            "serve",
            "app.py",
            f"--port={PORT}",
            "--address=127.0.0.1",
            f"--prefix={PREFIX}",
            "--use-xheaders",
            "--allow-websocket-origin=*",
        ],
        {},
    ),
    "gradio": (
        "app.py",
        ["-m", "hub_viz.runners.gradio", "app.py", f"--port={PORT}", f"--prefix={PREFIX}"],
        {"GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_FLAGGING_MODE": "never"},
    ),
    "shiny": (
        "app.py",
        ["-m", "hub_viz.runners.shiny", "app.py", f"--port={PORT}", f"--prefix={PREFIX}"],
        {},
    ),
    "marimo": (
        "nb.py",
        ["-m", "hub_viz.runners.marimo", "nb.py", f"--port={PORT}", f"--prefix={PREFIX}"],
        {},
    ),
    "solara": (
        "app.py",
        ["-m", "hub_viz.runners.solara", "app.py", f"--port={PORT}", f"--prefix={PREFIX}"],
        {"SOLARA_MODE": "production", "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False"},
    ),
    "nicegui": (
        "app.py",
        ["-m", "hub_viz.runners.nicegui", "app.py", f"--port={PORT}", f"--prefix={PREFIX}"],
        {},
    ),
    "notebook": (
        "work.ipynb",
        [
            "-m",
            "jupyterlab",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={PORT}",
            f"--ServerApp.base_url={PREFIX}",
            "--ServerApp.port_retries=0",
            "--LabApp.default_url=/lab/tree/work.ipynb",
            "--ServerApp.terminals_enabled=False",
            "--LabApp.news_url=None",
            "--LabApp.extension_manager=readonly",
        ],
        {"JUPYTER_TOKEN": "app-secret", "JUPYTER_CONFIG_PATH": str(JUPYTER_DIR)},
    ),
}


def test_every_runnable_builtin_has_an_expectation() -> None:
    runnable = {name for name, fw in BUILTIN_FRAMEWORKS.items() if fw.command}
    assert runnable == set(EXPECTED_COMMANDS)


@pytest.mark.parametrize("name", sorted(EXPECTED_COMMANDS))
def test_build_command_builtin(name: str) -> None:
    entry, must_have, env = EXPECTED_COMMANDS[name]
    cmd = build_command(
        BUILTIN_FRAMEWORKS[name],
        entry=entry,
        port=PORT,
        prefix=PREFIX,
        app_token="app-secret",
        python=PYTHON,
    )
    assert cmd.argv[0] == PYTHON
    for item in must_have:
        assert item in cmd.argv, item
    assert cmd.env == env
    # The port and the prefix reach the app, through argv or env.
    everything = " ".join(cmd.argv + list(cmd.env.values()))
    assert str(PORT) in everything
    assert PREFIX in everything
    # No placeholder is left unfilled.
    assert not re.search(r"{\w+}", everything)
    assert cmd.websockets == BUILTIN_FRAMEWORKS[name].websockets
    assert not cmd.ready_path.startswith("/")
    assert not cmd.page_path.startswith("/")


@pytest.mark.parametrize(
    ("name", "entry", "ready_path", "page_path", "websockets"),
    [
        ("voila", "report.ipynb", "voila/static/voila.js", "", True),
        ("dash", "app.py", "_dash-layout", "", False),
        ("streamlit", "app.py", "_stcore/health", "", True),
        ("panel", "sales.py", "", "sales", True),
        ("bokeh", "clock.py", "", "clock", True),
        ("bokeh", "clockapp/", "", "clockapp", True),
        ("panel", "panelapp", "", "panelapp", True),
        ("notebook", "work.ipynb", "api/status", "lab/tree/work.ipynb", True),
        ("gradio", "app.py", "config", "", True),
        ("shiny", "app.py", "", "", True),
        ("marimo", "nb.py", "health", "", True),
        ("solara", "app.py", "readyz", "", True),
        ("nicegui", "app.py", "", "", True),
    ],
)
def test_build_command_paths(
    name: str, entry: str, ready_path: str, page_path: str, websockets: bool
) -> None:
    cmd = build_command(BUILTIN_FRAMEWORKS[name], entry=entry, port=PORT, prefix=PREFIX)
    assert (cmd.ready_path, cmd.page_path, cmd.websockets) == (ready_path, page_path, websockets)


def test_voila_is_locked_down() -> None:
    argv = build_command(
        BUILTIN_FRAMEWORKS["voila"], entry="r.ipynb", port=PORT, prefix=PREFIX
    ).argv
    assert "--VoilaConfiguration.strip_sources=True" in argv
    assert "--VoilaConfiguration.show_tracebacks=False" in argv
    assert "--VoilaConfiguration.allow_template_override=NO" in argv
    assert "--VoilaConfiguration.allow_theme_override=NO" in argv
    assert sum(a.startswith("--VoilaConfiguration.file_allowlist=") for a in argv) == 1


def test_voila_file_allowlist_allows_images_only() -> None:
    """Parse the flags the way Voilà does and apply its matching rule."""
    configuration = pytest.importorskip("voila.configuration")
    from traitlets.config import Application

    argv = build_command(
        BUILTIN_FRAMEWORKS["voila"], entry="r.ipynb", port=PORT, prefix=PREFIX
    ).argv
    flags = [a for a in argv if a.startswith("--VoilaConfiguration.")]

    class Probe(Application):
        classes = [configuration.VoilaConfiguration]

    app = Probe()
    with warnings.catch_warnings():
        # traitlets deprecates the "['...']" list syntax; Python warns on its '\.' escape.
        warnings.simplefilter("ignore")
        app.parse_command_line(flags)
    voila_config = configuration.VoilaConfiguration(parent=app)
    assert voila_config.strip_sources is True
    allowlist = voila_config.file_allowlist
    assert len(allowlist) == 1

    def served(path: str) -> bool:  # voila.static_file_handler.AllowListFileHandler
        return any(re.fullmatch(p, path, re.IGNORECASE) for p in allowlist)

    for ok in ("plot.png", "img/photo.JPG", "a.jpeg", "logo.svg", "anim.gif", "x.webp"):
        assert served(ok), ok
    for bad in (
        "report.ipynb",
        "app.py",
        "data.csv",
        ".env",
        "secrets.json",
        "png",
        "x.png.py",
        "notes.txt",
        "x.pngx",
    ):
        assert not served(bad), bad


def test_notebook_token_comes_from_app_token() -> None:
    fw = BUILTIN_FRAMEWORKS["notebook"]
    assert fw.needs_app_token
    assert fw.modes == (PER_VIEWER,)
    one = build_command(fw, entry="n.ipynb", port=PORT, prefix=PREFIX, app_token="tok-1")
    two = build_command(fw, entry="n.ipynb", port=PORT, prefix=PREFIX, app_token="tok-2")
    assert one.env["JUPYTER_TOKEN"] == "tok-1"
    assert two.env["JUPYTER_TOKEN"] == "tok-2"
    assert "tok-1" not in " ".join(one.argv)


def test_only_notebook_needs_an_app_token() -> None:
    assert {n for n, f in BUILTIN_FRAMEWORKS.items() if f.needs_app_token} == {"notebook"}


def test_custom_without_command_raises() -> None:
    with pytest.raises(FrameworkError, match="has no command"):
        build_command(BUILTIN_FRAMEWORKS["custom"], entry="app.py", port=PORT, prefix=PREFIX)


def test_custom_with_command_is_filled() -> None:
    fw = with_command(
        BUILTIN_FRAMEWORKS["custom"],
        ["{python}", "{entry}", "--port={port}", "--root={prefix}", "--name={app_name}"],
    )
    cmd = build_command(fw, entry="serve.py", port=PORT, prefix=PREFIX, python=PYTHON)
    assert cmd.argv == [PYTHON, "serve.py", f"--port={PORT}", f"--root={PREFIX}", "--name=serve"]
    assert cmd.env == {}


# -- placeholders -------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"command": ("python", "--port={port}", "{unknown}")},
        {"command": ("python", "--port={port}"), "env": {"X": "{unknown}"}},
        {"command": ("python", "--port={port}"), "ready_path": "{unknown}/health"},
        {"command": ("python", "--port={port}"), "page_path": "{unknown}"},
    ],
)
def test_unknown_placeholder_names_allowed_ones(fields: dict) -> None:
    fw = Framework(name="mine", display_name="Mine", **fields)
    with pytest.raises(FrameworkError) as e:
        build_command(fw, entry="a.py", port=PORT, prefix=PREFIX)
    message = e.value.message
    assert "'mine'" in message
    assert "{unknown}" in message
    for allowed in ("{entry}", "{port}", "{prefix}", "{app_name}", "{python}", "{app_token}"):
        assert allowed in message


def test_literal_text_without_placeholder_is_kept() -> None:
    fw = Framework(name="m", display_name="M", command=("echo", "{port}", "a-b", "{ }", "{}"))
    assert build_command(fw, entry="a", port=1, prefix="/").argv == [
        "echo",
        "1",
        "a-b",
        "{ }",
        "{}",
    ]


# -- args ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "separator"),
    [("streamlit", ["--"]), ("panel", ["--args"]), ("bokeh", ["--args"])],
)
def test_args_go_after_separator(name: str, separator: list[str]) -> None:
    fw = BUILTIN_FRAMEWORKS[name]
    base = build_command(fw, entry="app.py", port=PORT, prefix=PREFIX).argv
    cmd = build_command(fw, entry="app.py", port=PORT, prefix=PREFIX, args=["--n", "5"])
    assert cmd.argv == base + separator + ["--n", "5"]


@pytest.mark.parametrize("name", ["streamlit", "bokeh"])
def test_args_are_not_templates(name: str) -> None:
    cmd = build_command(
        BUILTIN_FRAMEWORKS[name],
        entry="app.py",
        port=PORT,
        prefix=PREFIX,
        args=["{port}", "{unknown}"],
    )
    assert cmd.argv[-2:] == ["{port}", "{unknown}"]


@pytest.mark.parametrize(
    "name", ["voila", "dash", "notebook", "gradio", "shiny", "marimo", "solara", "nicegui"]
)
def test_frameworks_without_separator_refuse_args(name: str) -> None:
    fw = BUILTIN_FRAMEWORKS[name]
    assert fw.args_separator is None
    with pytest.raises(
        FrameworkError, match=f"The {re.escape(fw.display_name)} framework takes no"
    ):
        build_command(fw, entry="a", port=PORT, prefix=PREFIX, args=["x"])
    # Empty args are fine.
    assert build_command(fw, entry="a", port=PORT, prefix=PREFIX, args=[]).argv


# -- with_command -------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "fragment"),
    [
        ([], "needs 'command'"),
        ([""], "non-empty strings"),
        (["python", ""], "non-empty strings"),
        (["python", 8000], "non-empty strings"),
        ([None], "non-empty strings"),
        (["python", "app.py"], "must contain {port}"),
        (["python", "app.py", "--prefix={prefix}"], "must contain {port}"),
    ],
)
def test_with_command_rejects(command: list, fragment: str) -> None:
    with pytest.raises(FrameworkError, match=re.escape(fragment)):
        with_command(BUILTIN_FRAMEWORKS["custom"], command)


def test_with_command_replaces_only_the_command() -> None:
    custom = BUILTIN_FRAMEWORKS["custom"]
    fw = with_command(custom, ["python", "app.py", "--port={port}"])
    assert fw.command == ("python", "app.py", "--port={port}")
    assert dataclasses.replace(fw, command=()) == custom
    assert custom.command == ()  # the builtin is untouched


# -- merge_frameworks ---------------------------------------------------------


def test_merge_overrides_one_field_of_a_builtin() -> None:
    before = BUILTIN_FRAMEWORKS["voila"]
    merged = merge_frameworks(BUILTIN_FRAMEWORKS, {"voila": {"ready_path": "voila/api/x"}})
    assert merged["voila"].ready_path == "voila/api/x"
    assert dataclasses.replace(merged["voila"], ready_path=before.ready_path) == before
    assert BUILTIN_FRAMEWORKS["voila"] is before
    assert BUILTIN_FRAMEWORKS["voila"].ready_path == "voila/static/voila.js"
    assert set(merged) == set(BUILTIN_FRAMEWORKS)
    for name in BUILTIN_FRAMEWORKS:
        if name != "voila":
            assert merged[name] is BUILTIN_FRAMEWORKS[name]


def test_merge_converts_lists_to_tuples() -> None:
    merged = merge_frameworks(
        BUILTIN_FRAMEWORKS,
        {
            "streamlit": {
                "command": ["{python}", "-m", "streamlit", "run", "{entry}", "--p={port}"],
                "modes": ["per-viewer"],
            }
        },
    )
    fw = merged["streamlit"]
    assert fw.command == ("{python}", "-m", "streamlit", "run", "{entry}", "--p={port}")
    assert fw.modes == ("per-viewer",)
    assert fw.args_separator == ("--",)  # untouched field


def test_merge_adds_a_new_framework() -> None:
    merged = merge_frameworks(
        BUILTIN_FRAMEWORKS,
        {
            "vizro": {
                "command": ["{python}", "-m", "vizro", "run", "--port={port}", "{entry}"],
                "suffixes": [".py"],
                "imports": ["vizro"],
            }
        },
    )
    fw = merged["vizro"]
    assert fw.name == "vizro"
    assert fw.display_name == "vizro"
    assert fw.suffixes == (".py",)
    assert fw.imports == ("vizro",)
    assert fw.detect_priority == 50
    assert "vizro" not in BUILTIN_FRAMEWORKS
    argv = build_command(fw, entry="a.py", port=PORT, prefix=PREFIX, python="py").argv
    assert argv == ["py", "-m", "vizro", "run", f"--port={PORT}", "a.py"]


def test_new_framework_is_detected(tmp_path: Path) -> None:
    merged = merge_frameworks(
        BUILTIN_FRAMEWORKS,
        {"shiny": {"command": ["x", "{port}"], "suffixes": [".py"], "imports": ["shiny"]}},
    )
    assert detect(write(tmp_path / "app.py", "from shiny import App\n"), merged) == "shiny"


def test_merge_accepts_a_framework_record() -> None:
    record = Framework(name="mine", display_name="Mine", command=("run", "{port}"))
    merged = merge_frameworks(BUILTIN_FRAMEWORKS, {"mine": record, "bokeh": record})
    assert merged["mine"] is record
    assert merged["bokeh"] is record


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"voila": {"readypath": "x"}}, "Framework 'voila' has unknown field(s) ['readypath']"),
        ({"new": {"command": ["a", "{port}"], "colour": "red"}}, "unknown field(s) ['colour']"),
        ({"new": {"suffixes": [".R"]}}, "New framework 'new' needs a 'command' template."),
        ({"new": {}}, "New framework 'new' needs a 'command'"),
    ],
)
def test_merge_errors(overrides: dict, fragment: str) -> None:
    with pytest.raises(FrameworkError) as e:
        merge_frameworks(BUILTIN_FRAMEWORKS, overrides)
    assert fragment in e.value.message


def test_unknown_field_error_lists_allowed_fields() -> None:
    with pytest.raises(FrameworkError) as e:
        merge_frameworks(BUILTIN_FRAMEWORKS, {"voila": {"nope": 1}})
    assert "'command'" in e.value.message
    assert "'ready_path'" in e.value.message
    assert "'name'" not in e.value.message.split("allowed:")[1]


@pytest.mark.parametrize(
    "overrides",
    [
        {"new": {"name": "other", "command": ["a", "{port}"]}},
        {"voila": {"name": "other"}},
    ],
)
def test_merge_refuses_name_field(overrides: dict) -> None:
    with pytest.raises(FrameworkError, match="unknown field"):
        merge_frameworks(BUILTIN_FRAMEWORKS, overrides)


def test_warm_kernels_add_the_frameworks_flags() -> None:
    voila = BUILTIN_FRAMEWORKS["voila"]
    cold = build_command(voila, entry="r.ipynb", port=9000, prefix="/user/a/r/")
    warm = build_command(
        voila, entry="r.ipynb", port=9000, prefix="/user/a/r/", warm_kernels=12, max_warm_kernels=20
    )
    assert warm.argv == cold.argv + [
        "--preheat_kernel=True",
        "--pool_size=12",
        "--VoilaConfiguration.multi_kernel_manager_class=hub_viz.runners.voila_pool.PoolKernelManager",
        "--PoolKernelManager.max_kernels=20",  # grown with demand up to the hub's bound
        "--PoolKernelManager.burst=0",  # no class expected (a keep-warm start sets it)
    ]
    # the bound is never below what the dashboard asks for (checked against it at publish)
    small = build_command(
        voila, entry="r.ipynb", port=9000, prefix="/u/", warm_kernels=12, max_warm_kernels=5
    )
    assert "--PoolKernelManager.max_kernels=12" in small.argv
    assert not any("preheat" in item for item in cold.argv)


def test_warm_kernels_need_a_framework_that_has_them() -> None:
    with pytest.raises(FrameworkError, match="has no preheated kernels"):
        build_command(
            BUILTIN_FRAMEWORKS["dash"], entry="app.py", port=9000, prefix="/", warm_kernels=2
        )


def test_search_paths_for_the_app_go_before_the_launchers_own(monkeypatch) -> None:
    """The operator's JUPYTER_PATH (kernels, templates) stays searched after hub_viz's."""
    from hub_viz.launcher.app import app_environment

    monkeypatch.setenv("JUPYTER_PATH", "/opt/kernels")
    monkeypatch.delenv("JUPYTER_CONFIG_PATH", raising=False)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "secret")
    env = app_environment(
        {
            "JUPYTER_PATH": "/hub-viz/jupyter",
            "JUPYTER_CONFIG_PATH": "/hub-viz/jupyter",
            "JUPYTER_TOKEN": "t",
        }
    )
    assert env["JUPYTER_PATH"] == "/hub-viz/jupyter" + os.pathsep + "/opt/kernels"
    assert env["JUPYTER_CONFIG_PATH"] == "/hub-viz/jupyter"
    assert env["JUPYTER_TOKEN"] == "t" and "JUPYTERHUB_API_TOKEN" not in env


def test_records_name_no_launcher_path_so_versions_may_differ() -> None:
    """The hub serialises records for launchers of maybe another hub_viz version: the
    Jupyter folder is added where the launcher runs, never written into a record."""
    from hub_viz.spawner import framework_json

    for name in ("voila", "notebook"):
        assert str(JUPYTER_DIR) not in framework_json(BUILTIN_FRAMEWORKS[name])
        assert "hub-viz" not in framework_json(BUILTIN_FRAMEWORKS[name])
    assert (JUPYTER_DIR / "voila" / "templates" / "hub-viz" / "index.html.j2").is_file()
    assert (JUPYTER_DIR / "labconfig" / "page_config.json").is_file()


def test_an_operators_own_voila_template_is_kept() -> None:
    own = merge_frameworks(
        BUILTIN_FRAMEWORKS,
        {
            "voila": {
                "command": [
                    *BUILTIN_FRAMEWORKS["voila"].command,
                    "--VoilaConfiguration.template=gridstack",
                ]
            }
        },
    )
    argv = build_command(own["voila"], entry="a.ipynb", port=PORT, prefix=PREFIX).argv
    assert [a for a in argv if "template=" in a] == ["--VoilaConfiguration.template=gridstack"]
