"""Voilà's preheated kernels kept ahead of demand (a dashboard's ``warm_kernels``).

Voilà keeps a fixed pool (``--pool_size``) and refills it one second after a
kernel is taken, so a class opening a dashboard at once drains it and most
students wait for a cold kernel. :class:`PoolKernelManager` is the base class
Voilà builds its kernel manager on (``VoilaConfiguration.multi_kernel_manager_class``);
it resizes Voilà's pool while the app runs:

* **demand**: each viewer page that takes a preheated kernel, or finds none
  and starts a cold one, counts; the pool's target is the author's
  ``warm_kernels`` plus the kernels that the recent open rate takes while one
  kernel starts (:func:`pool_target`), so refills start ahead of the next
  viewers;
* **measured**: how long the latest kernels took from start to the
  notebook having run (what a viewer waits for on a cold kernel), and how much
  memory a kernel holds;
* **expected**: started inside a keep-warm window, the pool also keeps
  ``burst`` more for the first half hour: the service's estimate of the class's
  first wave from the opens it saw in earlier windows
  (:mod:`hub_viz.service.classwave`), so the first students do not wait for
  demand to be measured;
* **bounded**: the pool grows only while the instance has memory for one more
  kernel (its cgroup limit, ``MEM_LIMIT``, or the machine's available memory:
  :func:`memory_room`), and never past ``PoolKernelManager.max_kernels``;
  once demand is gone it shrinks back to ``warm_kernels``.

Its state (ready and starting kernels, target, recent start times and an
estimate for a viewer who finds the pool empty) is served as JSON at
``<prefix>voila/hub_viz_pool`` (no viewer data), which the launcher passes to
the hub_viz service with its readiness probe.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
from tornado import web
from tornado.routing import PathMatches, Rule
from traitlets import Float, Integer

POOL_PATH = "voila/hub_viz_pool"  # under the app's prefix
KERNEL_MIB = 70.0  # a kernel's memory until one was measured
START_SECONDS = 3.0  # a kernel's start (and run of the notebook) until one was measured
RESERVE = 0.1  # share of the memory limit the pool leaves free


def pool_target(
    base: int,
    demand: Iterable[float],
    now: float,
    start_seconds: float,
    *,
    window: float = 60.0,
    burst_window: float = 10.0,
) -> int:
    """Kernels to keep preheated: ``base``, plus what the recent demand takes while a
    kernel starts (``start_seconds``), from the busier of the last ``burst_window``
    and the last ``window`` seconds (times in ``demand``, monotonic like ``now``)."""
    times = [t for t in demand if now - t <= window]
    recent = [t for t in times if now - t <= burst_window]
    rate = max(len(times) / window, len(recent) / burst_window)
    if rate <= 0:
        return base
    # a viewer who comes while a kernel starts takes one more: round up, at least one
    return base + max(1, math.ceil(rate * start_seconds))


def memory_room(limits: Iterable[tuple[int, int]]) -> int | None:
    """Bytes the pool may still take: the least of each limit's free part (the limit,
    less :data:`RESERVE` of it, less what it counts as used); None when no limit is known.

    ``limits`` are (limit, used by its count) pairs in bytes."""
    room = None
    for limit, used in limits:
        if limit <= 0:
            continue
        free = int(limit * (1 - RESERVE)) - used
        room = free if room is None else min(room, free)
    return None if room is None else max(0, room)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _rss(pid: int) -> int:
    """Resident bytes of a process (Linux /proc), 0 when unknown."""
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def cgroup_limit() -> tuple[int, int] | None:
    """(memory.max, memory.current) of this process's cgroup v2, if it has a limit."""
    for line in _read("/proc/self/cgroup").splitlines():
        if line.startswith("0::"):
            folder = "/sys/fs/cgroup" + line[3:].strip()
            limit = _read(f"{folder}/memory.max").strip()
            current = _read(f"{folder}/memory.current").strip()
            if limit.isdigit() and current.isdigit():
                return int(limit), int(current)
    return None


def available_memory() -> int:
    """The machine's MemAvailable (bytes), 0 when unknown."""
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return 0


