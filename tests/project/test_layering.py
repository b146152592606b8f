"""The tree's layering (STYLE.md, README "Architecture"), checked on the source itself.

- `mastery` is the core: it imports no other app. `ingest`, `analytics` and `compliance`
  build on it, and the apps' imports (function-level ones included) have no cycle.
- No app imports another app's `admin` or `api`: shared plumbing lives in
  `mastery_project/`, and only the project's wiring (its URLs, API router, `/process`
  router, settings and entry points) imports them all.
- The plumbing is below the apps, not a way round the rules: a plumbing module imports no
  app but the core, so an app importing plumbing reaches nothing more than the core.
- Domain code (`*/domain/`, and the admin's chart geometry) is pure: the standard library,
  numpy, scipy, orjson and other pure modules only; no Django.
"""

import ast
import sys
from collections import defaultdict
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
APPS = ("mastery", "ingest", "analytics", "compliance")
CORE = "mastery"
PURE_THIRD_PARTY = {"numpy", "scipy", "orjson", "msgspec"}
PURE_MODULES = {"mastery/admin/chart.py"}
PROJECT = "mastery_project"
WIRING = {"urls", "api", "process", "settings", "wsgi", "asgi"}


def _sources(package: str) -> list[Path]:
    return sorted((REPO_ROOT / package).rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO_ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, anywhere in the file, relative imports resolved."""
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path.parent)
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def app_of(module: str) -> str | None:
    root = module.split(".")[0]
    return root if root in APPS else None


def app_graph() -> dict[str, set[str]]:
    """App -> the other apps its modules import."""
    graph: dict[str, set[str]] = defaultdict(set)
    for app in APPS:
        for path in _sources(app):
            graph[app] |= {app_of(m) for m in imported_modules(path)} - {app, None}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the directed graph, as a path that ends where it starts, or None."""
    state: dict[str, str] = {}

    def visit(node: str, trail: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return [*trail[trail.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt, [*trail, nxt])):
                return cycle
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [node])):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_accepts_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_import_walker_sees_function_level_and_relative_imports(tmp_path, monkeypatch):
    package = tmp_path / "ingest"
    package.mkdir()
    source = package / "thing.py"
    source.write_text("from .models import X\n\ndef f():\n    from mastery.admin import Y\n")
    monkeypatch.setattr(sys.modules[__name__], "REPO_ROOT", tmp_path)
    assert {"ingest.models", "mastery.admin", "mastery.admin.Y"} <= imported_modules(source)


def test_apps_import_each_other_without_a_cycle():
    graph = app_graph()
    assert find_cycle(graph) is None, f"import cycle between apps: {find_cycle(graph)}"


def test_the_core_app_imports_no_other_app():
    assert app_graph()[CORE] == set()


@pytest.mark.parametrize("app", APPS)
def test_no_app_imports_another_apps_admin_or_api(app):
    offending = [
        f"{path.relative_to(REPO_ROOT)} imports {module}"
        for path in _sources(app)
        for module in imported_modules(path)
        if app_of(module) not in (None, app) and module.split(".")[1:2] in (["admin"], ["api"])
    ]
    assert offending == []


def _plumbing_sources() -> list[Path]:
    return [
        path
        for path in _sources(PROJECT)
        if _module_name(path).split(".")[1:2] and _module_name(path).split(".")[1] not in WIRING
    ]


def test_plumbing_modules_are_found():
    names = {_module_name(p) for p in _plumbing_sources()}
    assert {"mastery_project.access", "mastery_project.admin_access"} <= names
    assert "mastery_project.api" not in names


@pytest.mark.parametrize(
    "path", _plumbing_sources(), ids=lambda path: path.relative_to(REPO_ROOT).as_posix()
)
def test_plumbing_imports_no_app_but_the_core(path):
    reached = {app_of(m) for m in imported_modules(path)} - {None}
    assert reached <= {CORE}, f"{path.relative_to(REPO_ROOT)} imports {sorted(reached - {CORE})}"


def _pure_sources() -> list[Path]:
    domain = [p for app in APPS for p in (REPO_ROOT / app).glob("domain/**/*.py")]
    return sorted({*domain, *(REPO_ROOT / p for p in PURE_MODULES)})


def test_pure_modules_are_found():
    found = {p.relative_to(REPO_ROOT).as_posix() for p in _pure_sources()}
    assert {"mastery/domain/formula.py", "ingest/domain/events.py", *PURE_MODULES} <= found


def _allowed_in_pure_code(module: str) -> bool:
    parts = module.split(".")
    pure = {_module_name(p) for p in _pure_sources()}
    return (
        parts[0] in sys.stdlib_module_names
        or parts[0] in PURE_THIRD_PARTY
        or any(module == name or module.startswith(f"{name}.") for name in pure)
    )


@pytest.mark.parametrize(
    "path", _pure_sources(), ids=lambda path: path.relative_to(REPO_ROOT).as_posix()
)
def test_pure_module_imports_no_django(path):
    imported = imported_modules(path)
    assert sorted(name for name in imported if name.split(".")[0] == "django") == []
    assert sorted(name for name in imported if not _allowed_in_pure_code(name)) == []
