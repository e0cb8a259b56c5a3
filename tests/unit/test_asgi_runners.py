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
        "demo = gr.Interface(str.upper, 'text', 'text')\ndemo.launch(server_port=1)\n")
    app = runner.create_app(str(entry), "/user/a/b%2Bc/")
    assert [r.path for r in app.routes if getattr(r, "path", "") == "/user/a/b+c"]
