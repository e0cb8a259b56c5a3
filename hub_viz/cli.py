"""``hub-viz``: the project's command line.

``hub-viz demo``        set up and run the demo hub with the example dashboards
``hub-viz frameworks``  list the built-in frameworks and how they are served
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .frameworks import BUILTIN_FRAMEWORKS

PROXY = "configurable-http-proxy"
PROXY_PACKAGE = "configurable-http-proxy@^5"


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
            "hub-viz demo needs configurable-http-proxy, which is installed with npm; "
            "install Node.js and npm first (Debian: apt-get install nodejs npm)."
        )
    print(f"Installing {PROXY_PACKAGE} into {project / 'node_modules'} …", flush=True)
    subprocess.run(
        [npm, "install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund", PROXY_PACKAGE],
        cwd=project,
        check=True,
    )
    return str(local_bin)


def demo(options: argparse.Namespace) -> int:
    project = find_project(Path.cwd())
    if project is None:
        raise SystemExit("hub-viz demo runs from a clone of hub_viz (jupyterhub_config.py not found).")
    proxy_dir = ensure_proxy(project)
    env = dict(os.environ)
    env["PATH"] = proxy_dir + os.pathsep + env.get("PATH", "")
    env["HUB_VIZ_DEMO_IP"] = options.ip
    env["HUB_VIZ_DEMO_PORT"] = str(options.port)
    password = env.setdefault("HUB_VIZ_DEMO_PASSWORD", "hub-viz-demo")
    print(
        "\n"
        f"  hub_viz demo: http://{options.ip}:{options.port}/\n"
        f"  Log in with any user name (e.g. alice) and the password: {password}\n"
        "  Then open a dashboard card on the home page. Ctrl-C stops the hub and its dashboards.\n",
        flush=True,
    )
    command = [sys.executable, "-m", "jupyterhub", "-f", str(project / "jupyterhub_config.py")]
    try:
        return subprocess.call(command, cwd=project, env=env)
    except KeyboardInterrupt:
        return 0


def frameworks(options: argparse.Namespace) -> int:
    width = max(len(name) for name in BUILTIN_FRAMEWORKS)
    for name, fw in BUILTIN_FRAMEWORKS.items():
        detect = ", ".join(fw.suffixes) or "named only"
        print(f"{name:<{width}}  {fw.display_name:<22} modes: {'/'.join(fw.modes):<18} detect: {detect}")
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hub-viz", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="Set up and run the demo hub with example dashboards.")
    p_demo.add_argument("--ip", default="127.0.0.1", help="Address the hub listens on.")
    p_demo.add_argument("--port", type=int, default=8000, help="Port the hub listens on.")
    p_demo.set_defaults(func=demo)
    p_fw = sub.add_parser("frameworks", help="List the built-in dashboard frameworks.")
    p_fw.set_defaults(func=frameworks)
    options = parser.parse_args(argv)
    sys.exit(options.func(options))


if __name__ == "__main__":
    main()
