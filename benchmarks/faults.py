"""Faults under load: what viewers see while a part of the hub fails, and what the records say.

Each scenario runs viewers against a real hub (the isolated layout), breaks one
thing and prints, per fault: the viewers' requests by status during the fault,
the seconds until the first good answer after it, and the service's records
(deployments and their stop reasons) before and after.

- ``app-killed``: the app process of a shared Dash dashboard is killed (-9)
  while viewers use it; a viewer who gets an error opens it again through the
  service, as the open page does.
- ``service-killed``: the hub-managed service is killed while viewers use a
  running dashboard and others call the open API; the hub restarts it.
- ``proxy-killed``: configurable-http-proxy is killed; the hub restarts it and
  puts its routes back.
- ``anonymous-uploads``: clients with no cookie POST 60 MiB bodies (some held
  short of their length) to the launcher while viewers use it; the launcher's
  RSS before, at its peak and after.
- ``claims-race``: one viewer sends four open calls of a per-viewer dashboard
  at the same instant; how many instances they got.
- ``unpublish-during-opens``: the author unpublishes a per-viewer dashboard while
  three viewers open it; servers and open records left behind.

The bare framework has no counterpart to a hub's faults, so the table's bare
column is empty; the numbers are the hub's own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from benchmarks import hubside
from benchmarks.common import RESULTS, Report, Row, log, tree
from benchmarks.hubside import OWNER, Student, create_students, open_dashboard, viewer_session

SCENARIOS = (
    "app-killed",
    "service-killed",
    "proxy-killed",
    "anonymous-uploads",
    "claims-race",
    "unpublish-during-opens",
)
UPLOAD_MIB = 60
POLL = 0.25  # seconds between one viewer's requests
BOUND = 90.0  # seconds a fault may take to recover before the scenario gives up


@dataclass
class Traffic:
    """Requests by status, and when they were answered (monotonic seconds)."""

    answers: list[tuple[float, str]] = field(default_factory=list)

    def add(self, status: str) -> None:
        self.answers.append((time.monotonic(), status))

    def counts(self, since: float, until: float = float("inf")) -> str:
        c = Counter(s for t, s in self.answers if since <= t <= until)
        return " ".join(f"{k}:{v}" for k, v in sorted(c.items())) or "none"

    def first_ok_after(self, t0: float) -> float | None:
        return next((t - t0 for t, s in self.answers if t >= t0 and s == "200"), None)


def records(state: Path, slug: str) -> str:
    """The service's deployments of ``OWNER/slug``: open ones and stop reasons."""
    db = state / "hub_viz.sqlite"
    if not db.exists():
        return "no store"
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)) as con:
        rows = con.execute(
            "SELECT stopped IS NULL, dashboard_id IS NULL, stop_reason FROM deployments "
            "WHERE dashboard_ref = ?",
            (f"{OWNER}/{slug}",),
        ).fetchall()
    running = sum(1 for open_, _, _ in rows if open_)
    orphans = sum(1 for open_, gone, _ in rows if open_ and gone)
    reasons = Counter(reason or "?" for open_, _, reason in rows if not open_)
    text = f"{running} open"
    if orphans:
        text += f" ({orphans} without a dashboard)"
    if reasons:
        text += ", stopped: " + ", ".join(f"{r} ×{n}" for r, n in sorted(reasons.items()))
    return text


def process(hub: Any, needle: str) -> psutil.Process:
    for p in tree(hub.proc.pid):
        with contextlib.suppress(psutil.Error):
            if needle in " ".join(p.cmdline()):
                return p
    raise RuntimeError(f"no process matching {needle!r} under the hub")


def app_of(launcher: psutil.Process) -> psutil.Process:
    children = launcher.children()
    if not children:
        raise RuntimeError("the launcher runs no app")
    return children[0]


