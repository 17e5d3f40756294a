"""One settings object for every part of Morphospace.

Read from the environment (prefix ``MORPHOSPACE_``) and an optional ``.env`` file, through
:func:`get_settings`. Nothing else in the code base reads the environment; factories take a
``Settings`` explicitly so tests can build their own.
"""

from __future__ import annotations

import functools
import json
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

    host: str = Field("127.0.0.1", description="Bind address of every embedded service.")
    port: int = Field(8050, ge=1, le=65535, description="Web app port.")
    prefect_port: int = Field(4200, ge=1, le=65535)
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
    live_source: str = Field("tcp://127.0.0.1:5557", description="ZMQ address, folder or tiled+http:// node.")
    live_token: SecretStr | None = Field(None, description="Websocket token; generated when unset.")

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

    def resolved_tiled_api_key(self) -> str | None:
        """The configured key, else the one the embedded server keeps in the data directory."""
        if self.tiled_api_key is not None:
            return self.tiled_api_key.get_secret_value()
        if self.api_key_file.exists():
            return self.api_key_file.read_text().strip()
        return None

    def ensure_api_key(self) -> str:
        """Return the embedded server's key, generating it once (file mode 0600)."""
        key = self.resolved_tiled_api_key()
        if key:
            return key
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_hex(32)
        self.api_key_file.write_text(key)
        self.api_key_file.chmod(0o600)
        return key

    # Web app request checks (app/guard.py), owned by the live/web-app work.
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (name or name:port, as in the Host header) the web app answers besides "
                    "127.0.0.1, localhost and [::1] on its port, e.g. the name a reverse proxy "
                    "forwards; state-changing requests must come from an Origin on these hosts.",
    )


@functools.cache
def get_settings() -> Settings:
    return Settings()
