"""Request bodies the sim accepts (OpenAI chat and embeddings, Anthropic messages).

Unknown fields are ignored, as a lenient provider would: the sim must accept whatever a gateway
forwards. Only the fields that change the answer are modelled.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class ContentPart(_Body):
    type: str = "text"
    text: str | None = None


class ChatMessage(_Body):
    role: str
    content: str | list[ContentPart] | None = None


class StreamOptions(_Body):
    include_usage: bool = False


class FunctionDef(_Body):
    name: str
    description: str | None = None
    parameters: dict[str, JsonValue] | None = None


class Tool(_Body):
    type: str = "function"
    function: FunctionDef


class FunctionName(_Body):
    name: str


class NamedToolChoice(_Body):
    type: str = "function"
    function: FunctionName


class JsonSchemaSpec(_Body):
    name: str = "response"
    schema_: dict[str, JsonValue] | None = Field(default=None, alias="schema")


class ResponseFormat(_Body):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaSpec | None = None


class ChatRequest(_Body):
    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = Field(default=None, ge=1, le=128)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    response_format: ResponseFormat | None = None


class EmbeddingRequest(_Body):
    model: str = Field(min_length=1)
    input: str | list[str] | list[int] | list[list[int]]
    dimensions: int | None = Field(default=None, ge=1, le=16_384)
    encoding_format: Literal["float", "base64"] = "float"


class AnthropicBlock(_Body):
    type: str = "text"
    text: str | None = None
    content: str | list[ContentPart] | None = None


class AnthropicMessage(_Body):
    role: str
    content: str | list[AnthropicBlock]


class AnthropicTool(_Body):
    name: str
    description: str | None = None
    input_schema: dict[str, JsonValue] | None = None


class AnthropicToolChoice(_Body):
    type: Literal["auto", "any", "tool", "none"] = "auto"
    name: str | None = None


class MessagesRequest(_Body):
    model: str = Field(min_length=1)
    messages: list[AnthropicMessage] = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    system: str | list[AnthropicBlock] | None = None
    stream: bool | None = False
    stop_sequences: list[str] | None = None
    tools: list[AnthropicTool] | None = None
    tool_choice: AnthropicToolChoice | None = None
