#!/usr/bin/env bash
# The README scenario: a catalog, three customers on Writer, Team and Agency, a month of usage, and
# the November 2026 invoices, each checkable by hand (see docs/billing.md, "Scripted scenario").
# Run from anywhere after installing; SPANLEDGER points at the binary (default .venv/bin/spanledger).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
spanledger="${SPANLEDGER:-.venv/bin/spanledger}"
export SPANLEDGER_DATABASE_URL="${SPANLEDGER_DATABASE_URL:-sqlite:///scenario.db}"
rm -f scenario.db scenario.db-wal scenario.db-shm

"$spanledger" db upgrade
"$spanledger" apply "$here/../catalog.yaml" --dry-run       # what would be created
"$spanledger" apply "$here/../catalog.yaml"
"$spanledger" apply "$here/../catalog.yaml"                 # again: nothing to change

"$spanledger" customers create acme --name "Acme Writers" --email billing@acme.example
"$spanledger" customers create globex --name "Globex Agency" --email ap@globex.example
"$spanledger" customers create initech --name "Initech" --email finance@initech.example
"$spanledger" subscriptions create acme writer --start 2026-11-01                # subscription 1
"$spanledger" subscriptions create globex team --start 2026-11-01 --seats 7      # subscription 2
"$spanledger" subscriptions create initech writer --start 2026-11-01             # subscription 3
"$spanledger" subscriptions change 3 agency --at 2026-11-16                      # mid-month upgrade

"$spanledger" events import "$here/events.jsonl"
"$spanledger" invoices run --period 2026-11
"$spanledger" invoices show 1     # acme
"$spanledger" invoices show 2     # globex
"$spanledger" invoices show 3     # initech
"$spanledger" margins --by customer --from 2026-11-01 --to 2026-12-01
