"""Browser tests cannot silently vanish from CI: a missing Chromium fails there, skips elsewhere."""

from __future__ import annotations

import pytest

import tests.browser


def test_missing_chromium_fails_under_ci(monkeypatch, tmp_path):
    """Under CI=true a missing browser is a failure, not a skip."""
    monkeypatch.setattr(tests.browser, "CHROMIUM", tmp_path / "no-chromium")
    with pytest.raises(pytest.fail.Exception, match="CI=true"):
        tests.browser.require_chromium(ci=True)


def test_missing_chromium_skips_elsewhere(monkeypatch, tmp_path):
    """On a developer's machine without root the browser tests skip, saying why."""
    monkeypatch.setattr(tests.browser, "CHROMEDRIVER", tmp_path / "no-driver")
    with pytest.raises(pytest.skip.Exception, match="chromium-driver"):
        tests.browser.require_chromium(ci=False)
