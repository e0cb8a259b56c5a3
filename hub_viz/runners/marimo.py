"""Run a marimo notebook as an app (``marimo run``) under the server's prefix.

``python -m hub_viz.runners.marimo app.py --port=N --prefix=/user/a/b/``
replaces itself with ``marimo run`` in app mode: viewers get read access
only (marimo refuses its editing, running, file and export routes to them),
the notebook's code is not sent to the page, no token (the launcher
authenticates), no sandbox or package installs, tracebacks hidden. marimo
wants its base URL without the trailing slash and routes it decoded.
"""

from __future__ import annotations

import os
import sys

from . import asgi


def marimo_argv(entry: str, port: int, prefix: str, python: str = sys.executable) -> list[str]:
    argv = [
        python,
        "-m",
        "marimo",
        "run",
        entry,
        "--headless",
        "--host=127.0.0.1",
        f"--port={port}",
        "--no-token",
        "--no-sandbox",
        "--no-show-tracebacks",
    ]
    base_url = asgi.mount_path(prefix)
    if base_url:
        argv.append(f"--base-url={base_url}")
    return argv


def main(argv: list[str] | None = None) -> None:
    options = asgi.parse_args(argv, "Run a marimo notebook as an app under a URL prefix.")
    command = marimo_argv(options.entry, options.port, options.prefix)
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