async def viewer(
    hub: Any, who: Student, slug: str, traffic: Traffic, stop: asyncio.Event, reopen: bool = True
) -> None:
    """Open ``slug`` and use it (Dash's layout call) until ``stop``; reopen after errors."""
    async with viewer_session() as session:
        page = ""
        while not stop.is_set():
            if not page:
                opened = await open_dashboard(session, hub, who, slug, "dash")
                if not opened.ok:
                    traffic.add("open failed")
                    await asyncio.sleep(1)
                    continue
                page = opened.page_url.split("?")[0]
            try:
                async with session.get(page + "_dash-layout", allow_redirects=False) as r:
                    await r.read()
                    traffic.add(str(r.status))
                    if r.status != 200 and reopen:
                        page = ""
            except aiohttp.ClientError as e:
                traffic.add(type(e).__name__)
                if reopen:
                    page = ""
            await asyncio.sleep(POLL)


async def opener(hub: Any, who: Student, slug: str, traffic: Traffic, stop: asyncio.Event) -> None:
    """The service's open call, over and over (what new arrivals do)."""
    url = f"{hub.service_url}api/dashboards/{OWNER}/{slug}/open"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        while not stop.is_set():
            try:
                async with s.post(url, headers=who.headers) as r:
                    await r.read()
                    traffic.add(str(r.status))
            except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                traffic.add(type(e).__name__)
            await asyncio.sleep(0.5)


async def under_load(
    hub: Any, students: list[Student], slug: str, fault, *, openers: int = 0, settle: float = 3.0
) -> dict[str, Any]:
    """Viewers (and openers) run; after ``settle`` s, ``fault()`` runs; then until every
    kind of traffic answered 200 again (or BOUND s)."""
    viewers, opens, stop = Traffic(), Traffic(), asyncio.Event()
    tasks = [
        asyncio.ensure_future(viewer(hub, who, slug, viewers, stop)) for who in students[openers:]
    ]
    tasks += [
        asyncio.ensure_future(opener(hub, who, slug, opens, stop)) for who in students[:openers]
    ]
    await asyncio.sleep(settle)
    extra = await asyncio.get_running_loop().run_in_executor(None, fault)
    t_fault = time.monotonic()
    deadline = t_fault + BOUND
    while time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        good = viewers.first_ok_after(t_fault + 0.5) is not None and (
            not openers or opens.first_ok_after(t_fault + 0.5) is not None
        )
        if good and time.monotonic() > t_fault + 5:
            break
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    result = {
        "viewers": viewers.counts(t_fault),
        "viewers_recovery": viewers.first_ok_after(t_fault),
        "viewers_before": viewers.counts(0, t_fault),
    }
    if openers:
        result |= {"opens": opens.counts(t_fault), "opens_recovery": opens.first_ok_after(t_fault)}
    return result | (extra or {})


def row(
    report: Report, scenario: str, found: dict[str, Any], before: str, after: str, detail: str = ""
) -> None:
    recovery = found.get("opens_recovery", found.get("viewers_recovery"))
    statuses = []
    if "viewers" in found:
        statuses.append(f"viewers {found['viewers']}")
    if "opens" in found:
        statuses.append(f"open calls {found['opens']}")
    report.add(
        Row(
            scenario,
            hub={"p50": recovery} if recovery is not None else {},
            extra={
                "requests by status during the fault": "; ".join(statuses) or "-",
                "recovery s": "-"
                if not {"viewers_recovery", "opens_recovery"} & set(found)
                else (f"{recovery:.1f}" if recovery is not None else "never"),
                "records before → after": f"{before} → {after}",
                "detail": detail,
            },
        )
    )
    report.raw[scenario] = {**found, "records_before": before, "records_after": after}


# -- the scenarios ----------------------------------------------------------------------


def app_killed(hub: Any, state: Path, report: Report, students: list[Student]) -> None:
    slug = "faults-app"
    hubside.publish(hub, slug, "dash")
    hubside.start(hub, slug)
    before = records(state, slug)
    launcher = hubside.launcher(hub, OWNER, slug)

    def fault() -> dict:
        app_of(launcher).send_signal(signal.SIGKILL)
        return {}

    found = asyncio.run(under_load(hub, students, slug, fault))
    time.sleep(1)
    row(
        report,
        "app-killed",
        found,
        before,
        records(state, slug),
        "a viewer who gets an error opens the dashboard again through the service",
    )
    hubside.unpublish(hub, slug)


