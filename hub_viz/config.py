"""One call in ``jupyterhub_config.py`` wires hub_viz into a hub.

::

    from hub_viz.config import configure
    configure(c, dashboards_root="/srv/dashboards", dashboards={...})
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jupyterhub

from .dbfiles import PLUGIN, WAL_ARG, register_plugin
from .layout import Layout
from .profiles import Ceiling, parse_profiles
from .service.hubapi import SERVICE_SCOPES
from .service.publishers import Publishers
from .settings import SERVICE_CONFIG_ENV, service_config, shared_names

TEMPLATES = Path(__file__).parent / "templates"

CULLER = "hub-viz-culler"
# What jupyterhub-idle-culler needs to stop servers, and no more (no admin:users:
# it never deletes users).
CULLER_SCOPES = ("list:users", "read:users:activity", "read:servers", "delete:servers")
# configurable-http-proxy under the names a config may give it; replaced by ours.
CHP_NAMES = frozenset(
    {
        "configurable-http-proxy",
        "default",
        "jupyterhub.proxy.ConfigurableHTTPProxy",
    }
)

SPAWNERS = {
    "local": "hub_viz.spawner.DashboardLocalSpawner",
    "kube": "hub_viz.kubespawner.DashboardKubeSpawner",
}


def example_cards(dashboards: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    """Cards for the home page: server name, title and framework of each dashboard."""
    return [
        {
            "name": name,
            "title": spec.get("title", name),
            "framework": spec.get("framework", ""),
            "description": spec.get("description", ""),
        }
        for name, spec in dashboards.items()
    ]


def configure(
    c: Any,
    *,
    spawner: str = "local",
    dashboards_root: str | None = None,
    dashboards: dict[str, dict[str, Any]] | None = None,
    allowed_frameworks: list[str] | None = None,
    run_as_hub_user: bool = False,
    service: bool = True,
    service_name: str = "hub-viz",
    service_port: int = 10101,
    state_dir: str | None = None,
    db_url: str | None = None,
    proxy_url: str | None = None,
    publish: list[dict[str, Any]] | None = None,
    publishers: list[str] | None = None,
    git_schemes: list[str] | None = None,
    profiles: dict[str, Any] | None = None,
    resource_ceiling: dict[str, Any] | None = None,
    service_host: str | None = None,
    cull_idle: bool = True,
    cull_timeout: int = 1800,
    cull_every: int = 300,
    activity_interval: float | None = None,
    extra_service_config: dict[str, Any] | None = None,
    lti: dict[str, Any] | None = None,
    warm_pool_ceiling: int = 0,
    warm_pool_user: str = "hub-viz-pool",
    max_warm_kernels: int = 100,
    subdomain_host: str | None = None,
    environments: dict[str, Any] | None = None,
) -> None:
    """Configure JupyterHub ``c`` to serve dashboards.

    ``spawner`` is ``"local"`` (processes on this machine) or ``"kube"``
    (pods); ``dashboards`` maps server names to predefined specs, shown as
    cards on the home page. With ``service`` (default) the hub also runs the
    hub_viz service (gallery, publishing, open flow) named ``service_name``,
    keeping its store and signing key in ``state_dir`` (default: the hub's
    working directory); ``publish`` lists dashboards it publishes at
    start-up when missing (the API's fields plus ``owner``). Call it after
    setting the hub's ip and port (and ``subdomain_host``), or pass ``proxy_url``.

    ``dashboards_root``, ``allowed_frameworks`` and ``git_schemes`` set the
    ``c.DashboardSettings`` of the same names (the folder a
    spec's entry is relative to, e.g. ``"/home/{username}"``; the frameworks
    authors may use; the URL schemes of git sources). ``db_url`` is the
    service's store, any SQLAlchemy URL (default: ``hub_viz.sqlite`` in
    ``state_dir``), migrated when the service starts.

    ``publishers`` names who may publish beyond ``private`` when dashboards
    are served on the hub's own origin (``c.JupyterHub.subdomain_host`` not
    set, the path-based layout, where a dashboard's script can act as its
    viewer on the hub): user names and ``"group:<name>"`` entries, e.g.
    ``["alice", "group:teachers"]``. Hub admins always may, everyone else
    publishes ``private`` only (403 otherwise); ``publish`` dashboards are the
    operator's own and pass. With ``subdomain_host`` set every dashboard has a
    host of its own and any author may share.

    With ``cull_idle`` (default) the hub also runs ``jupyterhub-idle-culler``
    as the service ``hub-viz-culler``: it stops (never removes) a server
    without activity for ``cull_timeout`` seconds, checking every
    ``cull_every`` seconds. Launchers report activity to the hub at most every
    ``activity_interval`` seconds (default 60, or a third of ``cull_timeout``
    if that is less); an interval not well below the timeout (more than a
    third of it, here or in ``extra_service_config``) is refused, since the
    culler would then stop dashboards in use. Activity is real use only (see
    :mod:`hub_viz.launcher.activity`); so that configurable-http-proxy's own
    per-request stamps do not count, the proxy class becomes
    :class:`hub_viz.hubproxy.DashboardProxy` unless another proxy is set.
    ``profiles`` maps names authors may pick to resources (and on Kubernetes
    an image, pull policy, node selector, tolerations), see
    :mod:`hub_viz.profiles`; ``resource_ceiling`` (``{"cpu": 2, "memory":
    "4G"}``) is the most one instance may use, whatever its author asks.

    On Kubernetes (``spawner="kube"``) the service runs inside the hub pod,
    listens on all its addresses and is reached by dashboard pods and the
    proxy at ``http://<service_host>:<service_port>`` (``service_host``
    defaults to ``hub``, the chart's hub Service; open that port in
    ``hub.service.extraPorts`` and the hub's network policy), and reaches the
    proxy at ``proxy_url`` (default ``http://proxy-public``).

    Warm starts: an author may keep up to ``max_warm_kernels`` Voilà kernels
    preheated per dashboard; with ``warm_pool_ceiling`` above 0, per-viewer
    dashboards may keep instances started ahead (at most that many running on
    the whole hub, idle or handed to viewers), owned by the hub user ``warm_pool_user`` until a viewer
    takes one. That user never logs in (its login is refused) and the service
    may create it (``admin:users!user=<it>``, nothing more). With the local
    spawner it must be able to run processes: ``run_as_hub_user=True`` (demo)
    or a system user of that name.

    ``extra_service_config`` sets more ``DashboardService`` options, merged on
    top, e.g. ``{"thumbnails": False, "keep_warm_interval": 30}``.

    ``environments`` sets :class:`hub_viz.environments.EnvironmentBuilder`
    (``c.EnvironmentBuilder``): a dashboard with a ``requirements.txt`` (or
    ``pyproject.toml`` dependencies) beside its entry runs in an environment of
    its own, built once per lock under ``<state_dir>/environments``, e.g.
    ``{"index_url": "https://mirror.example.org/simple", "keep_days": 14}``.
    With the Kubernetes spawner dashboards keep running in their image.

    ``lti`` turns on login from Canvas (or another LTI platform) with
    :func:`hub_viz.lti.configure_lti`: ``{"client_id": "<developer key id>"}``
    for LTI 1.3 (Canvas cloud's issuer and URLs by default), or ``{"version":
    "1.1", "consumers": {key: secret}}``. Course roles become groups, and a
    launch's deep link opens one dashboard once the service says the user may
    see it. Needs the ``lti`` extra and ``JUPYTERHUB_CRYPT_KEY`` (or
    ``"auth_state": False``).
    """
    if spawner not in SPAWNERS:
        raise ValueError(f"configure(spawner={spawner!r}): use one of {sorted(SPAWNERS)}")
    kube = spawner == "kube"
    state = Path(state_dir or Path.cwd()).resolve()
    extra_service_config = move_shared_service_settings(c, extra_service_config or {})
    layout_settings(c, subdomain_host)
    short = hub_settings(c, SPAWNERS[spawner], dict(dashboards or {}))
    profiles, ceiling = dict(profiles or {}), dict(resource_ceiling or {})
    check_profiles(profiles, ceiling)
    check_publishers(publishers)
    shared_settings(
        c,
        kube=kube,
        dashboards_root=dashboards_root,
        allowed_frameworks=allowed_frameworks,
        git_schemes=git_schemes,
        profiles=profiles,
        resource_ceiling=ceiling,
        max_warm_kernels=max_warm_kernels,
        warm_pool_user=warm_pool_user,
    )
    if not kube and "snapshots_root" not in c.DashboardSettings:
        # each version of a dashboard from the author's files runs its own copy of them
        c.DashboardSettings.snapshots_root = str(state / "snapshots")
    spawner_settings(c, short, kube=kube, run_as_hub_user=run_as_hub_user, state=state)
    env_settings = configure_environments(c, environments, state_dir, local=not kube)
    if not kube or env_settings["enabled"]:  # a first start waits for the build
        c.Spawner.start_timeout = max(180, int(env_settings["build_timeout"]) + 120)
    if cull_idle:
        add_culler(c, timeout=cull_timeout, every=cull_every)
        idle_activity(c, cull_timeout, activity_interval, short)
    elif activity_interval is not None:
        c.DashboardSettings.activity_interval = activity_interval
    if not service:
        if lti is not None:  # login only: without the service, dashboard deep links are refused
            from .lti import configure_lti

            configure_lti(c, **lti)
        return
    host = service_host or ("hub" if kube else "127.0.0.1")
    settings = service_settings(
        c,
        state=state,
        kube=kube,
        db_url=db_url,
        proxy_url=proxy_url,
        publish=publish,
        publishers=publishers,
        cull_timeout=cull_timeout if cull_idle else 0,
        warm_pool_ceiling=warm_pool_ceiling,
    )
    settings["environments"] = {k: v for k, v in env_settings.items() if k != "build_timeout"}
    settings.update(extra_service_config)
    if lti is not None:  # Canvas login; the service answers its deep links' can-view
        from .lti import configure_lti

        settings.update(
            configure_lti(
                # the hub and the service share a host (a pod on Kubernetes): loopback
                c,
                state_dir=state,
                service_url=f"http://127.0.0.1:{service_port}/services/{service_name}/",
                service_name=service_name,
                **lti,
            )
        )
    spawner_config = getattr(c, short)
    spawner_config.service_public_key_file = str(
        Path(settings["signing_key_file"]).with_suffix(".pub")
    )
    spawner_config.service_url = f"http://{host}:{service_port}/services/{service_name}/"
    scopes = list(SERVICE_SCOPES)
    if warm_pool_ceiling > 0:
        scopes.append(f"admin:users!user={warm_pool_user}")  # create the pool's user
        refuse_login(c, warm_pool_user)
    add_service(c, service_name, service_port, settings, host=host, scopes=scopes)


def move_shared_service_settings(c: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """``extra_service_config`` without the shared settings, which move (deprecated)
    to ``c.DashboardSettings`` so that the spawner reads them too."""
    extra = dict(extra)
    for name in sorted(shared_names() & set(extra)):
        warnings.warn(
            f"configure(extra_service_config={{{name!r}: ...}}) is deprecated: set "
            f"c.DashboardSettings.{name} (read by the spawner and the service)",
            DeprecationWarning,
            stacklevel=3,
        )
        c.DashboardSettings[name] = extra.pop(name)
    return extra


def layout_settings(c: Any, subdomain_host: str | None) -> None:
    """The isolated layout's hub settings, when ``subdomain_host`` is set (here or before)."""
    if subdomain_host is not None:
        c.JupyterHub.subdomain_host = subdomain_host
    if hub_subdomain_host(c):
        check_subdomain_hook(c)
        host_only_login_cookies(c)
        hub_on_its_own_host(c)


def quiet_routine_polls(c: Any) -> None:
    """The hub's ``log_function``: :func:`hub_viz.hublog.log_request`, unless set already."""
    from .hublog import log_request

    if "tornado_settings" in c.JupyterHub and isinstance(c.JupyterHub.tornado_settings, dict):
        c.JupyterHub.tornado_settings.setdefault("log_function", log_request)
    else:
        c.JupyterHub.tornado_settings = {"log_function": log_request}


def hub_settings(c: Any, spawner_class: str, dashboards: dict[str, dict[str, Any]]) -> str:
    """The hub's own settings for dashboards; the spawner class's short name."""
    short = spawner_class.rsplit(".", 1)[1]
    c.JupyterHub.spawner_class = spawner_class
    c.JupyterHub.allow_named_servers = True
    # Users land on the dashboard cards, not on a default notebook server.
    c.JupyterHub.redirect_to_server = False
    c.JupyterHub.template_paths = [str(TEMPLATES)]
    c.JupyterHub.template_vars = {"hub_viz_dashboards": example_cards(dashboards)}
    getattr(c, short).predefined_dashboards = {
        name: {k: v for k, v in spec.items() if k != "description"}
        for name, spec in dashboards.items()
    }
    # the service's routine listing of running servers is logged at DEBUG
    quiet_routine_polls(c)
    # The launcher answers the hub's probe at once and the spawner waits for the app.
    c.Spawner.start_timeout = 180
    c.Spawner.http_timeout = 60
    if "cleanup_servers" not in c.JupyterHub:
        # Dashboards outlive a restart of the hub: the restarted hub finds them again
        # from each spawner's saved state (a process id, a pod) and routes them anew.
        c.JupyterHub.cleanup_servers = False
    # a local hub keeps its database on a local disk: commits need not wait for it
    private_hub_database(c, wal=spawner_class == SPAWNERS["local"])
    if "proxy_class" not in c.JupyterHub or _is_chp(c.JupyterHub.proxy_class):
        c.JupyterHub.proxy_class = "hub_viz.hubproxy.DashboardProxy"
    return short


def shared_settings(c: Any, *, kube: bool, **given: Any) -> None:
    """``c.DashboardSettings``: what ``configure()`` was given (None: left as it is)."""
    shared = c.DashboardSettings
    for name, value in given.items():
        if value is not None:
            shared[name] = value
    if kube:  # the sources live in the pods' volumes, not where the service runs
        shared.check_files = False


def spawner_settings(c: Any, short: str, *, kube: bool, run_as_hub_user: bool, state: Path) -> None:
    """What only the spawner reads."""
    spawner_config = getattr(c, short)
    if kube:
        # The chart sets KubeSpawner.cmd (jupyterhub-singleuser); pods run the launcher.
        spawner_config.cmd = ["hub-viz-launch"]
    else:
        spawner_config.run_as_hub_user = run_as_hub_user
        # viewers' own copies of per-viewer dashboards, kept with the hub's state
        spawner_config.viewer_work_root = str(state / "viewer-work")


def check_publishers(publishers: list[str] | None) -> None:
    """Refuse a malformed ``publishers`` list when the hub loads its config."""
    try:
        Publishers.parse(publishers or [])
    except ValueError as e:
        raise ValueError(f"configure(publishers=...): {e}") from None


def idle_activity(c: Any, cull_timeout: int, activity_interval: float | None, short: str) -> None:
    """The activity interval, checked well below the culler's timeout (default from it)."""
    shared = c.DashboardSettings
    former = getattr(c, short)
    given = {
        "activity_interval": activity_interval,
        "c.DashboardSettings.activity_interval": shared.get("activity_interval"),
        f"c.{short}.activity_interval": former.get("activity_interval"),
    }
    default = check_activity_intervals(cull_timeout, given)
    if activity_interval is not None:
        shared.activity_interval = activity_interval
    elif "activity_interval" not in shared and "activity_interval" not in former:
        shared.activity_interval = default


def service_settings(
    c: Any,
    *,
    state: Path,
    kube: bool,
    db_url: str | None,
    proxy_url: str | None,
    publish: list[dict[str, Any]] | None,
    publishers: list[str] | None,
    cull_timeout: int,
    warm_pool_ceiling: int,
) -> dict[str, Any]:
    """The service's own settings (``DashboardService``); nothing is written here."""
    settings: dict[str, Any] = {
        "db_url": db_url or f"sqlite:///{state / 'hub_viz.sqlite'}",
        "signing_key_file": str(state / "hub_viz_signing_key.pem"),
        "embed_secret_file": str(state / "hub_viz_embed_secret"),
        "webhook_key_file": str(state / "hub_viz_webhook_key"),
        "proxy_url": proxy_url or ("http://proxy-public" if kube else _proxy_url(c)),
        "publish": publish or [],
        "publishers": list(publishers or []),
        "cull_timeout": cull_timeout,
        "warm_pool_ceiling": warm_pool_ceiling,
        "subdomain_host": hub_subdomain_host(c),
    }
    if kube:
        settings["ip"] = "0.0.0.0"  # reached from pods through the hub's Service
    else:  # every instance starts on this machine: a class's starts take turns
        settings["max_starting"] = local_start_slots()
    return settings


def local_start_slots() -> int:
    """Starts under way at once on one machine: twice its cores (at least 2), so that
    the cores stay busy while a start waits on its app's first answer."""
    return max(2, 2 * (os.cpu_count() or 1))


def check_profiles(profiles: dict[str, Any], ceiling: dict[str, Any]) -> None:
    """Refuse an operator's profile or ceiling mistake when the hub loads its config."""
    try:
        parse_profiles(profiles, Ceiling.parse(ceiling))
    except ValueError as e:
        raise ValueError(f"configure(profiles=..., resource_ceiling=...): {e}") from None


def check_subdomain_hook(c: Any) -> None:
    """hub_viz computes hosts as JupyterHub's default ``idna`` subdomain hook does."""
    hook = c.JupyterHub.subdomain_hook if "subdomain_hook" in c.JupyterHub else "idna"
    if hook != "idna":
        raise ValueError(
            f"JupyterHub.subdomain_hook={hook!r}: hub_viz needs the default 'idna' hook "
            "(users at <name>.<host>, the service at <service>--service.<host>); "
            "remove the setting."
        )


def host_only_login_cookies(c: Any) -> None:
    """``__Host-`` login cookies for the hub (and, in :func:`add_service`, the service)
    on an HTTPS isolated layout, unless the operator chose otherwise.

    A dashboard's script may set a cookie for the parent domain in any plain name; it
    cannot set a ``__Host-`` one, so it can no longer toss the viewer's hub or service
    login. Browsers keep ``__Host-`` (``Secure``) cookies from HTTPS pages only.
    """
    if "cookie_host_prefix_enabled" not in c.JupyterHub and hub_subdomain_host(c).startswith(
        "https://"
    ):
        c.JupyterHub.cookie_host_prefix_enabled = True


def hub_on_its_own_host(c: Any) -> None:
    """On the isolated layout the proxy sends the hub only its own host's requests.

    JupyterHub's default route (``/``, every host) would let the hub answer on a
    dashboard's host too: its login page and API on the dashboard's origin, where
    the dashboard's script could use what a viewer logs in with there. With the
    route on the hub's host, a host with no route (a stopped dashboard's) gets
    the proxy's 404, which the hub renders through its error page
    (``templates/404.html`` sends a dashboard URL on to its open page).
    """
    if "hub_routespec" in c.JupyterHub:
        return
    host = urlsplit(hub_subdomain_host(c)).hostname or ""
    base_url = str(c.JupyterHub.base_url) if "base_url" in c.JupyterHub else "/"
    c.JupyterHub.hub_routespec = host + base_url


def hub_cookie_host_prefix(c: Any) -> bool:
    """Whether the hub names its login cookies ``__Host-…`` (the service must follow)."""
    return bool(
        "cookie_host_prefix_enabled" in c.JupyterHub and c.JupyterHub.cookie_host_prefix_enabled
    )


def hub_subdomain_host(c: Any) -> str:
    """``JupyterHub.subdomain_host`` as configured so far, or ``""`` (path-based layout)."""
    return str(c.JupyterHub.subdomain_host or "") if "subdomain_host" in c.JupyterHub else ""


def private_hub_database(c: Any, *, wal: bool = False) -> None:
    """The hub's SQLite database (and its -wal/-shm/-journal) created with mode 0600;
    with ``wal``, in write-ahead-log mode whose commits do not wait for the disk.

    An engine plugin (:class:`hub_viz.dbfiles.PrivateSQLite`) in
    ``JupyterHub.db_kwargs``: it sees ``JupyterHub.db_url`` as the hub finally
    opens it, even when it is set after ``configure()``. ``wal`` is kept if the
    operator set ``hub_viz_sqlite_wal`` in ``db_kwargs`` themselves.
    """
    register_plugin()
    kwargs = dict(c.JupyterHub.db_kwargs) if "db_kwargs" in c.JupyterHub else {}
    names = list(kwargs.get("plugins") or [])
    if PLUGIN not in names:
        kwargs["plugins"] = [*names, PLUGIN]
    kwargs.setdefault(WAL_ARG, wal)
    c.JupyterHub.db_kwargs = kwargs


def _is_chp(proxy_class: Any) -> bool:
    """Is this ``JupyterHub.proxy_class`` value plain configurable-http-proxy?"""
    if isinstance(proxy_class, type):
        return f"{proxy_class.__module__}.{proxy_class.__qualname__}" in CHP_NAMES
    return str(proxy_class) in CHP_NAMES


def _proxy_url(c: Any) -> str:
    """Where the service reaches the proxy, from the hub's settings made so far."""
    hub = c.JupyterHub
    if "bind_url" in hub:
        parts = urlsplit(str(hub.bind_url))
        host = parts.hostname if parts.hostname not in (None, "", "0.0.0.0", "::") else "127.0.0.1"
        return f"{parts.scheme or 'http'}://{host}:{parts.port or 8000}"
    ip = hub.ip if "ip" in hub and hub.ip not in ("", "0.0.0.0", "::") else "127.0.0.1"
    port = hub.port if "port" in hub else 8000
    return f"http://{ip}:{port}"


def check_activity_intervals(cull_timeout: float, given: dict[str, Any]) -> float:
    """Refuse an activity interval not well below the culler's timeout; the default one.

    Activity reaches the hub up to one interval late; at more than a third of the
    timeout the culler could stop a dashboard someone is using. ``given`` maps
    each setting's name to its value (None: not set).
    """
    limit = cull_timeout / 3
    for name, value in given.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"configure(): {name} must be positive seconds, not {value!r}.")
        if value > limit:
            raise ValueError(
                f"configure(): {name}={value:g} s is not well below cull_timeout="
                f"{cull_timeout:g} s. Activity reaches the hub up to one interval late, so "
                "the idle culler could stop a dashboard in use: use at most "
                f"{limit:g} s (a third of cull_timeout), or raise cull_timeout."
            )
    return min(60.0, limit)


