"""What an instance and each viewer cost in memory: hub_viz vs the bare framework.

Per framework, in shared mode:

* **instance, 1 viewer**: RSS of the bare app's process tree vs the launcher
  plus its app tree, each with one viewer; the difference is what the launcher
  adds (its own RSS, USS and PSS are columns; target: at most 30 MiB RSS, or USS
  for a launcher forked from a server that has its framework imported, whose RSS
  counts the framework's pages it shares with that server and its app);
* **per extra viewer**: K more viewers open the page and hold the websocket
  where the framework keeps their session (Bokeh/Panel ``ws``, Streamlit
  ``_stcore/stream`` with a script run requested, Voilà the kernel's
  ``channels``; Dash has none: page plus ``_dash-layout`` and
  ``_dash-dependencies``), then the tree's RSS growth / K.

In per-viewer mode: one viewer's own instance (launcher plus app tree) vs
the bare app with one viewer. Memory is read with psutil once the trees are
idle; every row is one measurement.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import tempfile
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from benchmarks import hubside as H
from benchmarks.common import (
    RESULTS,
    Report,
    Row,
    bare_app,
    log,
    memory,
    tree,
    wait_idle,
)

TARGET_LAUNCHER_MIB = 30.0
BOKEH_TOKEN = re.compile(r'"token":\s*"([^"]+)"')
VOILA_KERNEL = re.compile(r'"kernelId":\s*"([0-9a-f-]+)"')


class Viewer:
    """One viewer holding what the framework keeps per session (page, websocket)."""

    def __init__(self, session: aiohttp.ClientSession, framework: str, origin: str) -> None:
        self.session = session
        self.framework = framework
        self.origin = origin
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task | None = None

    async def attach(self, page_url: str, html: str) -> None:
        """Connect what keeps this viewer's session alive, after the page ``page_url``."""
        base = page_url.split("?")[0]
        headers = {"Origin": self.origin}
        if self.framework == "dash":
            root = base if base.endswith("/") else base + "/"
            for path in ("_dash-layout", "_dash-dependencies"):
                async with self.session.get(root + path) as r:
                    await r.read()
            return
        if self.framework in ("bokeh", "panel"):
            token = BOKEH_TOKEN.search(html)
            if not token:
                raise RuntimeError("no session token in the Bokeh page")
            self.ws = await self.session.ws_connect(
                base.rstrip("/") + "/ws", headers=headers, protocols=("bokeh", token.group(1))
            )
        elif self.framework == "streamlit":
            from streamlit.proto.BackMsg_pb2 import BackMsg
            from streamlit.proto.ClientState_pb2 import ClientState

            root = base if base.endswith("/") else base + "/"
            self.ws = await self.session.ws_connect(
                root + "_stcore/stream", headers=headers, protocols=("streamlit",)
            )
            msg = BackMsg()
            msg.rerun_script.CopyFrom(ClientState(query_string=""))
            await self.ws.send_bytes(msg.SerializeToString())
        elif self.framework == "voila":
            kernel = VOILA_KERNEL.search(html)
            if not kernel:
                raise RuntimeError("no kernel id in the Voilà page")
            root = base.rsplit("/voila/", 1)[0] if "/voila/" in base else base
            root = root if root.endswith("/") else root + "/"
            self.ws = await self.session.ws_connect(
                f"{root}api/kernels/{kernel.group(1)}/channels?session_id={uuid.uuid4()}",
                headers=headers,
            )
        if self.ws is not None:
            self._reader = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        with contextlib.suppress(Exception):
            async for _ in self.ws:
                pass

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()
        await self.session.close()


async def bare_viewer(url: str, framework: str) -> Viewer:
    session = H.viewer_session()
    async with session.get(url) as r:
        html = await r.text()
        if r.status != 200:
            raise RuntimeError(f"bare {framework} page: {r.status}")
    origin = "/".join(url.split("/")[:3])
    v = Viewer(session, framework, origin)
    await v.attach(str(r.url), html)
    return v


