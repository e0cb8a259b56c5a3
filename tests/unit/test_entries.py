"""The publish form's list of entry files: what a framework would serve, and nothing else."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS
from hub_viz.service.entries import MAX_ENTRIES, list_entries

pytestmark = pytest.mark.unit

ALL = list(BUILTIN_FRAMEWORKS)
NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def write(root: Path, path: str, text: str) -> None:
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)


def test_lists_what_each_framework_serves_and_skips_the_rest(tmp_path: Path) -> None:
    write(tmp_path, "dash/app.py", "import dash\napp = dash.Dash()\n")
    write(tmp_path, "report.ipynb", NOTEBOOK)
    write(tmp_path, "bokeh_app/main.py", "from bokeh.plotting import curdoc\n")
    write(tmp_path, "st/app.py", "import streamlit as st\n")
    write(tmp_path, "helpers.py", "import os\n")  # no framework imports it
    write(tmp_path, ".hidden/app.py", "import dash\n")
    write(tmp_path, "node_modules/x/app.py", "import dash\n")
    write(tmp_path, "proj/.ipynb_checkpoints/report-checkpoint.ipynb", NOTEBOOK)
    write(tmp_path, "broken.py", "import (\n")  # a syntax error is not an entry
    write(tmp_path, "a/b/c/d/e/deep.py", "import dash\n")  # deeper than MAX_DEPTH
    entries = list_entries(tmp_path, BUILTIN_FRAMEWORKS, ALL)
    assert entries == [
        {"path": "bokeh_app", "framework": "bokeh"},
        {"path": "bokeh_app/main.py", "framework": "bokeh"},
        {"path": "dash/app.py", "framework": "dash"},
        {"path": "report.ipynb", "framework": "voila"},
        {"path": "st/app.py", "framework": "streamlit"},
    ]
    # frameworks the operator does not allow are not offered
    assert [e["path"] for e in list_entries(tmp_path, BUILTIN_FRAMEWORKS, ["dash"])] == [
        "dash/app.py"
    ]


def test_never_leaves_the_callers_folder(tmp_path: Path) -> None:
    mine, other = tmp_path / "alice", tmp_path / "bob"
    write(other, "secret/app.py", "import dash\n")
    write(mine, "ok.py", "import dash\n")
    os.symlink(other / "secret", mine / "linked")
    os.symlink(other / "secret" / "app.py", mine / "linked_app.py")
    assert list_entries(mine, BUILTIN_FRAMEWORKS, ALL) == [{"path": "ok.py", "framework": "dash"}]
    assert list_entries(tmp_path / "nobody", BUILTIN_FRAMEWORKS, ALL) == []


def test_stops_at_the_bound(tmp_path: Path) -> None:
    for i in range(MAX_ENTRIES + 20):
        write(tmp_path, f"apps/app{i:03}.py", "import dash\n")
    assert len(list_entries(tmp_path, BUILTIN_FRAMEWORKS, ALL)) == MAX_ENTRIES
