"""Span attribute names: the OpenTelemetry GenAI conventions plus the few spanledger adds.

Spelled out here rather than imported from ``opentelemetry.semconv._incubating`` because those names
are marked deprecated there (they moved to the GenAI conventions repository) and importing them warns.
"""

__all__ = [
    "CUSTOMER_ID",
    "ERROR_TYPE",
    "GEN_AI_OPERATION_NAME",
    "GEN_AI_PROVIDER_NAME",
    "GEN_AI_REQUEST_MODEL",
    "GEN_AI_RESPONSE_FINISH_REASONS",
    "GEN_AI_RESPONSE_ID",
    "GEN_AI_RESPONSE_MODEL",
    "GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS",
    "GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS",
    "GEN_AI_USAGE_INPUT_TOKENS",
    "GEN_AI_USAGE_OUTPUT_TOKENS",
    "GEN_AI_USAGE_REASONING_OUTPUT_TOKENS",
    "SERVER_ADDRESS",
    "SERVER_PORT",
    "SPANLEDGER_STREAM",
    "SPANLEDGER_USAGE_MISSING",
]

GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
#: Total input tokens, cached (read and written) tokens included.
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
#: Total output tokens, reasoning ("thinking") tokens included.
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = "gen_ai.usage.cache_read.input_tokens"
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = "gen_ai.usage.cache_creation.input_tokens"
GEN_AI_USAGE_REASONING_OUTPUT_TOKENS = "gen_ai.usage.reasoning.output_tokens"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"
ERROR_TYPE = "error.type"
CUSTOMER_ID = "customer.id"

#: ``True`` on a successful (2xx) call whose response reported no usage: tokens are unknown, not zero.
SPANLEDGER_USAGE_MISSING = "spanledger.usage.missing"
#: ``True`` when the response was streamed (SSE or streamed JSON).
SPANLEDGER_STREAM = "spanledger.stream"