async def hub_viewer(hub, who, slug: str, framework: str) -> Viewer:
    session = H.viewer_session()
    opened = await H.open_dashboard(session, hub, who, slug, framework, keep_html=True)
    if not opened.ok:
        await session.close()
        raise RuntimeError(f"open {slug} as {who.name}: {opened.error}")
    v = Viewer(session, framework, "/".join(opened.page_url.split("/")[:3]))  # its own host
    await v.attach(opened.page_url, opened.html)
    return v


def shares_its_framework(launcher: psutil.Process) -> bool:
    """Was ``launcher`` forked from a server that has its framework imported?"""
    with contextlib.suppress(psutil.Error, AttributeError):
        return any(a.startswith("--preload=") for a in launcher.parent().cmdline())
    return False


def launcher_target(own: dict[str, float], shares: bool) -> str:
    """The launcher's 30 MiB target, on its RSS; where the launcher is forked from a
    server that has its framework imported (``preload_apps``), on its own pages (USS):
    its RSS then counts the framework's pages, shared with the server and the app."""
    value, basis = (own.get("uss"), "USS") if shares else (own["rss"], "RSS")
    if value is None:
        return "-"
    verdict = "met" if value <= TARGET_LAUNCHER_MIB else "missed"
    return f"{verdict} ({basis} ≤{TARGET_LAUNCHER_MIB:.0f} MiB)"


def pss_pair(bare: dict[str, float], hub: dict[str, float]) -> str:
    """Both trees' PSS (each shared page split among the processes mapping it), or "-"."""
    if "pss" not in bare or "pss" not in hub:
        return "-"
    return f"{bare['pss']:.1f} / {hub['pss']:.1f} MiB"


async def settle(pid: int) -> dict[str, float]:
    """Memory of the tree of ``pid`` once it is idle (the event loop keeps serving)."""
    await asyncio.sleep(1.0)
    await asyncio.to_thread(wait_idle, pid, 0.1, 0.5, 30.0)
    return memory(tree(pid))


async def viewers_growth(pid: int, first, more, k: int) -> dict[str, Any]:
    """Tree memory with one viewer and with ``k`` more; viewers held meanwhile."""
    held = [await first()]
    try:
        one = await settle(pid)
        for _ in range(k):
            held.append(await more())
        many = await settle(pid)
    finally:
        await asyncio.gather(*(v.close() for v in held), return_exceptions=True)
    return {"one_viewer": one, "with_more": many, "per_viewer_rss": (many["rss"] - one["rss"]) / k}


def measure_shared(hub, report: Report, framework: str, k: int, students, tmp: Path) -> None:
    with bare_app(framework, tmp / "bare.log", ready_only=True) as app:
        bare = asyncio.run(
            viewers_growth(
                app.proc.pid,
                lambda: bare_viewer(app.url, framework),
                lambda: bare_viewer(app.url, framework),
                k,
            )
        )
    slug = f"{framework}-mem"
    H.publish(hub, slug, framework)
    try:
        H.start(hub, slug)  # no page GET: it would start a Voilà kernel
        launcher = H.launcher(hub, H.OWNER, slug)
        it = iter(students)
        hub_side = asyncio.run(
            viewers_growth(
                launcher.pid,
                lambda: hub_viewer(hub, next(it), slug, framework),
                lambda: hub_viewer(hub, next(it), slug, framework),
                k,
            )
        )
        own = memory([launcher])
        shares = shares_its_framework(launcher)
    finally:
        H.unpublish(hub, slug)
        H.remove_servers(hub, [H.OWNER], slug)
    row = report.add(
        Row(
            f"{framework}: instance, 1 viewer",
            unit="MiB",
            bare={"p50": bare["one_viewer"]["rss"]},
            hub={"p50": hub_side["one_viewer"]["rss"]},
        )
    )
    row.extra = {
        "instance PSS bare / hub_viz": pss_pair(bare["one_viewer"], hub_side["one_viewer"]),
        "launcher RSS": f"{own['rss']:.1f} MiB",
        "launcher USS": f"{own['uss']:.1f} MiB" if "uss" in own else "-",
        "launcher PSS": f"{own['pss']:.1f} MiB" if "pss" in own else "-",
        "target": launcher_target(own, shares),
    }
    report.add(
        Row(
            f"{framework}: per extra viewer ({k})",
            unit="MiB",
            bare={"p50": bare["per_viewer_rss"]},
            hub={"p50": hub_side["per_viewer_rss"]},
        )
    )
    report.raw[f"{framework}/shared"] = {"bare": bare, "hub_viz": hub_side, "launcher": own}


