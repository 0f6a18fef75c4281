#!/usr/bin/env bash
# The demo: the whole path in one command, on the SQLite default, in a fresh temporary directory.
#
#   python3 -m venv .venv && .venv/bin/pip install -q -e '.[demo]' && bash examples/demo/run.sh
#
# It starts `spanledger serve` (OTLP on free loopback ports) and an example OpenAI-compatible server
# (examples/demo/llm_server.py), applies examples/catalog.yaml, subscribes two customers, runs the example
# app (examples/demo/app.py, the real `openai` SDK) under `opentelemetry-instrument`, waits until every call
# is in the ledger, then prints usage, upstream cost, invoices, margins and a portal link. Every process it
# started is stopped on exit, however it exits.
#
# Overrides: SPANLEDGER (the spanledger binary; default .venv/bin/spanledger in the repository), PYTHON and
# OPENTELEMETRY_INSTRUMENT (default: next to SPANLEDGER), DEMO_DIR (keep the ledger, logs and the example
# server's answer log there instead of a temporary directory that is removed at the end).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

fail() { echo "demo: $*" >&2; exit 1; }

spanledger="$(command -v "${SPANLEDGER:-$root/.venv/bin/spanledger}")" \
  || fail "no spanledger at ${SPANLEDGER:-$root/.venv/bin/spanledger}; install first (in $root):
  python3 -m venv .venv && .venv/bin/pip install -q -e '.[demo]'"
bin="$(dirname "$spanledger")"
python="${PYTHON:-$bin/python}"
otel_instrument="${OPENTELEMETRY_INSTRUMENT:-$bin/opentelemetry-instrument}"
[[ -x "$otel_instrument" ]] || fail "no opentelemetry-instrument at $otel_instrument"
"$python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('openai') is None)" 2>/dev/null \
  || fail "the demo app needs the openai SDK: $bin/pip install -e '.[demo]'"

if [[ -n "${DEMO_DIR:-}" ]]; then
  workdir="$DEMO_DIR"; mkdir -p "$workdir"; remove_workdir=false
else
  workdir="$(mktemp -d "${TMPDIR:-/tmp}/spanledger-demo.XXXXXX")"; remove_workdir=true
fi

