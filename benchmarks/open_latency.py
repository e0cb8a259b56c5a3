"""How long a viewer waits for a dashboard: hub_viz vs the bare framework.

Per framework, each measure taken on both sides in the same run:

* **page GET, running**: one GET of the page of a running app (a new
  connection each), directly vs through proxy + launcher as a viewer who
  entered with a grant (target: under 20 ms p50 over bare). Skipped for plain
  Voilà (each GET starts a kernel): see the preheated row.
* **cold start**: the example started by hand from ``build_command`` until its
  page renders, vs the service's open call on a stopped shared dashboard
  until the page renders (progress followed, grant redeemed).
* **Voilà preheated** (``warm_kernels``): bare Voilà with ``--preheat_kernel
  --pool_size=P``, P page GETs, vs P viewers opening a shared Voilà dashboard
  published with ``warm_kernels: P`` (open call to rendered page); the pool is
  refilled and idle before each open.
* **own environment, cached**: the framework's example published twice, once
  as it is (hub_viz's environment: the "bare" column here) and once with a
  ``requirements.txt`` beside it (one tiny package from a local wheel folder),
  whose environment was built by an untimed first open; cold starts of both,
  open call to rendered page.
* **per-viewer warm pool** (``warm_pool``): P viewers opening a per-viewer
  dashboard published with ``warm_pool: P`` (open call to rendered page) vs a
  page GET of the bare app running.

Each framework first gets one untimed round of both sides (disk cache,
bytecode). Everything runs on 127.0.0.1, the hub in a temporary folder.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import time
from pathlib import Path

import aiohttp

from benchmarks import hubside as H
from benchmarks.common import (
    RESULTS,
    Report,
    Row,
    Unsupported,
    bare_app,
    example,
    fmt,
    log,
    rendered,
    stats,
    wait_kernels,
)

TARGET_OVERHEAD = 0.020  # seconds the launcher and proxy may add to a page GET (p50)


async def timed_gets(
    url: str, n: int, framework: str, *, hub=None, who=None, slug=""
) -> list[float]:
    """Seconds of ``n`` GETs of ``url`` (after one untimed), a new connection each.

    With ``hub``, the viewer ``who`` first opens ``slug`` (its grant sets the
    launcher's cookie) and ``url`` is the page it landed on.
    """
    async with H.viewer_session(force_close=True) as s:
        if hub is not None:
            opened = await H.open_dashboard(s, hub, who, slug, framework)
            if not opened.ok:
                raise RuntimeError(f"open {slug}: {opened.error}")
            url = opened.page_url
        times = []
        for i in range(n + 1):
            t0 = time.perf_counter()
            async with s.get(url) as r:
                body = await r.text()
            if not rendered(framework, r.status, body):
                raise RuntimeError(f"GET {url}: {r.status} {body[:200]}")
            if i:
                times.append(time.perf_counter() - t0)
        return times


def stop_server(hub, slug: str) -> None:
    H.remove_servers(hub, [H.OWNER], slug)


def cold_and_warm(hub, report: Report, framework: str, args, students, tmp: Path) -> None:
    """Cold starts of both sides; running-page GETs on the last start of each."""
    slug = f"{framework}-lat"
    H.publish(hub, slug, framework)
    who = students[0]
    bare_cold, hub_cold, bare_warm, hub_warm = [], [], [], []
    with bare_app(framework, tmp / "bare.log"):  # untimed: disk cache, bytecode
        pass
    H.open_one(hub, who, slug, framework)
    stop_server(hub, slug)
    for i in range(args.repeat):
        last = i == args.repeat - 1 and framework != "voila"
        with bare_app(framework, tmp / "bare.log") as app:
            bare_cold.append(app.cold)
            if last:
                bare_warm = asyncio.run(timed_gets(app.url, args.warm, framework))
        hub_cold.append(H.open_one(hub, who, slug, framework).seconds)
        if last:
            hub_warm = asyncio.run(
                timed_gets("", args.warm, framework, hub=hub, who=who, slug=slug)
            )
        stop_server(hub, slug)
        log(
            f"  {framework} #{i + 1}: cold bare {bare_cold[-1]:.2f} s, hub_viz {hub_cold[-1]:.2f} s"
        )
    if framework != "voila":
        row = report.add(
            Row(f"{framework}: page GET, running", bare=stats(bare_warm), hub=stats(hub_warm))
        )
        row.extra["target"] = (
            "met" if row.overhead is not None and row.overhead < TARGET_OVERHEAD else "missed"
        ) + f" (<{TARGET_OVERHEAD * 1000:.0f} ms)"
        report.raw[f"{framework}/warm"] = {"bare": bare_warm, "hub_viz": hub_warm}
    report.add(Row(f"{framework}: cold start", bare=stats(bare_cold), hub=stats(hub_cold)))
    report.raw[f"{framework}/cold"] = {"bare": bare_cold, "hub_viz": hub_cold}
    H.unpublish(hub, slug)


ENV_PACKAGE = "hvbench"


def environments(tmp: Path) -> dict:
    """The hub's environment settings: one tiny package in a local wheel folder."""
    from tests.wheels import version_package

    version_package(tmp / "wheels", ENV_PACKAGE, ("1.0",))
    return {"no_index": True, "find_links": [str(tmp / "wheels")]}


def own_environment(hub, report: Report, framework: str, args, students) -> None:
    """Cold starts in a cached environment of the dashboard's own, beside hub_viz's."""
    spec, _ = example(framework)
    folder, name = spec["entry"].split("/", 1)
    shutil.copytree(hub.root / folder, hub.root / f"{folder}-env", dirs_exist_ok=True)
    (hub.root / f"{folder}-env" / "requirements.txt").write_text(f"{ENV_PACKAGE}==1.0\n")
    shared, own = f"{framework}-shared-env", f"{framework}-own-env"
    H.publish(hub, shared, framework)
    H.publish(hub, own, framework, entry=f"{folder}-env/{name}")
    who = students[0]
    try:
        for slug in (shared, own):  # untimed: the environment's one build, disk cache
            H.open_one(hub, who, slug, framework)
            stop_server(hub, slug)
        shared_cold, own_cold = [], []
        for i in range(args.repeat):
            shared_cold.append(H.open_one(hub, who, shared, framework).seconds)
            stop_server(hub, shared)
            own_cold.append(H.open_one(hub, who, own, framework).seconds)
            stop_server(hub, own)
            log(
                f"  {framework} #{i + 1}: cold in hub_viz's environment {shared_cold[-1]:.2f} s, "
                f"in its own {own_cold[-1]:.2f} s"
            )
    finally:
        H.unpublish(hub, shared)
        H.unpublish(hub, own)
    report.add(
        Row(
            f"{framework}: cold start, own environment (cached)",
            bare=stats(shared_cold),
            hub=stats(own_cold),
            note="bare: the same dashboard in hub_viz's environment",
        )
    )
    report.raw[f"{framework}/own_environment"] = {"shared_env": shared_cold, "own_env": own_cold}


def voila_preheated(hub, report: Report, args, students, tmp: Path) -> None:
    """Opens served from Voilà's preheated kernels, bare and through hub_viz."""
    pool = args.opens
    bare = []
    with bare_app("voila", tmp / "bare.log", warm_kernels=pool, wait=False) as app:
        pid = app.proc.pid
        for i in range(pool):
            wait_kernels(pid, pool + i)  # the pool refilled behind each GET, and idle
            bare.append(asyncio.run(single_get(app.url, "voila")))
    slug = "voila-warm"
    H.publish(hub, slug, "voila", warm_kernels=pool)
    hub_times, calls = [], []
    try:
        H.start(hub, slug)  # the author's open call starts it
        pid = H.launcher(hub, H.OWNER, slug).pid
        for i, who in enumerate(students[:pool]):
            wait_kernels(pid, pool + i)
            opened = H.open_one(hub, who, slug, "voila")
            hub_times.append(opened.seconds)
            calls.append(opened.open_call)
    finally:
        H.unpublish(hub, slug)
    report.add(
        Row(
            f"voila: open, {pool} preheated kernels",
            bare=stats(bare),
            hub=stats(hub_times),
            extra={"open call p50": fmt(stats(calls)["p50"])},
            note="bare: page GET",
        )
    )
    report.raw["voila/preheated"] = {"bare": bare, "hub_viz": hub_times, "open_call": calls}


async def single_get(url: str, framework: str) -> float:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s:
        t0 = time.perf_counter()
        async with s.get(url) as r:
            body = await r.text()
        if not rendered(framework, r.status, body):
            raise RuntimeError(f"GET {url}: {r.status} {body[:200]}")
        return time.perf_counter() - t0


def warm_pool(hub, report: Report, args, students, tmp: Path) -> None:
    """Per-viewer opens served from a warm pool, against a GET of the bare app."""
    framework, pool = args.per_viewer_framework, args.opens
    with bare_app(framework, tmp / "bare.log") as app:
        bare = asyncio.run(timed_gets(app.url, pool, framework))
    slug = f"{framework}-pool"
    H.publish(hub, slug, framework, mode="per-viewer", warm_pool=pool)
    hub_times, calls = [], []
    try:
        for i, who in enumerate(students[:pool]):
            H.wait_ready(hub, H.POOL_USER, count=pool + i)
            time.sleep(0.5)  # the pool's own round marks them ready
            opened = H.open_one(hub, who, slug, framework)
            if opened.status != "ready":
                log(f"  warm-pool open #{i + 1} was {opened.status}, not from the pool")
            hub_times.append(opened.seconds)
            calls.append(opened.open_call)
    finally:
        H.unpublish(hub, slug)
        H.remove_servers(hub, [H.POOL_USER])
    report.add(
        Row(
            f"{framework} per-viewer: open, warm pool of {pool}",
            bare=stats(bare),
            hub=stats(hub_times),
            extra={"open call p50": fmt(stats(calls)["p50"])},
            note="bare: page GET of the running app",
        )
    )
    report.raw[f"{framework}/warm_pool"] = {"bare": bare, "hub_viz": hub_times, "open_call": calls}


# -- command line -----------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, json_option: bool = True) -> None:
    group = parser.add_argument_group("open-latency suite")
    group.add_argument(
        "--repeat", type=int, default=None, help="cold starts per side (3; --quick: 1)"
    )
    group.add_argument(
        "--warm",
        type=int,
        default=None,
        help="timed GETs per running-page measurement (20; --quick: 5)",
    )
    group.add_argument(
        "--opens",
        type=int,
        default=None,
        help="preheated kernels / warm-pool size, and timed opens from them (5; --quick: 2)",
    )
    group.add_argument(
        "--no-own-environment",
        dest="own_environment",
        action="store_false",
        help="skip the cold starts in a dashboard's own (cached) environment",
    )
    if json_option:
        group.add_argument("--json", type=Path, default=RESULTS / "open_latency.json")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    quick = getattr(args, "quick", False)
    for name, normal, small in (("repeat", 3, 1), ("warm", 20, 5), ("opens", 5, 2)):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else normal)
    if min(args.repeat, args.warm, args.opens) < 1 or args.opens > 50:
        parser.error("--repeat, --warm and --opens must be ≥ 1 (--opens at most 50)")


