"""What the launcher itself costs an instance: its RSS and what it adds to a page.

Per framework, in one run and without a hub (so the proxy in front of the
launcher is not counted):

* **page GET, running**: ``--launcher-gets`` GETs of the example's page
  (after one untimed) on one kept-alive connection, as a browser does: the
  bare app started by hand from ``build_command`` vs the same app behind the
  launcher (``python -m hub_viz.launcher``), entered with a grant signed by a
  key made for the run (target: at most 1.5 ms p50 over bare). Both run at
  once and are asked in turn, so a busy machine slows both alike. Plain
  Voilà is timed on a static file of its page only (each page GET starts a
  kernel);
* **static file**: one of the page's scripts, same way;
* **launcher CPU/GET**: the launcher's own CPU time per GET (user + system,
  over the run), which a busy machine changes far less than the times;
* **launcher RSS**: the launcher process alone (not its app), after serving
  those requests (target: at most 30 MiB), beside the bare app's tree.

``--launcher-path DIR`` runs the launcher (and its app command) from another
checkout's ``hub_viz``: a before/after comparison, bare beside each.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import psutil
import yarl
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.common import (
    RESULTS,
    Report,
    Row,
    bare_app,
    example,
    free_port,
    kill_group,
    log,
    memory,
    rendered,
    stats,
    tail,
    tree,
    wait_idle,
)
from tests.conftest import EXAMPLES as EXAMPLES_DIR

TARGET_OVERHEAD = 0.0015  # seconds the launcher may add to a page GET (p50)
TARGET_LAUNCHER_MIB = 30.0
OWNER = "bench"
SCRIPT = re.compile(r'<script[^>]+src="([^"]+\.js[^"]*)"')


def key_pair() -> tuple[str, str]:
    """A private and public PEM made for this run."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


def framework_record(framework: str, pythonpath: str) -> str:
    """``HUB_VIZ_FRAMEWORK`` as the spawner of the checkout at ``pythonpath`` sets it."""
    code = (
        "import sys\n"
        "try:\n"
        "    from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS\n"
        "except ImportError:  # a checkout from before the records had a module of their own\n"
        "    from hub_viz.frameworks import BUILTIN_FRAMEWORKS\n"
        "from hub_viz.spawner import framework_json\n"
        "print(framework_json(BUILTIN_FRAMEWORKS[sys.argv[1]]))\n"
    )
    return subprocess.check_output(
        [sys.executable, "-c", code, framework],
        env={**os.environ, "PYTHONPATH": pythonpath},
        cwd=tempfile.gettempdir(),  # not this checkout: ``-c`` puts the cwd first on the path
        text=True,
    ).strip()


@contextlib.contextmanager
def launcher_process(
    framework: str, public_pem: str, api_token: str, log_path: Path, pythonpath: str
) -> Iterator[tuple[subprocess.Popen, str]]:
    """The launcher serving the framework's example; yields it and its prefix URL once ready."""
    spec, _ = example(framework)
    entry = EXAMPLES_DIR / spec["entry"]
    port = free_port()
    prefix = f"/user/{OWNER}/{framework}/"
    env = {
        **os.environ,
        "PYTHONPATH": pythonpath + os.pathsep + os.environ.get("PYTHONPATH", ""),
        "HUB_VIZ_FRAMEWORK": framework_record(framework, pythonpath),
        "JUPYTERHUB_SERVICE_PREFIX": prefix,
        "JUPYTERHUB_USER": OWNER,
        "JUPYTERHUB_SERVER_NAME": framework,
        "JUPYTERHUB_API_TOKEN": api_token,
        "HUB_VIZ_SERVICE_KEY": public_pem,
    }
    argv = [sys.executable, "-m", "hub_viz.launcher", "--entry", entry.name]
    argv += ["--cwd", str(entry.parent), "--port", str(port)]
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(  # not in this checkout: ``-m`` puts the cwd first on the path
            argv,
            cwd=entry.parent,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}{prefix}"
    try:
        asyncio.run(wait_ready(proc, base, api_token, log_path))
        yield proc, base
    finally:
        kill_group(proc)