def add_culler(c: Any, *, timeout: int, every: int, name: str = CULLER) -> None:
    """The idle culler as a hub-managed service with a role of exactly :data:`CULLER_SCOPES`.

    It stops idle servers and keeps them (and their users): a dashboard's spec
    lives in the service's store, so reopening it starts it again.
    """
    if timeout <= 0 or every <= 0:
        raise ValueError(
            f"configure(cull_timeout={timeout!r}, cull_every={every!r}): both must be "
            "positive seconds, e.g. cull_timeout=1800, cull_every=300; "
            "or turn culling off with cull_idle=False."
        )
    services = [
        s
        for s in (c.JupyterHub.services if "services" in c.JupyterHub else [])
        if s.get("name") != name
    ]
    services.append(
        {
            "name": name,
            # jupyterhub-idle-culler 2.x wants a value after every boolean flag
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={int(timeout)}",
                f"--cull-every={int(every)}",
                "--remove-named-servers=False",
                "--cull-users=False",
            ],
            "display": False,
        }
    )
    c.JupyterHub.services = services
    roles = [
        r
        for r in (c.JupyterHub.load_roles if "load_roles" in c.JupyterHub else [])
        if r.get("name") != name
    ]
    roles.append(
        {
            "name": name,
            "description": "Idle culler: stop dashboard servers nobody uses",
            "scopes": list(CULLER_SCOPES),
            "services": [name],
        }
    )
    c.JupyterHub.load_roles = roles


