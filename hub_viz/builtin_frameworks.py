"""The built-in framework records (:class:`hub_viz.frameworks.Framework`).

Kept apart from :mod:`hub_viz.frameworks` so that the launcher, which gets its
one record from the spawner (``HUB_VIZ_FRAMEWORK``), never loads them.
"""

from __future__ import annotations

from .frameworks import PER_VIEWER, VOILA_FILE_ALLOWLIST, Framework

# Behind the launcher every app sees the request as it would bare: the public Host, the
# viewer's Origin, and X-Forwarded-For/-Proto/-Host set by the launcher (never the
# viewer's). Each record below makes its framework trust those from 127.0.0.1, where
# only the launcher connects: tornado's xheaders (Bokeh, Panel, JupyterLab), waitress's
# trusted_proxy (Dash) and uvicorn's forwarded_allow_ips (Streamlit, the ASGI runners). Voilà has no
# such setting: hub_viz/runners/voila.py starts it with tornado's xheaders on.
FORWARDED_FROM_LAUNCHER = {"FORWARDED_ALLOW_IPS": "127.0.0.1"}

_BOKEH_LIKE_FLAGS = (
    "--port={port}",
    "--address=127.0.0.1",
    "--prefix={prefix}",
    "--use-xheaders",
    # The launcher refuses a websocket whose Origin is not the public host it serves
    # (tornado's same-origin check) before the app sees it, then passes the Origin on
    # unchanged: the app accepts what the launcher let through.
    "--allow-websocket-origin=*",
)

# Bokeh and Panel: every document has its roots and no pending change.
BOKEH_RENDERED = (
    "!!window.Bokeh && Bokeh.documents.length > 0"
    " && Bokeh.documents.every(d => d.roots().length > 0 && d.is_idle)"
)

