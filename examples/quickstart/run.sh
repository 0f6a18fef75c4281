#!/usr/bin/env bash
# The quick-start: import a sample of usage events into a fresh SQLite ledger, define meters,
# print usage per customer and per model. Run from the repository root after installing.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
spanledger="${SPANLEDGER:-.venv/bin/spanledger}"
export SPANLEDGER_DATABASE_URL="${SPANLEDGER_DATABASE_URL:-sqlite:///quickstart.db}"
rm -f quickstart.db quickstart.db-wal quickstart.db-shm

"$spanledger" db upgrade
"$spanledger" events import "$here/events.jsonl"
"$spanledger" events import "$here/events.jsonl"   # again: every event is already there, nothing doubles
"$spanledger" meters create tokens --aggregation sum --field total_tokens --description "input + output tokens"
"$spanledger" meters create cached-input --aggregation sum --field cache_read_input_tokens
"$spanledger" meters create openai-calls --aggregation count \
  --filter '{"field": "provider", "op": "eq", "value": "openai"}'
"$spanledger" meters usage tokens --from 2026-11-01 --to 2026-12-01
"$spanledger" meters usage tokens --customer acme --group-by model --from 2026-11-01 --to 2026-12-01
"$spanledger" meters usage cached-input --from 2026-11-01 --to 2026-12-01
"$spanledger" meters usage openai-calls --from 2026-11-01 --to 2026-12-01 --json
