"""The command line as a user meets it: one-line errors, exit status 2, no traceback."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

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


def documented_commands() -> list[str]:
    """Every `morphospace ...` command the README shows: bash blocks and inline code."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [line for block in blocks for line in block.splitlines()]
    lines += re.findall(r"`([^`\n]*morphospace [^`\n]*)`", text)
    commands = []
    for line in lines:
        words = shlex.split(line, comments=True)
        while words and "=" in words[0] and not words[0].startswith("-"):  # VAR=value prefixes
            words.pop(0)
        if words and words[0].endswith("morphospace") and len(words) > 1 and not words[1].endswith(":"):
            commands.append(shlex.join(words[1:]))  # (a quoted error message ends its word in ':')
    return commands


def test_readme_lists_commands():
    """The README shows the demo, the worker and each step; the parser below checks them all."""
    subcommands = {shlex.split(c)[0] for c in documented_commands()}
    assert {"demo", "worker", "ingest", "train", "encode", "project", "cluster", "simulate",
            "live"} <= subcommands, subcommands


@pytest.mark.parametrize("command", documented_commands())
def test_documented_command_parses(command):
    """Each command form the README shows is accepted by the real parser, options in place."""
    from app.cli import build_parser

    build_parser().parse_args(shlex.split(command))  # argparse exits (status 2) on any mismatch


@pytest.mark.parametrize("argv", [
    ["--data-dir", "D", "demo", "--no-browser"],
    ["demo", "--no-browser", "--data-dir", "D"],
    ["ingest", "frames/", "--data-dir", "D"],
])
def test_global_options_either_side(argv):
    """--data-dir is accepted before or after the subcommand, with the same meaning."""
    from app.cli import build_parser

    assert build_parser().parse_args(argv).data_dir == Path("D")


def test_demo_help_runs():
    """The installed entry point answers the README's demo form with --help."""
    result = run_cli("demo", "--no-browser", "--port", "8060", "--data-dir", "DIR", "--help")
    assert result.returncode == 0 and "--data-dir" in result.stdout and "--simulate" in result.stdout