def killed_under_load(
    hub: Any,
    state: Path,
    report: Report,
    students: list[Student],
    *,
    scenario: str,
    needle: str,
    detail: str,
) -> None:
    """Kill (-9) the hub's child process matching ``needle`` while half the students use a
    running dashboard and the other half call the open API."""
    slug = f"faults-{scenario.split('-')[0]}"
    hubside.publish(hub, slug, "dash")
    hubside.start(hub, slug)
    before = records(state, slug)

    def fault() -> dict:
        process(hub, needle).send_signal(signal.SIGKILL)
        return {}

    found = asyncio.run(under_load(hub, students, slug, fault, openers=len(students) // 2))
    row(report, scenario, found, before, records(state, slug), detail)
    hubside.unpublish(hub, slug)


def service_killed(hub: Any, state: Path, report: Report, students: list[Student]) -> None:
    killed_under_load(
        hub,
        state,
        report,
        students,
        scenario="service-killed",
        needle="hub_viz.service",
        detail="viewers of the running dashboard never need the service; open calls wait for "
        "its restart",
    )


def proxy_killed(hub: Any, state: Path, report: Report, students: list[Student]) -> None:
    killed_under_load(
        hub,
        state,
        report,
        students,
        scenario="proxy-killed",
        needle="configurable-http-proxy",
        detail="the hub restarts the proxy and adds its routes back",
    )


async def _upload(url: str, short: bool) -> str:
    """An anonymous POST of UPLOAD_MIB MiB (``short``: 4 MiB missing, then held open)."""
    size = UPLOAD_MIB << 20
    chunk = b"x" * (1 << 20)

    async def body():
        for _ in range(UPLOAD_MIB - (4 if short else 0)):
            yield chunk
        if short:
            await asyncio.sleep(20)

    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as s,
            s.post(url, data=body(), headers={"Content-Length": str(size)}) as r,
        ):
            await r.read()
            return str(r.status)
    except (aiohttp.ClientError, asyncio.TimeoutError) as e:
        return type(e).__name__


def anonymous_uploads(hub: Any, state: Path, report: Report, students: list[Student]) -> None:
    slug = "faults-upload"
    hubside.publish(hub, slug, "dash")
    hubside.start(hub, slug)
    before = records(state, slug)
    launcher = hubside.launcher(hub, OWNER, slug)
    rss = {"before": launcher.memory_info().rss / 2**20, "peak": 0.0}
    url = hub.server_url(OWNER, slug) + "_dash-update-component"
    uploads: list[str] = []

    def fault() -> dict:
        async def all_uploads() -> None:
            watch = asyncio.ensure_future(_watch_rss(launcher, rss))
            uploads.extend(await asyncio.gather(*(_upload(url, short=i >= 8) for i in range(12))))
            watch.cancel()

        asyncio.run(all_uploads())
        return {}

    found = asyncio.run(under_load(hub, students, slug, fault))
    rss["after"] = launcher.memory_info().rss / 2**20
    found.pop("viewers_recovery")  # nothing broke: the viewers' statuses are the measure
    found["uploads"] = " ".join(f"{k}:{v}" for k, v in sorted(Counter(uploads).items()))
    found["launcher_rss_mib"] = {k: round(v, 1) for k, v in rss.items()}
    row(
        report,
        "anonymous-uploads",
        found,
        before,
        records(state, slug),
        f"12 anonymous {UPLOAD_MIB} MiB POSTs (4 held short): {found['uploads']}; launcher RSS "
        f"{rss['before']:.0f} → peak {rss['peak']:.0f} → {rss['after']:.0f} MiB",
    )
    hubside.unpublish(hub, slug)


async def _watch_rss(proc: psutil.Process, rss: dict[str, float]) -> None:
    while True:
        with contextlib.suppress(psutil.Error):
            rss["peak"] = max(rss["peak"], proc.memory_info().rss / 2**20)
        await asyncio.sleep(0.1)


def claims_race(hub: Any, state: Path, report: Report, students: list[Student]) -> None:
    slug = "faults-claims"
    hubside.publish(hub, slug, "dash", mode="per-viewer")
    who = students[0]
    before = records(state, slug)
    url = f"{hub.service_url}api/dashboards/{OWNER}/{slug}/open"
    calls = Traffic()

    async def four() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as s:

            async def one() -> None:
                async with s.post(url, headers=who.headers) as r:
                    await r.read()
                    calls.add(str(r.status))

            await asyncio.gather(*(one() for _ in range(4)))

    asyncio.run(four())
    time.sleep(5)
    running = len(hubside.servers(hub, who.name))
    found = {"opens": calls.counts(0), "instances": running}
    row(
        report,
        "claims-race",
        found,
        before,
        records(state, slug),
        f"4 simultaneous open calls by one viewer; servers the viewer has: {running}",
    )
    hubside.unpublish(hub, slug)
    hubside.remove_servers(hub, [who.name])


def unpublish_during_opens(hub: Any, state: Path, report: Report, students: list[Student]) -> None:
    slug = "faults-unpublish"
    hubside.publish(hub, slug, "dash", mode="per-viewer")
    viewers = students[:3]
    before = records(state, slug)
    calls = Traffic()

    async def race() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as s:

            async def open_(who: Student) -> None:
                async with s.post(
                    f"{hub.service_url}api/dashboards/{OWNER}/{slug}/open", headers=who.headers
                ) as r:
                    await r.read()
                    calls.add(str(r.status))

            async def delete() -> None:
                await asyncio.sleep(0.3)
                async with s.delete(
                    f"{hub.service_url}api/dashboards/{OWNER}/{slug}",
                    headers=hubside.owner(hub).headers,
                ) as r:
                    await r.read()
                    calls.add(f"DELETE {r.status}")

            await asyncio.gather(delete(), *(open_(w) for w in viewers))

    asyncio.run(race())
    time.sleep(10)
    left = sum(len(hubside.servers(hub, w.name)) for w in viewers)
    found = {"opens": calls.counts(0), "servers_left": left}
    row(
        report,
        "unpublish-during-opens",
        found,
        before,
        records(state, slug),
        f"3 opens and the author's DELETE at once; servers left running: {left}",
    )
    hubside.remove_servers(hub, [w.name for w in viewers])


RUNNERS = {
    "app-killed": app_killed,
    "service-killed": service_killed,
    "proxy-killed": proxy_killed,
    "anonymous-uploads": anonymous_uploads,
    "claims-race": claims_race,
    "unpublish-during-opens": unpublish_during_opens,
}


def add_arguments(parser: argparse.ArgumentParser, json_option: bool = True) -> None:
    group = parser.add_argument_group("faults suite")
    group.add_argument(
        "--fault-viewers",
        type=int,
        default=None,
        help="viewers using each dashboard during a fault (20; --quick: 6)",
    )
    group.add_argument(
        "--fault-scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated subset of %(default)s",
    )
    if json_option:
        group.add_argument("--json", type=Path, default=RESULTS / "faults.json")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.fault_viewers is None:
        args.fault_viewers = 6 if getattr(args, "quick", False) else 20
    if not 2 <= args.fault_viewers <= 100:
        parser.error("--fault-viewers must be 2 to 100")
    args.fault_list = [s.strip() for s in args.fault_scenarios.split(",") if s.strip()]
    unknown = set(args.fault_list) - set(SCENARIOS)
    if unknown or not args.fault_list:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")


def run(args: argparse.Namespace) -> int:
    report = Report(
        "faults",
        {"viewers": args.fault_viewers, "scenarios": args.fault_list},
        extra_columns=[
            "requests by status during the fault",
            "recovery s",
            "records before → after",
            "detail",
        ],
    )
    worst = 0
    with tempfile.TemporaryDirectory(prefix="hub-viz-faults-") as tmp:
        state = Path(tmp)
        os.chmod(state, 0o755)
        with hubside.running_hub(state) as hub:
            students = create_students(hub, "fault", args.fault_viewers)
            for scenario in args.fault_list:
                log(f"faults: {scenario}")
                try:
                    RUNNERS[scenario](hub, state, report, students)
                except Exception as e:  # one broken scenario does not hide the others
                    report.note(f"{scenario} could not run: {type(e).__name__}: {e}"[:400])
                    worst = 2
    report.write(args.json)
    return worst
