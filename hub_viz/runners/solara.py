"""Serve a Solara app under the server's prefix.

``python -m hub_viz.runners.solara --port=N --prefix=/user/a/b/`` serves
Solara's own Starlette app (``solara.server.starlette:app``, what ``solara
run`` serves) for the app named in ``SOLARA_APP`` under the prefix
(:class:`hub_viz.runners.asgi.Prefixed`); Solara takes its root path from
the ASGI scope. The framework record sets production mode and turns
Solara's telemetry off.
"""

from __future__ import annotations

import os
from typing import Any

from . import asgi


def create_app(entry: str, prefix: str) -> Any:
    os.environ["SOLARA_APP"] = entry
    from solara.server.starlette import app

    return asgi.Prefixed(app, asgi.mount_path(prefix))


def main(argv: list[str] | None = None) -> None:
    options = asgi.parse_args(argv, "Serve a Solara app under a URL prefix.")
    asgi.serve(create_app(options.entry, options.prefix), options.port)


if __name__ == "__main__":
    main()
