"""Voilà run by hub_viz's runner takes its scheme and address from the forwarding headers
the launcher sets, so a notebook's ``VOILA_REQUEST_URL`` is the viewer's public URL."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

pytest.importorskip("voila")

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS
from hub_viz.frameworks import build_command

from ..conftest import free_port, wait_until

pytestmark = pytest.mark.unit

PREFIX = "/user/alice/nb/"
NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": "c1",
            "metadata": {},
            "outputs": [],
            "source": ["import os\n", "print('URL=' + os.environ['VOILA_REQUEST_URL'] + '=')"],
        }
    ],
    "metadata": {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture(scope="module")
def voila(tmp_path_factory) -> Iterator[str]:
    folder: Path = tmp_path_factory.mktemp("voila")
    (folder / "url.ipynb").write_text(json.dumps(NOTEBOOK))
    port = free_port()
    command = build_command(
        BUILTIN_FRAMEWORKS["voila"], entry="url.ipynb", port=port, prefix=PREFIX
    )
    assert command.argv[1:3] == ["-m", "hub_viz.runners.voila"]
    log = open(folder / "voila.log", "wb")
    proc = subprocess.Popen(
        command.argv,
        cwd=folder,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **command.env},
    )
    base = f"http://127.0.0.1:{port}{PREFIX}"

    def ready() -> bool:
        try:
            return requests.get(base + command.ready_path, timeout=5).status_code < 500
        except requests.ConnectionError:
            return False

    try:
        wait_until(ready, timeout=120, what="Voilà to answer")
        yield base + command.page_path
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def request_url(page: str) -> str:
    start = page.index("URL=") + 4
    return page[start : page.index("=", start + 8)]


def test_voila_sees_the_public_scheme_and_host_the_launcher_forwards(voila: str) -> None:
    public = {"Host": "hub.example.org", "X-Forwarded-Proto": "https"}
    r = requests.get(voila + "?region=north", headers=public, timeout=120)
    assert r.status_code == 200, r.text[:300]
    assert request_url(r.text).startswith(f"https://hub.example.org{PREFIX}"), r.text[-2000:]
    # without the launcher's header: the connection's own scheme
    r = requests.get(voila, headers={"Host": "hub.example.org"}, timeout=120)
    assert request_url(r.text).startswith(f"http://hub.example.org{PREFIX}")
