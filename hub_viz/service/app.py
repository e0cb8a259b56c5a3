"""``hub-viz-service``: the hub-managed service behind the gallery, publishing and open flow.

Started by the hub (``c.JupyterHub.services``, set up by
:func:`hub_viz.config.configure`), with its settings as
``--DashboardService.<trait>=<value>`` options.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from pathlib import Path
from urllib.parse import urlsplit

from jupyterhub.services.auth import HubOAuth
from tornado import web
from tornado.httpclient import AsyncHTTPClient
from tornado.log import enable_pretty_logging
from traitlets import Bool, Dict, Float, Instance, Integer, List, Unicode, default
from traitlets.config import Application, Config

from .. import __version__
from ..errors import HubVizError
from ..layout import Layout
from ..profiles import Ceiling, parse_profiles
from ..resolver import use_address_first_resolver
from ..settings import SERVICE_CONFIG_ENV, DashboardSettings, load_settings
from ..signing import Signer, ensure_key_pair
from .access_api import access_routes
from .accesslog import log_request
from .activity import ActivityCoalescer, PingLimiter
from .api import NAME, api_routes
from .base import MAX_READ, NotFoundHandler, NotFoundPage, OAuthCallback, StaticFiles
from .context import ServiceContext
from .dashboards import Policy, validate
from .deploy import Deployer
from .embed_handlers import embed_routes
from .embeds import EmbedTokens, load_secret
from .hubapi import HubClient
from .keepwarm import keep_warm_forever
from .lti_api import lti_routes
from .pages import page_routes
from .publishers import Publishers
from .snapshotgc import collect_forever
from .store import Dashboard, Store
from .thumbnails import Thumbnailer, find_chromium
from .versions import PUBLISH, Sources, add_version, make_current, run_fields
from .versions_api import Follower, versions_routes
from .warmpool import WarmPool
from .webhooks import HookKeys

log = logging.getLogger("hub_viz.service")


HERE = Path(__file__).parent


class DashboardService(Application):
    """The hub_viz service: dashboards, gallery, open flow and usage."""

    name = "hub-viz-service"
    version = __version__
    description = __doc__

    db_url = Unicode(
        "sqlite:///hub_viz.sqlite",
        config=True,
        help="SQLAlchemy URL of the service's own store (SQLite file by default; "
        "e.g. postgresql://user@host/hub_viz). The hub's database is never used.",
    )
    signing_key_file = Unicode(
        "hub_viz_signing_key.pem",
        config=True,
        help="Ed25519 private key that signs open grants and spawn specs (created if missing).",
    )
    ip = Unicode(
        "",
        config=True,
        help="Address to listen on (default: the host of JUPYTERHUB_SERVICE_URL); "
        "0.0.0.0 on Kubernetes, where pods reach the service through the hub's Service.",
    )
    subdomain_host = Unicode(
        "",
        config=True,
        help="The hub's JupyterHub.subdomain_host (set by configure()): with it, the "
        "service, the hub and each user's dashboards are on hosts of their own, e.g. "
        "http://hub.localhost:8000. Empty: the path-based layout, all on one origin.",
    )
    proxy_url = Unicode(
        "http://127.0.0.1:8000",
        config=True,
        help="URL at which the service reaches the proxy (to read launcher logs and "
        "take thumbnails), e.g. http://proxy-public on Kubernetes.",
    )
    ping_seconds = Float(
        30,
        config=True,
        help="Seconds between phone-home pings from a visible, focused dashboard page.",
    )
    ping_min_interval = Float(
        10,
        config=True,
        help="Seconds between two phone-home pings of a viewer that count (one sooner "
        "is answered 204 and changes nothing).",
    )
    lti_secret_file = Unicode(
        "",
        config=True,
        help="Secret the hub's LTI login shows on api/lti/can-view (configure() sets it when "
        "LTI is on; empty: that endpoint answers 404).",
    )
    lti_key_file = Unicode(
        "",
        config=True,
        help="The tool's RSA key (PEM) that signs LTI Deep Linking responses; the hub serves "
        "its public half at hub/lti13/jwks (configure() sets it when LTI is on).",
    )
    embed_secret_file = Unicode(
        "hub_viz_embed_secret",
        config=True,
        help="Secret that signs embed links (created if missing). Replace the file to "
        "invalidate every embed link at once.",
    )
    webhook_key_file = Unicode(
        "hub_viz_webhook_key",
        config=True,
        help="Key from which each dashboard's webhook secret is derived (created if "
        "missing, mode 0600); the store keeps only each webhook's id. Replace the file to "
        "invalidate every webhook secret at once.",
    )
    follow_interval = Float(
        300,
        config=True,
        help="Seconds between two checks of the branches dashboards follow (a push "
        "webhook makes a version at once); 0 checks only on pushes.",
    )
    snapshot_collect_interval = Float(
        3600,
        config=True,
        help="Seconds between two looks for snapshots no version uses any more (their "
        "dashboard unpublished), which are then removed; 0: never.",
    )
    cookie_secret_file = Unicode(
        "",
        config=True,
        help="Secret that signs the service's login cookies (created if missing, mode 0600; "
        "default: hub_viz_service_cookie_secret beside the embed secret). Kept across "
        "restarts, so that open pages and their viewers' logins outlive a restart of the "
        "service; replace the file to log everyone out of the service.",
    )
    max_starting = Integer(
        0,
        config=True,
        help="""Dashboard servers that viewers' opens start at once; the opens beyond it
        wait in arrival order, and the open page shows each viewer their place. 0: no
        limit of the service's own (the hub's concurrent_spawn_limit still applies).

        Where every instance runs on the hub's machine, a class opening a per-viewer
        dashboard together would otherwise start all its apps at once, each slowed
        down by all the others, so that nobody's is ready before nearly everyone's is;
        in turn, the first are ready in seconds. configure() sets twice the machine's
        cores for local processes and leaves it 0 on Kubernetes.
        """,
    )
    max_starting_seconds = Float(
        30,
        config=True,
        help="""Seconds a start holds its place under max_starting at most. A start that
        takes longer to become ready (an environment being built, an app that loads
        data first, or one that never answers) then stops counting, so that it does not
        hold back other dashboards' starts until the spawner gives up on it.""",
    )
    reconcile_interval = Float(
        30,
        config=True,
        help="Seconds between checks that close the records of servers that stopped.",
    )
    cull_timeout = Float(
        0,
        config=True,
        help="""The idle culler's timeout in seconds (0: no culler).

        Names why a server stopped without the service: "culled idle" when its
        last activity is this long ago, else "crashed". configure() sets it
        from its cull_timeout, e.g. 1800.
        """,
    )
    keep_warm_interval = Float(
        60,
        config=True,
        help="Seconds between two rounds that note activity for running dashboards "
        "inside a keep-warm window (keep it well below the culler's timeout).",
    )
    warm_pool_ceiling = Integer(
        0,
        config=True,
        help="""The most warm-pool instances running at once, all per-viewer dashboards
        together, idle ones and those handed to viewers (each runs and holds memory).
        0 turns warm pools off; a dashboard's 'warm_pool' may not exceed it.
        configure() sets it.""",
    )
    warm_pool_interval = Float(
        5,
        config=True,
        help="Seconds between warm-pool rounds (a round also runs right after a viewer "
        "takes an instance).",
    )
    environments = Dict(
        config=True,
        help="""The hub's dashboard environment settings the service needs (``configure()``
        sets them from ``c.EnvironmentBuilder``): ``enabled``, ``root`` (where build logs
        are, for the author's log view), ``allow_requirement_urls`` (else a requirement
        file naming a URL or a package source is refused at publish time) and
        ``builder`` (index and limits: the service builds a dashboard's environment when
        it is published, :mod:`hub_viz.service.prebuild`).""",
    )
    seed_dashboards = List(
        Dict(),
        config=True,
        help="Dashboards published at start-up when missing: dicts of the API's fields "
        "plus 'owner'. The demo publishes its examples this way.",
    )
    publishers = List(
        Unicode(),
        config=True,
        help="""Who may publish beyond 'private' when dashboards share the hub's origin
        (no subdomain_host): user names and 'group:<name>' entries, e.g. ['alice',
        'group:teachers']. Hub admins always may. configure(publishers=...) sets it.""",
    )
    thumbnails = Bool(
        True,
        config=True,
        help="Take card screenshots in headless Chromium when Playwright and chromium exist.",
    )
    thumbnail_ready_timeout = Float(
        120,
        config=True,
        help="Seconds a card screenshot waits for the dashboard's page to render (the "
        "framework's rendered_check) before it gives up and leaves the card as it was.",
    )
    thumbnail_retry_seconds = Float(
        300,
        config=True,
        help="Seconds after a screenshot that found the page not rendered before another "
        "of the same dashboard may start (on a viewer's next rendered page).",
    )
    chromium_path = Unicode("", config=True, help="Path of chromium (default: found on PATH).")
    port = Integer(0, config=True, help="Port to listen on (default: from JUPYTERHUB_SERVICE_URL).")

    settings = Instance(
        DashboardSettings,
        help="What the service and the spawner both read (``c.DashboardSettings``).",
    )

    @default("settings")
    def _default_settings(self) -> DashboardSettings:
        return load_settings(self.config, parent=self)

    aliases = {"port": "DashboardService.port", "db-url": "DashboardService.db_url"}

    @default("log_level")
    def _default_log_level(self) -> int:
        return logging.INFO

    def initialize(self, argv: list[str] | None = None) -> None:
        """Settings from ``HUB_VIZ_SERVICE_CONFIG`` (JSON, set by ``configure()``), then argv."""
        raw = os.environ.get(SERVICE_CONFIG_ENV)
        if raw:
            self.update_config(Config(json.loads(raw)))
        super().initialize(argv)

    def policy(self) -> Policy:
        settings = self.settings
        ceiling = Ceiling.parse(settings.resource_ceiling)
        return Policy(
            frameworks=settings.frameworks,
            allowed_frameworks=list(settings.allowed_frameworks),
            dashboards_root=settings.dashboards_root,
            check_files=settings.check_files,
            git_schemes=tuple(settings.git_schemes),
            profiles=parse_profiles(settings.profiles, ceiling),
            ceiling=ceiling,
            max_warm_kernels=settings.max_warm_kernels,
            warm_pool_ceiling=self.warm_pool_ceiling,
            environments=dict(self.environments),
            # dashboards on hosts of their own: any author may publish beyond 'private'
            publishers=Publishers.parse(self.publishers, isolated=bool(self.subdomain_host)),
        )

    def make_context(self) -> ServiceContext:
        env = os.environ
        prefix = env.get("JUPYTERHUB_SERVICE_PREFIX", "/services/hub-viz/")
        hub_base = env.get("JUPYTERHUB_BASE_URL", "/")
        private, _ = ensure_key_pair(Path(self.signing_key_file))
        signer = Signer(private.read_text())
        store = Store(self.db_url)
        hub = HubClient(
            env.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api"),
            env.get("JUPYTERHUB_API_TOKEN", ""),
        )
        layout = Layout(
            self.subdomain_host, env.get("JUPYTERHUB_SERVICE_NAME", "hub-viz"), hub_base
        )
        deployer = Deployer(
            hub, store, signer, layout=layout, service_prefix=prefix, cull_timeout=self.cull_timeout
        )
        deployer.max_warm_kernels = self.settings.max_warm_kernels
        deployer.max_starting = self.max_starting
        deployer.start_place_seconds = self.max_starting_seconds
        ctx = ServiceContext(
            store=store,
            hub=hub,
            deployer=deployer,
            signer=signer,
            policy=self.policy(),
            prefix=prefix,
            hub_base_url=layout.hub_origin + hub_base,
            proxy_url=self.proxy_url,
            public_prefix=layout.service_origin + prefix,
            activity=ActivityCoalescer(hub.activity, interval=self.settings.activity_interval),
            pings=PingLimiter(self.ping_min_interval),
            ping_seconds=self.ping_seconds,
            embeds=EmbedTokens(load_secret(Path(self.embed_secret_file))),
            sources=Sources(
                dashboards_root=self.settings.dashboards_root,
                check_files=self.settings.check_files,
                snapshots_root=self.settings.snapshots_root,
                snapshot_max_bytes=self.settings.snapshot_max_bytes,
                git_schemes=tuple(self.settings.git_schemes),
            ),
            hooks=HookKeys.from_file(Path(self.webhook_key_file)),
        )
        ctx.follower = Follower(ctx)
        deployer.answers = ctx.server_answers
        if self.warm_pool_ceiling > 0:
            deployer.pool = WarmPool(
                store,
                deployer,
                ctx.activity,
                user=self.settings.warm_pool_user,
                ceiling=self.warm_pool_ceiling,
            )
        if self.thumbnails:
            from .capture import make_capture

            capture = make_capture(
                ctx, find_chromium(self.chromium_path), ready_timeout=self.thumbnail_ready_timeout
            )
            ctx.thumbnails = Thumbnailer(
                capture, enabled=capture is not None, retry_seconds=self.thumbnail_retry_seconds
            )
        return ctx

    def lti_secret(self) -> str:
        path = Path(self.lti_secret_file) if self.lti_secret_file else None
        return path.read_text().strip() if path and path.is_file() else ""

    def cookie_secret_path(self) -> Path:
        if self.cookie_secret_file:
            return Path(self.cookie_secret_file)
        return Path(self.embed_secret_file).parent / "hub_viz_service_cookie_secret"

    def make_app(self, ctx: ServiceContext) -> web.Application:
        prefix = ctx.prefix
        hub_auth = HubOAuth.instance(cache_max_age=60)
        routes = [
            (prefix + "oauth_callback", OAuthCallback),
            *api_routes(prefix),
            *versions_routes(prefix, NAME),
            *embed_routes(prefix),
            *lti_routes(prefix),
            *access_routes(prefix),
            *page_routes(prefix),
            (prefix + "api/.*", NotFoundHandler),  # last: a JSON 404 for the rest of api/
        ]
        return web.Application(
            routes,
            hub_viz=ctx,
            hub_viz_lti_secret=self.lti_secret(),
            hub_viz_lti_key_file=self.lti_key_file,
            cookie_secret=load_secret(self.cookie_secret_path()),
            template_path=str(HERE / "templates"),
            # also serves /robots.txt (the proxy routes the site's root one here)
            static_path=str(HERE / "static"),
            static_url_prefix=prefix + "static/",
            static_handler_class=StaticFiles,
            default_handler_class=NotFoundPage,
            log_function=log_request,
            login_url=hub_auth.login_url,
            xsrf_cookies=True,
        )

    def seed(self, ctx: ServiceContext) -> None:
        for item in self.seed_dashboards:
            item = dict(item)
            owner = item.pop("owner", None)
            if not owner:
                raise HubVizError("Each seed dashboard needs 'owner'.")
            with ctx.store.session() as db:
                slug = item.get("slug")
                if slug and ctx.store.find(db, owner, slug):
                    continue
                fields = validate(item, ctx.policy, owner)
                if ctx.store.find(db, owner, fields["slug"]):
                    continue
                d = Dashboard(owner=owner, **fields)
                db.add(d)
                db.flush()
                # version 1 runs the files as they are (a seed is not a snapshot)
                make_current(
                    d, add_version(db, d, run_fields(fields), {}, by=owner, origin=PUBLISH)
                )
                db.commit()
                log.info("Published seed dashboard %s/%s", owner, fields["slug"])

    async def run(self) -> None:
        # before any client is made: tornado keeps the first one, with its settings
        AsyncHTTPClient.configure(None, max_clients=256)
        use_address_first_resolver()  # no threads for the hub at an address
        ctx = self.make_context()
        self.seed(ctx)
        app = self.make_app(ctx)
        url = urlsplit(os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"))
        port = self.port or url.port or 10101
        ip = self.ip or url.hostname or "127.0.0.1"
        # Tornado reads a whole body before a handler sees it (100 MB by default): stop at
        # MAX_READ; handlers answer 413 above MAX_BODY, the connection is closed above this.
        server = app.listen(port, ip, xheaders=True, max_body_size=MAX_READ)
        log.info(
            "hub-viz-service %s on %s:%s under %s (store: %s)",
            __version__,
            ip,
            port,
            ctx.prefix,
            _safe_url(self.db_url),
        )
        if warning := ctx.policy.publishers.startup_warning():
            log.warning(warning)
        stale = self.keep_warm_interval + self.settings.activity_interval
        if self.cull_timeout and stale >= self.cull_timeout / 2:
            log.warning(
                "Keep-warm activity may reach the hub %.0f s late, too close to the culler's "
                "%.0f s timeout: lower DashboardService.keep_warm_interval and "
                "activity_interval, or raise cull_timeout.",
                stale,
                self.cull_timeout,
            )
        background = [
            asyncio.ensure_future(ctx.deployer.reconcile_forever(self.reconcile_interval)),
            asyncio.ensure_future(ctx.activity.run()),
            asyncio.ensure_future(
                keep_warm_forever(
                    ctx.store, ctx.hub, ctx.activity, self.keep_warm_interval, starter=ctx.deployer
                )
            ),
        ]
        if self.follow_interval > 0:
            background.append(asyncio.ensure_future(ctx.follower.run_forever(self.follow_interval)))
        if ctx.deployer.pool is not None:
            background.append(
                asyncio.ensure_future(ctx.deployer.pool.run_forever(self.warm_pool_interval))
            )
        if self.settings.snapshots_root and self.snapshot_collect_interval > 0:
            background.append(
                asyncio.ensure_future(
                    collect_forever(
                        ctx.store, self.settings.snapshots_root, self.snapshot_collect_interval
                    )
                )
            )
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stopping.set)
        await stopping.wait()
        for task in background:
            task.cancel()
        server.stop()
        ctx.store.close()

    def start(self) -> None:
        asyncio.run(self.run())


def _safe_url(url: str) -> str:
    """A database URL without its password, for the log."""
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def main(argv: list[str] | None = None) -> None:
    enable_pretty_logging()
    logging.getLogger().setLevel(logging.INFO)
    app = DashboardService()
    app.initialize(argv)
    app.start()


__all__ = ["DashboardService", "ServiceContext", "main"]
