"""One settings object for every part of Morphospace.

Read from the environment (prefix ``MORPHOSPACE_``) and an optional ``.env`` file, through
:func:`get_settings`. Nothing else in the code base reads the environment; factories take a
``Settings`` explicitly so tests can build their own.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MORPHOSPACE_", env_file=".env", extra="ignore")

    data_dir: Path = Field(
        Path(".morphospace"),
        description="Where the embedded Tiled server, Prefect database and API key live.",
    )
    project: str = Field("default", pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Tiled namespace.")

    # Tiled: leave the URI empty to run the embedded SimpleTiledServer.
    tiled_uri: str | None = Field(None, description="e.g. http://127.0.0.1:8000/api/v1")
    tiled_api_key: SecretStr | None = Field(None, description="Needed for writes.")

    # Prefect: leave empty to run the embedded server. Read from PREFECT_API_URL as Prefect does.
    prefect_api_url: str | None = Field(
        None, validation_alias=AliasChoices("MORPHOSPACE_PREFECT_API_URL", "PREFECT_API_URL")
    )
    prefect_auth_string: SecretStr | None = Field(
        None, validation_alias=AliasChoices("MORPHOSPACE_PREFECT_AUTH_STRING", "PREFECT_API_AUTH_STRING"),
        description="The Prefect API's basic-auth secret (user:password); generated into the data folder "
                    "for the embedded server.",
    )
    prefect_database_url: SecretStr | None = Field(
        None, description="The embedded Prefect server's database for heavier use, e.g. "
                          "postgresql+asyncpg://USER:PASSWORD@HOST/prefect (default: SQLite in the data folder).",
    )

    host: str = Field("127.0.0.1", description="Bind address of every embedded service.")
    # Ports of the embedded services: tried first; when taken and not set by the user, `morphospace
    # demo` picks a free one (a port the user set must be free).
    port: int = Field(8050, ge=1, le=65535, description="Web app port.")
    prefect_port: int = Field(4200, ge=1, le=65535, description="Embedded Prefect server port.")
    worker_poll_seconds: float = Field(
        2.0, gt=0, le=60, description="How often a worker asks for new runs (Prefect's default, 10 s, is a long wait)."
    )

    # Where files may be read from (ingest). Paths outside these roots are refused.
    data_roots: list[Path] = Field(default_factory=lambda: [Path.cwd()])

    debug: bool = Field(False, description="Show tracebacks instead of one-line errors.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Torch device for workers.")

    # The demo: a small, real image series shipped in the repository.
    demo_epochs: int = Field(20, ge=1, le=500)
    demo_projection: Literal["umap", "pca"] = "umap"

    # Live mode: where detector frames arrive, and the secret that lets the app's pages subscribe.
    live_source: str = Field(
        "tcp://127.0.0.1:5557",
        description="ZMQ address, folder or tiled+http:// node (`morphospace demo` picks a free port when unset).",
    )
    live_token: SecretStr | None = Field(None, description="Websocket token; generated when unset.")
    live_ws_port: int = Field(
        0, ge=0, le=65535,
        description="Websocket port of the live sessions the web app starts; 0: the port the system "
                    "gives the first one, kept while the app runs, so a restarted session process "
                    "comes back where its pages reconnect.",
    )

    # Ingest from Tiled: servers besides the store's that `ingest tiled+http://...` may read (a
    # JSON list of base URIs; one may end in ?api_key=KEY, the key it is read with).
    tiled_allowed_uris: list[str] = Field(default_factory=list)

    # Web app request checks (app/guard.py).
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (name or name:port, as in the Host header) the web app answers besides "
                    "127.0.0.1, localhost and [::1] on its port, e.g. the name a reverse proxy "
                    "forwards; state-changing requests must come from an Origin on these hosts.",
    )

    @property
    def api_key_file(self) -> Path:
        return self.data_dir / "tiled_api_key"

    @property
    def services_file(self) -> Path:
        """Written by a running `morphospace demo`: the URLs of its services (no secrets)."""
        return self.data_dir / "services.json"

    def with_running_services(self) -> Settings:
        """Fill URLs left unset from a running demo, so `morphospace ingest` finds it."""
        if (self.tiled_uri and self.prefect_api_url) or not self.services_file.exists():
            return self
        found = json.loads(self.services_file.read_text())
        return self.model_copy(update={
            "tiled_uri": self.tiled_uri or found.get("tiled_uri"),
            "prefect_api_url": self.prefect_api_url or found.get("prefect_api_url"),
        })

    @property
    def prefect_auth_file(self) -> Path:
        return self.data_dir / "prefect_auth"

    def ensure_data_dir(self) -> Path:
        """Create the data folder for this user only (0700), tightening one made before."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        return self.data_dir

    def resolved_tiled_api_key(self) -> str | None:
        """The configured key, else the one the embedded server keeps in the data directory."""
        if self.tiled_api_key is not None:
            return self.tiled_api_key.get_secret_value()
        return _read_secret(self.api_key_file)

    def ensure_api_key(self) -> str:
        """Return the embedded Tiled server's key, generating it once (file mode 0600)."""
        return self.resolved_tiled_api_key() or self._new_secret(self.api_key_file, secrets.token_hex(32))

    def resolved_prefect_auth(self) -> str | None:
        """The configured Prefect auth string, else the embedded server's from the data directory."""
        if self.prefect_auth_string is not None:
            return self.prefect_auth_string.get_secret_value()
        return _read_secret(self.prefect_auth_file)

    def ensure_prefect_auth(self) -> str:
        """Return the embedded Prefect server's auth string, generating it once (file mode 0600)."""
        return self.resolved_prefect_auth() or self._new_secret(
            self.prefect_auth_file, f"morphospace:{secrets.token_urlsafe(32)}"
        )

    def _new_secret(self, path: Path, value: str) -> str:
        """Write ``value`` to a file created 0600 (never readable by others, not even briefly);
        when another process created it first, theirs wins."""
        self.ensure_data_dir()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return _read_secret(path) or value
        with os.fdopen(fd, "w") as handle:
            handle.write(value)
        return value


def _read_secret(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


@functools.cache
def get_settings() -> Settings:
    return Settings()
