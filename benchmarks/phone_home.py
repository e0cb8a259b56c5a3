"""What phone-home pings cost: many viewers pinging the service beside a bare 204 handler.

One hub (with the hub_viz service) publishes ``--dashboards`` shared dashboards
(the Dash example, visible to all users) and opens ``--servers`` of them, so the
hub's activity API has servers to stamp. ``--viewers`` hub users, each with its
own API token and watching one random dashboard, then ``POST S api/dashboards/
<owner>/<slug>/ping`` every ``--ping-seconds`` (a browser's page pings every
30 s; the default compresses time tenfold, and the service's
``ping_min_interval`` is lowered in proportion, a third of the period as in
production) through the proxy, with a browser User-Agent, from one asyncio
client (tornado ``AsyncHTTPClient``, ``--max-clients`` requests at a time, a
new connection per request). Viewers arrive at random times over the first
``--warmup`` seconds (default 30, a page's real ping period: so each token's
first look-up at the hub, and its expiry from the service's 60-s cache, spread
out as they would in production rather than all within one compressed period);
that warm-up is reported apart, and the next ``--duration`` seconds, with every
viewer present, are the steady state.

Measured: ping latency (from the moment the client hands the request to its
HTTP client, so it includes waiting for one of ``--max-clients``), status
codes, CPU seconds of the service, the hub, the proxy, the client and of
everything else on the machine, the service's RSS, and the hub API calls the
pings caused, read from the hub's log: activity POSTs made by the service
(``activity_interval`` coalesces them to at most one per server per interval)
and token look-ups (``GET /hub/api/user``, cached by the service for 60 s). The
same load (one period of arrivals, then the same recorded rate and length),
with the same headers, first goes to a bare tornado
handler that answers 204 (no hub, no service, no proxy) in its own process: the
baseline. Before each load the benchmark waits (``--quiet-wait``) for the
machine to be idle, since other work on the same cores skews the latencies.

Usage: ``python -m benchmarks --suite phone-home [--viewers 1000] [--dashboards 20]
[--servers 20] [--ping-seconds 3] [--warmup 30] [--duration 60] [--json PATH]``. Everything
runs on 127.0.0.1 in a temporary folder; the hub, its servers and the baseline
process are stopped at the end, also on error. The common table (bare and
service latency side by side) is followed by notes; the detailed table and
all counts are in the JSON file's ``raw``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import math
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.common import RESULTS, Report, Row, kill_group, tail  # noqa: E402
from tests.conftest import BROWSER_UA, SERVICE, Hub, free_port, start_hub, stop_hub  # noqa: E402

OWNER = "ph-owner"
VIEWER = "ph-viewer-{:05d}"
SLUG = "ph-{:03d}"
ENTRY = "dash/app.py"
START_TIMEOUT = 180.0  # seconds for all servers to be ready
SETTINGS = (
    "viewers",
    "dashboards",
    "servers",
    "ping_seconds",
    "min_interval",
    "activity_interval",
    "warmup",
    "duration",
    "max_clients",
    "quiet_wait",
    "seed",
)
HUB_CALL_THREADS = 8  # parallel hub API calls while creating tokens
STAMP = re.compile(r"^\[\w (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) ")
ACTIVITY_LINE = re.compile(r"\] (\d{3}) POST /hub/api/users/[^/ ]+/activity \(([^@ ]*)@")
LOOKUP_LINE = re.compile(r"\] (\d{3}) GET /hub/api/user(?:\?[^ ]*)? \(([^@ ]*)@[^)]*\) ([\d.]+)ms")
BUCKET = 5.0  # seconds per row of the timelines in the JSON file

BARE_APP = """
import sys

from tornado import ioloop, web


class Ping(web.RequestHandler):
    def post(self, owner, slug):
        self.set_status(204)


