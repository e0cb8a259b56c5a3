"""Shared parts of the runners that serve an ASGI app under the server's prefix.

Gradio, Shiny and NiceGUI serve from ``/`` and only *generate* URLs for a
root path; behind the launcher every request keeps the prefix. A runner
therefore imports the author's entry file (with the framework's own
``launch``/``run`` call made harmless), mounts the app at the prefix and
serves it with uvicorn on the launcher's localhost port.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote


def parse_args(argv: list[str] | None, description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("entry", help="the app's entry file, relative to the working folder")
    parser.add_argument("--port", type=int, required=True, help="localhost port to listen on")
    parser.add_argument("--prefix", default="/", help="URL prefix the app is served under")
    return parser.parse_args(argv)


def mount_path(prefix: str) -> str:
    """The prefix as the ASGI server routes it: %-decoded, no trailing slash ('' for '/')."""
    return unquote(prefix).rstrip("/")


@contextlib.contextmanager
def patched(target: Any, name: str, replacement: Any) -> Iterator[None]:
    """Replace ``target.name`` while the entry file runs."""
    original = getattr(target, name)
    setattr(target, name, replacement)
    try:
        yield
    finally:
        setattr(target, name, original)


def import_entry(entry: str) -> ModuleType:
    """Import the entry file as a module (not ``__main__``), its folder on ``sys.path``."""
    path = Path(entry).resolve()
    sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"Cannot import {path.name}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


class Prefixed:
    """An ASGI app served under ``path``: as Starlette's ``Mount`` routes, lifespan kept.

    Requests below ``path`` reach the app with ``root_path`` set to it and the
    full path kept (Starlette routes the part below ``root_path``); ``path``
    itself redirects to ``path/``; anything else answers 404. Lifespan events
    pass through, so the app's own start-up and shutdown run. A cookie the
    app sets on ``Path=/`` (its own root) is set on ``path/`` instead: the
    launcher drops cookies that reach beyond the server.
    """

    def __init__(self, app: Any, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or not self.path:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith(self.path + "/"):
            scope = dict(scope, root_path=scope.get("root_path", "") + self.path)
            await self.app(scope, receive, self._cookies_below(send))
        elif scope["type"] == "http" and path == self.path:
            await _respond(send, 307, b"", [(b"location", _quoted(self.path) + b"/")])
        elif scope["type"] == "http":
            await _respond(send, 404, b"Not found", [(b"content-type", b"text/plain")])
        else:
            await send({"type": "websocket.close", "code": 1008})

    def _cookies_below(self, send: Any) -> Any:
        own_root = b"; path=" + _quoted(self.path) + b"/"

        async def send_below(message: dict) -> None:
            if message["type"] == "http.response.start":
                message = dict(
                    message,
                    headers=[
                        (
                            name,
                            _ROOT_PATH_ATTR.sub(own_root, value)
                            if name.lower() == b"set-cookie"
                            else value,
                        )
                        for name, value in message.get("headers", [])
                    ],
                )
            await send(message)

        return send_below


class StripPrefix(Prefixed):
    """An app that expects a proxy to strip ``path`` (and say so in ``X-Forwarded-Prefix``).

    Requests below ``path`` reach the app with the path below it and the
    prefix, as the browser spells it, in ``X-Forwarded-Prefix`` (one sent by
    the viewer is replaced). Redirects, 404s and cookies as :class:`Prefixed`.
    """

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] in ("http", "websocket")
            and self.path
            and path.startswith(self.path + "/")
        ):
            rest = path[len(self.path) :]
            quoted = _quoted(self.path)
            raw = scope.get("raw_path") or b""
            headers = [
                (k, v) for k, v in scope.get("headers", []) if k.lower() != b"x-forwarded-prefix"
            ]
            headers.append((b"x-forwarded-prefix", quoted))
            scope = dict(
                scope,
                path=rest,
                headers=headers,
                raw_path=raw[len(quoted) :] if raw.startswith(quoted + b"/") else _quoted(rest),
            )
            await self.app(scope, receive, self._cookies_below(send))
            return
        await super().__call__(scope, receive, send)


_ROOT_PATH_ATTR = re.compile(rb";\s*path=/(?=;|$)", re.IGNORECASE)


def _quoted(path: str) -> bytes:
    from urllib.parse import quote

    return quote(path).encode("ascii")


async def _respond(send: Any, status: int, body: bytes, headers: list) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def serve(app: Any, port: int) -> None:
    """Serve ``app`` on ``127.0.0.1:port`` (the launcher is the only client).

    The launcher's ``X-Forwarded-Proto`` and ``-For`` are trusted from 127.0.0.1
    only: the app's scheme and client are the viewer's.
    """
    import uvicorn

    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
    )
