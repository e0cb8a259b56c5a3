"""Serve a NiceGUI script under the server's prefix.

``python -m hub_viz.runners.nicegui app.py --port=N --prefix=/user/a/b/``
runs the script as ``__main__`` (as ``python app.py`` would: script mode,
``@ui.page`` functions and a root function all work) with ``ui.run`` held
to the launcher's port on 127.0.0.1, without auto-reload, browser tab,
native window, API docs or On Air remote access. NiceGUI expects a proxy
that strips the prefix and names it in ``X-Forwarded-Prefix``; the app it
serves is wrapped in :class:`hub_viz.runners.asgi.StripPrefix`, which does that.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

from . import asgi

# ui.run arguments the launcher decides, whatever the script passes.
FORCED = {
    "host": "127.0.0.1",
    "reload": False,
    "show": False,
    "native": False,
    "on_air": None,
    "fastapi_docs": False,
    "endpoint_documentation": "none",
    "show_welcome_message": False,
    "uvicorn_logging_level": "warning",
}
# ... and ones that would serve it elsewhere or otherwise (dropped).
DROPPED = (
    "ssl_certfile",
    "ssl_keyfile",
    "uds",
    "fd",
    "workers",
    "root_path",
    "fullscreen",
    "frameless",
    "window_size",
)


def held_run(real_run: Any, port: int) -> Any:
    """``ui.run`` with the launcher's settings over the script's."""

    def run(*args: Any, **kwargs: Any) -> Any:
        for name in DROPPED:
            kwargs.pop(name, None)
        kwargs.update(FORCED, port=port)
        return real_run(*args, **kwargs)

    return run


def main(argv: list[str] | None = None) -> None:
    options = asgi.parse_args(argv, "Serve a NiceGUI script under a URL prefix.")
    from nicegui import server, ui, ui_run

    path = asgi.mount_path(options.prefix)

    class PrefixedConfig(server.CustomServerConfig):
        def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(asgi.StripPrefix(app, path), *args, **kwargs)

    # the one place ui.run builds its uvicorn config (patched: NiceGUI has no hook for it)
    ui_run.CustomServerConfig = PrefixedConfig
    ui.run = held_run(ui_run.run, options.port)
    entry = str(Path(options.entry).resolve())
    sys.argv = [entry]  # script mode re-runs sys.argv[0] for each page visit
    sys.path.insert(0, str(Path(entry).parent))
    runpy.run_path(entry, run_name="__main__")


if __name__ == "__main__":
    main()
