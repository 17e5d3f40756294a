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
    result = run_cli("ingest", "frames/", "--size", "4")
    assert_one_line_error(result, "ingest: error: size=4: must be", "between 8 and 1024")
    assert "PreprocessParams(" not in result.stderr  # the field core refused, not the whole model


def test_tiled_down():
    """With Tiled unreachable, the user is told which address failed and how to fix it."""
    result = run_cli("ingest", "frames/", MORPHOSPACE_TILED_URI="http://127.0.0.1:9/api/v1",
                     MORPHOSPACE_TILED_API_KEY="x")
    assert_one_line_error(result, "http://127.0.0.1:9/api/v1", "not reachable", "MORPHOSPACE_TILED_URI")


def documented_commands() -> list[str]:
    """Every `morphospace ...` command the README shows: bash blocks and inline code."""
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]  # "\" continues
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
            "live", "simulate-xpcs", "train-xpcs-regressor", "ingest-xpcs-map"} <= subcommands, subcommands


@pytest.mark.parametrize("command", documented_commands())
def test_documented_command_parses(command):
    """Each command form the README shows is accepted by the real parser, options in place."""
    from app.cli import build_parser

    try:
        build_parser().parse_args(shlex.split(command))
    except SystemExit as exc:  # argparse exits 2 on any mismatch; 0 after printing --help
        assert exc.code == 0, f"the README's {command!r} is refused"


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


def test_step_models_are_imported_only_for_a_step():
    """`morphospace --help`, `demo` and the like start without the parameter models' imports
    (pydantic, numpy, pandas: over a second); a step's options are there once it is chosen."""
    heavy = ("flows.params", "pydantic", "numpy", "core.settings")
    code = ("import sys; from app.cli import build_parser; build_parser().parse_args(sys.argv[1:]); "
            f"print(*[m for m in {heavy!r} if m in sys.modules])")

    def imported(*argv: str) -> list[str]:
        done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=ROOT,
                              timeout=120, check=True)
        return done.stdout.split()

    assert imported("demo", "--no-browser") == []
    assert {"flows.params", "pydantic"} <= set(imported("project", "lat-1", "--dims", "3"))


def step_options():
    """(command, model, option action) for every option of the step subcommands built from a model."""
    import argparse

    from app.cli import STEPS, build_parser
    from flows import params as p

    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command, step in STEPS.items():
        model = getattr(p, step.model)
        for action in subparsers.filled(command)._actions:
            if action.option_strings and action.dest in model.model_fields:
                yield command, model, action


def test_step_options_are_the_models_fields():
    """Each step offers every plain field of its model, with the model's default, type and choices."""
    from flows.params import rule

    import argparse

    from app.cli import list_item

    seen: dict[str, set[str]] = {}
    for command, model, action in step_options():
        item = list_item(model.model_fields[action.dest].annotation)
        if item is not None:  # a list: any number of values, the model's default when left out
            assert (action.nargs, action.type, action.default) == ("*", item, argparse.SUPPRESS), action.dest
        else:
            r = rule(model, action.dest)
            kind = None if r.kind is bool else r.kind  # a yes/no field is --NAME/--no-NAME, no type
            assert (action.default, action.type, tuple(action.choices or ())) == (r.default, kind, r.choices), \
                (command, action.dest)
        seen.setdefault(model.__name__, set()).add(action.dest)
    from app.cli import STEPS
    from flows import params as p

    for step in STEPS.values():
        model = getattr(p, step.model)
        plain = {n for n, info in model.model_fields.items()
                 if not info.default_factory or list_item(info.annotation)} - set(step.positional)
        assert seen[step.model] == plain, step.model


def _beyond(bound: tuple[str, float], kind: type, side: int) -> tuple:
    """(a value the bound allows, one it refuses), just inside and just outside it."""
    words, limit = bound
    step = 1 if kind is int else 1e-6
    inside = limit + side * step if words in ("more than", "less than") else limit
    return inside, limit if words in ("more than", "less than") else limit - side * step


def test_step_option_bounds_are_the_models():
    """At each bound of a field the command line accepts what the model accepts and refuses the next value."""
    from pydantic import ValidationError

    from app.cli import STEPS, build_parser, step_params
    from flows.params import rule

    checked = 0
    for command, model, action in step_options():
        r = rule(model, action.dest)
        ids = ["x-1"] * len(STEPS[command].positional)
        for bound, side in ((r.lo, 1), (r.hi, -1)):
            if bound is None:
                continue
            inside, outside = _beyond(bound, r.kind, side)
            flag = action.option_strings[0]
            params = step_params(build_parser().parse_args([command, *ids, f"{flag}={inside}"]))[1]
            assert getattr(params, action.dest) == inside
            with pytest.raises(ValidationError):
                step_params(build_parser().parse_args([command, *ids, f"{flag}={outside}"]))
            checked += 1
    assert checked >= 15


def test_ingest_defaults_are_preprocessings():
    """Ingest's preprocessing options default to core's PreprocessParams, so both give the same dataset."""
    from app.cli import build_parser, step_params
    from core.data.preprocess import PreprocessParams

    params = step_params(build_parser().parse_args(["ingest", "frames/"]))[1]
    assert params.preprocess == PreprocessParams()


