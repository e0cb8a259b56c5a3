"""The hub_viz side of the benchmarks: a hub, its users, publishing, and a viewer's open flow.

A viewer opens a dashboard the way the open page does: ``POST S api/dashboards/
<owner>/<slug>/open`` (with the viewer's API token), following ``progress_url``
(server-sent events) when the server is not ready yet, then ``GET`` of the
launcher's enter URL with its one-time grant, redirected to the page, until the
page is the rendered dashboard (:func:`benchmarks.common.rendered`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import requests

from benchmarks.common import (
    START_TIMEOUT,
    Unsupported,
    drawn,
    example,
    rendered,
    tail,
    tree,
)
from hub_viz import config as hub_config
from tests.conftest import BROWSER_UA, Hub, start_hub, stop_hub

OWNER = "bench-author"
POOL_USER = "hub-viz-pool"
THREADS = 8  # parallel hub API calls while creating tokens
ISOLATED = True  # the hub's layout (python -m benchmarks --layout)


def bench_hub(
    state: Path,
    *,
    warm_pool_ceiling: int = 0,
    max_warm_kernels: int = 0,
    environments: dict[str, Any] | None = None,
    fork_launchers: bool = True,
    preload_apps: bool = True,
    max_starting: int | None = None,
) -> Hub:
    """A hub with the service (no thumbnails: screenshots would load the machine).

    Warm-start and environment settings are passed only when ``configure()`` knows them;
    ``fork_launchers`` False starts each launcher as a new Python (``launcher_fork_server``),
    ``preload_apps`` False each app (``preload_apps``);
    ``max_starting`` replaces the service's (``configure()``: twice the cores).
    """
    known = inspect.signature(hub_config.configure).parameters
    service: dict[str, Any] = {"thumbnails": False}
    if max_starting is not None:
        service["max_starting"] = max_starting
    kwargs: dict[str, Any] = {"extra_service_config": service}
    if environments and "environments" in known:
        kwargs["environments"] = environments
    if warm_pool_ceiling and "warm_pool_ceiling" in known:
        kwargs["warm_pool_ceiling"] = warm_pool_ceiling
    if max_warm_kernels and "max_warm_kernels" in known:
        kwargs["max_warm_kernels"] = max_warm_kernels
    hub = start_hub(
        state,
        ready_timeout=START_TIMEOUT,
        configure_kwargs=kwargs,
        isolated=ISOLATED,
        extra_config=(
            ("" if fork_launchers else "c.DashboardLocalSpawner.launcher_fork_server = False\n")
            + ("" if preload_apps else "c.DashboardLocalSpawner.preload_apps = False\n")
        ),
    )
    hub.ensure_user(OWNER)
    return hub


@contextlib.contextmanager
def running_hub(state: Path, **kwargs: Any):
    """:func:`bench_hub`, stopped on exit; the log's tail is shown on error."""
    hub = bench_hub(state, **kwargs)
    try:
        yield hub
    except BaseException:
        print(f"hub log tail:\n{tail(hub.log)}", flush=True)
        raise
    finally:
        stop_hub(hub)


# -- users and dashboards ----------------------------------------------------------


@dataclass
class Student:
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"token {self.token}", "User-Agent": BROWSER_UA}


def api(hub: Hub) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"token {hub.token}"
    return s


def create_students(hub: Hub, prefix: str, n: int) -> list[Student]:
    """``n`` hub users, created in one API call, with an API token each."""
    names = [f"{prefix}-{i:03d}" for i in range(1, n + 1)]
    with api(hub) as s:
        r = s.post(f"{hub.url}/hub/api/users", json={"usernames": names}, timeout=300)
        if r.status_code not in (201, 409):
            raise RuntimeError(f"create users: {r.status_code} {r.text[:300]}")

    def token(name: str) -> Student:
        r = requests.post(
            f"{hub.url}/hub/api/users/{name}/tokens",
            json={"note": "benchmark"},
            headers={"Authorization": f"token {hub.token}"},
            timeout=60,
        )
        if r.status_code != 201:
            raise RuntimeError(f"token of {name}: {r.status_code} {r.text[:300]}")
        return Student(name, r.json()["token"])

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(token, names))


