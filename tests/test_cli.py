"""The command line as a user meets it: one-line errors, exit status 2, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MORPHOSPACE_")}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**clean, **env}, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr


def test_out_of_range_parameter():
    """An out-of-range UMAP parameter names the field, the value and the bound."""
    assert_one_line_error(run_cli("project", "lat-x", "--n-neighbors", "1"),
                          "n_neighbors=1", "greater than or equal to 2")


def test_bad_preprocess_option():
    """A resize below the allowed range is refused before anything is submitted."""
    assert_one_line_error(run_cli("ingest", "frames/", "--size", "4"), "size=4", "between 8 and 1024")


def test_tiled_down():
    """With Tiled unreachable, the user is told which address failed and how to fix it."""
    result = run_cli("ingest", "frames/", MORPHOSPACE_TILED_URI="http://127.0.0.1:9/api/v1",
                     MORPHOSPACE_TILED_API_KEY="x")
    assert_one_line_error(result, "http://127.0.0.1:9/api/v1", "not reachable", "MORPHOSPACE_TILED_URI")