app = web.Application([(r"/services/hub-viz/api/dashboards/([^/]+)/([^/]+)/ping", Ping)])
app.listen(int(sys.argv[1]), "127.0.0.1")
print("ready", flush=True)
ioloop.IOLoop.current().start()
"""


@dataclass
class Load:
    """What one run of the ping schedule saw."""

    target: str
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)
    latency_ms: dict[str, float] = field(default_factory=dict)
    client_queue_ms: dict[str, float] = field(default_factory=dict)  # part of latency_ms
    warmup: dict[str, Any] = field(default_factory=dict)  # requests, statuses, latency_ms
    seconds: float = 0.0  # first send to last answer
    started: float = 0.0  # time.time() of the first recorded ping's schedule
    timeline: list[dict[str, float]] = field(default_factory=list)  # by BUCKET s of schedule
    max_send_lag_ms: float = 0.0  # how late the client sent a ping after its schedule
    cpu_seconds: dict[str, float] = field(default_factory=dict)
    server_rss_mib: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return self.statuses.get("204", 0)


@dataclass
class Setup:
    """How long the preparations took (seconds) and what runs."""

    hub_start: float = 0.0
    users_create: float = 0.0
    tokens_create: float = 0.0
    opens: float = 0.0
    servers_running: int = 0


# -- the load ----------------------------------------------------------------


def percentiles(values: list[float]) -> dict[str, float]:
    """p50, p95, p99, max and mean of latencies in seconds, as milliseconds."""
    if not values:
        return {}
    cuts = (
        statistics.quantiles(values, n=100, method="inclusive") if len(values) > 1 else values * 99
    )
    return {
        "p50": round(cuts[49] * 1000, 2),
        "p95": round(cuts[94] * 1000, 2),
        "p99": round(cuts[98] * 1000, 2),
        "max": round(max(values) * 1000, 2),
        "mean": round(statistics.fmean(values) * 1000, 2),
    }


class Phase:
    """Answers collected in one phase of a run (warm-up or recorded)."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.queued: list[float] = []  # of each latency, the wait in the client's queue
        self.statuses: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()

    def add(self, total: float, response: HTTPResponse) -> None:
        self.latencies.append(total)
        self.queued.append(max(0.0, total - (response.request_time or 0.0)))
        self.statuses[str(response.code)] += 1
        if response.code == 599:
            self.errors[f"{type(response.error).__name__}: {response.error}"[:80]] += 1

    def summary(self) -> dict[str, Any]:
        return {
            "requests": len(self.latencies),
            "statuses": dict(sorted(self.statuses.items())),
            "latency_ms": percentiles(self.latencies),
        }


