"""The import rules of DESIGN.md, as tests: each layer imports only what it may.

Imports are read statically (ast over every file, imports inside functions included): as sure as
importing for our own packages, and a second to check them all. Only what third-party packages
import in turn needs a fresh interpreter (core must not pull in dash or prefect through them).
"""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Our top-level packages and modules: every folder of Python files and every module at the root.
OURS = frozenset(
    {p.name for p in ROOT.iterdir() if p.is_dir() and not p.name.startswith(".") and any(p.glob("*.py"))}
    | {p.stem for p in ROOT.glob("*.py")}
)
CORE_MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for p in (ROOT / "core").rglob("*.py")
    if p.name != "__init__.py"
)
PAGE = frozenset({"components", "callbacks", "app"})
# layer -> what none of its files may import (a package and everything under it)
RULES = {
    "core": (OURS - {"core"}) | {"dash", "prefect"},  # core stands alone
    "flows": PAGE,
    "streaming": PAGE,
    "components": {"prefect"},  # Prefect is touched only in flows/
    "callbacks": {"prefect"},
    "bench": {"tests"},
}


def module_name(path: Path) -> str:
    """``components/map_panel.py`` -> ``components.map_panel``."""
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), str(path))


def imported(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in a file; ``from a import b`` yields both ``a`` and
    ``a.b`` (b may be a module), relative imports resolved against the file's package."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return found


def layer_files(layer: str) -> list[Path]:
    return sorted((ROOT / layer).rglob("*.py"))


def offences(files: list[Path], forbidden: set[str] | frozenset[str]) -> list[str]:
    """``file:line imports module`` for each import of a forbidden package or its submodules."""
    found: dict[tuple[str, int], str] = {}
    for path in files:
        for line, name in imported(path):
            if any(name == bad or name.startswith(bad + ".") for bad in forbidden):
                where = (str(path.relative_to(ROOT)), line)
                found[where] = min(found.get(where, name), name, key=len)
    return [f"{file}:{line} imports {name}" for (file, line), name in sorted(found.items())]


def panels() -> set[str]:
    """The panels: the component modules that define an All-in-One class (``…AIO``)."""
    return {module_name(path) for path in layer_files("components")
            if any(isinstance(node, ast.ClassDef) and node.name.endswith("AIO")
                   for node in parsed(path).body)}


@pytest.mark.parametrize("layer", sorted(RULES))
def test_each_layer_imports_only_what_it_may(layer):
    """No file of the layer imports a package its rule forbids, not even inside a function."""
    files = layer_files(layer)
    assert files, f"no Python files under {layer}/"
    bad = offences(files, RULES[layer])
    assert not bad, f"{layer}/ may not import {sorted(RULES[layer])}:\n" + "\n".join(bad)


def test_no_component_imports_a_panel():
    """Panels are composed by the app and wired in callbacks/; helpers shared by two panels live
    in a neutral module, so no module of components/ imports a panel other than itself."""
    shown = panels()
    assert len(shown) >= 5, shown
    bad = sorted(
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in layer_files("components") for line, name in imported(path)
        if name in shown and name != module_name(path)
    )
    assert not bad, "a panel imported by another component module:\n" + "\n".join(bad)


def test_the_scanner_sees_every_kind_of_import(tmp_path, monkeypatch):
    """Imports inside functions, relative ones and ``from package import module`` are all seen."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "core" / "maps").mkdir(parents=True)
    sneaky = tmp_path / "core" / "maps" / "sneaky.py"
    sneaky.write_text("from .. import data\nfrom components import map_panel\n"
                      "def f():\n    import prefect.client\n")
    found = {name for _, name in imported(sneaky)}
    assert {"core", "core.data", "components.map_panel", "prefect.client"} <= found
    assert offences([sneaky], {"components", "prefect"}) == [
        "core/maps/sneaky.py:2 imports components", "core/maps/sneaky.py:4 imports prefect.client"]


def test_core_pulls_in_neither_dash_nor_prefect():
    """Importing every core module in a fresh interpreter loads no Dash and no Prefect, not even
    through a third-party package."""
    code = (
        "import importlib, sys\n"
        f"for m in {CORE_MODULES!r}: importlib.import_module(m)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('dash', 'prefect')]\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(CORE_MODULES) >= 10


def test_the_web_app_submits_without_importing_torch():
    """The Dash process names flows through flows.names; importing the flows would load torch."""
    code = ("import sys, flows.submit, components.jobs_panel, components.status_banner\n"
            "sys.exit(1 if 'torch' in sys.modules else 0)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_flow_names_list_the_served_flows():
    """flows.names (what the app submits) and flows.deployments (what a worker serves) agree."""
    from flows.deployments import FLOWS
    from flows.names import FLOW_NAMES

    assert tuple(FLOWS) == FLOW_NAMES