pids=()
stop_all() {
  local pid waited
  # ${pids[@]+…}: an empty array is "unbound" to bash before 4.4 (macOS ships 3.2) under set -u.
  for pid in ${pids[@]+"${pids[@]}"}; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in ${pids[@]+"${pids[@]}"}; do
    for ((waited = 0; waited < 100; waited++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if $remove_workdir; then rm -rf "$workdir"; fi
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

section() { printf '\n== %s\n' "$*"; }
show_log_and_fail() { echo "--- $1" >&2; tail -n 30 "$1" >&2 || true; fail "$2"; }

export SPANLEDGER_DATABASE_URL="sqlite:///$workdir/demo.db"
# The portal's links are signed with this key; `spanledger serve` checks them with the same one.
SPANLEDGER_SECRET_KEY="${SPANLEDGER_SECRET_KEY:-$("$python" -c "import secrets; print(secrets.token_urlsafe(32))")}"
export SPANLEDGER_SECRET_KEY
month="$(date -u +%Y-%m)"
month_start="$month-01"
next_month_start="$("$python" -c "import datetime as d; t = d.date.fromisoformat('$month_start'); \
print((t + d.timedelta(days=32)).replace(day=1))")"

section "Starting spanledger serve and the example OpenAI-compatible server (in $workdir)"
read -r grpc_port http_port <<<"$("$python" "$here/loopback.py" free 2 | tr '\n' ' ')"
export SPANLEDGER_PORTAL_BASE_URL="http://127.0.0.1:$http_port"
"$spanledger" serve --grpc "127.0.0.1:$grpc_port" --http "127.0.0.1:$http_port" >"$workdir/serve.log" 2>&1 &
pids+=("$!")
"$python" "$here/llm_server.py" --port-file "$workdir/llm_server.port" --log "$workdir/served.jsonl" \
  >"$workdir/llm_server.log" 2>&1 &
pids+=("$!")
serve_pid="${pids[0]}"
for ((waited = 0; ; waited++)); do
  "$python" "$here/loopback.py" wait "$grpc_port" "$http_port" --timeout 1 2>/dev/null && break
  if ! kill -0 "$serve_pid" 2>/dev/null || ((waited >= 60)); then
    show_log_and_fail "$workdir/serve.log" "spanledger serve did not start"
  fi
done
for ((waited = 0; waited < 300; waited++)); do [[ -s "$workdir/llm_server.port" ]] && break; sleep 0.1; done
[[ -s "$workdir/llm_server.port" ]] || show_log_and_fail "$workdir/llm_server.log" "the example server did not start"
llm_port="$(<"$workdir/llm_server.port")"
echo "OTLP/gRPC 127.0.0.1:$grpc_port, OTLP/HTTP 127.0.0.1:$http_port, example LLM server 127.0.0.1:$llm_port"

section "Catalog, customers and subscriptions"
"$spanledger" apply "$here/../catalog.yaml"
"$spanledger" meters create cached-input --aggregation sum --field cache_read_input_tokens \
  --description "input tokens served from the provider's prompt cache" >/dev/null
"$spanledger" customers create acme --name "Acme Legal" --email billing@acme.example >/dev/null
"$spanledger" customers create globex --name "Globex Support" --email ap@globex.example >/dev/null
"$spanledger" subscriptions create acme writer --start "$month_start" >/dev/null
"$spanledger" subscriptions create globex team --start "$month_start" --seats 3 >/dev/null
"$spanledger" subscriptions list

section "The app: real openai SDK calls under opentelemetry-instrument"
OTEL_TRACES_EXPORTER=otlp \
OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$grpc_port" \
OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
OTEL_SERVICE_NAME=demo-app \
OTEL_METRICS_EXPORTER=none \
OTEL_LOGS_EXPORTER=none \
OPENAI_BASE_URL="http://127.0.0.1:$llm_port/v1" \
OPENAI_API_KEY=demo \
  "$otel_instrument" "$python" "$here/app.py"

# The app's exporter flushes at exit and the receiver acknowledges only after commit, so the events are
# normally there already; wait (bounded) in case a batch is still in flight.
served="$(wc -l <"$workdir/served.jsonl" | tr -d ' ')"
stored=0
for ((waited = 0; waited < 60; waited++)); do
  stored="$("$spanledger" events list --json | grep -c . || true)"
  [[ "$stored" -ge "$served" ]] && break
  sleep 0.5
done
[[ "$stored" -ge "$served" ]] \
  || show_log_and_fail "$workdir/serve.log" "only $stored of $served calls reached the ledger"
echo "The example server answered $served calls; $stored usage events are in the ledger."

section "Usage per customer and model"
"$spanledger" meters usage tokens --group-by model --from "$month_start" --to "$next_month_start"
"$spanledger" meters usage cached-input --group-by model --from "$month_start" --to "$next_month_start"

section "Upstream cost (what the provider would charge, from genai-prices)"
"$spanledger" costs --by customer --from "$month_start" --to "$next_month_start"

section "Invoice preview for $month"
"$spanledger" invoices run --period "$month"
invoice_ids="$("$spanledger" invoices list --period "$month" --json \
  | "$python" -c "import json, sys; print(' '.join(str(i['id']) for i in json.load(sys.stdin)))")"
for invoice_id in $invoice_ids; do
  "$spanledger" invoices show "$invoice_id"
done

section "Margin per customer (invoiced revenue minus upstream cost)"
"$spanledger" margins --by customer --from "$month_start" --to "$next_month_start"

# The portal is served by `spanledger serve` on the OTLP/HTTP port (older builds have no portal-link).
if "$spanledger" portal-link --help >/dev/null 2>&1; then
  section "Customer portal (signed links, valid 7 days; served by spanledger serve while the demo runs)"
  for customer_id in acme globex; do
    link="$("$spanledger" portal-link "$customer_id" 2>/dev/null)"
    echo "$customer_id: $link"
    "$python" "$here/loopback.py" fetch "$link"
  done
  if [[ -t 0 && -t 1 ]]; then
    read -r -p "Open a link in your browser; press Enter to stop the demo. " _ || true
  fi
fi
