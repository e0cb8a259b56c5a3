"""Spawners that run a dashboard instead of a notebook server.

:class:`DashboardSpawnerMixin` holds all dashboard logic: it turns the
server's ``user_options`` (or a predefined dashboard) into the launcher's
argv and environment, refuses a bad spec before anything starts, waits until
the app itself answers, and streams readable progress. The concrete classes
only pick where the process runs: :class:`DashboardLocalSpawner` (local
processes, the embedded default) and
:class:`hub_viz.kubespawner.DashboardKubeSpawner` (pods).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from traitlets import (
    Bool,
    Dict,
    Float,
    Instance,
    Integer,
    List,
    Unicode,
    default,
    validate,
)
from traitlets.config import LoggingConfigurable

from .environments import BUILDING_MESSAGE, BuildError, shared_builder
from .errors import HubVizError, SpecError
from .forkstart import ForkingLocalProcessSpawner, identity_of
from .frameworks import HUB_ONLY_FIELDS, PER_VIEWER, SERVICE_ONLY_FIELDS, Framework
from .gitreqs import git_requirements
from .layout import Layout
from .profiles import (
    Ceiling,
    Profile,
    Resources,
    effective_resources,
    parse_profiles,
    pick_profile,
)
from .requirements import Requirements, find_requirements, requirement_folders
from .sandbox import (
    RunAs,
    SandboxError,
    can_read,
    can_write,
    choose_account,
    make_home,
    preexec_fn,
    remove_home,
    sandbox_env,
)
from .settings import DashboardSettings, load_settings
from .signing import Verifier
from .snapshots import snapshot_path
from .sources import GitSource
from .spec import SPEC_KEYS, ResolvedSpec, check_entry_path, resolve_spec
from .viewerwork import make_work_folder, work_folder

try:  # JupyterHub >= 6
    from jupyterhub.spawner import SpawnException
except ImportError:  # JupyterHub 5.x
    SpawnException = None

__all__ = ["DashboardLocalSpawner", "DashboardSpawnerMixin"]

# Seconds of the hub's start_timeout kept for starting the launcher and reading its status.
START_MARGIN = 4
# Seconds a status request waits in the launcher while the app starts (``?wait=``).
STATUS_WAIT = 1.0


def spawn_error(message: str, *, reason: str, log_message: str = "") -> Exception:
    """An exception whose message the hub shows to the user on the spawn page.

    JupyterHub 6 has ``SpawnException``; 5.x reads ``jupyterhub_message``.
    """
    if SpawnException is not None:
        exc: Exception = SpawnException(message, reason=reason, log_message=log_message)
    else:
        exc = web.HTTPError(400, "%s", message)
    exc.jupyterhub_message = message  # type: ignore[attr-defined]
    return exc


def check_user_options(spawner: Any, user_options: dict[str, Any]) -> None:
    """JupyterHub's ``apply_user_options`` hook (5.3+): the spawner reads its spec from
    ``user_options`` when it starts; here a server with nothing to run (the hub's own
    "Add New Server") is refused at once, with a message that points to the gallery."""
    try:
        spawner.dashboard_options()
    except HubVizError as e:
        message = f"Cannot start dashboard {spawner.name!r}: {e.message}"
        error = web.HTTPError(400, "%s", message)
        error.jupyterhub_message = message  # type: ignore[attr-defined]
        raise error from None


def is_open_url(url: str) -> bool:
    """A path on the hub's origin, or the service's absolute URL on the isolated layout."""
    parts = urlsplit(url)
    if not parts.scheme and not parts.netloc:
        return url.startswith("/") and not url.startswith("//")
    return (
        parts.scheme in ("http", "https")
        and bool(parts.hostname)
        and not (parts.username or parts.password)
    )


def framework_json(framework: Framework) -> str:
    """Serialise a framework record for the launcher (``HUB_VIZ_FRAMEWORK``), without
    the fields only the service reads (a launcher of another version may not know them)."""
    record = dataclasses.asdict(framework)
    for name in (*SERVICE_ONLY_FIELDS, *HUB_ONLY_FIELDS):
        record.pop(name, None)
    if not record.get("pool_status_path"):  # unknown to launchers before it
        record.pop("pool_status_path", None)
    return json.dumps(record)


def _shared(name: str) -> property:
    """A setting the spawner reads from :class:`~hub_viz.settings.DashboardSettings`."""
    return property(
        lambda self: getattr(self.settings, name),
        doc=f"``DashboardSettings.{name}`` (shared with the service).",
    )


class DashboardSpawnerMixin(LoggingConfigurable):
    """Dashboard logic shared by the local and the Kubernetes spawner."""

    if TYPE_CHECKING:  # what JupyterHub's Spawner, which this is mixed into, provides
        name: str
        user: Any
        db: Any
        server: Any
        user_options: dict[str, Any]
        ip: str
        port: int
        api_token: str
        _log_name: str

    settings = Instance(
        DashboardSettings,
        help="What this spawner and the service both read (``c.DashboardSettings``).",
    )

    @default("settings")
    def _default_settings(self) -> DashboardSettings:
        return load_settings(self.config, parent=self)

    dashboards_root = _shared("dashboards_root")
    allowed_frameworks = _shared("allowed_frameworks")
    check_files = _shared("check_files")
    git_schemes = _shared("git_schemes")
    snapshots_root = _shared("snapshots_root")
    snapshot_max_bytes = _shared("snapshot_max_bytes")
    profiles = _shared("profiles")
    resource_ceiling = _shared("resource_ceiling")
    max_warm_kernels = _shared("max_warm_kernels")
    warm_pool_user = _shared("warm_pool_user")
    activity_interval = _shared("activity_interval")

    predefined_dashboards = Dict(
        config=True,
        help="""Dashboards started by server name when the request carries no spec.

        Maps a named-server name to a spec, e.g.
        ``{"sales": {"framework": "dash", "entry": "sales/app.py"}}``; then
        ``/hub/spawn/<user>/sales`` starts it.
        """,
    )

    launcher_command = List(
        Unicode(),
        config=True,
        help="""argv that starts the launcher; its options are appended.""",
    )

    app_ready_timeout = Float(
        120,
        config=True,
        help="""Seconds the app may take to answer after its process started.""",
    )

    wait_for_app = Bool(
        True,
        config=True,
        help="""Finish the spawn only when the app itself answers.

        On (default), an app that crashes at start-up is a failed spawn whose
        reason the owner reads on the hub's spawn page. Off, the spawn finishes
        as soon as the launcher listens and viewers see the launcher's
        start-up page (with the live log for the owner) until the app is up.
        """,
    )

    access_check_interval = Float(
        60,
        config=True,
        help="""Seconds a launcher trusts that a viewer may see the dashboard before asking
        again: the service for viewers it admitted with a grant, the hub (HubOAuth's cache)
        for hub logins. A viewer whose access was withdrawn is refused on their first
        request after this.""",
    )

    launcher_max_body_size = Integer(
        64 * 1024 * 1024,
        config=True,
        help="""The largest request body (bytes) a launcher passes to its app (an upload, say);
        larger ones are refused with 413. Bodies are streamed to the app as they arrive and
        never held whole, and only after the viewer was let in.""",
    )

    launcher_body_timeout = Float(
        300,
        config=True,
        help="""Seconds a request body may take to reach a launcher before it closes the
        connection (a client that sends its upload slowly or never finishes it).""",
    )

    launcher_idle_timeout = Float(
        300,
        config=True,
        help="""Seconds a launcher keeps a connection that sends nothing (between requests,
        or before a request's headers are complete). Keep it above the proxy's own
        keep-alive timeout so that the proxy, not the launcher, closes idle connections.""",
    )

    service_public_key = Unicode(
        config=True,
        help="""PEM public key of the hub_viz service (default: read from
        ``service_public_key_file``).

        With it, the spawner accepts dashboard specs signed by the service
        (per-viewer instances of someone else's dashboard, git sources), and
        launchers accept the service's open grants. Without it, a server runs
        only its owner's own files.
        """,
    )

    service_public_key_file = Unicode(
        "",
        config=True,
        help="""File of the service's public key (``configure()`` sets it; the hub makes
        the key pair when it starts, see :func:`hub_viz.hubstart.prepare_service`).
        Read when a server starts; a missing file means no service key.""",
    )

    @default("service_public_key")
    def _default_service_public_key(self) -> str:
        path = Path(self.service_public_key_file) if self.service_public_key_file else None
        return path.read_text() if path is not None and path.is_file() else ""

    service_url = Unicode(
        "",
        config=True,
        help="""URL at which launchers reach the hub_viz service (``configure()`` sets it),
        e.g. ``http://127.0.0.1:10101/services/hub-viz/``; launchers read their
        dashboard's embed origins there for ``frame-ancestors``.""",
    )

    git_max_bytes = Integer(
        200_000_000,
        config=True,
        help="""The most a dashboard's git checkout may take on disk, in bytes (the
        repository's history at depth 1 and its files). The instance fetches its
        source and stops the fetch with a readable error once it grows past this.""",
    )

    git_timeout = Float(
        120,
        config=True,
        help="""Seconds an instance may take to fetch its git source, before the app
        starts; it counts against the hub's ``Spawner.start_timeout``.""",
    )

    sandbox_environment = Dict(
        config=True,
        help="""Environment of an instance running another author's code (a viewer's
        per-viewer instance, a warm-pool instance), given *instead of*
        ``Spawner.environment``: that one is often filled per user (e.g. an
        ``auth_state_hook`` adding the user's access tokens), and the server's
        owner is not the code's author. Example: ``{"MPLBACKEND": "Agg"}``.
        """,
    )

    viewer_work_root = Unicode(
        config=True,
        help="""Folder of viewers' own copies of per-viewer dashboards.

        A per-viewer instance never runs in its author's folder: it copies the
        entry's folder into ``<root>/<viewer>/<owner>/<slug>-<tag>`` on its
        first start and runs the app there, so what the viewer saves stays
        theirs and is there when their instance starts again. Default: the
        ``viewer-work`` folder of the hub's state dir (``configure()`` sets it),
        else of the hub's working directory; on Kubernetes a folder in the
        pod's per-viewer storage.
        """,
    )

    viewer_work_max_bytes = Integer(
        200_000_000,
        config=True,
        help="""The most a per-viewer dashboard's folder may hold, in bytes, to be
        copied for a viewer; a larger one fails to start with a readable reason.""",
    )

    @default("viewer_work_root")
    def _default_viewer_work_root(self) -> str:
        return os.path.abspath("viewer-work")

    @default("launcher_command")
    def _default_launcher_command(self) -> list[str]:
        return ["hub-viz-launch"]

    @validate("proxy_spec")
    def _route_on_its_own_host(self, proposal: Any) -> str:
        """On the isolated layout each named server gets a host of its own.

        JupyterHub gives hosts to users; the proxy route is this server's
        ``proxy_spec`` (added, checked and removed by it), so moving the route
        here gives every dashboard instance its own origin.
        """
        layout = self.layout()
        if not layout.isolated or not self.name:
            return proposal.value
        return layout.server_proxy_spec(self.user.name, self.name)

    def layout(self) -> Layout:
        """The hub's layout, from its settings (path-based when it has no subdomain_host)."""
        settings = getattr(getattr(self, "user", None), "settings", None) or {}
        return Layout(settings.get("subdomain_host") or "", base_url=settings.get("base_url", "/"))

    def own_host_callback(self) -> str:
        """On the isolated layout, this server's OAuth callback on its own host, else ``""``."""
        layout = self.layout()
        if not layout.isolated or not self.name:
            return ""
        return layout.server_url(self.user.name, self.name) + "oauth_callback"

    def move_oauth_callback(self) -> None:
        """Point the server's hub OAuth client at its own host: the hub registers it on the
        user's host, where this server's route no longer is (the hub login of viewers who
        come without a grant, e.g. to a server started through the hub's API)."""
        callback = self.own_host_callback()
        client = getattr(getattr(self, "orm_spawner", None), "oauth_client", None)
        if callback and client is not None and client.redirect_uri != callback:
            client.redirect_uri = callback
            self.db.commit()

    @property
    def frameworks(self) -> dict[str, Framework]:
        return self.settings.frameworks

    # -- spec -------------------------------------------------------------

    _signed: dict[str, Any] | None = None

    def signed_spec(self) -> dict[str, Any] | None:
        """The service-signed spec in ``user_options`` (verified), if any."""
        token = (self.user_options or {}).get("hub_viz_spec")
        if token is None:
            return None
        if not self.service_public_key:
            raise SpecError("This hub does not accept dashboard specs from the hub_viz service.")
        if not isinstance(token, str):
            raise SpecError("'hub_viz_spec' must be a signed token.")
        return Verifier(self.service_public_key).spec(token, self.user.name, self.name)

    def dashboard_options(self) -> dict[str, Any]:
        """The spec for this server: ``user_options``, else a predefined dashboard."""
        if self._signed is not None:
            return {k: v for k, v in self._signed.items() if k in SPEC_KEYS}
        options = dict(self.user_options or {})
        if not options and self.name in self.predefined_dashboards:
            options = dict(self.predefined_dashboards[self.name])
        if not options:
            names = ", ".join(sorted(self.predefined_dashboards)) or "none"
            raise SpecError(
                f"No dashboard is defined for server {self.name!r}. Dashboards open from "
                "the gallery on the hub's home page. (Through the API, start it with a "
                f"spec (framework, entry) or use a predefined dashboard: {names}.)"
            )
        return options

    @default("apply_user_options")
    def _default_apply_user_options(self) -> Any:
        return check_user_options

    _git: GitSource | None = None

    def code_author(self) -> str:
        """Whose code this server runs: the signed spec's source owner, else the server's owner."""
        return (self._signed or {}).get("source_owner") or self.user.name

    def runs_others_code(self) -> bool:
        """Does this server run code of someone other than its owner (per-viewer, warm pool)?"""
        return self.code_author() != self.user.name

    async def dashboard_root(self) -> Path:
        """Where the entry lives: the source owner's or this user's folder.

        A git source is only checked here (its form): the instance fetches it
        (:mod:`hub_viz.launcher.source`), never the hub.
        """
        signed = self._signed or {}
        self._git = (
            GitSource.from_spec(signed["git"], schemes=tuple(self.git_schemes))
            if signed.get("git")
            else None
        )
        owner = signed.get("source_owner") or self.user.name
        snapshot = signed.get("snapshot")
        if snapshot and self._git is None:
            # a version's read-only copy of the author's files (hub_viz.snapshots)
            if not self.snapshots_root:
                raise SpecError(
                    "This dashboard's version runs from a copy of its files, and this hub "
                    "keeps none (DashboardSettings.snapshots_root is empty)."
                )
            owner_slug = self.dashboard_ref().split("/", 1)
            return snapshot_path(self.snapshots_root, owner_slug[0], owner_slug[1], snapshot)
        return Path(self.dashboards_root.format(username=owner))

    def git_args(self) -> list[str]:
        """The launcher's options that make it fetch the git source before the app starts."""
        if self._git is None:
            return []
        return [
            f"--git-url={self._git.url}",
            f"--git-ref={self._git.ref}",
            f"--git-schemes={','.join(self.git_schemes)}",
            f"--git-max-bytes={self.git_max_bytes}",
            f"--git-timeout={self.git_timeout:g}",
        ]

    def work_names(self) -> tuple[str, str, str]:
        """(viewer, owner, slug) whose work folder a per-viewer instance uses."""
        dashboard = (self._signed or {}).get("dashboard")
        if isinstance(dashboard, str) and dashboard.count("/") == 1:
            owner, slug = dashboard.split("/")
            return self.user.name, owner, slug
        return self.user.name, self.user.name, self.name

    _work_dir = ""

    def work_dir(self) -> str:
        """This instance's work folder (made by the instance): ``--work-dir``."""
        return str(work_folder(Path(self.viewer_work_root), *self.work_names()))

    def work_args(self) -> list[str]:
        """The launcher's options that run a per-viewer instance in the viewer's own copy."""
        spec = self._dashboard
        if spec is None or spec.mode != PER_VIEWER:
            return []
        args = [f"--work-max-bytes={self.viewer_work_max_bytes}"]
        if self.user.name == self.warm_pool_user:  # no viewer yet: a copy for this run only
            return [*args, "--work-scratch"]
        return [*args, f"--work-dir={self._work_dir or self.work_dir()}"]

    async def resolve_dashboard(self) -> ResolvedSpec:
        """Check the spec; raises a spawn error the user can read."""
        try:
            self._signed = self.signed_spec()
            root = await self.dashboard_root()
            options = self.dashboard_options()
            resolved = resolve_spec(
                options,
                root=root,
                frameworks=self.frameworks,
                allowed_frameworks=self.allowed_frameworks,
                check_files=self.check_files and self._git is None,
                max_warm_kernels=self.max_warm_kernels,
            )
            self._profile, self._resources = self.resolve_resources(options)
            return resolved
        except HubVizError as e:
            raise spawn_error(
                f"Cannot start dashboard {self.name!r}: {e.message}",
                reason="invalid-spec",
                log_message=e.log_message,
            ) from None

    _profile: Profile | None = None
    _resources: Resources = Resources()

    def resolve_resources(self, options: dict[str, Any]) -> tuple[Profile | None, Resources]:
        """The spec's profile and limits, checked against the operator's ceiling."""
        ceiling = Ceiling.parse(self.resource_ceiling)
        profiles = parse_profiles(self.profiles, ceiling)
        profile = pick_profile(profiles, options.get("profile"))
        return profile, effective_resources(profile, options.get("resources"), ceiling)

    def prepare(self) -> None:
        """Hook between checking the spec and starting: set this start's settings."""

    async def check_before_start(self) -> None:
        """Hook after :meth:`prepare`: refuse (with a readable spawn error) what cannot start."""

    _env_python = ""
    # Dashboard environments are built where the instance runs: on this machine only.
    builds_environments = False

    def dashboard_ref(self) -> str:
        """``owner/slug`` of the dashboard this server runs (its own name if unsigned)."""
        dashboard = (self._signed or {}).get("dashboard")
        if isinstance(dashboard, str) and dashboard.count("/") == 1:
            return dashboard
        return f"{self.user.name}/{self.name}"

    async def prepare_environment(self) -> None:
        """Build (or reuse) the environment the dashboard's requirement file declares;
        without one, or where the hub cannot see the files, it runs in hub_viz's own.
        See :mod:`hub_viz.environments` (``c.EnvironmentBuilder``)."""
        self._env_python = ""
        builder = shared_builder(self.config)
        spec = self._dashboard
        if spec is None or not self.builds_environments or not builder.enabled:
            return
        if self._git is None and not self.check_files:
            return
        try:
            if self._git is not None:
                reqs = await self.git_requirements(builder)
            else:
                reqs = find_requirements(
                    requirement_folders(Path(spec.cwd), spec.entry),
                    allow_urls=builder.allow_requirement_urls,
                    within=await self.dashboard_root(),
                )
        except HubVizError as e:
            raise spawn_error(
                f"Cannot start dashboard {self.name!r}: {e.message}", reason="invalid-requirements"
            ) from None
        except OSError as e:
            raise spawn_error(
                f"Cannot start dashboard {self.name!r}: the hub cannot read its requirement "
                "file (it must be readable by others: chmod o+r).",
                reason="invalid-requirements",
                log_message=f"{spec.cwd}: {e}",
            ) from None
        if reqs is None:
            return
        self._emit(15, BUILDING_MESSAGE)
        try:
            prepared = await builder.prepare(
                reqs, dashboard=self.dashboard_ref(), version=(self._signed or {}).get("version")
            )
        except BuildError as e:
            message = (
                "This dashboard's environment could not be built. Its author can "
                "read why in the dashboard's log on its manage page."
            )
            if not self.runs_others_code():  # the server's owner is the author: the reason
                message += f"\n{e.message}"
            raise spawn_error(
                message, reason="environment-failed", log_message=e.log_message
            ) from None
        if getattr(self, "_stop_asked", False):  # the hub gave up on this start meanwhile
            raise spawn_error(
                "The dashboard was stopped while its environment was prepared.", reason="stopped"
            )
        run = getattr(self, "_run_as", None)
        if (
            run is not None
            and run.account
            and not await can_read(run.account, os.path.dirname(prepared.python), "python")
        ):
            raise spawn_error(
                f"Cannot start dashboard {self.name!r}: the account that runs it cannot "
                "reach its environment. An administrator can read why in the hub's log.",
                reason="unreadable-environment",
                log_message=f"{run.account} cannot run {prepared.python}: the folders of "
                "EnvironmentBuilder.root need o+x (and the environment o+rx)",
            )
        self._env_python = prepared.python

    async def git_requirements(self, builder: Any) -> Requirements | None:
        """The requirement file of the git source at the commit the launcher will fetch
        (:mod:`hub_viz.gitreqs`: fetched with the instance's protections, read, removed;
        kept per commit in the builder's root)."""
        assert self._git is not None and self._dashboard is not None
        self._emit(12, "Reading the dashboard's requirements from its git repository…")
        folder = str(check_entry_path(self.dashboard_options().get("entry")).parent)
        return await git_requirements(
            self._git,
            folder,
            self._dashboard.entry,
            schemes=tuple(self.git_schemes),
            max_bytes=self.git_max_bytes,
            timeout=self.git_timeout,
            allow_urls=builder.allow_requirement_urls,
            cache=Path(builder.root) / "git-sources" if builder.root else None,
        )

    # -- what the launcher gets ---------------------------------------------

    @property
    def ready_timeout(self) -> float:
        """Seconds the launcher waits for the app: ``app_ready_timeout``, cut so that
        the launcher gives up (with the app's log) before the hub's ``start_timeout``."""
        start_timeout = getattr(self, "start_timeout", 0) or 0
        if start_timeout <= 0:
            return self.app_ready_timeout
        return max(1.0, min(self.app_ready_timeout, start_timeout - START_MARGIN))

    _dashboard: ResolvedSpec | None = None

    def get_args(self) -> list[str]:
        spec = self._dashboard
        assert spec is not None, "start() resolves the spec first"
        cwd = spec.cwd
        git = self.git_args()
        if git:  # the entry's folder inside the checkout the launcher makes
            cwd = str(check_entry_path(self.dashboard_options().get("entry")).parent)
        args = [
            f"--ip={self.ip or '127.0.0.1'}",
            f"--port={self.port}",
            f"--entry={spec.entry}",
            f"--cwd={cwd}",
            f"--ready-timeout={self.ready_timeout:g}",
            f"--activity-interval={self.activity_interval:g}",
            f"--access-interval={self.access_check_interval:g}",
            f"--max-body-size={self.launcher_max_body_size}",
            f"--body-timeout={self.launcher_body_timeout:g}",
            f"--idle-timeout={self.launcher_idle_timeout:g}",
        ]
        if spec.warm_kernels:
            args.append(f"--warm-kernels={spec.warm_kernels}")
            args.append(f"--max-warm-kernels={self.max_warm_kernels}")
            if spec.warm_burst:
                args.append(f"--warm-burst={spec.warm_burst}")
        if self._env_python:  # the dashboard's own environment
            args.append(f"--python={self._env_python}")
        args += git
        args += self.work_args()
        if self.debug:  # type: ignore[attr-defined]  # JupyterHub's Spawner.debug
            args.append("--debug")
        args += [f"--arg={a}" for a in spec.args]
        return args

    def get_env(self) -> dict[str, str]:
        if self.runs_others_code():
            # none of the owner's per-user environment reaches another author's code
            environment = self.environment  # type: ignore[has-type]
            self.environment = dict(self.sandbox_environment)
            try:
                env = super().get_env()  # type: ignore[misc]
            finally:
                self.environment = environment
            env.pop("JUPYTERHUB_ROOT_DIR", None)
        else:
            env = super().get_env()  # type: ignore[misc]
        assert self._dashboard is not None
        callback = self.own_host_callback()
        if callback:
            env["JUPYTERHUB_OAUTH_CALLBACK_URL"] = callback
            # the hub links to the user's host: the launcher sends that host here
            layout = self.layout()
            env["HUB_VIZ_PUBLIC_URL"] = layout.server_url(self.user.name, self.name)
            env["HUB_VIZ_USER_HOST"] = layout.user_host(self.user.name)
        env["HUB_VIZ_FRAMEWORK"] = framework_json(self._dashboard.framework)
        if self._env_python:
            # Jupyter data (Voilà templates, widget extensions): the dashboard's packages'
            # first, then the frameworks' from hub_viz's environment
            own = os.path.join(
                os.path.dirname(os.path.dirname(self._env_python)), "share", "jupyter"
            )
            shared = os.path.join(sys.prefix, "share", "jupyter")
            env["JUPYTER_PATH"] = os.pathsep.join(
                p for p in (env.get("JUPYTER_PATH", ""), own, shared) if p
            )
        env["HUB_VIZ_MODE"] = self._dashboard.mode
        # the dashboard's author: the owner of its log and status, whoever's server this is
        source_owner = (self._signed or {}).get("source_owner")
        env["HUB_VIZ_AUTHOR"] = (
            source_owner if isinstance(source_owner, str) and source_owner else self.user.name
        )
        if self.service_public_key:
            env["HUB_VIZ_SERVICE_KEY"] = self.service_public_key
        open_url = (self._signed or {}).get("open_url")
        if isinstance(open_url, str) and is_open_url(open_url):
            env["HUB_VIZ_OPEN_URL"] = open_url
        dashboard = (self._signed or {}).get("dashboard")
        if not (isinstance(dashboard, str) and dashboard.count("/") == 1):
            dashboard = None
        signed = dashboard is not None
        if self.service_url:
            service = self.service_url.rstrip("/")
            # an unsigned spec runs the owner's own dashboard, named like its slug
            ref = dashboard or f"{self.user.name}/{self.name}"
            owner, slug = (quote(part, safe="") for part in ref.split("/"))
            if signed:
                env["HUB_VIZ_EMBED_ORIGINS_URL"] = f"{service}/api/embed-origins/{owner}/{slug}"
            env["HUB_VIZ_ACCESS_URL"] = f"{service}/api/viewer-access/{owner}/{slug}"
        return env

    # -- progress ---------------------------------------------------------

    def _emit(self, progress: int, message: str) -> None:
        self._progress_events.append({"progress": progress, "message": message})

    async def progress(self) -> Any:
        sent = 0
        while True:
            events = getattr(self, "_progress_events", [])
            while sent < len(events):
                yield events[sent]
                sent += 1
            if getattr(self, "_progress_done", True) and sent >= len(events):
                return
            await asyncio.sleep(0.2)

    # -- lifecycle --------------------------------------------------------

    async def start(self) -> Any:
        self._progress_events: list[dict[str, Any]] = []
        self._progress_done = False
        self._stop_asked = False
        try:
            self._dashboard = await self.resolve_dashboard()
            framework = self._dashboard.framework.display_name
            self._emit(10, f"Starting the {framework} dashboard…")
            self.prepare()
            await self.check_before_start()
            await self.prepare_environment()
            self.move_oauth_callback()
            url = await super().start()  # type: ignore[misc]
            self._running_here = True  # from now on an end nobody asked for is reported
            if self.wait_for_app:
                await self.wait_for_app_ready(url, framework)
                self._emit(100, f"The {framework} dashboard is ready.")
            return url
        finally:
            self._progress_done = True

    async def stop(self, now: bool = False) -> None:
        self._stop_asked = True  # the culler, an admin, the service: not a crash
        self._running_here = False
        await self.report_stopping(self.api_token)
        await super().stop(now=now)  # type: ignore[misc]

    async def report_stopping(self, token: str) -> None:
        """Tell the hub_viz service that this server is being stopped, so that it sends
        no more viewers to it from the hub's earlier "ready" (a stop through the hub's
        API or by the culler, which the service would otherwise see only later).
        A short timeout, and a failure only logged: the stop goes on."""
        try:
            await self.tell_service("servers/stopping", token, b"", timeout=3)
        except Exception as e:
            self.log.info("Could not tell the hub_viz service that %s stops: %s", self._log_name, e)

    async def tell_service(self, path: str, token: str, body: bytes, timeout: float) -> None:
        """POST ``body`` to the service's ``api/<path>``, authenticated with this server's
        own API ``token`` (nothing without a service or a token)."""
        if not self.service_url or not token:
            return
        headers = {"Authorization": f"token {token}"}
        if body:
            headers["Content-Type"] = "application/json"
        request = HTTPRequest(
            f"{self.service_url.rstrip('/')}/api/{path}",
            method="POST",
            headers=headers,
            body=body,
            request_timeout=timeout,
        )
        await AsyncHTTPClient().fetch(request)

    async def poll(self) -> int | None:
        token = self.api_token  # a poll that finds the server gone clears it
        status = await super().poll()  # type: ignore[misc]
        if (
            status is not None
            and getattr(self, "_running_here", False)
            and not getattr(self, "_stop_asked", False)
        ):
            self._running_here = False
            await self.report_ended(status, token)
        return status

    async def report_ended(self, status: int, token: str) -> None:
        """Tell the hub_viz service that this server ended without anyone asking it to
        stop (the app or launcher exited, the pod was killed), so that its deployment
        record says "crashed" rather than a guess. Authenticated with the server's own
        API ``token`` (still valid here: the hub deletes it after this poll)."""
        body = json.dumps({"exit_status": int(status)}).encode()
        try:
            await self.tell_service("servers/ended", token, body, timeout=10)
        except Exception as e:  # the record is then closed from the hub's listing
            self.log.warning(
                "Could not tell the hub_viz service that %s ended (exit status %s): %s",
                self._log_name,
                status,
                e,
            )

    def _status_url(self, url: Any) -> str:
        if isinstance(url, tuple):
            ip, port = url
            url = f"http://{ip}:{port}"
        return url.rstrip("/") + self.server.base_url + "_hub_viz/status"

    async def wait_for_app_ready(self, url: Any, framework: str) -> None:
        """Wait until the launcher says the app answers; fail with its reason."""
        status_url = self._status_url(url)
        client = AsyncHTTPClient()
        # the launcher's own timeout comes first (with the app's log); 10 s slack when
        # the hub's start_timeout leaves room for it
        start_timeout = getattr(self, "start_timeout", 0) or 0
        room = start_timeout - self.ready_timeout - 1 if start_timeout > 0 else 10
        deadline = time.monotonic() + self.ready_timeout + min(10, max(START_MARGIN - 1, room))
        if self.git_args():  # the instance fetches its source first
            deadline += self.git_timeout
        delay = 0.05
        last_note = 0.0
        told_fetching = False
        while time.monotonic() < deadline:
            exit_code = await self.poll()
            asked = time.monotonic()
            # the launcher answers once the app is up (or after STATUS_WAIT): one request
            # a second per start, not five, keeps the hub free when a class starts at once
            status = await self._fetch_status(client, status_url + f"?wait={STATUS_WAIT:g}")
            if status and status.get("state") == "ready":
                return
            if status and status.get("state") in ("failed", "exited"):
                raise self._app_failed(framework, status)
            if exit_code is not None and not status:
                raise spawn_error(
                    f"The {framework} dashboard stopped while starting (exit code {exit_code}).",
                    reason="launcher-exited",
                )
            elapsed = (status or {}).get("elapsed", 0)
            if status and status.get("phase") == "fetching":
                if not told_fetching:
                    told_fetching = True
                    self._emit(20, "Fetching the dashboard's source from git…")
            elif status and elapsed - last_note >= 1:
                last_note = elapsed
                self._emit(
                    min(90, 30 + int(elapsed * 10)),
                    f"Waiting for {framework} to answer ({elapsed:.0f} s)…",
                )
            if time.monotonic() - asked < STATUS_WAIT / 2:  # a launcher that does not wait
                await asyncio.sleep(delay)
                delay = min(delay * 1.5, 0.2)
        raise spawn_error(
            f"The {framework} dashboard did not become ready in {self.ready_timeout:g} seconds.",
            reason="timeout",
        )

    async def _fetch_status(self, client: AsyncHTTPClient, url: str) -> dict[str, Any] | None:
        request = HTTPRequest(
            url,
            headers={"Authorization": f"token {self.api_token}"},
            request_timeout=5,
            follow_redirects=False,
        )
        try:
            response = await client.fetch(request, raise_error=False)
        except (OSError, HTTPClientError):
            return None
        if response.code != 200:
            return None
        try:
            return json.loads(response.body)
        except ValueError:
            return None

    def _app_failed(self, framework: str, status: dict[str, Any]) -> Exception:
        tail = "\n".join(status.get("log", [])[-12:])
        message = f"The {framework} dashboard failed to start. {status.get('message', '')}"
        if tail:
            message += f"\nLast lines of its log:\n{tail}"
        return spawn_error(message, reason="app-failed")


class DashboardLocalSpawner(DashboardSpawnerMixin, ForkingLocalProcessSpawner):
    """Dashboards as local processes: the embedded default (laptop, demo, tests).

    The author's own instance runs as the author. Another author's code (a
    viewer's per-viewer instance, a warm-pool instance) runs as
    :attr:`sandbox_user` with a throw-away home; see :mod:`hub_viz.sandbox`.
    """

    run_as_hub_user = Bool(
        False,
        config=True,
        help="""Run every dashboard as the hub's own system user.

        For demos and tests where hub users are not system users. Every
        dashboard then runs with the hub's permissions: do not use it where
        authors are not trusted. Another author's code still gets a
        throw-away home.
        """,
    )

    sandbox_user = Unicode(
        config=True,
        help="""System account that runs another author's code: a viewer's per-viewer
        instance of someone else's dashboard, and warm-pool instances.

        Default: the warm pool's account (``warm_pool_user``, ``hub-viz-pool``),
        so one unprivileged account runs all such code, warm or not. Each
        instance gets a fresh private home, removed when it stops, and must be
        able to read the author's files (folders ``o+x``, files ``o+r``); the
        author's folder is never made writable. A start is refused while the
        account does not exist (create it with ``useradd --system``), unless
        :attr:`allow_run_as_viewer` is on.
        """,
    )

    allow_run_as_viewer = Bool(
        False,
        config=True,
        help="""When :attr:`sandbox_user` does not exist, run another author's code as
        the viewer's own account instead of refusing to start it.

        Risky: the author's code then runs with everything the viewer's account
        can do: read and change the viewer's files, and plant files such as
        ``~/.ipython/profile_default/startup/*.py`` that run in every kernel the
        viewer starts later. Only for hubs where every viewer trusts every author.
        """,
    )

    sandbox_home = Unicode("", help="Throw-away home of the running instance (saved state).")

    builds_environments = True

    @default("sandbox_user")
    def _default_sandbox_user(self) -> str:
        return self.warm_pool_user

    @default("launcher_command")
    def _default_launcher_command(self) -> list[str]:
        return [sys.executable, "-m", "hub_viz.launcher"]

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        return list(self.launcher_command)

    _run_as: RunAs | None = None

    def run_as(self) -> RunAs:
        """Who runs this start (raises :class:`~hub_viz.sandbox.SandboxError`)."""
        return choose_account(
            owner=self.user.name,
            author=self.code_author(),
            run_as_hub_user=self.run_as_hub_user,
            sandbox_user=self.sandbox_user,
            allow_run_as_viewer=self.allow_run_as_viewer,
        )

    async def check_before_start(self) -> None:
        """Pick the account; for another author's code, check its files and make a home."""
        await super().check_before_start()
        try:
            run = self.run_as()
        except SandboxError as e:
            raise spawn_error(
                f"Cannot start dashboard {self.name!r}: {e.message}",
                reason="no-sandbox",
                log_message=e.log_message,
            ) from None
        spec = self._dashboard
        assert spec is not None
        # a git source is fetched by the instance itself, as that account: nothing to read
        if run.sandboxed and run.account and self.check_files and self._git is None:
            if not await can_read(run.account, spec.cwd, spec.entry):
                fix = (
                    f"Ask {self.code_author()} to make the dashboard's folder readable by "
                    "others (chmod o+rx on its folders, o+r on its files)."
                )
                raise spawn_error(
                    f"Cannot start dashboard {self.name!r}: this hub runs other authors' "
                    f"dashboards as the account {run.account!r}, which cannot read its "
                    f"files. {fix}",
                    reason="unreadable-source",
                    log_message=f"{run.account} cannot read {spec.entry} in {spec.cwd}",
                )
        self._run_as = run
        self._work_dir = await self.make_work_dir(run)
        if run.sandboxed:
            self.sandbox_home = str(make_home(run.account))

    async def make_work_dir(self, run: RunAs) -> str:
        """The viewer's work folder of a per-viewer instance, owned by the account running
        it ("" for shared instances and warm-pool ones, which copy into a scratch folder)."""
        spec = self._dashboard
        if spec is None or spec.mode != PER_VIEWER or self.user.name == self.warm_pool_user:
            return ""
        problem = ""
        try:
            folder = str(
                make_work_folder(
                    Path(self.viewer_work_root), *self.work_names(), account=run.account
                )
            )
        except (OSError, KeyError) as e:
            problem = str(e)
        else:
            if run.account is None or await can_write(run.account, folder):
                return folder
            problem = (
                f"{run.account} cannot reach {folder}: its parent folders need o+x "
                "(DashboardLocalSpawner.viewer_work_root)"
            )
        raise spawn_error(
            f"Cannot start dashboard {self.name!r}: the hub could not make your own "
            "work folder for it. An administrator can read why in the hub's log.",
            reason="no-work-folder",
            log_message=f"viewer_work_root {self.viewer_work_root}: {problem}",
        )

    def make_preexec_fn(self, name: str) -> Any:
        run = self._run_as
        if run is not None and run.sandboxed:
            return preexec_fn(run.account, self.sandbox_home)
        if self.run_as_hub_user:
            return None
        return super().make_preexec_fn(name)

    def launcher_preload(self) -> tuple[str, ...]:
        if self._env_python or self._dashboard is None:
            return ()  # the dashboard's own environment: its own framework's version
        return tuple(self._dashboard.framework.preload)

    def launcher_identity(self) -> dict[str, Any] | None:
        run = self._run_as
        if run is not None and run.sandboxed:
            return identity_of(run.account, self.sandbox_home)
        if self.run_as_hub_user:
            return None
        return super().launcher_identity()

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        run = self._run_as
        if run is not None and run.sandboxed:
            if run.account is None:
                env["USER"] = self.user.name
            return sandbox_env(env, run, self.sandbox_home)
        if self.run_as_hub_user:
            env["USER"] = self.user.name
            env.setdefault("HOME", os.path.expanduser("~"))
            return env
        return super().user_env(env)

    async def stop(self, now: bool = False) -> None:
        try:
            await super().stop(now=now)
        finally:
            if self.sandbox_home:
                remove_home(self.sandbox_home)
                self.sandbox_home = ""

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.sandbox_home:
            state["sandbox_home"] = self.sandbox_home
        return state

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.sandbox_home = state.get("sandbox_home", "")
