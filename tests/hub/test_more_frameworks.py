"""Gradio, Shiny, Marimo, Solara and NiceGUI dashboards published and opened through a hub.

Each example (``tests/examples.py`` ``MORE_EXAMPLES``) is published by an
author for every hub user and opened by another user through the service on
the isolated layout; the page comes from the app through the launcher, the
app's own data route answers with what only its running code computes, and
no route a viewer can ask serves a line of its source.
"""

from __future__ import annotations

import importlib.util
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import websocket

from ..conftest import BROWSER_UA, Hub, origin_of
from ..examples import MORE_EXAMPLES, sum_of_squares
from .test_source_audit import SOURCE_PATHS

pytestmark = pytest.mark.hub

AUTHOR, VIEWER = "mf-author", "mf-viewer"
# example -> a line of its source its output never shows
MARKERS = {
    "gradio-example": "range(1, 701)",
    "shiny-example": "range(1, 801)",
    "marimo-example": "range(1, 901)",
    "solara-example": "range(1, 1001)",
    "nicegui-example": "range(1, 1101)",
}
# example -> (path under the prefix, text it must carry): the app's own data route
DATA_ROUTES = {
    "gradio-example": ("config", MORE_EXAMPLES["gradio-example"][1]),
    "shiny-example": ("", MORE_EXAMPLES["shiny-example"][1]),
    # marimo's page is a shell: the notebook's outputs arrive on its websocket
    "marimo-example": ("ws", str(sum_of_squares(900))),
    # Solara's page is a shell too: its virtual kernel answers on the kernel websocket
    "solara-example": ("kernel", "kernel_info_reply"),
    # NiceGUI renders the page's elements into the page it serves
    "nicegui-example": ("", MORE_EXAMPLES["nicegui-example"][1]),
}
# Paths a framework of these knows for files, code or its editor (besides SOURCE_PATHS).
MORE_SOURCE_PATHS = (
    "gradio_api/file={entry}",
    "gradio_api/file=./{entry}",
    "file={entry}",
    "gradio_api/file=%2E%2E/{entry}",
    "gradio_api/info",
    "?view=api",
    "api/kernel/read_code",
    "api/export/html",
    "api/export/script",
    "@file/{entry}",
    "public/{entry}",
    "public/../{entry}",
    "?file={entry}",
    "?include-code=true",
)


def installed(example: str) -> bool:
    return importlib.util.find_spec(MORE_EXAMPLES[example][2]) is not None


EXAMPLES_HERE = [
    pytest.param(
        name,
        marks=pytest.mark.skipif(
            not installed(name), reason=f"{MORE_EXAMPLES[name][2]} is not installed"
        ),
    )
    for name in MORE_EXAMPLES
]


def slug(example: str) -> str:
    return "mf-" + example.removesuffix("-example")


@pytest.fixture(scope="module")
def opened(hub: Hub) -> Iterator[dict]:
    """Publish one example on first use; VIEWER's session and base URL for each."""
    for name in (AUTHOR, VIEWER):
        hub.ensure_user(name)
    seen: dict[str, dict] = {}

    def open_example(example: str) -> dict:
        if example not in seen:
            spec = MORE_EXAMPLES[example][0]
            r = hub.svc(
                "POST",
                "dashboards",
                AUTHOR,
                json={"slug": slug(example), "title": example, "visibility": "all", **spec},
            )
            assert r.status_code == 201, r.text
            body = hub.open_ready(AUTHOR, slug(example), VIEWER)
            owner, name = body["server"].split("/", 1)
            session = requests.Session()
            session.headers["User-Agent"] = BROWSER_UA
            first = session.get(hub.public(body["url"]), timeout=60)
            seen[example] = {
                "session": session,
                "first": first,
                "owner": owner,
                "base": hub.at(f"/user/{owner}/{name}/"),
                "base_path": f"/user/{owner}/{name}/",
            }
        return seen[example]

    yield open_example
    for example in seen:
        hub.svc("DELETE", f"dashboards/{AUTHOR}/{slug(example)}", AUTHOR)


