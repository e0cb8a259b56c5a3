"""What the hub does for hub_viz when it starts, once its whole configuration is loaded.

Loading ``jupyterhub_config.py`` (and :func:`hub_viz.config.configure`) writes
nothing; the hub's own start-up (:class:`hub_viz.hubproxy.DashboardProxy` is made
before the hub starts its services) calls :func:`prepare_service`, which

- makes the files the service and the hub share, once: the service's signing key
  pair (the spawners read its public half), the LTI tool's key and secret;
- passes the shared settings (``c.DashboardSettings``, as the hub now reads them,
  whatever was set after ``configure()``) to the service, in one block.

The service makes its own files too when it starts, so a hub with another proxy
class still works (settings set before ``configure()`` reach it then).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .lti_keys import ensure_rsa_key, ensure_secret
from .settings import SERVICE_CONFIG_ENV, load_settings
from .signing import ensure_key_pair


def ensure_service_files(service: dict[str, Any]) -> None:
    """The key files named in the service's settings, made once (private, mode 0600)."""
    if service.get("signing_key_file"):
        ensure_key_pair(Path(service["signing_key_file"]))
    if service.get("lti_key_file"):
        ensure_rsa_key(Path(service["lti_key_file"]))
    if service.get("lti_secret_file"):
        ensure_secret(Path(service["lti_secret_file"]))


def prepare_service(config: Any, services: list[dict[str, Any]]) -> None:
    """For each hub_viz service in ``services`` (``JupyterHub.services``): its files made
    and its settings passed, from the hub's whole configuration ``config``."""
    settings = load_settings(config).as_dict()
    for spec in services:
        environment = spec.get("environment") or {}
        raw = environment.get(SERVICE_CONFIG_ENV)
        if not raw:
            continue
        service_config = json.loads(raw)
        ensure_service_files(service_config.get("DashboardService") or {})
        service_config["DashboardSettings"] = settings
        environment[SERVICE_CONFIG_ENV] = json.dumps(service_config)