def measure_per_viewer(hub, report: Report, framework: str, who, tmp: Path) -> None:
    with bare_app(framework, tmp / "bare.log", ready_only=True) as app:

        async def bare_one() -> dict[str, float]:
            v = await bare_viewer(app.url, framework)
            try:
                return await settle(app.proc.pid)
            finally:
                await v.close()

        bare = asyncio.run(bare_one())
    slug = f"{framework}-pv-mem"
    H.publish(hub, slug, framework, mode="per-viewer")
    try:

        async def hub_one() -> tuple[dict[str, float], dict[str, float]]:
            v = await hub_viewer(hub, who, slug, framework)
            try:
                name = next(n for n in H.servers(hub, who.name) if n.startswith(slug[:14]))
                launcher = H.launcher(hub, who.name, name)
                shared["framework"] = shares_its_framework(launcher)
                return await settle(launcher.pid), memory([launcher])
            finally:
                await v.close()

        shared: dict[str, bool] = {}
        instance, own = asyncio.run(hub_one())
        shares = shared.get("framework", False)
    finally:
        H.unpublish(hub, slug)
        H.remove_servers(hub, [who.name])
    row = report.add(
        Row(
            f"{framework} per-viewer: instance, 1 viewer",
            unit="MiB",
            bare={"p50": bare["rss"]},
            hub={"p50": instance["rss"]},
        )
    )
    row.extra = {
        "instance PSS bare / hub_viz": pss_pair(bare, instance),
        "launcher RSS": f"{own['rss']:.1f} MiB",
        "launcher USS": f"{own['uss']:.1f} MiB" if "uss" in own else "-",
        "launcher PSS": f"{own['pss']:.1f} MiB" if "pss" in own else "-",
        "target": launcher_target(own, shares),
    }
    report.raw[f"{framework}/per_viewer"] = {"bare": bare, "hub_viz": instance, "launcher": own}


# -- command line -----------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, json_option: bool = True) -> None:
    group = parser.add_argument_group("memory suite")
    group.add_argument(
        "--extra-viewers",
        type=int,
        default=None,
        help="K viewers added to measure the growth per viewer (10; --quick: 3)",
    )
    if json_option:
        group.add_argument("--json", type=Path, default=RESULTS / "memory.json")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.extra_viewers is None:
        args.extra_viewers = 3 if getattr(args, "quick", False) else 10
    if not 1 <= args.extra_viewers <= 50:
        parser.error("--extra-viewers must be 1 to 50")


def run(args: argparse.Namespace) -> int:
    """Measure, print the table and write the JSON file."""
    k = args.extra_viewers
    report = Report(
        "memory",
        {"frameworks": args.framework_list, "extra_viewers": k, "preload_apps": args.preload_apps},
        extra_columns=[
            "instance PSS bare / hub_viz",
            "launcher RSS",
            "launcher USS",
            "launcher PSS",
            "target",
        ],
    )
    with tempfile.TemporaryDirectory(prefix="hub-viz-memory-") as tmp:
        tmp_path = Path(tmp)
        with H.running_hub(tmp_path / "hub", preload_apps=args.preload_apps == "on") as hub:
            students = H.create_students(hub, "mem", k + 2)
            for framework in args.framework_list:
                log(f"{framework}: shared, 1 + {k} viewers ...")
                measure_shared(hub, report, framework, k, students, tmp_path)
                log(f"{framework}: per-viewer instance ...")
                measure_per_viewer(hub, report, framework, students[-1], tmp_path)
    report.notes.append(
        "MiB of RSS (summed over the process tree; shared pages count once per "
        "process); 'overhead p50' of an instance row is what the launcher adds; a Dash "
        "launcher and its app are forks of a server that has Dash imported (preload_apps): "
        "Dash's pages count in the RSS of both (and of every Dash instance), not in their "
        "USS; PSS splits them among the processes that share them"
    )
    report.write(args.json)
    return 0
