"""Races and faults around the open flow on a real hub: one viewer's simultaneous opens, an
unpublish or a mode change during opens, a full state disk, an app killed under use.

The service's store lives on a small tmpfs of its own (mounted here, removed after) so
that it can fill up while the hub's own database, on the usual disk, keeps working.
The hub polls servers every 2 s (30 s in production), the service checks the hub every
second, and the culler's timeout is 30 s with its rounds far apart, so that a stop reason
can only come from what happened.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest
import requests

from ..conftest import Hub, start_hub, stop_hub, wait_until

pytestmark = pytest.mark.hub

OWNER = "race-owner"
POOL = "hub-viz-pool"
CULL_TIMEOUT = 30
EXTRA_CONFIG = """
c.Spawner.poll_interval = 2
c.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}
"""


def mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)],
        capture_output=True,
    )
    return done.returncode == 0


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path | None]:
    """A 16 MB tmpfs for the service's store; None where mounting is not allowed."""
    path = tmp_path_factory.mktemp("race-store")
    mounted = mount_tmpfs(path, "16m")
    yield path if mounted else None
    if mounted:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, store_dir: Path | None) -> Iterator[Hub]:
    state = tmp_path_factory.mktemp("race-hub")
    store = (store_dir or state) / "hub_viz.sqlite"
    running = start_hub(
        state,
        isolated=True,
        cleanup_servers=True,
        extra_config=EXTRA_CONFIG,
        configure_kwargs={
            "db_url": f"sqlite:///{store}",
            "warm_pool_ceiling": 2,
            "cull_timeout": CULL_TIMEOUT,
            "cull_every": 3600,
            "extra_service_config": {
                "reconcile_interval": 1,
                "warm_pool_interval": 1,
                "thumbnails": False,
            },
        },
    )
    running.store = store  # type: ignore[attr-defined]
    yield running
    stop_hub(running)


def publish(hub: Hub, slug: str, **fields: Any) -> None:
    r = hub.svc(
        "POST",
        "dashboards",
        OWNER,
        json={"slug": slug, "title": slug, "entry": "dash/app.py", "visibility": "all", **fields},
    )
    assert r.status_code == 201, r.text


def servers(hub: Hub, user: str) -> dict[str, dict]:
    r = hub.api("GET", f"/users/{user}")
    return (r.json().get("servers") or {}) if r.status_code == 200 else {}


def runs(hub: Hub, where: str = "1", *args: Any) -> list[sqlite3.Row]:
    """The service's deployment records, read from its store file."""
    with sqlite3.connect(f"file:{hub.store}?mode=ro", uri=True) as db:  # type: ignore[attr-defined]
        db.row_factory = sqlite3.Row
        return db.execute(f"SELECT * FROM deployments WHERE {where}", args).fetchall()


def pool_ready(hub: Hub) -> list[sqlite3.Row]:
    """The warm pool's instances it may hand out now."""
    with sqlite3.connect(f"file:{hub.store}?mode=ro", uri=True) as db:  # type: ignore[attr-defined]
        return db.execute("SELECT * FROM warm_instances WHERE state = 'ready'").fetchall()


def at_once(calls: list[Any]) -> list[Any]:
    """Run the calls in threads released together."""
    gate = threading.Barrier(len(calls))

    def run(call: Any) -> Any:
        gate.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_one_viewers_simultaneous_opens_get_one_instance_and_one_record(hub: Hub) -> None:
    publish(hub, "race-pool", mode="per-viewer", warm_pool=2)
    wait_until(
        lambda: sum(s["ready"] for s in servers(hub, POOL).values()) == 2,
        90,
        what="two warm instances",
    )
    # and the pool has seen them ready (its next round), so they can be handed out
    wait_until(lambda: len(pool_ready(hub)) == 2, 60, what="the pool to count them ready")
    answers = at_once(
        [lambda: hub.svc("POST", f"dashboards/{OWNER}/race-pool/open", "rv1") for _ in range(4)]
    )
    assert [r.status_code for r in answers] == [200] * 4, [r.text for r in answers]
    assert len({r.json()["server"] for r in answers}) == 1  # one instance for all four
    assert answers[0].json()["server"].startswith(POOL + "/")
    assert not servers(hub, "rv1")  # and the viewer's own server was not started too
    mine = runs(hub, "viewer = ? AND stopped IS NULL", "rv1")
    assert len(mine) == 1 and mine[0]["server_owner"] == POOL

    # five more viewers at once: the pool never runs more than its ceiling of 2,
    # claimed instances included; the others get instances of their own
    viewers = [f"rv{i}" for i in range(2, 7)]
    for v in viewers:
        hub.user_token(v)
    answers = at_once(
        [lambda v=v: hub.svc("POST", f"dashboards/{OWNER}/race-pool/open", v) for v in viewers]
    )
    assert [r.status_code for r in answers] == [200] * 5, [r.text for r in answers]
    time.sleep(3)  # a few pool rounds
    assert len(servers(hub, POOL)) <= 2
    for v in ["rv1", *viewers]:
        assert len(runs(hub, "viewer = ? AND stopped IS NULL", v)) == 1, v
    assert hub.svc("DELETE", f"dashboards/{OWNER}/race-pool", OWNER).status_code == 204
    wait_until(
        lambda: not servers(hub, POOL) and not any(servers(hub, v) for v in viewers),
        60,
        what="every instance to stop",
    )


