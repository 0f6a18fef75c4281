"""The libraries this instrumentation patches: any one of them is enough.

The current ``openai``, ``anthropic`` and ``google-genai`` SDKs send through ``httpx2``; older SDKs and
hand-written clients through ``httpx``. Both share the same ``Client.send`` / ``AsyncClient.send`` seam.
"""

__all__ = ["_instruments", "_instruments_any"]

_instruments: tuple[str, ...] = ()
_instruments_any: tuple[str, ...] = ("httpx >= 0.23.0", "httpx2 >= 2.0.0")
