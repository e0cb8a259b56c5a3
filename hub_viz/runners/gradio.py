"""Serve a Gradio app file under the server's prefix.

``python -m hub_viz.runners.gradio app.py --port=N --prefix=/user/a/b/``
imports the file with ``Blocks.launch`` made a no-op (apps often call it at
module level), takes the ``gr.Blocks``/``gr.Interface`` it defines (``demo``
first) and mounts it at the prefix with ``gradio.mount_gradio_app``. Sharing
links, the MCP server and server-side rendering stay off.
"""

from __future__ import annotations

from typing import Any

from . import asgi


def find_blocks(namespace: dict[str, Any]) -> Any:
    """The app's Blocks: ``demo``, ``app`` or ``ui`` if one is, else the first defined."""
    import gradio as gr

    for name in ("demo", "app", "ui"):
        if isinstance(namespace.get(name), gr.Blocks):
            return namespace[name]
    for value in namespace.values():
        if isinstance(value, gr.Blocks):
            return value
    raise SystemExit(
        "The Gradio entry file defines no gr.Blocks or gr.Interface: assign it to a "
        "module-level name such as `demo = gr.Interface(...)`."
    )


def create_app(entry: str, prefix: str) -> Any:
    import fastapi
    import gradio as gr

    launched: list[Any] = []
    with asgi.patched(gr.Blocks, "launch", lambda self, *a, **k: launched.append(self)):
        module = asgi.import_entry(entry)
    blocks = launched[0] if launched else find_blocks(vars(module))
    return gr.mount_gradio_app(
        fastapi.FastAPI(openapi_url=None, docs_url=None, redoc_url=None),
        blocks,
        path=asgi.mount_path(prefix) or "/",
        ssr_mode=False,
        mcp_server=False,
    )


def main(argv: list[str] | None = None) -> None:
    options = asgi.parse_args(argv, "Serve a Gradio app under a URL prefix.")
    asgi.serve(create_app(options.entry, options.prefix), options.port)


if __name__ == "__main__":
    main()
