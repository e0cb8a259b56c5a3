"""The runners that mount Gradio, Shiny and NiceGUI apps at the server's prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub_viz.runners import asgi

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("/user/alice/sales/", "/user/alice/sales"),
        ("/user/alice/a%2Bb/", "/user/alice/a+b"),  # routed on the decoded path
        ("/", ""),
    ],
)
def test_mount_path(prefix: str, expected: str) -> None:
    assert asgi.mount_path(prefix) == expected


def test_import_entry_runs_the_file_as_a_module_not_main(tmp_path: Path) -> None:
    entry = tmp_path / "probe_app.py"
    entry.write_text("NAME = __name__\nif __name__ == '__main__':\n    raise SystemExit(3)\n")
    module = asgi.import_entry(str(entry))
    assert module.NAME == "probe_app"


def test_patched_restores_the_original() -> None:
    class Target:
        def launch(self) -> str:
            return "real"

    with asgi.patched(Target, "launch", lambda self: "stub"):
        assert Target().launch() == "stub"
    assert Target().launch() == "real"


def test_gradio_app_without_blocks_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    from hub_viz.runners import gradio as runner

    entry = tmp_path / "nothing_here.py"
    entry.write_text("import gradio\nx = 1\n")
    with pytest.raises(SystemExit, match="defines no gr.Blocks or gr.Interface"):
        runner.create_app(str(entry), "/user/a/b/")


def test_gradio_app_that_launches_at_import_is_mounted_not_launched(tmp_path: Path) -> None:
    pytest.importorskip("gradio")
    from hub_viz.runners import gradio as runner

    entry = tmp_path / "launches.py"
    entry.write_text(
        "import gradio as gr\nother = gr.Blocks()\n"
        "demo = gr.Interface(str.upper, 'text', 'text')\ndemo.launch(server_port=1)\n"
    )
    app = runner.create_app(str(entry), "/user/a/b%2Bc/")
    assert [r.path for r in app.routes if getattr(r, "path", "") == "/user/a/b+c"]


def test_shiny_core_and_express_files_load(tmp_path: Path) -> None:
    pytest.importorskip("shiny")
    import shiny

    from hub_viz.runners import shiny as runner

    core = tmp_path / "core_app.py"
    core.write_text("from shiny import App, ui\napp = App(ui.page_fluid('hi'), None)\n")
    express = tmp_path / "express_app.py"
    express.write_text("from shiny.express import ui\nui.p('hi')\n")
    for entry in (core, express):
        app = runner.create_app(str(entry), "/user/a/b/")
        assert isinstance(app.app, shiny.App) and app.path == "/user/a/b"


def test_shiny_file_without_an_app_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("shiny")
    from hub_viz.runners import shiny as runner

    entry = tmp_path / "no_app.py"
    entry.write_text("import shiny\nx = 1\n")
    with pytest.raises(SystemExit, match="defines no shiny.App"):
        runner.create_app(str(entry), "/user/a/b/")


async def _call(app, path: str) -> list[dict]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(
        {"type": "http", "path": path, "root_path": "", "method": "GET", "headers": []},
        receive,
        send,
    )
    return sent


async def test_prefixed_routes_below_its_path_only() -> None:
    seen: list[dict] = []

    async def inner(scope, receive, send):
        seen.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})

    app = asgi.Prefixed(inner, "/user/a/b+c")
    ok = await _call(app, "/user/a/b+c/page")
    assert ok[0]["status"] == 200
    assert seen[-1]["root_path"] == "/user/a/b+c" and seen[-1]["path"] == "/user/a/b+c/page"
    redirect = await _call(app, "/user/a/b+c")
    assert redirect[0]["status"] == 307
    assert dict(redirect[0]["headers"])[b"location"] == b"/user/a/b%2Bc/"
    for outside in ("/user/a/b+cd/page", "/", "/user/a/"):
        answer = await _call(app, outside)
        assert answer[0]["status"] == 404, outside
    assert len(seen) == 1


@pytest.mark.parametrize(
    ("prefix", "base_url"),
    [("/user/alice/nb/", "/user/alice/nb"), ("/user/alice/a%2Bb/", "/user/alice/a+b")],
)
def test_marimo_runs_as_an_app_without_code_or_token(prefix: str, base_url: str) -> None:
    from hub_viz.runners.marimo import marimo_argv

    argv = marimo_argv("nb.py", 4242, prefix, python="py")
    assert argv[:5] == ["py", "-m", "marimo", "run", "nb.py"]  # app mode, never `edit`
    assert f"--base-url={base_url}" in argv  # marimo refuses a trailing slash
    for flag in (
        "--headless",
        "--host=127.0.0.1",
        "--port=4242",
        "--no-token",
        "--no-sandbox",
        "--no-show-tracebacks",
    ):
        assert flag in argv, flag
    assert "--include-code" not in argv and "edit" not in argv
    assert not any(a.startswith("--base-url") for a in marimo_argv("nb.py", 1, "/", "py"))


async def test_prefixed_moves_root_cookies_below_its_path() -> None:
    async def inner(scope, receive, send):
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (
                        b"set-cookie",
                        b"sid=1; expires=Fri, 01 Jan 2038 00:00:00 GMT; Path=/; SameSite=lax",
                    ),
                    (b"Set-Cookie", b"other=2; path=/"),
                    (b"set-cookie", b"deep=3; Path=/user/a/b+c/x"),
                    (b"x-note", b"path=/"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    sent = await _call(asgi.Prefixed(inner, "/user/a/b+c"), "/user/a/b+c/")
    headers = sent[0]["headers"]
    assert headers[0][1] == (
        b"sid=1; expires=Fri, 01 Jan 2038 00:00:00 GMT; path=/user/a/b%2Bc/; SameSite=lax"
    )
    assert headers[1][1] == b"other=2; path=/user/a/b%2Bc/"
    assert headers[2][1] == b"deep=3; Path=/user/a/b+c/x"  # already below: kept
    assert headers[3] == (b"x-note", b"path=/")


async def test_strip_prefix_serves_the_app_as_behind_a_stripping_proxy() -> None:
    seen: list[dict] = []

    async def inner(scope, receive, send):
        seen.append(scope)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"set-cookie", b"s=1; Path=/")],
            }
        )
        await send({"type": "http.response.body", "body": b""})

    app = asgi.StripPrefix(inner, "/user/a/b+c")
    scope = {
        "type": "http",
        "path": "/user/a/b+c/page/x",
        "raw_path": b"/user/a/b%2Bc/page/x",
        "root_path": "",
        "method": "GET",
        "headers": [(b"x-forwarded-prefix", b"/evil"), (b"accept", b"text/html")],
    }

    async def receive() -> dict:
        return {"type": "http.request", "body": b""}

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    inner_scope = seen[-1]
    assert inner_scope["path"] == "/page/x" and inner_scope["raw_path"] == b"/page/x"
    assert inner_scope["root_path"] == ""
    headers = inner_scope["headers"]
    assert (b"x-forwarded-prefix", b"/user/a/b%2Bc") in headers  # the viewer's is replaced
    assert (b"x-forwarded-prefix", b"/evil") not in headers
    assert sent[0]["headers"] == [(b"set-cookie", b"s=1; path=/user/a/b%2Bc/")]
    assert (await _call(app, "/user/a/b+c"))[0]["status"] == 307
    assert (await _call(app, "/elsewhere"))[0]["status"] == 404
    assert len(seen) == 1


def test_nicegui_run_is_held_to_the_launcher_s_settings() -> None:
    from hub_viz.runners.nicegui import held_run

    calls: list[tuple] = []
    run = held_run(lambda *a, **k: calls.append((a, k)), 4242)
    run(
        "root",
        host="0.0.0.0",
        port=8080,
        reload=True,
        show=True,
        on_air=True,
        fastapi_docs=True,
        ssl_certfile="c",
        ssl_keyfile="k",
        root_path="/x",
        title="T",
    )
    args, kwargs = calls[0]
    assert args == ("root",)
    assert kwargs["host"] == "127.0.0.1" and kwargs["port"] == 4242
    assert kwargs["reload"] is False and kwargs["show"] is False and kwargs["on_air"] is None
    assert kwargs["fastapi_docs"] is False and kwargs["title"] == "T"
    assert not {"ssl_certfile", "ssl_keyfile", "root_path"} & set(kwargs)
