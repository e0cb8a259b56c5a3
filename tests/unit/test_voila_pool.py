"""How many Voilà kernels the pool keeps preheated, and what a viewer who finds it empty reads."""

from __future__ import annotations

import json

import pytest

from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS
from hub_viz.frameworks import build_command
from hub_viz.runners.voila_pool import RESERVE, memory_room, pool_target
from hub_viz.service.openflow import dry_pool_message
from hub_viz.spawner import framework_json

pytestmark = pytest.mark.unit

MIB = 2**20


def test_without_opens_the_pool_keeps_the_authors_size() -> None:
    assert pool_target(2, [], now=100.0, start_seconds=3.0) == 2
    assert pool_target(2, [10.0, 20.0], now=100.0, start_seconds=3.0) == 2  # over a minute ago


def test_a_burst_of_opens_keeps_what_arrives_while_a_kernel_starts() -> None:
    burst = [100.0 - i * 0.25 for i in range(20)]  # 20 opens in the last 5 s: 2 per second
    assert pool_target(1, burst, now=100.0, start_seconds=3.0) == 1 + 6
    # slower kernels: more of them are needed ahead
    assert pool_target(1, burst, now=100.0, start_seconds=6.0) == 1 + 12


def test_a_trickle_of_opens_keeps_one_more_kernel_for_the_next() -> None:
    assert pool_target(1, [70.0], now=100.0, start_seconds=3.0) == 2


def test_memory_room_is_the_least_free_part_of_every_known_limit() -> None:
    assert memory_room([]) is None
    cgroup = (1000 * MIB, 500 * MIB)
    machine = (10_000 * MIB, 200 * MIB)
    assert memory_room([cgroup, machine]) == int(1000 * MIB * (1 - RESERVE)) - 500 * MIB
    assert memory_room([(1 * MIB, 300 * MIB)]) == 0  # over the limit already: nothing more
    assert memory_room([(0, 0)]) is None  # no limit set


def test_the_dry_pool_message_gives_the_measured_estimate() -> None:
    note = dry_pool_message({"ready": 0, "starting": 2, "estimate_seconds": 3.4, "measured": True})
    assert note["dry"] is True and note["estimate_seconds"] == 3.4
    assert (
        "waits for a kernel that is still starting: about 3 s, as the latest kernels took"
        in note["message"]
    )
    assert "2 are warming up" in note["message"]


def test_before_any_kernel_was_timed_the_message_gives_no_number() -> None:
    note = dry_pool_message({"ready": 0, "starting": 0, "estimate_seconds": 3.0, "measured": False})
    assert note["estimate_seconds"] is None
    assert "usually a few seconds" in note["message"] and "warming up" not in note["message"]


def test_voila_with_preheated_kernels_runs_the_pool_keeper() -> None:
    voila = BUILTIN_FRAMEWORKS["voila"]
    cmd = build_command(voila, entry="a.ipynb", port=1, prefix="/p/", warm_kernels=2)
    assert "--pool_size=2" in cmd.argv
    assert (
        "--VoilaConfiguration.multi_kernel_manager_class="
        "hub_viz.runners.voila_pool.PoolKernelManager"
    ) in cmd.argv
    plain = build_command(voila, entry="a.ipynb", port=1, prefix="/p/")
    assert not any("voila_pool" in a for a in plain.argv)


def test_launchers_learn_the_pool_path_only_for_frameworks_that_have_one() -> None:
    assert json.loads(framework_json(BUILTIN_FRAMEWORKS["voila"]))["pool_status_path"]
    assert "pool_status_path" not in json.loads(framework_json(BUILTIN_FRAMEWORKS["dash"]))