def refuse_login(c: Any, name: str) -> None:
    """No login as ``name`` (the warm pool's user), whatever the authenticator says.

    Wraps an existing ``Authenticator.post_auth_hook``. (``blocked_users`` would
    also stop the user's running servers at every hub start.)
    """
    previous = c.Authenticator.post_auth_hook if "post_auth_hook" in c.Authenticator else None

    def hook(authenticator: Any, handler: Any, authentication: Any) -> Any:
        if isinstance(authentication, dict) and authentication.get("name") == name:
            authenticator.log.warning("Refused a login as %s: it owns warm-pool instances", name)
            return None
        if previous is not None:
            return previous(authenticator, handler, authentication)
        return authentication

    c.Authenticator.post_auth_hook = hook


def configure_environments(
    c: Any, settings: dict[str, Any] | None, state_dir: str | None, *, local: bool
) -> dict[str, Any]:
    """``c.EnvironmentBuilder`` from ``settings`` (its traits, e.g. ``find_links``,
    ``index_url``, ``keep_days``), its ``root`` in the state dir unless given; returns
    what the service needs. On Kubernetes environments need a shared volume: ``claim``
    (a ReadWriteMany PVC the hub mounts at ``root``) and optionally ``mount_path`` (where
    build and instance pods mount it) go to ``c.DashboardKubeSpawner``; without a claim
    dashboards keep running in their image (:mod:`hub_viz.kubeenv`)."""
    settings = dict(settings or {})
    claim = settings.pop("claim", "")
    mount_path = settings.pop("mount_path", "")
    builder = c.EnvironmentBuilder
    for key, value in settings.items():
        builder[key] = value
    if "root" not in builder:
        builder.root = str(Path(state_dir or Path.cwd()).resolve() / "environments")
    if not local:
        if claim:
            c.DashboardKubeSpawner.environments_claim = claim
            if mount_path:
                c.DashboardKubeSpawner.environments_mount_path = mount_path
        else:
            builder.enabled = False
    elif claim or mount_path:
        raise ValueError("environments: 'claim' and 'mount_path' are for Kubernetes only.")
    from .environments import BUILD_TIMEOUT
    from .kubeenv import BUILD_SETTINGS

    return {
        "enabled": bool(builder.get("enabled", True)),
        "root": builder.root,
        "allow_requirement_urls": bool(builder.get("allow_requirement_urls", False)),
        "build_timeout": float(builder.get("build_timeout", BUILD_TIMEOUT)),
        # the hub builds on this machine (Kubernetes: build pods, at the first start)
        "local": local,
        # what the service's builds at publish time use (hub_viz.service.prebuild)
        "builder": {k: builder[k] for k in BUILD_SETTINGS if k in builder},
    }


