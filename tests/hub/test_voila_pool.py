"""Voilà's preheated kernels through a real hub: the pool refills ahead of a class's
opens, within the instance's memory, and a viewer who finds it empty is told so."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urljoin

import psutil
import pytest
import requests

from ..conftest import RESOURCES, Hub, start_hub, stop_hub, wait_until
from ..examples import EXAMPLES

pytestmark = pytest.mark.hub

VOILA_TEXT = EXAMPLES["voila-example"][1]
# The "tight" dashboard's instance has no memory for one more kernel (MEM_LIMIT, which
# JupyterHub sets from Spawner.mem_limit): its pool never grows past warm_kernels.
EXTRA_CONFIG = """
c.Spawner.environment = {
    "MEM_LIMIT": lambda spawner: "1048576" if spawner.name == "tight" else "",
}
"""
FILLED = re.compile(r"Kernel pool of \w+\.ipynb is filled with (\d+) kernel")


@pytest.fixture(scope="module")
def pool_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    hub = start_hub(
        tmp_path_factory.mktemp("voila-pool-hub"),
        isolated=True,
        extra_config=EXTRA_CONFIG,
        configure_kwargs={**RESOURCES, "max_warm_kernels": 4},
    )
    yield hub
    stop_hub(hub)


SLOW_TEXT = "A slow dashboard, ready"
SLOW_NOTEBOOK = {
    "cells": [
        {
            "cell_type": "code",
            "execution_count": None,
            "metadata": {},
            "outputs": [],
            "source": f"import time\ntime.sleep(4)\nprint({SLOW_TEXT!r})",
        }
    ],
    "metadata": {
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
    },
    "nbformat": 4,
    "nbformat_minor": 5,
}


def publish(hub: Hub, slug: str, entry: str = "voila/dashboard.ipynb") -> None:
    r = hub.svc(
        "POST",
        "dashboards",
        "teacher",
        json={
            "title": slug,
            "slug": slug,
            "entry": entry,
            "visibility": "all",
            "warm_kernels": 1,
        },
    )
    assert r.status_code == 201, r.text


def open_page(hub: Hub, viewer: str, slug: str, text: str = VOILA_TEXT) -> dict:
    """A viewer's open call, then their page (a kernel of the pool, or a fresh one)."""
    r = hub.svc("POST", f"dashboards/teacher/{slug}/open", viewer)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ready", body
    page = requests.get(urljoin(hub.url, body["url"]), timeout=120)
    assert page.status_code == 200 and text in page.text
    return body


def pool_sizes(hub: Hub, since: int) -> list[int]:
    """The sizes Voilà said its pool was filled to, in the hub's log after ``since``."""
    with open(hub.log, "rb") as f:
        f.seek(since)
        return [int(n) for n in FILLED.findall(f.read().decode(errors="replace"))]


def start_warm(hub: Hub, slug: str, entry: str = "voila/dashboard.ipynb") -> None:
    """The author opens it; then wait for its one preheated kernel."""
    since = hub.log.stat().st_size
    publish(hub, slug, entry)
    assert hub.svc("POST", f"dashboards/teacher/{slug}/open", "teacher").status_code == 200
    wait_until(
        lambda: hub.api("GET", "/users/teacher").json()["servers"].get(slug, {}).get("ready"),
        120,
        what=f"{slug} running",
    )
    wait_until(lambda: 1 in pool_sizes(hub, since), 120, what="the first preheated kernel")


def test_a_burst_of_opens_makes_the_pool_refill_ahead(pool_hub: Hub) -> None:
    hub = pool_hub
    start_warm(hub, "lecture")
    since = hub.log.stat().st_size
    with ThreadPoolExecutor(3) as pool:
        list(pool.map(lambda v: open_page(hub, v, "lecture"), ["s1", "s2", "s3"]))
    # Voilà's own pool would refill to its one kernel; the opens made it keep more
    wait_until(lambda: max(pool_sizes(hub, since), default=0) >= 2, 120, what="a larger pool")
    # ... never past the hub's max_warm_kernels (4 here), which reaches the app
    [argv] = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if "hub_viz.runners.voila" in (p.info["cmdline"] or [])
        and "--Voila.base_url=/user/teacher/lecture/" in (p.info["cmdline"] or [])
    ]
    assert "--PoolKernelManager.max_kernels=4" in argv, argv
    assert hub.svc("DELETE", "dashboards/teacher/lecture", "teacher").status_code == 204