@pytest.mark.parametrize("example", EXAMPLES_HERE)
def test_published_app_renders_for_a_viewer(hub: Hub, opened, example: str) -> None:
    inst = opened(example)
    assert inst["owner"] == AUTHOR
    assert inst["first"].status_code == 200, inst["first"].text[:500]
    assert inst["first"].url == inst["base"]  # the grant was taken, the page is the app's
    path, text = DATA_ROUTES[example]
    if path == "ws":
        assert text in websocket_text(hub, inst, text)
        return
    if path == "kernel":
        ws, _ = solara_kernel(inst)
        try:
            ws.send(kernel_message("kernel_info_request"))
            assert "kernel_info_reply" in replies(ws, "kernel_info_reply")
        finally:
            ws.close()
        return
    r = inst["session"].get(inst["base"] + path, timeout=60)
    assert r.status_code == 200 and text in r.text, (r.status_code, r.text[:300])


def websocket_text(hub: Hub, inst: dict, wanted: str) -> str:
    """What a marimo session sends on its websocket until ``wanted`` appears."""
    cookies = "; ".join(f"{c.name}={c.value}" for c in inst["session"].cookies)
    ws = websocket.create_connection(
        inst["base"].replace("http", "ws", 1) + f"ws?session_id=s-{uuid.uuid4().hex}",
        header=[f"Cookie: {cookies}", f"User-Agent: {BROWSER_UA}"],
        origin=origin_of(inst["base"]),
        timeout=60,
    )
    received = ""
    try:
        deadline = time.monotonic() + 60
        while wanted not in received and time.monotonic() < deadline:
            received += ws.recv()
    finally:
        ws.close()
    return received


@pytest.mark.parametrize("example", EXAMPLES_HERE)
def test_no_route_serves_the_source_to_a_viewer(hub: Hub, opened, example: str) -> None:
    inst = opened(example)
    session, base, marker = inst["session"], inst["base"], MARKERS[example]
    entry = MORE_EXAMPLES[example][0]["entry"].rsplit("/", 1)[-1]
    statuses = {}
    for template in SOURCE_PATHS + MORE_SOURCE_PATHS:
        path = template.format(entry=entry)
        r = session.get(base + path, timeout=60)
        statuses[path] = r.status_code
        assert marker not in r.text, f"{path} served the source ({r.status_code})"
        # (Solara's page styles carry a "Generic.Traceback" CSS rule; an error does not)
        assert "Traceback (most recent call last)" not in r.text, path
    for path in ("api/contents", "api/kernels", "api/sessions", "files/"):
        if example == "marimo-example":  # only its own routes pass
            assert statuses[path] == 403, (path, statuses[path])
        else:  # no Jupyter server runs: the app answers its own paths (above: no source)
            assert f"Refused GET {inst['base_path']}{path} " not in hub.log.read_text(
                errors="replace"
            ), path


def test_anonymous_visitor_is_sent_to_the_open_page(hub: Hub, opened) -> None:
    example = next(n for n in MORE_EXAMPLES if installed(n))
    inst = opened(example)
    r = requests.get(
        inst["base"], headers={"User-Agent": BROWSER_UA}, timeout=30, allow_redirects=False
    )
    assert r.status_code in (302, 303), r.status_code
    assert r.headers["Location"].startswith(hub.open_location(AUTHOR, slug(example)))


MARIMO = pytest.mark.skipif(not installed("marimo-example"), reason="marimo is not installed")


