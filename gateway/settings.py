"""Process settings, from the environment only (prefix ``GATEWAY_``).

The routing policy (targets, aliases, keys) is data in ``routing_rules/``; this holds what differs
per process or deployment: where to listen, where state lives, where the rules are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", frozen=True, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=4000, ge=0, le=65535)
    rules: Path = Path("routing_rules/default.yaml")
    # No URL: start an embedded Valkey server with its data under data_dir, stop it on exit.
    redis_url: str | None = None
    data_dir: Path = Path("var")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    # Prompt text and message content never reach the logs unless this is set.
    log_prompts: bool = False
    # The request log line per call; metrics are kept either way.
    request_log: bool = True
    # The semantic cache's vectors: no value, the embedded in-process index (snapshot under
    # data_dir); edge:<dir>, Qdrant Edge in process; an http(s) URL, a Qdrant server several
    # replicas share; a path, Qdrant local mode.
    qdrant_url: str | None = None
    # Where the embedding model's ONNX export is kept (made once); default data_dir/models.
    models_dir: Path | None = None

    @property
    def model_cache(self) -> Path:
        return self.models_dir or self.data_dir / "models"
