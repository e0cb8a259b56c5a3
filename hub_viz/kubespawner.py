"""The Kubernetes spawner: dashboards as pods (Zero-to-JupyterHub).

A module of its own so that hubs without the ``kubernetes`` extra can still
load every other part of hub_viz (JupyterHub loads all spawner entry points).
"""

from __future__ import annotations

from kubespawner import KubeSpawner
from traitlets import default

from .spawner import DashboardSpawnerMixin

__all__ = ["DashboardKubeSpawner"]


class DashboardKubeSpawner(DashboardSpawnerMixin, KubeSpawner):
    """Dashboards as Kubernetes pods running ``hub-viz-launch``."""

    @default("check_files")
    def _default_check_files(self) -> bool:
        # The sources live in the pod's volumes, not on the hub.
        return False

    @default("dashboards_root")
    def _default_dashboards_root(self) -> str:
        return "/srv/dashboards"

    @default("cmd")
    def _default_cmd(self) -> list[str]:
        return list(self.launcher_command)
