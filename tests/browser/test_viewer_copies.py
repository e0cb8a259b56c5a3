"""Two students of a per-viewer notebook dashboard edit and save it in JupyterLab.

Each works on their own copy of the instructor's folder: neither sees the
other's change or files, the instructor's notebook stays as it was, and each
finds their work again after their instance stopped and opened again. Their
JupyterLab greets them with no build prompt, no news and no extension manager.
"""

from __future__ import annotations

import shutil
import time

import pytest

from ..conftest import EXAMPLES, PASSWORD, Hub
from .conftest import logged_in_page

pytestmark = pytest.mark.browser

AUTHOR, SLUG = "vc-prof", "class-notes"


@pytest.fixture(scope="module")
def notes(hub: Hub) -> bytes:
    """The instructor's folder, published per-viewer for every hub user; its notebook."""
    folder = hub.root / "vc-class"
    shutil.copytree(EXAMPLES / "notebook", folder)
    hub.ensure_user(AUTHOR)
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "title": "Class notes",
            "entry": "vc-class/analysis.ipynb",
            "framework": "notebook",
            "mode": "per-viewer",
            "visibility": "all",
        },
    )
    assert r.status_code == 201, r.text
    return (folder / "analysis.ipynb").read_bytes()


def open_lab(page, hub: Hub):
    """Open the dashboard as a student does: (the frame with their JupyterLab, its base URL).

    The open page frames it (a dashboard URL loaded as a tab's page would lead back
    to the open page's full window, which frames it the same way)."""
    page.goto(hub.service_url + f"open/{AUTHOR}/{SLUG}")
    deadline = time.monotonic() + 180
    while not any("/lab/" in f.url for f in page.frames):
        assert time.monotonic() < deadline, "JupyterLab did not open"
        page.wait_for_timeout(250)
    lab = next(f for f in page.frames if "/lab/" in f.url)
    lab.locator(".jp-Notebook .jp-CodeCell .cm-content").first.wait_for(timeout=120_000)
    return lab, lab.url.split("?")[0].split("/lab/")[0] + "/"


def contents(page, base: str, path: str) -> tuple[int, str]:
    """Status and text of a file in the student's JupyterLab (its contents API)."""
    return tuple(
        page.evaluate(
            """async (url) => {
            const r = await fetch(url);
            return [r.status, r.ok ? JSON.stringify((await r.json()).content) : ""];
        }""",
            f"{base}api/contents/{path}?content=1",
        )
    )


def edit_and_save(lab, base: str, line: str) -> None:
    """Type a line at the end of the notebook's code cell and press Ctrl+S."""
    lab.locator(".jp-Notebook .jp-CodeCell .cm-content").first.click()
    lab.page.keyboard.press("Control+End")
    lab.page.keyboard.type("\n" + line)
    lab.page.keyboard.press("Control+s")
    deadline = time.monotonic() + 30
    while line not in contents(lab, base, "analysis.ipynb")[1]:
        assert time.monotonic() < deadline, f"JupyterLab did not save {line!r}"
        lab.page.wait_for_timeout(250)


def save_file(page, base: str, name: str, text: str) -> int:
    """A file the student saves through their JupyterLab (its contents API)."""
    return page.evaluate(
        """async ([url, text]) => (await fetch(url, {
            method: "PUT", headers: {"Content-Type": "application/json"},
            body: JSON.stringify({type: "file", format: "text", content: text}),
        })).status""",
        [f"{base}api/contents/{name}", text],
    )


def test_two_students_edit_their_own_copies(hub: Hub, notes: bytes, browser) -> None:
    folder = hub.root / "vc-class"
    bob_ctx, bob = logged_in_page(browser, hub.url, "vc-bob", PASSWORD)
    alice_ctx, alice = logged_in_page(browser, hub.url, "vc-alice", PASSWORD)
    try:
        bob_lab, bob_base = open_lab(bob, hub)
        edit_and_save(bob_lab, bob_base, "# bob was here")
        assert save_file(bob_lab, bob_base, "bob_private.txt", "bob's answers") == 201

        alice_lab, alice_base = open_lab(alice, hub)
        assert alice_base != bob_base
        status, text = contents(alice_lab, alice_base, "analysis.ipynb")
        assert status == 200 and "sum(i * i" in text and "bob was here" not in text
        assert contents(alice_lab, alice_base, "bob_private.txt")[0] == 404
        edit_and_save(alice_lab, alice_base, "# alice was here")
        assert "alice was here" not in contents(bob_lab, bob_base, "analysis.ipynb")[1]

        # the instructor's folder: the notebook as published, nothing added
        assert (folder / "analysis.ipynb").read_bytes() == notes
        assert sorted(p.name for p in folder.iterdir()) == ["analysis.ipynb"]

        # bob's instance stops (as the idle culler stops it) and he opens it again
        hub.stop("vc-bob", bob_base.rstrip("/").rsplit("/", 1)[1])
        bob_lab, bob_base = open_lab(bob, hub)
        bob_lab.locator(".jp-Notebook").get_by_text("bob was here").wait_for(timeout=60_000)
        status, text = contents(bob_lab, bob_base, "analysis.ipynb")
        assert status == 200 and "bob was here" in text and "alice was here" not in text
        assert contents(bob_lab, bob_base, "bob_private.txt") == (200, '"bob\'s answers"')
        assert (folder / "analysis.ipynb").read_bytes() == notes
    finally:
        bob_ctx.close()
        alice_ctx.close()


def test_jupyterlab_shows_no_build_prompt_news_or_extension_manager(
    hub: Hub, notes: bytes, browser
) -> None:
    context, page = logged_in_page(browser, hub.url, "vc-carol", PASSWORD)
    try:
        lab, _ = open_lab(page, hub)
        config = lab.evaluate(
            "JSON.parse(document.getElementById('jupyter-config-data').textContent)"
        )
        assert config["buildCheck"] is False and config["buildAvailable"] is False
        assert config["news"] == {"disabled": True}
        assert config["extensionManager"]["name"] == "read-only"
        assert {
            "@jupyterlab/extensionmanager-extension",
            "@jupyterlab/apputils-extension:announcements",
        } <= set(config["disabledExtensions"])
        lab.locator(".jp-SideBar").first.wait_for()
        page.wait_for_timeout(3000)  # the build check and the news question come after load
        assert lab.locator(".jp-Dialog").count() == 0
        assert lab.get_by_text("Build Recommended").count() == 0
        assert lab.get_by_text("Jupyter news").count() == 0
        assert lab.locator('[data-id="extensionmanager.main-view"]').count() == 0
    finally:
        context.close()
