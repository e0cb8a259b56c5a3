"""The settings both the spawner (in the hub) and the service read: one ``Configurable``.

Set them as ``c.DashboardSettings.<name>`` in ``jupyterhub_config.py`` (or through
:func:`hub_viz.config.configure`'s keywords). The spawner reads them from the hub's
configuration; the hub passes them, as one block, to the service it starts
(:func:`service_config`), so the two can never disagree.

The names were once settings of the spawner classes and of ``DashboardService``;
those still work, with a deprecation warning (:func:`with_deprecated_names`).
"""

from __future__ import annotations

import json
import logging
import warnings
from typing import Any

from traitlets import Bool, Dict, Float, Integer, List, Unicode, validate
from traitlets.config import Config, Configurable

from .builtin_frameworks import BUILTIN_FRAMEWORKS
from .errors import FrameworkError
from .frameworks import DEFAULT_FRAMEWORKS, merge_frameworks
from .profiles import Ceiling, parse_profiles

# Classes that once held these settings: ``c.<class>.<name>`` still works (deprecated).
FORMER_OWNERS = (
    "DashboardSpawnerMixin",
    "DashboardLocalSpawner",
    "DashboardKubeSpawner",
    "DashboardService",
)
# The service's environment variable holding its settings (JSON of a traitlets Config).
SERVICE_CONFIG_ENV = "HUB_VIZ_SERVICE_CONFIG"

log = logging.getLogger("hub_viz")


class DashboardSettings(Configurable):
    """What the spawner and the service both decide by: frameworks, files, git, resources.

    Example: ``c.DashboardSettings.allowed_frameworks = ["voila", "dash"]``.
    """

    dashboards_root = Unicode(
        "/home/{username}",
        config=True,
        help="""Folder that holds dashboard sources; a spec's 'entry' is relative to it.

        ``{username}`` is replaced by the dashboard owner's name. Entries may not
        leave this folder (no '..', no symlinks pointing out). On Kubernetes the
        pods mount the sources at ``DashboardKubeSpawner.source_mount_path`` instead.
        Example: ``c.DashboardSettings.dashboards_root = "/srv/dashboards/{username}"``.
        """,
    )
    check_files = Bool(
        True,
        config=True,
        help="""Check that the entry exists (and detect its framework) when a dashboard is
        published and before it starts. Off where the hub cannot see the dashboard files
        (``configure(spawner="kube")`` turns it off).""",
    )
    allowed_frameworks = List(
        Unicode(),
        default_value=DEFAULT_FRAMEWORKS,
        config=True,
        help="""Frameworks authors may publish and start. 'custom' (any command) is off by
        default: enable it only where authors may run arbitrary commands in their servers.
        A framework added in ``extra_frameworks`` must be listed here too.""",
    )
    extra_frameworks = Dict(
        config=True,
        help="""Framework records merged per key over the built-ins.

        A known name changes only the fields given; a new name must give
        ``command``. Example:
        ``{"streamlit": {"ready_path": "healthz"}, "vizro": {"command": ["python", "-m", "vizro_app", "{entry}", "--port={port}"]}}``.
        """,
    )
    git_schemes = List(
        Unicode(),
        default_value=["https"],
        config=True,
        help="""URL schemes allowed for git sources. Add 'file' only for tests and demos.""",
    )
    snapshots_root = Unicode(
        "",
        config=True,
        help="""Where each version of a dashboard published from the author's files keeps
        a read-only copy of the entry's folder (taken by the service at publish and update,
        run by the instances of that version); "" keeps no copies: every version runs the
        author's files as they are at start. ``configure()`` sets ``<state_dir>/snapshots``
        on a local hub; on Kubernetes the files live in the pods' volumes, out of reach.""",
    )
    snapshot_max_bytes = Integer(
        100_000_000,
        config=True,
        help="""The most the copied folder of one version may hold, in bytes; a larger
        folder is refused at publish with a message to put the dashboard in a folder of
        its own.""",
    )
    profiles = Dict(
        config=True,
        help="""Resource profiles a dashboard spec may name.

        Maps a name to ``display_name``, ``cpu_request``, ``cpu_limit``,
        ``mem_request``, ``mem_limit`` and, on Kubernetes, ``image``,
        ``image_pull_policy``, ``node_selector`` and ``tolerations``;
        see :mod:`hub_viz.profiles`.
        """,
    )
    resource_ceiling = Dict(
        config=True,
        help="""The most one instance may use, e.g. ``{"cpu": 2, "memory": "4G"}``.
        A spec or profile asking for more is refused before anything starts.""",
    )
    max_warm_kernels = Integer(
        100,
        config=True,
        help="""The most preheated Voilà kernels one dashboard may ask for (``warm_kernels``),
        and the most its pool grows to when a class opens it at once.

        Each holds its own memory (about 60 MB for a small Voilà notebook), inside
        the instance's memory limit. 0 turns preheated kernels off.""",
    )
    warm_pool_user = Unicode(
        "hub-viz-pool",
        config=True,
        help="""Hub user owning warm-pool instances (per-viewer instances started before
        their viewer is known); they get scratch storage, never a home, and it never
        logs in.""",
    )
    activity_interval = Float(
        60,
        config=True,
        help="""Seconds between two activity reports to the hub for one server (the
        launchers' and the service's: phone-home pings and keep-warm windows are
        coalesced into them). Keep it well below the idle culler's timeout.""",
    )

    @validate("resource_ceiling")
    def _validate_ceiling(self, proposal: Any) -> dict:
        try:
            Ceiling.parse(proposal.value)
        except ValueError as e:
            raise ValueError(f"DashboardSettings.{e}") from None
        return proposal.value

    @validate("profiles")
    def _validate_profiles(self, proposal: Any) -> dict:
        try:
            parse_profiles(proposal.value, Ceiling())
        except ValueError as e:
            raise ValueError(f"DashboardSettings.profiles: {e}") from None
        return proposal.value

    @validate("extra_frameworks")
    def _validate_extra_frameworks(self, proposal: Any) -> dict:
        try:
            merge_frameworks(BUILTIN_FRAMEWORKS, proposal.value)
        except FrameworkError as e:
            raise ValueError(f"DashboardSettings.extra_frameworks: {e.message}") from None
        return proposal.value

    @property
    def frameworks(self) -> dict[str, Any]:
        """The built-in framework records with ``extra_frameworks`` merged over them."""
        return merge_frameworks(BUILTIN_FRAMEWORKS, self.extra_frameworks)

    def as_dict(self) -> dict[str, Any]:
        """Every setting's value (JSON-able), to pass to the service."""
        return {name: getattr(self, name) for name in sorted(self.trait_names(config=True))}


