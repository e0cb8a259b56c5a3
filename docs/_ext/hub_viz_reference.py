"""Reference pages generated from the code at build time.

- ``reference/rest-api.md`` from ``hub_viz/service/openapi.yaml``;
- ``reference/cli.md`` from ``hub_viz.cli.build_parser()``;
- ``reference/frameworks.md`` from ``hub_viz.frameworks``;
- ``reference/configuration.md`` from the classes' traitlets.

(Sphinx is imported only when it runs the extension: the tests import this module.)

Every configurable trait of the documented classes, every keyword of
``configure()`` and every API operation and schema property must carry a
description, or the build fails.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
OPENAPI = REPO / "hub_viz" / "service" / "openapi.yaml"
GENERATED = Path(__file__).resolve().parents[1] / "reference" / "generated"

# The classes whose configurable traits the configuration reference lists.
CONFIGURABLES = (
    "hub_viz.settings.DashboardSettings",
    "hub_viz.spawner.DashboardLocalSpawner",
    "hub_viz.kubespawner.DashboardKubeSpawner",
    "hub_viz.service.app.DashboardService",
    "hub_viz.environments.EnvironmentBuilder",
)
METHODS = ("get", "post", "put", "patch", "delete")


def own_config_traits(path: str | type) -> dict[str, Any]:
    """The configurable traits hub_viz adds to a class (defined in hub_viz's own classes
    and mixins; what it inherits from JupyterHub, KubeSpawner or traitlets is theirs)."""
    from traitlets.utils.importstring import import_item

    cls = import_item(path) if isinstance(path, str) else path
    found = {}
    for name, trait in cls.class_traits(config=True).items():
        owner = next(k for k in cls.__mro__ if name in vars(k))
        if owner.__module__.split(".")[0] == "hub_viz":
            found[name] = trait
    return found


def undocumented_traits(classes: tuple[str | type, ...] = CONFIGURABLES) -> list[str]:
    """``module.Class.trait`` of every setting without help text."""
    missing = []
    for path in classes:
        name_of = path if isinstance(path, str) else f"{path.__module__}.{path.__qualname__}"
        for name, trait in own_config_traits(path).items():
            if not (trait.help or "").strip():
                missing.append(f"{name_of}.{name}")
    return missing


def undocumented_keywords(function: Any = None) -> list[str]:
    """The keywords of ``configure()`` (or ``function``) its docstring does not name."""
    import inspect
    import re

    if function is None:
        from hub_viz.config import configure as function
    doc = inspect.getdoc(function) or ""
    names = [n for n in inspect.signature(function).parameters if n != "c"]
    return [n for n in names if not re.search(rf"``[^`]*\b{n}\b[^`]*``", doc)]


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _schema_type(schema: dict[str, Any], spec: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        return f"[{name}](#schema-{name.lower()})"
    if "oneOf" in schema:
        return " or ".join(_schema_type(s, spec) for s in schema["oneOf"])
    kind = schema.get("type", "object")
    if kind == "array":
        return f"array of {_schema_type(schema.get('items', {}), spec)}"
    if "enum" in schema:
        return f"{kind}: " + ", ".join(f"`{v}`" for v in schema["enum"])
    return kind


def rest_api(spec: dict[str, Any]) -> tuple[str, list[str]]:
    """The REST API page, and what lacks a description."""
    missing: list[str] = []
    info = spec["info"]
    lines = [
        f"# REST API ({info.get('version', '')})",
        "",
        "Generated from `hub_viz/service/openapi.yaml`, which the service also serves "
        "at `api/openapi.yaml`.",
        "",
        info.get("description", "").strip(),
        "",
    ]
    for path, item in spec["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            title = op.get("summary") or ""
            if not title:
                missing.append(f"{method.upper()} {path}: summary")
            lines += [f"## `{method.upper()} {path}`", "", _cell(title), ""]
            if op.get("description"):
                lines += [op["description"].strip(), ""]
            params = [p for p in item.get("parameters", []) + op.get("parameters", [])]
            if params:
                lines += ["| parameter | in | description |", "| --- | --- | --- |"]
                for p in params:
                    if "$ref" in p:
                        p = spec["components"]["parameters"][p["$ref"].rsplit("/", 1)[1]]
                    lines.append(
                        f"| `{p['name']}` | {p['in']} | {_cell(p.get('description', ''))} |"
                    )
                lines.append("")
            body = op.get("requestBody", {}).get("content", {})
            for media, content in body.items():
                lines += [f"Body ({media}): {_schema_type(content.get('schema', {}), spec)}", ""]
            lines += ["| status | meaning |", "| --- | --- |"]
            for status, response in op.get("responses", {}).items():
                if "$ref" in response:
                    response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
                lines.append(f"| {status} | {_cell(response.get('description', ''))} |")
            lines.append("")
    lines += ["## Schemas", ""]
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        lines += [f"({'schema-' + name.lower()})=", f"### {name}", ""]
        if schema.get("description"):
            lines += [schema["description"].strip(), ""]
        props = schema.get("properties", {})
        if props:
            lines += ["| field | type | description |", "| --- | --- | --- |"]
            for field, prop in props.items():
                text = prop.get("description", "") if isinstance(prop, dict) else ""
                if not text and "$ref" not in prop:
                    missing.append(f"schema {name}.{field}")
                lines.append(f"| `{field}` | {_cell(_schema_type(prop, spec))} | {_cell(text)} |")
            lines.append("")
    return "\n".join(lines) + "\n", missing


def cli_page() -> str:
    from hub_viz.cli import build_parser

    parser = build_parser()
    lines = [
        "# Command line: `hub-viz`",
        "",
        "Generated from the command's own parser.",
        "",
        "```text",
        parser.format_help().rstrip(),
        "```",
        "",
    ]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        lines += [f"## `hub-viz {name}`", "", "```text", command.format_help().rstrip(), "```", ""]
    return "\n".join(lines)


TITLES = {
    "hub_viz.settings.DashboardSettings": "What the spawner and the service both read",
    "hub_viz.spawner.DashboardLocalSpawner": "The local spawner",
    "hub_viz.kubespawner.DashboardKubeSpawner": "The Kubernetes spawner",
    "hub_viz.service.app.DashboardService": "The service",
    "hub_viz.environments.EnvironmentBuilder": "Dashboard environments (local spawner)",
}


def _default(trait: Any) -> str:
    try:
        value = trait.default_value_repr()
    except Exception:  # a dynamic default
        return "(computed)"
    return value if len(value) < 120 else value[:117] + "..."


def config_page() -> str:
    """Every configurable trait each class adds, with its type, default and help."""
    import textwrap

    lines = [
        "# Configuration reference",
        "",
        "Generated from the traitlets of each class: the settings it adds to the ones it "
        "inherits from JupyterHub's `LocalProcessSpawner`, KubeSpawner's `KubeSpawner` or "
        "traitlets' `Application`. Set them in `jupyterhub_config.py` after "
        "`configure()`, e.g. `c.DashboardLocalSpawner.app_ready_timeout = 120`; the "
        "service's through `configure(c, extra_service_config={...})`. "
        "`DashboardSettings` is read by both the spawner and the service: set it once, "
        "e.g. `c.DashboardSettings.extra_frameworks = {...}`; the hub passes it to the "
        "service when it starts. (Its settings were once the spawner's and the "
        "service's: `c.DashboardLocalSpawner.extra_frameworks` and the like still work, "
        "with a deprecation warning.)",
        "",
    ]
    for path in CONFIGURABLES:
        cls_name = path.rsplit(".", 1)[1]
        lines += [f"## {TITLES[path]}: `{cls_name}`", ""]
        for name, trait in sorted(own_config_traits(path).items()):
            help_text = textwrap.dedent(trait.help).strip()
            lines += [
                f"### `{cls_name}.{name}`",
                "",
                f"{type(trait).__name__}, default `{_default(trait)}`",
                "",
                "```text",
                help_text,
                "```",
                "",
            ]
    return "\n".join(lines)


def frameworks_page() -> str:
    from hub_viz.builtin_frameworks import BUILTIN_FRAMEWORKS

    lines = [
        "# Frameworks",
        "",
        "Generated from `hub_viz/builtin_frameworks.py`: each framework is a "
        "record there. `{entry}`, `{port}` and `{prefix}` are filled in per server.",
        "",
        "| name | shown as | modes | command |",
        "| --- | --- | --- | --- |",
    ]
    for fw in BUILTIN_FRAMEWORKS.values():
        command = " ".join(fw.command) if fw.command else "(the author's own command)"
        modes = ", ".join(fw.modes)
        lines.append(f"| `{fw.name}` | {_cell(fw.display_name)} | {modes} | `{_cell(command)}` |")
    return "\n".join(lines) + "\n"


def generate(app: Any) -> None:
    from sphinx.errors import ExtensionError

    missing = undocumented_traits()
    missing += [f"configure({name}=...)" for name in undocumented_keywords()]
    spec = yaml.safe_load(OPENAPI.read_text())
    page, api_missing = rest_api(spec)
    missing += api_missing
    if missing:
        raise ExtensionError("Undocumented configuration or API: " + "; ".join(missing))
    GENERATED.mkdir(parents=True, exist_ok=True)
    for name, text in {
        "rest-api.md": page,
        "cli.md": cli_page(),
        "frameworks.md": frameworks_page(),
        "configuration.md": config_page(),
    }.items():
        target = GENERATED / name
        if not target.exists() or target.read_text() != text:
            target.write_text(text)


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", generate)
    return {"parallel_read_safe": True, "version": "1"}