def test_ingest_options_are_preprocessings_fields():
    """Every field of core's PreprocessParams is an ingest option with its default, and each form
    of option (a number, a yes/no pair, the clip pair and --no-clip) reaches the field."""
    import dataclasses

    from app.cli import build_parser, step_params
    from core.data.preprocess import PreprocessParams

    ingest = next(a for a in build_parser()._actions if a.dest == "command").filled("ingest")
    options = {a.dest for a in ingest._actions if a.option_strings}
    assert {f.name for f in dataclasses.fields(PreprocessParams)} <= options

    def preprocess(*flags: str) -> PreprocessParams:
        return step_params(build_parser().parse_args(["ingest", "frames/", *flags]))[1].preprocess

    assert preprocess("--size", "32", "--patch-size", "16", "--patch-stride", "8", "--log", "--no-normalize",
                      "--mask-nonpositive", "--no-grayscale", "--clip", "1", "99") == PreprocessParams(
        size=32, patch_size=16, patch_stride=8, log=True, normalize=False, mask_nonpositive=True,
        grayscale=False, clip_percentiles=(1.0, 99.0))
    assert preprocess("--no-clip").clip_percentiles is None
    assert preprocess("--no-clip", "--clip", "2", "98").clip_percentiles == (2.0, 98.0)  # the last one given


@pytest.mark.parametrize("flag, inside, outside", [("--size", 8, 7), ("--size", 1024, 1025),
                                                  ("--patch-size", 8, 7), ("--patch-stride", 1, 0)])
def test_ingest_option_bounds_are_cores(flag, inside, outside):
    """At each bound the ingest options accept what core's validate() accepts and refuse the next
    value with core's own error (field, value and range as data)."""
    from pydantic import ValidationError

    from app.cli import build_parser, describe, step_params

    extra = ["--patch-size", "8"] if flag == "--patch-stride" else []
    params = step_params(build_parser().parse_args(["ingest", "frames/", flag, str(inside), *extra]))[1]
    assert getattr(params.preprocess, flag[2:].replace("-", "_")) == inside
    with pytest.raises(ValidationError) as refused:
        step_params(build_parser().parse_args(["ingest", "frames/", flag, str(outside), *extra]))
    assert describe(refused.value).startswith(f"{flag[2:].replace('-', '_')}={outside}: must be None or an integer")


def test_list_field_takes_any_number_of_values():
    """train-xpcs-regressor's experimental_ids: several ids, one, or none (the model's empty list)."""
    from app.cli import build_parser, step_params

    def ids(*argv: str) -> list[str]:
        return step_params(build_parser().parse_args(["train-xpcs-regressor", "xsim-1", *argv]))[1].experimental_ids

    assert ids("--experimental-ids", "xmap-1", "xmap-2", "--epochs", "3") == ["xmap-1", "xmap-2"]
    assert ids("--experimental-ids", "xmap-1") == ["xmap-1"]
    assert ids() == []


def test_ingest_xpcs_map_refuses_files_outside_the_data_roots(tmp_path):
    """A map outside MORPHOSPACE_DATA_ROOTS is refused in one line before Tiled is asked; a file
    inside that is no .npy is named as such."""
    import numpy as np

    inside, outside = tmp_path / "in", tmp_path / "out"
    inside.mkdir(), outside.mkdir()
    np.save(outside / "map.npy", np.ones((4, 4)))
    (inside / "notes.txt").write_text("not a map")
    roots = f'["{inside}"]'
    unreachable = {"MORPHOSPACE_TILED_URI": "http://127.0.0.1:9/api/v1", "MORPHOSPACE_TILED_API_KEY": "x"}
    result = run_cli("ingest-xpcs-map", str(outside / "map.npy"), MORPHOSPACE_DATA_ROOTS=roots, **unreachable)
    assert_one_line_error(result, "ingest-xpcs-map: error:", "outside the allowed data roots")
    result = run_cli("ingest-xpcs-map", str(inside / "notes.txt"), MORPHOSPACE_DATA_ROOTS=roots, **unreachable)
    assert_one_line_error(result, "no .npy file among")


def test_ingest_xpcs_map_stores_the_maps(tiled_server, tmp_path):
    """Inside the roots, the maps reach Tiled through the owner and read back equal; the id is printed."""
    import numpy as np

    from core.data.results.xpcs_maps import read_maps
    from core.data.store import Store

    maps = [np.eye(5) + 1.0, np.full((3, 3), 1.1)]
    for name, C in zip(("a.npy", "b.npy"), maps):
        np.save(tmp_path / name, C)
    project = "cli-xpcs"
    result = run_cli("ingest-xpcs-map", str(tmp_path / "*.npy"), "--name", "two maps",
                     MORPHOSPACE_DATA_ROOTS=f'["{tmp_path}"]', MORPHOSPACE_PROJECT=project,
                     MORPHOSPACE_TILED_URI=tiled_server.uri.split("?")[0],
                     MORPHOSPACE_TILED_API_KEY=tiled_server.api_key)
    assert result.returncode == 0, result.stderr
    stored = read_maps(Store.from_uri(tiled_server.uri.split("?")[0], api_key=tiled_server.api_key,
                                      project=project), result.stdout.strip())
    assert (stored.metadata["name"], stored.metadata["sources"]) == ("two maps", ["a.npy", "b.npy"])
    for got, want in zip(stored.maps, maps):
        np.testing.assert_array_equal(got, want)