async def ping_load(
    target: str,
    pings: list[tuple[str, dict[str, str]]],
    *,
    period: float,
    warmup: float,
    duration: float,
    max_clients: int,
    seed: int,
    sampler: Sampler,
) -> Load:
    """Each (url, headers) is a viewer who arrives at a random time in the first
    ``warmup`` seconds and then pings every ``period`` s until the end.

    Open loop, like a page's timer: a slow answer does not delay the next ping.
    Pings due in the warm-up are summarised apart (``Load.warmup``); the
    ``duration`` seconds after it are recorded (latency, statuses, and the CPU
    and RSS that ``sampler`` reads from the first recorded ping to the last answer).
    """
    client = AsyncHTTPClient(force_instance=True, max_clients=max_clients)
    rng = random.Random(seed)
    early, recorded = Phase(), Phase()
    sent: list[tuple[float, float]] = []  # (schedule from measure_from, latency) of all pings
    lag = 0.0
    tasks: set[asyncio.Task] = set()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.5  # time to set up the viewers' timers
    measure_from = start + warmup

    async def one(url: str, headers: dict[str, str], due: float) -> None:
        request = HTTPRequest(
            url, method="POST", body=b"", headers=headers, connect_timeout=30, request_timeout=60
        )
        t0 = time.perf_counter()
        response = await client.fetch(request, raise_error=False)
        total = time.perf_counter() - t0
        (recorded if due >= measure_from else early).add(total, response)
        sent.append((due - measure_from, total))

    async def viewer(url: str, headers: dict[str, str], arrival: float) -> None:
        nonlocal lag
        due = start + arrival
        while due < measure_from + duration:
            await asyncio.sleep(max(0.0, due - loop.time()))
            if due >= measure_from:
                lag = max(lag, loop.time() - due)
            task = asyncio.ensure_future(one(url, headers, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            due += period

    loop.call_at(measure_from, sampler.begin)
    started = time.time() + (measure_from - loop.time())
    await asyncio.gather(*(viewer(u, h, rng.uniform(0, warmup)) for u, h in pings))
    while tasks:
        await asyncio.gather(*list(tasks))
    seconds = loop.time() - measure_from
    sampler.end()
    client.close()
    load = Load(
        target=target,
        requests=len(recorded.latencies),
        statuses=dict(sorted(recorded.statuses.items())),
        errors=dict((early.errors + recorded.errors).most_common(5)),
        latency_ms=percentiles(recorded.latencies),
        client_queue_ms=percentiles(recorded.queued),
        warmup=early.summary(),
        seconds=round(seconds, 2),
        started=started,
        timeline=timeline(sent),
        max_send_lag_ms=round(lag * 1000, 1),
    )
    sampler.report(load)
    return load


def timeline(sent: list[tuple[float, float]]) -> list[dict[str, float]]:
    """Pings and latency percentiles by BUCKET seconds of their schedule (< 0: warm-up)."""
    buckets: dict[float, list[float]] = {}
    for t, latency in sent:
        buckets.setdefault(math.floor(t / BUCKET) * BUCKET, []).append(latency)
    return [{"t": t, "n": len(v), **percentiles(v)} for t, v in sorted(buckets.items())]


class Sampler:
    """CPU seconds of named processes over a window, and the RSS of one of them."""

    def __init__(self, procs: dict[str, psutil.Process], rss_of: str) -> None:
        self.procs = procs
        self.rss_of = rss_of
        self.rss: list[int] = []
        self._cpu0: dict[str, float] = {}
        self._cpu: dict[str, float] = {}
        self._task: asyncio.Task | None = None

    @staticmethod
    def cpu(proc: psutil.Process) -> float:
        t = proc.cpu_times()
        return t.user + t.system

    async def _sample(self) -> None:
        while True:
            self.rss.append(self.procs[self.rss_of].memory_info().rss)
            await asyncio.sleep(1.0)

    @staticmethod
    def busy() -> float:
        """CPU seconds the whole machine has been busy (all cores)."""
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)

    def begin(self) -> None:
        self._cpu0 = {k: self.cpu(p) for k, p in self.procs.items()}
        self._cpu0["machine"] = self.busy()
        self._task = asyncio.ensure_future(self._sample())

    def end(self) -> None:
        self._cpu = {k: self.cpu(p) for k, p in self.procs.items()}
        self._cpu["machine"] = self.busy()
        if self._task:
            self._task.cancel()
        self.rss.append(self.procs[self.rss_of].memory_info().rss)

    def report(self, load: Load) -> None:
        used = {k: self._cpu[k] - self._cpu0[k] for k in self._cpu}
        # everything else on the machine: other benchmarks, test runs, the idle dashboards
        used["others"] = max(0.0, used.pop("machine") - sum(used.values()))
        load.cpu_seconds = {k: round(v, 2) for k, v in used.items()}
        mib = [r / 2**20 for r in self.rss]
        load.server_rss_mib = {
            "start": round(mib[0], 1),
            "peak": round(max(mib), 1),
            "end": round(mib[-1], 1),
        }


def wait_quiet(limit: float, cores: float = 0.3, window: float = 2.0) -> float:
    """Wait (at most ``limit`` s) for a ``window`` with under ``cores`` busy; busy cores seen.

    Other work on the machine (a test run, another benchmark) shares the cores
    with the one measured; the CPU it takes during the run is reported as "others".
    """
    deadline = time.monotonic() + limit
    while True:
        b0 = Sampler.busy()
        time.sleep(window)
        busy = (Sampler.busy() - b0) / window
        if busy < cores or time.monotonic() >= deadline:
            if busy >= cores:
                print(
                    f"  machine still busy ({busy:.2f} cores) after {limit:g} s; measuring anyway",
                    file=sys.stderr,
                    flush=True,
                )
            return round(busy, 2)
        print(f"  machine busy ({busy:.2f} cores); waiting ...", file=sys.stderr, flush=True)


# -- the baseline ------------------------------------------------------------


@contextlib.contextmanager
def bare_server(log: Path):
    """The 204 handler in its own process; yields (base URL, process)."""
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", BARE_APP, str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"bare tornado exited {proc.returncode}:\n{tail(log)}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"bare tornado not ready:\n{tail(log)}")
            with contextlib.suppress(requests.ConnectionError):
                requests.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}", proc
    finally:
        kill_group(proc)


# -- the hub -----------------------------------------------------------------


def publish_list(n: int) -> list[dict]:
    return [
        {
            "owner": OWNER,
            "slug": SLUG.format(i),
            "title": f"Phone-home {i}",
            "framework": "dash",
            "entry": ENTRY,
            "visibility": "all",
        }
        for i in range(1, n + 1)
    ]


def hub_session(hub: Hub) -> requests.Session:
    s = requests.Session()
    s.headers["Authorization"] = f"token {hub.token}"
    return s


