"""A small fake of Stripe's v1 API on loopback, for the Stripe tests.

It speaks Stripe's wire format — form-encoded requests (``metadata[key]=value``), JSON objects and
JSON errors — for the endpoints spanledger uses, and enforces idempotency-key semantics the way
Stripe documents them: the same key with the same parameters replays the saved response; the same key
with different parameters is a 400 ``idempotency_error``. Every request is recorded, and errors can be
injected: ``card_declined`` (402), ``rate_limit`` (429), ``server`` (500), ``drop`` (the connection
closes before the request is processed) and ``drop_after`` (processed, then the connection closes —
the response is lost, as on a network failure after Stripe committed).
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

_ERRORS = {
    "card_declined": (
        402,
        {"type": "card_error", "code": "card_declined", "message": "Your card was declined."},
    ),
    "rate_limit": (
        429,
        {"type": "invalid_request_error", "code": "rate_limit", "message": "Too many requests."},
    ),
    "server": (500, {"type": "api_error", "message": "Something went wrong on Stripe's end."}),
}


def _invalid(message: str) -> dict[str, Any]:
    return {"error": {"type": "invalid_request_error", "message": message}}


def decode_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``metadata[a]=1&expand[0]=x`` → ``{"metadata": {"a": "1"}, "expand": {"0": "x"}}``."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        parts = re.findall(r"[^\[\]]+", key)
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return result


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, Any]
    idempotency_key: str | None
    status: int = 0
    replayed: bool = False


@dataclass
class _Injection:
    method: str
    path: re.Pattern[str]
    kind: str
    times: int
    skip: int


@dataclass
class FakeStripeState:
    customers: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoice_items: dict[str, dict[str, Any]] = field(default_factory=dict)
    meter_events: dict[str, dict[str, Any]] = field(default_factory=dict)


class FakeStripe:
    """The fake API; ``url`` is its base address (give it to ``StripeClient(base_addresses=...)``)."""

    def __init__(self) -> None:
        self.state = FakeStripeState()
        self.requests: list[RecordedRequest] = []
        self._idempotency: dict[str, tuple[str, dict[str, Any], int, dict[str, Any]]] = {}
        self._injections: list[_Injection] = []
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeStripe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def inject(self, method: str, path: str, kind: str, *, times: int = 1, skip: int = 0) -> None:
        """Make the next ``times`` requests matching ``method`` and the ``path`` regex fail with ``kind``,
        after letting ``skip`` matching requests through."""
        with self._lock:
            self._injections.append(_Injection(method.upper(), re.compile(path), kind, times, skip))

    def writes(self, path_prefix: str = "") -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == "POST" and r.path.startswith(path_prefix)]

    # -- objects -----------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}_fake{next(self._ids):06d}"

    def _invoice_view(self, invoice: dict[str, Any]) -> dict[str, Any]:
        items = [i for i in self.state.invoice_items.values() if i["invoice"] == invoice["id"]]
        subtotal = sum(int(i["amount"]) for i in items)
        paid = invoice["status"] == "paid"
        return {
            **invoice,
            "subtotal": subtotal,
            "total": subtotal,
            "amount_due": subtotal,
            "amount_paid": subtotal if paid else 0,
            "lines": {"object": "list", "data": items, "has_more": False, "url": "/v1/invoices/lines"},
        }

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        s = self.state
        if method == "POST" and path == "/v1/customers":
            customer = {
                "id": self._new_id("cus"),
                "object": "customer",
                "metadata": params.get("metadata", {}),
                "name": params.get("name"),
                "email": params.get("email"),
            }
            s.customers[customer["id"]] = customer
            return 200, customer
        if method == "GET" and path == "/v1/customers/search":
            match = re.fullmatch(r"metadata\['([^']+)'\]:'((?:[^'\\]|\\.)*)'", params.get("query", ""))
            if not match:
                return 400, _invalid("unsupported query")
            key, value = match.group(1), re.sub(r"\\(.)", r"\1", match.group(2))
            data = [c for c in s.customers.values() if c["metadata"].get(key) == value]
            return 200, {"object": "search_result", "data": data, "has_more": False, "url": path}
        if method == "POST" and path == "/v1/invoices":
            if params.get("customer") not in s.customers:
                return 400, _invalid("No such customer")
            invoice = {
                "id": self._new_id("in"),
                "object": "invoice",
                "customer": params["customer"],
                "currency": params.get("currency", "usd"),
                "status": "draft",
                "metadata": params.get("metadata", {}),
                "auto_advance": params.get("auto_advance") == "true",
                "collection_method": params.get("collection_method", "charge_automatically"),
            }
            s.invoices[invoice["id"]] = invoice
            return 200, self._invoice_view(invoice)
        if method == "GET" and path == "/v1/invoices":
            data = [
                self._invoice_view(i) for i in s.invoices.values() if i["customer"] == params.get("customer")
            ]
            return 200, {"object": "list", "data": data, "has_more": False, "url": path}
        match = re.fullmatch(r"/v1/invoices/(in_\w+)(/finalize|/pay)?", path)
        if match:
            invoice = s.invoices.get(match.group(1))
            if invoice is None:
                return 404, _invalid("No such invoice")
            action = match.group(2)
            if action == "/finalize":
                if invoice["status"] != "draft":
                    return 400, {
                        "error": {"type": "invalid_request_error", "message": "Invoice is already finalized"}
                    }
                invoice["status"] = "paid" if self._invoice_view(invoice)["total"] == 0 else "open"
            elif action == "/pay":
                if invoice["status"] != "open":
                    return 400, {
                        "error": {
                            "type": "invalid_request_error",
                            "message": f"Invoice is {invoice['status']}",
                        }
                    }
                invoice["status"] = "paid"
            return 200, self._invoice_view(invoice)
        if method == "POST" and path == "/v1/invoiceitems":
            invoice = s.invoices.get(params.get("invoice", ""))
            if invoice is None or invoice["status"] != "draft":
                return 400, _invalid("invoice is not a draft")
            item = {
                "id": self._new_id("ii"),
                "object": "invoiceitem",
                "invoice": invoice["id"],
                "customer": params.get("customer"),
                "amount": int(params["amount"]),
                "currency": params.get("currency"),
                "description": params.get("description"),
                "metadata": params.get("metadata", {}),
            }
            s.invoice_items[item["id"]] = item
            return 200, item
        if method == "GET" and path == "/v1/invoiceitems":
            data = [i for i in s.invoice_items.values() if i["invoice"] == params.get("invoice")]
            return 200, {"object": "list", "data": data, "has_more": False, "url": path}
        if method == "POST" and path == "/v1/billing/meter_events":
            identifier = params.get("identifier") or self._new_id("mev")
            event = s.meter_events.setdefault(
                identifier,
                {
                    "object": "billing.meter_event",
                    "event_name": params.get("event_name"),
                    "identifier": identifier,
                    "payload": params.get("payload", {}),
                    "timestamp": int(params.get("timestamp", time.time())),
                    "created": int(time.time()),
                    "livemode": False,
                },
            )
            return 200, event
        return 404, {
            "error": {
                "type": "invalid_request_error",
                "message": f"Unrecognized request URL ({method}: {path})",
            }
        }

    # -- HTTP --------------------------------------------------------------------------------

    def _take_injection(self, method: str, path: str) -> str | None:
        for injection in self._injections:
            if injection.method == method and injection.path.search(path) and injection.times > 0:
                if injection.skip > 0:
                    injection.skip -= 1
                    return None
                injection.times -= 1
                return injection.kind
        return None

    def handle(
        self, method: str, raw_path: str, body: bytes, key: str | None
    ) -> tuple[int, dict[str, Any], str | None]:
        """Returns (status, body, drop) where drop is None, "before" or "after"."""
        split = urlsplit(raw_path)
        query = parse_qsl(split.query, keep_blank_values=True)
        params = decode_form(query + parse_qsl(body.decode(), keep_blank_values=True))
        with self._lock:
            record = RecordedRequest(method, split.path, params, key)
            self.requests.append(record)
            kind = self._take_injection(method, split.path)
            if kind == "drop":
                return 0, {}, "before"
            if kind in _ERRORS:
                status, error = _ERRORS[kind]
                record.status = status
                return status, {"error": error}, None
            if key is not None and method == "POST":
                saved = self._idempotency.get(key)
                if saved is not None:
                    saved_path, saved_params, status, response = saved
                    if saved_path != split.path or saved_params != params:
                        record.status = 400
                        return (
                            400,
                            {
                                "error": {
                                    "type": "idempotency_error",
                                    "message": (
                                        "Keys for idempotent requests can only be used "
                                        "with the same parameters "
                                        "they were first used with."
                                    ),
                                }
                            },
                            None,
                        )
                    record.status, record.replayed = status, True
                    return status, response, None
            status, response = self._route(method, split.path, params)
            record.status = status
            if key is not None and method == "POST":
                self._idempotency[key] = (split.path, params, status, response)
            return status, response, "after" if kind == "drop_after" else None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, response, drop = fake.handle(
                    method, self.path, body, self.headers.get("Idempotency-Key")
                )
                if drop is not None:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                payload = json.dumps(response).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Request-Id", f"req_fake{len(fake.requests)}")
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        return Handler