def run(args: argparse.Namespace) -> int:
    """Run the suite, print its table and write its JSON file; 2 when a scenario was unsupported."""
    import tempfile

    settings = {
        k: getattr(args, k)
        for k in (
            "framework_list",
            "repeat",
            "warm",
            "opens",
            "per_viewer_framework",
            "own_environment",
            "preload_apps",
        )
    }
    report = Report("open-latency", settings, extra_columns=["target", "open call p50"])
    failed = 0
    with tempfile.TemporaryDirectory(prefix="hub-viz-bench-") as tmp:
        tmp_path = Path(tmp)
        with H.running_hub(
            tmp_path / "hub",
            # the hub's ceiling counts handed-out instances too: room for the refills
            warm_pool_ceiling=2 * args.opens,
            max_warm_kernels=max(args.opens, 10),
            environments=environments(tmp_path),
            preload_apps=args.preload_apps == "on",
        ) as hub:
            students = H.create_students(hub, "lat", args.opens + 1)
            for framework in args.framework_list:
                log(f"{framework} ...")
                cold_and_warm(hub, report, framework, args, students, tmp_path)
                if args.own_environment:
                    log(f"{framework} in its own environment ...")
                    own_environment(hub, report, framework, args, students)
            for name, scenario in (
                ("voila preheated", voila_preheated),
                ("per-viewer warm pool", warm_pool),
            ):
                if name.startswith("voila") and "voila" not in args.framework_list:
                    continue
                log(f"{name} ...")
                try:
                    scenario(hub, report, args, students, tmp_path)
                except (Unsupported, TimeoutError) as e:
                    # the rows measured so far are kept: a scenario that cannot run (or
                    # times out on a loaded machine) is reported, not fatal
                    failed += 1
                    report.add(Row(f"{name}: not measured", note=str(e)))
                    report.note(f"{name}: {e}")
    report.write(args.json)
    return 2 if failed else 0
