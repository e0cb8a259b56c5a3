"""How long a viewer waits for a dashboard: hub_viz vs the bare framework.

For each framework this measures

* **bare cold**: the example app started by hand from :func:`build_command`
  (no hub, no launcher) until its page answers 200;
* **hub_viz cold**: ``POST /hub/api/users/<u>/servers/<name>`` until the page
  answers 200 through the proxy for a logged-in viewer;
* **warm p50**: the median time of one page GET against a running app,
  directly and through the hub (skipped for Voilà: each GET runs a kernel).

Each framework first gets one untimed round of both sides (disk cache, bytecode);
the last timed cold start of each side is then reused for the warm GETs, each on a
new connection.

Usage: ``python -m benchmarks [--frameworks voila,dash] [--repeat 3] [--warm 20]
[--json PATH]``. Everything runs on 127.0.0.1; the hub is started once in a
temporary folder and stopped at the end, also on error.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hub_viz.frameworks import BUILTIN_FRAMEWORKS, build_command  # noqa: E402
from tests.conftest import EXAMPLES as EXAMPLES_DIR  # noqa: E402
from tests.conftest import Hub, free_port, start_hub, stop_hub  # noqa: E402
from tests.examples import EXAMPLES  # noqa: E402

FRAMEWORKS = ("voila", "dash", "bokeh", "panel", "streamlit")
USER = "bench"
START_TIMEOUT = 120.0  # seconds one cold start may take
POLL = 0.05  # seconds between readiness polls
NO_WARM = {"voila"}  # a Voilà page GET starts a kernel: not a cheap request


@dataclass
class Result:
    """Raw timings of one framework (seconds)."""

    framework: str
    bare_cold: list[float] = field(default_factory=list)
    hub_cold: list[float] = field(default_factory=list)
    bare_warm: list[float] = field(default_factory=list)
    hub_warm: list[float] = field(default_factory=list)


def example(framework: str) -> tuple[str, dict, str]:
    """Server name, spec and expected text of the framework's example."""
    name = f"{framework}-example"
    spec, text = EXAMPLES[name]
    return name, spec, text


def check_page(r: requests.Response, framework: str, text: str) -> bool:
    """Whether ``r`` is the fully served page (Voilà must show the kernel's output)."""
    return r.status_code == 200 and (framework != "voila" or text in r.text)


@contextlib.contextmanager
def bare_app(framework: str, log: Path) -> Iterator[tuple[float, str]]:
    """Start the example with no hub; yield (cold-start seconds, page URL).

    The process group is terminated on exit, whatever happened.
    """
    _, spec, text = example(framework)
    entry = EXAMPLES_DIR / spec["entry"]
    port = free_port()
    cmd = build_command(
        BUILTIN_FRAMEWORKS[framework], entry=entry.name, port=port, prefix="/bare/"
    )
    url = f"http://127.0.0.1:{port}/bare/{cmd.page_path}"
    with open(log, "ab") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd.argv,
            cwd=entry.parent,
            env={**os.environ, **cmd.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"bare {framework} exited {proc.returncode}:\n{tail(log)}")
            if time.perf_counter() - t0 > START_TIMEOUT:
                raise TimeoutError(f"bare {framework} not ready in {START_TIMEOUT} s:\n{tail(log)}")
            try:
                r = requests.get(url, timeout=60)
                if check_page(r, framework, text):
                    break
            except requests.ConnectionError:
                pass
            time.sleep(POLL)
        yield time.perf_counter() - t0, r.url
    finally:
        kill_group(proc)


def tail(log: Path, chars: int = 3000) -> str:
    """The end of a log file."""
    return log.read_text(errors="replace")[-chars:]


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


@contextlib.contextmanager
def hub_server(hub: Hub, framework: str) -> Iterator[tuple[float, str]]:
    """Open the example as a named server; yield (cold-open seconds, page URL).

    The server is stopped and removed on exit, whatever happened.
    """
    name, spec, text = example(framework)
    session = hub.login(USER)
    prefix = f"/user/{USER}/{name}/"
    entry = Path(spec["entry"]).name
    page = build_command(BUILTIN_FRAMEWORKS[framework], entry=entry, port=0, prefix=prefix).page_path
    t0 = time.perf_counter()
    r = hub.start(USER, name, spec)
    try:
        if r.status_code not in (201, 202):
            raise RuntimeError(f"start {name}: {r.status_code} {r.text}")
        while True:
            server = hub.api("GET", f"/users/{USER}").json().get("servers", {}).get(name)
            if server is None:
                raise RuntimeError(f"{name} failed:\n{hub.spawn_message(USER, name)[-2000:]}")
            if server["ready"]:
                break
            if time.perf_counter() - t0 > START_TIMEOUT:
                raise TimeoutError(f"{name} not ready in {START_TIMEOUT} s")
            time.sleep(POLL)
        r = session.get(f"{hub.url}{prefix}{page}", timeout=60)
        if not check_page(r, framework, text):
            raise RuntimeError(f"{name} page: {r.status_code} {r.url}\n{r.text[:500]}")
        yield time.perf_counter() - t0, r.url
    finally:
        hub.stop(USER, name)


