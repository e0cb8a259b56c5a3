"""What every suite shares: statistics, the table and JSON layout, machine facts, processes.

Every suite prints one Markdown table whose rows hold the same measure for the
bare framework and for hub_viz, with their ratio, and writes
``benchmarks/results/<suite>.json``::

    {"suite": ..., "machine": {...}, "started": ISO time, "seconds": run time,
     "settings": {...}, "rows": [Row...], "table": "...", "notes": [...], "raw": {...}}
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import psutil
import requests
import yarl

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS  # noqa: E402
from hub_viz.frameworks import build_command  # noqa: E402
from tests.conftest import EXAMPLES as EXAMPLES_DIR  # noqa: E402
from tests.conftest import free_port  # noqa: E402
from tests.examples import EXAMPLES, MORE_EXAMPLES  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
FRAMEWORKS = ("voila", "dash", "bokeh", "panel", "streamlit")  # measured by default
# Measured when named in --frameworks (their extras installed).
MORE_FRAMEWORKS = ("gradio", "shiny", "marimo", "solara", "nicegui")
KNOWN_FRAMEWORKS = FRAMEWORKS + MORE_FRAMEWORKS
PACKAGES = (
    "jupyterhub",
    "tornado",
    "voila",
    "dash",
    "bokeh",
    "panel",
    "streamlit",
    "waitress",
    "psutil",
    "aiohttp",
)
START_TIMEOUT = 180.0  # seconds one cold start may take
STARTUP_MARK = "_hub_viz/status"  # only the launcher's start-up page links its status


# -- statistics ----------------------------------------------------------------


def stats(values: Iterable[float]) -> dict[str, float]:
    """n, p50, p95, max and mean of ``values`` (same unit); {} when empty."""
    vals = sorted(values)
    if not vals:
        return {}
    if len(vals) == 1:
        p50 = p95 = vals[0]
    else:
        cuts = statistics.quantiles(vals, n=20, method="inclusive")
        p50, p95 = statistics.median(vals), cuts[18]
    return {"n": len(vals), "p50": p50, "p95": p95, "max": vals[-1], "mean": statistics.fmean(vals)}


@dataclass
class Row:
    """One line of a suite's table: the same measure, bare and through hub_viz.

    ``unit`` is "s" (times, shown in s or ms), "MiB" or "s-cpu"; ``extra`` holds
    the suite's own columns (already formatted or plain numbers).
    """

    scenario: str
    unit: str = "s"
    bare: dict[str, float] = field(default_factory=dict)
    hub: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        """hub_viz p50 / bare p50 (None without both)."""
        b, h = self.bare.get("p50"), self.hub.get("p50")
        if b is None or h is None or b <= 0:
            return None
        return h / b

    @property
    def overhead(self) -> float | None:
        """hub_viz p50 - bare p50 (None without both)."""
        b, h = self.bare.get("p50"), self.hub.get("p50")
        return None if b is None or h is None else h - b


def fmt(value: float | None, unit: str = "s") -> str:
    """A value for the table: times in ms below 1 s, else s; '-' when missing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if unit == "s":
        if abs(value) < 1:
            return f"{value * 1000:.1f} ms"
        return f"{value:.2f} s"
    if unit == "MiB":
        return f"{value:.2f} MiB" if abs(value) < 10 else f"{value:.1f} MiB"
    return f"{value:.2f} {unit}"


def table(rows: list[Row], extra: Iterable[str] = ()) -> str:
    """The rows as one Markdown table: bare and hub_viz p50/p95, ratio, overhead, extras."""
    extra = list(extra)
    head = [
        "scenario",
        "bare p50",
        "bare p95",
        "hub_viz p50",
        "hub_viz p95",
        "ratio",
        "overhead p50",
        *extra,
    ]
    lines = [head, ["---"] * len(head)]
    for r in rows:
        ratio = r.ratio
        lines.append(
            [
                r.scenario,
                fmt(r.bare.get("p50"), r.unit),
                fmt(r.bare.get("p95"), r.unit),
                fmt(r.hub.get("p50"), r.unit),
                fmt(r.hub.get("p95"), r.unit),
                "-" if ratio is None else f"{ratio:.2f}×",
                "-"
                if r.overhead is None
                else ("+" if r.overhead >= 0 else "") + fmt(r.overhead, r.unit),
                *(cell(r.extra.get(k)) for k in extra),
            ]
        )
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


# -- the JSON report ---------------------------------------------------------------