def shared_names() -> frozenset[str]:
    """The names of the settings both sides read."""
    return frozenset(DashboardSettings.class_trait_names(config=True))


def with_deprecated_names(config: Config, owners: tuple[str, ...] = FORMER_OWNERS) -> Config:
    """``config`` with a setting made under a former owner's name moved to
    ``DashboardSettings`` (unless set there too), each with a deprecation warning."""
    moved = Config()
    moved.merge(config)
    for owner in owners:
        if owner not in config:
            continue
        for name in sorted(shared_names() & set(config[owner])):
            value = config[owner][name]
            message = (
                f"c.{owner}.{name} is deprecated since hub_viz 0.9: "
                f"set c.DashboardSettings.{name} (read by the spawner and the service)"
            )
            if name in config.DashboardSettings:
                message += "; it is set there too, and that value wins"
            else:
                moved.DashboardSettings[name] = value
            warnings.warn(message, DeprecationWarning, stacklevel=2)
            log.warning("%s", message)
    return moved


def load_settings(config: Config, parent: Configurable | None = None) -> DashboardSettings:
    """The settings as ``config`` gives them (former names included)."""
    return DashboardSettings(parent=parent, config=with_deprecated_names(config))


def service_config(config: Config, service: dict[str, Any]) -> str:
    """The service's settings (``HUB_VIZ_SERVICE_CONFIG``): its own ``DashboardService``
    options and the shared settings, read once from the hub's ``config``."""
    return json.dumps(
        {
            "DashboardService": {k: v for k, v in service.items() if k not in shared_names()},
            "DashboardSettings": load_settings(config).as_dict(),
        }
    )
