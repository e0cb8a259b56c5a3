"""Load a Dash app file for a WSGI server:
``waitress --call hub_viz.runners.dash:create_app``.

The entry file comes from ``HUB_VIZ_DASH_ENTRY`` (relative to the working
directory). Dash reads ``DASH_URL_BASE_PATHNAME`` when the app is built, so the
app serves under the hub's prefix without changes to its code.

Dash is imported first without its notebook integration (:func:`import_dash`).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote


def find_wsgi_app(namespace: dict[str, Any]) -> Any:
    """The WSGI app of a Dash module: ``server``, or ``app.server``, or any Dash's."""
    import dash

    server = namespace.get("server")
    if callable(server):
        return server
    app = namespace.get("app")
    if isinstance(app, dash.Dash):
        return app.server
    for value in namespace.values():
        if isinstance(value, dash.Dash):
            return value.server
    raise RuntimeError(
        "The Dash entry file defines no dash.Dash app: assign it to a module-level name "
        "such as `app = dash.Dash(__name__)`."
    )


def import_dash() -> None:
    """``import dash`` without what it loads for notebooks only.

    Where IPython is installed, Dash imports it (with comm, nest_asyncio and what
    IPython loads: about 200 modules) for ``jupyter_mode``, which an app under a WSGI
    server never uses: 9 MiB and about 0.08 CPU-s of every instance's start in the
    hub's environment. IPython is hidden while Dash is imported, so that Dash takes
    the stand-ins it has for a machine without IPython, and importable again at once,
    for the app's own code.
    """
    if "dash" in sys.modules:
        return
    hidden = "IPython" not in sys.modules
    if hidden:
        sys.modules["IPython"] = None  # type: ignore[assignment]  # import raises ImportError
    try:
        import dash  # noqa: F401
    finally:
        if hidden and sys.modules.get("IPython", False) is None:
            del sys.modules["IPython"]


def create_app() -> Any:
    """WSGI app factory: import the entry file and return its Flask server."""
    entry = Path(os.environ["HUB_VIZ_DASH_ENTRY"]).resolve()
    prefix = os.environ.get("DASH_URL_BASE_PATHNAME", "")
    if "%" in prefix:  # the hub escapes names ('+' is %2B); Flask routes the decoded path
        os.environ["DASH_ROUTES_PATHNAME_PREFIX"] = unquote(prefix)
        os.environ["DASH_REQUESTS_PATHNAME_PREFIX"] = os.environ.pop("DASH_URL_BASE_PATHNAME")
    sys.path.insert(0, str(entry.parent))
    import_dash()
    spec = importlib.util.spec_from_file_location(entry.stem, entry)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"Cannot import {entry.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[entry.stem] = module
    spec.loader.exec_module(module)
    return find_wsgi_app(vars(module))
