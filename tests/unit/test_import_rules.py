"""The package's layers, read from its imports (``ast``, nothing is imported).

Three processes, three places: the hub's plug-ins (spawners, configuration, proxy,
LTI login), the service (``hub_viz/service/``) and the launcher that runs in every
dashboard instance (``hub_viz/launcher/``, ``hub_viz/runners/``). Below them, records
all three may use (frameworks, specs, signing, settings, ...). An import counts
wherever it is written, at the top or inside a function.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "hub_viz"

HUB = {
    "hub_viz.spawner",
    "hub_viz.kubespawner",
    "hub_viz.config",
    "hub_viz.forkstart",
    "hub_viz.hubproxy",
    "hub_viz.hubstart",
    "hub_viz.lti",
    "hub_viz.lti_handlers",
}
TOOLS = {"hub_viz.cli", "hub_viz.client", "hub_viz.k8s_manifest"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def place(module: str) -> str:
    if module.startswith("hub_viz.service"):
        return "service"
    if module.startswith(("hub_viz.launcher", "hub_viz.runners")):
        return "launcher"
    if module in HUB:
        return "hub"
    if module in TOOLS:
        return "tools"
    return "records"


def imports_of(module: str) -> Iterator[tuple[str, int]]:
    """The hub_viz modules ``module`` imports, with line numbers."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            target, names = "", [a.name for a in node.names]
        else:
            continue
        for name in [target, *names]:
            if name in MODULES and name != module:
                yield name, node.lineno


EDGES = {(m, t, line) for m in MODULES for t, line in imports_of(m)}

# place -> places it must never import
FORBIDDEN = {
    "service": {"hub", "launcher", "tools"},
    "launcher": {"hub", "service", "tools"},
    "hub": {"launcher", "tools"},
    "records": {"hub", "service", "launcher", "tools"},
}
# The hub's wiring reads two of the service's records (its scopes, the publishers
# parser) to refuse a bad configuration when the hub loads it.
ALLOWED = {
    ("hub_viz.config", "hub_viz.service.hubapi"),
    ("hub_viz.config", "hub_viz.service.publishers"),
}


def test_the_parser_sees_the_known_imports() -> None:
    pairs = {(m, t) for m, t, _ in EDGES}
    assert ("hub_viz.service.app", "hub_viz.settings") in pairs
    assert ("hub_viz.kubespawner", "hub_viz.spawner") in pairs
    assert ("hub_viz.launcher.grants", "hub_viz.signing") in pairs  # inside a method
    assert ("hub_viz.service.embed_handlers", "hub_viz.service.openflow") in pairs


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_imports_what_it_must_not(layer: str) -> None:
    wrong = sorted(
        f"{MODULES[m].relative_to(PACKAGE.parent)}:{line} imports {t}"
        for m, t, line in EDGES
        if place(m) == layer and place(t) in FORBIDDEN[layer] and (m, t) not in ALLOWED
    )
    assert not wrong, "\n".join(wrong)


def test_the_service_reaches_the_hub_only_for_the_services_records() -> None:
    """Only the hub's wiring (config) reads the service's modules, and only records."""
    into_service = {
        (m, t)
        for m, t, _ in EDGES
        if place(t) == "service" and place(m) not in ("service", "tools")
    }
    assert into_service == ALLOWED


def test_the_open_flow_is_its_own_module() -> None:
    assert ("hub_viz.service.embed_handlers", "hub_viz.service.api") not in {
        (m, t) for m, t, _ in EDGES
    }


def test_no_cycles() -> None:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for m, t, _ in EDGES:
        if t.startswith(m + "."):  # a package importing its own submodule
            continue
        graph[m].add(t)
    seen: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(m: str) -> list[str] | None:
        seen[m] = 1
        path.append(m)
        for t in sorted(graph[m]):
            if seen.get(t) == 1:
                return path[path.index(t) :] + [t]
            if t not in seen and (cycle := visit(t)):
                return cycle
        seen[m] = 2
        path.pop()
        return None

    for m in sorted(graph):
        if m not in seen:
            cycle = visit(m)
            assert cycle is None, " -> ".join(cycle)
