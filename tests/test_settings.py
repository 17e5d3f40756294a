"""Secrets at rest: the data folder and the generated secrets are this user's only."""

from __future__ import annotations

import os

import pytest

from core.settings import Settings


@pytest.fixture
def open_umask():
    """A permissive umask, as on many desktops: modes must not depend on it."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def test_data_folder_is_made_private_and_an_old_one_tightened(tmp_path, open_umask):
    """A new data folder is 0700; one made world-readable before is tightened."""
    fresh, old = tmp_path / "fresh" / "data", tmp_path / "old"
    old.mkdir(mode=0o755)
    for data_dir in (fresh, old):
        Settings(data_dir=data_dir).ensure_data_dir()
        assert data_dir.stat().st_mode & 0o777 == 0o700


def test_secrets_are_generated_once_and_readable_by_the_owner_only(tmp_path, open_umask, monkeypatch):
    """The Tiled key and the Prefect auth string: files 0600, the same value on every call."""
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)  # the test session's own
    settings = Settings(data_dir=tmp_path / "data")
    key, auth = settings.ensure_api_key(), settings.ensure_prefect_auth()
    assert len(key) == 64 and auth.startswith("morphospace:") and len(auth) > 40
    for path, value in ((settings.api_key_file, key), (settings.prefect_auth_file, auth)):
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.read_text() == value
    assert Settings(data_dir=tmp_path / "data").ensure_prefect_auth() == auth
    assert Settings(data_dir=tmp_path / "data").resolved_tiled_api_key() == key


def test_a_configured_prefect_secret_wins_and_nothing_is_written(tmp_path, monkeypatch):
    """A production server's PREFECT_API_AUTH_STRING is used as it is."""
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "ops:s3cret")
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.ensure_prefect_auth() == "ops:s3cret"
    assert not settings.prefect_auth_file.exists()
