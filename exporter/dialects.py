"""The dialect table: which span attribute fills which usage-event field, in order of preference.

GenAI instrumentations in the wild spell usage differently. Each row below names one attribute, the event
field it fills, and who sends it. For every field the first row whose attribute is present on the span wins,
so the current semantic conventions beat older spellings when a span carries both. ``docs/exporter.md``
prints this table; ``tests/exporter/test_dialects.py`` feeds every row with spans from the real packages.

After the table come the two conventions that differ from ours (see :mod:`spanledger.exporter.mapping`):
instrumentations that report Anthropic's raw ``input_tokens`` (cached tokens *excluded*) and Gemini's raw
``candidates_token_count`` (thinking tokens *excluded*).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "AGGREGATE_OPERATIONS",
    "ANTHROPIC_STYLE_PROVIDERS",
    "ATTRIBUTE_TABLE",
    "BUILTIN_INPUT_EXCLUDES_CACHE_SCOPES",
    "BUILTIN_OUTPUT_EXCLUDES_REASONING_SCOPES",
    "GEMINI_STYLE_PROVIDERS",
    "MODEL_CALL_OPERATIONS",
    "USAGE_FIELDS",
    "AttributeRule",
    "attributes_for",
]


@dataclass(frozen=True, slots=True)
class AttributeRule:
    """Attribute ``attribute`` fills event field ``field``; ``dialect`` says who sends it."""

    attribute: str
    field: str
    dialect: str


_SEMCONV = "GenAI semantic conventions (current)"
_SEMCONV_OLD = "GenAI semantic conventions (before 1.36)"
_OPENLLMETRY = "OpenLLMetry 0.4x+ (opentelemetry-instrumentation-openai / -anthropic)"
_OPENLLMETRY_OLD = "OpenLLMetry before semconv-ai 0.5 / other tools"
_ANTHROPIC_SDK = "anthropic SDK 2.x own tracing (com.anthropic.sdk.python)"

#: ``total_tokens`` is not an event field: it only derives a missing input or output count.
ATTRIBUTE_TABLE: tuple[AttributeRule, ...] = (
    AttributeRule("gen_ai.provider.name", "provider", _SEMCONV),
    AttributeRule("gen_ai.system", "provider", _SEMCONV_OLD),
    AttributeRule("gen_ai.operation.name", "operation", _SEMCONV),
    AttributeRule("llm.request.type", "operation", _OPENLLMETRY_OLD),
    AttributeRule("gen_ai.request.model", "request_model", _SEMCONV),
    AttributeRule("gen_ai.response.model", "response_model", _SEMCONV),
    AttributeRule("gen_ai.response.id", "response_id", _SEMCONV),
    AttributeRule("gen_ai.usage.input_tokens", "input_tokens", _SEMCONV),
    AttributeRule("gen_ai.usage.prompt_tokens", "input_tokens", _SEMCONV_OLD),
    AttributeRule("gen_ai.usage.output_tokens", "output_tokens", _SEMCONV),
    AttributeRule("gen_ai.usage.completion_tokens", "output_tokens", _SEMCONV_OLD),
    AttributeRule("gen_ai.usage.cache_read.input_tokens", "cache_read_input_tokens", _SEMCONV),
    AttributeRule("gen_ai.usage.cache_read_input_tokens", "cache_read_input_tokens", _OPENLLMETRY_OLD),
    AttributeRule("gen_ai.usage.cache_creation.input_tokens", "cache_write_input_tokens", _SEMCONV),
    AttributeRule("gen_ai.usage.cache_write.input_tokens", "cache_write_input_tokens", _ANTHROPIC_SDK),
    AttributeRule("gen_ai.usage.cache_creation_input_tokens", "cache_write_input_tokens", _OPENLLMETRY_OLD),
    AttributeRule("gen_ai.usage.reasoning.output_tokens", "reasoning_tokens", _SEMCONV),
    AttributeRule("gen_ai.usage.reasoning_tokens", "reasoning_tokens", _OPENLLMETRY),
    AttributeRule("llm.usage.reasoning_tokens", "reasoning_tokens", _OPENLLMETRY_OLD),
    AttributeRule("gen_ai.usage.total_tokens", "total_tokens", _OPENLLMETRY),
    AttributeRule("llm.usage.total_tokens", "total_tokens", _OPENLLMETRY_OLD),
)

#: Fields whose presence makes a span carry GenAI usage.
USAGE_FIELDS: tuple[str, ...] = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_write_input_tokens",
    "reasoning_tokens",
    "total_tokens",
)

#: Operations that are one call to a model: billable even when the span reports no token counts (e.g. an
#: OpenAI stream without ``stream_options.include_usage``), so per-call meters still count them.
MODEL_CALL_OPERATIONS = frozenset(
    {"chat", "text_completion", "completion", "generate_content", "embeddings", "embedding", "responses"}
)

#: Operations that wrap several calls (agent runs, tools). Some instrumentations put the run's summed usage on
#: them; their child spans already carry each call, so billing them too would count usage twice.
AGGREGATE_OPERATIONS = frozenset(
    {"invoke_agent", "create_agent", "execute_tool", "invoke_workflow", "workflow", "agent", "task", "tool"}
)

#: Providers whose API reports ``input_tokens`` without the cached tokens, and Bedrock's Converse API, which
#: does the same for Claude.
ANTHROPIC_STYLE_PROVIDERS = frozenset({"anthropic", "aws.bedrock", "gcp.vertex_ai.anthropic"})

#: Instrumentation scopes known to copy that raw count into ``gen_ai.usage.input_tokens``
#: (OpenLLMetry's Bedrock package; traceloop/openllmetry#4449). OpenLLMetry's Anthropic package (since its
#: prompt-caching support) and the anthropic SDK's own tracing add the cached tokens, as the conventions say.
BUILTIN_INPUT_EXCLUDES_CACHE_SCOPES = frozenset({"opentelemetry.instrumentation.bedrock"})

#: Gemini reports ``candidates_token_count`` without ``thoughts_token_count``.
GEMINI_STYLE_PROVIDERS = frozenset({"gcp.gen_ai", "gcp.gemini", "gcp.vertex_ai", "gemini", "google"})

#: Scopes known to copy Gemini's raw output count (OpenLLMetry's google-generativeai package).
BUILTIN_OUTPUT_EXCLUDES_REASONING_SCOPES = frozenset({"opentelemetry.instrumentation.google_generativeai"})


def attributes_for(field: str) -> tuple[str, ...]:
    """The attributes that fill ``field``, most preferred first."""
    return tuple(rule.attribute for rule in ATTRIBUTE_TABLE if rule.field == field)
