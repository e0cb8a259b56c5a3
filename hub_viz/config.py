"""One call in ``jupyterhub_config.py`` wires hub_viz into a hub.

::

    from hub_viz.config import configure
    configure(c, dashboards_root="/srv/dashboards", dashboards={...})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "templates"

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
) -> None:
    """Configure JupyterHub ``c`` to serve dashboards.

    ``spawner`` is ``"local"`` (processes on this machine) or ``"kube"``
    (pods); ``dashboards`` maps server names to predefined specs, shown as
    cards on the home page.
    """
    if spawner not in SPAWNERS:
        raise ValueError(f"configure(spawner={spawner!r}): use one of {sorted(SPAWNERS)}")
    spawner_class = SPAWNERS[spawner]
    short = spawner_class.rsplit(".", 1)[1]
    c.JupyterHub.spawner_class = spawner_class
    c.JupyterHub.allow_named_servers = True
    # Users land on the dashboard cards, not on a default notebook server.
    c.JupyterHub.redirect_to_server = False
    c.JupyterHub.template_paths = [str(TEMPLATES)]
    dashboards = dict(dashboards or {})
    c.JupyterHub.template_vars = {"hub_viz_dashboards": example_cards(dashboards)}
    spawner_config = getattr(c, short)
    spawner_config.predefined_dashboards = {
        name: {k: v for k, v in spec.items() if k != "description"}
        for name, spec in dashboards.items()
    }
    if dashboards_root is not None:
        spawner_config.dashboards_root = dashboards_root
    if allowed_frameworks is not None:
        spawner_config.allowed_frameworks = allowed_frameworks
    if spawner == "local":
        spawner_config.run_as_hub_user = run_as_hub_user
    # The launcher answers the hub's probe at once and the spawner waits for the app.
    c.Spawner.start_timeout = 180
    c.Spawner.http_timeout = 60
