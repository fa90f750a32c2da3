"""Configuration of the simulated provider (``sim.yaml``): per-model behaviour and faults.

Use ``load_sim_config(path)`` at start-up; an invalid file stops the sim before it listens.
Unknown model names are served by the ``default`` entry (built in when the file has none), so a
client can ask for any model name and still get an answer.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DEFAULT_MODEL_KEY = "default"


class SimConfigError(ValueError):
    """The sim config file is unreadable or invalid; the message names the dotted path."""


class FaultKind(StrEnum):
    """The faults the sim can inject (header ``x-sim-fault``, config, or ``/_sim/faults``)."""

    RATE_LIMIT = "429"
    SERVER_ERROR = "500"
    BAD_GATEWAY = "502"
    UNAVAILABLE = "503"
    HANG = "hang"
    SLOW_FIRST_TOKEN = "slow-first-token"
    DISCONNECT = "disconnect"
    MALFORMED = "malformed"
    QUOTA = "quota"
    CONTEXT = "context"
    CONTENT_POLICY = "content-policy"
    IGNORE_MAX_TOKENS = "ignore-max-tokens"  # answers past max_tokens (a misbehaving upstream)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FaultRule(_Frozen):
    """One fault with the probability that it fires on a request, and its parameters."""

    fault: FaultKind
    rate: float = Field(default=1.0, ge=0.0, le=1.0)
    retry_after_s: float = Field(default=1.0, ge=0.0, le=3600.0)
    ttft_ms: float = Field(default=5000.0, ge=0.0)
    after_chunks: int = Field(default=2, ge=0)

    @field_validator("fault", mode="before")
    @classmethod
    def _status_as_text(cls, value: object) -> object:
        # YAML and JSON users write `fault: 429`; the kind is the text "429".
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class RuntimeFaultRule(FaultRule):
    """A fault rule set while the sim runs (``POST /_sim/faults``); ``count`` caps its firings."""

    model: str = Field(default="*", min_length=1)
    count: int | None = Field(default=None, ge=1)


class Quality(_Frozen):
    """Answer known prompts as a weak or strong model did (``gateway/sim/quality.py``)."""

    dataset: str = Field(min_length=1)  # JSONL; relative paths start at the config file's dir
    role: Literal["weak", "strong"]


class ModelBehaviour(_Frozen):
    """How one simulated model answers: pace, size, content, limits and standing faults."""

    latency_ms: float = Field(default=0.0, ge=0.0)
    latency_jitter_ms: float = Field(default=0.0, ge=0.0)
    ttft_ms: float = Field(default=0.0, ge=0.0)
    tokens_per_s: float = Field(default=0.0, ge=0.0)
    completion_tokens: int = Field(default=16, ge=1, le=1_000_000)
    reply: str | None = None
    echo: bool = False
    logprob: float = Field(default=-0.01, le=0.0)
    rpm_limit: int | None = Field(default=None, ge=1)
    tpm_limit: int | None = Field(default=None, ge=1)
    context_window_tokens: int | None = Field(default=None, ge=1)
    owned_by: str = "tiergate-sim"
    faults: tuple[FaultRule, ...] = ()
    quality: Quality | None = None

    @model_validator(mode="after")
    def _one_content_source(self) -> ModelBehaviour:
        if self.echo and self.reply is not None:
            raise ValueError("reply and echo are exclusive: choose a fixed reply or echoing")
        if self.reply is not None and not self.reply.strip():
            raise ValueError("reply must not be blank")
        return self


def _builtin_models() -> dict[str, ModelBehaviour]:
    return {DEFAULT_MODEL_KEY: ModelBehaviour()}


class SimConfig(_Frozen):
    """The whole sim config. ``models`` maps a model name (or ``default``) to its behaviour."""

    require_api_key: bool = False
    api_keys: tuple[str, ...] = ()
    embedding_dimensions: int = Field(default=384, ge=1, le=16_384)
    seed: int = 0
    models: dict[str, ModelBehaviour] = Field(default_factory=_builtin_models)

    @field_validator("models")
    @classmethod
    def _has_default(cls, models: dict[str, ModelBehaviour]) -> dict[str, ModelBehaviour]:
        if DEFAULT_MODEL_KEY not in models:
            return {**models, DEFAULT_MODEL_KEY: ModelBehaviour()}
        return models

    def behaviour_key(self, model: str) -> str:
        """The models entry that serves ``model``: itself when configured, else ``default``."""
        return model if model in self.models else DEFAULT_MODEL_KEY


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        path = ".".join(str(part) for part in item["loc"]) or "<root>"
        lines.append(f"{path}: {item['msg']}")
    return "; ".join(lines)


def load_sim_config(path: str | None) -> SimConfig:
    """Read and validate a sim.yaml; ``None`` gives the built-in defaults."""
    if path is None:
        return SimConfig()
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SimConfigError(f"{path}: {exc}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SimConfigError(f"{path}: the top level must be a mapping")
    try:
        config = SimConfig.model_validate(raw)
    except ValidationError as exc:
        raise SimConfigError(f"{path}: {_describe(exc)}") from exc
    return with_datasets_from(config, Path(path).parent)


def with_datasets_from(config: SimConfig, base: Path) -> SimConfig:
    """Quality datasets named relative to the config file, resolved (and checked) now."""
    models = dict(config.models)
    for name, behaviour in config.models.items():
        quality = behaviour.quality
        if quality is None:
            continue
        dataset = base / quality.dataset
        if not dataset.is_file():
            raise SimConfigError(f"models.{name}.quality.dataset: no file at {quality.dataset}")
        fixed = quality.model_copy(update={"dataset": str(dataset)})
        models[name] = behaviour.model_copy(update={"quality": fixed})
    return config.model_copy(update={"models": models})
