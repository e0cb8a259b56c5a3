"""A whole class clicking at once: N students open one dashboard at the same instant.

Each student is a hub user with an API token (created in one API call, the
tokens in a few threads) whose token the service has already looked up, as
when the student is on the gallery page. At the same instant all of them run
the open flow (:mod:`benchmarks.hubside`): the service's open call, progress
followed when the server starts, the grant redeemed, until the page is
rendered (Voilà: the notebook's output is in the HTML). Measured: success
rate, p50/p95/max seconds to the rendered page, the CPU seconds the hub
process used during the burst, and how fast the hub API answers meanwhile
(``GET /hub/api/users/<author>`` every 0.2 s) beside its idle answer time.

Scenarios (``--scenarios``):

* ``voila-warm``: shared Voilà published with ``warm_kernels: N``, running,
  the pool warmed (N idle kernels counted under the app) before the burst;
* ``voila-cold``: shared Voilà, stopped: everyone clicks, it must start once;
* ``dash``, ``bokeh``, ``panel``, ``streamlit``: shared and running;
* ``per-viewer-cold``: a per-viewer dashboard (``--per-viewer-framework``),
  one instance per student started by the burst (``--per-viewer-students``);
* ``per-viewer-warm``: the same published with ``warm_pool: M``, the pool full.

Bare column: the same N concurrent GETs against the bare framework (for cold
scenarios the process started at the instant of the burst and every client
polling its page; per-viewer: one bare process per student).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from benchmarks import hubside as H
from benchmarks.common import (
    FRAMEWORKS,
    RESULTS,
    START_TIMEOUT,
    Report,
    Row,
    Unsupported,
    bare_app,
    cpu_by_pid,
    cpu_seconds,
    drawn,
    log,
    rendered,
    stats,
    tail,
    tree,
    wait_kernels,
)
from benchmarks.phone_home import hub_processes

SCENARIOS = (
    "voila-warm",
    "voila-cold",
    "dash",
    "bokeh",
    "panel",
    "streamlit",
    "per-viewer-cold",
    "per-viewer-warm",
)
MAX_STUDENTS = 150  # shared scenarios (each Voilà viewer holds a kernel of ~56 MB)
MAX_PER_VIEWER = 60  # per-viewer scenarios (each student an own app process)
KERNEL_MIB = 70  # memory to plan per Voilà kernel (taken ones plus the refilled pool)
PROBE_EVERY = 0.2  # seconds between hub API probes during the burst


# -- the bare side -----------------------------------------------------------------


async def bare_client(
    session: aiohttp.ClientSession, url: str, framework: str, t0: float, poll: bool
) -> tuple[bool, float, str]:
    """GET ``url`` until rendered (``poll``) or once; (ok, seconds since ``t0``, error)."""
    deadline = t0 + START_TIMEOUT
    while True:
        try:
            async with session.get(url) as r:
                body = await r.text()
            if rendered(framework, r.status, body) and await drawn(session, url, framework):
                return True, time.perf_counter() - t0, ""
            error = f"{r.status}"
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            error = f"{type(e).__name__}"
        if not poll or time.perf_counter() > deadline:
            return False, time.perf_counter() - t0, error
        await asyncio.sleep(0.05)


async def bare_burst(
    urls: list[str], framework: str, *, poll: bool, t0: float | None = None
) -> list[tuple[bool, float, str]]:
    """One client per URL, all at once."""
    sessions = [
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=START_TIMEOUT + 60)) for _ in urls
    ]
    start = time.perf_counter() if t0 is None else t0
    try:
        return list(
            await asyncio.gather(
                *(
                    bare_client(s, u, framework, start, poll)
                    for s, u in zip(sessions, urls, strict=True)
                )
            )
        )
    finally:
        await asyncio.gather(*(s.close() for s in sessions))


def bare_side(
    scenario: str, framework: str, n: int, tmp: Path
) -> tuple[list[tuple[bool, float, str]], float]:
    """The scenario's load against bare app(s): each client's result, and the CPU seconds
    the apps used during it."""
    logf = tmp / "bare.log"
    with contextlib.ExitStack() as stack:
        if scenario == "voila-warm":
            app = stack.enter_context(bare_app("voila", logf, warm_kernels=n, wait=False))
            wait_kernels(app.proc.pid, n, timeout=kernel_timeout(n))
            apps, urls, poll, t0 = [app], [app.url] * n, False, None
        elif scenario in ("voila-cold", "per-viewer-cold"):
            count = 1 if scenario == "voila-cold" else n
            t0 = time.perf_counter()
            apps = [
                stack.enter_context(bare_app(framework, logf, wait=False)) for _ in range(count)
            ]
            urls, poll = [apps[i % count].url for i in range(n)], True
        elif scenario == "per-viewer-warm":
            apps = [stack.enter_context(bare_app(framework, logf)) for _ in range(n)]
            urls, poll, t0 = [a.url for a in apps], False, None
        else:
            apps = [stack.enter_context(bare_app(framework, logf))]
            urls, poll, t0 = [apps[0].url] * n, False, None
        before = apps_cpu(apps)
        results = asyncio.run(bare_burst(urls, framework, poll=poll, t0=t0))
        return results, cpu_used(before, apps_cpu(apps))


def apps_cpu(apps: list) -> dict[int, float]:
    return cpu_by_pid(p for app in apps for p in tree(app.proc.pid))


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two readings (processes new since ``before`` count whole)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


def kernel_timeout(n: int) -> float:
    """Seconds to allow for warming ``n`` kernels on a small machine."""
    return 60.0 + 2.0 * n


# -- the hub_viz side ------------------------------------------------------------------


async def probe_hub(hub, stop: asyncio.Event, every: float = PROBE_EVERY) -> list[float]:
    """Seconds of ``GET /hub/api/users/<author>``, every ``every`` s until ``stop``.

    Asked with a token the hub made (the author's): the hub hashes a token set in its
    config (the tests' admin token) 16384 times at each request, which would load the
    hub with the probe's own cost."""
    times = []
    headers = {"Authorization": f"token {hub.user_token(H.OWNER)}"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as s:
        while not stop.is_set():
            t0 = time.perf_counter()
            with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                async with s.get(f"{hub.url}/hub/api/users/{H.OWNER}", headers=headers) as r:
                    await r.read()
                times.append(time.perf_counter() - t0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), every)
    return times


async def hub_burst(hub, students, slug: str, framework: str) -> dict[str, Any]:
    """The burst, with the hub's CPU and its API probed meanwhile."""
    idle_stop = asyncio.Event()
    idle = asyncio.ensure_future(probe_hub(hub, idle_stop, every=0.05))
    await asyncio.sleep(1.0)
    idle_stop.set()
    idle_times = await idle
    procs = hub_processes(hub)  # hub, service, proxy
    cpu0, t0 = {k: cpu_seconds(p) for k, p in procs.items()}, time.perf_counter()
    parts0 = {k: cpu_by_pid(ps) for k, ps in H.instance_processes(hub).items()}
    stop = asyncio.Event()
    probe = asyncio.ensure_future(probe_hub(hub, stop))
    opened = await H.open_all(hub, students, slug, framework)
    seconds = time.perf_counter() - t0
    cpu = {k: round(cpu_seconds(p) - cpu0[k], 2) for k, p in procs.items()}
    for part, ps in H.instance_processes(hub).items():  # launchers, apps
        cpu[part] = round(cpu_used(parts0[part], cpu_by_pid(ps)), 2)
    stop.set()
    during = await probe
    return {
        "opened": opened,
        "hub_cpu": cpu["hub"],
        "cpu": cpu,
        "seconds": seconds,
        "api_idle": idle_times,
        "api_during": during,
    }


def prepare(hub, scenario: str, framework: str, slug: str, n: int) -> None:
    """Publish the scenario's dashboard and bring it to its starting state."""
    if scenario == "voila-warm":
        H.publish(hub, slug, "voila", warm_kernels=n)
        H.start(hub, slug)
        t = wait_kernels(H.launcher(hub, H.OWNER, slug).pid, n, timeout=kernel_timeout(n))
        log(f"  {n} kernels warm after {t:.0f} s")
    elif scenario == "per-viewer-warm":
        H.publish(hub, slug, framework, mode="per-viewer", warm_pool=n)
        H.wait_ready(hub, H.POOL_USER, count=n, timeout=kernel_timeout(n) * 2)
        time.sleep(1.0)  # the pool's next round marks the last ones ready
    elif scenario in ("voila-cold", "per-viewer-cold"):
        H.publish(
            hub, slug, framework, mode="per-viewer" if scenario.startswith("per") else "shared"
        )
    else:
        H.publish(hub, slug, framework)
        H.open_one(hub, H.owner(hub), slug, framework)


def cleanup(hub, scenario: str, slug: str, students) -> None:
    H.unpublish(hub, slug)
    if scenario.startswith("per-viewer"):
        H.remove_servers(hub, [s.name for s in students] + [H.POOL_USER])
    H.remove_servers(hub, [H.OWNER], slug)


def one_scenario(
    hub, report: Report, scenario: str, args, students, tmp: Path, per_viewer_framework: str = ""
) -> None:
    per_viewer = scenario.startswith("per-viewer")
    n = args.per_viewer_students if per_viewer else args.students
    framework = (
        per_viewer_framework or args.per_viewer_framework
        if per_viewer
        else "voila"
        if scenario.startswith("voila")
        else scenario
    )
    several = per_viewer and len(args.per_viewer_framework_list) > 1
    key = f"{scenario}/{framework}" if several else scenario  # the JSON's record
    if scenario == "voila-warm":
        need = 2 * n * KERNEL_MIB * 2**20  # taken kernels plus the refilled pool
        if psutil.virtual_memory().available < need:
            raise Unsupported(f"not enough free memory for {2 * n} Voilà kernels")
    log(f"{scenario}: bare, {n} clients ...")
    bare, bare_cpu = bare_side(scenario, framework, n, tmp)
    slug = (f"burst-{scenario}-{framework}" if several else f"burst-{scenario}")[:30]
    log(f"{scenario}: hub_viz, {n} students ...")
    offset = hub.log.stat().st_size
    try:
        prepare(hub, scenario, framework, slug, n)
        asyncio.run(H.warm_tokens(hub, students[:n], slug))
        got = asyncio.run(hub_burst(hub, students[:n], slug, framework))
        starts = H.hub_starts(hub, offset, H.OWNER, slug) if scenario == "voila-cold" else None
    finally:
        cleanup(hub, scenario, slug, students[:n])
    opened = got["opened"]
    ok = [o.seconds for o in opened if o.ok]
    bare_ok = [s for good, s, _ in bare if good]
    errors: dict[str, int] = {}
    for o in opened:
        if not o.ok:
            errors[o.error[:80]] = errors.get(o.error[:80], 0) + 1
    api_idle, api_during = stats(got["api_idle"]), stats(got["api_during"])
    row = report.add(Row(f"{scenario} ({framework}, {n})", bare=stats(bare_ok), hub=stats(ok)))
    row.extra = {
        "ok bare": f"{len(bare_ok)}/{n}",
        "ok hub_viz": f"{len(ok)}/{n}",
        "hub_viz max": f"{max(ok):.2f} s" if ok else "-",
        "open call p50/max": f"{statistics.median(o.open_call for o in opened):.2f}/{max(o.open_call for o in opened):.2f} s",
        "hub CPU": f"{got['hub_cpu']:.1f} s",
        "CPU bare": f"{bare_cpu:.1f} s",
        "CPU hub_viz (apps, launchers, hub, service, proxy)": cpu_parts(got["cpu"]),
        "hub API p50/max (idle p50)": (
            f"{api_during.get('p50', 0) * 1000:.0f}/{api_during.get('max', 0) * 1000:.0f} ms "
            f"({api_idle.get('p50', 0) * 1000:.0f} ms)"
        ),
    }
    if starts is not None:
        row.extra["ok hub_viz"] += f", started {starts}×"
    if errors:
        row.note = "; ".join(f"{k} ×{v}" for k, v in errors.items())
        report.note(f"{scenario}: failures: {row.note}")
        report.raw[f"{key}/hub_log_tail"] = tail(hub.log, 4000)
    statuses: dict[str, int] = {}
    for o in opened:
        statuses[o.status] = statuses.get(o.status, 0) + 1
    report.raw[key] = {
        "students": n,
        "framework": framework,
        "bare": [{"ok": g, "seconds": s, "error": e} for g, s, e in bare],
        "hub_viz": [
            {
                "ok": o.ok,
                "seconds": o.seconds,
                "open_call": o.open_call,
                "ready": o.ready,
                "status": o.status,
                "startup_pages": o.startup_pages,
                "error": o.error,
            }
            for o in opened
        ],
        "open_statuses": statuses,
        "open_call_p50": statistics.median([o.open_call for o in opened]) if opened else None,
        "hub_cpu_seconds": got["hub_cpu"],
        "cpu_seconds": got["cpu"],
        "bare_cpu_seconds": round(bare_cpu, 2),
        "burst_seconds": got["seconds"],
        "hub_api_idle": api_idle,
        "hub_api_during": api_during,
        "hub_starts": starts,
    }


def cpu_parts(cpu: dict[str, float]) -> str:
    parts = ("apps", "launchers", "hub", "service", "proxy")
    return f"{sum(cpu[p] for p in parts):.1f} s (" + ", ".join(f"{cpu[p]:.1f}" for p in parts) + ")"


# -- command line -----------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, json_option: bool = True) -> None:
    group = parser.add_argument_group("burst suite")
    group.add_argument(
        "--students",
        type=int,
        default=None,
        help=f"students in shared scenarios (100; --quick: 8; at most {MAX_STUDENTS})",
    )
    group.add_argument(
        "--per-viewer-students",
        type=int,
        default=None,
        help=f"students in per-viewer scenarios (30; --quick: 4; at most {MAX_PER_VIEWER})",
    )
    group.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of %(default)s"
    )
    group.add_argument(
        "--per-viewer-frameworks",
        default=None,
        help="comma-separated frameworks whose per-viewer scenarios run, one after the "
        "other (default: --per-viewer-framework)",
    )
    group.add_argument(
        "--launcher-fork-server",
        choices=("on", "off"),
        default="on",
        help="local launchers forked from the fork server, or each a new Python (%(default)s)",
    )
    group.add_argument(
        "--max-starting",
        type=int,
        default=None,
        help="the service's max_starting (default: what configure() sets, twice the cores; "
        "0: no limit)",
    )
    if json_option:
        group.add_argument("--json", type=Path, default=RESULTS / "burst.json")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    quick = getattr(args, "quick", False)
    if args.students is None:
        args.students = 8 if quick else 100
    if args.per_viewer_students is None:
        args.per_viewer_students = 4 if quick else 30
    if not 1 <= args.students <= MAX_STUDENTS:
        parser.error(f"--students must be 1 to {MAX_STUDENTS}")
    if args.max_starting is not None and args.max_starting < 0:
        parser.error("--max-starting must be 0 (no limit) or more")
    if not 1 <= args.per_viewer_students <= MAX_PER_VIEWER:
        parser.error(f"--per-viewer-students must be 1 to {MAX_PER_VIEWER}")
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown or not scenarios:
        parser.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")
    chosen = args.per_viewer_frameworks or args.per_viewer_framework
    args.per_viewer_framework_list = [f.strip() for f in chosen.split(",") if f.strip()]
    odd = [f for f in args.per_viewer_framework_list if f not in FRAMEWORKS]
    if odd or not args.per_viewer_framework_list:
        parser.error(f"--per-viewer-frameworks: choose from {', '.join(FRAMEWORKS)} (not {odd})")
    frameworks = set(getattr(args, "framework_list", FRAMEWORKS))
    args.scenario_list = [
        s for s in scenarios if s.startswith("per-viewer") or s.split("-")[0] in frameworks
    ]


def run(args: argparse.Namespace) -> int:
    """Run the burst scenarios, print the table, write the JSON; 2 when one failed or was unsupported."""
    settings = {
        k: getattr(args, k)
        for k in (
            "students",
            "per_viewer_students",
            "scenario_list",
            "per_viewer_framework_list",
            "launcher_fork_server",
            "preload_apps",
            "max_starting",
        )
    }
    report = Report(
        "burst",
        settings,
        extra_columns=[
            "ok bare",
            "ok hub_viz",
            "hub_viz max",
            "open call p50/max",
            "hub CPU",
            "CPU bare",
            "CPU hub_viz (apps, launchers, hub, service, proxy)",
            "hub API p50/max (idle p50)",
        ],
    )
    failed = 0
    most = max(args.students, args.per_viewer_students)
    with tempfile.TemporaryDirectory(prefix="hub-viz-burst-") as tmp:
        tmp_path = Path(tmp)
        with H.running_hub(
            tmp_path / "hub",
            warm_pool_ceiling=args.per_viewer_students,
            max_warm_kernels=max(args.students, 100),
            fork_launchers=args.launcher_fork_server == "on",
            preload_apps=args.preload_apps == "on",
            max_starting=args.max_starting,
        ) as hub:
            log(f"creating {most} students ...")
            students = H.create_students(hub, "student", most)
            runs = [
                (scenario, fw)
                for scenario in args.scenario_list
                for fw in (
                    args.per_viewer_framework_list if scenario.startswith("per-viewer") else [""]
                )
            ]
            for scenario, fw in runs:
                label = f"{scenario} ({fw})" if fw else scenario
                try:
                    one_scenario(hub, report, scenario, args, students, tmp_path, fw)
                except Unsupported as e:
                    failed += 1
                    report.add(Row(f"{label}: not measured", note=str(e)))
                    report.note(f"{label}: {e}")
                except Exception as e:  # the next scenarios still run
                    failed += 1
                    report.add(Row(f"{label}: failed", note=f"{type(e).__name__}: {e}"[:300]))
                    report.note(f"{label}: {type(e).__name__}: {str(e)[:300]}")
                    report.raw[f"{label}/hub_log_tail"] = tail(hub.log, 4000)
    report.notes.append(
        "times from the instant of the burst to each student's rendered page; 'open call': "
        "the service's answer to the open POST (part of that time); hub CPU: the JupyterHub "
        "process only (proxy and service apart), during the burst; CPU bare: the bare apps' "
        "CPU seconds during the burst; CPU hub_viz: the whole of hub_viz's side during the "
        "burst, then by part (the dashboards' apps, their launchers, JupyterHub, the "
        "service, the proxy)"
    )
    report.write(args.json)
    return 2 if failed else 0


__all__ = ["SCENARIOS", "add_arguments", "check", "run"]