async def wait_ready(proc: subprocess.Popen, base: str, token: str, log_path: Path) -> None:
    """Until the launcher says its app is ready (its probe, asked with the server's token)."""
    deadline = time.monotonic() + 180
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"the launcher exited {proc.returncode}:\n{tail(log_path)}")
            with contextlib.suppress(aiohttp.ClientError):
                async with s.get(base + "api", headers={"Authorization": f"token {token}"}) as r:
                    if r.status == 200 and (await r.json()).get("app") == "ready":
                        return
            await asyncio.sleep(0.05)
    raise TimeoutError(f"the launcher's app was not ready:\n{tail(log_path)}")


class Side:
    """One side's viewer session: its page and one of the page's scripts."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session
        self.page = ""
        self.script = ""
        self.times: dict[str, list[float]] = {"page": [], "script": []}

    @classmethod
    async def enter(cls, session: aiohttp.ClientSession, url: str, enter_url: str = "") -> Side:
        side = cls(session)
        if enter_url:
            # the cookie is sent by hand: aiohttp's jar drops some signed values
            async with session.get(enter_url, allow_redirects=False) as r:
                if r.status != 302:
                    raise RuntimeError(f"enter: {r.status} {await r.text()}")
                side.cookie = r.headers["Set-Cookie"].split(";")[0]
        async with session.get(url, headers=side.headers) as r:
            html = await r.text()
            side.page = str(r.url)  # after the framework's own redirect, if any
        found = SCRIPT.search(html)
        if found:
            side.script = str(r.url.join(yarl.URL(found.group(1))))
        return side

    cookie = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": self.cookie} if self.cookie else {}

    async def get(self, what: str, framework: str, keep: bool) -> None:
        url = self.page if what == "page" else self.script
        t0 = time.perf_counter()
        async with self.session.get(url, headers=self.headers) as r:
            body = await r.read()
        elapsed = time.perf_counter() - t0
        if r.status != 200 or (what == "page" and not rendered(framework, 200, body.decode())):
            raise RuntimeError(f"GET {url}: {r.status} {body[:200]!r}")
        if keep:
            self.times[what].append(elapsed)


async def timed_gets(
    bare_url: str, hub_url: str, enter_url: str, n: int, framework: str, launcher_pid: int
) -> tuple[Side, Side, dict[str, float]]:
    """``n`` GETs of the page and of one of its scripts on each side (after one untimed),
    bare and through the launcher in turn, each side on one kept-alive connection; and the
    launcher's CPU seconds per GET of each (a measure a busy machine hardly changes;
    read over the whole run: the clock ticks are too coarse for one GET)."""
    launcher = psutil.Process(launcher_pid)

    def cpu() -> float:
        times = launcher.cpu_times()
        return times.user + times.system

    cpu_per_get: dict[str, float] = {}
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as bare_session,
        aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as hub_session,
    ):
        bare = await Side.enter(bare_session, bare_url)
        hub = await Side.enter(hub_session, hub_url, enter_url)
        # plain Voilà starts a kernel per page: its script only
        for what in ("page", "script") if framework != "voila" else ("script",):
            if not (bare.script and hub.script) and what == "script":
                continue
            await hub.get(what, framework, keep=False)
            start = cpu()  # the launcher is idle while the bare app is asked
            for i in range(n + 1):
                for side in (bare, hub) if i % 2 else (hub, bare):
                    await side.get(what, framework, keep=i > 0)
            cpu_per_get[what] = (cpu() - start) / (n + 1)
        return bare, hub, cpu_per_get


def measure(report: Report, framework: str, args: argparse.Namespace, tmp: Path) -> None:
    private, public = key_pair()
    token = secrets.token_urlsafe(24)
    launcher_log = tmp / "launcher.log"
    with (
        bare_app(framework, tmp / "bare.log", ready_only=True) as app,
        launcher_process(framework, public, token, launcher_log, args.launcher_path) as (
            proc,
            base,
        ),
    ):
        from hub_viz.signing import Signer

        grant = Signer(private).grant(OWNER, framework, "viewer")
        enter = f"{base}_hub_viz/enter?grant_token={grant}"
        bare, hub, cpu_per_get = asyncio.run(
            timed_gets(app.url, base, enter, args.launcher_gets, framework, proc.pid)
        )
        wait_idle(app.proc.pid, 0.1, 0.5, 30.0)
        bare_mem = memory(tree(app.proc.pid))
        wait_idle(proc.pid, 0.1, 0.5, 30.0)
        own = memory([psutil.Process(proc.pid)])
        instance = memory(tree(proc.pid))
    bare_pages, bare_scripts = bare.times["page"], bare.times["script"]
    hub_pages, hub_scripts = hub.times["page"], hub.times["script"]
    for what, kind, bare, hub in (
        ("page GET, running", "page", bare_pages, hub_pages),
        ("static file", "script", bare_scripts, hub_scripts),
    ):
        if not bare or not hub:
            continue
        row = report.add(Row(f"{framework}: {what}", bare=stats(bare), hub=stats(hub)))
        row.extra["launcher CPU/GET"] = f"{cpu_per_get[kind] * 1000:.2f} ms"
        met = row.overhead is not None and row.overhead <= TARGET_OVERHEAD
        row.extra["target"] = ("met" if met else "missed") + f" (≤{TARGET_OVERHEAD * 1000:g} ms)"
    row = report.add(
        Row(
            f"{framework}: instance RSS",
            unit="MiB",
            bare={"p50": bare_mem["rss"]},
            hub={"p50": instance["rss"]},
        )
    )
    row.extra["launcher RSS"] = f"{own['rss']:.1f} MiB"
    row.extra["launcher USS"] = f"{own['uss']:.1f} MiB" if "uss" in own else "-"
    row.extra["target"] = ("met" if own["rss"] <= TARGET_LAUNCHER_MIB else "missed") + (
        f" (≤{TARGET_LAUNCHER_MIB:.0f} MiB)"
    )
    report.raw[framework] = {
        "bare": {"pages": bare_pages, "scripts": bare_scripts, "memory": bare_mem},
        "hub_viz": {"pages": hub_pages, "scripts": hub_scripts, "memory": instance},
        "launcher_cpu_per_get": cpu_per_get,
        "launcher": own,
    }
    log(f"  {framework}: launcher RSS {own['rss']:.1f} MiB")


# -- command line -----------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, json_option: bool = True) -> None:
    group = parser.add_argument_group("launcher suite")
    group.add_argument(
        "--launcher-path",
        default=str(Path(__file__).resolve().parents[1]),
        help="folder whose hub_viz the launcher runs from (default: this checkout)",
    )
    group.add_argument(
        "--launcher-gets",
        type=int,
        default=None,
        help="timed GETs per measure (200; --quick: 20)",
    )
    if json_option:
        group.add_argument("--json", type=Path, default=RESULTS / "launcher.json")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.launcher_gets is None:
        args.launcher_gets = 20 if getattr(args, "quick", False) else 200
    if not 1 <= args.launcher_gets <= 10_000:
        parser.error("--launcher-gets must be 1 to 10000")
    if not (Path(args.launcher_path) / "hub_viz").is_dir():
        parser.error(f"--launcher-path {args.launcher_path} has no hub_viz package")


def run(args: argparse.Namespace) -> int:
    """Measure, print the table and write the JSON file."""
    report = Report(
        "launcher",
        {
            "frameworks": args.framework_list,
            "gets": args.launcher_gets,
            "launcher": args.launcher_path,
        },
        extra_columns=["launcher CPU/GET", "launcher RSS", "launcher USS", "target"],
    )
    with tempfile.TemporaryDirectory(prefix="hub-viz-launcher-") as tmp:
        for framework in args.framework_list:
            log(f"{framework}: bare, then behind the launcher ...")
            try:
                measure(report, framework, args, Path(tmp))
            except (RuntimeError, TimeoutError) as e:
                report.note(f"{framework}: not measured: {str(e)[:300]}")
    report.notes.append(
        "times: GETs on one kept-alive connection, no hub proxy in front; RSS in MiB "
        "once idle (the instance is the launcher's tree, the bare one the app's)"
    )
    report.write(args.json)
    return 0
