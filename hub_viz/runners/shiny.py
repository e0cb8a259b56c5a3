"""Serve a Shiny for Python app file under the server's prefix.

``python -m hub_viz.runners.shiny app.py --port=N --prefix=/user/a/b/``
loads a Shiny Express file as ``shiny run`` does, or imports a Shiny Core
file and takes its ``shiny.App`` (``app`` first), and serves it under the
prefix (:class:`hub_viz.runners.asgi.Prefixed`): Shiny routes from ``/`` and
its pages use relative URLs, so it needs no setting of its own for this.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from . import asgi


def load_app(entry: str) -> Any:
    import shiny
    from shiny.express import is_express_app, wrap_express_app

    path = Path(entry).resolve()
    if is_express_app(str(path), None):
        return wrap_express_app(path)
    namespace = vars(asgi.import_entry(str(path)))
    if isinstance(namespace.get("app"), shiny.App):
        return namespace["app"]
    for value in namespace.values():
        if isinstance(value, shiny.App):
            return value
    raise SystemExit(
        "The Shiny entry file defines no shiny.App: assign it to a module-level name "
        "such as `app = App(app_ui, server)`, or write a Shiny Express app."
    )


def create_app(entry: str, prefix: str) -> Any:
    return asgi.Prefixed(load_app(entry), asgi.mount_path(prefix))


def main(argv: list[str] | None = None) -> None:
    options = asgi.parse_args(argv, "Serve a Shiny app under a URL prefix.")
    asgi.serve(create_app(options.entry, options.prefix), options.port)


if __name__ == "__main__":
    main()
