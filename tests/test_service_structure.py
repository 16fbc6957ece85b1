"""The services depend one way: no module of ``openlfr.services`` imports, even lazily inside a function,
a module that imports it back. Circular imports hide which layer owns a rule and break on reordering;
shared vocabulary lives in ``services/common.py``, below everything that uses it."""

from __future__ import annotations

import ast
from pathlib import Path

import openlfr.services

SERVICES = Path(openlfr.services.__file__).resolve().parent


def service_imports(root: Path) -> dict[str, set[str]]:
    """Module name → the sibling service modules it imports (top level or inside functions)."""
    modules = {p.stem for p in root.glob("*.py") if p.stem != "__init__"}
    graph: dict[str, set[str]] = {}
    for name in modules:
        deps: set[str] = set()
        for node in ast.walk(ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module == "openlfr.services":
                    deps |= {alias.name for alias in node.names}
                elif node.module.startswith("openlfr.services."):
                    deps.add(node.module.split(".")[2])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[2] for a in node.names if a.name.startswith("openlfr.services.")}
        graph[name] = (deps & modules) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def test_deployments_alerts_and_records_depend_one_way() -> None:
    graph = service_imports(SERVICES)
    trio = {"alerts", "deployments", "records"}
    among = {m: graph[m] & trio for m in trio}
    assert find_cycle(among) is None, f"import cycle: {' → '.join(find_cycle(among) or [])}"
    assert among == {"deployments": {"records"}, "records": set(), "alerts": set()}
    assert {"common"} <= graph["alerts"] & graph["records"] & graph["deployments"]
    assert graph["common"] == set()


def test_no_import_cycle_among_services() -> None:
    cycle = find_cycle(service_imports(SERVICES))
    assert cycle is None, f"import cycle among services: {' → '.join(cycle or [])}"


def test_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


PACKAGE = SERVICES.parent
#: Layers below the services: they must not reach up into services or the interfaces over them.
LOWER_LAYERS = ("core", "index", "media", "models", "storage")
UPPER_LAYERS = ("services", "api", "web", "cli", "live")


def imported_modules(path: Path) -> set[str]:
    """Every ``openlfr`` module a file imports, top level or inside functions (``from a import b`` gives a.b too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name.startswith("openlfr.")}


def offenders(folder: str, forbidden: tuple[str, ...]) -> dict[str, list[str]]:
    """Files of ``openlfr/<folder>`` importing any module under one of the ``forbidden`` prefixes."""
    bad: dict[str, list[str]] = {}
    for path in sorted((PACKAGE / folder).rglob("*.py")):
        hits = sorted(m for m in imported_modules(path) if any(m == f or m.startswith(f"{f}.") for f in forbidden))
        if hits:
            bad[str(path.relative_to(PACKAGE))] = hits
    return bad


def test_pages_do_not_import_api_routes() -> None:
    """``web/`` and ``api/routes/`` are siblings over the services: what both need lives in services
    (or, for request handling, in a shared ``api`` module that is not a route)."""
    assert offenders("web", ("openlfr.api.routes",)) == {}


def test_api_routes_do_not_import_pages() -> None:
    assert offenders("api/routes", ("openlfr.web",)) == {}


def test_lower_layers_do_not_import_services_or_interfaces() -> None:
    """The index, core, storage, media and models are used by the services, never the other way round."""
    forbidden = tuple(f"openlfr.{layer}" for layer in UPPER_LAYERS)
    bad = {}
    for layer in LOWER_LAYERS:
        bad |= offenders(layer, forbidden)
    assert bad == {}


def test_offenders_finds_a_forbidden_import(tmp_path: Path) -> None:
    module = tmp_path / "page.py"
    module.write_text("def f():\n    from openlfr.api.routes.alerts import alert_payload\n")
    assert imported_modules(module) == {"openlfr.api.routes.alerts", "openlfr.api.routes.alerts.alert_payload"}