def test_unpublish_during_opens_leaves_no_server_and_no_open_record(hub: Hub) -> None:
    publish(hub, "race-gone", mode="per-viewer")
    viewers = [f"gv{i}" for i in range(4)]
    for v in viewers:
        hub.user_token(v)
    delete = [
        lambda: (time.sleep(0.05), hub.svc("DELETE", f"dashboards/{OWNER}/race-gone", OWNER))[1]
    ]
    opens = [
        lambda v=v: hub.svc("POST", f"dashboards/{OWNER}/race-gone/open", v)
        for v in viewers
        for _ in range(2)
    ]
    answers = at_once(delete + opens)
    assert answers[0].status_code == 204
    for r in answers[1:]:
        assert r.status_code in (200, 404), r.text  # never a 500
        if r.status_code == 404:
            assert "unpublished" in r.json()["message"] or "No dashboard" in r.json()["message"]
    time.sleep(3)  # the hub's and the service's rounds
    assert not any(servers(hub, v) for v in viewers)
    assert runs(hub, "dashboard_ref = ? AND stopped IS NULL", f"{OWNER}/race-gone") == []
    assert hub.svc("POST", f"dashboards/{OWNER}/race-gone/open", "gv0").status_code == 404


def test_a_mode_change_during_opens_leaves_nothing_stop_cannot_reach(hub: Hub) -> None:
    publish(hub, "race-mode", mode="per-viewer")
    viewers = [f"mv{i}" for i in range(3)]
    for v in viewers:
        hub.user_token(v)
    patch = [
        lambda: (
            time.sleep(0.05),
            hub.svc("PATCH", f"dashboards/{OWNER}/race-mode", OWNER, json={"mode": "shared"}),
        )[1]
    ]
    opens = [lambda v=v: hub.svc("POST", f"dashboards/{OWNER}/race-mode/open", v) for v in viewers]
    answers = at_once(patch + opens)
    assert answers[0].status_code == 200, answers[0].text
    assert all(r.status_code == 200 for r in answers[1:]), [r.text for r in answers]
    r = hub.svc("POST", f"dashboards/{OWNER}/race-mode/stop", OWNER)
    assert r.status_code == 200, r.text
    wait_until(
        lambda: not any(servers(hub, u).get(n) for u in [*viewers, OWNER] for n in servers(hub, u)),
        60,
        what="every server to stop",
    )
    assert runs(hub, "dashboard_ref = ? AND stopped IS NULL", f"{OWNER}/race-mode") == []
    assert hub.svc("DELETE", f"dashboards/{OWNER}/race-mode", OWNER).status_code == 204


def test_an_app_killed_under_use_is_recorded_crashed_not_culled(hub: Hub) -> None:
    """The hub's last activity looks as old as the culler's timeout (as the service's view
    of it can be under load), yet the app was killed: the record says crashed."""
    publish(hub, "race-crash")
    body = hub.open_ready(OWNER, "race-crash", "cv1")
    tab = requests.Session()
    assert tab.get(hub.public(body["url"]), timeout=60).status_code == 200
    time.sleep(CULL_TIMEOUT)  # the viewer keeps reading; no new navigation counts
    launcher = psutil.Process(servers(hub, OWNER)["race-crash"]["state"]["pid"])
    [app] = launcher.children()
    os.killpg(app.pid, signal.SIGKILL)
    wait_until(lambda: "race-crash" not in servers(hub, OWNER), 30, what="the hub to stop it")
    [record] = wait_until(
        lambda: runs(hub, "dashboard_ref = ? AND stopped IS NOT NULL", f"{OWNER}/race-crash"),
        30,
        what="the record to close",
    )
    assert (record["stop_reason"], record["stopped_by"]) == ("crashed", "")


def test_a_full_state_disk_keeps_running_dashboards_open(hub: Hub, store_dir: Path | None) -> None:
    if store_dir is None:
        pytest.skip("no tmpfs mount here: a full state disk cannot be made")
    publish(hub, "race-full")
    publish(hub, "race-idle")  # published, not running
    hub.open_ready(OWNER, "race-full", "fv1")
    filler = store_dir / "filler"
    try:
        with open(filler, "wb") as out:  # the state disk fills up
            try:
                while True:
                    out.write(b"\0" * 65536)
                    out.flush()
            except OSError:
                pass
        # viewers of the running dashboard still get in, the first and the later ones
        for viewer in ("fv1", "fv2", "fv3"):
            r = hub.svc("POST", f"dashboards/{OWNER}/race-full/open", viewer)
            assert r.status_code == 200, r.text
            assert r.json()["status"] == "ready" and "url" in r.json()
        # a stopped one does not start without its record, and says why
        r = hub.svc("POST", f"dashboards/{OWNER}/race-idle/open", "fv1")
        assert r.status_code == 507, r.text
        assert "not running" in r.json()["message"] and "state disk is full" in r.json()["message"]
        assert "race-idle" not in servers(hub, OWNER)
        # the author learns why a change cannot be saved, and the operator what to do
        r = hub.svc(
            "PATCH", f"dashboards/{OWNER}/race-full", OWNER, json={"description": "x" * 1500}
        )
        assert r.status_code == 507, r.text
        assert "state disk is full" in r.json()["message"]
        assert "tell your operator" in r.json()["message"]
        r = hub.svc(
            "POST",
            "dashboards",
            OWNER,
            json={
                "slug": "race-more",
                "title": "more " * 30,
                "entry": "dash/app.py",
                "description": "y" * 1900,
            },
        )
        assert r.status_code == 507, r.text
        log = hub.log.read_text()
        assert "free space on the disk that holds it" in log
        assert "An open of race-owner/race-full was not counted" in log
    finally:
        filler.unlink(missing_ok=True)
    r = hub.svc("PATCH", f"dashboards/{OWNER}/race-full", OWNER, json={"description": "ok"})
    assert r.status_code == 200, r.text