@MARIMO
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("api/kernel/run", {"cellIds": ["x"], "codes": ["{code}"]}),
        ("api/kernel/execute", {"cellId": "x", "code": "{code}"}),
        ("api/kernel/scratchpad/run", {"code": "{code}"}),
        ("api/kernel/instantiate", {"objectIds": [], "values": [], "codes": {"x": "{code}"}}),
        ("api/document/transaction", {"changes": [{"type": "create-cell", "code": "{code}"}]}),
    ],
)
def test_a_marimo_viewer_cannot_run_code(hub: Hub, opened, path: str, body: dict) -> None:
    inst = opened("marimo-example")
    marker = Path("/tmp") / f"hub-viz-mf-{uuid.uuid4().hex}"
    code = f"open({str(marker)!r}, 'w').write('ran')"
    payload = json.loads(json.dumps(body).replace("{code}", json.dumps(code)[1:-1]))
    r = inst["session"].post(inst["base"] + path, json=payload, timeout=30, allow_redirects=False)
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert r.json()["source"] == "hub-viz"
    time.sleep(1)
    assert not marker.exists()
    refused = (
        f"Refused POST {inst['base_path']}{path} for {VIEWER} (open link): not part of a marimo app"
    )
    assert refused in hub.log.read_text(errors="replace")


@MARIMO
def test_a_marimo_viewer_still_moves_its_sliders(hub: Hub, opened) -> None:
    """The one kind of POST a viewer sends reaches marimo (it answers, not the launcher)."""
    inst = opened("marimo-example")
    r = inst["session"].post(
        inst["base"] + "api/kernel/set_ui_element_value",
        json={"objectIds": [], "values": []},
        timeout=30,
        headers={"Marimo-Session-Id": "s-none"},
    )
    assert r.status_code != 403 or r.json().get("source") != "hub-viz", r.text[:300]


SOLARA = pytest.mark.skipif(not installed("solara-example"), reason="solara is not installed")


def kernel_message(msg_type: str, content: dict | None = None) -> str:
    """A kernel message in the JSON framing Solara's page uses."""
    return json.dumps(
        {
            "header": {
                "msg_id": uuid.uuid4().hex,
                "msg_type": msg_type,
                "username": "",
                "session": uuid.uuid4().hex,
                "date": "",
                "version": "5.3",
            },
            "parent_header": {},
            "metadata": {},
            "content": content or {},
            "channel": "shell",
            "buffers": [],
        }
    )


def solara_kernel(inst: dict) -> tuple[websocket.WebSocket, str]:
    """A new Solara kernel websocket through the launcher, as the page opens one."""
    kernel = str(uuid.uuid4())
    cookies = "; ".join(f"{c.name}={c.value}" for c in inst["session"].cookies)
    ws = websocket.create_connection(
        inst["base"].replace("http", "ws", 1)
        + f"jupyter/api/kernels/{kernel}/channels?session_id={uuid.uuid4()}",
        header=[f"Cookie: {cookies}", f"User-Agent: {BROWSER_UA}"],
        origin=origin_of(inst["base"]),
        timeout=10,
    )
    return ws, kernel


def replies(ws: websocket.WebSocket, wanted: str, seconds: float = 10) -> str:
    """Message types received until ``wanted`` arrives or ``seconds`` pass."""
    seen = []
    deadline = time.monotonic() + seconds
    while wanted not in seen and time.monotonic() < deadline:
        try:
            frame = ws.recv()
        except websocket.WebSocketTimeoutException:
            break
        if isinstance(frame, str):
            seen.append(json.loads(frame)["header"]["msg_type"])
    return " ".join(seen)