def owner(hub: Hub) -> Student:
    return Student(OWNER, hub.user_token(OWNER))


WARM_FIELDS = ("warm_kernels", "warm_pool")


def publish(hub: Hub, slug: str, framework: str, *, mode: str = "shared", **fields: Any) -> dict:
    """Publish the framework's example as ``slug`` (visible to every hub user).

    A warm field the service refuses as unknown (or turns off) raises :class:`Unsupported`.
    """
    spec, _ = example(framework)
    body = {
        "slug": slug,
        "title": slug,
        "framework": framework,
        "entry": spec["entry"],
        "mode": mode,
        "visibility": "all",
        **fields,
    }
    r = requests.post(
        f"{hub.service_url}api/dashboards", json=body, headers=owner(hub).headers, timeout=60
    )
    if r.status_code in (200, 201):
        return r.json()
    for name in WARM_FIELDS:
        if name in fields and name in r.text and r.status_code == 400:
            raise Unsupported(
                f"the service does not accept {name} yet ({r.status_code}: {error_text(r)})"
            )
    raise RuntimeError(f"publish {slug}: {r.status_code} {r.text[:300]}")


def error_text(r: requests.Response) -> str:
    with contextlib.suppress(ValueError):
        return str(r.json().get("message", r.text))[:200]
    return r.text[:200]


def unpublish(hub: Hub, slug: str) -> None:
    """Delete the dashboard and remove every server it has (as its owner and the tester)."""
    with contextlib.suppress(requests.RequestException):
        requests.delete(
            f"{hub.service_url}api/dashboards/{OWNER}/{slug}",
            headers=owner(hub).headers,
            timeout=120,
        )


def remove_servers(hub: Hub, users: list[str], match: str = "") -> None:
    """Stop and remove the named servers of ``users`` whose name contains ``match``."""
    with api(hub) as s:
        todo = []
        for user in users:
            with contextlib.suppress(requests.RequestException, ValueError):
                servers = (
                    s.get(f"{hub.url}/hub/api/users/{user}", timeout=60).json().get("servers", {})
                )
                todo += [(user, n) for n in servers if n and match in n]
        for user, name in todo:
            with contextlib.suppress(requests.RequestException):
                s.delete(
                    f"{hub.url}/hub/api/users/{user}/servers/{name}",
                    json={"remove": True},
                    timeout=60,
                )
        deadline = time.monotonic() + 120
        while todo and time.monotonic() < deadline:
            left = []
            for user, name in todo:
                with contextlib.suppress(requests.RequestException, ValueError):
                    if name in s.get(f"{hub.url}/hub/api/users/{user}", timeout=60).json().get(
                        "servers", {}
                    ):
                        left.append((user, name))
            todo = left
            time.sleep(0.5)


def servers(hub: Hub, user: str) -> dict[str, dict]:
    with api(hub) as s:
        return s.get(f"{hub.url}/hub/api/users/{user}", timeout=60).json().get("servers", {})


def wait_ready(
    hub: Hub,
    user: str,
    names: list[str] | None = None,
    count: int = 0,
    timeout: float = START_TIMEOUT,
) -> list[str]:
    """Wait until ``names`` (or any ``count`` servers) of ``user`` are ready."""
    deadline = time.monotonic() + timeout
    while True:
        found = servers(hub, user)
        ready = [n for n, m in found.items() if m.get("ready") and (names is None or n in names)]
        if (names is not None and len(ready) == len(names)) or (
            names is None and len(ready) >= count
        ):
            return ready
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(ready)} of {user}'s servers ready after {timeout:g} s")
        time.sleep(0.5)


