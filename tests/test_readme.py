"""The README keeps up with the code: every setting and every input format is documented."""

from __future__ import annotations

from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()


def test_every_setting_documented():
    """Each field of core.settings.Settings appears in the README as its environment variable."""
    from core.settings import Settings

    missing = [f"MORPHOSPACE_{name.upper()}" for name in Settings.model_fields
               if f"MORPHOSPACE_{name.upper()}" not in README]
    assert not missing, f"settings missing from README.md: {missing}"


def test_every_input_format_documented():
    """Each file extension ingest accepts is named in the README."""
    from core.data.imageio import SUPPORTED_EXTENSIONS

    missing = [ext for ext in SUPPORTED_EXTENSIONS if f"`{ext}`" not in README]
    assert not missing, f"input formats missing from README.md: {missing}"