def fetch_times(session: requests.Session, url: str, n: int) -> list[float]:
    """Seconds taken by each of ``n`` GETs of ``url`` (after one untimed GET).

    Each GET uses a new connection: on a reused connection Tornado apps (Streamlit's
    static page) add ~40 ms of Nagle/delayed-ACK stall that says nothing about the app.
    """
    close = {"Connection": "close"}
    session.get(url, headers=close, timeout=30).raise_for_status()
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        session.get(url, headers=close, timeout=30).raise_for_status()
        times.append(time.perf_counter() - t0)
    return times


def measure(hub: Hub, framework: str, repeat: int, warm: int, log: Path) -> Result:
    """All timings of one framework; the last cold start of each side is reused warm."""
    res = Result(framework)
    # One untimed round: fill the disk cache and compile bytecode for both sides.
    with bare_app(framework, log):
        pass
    with hub_server(hub, framework):
        pass
    for i in range(repeat):
        last = i == repeat - 1 and framework not in NO_WARM
        with bare_app(framework, log) as (seconds, url):
            res.bare_cold.append(seconds)
            if last:
                with requests.Session() as direct:
                    res.bare_warm = fetch_times(direct, url, warm)
        with hub_server(hub, framework) as (seconds, url):
            res.hub_cold.append(seconds)
            if last:
                res.hub_warm = fetch_times(hub.login(USER), url, warm)
        print(f"  {framework} #{i + 1}: bare {res.bare_cold[-1]:.2f} s, "
              f"hub_viz {res.hub_cold[-1]:.2f} s", file=sys.stderr, flush=True)
    return res


def summary(values: list[float], scale: float = 1.0, digits: int = 2, p95: bool = True) -> str:
    """Median (and p95 when asked and there are at least 5 values) as text, or '-'."""
    if not values:
        return "-"
    text = f"{statistics.median(values) * scale:.{digits}f}"
    if p95 and len(values) >= 5:
        high = statistics.quantiles(values, n=20, method="inclusive")[18]
        text += f" (p95 {high * scale:.{digits}f})"
    return text


def table(results: list[Result]) -> str:
    """The results as a Markdown table."""
    head = ("framework", "bare cold (s)", "hub_viz cold (s)", "ratio",
            "bare warm p50 (ms)", "hub_viz warm p50 (ms)", "overhead (ms)")
    rows = [head, tuple("---" for _ in head)]
    for r in results:
        ratio = statistics.median(r.hub_cold) / statistics.median(r.bare_cold)
        overhead = "-"
        if r.bare_warm and r.hub_warm:
            diff = statistics.median(r.hub_warm) - statistics.median(r.bare_warm)
            overhead = f"{diff * 1000:.1f}"
        rows.append((r.framework, summary(r.bare_cold), summary(r.hub_cold), f"{ratio:.2f}",
                     summary(r.bare_warm, 1000, 1, p95=False), summary(r.hub_warm, 1000, 1, p95=False),
                     overhead))
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def machine() -> dict[str, object]:
    """What the numbers were measured on."""
    import jupyterhub

    return {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "jupyterhub": jupyterhub.__version__,
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser, json_option: bool = True) -> None:
    group = parser.add_argument_group("open-latency suite")
    group.add_argument("--frameworks", default=",".join(FRAMEWORKS),
                       help="comma-separated subset of %(default)s")
    group.add_argument("--repeat", type=int, default=3, help="cold starts per side")
    group.add_argument("--warm", type=int, default=20, help="timed GETs per warm measurement")
    if json_option:
        group.add_argument("--json", type=Path, default=REPO / "benchmarks/results/open_latency.json")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    unknown = set(frameworks) - set(FRAMEWORKS)
    if unknown or args.repeat < 1 or args.warm < 1:
        parser.error(f"unknown frameworks {sorted(unknown)}" if unknown else "counts must be ≥ 1")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table and write the JSON file."""
    parser = build_parser()
    args = parser.parse_args(argv)
    check(parser, args)
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark with parsed options, print the table and write the JSON file."""
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    results = []
    with tempfile.TemporaryDirectory(prefix="hub-viz-bench-") as tmp:
        hub = start_hub(Path(tmp))
        try:
            for framework in frameworks:
                print(f"{framework} ...", file=sys.stderr, flush=True)
                results.append(measure(hub, framework, args.repeat, args.warm,
                                       Path(tmp) / "bare.log"))
        except BaseException:
            print(f"hub log tail:\n{tail(hub.log)}", file=sys.stderr)
            raise
        finally:
            stop_hub(hub)

    print(table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    report = {"machine": machine(), "repeat": args.repeat, "warm_gets": args.warm,
              "results": [asdict(r) for r in results]}
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.json}", file=sys.stderr)
    return 0