class PoolKernelManager(AsyncMappingKernelManager):
    """Voilà's kernel manager base that keeps the preheated pool ahead of demand."""

    max_kernels = Integer(
        100, config=True, help="The most kernels kept preheated, whatever the demand."
    )
    demand_window = Float(
        60, config=True, help="Seconds of viewer opens that size the pool (and then shrink it)."
    )
    check_interval = Float(0.5, config=True, help="Seconds between checks of the pool.")
    burst = Integer(
        0,
        config=True,
        help="Kernels to preheat beyond the base while a class arrives: the service sets it "
        "when it starts the dashboard inside a keep-warm window, from the largest wave of "
        "opens it saw there lately (still within the memory limit and max_kernels).",
    )
    burst_seconds = Float(
        1800, config=True, help="Seconds after the app starts during which 'burst' holds."
    )

    if TYPE_CHECKING:  # from Voilà's kernel manager, which Voilà builds on this class
        get_rendered_notebook: Callable[..., Awaitable[Any]]
        fill_if_needed: Callable[..., Any]
        notebook_path: str | None

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._demand: deque[float] = deque(maxlen=1000)
        self._dry: deque[float] = deque(maxlen=1000)  # opens that found the pool empty
        self._starts: deque[float] = deque(maxlen=10)  # seconds: start to notebook run
        self._kernel_bytes: deque[int] = deque(maxlen=10)
        self._started_at: dict[str, float] = {}
        self._timed: set[int] = set()
        self._base: int | None = None
        self._target = 0
        self._cap = 0
        self._born = time.monotonic()
        asyncio.get_event_loop().call_soon(self._attach)

    # -- Voilà's pool (VoilaKernelManager's attributes) ------------------------------

    def _pool(self) -> list[Any]:
        pools = getattr(self, "_pools", None) or {}
        return pools.get(getattr(self, "notebook_path", None), [])

    def _pool_config(self) -> dict[str, Any]:
        config = getattr(self, "kernel_pools_config", None) or {}
        return config.get("default", {})

    def _attach(self) -> None:
        """Once Voilà's app exists: count pool claims, serve the status, keep the pool."""
        if not hasattr(self, "get_rendered_notebook"):  # Voilà without preheated kernels
            return
        self._base = int(self._pool_config().get("pool_size", 0))
        self._target = self._base
        claim = self.get_rendered_notebook

        async def counted(*args: Any, **kwargs: Any) -> Any:
            self._demand.append(time.monotonic())
            try:
                return await claim(*args, **kwargs)
            finally:
                self._resize()  # refill now, and for the demand to come (Voilà waits 1 s)

        self.get_rendered_notebook = counted
        parent: Any = self.parent
        app = getattr(parent, "app", None)
        if app is not None:
            path = parent.base_url.rstrip("/") + "/" + POOL_PATH
            app.default_router.add_rules([Rule(PathMatches(path), PoolHandler, {"pool": self})])
            app.default_router.rules.insert(0, app.default_router.rules.pop())
        self._task = asyncio.ensure_future(self._keep())

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:  # type: ignore[override]
        preheat = (kwargs.get("env") or {}).get("VOILA_PREHEAT") == "True"
        t0 = time.monotonic()
        if not preheat and self._base is not None:  # a viewer found no preheated kernel
            self._demand.append(t0)
            self._dry.append(t0)
            self._resize()
        kernel_id = await super().start_kernel(*args, **kwargs)
        if preheat:
            self._started_at[kernel_id] = t0
        return kernel_id

    # -- keeping it -------------------------------------------------------------------

    async def _keep(self) -> None:
        while True:
            try:
                self._time_starts()
                self._resize()
            except Exception:  # the pool keeps Voilà's own behaviour meanwhile
                self.log.exception("Keeping the preheated pool failed")
            await asyncio.sleep(self.check_interval)

    def _time_starts(self) -> None:
        """Note, once each, how long a preheated kernel took until its notebook ran."""
        for item in list(self._pool()):
            if id(item) in self._timed or not item.done() or item.exception() is not None:
                continue
            self._timed.add(id(item))
            result = item.result()
            t0 = self._started_at.pop(result.get("kernel_id"), None)
            if t0 is None:
                continue
            kernel_id = result.get("kernel_id")

            def ran(_task: Any, t0: float = t0, kernel_id: str = kernel_id) -> None:
                self._starts.append(time.monotonic() - t0)
                pid = self._kernel_pid(kernel_id)
                if pid:
                    self._kernel_bytes.append(_rss(pid))

            result["task"].add_done_callback(ran)

    def _kernel_pid(self, kernel_id: str) -> int:
        try:
            provisioner = self.get_kernel(kernel_id).provisioner
            return int(getattr(getattr(provisioner, "process", None), "pid", 0) or 0)
        except (KeyError, AttributeError):
            return 0

    def start_seconds(self) -> float:
        return statistics.median(self._starts) if self._starts else START_SECONDS

    def kernel_bytes(self) -> float:
        known = [b for b in self._kernel_bytes if b > 0]
        return statistics.median(known) if known else KERNEL_MIB * 2**20

    def room_for(self) -> int:
        """Kernels the instance has memory for beyond the running ones."""
        used = _rss(os.getpid()) + sum(
            _rss(pid) for pid in (self._kernel_pid(k) for k in self.list_kernel_ids()) if pid
        )
        limits = []
        cgroup = cgroup_limit()
        if cgroup is not None:
            limits.append(cgroup)
        env_limit = os.environ.get("MEM_LIMIT", "")
        if env_limit.isdigit():
            limits.append((int(env_limit), used))
        available = available_memory()
        if available:
            limits.append((available + used, used))
        room = memory_room(limits)
        if room is None:
            return self.max_kernels
        return int(room // self.kernel_bytes())

    def _resize(self) -> None:
        """Set Voilà's pool size to the target and start (or stop) kernels for it."""
        if self._base is None:
            return
        now = time.monotonic()
        wanted = pool_target(
            self._base, self._demand, now, self.start_seconds(), window=self.demand_window
        )
        if self.burst and now - self._born < self.burst_seconds:  # a class expected now
            wanted = max(wanted, self._base + self.burst)
        pool = self._pool()
        have = len(pool)
        self._cap = min(self.max_kernels, have + self.room_for())
        target = max(self._base, min(wanted, self._cap))
        self._target = target
        config = self._pool_config()
        if config.get("pool_size") != target:
            config["pool_size"] = target
        if have < target:
            self.fill_if_needed(delay=0, notebook_name=self.notebook_path)
        elif have > target:
            self._shrink(pool, have - target)

    def _shrink(self, pool: list[Any], extra: int) -> None:
        """Stop idle preheated kernels beyond the target (the newest first)."""
        for item in reversed(list(pool)):
            if extra <= 0:
                return
            if not item.done() or item.exception() is not None:
                continue
            pool.remove(item)
            extra -= 1
            kernel_id = item.result().get("kernel_id")
            asyncio.ensure_future(self.shutdown_kernel(kernel_id))

    # -- what the service reads --------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """``ready``: preheated kernels whose notebook has run (a viewer gets the page at
        once); ``starting``: the others, still starting or running the notebook."""
        pool = self._pool()
        ready = sum(1 for item in pool if _rendered(item))
        now = time.monotonic()
        return {
            "ready": ready,
            "starting": len(pool) - ready,
            "base": self._base or 0,
            "burst": self.burst if time.monotonic() - self._born < self.burst_seconds else 0,
            "target": self._target,
            "cap": self._cap,
            "opens_last_minute": sum(1 for t in self._demand if now - t <= 60),
            "dry_last_minute": sum(1 for t in self._dry if now - t <= 60),
            "start_seconds": [round(s, 2) for s in self._starts],
            "estimate_seconds": round(self.start_seconds(), 1),
            "measured": bool(self._starts),
        }


def _rendered(item: Any) -> bool:
    """A pool item whose kernel started and whose notebook has run."""
    if not item.done() or item.cancelled() or item.exception() is not None:
        return False
    task = item.result().get("task")
    return task is not None and task.done()


class PoolHandler(web.RequestHandler):
    """``<prefix>voila/hub_viz_pool``: the preheated pool's state (counts and times only)."""

    def initialize(self, pool: PoolKernelManager) -> None:
        self.pool = pool

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps(self.pool.status()))


__all__ = ["POOL_PATH", "PoolKernelManager", "memory_room", "pool_target"]