def create_viewers(hub: Hub, n: int, setup: Setup) -> dict[str, str]:
    """``n`` hub users with one API token each: name -> token."""
    names = [VIEWER.format(i) for i in range(1, n + 1)]
    t0 = time.perf_counter()
    with hub_session(hub) as s:
        for i in range(0, n, 250):
            r = s.post(
                f"{hub.url}/hub/api/users", json={"usernames": names[i : i + 250]}, timeout=300
            )
            if r.status_code not in (201, 409):
                raise RuntimeError(f"create users: {r.status_code} {r.text[:300]}")
    setup.users_create = time.perf_counter() - t0

    def token(chunk: list[str]) -> list[tuple[str, str]]:
        out = []
        with hub_session(hub) as s:
            for name in chunk:
                r = s.post(
                    f"{hub.url}/hub/api/users/{name}/tokens",
                    json={"note": "phone-home bench"},
                    timeout=60,
                )
                if r.status_code != 201:
                    raise RuntimeError(f"token of {name}: {r.status_code} {r.text[:300]}")
                out.append((name, r.json()["token"]))
        return out

    t0 = time.perf_counter()
    chunks = [names[i::HUB_CALL_THREADS] for i in range(HUB_CALL_THREADS)]
    with ThreadPoolExecutor(HUB_CALL_THREADS) as pool:
        tokens = dict(pair for part in pool.map(token, chunks) for pair in part)
    setup.tokens_create = time.perf_counter() - t0
    return tokens


def open_servers(hub: Hub, slugs: list[str], setup: Setup) -> None:
    """Open each dashboard as its owner through the service and wait until all run."""
    token = hub.user_token(OWNER)
    headers = {"Authorization": f"token {token}", "User-Agent": BROWSER_UA}
    t0 = time.perf_counter()

    def open_one(slug: str) -> None:
        r = requests.post(
            f"{hub.url}{SERVICE}api/dashboards/{OWNER}/{slug}/open", headers=headers, timeout=120
        )
        if r.status_code != 200:
            raise RuntimeError(f"open {slug}: {r.status_code} {r.text[:300]}")

    # a few at a time: 20 Dash processes starting at once on 2 cores hit timeouts
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(open_one, slugs))
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        servers = hub.api("GET", f"/users/{OWNER}").json().get("servers", {})
        ready = [s for s in slugs if servers.get(s, {}).get("ready")]
        gone = [s for s in slugs if s not in servers]
        if gone:
            raise RuntimeError(f"{gone[0]} failed:\n{hub.spawn_message(OWNER, gone[0])[-2000:]}")
        if len(ready) == len(slugs):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(ready)}/{len(slugs)} servers ready in {START_TIMEOUT} s")
        time.sleep(0.5)
    setup.opens = time.perf_counter() - t0
    setup.servers_running = len(slugs)


def stop_servers(hub: Hub, slugs: list[str]) -> None:
    """Stop and remove the owner's servers (all at once), waiting at most a minute."""
    with hub_session(hub) as s:
        for slug in slugs:
            with contextlib.suppress(requests.RequestException):
                s.delete(
                    f"{hub.url}/hub/api/users/{OWNER}/servers/{slug}",
                    json={"remove": True},
                    timeout=60,
                )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException, ValueError):
            if not set(slugs) & set(hub.api("GET", f"/users/{OWNER}").json().get("servers", {})):
                return
        time.sleep(0.5)


def hub_processes(hub: Hub) -> dict[str, psutil.Process]:
    """The hub, the service and the proxy (children of the hub process)."""
    root = psutil.Process(hub.proc.pid)
    found = {"hub": root}
    for child in root.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            line = " ".join(child.cmdline())
            if "hub_viz.service" in line:
                found["service"] = child
            elif "configurable-http-proxy" in line:
                found["proxy"] = child
    missing = {"service", "proxy"} - set(found)
    if missing:
        raise RuntimeError(f"no {sorted(missing)} process under the hub (pid {root.pid})")
    return found