@SOLARA
def test_a_solara_viewer_cannot_send_code_to_its_kernel(hub: Hub, opened) -> None:
    inst = opened("solara-example")
    inst["session"].get(inst["base"], timeout=30)  # the page sets Solara's session cookie
    marker = Path("/tmp") / f"hub-viz-mf-{uuid.uuid4().hex}"
    ws, kernel = solara_kernel(inst)
    try:
        for msg_type in ("execute_request", "inspect_request", "complete_request"):
            ws.send(
                kernel_message(
                    msg_type,
                    {
                        "code": f"open({str(marker)!r}, 'w').write('ran')",
                        "silent": False,
                        "cursor_pos": 0,
                    },
                )
            )
        ws.send(kernel_message("kernel_info_request"))
        seen = replies(ws, "kernel_info_reply")
    finally:
        ws.close()
    assert "kernel_info_reply" in seen  # the socket works: widget-side messages pass
    assert "execute_reply" not in seen and "execute_input" not in seen, seen
    assert not marker.exists()
    log = hub.log.read_text(errors="replace")
    for msg_type in ("execute_request", "inspect_request", "complete_request"):
        assert (
            f"Dropped a {msg_type} message from {VIEWER} (open link) to kernel {kernel}: "
            "not a widget message"
        ) in log


@SOLARA
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "resourcez"),
        ("POST", "_solara/api/evict/00000000-0000-0000-0000-000000000000"),
        ("GET", "jupyter/api/kernels"),
        ("POST", "jupyter/api/kernels/00000000-0000-0000-0000-000000000000"),
    ],
)
def test_solara_server_routes_are_refused(hub: Hub, opened, method: str, path: str) -> None:
    inst = opened("solara-example")
    r = inst["session"].request(method, inst["base"] + path, timeout=30, allow_redirects=False)
    assert r.status_code == 403, (r.status_code, r.text[:300])
    assert r.json()["source"] == "hub-viz"
    assert (
        f"Refused {method} {inst['base_path']}{path} for {VIEWER} (open link): "
        "not part of a Solara app"
    ) in hub.log.read_text(errors="replace")


@pytest.mark.parametrize("example", EXAMPLES_HERE)
def test_per_viewer_instance_is_the_viewer_s_own(hub: Hub, example: str) -> None:
    """Published per-viewer, the app runs in a server of the viewer's and renders there."""
    hub.ensure_user(AUTHOR)
    hub.ensure_user(VIEWER)
    slug_pv = slug(example) + "-pv"
    r = hub.svc(
        "POST",
        "dashboards",
        AUTHOR,
        json={
            "slug": slug_pv,
            "title": example,
            "visibility": "all",
            "mode": "per-viewer",
            **MORE_EXAMPLES[example][0],
        },
    )
    assert r.status_code == 201, r.text
    try:
        body = hub.open_ready(AUTHOR, slug_pv, VIEWER)
        owner, name = body["server"].split("/", 1)
        assert owner == VIEWER, body
        session = requests.Session()
        session.headers["User-Agent"] = BROWSER_UA
        page = session.get(hub.public(body["url"]), timeout=60)
        assert page.status_code == 200 and page.url == hub.at(f"/user/{owner}/{name}/")
        path, text = DATA_ROUTES[example]
        if path == "":  # a page that carries the app's own output
            assert text in page.text
    finally:
        hub.svc("DELETE", f"dashboards/{AUTHOR}/{slug_pv}", AUTHOR)


@pytest.mark.parametrize("example", EXAMPLES_HERE)
def test_the_card_gets_a_screenshot_of_the_running_app(hub: Hub, opened, example: str) -> None:
    """Once a viewer's page has loaded, the gallery card shows the app (a PNG), not the
    placeholder."""
    opened(example)
    # what the open page sends when the dashboard's frame has loaded
    r = hub.svc("POST", f"dashboards/{AUTHOR}/{slug(example)}/rendered", VIEWER)
    assert r.status_code == 204, r.text
    deadline = time.monotonic() + 120
    kind = ""
    while time.monotonic() < deadline:
        r = hub.svc("GET", f"dashboards/{AUTHOR}/{slug(example)}/thumbnail", AUTHOR)
        assert r.status_code == 200, r.text
        kind = r.headers["Content-Type"]
        if kind == "image/png":
            assert r.content.startswith(b"\x89PNG\r\n\x1a\n")
            return
        time.sleep(2)
    raise AssertionError(f"no screenshot of {example}: still {kind}")