def versions() -> dict[str, str]:
    """Installed versions of the measured packages and of configurable-http-proxy."""
    found = {}
    for name in PACKAGES:
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found[name] = importlib.metadata.version(name)
    chp = REPO / "node_modules" / "configurable-http-proxy" / "package.json"
    with contextlib.suppress(OSError, ValueError):
        found["configurable-http-proxy"] = json.loads(chp.read_text())["version"]
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        found["hub_viz"] = importlib.metadata.version("hub_viz")
    return found


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpu_count": os.cpu_count(),
        "ram_mib": round(psutil.virtual_memory().total / 2**20),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "versions": versions(),
        # the version keys earlier results used
        "jupyterhub": versions().get("jupyterhub", ""),
    }


class Report:
    """Collects a suite's rows, notes and raw data; prints and writes them at the end."""

    def __init__(self, suite: str, settings: dict[str, Any], extra_columns: Iterable[str] = ()):
        self.suite = suite
        self.settings = settings
        self.extra_columns = list(extra_columns)
        self.rows: list[Row] = []
        self.notes: list[str] = []
        self.raw: dict[str, Any] = {}
        self.started = dt.datetime.now(dt.timezone.utc)
        self.machine_before = machine()

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def note(self, text: str) -> None:
        self.notes.append(text)
        log(f"  note: {text}")

    def text(self) -> str:
        out = table(self.rows, self.extra_columns)
        if self.notes:
            out += "\n\n" + "\n".join(f"- {n}" for n in self.notes)
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "machine": self.machine_before,
            "started": self.started.isoformat(timespec="seconds"),
            "seconds": round((dt.datetime.now(dt.timezone.utc) - self.started).total_seconds(), 1),
            "settings": self.settings,
            "rows": [{**asdict(r), "ratio": r.ratio, "overhead": r.overhead} for r in self.rows],
            "table": table(self.rows, self.extra_columns),
            "notes": self.notes,
            "raw": self.raw,
        }

    def write(self, path: Path) -> None:
        print(self.text(), flush=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.as_json(), indent=2, default=str) + "\n")
        log(f"wrote {path}")


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# -- processes -----------------------------------------------------------------