def start(hub: Hub, slug: str, timeout: float = START_TIMEOUT) -> None:
    """The author's open call for ``slug``, then wait until its server is ready (no page GET)."""
    r = requests.post(
        f"{hub.service_url}api/dashboards/{OWNER}/{slug}/open",
        headers=owner(hub).headers,
        timeout=120,
    )
    if r.status_code != 200:
        raise RuntimeError(f"open {slug}: {r.status_code} {r.text[:300]}")
    wait_ready(hub, OWNER, [slug], timeout=timeout)


def launcher(hub: Hub, user: str, server: str) -> psutil.Process:
    """The hub-viz-launch process serving ``user/server``."""
    for p in tree(hub.proc.pid):
        with contextlib.suppress(psutil.Error):
            if not is_launcher(" ".join(p.cmdline())):
                continue
            env = p.environ()
            if env.get("JUPYTERHUB_USER") == user and env.get("JUPYTERHUB_SERVER_NAME") == server:
                return p
    raise RuntimeError(f"no launcher process for {user}/{server}")


def is_launcher(line: str) -> bool:
    return ("hub-viz-launch" in line or "hub_viz.launcher" in line) and "forkserver" not in line


def instance_processes(hub: Hub) -> dict[str, list[psutil.Process]]:
    """The hub's dashboard instances by part: ``launchers`` and their ``apps`` (whole trees)."""
    parts: dict[str, list[psutil.Process]] = {"launchers": [], "apps": []}
    for p in tree(hub.proc.pid):
        with contextlib.suppress(psutil.Error):
            if is_launcher(" ".join(p.cmdline())):
                parts["launchers"].append(p)
                parts["apps"] += p.children(recursive=True)
    return parts