def test_without_memory_for_one_more_the_pool_stays_small_and_the_open_page_says_so(
    pool_hub: Hub,
) -> None:
    hub = pool_hub
    # a notebook that takes a while: its preheated kernel is not ready at once
    (hub.root / "voila" / "slow.ipynb").write_text(json.dumps(SLOW_NOTEBOOK))
    start_warm(hub, "tight", "voila/slow.ipynb")
    since = hub.log.stat().st_size

    def dry() -> dict | None:
        r = hub.svc("POST", "dashboards/teacher/tight/open", "t4")
        assert r.status_code == 200, r.text
        return r.json().get("pool")

    # its first preheated kernel has run the notebook: one start measured, none taken
    wait_until(lambda: dry() is None, 120, what="the first kernel ready")
    # while three viewers take the one preheated kernel and its replacement warms up,
    # the next viewer's open call says so
    with ThreadPoolExecutor(4) as pool:
        note = pool.submit(
            wait_until, dry, 120, what="the open call to say the pool is empty", every=0.2
        )
        list(pool.map(lambda v: open_page(hub, v, "tight", SLOW_TEXT), ["t1", "t2", "t3"]))
        note = note.result()
    assert note["dry"] is True
    assert "Every preheated kernel of this dashboard is taken" in note["message"]
    assert "waits for a kernel that is still starting" in note["message"]
    # the estimate comes from the kernels this instance preheated: measured, in seconds
    assert note["estimate_seconds"] > 0
    assert re.search(r"about \d+ s, as the latest kernels took", note["message"])
    # once refilled, it says nothing more, and the pool kept to its one kernel
    wait_until(lambda: 1 in pool_sizes(hub, since), 120, what="the pool refilled")
    wait_until(lambda: dry() is None, 120, what="a ready kernel again")
    assert max(pool_sizes(hub, since)) == 1
    assert hub.svc("DELETE", "dashboards/teacher/tight", "teacher").status_code == 204


def opened_by_author(hub: Hub, slug: str) -> None:
    """The author opens it until it runs (the start follows its first open)."""
    wait_until(
        lambda: (
            hub.svc("POST", f"dashboards/teacher/{slug}/open", "teacher").json()["status"]
            == "ready"
        ),
        120,
        what=f"{slug} running",
    )


def voila_argv(slug: str) -> list[str]:
    [argv] = [
        p.info["cmdline"]
        for p in psutil.process_iter(["cmdline"])
        if "hub_viz.runners.voila" in (p.info["cmdline"] or [])
        and f"--Voila.base_url=/user/teacher/{slug}/" in (p.info["cmdline"] or [])
    ]
    return argv


def test_a_keep_warm_start_preheats_for_the_wave_the_last_class_made(pool_hub: Hub) -> None:
    """Kept warm: a start inside the window preheats as many kernels as viewers arrived
    together before (within max_warm_kernels, 4 here), before anyone opens it."""
    hub = pool_hub
    r = hub.svc(
        "POST",
        "dashboards",
        "teacher",
        json={
            "title": "Class",
            "slug": "class",
            "entry": "voila/dashboard.ipynb",
            "visibility": "all",
            "warm_kernels": 1,
            "keep_warm": "always",
        },
    )
    assert r.status_code == 201, r.text
    try:
        # the first class: four students together (the service records each open)
        opened_by_author(hub, "class")
        assert "--PoolKernelManager.burst=0" in voila_argv("class")  # nothing seen yet
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda v: open_page(hub, v, "class"), ["c1", "c2", "c3", "c4"]))
        # the next start, inside the window, expects that wave (4 or 5 viewers within
        # 10 s), less the author's one kernel, within max_warm_kernels (4): 3 more
        assert hub.svc("POST", "dashboards/teacher/class/stop", "teacher").status_code == 200
        since = hub.log.stat().st_size
        opened_by_author(hub, "class")
        assert "--PoolKernelManager.burst=3" in voila_argv("class")
        # filled to 4 before any student arrives
        wait_until(lambda: 4 in pool_sizes(hub, since), 120, what="a pool of 4")
    finally:
        assert hub.svc("DELETE", "dashboards/teacher/class", "teacher").status_code == 204