def add_service(
    c: Any,
    name: str,
    port: int,
    settings: dict[str, Any],
    host: str = "127.0.0.1",
    scopes: list[str] | None = None,
) -> None:
    """The hub-managed service, its role (``scopes``, default :data:`SERVICE_SCOPES`)
    and user access."""
    services = [
        s
        for s in (c.JupyterHub.services if "services" in c.JupyterHub else [])
        if s.get("name") != name
    ]
    services.append(
        {
            "name": name,
            "url": f"http://{host}:{port}",
            "command": [sys.executable, "-m", "hub_viz.service"],
            # the shared settings as configured so far; the hub passes them anew when it
            # starts (hub_viz.hubstart), with whatever was set after configure()
            "environment": {
                SERVICE_CONFIG_ENV: service_config(
                    c,
                    {k: v for k, v in settings.items() if k != "publish"}
                    | {"seed_dashboards": settings.get("publish", [])},
                )
            }
            # keep-warm windows are in the hub's local time; the hub passes services no TZ
            | ({"TZ": os.environ["TZ"]} if os.environ.get("TZ") else {})
            # the hub tells its servers but not its services to name cookies __Host-
            | ({"JUPYTERHUB_COOKIE_HOST_PREFIX_ENABLED": "1"} if hub_cookie_host_prefix(c) else {}),
            "oauth_no_confirm": True,
            "display": False,
        }
    )
    c.JupyterHub.services = services
    # Crawlers read /robots.txt at the root; the proxy sends it to the service. With
    # hosts of their own, the route names the hub's host (dashboards' hosts are the
    # launcher's, which answers robots.txt itself).
    hub_host = urlsplit(hub_subdomain_host(c)).hostname or ""
    routes = dict(c.Proxy.extra_routes) if "extra_routes" in c.Proxy else {}
    routes[f"{hub_host}/robots.txt"] = f"http://{host}:{port}"
    c.Proxy.extra_routes = routes
    roles = [
        r
        for r in (c.JupyterHub.load_roles if "load_roles" in c.JupyterHub else [])
        if r.get("name") != f"{name}-service"
    ]
    roles.append(
        {
            "name": f"{name}-service",
            "description": "hub_viz service: start, share and stop dashboard servers",
            "scopes": list(scopes if scopes is not None else SERVICE_SCOPES),
            "services": [name],
        }
    )
    access = f"access:services!service={name}"
    if jupyterhub.version_info >= (6,):
        extra = (
            set(c.JupyterHub.extra_user_scopes) if "extra_user_scopes" in c.JupyterHub else set()
        )
        c.JupyterHub.extra_user_scopes = extra | {access}
    else:
        roles.append({"name": "user", "scopes": ["self", access]})
    c.JupyterHub.load_roles = roles
    template_vars = dict(c.JupyterHub.template_vars) if "template_vars" in c.JupyterHub else {}
    template_vars["hub_viz_service_prefix"] = f"services/{name}/"
    # the gallery script comes from the service's own host on the isolated layout
    template_vars["hub_viz_service_origin"] = Layout(hub_subdomain_host(c), name).service_origin
    c.JupyterHub.template_vars = template_vars