def hub_calls(log_text: str, started: float) -> dict[str, object]:
    """Activity POSTs and token look-ups in a slice of the hub's log.

    By status and caller, with the look-ups' times in the hub and per BUCKET
    seconds since ``started`` (negative: during the warm-up).
    """
    counts: dict[str, Counter[str]] = {
        "activity": Counter(),
        "activity_other": Counter(),
        "token_lookups": Counter(),
    }
    lookup_ms: list[float] = []
    by_time: dict[str, Counter[float]] = {"activity": Counter(), "token_lookups": Counter()}

    def bucket(line: str) -> float | None:
        m = STAMP.search(line)
        if not m:
            return None
        when = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        return math.floor((when - started) / BUCKET) * BUCKET

    for line in log_text.splitlines():
        m = ACTIVITY_LINE.search(line)
        if m:
            kind = "activity" if m.group(2) == "hub-viz" else "activity_other"
            counts[kind][m.group(1)] += 1
            if kind == "activity" and (b := bucket(line)) is not None:
                by_time["activity"][b] += 1
            continue
        m = LOOKUP_LINE.search(line)
        if m and m.group(2).startswith("ph-viewer-"):
            counts["token_lookups"][m.group(1)] += 1
            lookup_ms.append(float(m.group(3)) / 1000)
            if (b := bucket(line)) is not None:
                by_time["token_lookups"][b] += 1
    return {
        **{k: dict(v) for k, v in counts.items()},
        "token_lookup_ms_in_hub": percentiles(lookup_ms),
        "by_time": {k: {f"{t:g}": n for t, n in sorted(v.items())} for k, v in by_time.items()},
    }


def last_activity(hub: Hub) -> dict[str, str]:
    servers = hub.api("GET", f"/users/{OWNER}").json().get("servers", {})
    return {name: s.get("last_activity") or "" for name, s in servers.items()}


# -- report ------------------------------------------------------------------


def table(bare: Load, ping: Load, warmup: float, duration: float) -> str:
    """Baseline and service side by side, as a Markdown table."""
    head = (
        "target",
        "requests",
        "204",
        "other statuses",
        "p50 (ms)",
        "p95 (ms)",
        "max (ms)",
        "server CPU (s)",
        "server CPU / request (ms)",
        "server RSS peak (MiB)",
    )
    rows = [head, tuple("---" for _ in head)]

    def row(label: str, summary: dict[str, Any], cpu: float | None, rss: float | None) -> None:
        statuses, latency, n = summary["statuses"], summary["latency_ms"], summary["requests"]
        other = ", ".join(f"{k}: {v}" for k, v in statuses.items() if k != "204") or "-"
        rows.append(
            (
                label,
                str(n),
                str(statuses.get("204", 0)),
                other,
                *(f"{latency.get(k, 0):.1f}" for k in ("p50", "p95", "max")),
                "-" if cpu is None else f"{cpu:.1f}",
                "-" if cpu is None else f"{cpu * 1000 / max(n, 1):.2f}",
                "-" if rss is None else f"{rss:.0f}",
            )
        )

    def recorded(load: Load) -> dict[str, Any]:
        return {"requests": load.requests, "statuses": load.statuses, "latency_ms": load.latency_ms}

    row(
        f"bare tornado 204, {duration:g} s",
        recorded(bare),
        bare.cpu_seconds.get("bare"),
        bare.server_rss_mib.get("peak"),
    )
    row(f"hub_viz ping via proxy, first {warmup:g} s (viewers arriving)", ping.warmup, None, None)
    row(
        f"hub_viz ping via proxy, next {duration:g} s",
        recorded(ping),
        ping.cpu_seconds.get("service"),
        ping.server_rss_mib.get("peak"),
    )
    ratio = ["ratio (next / bare)", "", "", ""]
    for key in ("p50", "p95", "max"):
        base = bare.latency_ms.get(key) or float("nan")
        ratio.append(f"{ping.latency_ms.get(key, float('nan')) / base:.1f}×")
    base_cpu = bare.cpu_seconds.get("bare", 0.0) or float("nan")
    ratio += [f"{ping.cpu_seconds.get('service', 0.0) / base_cpu:.1f}×", "", ""]
    rows.append(tuple(ratio))
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def rows(report: Report, bare: Load, ping: Load, warmup: float, duration: float) -> None:
    """The common table: ping latency of the bare handler and of the service (seconds)."""

    def seconds(latency_ms: dict[str, float]) -> dict[str, float]:
        return {k: v / 1000 for k, v in latency_ms.items()}

    def extra(summary: dict[str, Any], cpu: float | None, rss: float | None) -> dict[str, Any]:
        n, statuses = summary["requests"], summary["statuses"]
        return {
            "requests": n,
            "not 204": ", ".join(f"{k}: {v}" for k, v in statuses.items() if k != "204") or "0",
            "max": f"{summary['latency_ms'].get('max', 0):.1f} ms",
            "server CPU": "-" if cpu is None else f"{cpu:.1f} s",
            "CPU / request": "-" if cpu is None else f"{cpu * 1000 / max(n, 1):.2f} ms",
            "server RSS peak": "-" if rss is None else f"{rss:.0f} MiB",
        }

    recorded = {"requests": ping.requests, "statuses": ping.statuses, "latency_ms": ping.latency_ms}
    report.add(
        Row(
            f"ping, {duration:g} s with every viewer present",
            bare=seconds(bare.latency_ms),
            hub=seconds(ping.latency_ms),
            extra=extra(recorded, ping.cpu_seconds.get("service"), ping.server_rss_mib.get("peak")),
            note=f"bare: {bare.requests} requests, CPU {bare.cpu_seconds.get('bare', 0):.1f} s",
        )
    )
    report.add(
        Row(
            f"ping, first {warmup:g} s (viewers arriving)",
            hub=seconds(ping.warmup.get("latency_ms", {})),
            extra=extra(ping.warmup, None, None),
        )
    )


