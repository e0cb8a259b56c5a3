"""The documentation's generated references match the code (docs/_ext/hub_viz_reference.py)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

import pytest
import yaml
from jupyterhub.spawner import LocalProcessSpawner
from kubespawner import KubeSpawner
from traitlets import Integer
from traitlets.config import Application, Configurable, LoggingConfigurable

from hub_viz.environments import EnvironmentBuilder
from hub_viz.kubespawner import DashboardKubeSpawner
from hub_viz.service.app import DashboardService
from hub_viz.settings import DashboardSettings
from hub_viz.spawner import DashboardLocalSpawner

pytestmark = pytest.mark.unit

EXT = Path(__file__).resolve().parents[2] / "docs" / "_ext" / "hub_viz_reference.py"


@pytest.fixture(scope="module")
def reference():
    spec = importlib.util.spec_from_file_location("hub_viz_reference", EXT)
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("hub_viz_reference", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("cls", "base"),
    [
        (DashboardLocalSpawner, LocalProcessSpawner),
        (DashboardKubeSpawner, KubeSpawner),
        (DashboardService, Application),
        (DashboardSettings, Configurable),
        (EnvironmentBuilder, LoggingConfigurable),
    ],
)
def test_the_configuration_reference_lists_every_setting_hub_viz_adds(reference, cls, base):
    page = reference.config_page()
    listed = set(re.findall(rf"^### `{cls.__name__}\.(\w+)`$", page, flags=re.M))
    added = set(cls.class_traits(config=True)) - set(base.class_traits(config=True))
    assert listed == added
    assert listed, "every class adds settings of its own"


def test_a_setting_without_help_fails_the_build(reference):
    assert reference.undocumented_traits() == []

    class Quiet(DashboardService):
        silent = Integer(0).tag(config=True)
        told = Integer(0, help="Has its help.").tag(config=True)

    Quiet.__module__, Quiet.__qualname__ = "hub_viz.quiet", "Quiet"  # as if hub_viz added it
    assert reference.undocumented_traits((Quiet,)) == ["hub_viz.quiet.Quiet.silent"]


def test_every_keyword_of_configure_is_documented(reference):
    assert reference.undocumented_keywords() == []

    def configure(c, *, told=1, silent=2):
        """Sets ``told``."""

    assert reference.undocumented_keywords(configure) == ["silent"]


def test_the_rest_api_page_lists_every_operation(reference):
    spec = yaml.safe_load(reference.OPENAPI.read_text())
    page, _ = reference.rest_api(spec)
    for path, item in spec["paths"].items():
        for method in reference.METHODS:
            if method in item:
                assert f"## `{method.upper()} {path}`" in page.splitlines()
    for name in spec["components"]["schemas"]:
        assert f"### {name}" in page.splitlines()


def test_an_api_field_or_operation_without_description_fails_the_build(reference):
    spec = yaml.safe_load(reference.OPENAPI.read_text())
    _, missing = reference.rest_api(spec)
    assert missing == []
    spec["components"]["schemas"]["Error"]["properties"]["hint"] = {"type": "string"}
    spec["paths"]["/api/info"]["get"].pop("summary")
    _, missing = reference.rest_api(spec)
    assert missing == ["GET /api/info: summary", "schema Error.hint"]


def test_the_cli_and_frameworks_pages_come_from_the_code(reference):
    from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS
    from hub_viz.cli import build_parser

    cli = reference.cli_page()
    commands = next(a for a in build_parser()._actions if hasattr(a, "choices") and a.choices)
    assert {f"## `hub-viz {name}`" for name in commands.choices} <= set(cli.splitlines())
    table = reference.frameworks_page()
    assert {f"| `{name}` |" for name in BUILTIN_FRAMEWORKS} <= {
        line[: line.index("|", 2) + 1] for line in table.splitlines() if line.startswith("| `")
    }
