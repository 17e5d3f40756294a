"""The import rules of DESIGN.md, as tests: core stands alone."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT

CORE_MODULES = sorted(
    ".".join(p.relative_to(ROOT).with_suffix("").parts)
    for p in (ROOT / "core").rglob("*.py")
    if p.name != "__init__.py"
)


@pytest.mark.parametrize("forbidden", ["dash", "prefect"])
def test_core_imports_neither_dash_nor_prefect(forbidden):
    """Importing every core module in a fresh interpreter loads no Dash and no Prefect."""
    code = (
        "import importlib, sys\n"
        f"for m in {CORE_MODULES!r}: importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m == {forbidden!r} or m.startswith({forbidden!r} + '.')]\n"
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
