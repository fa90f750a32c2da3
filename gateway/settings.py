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
    # A request's line and headers together may take this many bytes (431 beyond), and must
    # arrive within this many seconds of the connection opening or the last answer (408).
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024)
    header_timeout_s: float = Field(default=10.0, gt=0, le=600)
    # The request log line per call; metrics are kept either way.
    request_log: bool = True
    # The semantic cache's vectors: no value, the embedded in-process index (snapshot under
    # data_dir); edge:<dir>, Qdrant Edge in process; an http(s) URL, a Qdrant server several
    # replicas share; a path, Qdrant local mode.
    qdrant_url: str | None = None
    # Seconds between checks of the rules file for changes (0: only SIGHUP reloads them).
    watch_rules_s: float = Field(default=1.0, ge=0)
    # Seconds between reads of the budgets' fill for the tiergate_budget_used_ratio gauge.
    budget_gauge_s: float = Field(default=15.0, gt=0)
    # With OpenTelemetry on (OTEL_* variables): a span per pipeline stage as well as per request
    # and per upstream attempt. Each span costs CPU (docs/performance.md#tracing).
    trace_stages: bool = True
    # Where the embedding model's ONNX export is kept (made once); default data_dir/models.
    models_dir: Path | None = None

    # The Files/Batches API (gateway/jobs): the largest batch input file kept in the state store,
    # the most requests in one batch, and how many batch lines one process runs at a time.
    batch_file_max_bytes: int = Field(default=32 * 1024 * 1024, ge=1)
    batch_max_lines: int = Field(default=50_000, ge=1)
    batch_concurrency: int = Field(default=4, ge=1, le=256)
    # A batch line starts only while a target of its alias has more than this share of its
    # RPM/TPM free: the rest is kept for interactive calls (0: batch lines may use it all).
    batch_headroom: float = Field(default=0.2, ge=0.0, lt=1.0)

    @property
    def model_cache(self) -> Path:
        return self.models_dir or self.data_dir / "models"