def notes(
    args: argparse.Namespace,
    setup: Setup,
    bare: Load,
    ping: Load,
    calls: dict[str, Any],
    touched: int,
    span: float,
    bound: int,
) -> str:
    """The rest of the findings, as lines of text."""
    activity = sum(calls["activity"].values())
    by_status = ", ".join(f"{k}: {v}" for k, v in sorted(calls["activity"].items())) or "-"
    cpu, bare_cpu = ping.cpu_seconds, bare.cpu_seconds
    lookup_ms = calls["token_lookup_ms_in_hub"]
    lookups = calls["by_time"]["token_lookups"]
    steady = [r for r in ping.timeline if r["t"] >= 0]
    worst = sorted(steady, key=lambda r: r.get("p95", 0), reverse=True)[:3]
    early_lookups = sum(n for t, n in lookups.items() if float(t) < 0)

    def key(row: dict[str, float]) -> str:
        return f"{row['t']:g}"

    lines = [
        f"{args.viewers} viewers (hub users, a token each) on {args.dashboards} dashboards, "
        f"{setup.servers_running} servers running; each viewer pings its dashboard every "
        f"{args.ping_seconds:g} s (a page: every 30 s) = {args.viewers / args.ping_seconds:.0f} "
        f"pings/s offered; viewers arrive over {args.warmup:g} s (reported apart), then "
        f"{args.duration:g} s recorded; "
        f"ping_min_interval {args.min_interval:g} s, activity_interval {args.activity_interval:g} s",
        f"activity POSTs from the service to the hub over all {span:.0f} s of pinging: {activity} "
        f"(status {by_status}); bound {bound} = dashboards pinged × "
        f"(⌊{span:.0f} / {args.activity_interval:g}⌋ + 1); servers whose last_activity moved: "
        f"{touched}/{setup.servers_running}; activity POSTs from anyone else: "
        f"{sum(calls['activity_other'].values())}",
        f"token look-ups by the service (GET /hub/api/user as a viewer; cached 60 s): "
        f"{sum(calls['token_lookups'].values())} ({early_lookups} in the warm-up), answered by "
        f"the hub in p50 "
        f"{lookup_ms.get('p50', 0):.0f} ms, max {lookup_ms.get('max', 0):.0f} ms",
        "slowest 5-s windows of the recorded part (p95; token look-ups in the window): "
        + ", ".join(
            f"{r['t']:g}–{r['t'] + BUCKET:g} s: {r['p95']:.0f} ms ({lookups.get(key(r), 0)})"
            for r in worst
        ),
        f"CPU seconds over the recorded {ping.seconds:.1f} s (2 cores = {2 * ping.seconds:.0f} "
        f"CPU-s): service {cpu.get('service', 0):.1f}, hub {cpu.get('hub', 0):.1f}, proxy "
        f"{cpu.get('proxy', 0):.1f}, client {cpu.get('client', 0):.1f}; baseline run "
        f"({bare.seconds:.1f} s): bare server {bare_cpu.get('bare', 0):.1f}, client "
        f"{bare_cpu.get('client', 0):.1f}; everything else on the machine (other work, idle dashboards): "
        f"{cpu.get('others', 0):.1f} (hub_viz run), {bare_cpu.get('others', 0):.1f} (baseline run)",
        f"of the latency, waiting in the client's queue (over {args.max_clients} in flight): "
        f"p50 {ping.client_queue_ms.get('p50', 0):.1f} ms, p95 "
        f"{ping.client_queue_ms.get('p95', 0):.1f} ms (baseline p95 "
        f"{bare.client_queue_ms.get('p95', 0):.1f} ms)",
        f"client's worst lateness in sending a ping: baseline {bare.max_send_lag_ms:.0f} ms, "
        f"hub_viz {ping.max_send_lag_ms:.0f} ms",
        f"setup: hub start {setup.hub_start:.1f} s, opening {setup.servers_running} Dash servers "
        f"{setup.opens:.1f} s, creating {args.viewers} users {setup.users_create:.1f} s, "
        f"their tokens {setup.tokens_create:.1f} s",
    ]
    return "\n".join(f"- {line}" for line in lines)


