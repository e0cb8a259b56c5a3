"""Dashboard environments: resolved once into a lock, built once per lock, shared.

A dashboard that declares requirements (:mod:`hub_viz.requirements`) runs in a
virtual environment of its own, built by the hub with ``uv``:

1. **Resolve** the requirements, with the operator's index settings only, into
   a lock (``locks/<input hash>.txt``). The input hash covers the requirement
   lines, the index settings, the Python version and the platform; a lock is
   resolved once and reused by every later start, so starts are reproducible.
2. **Build** the lock into ``envs/<env key>/`` where the key hashes the lock,
   the Python version, the platform and the layer below (see 3). A build
   installs wheels only (``--only-binary :all:``: no package code runs while
   it is built) and is bounded in time and disk. Builds of one key queue
   behind each other; a finished environment is marked complete and is only
   ever read afterwards, by every instance with the same lock, across
   restarts.
3. **Layer** the frameworks underneath: a ``.pth`` file adds hub_viz's own
   site-packages *after* the environment's, so the dashboard finds the
   framework (Voilà, Dash, …) and hub_viz's runners, and the author's pins
   win over the versions the hub has.

The build log and state of each input are kept in ``builds/`` and the last
environment of each dashboard in ``dashboards/<owner>/<slug>.json``; the
service reads them for the author's log view. Environments no instance used
for ``keep_days`` are removed (:meth:`EnvironmentBuilder.collect_garbage`).

The hub never runs an environment's Python: a wheel may carry a ``.pth`` file
that runs at interpreter start, which must only ever happen in the dashboard's
own processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shutil
import site
import stat
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from traitlets import Bool, Float, Integer, List, Unicode, default
from traitlets.config import LoggingConfigurable

from .errors import HubVizError
from .requirements import Requirements

COMPLETE = ".hub-viz-complete"
LAST_USED = ".hub-viz-last-used"
LAYER_PTH = "zz-hub-viz-layer.pth"
BUILDING_MESSAGE = "Preparing this dashboard's environment…"
LOG_TAIL = 400
BUILD_TIMEOUT = 300
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


class BuildError(HubVizError):
    """An environment could not be resolved or built; ``log_message`` has the detail."""


def redact(text: str) -> str:
    """Hide credentials in URLs (``https://user:token@mirror``) from logs and pages."""
    return _USERINFO.sub("***@", text)


def python_tag() -> str:
    """The interpreter and platform an environment is built for."""
    return (
        f"{sys.implementation.name}-{platform.python_version()}-"
        f"{sysconfig.get_platform()}-{sys.abiflags}"
    )


def layer_dirs() -> list[str]:
    """hub_viz's own site-packages (and hub_viz's folder if it lives elsewhere)."""
    dirs = [d for d in site.getsitepackages() if os.path.isdir(d)]
    here = str(Path(__file__).resolve().parent.parent)
    if not any(here == str(Path(d).resolve()) for d in dirs):
        dirs.append(here)
    return dirs


def _default_uv() -> str:
    try:
        from uv import find_uv_bin
    except ImportError:
        return shutil.which("uv") or "uv"
    return find_uv_bin()


@dataclass
class Prepared:
    """An environment ready to run: its key, its Python and whether this start built it."""

    key: str
    python: str
    built_now: bool


class EnvironmentBuilder(LoggingConfigurable):
    """Resolves, builds, shares and collects dashboard environments on this machine."""

    enabled = Bool(
        True,
        config=True,
        help="""Build an environment of its own for a dashboard that declares its
        requirements (``requirements.txt`` or ``pyproject.toml`` beside its entry). Off:
        every dashboard runs in hub_viz's environment, requirement files are ignored.""",
    )
    root = Unicode(
        config=True,
        help="""Folder of the environments, their locks and build logs (``configure()``
        puts it in the hub's state dir: ``<state_dir>/environments``). Must be readable
        by the accounts that run dashboards, and writable only by the hub.""",
    )
    index_url = Unicode(
        "",
        config=True,
        help="""Package index builds use (e.g. a mirror, ``https://pypi.example.org/simple``);
        empty: PyPI. Credentials in it never appear in logs or pages.""",
    )
    extra_index_urls = List(Unicode(), config=True, help="""More package indexes builds may use.""")
    find_links = List(
        Unicode(),
        config=True,
        help="""Folders or URLs of wheels builds may use (``--find-links``), e.g. a
        wheelhouse ``/srv/wheels``.""",
    )
    no_index = Bool(
        False,
        config=True,
        help="""Use only :attr:`find_links`, no index at all (an offline hub).""",
    )
    allow_requirement_urls = Bool(
        False,
        config=True,
        help="""Accept requirement lines that choose a package source (``pkg @ https://…``,
        ``--index-url``, ``--find-links``, ``-e``). Off (default), they are refused at
        publish time and at start; packages then come only from the operator's indexes.""",
    )
    build_timeout = Float(
        BUILD_TIMEOUT,
        config=True,
        help="""Seconds one environment may take to resolve and build. The first start
        waits for it: ``configure()`` keeps ``Spawner.start_timeout`` two minutes above it.""",
    )
    max_env_bytes = Integer(
        2_000_000_000,
        config=True,
        help="""The most one built environment may take on disk, in bytes; a larger one
        is removed and its dashboard fails to start with a readable reason.""",
    )
    keep_days = Float(
        7,
        config=True,
        help="""Days an environment no instance has started in is kept before it is
        removed (checked after each build and at most hourly on starts); one that a
        running instance uses is never removed.""",
    )
    max_cache_bytes = Integer(
        5_000_000_000,
        config=True,
        help="""The most uv's cache of downloads (``<root>/cache``) may take, in bytes.
        Checked after each build: a larger cache is pruned (``uv cache prune``: entries
        nothing refers to) and, if still larger, emptied (``uv cache clean``; built
        environments keep their files). 0: never pruned.""",
    )
    uv = Unicode(
        config=True,
        help="""Path of the ``uv`` program (default: the one from PyPI's
        ``uv`` package in hub_viz's environment).""",
    )

    @default("root")
    def _default_root(self) -> str:
        return os.path.abspath("environments")

    @default("uv")
    def _default_uv(self) -> str:
        return _default_uv()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_gc = 0.0

    # -- folders ------------------------------------------------------------

    @property
    def base(self) -> Path:
        return Path(self.root)

    def _dir(self, name: str, mode: int = 0o755) -> Path:
        path = self.base / name
        if not path.is_dir():
            self.base.mkdir(mode=0o755, parents=True, exist_ok=True)
            path.mkdir(mode=mode, exist_ok=True)
        return path

    def index_args(self) -> list[str]:
        """The operator's package sources, as uv options."""
        args: list[str] = []
        if self.no_index:
            args.append("--no-index")
        elif self.index_url:
            args.append(f"--index-url={self.index_url}")
        if not self.no_index:
            args += [f"--extra-index-url={u}" for u in self.extra_index_urls]
        args += [f"--find-links={f}" for f in self.find_links]
        return args

    def input_digest(self, reqs: Requirements) -> str:
        return reqs.digest(python_tag(), *self.index_args())

    def env_key(self, install: str) -> str:
        """The environment of an install list (:func:`install_list`) on this Python and layer."""
        h = hashlib.sha256(install.encode())
        for item in (python_tag(), *layer_dirs()):
            h.update(b"\0" + item.encode())
        return h.hexdigest()[:32]

    # -- records the author reads --------------------------------------------

    def _record_path(self, digest: str) -> Path:
        return self._dir("builds", 0o700) / f"{digest}.json"

    def _write_record(self, digest: str, **fields: Any) -> None:
        path = self._record_path(digest)
        record = read_json(path) | fields
        write_json(path, record)

    def point(self, dashboard: str, digest: str, **fields: Any) -> None:
        """Remember which build a dashboard (``owner/slug``) uses, for its author's log."""
        owner, slug = dashboard.split("/", 1)
        folder = self._dir("dashboards", 0o700) / safe_name(owner)
        folder.mkdir(mode=0o700, exist_ok=True)
        write_json(
            folder / f"{safe_name(slug)}.json", {"build": digest, "time": time.time(), **fields}
        )

    # -- resolve and build ------------------------------------------------------

    async def prepare(
        self, reqs: Requirements, *, dashboard: str = "", version: Any = None
    ) -> Prepared:
        """The environment for ``reqs``: resolved and built if needed, else reused
        (``version``: the dashboard's version this is for, kept in its pointer)."""
        digest = self.input_digest(reqs)
        await asyncio.get_running_loop().run_in_executor(None, hub_versions)  # cached after
        if isinstance(version, int) and not isinstance(version, bool):
            reqs_source = {"source": reqs.source, "version": version}
        else:
            reqs_source = {"source": reqs.source}
        if dashboard:
            self.point(dashboard, digest, **reqs_source)
        lock = self._locks.setdefault(digest, asyncio.Lock())
        async with lock:  # the same requirements wait for one build
            lock_file = self._dir("locks") / f"{digest}.txt"
            log_path = self._dir("builds", 0o700) / f"{digest}.log"
            if lock_file.is_file():
                key = self.env_key(install_list(lock_file.read_text()))
                env = self._dir("envs") / key
                if (env / COMPLETE).is_file():
                    touch(env / LAST_USED)
                    touch(lock_file)
                    self._append_log(
                        log_path, f"Using environment {key} (built before).", once=True
                    )
                    self._write_record(
                        digest,
                        state="ready",
                        env=key,
                        message="",
                        used=time.time(),
                        built_now=False,
                    )
                    if dashboard:
                        self.point(dashboard, digest, **reqs_source, env=key, built_now=False)
                    await self.maybe_collect()
                    return Prepared(key, str(env / "bin" / "python"), built_now=False)
            log_path.write_text("")
            self._write_record(
                digest,
                state="building",
                message=BUILDING_MESSAGE,
                started=time.time(),
                source=reqs.source,
            )
            try:
                key, built = await asyncio.wait_for(
                    self._resolve_and_build(reqs, lock_file, log_path), self.build_timeout
                )
            except asyncio.TimeoutError:
                message = (
                    f"Building the environment took longer than {self.build_timeout:g} "
                    "seconds, the most this hub allows."
                )
                self._fail(digest, log_path, message)
                raise BuildError(message) from None
            except BuildError as e:
                self._fail(digest, log_path, e.message)
                raise
            self._write_record(
                digest, state="ready", env=key, message="", finished=time.time(), built_now=built
            )
            if dashboard:
                self.point(dashboard, digest, **reqs_source, env=key, built_now=built)
        await self.maybe_collect(force=True)
        return Prepared(key, str(self.base / "envs" / key / "bin" / "python"), built_now=built)

    def _fail(self, digest: str, log_path: Path, message: str) -> None:
        self._append_log(log_path, message.splitlines()[0])
        self._write_record(digest, state="failed", message=message, finished=time.time())

    def _append_log(self, path: Path, line: str, once: bool = False) -> None:
        """Add a line to a build log (``once``: unless it already ends with it)."""
        text = redact(line).rstrip() + "\n"
        if once and path.is_file() and path.stat().st_size >= len(text):
            with open(path, "rb") as f:
                f.seek(-len(text.encode()), os.SEEK_END)
                if f.read().decode(errors="replace") == text:
                    return
        with open(path, "a") as out:
            out.write(text)

    async def _resolve_and_build(
        self, reqs: Requirements, lock_file: Path, log_path: Path
    ) -> tuple[str, bool]:
        """Resolve (once) and build (once per environment): its key, and whether this
        call built it."""
        if not is_file(lock_file):
            source = lock_file.with_suffix(".in")
            source.write_text(reqs.text)
            self._append_log(log_path, f"Resolving {reqs.source} ({len(reqs.lines)} requirements)…")
            partial = lock_file.with_suffix(".partial")
            # uv prefers the versions already in its output file: the hub's own
            partial.write_text(hub_freeze())
            await self._uv(
                log_path,
                "pip",
                "compile",
                str(source),
                "-o",
                str(partial),
                "--no-header",
                "--no-annotate",
                "--python",
                sys.executable,
                *self._common_args(),
                what="Resolving the requirements",
            )
            partial.replace(lock_file)
        install = install_list(read_text(lock_file))
        key = self.env_key(install)
        # other requirements may resolve to the same environment: one build of it at a time
        async with self._locks.setdefault(f"env-{key}", asyncio.Lock()):
            return await self._build(key, install, log_path)

    async def _build(self, key: str, install: str, log_path: Path) -> tuple[str, bool]:
        env = self._dir("envs") / key
        if (env / COMPLETE).is_file():  # another input resolved to the same lock
            self._append_log(log_path, f"Using environment {key} (same lock, built before).")
            touch(env / LAST_USED)
            return key, False
        if env.exists():  # an earlier build did not finish
            shutil.rmtree(env, ignore_errors=True)
        self._append_log(log_path, f"Building environment {key}…")
        started = time.monotonic()
        # the environment's site-packages are empty while uv asks its Python about itself
        await self._uv(
            log_path,
            "venv",
            str(env),
            "--python",
            sys.executable,
            "--no-project",
            "--quiet",
            what="Creating the environment",
        )
        if install:
            (env / "hub-viz-install.txt").write_text(install)
            await self._uv(
                log_path,
                "pip",
                "sync",
                str(env / "hub-viz-install.txt"),
                "--python",
                str(env / "bin" / "python"),
                *self._common_args(),
                what="Installing the packages",
            )
        else:
            self._append_log(log_path, "Every locked package is hub_viz's own version.")
        write_layer(env)
        open_to_readers(env)
        size = tree_bytes(env)
        if size > self.max_env_bytes:
            shutil.rmtree(env, ignore_errors=True)
            raise BuildError(
                f"The environment takes {size / 1e6:.0f} MB, more than the "
                f"{self.max_env_bytes / 1e6:.0f} MB this hub allows."
            )
        write_json(
            env / "hub-viz-env.json",
            {
                "key": key,
                "built": time.time(),
                "seconds": time.monotonic() - started,
                "python": python_tag(),
                "bytes": size,
            },
        )
        touch(env / LAST_USED)
        (env / COMPLETE).write_text(install)
        self._append_log(
            log_path,
            f"Built environment {key} in {time.monotonic() - started:.1f} s ({size / 1e6:.1f} MB).",
        )
        return key, True

    def _common_args(self) -> list[str]:
        # wheels only: building a source distribution would run its setup code as the hub
        return ["--only-binary", ":all:", *self.index_args()]

    def _uv_env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(
                ("UV_", "PIP_", "JUPYTERHUB_", "HUB_VIZ_", "VIRTUAL_ENV", "CONDA_", "PYTHON")
            )
        }
        env.update(
            UV_CACHE_DIR=str(self._dir("cache")),
            UV_NO_CONFIG="1",
            UV_NO_PROGRESS="1",
            NO_COLOR="1",
            UV_PYTHON_DOWNLOADS="never",
        )
        return env

    async def _uv(self, log_path: Path, *args: str, what: str) -> None:
        """Run uv (argv, no shell) in the build folder; its output goes to the build log."""
        proc = await asyncio.create_subprocess_exec(
            self.uv,
            *args,
            cwd=str(self._dir("locks")),
            env=self._uv_env(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        assert proc.stdout is not None
        lines: list[str] = []
        try:
            while True:
                line = await proc.stdout.readline()
                if not line:
                    break
                text = line.decode("utf-8", "replace").rstrip()
                lines.append(text)
                self._append_log(log_path, text)
            code = await proc.wait()
        except asyncio.CancelledError:  # the build's time ran out
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 9)
            raise
        if code != 0:
            detail = "\n".join(line for line in lines if line.strip())[-2000:]
            raise BuildError(
                redact(f"{what} failed:\n{detail}"),
                log_message=redact(f"uv {' '.join(args[:2])} exited with {code}: {detail[-300:]}"),
            )

    # -- garbage collection ---------------------------------------------------------

    async def maybe_collect(self, force: bool = False) -> None:
        if force or time.time() - self._last_gc > 3600:
            self._last_gc = time.time()
            removed = await asyncio.get_running_loop().run_in_executor(None, self.collect_garbage)
            for key in removed:
                self.log.info("Removed environment %s (unused for %g days)", key, self.keep_days)
            pruned = await asyncio.get_running_loop().run_in_executor(None, self.prune_cache)
            if pruned:
                self.log.info(
                    "uv's cache was larger than %d bytes: %s", self.max_cache_bytes, pruned
                )

    def collect_garbage(
        self, now: float | None = None, in_use: set[str] | None = None
    ) -> list[str]:
        """Remove environments unused for :attr:`keep_days` that no process runs in
        (``in_use``: the keys in use, where this machine's processes do not tell, e.g.
        the labels of running pods)."""
        envs = self.base / "envs"
        if not envs.is_dir():
            return []
        now = time.time() if now is None else now
        horizon = now - self.keep_days * 86400
        in_use = running_environments(envs) if in_use is None else in_use
        removed = []
        for env in envs.iterdir():
            if not env.is_dir() or env.name in in_use:
                continue
            stamp = env / LAST_USED
            last = stamp.stat().st_mtime if stamp.exists() else env.stat().st_mtime
            if last < horizon:
                shutil.rmtree(env, ignore_errors=True)
                removed.append(env.name)
        for lock in (self.base / "locks").glob("*.txt"):
            if lock.stat().st_mtime < horizon:
                lock.unlink(missing_ok=True)
        return removed

    def prune_cache(self) -> str:
        """Keep uv's cache within :attr:`max_cache_bytes`: what was done ("", "pruned"
        or "emptied"). uv waits for builds that use the cache."""
        cache = self.base / "cache"
        if not self.max_cache_bytes or not cache.is_dir():
            return ""
        if tree_bytes(cache) <= self.max_cache_bytes:
            return ""
        for command, done in (("prune", "pruned"), ("clean", "emptied")):
            proc = subprocess.run(
                [self.uv, "cache", command],
                env=self._uv_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=600,
            )
            if proc.returncode != 0:
                self.log.warning("uv cache %s failed: %s", command, redact(proc.stderr[-300:]))
                return ""
            if tree_bytes(cache) <= self.max_cache_bytes:
                return done
        return "emptied"


class LockingBuilder(EnvironmentBuilder):
    """A builder that shares its root with other processes (the service's builds at
    publish time, build pods on a shared volume): the same requirements resolve, and
    the same environment builds, in one process at a time (POSIX locks in the root,
    which also hold across NFS clients)."""

    async def prepare(
        self, reqs: Requirements, *, dashboard: str = "", version: Any = None
    ) -> Prepared:
        lock = self._dir("locks") / f"{self.input_digest(reqs)}.flock"
        held = await asyncio.get_running_loop().run_in_executor(None, lock_file, lock)
        try:
            return await super().prepare(reqs, dashboard=dashboard, version=version)
        finally:
            held.close()  # releases the lock

    async def _build(self, key: str, install: str, log_path: Path) -> tuple[str, bool]:
        lock = self._dir("envs") / f"{key}.lock"
        held = await asyncio.get_running_loop().run_in_executor(None, lock_file, lock)
        try:
            return await super()._build(key, install, log_path)
        finally:
            held.close()


def lock_file(path: Path) -> Any:
    """``path`` opened and locked (``lockf``, waits for other processes); close to release."""
    f = open(path, "a")
    try:
        fcntl.lockf(f, fcntl.LOCK_EX)
    except BaseException:
        f.close()
        raise
    return f


_VERSIONS: dict[tuple, dict[str, str]] = {}


def hub_versions() -> dict[str, str]:
    """Normalised name -> version of every distribution in the layer (hub_viz's own);
    read again only when a folder of the layer changed (a third of a second for ~250)."""
    dirs = layer_dirs()
    stamp = tuple((d, os.stat(d).st_mtime_ns) for d in dirs)
    if stamp not in _VERSIONS:
        found: dict[str, str] = {}
        for dist in importlib.metadata.distributions(path=dirs):
            name = dist.metadata["Name"] if dist.metadata else None
            if name:
                found.setdefault(canonicalize_name(name), dist.version)
        _VERSIONS.clear()
        _VERSIONS[stamp] = found
    return _VERSIONS[stamp]


def hub_freeze() -> str:
    """The layer's packages as pins (``name==version``), one per line."""
    return "".join(f"{n}=={v}\n" for n, v in sorted(hub_versions().items()))


def install_list(lock: str) -> str:
    """The lock's lines the layer does not already satisfy at the same version: what the
    environment installs (the rest is used from hub_viz's environment below it)."""
    have = hub_versions()
    keep = []
    for line in lock.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement:
            keep.append(line)
            continue
        pins = [s.version for s in req.specifier if s.operator == "=="]
        if req.url or len(pins) != 1 or have.get(canonicalize_name(req.name)) != pins[0]:
            keep.append(line)
    return "".join(line + "\n" for line in keep)


def write_layer(env: Path) -> None:
    """The ``.pth`` that puts hub_viz's site-packages after the environment's own."""
    purelib = next((env / "lib").glob("python*/site-packages"))
    lines = "".join(f"import site; site.addsitedir({d!r})\n" for d in layer_dirs())
    (purelib / LAYER_PTH).write_text(lines)


def open_to_readers(env: Path) -> None:
    """Every account may read and run the environment (sandbox and viewer accounts run
    dashboards in it), only the hub may change it: ``go+rX,go-w`` on it and the folders
    above it, whatever the hub's umask."""
    for path in (env.parent.parent, env.parent):  # the root and envs/: enter only
        os.chmod(path, (path.stat().st_mode | 0o011) & ~0o022 & 0o7777)
    for top, dirs, files in os.walk(env):
        for name in [*dirs, *files]:
            entry = os.path.join(top, name)
            info = os.lstat(entry)
            if stat.S_ISLNK(info.st_mode):
                continue
            mode = info.st_mode | 0o444
            if stat.S_ISDIR(info.st_mode) or info.st_mode & 0o100:
                mode |= 0o111
            os.chmod(entry, mode & ~0o022 & 0o7777)
    os.chmod(env, 0o755)


def running_environments(envs: Path) -> set[str]:
    """Environment keys some process on this machine runs with (its argv names them)."""
    prefix = str(envs) + os.sep
    found: set[str] = set()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        for arg in argv[:2]:
            text = arg.decode(errors="replace")
            if text.startswith(prefix):
                found.add(text[len(prefix) :].split(os.sep, 1)[0])
    return found


def tree_bytes(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def is_file(path: Path) -> bool:
    return path.is_file()


def read_text(path: Path) -> str:
    return path.read_text()


def touch(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.touch()


def safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+@-]", "_", name)[:200] or "_"


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


_BUILDERS: dict[int, EnvironmentBuilder] = {}


def shared_builder(config: Any) -> EnvironmentBuilder:
    """The one builder of this process for ``config`` (its locks queue every build)."""
    builder = _BUILDERS.get(id(config))
    if builder is None:
        builder = _BUILDERS[id(config)] = LockingBuilder(config=config)
    return builder


def build_log(root: str, owner: str, slug: str, lines: int = LOG_TAIL) -> dict[str, Any] | None:
    """The environment build of dashboard ``owner/slug`` as its author reads it: state
    (building, ready, failed), message and the log's last ``lines`` (None: no build)."""
    base = Path(root)
    pointer = read_json(base / "dashboards" / safe_name(owner) / f"{safe_name(slug)}.json")
    digest = pointer.get("build")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        return None
    record = read_json(base / "builds" / f"{digest}.json")
    try:
        log = (base / "builds" / f"{digest}.log").read_text(errors="replace").splitlines()
    except OSError:
        log = []
    return {
        "state": record.get("state", "unknown"),
        "message": record.get("message", ""),
        "env": record.get("env", ""),
        "source": pointer.get("source", ""),
        "built_now": pointer.get("built_now"),
        "version": pointer.get("version"),
        "build": digest,
        "log": log[-lines:],
    }