def tail(path: Path, chars: int = 3000) -> str:
    """The end of a log file."""
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def kill_group(proc: subprocess.Popen) -> None:
    """Terminate the process group of ``proc``; kill it if it lingers."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (those still alive)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def memory(procs: Iterable[psutil.Process]) -> dict[str, float]:
    """Summed RSS and (when readable) USS and PSS of ``procs``, in MiB. PSS shares each
    page among the processes mapping it: what forked launchers cost together."""
    rss = uss = pss = 0
    has_uss = True
    for p in procs:
        with contextlib.suppress(psutil.Error):
            if has_uss:
                try:
                    info = p.memory_full_info()
                    rss += info.rss
                    uss += info.uss
                    pss += getattr(info, "pss", 0)
                    continue
                except (psutil.AccessDenied, AttributeError):
                    has_uss = False
            rss += p.memory_info().rss
    out = {"rss": rss / 2**20}
    if has_uss:
        out["uss"] = uss / 2**20
        out["pss"] = pss / 2**20
    return out


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def cpu_by_pid(procs: Iterable[psutil.Process]) -> dict[int, float]:
    """CPU seconds of each live process in ``procs`` (gone ones left out)."""
    out = {}
    for p in procs:
        with contextlib.suppress(psutil.Error):
            out[p.pid] = cpu_seconds(p)
    return out


def kernels(pid: int) -> int:
    """ipykernel processes under ``pid`` (Voilà's kernels)."""
    count = 0
    for p in tree(pid)[1:]:
        with contextlib.suppress(psutil.Error):
            if "ipykernel" in " ".join(p.cmdline()):
                count += 1
    return count


def wait_kernels(pid: int, count: int, timeout: float = START_TIMEOUT) -> float:
    """Wait until ``pid`` has at least ``count`` kernels and its tree is idle; seconds taken."""
    t0 = time.monotonic()
    while kernels(pid) < count:
        if time.monotonic() - t0 > timeout:
            raise TimeoutError(f"{kernels(pid)}/{count} kernels after {timeout:g} s")
        time.sleep(0.25)
    # idle kernels still poll a little: allow for it
    wait_idle(pid, cores=0.1 + 0.003 * count, timeout=max(10.0, timeout - (time.monotonic() - t0)))
    return time.monotonic() - t0


def wait_idle(pid: int, cores: float = 0.1, window: float = 0.5, timeout: float = 60.0) -> None:
    """Wait until the process tree of ``pid`` uses under ``cores`` CPU over ``window`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs = tree(pid)
        before = {}
        for p in procs:
            with contextlib.suppress(psutil.Error):
                before[p.pid] = cpu_seconds(p)
        time.sleep(window)
        used = 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                used += cpu_seconds(p) - before.get(p.pid, 0.0)
        if used / window < cores:
            return


# -- the bare framework -------------------------------------------------------------


def example(framework: str) -> tuple[dict, str]:
    """Spec and the text only the running app shows, of the framework's example."""
    name = f"{framework}-example"
    return EXAMPLES[name] if name in EXAMPLES else MORE_EXAMPLES[name][:2]


def rendered(framework: str, status: int, body: str) -> bool:
    """Is this the dashboard itself (not the launcher's start-up page)?

    Voilà renders on the server, so its page must hold the notebook's output;
    the other frameworks draw in the browser: their page answering 200 counts.
    """
    if status != 200 or STARTUP_MARK in body:
        return False
    return framework != "voila" or example("voila")[1] in body


# What a browser asks for, after the page, before the dashboard shows anything: a Dash
# page is an empty shell until its layout arrives (the first call of it imports what the
# layout's JSON needs). Both sides fetch these, so neither skips work the other does
# (hub_viz's readiness probe asks Dash for its layout already).
DRAW_REQUESTS = {"dash": ("_dash-layout", "_dash-dependencies")}


async def drawn(session: aiohttp.ClientSession, page_url: str, framework: str) -> bool:
    """After a rendered page: the requests the browser makes to draw it all answer 200."""
    for path in DRAW_REQUESTS.get(framework, ()):
        async with session.get(str(yarl.URL(page_url).join(yarl.URL(path)))) as r:
            await r.read()
            if r.status != 200:
                return False
    return True


def drawn_sync(page_url: str, framework: str) -> bool:
    """:func:`drawn` with requests."""
    for path in DRAW_REQUESTS.get(framework, ()):
        if requests.get(urljoin(page_url, path), timeout=60).status_code != 200:
            return False
    return True


@dataclass
class BareApp:
    """An example app started by hand from ``build_command`` (no hub, no launcher)."""

    framework: str
    proc: subprocess.Popen
    url: str  # its page
    base: str  # http://127.0.0.1:port/bare/
    cold: float = 0.0  # seconds from exec to its first rendered page


@contextlib.contextmanager
def bare_app(
    framework: str,
    log_path: Path,
    *,
    warm_kernels: int = 0,
    wait: bool = True,
    ready_only: bool = False,
    prefix: str = "/bare/",
) -> Iterator[BareApp]:
    """Start the framework's example; yield it once its page renders (``wait``) or at once.

    ``ready_only`` waits for the framework's readiness path instead of the page
    (a Voilà page GET would start a kernel). The process group is terminated on
    exit, whatever happened.
    """
    spec, _ = example(framework)
    entry = EXAMPLES_DIR / spec["entry"]
    port = free_port()
    cmd = build_command(
        BUILTIN_FRAMEWORKS[framework],
        entry=entry.name,
        port=port,
        prefix=prefix,
        warm_kernels=warm_kernels,
    )
    # bare Voilà is Voilà's own command: its own fixed pool, without hub_viz's runner
    # (forwarded headers, the pool keeper)
    argv = ["voila" if a == "hub_viz.runners.voila" else a for a in cmd.argv]
    base = f"http://127.0.0.1:{port}{prefix}"
    with open(log_path, "ab") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            argv,
            cwd=entry.parent,
            env={**os.environ, **cmd.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    app = BareApp(framework, proc, base + cmd.page_path, base)
    try:
        if wait:
            poll_page(app, log_path, base + cmd.ready_path if ready_only else "")
            app.cold = time.perf_counter() - t0
        yield app
    finally:
        kill_group(proc)


def poll_page(
    app: BareApp, log_path: Path, ready_url: str = "", timeout: float = START_TIMEOUT
) -> requests.Response:
    """GET the bare app's page until it renders (or ``ready_url`` until it answers below 500)."""
    t0 = time.perf_counter()
    while True:
        if app.proc.poll() is not None:
            raise RuntimeError(
                f"bare {app.framework} exited {app.proc.returncode}:\n{tail(log_path)}"
            )
        if time.perf_counter() - t0 > timeout:
            raise TimeoutError(
                f"bare {app.framework} not ready in {timeout:g} s:\n{tail(log_path)}"
            )
        try:
            r = requests.get(ready_url or app.url, timeout=60)
            if (
                (r.status_code < 500)
                if ready_url
                else rendered(app.framework, r.status_code, r.text)
                and drawn_sync(r.url, app.framework)
            ):
                return r
        except requests.ConnectionError:
            pass
        time.sleep(0.05)


class Unsupported(RuntimeError):
    """The service under test lacks a feature a scenario needs."""
