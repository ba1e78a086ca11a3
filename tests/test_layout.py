"""The layout's rules, checked on the source: who may import whom, and what the installed package holds."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ("model", "replay", "stream")
TRANSPORTS = ("aiokafka", "redis", "faust", "mode")


def _modules() -> dict[str, Path]:
    """sessionrec.* module name -> source file, for every module of the three folders."""
    found = {}
    for folder in FOLDERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(("sessionrec", *(parts[:-1] if parts[-1] == "__init__" else parts)))
            found[name] = path
    return found


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports in functions included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle, as a path of module names, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    assert _cycle(_graph()) is None


def test_model_knows_no_transport_and_no_stream() -> None:
    for name, path in _modules().items():
        if name.startswith("sessionrec.model"):
            bad = {m for m in _imports(path) if m.split(".")[0] in TRANSPORTS or m.startswith(("sessionrec.stream", "sessionrec.replay"))}
            assert not bad, f"{name} imports {sorted(bad)}"


def test_replay_does_not_import_the_stream() -> None:
    for name, path in _modules().items():
        if name.startswith("sessionrec.replay"):
            bad = {m for m in _imports(path) if m.startswith("sessionrec.stream")}
            assert not bad, f"{name} imports {sorted(bad)}"


def test_every_import_of_the_project_goes_through_the_namespace() -> None:
    """`model.x` would import the repository folder a second time, beside `sessionrec.model.x`."""
    for path in [*_modules().values(), *(ROOT / "tests").glob("*.py")]:
        bare = {m for m in _imports(path) if m.split(".")[0] in FOLDERS}
        assert not bare, f"{path.relative_to(ROOT)} imports {sorted(bare)}"


def test_every_package_is_installed() -> None:
    """A subpackage missing from pyproject's list works in the clone and is absent from a real install."""
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {name for name, path in _modules().items() if path.name == "__init__.py"}
    assert listed == packages


def test_a_command_without_torch_does_not_import_it() -> None:
    script = ("import sys\nfrom sessionrec.stream.cli.main import main\n"
              "try:\n    main(['tail', '--help'])\nexcept SystemExit:\n    pass\n"
              "print(sorted(m for m in ('torch', 'pandas', 'faust') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_dashboard_files_are_installed() -> None:
    """The page and script live beside the code as package data; a wheel without them would serve nothing."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert data["sessionrec.stream.watch"] == ["static/*"]
    assert sorted(p.name for p in (ROOT / "stream" / "watch" / "static").iterdir()) == ["dashboard.html", "dashboard.js"]
