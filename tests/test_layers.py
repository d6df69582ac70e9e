"""The package's shape: each arrow of a decision's path points one way.

fronts (http, platforms, web) → service → facts / store → engine, with the small shared
modules (settings, budget, breaker, observe, metrics, ids) at the bottom. This reads every
module's imports (lazy ones inside functions too) and fails on an import that points up
or sideways where it should not, so the layout stays what docs describe.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "router"

BOTTOM = {
    "router.__version__",  # the package's and the contract's version numbers
    "router.settings",
    "router.metrics",
    "router.observe",
    "router.ids",
    "router.budget",
    "router.breaker",
    "router.jsonsafe",
    "router.sensitive",
}


def layer(module: str) -> str:
    if module in BOTTOM:
        return "bottom"
    for prefix, name in (
        ("router.engine", "engine"),
        ("router.records", "records"),
        ("router.store", "store"),
        ("router.facts", "facts"),
        ("router.service", "service"),
        ("router.http", "fronts"),
        ("router.platforms", "fronts"),
        ("router.web", "fronts"),
    ):
        if module == prefix or module.startswith(prefix + "."):
            return name
    if module in ("router.rules_registry", "router.reload"):
        return "rules"
    if module == "router":
        return "engine"  # the package's public API is the engine's (contract §6)
    return "top"  # cli, serve, server, workers, __main__


ALLOWED: dict[str, set[str]] = {
    "bottom": {"bottom", "engine"},  # the engine is a library that imports nothing of ours
    "engine": {"engine"},
    "store": {"store", "bottom"},
    "facts": {"facts", "store", "engine", "bottom"},
    "records": {"records", "store", "engine", "bottom"},
    "rules": {"rules", "engine", "bottom"},
    "service": {"service", "records", "facts", "store", "engine", "rules", "bottom"},
    "fronts": {"fronts", "service", "rules", "bottom", "store"},
    "top": {"top", "fronts", "service", "records", "facts", "store", "engine", "rules", "bottom"},
}
"""What each layer may import. ``fronts`` may name the store only for its interface
(``router.store``, checked below), never a backend."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "router" and node.level == 0:
            # ``from router import jsonsafe`` names a module; ``from router import RuleSet``
            # names the package's (the engine's) public API
            found.update(
                f"router.{alias.name}"
                if (ROOT / f"{alias.name}.py").exists()
                else "router.__version__"
                if alias.name.startswith("__")
                else "router"
                for alias in node.names
            )
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return {name for name in found if name == "router" or name.startswith("router.")}


def test_no_import_points_up_the_path_of_a_decision() -> None:
    wrong = []
    for path in sorted(ROOT.rglob("*.py")):
        here = module_name(path)
        for target in imports(path):
            if layer(target) not in ALLOWED[layer(here)]:
                wrong.append(f"{here} ({layer(here)}) imports {target} ({layer(target)})")
            if layer(here) == "fronts" and layer(target) == "store" and target != "router.store":
                wrong.append(f"{here} imports a store backend or internal: {target}")
    assert wrong == []


def test_the_engine_imports_no_aiohttp() -> None:
    for path in (ROOT / "engine").rglob("*.py"):
        names = {
            alias.name
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            node.module or ""
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            if isinstance(node, ast.ImportFrom)
        }
        assert not any(n.split(".")[0] == "aiohttp" for n in names), path


def test_serving_modules_do_not_import_each_other_in_a_circle() -> None:
    graph = {
        name: {t for t in imports(ROOT / f"{name.split('.')[-1]}.py") if t in SERVING}
        for name in SERVING
    }
    for name, targets in graph.items():
        for target in targets:
            assert name not in graph[target], f"{name} and {target} import each other"


SERVING = {"router.serve", "router.server", "router.workers", "router.cli"}
