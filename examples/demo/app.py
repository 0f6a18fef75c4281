"""The demo's example app: an AI product making chat calls for two customers with the real ``openai`` SDK.

Nothing here knows about billing. spanledger's instrumentation records each call when the app runs under
``opentelemetry-instrument``; the only spanledger line is :func:`customer`, which says who pays for the
calls inside its block:

- ``acme`` reviews a long contract with ``gpt-4o`` (the same document prefix each time, so the server's
  prompt cache reports cached tokens), four answers as JSON and one streamed;
- ``globex`` runs a support chat on ``gpt-4o-mini``, streamed, the history growing turn by turn.

The SDK reads ``OPENAI_BASE_URL`` and ``OPENAI_API_KEY`` (the demo points them at the example server).
Each call prints one line ``[customer] model mode id=…`` (and the usage, when the app itself sees it).
"""

from __future__ import annotations

from typing import Any

from openai import OpenAI

from spanledger.instrumentation import customer

_CLAUSES = (
    "Services. The Supplier provides the document review platform described in Schedule A, including "
    "hosting, support during business hours and the updates it releases to all of its customers.",
    "Fees. The Customer pays the fees in Schedule B monthly in advance; usage above the included volume "
    "is invoiced monthly in arrears at the rates in force when the usage occurred.",
    "Term. The agreement starts on the effective date and renews for successive twelve month terms "
    "unless either party gives ninety days written notice before the end of the current term.",
    "Liability. Neither party is liable for indirect or consequential loss; each party's total liability "
    "is capped at the fees paid in the twelve months before the event giving rise to the claim.",
)

CONTRACT = "\n\n".join(
    f"{number}. {_CLAUSES[number % len(_CLAUSES)]}" for number in range(1, 241)
)  # about 12,000 tokens: every question about it is a big prompt, mostly served from the prompt cache

HELP_CENTER = "\n".join(
    f"Article {number}: to reset a password, open Settings, choose Security, then follow the emailed link; "
    f"invoices are under Billing; exports run nightly and keep thirty days of history."
    for number in range(1, 31)
)  # the support bot's long system prompt (about 1,300 tokens)

CONTRACT_QUESTIONS = (
    "Summarise the payment terms.",
    "When can the customer terminate?",
    "What is the liability cap?",
    "List every obligation of the supplier.",
)
SUPPORT_TURNS = (
    "How do I reset my password?",
    "Where do I find last month's invoice?",
    "Can I export my data every hour instead?",
)


def review_contract(client: OpenAI) -> None:
    prefix = [
        {"role": "system", "content": "You are a careful legal assistant. Answer from the contract only."},
        {"role": "user", "content": CONTRACT},
    ]
    for question in CONTRACT_QUESTIONS:
        response = client.chat.completions.create(
            model="gpt-4o", messages=[*prefix, {"role": "user", "content": question}], max_tokens=400
        )
        _print_call("acme", response.model, "json", response.id, response.usage)
    stream = client.chat.completions.create(
        model="gpt-4o",
        messages=[*prefix, {"role": "user", "content": "Draft a short cover email for this contract."}],
        stream=True,
    )
    _print_stream("acme", stream)


def support_chat(client: OpenAI) -> None:
    history: list[dict[str, Any]] = [{"role": "system", "content": HELP_CENTER}]
    for turn in SUPPORT_TURNS:
        history.append({"role": "user", "content": turn})
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=history, stream=True)
        history.append({"role": "assistant", "content": _print_stream("globex", stream)})
    # An app may ask for usage on a stream itself: it then sees the usage chunk, as without spanledger.
    history.append({"role": "user", "content": "Thanks, that is all."})
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=history, stream=True, stream_options={"include_usage": True}
    )
    _print_stream("globex", stream)


def _print_stream(customer_id: str, stream: Any) -> str:
    """Read a stream to its end; print the call's line; return the reply text."""
    pieces: list[str] = []
    response_id = model = ""
    usage = None
    for chunk in stream:
        response_id, model = chunk.id, chunk.model
        usage = chunk.usage or usage
        pieces.extend(choice.delta.content or "" for choice in chunk.choices)
    _print_call(customer_id, model, "stream", response_id, usage)
    return "".join(pieces)


def _print_call(customer_id: str, model: str, mode: str, response_id: str, usage: Any) -> None:
    line = f"[{customer_id}] {model:<12} {mode:<6} id={response_id}"
    if usage is not None:
        cached = usage.prompt_tokens_details.cached_tokens if usage.prompt_tokens_details else 0
        line += f"  prompt={usage.prompt_tokens:,} (cached {cached:,}) completion={usage.completion_tokens:,}"
    print(line, flush=True)


def main() -> None:
    client = OpenAI()
    with customer("acme"):
        review_contract(client)
    with customer("globex"):
        support_chat(client)


if __name__ == "__main__":
    main()
