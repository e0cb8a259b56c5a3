"""``hub-viz demo``: run the demo hub from a clone, and stop it with everything it started.

The hub runs in a session of its own, so a terminal's Ctrl-C reaches the demo only,
which asks the hub once to stop (SIGINT); the hub then stops its services, the proxy
and the dashboards (the demo's config sets ``cleanup_servers``). SIGTERM and SIGHUP
stop the demo the same way.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

PROXY = "configurable-http-proxy"
PROXY_PACKAGE = "configurable-http-proxy@^5"
DEMO_HOST = "hub.localhost"  # browsers resolve every *.localhost name to this machine


def find_project(start: Path) -> Path | None:
    """The hub_viz checkout holding ``jupyterhub_config.py`` and ``examples/``."""
    for folder in (start, *start.parents):
        if (folder / "jupyterhub_config.py").is_file() and (folder / "examples").is_dir():
            return folder
    here = Path(__file__).resolve().parent.parent
    if (here / "jupyterhub_config.py").is_file():
        return here
    return None


def ensure_proxy(project: Path) -> str:
    """Directory holding configurable-http-proxy, installing it with npm if missing."""
    local_bin = project / "node_modules" / ".bin"
    if (local_bin / PROXY).exists():
        return str(local_bin)
    found = shutil.which(PROXY)
    if found:
        return str(Path(found).parent)
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(
            "The hub needs configurable-http-proxy, which is installed with npm; "
            "install Node.js and npm first (Debian: apt-get install nodejs npm)."
        )
    print(f"Installing {PROXY_PACKAGE} into {project / 'node_modules'} …", flush=True)
    subprocess.run(
        [
            npm,
            "install",
            "--no-save",
            "--no-package-lock",
            "--no-audit",
            "--no-fund",
            PROXY_PACKAGE,
        ],
        cwd=project,
        check=True,
    )
    return str(local_bin)


def run_demo(ip: str, port: int, path_based: bool = False) -> int:
    """Run the demo hub until it ends or the demo is asked to stop; the exit status."""
    project = find_project(Path.cwd())
    if project is None:
        raise SystemExit(
            "hub-viz demo runs from a clone of hub_viz (jupyterhub_config.py not found)."
        )
    proxy_dir = ensure_proxy(project)
    env = dict(os.environ)
    env["PATH"] = proxy_dir + os.pathsep + env.get("PATH", "")
    env["HUB_VIZ_DEMO_IP"] = ip
    env["HUB_VIZ_DEMO_PORT"] = str(port)
    host = "" if path_based else DEMO_HOST
    env["HUB_VIZ_DEMO_HOST"] = host
    password = env.setdefault("HUB_VIZ_DEMO_PASSWORD", "hub-viz-demo")
    admin_password = env.setdefault(
        "HUB_VIZ_DEMO_ADMIN_PASSWORD", "hub-viz-demo-admin-password-2026"
    )
    print(
        "\n"
        f"  hub_viz demo: http://{host or ip}:{port}/\n"
        f"  Log in with any user name (e.g. alice) and the password: {password}\n"
        f"  (the hub's admin: admin, with the password {admin_password})\n"
        "  Then open a dashboard card on the home page. Ctrl-C stops the hub and its dashboards.\n",
        flush=True,
    )
    command = [sys.executable, "-m", "jupyterhub", "-f", str(project / "jupyterhub_config.py")]
    stop_on_terminate()
    hub = start_hub(command, cwd=project, env=env)
    try:
        return hub.wait()
    except KeyboardInterrupt:
        return stop_demo_hub(hub)


def start_hub(command: list[str], **popen: object) -> subprocess.Popen:
    """Start the hub in a session of its own, with SIGINT's default action.

    The demo stops the hub with SIGINT. A demo started with SIGINT ignored (a
    background job of a script) would pass that on to the hub and everything the hub
    starts (exec keeps ignored signals), and the hub could not be stopped that way; a
    caught signal is reset to its default by exec, so SIGINT is caught while the hub
    starts. The demo's own SIGINT is left as it was.
    """
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return subprocess.Popen(command, start_new_session=True, **popen)  # type: ignore[call-overload]
    finally:
        signal.signal(signal.SIGINT, before)


def stop_on_terminate() -> None:
    """SIGTERM (``kill``, a service manager) and SIGHUP (the terminal closed) stop the demo
    as Ctrl-C does; the hub, in a session of its own, gets neither."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupt)


def stop_demo_hub(hub: subprocess.Popen, grace: float = 20) -> int:
    """Ask the hub to stop (SIGINT, as Ctrl-C would); after ``grace`` seconds, or a
    second Ctrl-C, end it and every process it started at once (its services, the
    proxy and the dashboards run in sessions of their own)."""
    print("Stopping the hub and its dashboards …", file=sys.stderr, flush=True)
    hub.send_signal(signal.SIGINT)
    try:
        hub.wait(grace)
        return 0
    except (KeyboardInterrupt, subprocess.TimeoutExpired):
        print(
            "The hub did not stop in time; ending it and everything it started.",
            file=sys.stderr,
            flush=True,
        )
        kill_tree(hub.pid)
        hub.wait()
        return 1


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid``'s process group and every process below ``pid``."""
    below = descendants(pid)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    for child in below:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (from ``/proc``; empty where there is none)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found
