"""One set of settings for the spawner and the service (hub_viz.settings)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from hub_viz.config import configure
from hub_viz.hubstart import prepare_service
from hub_viz.service.app import DashboardService
from hub_viz.settings import SERVICE_CONFIG_ENV, DashboardSettings, shared_names
from hub_viz.spawner import DashboardLocalSpawner

pytestmark = pytest.mark.unit

# A value for each shared setting that differs from its default (and is valid).
CHANGED: dict[str, Any] = {
    "dashboards_root": "/srv/elsewhere/{username}",
    "check_files": False,
    "allowed_frameworks": ["dash", "vizro"],
    "extra_frameworks": {"vizro": {"command": ["{python}", "{entry}", "--port={port}"]}},
    "git_schemes": ["https", "file"],
    "profiles": {"tiny": {"display_name": "Tiny", "cpu_limit": 0.5}},
    "resource_ceiling": {"cpu": 1, "memory": "1G"},
    "max_warm_kernels": 3,
    "warm_pool_user": "pool-7",
    "activity_interval": 7.0,
    "snapshots_root": "/srv/snapshots",
    "snapshot_max_bytes": 5_000_000,
}


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def hub_started(c: Config) -> DashboardService:
    """The service as the hub starts it: configured, then given its settings at hub start."""
    prepare_service(c, c.JupyterHub.services)
    [spec] = [s for s in c.JupyterHub.services if s["name"] == "hub-viz"]
    service = DashboardService()
    service.update_config(Config(json.loads(spec["environment"][SERVICE_CONFIG_ENV])))
    return service


def spawner_of(c: Config) -> DashboardLocalSpawner:
    return DashboardLocalSpawner(config=c)


def test_every_changed_value_is_a_setting() -> None:
    assert set(CHANGED) == shared_names()
    for name, value in CHANGED.items():
        assert getattr(DashboardSettings(), name) != value, name


@pytest.mark.parametrize("name", sorted(shared_names()))
def test_a_setting_set_once_reaches_both_sides(name: str) -> None:
    """Set after configure() (as an operator may), it still reaches the service."""
    c = Config()
    configure(c, cull_idle=False)
    c.DashboardSettings[name] = CHANGED[name]
    spawner, service = spawner_of(c), hub_started(c)
    assert getattr(spawner.settings, name) == CHANGED[name]
    assert getattr(service.settings, name) == CHANGED[name]
    if name != "extra_frameworks":  # the spawner reads it as `frameworks`
        assert getattr(spawner, name) == CHANGED[name]


def test_no_setting_is_declared_on_both_sides() -> None:
    """A name both classes declare would be set on one side only: it must move to
    DashboardSettings (what the other hub_viz classes add is theirs alone)."""
    from hub_viz.kubespawner import DashboardKubeSpawner

    def own(cls: type) -> set[str]:
        """The configurable traits hub_viz's own classes add (not JupyterHub's)."""
        return {
            name
            for name in cls.class_trait_names(config=True)
            if next(k for k in cls.__mro__ if name in vars(k)).__module__.startswith("hub_viz.")
        }

    spawners = own(DashboardLocalSpawner) | own(DashboardKubeSpawner)
    service = own(DashboardService)
    assert {"service_url", "predefined_dashboards"} <= spawners and "db_url" in service
    assert not spawners & service
    assert not (spawners | service) & shared_names()


def test_the_policy_the_service_publishes_by_is_the_shared_one() -> None:
    c = Config()
    configure(c, cull_idle=False)
    for name, value in CHANGED.items():
        c.DashboardSettings[name] = value
    policy = hub_started(c).policy()
    assert "vizro" in policy.frameworks and policy.allowed_frameworks == ["dash", "vizro"]
    assert spawner_of(c).frameworks["vizro"] == policy.frameworks["vizro"]
    assert (policy.dashboards_root, policy.check_files, policy.git_schemes) == (
        "/srv/elsewhere/{username}",
        False,
        ("https", "file"),
    )


@pytest.mark.parametrize("owner", ["DashboardLocalSpawner", "DashboardService"])
def test_former_names_still_work_with_a_warning(owner: str) -> None:
    c = Config()
    configure(c, cull_idle=False)
    c[owner].extra_frameworks = CHANGED["extra_frameworks"]
    with pytest.warns(DeprecationWarning, match=rf"c\.{owner}\.extra_frameworks is deprecated"):
        spawner, service = spawner_of(c), hub_started(c)
    assert "vizro" in spawner.frameworks
    assert "vizro" in service.policy().frameworks


def test_the_new_name_wins_over_a_former_one() -> None:
    c = Config()
    configure(c, cull_idle=False)
    c.DashboardLocalSpawner.max_warm_kernels = 9
    c.DashboardSettings.max_warm_kernels = 4
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert spawner_of(c).max_warm_kernels == 4
    assert "that value wins" in str(caught[0].message)


def test_a_bad_framework_record_is_refused_with_the_settings_name() -> None:
    c = Config()
    c.DashboardSettings.extra_frameworks = {"vizro": {"display_name": "no command"}}
    with pytest.raises(ValueError, match=r"DashboardSettings\.extra_frameworks: .*vizro"):
        spawner_of(c).settings  # noqa: B018


def test_loading_the_config_writes_nothing(tmp_path: Path) -> None:
    c = Config()
    configure(
        c,
        state_dir=str(tmp_path / "state"),
        warm_pool_ceiling=2,
        lti={"client_id": "1", "auth_state": False},
    )
    assert list(tmp_path.iterdir()) == []
    hub_started(c)  # the hub's start makes the keys, private
    state = tmp_path / "state"
    made = sorted(p.name for p in state.iterdir())
    assert made == [
        "hub_viz_lti_key.pem",
        "hub_viz_lti_secret",
        "hub_viz_signing_key.pem",
        "hub_viz_signing_key.pub",
    ]
    assert all((state / n).stat().st_mode & 0o077 == 0 for n in made if not n.endswith(".pub"))
    # the spawner reads the public key the hub made
    spawner = spawner_of(c)
    assert spawner.service_public_key == (state / "hub_viz_signing_key.pub").read_text()
