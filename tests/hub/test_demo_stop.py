"""``hub-viz demo`` stopped with Ctrl-C or ``kill``: it exits cleanly and leaves nothing
running.

A terminal's Ctrl-C sends SIGINT to the demo's whole process group; ``kill`` (or a
service manager) sends SIGTERM to the demo's process only. Either way the demo then
asks the hub to stop, and the hub stops its services, the proxy and the dashboards it
started (the demo's config sets ``cleanup_servers``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import requests

from hub_viz.demo import descendants

from ..conftest import REPO, alive, free_port, need_localhost_names, wait_until

pytestmark = pytest.mark.hub

PASSWORD = "demo-stop-password"


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).ok
    except requests.ConnectionError:
        return False


def ctrl_c(demo: subprocess.Popen) -> None:
    os.killpg(demo.pid, signal.SIGINT)  # a terminal signals the whole group


def kill(demo: subprocess.Popen) -> None:
    os.kill(demo.pid, signal.SIGTERM)  # the demo's process only; the hub runs on


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("stop", "start_with"),
    [(ctrl_c, None), (kill, None), (kill, ignore_sigint)],
    # the last: a background job of a script, which starts with SIGINT ignored
    ids=["ctrl-c", "sigterm", "sigterm-sigint-ignored"],
)
def test_stopping_the_demo_leaves_nothing_running(tmp_path, stop, start_with):
    need_localhost_names()
    port = free_port()
    env = dict(
        os.environ,
        HUB_VIZ_DEMO_STATE=str(tmp_path),
        HUB_VIZ_DEMO_PASSWORD=PASSWORD,
        HUB_VIZ_DEMO_HUB_PORT=str(free_port()),
        HUB_VIZ_DEMO_PROXY_API_PORT=str(free_port()),
    )
    demo = subprocess.Popen(
        [sys.executable, "-m", "hub_viz.cli", "demo", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=open(tmp_path / "demo.log", "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as in a terminal
        preexec_fn=start_with,
    )
    hub = f"http://hub.localhost:{port}"
    running: set[int] = set()
    try:
        wait_until(lambda: answers(f"{hub}/hub/api/"), timeout=90, what="the demo hub", every=0.5)
        # a user starts a dashboard, so the demo has one running to stop
        s = requests.Session()
        s.get(f"{hub}/hub/login", timeout=30)
        r = s.post(
            f"{hub}/hub/login",
            timeout=30,
            data={"username": "student", "password": PASSWORD, "_xsrf": s.cookies.get("_xsrf")},
        )
        assert r.ok and "/hub/home" in r.url, (r.status_code, r.url)
        r = s.post(
            f"{hub}/hub/api/users/student/servers/stop-me",
            timeout=120,
            headers={"X-XSRFToken": s.cookies.get("_xsrf", path="/hub/")},
            json={"framework": "dash", "entry": "dash/app.py"},
        )
        assert r.status_code in (201, 202), r.text
        wait_until(
            lambda: (
                s.get(
                    f"{hub}/hub/api/users/student",
                    timeout=10,
                    headers={"X-XSRFToken": s.cookies.get("_xsrf", path="/hub/")},
                )
                .json()["servers"]
                .get("stop-me", {})
                .get("ready")
            ),
            timeout=120,
            what="the dashboard to start",
        )
        wait_until(
            lambda: answers(
                f"http://hub-viz--service.hub.localhost:{port}/services/hub-viz/api/openapi.yaml"
            ),
            timeout=60,
            what="the service",
        )
        running |= descendants(demo.pid)
        assert len(running) >= 5, running  # the hub, the proxy, two services, a launcher, an app

        stop(demo)
        code = demo.wait(60)  # a guard against a hang, not a speed claim
        assert code == 0
        wait_until(
            lambda: not [p for p in running if alive(p)],
            timeout=5,
            what="every process the demo started to end",
            every=0.2,
        )
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{hub}/hub/api/", timeout=2)
    finally:
        for pid in running | descendants(demo.pid):
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait()
        print((tmp_path / "demo.log").read_text(errors="replace")[-6000:])