def hub_starts(hub: Hub, offset: int, user: str, server: str) -> int:
    """Start requests the hub answered for ``user/server`` in its log after ``offset``."""
    with open(hub.log, "rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    needle = f"POST /hub/api/users/{user}/servers/{server} "
    return sum(
        1 for line in text.splitlines() if needle in line and ("] 201 " in line or "] 202 " in line)
    )


# -- a viewer's open flow ---------------------------------------------------------


@dataclass
class Opened:
    """One viewer's open, from the service call to the rendered page (seconds)."""

    ok: bool = False
    seconds: float = 0.0
    open_call: float = 0.0  # the service's open answer
    ready: float = 0.0  # until a URL with a grant was known (progress followed)
    status: str = ""  # the open call's status: ready, pending, queued
    page_url: str = ""
    error: str = ""
    startup_pages: int = 0  # launcher start-up pages seen before the dashboard
    events: int = 0  # progress events read
    html: str = field(default="", repr=False)


def viewer_session(limit: int = 4, force_close: bool = False) -> aiohttp.ClientSession:
    """A browser-like session: its own cookies (also for 127.0.0.1), sent back as they
    came, like a browser does. aiohttp would quote a value holding ``=`` (the base64
    padding of a signed cookie, so about two opens in three), which the launcher does
    not read as its cookie: the open then ended on the hub's login page."""
    return aiohttp.ClientSession(
        cookie_jar=aiohttp.CookieJar(unsafe=True, quote_cookie=False),
        connector=aiohttp.TCPConnector(limit=limit, force_close=force_close),
        timeout=aiohttp.ClientTimeout(total=START_TIMEOUT + 60),
        headers={"User-Agent": BROWSER_UA},
    )


async def open_dashboard(
    session: aiohttp.ClientSession,
    hub: Hub,
    who: Student,
    slug: str,
    framework: str,
    *,
    keep_html: bool = False,
) -> Opened:
    """Open ``OWNER/slug`` as ``who`` until the page renders; never raises."""
    out = Opened()
    t0 = time.perf_counter()
    stage = "open call"
    try:
        url = await _grant_url(session, hub, who, slug, out, t0)
        out.ready = time.perf_counter() - t0
        stage = "page"
        url = hub.public(url)
        deadline = t0 + START_TIMEOUT
        while True:
            async with session.get(url) as r:
                body = await r.text()
                out.page_url = str(r.url)
                if rendered(framework, r.status, body) and await drawn(
                    session, out.page_url, framework
                ):
                    break
                if r.status >= 400 and r.status != 503:
                    raise RuntimeError(f"page {r.status}: {page_text(body)}")
            out.startup_pages += 1
            url = out.page_url  # the launcher's start-up page reloads itself
            if time.perf_counter() > deadline:
                raise TimeoutError("no rendered page in time")
            await asyncio.sleep(0.2)
        out.seconds = time.perf_counter() - t0
        out.ok = True
        if keep_html:
            out.html = body
    except Exception as e:  # every failure is a result here
        out.seconds = time.perf_counter() - t0
        if stage == "open call" and out.open_call:
            stage = "progress"
        out.error = f"{stage}: {type(e).__name__}: {e}"[:300]
    return out


def page_text(body: str, chars: int = 160) -> str:
    """The readable end of an error page (tags, scripts and styles dropped)."""
    body = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", body)
    text = " ".join(re.sub(r"<[^>]+>", " ", body).split())
    return text[-chars:]


async def _grant_url(
    session: aiohttp.ClientSession, hub: Hub, who: Student, slug: str, out: Opened, t0: float
) -> str:
    base = f"{hub.service_url}api/dashboards/{OWNER}/{slug}"
    async with session.post(f"{base}/open", headers=who.headers) as r:
        text = await r.text()
        out.open_call = time.perf_counter() - t0
        if r.status != 200:
            raise RuntimeError(f"open {r.status}: {text[:200]}")
        body = json.loads(text)
    out.status = body.get("status", "")
    if body.get("url"):
        return body["url"]
    progress = body["progress_url"]
    progress = hub.public(progress)
    async with session.get(progress, headers=who.headers) as r:
        if r.status != 200:
            raise RuntimeError(f"progress {r.status}: {(await r.text())[:200]}")
        async for raw in r.content:
            line = raw.decode(errors="replace").strip()
            if not line.startswith("data:"):
                continue
            event = json.loads(line[5:])
            out.events += 1
            if event.get("failed"):
                raise RuntimeError(f"failed: {event.get('message', '')[:200]}")
            if event.get("url"):
                return event["url"]
    raise RuntimeError("the progress stream ended without a URL")


async def warm_tokens(hub: Hub, students: list[Student], slug: str) -> None:
    """One cheap service call per student: like a viewer already on the gallery page,
    the service has looked their token up before they click."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as s:
        sem = asyncio.Semaphore(10)

        async def one(who: Student) -> None:
            async with (
                sem,
                s.get(f"{hub.service_url}api/dashboards/{OWNER}/{slug}", headers=who.headers) as r,
            ):
                await r.read()

        await asyncio.gather(*(one(w) for w in students))


async def open_all(hub: Hub, students: list[Student], slug: str, framework: str) -> list[Opened]:
    """Every student opens ``slug`` at the same instant; their results in order."""
    sessions = [viewer_session() for _ in students]
    try:
        return list(
            await asyncio.gather(
                *(
                    open_dashboard(s, hub, who, slug, framework)
                    for s, who in zip(sessions, students, strict=True)
                )
            )
        )
    finally:
        await asyncio.gather(*(s.close() for s in sessions))


def open_one(hub: Hub, who: Student, slug: str, framework: str) -> Opened:
    """One viewer's open (see :func:`open_dashboard`); raises when it failed."""
    [out] = asyncio.run(open_all(hub, [who], slug, framework))
    if not out.ok:
        raise RuntimeError(f"open {slug} as {who.name}: {out.error}\n{tail(hub.log, 1500)}")
    return out