# -- main --------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser, json_option: bool = True) -> None:
    group = parser.add_argument_group("phone-home suite")
    group.add_argument(
        "--viewers", type=int, default=None, help="hub users pinging (1000; --quick: 100)"
    )
    group.add_argument(
        "--dashboards", type=int, default=None, help="dashboards published (20; --quick: 3)"
    )
    group.add_argument(
        "--servers",
        type=int,
        default=None,
        help="how many of them run (default: all); pings for the others make the "
        "hub's activity API answer 404",
    )
    group.add_argument(
        "--ping-seconds",
        type=float,
        default=3.0,
        help="period of each viewer's pings (%(default)s; a page pings every 30 s)",
    )
    group.add_argument(
        "--min-interval",
        type=float,
        default=None,
        help="the service's ping_min_interval (default: a third of --ping-seconds)",
    )
    group.add_argument(
        "--activity-interval",
        type=float,
        default=60.0,
        help="the service's activity_interval (%(default)s)",
    )
    group.add_argument(
        "--duration",
        type=float,
        default=None,
        help="seconds of recorded pinging (60; --suite all: 30; --quick: 10)",
    )
    group.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="viewers arrive over these first seconds, reported apart (default: 30, or "
        "--ping-seconds if longer; --quick: 6)",
    )
    group.add_argument(
        "--max-clients",
        type=int,
        default=200,
        help="concurrent requests of the client (%(default)s)",
    )
    group.add_argument(
        "--quiet-wait",
        type=float,
        default=None,
        help="seconds to wait for an idle machine before each load (120; --suite all: 30; "
        "--quick: 5)",
    )
    group.add_argument("--seed", type=int, default=1, help="random seed (%(default)s)")
    if json_option:
        group.add_argument("--json", type=Path, default=RESULTS / "phone_home.json")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    quick = getattr(args, "quick", False)
    within_all = getattr(args, "suite", "") == "all"  # keeps the whole run bounded
    for name, normal, small, in_all in (
        ("viewers", 1000, 100, 1000),
        ("dashboards", 20, 3, 20),
        ("duration", 60.0, 10.0, 30.0),
        ("quiet_wait", 120.0, 5.0, 30.0),
    ):
        if getattr(args, name) is None:
            setattr(args, name, small if quick else in_all if within_all else normal)
    if args.warmup is None and quick:
        args.warmup = max(6.0, args.ping_seconds)
    if args.servers is None:
        args.servers = args.dashboards
    if args.warmup is None:
        args.warmup = max(30.0, args.ping_seconds)
    if args.min_interval is None:
        args.min_interval = args.ping_seconds / 3
    if (
        min(args.viewers, args.dashboards, args.max_clients) < 1
        or not 0 <= args.servers <= args.dashboards
    ):
        parser.error(
            "--viewers, --dashboards, --max-clients must be ≥ 1; 0 ≤ --servers ≤ --dashboards"
        )
    if min(args.ping_seconds, args.duration, args.activity_interval) <= 0:
        parser.error("--ping-seconds, --duration and --activity-interval must be > 0")
    if min(args.min_interval, args.warmup, args.quiet_wait) < 0:
        parser.error("--min-interval, --warmup and --quiet-wait must be ≥ 0")


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table and write the JSON file."""
    started = dt.datetime.now(dt.timezone.utc)
    slugs = [SLUG.format(i) for i in range(1, args.dashboards + 1)]
    rng = random.Random(args.seed)
    watching = [rng.choice(slugs) for _ in range(args.viewers)]  # each viewer's dashboard
    setup = Setup()
    quiet: dict[str, float] = {}  # busy cores just before each load
    client = psutil.Process()
    with tempfile.TemporaryDirectory(prefix="hub-viz-phone-") as tmp:
        tmp_path = Path(tmp)
        # the same load, first against the bare handler (it needs no warm-up but the client's)
        print(
            f"baseline: bare tornado 204, {args.viewers} viewers for "
            f"{min(args.warmup, args.ping_seconds):g} + {args.duration:g} s ...",
            file=sys.stderr,
            flush=True,
        )
        with bare_server(tmp_path / "bare.log") as (base, proc):
            fake = {"Authorization": "token " + "0" * 32, "User-Agent": BROWSER_UA}
            pings = [
                (f"{base}{SERVICE}api/dashboards/{OWNER}/{slug}/ping", fake) for slug in watching
            ]
            quiet["baseline"] = wait_quiet(args.quiet_wait)
            bare = asyncio.run(
                measured(
                    "bare tornado 204",
                    pings,
                    {"bare": psutil.Process(proc.pid), "client": client},
                    "bare",
                    args,
                    min(args.warmup, args.ping_seconds),
                )
            )  # nothing to warm but the client

        t0 = time.perf_counter()
        hub = start_hub(
            tmp_path,
            ready_timeout=START_TIMEOUT,
            publish=publish_list(args.dashboards),
            configure_kwargs={
                "extra_service_config": {
                    "ping_seconds": args.ping_seconds,
                    "ping_min_interval": args.min_interval,
                    "activity_interval": args.activity_interval,
                    "thumbnails": False,  # screenshots on first open would load the run
                }
            },
        )
        setup.hub_start = time.perf_counter() - t0
        try:
            print(f"opening {args.servers} Dash servers ...", file=sys.stderr, flush=True)
            hub.ensure_user(OWNER)
            open_servers(hub, slugs[: args.servers], setup)
            print(f"creating {args.viewers} users and tokens ...", file=sys.stderr, flush=True)
            tokens = create_viewers(hub, args.viewers, setup)
            pings = [
                (
                    f"{hub.url}{SERVICE}api/dashboards/{OWNER}/{slug}/ping",
                    {"Authorization": f"token {token}", "User-Agent": BROWSER_UA},
                )
                for slug, token in zip(watching, tokens.values(), strict=True)
            ]
            quiet["hub_viz"] = wait_quiet(args.quiet_wait)
            before = last_activity(hub)
            offset = hub.log.stat().st_size
            print(
                f"pinging for {args.warmup:g} + {args.duration:g} s ...",
                file=sys.stderr,
                flush=True,
            )
            t0 = time.perf_counter()
            ping = asyncio.run(
                measured(
                    "hub_viz ping (via proxy)",
                    pings,
                    {**hub_processes(hub), "client": client},
                    "service",
                    args,
                    args.warmup,
                )
            )
            time.sleep(2.5)  # the coalescer flushes once a second
            span = time.perf_counter() - t0
            with open(hub.log, "rb") as f:
                f.seek(offset)
                calls = hub_calls(f.read().decode(errors="replace"), ping.started)
            after = last_activity(hub)
            touched = sum(1 for name, when in after.items() if when and when != before.get(name))
        except BaseException:
            print(f"hub log tail:\n{tail(hub.log)}", file=sys.stderr)
            raise
        finally:
            stop_servers(hub, slugs[: args.servers])
            stop_hub(hub)

    bound = len(set(watching)) * (math.floor(span / args.activity_interval) + 1)
    report = Report(
        "phone-home",
        {k: getattr(args, k) for k in SETTINGS},
        extra_columns=[
            "requests",
            "not 204",
            "max",
            "server CPU",
            "CPU / request",
            "server RSS peak",
        ],
    )
    report.started = started
    rows(report, bare, ping, args.warmup, args.duration)
    report.notes += notes(args, setup, bare, ping, calls, touched, span, bound).split("\n")
    report.raw = {
        "setup_seconds": asdict(setup),
        "baseline": asdict(bare),
        "service": asdict(ping),
        "hub_calls": calls,
        "busy_cores_before": quiet,
        "pinging_seconds": round(span, 1),
        "activity_bound": bound,
        "servers_with_new_activity": touched,
        "detail_table": table(bare, ping, args.warmup, args.duration),
    }
    report.notes = [n.removeprefix("- ") for n in report.notes]
    report.write(args.json)
    return 0


async def measured(
    target: str,
    pings: list[tuple[str, dict[str, str]]],
    procs: dict[str, psutil.Process],
    rss_of: str,
    args: argparse.Namespace,
    warmup: float,
) -> Load:
    """One run of the schedule, CPU and RSS sampled over its recorded part."""
    return await ping_load(
        target,
        pings,
        period=args.ping_seconds,
        warmup=warmup,
        duration=args.duration,
        max_clients=args.max_clients,
        seed=args.seed,
        sampler=Sampler(procs, rss_of),
    )
