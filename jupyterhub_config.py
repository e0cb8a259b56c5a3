"""The embedded default: a demo hub on http://127.0.0.1:8000 with example dashboards.

Local processes, SQLite, configurable-http-proxy; log in as any name with the
shared password printed at start-up (default "hub-viz-demo"). Started by ``hub-viz demo``.
"""

import os
from pathlib import Path

from hub_viz.config import configure

HERE = Path(__file__).resolve().parent
PASSWORD = os.environ.get("HUB_VIZ_DEMO_PASSWORD", "hub-viz-demo")

configure(
    c,
    spawner="local",
    dashboards_root=str(HERE / "examples"),
    # Every dashboard runs as the hub's own user: fine for a demo on 127.0.0.1,
    # not for a hub whose authors are not trusted.
    run_as_hub_user=True,
    dashboards={
        "voila-example": {"title": "Voilà example", "framework": "voila", "entry": "voila/dashboard.ipynb"},
        "dash-example": {"title": "Dash example", "framework": "dash", "entry": "dash/app.py"},
        "bokeh-example": {"title": "Bokeh example", "framework": "bokeh", "entry": "bokeh/app.py"},
        "panel-example": {"title": "Panel example", "framework": "panel", "entry": "panel/app.py"},
        "streamlit-example": {"title": "Streamlit example", "framework": "streamlit", "entry": "streamlit/app.py"},
        "notebook-example": {
            "title": "Notebook example (JupyterLab, per viewer)",
            "framework": "notebook",
            "entry": "notebook/analysis.ipynb",
            "mode": "per-viewer",
        },
    },
)

c.JupyterHub.ip = os.environ.get("HUB_VIZ_DEMO_IP", "127.0.0.1")
c.JupyterHub.port = int(os.environ.get("HUB_VIZ_DEMO_PORT", "8000"))
c.JupyterHub.authenticator_class = "shared-password"
c.SharedPasswordAuthenticator.user_password = PASSWORD
c.Authenticator.allow_all = True
c.Authenticator.admin_users = {"admin"}
state = Path(os.environ.get("HUB_VIZ_DEMO_STATE", HERE / ".demo"))
state.mkdir(parents=True, exist_ok=True)
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.ConfigurableHTTPProxy.pid_file = str(state / "proxy.pid")