BUILTIN_FRAMEWORKS: dict[str, Framework] = {
    fw.name: fw
    for fw in (
        Framework(
            name="voila",
            display_name="Voilà",
            command=(
                "{python}",
                "-m",
                "hub_viz.runners.voila",  # Voilà trusting the launcher's X-Forwarded-*
                "{entry}",
                "--port={port}",
                "--no-browser",
                "--Voila.ip=127.0.0.1",
                # a taken port fails the start: another port would never answer the launcher
                "--Voila.port_retries=0",
                "--Voila.base_url={prefix}",
                "--VoilaConfiguration.strip_sources=True",
                "--VoilaConfiguration.show_tracebacks=False",
                "--VoilaConfiguration.allow_template_override=NO",
                "--VoilaConfiguration.allow_theme_override=NO",
                "--VoilaConfiguration.file_allowlist=" + VOILA_FILE_ALLOWLIST,
                # The page frees its kernel on unload with a POST whose XSRF cookie
                # the launcher never passes on (it strips `_xsrf`); the launcher
                # refuses cross-origin writes itself and lets no other write through.
                "--Voila.tornado_settings=disable_check_xsrf=True",
            ),
            ready_path="voila/static/voila.js",
            # the pool grows ahead of demand, within memory (hub_viz/runners/voila_pool.py)
            warm_kernel_flags=(
                "--preheat_kernel=True",
                "--pool_size={warm_kernels}",
                "--VoilaConfiguration.multi_kernel_manager_class="
                "hub_viz.runners.voila_pool.PoolKernelManager",
                # grown ahead of demand, never past what the hub allows a dashboard
                "--PoolKernelManager.max_kernels={max_warm_kernels}",
                # a class's first wave, expected from earlier keep-warm windows
                "--PoolKernelManager.burst={warm_burst}",
            ),
            suffixes=(".ipynb",),
            # Voilà and Jupyter Server: about 1.2 CPU-s of a new Python's imports
            preload=("hub_viz.runners.voila", "hub_viz.runners.voila_pool"),
            detect_priority=10,
            jupyter_api="voila",
            # the page removes its spinner (#loading) and shows #rendered_cells once
            # every cell ran; Voilà hands a preheated kernel only to requests with no
            # `template` argument or the pool's own, and template overrides are off,
            # so the capture's page looks the same and runs on a kernel of its own
            rendered_check=(
                "!document.getElementById('loading')"
                " && !!document.getElementById('rendered_cells')"
                " && document.getElementById('rendered_cells').style.display !== 'none'"
            ),
            capture_query="template=hub-viz-card",
            pool_status_path="voila/hub_viz_pool",
        ),
        Framework(
            name="dash",
            display_name="Dash",
            command=(
                "{python}",
                "-m",
                # one process: the launcher supervises the app, a server's own master
                # (gunicorn's, ~24 MB) would only watch its one worker
                "waitress",
                "--listen=127.0.0.1:{port}",
                "--threads=8",
                "--trusted-proxy=127.0.0.1",
                "--trusted-proxy-headers=x-forwarded-for x-forwarded-host x-forwarded-proto",
                "--clear-untrusted-proxy-headers",
                "--call",
                "hub_viz.runners.dash:create_app",
            ),
            env={"DASH_URL_BASE_PATHNAME": "{prefix}", "HUB_VIZ_DASH_ENTRY": "{entry}"},
            ready_path="_dash-layout",
            websockets=False,
            suffixes=(".py",),
            imports=("dash",),
            preload=("waitress.runner", "hub_viz.runners.dash:import_dash", "flask"),
            detect_priority=20,
            # Dash 4 renders the layout into #react-entry-point (a ._dash-loading
            # placeholder until then); callbacks mark their outputs data-dash-is-loading
            rendered_check=(
                "!!document.querySelector('#react-entry-point > :not(._dash-loading)')"
                " && !document.querySelector('[data-dash-is-loading=\"true\"]')"
            ),
        ),
        Framework(
            name="streamlit",
            display_name="Streamlit",
            command=(
                "{python}",
                "-m",
                "streamlit",
                "run",
                "{entry}",
                "--server.port={port}",
                "--server.address=127.0.0.1",
                "--server.headless=true",
                "--server.baseUrlPath={prefix}",
                "--server.fileWatcherType=none",
                "--server.runOnSave=false",
                "--browser.gatherUsageStats=false",
                "--client.toolbarMode=viewer",
            ),
            env=FORWARDED_FROM_LAUNCHER,  # Streamlit serves with uvicorn
            ready_path="_stcore/health",
            suffixes=(".py",),
            imports=("streamlit",),
            preload=("streamlit.web.cli", "streamlit.web.bootstrap"),
            detect_priority=20,
            args_separator=("--",),
            # Streamlit makes a tab's session id and sends it in its first messages; a
            # reconnect names it as the third Sec-WebSocket-Protocol entry and resumes
            # that session (whoever sends it: Streamlit compares user info, empty here),
            # uploads put files into it by path.
            session_binding=(
                r"issued:\b([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b",
                "subprotocol:3",
                "path:^_stcore/upload_file/([^/]+)/",
            ),
            # the script ran to its end with the app connected, and drew something
            rendered_check=(
                '!!document.querySelector(\'[data-testid="stApp"]'
                '[data-test-script-state="notRunning"]'
                '[data-test-connection-state="CONNECTED"]\')'
                ' && !!document.querySelector(\'[data-testid="stMain"] '
                '[data-testid="stElementContainer"]\')'
            ),
        ),
        Framework(
            name="panel",
            display_name="Panel",
            command=("{python}", "-m", "panel", "serve", "{entry}", *_BOKEH_LIKE_FLAGS),
            page_path="{app_name}",
            suffixes=(".py", ".ipynb"),
            imports=("panel",),
            preload=("panel.command",),
            directory_app=True,
            detect_priority=30,
            args_separator=("--args",),
            rendered_check=BOKEH_RENDERED,
        ),
        Framework(
            name="bokeh",
            display_name="Bokeh",
            command=("{python}", "-m", "bokeh", "serve", "{entry}", *_BOKEH_LIKE_FLAGS),
            page_path="{app_name}",
            suffixes=(".py",),
            imports=("bokeh",),
            preload=("bokeh.command.bootstrap", "bokeh.command.subcommands.serve"),
            directory_app=True,
            detect_priority=40,
            args_separator=("--args",),
            rendered_check=BOKEH_RENDERED,
        ),
        Framework(
            name="gradio",
            display_name="Gradio",
            # Gradio serves from "/" and only generates URLs for a root path:
            # the runner mounts the app at the prefix (hub_viz/runners/gradio.py).
            command=(
                "{python}",
                "-m",
                "hub_viz.runners.gradio",
                "{entry}",
                "--port={port}",
                "--prefix={prefix}",
            ),
            env={
                "GRADIO_ANALYTICS_ENABLED": "False",
                # Viewers' flags would be written into the author's folder.
                "GRADIO_FLAGGING_MODE": "never",
            },
            ready_path="config",
            suffixes=(".py",),
            imports=("gradio",),
            # Each tab makes a session hash and names it on every call: in the queue's
            # JSON body (queue/join, cancel, component_server), its event stream and
            # deep links (query), its heartbeat and media streams (path). Whoever names
            # it runs events on that tab's state and reads their results. Results of
            # the REST API (call/<api>/<event id>) are bound to their caller alike.
            session_binding=(
                "json:session_hash",
                "query:session_hash",
                "path:^gradio_api/(?:heartbeat|stream)/([^/]+)",
                "path:^gradio_api/call/[^/]+/([^/]+)",
            ),
            detect_priority=25,
            # the Blocks drawn, no component still loading or pending
            rendered_check=(
                "!!document.querySelector('.gradio-container .main')"
                " && !document.querySelector('.gradio-container .loading, .pending')"
            ),
        ),
        Framework(
            name="shiny",
            display_name="Shiny for Python",
            # Shiny routes from "/" (its pages use relative URLs): the runner
            # serves it under the prefix (hub_viz/runners/shiny.py).
            command=(
                "{python}",
                "-m",
                "hub_viz.runners.shiny",
                "{entry}",
                "--port={port}",
                "--prefix={prefix}",
            ),
            suffixes=(".py",),
            imports=("shiny",),
            detect_priority=25,
            # Shiny makes each tab's session id and sends it in its first websocket
            # message ("config"); its session/<id>/ routes (downloads, uploads, data
            # objects) answer whoever names it.
            session_binding=(
                r'issued:"sessionId"\s*:\s*"([^"]+)"',
                "path:^session/([^/]+)/",
            ),
            # connected, and no output waiting for the server
            rendered_check=(
                "document.readyState === 'complete' && !!window.Shiny"
                " && !!Shiny.shinyapp && Shiny.shinyapp.isConnected()"
                " && !document.documentElement.classList.contains('shiny-busy')"
                " && !document.querySelector('.recalculating')"
            ),
        ),
        Framework(
            name="marimo",
            display_name="marimo",
            # `marimo run` (app mode): read access only, no code sent to the page;
            # the runner drops the prefix's trailing slash marimo refuses.
            command=(
                "{python}",
                "-m",
                "hub_viz.runners.marimo",
                "{entry}",
                "--port={port}",
                "--prefix={prefix}",
            ),
            ready_path="health",
            suffixes=(".py",),
            imports=("marimo",),
            # A marimo notebook imports whatever it plots with; it is a marimo app.
            detect_priority=15,
            jupyter_api="marimo",
            # Whoever names a session id attaches to that session (its websocket takes the
            # session over) and sets its UI elements: bound to the viewer who opened it.
            session_binding=("query:session_id", "header:Marimo-Session-Id"),
            # cells' outputs drawn, no loading indicator left
            rendered_check=(
                "document.querySelectorAll('.output-area').length > 0"
                " && !document.querySelector('.loading, [data-testid=\"loading-indicator\"]')"
            ),
        ),
        Framework(
            name="solara",
            display_name="Solara",
            # Solara's own Starlette app, under the prefix (hub_viz/runners/solara.py).
            command=(
                "{python}",
                "-m",
                "hub_viz.runners.solara",
                "{entry}",
                "--port={port}",
                "--prefix={prefix}",
            ),
            env={
                "SOLARA_MODE": "production",
                "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
            },
            ready_path="readyz",
            suffixes=(".py",),
            imports=("solara",),
            # Solara apps import ipywidgets, plotting libraries, sometimes bokeh.
            detect_priority=25,
            jupyter_api="solara",
            embed_note=(
                "Solara's page reads the browser's local storage, which browsers that "
                "block third-party cookies (Chrome's incognito windows, Safari, or that "
                "setting) deny to a frame from another site: there the embedded "
                "dashboard stays blank. It opens in full from its link everywhere."
            ),
            # the Vuetify app drawn, Solara's loader gone
            rendered_check=(
                "document.readyState === 'complete'"
                " && !!document.querySelector('.v-application')"
                " && !document.querySelector('.solara-loader, #loader-container')"
            ),
        ),
        Framework(
            name="nicegui",
            display_name="NiceGUI",
            # The script runs as __main__ with ui.run held to the launcher's port; NiceGUI
            # expects a proxy that strips the prefix (hub_viz/runners/nicegui.py).
            command=(
                "{python}",
                "-m",
                "hub_viz.runners.nicegui",
                "{entry}",
                "--port={port}",
                "--prefix={prefix}",
            ),
            suffixes=(".py",),
            imports=("nicegui",),
            detect_priority=25,
            # the page's elements drawn and its socket connected
            rendered_check=(
                "!!document.querySelector('.nicegui-content > *')"
                " && !!window.socket && window.socket.connected"
            ),
        ),
        Framework(
            name="notebook",
            display_name="Notebook (JupyterLab)",
            command=(
                "{python}",
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                "--ServerApp.port={port}",
                "--ServerApp.port_retries=0",
                "--ServerApp.base_url={prefix}",
                "--ServerApp.root_dir=.",
                "--ServerApp.terminals_enabled=False",
                # Containers often run as root; the launcher already isolates the server.
                "--ServerApp.allow_root=True",
                # the launcher sends the public Host (a name, not 127.0.0.1) and the
                # forwarded scheme; the app token still guards the server
                "--ServerApp.allow_remote_access=True",
                "--ServerApp.trust_xheaders=True",
                "--LabApp.default_url=/lab/tree/{entry}",
                # viewers get no news feed and cannot install extensions; the page
                # config of jupyter_settings also drops the build prompt
                "--LabApp.news_url=None",
                "--LabApp.extension_manager=readonly",
            ),
            env={"JUPYTER_TOKEN": "{app_token}"},
            ready_path="api/status",
            page_path="lab/tree/{entry}",
            modes=(PER_VIEWER,),
            needs_app_token=True,
            jupyter_api="jupyterlab",
            # Never detected: an .ipynb is a Voilà dashboard unless the author says otherwise.
        ),
        Framework(
            name="custom",
            display_name="Custom command",
            # The spec's own `command` replaces this template (see with_command).
            command=(),
        ),
    )
}
