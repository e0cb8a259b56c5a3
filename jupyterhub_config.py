"""The embedded default: a demo hub on http://hub.localhost:8000 with example dashboards.

Local processes, SQLite, configurable-http-proxy; log in as any name with the
shared password printed at start-up (default "hub-viz-demo"; the admin ``admin``
with "hub-viz-demo-admin-password-2026"). Started by ``hub-viz demo``.

The isolated layout: the hub at ``hub.localhost``, the service and every
dashboard on hosts of their own below it (browsers resolve every
``*.localhost`` name to this machine). ``HUB_VIZ_DEMO_HOST=""`` (``hub-viz
demo --path-based``) serves everything from ``127.0.0.1`` instead; then only
named publishers may share dashboards.
"""

import os
from pathlib import Path

from hub_viz.config import configure

HERE = Path(__file__).resolve().parent
PASSWORD = os.environ.get("HUB_VIZ_DEMO_PASSWORD", "hub-viz-demo")
# the hub's admin logs in with a password of their own (32 characters at least)
ADMIN_PASSWORD = os.environ.get("HUB_VIZ_DEMO_ADMIN_PASSWORD", "hub-viz-demo-admin-password-2026")

c.JupyterHub.ip = os.environ.get("HUB_VIZ_DEMO_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("HUB_VIZ_DEMO_PORT", "8000"))
# the hub's own and the proxy's API ports (defaults 8081, 8001), for demos run side by side
if os.environ.get("HUB_VIZ_DEMO_HUB_PORT"):
    c.JupyterHub.hub_port = int(os.environ["HUB_VIZ_DEMO_HUB_PORT"])
if os.environ.get("HUB_VIZ_DEMO_PROXY_API_PORT"):
    c.ConfigurableHTTPProxy.api_url = (
        f"http://127.0.0.1:{int(os.environ['HUB_VIZ_DEMO_PROXY_API_PORT'])}"
    )
HOST = os.environ.get("HUB_VIZ_DEMO_HOST", "hub.localhost")
state = Path(os.environ.get("HUB_VIZ_DEMO_STATE", HERE / ".demo"))
state.mkdir(parents=True, exist_ok=True)

EXAMPLES = [
    ("voila-example", "Voilà example", "voila", "voila/dashboard.ipynb", "shared"),
    ("dash-example", "Dash example", "dash", "dash/app.py", "shared"),
    ("bokeh-example", "Bokeh example", "bokeh", "bokeh/app.py", "shared"),
    ("panel-example", "Panel example", "panel", "panel/app.py", "shared"),
    ("streamlit-example", "Streamlit example", "streamlit", "streamlit/app.py", "shared"),
    (
        "notebook-example",
        "Notebook example (JupyterLab)",
        "notebook",
        "notebook/analysis.ipynb",
        "per-viewer",
    ),
    ("gradio-example", "Gradio example", "gradio", "gradio/app.py", "shared"),
    ("shiny-example", "Shiny example", "shiny", "shiny/app.py", "shared"),
    ("marimo-example", "marimo example", "marimo", "marimo/app.py", "shared"),
    ("solara-example", "Solara example", "solara", "solara/app.py", "shared"),
    ("nicegui-example", "NiceGUI example", "nicegui", "nicegui/app.py", "shared"),
]

# what each example has that the default sentence would get wrong
DESCRIPTIONS = {
    "dash-example": "The Dash example: sums of squares and a number box.",
    "notebook-example": "The notebook example: each viewer runs and edits a copy of "
    "their own in JupyterLab.",
}

configure(
    c,
    spawner="local",
    dashboards_root=str(HERE / "examples"),
    # Every dashboard runs as the hub's own user: fine for a demo on 127.0.0.1,
    # not for a hub whose authors are not trusted.
    run_as_hub_user=True,
    state_dir=str(state),
    # The examples, published by "instructor" for every hub user at start-up.
    publish=[
        {
            "owner": "instructor",
            "slug": slug,
            "title": title,
            "framework": framework,
            "entry": entry,
            "mode": mode,
            "visibility": "all",
            "description": DESCRIPTIONS.get(
                slug, f"The {title.split()[0]} example: sums of squares and a slider."
            ),
            # a new viewer's Voilà page comes from a kernel that already ran the notebook
            **({"warm_kernels": 1} if framework == "voila" else {}),
        }
        for slug, title, framework, entry, mode in EXAMPLES
    ],
    # per-viewer dashboards may keep up to two instances started ahead ("warm_pool")
    warm_pool_ceiling=2,
    # the service and every dashboard on a host of its own (docs/explanation/origins.md)
    subdomain_host=f"http://{HOST}:{c.JupyterHub.port}" if HOST else None,
    # with --path-based, dashboards share the hub's origin: then only admins and
    # "instructor" may publish beyond "private" (everyone else publishes private ones)
    publishers=["instructor"],
)

c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = PASSWORD
c.SharedPasswordAuthenticator.admin_password = ADMIN_PASSWORD
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}
# The examples' author exists from the start, so its dashboards can run before it logs in.
c.Authenticator.allowed_users = {"instructor"}
# A course as an LTI launch from Canvas would leave it (docs/use/canvas.md): its
# students' group and its instructors' group, with the course title the forms show.
# Only a course's instructors may share with it.
COURSE = {"lti_context_title": "Data Science 101", "lti_context_label": "DS 101"}
c.JupyterHub.load_groups = {
    "course-101": {"users": ["alice", "bob", "carol"], "properties": COURSE},
    "course-101-instructors": {"users": ["instructor"], "properties": COURSE},
}
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
# A demo leaves nothing running when it stops (configure() keeps dashboards across restarts).
c.JupyterHub.cleanup_servers = True
